//! What a fork child (BGSAVE, BGREWRITEAOF) tells its parent while it runs and when it ends:
//! Redis's `childinfo.c`. The child writes fixed 32-byte messages to a non-blocking pipe
//! (atomic, being under `PIPE_BUF`): about once a second the keys written so far and its
//! copy-on-write size (`CURRENT`), and at the end the final copy-on-write size (`FINAL`).
//! The parent drains the pipe from its cron into [`Current`], which INFO persistence shows as
//! `current_cow_*`, `current_fork_perc` and `current_save_keys_*`.
//!
//! The child's side keeps its state in statics: after the fork the child is a single thread
//! and these are its own copies; in the parent the pipe descriptor stays -1, so a foreground
//! SAVE, which runs the same writer, reports nothing.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use super::snapshot::{child_log, private_dirty};
use crate::server::unix_ms;

const CURRENT: u64 = 1;
const FINAL: u64 = 2;
const MSG_BYTES: usize = 32;

/// The child's end of the pipe; -1 in the parent.
static PIPE: AtomicI32 = AtomicI32::new(-1);
/// Keys written by the child so far.
static KEYS: AtomicU64 = AtomicU64::new(0);
/// Unix ms of the child's last `CURRENT` message.
static SENT_MS: AtomicU64 = AtomicU64::new(0);
/// Copy-on-write readings of the child: the peak, their sum and count.
static COW_PEAK: AtomicU64 = AtomicU64::new(0);
static COW_SUM: AtomicU64 = AtomicU64::new(0);
static COW_READINGS: AtomicU64 = AtomicU64::new(0);

/// Called by the child right after the fork: where its reports go.
pub(crate) fn set_pipe(fd: i32) {
    PIPE.store(fd, Ordering::Relaxed);
    for s in [&KEYS, &SENT_MS, &COW_PEAK, &COW_SUM, &COW_READINGS] {
        s.store(0, Ordering::Relaxed);
    }
}

