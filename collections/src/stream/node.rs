//! One stream node: a listpack laid out as `streamAppendItem` lays it out.
//!
//! ```text
//! master entry: count | deleted | num-fields | field_1 .. field_N | 0
//! each entry:   flags | ms-diff | seq-diff | [num-fields | field_i value_i ..] or [value_i ..] | lp-count
//! ```
//!
//! The IDs are differences from the node's master ID (its key in the map), as two's-complement
//! wrapping integers like Redis's `uint64_t` arithmetic. Entries with the master's fields set the
//! SAMEFIELDS flag and carry only their values; deleted entries keep their place with the DELETED
//! flag set.

use super::StreamId;
use crate::listpack::{self, Elem};

/// The entry was deleted (XDEL, XTRIM) but keeps its place (`STREAM_ITEM_FLAG_DELETED`).
pub(super) const FLAG_DELETED: i64 = 1;
/// The entry has the master entry's fields (`STREAM_ITEM_FLAG_SAMEFIELDS`).
pub(super) const FLAG_SAMEFIELDS: i64 = 2;

/// The master entry of a node.
#[derive(Clone, Copy, Debug)]
pub(super) struct Master {
    /// Live entries (the first element, at [`listpack::HDR`]).
    pub count: i64,
    /// Entries marked deleted.
    pub deleted: i64,
    /// Offset of the `deleted` element.
    pub deleted_pos: usize,
    /// Master fields.
    pub nfields: usize,
    /// Offset of the first master field.
    pub fields_pos: usize,
    /// Offset of the first entry's flags (or the terminator).
    pub first_entry: usize,
}

/// Reads the master entry; `None` if the node is malformed.
pub(super) fn master(lp: &[u8]) -> Option<Master> {
    let (count, p) = listpack::get_int(lp, listpack::first(lp)?)?;
    let deleted_pos = p;
    let (deleted, p) = listpack::get_int(lp, p)?;
    let (nfields, mut p) = listpack::get_int(lp, p)?;
    let nfields = usize::try_from(nfields).ok()?;
    let fields_pos = p;
    for _ in 0..nfields {
        p = listpack::get(lp, p)?.1;
    }
    let (zero, first_entry) = listpack::get_int(lp, p)?;
    (zero == 0).then_some(Master {
        count,
        deleted,
        deleted_pos,
        nfields,
        fields_pos,
        first_entry,
    })
}

/// One entry of a node, as found in its listpack.
#[derive(Clone, Copy, Debug)]
pub(super) struct RawEntry {
    /// Offset of the flags element.
    pub flags_pos: usize,
    /// The flags.
    pub flags: i64,
    /// The entry's ID.
    pub id: StreamId,
    /// Field-value pairs.
    pub nfields: usize,
    /// Offset of the first field (or, with SAMEFIELDS, the first value).
    pub fields_pos: usize,
    /// Offset of the lp-count element.
    pub lp_count_pos: usize,
    /// Offset just past the entry.
    pub next: usize,
}

impl RawEntry {
    /// Whether it is a tombstone.
    pub fn is_deleted(&self) -> bool {
        self.flags & FLAG_DELETED != 0
    }

    /// Whether its fields are the master's.
    pub fn same_fields(&self) -> bool {
        self.flags & FLAG_SAMEFIELDS != 0
    }

    /// Elements it spans, flags to values (what its lp-count must say).
    pub fn lp_count(&self) -> usize {
        if self.same_fields() {
            3 + self.nfields
        } else {
            4 + 2 * self.nfields
        }
    }
}

