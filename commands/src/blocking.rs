//! Blocking commands' wait queues (BLPOP, BZPOPMIN, ...): clients parked per key, first blocked
//! first served, woken by a write on any reactor thread.
//!
//! A blocking command that finds nothing to pop does not consume its request: the worker leaves
//! it in the connection's input and parks the connection (the reactor stops reading it). Being
//! woken means running the very same request again, so every B* command is an ordinary handler
//! that either serves now or asks to park; there is no second code path that serves "on behalf
//! of" a parked client from another thread's context.
//!
//! The registry is process-wide (writers and waiters live on different threads) and keyed by
//! `(server, db, key)`, so test processes that run several servers keep them apart. A writer
//! that adds to a key with waiters gives the key's turn to its first waiter of the right kind
//! (first blocked first served), drops its id in its thread's mailbox and wakes that thread,
//! which resumes the parked connection. A waiter that re-runs and still finds nothing parks
//! again and keeps its place. A waiter that leaves while holding a turn (served, timed out,
//! unblocked, disconnected) passes it on by signalling the key again, so elements left over go
//! to the next waiter in order.
//!
//! Lost wake-ups are avoided by ordering: a waiter registers, then re-checks its keys; a writer
//! writes, then looks at the registry. A full fence on both sides means at least one of them
//! sees the other.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering, fence};
use std::sync::{LazyLock, Mutex, MutexGuard};

use ferrite_hybridlog::{Db, Session, Value};

use crate::client::{BLOCK_NONE, BLOCK_WAITING};
use crate::ctx::Ctx;
use crate::objects::Collection;
use crate::server::Server;

/// The kind of value that can serve a waiter (Redis's `btype`): a BLPOP waiter is not woken by
/// a sorted set of the same name, and the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP.
    List,
    /// BZPOPMIN, BZPOPMAX, BZMPOP.
    ZSet,
    /// XREAD, XREADGROUP: every waiter of the key is woken, as Redis serves all of them.
    Stream,
    /// WAIT: replicas' acknowledgements, which never come (no replication); it waits on no
    /// key, until its deadline or CLIENT UNBLOCK, and then answers the count, 0.
    Acks,
}

/// A client's wait, kept in `Client::blocked` from its first park until it is answered.
#[derive(Debug, Clone)]
pub struct BlockState {
    /// The database of the keys.
    pub db: Db,
    /// The keys waited on, without duplicates.
    pub keys: Vec<Box<[u8]>>,
    /// What can serve it.
    pub want: Want,
    /// Absolute deadline in Unix ms, 0 for none. Redis's `bpop.timeout`: an overflowing
    /// timeout wraps negative and so expires at the first check.
    pub deadline: i64,
    /// XREAD's IDs, one per key, as resolved when it first parked (`$` is the last ID *then*),
    /// so a re-run after a wake-up reads from the same place. Empty for other commands.
    pub stream_ids: Vec<ferrite_collections::StreamId>,
}

impl BlockState {
    /// Whether the deadline has passed at `now_ms` (Redis: `timeout != 0 && timeout < now`).
    pub fn expired(&self, now_ms: u64) -> bool {
        self.deadline != 0 && self.deadline < i64::try_from(now_ms).unwrap_or(i64::MAX)
    }
}

/// One registered waiter of one key.
#[derive(Debug)]
struct Waiter {
    client: u64,
    thread: usize,
    want: Want,
    /// Marked by a writer; cleared when the waiter re-runs.
    ready: bool,
}

/// Identifies a server in the process-wide registry ([`Server::id`]: an address could be
/// reused by a later test's server while entries of the earlier one remain).
type ServerId = usize;

/// A database's waited-on keys: key → waiters, first blocked first.
type Queues = HashMap<Box<[u8]>, VecDeque<Waiter>>;

#[derive(Debug, Default)]
struct Registry {
    /// `(server, db)` → its keys' queues.
    queues: HashMap<(ServerId, Db), Queues>,
    /// `(server, thread)` → clients that thread should resume.
    mailbox: HashMap<(ServerId, usize), Vec<u64>>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Mutex::default);

/// Registered `(client, key)` pairs in the process: writers skip the registry while it is 0,
/// so a push costs one fence and one load when nobody blocks.
static WAITERS: AtomicUsize = AtomicUsize::new(0);

