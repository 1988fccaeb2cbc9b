//! The per-thread completion loop.
//!
//! Shape of one iteration (no recursion, one submit):
//! 1. arm what is missing (the multishot accept, the waker read) and walk the dirty list:
//!    start a send where output is pending and none is in flight, re-arm or cancel receives
//!    (backpressure, park), retire closing slots;
//! 2. publish recycled buffers, then submit everything and wait in one `io_uring_enter` for
//!    completions or the next tick (`submit_with_args` with a timeout). With many receives
//!    armed the wait asks for several completions with a short minimum wait (`wait_for`), so
//!    that a busy loop sleeps and wakes once per batch rather than once per request;
//! 3. copy the completion queue out in one batch and handle each completion: received bytes go
//!    to the state machine (which calls the service), sends advance the in-flight buffer;
//! 4. run the tick when due.
//!
//! A slot's kernel operations are tracked per connection (`UringIo`); a slot is released only
//! when its receive, its send and its fixed-file close have all completed, so a late
//! completion can never meet the slot's next occupant (and the generation in `user_data` checks
//! that it does not).

use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::time::{Duration, Instant};

use io_uring::types::{Fd, Fixed, SubmitArgs, Timespec};
use io_uring::{cqueue, opcode, squeue};

use super::Ring;
use super::bufring::{BGID, BufRing};
use super::disk::UringDisk;
use crate::disk;
use crate::errno::{self, Disposition};
use crate::machine::{Machine, Phase};
use crate::stats::bump;
use crate::user_data::{Op, UserData};
use crate::{DiskRead, Service, Waker};

/// Largest single send: the in-flight buffer is sent in pieces of at most this.
const MAX_SEND: usize = 1 << 30;
/// How long a stopping loop waits for the kernel to give back its operations.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// A wait for several completions gives up on the rest this long after it began, if one has
/// arrived by then (otherwise it returns at the first): the latency batching can add.
pub(super) const MIN_WAIT_USEC: u32 = 50;
/// A batched wait asks for one completion per this many armed receives.
const WAIT_SHARE: usize = 4;
/// Upper bound on the completions one wait asks for.
const MAX_WAIT_NR: usize = 256;
/// Rounds of dirty-list flushing per iteration before going back to the kernel.
const FLUSH_ROUNDS: usize = 16;

/// The kernel operations one connection has outstanding.
#[derive(Debug, Default)]
pub(crate) struct UringIo {
    recv_armed: bool,
    recv_cancelled: bool,
    send_in_flight: bool,
    send_cancelled: bool,
    shutdown_submitted: bool,
    close_submitted: bool,
    armed_once: bool,
}

/// A thread's ring, set up before the service is built (so failures reach `start`).
pub(crate) struct Prepared {
    ring: Ring,
    first_listener: u32,
}

impl Prepared {
    pub(crate) fn new(cfg: &crate::Config, listeners: &[TcpListener]) -> std::io::Result<Prepared> {
        let max_conns = cfg.max_connections_per_thread;
        let ring = Ring::new(max_conns + listeners.len())?;
        let first_listener = ring.install_listeners(listeners, max_conns)?;
        Ok(Prepared {
            ring,
            first_listener,
        })
    }

    /// Runs the loop until shutdown. `listeners` stay open for the loop's lifetime.
    pub(crate) fn run<S: Service>(
        self,
        machine: Machine<S, UringIo>,
        listeners: Vec<TcpListener>,
        waker: Waker,
        tick: Duration,
    ) {
        let Ring {
            ring,
            bufs,
            min_timeout: batch_waits,
            ..
        } = self.ring;
        let mut event_loop = Loop {
            ring,
            bufs,
            machine,
            first_listener: self.first_listener,
            waker_fd: waker.event_fd().as_raw_fd(),
            waker_buf: Box::new([0; 8]),
            accepts_armed: vec![false; listeners.len()],
            accept_backoff: false,
            waker_armed: false,
            stop_deadline: None,
            cqes: Vec::with_capacity(super::CQ_ENTRIES as usize),
            dirty: Vec::new(),
            recvs_armed: 0,
            batch_waits,
            disk: UringDisk::default(),
            disk_reads: Vec::new(),
        };
        let drained = event_loop.run(tick);
        let Loop {
            ring,
            bufs,
            waker_buf,
            machine,
            disk,
            ..
        } = event_loop;
        // The ring goes first: after it, the kernel holds no reference to our buffers.
        drop(ring);
        if drained {
            drop(bufs);
            drop(waker_buf);
            drop(disk);
        } else {
            // Operations were still outstanding when we gave up waiting: the kernel may yet
            // write into these, so leak them rather than free memory it could touch.
            log::warn!("reactor: leaking io_uring buffers of a loop that did not drain");
            std::mem::forget(bufs);
            std::mem::forget(waker_buf);
            std::mem::forget(disk);
        }
        drop(machine);
        drop(listeners);
        drop(waker);
    }
}