/// Parses the entry whose flags are at `pos`; `None` at the terminator or on malformed bytes.
pub(super) fn entry_at(lp: &[u8], master_id: StreamId, m: &Master, pos: usize) -> Option<RawEntry> {
    let (flags, p) = listpack::get_int(lp, pos)?;
    let (ms, p) = listpack::get_int(lp, p)?;
    let (seq, mut p) = listpack::get_int(lp, p)?;
    let id = StreamId::new(
        master_id.ms.wrapping_add(ms as u64),
        master_id.seq.wrapping_add(seq as u64),
    );
    let (nfields, skip) = if flags & FLAG_SAMEFIELDS != 0 {
        (m.nfields, m.nfields)
    } else {
        let (n, next) = listpack::get_int(lp, p)?;
        p = next;
        let n = usize::try_from(n).ok()?;
        (n, n.checked_mul(2)?)
    };
    let fields_pos = p;
    for _ in 0..skip {
        p = listpack::get(lp, p)?.1;
    }
    let lp_count_pos = p;
    let (_, next) = listpack::get_int(lp, p)?;
    Some(RawEntry {
        flags_pos: pos,
        flags,
        id,
        nfields,
        fields_pos,
        lp_count_pos,
        next,
    })
}

/// The entries of a node in order, tombstones included; ends early on malformed bytes.
pub(super) struct Forward<'a> {
    lp: &'a [u8],
    master_id: StreamId,
    m: Master,
    pos: usize,
}

impl<'a> Forward<'a> {
    /// From the first entry.
    pub fn new(lp: &'a [u8], master_id: StreamId) -> Option<Self> {
        let m = master(lp)?;
        Some(Self {
            lp,
            master_id,
            m,
            pos: m.first_entry,
        })
    }
}

impl Iterator for Forward<'_> {
    type Item = RawEntry;

    fn next(&mut self) -> Option<RawEntry> {
        if listpack::at_end(self.lp, self.pos) {
            return None;
        }
        let e = entry_at(self.lp, self.master_id, &self.m, self.pos)?;
        self.pos = e.next;
        Some(e)
    }
}

/// The entries of a node from the last, walking back with each entry's lp-count as Redis's
/// reverse iterator does.
pub(super) struct Backward<'a> {
    lp: &'a [u8],
    master_id: StreamId,
    m: Master,
    /// Offset of the next entry's lp-count (the master's terminator when done).
    pos: Option<usize>,
}

impl<'a> Backward<'a> {
    /// From the last entry.
    pub fn new(lp: &'a [u8], master_id: StreamId) -> Option<Self> {
        let m = master(lp)?;
        Some(Self {
            lp,
            master_id,
            m,
            pos: listpack::last(lp),
        })
    }
}

impl Iterator for Backward<'_> {
    type Item = RawEntry;

    fn next(&mut self) -> Option<RawEntry> {
        let pos = self.pos.take()?;
        let (count, _) = listpack::get_int(self.lp, pos)?;
        if count <= 0 || pos < self.m.first_entry {
            return None;
        }
        let mut flags_pos = pos;
        for _ in 0..count {
            flags_pos = listpack::prev(self.lp, flags_pos)?;
        }
        let e = entry_at(self.lp, self.master_id, &self.m, flags_pos)?;
        if e.lp_count_pos != pos {
            return None;
        }
        self.pos = listpack::prev(self.lp, flags_pos);
        Some(e)
    }
}

/// The field-value pairs of an entry.
pub(super) struct Fields<'a> {
    lp: &'a [u8],
    /// Next master field, for SAMEFIELDS entries.
    master_pos: Option<usize>,
    pos: usize,
    left: usize,
}

