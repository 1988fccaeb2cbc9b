//! RDB persistence (Redis's `rdb.c` and the snapshot parts of `server.c`): a `dump.rdb` written
//! by Ferrite loads in redis-server 7.0 and the other way round.
//!
//! - [`rdb_write`]: the file format out (header, AUX fields, databases, EOF, CRC-64), with the
//!   value encodings DUMP uses ([`crate::cmd::dump::rdb`]).
//! - [`rdb_read`]: the file format in, and the start-up load through the store.
//! - [`snapshot`]: SAVE (foreground, under the exclusive gate), BGSAVE (a forked child writes a
//!   point-in-time copy), reaping the child, SHUTDOWN's final save.
//! - [`schedule`]: the `save` points, the scheduled BGSAVE, the dirty counter and the
//!   `stop-writes-on-bgsave-error` check, run from a reactor tick as Redis's `serverCron`.

pub(crate) mod child_info;
pub mod rdb_read;
pub mod rdb_write;
pub mod schedule;
pub mod snapshot;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

pub use schedule::{count_write, cron, writes_denied};
pub use snapshot::{ShutdownFlags, finish_shutdown, kill_child};

/// Redis's `shared.bgsaveerr`, without the leading `-`.
pub const MISCONF: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently \
    unable to persist to disk. Commands that may modify the data set are disabled, because this \
    instance is configured to report errors during writes if RDB snapshotting fails \
    (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB \
    error.";

/// A background save in progress.
#[derive(Debug)]
pub(crate) struct Child {
    /// Its process id.
    pub pid: libc::pid_t,
    /// Unix seconds when it was forked.
    pub started: u64,
    /// Read end of the pipe the child reports its copy-on-write size on.
    pub report: std::os::fd::OwnedFd,
    /// It streams a diskless full resync to replicas rather than writing the dump (Redis's
    /// `RDB_CHILD_TYPE_SOCKET`): its end changes neither LASTSAVE nor the save status.
    pub to_replicas: bool,
}

/// The persistence state shared by every thread (Redis's `server.lastsave`, `dirty`, ...).
#[derive(Debug)]
pub struct State {
    /// Unix seconds of the last successful save (LASTSAVE); start-up time until then.
    last_save: AtomicU64,
    /// The dirty counter's value at the last successful save.
    dirty_baseline: AtomicU64,
    /// The dirty counter's value when the running BGSAVE forked.
    dirty_before_bgsave: AtomicU64,
    /// `lastbgsave_status == C_OK`.
    last_bgsave_ok: AtomicBool,
    /// Unix seconds of the last BGSAVE attempt (`lastbgsave_try`).
    last_bgsave_try: AtomicU64,
    /// BGSAVE SCHEDULE (or BGSAVE in EXEC) is waiting for the running child to finish.
    pub(crate) bgsave_scheduled: AtomicBool,
    /// The running BGSAVE child, if any.
    child: Mutex<Option<Child>>,
    /// SAVE and BGSAVE attempts (`stat_rdb_saves`).
    pub(crate) rdb_saves: AtomicU64,
    /// Duration of the last BGSAVE in seconds, -1 before the first.
    last_bgsave_secs: AtomicI64,
    /// Private dirty bytes the last successful BGSAVE child reported.
    last_cow_size: AtomicU64,
    /// Successful forks, and how long the last one took in microseconds (INFO stats).
    pub(crate) total_forks: AtomicU64,
    pub(crate) latest_fork_usec: AtomicU64,
    /// Keys loaded and keys skipped as expired by the start-up load.
    load_loaded: AtomicU64,
    load_expired: AtomicU64,
    /// The running child's progress (BGSAVE or AOF rewrite), from its reports.
    pub(crate) current: child_info::Current,
}

impl State {
    /// The state of a server started at Unix second `now`.
    pub fn new(now: u64) -> Self {
        Self {
            last_save: AtomicU64::new(now),
            current: child_info::Current::default(),
            dirty_baseline: AtomicU64::new(0),
            dirty_before_bgsave: AtomicU64::new(0),
            last_bgsave_ok: AtomicBool::new(true),
            last_bgsave_try: AtomicU64::new(0),
            bgsave_scheduled: AtomicBool::new(false),
            child: Mutex::new(None),
            rdb_saves: AtomicU64::new(0),
            last_bgsave_secs: AtomicI64::new(-1),
            last_cow_size: AtomicU64::new(0),
            total_forks: AtomicU64::new(0),
            latest_fork_usec: AtomicU64::new(0),
            load_loaded: AtomicU64::new(0),
            load_expired: AtomicU64::new(0),
        }
    }

    /// LASTSAVE: Unix seconds of the last successful save.
    pub fn last_save(&self) -> u64 {
        self.last_save.load(Ordering::Relaxed)
    }

    /// Whether the last background save failed (Redis's `lastbgsave_status == C_ERR`).
    pub fn last_bgsave_failed(&self) -> bool {
        !self.last_bgsave_ok.load(Ordering::Relaxed)
    }

    /// Records the start-up load's counts for INFO.
    pub fn loaded(&self, keys: u64, expired: u64) {
        self.load_loaded.store(keys, Ordering::Relaxed);
        self.load_expired.store(expired, Ordering::Relaxed);
    }

    /// INFO stats' `latest_fork_usec` and `total_forks`.
    pub fn forks(&self) -> (u64, u64) {
        (
            self.latest_fork_usec.load(Ordering::Relaxed),
            self.total_forks.load(Ordering::Relaxed),
        )
    }

    /// The pid and start time of the running BGSAVE child.
    pub fn child(&self) -> Option<(libc::pid_t, u64)> {
        self.child_lock().as_ref().map(|c| (c.pid, c.started))
    }

    pub(crate) fn child_lock(&self) -> std::sync::MutexGuard<'_, Option<Child>> {
        // The guarded value is replaced whole: a poisoned lock still holds a valid state.
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A save that finished well: nothing is dirty up to `dirty_at`, and LASTSAVE is now.
    pub(crate) fn saved(&self, dirty_at: u64, now: u64) {
        self.dirty_baseline.store(dirty_at, Ordering::Relaxed);
        self.last_save.store(now, Ordering::Relaxed);
        self.last_bgsave_ok.store(true, Ordering::Relaxed);
    }
}

/// Changes since the last successful save.
pub fn changes_since_save(server: &crate::Server) -> u64 {
    let st = &server.persist;
    server
        .stats
        .dirty()
        .wrapping_sub(st.dirty_baseline.load(Ordering::Relaxed))
}

/// INFO persistence's RDB fields, in Redis 7.0.15's order and spelling.
pub fn info_fields(server: &crate::Server) -> Vec<(&'static str, String)> {
    let st = &server.persist;
    let now = unix_secs();
    let child = st.child();
    let mut v: Vec<(&'static str, String)> = Vec::with_capacity(18);
    for f in ["loading", "async_loading"] {
        v.push((f, "0".into()));
    }
    v.extend(st.current.info_fields(crate::server::unix_ms()));
    v.push((
        "rdb_changes_since_last_save",
        changes_since_save(server).to_string(),
    ));
    v.push((
        "rdb_bgsave_in_progress",
        u8::from(child.is_some()).to_string(),
    ));
    v.push(("rdb_last_save_time", st.last_save().to_string()));
    let status = if st.last_bgsave_failed() { "err" } else { "ok" };
    v.push(("rdb_last_bgsave_status", status.into()));
    v.push((
        "rdb_last_bgsave_time_sec",
        st.last_bgsave_secs.load(Ordering::Relaxed).to_string(),
    ));
    let current = child.map_or(-1, |(_, started)| now.saturating_sub(started) as i64);
    v.push(("rdb_current_bgsave_time_sec", current.to_string()));
    v.push((
        "rdb_saves",
        st.rdb_saves.load(Ordering::Relaxed).to_string(),
    ));
    v.push((
        "rdb_last_cow_size",
        st.last_cow_size.load(Ordering::Relaxed).to_string(),
    ));
    v.push((
        "rdb_last_load_keys_expired",
        st.load_expired.load(Ordering::Relaxed).to_string(),
    ));
    v.push((
        "rdb_last_load_keys_loaded",
        st.load_loaded.load(Ordering::Relaxed).to_string(),
    ));
    v
}

/// Removes the pid file (`pidfile`) on a clean exit, as Redis's `prepareForShutdown`.
pub fn remove_pidfile(server: &crate::Server) {
    let path = server.config.value("pidfile").unwrap_or_default();
    if !path.is_empty() {
        log::info!("Removing the pid file.");
        let _ = std::fs::remove_file(path);
    }
}

/// Wall-clock Unix seconds.
pub fn unix_secs() -> u64 {
    crate::server::unix_ms() / 1000
}

/// `strerror(errno)` for an I/O error: its text without Rust's ` (os error N)` suffix.
pub fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}