/// One key written. As Redis's `rdbSaveRio`: every 1024 keys (the first included), if a
/// second has passed since the last report, reports progress and the copy-on-write size.
pub(crate) fn key_done() {
    let fd = PIPE.load(Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    let before = KEYS.fetch_add(1, Ordering::Relaxed);
    if before & 1023 != 0 {
        return;
    }
    let now = unix_ms();
    if now.saturating_sub(SENT_MS.load(Ordering::Relaxed)) < 1000 {
        return;
    }
    SENT_MS.store(now, Ordering::Relaxed);
    let cow = read_cow();
    send(fd, CURRENT, before + 1, cow, now);
}

/// Called by the child after a successful write: logs its copy-on-write size as Redis does
/// (`what`: "RDB", "AOF rewrite") and reports it to the parent.
pub(crate) fn finish(what: &str) {
    let cow = read_cow();
    let average = COW_SUM.load(Ordering::Relaxed) / COW_READINGS.load(Ordering::Relaxed).max(1);
    child_log(
        '*',
        &format!(
            "Fork CoW for {what}: current {} MB, peak {} MB, average {} MB",
            cow >> 20,
            COW_PEAK.load(Ordering::Relaxed) >> 20,
            average >> 20
        ),
    );
    let fd = PIPE.load(Ordering::Relaxed);
    send(fd, FINAL, KEYS.load(Ordering::Relaxed), cow, unix_ms());
}

fn read_cow() -> u64 {
    let cow = private_dirty();
    COW_PEAK.fetch_max(cow, Ordering::Relaxed);
    COW_SUM.fetch_add(cow, Ordering::Relaxed);
    COW_READINGS.fetch_add(1, Ordering::Relaxed);
    cow
}

fn send(fd: i32, kind: u64, keys: u64, cow: u64, at_ms: u64) {
    if fd < 0 {
        return;
    }
    let mut msg = [0u8; MSG_BYTES];
    for (i, v) in [kind, keys, cow, at_ms].into_iter().enumerate() {
        msg[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
    // SAFETY: writes the bytes of a live array to the pipe; the pipe is non-blocking, so a
    // full pipe (a parent not reading) loses this report instead of stalling the child.
    unsafe {
        libc::write(fd, msg.as_ptr().cast(), msg.len());
    }
}

/// The running child's progress as the parent knows it (Redis's `stat_current_*`).
#[derive(Debug, Default)]
pub struct Current {
    cow_peak: AtomicU64,
    cow_size: AtomicU64,
    cow_updated_ms: AtomicU64,
    keys_processed: AtomicU64,
    /// Keys in the dataset at the fork; 0 when no child runs.
    keys_total: AtomicU64,
}

impl Current {
    /// A child was forked with `keys_total` keys in the dataset.
    pub(crate) fn start(&self, keys_total: u64) {
        self.reset();
        self.keys_total.store(keys_total, Ordering::Relaxed);
    }

    /// The child is gone (Redis's `resetChildState`).
    pub(crate) fn reset(&self) {
        for s in [
            &self.cow_peak,
            &self.cow_size,
            &self.cow_updated_ms,
            &self.keys_processed,
            &self.keys_total,
        ] {
            s.store(0, Ordering::Relaxed);
        }
    }

    /// Reads every report waiting on `pipe` (the parent's non-blocking read end); returns the
    /// final copy-on-write size if the child sent it.
    pub(crate) fn drain(&self, pipe: &OwnedFd) -> Option<u64> {
        let mut finished = None;
        let mut buf = [0u8; MSG_BYTES * 16];
        loop {
            // SAFETY: reads into a live array of the given length; the descriptor is the
            // pipe's read end, owned by the caller's child record.
            let n = unsafe { libc::read(pipe.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            let Ok(n) = usize::try_from(n) else {
                return finished; // EAGAIN: nothing more for now
            };
            if n == 0 {
                return finished;
            }
            // Messages are written whole (under PIPE_BUF), so reads return whole messages.
            for msg in buf[..n].chunks_exact(MSG_BYTES) {
                let word = |i: usize| {
                    u64::from_le_bytes(msg[i * 8..i * 8 + 8].try_into().unwrap_or_default())
                };
                let (kind, keys, cow, at_ms) = (word(0), word(1), word(2), word(3));
                match kind {
                    CURRENT => {
                        self.cow_peak.fetch_max(cow, Ordering::Relaxed);
                        self.cow_size.store(cow, Ordering::Relaxed);
                        self.cow_updated_ms.store(at_ms, Ordering::Relaxed);
                        self.keys_processed.store(keys, Ordering::Relaxed);
                    }
                    FINAL => finished = Some(cow),
                    _ => {}
                }
            }
        }
    }

    /// INFO persistence's `current_*` fields, in Redis 7.0's order.
    pub(crate) fn info_fields(&self, now_ms: u64) -> Vec<(&'static str, String)> {
        let get = |s: &AtomicU64| s.load(Ordering::Relaxed);
        let updated = get(&self.cow_updated_ms);
        let age = if updated == 0 {
            0
        } else {
            now_ms.saturating_sub(updated) / 1000
        };
        let (done, total) = (get(&self.keys_processed), get(&self.keys_total));
        let perc = if total > 0 {
            done as f64 / total as f64 * 100.0
        } else {
            0.0
        };
        vec![
            ("current_cow_peak", get(&self.cow_peak).to_string()),
            ("current_cow_size", get(&self.cow_size).to_string()),
            ("current_cow_size_age", age.to_string()),
            ("current_fork_perc", format!("{perc:.2}")),
            ("current_save_keys_processed", done.to_string()),
            ("current_save_keys_total", total.to_string()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::FromRawFd;

    fn pipe() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two descriptors into the two-element array.
        let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
        assert_eq!(r, 0);
        // SAFETY: both descriptors were just created and are owned by nobody else.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    #[test]
    fn parent_sees_progress_then_the_final_size() {
        let (r, w) = pipe();
        let cur = Current::default();
        cur.start(4000);
        assert_eq!(cur.drain(&r), None);
        send(w.as_raw_fd(), CURRENT, 1000, 4096, 5_000);
        send(w.as_raw_fd(), CURRENT, 2000, 1024, 6_000);
        assert_eq!(cur.drain(&r), None);
        let f = cur.info_fields(8_500);
        let v = |name: &str| f.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
        assert_eq!(v("current_cow_peak").as_deref(), Some("4096"));
        assert_eq!(v("current_cow_size").as_deref(), Some("1024"));
        assert_eq!(v("current_cow_size_age").as_deref(), Some("2"));
        assert_eq!(v("current_fork_perc").as_deref(), Some("50.00"));
        assert_eq!(v("current_save_keys_processed").as_deref(), Some("2000"));
        assert_eq!(v("current_save_keys_total").as_deref(), Some("4000"));
        send(w.as_raw_fd(), FINAL, 4000, 8192, 9_000);
        drop(w);
        assert_eq!(cur.drain(&r), Some(8192));
        cur.reset();
        assert!(
            cur.info_fields(10_000)
                .iter()
                .all(|(n, v)| if *n == "current_fork_perc" {
                    v == "0.00"
                } else {
                    v == "0"
                })
        );
    }

    #[test]
    fn the_parent_reports_nothing() {
        // No pipe set in this process: counting keys is a no-op.
        key_done();
        assert_eq!(KEYS.load(Ordering::Relaxed), 0);
    }
}
