//! The in-memory data structures behind Redis's collection types.
//!
//! This crate knows nothing of the store, the protocol or the reactor: it holds values and answers
//! questions about them with the costs and the observable behaviour Redis 7.0 documents. The
//! command layer parses arguments, picks the key and formats replies; the store keeps these values
//! as native objects while their page is in memory and spills them with [`List::serialize`] and
//! friends when it leaves (Garnet's object-store design).
//!
//! | type | structure | notes |
//! | --- | --- | --- |
//! | [`List`] | chunked deque of boxed elements (quicklist-like) | O(1) at both ends, no O(N) growth step, O(1) by index |
//! | [`Hash`](struct@Hash) | in-crate hash table, incremental resizing, reverse-binary scan cursor | insertion order kept while small |
//! | [`Set`] | sorted `i64` array (intset) or the hash table | |
//! | [`SortedSet`] | skiplist with spans + hash table | O(log N) rank |
//! | [`Stream`] | listpack nodes in ID order (Redis's rax of listpacks) + consumer groups | byte-identical nodes |
//! | [`Hll`] | Redis's own sparse/dense byte string | byte-identical to Redis |
//! | [`geo`] | geohash helpers over a [`SortedSet`] | |
//!
//! OBJECT ENCODING names are derived from high-water marks (the largest length and element ever
//! held), so that once a value would have been converted by Redis it keeps reporting the big
//! encoding, exactly like Redis's one-way conversions.
//!
//! Every operation is panic-free for any input: out-of-range indexes, empty collections, counts
//! of `i64::MIN` and `i64::MAX`, NaN and infinite scores.

mod codec;
mod dense;
mod deque;
mod dict;
pub mod geo;
mod hash;
pub mod hll;
mod list;
pub mod listpack;
#[cfg(test)]
mod memory_tests;
mod set;
pub mod stream;
mod util;
mod zset;

pub use codec::DecodeError;
pub use hash::{Hash, Pairs};
pub use hll::{Hll, HllError, HllUnion};
pub use list::{End, List};
pub use set::Set;
pub use stream::{Stream, StreamId};
pub use util::{
    Rng, format_i64, format_long_double, format_u64, parse_f64_strtod, parse_i64_strict,
};
pub use zset::{
    Aggregate, LexBound, LexRange, ScoreRange, SortedSet, ZAddFlags, ZAddOutcome, ZSource,
    parse_hex_float, parse_lex_range, parse_score_range,
};

/// The size thresholds that decide Redis's OBJECT ENCODING names (the `*-max-*` config options).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `hash-max-listpack-entries` (512: redis-server 7.0's compiled-in default; the 128 of
    /// its example redis.conf applies only where that file is used).
    pub hash_max_listpack_entries: usize,
    /// `hash-max-listpack-value` (64).
    pub hash_max_listpack_value: usize,
    /// `set-max-intset-entries` (512).
    pub set_max_intset_entries: usize,
    /// `zset-max-listpack-entries` (128).
    pub zset_max_listpack_entries: usize,
    /// `zset-max-listpack-value` (64).
    pub zset_max_listpack_value: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
        }
    }
}

/// The limits in force ([`Limits::current`]), one word each, as Redis keeps them in its
/// global `server` struct: CONFIG SET changes them for every collection at once.
static CURRENT: [std::sync::atomic::AtomicUsize; 8] = [
    std::sync::atomic::AtomicUsize::new(512),
    std::sync::atomic::AtomicUsize::new(64),
    std::sync::atomic::AtomicUsize::new(512),
    std::sync::atomic::AtomicUsize::new(128),
    std::sync::atomic::AtomicUsize::new(64),
    std::sync::atomic::AtomicUsize::new(stream::STREAM_NODE_MAX_BYTES),
    std::sync::atomic::AtomicUsize::new(stream::STREAM_NODE_MAX_ENTRIES),
    std::sync::atomic::AtomicUsize::new(hll::DEFAULT_SPARSE_MAX_BYTES),
];

