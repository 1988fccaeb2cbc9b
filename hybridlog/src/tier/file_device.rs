//! A [`Device`] over one file: log address = file offset.
//!
//! Opened with `O_DIRECT` so that flushed pages are not cached a second time by the kernel
//! (the memory budget is the memory used, and reads measure the disk); a filesystem that
//! refuses `O_DIRECT` (tmpfs) gets buffered I/O, said once in the log.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use super::Device;

/// The log's file.
#[derive(Debug)]
pub struct FileDevice {
    file: File,
    direct: bool,
}

impl FileDevice {
    /// Creates (truncating) the file at `path`.
    pub fn create(path: &Path) -> std::io::Result<FileDevice> {
        let open = |flags| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .custom_flags(flags)
                .open(path)
        };
        match open(libc::O_DIRECT) {
            Ok(file) => Ok(FileDevice { file, direct: true }),
            Err(err) if err.raw_os_error() == Some(libc::EINVAL) => {
                log::warn!(
                    "disk tier: {} does not support O_DIRECT; using buffered I/O",
                    path.display()
                );
                Ok(FileDevice {
                    file: open(0)?,
                    direct: false,
                })
            }
            Err(err) => Err(err),
        }
    }

    /// Whether the file bypasses the page cache.
    pub fn is_direct(&self) -> bool {
        self.direct
    }
}

impl Device for FileDevice {
    fn write(&self, address: u64, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all_at(bytes, address)?;
        if !self.direct {
            // Keep the kernel from caching what we just evicted from our own memory.
            // SAFETY: plain syscall on our open fd.
            unsafe {
                libc::posix_fadvise(
                    self.file.as_raw_fd(),
                    address as libc::off_t,
                    bytes.len() as libc::off_t,
                    libc::POSIX_FADV_DONTNEED,
                )
            };
        }
        Ok(())
    }

    fn read(&self, address: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], address + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    fn locate(&self, address: u64) -> std::io::Result<(RawFd, u64)> {
        Ok((self.file.as_raw_fd(), address))
    }
}
