//! Taking snapshots: SAVE writes the file on the calling thread under the exclusive gate;
//! BGSAVE forks, and the child, alone in its copy of the process, writes a point-in-time
//! snapshot while the parent keeps serving. SHUTDOWN's final save is a SAVE.
//!
//! # The child after `fork`
//! The parent forks while holding the store's exclusive gate, so no other thread is inside an
//! operation: no record is half-written, no seqlock or record lock is held, and the child can
//! walk the store with the forking thread's session as if it were still exclusive. The child
//! reads memory and writes one file; it allocates (glibc's malloc resets its locks in the child)
//! but takes no other lock: it does not log through the logger (whose stdout lock another thread
//! may have held at the fork) and writes its few lines to stdout with `write(2)` instead. It
//! leaves with `_exit`, running no destructor and no atexit handler.

use std::fs::File;
use std::io::{self, BufWriter};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::Ordering;

use ferrite_hybridlog::Session;

use super::rdb_write::{Aux, write_snapshot};
use super::{Child, strerror, unix_secs};
use crate::server::{Server, log_timestamp, unix_ms};

/// Why a save failed; `Display` is the line Redis logs.
#[derive(Debug)]
pub enum SaveError {
    /// The temp file could not be created.
    Open {
        /// Its name.
        tmp: String,
        /// Why.
        err: io::Error,
    },
    /// Writing, flushing or syncing failed (`op` names the step as Redis does).
    Write {
        /// `rdbSaveRio`, `fflush`, `fsync`, `fsyncFileDir`.
        op: &'static str,
        /// Why.
        err: io::Error,
    },
    /// The temp file could not replace the dump.
    Rename {
        /// The temp file.
        tmp: String,
        /// The dump's name.
        filename: String,
        /// Why.
        err: io::Error,
    },
}

fn cwd() -> String {
    std::env::current_dir()
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into())
}

impl std::fmt::Display for SaveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SaveError::Open { tmp, err } => write!(
                f,
                "Failed opening the temp RDB file {tmp} (in server root dir {}) for saving: {}",
                cwd(),
                strerror(err)
            ),
            SaveError::Write { op, err } => {
                write!(f, "Write error saving DB on disk({op}): {}", strerror(err))
            }
            SaveError::Rename { tmp, filename, err } => write!(
                f,
                "Error moving temp DB file {tmp} on the final destination {filename} (in server \
                 root dir {}): {}",
                cwd(),
                strerror(err)
            ),
        }
    }
}

/// The temp file a process with `pid` writes its dump to.
fn temp_name(pid: u32) -> String {
    format!("temp-{pid}.rdb")
}

/// Redis's `fsyncFileDir`: makes the rename durable.
pub(crate) fn fsync_dir(filename: &str) -> io::Result<()> {
    let dir = match std::path::Path::new(filename).parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    File::open(dir)?.sync_all()
}

/// Redis's `rdbSave`: the snapshot as of `now_ms` into `temp-<pid>.rdb` in the working
/// directory (the `dir` parameter), fsync, rename over `filename`, fsync the directory.
/// Returns the keys written. The caller keeps the store still (see the module docs).
pub fn save_to(
    session: &mut Session,
    filename: &str,
    now_ms: u64,
    aux: Aux,
) -> Result<u64, SaveError> {
    let tmp = temp_name(std::process::id());
    let file = File::create(&tmp).map_err(|err| SaveError::Open {
        tmp: tmp.clone(),
        err,
    })?;
    let fail = |op: &'static str, err: io::Error| {
        let _ = std::fs::remove_file(&tmp);
        SaveError::Write { op, err }
    };
    let w = BufWriter::with_capacity(1 << 16, file);
    let (w, keys) = write_snapshot(session, now_ms, aux, w).map_err(|e| fail("rdbSaveRio", e))?;
    let file = w.into_inner().map_err(|e| fail("fflush", e.into_error()))?;
    file.sync_all().map_err(|e| fail("fsync", e))?;
    drop(file);
    if let Err(err) = std::fs::rename(&tmp, filename) {
        let _ = std::fs::remove_file(&tmp);
        return Err(SaveError::Rename {
            tmp,
            filename: filename.to_owned(),
            err,
        });
    }
    fsync_dir(filename).map_err(|err| SaveError::Write {
        op: "fsyncFileDir",
        err,
    })?;
    Ok(keys)
}

