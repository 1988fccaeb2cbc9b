//! How a command that changed the dataset is written to the AOF: Redis 7.0's propagation
//! rewrites, in one place. Relative times become absolute (`SET .. EX` → `SET .. PXAT`, the
//! EXPIRE family → `PEXPIREAT`), results that depend on the moment become their outcome
//! (`INCRBYFLOAT` → `SET .. KEEPTTL`, `SPOP` → `SREM`), blocking pops become the pop that served
//! them, and everything else is written as the client sent it.
//!
//! The caller decides *whether* a command changed anything (it took a commit number from the
//! store, or it is one Redis always propagates); this module decides *what* to write. Outcomes
//! it needs (which key a BLPOP served, the new value of an INCRBYFLOAT) are read back from the
//! command's reply, so handlers need not report them.

use ferrite_hybridlog::Db;

use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::table::{CommandSpec, flags};

use super::entry::Entry;

mod streams;
pub use streams::After;

/// Commands Redis propagates whenever they succeed, changed or not.
const ALWAYS: &[&str] = &["flushall", "flushdb", "swapdb"];

/// Whether `spec` is propagated even when it changed nothing in the store: the commands above,
/// and the FUNCTION subcommands that change the libraries (which live outside the store).
pub fn always(spec: &CommandSpec) -> bool {
    ALWAYS.contains(&spec.name) || spec.group == "scripting" && spec.has(flags::WRITE)
}

/// Appends the propagated form of one executed command to `entry`. `wrote`: the command
/// changed the store; `reply`: the bytes it answered; `db`: the database it ran in; `after`:
/// the dataset as the command left it (SPOP with a count that emptied the set is a `DEL`, an
/// approximate XTRIM is written as the exact trim it turned out to be).
#[allow(clippy::too_many_arguments)]
pub fn command(
    entry: &mut Entry,
    db: Db,
    spec: &CommandSpec,
    args: Args<'_>,
    reply: &[u8],
    now_ms: u64,
    wrote: bool,
    after: &mut dyn After,
) {
    if !spec.has(flags::WRITE) {
        return;
    }
    let failed = reply.first() == Some(&b'-');
    if !(wrote || always(spec) && !failed) {
        return;
    }
    let a = |i: usize| args.get(i);
    let verbatim = |entry: &mut Entry| entry.push(db, args.iter_from(0));
    match spec.name {
        // Its local deletions come as the DEL it hands the feed; the transfer is not replayed.
        "migrate" => {}
        "set" => match set_expiry(args, now_ms) {
            Some(at) => entry.push(db, [&b"SET"[..], a(1), a(2), b"PXAT", at.as_bytes()]),
            None => verbatim(entry),
        },
        "setex" | "psetex" => {
            let unit = if spec.name == "setex" { 1000 } else { 1 };
            let at = relative(a(2), unit, now_ms).to_string();
            entry.push(db, [&b"SET"[..], a(1), a(3), b"PXAT", at.as_bytes()]);
        }
        "expire" | "pexpire" | "expireat" | "pexpireat" => {
            let unit = if spec.name.starts_with('p') { 1 } else { 1000 };
            let at = if spec.name.ends_with("at") {
                absolute(a(2), unit)
            } else {
                relative(a(2), unit, now_ms)
            };
            if at <= now_ms as i64 {
                entry.push(db, [&b"DEL"[..], a(1)]);
            } else if spec.name == "pexpireat" {
                verbatim(entry);
            } else {
                // Redis rewrites the name and the time in place: NX/XX/GT/LT stay.
                let at = at.to_string();
                let head = [&b"PEXPIREAT"[..], a(1), at.as_bytes()];
                entry.push(db, head.into_iter().chain(args.iter_from(3)));
            }
        }
        "getset" => entry.push(db, [&b"SET"[..], a(1), a(2)]),
        "getex" => getex(entry, db, args, now_ms),
        "getdel" => entry.push(db, [&b"DEL"[..], a(1)]),
        // Without the result in the reply (never expected), the command itself replays the
        // same arithmetic.
        "incrbyfloat" => match bulk(reply) {
            Some(v) => entry.push(db, [&b"SET"[..], a(1), v, b"KEEPTTL"]),
            None => verbatim(entry),
        },
        "hincrbyfloat" => match bulk(reply) {
            Some(v) => entry.push(db, [&b"HSET"[..], a(1), a(2), v]),
            None => verbatim(entry),
        },
        "spop" => {
            // Redis writes one SREM per popped member (in a MULTI when several), or a DEL
            // when a count took the whole set.
            if args.len() > 2 && !after.exists(a(1)) {
                entry.push(db, [&b"DEL"[..], a(1)]);
            } else {
                for member in members(reply) {
                    entry.push(db, [&b"SREM"[..], a(1), member]);
                }
            }
        }
        "blpop" | "brpop" => {
            if let Some(key) = first_bulk(reply) {
                let pop: &[u8] = if spec.name == "blpop" {
                    b"LPOP"
                } else {
                    b"RPOP"
                };
                entry.push(db, [pop, key]);
            }
        }
        "brpoplpush" => entry.push(db, [&b"RPOPLPUSH"[..], a(1), a(2)]),
        "blmove" => entry.push(db, [&b"LMOVE"[..], a(1), a(2), a(3), a(4)]),
        "bzpopmin" | "bzpopmax" => {
            if let Some(key) = first_bulk(reply) {
                let pop: &[u8] = if spec.name == "bzpopmin" {
                    b"ZPOPMIN"
                } else {
                    b"ZPOPMAX"
                };
                entry.push(db, [pop, key]);
            }
        }
        "lmpop" | "blmpop" | "zmpop" | "bzmpop" => mpop(entry, db, spec.name, args, reply),
        "restore" => restore(entry, db, args, now_ms),
        "geoadd" => geoadd(entry, db, args),
        "xadd" | "xtrim" => streams::add_or_trim(entry, db, args, reply, after),
        "xreadgroup" => streams::readgroup(entry, db, args, reply, after),
        "xclaim" | "xautoclaim" => streams::claim(entry, db, args, reply, after),
        _ => verbatim(entry),
    }
}

