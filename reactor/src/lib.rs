//! The reactor: one thread per core, each running a hand-written completion loop over its own
//! io_uring (or, where io_uring is unavailable, a readiness loop over epoll) that accepts
//! connections, receives bytes, hands them to a [`Service`] and sends what the service wrote.
//!
//! The reactor knows no protocol and no store. The service is the connection state machine; it
//! does not know which backend runs it.
//!
//! Layout: `machine` holds the backend-neutral connection state machine (when to call the
//! service, backpressure, park/resume, close-after-flush); `uring` and `epoll` only move bytes
//! and report completions or readiness to it. `conn` owns the per-connection buffers,
//! `user_data` the packing of op | slot | generation that both backends use to tag kernel
//! events, `errno` the one place where OS errors become decisions.

mod conn;
mod disk;
mod epoll;
mod errno;
mod listener;
mod machine;
mod runtime;
mod stats;
mod uring;
mod user_data;
mod waker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use disk::{DISK_ALIGN, DiskRead, MAX_DISK_READ};
pub use stats::Stats;

/// Identifies a connection within one reactor thread: slot and generation, so that a late
/// completion or a stale handle never reaches the slot's next occupant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token {
    /// Slot in the thread's connection table.
    pub slot: u32,
    /// Generation of the slot when the connection was accepted.
    pub generation: u32,
}

/// What the reactor does with a connection after the service consumed input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Keep receiving.
    Continue,
    /// Stop calling `input` for this connection until [`Ctl::resume`] (a parked command: a disk
    /// read or a blocking pop). Bytes that arrive meanwhile are buffered, within limits.
    Park,
    /// Send what is pending, then close.
    CloseAfterFlush,
    /// Close now, dropping unsent output.
    CloseNow,
}

/// The result of one `input` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consumed {
    /// Bytes of the input the service has finished with (a prefix).
    pub bytes: usize,
    /// What next.
    pub after: After,
}

/// What the service can ask of its thread's reactor from inside a callback.
pub trait Ctl {
    /// Call `input` again for `token` (after [`After::Park`]); harmless for a closed token.
    fn resume(&mut self, token: Token);
    /// Close `token` after flushing what it has pending.
    fn close(&mut self, token: Token);
    /// Ask every reactor thread to stop (SHUTDOWN, SIGTERM).
    fn shutdown(&mut self);
    /// Index of this reactor thread, `0..threads`.
    fn thread_index(&self) -> usize;
    /// Read file bytes without blocking this thread; the result comes back through
    /// [`Service::disk_read_done`] with `read.tag`, on this thread.
    fn read_disk(&mut self, read: DiskRead);
    /// During [`Service::accept`]: the new connection's file descriptor, where it has one in
    /// the process's table (epoll). `None` on io_uring, whose sockets live only in the ring's
    /// fixed-file table once installed.
    fn accepting_fd(&self) -> Option<i32> {
        None
    }
}

/// One thread's connection state machine. Every method runs on that thread.
pub trait Service {
    /// Per-connection state.
    type Conn;

    /// A connection arrived. Return `None` to refuse it: the reactor sends what was written to
    /// `out` (e.g. `-ERR max number of clients reached`) and closes.
    fn accept(
        &mut self,
        ctl: &mut dyn Ctl,
        token: Token,
        peer: Option<SocketAddr>,
        local: Option<SocketAddr>,
        out: &mut Vec<u8>,
    ) -> Option<Self::Conn>;

    /// Bytes arrived. `input` is everything received and not yet consumed; the service appends
    /// replies to `out` and says how much of `input` it consumed. Replies of one tick leave in
    /// one send.
    fn input(
        &mut self,
        ctl: &mut dyn Ctl,
        token: Token,
        conn: &mut Self::Conn,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Consumed;

    /// The connection is gone (peer closed, error, or closed on request).
    fn closed(&mut self, token: Token, conn: Self::Conn);

    /// Periodic work (server cron: active expiry, statistics); called about every `tick()`.
    fn tick(&mut self, ctl: &mut dyn Ctl);

    /// Called for every connection after `tick` and after a cross-thread wake: returns whether to
    /// keep it (idle timeout, CLIENT KILL from another thread), and may append to `out`.
    fn poll(&mut self, token: Token, conn: &mut Self::Conn, out: &mut Vec<u8>) -> After;

    /// Another thread woke this one through its [`Waker`] (a mailbox message is waiting).
    fn woken(&mut self, ctl: &mut dyn Ctl);

    /// A read asked for with [`Ctl::read_disk`] finished: `result` holds the bytes read (fewer
    /// than asked at the end of the file) or the error. The bytes are the reactor's buffer,
    /// valid only during the call. A service that never reads from disk keeps the default.
    fn disk_read_done(&mut self, ctl: &mut dyn Ctl, tag: u64, result: std::io::Result<&[u8]>) {
        let _ = (ctl, tag, result);
        debug_assert!(
            false,
            "a disk read completed for a service that reads no disk"
        );
    }
}

/// Which I/O backend runs the loops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// io_uring where it can be set up, else epoll with a warning in the log.
    Auto,
    /// io_uring only (start-up fails where it cannot be set up).
    Uring,
    /// epoll readiness loop.
    Epoll,
}