struct Loop<S: Service> {
    ring: io_uring::IoUring,
    bufs: BufRing,
    machine: Machine<S, UringIo>,
    /// The fixed file of listener 0; listener `i` is the `i`-th after it.
    first_listener: u32,
    waker_fd: RawFd,
    /// Where the waker's eventfd read lands; the kernel writes it while the read is armed.
    waker_buf: Box<[u8; 8]>,
    /// Whether each listener's multishot accept is in flight (its tag's slot is its index).
    accepts_armed: Vec<bool>,
    /// Accept failed for lack of resources: re-arm at the next tick, not in a tight loop.
    accept_backoff: bool,
    waker_armed: bool,
    stop_deadline: Option<Instant>,
    /// One batch of completions, copied out of the ring before any is handled.
    cqes: Vec<(u64, i32, u32)>,
    dirty: Vec<u32>,
    /// Multishot receives in flight: how many completions a wait can hope to batch.
    recvs_armed: usize,
    /// The kernel takes a minimum wait (`IORING_FEAT_MIN_TIMEOUT`): waits batch completions.
    batch_waits: bool,
    disk: UringDisk,
    /// Scratch: the disk reads the service asked for in the last callbacks.
    disk_reads: Vec<DiskRead>,
}

impl<S: Service> Loop<S> {
    /// Returns whether every operation was given back by the kernel.
    fn run(&mut self, tick: Duration) -> bool {
        let mut next_tick = Instant::now() + tick;
        loop {
            if self.stop_deadline.is_none() && self.machine.shutdown_requested() {
                self.begin_stop();
            }
            if let Some(deadline) = self.stop_deadline {
                if self.drained() {
                    return true;
                }
                if Instant::now() >= deadline {
                    return false;
                }
            }
            self.arm_globals();
            self.flush_dirty();
            self.start_disk_reads();
            self.bufs.publish();
            let wake_at = match self.stop_deadline {
                Some(_) => next_tick.min(Instant::now() + Duration::from_millis(10)),
                // A read that failed at once (an invalid request) resumed a connection that asked
                // for more: go round again without sleeping.
                None if self.machine.has_disk_reads() => Instant::now(),
                None => next_tick,
            };
            self.submit_and_wait(wake_at);
            self.reap();
            let now = Instant::now();
            if now >= next_tick {
                next_tick = now + tick;
                self.accept_backoff = false;
                if self.stop_deadline.is_none() {
                    self.machine.tick();
                }
            }
        }
    }

    fn begin_stop(&mut self) {
        self.stop_deadline = Some(Instant::now() + STOP_GRACE);
        self.machine.close_all();
        for listener in 0..self.accepts_armed.len() {
            if self.accepts_armed[listener] {
                self.cancel(UserData::accept(listener));
            }
        }
        if self.waker_armed {
            self.cancel(UserData::global(Op::WakerRead));
        }
    }

    fn drained(&self) -> bool {
        self.machine.is_empty()
            && !self.accepts_armed.contains(&true)
            && !self.waker_armed
            && self.disk.in_flight() == 0
    }

    /// Queues the disk reads the service asked for and submits those a buffer is free for.
    fn start_disk_reads(&mut self) {
        self.machine.take_disk_reads(&mut self.disk_reads);
        let mut reads = std::mem::take(&mut self.disk_reads);
        for read in reads.drain(..) {
            match disk::check(&read) {
                Ok(()) => self.disk.queue(read, &self.ring.submitter()),
                Err(err) => self.machine.disk_read_done(read.tag, Err(err)),
            }
        }
        self.disk_reads = reads;
        while let Some(entry) = self.disk.next_entry() {
            // SAFETY: the entry points into a read buffer owned by `self.disk`, which is not
            // touched until its completion and outlives the ring (or is leaked with it).
            unsafe { self.push(entry) };
        }
    }

    /// A disk read completed: hand the bytes (or the error) to the service.
    fn on_disk_read(&mut self, ud: UserData, result: i32) {
        let Some((read, buf)) = self.disk.finished(ud.slot) else {
            debug_assert!(false, "disk read completion for an idle buffer: {ud:?}");
            return;
        };
        let result = match usize::try_from(result) {
            Ok(n) => Ok(&buf.bytes()[..n.min(read.len as usize)]),
            Err(_) => Err(std::io::Error::from_raw_os_error(-result)),
        };
        self.machine.disk_read_done(read.tag, result);
        self.disk.release(ud.slot);
    }

