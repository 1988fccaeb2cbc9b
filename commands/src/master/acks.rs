//! What replicas acknowledge and what waits for it: WAIT's count of the replicas that have a
//! client's writes, `min-replicas-to-write`'s count of good replicas, and the wait for lagging
//! replicas before a shutdown (Redis 7.0's `shutdown-timeout`).

use std::sync::atomic::Ordering;

use super::{GETACK, Master, Replica, State, deliver, lock};
use crate::server::{Server, unix_ms};

/// A WAIT's goal: every write the store had numbered when it ran (`seq`, exclusive) must be in
/// the stream; `offset` is where the stream stood once they were.
#[derive(Debug, Clone, Copy)]
pub struct WaitTarget {
    /// The store's next commit number when WAIT first ran.
    pub seq: u64,
    /// The stream offset that covers them, once emitted.
    pub offset: Option<i64>,
}

/// What the wait before a shutdown came to.
#[derive(Debug, PartialEq, Eq)]
pub enum ShutdownWait {
    /// No replica lagged (or `shutdown-timeout` is 0): nothing was paused.
    NoWait,
    /// Writes were paused while waiting (unpause them if the shutdown fails).
    Paused,
    /// SHUTDOWN ABORT stopped the wait; writes are unpaused.
    Aborted,
}

/// A SHUTDOWN the main thread carried out for client `id` did not exit (the final save
/// failed): the client gets Redis's error as its reply.
pub fn answer_failed_shutdown(server: &Server, id: u64) {
    if let Some(shared) = server.clients.get(id) {
        let mut wake = vec![false; server.threads];
        deliver(
            server,
            &shared,
            b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n",
            &mut wake,
        );
        server.wake_marked(&wake);
    }
}

impl Master {
    /// Redis's `noreplicaserr` check: with `min-replicas-to-write` and `min-replicas-max-lag`
    /// set, whether fewer replicas than asked are good. One relaxed load when it is off.
    #[inline]
    pub fn too_few_replicas(&self, server: &Server) -> bool {
        let want = server.config.min_replicas_to_write.load(Ordering::Relaxed);
        want != 0
            && server.config.min_replicas_max_lag.load(Ordering::Relaxed) != 0
            && (self.good.load(Ordering::Relaxed) as u64) < want
    }

    /// Recounts the good replicas (Redis's `refreshGoodSlavesCount`).
    pub(super) fn refresh_good(&self, server: &Server, st: &State) {
        let max_lag_ms = server.config.min_replicas_max_lag.load(Ordering::Relaxed) * 1000;
        let now = unix_ms();
        let good = st
            .replicas
            .iter()
            .filter(|e| {
                e.phase.is_online()
                    && now.saturating_sub(e.replica.ack_ms.load(Ordering::Relaxed)) / 1000 * 1000
                        <= max_lag_ms
            })
            .count();
        self.good.store(good, Ordering::Relaxed);
    }

    /// INFO replication's `min_slaves_good_slaves`, when the check is on.
    pub fn good_replicas(&self) -> usize {
        self.good.load(Ordering::Relaxed)
    }

    /// REPLCONF ACK from a replica: records its offset and wakes the WAIT clients.
    pub fn ack(&self, server: &Server, replica: &Replica, offset: i64) {
        replica.ack.fetch_max(offset, Ordering::AcqRel);
        replica.ack_ms.store(unix_ms(), Ordering::SeqCst);
        if replica.start_on_ack.swap(false, Ordering::SeqCst) {
            self.start_stream(server, replica);
        }
        if server.config.min_replicas_to_write.load(Ordering::Relaxed) != 0 {
            self.refresh_good(server, &self.state());
        }
        if self.waiting.load(Ordering::Acquire) {
            self.wake_waiters(server);
        }
    }

    /// How many online replicas acknowledged `offset` (Redis's `replicationCountAcksByOffset`).
    pub fn acked(&self, offset: i64) -> i64 {
        self.state()
            .replicas
            .iter()
            .filter(|e| e.phase.is_online() && e.replica.acked() >= offset)
            .count() as i64
    }

    /// A WAIT client parks: it is woken on the next acknowledgement (and by the cron).
    pub fn add_waiter(&self, id: u64, thread: usize) {
        let mut w = lock(&self.waiters);
        if !w.iter().any(|&(i, _)| i == id) {
            w.push((id, thread));
        }
        self.waiting.store(true, Ordering::Release);
    }

