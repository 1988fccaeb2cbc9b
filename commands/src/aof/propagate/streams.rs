//! How stream commands are written to the AOF, as Redis 7.0 propagates them: the ID XADD
//! generated instead of `*`, an approximate trim as the exact trim it turned out to be, and the
//! consumer-group commands whose effect depends on the clock (XREADGROUP, XCLAIM, XAUTOCLAIM)
//! as the idempotent `XCLAIM ... TIME t RETRYCOUNT n FORCE JUSTID LASTID id` of each entry they
//! delivered or claimed, read back from the stream after the command ran.

use ferrite_collections::StreamId;
use ferrite_hybridlog::Db;

use super::{Value, parse};
use crate::aof::entry::Entry;
use crate::args::{Args, eq_ignore_case};

/// What propagation may look up in the dataset after the command ran.
pub trait After {
    /// Whether `key` exists.
    fn exists(&mut self, key: &[u8]) -> bool;
    /// The stream at `key`: its length and its first entry's ID (`MAX` when it has none).
    fn stream_edges(&mut self, _key: &[u8]) -> Option<(u64, StreamId)> {
        None
    }
    /// Group `group` of the stream at `key`: its last delivered ID and entries-read counter.
    fn group(&mut self, _key: &[u8], _group: &[u8]) -> Option<(StreamId, Option<u64>)> {
        None
    }
    /// Whether the stream at `key` has entry `id` (`None`: no stream there).
    fn entry_exists(&mut self, _key: &[u8], _id: StreamId) -> Option<bool> {
        None
    }
    /// The pending entry `id` of that group: owner, delivery time and delivery count.
    fn nack(&mut self, _key: &[u8], _group: &[u8], _id: StreamId) -> Option<(Vec<u8>, u64, u64)> {
        None
    }
}

impl<F: FnMut(&[u8]) -> bool> After for F {
    fn exists(&mut self, key: &[u8]) -> bool {
        self(key)
    }
}

/// XADD and XTRIM: the generated ID in place of `*` / `<ms>-*`, and `~ n [LIMIT l]` as
/// `= <what is left>` (`streamRewriteApproxSpecifier` + `streamRewriteTrimArgument`), so a replay
/// trims exactly as the original did whatever the node layout is then.
pub(super) fn add_or_trim(
    entry: &mut Entry,
    db: Db,
    args: Args<'_>,
    reply: &[u8],
    after: &mut dyn After,
) {
    let xadd = eq_ignore_case(args.get(0), "xadd");
    let key = args.get(1);
    let mut out: Vec<Vec<u8>> = vec![args.get(0).to_vec(), key.to_vec()];
    let mut i = 2;
    let mut approx = false;
    let mut strategy: Option<(bool, usize)> = None; // (maxlen, index in `out` of the threshold)
    while i < args.len() {
        let a = args.get(i);
        let maxlen = eq_ignore_case(a, "maxlen");
        if maxlen || eq_ignore_case(a, "minid") {
            out.push(a.to_vec());
            i += 1;
            let op = args.try_get(i).unwrap_or_default();
            if op == b"~" || op == b"=" {
                approx = op == b"~";
                out.push(b"=".to_vec());
                i += 1;
            }
            strategy = Some((maxlen, out.len()));
            out.push(args.try_get(i).unwrap_or_default().to_vec());
            i += 1;
        } else if eq_ignore_case(a, "limit") {
            // Kept, as Redis keeps it: the AOF loader accepts it with `=`, and the exact
            // threshold makes it moot.
            out.push(a.to_vec());
            out.push(args.try_get(i + 1).unwrap_or_default().to_vec());
            i += 2;
        } else if xadd && eq_ignore_case(a, "nomkstream") {
            out.push(a.to_vec());
            i += 1;
        } else {
            break;
        }
    }
    if xadd {
        let Some(Value::Bulk(id)) = parse(reply).map(|(v, _)| v) else {
            return;
        };
        out.push(id.to_vec());
        out.extend(args.iter_from(i + 1).map(<[u8]>::to_vec));
    }
    if approx
        && let Some((maxlen, at)) = strategy
        && let Some((len, first)) = after.stream_edges(key)
    {
        out[at] = if maxlen {
            len.to_string().into_bytes()
        } else {
            first.to_string().into_bytes()
        };
    } else if !approx {
        // Exact trims replay as they were written (LIMIT is refused without `~`).
        if !xadd {
            entry.push(db, args.iter_from(0));
            return;
        }
    }
    entry.push(db, out.iter().map(Vec::as_slice));
}

/// The IDs (of entries or bare IDs) in one array of a reply: `[[id, fields]...]` or `[id...]`.
fn ids_in(v: &Value<'_>) -> Vec<StreamId> {
    let Value::Array(items) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|it| match it {
            Value::Bulk(id) => parse_id(id),
            Value::Array(pair) => match pair.first() {
                Some(Value::Bulk(id)) => parse_id(id),
                _ => None,
            },
            Value::Other => None,
        })
        .collect()
}

fn parse_id(b: &[u8]) -> Option<StreamId> {
    let s = std::str::from_utf8(b).ok()?;
    let (ms, seq) = s.split_once('-')?;
    Some(StreamId::new(ms.parse().ok()?, seq.parse().ok()?))
}

