//! Disk reads on behalf of the service, without blocking the reactor thread.
//!
//! A command whose record lives below the store's head address parks, and the service asks its
//! reactor for the bytes with [`Ctl::read_disk`](crate::Ctl::read_disk). The reactor reads them
//! into one of its own page-aligned buffers (so the file may be opened with `O_DIRECT`) and
//! hands them to [`Service::disk_read_done`](crate::Service::disk_read_done), which resumes the
//! command.
//!
//! - io_uring: the buffers are registered with the ring (`register_buffers`) and each read is a
//!   `ReadFixed` on the thread's own ring, reaped with the network completions. Where the
//!   kernel refuses the registration (a low `RLIMIT_MEMLOCK`), plain `Read`s into the same
//!   buffers are used.
//! - epoll: readiness says nothing useful about regular files, so a few I/O threads per reactor
//!   thread (`pread`) do the reads and wake the loop through its eventfd.
//!
//! Reads beyond the buffers available wait in a FIFO queue inside the reactor; the service
//! never sees "busy".

use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use crate::Waker;

/// Alignment of read buffers, offsets and lengths for `O_DIRECT` files.
pub const DISK_ALIGN: usize = 4096;
/// Largest single read; the service splits bigger ones.
pub const MAX_DISK_READ: usize = 128 * 1024;
/// Read buffers per reactor thread (reads in flight at once).
pub(crate) const READ_BUFFERS: usize = 32;

/// A read of `len` bytes at `offset` of the regular file `fd`, requested by the service.
///
/// For a file opened with `O_DIRECT`, `offset` and `len` must be multiples of the device's
/// block size (every size up to [`DISK_ALIGN`] divides the buffers' alignment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskRead {
    /// An open regular file; it must stay open until the read completes.
    pub fd: RawFd,
    /// Byte offset in the file.
    pub offset: u64,
    /// Bytes to read, at most [`MAX_DISK_READ`].
    pub len: u32,
    /// The service's name for this read, handed back on completion.
    pub tag: u64,
}

/// A zeroed, [`DISK_ALIGN`]-aligned heap buffer of [`MAX_DISK_READ`] bytes.
pub(crate) struct AlignedBuf {
    ptr: NonNull<u8>,
}

// SAFETY: the buffer is plain owned memory; whoever owns the `AlignedBuf` owns the bytes.
unsafe impl Send for AlignedBuf {}

impl AlignedBuf {
    fn layout() -> std::alloc::Layout {
        std::alloc::Layout::from_size_align(MAX_DISK_READ, DISK_ALIGN).expect("valid layout")
    }