    /// Wakes every WAIT client (each re-runs, answers or parks again).
    pub(super) fn wake_waiters(&self, server: &Server) {
        let waiters = {
            let mut w = lock(&self.waiters);
            self.waiting.store(false, Ordering::Release);
            std::mem::take(&mut *w)
        };
        for (id, thread) in waiters {
            crate::blocking::resume(server, id, thread);
        }
    }

    /// Whether a shutdown would wait for replicas now (`shutdown-timeout` set, one lagging).
    pub fn wants_shutdown_wait(&self, server: &Server) -> bool {
        server.config.value_u64("shutdown-timeout") != 0 && self.lagging()
    }

    /// Whether an online replica has not acknowledged the whole stream yet.
    pub(super) fn lagging(&self) -> bool {
        let offset = self.offset();
        self.state()
            .replicas
            .iter()
            .any(|e| e.phase.is_online() && e.replica.acked() < offset)
    }

    /// Redis 7.0's wait before shutting down (`shutdown-timeout`): while an online replica lags
    /// behind the stream, writes are paused and the replicas are asked to acknowledge, for up
    /// to `shutdown-timeout` seconds, so that a replica promoted after this master stops has
    /// every write it acknowledged. Call from a thread that serves no connection (the reactor
    /// threads keep sending the stream meanwhile). Returns whether writes were paused (the
    /// caller unpauses if the shutdown does not happen after all), or that SHUTDOWN ABORT
    /// stopped the wait (writes are unpaused then).
    pub fn wait_before_shutdown(&self, server: &Server) -> ShutdownWait {
        let timeout_ms = server.config.value_u64("shutdown-timeout") * 1000;
        if timeout_ms == 0 || !self.lagging() {
            return ShutdownWait::NoWait;
        }
        self.shutdown_abort.store(false, Ordering::SeqCst);
        self.shutdown_waiting.store(true, Ordering::SeqCst);
        let waited = self.wait_for_acks(server, timeout_ms);
        self.shutdown_waiting.store(false, Ordering::SeqCst);
        if waited {
            ShutdownWait::Paused
        } else {
            server.unpause_clients(crate::pause::Purpose::Shutdown, unix_ms());
            log::warn!("Shutdown manually aborted.");
            ShutdownWait::Aborted
        }
    }

    /// SHUTDOWN ABORT: stops a shutdown that waits for replicas; false when none waits.
    pub fn abort_shutdown(&self) -> bool {
        self.shutdown_waiting.load(Ordering::SeqCst)
            && !self.shutdown_abort.swap(true, Ordering::SeqCst)
    }

    /// Waits (see [`Master::wait_before_shutdown`]); false when SHUTDOWN ABORT stopped it.
    fn wait_for_acks(&self, server: &Server, timeout_ms: u64) -> bool {
        let now = unix_ms();
        server.pause_clients(
            crate::pause::Purpose::Shutdown,
            now + timeout_ms,
            false,
            now,
        );
        log::info!("Waiting for replicas before shutting down.");
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(timeout_ms);
        // Once, as Redis: a replica's answer to GETACK leaves the GETACK itself out, so asking
        // again and again would keep it behind; its acknowledgement a second later covers it.
        self.request_acks(server);
        while self.lagging() {
            if self.shutdown_abort.load(Ordering::SeqCst) {
                return false;
            }
            if std::time::Instant::now() >= deadline {
                let offset = self.offset();
                for e in &self.state().replicas {
                    let r = &e.replica;
                    if e.phase.is_online() && r.acked() < offset {
                        let lag = unix_ms().saturating_sub(r.ack_ms.load(Ordering::Relaxed)) / 1000;
                        log::warn!(
                            "Lagging replica {}:{} reported offset {} behind master, lag={lag}, \
                             state=online.",
                            r.ip,
                            r.port,
                            offset - r.acked()
                        );
                    }
                }
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        true
    }

    /// WAIT's request that replicas acknowledge soon (`REPLCONF GETACK *` down the stream).
    pub fn request_acks(&self, server: &Server) {
        server.aof.feed_raw(server, GETACK);
    }
}