/// Most addresses a reactor listens on (Redis's `CONFIG_BINDADDR_MAX`).
pub const MAX_BIND_ADDRS: usize = 16;

/// One address to listen on, as an entry of Redis's `bind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindAddr {
    /// The address (its port 0: the first address's port, picked by the kernel).
    pub addr: SocketAddr,
    /// Redis's `-` prefix: an address the machine does not have is skipped, not an error.
    pub optional: bool,
}

impl From<SocketAddr> for BindAddr {
    fn from(addr: SocketAddr) -> BindAddr {
        BindAddr {
            addr,
            optional: false,
        }
    }
}

/// Reactor sizing, fixed at start-up.
#[derive(Debug, Clone)]
pub struct Config {
    /// Reactor threads (one per core by default).
    pub threads: usize,
    /// Addresses to listen on (at least one); every thread accepts on each (SO_REUSEPORT).
    pub bind: Vec<BindAddr>,
    /// I/O backend.
    pub backend: Backend,
    /// Pin thread i to core i.
    pub pin_threads: bool,
    /// How often `Service::tick` runs.
    pub tick: Duration,
    /// Stop receiving from a connection whose unsent output exceeds this many bytes
    /// (backpressure); resume below half of it.
    pub max_pending_output: usize,
    /// Upper bound on connections per thread (the connection table is sized once).
    pub max_connections_per_thread: usize,
}

/// Wakes one reactor thread from any thread (an eventfd the loop watches).
#[derive(Debug, Clone)]
pub struct Waker {
    /// Shared with every clone: the eventfd lives as long as any handle to it.
    fd: Arc<nix::sys::eventfd::EventFd>,
}

impl Waker {
    /// Makes the thread call `Service::woken` soon.
    pub fn wake(&self) {
        waker::wake(&self.fd);
    }
}

/// Errors starting the reactor.
#[derive(Debug, thiserror::Error)]
pub enum ReactorError {
    /// The listening socket could not be set up (address in use, permission, bad address).
    #[error("could not listen on {addr}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Every address of `bind` was skipped (see [`BindAddr::optional`]).
    #[error("Configured to not listen anywhere")]
    NowhereToListen,
    /// io_uring was required but could not be set up.
    #[error("io_uring is not available: {0}")]
    UringUnavailable(std::io::Error),
    /// Any other start-up failure.
    #[error("reactor start-up failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The running reactor threads.
///
/// Dropping it without [`Running::shutdown`] leaves the threads running (detached).
pub struct Running {
    /// The backend every thread runs (never `Auto`).
    backend: Backend,
    local_addrs: Vec<SocketAddr>,
    shared: Arc<runtime::Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Running {
    /// The backend the threads use.
    pub fn backend(&self) -> Backend {
        self.backend
    }
    /// The first address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addrs[0]
    }
    /// Every address listened on, in `bind`'s order (those skipped are not).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }
    /// Asks every thread to stop; returns at once.
    pub fn shutdown(&self) {
        self.shared.request_shutdown();
    }
    /// Waits for every thread to stop.
    pub fn join(self) -> std::thread::Result<()> {
        let mut result = Ok(());
        for handle in self.threads {
            if let Err(panic) = handle.join()
                && result.is_ok()
            {
                result = Err(panic);
            }
        }
        result
    }
    /// The wakers of every thread (`wakers()[i]` wakes thread `i`), e.g. for a signal thread.
    pub fn wakers(&self) -> &[Waker] {
        &self.shared.wakers
    }
    /// Event counters summed over every thread (relaxed reads: a consistent total is not
    /// promised while the loops run).
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }
    /// Event counters of each thread, indexed by thread.
    pub fn thread_stats(&self) -> Vec<Stats> {
        self.shared.thread_stats()
    }
}

/// Binds the listeners (so that "address in use" is a start-up error), then starts
/// `cfg.threads` threads; thread `i` builds its service with `make(i, wakers)` on itself, where
/// `wakers[j]` wakes thread `j`.
pub fn start<S, F>(cfg: Config, make: F) -> Result<Running, ReactorError>
where
    S: Service + 'static,
    F: Fn(usize, &[Waker]) -> S + Send + Sync + 'static,
{
    runtime::start(cfg, make)
}
