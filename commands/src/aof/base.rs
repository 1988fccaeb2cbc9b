//! An AOF base in command form (`aof-use-rdb-preamble no`): Redis 7.0's
//! `rewriteAppendOnlyFileRio`, one `SELECT` per non-empty database, then per key `SET`, or
//! `RPUSH`/`SADD`/`ZADD`/`HMSET` with at most 64 items per command, a stream's entries, groups
//! and pending entries as XADD, XSETID, XGROUP and XCLAIM, and `PEXPIREAT` for a TTL.

use std::io::{self, Write};

use ferrite_collections::{Stream, StreamId};
use ferrite_hybridlog::{NO_EXPIRY, Session, Value};

use super::entry::encode;
use crate::objects::Collection;
use crate::persist::rdb_write::Aux;
use crate::resp::reply::format_double_g17;

/// Redis's `AOF_REWRITE_ITEMS_PER_CMD`.
const ITEMS_PER_CMD: usize = 64;

/// Appends the commands that rebuild a collection under `key`.
fn collection(out: &mut Vec<u8>, key: &[u8], c: &Collection) {
    let (cmd, items): (&[u8], Vec<Vec<Vec<u8>>>) = match c {
        Collection::List(l) => (b"RPUSH", l.iter().map(|e| vec![e.to_vec()]).collect()),
        Collection::Set(s) => (b"SADD", s.iter().map(|e| vec![e.into_owned()]).collect()),
        Collection::ZSet(z) => (
            b"ZADD",
            z.iter()
                .map(|(m, score)| vec![format_double_g17(score).into_bytes(), m.to_vec()])
                .collect(),
        ),
        Collection::Hash(h) => (
            b"HMSET",
            h.iter()
                .map(|(f, v)| vec![f.to_vec(), v.to_vec()])
                .collect(),
        ),
        Collection::Stream(s) => return stream(out, key, s),
    };
    for chunk in items.chunks(ITEMS_PER_CMD) {
        let mut args: Vec<&[u8]> = vec![cmd, key];
        args.extend(chunk.iter().flatten().map(Vec::as_slice));
        encode(out, &args);
    }
}

/// Redis 7.0's `rewriteStreamObject`: one XADD per entry (or `XADD key MAXLEN 0 0-1 x y` for a
/// stream without entries), XSETID with the stream's counters, then per group XGROUP CREATE
/// and per consumer one `XCLAIM ... FORCE` per pending entry, or XGROUP CREATECONSUMER.
fn stream(out: &mut Vec<u8>, key: &[u8], s: &Stream) {
    let e = &s.entries;
    if e.is_empty() {
        encode(out, &[b"XADD", key, b"MAXLEN", b"0", b"0-1", b"x", b"y"]);
    }
    for entry in e.range(StreamId::MIN, StreamId::MAX, false) {
        let id = entry.id().to_string();
        let fields: Vec<Vec<u8>> = entry
            .fields()
            .flat_map(|(f, v)| [f.to_vec(), v.to_vec()])
            .collect();
        let mut args: Vec<&[u8]> = vec![b"XADD", key, id.as_bytes()];
        args.extend(fields.iter().map(Vec::as_slice));
        encode(out, &args);
    }
    let (last, added, deleted) = (
        e.last_id().to_string(),
        e.entries_added().to_string(),
        e.max_deleted_entry_id().to_string(),
    );
    encode(
        out,
        &[
            b"XSETID",
            key,
            last.as_bytes(),
            b"ENTRIESADDED",
            added.as_bytes(),
            b"MAXDELETEDID",
            deleted.as_bytes(),
        ],
    );
    for (name, g) in s.groups.iter() {
        let last = g.last_id.to_string();
        let read = g
            .entries_read
            .map_or_else(|| "-1".to_string(), |n| n.to_string());
        encode(
            out,
            &[
                b"XGROUP",
                b"CREATE",
                key,
                name,
                last.as_bytes(),
                b"ENTRIESREAD",
                read.as_bytes(),
            ],
        );
        for (consumer, c) in g.consumers() {
            if c.pending_count() == 0 {
                encode(out, &[b"XGROUP", b"CREATECONSUMER", key, name, consumer]);
                continue;
            }
            for id in c.pending() {
                let Some(nack) = g.pel().get(&id) else {
                    continue;
                };
                let (id, time, count) = (
                    id.to_string(),
                    nack.delivery_time_ms.to_string(),
                    nack.delivery_count.to_string(),
                );
                encode(
                    out,
                    &[
                        b"XCLAIM",
                        key,
                        name,
                        consumer,
                        b"0",
                        id.as_bytes(),
                        b"TIME",
                        time.as_bytes(),
                        b"RETRYCOUNT",
                        count.as_bytes(),
                        b"JUSTID",
                        b"FORCE",
                    ],
                );
            }
        }
    }
}

fn expiry(out: &mut Vec<u8>, key: &[u8], expire_at: u64) {
    if expire_at != NO_EXPIRY {
        encode(out, &[b"PEXPIREAT", key, expire_at.to_string().as_bytes()]);
    }
}

/// Writes the function libraries (`FUNCTION LOAD`, Redis's `rewriteFunctions`) and every live
/// key as of `now_ms` as commands to `w` (the caller keeps the store still, as for an RDB
/// snapshot); `aux` gives the libraries and the per-key delay.
pub fn write_commands<W: Write>(
    session: &mut Session,
    now_ms: u64,
    aux: Aux,
    mut w: W,
) -> io::Result<W> {
    let store = std::sync::Arc::clone(session.store());
    let mut buf = Vec::with_capacity(1 << 16);
    let mut objects: Vec<Vec<u8>> = Vec::new();
    for code in &aux.libraries {
        encode(&mut buf, &[b"FUNCTION", b"LOAD", code]);
    }
    for db in 0..store.databases().min(256) {
        let db = db as u8;
        if store.db_size(db) == 0 {
            continue;
        }
        encode(&mut buf, &[b"SELECT", db.to_string().as_bytes()]);
        let mut cursor = 0;
        loop {
            objects.clear();
            cursor = session.scan(db, cursor, 512, now_ms, |key, e| {
                if e.kind.is_object() {
                    objects.push(key.to_vec());
                } else {
                    encode(&mut buf, &[b"SET", key, e.value]);
                    expiry(&mut buf, key, e.expire_at);
                    aux.after_key();
                }
            });
            for key in &objects {
                // A bulk pass: nothing it reads from disk is copied back into memory.
                session.without_copying_reads(|session| {
                    session.read_value(db, key, now_ms, |e| {
                        match e.value {
                            Value::String(s) => encode(&mut buf, &[b"SET", key, s]),
                            Value::Object(o) => {
                                if let Some(c) = Collection::of(o) {
                                    collection(&mut buf, key, c);
                                }
                            }
                        }
                        expiry(&mut buf, key, e.expire_at);
                    })
                });
                aux.after_key();
            }
            w.write_all(&buf)?;
            buf.clear();
            if cursor == 0 {
                break;
            }
        }
    }
    Ok(w)
}