/// The AUX fields of a save starting now.
fn aux(server: &Server) -> Aux {
    let st = server.store.stats();
    Aux {
        ctime: unix_secs(),
        used_mem: st.log_memory_bytes.saturating_add(st.index_memory_bytes),
        aof_base: false,
        key_delay: key_save_delay(server),
        libraries: server.scripts.functions.codes(),
        // Exact under the exclusive gate at a cut of the stream (a foreground save); a fork
        // takes it again when it holds the gate.
        repl: server
            .master
            .stream_cut()
            .and_then(|_cut| server.master.save_info(server)),
    }
}

/// `rdb-key-save-delay`, read before a fork (the child takes no lock).
pub(crate) fn key_save_delay(server: &Server) -> i64 {
    server
        .config
        .value("rdb-key-save-delay")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The dump file's name (`dbfilename`, in the working directory).
pub(crate) fn dbfilename(server: &Server) -> String {
    server
        .config
        .value("dbfilename")
        .unwrap_or_else(|| "dump.rdb".into())
}

/// A foreground save (SAVE, SHUTDOWN, FLUSHALL): call under the exclusive gate. Logs as Redis
/// does; true on success, which resets the dirty count and LASTSAVE.
pub fn save(server: &Server, session: &mut Session) -> bool {
    let dirty = server.stats.dirty();
    match save_to(session, &dbfilename(server), unix_ms(), aux(server)) {
        Ok(_) => {
            log::info!("DB saved on disk");
            server.persist.saved(dirty, unix_secs());
            true
        }
        Err(e) => {
            log::warn!("{e}");
            false
        }
    }
}

/// Why BGSAVE did not start.
#[derive(Debug, PartialEq, Eq)]
pub enum BgsaveError {
    /// A child is already saving.
    InProgress,
    /// Another child (an AOF rewrite) is running.
    ChildActive,
    /// `fork` or `pipe` failed (logged).
    Fork,
    /// A fork for replicas found the master's stream halfway through a chunk (try again).
    NotACut,
}

/// Where a background save writes.
#[derive(Debug)]
pub(crate) enum Target {
    /// The dump file (BGSAVE, and a disk-based full resync).
    Disk,
    /// A diskless full resync: the write end of a pipe that the replicas' transfer thread
    /// reads; the payload is framed by `mark` (`$EOF:<mark>\r\n`, the dump, `<mark>`).
    Replicas {
        /// The child's end of the pipe.
        pipe: OwnedFd,
        /// Redis's `RDB_EOF_MARK_SIZE` random bytes.
        mark: [u8; 40],
    },
}

/// Redis's `rdbSaveBackground`: forks a child that writes the snapshot. Takes the exclusive
/// gate for the fork only (nested in it when the caller already holds it); the check for a
/// running child and the record of the new one happen under it too, so two threads asking at
/// once start one child.
pub fn bgsave(server: &Server, session: &mut Session) -> Result<libc::pid_t, BgsaveError> {
    fork_save(server, session, Target::Disk, None)
}

/// Redis's `rdbSaveToSlavesSockets`: forks a child that streams the snapshot into `pipe`, for
/// the replicas waiting for a full resync; `reader` (the pipe's other end) goes to their
/// transfer thread (see [`crate::master`]).
pub(crate) fn bgsave_to_replicas(
    server: &Server,
    session: &mut Session,
    pipe: OwnedFd,
    reader: std::fs::File,
    mark: [u8; 40],
) -> Result<libc::pid_t, BgsaveError> {
    fork_save(
        server,
        session,
        Target::Replicas { pipe, mark },
        Some(reader),
    )
}

fn fork_save(
    server: &Server,
    session: &mut Session,
    target: Target,
    reader: Option<std::fs::File>,
) -> Result<libc::pid_t, BgsaveError> {
    let st = &server.persist;
    if st.child().is_some() {
        return Err(BgsaveError::InProgress);
    }
    let to_replicas = matches!(target, Target::Replicas { .. });
    let filename = dbfilename(server);
    let aux = aux(server);
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into the two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        let e = io::Error::last_os_error();
        if !to_replicas {
            st.rdb_saves.fetch_add(1, Ordering::Relaxed);
            st.last_bgsave_ok.store(false, Ordering::Relaxed);
        }
        log::warn!("Can't save in background: pipe: {}", strerror(&e));
        return Err(BgsaveError::Fork);
    }
    // SAFETY: both descriptors were just created by pipe2 and are owned by nobody else.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut reader = reader;
    let mut aux = aux;
    session.exclusive(|s| {
        // The stream's position now, with every command that wrote what the child saves
        // counted in it (nothing runs beside the exclusive gate), unless a replica's master
        // client is halfway through a chunk (see `Master::stream_cut`): then the fork serves
        // no replica, and a fork only for replicas waits for the next tick.
        let cut = server.master.stream_cut();
        if cut.is_none() && to_replicas {
            return Err(BgsaveError::NotACut);
        }
        aux.repl = cut.as_ref().and_then(|_| server.master.save_info(server));
        // The child mutex is only ever held briefly and never across the gate, so taking it
        // here cannot wait on a thread that waits for us.
        let mut child = st.child_lock();
        if child.is_some() {
            return Err(BgsaveError::InProgress);
        }
        if server.aof.rewrite.child().is_some() {
            return Err(BgsaveError::ChildActive);
        }
        if !to_replicas {
            // Redis counts saves, not transfers (`stat_rdb_saves` in `rdbSaveBackground`).
            st.rdb_saves.fetch_add(1, Ordering::Relaxed);
            st.last_bgsave_try.store(unix_secs(), Ordering::Relaxed);
            st.dirty_before_bgsave
                .store(server.stats.dirty(), Ordering::Relaxed);
        }
        let now_ms = unix_ms();
        let started = std::time::Instant::now();
        // SAFETY: fork in a multi-threaded process: the child only runs `child_main`, which
        // keeps to what is safe there (see the module docs) and never returns. Every other
        // thread is outside the store (we hold the exclusive gate).
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            child_main(s, &filename, now_ms, aux, write_end.as_raw_fd(), &target);
        }
        if pid < 0 {
            let e = io::Error::last_os_error();
            if !to_replicas {
                st.last_bgsave_ok.store(false, Ordering::Relaxed);
            }
            log::warn!("Can't save in background: fork: {}", strerror(&e));
            return Err(BgsaveError::Fork);
        }
        let usec = started.elapsed().as_micros() as u64;
        st.latest_fork_usec.store(usec, Ordering::Relaxed);
        crate::latency::forked(server, usec);
        st.total_forks.fetch_add(1, Ordering::Relaxed);
        // The fork is a cut of the replication stream: replicas waiting for one start here.
        match (&target, reader.take()) {
            (Target::Replicas { mark, .. }, Some(reader)) => {
                log::info!("Background RDB transfer started by pid {pid}");
                server.master.forked_to_replicas(server, reader, *mark, pid);
            }
            _ => {
                log::info!("Background saving started by pid {pid}");
                if cut.is_some() {
                    server.master.forked(server);
                }
            }
        }
        st.current.start(server.store.total_keys());
        *child = Some(Child {
            pid,
            started: unix_secs(),
            report: read_end,
            to_replicas,
        });
        Ok(pid)
    })
}

