//! A stream's consumer groups (`cgroups` in Redis's `stream`), and their spill format.
//!
//! # Reading and writing them elsewhere (RDB `RDB_TYPE_STREAM_LISTPACKS_2`)
//!
//! Writing, per group in [`Groups::iter`] order (name byte order, as Redis's rax):
//! the name, [`ConsumerGroup::last_id`], [`ConsumerGroup::entries_read`] (`None` is -1),
//! the global PEL from [`ConsumerGroup::pel`] (ID, [`Nack::delivery_time_ms`],
//! [`Nack::delivery_count`]), then the consumers from [`ConsumerGroup::consumers`] (name,
//! [`Consumer::seen_time_ms`], the IDs of [`Consumer::pending`]).
//!
//! Loading: build each group with [`ConsumerGroup::new`]; keep the global PEL read from the
//! file in a map of ID → (delivery time, count); for each consumer call
//! [`ConsumerGroup::load_consumer`] (false: duplicate consumer, corrupt), then for each of its
//! IDs look the ID up in that map (missing: corrupt, as Redis's "Consumer entry not found in
//! group global PEL") and call [`ConsumerGroup::load_pending`] (false: the ID is owned twice).
//! Global PEL entries no consumer claimed are what Redis's deep sanitization reports as "PEL
//! entry without consumer"; they have no representation here and must be dropped or refused.
//! Finally [`Groups::insert`] (false: duplicate group name).
//!
//! [`Nack::delivery_time_ms`]: super::Nack::delivery_time_ms
//! [`Nack::delivery_count`]: super::Nack::delivery_count
//! [`Consumer::seen_time_ms`]: super::Consumer::seen_time_ms
//! [`Consumer::pending`]: super::Consumer::pending

use std::collections::BTreeMap;

use super::StreamId;
use super::group::{ConsumerGroup, GROUP_BYTES};
use crate::DecodeError;
use crate::codec::{Reader, put_bytes, put_varint};

/// The consumer groups of a stream, by name in byte order (Redis's `cgroups` rax).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Groups {
    map: BTreeMap<Vec<u8>, ConsumerGroup>,
}

impl Groups {
    /// Groups.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Bytes held (O(groups): each group keeps its own count).
    pub fn memory_usage(&self) -> usize {
        self.map
            .iter()
            .map(|(name, g)| GROUP_BYTES + name.len() + g.memory_usage())
            .sum()
    }

    /// A group by name.
    pub fn get(&self, name: &[u8]) -> Option<&ConsumerGroup> {
        self.map.get(name)
    }

    /// A group by name, mutably.
    pub fn get_mut(&mut self, name: &[u8]) -> Option<&mut ConsumerGroup> {
        self.map.get_mut(name)
    }

    /// The groups in name byte order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&[u8], &ConsumerGroup)> + '_ {
        self.map.iter().map(|(k, v)| (k.as_slice(), v))
    }

    /// Creates a group (`streamCreateCG`); false (and nothing changes) if the name exists.
    pub fn create(&mut self, name: &[u8], last_id: StreamId, entries_read: Option<u64>) -> bool {
        self.insert(name, ConsumerGroup::new(last_id, entries_read))
    }

    /// Adds a group built elsewhere (a loader); false if the name exists.
    pub fn insert(&mut self, name: &[u8], group: ConsumerGroup) -> bool {
        if self.map.contains_key(name) {
            return false;
        }
        self.map.insert(name.to_vec(), group);
        true
    }

    /// Deletes a group (XGROUP DESTROY); whether it existed.
    pub fn destroy(&mut self, name: &[u8]) -> bool {
        self.map.remove(name).is_some()
    }

    /// Appends the spill format: the group count, then per group its name, last ID, read
    /// counter (0 for none, else n + 1), and consumers, each with its name, seen time and
    /// pending entries (ID, delivery time, delivery count). Every NACK has an owner, so the
    /// global PEL is the union of the consumers' and is not written twice.
    pub fn serialize(&self, out: &mut Vec<u8>) {
        put_varint(out, self.map.len() as u64);
        for (name, g) in &self.map {
            put_bytes(out, name);
            put_id(out, g.last_id);
            put_varint(out, g.entries_read.map_or(0, |n| n.saturating_add(1)));
            put_varint(out, g.consumer_count() as u64);
            for (cname, c) in g.consumers() {
                put_bytes(out, cname);
                put_varint(out, c.seen_time_ms);
                put_varint(out, c.pending_count() as u64);
                for id in c.pending() {
                    let (time, count) = g
                        .pel()
                        .get(&id)
                        .map_or((0, 0), |n| (n.delivery_time_ms, n.delivery_count));
                    put_id(out, id);
                    put_varint(out, time);
                    put_varint(out, count);
                }
            }
        }
    }

    /// Reads what [`Groups::serialize`] wrote.
    pub(crate) fn deserialize(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut groups = Groups::default();
        for _ in 0..r.count(4)? {
            let name = r.bytes()?;
            let last_id = read_id(r)?;
            let entries_read = r.varint()?.checked_sub(1);
            let mut g = ConsumerGroup::new(last_id, entries_read);
            for _ in 0..r.count(3)? {
                let cname = r.bytes()?;
                let seen = r.varint()?;
                if !g.load_consumer(cname, seen) {
                    return Err(DecodeError::Corrupt("duplicate stream consumer"));
                }
                for _ in 0..r.count(4)? {
                    let id = read_id(r)?;
                    let (time, count) = (r.varint()?, r.varint()?);
                    if !g.load_pending(cname, id, time, count) {
                        return Err(DecodeError::Corrupt("stream entry pending twice"));
                    }
                }
            }
            if !groups.insert(name, g) {
                return Err(DecodeError::Corrupt("duplicate stream consumer group"));
            }
        }
        Ok(groups)
    }
}

fn put_id(out: &mut Vec<u8>, id: StreamId) {
    put_varint(out, id.ms);
    put_varint(out, id.seq);
}

fn read_id(r: &mut Reader<'_>) -> Result<StreamId, DecodeError> {
    Ok(StreamId::new(r.varint()?, r.varint()?))
}
