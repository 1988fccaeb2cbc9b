//! When to save, and what a failed save forbids: the `save` points and the scheduled BGSAVE
//! (checked from a reactor tick, as Redis's `serverCron`), the dirty counter, and
//! `stop-writes-on-bgsave-error`.

use std::sync::atomic::Ordering;

use ferrite_hybridlog::Session;

use super::snapshot::{bgsave, reap};
use super::unix_secs;
use crate::aof::rewrite;
use crate::server::Server;
use crate::stats::ThreadStats;
use crate::table::{CommandSpec, flags};

/// Redis's `CONFIG_BGSAVE_RETRY_DELAY`: seconds before a failed BGSAVE is retried.
const RETRY_DELAY: u64 = 5;

/// The `save` parameter as `(seconds, changes)` pairs (CONFIG SET validated it).
pub fn save_points(server: &Server) -> Vec<(u64, u64)> {
    let v = server.config.value("save").unwrap_or_default();
    let nums: Vec<u64> = v
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    nums.chunks_exact(2).map(|p| (p[0], p[1])).collect()
}

/// Counts an executed command for `rdb_changes_since_last_save`.
///
/// Redis adds the number of changes a command made (`server.dirty++` per element: an MSET of
/// ten keys or an SADD of five new members count ten and five; a SET that changes nothing
/// still counts one, an SADD of existing members counts none). Ferrite counts one per write
/// command that did not answer with an error, which is exact for the single-change commands
/// that dominate, an undercount for multi-element writes, and an overcount for writes that
/// turn out to change nothing. Save points compare against it the same way.
#[inline]
pub fn count_write(stats: &ThreadStats, spec: &CommandSpec, errors: u32) {
    if errors == 0 && spec.has(flags::WRITE) {
        ThreadStats::add(&stats.dirty, 1);
    }
}

/// Redis's `writeCommandsDeniedByDiskError` for RDB: the last BGSAVE failed, save points are
/// configured and `stop-writes-on-bgsave-error` is on. Cheap when nothing failed (one load).
#[inline]
pub fn writes_denied(server: &Server) -> bool {
    server.persist.last_bgsave_failed() && writes_denied_slow(server)
}

#[cold]
fn writes_denied_slow(server: &Server) -> bool {
    server
        .config
        .value("stop-writes-on-bgsave-error")
        .as_deref()
        == Some("yes")
        && !save_points(server).is_empty()
}

/// The persistence part of `serverCron`, run from one reactor thread's tick (outside its shared
/// section): reaps a finished BGSAVE child, then starts a BGSAVE when a save point is reached
/// or one was scheduled, waiting `RETRY_DELAY` seconds after a failed one.
pub fn cron(server: &Server, session: &mut Session) {
    reap(server);
    server.master.cron(server, session);
    // Redis's order: a scheduled rewrite starts before the save points are checked.
    crate::aof::rewrite::cron(server, session);
    let st = &server.persist;
    if rewrite::any_child(server) {
        return;
    }
    let now = unix_secs();
    let retry_ok = now.saturating_sub(st.last_bgsave_try.load(Ordering::Relaxed)) > RETRY_DELAY
        || !st.last_bgsave_failed();
    if retry_ok {
        let dirty = super::changes_since_save(server);
        let since = now.saturating_sub(st.last_save());
        for (seconds, changes) in save_points(server) {
            if dirty >= changes && since > seconds {
                log::info!("{changes} changes in {seconds} seconds. Saving...");
                let _ = bgsave(server, session);
                return;
            }
        }
    }
    rewrite::auto(server, session);
    if rewrite::any_child(server) || !retry_ok {
        return;
    }
    if st.bgsave_scheduled.load(Ordering::Relaxed) && bgsave(server, session).is_ok() {
        st.bgsave_scheduled.store(false, Ordering::Relaxed);
    }
}
