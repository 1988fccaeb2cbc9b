//! CLIENT PAUSE (Redis's `pauseClients` and the postponing in `processCommand`): while a pause
//! holds, the commands it covers are not run but postponed: the connection parks with its
//! command unread, as a blocked client does, and runs it when the pause ends (its deadline, a
//! longer pause's, or CLIENT UNPAUSE). `ALL` covers every command, CLIENT UNPAUSE included (as
//! in Redis 7.0, only the deadline ends it); `WRITE` covers the commands that may write or
//! propagate: write commands, PUBLISH and the other `may_replicate` ones, scripts not declared
//! `no-writes`, and EXEC of a transaction holding any of them. Active expiry and eviction wait
//! while a pause holds, and reads answer expired keys as missing without deleting them
//! (`Server::sync_lazy_expiry`), so that the dataset does not change under a paused failover.
//!
//! Pauses have purposes, as in Redis: CLIENT PAUSE, a shutdown waiting for its replicas, and
//! FAILOVER each hold their own, and the most restrictive one not ended is in force. That one
//! is two words every command reads with relaxed loads: the kind, and the end. A thread
//! postponing a command parks it until the end; ending a pause early (CLIENT UNPAUSE, a
//! failover's end) wakes every thread so that each resumes its postponed clients.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use crate::args::Args;
use crate::client::Client;
use crate::server::Server;
use crate::table::{CommandSpec, flags};

const NONE: u8 = 0;
const WRITE: u8 = 1;
const ALL: u8 = 2;

/// Why clients are paused (Redis's `pause_purpose`): each purpose holds its own pause, and the
/// one in force is the most restrictive of those not ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// CLIENT PAUSE (CLIENT UNPAUSE ends only this one).
    Client = 0,
    /// A shutdown waiting for its replicas.
    Shutdown = 1,
    /// FAILOVER, until the failover ends.
    Failover = 2,
}

const PURPOSES: usize = 3;

/// The server's pause.
#[derive(Debug, Default)]
pub struct Pause {
    /// `NONE`, `WRITE` or `ALL`: the pause in force.
    kind: AtomicU8,
    /// The pause in force holds while the clock is at or before this, Unix ms.
    end_ms: AtomicU64,
    /// Each purpose's pause (kind, end); the two words above are computed from them.
    purposes: Mutex<[(u8, u64); PURPOSES]>,
}

impl Pause {
    /// A pause for `purpose` of `all` commands or only writes until `end_ms`, merged with the
    /// one that purpose holds already as Redis merges them (the later end, the wider kind).
    pub fn pause(&self, purpose: Purpose, end_ms: u64, all: bool, now_ms: u64) {
        let mut p = self.purposes.lock().unwrap_or_else(|e| e.into_inner());
        let kind = if all { ALL } else { WRITE };
        let (k, e) = &mut p[purpose as usize];
        if *k != NONE && *e >= now_ms {
            *k = (*k).max(kind);
            *e = (*e).max(end_ms);
        } else {
            (*k, *e) = (kind, end_ms);
        }
        self.update(&mut p, now_ms);
    }

    /// Ends `purpose`'s pause (CLIENT UNPAUSE ends the client's).
    pub fn unpause(&self, purpose: Purpose, now_ms: u64) {
        let mut p = self.purposes.lock().unwrap_or_else(|e| e.into_inner());
        p[purpose as usize] = (NONE, 0);
        self.update(&mut p, now_ms);
    }

    /// Redis's `updateClientPauseTypeAndEndTime`: ended pauses are dropped; the most
    /// restrictive kind left is in force, until the furthest end among the pauses of that kind.
    fn update(&self, p: &mut [(u8, u64); PURPOSES], now_ms: u64) {
        for (k, e) in p.iter_mut() {
            if *k != NONE && *e < now_ms {
                (*k, *e) = (NONE, 0);
            }
        }
        let kind = p.iter().map(|&(k, _)| k).max().unwrap_or(NONE);
        let end = p
            .iter()
            .filter(|&&(k, _)| k == kind && k != NONE)
            .map(|&(_, e)| e)
            .max()
            .unwrap_or(0);
        self.end_ms.store(end, Ordering::Relaxed);
        self.kind.store(kind, Ordering::Relaxed);
    }

