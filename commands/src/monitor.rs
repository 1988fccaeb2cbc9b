//! MONITOR (Redis's `replicationFeedMonitors`): every command that runs, on any reactor thread,
//! is shown to every monitoring client as one status line,
//! `+<secs>.<usecs> [<db> <ip:port>] "name" "arg" ...`, its arguments escaped as `sdscatrepr`
//! escapes them (`[<db> lua]` for a command a script ran).
//!
//! The thread that ran the command formats the line once and hands it to each monitor as
//! PUBLISH hands a message to a subscriber: appended to the monitor's outbox in its
//! [`ClientShared`] and its thread woken ([`crate::pubsub::deliver`]), which moves it into the
//! connection's output at its next poll. A monitor's own commands are shown to it at once, after
//! their reply, as in Redis. Outboxes are bounded as a subscriber's are: Redis puts monitors in
//! the `normal` output-buffer class, unlimited by default; Ferrite drops a monitor that stops
//! reading as it drops such a subscriber (hard limit 32 MiB, soft 8 MiB for 60 s).
//!
//! With no monitor connected, the cost per command is one relaxed load ([`Monitors::any`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use ferrite_hybridlog::Db;

use crate::args::Args;
use crate::client::{Client, ClientShared};
use crate::server::Server;
use crate::table::{CommandSpec, flags};

/// Redis's placeholder for an argument it keeps out of logs and monitors (passwords).
const REDACTED: &[u8] = b"(redacted)";

/// Who ran a command, as its monitor line names it.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// A connection, by its peer address (`ip:port`).
    Client(&'a str),
    /// A script's `redis.call` (Redis's Lua client).
    Lua,
}

/// The monitoring clients of one server.
#[derive(Debug, Default)]
pub struct Monitors {
    /// How many are connected: the per-command check reads only this.
    count: AtomicUsize,
    list: RwLock<Vec<Arc<ClientShared>>>,
}

impl Monitors {
    /// Whether any client monitors (one relaxed load: a monitor that connects while a command
    /// runs elsewhere may miss that command, as it would have by arriving a moment later).
    #[inline]
    pub fn any(&self) -> bool {
        self.count.load(Ordering::Relaxed) != 0
    }