impl<'a> Fields<'a> {
    pub fn new(lp: &'a [u8], m: &Master, e: &RawEntry) -> Self {
        Self {
            lp,
            master_pos: e.same_fields().then_some(m.fields_pos),
            pos: e.fields_pos,
            left: e.nfields,
        }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = (Elem<'a>, Elem<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let field = match &mut self.master_pos {
            Some(mp) => {
                let (f, next) = listpack::get(self.lp, *mp)?;
                *mp = next;
                f
            }
            None => {
                let (f, next) = listpack::get(self.lp, self.pos)?;
                self.pos = next;
                f
            }
        };
        let (value, next) = listpack::get(self.lp, self.pos)?;
        self.pos = next;
        Some((field, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

/// A new node whose master entry takes `fv`'s fields, holding `id` (the master ID) as its first
/// entry.
pub(super) fn create(id: StreamId, fv: &[&[u8]]) -> Vec<u8> {
    let n = fv.len() / 2;
    let mut lp = listpack::new();
    listpack::append_int(&mut lp, 1);
    listpack::append_int(&mut lp, 0);
    listpack::append_int(&mut lp, n as i64);
    for pair in fv.chunks_exact(2) {
        listpack::append(&mut lp, pair[0]);
    }
    listpack::append_int(&mut lp, 0);
    push_entry(&mut lp, id, id, FLAG_SAMEFIELDS, fv);
    lp
}

/// Appends `id` to a node (the tail one), updating its count; `None` if the node is malformed.
pub(super) fn append(
    lp: &mut Vec<u8>,
    master_id: StreamId,
    id: StreamId,
    fv: &[&[u8]],
) -> Option<()> {
    let m = master(lp)?;
    let n = fv.len() / 2;
    let mut same = m.nfields == n;
    if same {
        let mut p = m.fields_pos;
        for pair in fv.chunks_exact(2) {
            let (f, next) = listpack::get(lp, p)?;
            if !f.eq_bytes(pair[0]) {
                same = false;
                break;
            }
            p = next;
        }
    }
    listpack::replace_int(lp, listpack::HDR, m.count.checked_add(1)?)?;
    let flags = if same { FLAG_SAMEFIELDS } else { 0 };
    push_entry(lp, master_id, id, flags, fv);
    Some(())
}

fn push_entry(lp: &mut Vec<u8>, master_id: StreamId, id: StreamId, flags: i64, fv: &[&[u8]]) {
    let same = flags & FLAG_SAMEFIELDS != 0;
    let n = fv.len() / 2;
    listpack::append_int(lp, flags);
    listpack::append_int(lp, id.ms.wrapping_sub(master_id.ms) as i64);
    listpack::append_int(lp, id.seq.wrapping_sub(master_id.seq) as i64);
    if !same {
        listpack::append_int(lp, n as i64);
    }
    for pair in fv.chunks_exact(2) {
        if !same {
            listpack::append(lp, pair[0]);
        }
        listpack::append(lp, pair[1]);
    }
    let lp_count = if same { 3 + n } else { 4 + 2 * n };
    listpack::append_int(lp, lp_count as i64);
}

/// Live plus deleted entries, from the master entry.
pub(super) fn total_entries(lp: &[u8]) -> Option<i64> {
    let m = master(lp)?;
    m.count.checked_add(m.deleted)
}

/// Marks `e` deleted and moves one from the count to the deleted counter. Returns the live count
/// left (the caller drops a node left with none).
pub(super) fn mark_deleted(lp: &mut Vec<u8>, e: &RawEntry) -> Option<i64> {
    listpack::replace_int(lp, e.flags_pos, e.flags | FLAG_DELETED)?;
    adjust_counts(lp, 1)
}

/// Moves `n` entries from the live count to the deleted counter; returns the live count left.
pub(super) fn adjust_counts(lp: &mut Vec<u8>, n: i64) -> Option<i64> {
    let m = master(lp)?;
    let count = m.count.checked_sub(n)?;
    listpack::replace_int(lp, listpack::HDR, count)?;
    // The count may have changed size: find `deleted` again.
    let m = master(lp)?;
    listpack::replace_int(lp, m.deleted_pos, m.deleted.checked_add(n)?)?;
    Some(count)
}

/// Bytes of a node with its map entry, for the memory budget: its length rather than its
/// capacity, so that the running count survives a clone (only the tail node has slack, and a
/// node is shrunk to fit when it fills).
pub(super) fn footprint(lp: &[u8]) -> usize {
    lp.len() + std::mem::size_of::<(StreamId, Vec<u8>)>() + 16
}