fn registry() -> MutexGuard<'static, Registry> {
    // Every critical section leaves the maps consistent between single operations, so a
    // poisoned lock (a panic elsewhere while held) is still usable.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

fn server_id(server: &Server) -> ServerId {
    server.id
}

/// Tells clients blocked on `key` in the caller's database (on any thread) that it may now have
/// elements. Writers call it after adding to a list or sorted set.
pub fn signal_key_ready(ctx: &mut Ctx<'_>, key: &[u8]) {
    // Pairs with the fence in `arm`: the write above is visible to a waiter that registered
    // after this load, or this load sees its registration.
    fence(Ordering::SeqCst);
    if WAITERS.load(Ordering::Relaxed) == 0 {
        return;
    }
    let db = ctx.client.db;
    signal(ctx.server, ctx.store, db, key, ctx.now_ms);
}

/// [`signal_key_ready`] for a key of another database than the caller's (MOVE, SWAPDB, COPY
/// ... DB).
pub fn signal_key_ready_in(ctx: &mut Ctx<'_>, db: Db, key: &[u8]) {
    fence(Ordering::SeqCst);
    if WAITERS.load(Ordering::Relaxed) == 0 {
        return;
    }
    signal(ctx.server, ctx.store, db, key, ctx.now_ms);
}

/// Signals every key clients of database `db` are blocked on (after SWAPDB, whose new
/// contents may serve any of them).
pub fn signal_db(ctx: &mut Ctx<'_>, db: Db) {
    fence(Ordering::SeqCst);
    if WAITERS.load(Ordering::Relaxed) == 0 {
        return;
    }
    let sid = server_id(ctx.server);
    let keys: Vec<Box<[u8]>> = registry()
        .queues
        .get(&(sid, db))
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    for key in keys {
        signal(ctx.server, ctx.store, db, &key, ctx.now_ms);
    }
}

/// Gives the turn on `key` to its first waiter that its value can serve, unless a waiter
/// already holds it, and wakes that waiter's thread. One turn at a time keeps Redis's
/// first-blocked-first-served order of elements: the holder passes the turn on when it is done
/// (see [`release`]), so waiters pop one after the other, not in a race between threads.
#[cold]
fn signal(server: &Server, store: &mut Session, db: Db, key: &[u8], now_ms: u64) {
    let sid = server_id(server);
    let waited = registry()
        .queues
        .get(&(sid, db))
        .is_some_and(|m| m.contains_key(key));
    if !waited {
        return;
    }
    // Outside the registry lock: a store read takes the record's lock.
    let found = store.read_value(db, key, now_ms, |e| match e.value {
        Value::Object(o) => match Collection::of(o) {
            Some(Collection::List(l)) if !l.is_empty() => Some(Want::List),
            Some(Collection::ZSet(z)) if !z.is_empty() => Some(Want::ZSet),
            // XADD, or XGROUP DESTROY (whose blocked XREADGROUP readers must learn it).
            Some(Collection::Stream(_)) => Some(Want::Stream),
            _ => None,
        },
        Value::String(_) => None,
    });
    let Some(Some(want)) = found else {
        return;
    };
    let mut wake: Vec<usize> = Vec::new();
    {
        let mut reg = registry();
        let Registry { queues, mailbox } = &mut *reg;
        let Some(queue) = queues.get_mut(&(sid, db)).and_then(|m| m.get_mut(key)) else {
            return;
        };
        let mut ready = |w: &mut Waiter| {
            if !w.ready {
                w.ready = true;
                mailbox.entry((sid, w.thread)).or_default().push(w.client);
                if !wake.contains(&w.thread) {
                    wake.push(w.thread);
                }
            }
        };
        if want == Want::Stream {
            // Entries are not consumed by a reader: every one of them may be served.
            queue.iter_mut().filter(|w| w.want == want).for_each(ready);
        } else if let Some(w) = queue.iter_mut().find(|w| w.want == want) {
            ready(w);
        }
    }
    for thread in wake {
        server.wake(thread);
    }
}

/// What one attempt to serve a blocking command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// It replied (with elements or an error): the command is done.
    Done,
    /// Nothing to pop and nothing written: the command may block.
    Empty,
}

