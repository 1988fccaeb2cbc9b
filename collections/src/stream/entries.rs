//! A stream's entries: listpack nodes keyed by their master ID, and the stream's IDs
//! (`streamAppendItem`, `streamDeleteItem`, the stream iterator and the lag helpers of Redis's
//! `t_stream.c`). Trimming is in `trim.rs`, validation of untrusted nodes in `validate.rs`.

use std::collections::BTreeMap;
use std::collections::btree_map;

use super::StreamId;
use super::node::{self, Backward, Fields, Forward, Master, RawEntry};
use crate::listpack::Elem;
use crate::{Limit, Limits};

/// `STREAM_LISTPACK_MAX_SIZE`: the most field and value bytes one entry may carry.
const LISTPACK_MAX_SIZE: usize = 1 << 30;

/// The entries of a stream and its IDs (`stream` in Redis's `stream.h`, without the groups).
#[derive(Clone, Debug, Default)]
pub struct Entries {
    /// Each node's master ID → its listpack, laid out as `streamAppendItem` lays it out. A node
    /// may be left with only tombstones (an exact MINID trim stopping at one), as in Redis.
    pub(super) nodes: BTreeMap<StreamId, Vec<u8>>,
    /// Live entries.
    pub(super) length: u64,
    /// The last ID ever generated (XADD) or set (XSETID).
    pub(super) last_id: StreamId,
    /// The first live entry's ID (0-0 when empty).
    pub(super) first_id: StreamId,
    /// The largest ID ever deleted (XDEL, XTRIM).
    pub(super) max_deleted_entry_id: StreamId,
    /// Entries ever added.
    pub(super) entries_added: u64,
    /// Bytes of the nodes ([`node::footprint`] summed), kept as they change: the store asks
    /// for the memory usage after every write.
    pub(super) bytes: usize,
}

/// The ID XADD asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewId {
    /// `*`: the current time, or the last ID's time with the next sequence if the clock is
    /// behind (`streamNextID`).
    Auto,
    /// `<ms>-*`: this time, with the next sequence if it is the last ID's time.
    AutoSeq(u64),
    /// An explicit ID.
    Exact(StreamId),
}

/// Why [`Entries::add`] refused an entry; the messages are Redis's (without the `ERR ` prefix).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddError {
    /// The ID is not above the last ID (`EDOM`).
    #[error("The ID specified in XADD is equal or smaller than the target stream top item")]
    IdTooSmall,
    /// The fields and values exceed what a listpack can hold (`ERANGE`).
    #[error("Elements are too large to be stored")]
    TooLarge,
    /// The last ID is the largest possible one.
    #[error("The stream has exhausted the last possible ID, unable to add more items")]
    Exhausted,
}

impl Entries {
    /// An empty stream's entries.
    pub fn new() -> Self {
        Self::default()
    }

    /// Live entries (XLEN).
    pub fn len(&self) -> u64 {
        self.length
    }

    /// Whether there are no live entries.
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// The last ID ever generated or set (what `$` means).
    pub fn last_id(&self) -> StreamId {
        self.last_id
    }

    /// The first live entry's ID, 0-0 when empty.
    pub fn first_id(&self) -> StreamId {
        self.first_id
    }

    /// The largest ID ever deleted, 0-0 if none.
    pub fn max_deleted_entry_id(&self) -> StreamId {
        self.max_deleted_entry_id
    }

    /// Entries ever added (XINFO's `entries-added`).
    pub fn entries_added(&self) -> u64 {
        self.entries_added
    }

    /// Listpack nodes (XINFO's `radix-tree-keys`).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Adds an entry with `fields_and_values` (field, value, field, value...; an odd last
    /// element is ignored) as `streamAppendItem` does, `now_ms` being the time `*` uses. Returns
    /// the new entry's ID.
    pub fn add(
        &mut self,
        id: NewId,
        fields_and_values: &[&[u8]],
        now_ms: u64,
    ) -> Result<StreamId, AddError> {
        if self.last_id == StreamId::MAX {
            return Err(AddError::Exhausted);
        }
        let last = self.last_id;
        let id = match id {
            NewId::Auto if now_ms > last.ms => StreamId::new(now_ms, 0),
            NewId::Auto => last.next().ok_or(AddError::IdTooSmall)?,
            NewId::AutoSeq(ms) if ms == last.ms => {
                let seq = last.seq.checked_add(1).ok_or(AddError::IdTooSmall)?;
                StreamId::new(ms, seq)
            }
            NewId::AutoSeq(ms) => StreamId::new(ms, 0),
            NewId::Exact(id) => id,
        };
        if id <= last {
            return Err(AddError::IdTooSmall);
        }
        let fv = &fields_and_values[..fields_and_values.len() / 2 * 2];
        let totelelen = fv.iter().fold(0usize, |n, e| n.saturating_add(e.len()));
        if totelelen > LISTPACK_MAX_SIZE {
            return Err(AddError::TooLarge);
        }
        let appended = match self.nodes.last_entry() {
            Some(mut tail) if !node_is_full(tail.get(), totelelen) => {
                let master_id = *tail.key();
                let before = node::footprint(tail.get());
                let done = node::append(tail.get_mut(), master_id, id, fv).is_some();
                self.bytes = self.bytes - before + node::footprint(tail.get());
                done
            }
            Some(mut tail) => {
                // A full node takes no more entries: give back its spare capacity, as Redis
                // does with `lpShrinkToFit`.
                tail.get_mut().shrink_to_fit();
                false
            }
            None => false,
        };
        if !appended {
            let lp = node::create(id, fv);
            self.bytes += node::footprint(&lp);
            self.nodes.insert(id, lp);
        }
        self.length += 1;
        self.entries_added += 1;
        self.last_id = id;
        if self.length == 1 {
            self.first_id = id;
        }
        Ok(id)
    }

