//! Whether the flusher can write: a full disk or a failing device must not hang the store.
//!
//! Pages leave memory only once they are on disk, so while every write fails the log cannot
//! shed pages. Writers that would wait for the flusher stop waiting once it reports a failure
//! (memory then goes a little over its budget), and the command layer refuses write commands
//! while the log is over budget, as Redis answers `-MISCONF` when its AOF cannot be written.
//! The flusher keeps retrying on each pass; its first successful write clears the failure.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// How often a failure that persists is logged again.
const LOG_EVERY_MS: u64 = 30_000;

/// The state of the flusher's writes.
#[derive(Debug, Default)]
pub(crate) struct WriteHealth {
    /// 0 while writes succeed; else the OS error number of the last failed write (`EIO` for a
    /// failure without one).
    errno: AtomicI32,
    /// When a failure was last logged (Unix ms).
    logged_ms: AtomicU64,
}

impl WriteHealth {
    /// Records a failed write of `what`; logs it when writes start failing and every 30 s
    /// while they keep failing (the flusher retries every few milliseconds).
    pub(crate) fn failed(&self, what: std::fmt::Arguments<'_>, err: &std::io::Error) {
        // The disk layer reports a full disk by kind (its message names the file).
        let errno = match (err.raw_os_error(), err.kind()) {
            (Some(e), _) => e,
            (None, std::io::ErrorKind::StorageFull) => libc::ENOSPC,
            (None, std::io::ErrorKind::QuotaExceeded) => libc::EDQUOT,
            (None, _) => libc::EIO,
        };
        let was = self.errno.swap(errno, Ordering::Relaxed);
        let now = now_ms();
        let last = self.logged_ms.load(Ordering::Relaxed);
        if was == 0 || now.saturating_sub(last) >= LOG_EVERY_MS {
            self.logged_ms.store(now, Ordering::Relaxed);
            log::error!(
                "disk tier: writing {what} failed: {err}; writes are refused while memory is \
                 over its budget, until the disk takes writes again"
            );
        }
    }

    /// Records a successful write.
    pub(crate) fn succeeded(&self) {
        if self.errno.load(Ordering::Relaxed) != 0 && self.errno.swap(0, Ordering::Relaxed) != 0 {
            log::warn!("disk tier: writes succeed again");
        }
    }

    /// The OS error of the failing writes, if the last one failed.
    pub(crate) fn error(&self) -> Option<i32> {
        match self.errno.load(Ordering::Relaxed) {
            0 => None,
            e => Some(e),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_kept_until_a_write_succeeds() {
        let h = WriteHealth::default();
        assert_eq!(h.error(), None);
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        h.failed(format_args!("page 1"), &full);
        h.failed(format_args!("page 1"), &full);
        assert_eq!(h.error(), Some(libc::ENOSPC));
        h.failed(format_args!("page 1"), &std::io::Error::other("no errno"));
        assert_eq!(h.error(), Some(libc::EIO));
        let by_kind = std::io::Error::new(std::io::ErrorKind::StorageFull, "hlog.0 is full");
        h.failed(format_args!("page 1"), &by_kind);
        assert_eq!(h.error(), Some(libc::ENOSPC));
        h.succeeded();
        assert_eq!(h.error(), None);
    }
}
