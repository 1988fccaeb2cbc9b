//! MIGRATE (Redis's `migrateCommand`): each key is DUMPed, sent to the target server as
//! `RESTORE key ttl payload [REPLACE]` after an optional AUTH and a SELECT, and, once the
//! target acknowledged it, deleted here unless COPY was given. The deletions reach the AOF as
//! one `DEL` of the acknowledged keys, as Redis rewrites MIGRATE for propagation.
//!
//! As in Redis, the transfer is synchronous: MIGRATE is `EXCLUSIVE`, so no other command runs
//! between reading a key and deleting it, and the server waits for the target (at most the
//! timeout per operation). Ferrite opens a connection per MIGRATE instead of caching one.

use std::io::{BufRead, BufReader, Write as _};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use ferrite_hybridlog::NO_EXPIRY;

use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::ctx::Ctx;
use crate::notify::flags;
use crate::table::{CommandSpec, flags::*};

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[CommandSpec::new("migrate", -6, "generic", migrate)
    .with_flags(WRITE | EXCLUSIVE)
    .with_keys(3, 3, 1)
    .with_acl(&["keyspace", "write", "slow", "dangerous"])
    .with_docs(
        "2.6.0",
        "Atomically transfer a key from a Redis instance to another one.",
        "This command actually executes a DUMP+DEL in the source instance, and a RESTORE in the \
         target instance. See the pages of these commands for time complexity. Also an O(N) \
         data transfer between the two instances is performed.",
    )];

/// How MIGRATE talks to the target.
struct Options<'a> {
    copy: bool,
    replace: bool,
    /// AUTH's username (AUTH2) and password.
    auth: Option<(Option<&'a [u8]>, &'a [u8])>,
    /// The keys' positions in the arguments.
    keys: std::ops::Range<usize>,
}

/// Redis's option parsing: COPY, REPLACE, AUTH pw, AUTH2 user pw, and KEYS (the rest are keys,
/// and the key argument must then be empty).
fn options<'a>(ctx: &mut Ctx<'_>, args: Args<'a>) -> Option<Options<'a>> {
    let mut o = Options {
        copy: false,
        replace: false,
        auth: None,
        keys: 3..4,
    };
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let a = args.get(j);
        if eq_ignore_case(a, "copy") {
            o.copy = true;
        } else if eq_ignore_case(a, "replace") {
            o.replace = true;
        } else if eq_ignore_case(a, "auth") {
            if more == 0 {
                ctx.syntax_error();
                return None;
            }
            j += 1;
            ctx.redact(j);
            o.auth = Some((None, args.get(j)));
        } else if eq_ignore_case(a, "auth2") {
            if more < 2 {
                ctx.syntax_error();
                return None;
            }
            ctx.redact(j + 1);
            ctx.redact(j + 2);
            o.auth = Some((Some(args.get(j + 1)), args.get(j + 2)));
            j += 2;
        } else if eq_ignore_case(a, "keys") {
            if !args.get(3).is_empty() {
                ctx.reply.error(
                    "ERR When using MIGRATE KEYS option, the key argument must be set to the \
                     empty string",
                );
                return None;
            }
            o.keys = j + 1..args.len();
            break;
        } else {
            ctx.syntax_error();
            return None;
        }
        j += 1;
    }
    Some(o)
}

