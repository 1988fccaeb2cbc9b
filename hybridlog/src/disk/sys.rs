//! System calls: the `O_DIRECT` probe, the alignment query, positioned I/O loops, fadvise.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use super::buf::AlignedBuf;
use super::{DirectIo, DiskError, IoMode};

/// Alignment assumed when the kernel cannot tell (no `STATX_DIOALIGN`): a memory page, which
/// every block device's logical block size divides.
pub(crate) const DEFAULT_ALIGN: usize = 4096;

const PROBE_FILE: &str = ".hlog-direct-probe";

/// Decides how `dir`'s segments are opened: with `O_DIRECT` at the file system's direct-I/O
/// alignment, or buffered. The probe opens a scratch file with `O_DIRECT`, asks `statx` for
/// `STATX_DIOALIGN`, and writes and reads one aligned block, because some file systems accept
/// the flag on open and refuse the I/O.
pub(crate) fn probe(dir: &Path, want: DirectIo) -> Result<IoMode, DiskError> {
    if want == DirectIo::Off {
        return Ok(IoMode::Buffered);
    }
    let path = dir.join(PROBE_FILE);
    let result = probe_file(&path);
    let _ = std::fs::remove_file(&path);
    match (result?, want) {
        (Some(align), _) => Ok(IoMode::Direct { align }),
        (None, DirectIo::Required) => Err(DiskError::Config(format!(
            "{} does not support O_DIRECT",
            dir.display()
        ))),
        (None, _) => Ok(IoMode::Buffered),
    }
}

/// `Some(alignment)` when direct I/O works on `path`'s file system, `None` when it is refused
/// with `EINVAL` (tmpfs before Linux 6.6, some FUSE and network file systems).
fn probe_file(path: &Path) -> Result<Option<usize>, DiskError> {
    let file = match open(path, true, true) {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Ok(None),
        Err(e) => return Err(DiskError::io(e, path, 0)),
    };
    let align = match dio_align(&file) {
        DioAlign::Unsupported => return Ok(None),
        DioAlign::Unknown => DEFAULT_ALIGN,
        DioAlign::Align(a) => a,
    };
    let mut buf = AlignedBuf::new(align, align);
    buf.as_mut_slice()[..8].copy_from_slice(b"ferrite!");
    let io = file
        .write_all_at(&buf.as_slice()[..align], 0)
        .and_then(|()| file.read_exact_at(&mut buf.as_mut_slice()[..align], 0));
    match io {
        Ok(()) if &buf.as_slice()[..8] == b"ferrite!" => Ok(Some(align)),
        Ok(()) => Err(DiskError::Config(format!(
            "O_DIRECT read-back mismatch on {}",
            path.display()
        ))),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(None),
        Err(e) => Err(DiskError::io(e, path, 0)),
    }
}

enum DioAlign {
    /// The kernel says direct I/O is not supported on this file.
    Unsupported,
    /// The kernel cannot say (no `statx`, or no `STATX_DIOALIGN` before Linux 6.1).
    Unknown,
    Align(usize),
}

fn dio_align(file: &File) -> DioAlign {
    // SAFETY: `statx` is plain old data, for which all-zero bytes are a valid value.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: a valid open fd, an empty NUL-terminated path with AT_EMPTY_PATH (so the fd itself
    // is queried), and a pointer to a `statx` we own for the duration of the call.
    let rc = unsafe {
        libc::statx(
            file.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_DIOALIGN,
            &mut stx,
        )
    };
    if rc != 0 || stx.stx_mask & libc::STATX_DIOALIGN == 0 {
        return DioAlign::Unknown;
    }
    let (mem, offset) = (stx.stx_dio_mem_align, stx.stx_dio_offset_align);
    if mem == 0 && offset == 0 {
        return DioAlign::Unsupported;
    }
    // Offsets and lengths are aligned to the larger of the two so that one number serves both;
    // 512 is the smallest logical block size there is.
    let align = (mem.max(offset).max(512) as usize).next_power_of_two();
    DioAlign::Align(align)
}