    /// Deletes the live entry `id` (XDEL); false if there is none. Updates the length, the
    /// largest deleted ID and the first ID; a node left with no live entry is dropped.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&key, lp)) = self.nodes.range_mut(..=id).next_back() else {
            return false;
        };
        let Some(e) = Forward::new(lp, key).and_then(|mut f| f.find(|e| e.id >= id)) else {
            return false;
        };
        if e.id != id || e.is_deleted() {
            return false;
        }
        let before = node::footprint(lp);
        let marked = node::mark_deleted(lp, &e);
        self.bytes = self.bytes - before + node::footprint(lp);
        match marked {
            Some(0) => {
                if let Some(lp) = self.nodes.remove(&key) {
                    self.bytes -= node::footprint(&lp);
                }
            }
            Some(_) => {}
            None => return false,
        }
        self.length = self.length.saturating_sub(1);
        self.max_deleted_entry_id = self.max_deleted_entry_id.max(id);
        if self.length == 0 {
            self.first_id = StreamId::MIN;
        } else if id == self.first_id {
            self.first_id = self.first_live_id().unwrap_or(StreamId::MIN);
        }
        true
    }

    /// The first live entry's ID, found by walking (`streamGetEdgeID` skipping tombstones).
    pub(super) fn first_live_id(&self) -> Option<StreamId> {
        self.range(StreamId::MIN, StreamId::MAX, false)
            .next()
            .map(|e| e.id())
    }

    /// The live entries from `start` to `end` inclusive, ascending, or descending if `rev`.
    pub fn range(&self, start: StreamId, end: StreamId, rev: bool) -> Range<'_> {
        let nodes = if start > end {
            self.nodes.range(StreamId::MAX..StreamId::MAX)
        } else if rev {
            self.nodes.range(..=end)
        } else {
            // The node holding `start` is the last one whose master ID is not above it.
            match self.nodes.range(..=start).next_back() {
                Some((&k, _)) => self.nodes.range(k..),
                None => self.nodes.range(..),
            }
        };
        Range {
            nodes,
            cur: None,
            start,
            end,
            rev,
            done: start > end,
        }
    }

    /// The live entry `id`, if any.
    pub fn get(&self, id: StreamId) -> Option<Entry<'_>> {
        self.range(id, id, false).next()
    }

    /// The last live entry's ID (`streamLastValidID`), `None` when empty.
    pub fn last_entry_id(&self) -> Option<StreamId> {
        self.range(StreamId::MIN, StreamId::MAX, true)
            .next()
            .map(|e| e.id())
    }

    /// XSETID: sets the last ID and, if given, the entries-added counter and the largest
    /// deleted ID. The command checks them against the stream first.
    pub fn set_last_id(
        &mut self,
        id: StreamId,
        entries_added: Option<u64>,
        max_deleted: Option<StreamId>,
    ) {
        self.last_id = id;
        if let Some(n) = entries_added {
            self.entries_added = n;
        }
        if let Some(m) = max_deleted {
            self.max_deleted_entry_id = m;
        }
    }

    /// `streamEstimateDistanceFromFirstEverEntry`: how many entries were added up to `id`
    /// (a group's `entries-read` for that last-delivered ID), `None` when it cannot be known
    /// (Redis's `SCG_INVALID_ENTRIES_READ`).
    pub fn estimate_distance_from_first_ever_entry(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.length == 0 && id <= self.last_id {
            return Some(self.entries_added);
        }
        if id == self.last_id {
            return Some(self.entries_added);
        }
        if id > self.last_id {
            return None;
        }
        let no_tombstones_ahead =
            self.max_deleted_entry_id == StreamId::MIN || self.max_deleted_entry_id < self.first_id;
        if no_tombstones_ahead {
            let before = self.entries_added.wrapping_sub(self.length);
            if id < self.first_id {
                return Some(before);
            } else if id == self.first_id {
                return Some(before.wrapping_add(1));
            }
        }
        None
    }

    /// `streamRangeHasTombstones`: whether an entry between `start` and `end` (open-ended if
    /// `None`) may have been deleted.
    pub fn range_has_tombstones(&self, start: StreamId, end: Option<StreamId>) -> bool {
        let max_del = self.max_deleted_entry_id;
        if self.length == 0 || max_del == StreamId::MIN || self.first_id > max_del {
            return false;
        }
        start <= max_del && max_del <= end.unwrap_or(StreamId::MAX)
    }

    /// The nodes in ID order: master ID and listpack bytes, as the RDB writes them.
    pub fn nodes(&self) -> impl Iterator<Item = (StreamId, &[u8])> + '_ {
        self.nodes.iter().map(|(k, lp)| (*k, lp.as_slice()))
    }

    /// Bytes held.
    pub fn memory_usage(&self) -> usize {
        debug_assert_eq!(
            self.bytes,
            self.nodes
                .values()
                .map(|lp| node::footprint(lp))
                .sum::<usize>()
        );
        self.bytes
    }
}

