//! The AOF rewrite (Redis 7.0's `rewriteAppendOnlyFileBackground` and
//! `backgroundRewriteDoneHandler`): BGREWRITEAOF, the automatic rewrite, and turning the AOF on
//! at runtime.
//!
//! # The cut
//! The parent forks under the store's exclusive gate, as BGSAVE does (`persist::snapshot`):
//! no other thread is inside an operation, so every write numbered below the store's next
//! commit number has taken effect and is in the child's copy, and no write numbered from it on
//! has. That number is the cut: the sequencer sends every entry below it to the old
//! incremental file and every entry from it on to a new one (`Aof::switch_at`), which the
//! manifest lists (persisted before the fork, as Redis's `openNewIncrAofForAppend`). The child
//! writes the new base (RDB with `aof-use-rdb-preamble yes`, else commands) to
//! `temp-rewriteaof-bg-<pid>.aof`. When it is done and the writer has made the switch, the
//! parent renames the base into the AOF directory, marks the old base and incremental files
//! as history in a new manifest (temp file, fsync, rename, directory fsync), and deletes
//! them. A crash at any point leaves a manifest naming files that hold the whole dataset.
//!
//! # `CONFIG SET appendonly yes`
//! Redis's `AOF_WAIT_REWRITE`: commands go to `temp-<appendfilename>.incr` from the cut on;
//! when the rewrite succeeds, that file is renamed to the next incremental name and the
//! manifest lists it after the new base. A failed rewrite is retried from the cron.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use ferrite_hybridlog::Session;

mod done;

pub use done::reap;

use super::base::write_commands;
use super::{AofError, Files, Manifest, State};
use crate::persist::child_info;
use crate::persist::rdb_write::{Aux, write_snapshot};
use crate::persist::snapshot::{child_log, close_all_but_files};
use crate::persist::{strerror, unix_secs};
use crate::server::{Server, unix_ms};

/// Redis's `AOF_REWRITE_LIMITE_THRESHOLD`: consecutive failures before rewrites are delayed.
const LIMIT_THRESHOLD: u64 = 3;
/// Redis's `AOF_REWRITE_LIMITE_MAX_MINUTES`.
const LIMIT_MAX_MINUTES: u64 = 60;

/// A running rewrite child.
#[derive(Debug)]
struct Child {
    pid: libc::pid_t,
    /// Unix seconds when it was forked.
    started: u64,
    /// Read end of the pipe the child reports its progress and copy-on-write size on.
    report: OwnedFd,
    /// The copy-on-write size of the child's final report, once read.
    final_cow: Option<u64>,
    /// The writer's switch count that means this rewrite's cut is made.
    switches: u64,
    /// The base's suffix (`.rdb` or `.aof`), as chosen when forking.
    suffix: &'static str,
    /// The wait status, once reaped.
    exited: Option<libc::c_int>,
}

/// Rewrite state and statistics (Redis's `aof_rewrite_*`, `stat_aof_*` fields).
#[derive(Debug)]
pub struct Rewrite {
    child: Mutex<Option<Child>>,
    scheduled: AtomicBool,
    last_ok: AtomicBool,
    rewrites: AtomicU64,
    failures: AtomicU64,
    last_secs: AtomicI64,
    last_cow: AtomicU64,
    /// `aofRewriteLimited`'s statics: the next delay in minutes and when it ends.
    limit: Mutex<(u64, u64)>,
}

impl Default for Rewrite {
    fn default() -> Self {
        Self {
            child: Mutex::new(None),
            scheduled: AtomicBool::new(false),
            last_ok: AtomicBool::new(true),
            rewrites: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            last_secs: AtomicI64::new(-1),
            last_cow: AtomicU64::new(0),
            limit: Mutex::new((0, 0)),
        }
    }
}

impl Rewrite {
    fn child_lock(&self) -> MutexGuard<'_, Option<Child>> {
        // Replaced whole under the lock: a poisoned lock still holds a valid state.
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The running child's pid.
    pub fn child(&self) -> Option<libc::pid_t> {
        self.child_lock().as_ref().map(|c| c.pid)
    }