/// Opens (optionally creating) a file for reading and writing, with `O_DIRECT` if `direct`.
pub(crate) fn open(path: &Path, direct: bool, create: bool) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(true).create(create);
    if direct {
        o.custom_flags(libc::O_DIRECT);
    }
    o.open(path)
}

/// Reads into `buf` from `offset` until it is full or a read comes up short. A regular file
/// returns fewer bytes than asked only at its end, and with `O_DIRECT` a second read from an
/// unaligned end offset would fail, so the first short read ends the loop. Returns the bytes
/// read.
pub(crate) fn pread_full(
    file: &File,
    path: &Path,
    buf: &mut [u8],
    offset: u64,
) -> Result<usize, DiskError> {
    let mut done = 0;
    while done < buf.len() {
        let at = offset + done as u64;
        match file.read_at(&mut buf[done..], at) {
            Ok(0) => break,
            Ok(n) => {
                done += n;
                if done < buf.len() {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(DiskError::io(e, path, at)),
        }
    }
    Ok(done)
}

/// Writes all of `buf` at `offset`. A full disk shows as a short write followed by `ENOSPC`.
pub(crate) fn pwrite_all(
    file: &File,
    path: &Path,
    buf: &[u8],
    offset: u64,
) -> Result<(), DiskError> {
    let mut done = 0;
    while done < buf.len() {
        let at = offset + done as u64;
        match file.write_at(&buf[done..], at) {
            Ok(0) => {
                let e = std::io::Error::from_raw_os_error(libc::ENOSPC);
                return Err(DiskError::io(e, path, at));
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(DiskError::io(e, path, at)),
        }
    }
    Ok(())
}

/// Drops `[offset, offset + len)` of `file` from the page cache (buffered mode only), so flushed
/// log pages do not crowd out the memory the in-memory log needs. Dirty pages are only queued
/// for writeback by this call; `sync` calls it again once they are clean. Best effort.
pub(crate) fn drop_cache(file: &File, offset: u64, len: u64) {
    // SAFETY: advice on a valid open fd; it touches no memory of ours.
    let rc = unsafe {
        libc::posix_fadvise(
            file.as_raw_fd(),
            offset as libc::off_t,
            len as libc::off_t,
            libc::POSIX_FADV_DONTNEED,
        )
    };
    if rc != 0 {
        log::debug!("posix_fadvise(DONTNEED) failed: errno {rc}");
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn probe_on_the_work_disk_and_forced_off() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(probe(dir.path(), DirectIo::Off).unwrap(), IoMode::Buffered);
        match probe(dir.path(), DirectIo::Auto).unwrap() {
            IoMode::Direct { align } => {
                assert!(align.is_power_of_two() && (512..=65536).contains(&align));
                let required = probe(dir.path(), DirectIo::Required).unwrap();
                assert_eq!(required, IoMode::Direct { align });
            }
            IoMode::Buffered => println!("temp dir has no O_DIRECT; buffered"),
        }
        assert!(!dir.path().join(PROBE_FILE).exists());
    }

    #[test]
    fn statx_reports_an_alignment_for_a_direct_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        match open(&p, true, true) {
            Ok(f) => {
                if let DioAlign::Align(a) = dio_align(&f) {
                    assert!(a >= 512 && a.is_power_of_two());
                }
            }
            Err(e) => println!("no O_DIRECT here: {e}"),
        }
    }

    #[test]
    fn short_reads_stop_at_eof_and_fadvise_is_harmless() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let f = open(&p, false, true).unwrap();
        pwrite_all(&f, &p, &[1u8; 5000], 0).unwrap();
        drop_cache(&f, 0, 0);
        let mut b = vec![0u8; 8192];
        assert_eq!(pread_full(&f, &p, &mut b, 0).unwrap(), 5000);
        assert_eq!(pread_full(&f, &p, &mut b, 9000).unwrap(), 0);
        let ro = File::open(&p).unwrap();
        let err = pwrite_all(&ro, &p, &[1], 0).unwrap_err();
        assert!(matches!(err, DiskError::Io { .. }), "{err}");
    }
}
