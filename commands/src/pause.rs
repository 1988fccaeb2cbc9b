//! CLIENT PAUSE (Redis's `pauseClients` and the postponing in `processCommand`): while a pause
//! holds, the commands it covers are not run but postponed: the connection parks with its
//! command unread, as a blocked client does, and runs it when the pause ends (its deadline, a
//! longer pause's, or CLIENT UNPAUSE). `ALL` covers every command, CLIENT UNPAUSE included (as
//! in Redis 7.0, only the deadline ends it); `WRITE` covers the commands that may write or
//! propagate: write commands, PUBLISH and the other `may_replicate` ones, scripts not declared
//! `no-writes`, and EXEC of a transaction holding any of them. Active expiry and eviction wait
//! while a pause holds, so that the dataset does not change under a paused failover.
//!
//! The state is two words every command reads with relaxed loads: the kind, and the end. A
//! thread postponing a command parks it until the end; CLIENT UNPAUSE wakes every thread so
//! that each resumes its postponed clients.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use crate::args::Args;
use crate::client::Client;
use crate::server::Server;
use crate::table::{CommandSpec, flags};

const NONE: u8 = 0;
const WRITE: u8 = 1;
const ALL: u8 = 2;

/// The server's pause.
#[derive(Debug, Default)]
pub struct Pause {
    /// `NONE`, `WRITE` or `ALL`.
    kind: AtomicU8,
    /// The pause holds while the clock is at or before this, Unix ms.
    end_ms: AtomicU64,
    /// Orders CLIENT PAUSE and UNPAUSE of different threads (each updates both words).
    update: Mutex<()>,
}

impl Pause {
    /// CLIENT PAUSE: a pause of `all` or only writes until `end_ms`, merged with one that holds
    /// already as Redis merges them (the later end, the wider kind).
    pub fn pause(&self, end_ms: u64, all: bool, now_ms: u64) {
        let _g = self.update.lock().unwrap_or_else(|e| e.into_inner());
        let kind = if all { ALL } else { WRITE };
        if self.holds(now_ms) {
            self.kind.fetch_max(kind, Ordering::Relaxed);
            self.end_ms.fetch_max(end_ms, Ordering::Relaxed);
        } else {
            self.end_ms.store(end_ms, Ordering::Relaxed);
            self.kind.store(kind, Ordering::Relaxed);
        }
    }

    /// CLIENT UNPAUSE.
    pub fn unpause(&self) {
        let _g = self.update.lock().unwrap_or_else(|e| e.into_inner());
        self.kind.store(NONE, Ordering::Relaxed);
    }

    /// Whether a pause holds at `now_ms` (expiry and eviction wait then).
    #[inline]
    pub fn holds(&self, now_ms: u64) -> bool {
        self.kind.load(Ordering::Relaxed) != NONE && now_ms <= self.end_ms.load(Ordering::Relaxed)
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
        let kind = self.kind.load(Ordering::Relaxed);
        if kind == NONE || client.obey || now_ms > self.end_ms.load(Ordering::Relaxed) {
            return false;
        }
        kind == ALL || may_replicate(server, client, spec, args)
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
        p.pause(1_000, false, 0);
        assert!(p.holds(1_000));
        assert!(!p.holds(1_001));
        p.pause(500, true, 10);
        assert_eq!(p.kind.load(Ordering::Relaxed), ALL);
        assert_eq!(p.retry_at(), 1_001);
        p.unpause();
        assert!(!p.holds(10));
        // A pause that ended is replaced, not merged.
        p.pause(100, true, 0);
        p.pause(300, false, 200);
        assert_eq!(p.kind.load(Ordering::Relaxed), WRITE);
    }
}