    /// Whether a pause holds at `now_ms` (expiry and eviction wait then).
    #[inline]
    pub fn holds(&self, now_ms: u64) -> bool {
        self.kind.load(Ordering::Relaxed) != NONE
            && (now_ms <= self.end_ms.load(Ordering::Relaxed) || self.next_holds(now_ms))
    }

    /// The pause in force ended: whether a less restrictive one of another purpose goes on.
    #[cold]
    fn next_holds(&self, now_ms: u64) -> bool {
        let mut p = self.purposes.lock().unwrap_or_else(|e| e.into_inner());
        self.update(&mut p, now_ms);
        self.kind.load(Ordering::Relaxed) != NONE
    }

    /// When a command postponed now should look again: just past the end.
    pub fn retry_at(&self) -> u64 {
        self.end_ms.load(Ordering::Relaxed).saturating_add(1)
    }

    /// Whether `client`'s command `spec` with `args` must wait for the pause to end.
    #[inline]
    pub fn postpones(
        &self,
        server: &Server,
        client: &Client,
        spec: &CommandSpec,
        args: Args<'_>,
        now_ms: u64,
    ) -> bool {
        if client.obey || !self.holds(now_ms) {
            return false;
        }
        self.kind.load(Ordering::Relaxed) == ALL || may_replicate(server, client, spec, args)
    }
}

/// Redis's `is_may_replicate_command` with the script flags (`evalGetCommandFlags`): a write or
/// `may_replicate` command, a script or function that may write, or EXEC of a transaction that
/// holds one.
fn may_replicate(server: &Server, client: &Client, spec: &CommandSpec, args: Args<'_>) -> bool {
    let one = |spec: &CommandSpec, args: Args<'_>| {
        spec.has(flags::WRITE | flags::MAY_REPLICATE)
            || crate::cmd::scripting::may_write(server, spec, args)
    };
    if spec.name == "exec"
        && let Some(m) = &client.multi
    {
        return m.commands.iter().any(|&(spec, start, end)| {
            one(
                spec,
                Args::new(&m.data, &m.spans[start as usize..end as usize]),
            )
        });
    }
    one(spec, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_merge_to_the_later_end_and_the_wider_kind() {
        let p = Pause::default();
        assert!(!p.holds(0));
        p.pause(Purpose::Client, 1_000, false, 0);
        assert!(p.holds(1_000));
        p.pause(Purpose::Client, 500, true, 10);
        assert_eq!(p.kind.load(Ordering::Relaxed), ALL);
        assert_eq!(p.retry_at(), 1_001);
        assert!(p.holds(1_000));
        assert!(!p.holds(1_001), "ended (the clock only moves on)");
        p.pause(Purpose::Client, 500, true, 10);
        p.unpause(Purpose::Client, 10);
        assert!(!p.holds(10));
        // A pause that ended is replaced, not merged.
        p.pause(Purpose::Client, 100, true, 0);
        p.pause(Purpose::Client, 300, false, 200);
        assert_eq!(p.kind.load(Ordering::Relaxed), WRITE);
    }

    #[test]
    fn purposes_pause_apart_and_the_most_restrictive_is_in_force() {
        let p = Pause::default();
        p.pause(Purpose::Failover, u64::MAX, false, 0);
        p.pause(Purpose::Client, 1_000, true, 0);
        assert_eq!(p.kind.load(Ordering::Relaxed), ALL);
        assert_eq!(p.retry_at(), 1_001);
        // The client's pause ends: the failover's goes on, writes only.
        assert!(p.holds(2_000));
        assert_eq!(p.kind.load(Ordering::Relaxed), WRITE);
        // CLIENT UNPAUSE does not end the failover's pause.
        p.pause(Purpose::Client, 5_000, true, 2_000);
        p.unpause(Purpose::Client, 2_000);
        assert!(p.holds(3_000));
        assert_eq!(p.kind.load(Ordering::Relaxed), WRITE);
        p.unpause(Purpose::Failover, 3_000);
        assert!(!p.holds(3_000));
    }
}
