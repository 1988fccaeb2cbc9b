//! Building [`Entries`] from untrusted nodes (RDB, DUMP payloads, the spill format), checked as
//! deeply as `streamValidateListpackIntegrity(deep=1)` and then some, so that nothing built here
//! can make a later command panic or loop; and the spill format itself.

use std::collections::BTreeMap;

use super::StreamId;
use super::entries::Entries;
use super::node::{self, FLAG_DELETED, FLAG_SAMEFIELDS};
use crate::DecodeError;
use crate::codec::{Reader, put_bytes, put_varint};
use crate::listpack;

fn corrupt(what: &'static str) -> DecodeError {
    DecodeError::Corrupt(what)
}

impl Entries {
    /// Rebuilds entries from their nodes (master ID and listpack bytes, in ID order) and IDs.
    /// Every node is checked: a well-formed listpack, a sane master entry, entries whose
    /// lp-count and flags agree with their layout, IDs increasing within and across nodes and
    /// not above `last_id`, live and deleted counts matching, and `length` equal to the live
    /// entries.
    pub fn from_parts(
        nodes: Vec<(StreamId, Vec<u8>)>,
        length: u64,
        last_id: StreamId,
        first_id: StreamId,
        max_deleted_entry_id: StreamId,
        entries_added: u64,
    ) -> Result<Self, DecodeError> {
        let mut map = BTreeMap::new();
        let mut prev: Option<StreamId> = None;
        let mut live_total: u64 = 0;
        for (key, lp) in nodes {
            if prev.is_some_and(|p| key <= p) {
                return Err(corrupt("stream node keys out of order"));
            }
            let (live, last) = check_node(key, &lp, prev)?;
            if last > last_id {
                return Err(corrupt("stream entry ID above the last ID"));
            }
            live_total = live_total.saturating_add(live);
            prev = Some(last);
            map.insert(key, lp);
        }
        if live_total != length {
            return Err(corrupt("stream length does not match its nodes"));
        }
        Ok(Self {
            bytes: map.values().map(|lp| node::footprint(lp)).sum(),
            nodes: map,
            length,
            last_id,
            first_id,
            max_deleted_entry_id,
            entries_added,
        })
    }

    /// Appends the spill format: the IDs and counters, then each node's key and bytes.
    pub fn serialize(&self, out: &mut Vec<u8>) {
        put_varint(out, self.length);
        for id in [self.last_id, self.first_id, self.max_deleted_entry_id] {
            put_varint(out, id.ms);
            put_varint(out, id.seq);
        }
        put_varint(out, self.entries_added);
        put_varint(out, self.nodes.len() as u64);
        for (key, lp) in &self.nodes {
            put_varint(out, key.ms);
            put_varint(out, key.seq);
            put_bytes(out, lp);
        }
    }

    /// Reads what [`Entries::serialize`] wrote, validating it as [`Entries::from_parts`] does.
    pub(crate) fn deserialize(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let length = r.varint()?;
        let mut id =
            || -> Result<StreamId, DecodeError> { Ok(StreamId::new(r.varint()?, r.varint()?)) };
        let (last_id, first_id, max_deleted) = (id()?, id()?, id()?);
        let entries_added = r.varint()?;
        let n = r.count(3)?;
        let mut nodes = Vec::with_capacity(n);
        for _ in 0..n {
            let key = StreamId::new(r.varint()?, r.varint()?);
            nodes.push((key, r.bytes()?.to_vec()));
        }
        Self::from_parts(nodes, length, last_id, first_id, max_deleted, entries_added)
    }
}

/// Checks one node whose key is `key`, the previous node's last entry being `prev`. Returns its
/// live entries and its last entry's ID.
fn check_node(
    key: StreamId,
    lp: &[u8],
    prev: Option<StreamId>,
) -> Result<(u64, StreamId), DecodeError> {
    listpack::validate(lp).ok_or(corrupt("malformed stream listpack"))?;
    let m = node::master(lp).ok_or(corrupt("malformed stream master entry"))?;
    // A node may hold no live entry: an exact MINID trim that stops at a tombstone leaves one,
    // in Redis as here.
    if m.count < 0 || m.deleted < 0 {
        return Err(corrupt("bad stream node counters"));
    }
    let mut pos = m.first_entry;
    let (mut live, mut dead) = (0i64, 0i64);
    let mut last: Option<StreamId> = prev;
    while !listpack::at_end(lp, pos) {
        let e = node::entry_at(lp, key, &m, pos).ok_or(corrupt("malformed stream entry"))?;
        if e.flags & !(FLAG_DELETED | FLAG_SAMEFIELDS) != 0 {
            return Err(corrupt("bad stream entry flags"));
        }
        let (lp_count, _) =
            listpack::get_int(lp, e.lp_count_pos).ok_or(corrupt("malformed stream entry"))?;
        if usize::try_from(lp_count).ok() != Some(e.lp_count()) {
            return Err(corrupt("bad stream entry lp-count"));
        }
        if e.id < key || last.is_some_and(|l| e.id <= l) {
            return Err(corrupt("stream entry IDs out of order"));
        }
        last = Some(e.id);
        if e.is_deleted() {
            dead += 1;
        } else {
            live += 1;
        }
        pos = e.next;
    }
    if live != m.count || dead != m.deleted {
        return Err(corrupt("stream node counters do not match its entries"));
    }
    // Redis accepts a node with no entries at all; the next node must still be above its key.
    Ok((live as u64, last.unwrap_or(key)))
}