    pub(crate) fn new() -> AlignedBuf {
        let layout = Self::layout();
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        AlignedBuf { ptr }
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The whole buffer.
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` owns MAX_DISK_READ initialised (zeroed, then written) bytes.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), MAX_DISK_READ) }
    }

    /// The `iovec` that registers this buffer with io_uring.
    pub(crate) fn iovec(&mut self) -> libc::iovec {
        libc::iovec {
            iov_base: self.as_mut_ptr().cast(),
            iov_len: MAX_DISK_READ,
        }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), Self::layout()) }
    }
}

/// Refuses a read the reactor cannot perform (too long, or empty) with `EINVAL`, as the
/// kernel would refuse a misaligned one.
pub(crate) fn check(read: &DiskRead) -> Result<(), std::io::Error> {
    if read.len == 0 || read.len as usize > MAX_DISK_READ {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    Ok(())
}

/// One finished read on the epoll backend: the request, the buffer and `pread`'s result.
pub(crate) struct Finished {
    pub(crate) read: DiskRead,
    pub(crate) buf: AlignedBuf,
    pub(crate) result: std::io::Result<usize>,
}

struct PoolState {
    jobs: VecDeque<(DiskRead, AlignedBuf)>,
    stop: bool,
}

struct PoolShared {
    state: Mutex<PoolState>,
    work: Condvar,
    done: Mutex<Vec<Finished>>,
    /// Set with each finished read, cleared by the loop when it drains them: a cheap check per
    /// loop iteration.
    has_done: AtomicBool,
    waker: Waker,
}

/// The epoll backend's I/O threads: `pread`s into the reactor's buffers, then a wake.
pub(crate) struct IoThreads {
    shared: Arc<PoolShared>,
    threads: Vec<std::thread::JoinHandle<()>>,
    free: Vec<AlignedBuf>,
    queued: VecDeque<DiskRead>,
    in_flight: usize,
}

impl IoThreads {
    /// Starts `threads` I/O threads that wake the loop through `waker`. No thread is started
    /// until the first read (most servers never read from disk).
    pub(crate) fn new(waker: Waker) -> IoThreads {
        IoThreads {
            shared: Arc::new(PoolShared {
                state: Mutex::new(PoolState {
                    jobs: VecDeque::new(),
                    stop: false,
                }),
                work: Condvar::new(),
                done: Mutex::new(Vec::new()),
                has_done: AtomicBool::new(false),
                waker,
            }),
            threads: Vec::new(),
            free: Vec::new(),
            queued: VecDeque::new(),
            in_flight: 0,
        }
    }

    fn start_threads(&mut self) {
        const THREADS: usize = 2;
        for i in 0..THREADS {
            let shared = Arc::clone(&self.shared);
            let spawned = std::thread::Builder::new()
                .name(format!("ferrite-io-{i}"))
                .spawn(move || io_thread(&shared));
            match spawned {
                Ok(handle) => self.threads.push(handle),
                Err(err) => log::error!("reactor: cannot start an I/O thread: {err}"),
            }
        }
        self.free
            .extend((0..READ_BUFFERS).map(|_| AlignedBuf::new()));
    }

    /// Queues a read; it is handed to an I/O thread as soon as a buffer is free.
    pub(crate) fn submit(&mut self, read: DiskRead) {
        if self.threads.is_empty() {
            self.start_threads();
        }
        self.queued.push_back(read);
        self.dispatch();
    }

    fn dispatch(&mut self) {
        if self.queued.is_empty() || self.free.is_empty() {
            return;
        }
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(buf) = self.free.pop() {
            let Some(read) = self.queued.pop_front() else {
                self.free.push(buf);
                break;
            };
            state.jobs.push_back((read, buf));
            self.in_flight += 1;
        }
        drop(state);
        self.shared.work.notify_all();
    }

    /// Whether reads have finished since the last [`IoThreads::take_finished`].
    pub(crate) fn has_finished(&self) -> bool {
        self.shared.has_done.load(Ordering::Acquire)
    }

    /// Moves the finished reads into `into`.
    pub(crate) fn take_finished(&mut self, into: &mut Vec<Finished>) {
        self.shared.has_done.store(false, Ordering::Release);
        let mut done = self.shared.done.lock().unwrap_or_else(|e| e.into_inner());
        self.in_flight -= done.len();
        into.append(&mut done);
    }

    /// Takes a buffer back after its completion was handled, and starts queued reads.
    pub(crate) fn recycle(&mut self, buf: AlignedBuf) {
        self.free.push(buf);
        self.dispatch();
    }
}

impl Drop for IoThreads {
    fn drop(&mut self) {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stop = true;
        self.shared.work.notify_all();
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
    }
}

fn io_thread(shared: &PoolShared) {
    loop {
        let (read, mut buf) = {
            let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(job) = state.jobs.pop_front() {
                    break job;
                }
                if state.stop {
                    return;
                }
                state = shared.work.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        };
        let result = pread(&read, &mut buf);
        shared
            .done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Finished { read, buf, result });
        shared.has_done.store(true, Ordering::Release);
        shared.waker.wake();
    }
}

/// One `pread`, retried on EINTR. A short count means end of file.
fn pread(read: &DiskRead, buf: &mut AlignedBuf) -> std::io::Result<usize> {
    check(read)?;
    let len = read.len as usize;
    let offset = libc::off_t::try_from(read.offset)
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    loop {
        // SAFETY: the buffer holds MAX_DISK_READ >= len writable bytes that we own; `fd` is the
        // service's open file (a closed fd only makes pread fail with EBADF).
        let n = unsafe { libc::pread(read.fd, buf.as_mut_ptr().cast(), len, offset) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    #[test]
    fn aligned_buffers_are_aligned_and_zeroed() {
        let mut b = AlignedBuf::new();
        assert_eq!(b.as_mut_ptr() as usize % DISK_ALIGN, 0);
        assert!(b.bytes().iter().all(|&x| x == 0));
        let iov = b.iovec();
        assert_eq!(iov.iov_len, MAX_DISK_READ);
        // SAFETY: the iovec covers the buffer, which nothing else borrows now.
        unsafe { *iov.iov_base.cast::<u8>().add(MAX_DISK_READ - 1) = 7 };
        assert_eq!(b.bytes()[MAX_DISK_READ - 1], 7);
    }

    #[test]
    fn pread_reads_and_reports_eof_and_errors() {
        let path = std::env::temp_dir().join(format!("ferrite-disk-{}", std::process::id()));
        let mut f = std::fs::File::create(&path).unwrap();
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        f.write_all(&data).unwrap();
        let f = std::fs::File::open(&path).unwrap();
        let mut buf = AlignedBuf::new();
        let read = DiskRead {
            fd: f.as_raw_fd(),
            offset: 4096,
            len: 8192,
            tag: 1,
        };
        let n = pread(&read, &mut buf).unwrap();
        assert_eq!(n, 10_000 - 4096, "a short read at the end of the file");
        assert_eq!(&buf.bytes()[..n], &data[4096..]);
        let too_long = DiskRead {
            len: MAX_DISK_READ as u32 + 1,
            ..read
        };
        assert!(pread(&too_long, &mut buf).is_err());
        let bad_fd = DiskRead { fd: -1, ..read };
        assert!(pread(&bad_fd, &mut buf).is_err());
        std::fs::remove_file(&path).unwrap();
    }
}
