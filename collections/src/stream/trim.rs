//! XTRIM and XADD's trimming (`streamTrim`): whole nodes are dropped from the head while that
//! keeps within the bound; then, unless approximate, entries of the next node are marked deleted.

use super::StreamId;
use super::entries::Entries;
use super::node::{self, Forward};
use crate::{Limit, Limits};

/// What to trim to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrimStrategy {
    /// `MAXLEN`: keep at most this many entries.
    MaxLen(u64),
    /// `MINID`: drop entries below this ID.
    MinId(StreamId),
}

/// A trimming request (`streamAddTrimArgs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trim {
    /// The bound.
    pub strategy: TrimStrategy,
    /// `~`: drop only whole nodes.
    pub approx: bool,
    /// The most entries to drop, 0 for no limit (`LIMIT`; only with `~`).
    pub limit: u64,
}

impl Trim {
    /// The LIMIT Redis uses for `~` without an explicit one: 100 times
    /// `stream-node-max-entries`, or 10000 when that is 0 (no limit).
    pub fn default_approx_limit() -> u64 {
        match Limits::get(Limit::StreamNodeEntries) as u64 {
            0 => 10_000,
            n => n.saturating_mul(100),
        }
    }
}

impl Entries {
    /// Trims as `streamTrim` does and returns how many entries were deleted. Whole nodes go
    /// first; a node only partly below the bound is trimmed entry by entry unless `approx`; with
    /// a `limit`, a node whose live entries would take the count past it stops the trimming.
    pub fn trim(&mut self, trim: &Trim) -> u64 {
        let mut deleted: u64 = 0;
        while let Some(mut first) = self.nodes.first_entry() {
            if let TrimStrategy::MaxLen(maxlen) = trim.strategy
                && self.length <= maxlen
            {
                break;
            }
            let master_id = *first.key();
            let Some(m) = node::master(first.get()) else {
                break;
            };
            let entries = u64::try_from(m.count).unwrap_or(0);
            if trim.limit != 0 && deleted + entries > trim.limit {
                break;
            }
            let remove_node = match trim.strategy {
                TrimStrategy::MaxLen(maxlen) => self.length.saturating_sub(entries) >= maxlen,
                TrimStrategy::MinId(min) => {
                    // The node's last entry, tombstone or not, as `lpGetEdgeStreamID` reads it.
                    let last = Forward::new(first.get(), master_id)
                        .and_then(|f| f.last())
                        .map_or(StreamId::MIN, |e| e.id);
                    last < min
                }
            };
            if remove_node {
                self.bytes -= node::footprint(&first.remove());
                self.length = self.length.saturating_sub(entries);
                deleted += entries;
                continue;
            }
            if trim.approx {
                break;
            }
            let lp = first.get_mut();
            let before = node::footprint(lp);
            let Some(walk) = Forward::new(lp, master_id) else {
                break;
            };
            let mut marked = Vec::new();
            let mut length = self.length;
            for e in walk {
                let stop = match trim.strategy {
                    TrimStrategy::MaxLen(maxlen) => length <= maxlen,
                    TrimStrategy::MinId(min) => e.id >= min,
                };
                if stop {
                    break;
                }
                if !e.is_deleted() {
                    marked.push(e);
                    length -= 1;
                }
            }
            // Flags are one byte before and after, so the offsets found above stay valid.
            for e in &marked {
                let _ = crate::listpack::replace_int(lp, e.flags_pos, e.flags | node::FLAG_DELETED);
            }
            let n = marked.len() as u64;
            if n > 0 {
                let _ = node::adjust_counts(lp, n as i64);
            }
            self.bytes = self.bytes - before + node::footprint(lp);
            self.length = length;
            deleted += n;
            break;
        }
        if self.length == 0 {
            self.first_id = StreamId::MIN;
        } else if deleted > 0 {
            self.first_id = self.first_live_id().unwrap_or(StreamId::MIN);
        }
        deleted
    }
}