/// What a blocking command answers when it may not block (Redis's `CLIENT_DENY_BLOCKING`, in
/// MULTI and scripts): a null array, except BLMOVE and BRPOPLPUSH, which answer a null bulk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denied {
    /// `*-1`
    NullArray,
    /// `$-1`
    Null,
}

/// Runs a blocking command: `attempt` serves it now if it can; otherwise the client registers
/// on `keys` (or, re-running after a wake-up, keeps its place), tries once more to close the
/// race with a writer, and parks. `timeout_ms` is the parsed timeout (0: none); the deadline is
/// fixed at the first park, so re-runs do not extend it.
pub(crate) fn serve_or_block<'k>(
    ctx: &mut Ctx<'_>,
    keys: impl Iterator<Item = &'k [u8]>,
    want: Want,
    timeout_ms: i64,
    denied: Denied,
    mut attempt: impl FnMut(&mut Ctx<'_>) -> Attempt,
) {
    if attempt(ctx) == Attempt::Done {
        finish(ctx);
        return;
    }
    if ctx.client.deny_blocking {
        finish(ctx);
        match denied {
            Denied::NullArray => ctx.reply.null_array(),
            Denied::Null => ctx.reply.null(),
        }
        return;
    }
    arm(ctx, keys, want, timeout_ms);
    if attempt(ctx) == Attempt::Done {
        finish(ctx);
        return;
    }
    ctx.client.park = true;
}

/// Parks a command that waits on no key (WAIT) until its deadline (`timeout_ms`, 0: none) or
/// CLIENT UNBLOCK; the worker then answers it as `want` times out.
pub(crate) fn park_keyless(ctx: &mut Ctx<'_>, want: Want, timeout_ms: i64) {
    arm(ctx, std::iter::empty(), want, timeout_ms);
    ctx.client.park = true;
}

