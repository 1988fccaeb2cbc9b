//! Streams in Redis's RDB encoding (`rdbSaveObject` / `rdbLoadObject` for `OBJ_STREAM`):
//! `RDB_TYPE_STREAM_LISTPACKS_2` as Redis 7.0 writes it, and the older
//! `RDB_TYPE_STREAM_LISTPACKS` of Redis 5 and 6 on load.
//!
//! The entries' listpack nodes are written as they are (Ferrite keeps them in Redis's layout),
//! each under its master ID's 16-byte big-endian key; then the length and the stream's IDs;
//! then each consumer group with its global PEL (ID, delivery time, delivery count) and its
//! consumers (name, seen time, the IDs of their PEL).

use std::collections::BTreeMap;

use ferrite_collections::stream::{ConsumerGroup, Entries, Groups};
use ferrite_collections::{Stream, StreamId};

use super::rdb::{BadFormat, Reader, put_len, put_string, ty};

type R<T> = Result<T, BadFormat>;

/// Appends the value of a stream (after its type byte and key).
pub(crate) fn put_stream(out: &mut Vec<u8>, s: &Stream) {
    let e = &s.entries;
    put_len(out, e.nodes().count() as u64);
    for (master, lp) in e.nodes() {
        put_string(out, &master.to_be_bytes());
        put_string(out, lp);
    }
    put_len(out, e.len());
    put_id(out, e.last_id());
    put_id(out, e.first_id());
    put_id(out, e.max_deleted_entry_id());
    put_len(out, e.entries_added());
    put_len(out, s.groups.len() as u64);
    for (name, g) in s.groups.iter() {
        put_string(out, name);
        put_id(out, g.last_id);
        // SCG_INVALID_ENTRIES_READ (-1) is saved as the unsigned length it casts to.
        put_len(out, g.entries_read.unwrap_or(u64::MAX));
        put_len(out, g.pel().len() as u64);
        for (id, n) in g.pel() {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&n.delivery_time_ms.to_le_bytes());
            put_len(out, n.delivery_count);
        }
        put_len(out, g.consumer_count() as u64);
        for (name, c) in g.consumers() {
            put_string(out, name);
            out.extend_from_slice(&c.seen_time_ms.to_le_bytes());
            put_len(out, c.pending_count() as u64);
            for id in c.pending() {
                out.extend_from_slice(&id.to_be_bytes());
            }
        }
    }
}

fn put_id(out: &mut Vec<u8>, id: StreamId) {
    put_len(out, id.ms);
    put_len(out, id.seq);
}

impl Reader<'_> {
    fn stream_id(&mut self) -> R<StreamId> {
        Ok(StreamId::new(self.len()?, self.len()?))
    }

    fn raw_id(&mut self) -> R<StreamId> {
        let b = self.take(16)?;
        Ok(StreamId::from_be_bytes(
            b.try_into().map_err(|_| BadFormat)?,
        ))
    }

    fn millis(&mut self) -> R<u64> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().map_err(|_| BadFormat)?))
    }

    /// The value of a stream of RDB type `t` (`STREAM_LISTPACKS` or `STREAM_LISTPACKS_2`).
    pub(crate) fn stream(&mut self, t: u8) -> R<Stream> {
        let r = self;
        let n = r.len()?;
        let mut nodes = Vec::new();
        for _ in 0..n {
            let key = r.string()?;
            let key: [u8; 16] = key.as_slice().try_into().map_err(|_| BadFormat)?;
            let lp = r.string()?;
            nodes.push((StreamId::from_be_bytes(key), lp));
        }
        let length = r.len()?;
        let last_id = r.stream_id()?;
        let entries = if t == ty::STREAM_LISTPACKS_2 {
            let first_id = r.stream_id()?;
            let max_deleted = r.stream_id()?;
            let added = r.len()?;
            Entries::from_parts(nodes, length, last_id, first_id, max_deleted, added)
        } else {
            // Redis 5 and 6 kept no counters: Redis 7 starts `entries_added` at the length and
            // finds the first entry itself.
            let first = Entries::from_parts(
                nodes.clone(),
                length,
                last_id,
                StreamId::MIN,
                StreamId::MIN,
                length,
            )
            .map_err(|_| BadFormat)?
            .range(StreamId::MIN, StreamId::MAX, false)
            .next()
            .map_or(StreamId::MIN, |e| e.id());
            Entries::from_parts(nodes, length, last_id, first, StreamId::MIN, length)
        }
        .map_err(|_| BadFormat)?;
        let mut groups = Groups::default();
        for _ in 0..r.len()? {
            let name = r.string()?;
            let last_id = r.stream_id()?;
            let entries_read = if t == ty::STREAM_LISTPACKS_2 {
                Some(r.len()?).filter(|&n| n != u64::MAX)
            } else {
                entries.estimate_distance_from_first_ever_entry(last_id)
            };
            let mut g = ConsumerGroup::new(last_id, entries_read);
            // The global PEL comes first, without owners; each consumer then lists its IDs.
            let mut unowned: BTreeMap<StreamId, (u64, u64)> = BTreeMap::new();
            for _ in 0..r.len()? {
                let id = r.raw_id()?;
                let time = r.millis()?;
                let count = r.len()?;
                if unowned.insert(id, (time, count)).is_some() {
                    return Err(BadFormat);
                }
            }
            for _ in 0..r.len()? {
                let consumer = r.string()?;
                let seen = r.millis()?;
                if !g.load_consumer(&consumer, seen) {
                    return Err(BadFormat);
                }
                for _ in 0..r.len()? {
                    let id = r.raw_id()?;
                    let (time, count) = unowned.remove(&id).ok_or(BadFormat)?;
                    if !g.load_pending(&consumer, id, time, count) {
                        return Err(BadFormat);
                    }
                }
            }
            // Redis's deep check: a pending entry nobody owns cannot be served or acked.
            if !unowned.is_empty() || !groups.insert(&name, g) {
                return Err(BadFormat);
            }
        }
        Ok(Stream { entries, groups })
    }
}