/// One log line from the child, in the logger's format with Redis's `C` role, written with a
/// single `write(2)` (no lock).
pub(crate) fn child_log(mark: char, msg: &str) {
    let line = format!(
        "{}:C {} {mark} {msg}\n",
        std::process::id(),
        log_timestamp()
    );
    // SAFETY: writes the bytes of a live String to stdout; a short or failed write only loses
    // a log line.
    unsafe {
        libc::write(1, line.as_ptr().cast(), line.len());
    }
}

/// Private dirty bytes of this process (the pages the fork has copied so far): Redis's
/// `zmalloc_get_private_dirty`, from `/proc/self/smaps_rollup`.
pub(crate) fn private_dirty() -> u64 {
    let s = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    s.lines()
        .filter_map(|l| l.strip_prefix("Private_Dirty:"))
        .filter_map(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .sum::<u64>()
        * 1024
}

/// Closes every descriptor from 3 up that is not a regular file (nor one of `keep`).
pub(crate) fn close_all_but_files(keep: &[i32]) {
    // SAFETY: `lim` is plain old data that getrlimit fills.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let max = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        i32::try_from(lim.rlim_cur).unwrap_or(i32::MAX).min(1 << 20)
    } else {
        1 << 16
    };
    for fd in 3..max {
        if keep.contains(&fd) {
            continue;
        }
        // SAFETY: `st` is plain old data that fstat fills; an fd that is not open fails with
        // EBADF and is skipped.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            continue;
        }
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            // SAFETY: closing a descriptor the child does not use.
            unsafe { libc::close(fd) };
        }
    }
}

