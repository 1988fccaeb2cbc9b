//! An AOF base in command form (`aof-use-rdb-preamble no`): Redis 7.0's
//! `rewriteAppendOnlyFileRio`, one `SELECT` per non-empty database, then per key `SET`, or
//! `RPUSH`/`SADD`/`ZADD`/`HMSET` with at most 64 items per command, and `PEXPIREAT` for a TTL.

use std::io::{self, Write};

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
    };
    for chunk in items.chunks(ITEMS_PER_CMD) {
        let mut args: Vec<&[u8]> = vec![cmd, key];
        args.extend(chunk.iter().flatten().map(Vec::as_slice));
        encode(out, &args);
    }
}

fn expiry(out: &mut Vec<u8>, key: &[u8], expire_at: u64) {
    if expire_at != NO_EXPIRY {
        encode(out, &[b"PEXPIREAT", key, expire_at.to_string().as_bytes()]);
    }
}

/// Writes every live key as of `now_ms` as commands to `w` (the caller keeps the store still,
/// as for an RDB snapshot); `aux` gives the per-key delay.
pub fn write_commands<W: Write>(
    session: &mut Session,
    now_ms: u64,
    aux: Aux,
    mut w: W,
) -> io::Result<W> {
    let store = std::sync::Arc::clone(session.store());
    let mut buf = Vec::with_capacity(1 << 16);
    let mut objects: Vec<Vec<u8>> = Vec::new();
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