/// One of the `*-max-*` thresholds, by its Redis parameter name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// `hash-max-listpack-entries`.
    HashEntries = 0,
    /// `hash-max-listpack-value`.
    HashValue = 1,
    /// `set-max-intset-entries`.
    SetIntsetEntries = 2,
    /// `zset-max-listpack-entries`.
    ZsetEntries = 3,
    /// `zset-max-listpack-value`.
    ZsetValue = 4,
    /// `stream-node-max-bytes`: a stream's tail node takes no entry that would make it this
    /// big (0: no limit).
    StreamNodeBytes = 5,
    /// `stream-node-max-entries`: nor more entries than this (0: no limit).
    StreamNodeEntries = 6,
    /// `hll-sparse-max-bytes`: a sparse HyperLogLog that would grow past this turns dense.
    HllSparseBytes = 7,
}

impl Limit {
    /// The threshold a configuration parameter sets, if it is one.
    pub fn of_param(name: &str) -> Option<Limit> {
        Some(match name {
            "hash-max-listpack-entries" => Limit::HashEntries,
            "hash-max-listpack-value" => Limit::HashValue,
            "set-max-intset-entries" => Limit::SetIntsetEntries,
            "zset-max-listpack-entries" => Limit::ZsetEntries,
            "zset-max-listpack-value" => Limit::ZsetValue,
            "stream-node-max-bytes" => Limit::StreamNodeBytes,
            "stream-node-max-entries" => Limit::StreamNodeEntries,
            "hll-sparse-max-bytes" => Limit::HllSparseBytes,
            _ => return None,
        })
    }
}

impl Limits {
    /// The limits in force now (the defaults until [`Limits::set`] changes one).
    pub fn current() -> Limits {
        Limits {
            hash_max_listpack_entries: Limits::get(Limit::HashEntries),
            hash_max_listpack_value: Limits::get(Limit::HashValue),
            set_max_intset_entries: Limits::get(Limit::SetIntsetEntries),
            zset_max_listpack_entries: Limits::get(Limit::ZsetEntries),
            zset_max_listpack_value: Limits::get(Limit::ZsetValue),
        }
    }

    /// One threshold in force now (for a per-element path that needs only it).
    #[inline]
    pub fn get(limit: Limit) -> usize {
        CURRENT[limit as usize].load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sets one threshold for the whole process (CONFIG SET, the configuration file).
    pub fn set(limit: Limit, value: usize) {
        CURRENT[limit as usize].store(value, std::sync::atomic::Ordering::Relaxed);
    }
}

/// An error a collection operation reports to the client. `Display` gives Redis's text, without
/// the `ERR ` prefix the command layer adds.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// HINCRBY on a value that is not an integer.
    #[error("hash value is not an integer")]
    HashValueNotInteger,
    /// HINCRBYFLOAT on a value that is not a float.
    #[error("hash value is not a float")]
    HashValueNotFloat,
    /// An integer increment that overflows `i64`.
    #[error("increment or decrement would overflow")]
    Overflow,
    /// A float increment whose result is NaN or infinite.
    #[error("increment would produce NaN or Infinity")]
    NanOrInfinity,
    /// ZADD with both XX and NX.
    #[error("XX and NX options at the same time are not compatible")]
    ZAddXxNx,
    /// ZADD with GT, LT and NX combined.
    #[error("GT, LT, and/or NX options at the same time are not compatible")]
    ZAddGtLtNx,
    /// ZADD INCR with several pairs.
    #[error("INCR option supports a single increment-element pair")]
    ZAddIncrPairs,
    /// A score update that gives NaN (`+inf` plus `-inf`).
    #[error("resulting score is not a number (NaN)")]
    ScoreNan,
    /// A malformed score range.
    #[error("min or max is not a float")]
    ScoreRange,
    /// A malformed lex range.
    #[error("min or max not valid string range item")]
    LexRange,
    /// LSET out of range.
    #[error("index out of range")]
    IndexOutOfRange,
    /// LPOS with RANK 0.
    #[error(
        "RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"
    )]
    RankZero,
}