/// Whether the tail node takes no more entries (`streamAppendItem`'s `new_node` test): its
/// bytes plus the new elements' reach `stream-node-max-bytes`, or it holds
/// `stream-node-max-entries` entries, deleted ones included (a zero limit is no limit).
fn node_is_full(lp: &[u8], totelelen: usize) -> bool {
    let max_bytes = Limits::get(Limit::StreamNodeBytes);
    if max_bytes != 0 && lp.len().saturating_add(totelelen) >= max_bytes {
        return true;
    }
    let max_entries = Limits::get(Limit::StreamNodeEntries);
    max_entries != 0
        && node::total_entries(lp)
            .is_none_or(|n| n >= i64::try_from(max_entries).unwrap_or(i64::MAX))
}

/// A live entry found by [`Entries::range`] or [`Entries::get`].
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    lp: &'a [u8],
    master: Master,
    raw: RawEntry,
}

impl<'a> Entry<'a> {
    /// Its ID.
    pub fn id(&self) -> StreamId {
        self.raw.id
    }

    /// Field-value pairs.
    pub fn len(&self) -> usize {
        self.raw.nfields
    }

    /// Whether it has no fields (never, for an entry XADD made).
    pub fn is_empty(&self) -> bool {
        self.raw.nfields == 0
    }

    /// Its field-value pairs in order.
    pub fn fields(&self) -> impl Iterator<Item = (Elem<'a>, Elem<'a>)> + 'a {
        Fields::new(self.lp, &self.master, &self.raw)
    }
}

enum Cursor<'a> {
    Forward(Forward<'a>),
    Backward(Backward<'a>),
}

/// The iterator [`Entries::range`] returns.
pub struct Range<'a> {
    nodes: btree_map::Range<'a, StreamId, Vec<u8>>,
    cur: Option<(&'a [u8], Master, Cursor<'a>)>,
    start: StreamId,
    end: StreamId,
    rev: bool,
    done: bool,
}

impl<'a> Range<'a> {
    fn next_node(&mut self) -> bool {
        let next = if self.rev {
            self.nodes.next_back()
        } else {
            self.nodes.next()
        };
        let Some((&key, lp)) = next else {
            return false;
        };
        let cursor = if self.rev {
            Backward::new(lp, key).map(Cursor::Backward)
        } else {
            Forward::new(lp, key).map(Cursor::Forward)
        };
        // A node that does not parse (never one we built or validated) is skipped.
        self.cur = cursor.and_then(|c| Some((lp.as_slice(), node::master(lp)?, c)));
        true
    }
}

impl<'a> Iterator for Range<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        while !self.done {
            let Some((lp, master, cursor)) = &mut self.cur else {
                if !self.next_node() {
                    self.done = true;
                }
                continue;
            };
            let raw = match cursor {
                Cursor::Forward(f) => f.next(),
                Cursor::Backward(b) => b.next(),
            };
            let Some(raw) = raw else {
                self.cur = None;
                continue;
            };
            let (lp, master) = (*lp, *master);
            let id = raw.id;
            if raw.is_deleted() || (!self.rev && id < self.start) || (self.rev && id > self.end) {
                continue;
            }
            if (!self.rev && id > self.end) || (self.rev && id < self.start) {
                self.done = true;
                break;
            }
            return Some(Entry { lp, master, raw });
        }
        None
    }
}