    /// Whether a rewrite runs, and for how many seconds (-1 when none).
    pub fn running_secs(&self) -> (bool, i64) {
        match self.child_lock().as_ref() {
            Some(c) => (true, unix_secs().saturating_sub(c.started) as i64),
            None => (false, -1),
        }
    }

    /// A rewrite waits for the running child to finish (`aof_rewrite_scheduled`).
    pub fn scheduled(&self) -> bool {
        self.scheduled.load(Ordering::Relaxed)
    }

    /// Schedules a rewrite for when no child runs (BGREWRITEAOF while a BGSAVE runs); as in
    /// Redis, asking by hand clears the failure count that delays retries.
    pub fn schedule(&self) {
        self.failures.store(0, Ordering::Relaxed);
        self.scheduled.store(true, Ordering::Relaxed);
    }

    pub(crate) fn unschedule(&self) {
        self.scheduled.store(false, Ordering::Relaxed);
    }

    /// `aof_last_bgrewrite_status == ok`.
    pub fn last_ok(&self) -> bool {
        self.last_ok.load(Ordering::Relaxed)
    }

    /// `aof_rewrites`: rewrites started.
    pub fn rewrites(&self) -> u64 {
        self.rewrites.load(Ordering::Relaxed)
    }

    /// `aof_rewrites_consecutive_failures`.
    pub fn consecutive_failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// `aof_last_rewrite_time_sec`.
    pub fn last_secs(&self) -> i64 {
        self.last_secs.load(Ordering::Relaxed)
    }

    /// `aof_last_cow_size`.
    pub fn last_cow(&self) -> u64 {
        self.last_cow.load(Ordering::Relaxed)
    }

    fn failed(&self) {
        self.last_ok.store(false, Ordering::Relaxed);
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Redis's `aofRewriteLimited`: after three consecutive failures, automatic and scheduled
    /// rewrites wait 1, 2, 4, ... up to 60 minutes between attempts.
    fn limited(&self) -> bool {
        let mut l = self.limit.lock().unwrap_or_else(|e| e.into_inner());
        if self.consecutive_failures() < LIMIT_THRESHOLD {
            *l = (0, 0);
            return false;
        }
        let now = unix_secs();
        if l.1 != 0 {
            if now < l.1 {
                return true;
            }
            l.1 = 0;
            return false;
        }
        l.0 = if l.0 == 0 { 1 } else { l.0 * 2 }.min(LIMIT_MAX_MINUTES);
        l.1 = now + l.0 * 60;
        log::warn!(
            "Background AOF rewrite has repeatedly failed and triggered the limit, will retry in \
             {} minutes",
            l.0
        );
        true
    }
}

/// Whether any background child (BGSAVE or rewrite) runs: Redis's `hasActiveChildProcess`.
pub fn any_child(server: &Server) -> bool {
    server.persist.child().is_some() || server.aof.rewrite.child().is_some()
}

/// Why a rewrite did not start.
#[derive(Debug, PartialEq, Eq)]
pub enum RewriteError {
    /// A rewrite is already running.
    InProgress,
    /// Another child (a BGSAVE) is running.
    ChildActive,
    /// Creating the files, the pipe or the fork failed (logged).
    Failed,
}

/// The AOF's directory, names and manifest: what the AOF uses, or what is on disk while it
/// is off (Redis keeps the manifest loaded either way).
fn layout(server: &Server) -> Result<Files, AofError> {
    if let Some(f) = server.aof.files().clone() {
        return Ok(f);
    }
    let cfg = &server.config;
    let dir = PathBuf::from(cfg.value("appenddirname").unwrap_or_default());
    let filename = cfg.value("appendfilename").unwrap_or_default();
    let path = dir.join(format!("{filename}.manifest"));
    let manifest = match std::fs::read(&path) {
        Ok(text) => Manifest::parse(&text).map_err(|reason| AofError::Manifest {
            path: path.display().to_string(),
            reason,
        })?,
        Err(_) => Manifest::default(),
    };
    Ok(Files {
        dir,
        filename,
        manifest,
    })
}

fn temp_incr_name(filename: &str) -> String {
    format!("temp-{filename}.incr")
}

fn temp_names(pid: libc::pid_t) -> [String; 2] {
    [
        format!("temp-rewriteaof-bg-{pid}.aof"),
        format!("temp-rewriteaof-{pid}.aof"),
    ]
}

/// A new incremental file, truncated (`O_TRUNC`): a name left from an earlier failed attempt
/// may exist. An existing file is unlinked first, so that a writer still appending to it
/// (the previous temp file of a retried `WAIT_REWRITE`) keeps its own inode.
fn create_incr(dir: &Path, name: &str) -> Result<File, ()> {
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| {
            log::warn!("Can't open the append-only file {name}: {}", strerror(&e));
        })
}

