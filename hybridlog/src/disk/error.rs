//! The disk layer's errors, and the one place where an errno becomes one of them.

use std::io;
use std::path::{Path, PathBuf};

/// Everything the disk layer can fail with. I/O failures (including a full disk) are values:
/// nothing in this module panics on a failed system call or on what it reads from a file.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// The file system is full (`ENOSPC`) or a quota is exhausted (`EDQUOT`). Nothing after
    /// `offset` was written; freeing space and retrying the same write is safe.
    #[error("no space left on device writing {} at offset {offset}", path.display())]
    NoSpace {
        /// The file being written.
        path: PathBuf,
        /// Where the write stopped.
        offset: u64,
    },
    /// Any other failed system call.
    #[error("I/O error on {} at offset {offset}: {source}", path.display())]
    Io {
        /// The file (or directory) concerned.
        path: PathBuf,
        /// The file offset of the operation (0 when not applicable).
        offset: u64,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The address lies below the device's begin address: its segment was deleted by
    /// `truncate_until`.
    #[error("address {address} is below the on-disk begin address {begin} (truncated)")]
    Truncated {
        /// The address asked for.
        address: u64,
        /// The lowest address still on disk.
        begin: u64,
    },
    /// A write's address, length or buffer violates the device's alignment.
    #[error("address {address} / length {len} is not a multiple of the {align}-byte block")]
    Unaligned {
        /// The address asked for.
        address: u64,
        /// The length asked for.
        len: usize,
        /// The alignment required.
        align: usize,
    },
    /// The address lies in a segment that has never been written (asynchronous reads only:
    /// synchronous reads report it as end of file).
    #[error("address {address} is in segment {segment}, which does not exist")]
    NoSegment {
        /// The address asked for.
        address: u64,
        /// Its segment number.
        segment: u64,
    },
    /// The address is beyond the largest log address.
    #[error("address range {address} + {len} is outside the log address space")]
    OutOfRange {
        /// The address asked for.
        address: u64,
        /// The length asked for.
        len: usize,
    },
    /// Invalid sizing or directory.
    #[error("invalid disk configuration: {0}")]
    Config(String),
}

impl DiskError {
    /// Translates a failed operation on `path` at `offset`. `EINTR` never gets here: the I/O
    /// loops retry it.
    pub(crate) fn io(source: io::Error, path: &Path, offset: u64) -> DiskError {
        match source.raw_os_error() {
            Some(libc::ENOSPC | libc::EDQUOT) => DiskError::NoSpace {
                path: path.to_path_buf(),
                offset,
            },
            _ => DiskError::Io {
                path: path.to_path_buf(),
                offset,
                source,
            },
        }
    }

    /// Whether this is a full disk (the flusher backs off and retries rather than failing).
    pub fn is_no_space(&self) -> bool {
        matches!(self, DiskError::NoSpace { .. })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn errno_translation() {
        let p = Path::new("/x");
        for e in [libc::ENOSPC, libc::EDQUOT] {
            assert!(DiskError::io(io::Error::from_raw_os_error(e), p, 7).is_no_space());
        }
        let e = DiskError::io(io::Error::from_raw_os_error(libc::EIO), p, 7);
        assert!(matches!(e, DiskError::Io { offset: 7, .. }));
        assert!(e.to_string().contains("/x"), "{e}");
    }
}

impl From<DiskError> for io::Error {
    /// Keeps the OS error where there is one (so `ENOSPC` stays recognisable upstream).
    fn from(e: DiskError) -> io::Error {
        match e {
            DiskError::NoSpace { .. } => io::Error::new(io::ErrorKind::StorageFull, e.to_string()),
            DiskError::Io { source, .. } => source,
            other => io::Error::other(other.to_string()),
        }
    }
}