/// Registers the client on its keys, or clears its ready marks when it is already registered.
fn arm<'k>(ctx: &mut Ctx<'_>, keys: impl Iterator<Item = &'k [u8]>, want: Want, timeout_ms: i64) {
    let sid = server_id(ctx.server);
    let client = ctx.client.id;
    match &ctx.client.blocked {
        Some(state) => {
            let mut reg = registry();
            if let Some(m) = reg.queues.get_mut(&(sid, state.db)) {
                for key in &state.keys {
                    if let Some(w) = m
                        .get_mut(&**key)
                        .and_then(|q| q.iter_mut().find(|w| w.client == client))
                    {
                        w.ready = false;
                    }
                }
            }
        }
        None => {
            let mut unique: Vec<Box<[u8]>> = Vec::new();
            for k in keys {
                if !unique.iter().any(|u| **u == *k) {
                    unique.push(k.into());
                }
            }
            let now = i64::try_from(ctx.now_ms).unwrap_or(i64::MAX);
            let deadline = if timeout_ms > 0 {
                now.wrapping_add(timeout_ms)
            } else {
                0
            };
            let state = BlockState {
                db: ctx.client.db,
                keys: unique,
                want,
                deadline,
                stream_ids: Vec::new(),
            };
            {
                let mut reg = registry();
                let m = reg.queues.entry((sid, state.db)).or_default();
                for key in &state.keys {
                    m.entry(key.clone()).or_default().push_back(Waiter {
                        client,
                        thread: ctx.thread,
                        want,
                        ready: false,
                    });
                }
                WAITERS.fetch_add(state.keys.len(), Ordering::Relaxed);
            }
            ctx.client.blocked = Some(state);
            let _ = ctx.client.shared.block.compare_exchange(
                BLOCK_NONE,
                BLOCK_WAITING,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }
    // Pairs with the fence in `signal_key_ready`.
    fence(Ordering::SeqCst);
}

/// The command was answered: forget the client's wait, if it had one.
fn finish(ctx: &mut Ctx<'_>) {
    release(ctx.server, ctx.store, ctx.client, ctx.now_ms);
}

/// Removes `client`'s wait from the registry (answered, timed out, unblocked or disconnected)
/// and passes on the turns it was given but did not use.
pub fn release(server: &Server, store: &mut Session, client: &mut crate::Client, now_ms: u64) {
    let Some(state) = client.blocked.take() else {
        return;
    };
    client.shared.block.store(BLOCK_NONE, Ordering::Release);
    let sid = server_id(server);
    let mut pass_on: Vec<&[u8]> = Vec::new();
    {
        let mut reg = registry();
        let mut removed = 0;
        if let Some(m) = reg.queues.get_mut(&(sid, state.db)) {
            for key in &state.keys {
                let Some(q) = m.get_mut(&**key) else {
                    continue;
                };
                if let Some(i) = q.iter().position(|w| w.client == client.id) {
                    // A stream reader consumes nothing, so it has no turn to pass on.
                    if q.remove(i)
                        .is_some_and(|w| w.ready && w.want != Want::Stream)
                    {
                        pass_on.push(key);
                    }
                    removed += 1;
                }
                if q.is_empty() {
                    m.remove(&**key);
                }
            }
            if m.is_empty() {
                reg.queues.remove(&(sid, state.db));
            }
        }
        WAITERS.fetch_sub(removed, Ordering::Relaxed);
    }
    for key in pass_on {
        signal(server, store, state.db, key, now_ms);
    }
}

/// Takes the clients thread `thread` of `server` was asked to resume.
pub fn take_mailbox(server: &Server, thread: usize, into: &mut Vec<u64>) {
    let sid = server_id(server);
    let mut reg = registry();
    if let Some(ids) = reg.mailbox.get_mut(&(sid, thread)) {
        into.append(ids);
    }
}

/// Asks thread `thread` to re-run client `id`'s parked command (WAIT, when acknowledgements
/// arrive); nothing happens when it no longer waits.
pub(crate) fn resume(server: &Server, id: u64, thread: usize) {
    registry()
        .mailbox
        .entry((server_id(server), thread))
        .or_default()
        .push(id);
    server.wake(thread);
}

/// CLIENT UNBLOCK: asks client `id` (on any thread) to give up its blocking command, answering
/// with an error or as on a timeout. Returns whether it was blocked.
pub(crate) fn unblock(server: &Server, id: u64, error: bool) -> bool {
    let Some(target) = server.clients.get(id) else {
        return false;
    };
    let to = if error {
        crate::client::BLOCK_UNBLOCK_ERROR
    } else {
        crate::client::BLOCK_UNBLOCK_TIMEOUT
    };
    if target
        .block
        .compare_exchange(BLOCK_WAITING, to, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return false;
    }
    registry()
        .mailbox
        .entry((server_id(server), target.thread))
        .or_default()
        .push(id);
    server.wake(target.thread);
    true
}

/// Redis's `disconnectAllBlockedClients`, when the server starts following a master: every
/// client parked in a blocking command (not one postponed by CLIENT PAUSE) is answered with the
/// UNBLOCKED error and closed, so that no BLPOP served by the master's stream later pops on
/// the replica what the master did not.
pub fn unblock_all_for_replica(server: &Server) {
    for target in server.clients.snapshot() {
        if target
            .block
            .compare_exchange(
                BLOCK_WAITING,
                crate::client::BLOCK_UNBLOCK_REPLICA,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
        {
            registry()
                .mailbox
                .entry((server_id(server), target.thread))
                .or_default()
                .push(target.id);
            server.wake(target.thread);
        }
    }
}

/// Number of clients parked in a blocking command (INFO `blocked_clients`).
pub fn blocked_clients(server: &Server) -> usize {
    server
        .clients
        .snapshot()
        .iter()
        .filter(|c| c.is_blocked())
        .count()
}

/// Redis's `getTimeoutFromObjectOrReply(..., UNIT_SECONDS)`: the timeout in ms (0: none), or
/// the error to reply. The seconds are a `long double` (`strtold`: hex and `inf` included)
/// multiplied by 1000 and truncated; a product beyond `long long` becomes `LLONG_MIN` on x86,
/// so `1e400` and `inf` are "negative".
pub(crate) fn parse_timeout(arg: &[u8]) -> Result<i64, &'static str> {
    const NOT_FLOAT: &str = "ERR timeout is not a float or out of range";
    const NEGATIVE: &str = "ERR timeout is negative";
    if let Some(secs) = crate::args::parse_i64(arg) {
        // The common case, exact: whole seconds.
        let ms = secs.checked_mul(1000).unwrap_or(i64::MIN);
        return if ms < 0 { Err(NEGATIVE) } else { Ok(ms) };
    }
    use crate::cmd::strings::longdouble::{Parsed, parse};
    let ms = match parse(arg) {
        None => return Err(NOT_FLOAT),
        Some(Parsed::Infinite) => i64::MIN,
        Some(Parsed::Finite(v)) => millis_of_decimal(&v.to_human()),
    };
    if ms < 0 { Err(NEGATIVE) } else { Ok(ms) }
}

/// `(long long)(x * 1000)` for `x` printed as a plain decimal (`-12.3456`): truncated toward
/// zero, `i64::MIN` when out of range.
fn millis_of_decimal(s: &[u8]) -> i64 {
    let (neg, body) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    let (int, frac) = match body.iter().position(|&b| b == b'.') {
        Some(dot) => (&body[..dot], &body[dot + 1..]),
        None => (body, &body[body.len()..]),
    };
    let mut ms: i64 = 0;
    let frac3 = frac.iter().chain(b"000".iter()).take(3);
    for &d in int.iter().chain(frac3) {
        if !d.is_ascii_digit() {
            return i64::MIN;
        }
        ms = match ms
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(d - b'0')))
        {
            Some(v) => v,
            None => return i64::MIN,
        };
    }
    if neg { -ms } else { ms }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_as_redis_parses_them() {
        assert_eq!(parse_timeout(b"0"), Ok(0));
        assert_eq!(parse_timeout(b"5"), Ok(5000));
        assert_eq!(parse_timeout(b"0.1"), Ok(100));
        assert_eq!(parse_timeout(b"1.5"), Ok(1500));
        assert_eq!(parse_timeout(b".5"), Ok(500));
        assert_eq!(parse_timeout(b"5."), Ok(5000));
        assert_eq!(parse_timeout(b"+1"), Ok(1000));
        assert_eq!(parse_timeout(b"00"), Ok(0));
        assert_eq!(parse_timeout(b"1e3"), Ok(1_000_000));
        assert_eq!(parse_timeout(b"0x10"), Ok(16_000));
        // Truncated toward zero, so a tiny timeout (even a negative one) means "forever".
        assert_eq!(parse_timeout(b"0.0001"), Ok(0));
        assert_eq!(parse_timeout(b"-0.0001"), Ok(0));
        assert_eq!(parse_timeout(b"-0"), Ok(0));
        assert_eq!(parse_timeout(b"1e-400"), Ok(0));
        let negative = Err("ERR timeout is negative");
        assert_eq!(parse_timeout(b"-1"), negative);
        assert_eq!(parse_timeout(b"-0.5"), negative);
        assert_eq!(parse_timeout(b"inf"), negative);
        assert_eq!(parse_timeout(b"-inf"), negative);
        assert_eq!(parse_timeout(b"1e300"), negative);
        assert_eq!(parse_timeout(b"1e400"), negative);
        assert_eq!(parse_timeout(b"9223372036854775807"), negative);
        assert_eq!(parse_timeout(b"9223372036854775808"), negative);
        assert_eq!(parse_timeout(b"86400.25"), Ok(86_400_250));
        let bad = Err("ERR timeout is not a float or out of range");
        for s in [
            &b"abc"[..],
            b"nan",
            b"",
            b" 1",
            b"1 ",
            b"1x",
            b"1e-99999",
            b"--1",
        ] {
            assert_eq!(parse_timeout(s), bad, "{}", String::from_utf8_lossy(s));
        }
        assert_eq!(parse_timeout(&vec![b'1'; 6000]), bad);
    }

    #[test]
    fn millis_truncate_toward_zero() {
        assert_eq!(millis_of_decimal(b"0"), 0);
        assert_eq!(millis_of_decimal(b"12.3456"), 12_345);
        assert_eq!(millis_of_decimal(b"-12.3456"), -12_345);
        assert_eq!(millis_of_decimal(b"0.0009"), 0);
        assert_eq!(millis_of_decimal(b"99999999999999999999"), i64::MIN);
    }

    #[test]
    fn deadlines_expire_strictly_after() {
        let b = BlockState {
            db: 0,
            keys: Vec::new(),
            want: Want::List,
            deadline: 1000,
            stream_ids: Vec::new(),
        };
        assert!(!b.expired(1000));
        assert!(b.expired(1001));
        let forever = BlockState { deadline: 0, ..b };
        assert!(!forever.expired(u64::MAX));
    }
}
