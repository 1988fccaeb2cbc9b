//! The one place where an OS error becomes a decision.
//!
//! Everything the loops get back from the kernel (a negative CQE result, a failed `recv`,
//! `send` or `accept4`) goes through [`classify`]; the backends act on the [`Disposition`] and
//! never match on raw error numbers themselves.

/// What to do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// Transient (EINTR, EAGAIN): resubmit or wait for the next readiness.
    Retry,
    /// The operation was cancelled on our request: nothing to do.
    Cancelled,
    /// The peer or the network ended the connection: close it quietly.
    CloseQuietly,
    /// Out of a kernel resource (file descriptors, memory, buffers): log, keep going, retry later.
    Exhausted,
    /// We passed something wrong (EFAULT, EINVAL, EBADF, ENOTSOCK): a bug in the reactor.
    /// Debug builds stop; release builds close the connection.
    Bug,
    /// Anything else: log and close the connection.
    Other,
}

/// Classifies a positive errno value.
pub(crate) fn classify(errno: i32) -> Disposition {
    match errno {
        libc::EINTR | libc::EAGAIN => Disposition::Retry,
        libc::ECANCELED => Disposition::Cancelled,
        libc::ECONNRESET
        | libc::EPIPE
        | libc::ECONNABORTED
        | libc::ETIMEDOUT
        | libc::ENOTCONN
        | libc::EHOSTUNREACH
        | libc::ENETUNREACH
        | libc::ENETDOWN
        | libc::ESHUTDOWN
        | libc::ECONNREFUSED => Disposition::CloseQuietly,
        libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM => Disposition::Exhausted,
        libc::EFAULT | libc::EINVAL | libc::EBADF | libc::ENOTSOCK => Disposition::Bug,
        _ => Disposition::Other,
    }
}

/// Logs an error on a connection at the level its disposition deserves, and asserts (in debug
/// builds) that it is not one of ours.
pub(crate) fn report(what: &str, errno: i32) -> Disposition {
    let disposition = classify(errno);
    let err = std::io::Error::from_raw_os_error(errno);
    match disposition {
        Disposition::Retry | Disposition::Cancelled | Disposition::CloseQuietly => {
            log::debug!("reactor: {what}: {err}");
        }
        Disposition::Exhausted | Disposition::Other => log::warn!("reactor: {what}: {err}"),
        Disposition::Bug => {
            log::error!("reactor: {what}: {err} (a reactor bug)");
            debug_assert!(false, "reactor bug: {what}: {err}");
        }
    }
    disposition
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(classify(libc::EINTR), Disposition::Retry);
        assert_eq!(classify(libc::EAGAIN), Disposition::Retry);
        assert_eq!(classify(libc::ECONNRESET), Disposition::CloseQuietly);
        assert_eq!(classify(libc::EPIPE), Disposition::CloseQuietly);
        assert_eq!(classify(libc::EMFILE), Disposition::Exhausted);
        assert_eq!(classify(libc::ENFILE), Disposition::Exhausted);
        assert_eq!(classify(libc::EBADF), Disposition::Bug);
        assert_eq!(classify(libc::EFAULT), Disposition::Bug);
        assert_eq!(classify(libc::ECANCELED), Disposition::Cancelled);
        assert_eq!(classify(libc::EIO), Disposition::Other);
    }
}