#[cfg(test)]
mod tests {
    use super::super::rdb::{Decoded, decode, dump_collection, verify};
    use super::*;
    use crate::objects::Collection;

    /// `DUMP s` from redis-server 7.0.15 after `XADD s 1-1 f v`, `XADD s 1-2 f 12`,
    /// `XADD s 2-0 other x n 5`, `XDEL s 1-2`, `XGROUP CREATE s g 0`,
    /// `XREADGROUP GROUP g alice COUNT 1 STREAMS s >`, `XGROUP CREATECONSUMER s g bob`.
    const REDIS_DUMP: &[u8] = include_bytes!("testdata/stream_with_groups.rdb");

    fn stream_of(payload: &[u8]) -> Stream {
        match decode(payload) {
            Ok(Decoded::Object(Collection::Stream(s))) => s,
            _ => panic!("not a stream payload"),
        }
    }

    #[test]
    fn redis_payload_loads_and_dumps_back_byte_for_byte() {
        let s = stream_of(REDIS_DUMP);
        let e = &s.entries;
        assert_eq!(e.len(), 2);
        assert_eq!(e.last_id(), StreamId::new(2, 0));
        assert_eq!(e.first_id(), StreamId::new(1, 1));
        assert_eq!(e.max_deleted_entry_id(), StreamId::new(1, 2));
        assert_eq!(e.entries_added(), 3);
        let ids: Vec<StreamId> = e
            .range(StreamId::MIN, StreamId::MAX, false)
            .map(|x| x.id())
            .collect();
        assert_eq!(ids, [StreamId::new(1, 1), StreamId::new(2, 0)]);
        let g = s.groups.get(b"g").expect("group g");
        assert_eq!(g.last_id, StreamId::new(1, 1));
        assert_eq!(g.entries_read, None);
        let nack = g.pel().get(&StreamId::new(1, 1)).expect("pending 1-1");
        assert_eq!(nack.consumer(), b"alice");
        assert_eq!(nack.delivery_count, 1);
        assert_eq!(g.consumer_count(), 2);
        assert_eq!(g.consumer(b"bob").map(|c| c.pending_count()), Some(0));
        assert_eq!(dump_collection(&Collection::Stream(s)), REDIS_DUMP);
    }

    #[test]
    fn damaged_payloads_fail_cleanly() {
        let s = stream_of(REDIS_DUMP);
        let mut out = vec![ty::STREAM_LISTPACKS_2];
        put_stream(&mut out, &s);
        let mut r = Reader::new(&out[1..]);
        assert!(r.stream(ty::STREAM_LISTPACKS_2).is_ok());
        // Every cut-short prefix fails cleanly, without a panic.
        for cut in 0..out.len() - 1 {
            let mut r = Reader::new(&out[1..1 + cut]);
            assert!(
                r.stream(ty::STREAM_LISTPACKS_2).is_err(),
                "prefix of {cut} bytes loaded"
            );
        }
        // Flipping any byte either fails or still gives a stream whose DUMP verifies.
        for at in 1..out.len() {
            let mut bad = out.clone();
            bad[at] ^= 0x5a;
            let mut r = Reader::new(&bad[1..]);
            if let Ok(s) = r.stream(ty::STREAM_LISTPACKS_2) {
                assert!(verify(&dump_collection(&Collection::Stream(s))));
            }
        }
    }
}
