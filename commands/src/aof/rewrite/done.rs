//! The end of a rewrite (Redis's `checkChildrenDone` and `backgroundRewriteDoneHandler`):
//! reaping the child, installing the new base and manifest, deleting the history.

use std::io;
use std::sync::atomic::Ordering;

use ferrite_hybridlog::Session;

use super::{Child, State, layout, remove_temp_incr, temp_incr_name, temp_names};
use crate::aof::manifest::FileInfo;
use crate::persist::snapshot::fsync_dir;
use crate::persist::{strerror, unix_secs};
use crate::server::Server;

/// Redis's `checkChildrenDone` for the rewrite child, from the cron: once the child has
/// exited and the writer has made this rewrite's cut, finishes it under the exclusive gate
/// (the manifest changes and file renames serialize with CONFIG SET and new rewrites).
pub fn reap(server: &Server, session: &mut Session) {
    let aof = &server.aof;
    let (pid, exited) = {
        let mut slot = aof.rewrite.child_lock();
        let Some(c) = slot.as_mut() else {
            return;
        };
        if let Some(cow) = server.persist.current.drain(&c.report) {
            c.final_cow = Some(cow);
        }
        if c.exited.is_none() {
            let mut status = 0;
            // SAFETY: waitpid on our own child's pid, with a valid status pointer.
            let r = unsafe { libc::waitpid(c.pid, &mut status, libc::WNOHANG) };
            match r {
                0 => return,
                r if r < 0 => {
                    let e = io::Error::last_os_error();
                    log::warn!(
                        "waitpid() returned an error: {}. child_type: AOF, child_pid = {}",
                        strerror(&e),
                        c.pid
                    );
                    // Counts as an exit with an error.
                    c.exited = Some(1 << 8);
                }
                _ => c.exited = Some(status),
            }
        }
        // The base covers the numbers below the cut only: the writer must be past it first.
        if aof.switches() < c.switches {
            return;
        }
        (c.pid, c.exited.unwrap_or(0))
    };
    session.exclusive(|_| {
        let child = {
            let mut slot = aof.rewrite.child_lock();
            if slot.as_ref().map(|c| c.pid) != Some(pid) {
                return;
            }
            slot.take()
        };
        if let Some(child) = child {
            done(server, child, exited);
        }
    });
}

/// Redis's `backgroundRewriteDoneHandler`.
fn done(server: &Server, child: Child, status: libc::c_int) {
    let aof = &server.aof;
    let rw = &aof.rewrite;
    // The child has exited: its last reports are in the pipe.
    let last = server.persist.current.drain(&child.report);
    server.persist.current.reset();
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        log::info!("Background AOF rewrite terminated with success");
        if let Some(cow) = child.final_cow.or(last) {
            rw.last_cow.store(cow, Ordering::Relaxed);
        }
        if install(server, &child).is_ok() {
            rw.last_ok.store(true, Ordering::Relaxed);
            rw.failures.store(0, Ordering::Relaxed);
            log::info!("Background AOF rewrite finished successfully");
            if aof.state() == State::WaitRewrite {
                aof.set_state(State::On);
            }
        } else {
            rw.failed();
        }
    } else if libc::WIFEXITED(status) {
        rw.failed();
        log::warn!("Background AOF rewrite terminated with error");
    } else {
        let sig = if libc::WIFSIGNALED(status) {
            libc::WTERMSIG(status)
        } else {
            0
        };
        // SIGUSR1 is how a child is stopped on purpose: not an error.
        if sig != libc::SIGUSR1 {
            rw.failed();
        }
        log::warn!("Background AOF rewrite terminated by signal {sig}");
    }
    for t in temp_names(child.pid) {
        let _ = std::fs::remove_file(t);
    }
    if aof.state() == State::WaitRewrite {
        remove_temp_incr(server);
        rw.scheduled.store(true, Ordering::Relaxed);
    }
    rw.last_secs.store(
        unix_secs().saturating_sub(child.started) as i64,
        Ordering::Relaxed,
    );
}

/// The successful end of a rewrite: the new base (and, while waiting to turn on, the temp
/// incremental file) renamed into place, the superseded files marked as history in the new
/// manifest, then deleted.
fn install(server: &Server, child: &Child) -> Result<(), ()> {
    let aof = &server.aof;
    let state = aof.state();
    let mut files = layout(server).map_err(|e| log::warn!("{e}"))?;
    let [tmp, _] = temp_names(child.pid);
    let dir = files.dir.clone();
    let mut m = files.manifest.clone();
    let seq = m.base.as_ref().map_or(0, |b| b.seq) + 1;
    let base_name = format!("{}.{seq}.base{}", files.filename, child.suffix);
    if let Some(old) = m.base.take() {
        m.history.insert(0, FileInfo { kind: b'h', ..old });
    }
    m.base = Some(FileInfo {
        name: base_name.clone(),
        seq,
        kind: b'b',
    });
    let base_path = dir.join(&base_name);
    if let Err(e) = std::fs::rename(&tmp, &base_path) {
        log::warn!(
            "Error trying to rename the temporary AOF base file {tmp} into {}: {}",
            base_path.display(),
            strerror(&e)
        );
        return Err(());
    }
    log::info!("Successfully renamed the temporary AOF base file {tmp} into {base_name}");
    let mut new_incr = None;
    if state == State::WaitRewrite {
        let temp = temp_incr_name(&files.filename);
        let name = m.new_incr(&files.filename);
        if let Err(e) = std::fs::rename(dir.join(&temp), dir.join(&name)) {
            log::warn!(
                "Error trying to rename the temporary AOF incr file {temp} into {name}: {}",
                strerror(&e)
            );
            let _ = std::fs::remove_file(&base_path);
            return Err(());
        }
        log::info!("Successfully renamed the temporary AOF incr file {temp} into {name}");
        new_incr = Some(name);
    }
    // Every incremental file but the one being appended to is in the new base.
    let keep = usize::from(state != State::Off);
    let superseded = m.incrs.len().saturating_sub(keep);
    for f in m.incrs.drain(..superseded).rev() {
        m.history.insert(0, FileInfo { kind: b'h', ..f });
    }
    if let Err(e) = m.persist(&dir, &files.filename) {
        log::warn!("Can't persist the AOF manifest: {}", strerror(&e));
        let _ = std::fs::remove_file(&base_path);
        if let Some(n) = new_incr {
            let _ = std::fs::remove_file(dir.join(n));
        }
        return Err(());
    }
    if state != State::Off {
        let base_size = std::fs::metadata(&base_path).map_or(0, |md| md.len());
        aof.older_size.store(base_size, Ordering::Relaxed);
        aof.base_size.store(aof.current_size(), Ordering::Relaxed);
    }
    // Redis's `aofDelHistoryFiles`.
    if !m.history.is_empty() {
        for f in m.history.drain(..) {
            log::info!("Removing the history file {} in the background", f.name);
            let _ = std::fs::remove_file(dir.join(&f.name));
        }
        if let Err(e) = m.persist(&dir, &files.filename) {
            log::warn!("Can't persist the AOF manifest: {}", strerror(&e));
        }
    }
    files.manifest = m;
    let _ = fsync_dir(&base_path.display().to_string());
    *aof.files() = Some(files);
    Ok(())
}