/// Redis's `rewriteAppendOnlyFileBackground`: opens the next incremental file (listing it in
/// the manifest when the AOF is on) and forks the child that writes the new base. Takes the
/// exclusive gate (nested when the caller holds it), so that the fork is the cut.
pub fn start(server: &Server, session: &mut Session) -> Result<libc::pid_t, RewriteError> {
    session.exclusive(|s| start_exclusive(server, s))
}

fn start_exclusive(server: &Server, s: &mut Session) -> Result<libc::pid_t, RewriteError> {
    let aof = &server.aof;
    let rw = &aof.rewrite;
    // Only ever held briefly and never across the gate (see `persist::snapshot::bgsave`).
    let mut slot = rw.child_lock();
    if slot.is_some() {
        return Err(RewriteError::InProgress);
    }
    if server.persist.child().is_some() {
        return Err(RewriteError::ChildActive);
    }
    let fail = || {
        rw.last_ok.store(false, Ordering::Relaxed);
        Err(RewriteError::Failed)
    };
    let mut files = match layout(server) {
        Ok(f) => f,
        Err(e) => {
            log::warn!("{e}");
            return fail();
        }
    };
    if let Err(e) = std::fs::create_dir_all(&files.dir) {
        log::warn!(
            "Can't open or create append-only dir {}: {}",
            files.dir.display(),
            strerror(&e)
        );
        return fail();
    }
    let state = aof.state();
    let incr = match state {
        State::Off => None,
        State::On => {
            let mut m = files.manifest.clone();
            let name = m.new_incr(&files.filename);
            let Ok(file) = create_incr(&files.dir, &name) else {
                return fail();
            };
            if let Err(e) = m.persist(&files.dir, &files.filename) {
                log::warn!("Can't persist the AOF manifest: {}", strerror(&e));
                let _ = std::fs::remove_file(files.dir.join(&name));
                return fail();
            }
            log::info!("Creating AOF incr file {name} on background rewrite");
            files.manifest = m;
            *aof.files() = Some(files.clone());
            Some(file)
        }
        State::WaitRewrite => {
            let name = temp_incr_name(&files.filename);
            let Ok(file) = create_incr(&files.dir, &name) else {
                return fail();
            };
            log::info!("Creating AOF incr file {name} on background rewrite");
            Some(file)
        }
    };
    rw.rewrites.fetch_add(1, Ordering::Relaxed);
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into the two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        let e = io::Error::last_os_error();
        log::warn!(
            "Can't rewrite append only file in background: pipe: {}",
            strerror(&e)
        );
        return fail();
    }
    // SAFETY: both descriptors were just created by pipe2 and are owned by nobody else.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let preamble = server.config.value("aof-use-rdb-preamble").as_deref() != Some("no");
    let st = server.store.stats();
    let aux = Aux {
        ctime: unix_secs(),
        used_mem: st.log_memory_bytes.saturating_add(st.index_memory_bytes),
        aof_base: true,
        key_delay: crate::persist::snapshot::key_save_delay(server),
        libraries: server.scripts.functions.codes(),
        // An AOF base describes data, not a replication stream (Redis passes no `rsi`).
        repl: None,
    };
    let now_ms = unix_ms();
    let forked = std::time::Instant::now();
    // SAFETY: fork in a multi-threaded process: the child only runs `child_main`, which keeps
    // to what is safe there (see `persist::snapshot`) and never returns. Every other thread is
    // outside the store (the caller holds the exclusive gate).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        child_main(s, preamble, now_ms, aux, write_end.as_raw_fd());
    }
    if pid < 0 {
        let e = io::Error::last_os_error();
        log::warn!(
            "Can't rewrite append only file in background: fork: {}",
            strerror(&e)
        );
        return fail();
    }
    let persist = &server.persist;
    let fork_usec = forked.elapsed().as_micros() as u64;
    persist.latest_fork_usec.store(fork_usec, Ordering::Relaxed);
    crate::latency::forked(server, fork_usec);
    persist.total_forks.fetch_add(1, Ordering::Relaxed);
    // The cut: no command runs, so every number below this one is in the child's copy.
    let cut = server.store.next_commit_seq();
    let mut switches = aof.switches();
    if let Some(file) = incr {
        if aof.is_on() {
            aof.switch_at(cut, file);
            switches += 1;
        } else if let Some(arc) = server.arc()
            && aof.start_file(&arc, Some(files), file).is_ok()
        {
            // The first rewrite of `CONFIG SET appendonly yes`: appending starts at the cut.
        } else {
            log::warn!("Can't start appending to the AOF");
            // SAFETY: stops and reaps our own child.
            unsafe {
                libc::kill(pid, libc::SIGUSR1);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
            return fail();
        }
    }
    log::info!("Background append only file rewriting started by pid {pid}");
    persist.current.start(server.store.total_keys());
    rw.scheduled.store(false, Ordering::Relaxed);
    *slot = Some(Child {
        pid,
        started: unix_secs(),
        report: read_end,
        final_cow: None,
        switches,
        suffix: if preamble { ".rdb" } else { ".aof" },
        exited: None,
    });
    Ok(pid)
}