/// `MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH pw | AUTH2 user pw]
/// [KEYS key ...]`
fn migrate(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let Some(o) = options(ctx, args) else {
        return;
    };
    let (Some(timeout), Some(dbid)) = (parse_i64(args.get(5)), parse_i64(args.get(4))) else {
        return ctx.not_integer();
    };
    let timeout = Duration::from_millis(if timeout <= 0 { 1000 } else { timeout as u64 });
    // The keys that exist, with their payload and time to live (ms, 0 for none).
    let db = ctx.client.db;
    let now = ctx.now_ms;
    let mut found: Vec<(&[u8], Vec<u8>, u64)> = Vec::new();
    for i in o.keys.clone() {
        let key = args.get(i);
        let item = ctx.store.read_value(db, key, now, |e| {
            let payload = crate::cmd::dump::payload(&e.value);
            let ttl = if e.expire_at == NO_EXPIRY {
                0
            } else {
                e.expire_at.saturating_sub(now).max(1)
            };
            payload.map(|p| (p, ttl))
        });
        // Redis looks each key up as a read: a hit or a miss (with its keymiss event).
        match item {
            Some(Some((payload, ttl))) => {
                ctx.hit();
                found.push((key, payload, ttl));
            }
            Some(None) => ctx.hit(),
            None => ctx.miss(key),
        }
    }
    if found.is_empty() {
        ctx.reply.simple("NOKEY");
        return;
    }
    let host = String::from_utf8_lossy(args.get(1)).into_owned();
    let port = String::from_utf8_lossy(args.get(2)).into_owned();
    let mut cache = ctx.server.migrate_sockets.lock();
    // One retry on a fresh connection when a cached one turns out dead before the target
    // answered anything (Redis's `may_retry`).
    let mut may_retry = true;
    let outcome = loop {
        let cached = match cache.take(&host, &port, crate::server::unix_ms()) {
            Some(c) => c,
            None => match connect(&host, &port, timeout) {
                Ok(stream) => Cached {
                    reader: BufReader::new(stream),
                    last_db: None,
                    used_ms: 0,
                },
                // Redis connects without blocking and only waits for the socket to be
                // writable, so a refused connection shows up when it writes.
                Err(Some(std::io::ErrorKind::ConnectionRefused)) => break Err(WRITING),
                Err(_) => break Err(CONNECTING),
            },
        };
        match transfer(cached, &o, dbid, &found) {
            Transfer::Done(cached, outcome) => {
                if let Some(c) = cached {
                    cache.put(&host, &port, c, crate::server::unix_ms());
                }
                break Ok(outcome);
            }
            Transfer::Retry(_) if may_retry => may_retry = false,
            Transfer::Retry(msg) => break Err(msg),
        }
    };
    drop(cache);
    let Outcome {
        error,
        acknowledged,
        socket_error,
    } = match outcome {
        Ok(o) => o,
        Err(msg) => {
            ctx.reply.error(msg);
            return;
        }
    };
    let acknowledged: Vec<&[u8]> = acknowledged.iter().map(|&i| found[i].0).collect();
    delete_acknowledged(ctx, &acknowledged);
    match (error, socket_error) {
        (Some(line), _) => {
            let mut msg = b"ERR Target instance replied with error: ".to_vec();
            msg.extend_from_slice(&line[1..]);
            ctx.reply.error_bytes(&msg);
        }
        (None, true) => ctx.reply.error(READING),
        (None, false) => ctx.reply.ok(),
    }
}

const CONNECTING: &str = "IOERR error or timeout connecting to the client";
const WRITING: &str = "IOERR error or timeout writing to target instance";
const READING: &str = "IOERR error or timeout reading to target instance";

/// Redis's `MIGRATE_SOCKET_CACHE_TTL`: a connection unused this long is closed.
const CACHE_TTL_MS: u64 = 10_000;
/// Redis's `MIGRATE_SOCKET_CACHE_ITEMS`.
const CACHE_ITEMS: usize = 64;

/// A connection to a target, kept between MIGRATEs as Redis keeps it (so a target that
/// later requires a password still accepts the connection that logged in before).
pub struct Cached {
    reader: BufReader<TcpStream>,
    /// The database selected on it (`None`: unknown, SELECT again).
    last_db: Option<i64>,
    used_ms: u64,
}

/// The connections MIGRATE keeps, by target.
#[derive(Default)]
pub struct SocketCache(std::sync::Mutex<std::collections::HashMap<(String, String), Cached>>);

impl SocketCache {
    fn lock(&self) -> CacheGuard<'_> {
        CacheGuard(self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

struct CacheGuard<'a>(
    std::sync::MutexGuard<'a, std::collections::HashMap<(String, String), Cached>>,
);

impl CacheGuard<'_> {
    /// The live cached connection to the target, taken out of the cache.
    fn take(&mut self, host: &str, port: &str, now_ms: u64) -> Option<Cached> {
        self.0
            .retain(|_, c| now_ms.saturating_sub(c.used_ms) <= CACHE_TTL_MS);
        self.0.remove(&(host.to_string(), port.to_string()))
    }

    /// Keeps a connection that ended its transfer cleanly.
    fn put(&mut self, host: &str, port: &str, mut c: Cached, now_ms: u64) {
        if self.0.len() >= CACHE_ITEMS {
            // Redis closes a random one to make room.
            if let Some(k) = self.0.keys().next().cloned() {
                self.0.remove(&k);
            }
        }
        c.used_ms = now_ms;
        self.0.insert((host.to_string(), port.to_string()), c);
    }
}

/// What the target said.
struct Outcome {
    /// The first error line (with its `-`).
    error: Option<Vec<u8>>,
    /// Indexes into the keys of those to delete here.
    acknowledged: Vec<usize>,
    /// The target stopped answering after the first key.
    socket_error: bool,
}

