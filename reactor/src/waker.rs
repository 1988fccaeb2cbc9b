//! The cross-thread waker: one eventfd per reactor thread.
//!
//! The eventfd is *blocking*: io_uring completes a read on an `O_NONBLOCK` file with `EAGAIN`
//! instead of waiting for it, and the epoll loop only reads it after readiness (one reader, level
//! triggered), so the read never blocks there either. A write blocks only if the counter would
//! pass 2^64 - 2, which a wake-up of 1 per call cannot reach.

use std::sync::Arc;

use nix::sys::eventfd::{EfdFlags, EventFd};

use crate::Waker;

/// Creates a waker and its eventfd.
pub(crate) fn new() -> std::io::Result<Waker> {
    let fd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC)?;
    Ok(Waker { fd: Arc::new(fd) })
}

/// Adds one to the eventfd counter; the reactor reads (and so resets) it.
pub(crate) fn wake(fd: &EventFd) {
    if let Err(err) = fd.write(1) {
        // Cannot happen short of a closed fd; a lost wake-up is recovered by the next tick.
        log::warn!("reactor: waking a thread failed: {err}");
    }
}

impl Waker {
    /// The eventfd the owning loop watches.
    pub(crate) fn event_fd(&self) -> &EventFd {
        &self.fd
    }
}