/// The rewrite child: writes `temp-rewriteaof-bg-<pid>.aof`, reports its copy-on-write size,
/// exits 0 on success and 1 on failure.
fn child_main(s: &mut Session, preamble: bool, now_ms: u64, aux: Aux, report: i32) -> ! {
    close_all_but_files(&[report]);
    child_info::set_pipe(report);
    let [bg, tmp] = temp_names(std::process::id() as libc::pid_t);
    let run = std::panic::AssertUnwindSafe(|| write_base(s, &tmp, &bg, preamble, now_ms, aux));
    let code = match std::panic::catch_unwind(run) {
        Ok(Ok(())) => {
            child_log(
                '*',
                &format!("Successfully created the temporary AOF base file {bg}"),
            );
            child_info::finish("AOF rewrite");
            0
        }
        Ok(Err(msg)) => {
            child_log('#', &msg);
            1
        }
        Err(_) => 1,
    };
    // SAFETY: _exit ends the child at once; nothing of the parent's state is torn down.
    unsafe { libc::_exit(code) }
}

/// Redis's `rewriteAppendOnlyFile`: the base into `tmp`, flushed and fsynced, renamed to `bg`.
fn write_base(
    s: &mut Session,
    tmp: &str,
    bg: &str,
    preamble: bool,
    now_ms: u64,
    aux: Aux,
) -> Result<(), String> {
    let file = File::create(tmp).map_err(|e| {
        format!(
            "Opening the temp file for AOF rewrite in rewriteAppendOnlyFile(): {}",
            strerror(&e)
        )
    })?;
    let werr = |e: io::Error| {
        let _ = std::fs::remove_file(tmp);
        format!(
            "Write error writing append only file on disk: {}",
            strerror(&e)
        )
    };
    let w = BufWriter::with_capacity(1 << 16, file);
    let w = if preamble {
        write_snapshot(s, now_ms, aux, w).map_err(werr)?.0
    } else {
        write_commands(s, now_ms, aux, w).map_err(werr)?
    };
    let mut file = w.into_inner().map_err(|e| werr(e.into_error()))?;
    file.flush().map_err(werr)?;
    file.sync_all().map_err(werr)?;
    drop(file);
    if let Err(e) = std::fs::rename(tmp, bg) {
        let _ = std::fs::remove_file(tmp);
        return Err(format!(
            "Error moving temp append only file on the final destination: {}",
            strerror(&e)
        ));
    }
    Ok(())
}