/// Writes the state of entry `id` in the group as it is now: the `XCLAIM` that recreates its
/// pending entry, or an `XACK` when the command removed it (an entry deleted from the stream).
fn claim_state(
    entry: &mut Entry,
    db: Db,
    key: &[u8],
    group: &[u8],
    id: StreamId,
    after: &mut dyn After,
) {
    let ids = id.to_string();
    let last = after
        .group(key, group)
        .map(|(last, _)| last.to_string())
        .unwrap_or_else(|| "0-0".into());
    match after.nack(key, group, id) {
        Some((owner, time, count)) => {
            let (time, count) = (time.to_string(), count.to_string());
            entry.push(
                db,
                [
                    &b"XCLAIM"[..],
                    key,
                    group,
                    &owner,
                    b"0",
                    ids.as_bytes(),
                    b"TIME",
                    time.as_bytes(),
                    b"RETRYCOUNT",
                    count.as_bytes(),
                    b"FORCE",
                    b"JUSTID",
                    b"LASTID",
                    last.as_bytes(),
                ],
            );
        }
        None => entry.push(db, [&b"XACK"[..], key, group, ids.as_bytes()]),
    }
}

/// `XGROUP SETID key group <last> ENTRIESREAD <n>` with the group as it is now.
fn group_id(entry: &mut Entry, db: Db, key: &[u8], group: &[u8], after: &mut dyn After) {
    if let Some((last, read)) = after.group(key, group) {
        let last = last.to_string();
        let read = read.map_or_else(|| "-1".to_string(), |n| n.to_string());
        entry.push(
            db,
            [
                &b"XGROUP"[..],
                b"SETID",
                key,
                group,
                last.as_bytes(),
                b"ENTRIESREAD",
                read.as_bytes(),
            ],
        );
    }
}

/// XREADGROUP, as `streamReplyWithRange` propagates it: for a `>` read, each delivered entry's
/// pending state as an XCLAIM, or with NOACK the group's new last ID (after an XGROUP
/// CREATECONSUMER when the read created the consumer); a read of the consumer's own history
/// changes nothing Redis propagates.
pub(super) fn readgroup(
    entry: &mut Entry,
    db: Db,
    args: Args<'_>,
    reply: &[u8],
    after: &mut dyn After,
) {
    let (mut group, mut consumer, mut noack, mut streams) = (None, None, false, None);
    let mut i = 1;
    while i < args.len() {
        let a = args.get(i);
        if eq_ignore_case(a, "group") {
            group = args.try_get(i + 1);
            consumer = args.try_get(i + 2);
            i += 3;
        } else if eq_ignore_case(a, "noack") {
            noack = true;
            i += 1;
        } else if eq_ignore_case(a, "streams") {
            streams = Some(i + 1);
            break;
        } else {
            i += 2;
        }
    }
    let (Some(group), Some(consumer), Some(first)) = (group, consumer, streams) else {
        return;
    };
    let nkeys = (args.len() - first) / 2;
    let Some(Value::Array(items)) = parse(reply).map(|(v, _)| v) else {
        return;
    };
    // RESP2: [[key, entries]...]; RESP3: a map, flattened to key, entries, key, entries.
    let mut served: Vec<(&[u8], Vec<StreamId>)> = Vec::new();
    if items.iter().all(|v| matches!(v, Value::Array(_))) {
        for it in &items {
            if let Value::Array(kv) = it
                && let [Value::Bulk(k), v] = kv.as_slice()
            {
                served.push((k, ids_in(v)));
            }
        }
    } else {
        for kv in items.chunks(2) {
            if let [Value::Bulk(k), v] = kv {
                served.push((k, ids_in(v)));
            }
        }
    }
    let created = crate::cmd::streams::take_created_consumers();
    for (key, ids) in served {
        let new_only = (0..nkeys)
            .find(|&k| args.get(first + k) == key)
            .is_some_and(|k| args.get(first + nkeys + k) == b">");
        if !new_only || ids.is_empty() {
            continue;
        }
        if noack {
            if created.iter().any(|k| k.as_slice() == key) {
                entry.push(
                    db,
                    [&b"XGROUP"[..], b"CREATECONSUMER", key, group, consumer],
                );
            }
            group_id(entry, db, key, group, after);
        } else {
            for id in ids {
                claim_state(entry, db, key, group, id, after);
            }
        }
    }
}

/// XCLAIM and XAUTOCLAIM: each claimed entry's pending state as an XCLAIM (which carries the
/// group's last ID), an entry found deleted as the XACK that drops its pending entry, and
/// XCLAIM's LASTID alone as an XGROUP SETID.
pub(super) fn claim(
    entry: &mut Entry,
    db: Db,
    args: Args<'_>,
    reply: &[u8],
    after: &mut dyn After,
) {
    let (key, group) = (args.get(1), args.get(2));
    let parsed = parse(reply).map(|(v, _)| v);
    if eq_ignore_case(args.get(0), "xclaim") {
        let claimed = parsed.as_ref().map(ids_in).unwrap_or_default();
        let asked: Vec<StreamId> = args.iter_from(5).map_while(parse_id).collect();
        for &id in &asked {
            if claimed.contains(&id) {
                claim_state(entry, db, key, group, id, after);
            } else if after.entry_exists(key, id) == Some(false)
                && after.nack(key, group, id).is_none()
            {
                // A deleted entry: XCLAIM dropped its pending entry, if it had one.
                entry.push(db, [&b"XACK"[..], key, group, id.to_string().as_bytes()]);
            }
        }
        if claimed.is_empty() && args.iter_from(5).any(|a| eq_ignore_case(a, "lastid")) {
            group_id(entry, db, key, group, after);
        }
    } else if let Some(Value::Array(items)) = parsed {
        // [cursor, claimed, deleted]
        for id in items.get(1).map(ids_in).unwrap_or_default() {
            claim_state(entry, db, key, group, id, after);
        }
        for id in items.get(2).map(ids_in).unwrap_or_default() {
            entry.push(db, [&b"XACK"[..], key, group, id.to_string().as_bytes()]);
        }
    }
}