/// `SET`'s expiry as an absolute Unix ms, if it has one.
fn set_expiry(args: Args<'_>, now_ms: u64) -> Option<String> {
    let mut i = 3;
    while i + 1 < args.len() {
        let opt = args.get(i);
        let v = args.get(i + 1);
        let at = if eq_ignore_case(opt, "ex") {
            Some(relative(v, 1000, now_ms))
        } else if eq_ignore_case(opt, "px") {
            Some(relative(v, 1, now_ms))
        } else if eq_ignore_case(opt, "exat") {
            Some(absolute(v, 1000))
        } else if eq_ignore_case(opt, "pxat") {
            Some(absolute(v, 1))
        } else {
            None
        };
        if let Some(at) = at {
            return Some(at.to_string());
        }
        i += 1;
    }
    None
}

/// `now + v * unit` (saturating; the handler already refused what is out of range).
fn relative(v: &[u8], unit: i64, now_ms: u64) -> i64 {
    let v = parse_i64(v).unwrap_or(0);
    (now_ms as i64).saturating_add(v.saturating_mul(unit))
}

fn absolute(v: &[u8], unit: i64) -> i64 {
    parse_i64(v).unwrap_or(0).saturating_mul(unit)
}

/// A TTL set at `at`: `PEXPIREAT`, or `DEL` when it is already past (the key was deleted).
fn expire_at(entry: &mut Entry, db: Db, key: &[u8], at: i64, now_ms: u64) {
    if at <= now_ms as i64 {
        entry.push(db, [&b"DEL"[..], key]);
    } else {
        entry.push(db, [&b"PEXPIREAT"[..], key, at.to_string().as_bytes()]);
    }
}

fn getex(entry: &mut Entry, db: Db, args: Args<'_>, now_ms: u64) {
    let key = args.get(1);
    let Some(opt) = args.try_get(2) else {
        return;
    };
    if eq_ignore_case(opt, "persist") {
        entry.push(db, [&b"PERSIST"[..], key]);
        return;
    }
    let Some(v) = args.try_get(3) else {
        return;
    };
    let at = if eq_ignore_case(opt, "ex") {
        relative(v, 1000, now_ms)
    } else if eq_ignore_case(opt, "px") {
        relative(v, 1, now_ms)
    } else if eq_ignore_case(opt, "exat") {
        absolute(v, 1000)
    } else {
        absolute(v, 1)
    };
    expire_at(entry, db, key, at, now_ms);
}

/// LMPOP/BLMPOP → `LPOP|RPOP key count`, ZMPOP/BZMPOP → `ZPOPMIN|ZPOPMAX key count`, with the
/// key that was served and the number popped (from the reply).
fn mpop(entry: &mut Entry, db: Db, name: &str, args: Args<'_>, reply: &[u8]) {
    let Some(Value::Array(items)) = parse(reply).map(|(v, _)| v) else {
        return;
    };
    let (Some(Value::Bulk(key)), Some(Value::Array(popped))) = (items.first(), items.get(1)) else {
        return;
    };
    // numkeys is after the timeout for the blocking forms.
    let numkeys_at = if name.starts_with('b') { 2 } else { 1 };
    let numkeys = args
        .try_get(numkeys_at)
        .and_then(parse_i64)
        .unwrap_or(0)
        .max(0) as usize;
    let dir = args.try_get(numkeys_at + 1 + numkeys).unwrap_or_default();
    let pop: &[u8] = match (
        name.ends_with("lmpop"),
        eq_ignore_case(dir, "left") || eq_ignore_case(dir, "min"),
    ) {
        (true, true) => b"LPOP",
        (true, false) => b"RPOP",
        (false, true) => b"ZPOPMIN",
        (false, false) => b"ZPOPMAX",
    };
    let count = popped.len().to_string();
    entry.push(db, [pop, key, count.as_bytes()]);
}