/// Redis's `killAppendOnlyChild`: stops a running rewrite (SIGUSR1), waits for it and removes
/// its temp files. True if there was one.
pub fn kill_child(server: &Server) -> bool {
    let Some(child) = server.aof.rewrite.child_lock().take() else {
        return false;
    };
    log::info!("Killing running AOF rewrite child: {}", child.pid);
    if child.exited.is_none() {
        // SAFETY: signals and waits for our own, not yet reaped, child.
        unsafe {
            libc::kill(child.pid, libc::SIGUSR1);
            let mut status = 0;
            libc::waitpid(child.pid, &mut status, 0);
        }
    }
    for t in temp_names(child.pid) {
        let _ = std::fs::remove_file(t);
    }
    server.persist.current.reset();
    true
}

/// Redis's `prepareForShutdown` refusal: while the AOF waits for its first rewrite, that
/// rewrite is the only copy the AOF will have, so a shutdown without FORCE is refused (logged).
pub fn blocks_shutdown(server: &Server) -> bool {
    if server.aof.state() == State::WaitRewrite && server.aof.rewrite.child().is_some() {
        log::warn!("Writing initial AOF, can't exit.");
        return true;
    }
    false
}

/// Deletes the temporary incremental file of a failed or abandoned `WAIT_REWRITE`
/// (Redis's `aofDelTempIncrAofFile`).
pub(crate) fn remove_temp_incr(server: &Server) {
    let Ok(files) = layout(server) else {
        return;
    };
    let name = temp_incr_name(&files.filename);
    log::info!("Removing the temp incr aof file {name} in the background");
    let _ = std::fs::remove_file(files.dir.join(name));
}

/// The rewrite part of `serverCron`, before the save points: reaps a finished child and starts
/// a scheduled rewrite when no child runs.
pub fn cron(server: &Server, session: &mut Session) {
    reap(server, session);
    let rw = &server.aof.rewrite;
    if rw.scheduled() && !any_child(server) && !rw.limited() {
        let _ = start(server, session);
    }
}

/// The automatic rewrite (`auto-aof-rewrite-percentage`, `auto-aof-rewrite-min-size`): with
/// no child running and the AOF on, rewrites once the files have grown by the percentage
/// since the last rewrite (or start-up) and are larger than the minimum.
pub fn auto(server: &Server, session: &mut Session) {
    let aof = &server.aof;
    if aof.state() != State::On || any_child(server) {
        return;
    }
    let num = |name: &str| {
        server
            .config
            .value(name)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let perc = num("auto-aof-rewrite-percentage");
    let current = aof.current_size();
    if perc == 0 || current <= num("auto-aof-rewrite-min-size") {
        return;
    }
    let base = aof.base_size.load(Ordering::Relaxed).max(1);
    let growth = (current * 100 / base) as i64 - 100;
    if growth >= perc as i64 && !aof.rewrite.limited() {
        log::info!("Starting automatic rewriting of AOF on {growth}% growth");
        let _ = start(server, session);
    }
}

/// Redis's `startAppendOnly` (`CONFIG SET appendonly yes`): the AOF waits for a rewrite, which
/// starts now, or when the running BGSAVE ends. Call under the exclusive gate.
pub(crate) fn start_append(
    server: &Server,
    session: &mut Session,
    in_exec: bool,
) -> Result<(), String> {
    let aof = &server.aof;
    aof.set_state(State::WaitRewrite);
    if server.persist.child().is_some() {
        aof.rewrite.scheduled.store(true, Ordering::Relaxed);
        log::warn!(
            "AOF was enabled but there is already another background operation. An AOF \
             background was scheduled to start when possible."
        );
        return Ok(());
    }
    if in_exec {
        aof.rewrite.scheduled.store(true, Ordering::Relaxed);
        log::warn!(
            "AOF was enabled during a transaction. An AOF background was scheduled to start \
             when possible."
        );
        return Ok(());
    }
    if aof.rewrite.child().is_some() {
        log::warn!(
            "AOF was enabled but there is already an AOF rewriting in background. Stopping \
             background AOF and starting a rewrite now."
        );
        kill_child(server);
    }
    if start(server, session).is_err() {
        aof.set_state(State::Off);
        log::warn!(
            "Redis needs to enable the AOF but can't trigger a background AOF rewrite \
             operation. Check the above logs for more info about the error."
        );
        return Err("Unable to turn on AOF. Check server logs.".to_owned());
    }
    Ok(())
}