/// The BGSAVE child: writes the file (or streams the snapshot to the replicas' pipe), reports
/// its copy-on-write size on `report`, exits 0 on success and 1 on failure.
fn child_main(
    s: &mut Session,
    filename: &str,
    now_ms: u64,
    aux: Aux,
    report: i32,
    target: &Target,
) -> ! {
    // Like Redis's `closeChildUnusedResourceAfterFork`: drop the inherited listeners, client
    // sockets, rings and eventfds, so that a port or a connection the parent closes is not held
    // open by the child. Regular files stay: the disk tier's segment files hold the records
    // below the head, which the snapshot reads.
    let pipe = match target {
        Target::Replicas { pipe, .. } => pipe.as_raw_fd(),
        Target::Disk => -1,
    };
    close_all_but_files(&[report, pipe]);
    super::child_info::set_pipe(report);
    let run = std::panic::AssertUnwindSafe(|| match target {
        Target::Disk => save_to(s, filename, now_ms, aux).map(|_| "DB saved on disk"),
        Target::Replicas { pipe, mark } => stream_to(s, pipe, mark, now_ms, aux)
            .map(|()| "")
            .map_err(|err| SaveError::Write {
                op: "rdbSaveRioWithEOFMark",
                err,
            }),
    });
    let code = match std::panic::catch_unwind(run) {
        Ok(Ok(done)) => {
            if !done.is_empty() {
                child_log('*', done);
            }
            super::child_info::finish("RDB");
            0
        }
        Ok(Err(e)) => {
            child_log('#', &e.to_string());
            1
        }
        Err(_) => 1,
    };
    // SAFETY: _exit ends the child at once; nothing of the parent's state is torn down.
    unsafe { libc::_exit(code) }
}

/// Redis's `rdbSaveRioWithEOFMark`: the snapshot framed for a diskless transfer, whose length
/// is not known in advance: `$EOF:<mark>\r\n`, the dump, `<mark>`.
fn stream_to(
    s: &mut Session,
    pipe: &OwnedFd,
    mark: &[u8; 40],
    now_ms: u64,
    aux: Aux,
) -> io::Result<()> {
    use std::io::Write;
    let pipe = File::from(pipe.try_clone()?);
    let mut w = BufWriter::with_capacity(1 << 16, pipe);
    w.write_all(b"$EOF:")?;
    w.write_all(mark)?;
    w.write_all(b"\r\n")?;
    let (mut w, _) = write_snapshot(s, now_ms, aux, w)?;
    w.write_all(mark)?;
    w.flush()
}

/// Redis's `checkChildrenDone` for the RDB child: reaps it if it has exited
/// (`waitpid(WNOHANG)`) and records the outcome as `backgroundSaveDoneHandlerDisk` does.
pub fn reap(server: &Server) {
    let st = &server.persist;
    let mut guard = st.child_lock();
    let Some(child) = guard.as_ref() else {
        return;
    };
    let mut finished = st.current.drain(&child.report);
    let mut status = 0;
    // SAFETY: waitpid on our own child's pid, with a valid status pointer.
    let r = unsafe { libc::waitpid(child.pid, &mut status, libc::WNOHANG) };
    if r == 0 {
        return;
    }
    let Some(child) = guard.take() else {
        return;
    };
    drop(guard);
    // The child has exited: its last reports are in the pipe.
    finished = finished.or(st.current.drain(&child.report));
    st.current.reset();
    let now = unix_secs();
    st.last_bgsave_secs
        .store(now.saturating_sub(child.started) as i64, Ordering::Relaxed);
    if r < 0 {
        let e = io::Error::last_os_error();
        log::warn!(
            "waitpid() returned an error: {}. child_type: RDB, child_pid = {}",
            strerror(&e),
            child.pid
        );
        if child.to_replicas {
            server.master.diskless_done(server, false);
        } else {
            st.last_bgsave_ok.store(false, Ordering::Relaxed);
            server.master.bgsave_done(server, None);
        }
        return;
    }
    if child.to_replicas {
        // Redis's `backgroundSaveDoneHandlerSocket`: the child exits once it has written the
        // whole payload, so its replicas are online now (or dropped, if it failed).
        let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
        if ok {
            log::info!("Background RDB transfer terminated with success");
            if let Some(cow) = finished {
                st.last_cow_size.store(cow, Ordering::Relaxed);
            }
        } else if libc::WIFEXITED(status) {
            log::warn!("Background transfer error");
        } else {
            log::warn!(
                "Background transfer terminated by signal {}",
                libc::WTERMSIG(status)
            );
        }
        server.master.diskless_done(server, ok);
        return;
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        log::info!("Background saving terminated with success");
        if let Some(cow) = finished {
            st.last_cow_size.store(cow, Ordering::Relaxed);
        }
        st.saved(st.dirty_before_bgsave.load(Ordering::Relaxed), now);
        server.master.bgsave_done(server, Some(&dbfilename(server)));
    } else if libc::WIFEXITED(status) {
        log::warn!("Background saving error");
        st.last_bgsave_ok.store(false, Ordering::Relaxed);
        server.master.bgsave_done(server, None);
    } else {
        let sig = if libc::WIFSIGNALED(status) {
            libc::WTERMSIG(status)
        } else {
            0
        };
        log::warn!("Background saving terminated by signal {sig}");
        let _ = std::fs::remove_file(temp_name(child.pid as u32));
        server.master.bgsave_done(server, None);
        // SIGUSR1 is how Ferrite (and Redis) stops a child on purpose: not an error.
        if sig != libc::SIGUSR1 {
            st.last_bgsave_ok.store(false, Ordering::Relaxed);
        }
    }
}