    /// Queues an SQE, submitting (without waiting) if the submission queue is full.
    ///
    /// # Safety
    ///
    /// Every buffer `entry` points to must stay valid, and not be written by us, until its
    /// completion arrives.
    unsafe fn push(&mut self, entry: squeue::Entry) {
        loop {
            // SAFETY: forwarded from this function's contract.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return;
            }
            if let Err(err) = self.ring.submit() {
                log::error!("reactor: io_uring submit failed: {err}");
                std::thread::yield_now();
            }
        }
    }

    fn cancel(&mut self, target: UserData) {
        bump(&self.machine.counters().cancels, 1);
        let entry = opcode::AsyncCancel::new(target.pack()).build().user_data(
            UserData {
                op: Op::Cancel,
                ..target
            }
            .pack(),
        );
        // SAFETY: a cancel names its target by user_data and points to no buffer.
        unsafe { self.push(entry) };
    }

    fn arm_globals(&mut self) {
        if self.stop_deadline.is_some() {
            return;
        }
        for listener in 0..self.accepts_armed.len() {
            if self.accepts_armed[listener] || self.accept_backoff {
                continue;
            }
            // Accepted sockets come back as regular fds (see the module docs of `uring`).
            let file = self.first_listener + listener as u32;
            let entry = opcode::AcceptMulti::new(Fixed(file))
                .flags(libc::SOCK_CLOEXEC)
                .build()
                .user_data(UserData::accept(listener).pack());
            // SAFETY: a multishot accept without addresses points to no buffer.
            unsafe { self.push(entry) };
            self.accepts_armed[listener] = true;
        }
        if !self.waker_armed {
            let entry = opcode::Read::new(Fd(self.waker_fd), self.waker_buf.as_mut_ptr(), 8)
                .build()
                .user_data(UserData::global(Op::WakerRead).pack());
            // SAFETY: `waker_buf` is a heap allocation owned by the loop, not read or freed
            // while the read is armed (the loop leaks it if the read never completes), and the
            // eventfd outlives the loop (the thread holds a `Waker`).
            unsafe { self.push(entry) };
            self.waker_armed = true;
        }
    }

    fn submit_and_wait(&mut self, wake_at: Instant) {
        let timeout = Timespec::from(wake_at.saturating_duration_since(Instant::now()));
        let want = self.wait_for();
        let mut args = SubmitArgs::new().timespec(&timeout);
        if want > 1 {
            args = args.min_wait_usec(MIN_WAIT_USEC);
        }
        match self.ring.submitter().submit_with_args(want, &args) {
            Ok(_) => {}
            Err(err) => match err.raw_os_error() {
                // Timed out (the tick is due), interrupted, or completions to reap first.
                Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN) => {}
                _ => {
                    log::error!("reactor: io_uring_enter failed: {err}");
                    debug_assert!(false, "io_uring_enter failed: {err}");
                    std::thread::sleep(Duration::from_millis(1));
                }
            },
        }
    }

    /// How many completions to wait for: one in a quiet loop, a share of the armed receives
    /// when many connections are active. Waiting for more than one is what saves the sleep
    /// and wake-up per request at `-P 1`: with defer-taskrun the kernel wakes us only once
    /// that many completions are queued, or after `MIN_WAIT_USEC` if at least one is.
    fn wait_for(&self) -> usize {
        if !self.batch_waits || self.stop_deadline.is_some() {
            return 1;
        }
        (self.recvs_armed / WAIT_SHARE).clamp(1, MAX_WAIT_NR)
    }

    /// Copies every available completion out, then handles them one by one.
    fn reap(&mut self) {
        let mut batch = std::mem::take(&mut self.cqes);
        loop {
            batch.clear();
            batch.extend(
                self.ring
                    .completion()
                    .map(|c| (c.user_data(), c.result(), c.flags())),
            );
            if batch.is_empty() {
                break;
            }
            for &(user_data, result, flags) in &batch {
                self.complete(user_data, result, flags);
            }
        }
        self.cqes = batch;
    }

    fn complete(&mut self, user_data: u64, result: i32, flags: u32) {
        let Some(ud) = UserData::unpack(user_data) else {
            debug_assert!(false, "completion with unknown user_data {user_data:#x}");
            return;
        };
        match ud.op {
            Op::Accept => self.on_accept(ud.slot as usize, result, flags),
            Op::WakerRead => self.on_waker(result),
            Op::Recv => self.on_recv(ud, result, flags),
            Op::Send => self.on_send(ud, result),
            Op::Close => self.on_close(ud, result),
            Op::Cancel | Op::Shutdown => self.on_cancel(ud, result),
            Op::DiskRead => self.on_disk_read(ud, result),
            Op::Timeout => debug_assert!(false, "no timeout SQEs are submitted"),
        }
    }
}

#[path = "handlers.rs"]
mod handlers;
