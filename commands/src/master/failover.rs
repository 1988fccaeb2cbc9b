//! FAILOVER: Redis's coordinated failover (`replication.c`, 6.2 on). The master pauses writes
//! (a pause of its own purpose, so CLIENT UNPAUSE does not end it), waits until a replica (the
//! one named with TO, or any) has acknowledged its whole stream, then follows that replica and
//! asks it with `PSYNC replid offset FAILOVER` to take over: the replica promotes itself and
//! continues the old master's history, so neither side loads anything. The pause ends once the
//! new master answers the PSYNC; if it refuses, or the replica never catches up in time (unless
//! FORCE), or FAILOVER ABORT comes, the server is a master again.
//!
//! The state machine runs from the cron (thread 0's tick, Redis's `updateFailoverStatus`)
//! and from the replication link, which sends the PSYNC and reports its answer.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

use ferrite_hybridlog::Session;

use crate::pause::Purpose;
use crate::server::{Server, unix_ms};

const NO_FAILOVER: u8 = 0;
const WAIT_FOR_SYNC: u8 = 1;
const IN_PROGRESS: u8 = 2;

/// What FAILOVER asked for.
#[derive(Debug, Default, Clone)]
struct Plan {
    /// The replica to hand over to (TO), or the one chosen once caught up.
    target: Option<(String, u16)>,
    /// When to give up waiting for the replica, Unix ms (0: never).
    end_ms: u64,
    /// At that time, hand over anyway (FORCE).
    force: bool,
}

/// The server's failover (Redis's `failover_state` and its companions).
#[derive(Debug, Default)]
pub struct Failover {
    state: AtomicU8,
    plan: Mutex<Plan>,
}

impl Failover {
    fn plan(&self) -> std::sync::MutexGuard<'_, Plan> {
        self.plan.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// INFO's `master_failover_state`.
    pub fn state_name(&self) -> &'static str {
        match self.state.load(Ordering::Acquire) {
            WAIT_FOR_SYNC => "waiting-for-sync",
            IN_PROGRESS => "failover-in-progress",
            _ => "no-failover",
        }
    }

    /// Whether a failover is under way (waiting or handing over).
    pub fn active(&self) -> bool {
        self.state.load(Ordering::Acquire) != NO_FAILOVER
    }

    /// Whether this server follows its chosen replica and asks it to take over: the link's
    /// PSYNC carries `FAILOVER`.
    pub fn in_progress(&self) -> bool {
        self.state.load(Ordering::Acquire) == IN_PROGRESS
    }

    /// FAILOVER, its checks passed: writes pause until the failover ends.
    pub(crate) fn begin(
        &self,
        server: &Server,
        target: Option<(String, u16)>,
        timeout_ms: u64,
        force: bool,
    ) {
        let now = unix_ms();
        *self.plan() = Plan {
            target,
            end_ms: if timeout_ms > 0 { now + timeout_ms } else { 0 },
            force,
        };
        self.state.store(WAIT_FOR_SYNC, Ordering::Release);
        server.pause_clients(Purpose::Failover, u64::MAX, false, now);
    }

    /// Redis's `clearFailoverState`: the failover is over (done or given up); writes resume.
    pub fn clear(&self, server: &Server) {
        *self.plan() = Plan::default();
        self.state.store(NO_FAILOVER, Ordering::Release);
        server.unpause_clients(Purpose::Failover, unix_ms());
    }

    /// Redis's `abortFailover`: gives the failover up, a master again if it was handing over.
    pub fn abort(&self, server: &Server, session: &mut Session, why: &str) {
        let state = self.state.load(Ordering::Acquire);
        if state == NO_FAILOVER {
            return;
        }
        match self.plan().target.as_ref() {
            Some((host, port)) => log::info!("FAILOVER to {host}:{port} aborted: {why}"),
            None => log::info!("FAILOVER to any replica aborted: {why}"),
        }
        if state == IN_PROGRESS {
            // Outside any command's exclusive section, so this waits for a cut.
            let _ = server.replication.unfollow(server, session);
        }
        self.clear(server);
    }

    /// Redis's `updateFailoverStatus`, from the cron: while waiting, gives up (or, with FORCE,
    /// hands over) at the deadline, and hands over to the target (or the first replica) once
    /// it has acknowledged the whole stream.
    pub fn update(&self, server: &Server, session: &mut Session) {
        if self.state.load(Ordering::Acquire) != WAIT_FOR_SYNC {
            return;
        }
        let plan = self.plan().clone();
        if plan.end_ms != 0 && plan.end_ms <= unix_ms() {
            if plan.force
                && let Some((host, port)) = &plan.target
            {
                log::info!("FAILOVER to {host}:{port} time out exceeded, failing over.");
                self.hand_over(server, session, host, *port);
            } else {
                self.abort(server, session, "Replica never caught up before timeout");
            }
            return;
        }
        let master = &server.master;
        let offset = master.offset();
        let chosen = match plan.target {
            Some((host, port)) => master
                .replica_at(&host, port)
                .filter(|&(online, acked)| online && acked == offset)
                .map(|_| (host, port)),
            None => master.caught_up(offset),
        };
        if let Some((host, port)) = chosen {
            self.plan().target = Some((host.clone(), port));
            log::info!("Failover target {host}:{port} is synced, failing over.");
            self.hand_over(server, session, &host, port);
        }
    }

    /// Follows the new master; the link's PSYNC asks it to take over.
    fn hand_over(&self, server: &Server, session: &mut Session, host: &str, port: u16) {
        self.state.store(IN_PROGRESS, Ordering::Release);
        let Some(server) = server.arc() else {
            return;
        };
        if server
            .replication
            .follow(&server, session, host, port)
            .is_err()
        {
            // (The cron holds no gate, so a cut always comes.)
            self.abort(&server, session, "no cut of the stream");
        }
    }

    /// The new master answered the link's `PSYNC ... FAILOVER`: `accepted` when it continued
    /// or started a full resync (the failover is done), else it refused.
    pub fn answered(&self, server: &Server, accepted: bool) {
        if !self.in_progress() {
            return;
        }
        if accepted {
            self.clear(server);
        } else {
            let mut session = server.store.session();
            self.abort(
                server,
                &mut session,
                "Failover target rejected psync request",
            );
        }
    }
}