/// Stops a running BGSAVE child (SIGUSR1, as Redis's `killRDBChild`), waits for it and removes
/// its temp file; the save counts as neither success nor failure. True if there was one.
pub fn kill_child(server: &Server) -> bool {
    let Some(child) = server.persist.child_lock().take() else {
        return false;
    };
    // SAFETY: signals and waits for our own, not yet reaped, child.
    unsafe {
        libc::kill(child.pid, libc::SIGUSR1);
        let mut status = 0;
        libc::waitpid(child.pid, &mut status, 0);
    }
    let _ = std::fs::remove_file(temp_name(child.pid as u32));
    server.persist.current.reset();
    if child.to_replicas {
        server.master.diskless_done(server, false);
    } else {
        server.master.bgsave_done(server, None);
    }
    true
}

/// Stops the BGSAVE child `pid` (SIGUSR1) if it is still the running one; the cron reaps it.
/// Checked under the child lock, which reaping holds from `waitpid` until the slot is emptied,
/// so the signal cannot reach a reaped child's recycled pid.
pub(crate) fn stop_child(server: &Server, pid: libc::pid_t) {
    let child = server.persist.child_lock();
    if child.as_ref().is_some_and(|c| c.pid == pid) {
        // SAFETY: signals our own child, not yet reaped (see above).
        unsafe { libc::kill(pid, libc::SIGUSR1) };
    }
}

/// The end of Redis's `flushAllDataAndResetRDB` (FLUSHALL, under the exclusive gate): a running
/// BGSAVE would write the keys just flushed, so it is stopped, and with save points configured
/// the empty dataset is saved at once, so that a restart does not bring the keys back.
pub fn after_flushall(server: &Server, session: &mut Session) {
    kill_child(server);
    if !super::schedule::save_points(server).is_empty() {
        save(server, session);
    }
}

/// SHUTDOWN's options.
#[derive(Debug, Default, Clone, Copy)]
pub struct ShutdownFlags {
    /// NOSAVE: no final save even with save points.
    pub nosave: bool,
    /// SAVE: a final save even without save points.
    pub save: bool,
    /// NOW: do not wait for lagging replicas.
    pub now: bool,
    /// FORCE: exit even if the final save fails.
    pub force: bool,
}

/// Redis's `finishShutdown`, called under the exclusive gate: stops a BGSAVE child, saves if
/// save points are configured (or SAVE was asked) unless NOSAVE, then exits the process with
/// status 0 while still holding the gate, so that nothing written after the final save was
/// acknowledged. Returns only when the save failed without FORCE (Redis keeps running then).
pub fn finish_shutdown(server: &Server, session: &mut Session, flags: ShutdownFlags) {
    if server.persist.child().is_some() {
        log::warn!("There is a child saving an .rdb. Killing it!");
        kill_child(server);
    }
    if server.aof.rewrite.child().is_some() {
        // The AOF being turned on has no file yet: its rewrite is the dataset's only copy.
        if server.aof.state() == crate::aof::State::WaitRewrite {
            if flags.force {
                log::warn!("Writing initial AOF. Exit anyway.");
            } else if crate::aof::rewrite::blocks_shutdown(server) {
                log::warn!(
                    "Errors trying to shut down the server. Check the logs for more information."
                );
                return;
            }
        }
        log::warn!("There is a child rewriting the AOF. Killing it!");
        crate::aof::rewrite::kill_child(server);
    }
    let save_points = !super::schedule::save_points(server).is_empty();
    if (save_points && !flags.nosave) || flags.save {
        log::info!("Saving the final RDB snapshot before exiting.");
        if !save(server, session) {
            if flags.force {
                log::warn!("Error trying to save the DB. Exit anyway.");
            } else {
                log::warn!("Error trying to save the DB, can't exit.");
                log::warn!(
                    "Errors trying to shut down the server. Check the logs for more information."
                );
                return;
            }
        }
    }
    super::remove_pidfile(server);
    log::warn!("Ferrite is now ready to exit, bye bye...");
    log::logger().flush();
    std::process::exit(0);
}
