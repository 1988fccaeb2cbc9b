//! The writer thread: writes what the sequencer emitted, fsyncs per `appendfsync`, advances
//! the watermark replies wait for, and wakes the reactor threads that hold replies.
//!
//! Group commit falls out of the loop: while one write and fdatasync run, every thread keeps
//! filing entries, and the next round takes all of them at once.
//!
//! A rewrite's cut (`Switch`) is made here too, in stream order: the bytes emitted before the
//! cut go to the old file, which is then flushed to disk, and everything after to the new one.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Fsync;
use crate::server::Server;

/// How long the writer sleeps with nothing to do (the `everysec` fsync and retries after a
/// failed write need it to wake up on its own).
const IDLE: Duration = Duration::from_millis(100);

/// How long the sequencer may wait for one commit number before the writer warns.
const STALL_WARNING: Duration = Duration::from_secs(10);

/// Redis logs a failing AOF write at most this often (`AOF_WRITE_LOG_ERROR_RATE`).
const LOG_ERROR_EVERY: Duration = Duration::from_secs(30);

pub(super) fn run(server: &Server, mut file: File) {
    let aof = &server.aof;
    let mut size = file.metadata().map(|m| m.len()).unwrap_or(0);
    aof.incr_size.store(size, Ordering::Relaxed);
    let mut last_fsync = Instant::now();
    let mut unsynced = false;
    let mut last_error_log: Option<Instant> = None;
    let mut background = BackgroundFsync::default();
    // A number taken and never filed would hold every reply forever: say so loudly.
    let mut stalled: (u64, Instant, bool) = (0, Instant::now(), false);
    loop {
        let (mut buf, upto, stop, switch) = {
            let mut s = aof.lock();
            let deadline = Instant::now() + IDLE;
            while s.buf.is_empty() && !s.stop && !s.switch_ready() && s.next - 1 <= aof.released() {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                s = aof
                    .emitted
                    .wait_timeout(s, left)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
            if s.pending.is_empty() || s.next != stalled.0 {
                stalled = (s.next, Instant::now(), false);
            } else if !stalled.2 && stalled.1.elapsed() > STALL_WARNING {
                stalled.2 = true;
                log::warn!(
                    "AOF: commit number {} was never filed ({} later entries wait behind it)",
                    s.next,
                    s.pending.len()
                );
            }
            let switch = if s.switch_ready() {
                s.switch.take()
            } else {
                None
            };
            (std::mem::take(&mut s.buf), s.next - 1, s.stop, switch)
        };
        let policy = aof.policy();
        let mut failed = false;
        if let Some(sw) = switch {
            let cut = sw.offset.unwrap_or(0).min(buf.len());
            match write_all(&mut file, &buf[..cut], size) {
                Ok(()) => {
                    size += cut as u64;
                    aof.incr_size.fetch_add(cut as u64, Ordering::Relaxed);
                    // The old file is complete: flush it (Redis's background fsync-and-close)
                    // before anything after the cut is released.
                    background.wait();
                    if (unsynced || cut > 0)
                        && policy != Fsync::No
                        && let Err(e) = fdatasync(&file)
                    {
                        if policy == Fsync::Always {
                            log::warn!(
                                "Can't persist AOF for fsync error when the AOF fsync policy \
                                 is 'always': {e}. Exiting..."
                            );
                            std::process::exit(1);
                        }
                        log::warn!("Fail to fsync the AOF file: {e}");
                    }
                    aof.older_size.fetch_add(size, Ordering::Relaxed);
                    aof.incr_size.store(0, Ordering::Relaxed);
                    file = sw.file;
                    size = 0;
                    unsynced = false;
                    buf.drain(..cut);
                    aof.switches.fetch_add(1, Ordering::SeqCst);
                }
                Err(e) => {
                    failed = true;
                    write_failed(aof, policy, &e, &mut last_error_log);
                    // Keep the bytes and the switch for the next try.
                    let mut s = aof.lock();
                    buf.extend_from_slice(&s.buf);
                    s.buf = buf;
                    s.switch = Some(sw);
                    buf = Vec::new();
                }
            }
        }
        if !buf.is_empty() && !failed {
            match write_all(&mut file, &buf, size) {
                Ok(()) => {
                    size += buf.len() as u64;
                    aof.incr_size.fetch_add(buf.len() as u64, Ordering::Relaxed);
                    unsynced = true;
                    if aof.write_errno.swap(0, Ordering::Relaxed) != 0 {
                        log::warn!("AOF write error looks solved, Redis can write again.");
                    }
                }
                Err(e) => {
                    failed = true;
                    write_failed(aof, policy, &e, &mut last_error_log);
                    // Keep the bytes for the next try, ahead of what was emitted since.
                    let mut s = aof.lock();
                    buf.extend_from_slice(&s.buf);
                    s.buf = buf;
                }
            }
        }
        // `no-appendfsync-on-rewrite yes`: while a child writes its snapshot, no fsync (as
        // Redis); the bytes wait in the page cache and replies leave as with `no`.
        let skip = unsynced && !failed && !stop && fsync_held_off(server);
        let sync_now =
            unsynced && !failed && !skip && fsync_due(policy, last_fsync.elapsed(), stop);
        if sync_now && policy == Fsync::Everysec && !stop {
            // In the background, as Redis's bio thread: writes (and the replies that wait for
            // them) go on while the disk flushes.
            if background.start(&file, &aof.delayed_fsync) {
                unsynced = false;
            }
            last_fsync = Instant::now();
        } else if sync_now {
            background.wait();
            if let Err(e) = fdatasync(&file) {
                if policy == Fsync::Always {
                    log::warn!(
                        "Can't persist AOF for fsync error when the AOF fsync policy is \
                         'always': {e}. Exiting..."
                    );
                    std::process::exit(1);
                }
                log::warn!("Fail to fsync the AOF file: {e}");
            } else {
                unsynced = false;
            }
            last_fsync = Instant::now();
        }
        // `always` releases what is fsynced; the others what was written, or what failed to be
        // (Redis answers then too, and refuses further writes with -MISCONF).
        let released = if policy == Fsync::Always && unsynced && !skip {
            None
        } else {
            Some(upto)
        };
        if let Some(r) = released
            && r > aof.released()
        {
            aof.released.store(r, Ordering::SeqCst);
            if aof.holders.load(Ordering::SeqCst) > 0 {
                for t in 0..server.threads {
                    server.wake(t);
                }
            }
        }
        if stop && (aof.lock().buf.is_empty() || failed) {
            background.wait();
            if unsynced {
                let _ = fdatasync(&file);
            }
            return;
        }
        if failed {
            std::thread::sleep(IDLE);
        }
    }
}

/// Whether the fsync policy calls for an fsync now, with data written since the last one.
fn fsync_due(policy: Fsync, since_last: Duration, stop: bool) -> bool {
    match policy {
        Fsync::Always => true,
        Fsync::Everysec => since_last >= Duration::from_secs(1) || stop,
        Fsync::No => stop,
    }
}

/// Redis's `no-appendfsync-on-rewrite yes` while a BGSAVE or BGREWRITEAOF child runs
/// (`server.aof_no_fsync_on_rewrite && hasActiveChildProcess()` in `flushAppendOnlyFile`).
fn fsync_held_off(server: &Server) -> bool {
    server
        .config
        .no_appendfsync_on_rewrite
        .load(Ordering::Relaxed)
        && (server.persist.child().is_some() || server.aof.rewrite.child().is_some())
}

/// A failed write: exits with `always` (as Redis), else records the errno (`-MISCONF`) and logs
/// at most every `LOG_ERROR_EVERY`.
fn write_failed(
    aof: &super::Aof,
    policy: Fsync,
    e: &std::io::Error,
    last_log: &mut Option<Instant>,
) {
    if policy == Fsync::Always {
        log::warn!(
            "Can't recover from AOF write error when the AOF fsync policy is 'always'. \
             Exiting..."
        );
        std::process::exit(1);
    }
    let errno = e.raw_os_error().unwrap_or(libc::EIO);
    aof.write_errno.store(errno, Ordering::Relaxed);
    if last_log.is_none_or(|t| t.elapsed() > LOG_ERROR_EVERY) {
        log::warn!("Error writing to the AOF file: {e}");
        *last_log = Some(Instant::now());
    }
}

/// The `everysec` fsync, run on its own thread so that it never holds up writes.
#[derive(Default)]
struct BackgroundFsync {
    running: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundFsync {
    /// Starts an fdatasync of `file` unless the previous one still runs (then it counts a
    /// delayed fsync, INFO `aof_delayed_fsync`, and returns false).
    fn start(&mut self, file: &File, delayed: &std::sync::atomic::AtomicU64) -> bool {
        if self.running.as_ref().is_some_and(|h| !h.is_finished()) {
            delayed.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        self.wait();
        let Ok(clone) = file.try_clone() else {
            return false;
        };
        let spawned = std::thread::Builder::new()
            .name("aof-fsync".into())
            .spawn(move || {
                if let Err(e) = fdatasync(&clone) {
                    log::warn!("Fail to fsync the AOF file: {e}");
                }
            });
        match spawned {
            Ok(h) => {
                self.running = Some(h);
                true
            }
            Err(e) => {
                log::warn!("Cannot start the AOF fsync thread: {e}");
                false
            }
        }
    }

    /// Waits for a running fsync to finish.
    fn wait(&mut self) {
        if let Some(h) = self.running.take() {
            let _ = h.join();
        }
    }
}

/// One write of `buf` (retrying short writes and EINTR, as Redis's `aofWrite`); on failure the
/// file is truncated back to `size`, so a partial command never stays in it.
fn write_all(file: &mut File, buf: &[u8], size: u64) -> std::io::Result<()> {
    match file.write_all(buf) {
        Ok(()) => Ok(()),
        Err(e) => {
            if let Err(t) = file.set_len(size) {
                log::warn!(
                    "Could not remove short write from the append-only file. Redis may refuse \
                     to load the AOF the next time it starts. ftruncate: {t}"
                );
            }
            Err(e)
        }
    }
}

/// `fdatasync(2)` (Redis's `redis_fsync` on Linux).
fn fdatasync(file: &File) -> std::io::Result<()> {
    // SAFETY: the descriptor is valid for as long as `file` is borrowed.
    let r = unsafe { libc::fdatasync(file.as_raw_fd()) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsync_follows_the_policy() {
        let (now, later) = (Duration::ZERO, Duration::from_millis(1500));
        assert!(fsync_due(Fsync::Always, now, false));
        assert!(!fsync_due(Fsync::Everysec, now, false));
        assert!(fsync_due(Fsync::Everysec, later, false));
        assert!(fsync_due(Fsync::Everysec, now, true));
        assert!(!fsync_due(Fsync::No, later, false));
        assert!(fsync_due(Fsync::No, now, true));
    }

    #[test]
    fn fsync_is_held_off_only_while_a_child_runs_and_the_option_is_on() {
        let store = ferrite_hybridlog::Store::new(ferrite_hybridlog::StoreConfig {
            index_buckets: 1 << 10,
            ..Default::default()
        })
        .expect("valid config");
        let server = Server::new(store, crate::config::Config::default(), 1);
        assert!(!fsync_held_off(&server));
        server
            .config
            .set("no-appendfsync-on-rewrite", b"yes")
            .expect("settable");
        // No child yet.
        assert!(!fsync_held_off(&server));
        let (report, _write_end) = std::io::pipe().expect("pipe");
        *server.persist.child_lock() = Some(crate::persist::Child {
            pid: 0,
            started: 0,
            report: report.into(),
            to_replicas: false,
        });
        assert!(fsync_held_off(&server));
        server
            .config
            .set("no-appendfsync-on-rewrite", b"no")
            .expect("settable");
        assert!(!fsync_held_off(&server));
        *server.persist.child_lock() = None;
    }
}