    fn read(&self) -> RwLockReadGuard<'_, Vec<Arc<ClientShared>>> {
        // Every update is one push or one retain: a panic cannot leave the list half-changed.
        self.list.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Vec<Arc<ClientShared>>> {
        self.list.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a monitoring client (the caller knows it is not one yet).
    pub fn add(&self, shared: &Arc<ClientShared>) {
        let mut list = self.write();
        list.push(shared.clone());
        self.count.store(list.len(), Ordering::Relaxed);
    }

    /// Removes client `id` from the monitors (nothing when it is not one).
    pub fn remove(&self, id: u64) {
        let mut list = self.write();
        list.retain(|m| m.id != id);
        self.count.store(list.len(), Ordering::Relaxed);
    }

    /// Shows a command to every monitor. `me` is the id of the client it ran for: when that
    /// client monitors, its line goes to `own` (after the reply being written there) instead
    /// of its outbox. `redacted` lists the argument positions shown as `(redacted)`.
    #[allow(clippy::too_many_arguments)]
    pub fn feed(
        &self,
        server: &Server,
        origin: Origin<'_>,
        db: Db,
        args: Args<'_>,
        redacted: &[u32],
        me: u64,
        own: &mut Vec<u8>,
    ) {
        let line = format_line(now_us(), origin, db, args, redacted);
        let mut wake = vec![false; server.threads];
        for m in self.read().iter() {
            crate::pubsub::deliver(m, &line, me, own, &mut wake);
        }
        server.wake_marked(&wake);
    }
}

/// Shows a command that just ran for `client` to the monitors, as Redis's `call()` does after
/// running it: not one the AOF loader replays, nor an administrative one (CONFIG, CLIENT LIST,
/// MONITOR itself, ...) or one that shows itself (EVAL, before its script's commands). `lua`: a
/// script's `redis.call`. A monitor's own command gets its line in `out`, after the reply; a
/// script's commands go through the outbox (Lua reads their replies back from `out`).
#[cold]
pub(crate) fn show(
    server: &Server,
    client: &Client,
    spec: &CommandSpec,
    args: Args<'_>,
    lua: bool,
    out: &mut Vec<u8>,
) {
    if client.obey || spec.has(flags::SKIP_MONITOR | flags::ADMIN) {
        return;
    }
    let (origin, me) = if lua {
        (Origin::Lua, 0)
    } else {
        (Origin::Client(&client.shared.addr), client.id)
    };
    let redacted = &client.redacted;
    server
        .monitors
        .feed(server, origin, client.db, args, redacted, me, out);
}

/// The wall clock in microseconds (Redis's `gettimeofday` for the line's time stamp).
fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

/// One monitor line, `+<secs>.<usecs> [<db> <origin>] "arg" ...\r\n`.
fn format_line(
    now_us: u128,
    origin: Origin<'_>,
    db: Db,
    args: Args<'_>,
    redacted: &[u32],
) -> Vec<u8> {
    use std::io::Write;
    let mut line = Vec::with_capacity(48 + args.iter_from(0).map(|a| a.len() + 3).sum::<usize>());
    let (secs, usecs) = (now_us / 1_000_000, now_us % 1_000_000);
    // Writes into a Vec cannot fail.
    let _ = match origin {
        Origin::Client(addr) => write!(line, "+{secs}.{usecs:06} [{db} {addr}] "),
        Origin::Lua => write!(line, "+{secs}.{usecs:06} [{db} lua] "),
    };
    for (i, arg) in args.iter_from(0).enumerate() {
        if i > 0 {
            line.push(b' ');
        }
        let arg = if u32::try_from(i).is_ok_and(|i| redacted.contains(&i)) {
            REDACTED
        } else {
            arg
        };
        repr(&mut line, arg);
    }
    line.extend_from_slice(b"\r\n");
    line
}

/// Redis's `sdscatrepr`: the bytes quoted, with `\\`, `\"`, `\n`, `\r`, `\t`, `\a`, `\b` and
/// anything outside printable ASCII as `\xNN` (lower-case hex).
pub fn repr(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in s {
        match b {
            b'\\' | b'"' => out.extend_from_slice(&[b'\\', b]),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args_of(parts: &[&[u8]]) -> (Vec<u8>, Vec<(u32, u32)>) {
        let mut data = Vec::new();
        let mut spans = Vec::new();
        for p in parts {
            spans.push((data.len() as u32, p.len() as u32));
            data.extend_from_slice(p);
        }
        (data, spans)
    }

    #[test]
    fn escapes_as_sdscatrepr() {
        let mut out = Vec::new();
        repr(&mut out, b"a\"\\\x01\n\r\t\x07\x08 ~\x7f\xff\xe2");
        assert_eq!(out, b"\"a\\\"\\\\\\x01\\n\\r\\t\\a\\b ~\\x7f\\xff\\xe2\"");
        out.clear();
        repr(&mut out, b"");
        assert_eq!(out, b"\"\"");
    }

    #[test]
    fn formats_a_line() {
        let (data, spans) = args_of(&[b"auth", b"user", b"pass"]);
        let args = Args::new(&data, &spans);
        let line = format_line(
            1_700_000_000_000_042,
            Origin::Client("1.2.3.4:5"),
            3,
            args,
            &[],
        );
        assert_eq!(
            line,
            b"+1700000000.000042 [3 1.2.3.4:5] \"auth\" \"user\" \"pass\"\r\n"
        );
        let line = format_line(5_000_001, Origin::Lua, 0, args, &[1, 2]);
        assert_eq!(
            line,
            b"+5.000001 [0 lua] \"auth\" \"(redacted)\" \"(redacted)\"\r\n"
        );
    }

    #[test]
    fn registry_counts() {
        let m = Monitors::default();
        assert!(!m.any());
        let a = Arc::new(ClientShared::new(7, 0, String::new(), String::new(), 0));
        m.add(&a);
        assert!(m.any());
        m.remove(8);
        assert!(m.any());
        m.remove(7);
        assert!(!m.any());
    }
}