enum Transfer {
    /// The transfer ran; the connection, unless it broke, may be kept.
    Done(Option<Cached>, Outcome),
    /// The connection failed before the target answered anything (a cached one may have been
    /// closed by the target): try once more on a fresh one, else reply this.
    Retry(&'static str),
}

/// Sends AUTH (if asked), SELECT (if the connection is not on `db` already) and one RESTORE
/// per key, then reads the replies as Redis reads them.
fn transfer(mut c: Cached, o: &Options<'_>, db: i64, found: &[(&[u8], Vec<u8>, u64)]) -> Transfer {
    let mut request = Vec::new();
    if let Some((user, password)) = o.auth {
        let mut cmd: Vec<&[u8]> = vec![b"AUTH"];
        cmd.extend(user);
        cmd.push(password);
        crate::aof::entry::encode(&mut request, &cmd);
    }
    let select = c.last_db != Some(db);
    if select {
        let db = db.to_string();
        crate::aof::entry::encode(&mut request, &[b"SELECT", db.as_bytes()]);
    }
    for (key, payload, ttl) in found {
        let ttl = ttl.to_string();
        let mut cmd: Vec<&[u8]> = vec![b"RESTORE", key, ttl.as_bytes(), payload];
        if o.replace {
            cmd.push(b"REPLACE");
        }
        crate::aof::entry::encode(&mut request, &cmd);
    }
    if c.reader.get_mut().write_all(&request).is_err() {
        return Transfer::Retry(WRITING);
    }
    let read_line = |r: &mut BufReader<TcpStream>| -> Option<Vec<u8>> {
        let mut line = Vec::new();
        match r.read_until(b'\n', &mut line) {
            Ok(n) if n > 0 && line.ends_with(b"\r\n") => {
                line.truncate(line.len() - 2);
                Some(line)
            }
            _ => None,
        }
    };
    // AUTH's and SELECT's replies: as Redis reads both into one buffer, the last decides (a
    // failed AUTH shows as SELECT's NOAUTH).
    let heads = usize::from(o.auth.is_some()) + usize::from(select);
    let mut head = Vec::new();
    for _ in 0..heads {
        match read_line(&mut c.reader) {
            Some(line) => head = line,
            None => return Transfer::Retry(READING),
        }
    }
    let head_failed = head.first() == Some(&b'-');
    // One reply per key: a key is deleted here only when it and the head succeeded.
    let mut out = Outcome {
        error: None,
        acknowledged: Vec::new(),
        socket_error: false,
    };
    for i in 0..found.len() {
        let Some(line) = read_line(&mut c.reader) else {
            if i == 0 && out.error.is_none() {
                return Transfer::Retry(READING);
            }
            out.socket_error = true;
            break;
        };
        if head_failed || line.first() == Some(&b'-') {
            if out.error.is_none() {
                out.error = Some(if head_failed { head.clone() } else { line });
            }
        } else if !o.copy {
            out.acknowledged.push(i);
        }
    }
    // After an error the selected database is not known any more; a connection that broke
    // is not kept.
    c.last_db = if out.error.is_some() { None } else { Some(db) };
    let keep = (!out.socket_error).then_some(c);
    Transfer::Done(keep, out)
}

/// A connection to `host:port`, each step bounded by `timeout`; the error's kind when the
/// connection itself failed (`None` for an address that does not resolve).
fn connect(
    host: &str,
    port: &str,
    timeout: Duration,
) -> Result<TcpStream, Option<std::io::ErrorKind>> {
    let port: u16 = port.parse().map_err(|_| None)?;
    let addr = (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or(None)?;
    let conn = TcpStream::connect_timeout(&addr, timeout).map_err(|e| Some(e.kind()))?;
    let setup = |c: &TcpStream| -> std::io::Result<()> {
        c.set_read_timeout(Some(timeout))?;
        c.set_write_timeout(Some(timeout))?;
        c.set_nodelay(true)
    };
    setup(&conn).map_err(|e| Some(e.kind()))?;
    Ok(conn)
}

/// Deletes the keys the target acknowledged (keyspace `del` events), and hands the AOF one
/// `DEL` of them in place of the MIGRATE.
fn delete_acknowledged(ctx: &mut Ctx<'_>, keys: &[&[u8]]) {
    if keys.is_empty() {
        return;
    }
    let db = ctx.client.db;
    for key in keys {
        if ctx.store.delete(db, key, ctx.now_ms) {
            ctx.notify(flags::GENERIC, "del", key);
        }
    }
    if ctx.server.aof.propagating() {
        let mut entry = crate::aof::Entry::default();
        entry.push(db, std::iter::once(&b"DEL"[..]).chain(keys.iter().copied()));
        ctx.client.aof_txn = Some(crate::aof::Txn {
            entry,
            seqs: Vec::new(),
        });
    }
}
