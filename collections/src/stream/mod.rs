//! Redis streams (`t_stream.c`): an append-only log of field-value entries keyed by
//! [`StreamId`], plus consumer groups that track what each consumer was delivered and has not yet
//! acknowledged.
//!
//! The entries are kept as Redis keeps them: a radix tree (here a `BTreeMap`, the same order) of
//! listpack nodes, each node's listpack laid out byte for byte as `streamAppendItem` lays it out
//! (master entry, delta-encoded IDs, the same-fields flag, deletion flags). That makes the
//! approximate trimming (`MAXLEN ~`), which only drops whole nodes, give Redis's counts, and lets
//! DUMP and the RDB write the nodes as they are.
//!
//! A [`Stream`] is two parts that borrow independently, so that XREADGROUP can walk the entries
//! while it updates a group's pending list: [`Entries`] and [`Groups`].

mod consumer;
mod entries;
#[cfg(test)]
mod entries_tests;
mod group;
mod groups;
#[cfg(test)]
mod groups_tests;
mod id;
mod node;
mod trim;
mod validate;

pub use crate::listpack::Elem;
pub use consumer::{AutoClaim, ClaimOptions, Consumer, Nack, PendingSummary, Retry};
pub use entries::{AddError, Entries, Entry, NewId, Range};
pub use group::ConsumerGroup;
pub use groups::Groups;
pub use id::StreamId;
pub use trim::{Trim, TrimStrategy};

use crate::DecodeError;
use crate::codec::{Reader, put_header, tag};

/// `stream-node-max-bytes`: a node's listpack stops taking entries at this size.
pub const STREAM_NODE_MAX_BYTES: usize = 4096;
/// `stream-node-max-entries`: a node stops taking entries at this count (deleted ones included).
pub const STREAM_NODE_MAX_ENTRIES: usize = 100;

/// A stream value.
#[derive(Clone, Debug, Default)]
pub struct Stream {
    /// The entries and the stream's IDs (XADD, XRANGE, XDEL, XTRIM, XSETID).
    pub entries: Entries,
    /// The consumer groups, by name in byte order (XGROUP, XREADGROUP, XACK, XPENDING, XCLAIM).
    pub groups: Groups,
}

impl Stream {
    /// An empty stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Entries (XLEN). A stream with no entries still exists: Redis never deletes an empty
    /// stream on its own.
    pub fn len(&self) -> usize {
        self.entries.len() as usize
    }

    /// Whether it has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of memory the stream holds (MEMORY USAGE, the memory budget).
    pub fn memory_usage(&self) -> usize {
        std::mem::size_of::<Self>() + self.entries.memory_usage() + self.groups.memory_usage()
    }

    /// Appends the spill format (entries, then groups).
    pub fn serialize(&self, out: &mut Vec<u8>) {
        put_header(out, tag::STREAM);
        self.entries.serialize(out);
        self.groups.serialize(out);
    }

    /// Rebuilds a stream from [`Stream::serialize`]'s bytes.
    pub fn deserialize(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (mut r, _) = Reader::open(bytes, &[tag::STREAM])?;
        let entries = Entries::deserialize(&mut r)?;
        let groups = Groups::deserialize(&mut r)?;
        r.finish()?;
        Ok(Self { entries, groups })
    }
}
