//! [`IoPool`]: asynchronous reads for the epoll backend, on a few threads doing `pread`.
//!
//! The submitter (a reactor thread) never blocks: [`IoPool::submit`] takes a pool buffer and a
//! queue slot or answers [`SubmitError::Full`], and the caller parks the command and retries
//! later. Completions arrive on a channel, and the wake callback (the reactor's eventfd
//! `Waker`) is called after each one so a sleeping loop picks them up.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use super::DiskError;
use super::buf::{AlignedBuf, BufferPool, Lease};
use super::segment::SegmentedFile;

/// Sizing of an [`IoPool`].
#[derive(Debug, Clone)]
pub struct IoPoolConfig {
    /// Reader threads.
    pub threads: usize,
    /// Requests queued or running at most.
    pub queue: usize,
    /// Pool buffers (a read holds one from submission until its [`ReadData`] drops).
    pub buffers: usize,
    /// Bytes per pool buffer; reads whose aligned window is larger get a buffer of their own.
    pub buffer_bytes: usize,
}

impl Default for IoPoolConfig {
    fn default() -> Self {
        IoPoolConfig {
            threads: 2,
            queue: 256,
            buffers: 256,
            buffer_bytes: 64 << 10,
        }
    }
}

/// A read to run: `len` bytes at log `address`; `token` comes back in the [`Completion`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadRequest {
    /// Log address.
    pub address: u64,
    /// Bytes wanted.
    pub len: usize,
    /// The submitter's tag (e.g. a parked command's slot and generation).
    pub token: u64,
}

/// Why a request was not queued; the request is handed back.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The queue or the buffer pool is full: retry after completions have been consumed.
    #[error("I/O pool full")]
    Full(ReadRequest),
    /// The pool is shutting down.
    #[error("I/O pool closed")]
    Closed(ReadRequest),
}

/// A finished read.
#[derive(Debug)]
pub struct Completion {
    /// The request's token.
    pub token: u64,
    /// The bytes, or why not.
    pub result: Result<ReadData, DiskError>,
}

#[derive(Debug)]
enum Storage {
    Pooled(Lease),
    Owned(AlignedBuf),
}

/// The bytes of a finished read. Holds its pool buffer until dropped.
#[derive(Debug)]
pub struct ReadData {
    storage: Storage,
    skip: usize,
    len: usize,
}

impl ReadData {
    /// The bytes read: the length asked for, or less at the end of the written data.
    pub fn bytes(&self) -> &[u8] {
        let all = match &self.storage {
            Storage::Pooled(l) => l.as_slice(),
            Storage::Owned(b) => b.as_slice(),
        };
        &all[self.skip..self.skip + self.len]
    }

    /// Whether the read came from a pool buffer (it did unless its window was too large).
    pub fn pooled(&self) -> bool {
        matches!(self.storage, Storage::Pooled(_))
    }
}

struct Job {
    req: ReadRequest,
    lease: Option<Lease>,
}

struct State {
    queue: VecDeque<Job>,
    closed: bool,
}

type Wake = Box<dyn Fn() + Send + Sync>;

struct Shared {
    state: Mutex<State>,
    ready: Condvar,
    capacity: usize,
    file: Arc<SegmentedFile>,
    buffers: Arc<BufferPool>,
    done: Sender<Completion>,
    wake: Wake,
}

/// A bounded pool of reader threads over a [`SegmentedFile`].
pub struct IoPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for IoPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoPool")
            .field("threads", &self.workers.len())
            .field("capacity", &self.shared.capacity)
            .finish()
    }
}

impl IoPool {
    /// Starts `cfg.threads` readers. Completions go to the returned receiver; `wake` is called
    /// after each one is sent.
    pub fn new(
        file: Arc<SegmentedFile>,
        cfg: &IoPoolConfig,
        wake: impl Fn() + Send + Sync + 'static,
    ) -> Result<(IoPool, Receiver<Completion>), DiskError> {
        if cfg.threads == 0 || cfg.queue == 0 || !(1..=u16::MAX as usize).contains(&cfg.buffers) {
            return Err(DiskError::Config(format!("bad I/O pool sizing {cfg:?}")));
        }
        let (done, rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::with_capacity(cfg.queue),
                closed: false,
            }),
            ready: Condvar::new(),
            capacity: cfg.queue,
            buffers: BufferPool::new(cfg.buffers, cfg.buffer_bytes.max(file.alignment())),
            file,
            done,
            wake: Box::new(wake),
        });
        let mut workers = Vec::with_capacity(cfg.threads);
        for i in 0..cfg.threads {
            let s = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("hlog-io-{i}"))
                .spawn(move || s.run());
            match spawned {
                Ok(h) => workers.push(h),
                Err(e) => {
                    let pool = IoPool { shared, workers };
                    drop(pool);
                    return Err(DiskError::Io {
                        path: "hlog-io thread".into(),
                        offset: 0,
                        source: e,
                    });
                }
            }
        }
        Ok((IoPool { shared, workers }, rx))
    }

    /// Queues a read without blocking.
    pub fn submit(&self, req: ReadRequest) -> Result<(), SubmitError> {
        let s = &self.shared;
        let lease = if s.file.window_len(req.address, req.len) <= s.buffers.buf_bytes() {
            Some(s.buffers.acquire().ok_or(SubmitError::Full(req))?)
        } else {
            None
        };
        let mut st = s.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.closed {
            return Err(SubmitError::Closed(req));
        }
        if st.queue.len() >= s.capacity {
            return Err(SubmitError::Full(req));
        }
        st.queue.push_back(Job { req, lease });
        drop(st);
        s.ready.notify_one();
        Ok(())
    }

    /// Requests waiting for a reader.
    pub fn queued(&self) -> usize {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .queue
            .len()
    }

    /// The pool's read buffers.
    pub fn buffers(&self) -> &Arc<BufferPool> {
        &self.shared.buffers
    }
}

impl Drop for IoPool {
    /// Runs what is queued, then stops the readers.
    fn drop(&mut self) {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .closed = true;
        self.shared.ready.notify_all();
        for w in self.workers.drain(..) {
            if w.join().is_err() {
                log::error!("an hlog-io reader panicked");
            }
        }
    }
}

impl Shared {
    fn run(&self) {
        loop {
            let job = {
                let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    if let Some(job) = st.queue.pop_front() {
                        break job;
                    }
                    if st.closed {
                        return;
                    }
                    st = self.ready.wait(st).unwrap_or_else(|e| e.into_inner());
                }
            };
            let token = job.req.token;
            let result = self.read(job);
            // A dropped receiver means nobody waits for this read any more.
            let _ = self.done.send(Completion { token, result });
            (self.wake)();
        }
    }

    fn read(&self, job: Job) -> Result<ReadData, DiskError> {
        let ReadRequest { address, len, .. } = job.req;
        let mut storage = match job.lease {
            Some(lease) => Storage::Pooled(lease),
            None => Storage::Owned(AlignedBuf::new(
                self.file.window_len(address, len),
                self.file.alignment(),
            )),
        };
        let mem = match &mut storage {
            Storage::Pooled(l) => l.as_mut_slice(),
            Storage::Owned(b) => b.as_mut_slice(),
        };
        let (skip, len) = self.file.read_window(address, len, mem)?;
        Ok(ReadData { storage, skip, len })
    }
}