/// RESTORE with a relative TTL gets an absolute one and `ABSTTL`, as Redis's `restoreCommand`.
fn restore(entry: &mut Entry, db: Db, args: Args<'_>, now_ms: u64) {
    let absttl = args.iter_from(4).any(|a| eq_ignore_case(a, "absttl"));
    let ttl = parse_i64(args.get(2)).unwrap_or(0);
    if absttl || ttl == 0 {
        entry.push(db, args.iter_from(0));
        return;
    }
    let at = (now_ms as i64).saturating_add(ttl).to_string();
    let mut v: Vec<&[u8]> = args.iter_from(0).collect();
    v[2] = at.as_bytes();
    v.push(b"ABSTTL");
    entry.push(db, v);
}

/// GEOADD is Redis's ZADD underneath, and is written as the `zadd` it ran: the options as
/// given, then each point's 52-bit geohash score and its member.
fn geoadd(entry: &mut Entry, db: Db, args: Args<'_>) {
    let mut first = 2;
    while first < args.len()
        && ["nx", "xx", "ch"]
            .iter()
            .any(|o| eq_ignore_case(args.get(first), o))
    {
        first += 1;
    }
    let mut scores = Vec::new();
    let mut i = first;
    while i + 2 < args.len() {
        let point =
            crate::args::parse_f64(args.get(i)).zip(crate::args::parse_f64(args.get(i + 1)));
        let Some(score) = point.and_then(|(lon, lat)| ferrite_collections::geo::score(lon, lat))
        else {
            // The handler refused the command; nothing was written.
            return;
        };
        scores.push((score as u64).to_string());
        i += 3;
    }
    let mut v: Vec<&[u8]> = vec![b"zadd"];
    v.extend(args.iter_from(1).take(first - 1));
    for (n, score) in scores.iter().enumerate() {
        v.push(score.as_bytes());
        v.push(args.get(first + n * 3 + 2));
    }
    entry.push(db, v);
}

/// A reply value, as far as propagation needs to see it.
#[derive(Debug, PartialEq)]
enum Value<'a> {
    Bulk(&'a [u8]),
    Array(Vec<Value<'a>>),
    Other,
}

/// Parses one RESP2/RESP3 reply value at the start of `b`; returns it and its length.
fn parse(b: &[u8]) -> Option<(Value<'_>, usize)> {
    let end = b.windows(2).position(|w| w == b"\r\n")?;
    let line = &b[1..end];
    let body = end + 2;
    match *b.first()? {
        b'$' | b'=' | b'!' => {
            let n = parse_i64(line)?;
            if n < 0 {
                return Some((Value::Other, body));
            }
            let n = n as usize;
            let v = b.get(body..body + n)?;
            Some((Value::Bulk(v), body + n + 2))
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = parse_i64(line)?;
            if n < 0 {
                return Some((Value::Other, body));
            }
            let n = if matches!(b[0], b'%' | b'|') {
                n * 2
            } else {
                n
            } as usize;
            let mut items = Vec::with_capacity(n.min(1024));
            let mut at = body;
            for _ in 0..n {
                let (v, len) = parse(b.get(at..)?)?;
                items.push(v);
                at += len;
            }
            Some((Value::Array(items), at))
        }
        // Simple strings and RESP3 doubles and numbers carry their value on the line.
        b'+' | b',' | b':' | b'(' => Some((Value::Bulk(line), body)),
        _ => Some((Value::Other, body)),
    }
}

fn bulk(reply: &[u8]) -> Option<&[u8]> {
    match parse(reply)?.0 {
        Value::Bulk(v) => Some(v),
        _ => None,
    }
}

fn first_bulk(reply: &[u8]) -> Option<&[u8]> {
    match parse(reply)?.0 {
        Value::Array(items) => match items.into_iter().next()? {
            Value::Bulk(v) => Some(v),
            _ => None,
        },
        _ => None,
    }
}

/// The members of a SPOP reply: one bulk, or an array (set) of them.
fn members(reply: &[u8]) -> Vec<&[u8]> {
    match parse(reply).map(|(v, _)| v) {
        Some(Value::Bulk(v)) => vec![v],
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(|v| match v {
                Value::Bulk(b) => Some(b),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests;
