//! Redis sorted sets: a skiplist with spans (ordered by score, then member bytes) plus a hash
//! table from member to score, as Redis's skiplist encoding.

mod ops;
mod range;
mod skiplist;

pub use ops::{Aggregate, ZSource};
pub use range::{
    LexBound, LexRange, ScoreRange, parse_hex_float, parse_lex_range, parse_score_range,
};

use crate::dict::Dict;
use crate::util::normalize_range;
use crate::{Error, Limit, Limits};
use skiplist::{NIL, SkipList};

/// ZADD's options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZAddFlags {
    /// Only add new members.
    pub nx: bool,
    /// Only update existing members.
    pub xx: bool,
    /// Only update when the new score is greater.
    pub gt: bool,
    /// Only update when the new score is less.
    pub lt: bool,
    /// Count changed members in the reply, not only added ones (the caller's concern).
    pub ch: bool,
    /// Add the score to the current one (ZINCRBY semantics).
    pub incr: bool,
}

impl ZAddFlags {
    /// Redis's checks of the option combination, given the number of score/member pairs, in
    /// Redis's order.
    pub fn validate(&self, pairs: usize) -> Result<(), Error> {
        if self.nx && self.xx {
            return Err(Error::ZAddXxNx);
        }
        if (self.nx && (self.gt || self.lt)) || (self.gt && self.lt) {
            return Err(Error::ZAddGtLtNx);
        }
        if self.incr && pairs > 1 {
            return Err(Error::ZAddIncrPairs);
        }
        Ok(())
    }
}

/// What ZADD did with one pair.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ZAddOutcome {
    /// The member was new; its score.
    Added(f64),
    /// The member's score changed to this.
    Updated(f64),
    /// The member exists with this very score.
    Unchanged(f64),
    /// NX, XX, GT or LT prevented the operation (ZADD INCR then replies nil).
    Skipped,
}

impl ZAddOutcome {
    /// The member's score after the operation, unless skipped (ZADD INCR's reply).
    pub fn score(&self) -> Option<f64> {
        match *self {
            ZAddOutcome::Added(s) | ZAddOutcome::Updated(s) | ZAddOutcome::Unchanged(s) => Some(s),
            ZAddOutcome::Skipped => None,
        }
    }

    /// Whether this pair counts in ZADD's integer reply (with CH, updates count too).
    pub fn counts(&self, ch: bool) -> bool {
        matches!(self, ZAddOutcome::Added(_)) || (ch && matches!(self, ZAddOutcome::Updated(_)))
    }
}

/// A Redis sorted set.
#[derive(Clone, Debug, Default)]
pub struct SortedSet {
    dict: Dict<f64>,
    zsl: SkipList,
    peak_len: u32,
    peak_elem: u32,
}

impl SortedSet {
    /// An empty sorted set.
    pub fn new() -> Self {
        Self::default()
    }

    /// ZCARD.
    pub fn len(&self) -> usize {
        self.dict.len()
    }

    /// Whether it is empty (the key should then be deleted).
    pub fn is_empty(&self) -> bool {
        self.dict.len() == 0
    }

    /// ZSCORE.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.dict.get(member).copied()
    }

    /// ZADD of one pair, with Redis's `zsetAdd` logic. A NaN score, or an INCR that gives NaN,
    /// is `Error::ScoreNan` and changes nothing.
    pub fn add(
        &mut self,
        member: &[u8],
        score: f64,
        flags: ZAddFlags,
    ) -> Result<ZAddOutcome, Error> {
        self.add_with(member, score, flags, true)
    }

    /// [`SortedSet::add`]; `listpack_zero` applies the small-set `-0` rule (off for the
    /// temporary results of ZUNION and friends, which Redis builds as skiplists).
    pub(crate) fn add_with(
        &mut self,
        member: &[u8],
        score: f64,
        flags: ZAddFlags,
        listpack_zero: bool,
    ) -> Result<ZAddOutcome, Error> {
        if score.is_nan() {
            return Err(Error::ScoreNan);
        }
        let score = if listpack_zero {
            self.as_stored(member, score)
        } else {
            score
        };
        if let Some(&current) = self.dict.get(member) {
            if flags.nx {
                return Ok(ZAddOutcome::Skipped);
            }
            let mut new = score;
            if flags.incr {
                new += current;
                if new.is_nan() {
                    return Err(Error::ScoreNan);
                }
            }
            if (flags.lt && new >= current) || (flags.gt && new <= current) {
                return Ok(ZAddOutcome::Skipped);
            }
            let new = if listpack_zero {
                self.as_stored(member, new)
            } else {
                new
            };
            if new == current {
                return Ok(ZAddOutcome::Unchanged(new));
            }
            self.zsl.update_score(current, member, new);
            if let Some(s) = self.dict.get_mut(member) {
                *s = new;
            }
            Ok(ZAddOutcome::Updated(new))
        } else if !flags.xx {
            self.zsl.insert(score, Box::from(member));
            self.dict.insert(Box::from(member), score);
            self.peak_len = self.peak_len.max(saturate(self.dict.len()));
            self.peak_elem = self.peak_elem.max(saturate(member.len()));
            Ok(ZAddOutcome::Added(score))
        } else {
            Ok(ZAddOutcome::Skipped)
        }
    }

    /// The score as Redis would store it: a listpack keeps scores as strings where `-0` reads
    /// back as `0`, so while the set stays small (by the limits in force) a negative zero is
    /// stored as a positive one; the skiplist encoding keeps `-0`.
    fn as_stored(&self, member: &[u8], score: f64) -> f64 {
        // Per member added: only the two zset thresholds are read.
        let len = self.dict.len() + usize::from(self.dict.get(member).is_none());
        let small = (self.peak_len as usize).max(len) <= Limits::get(Limit::ZsetEntries)
            && (self.peak_elem as usize).max(member.len()) <= Limits::get(Limit::ZsetValue);
        if score == 0.0 && small { 0.0 } else { score }
    }

    /// Prepares a computed result (ZUNIONSTORE and friends) for storing: Redis converts a small
    /// result to a listpack, where a `-0` score reads back as `0`.
    pub fn normalize_for_store(&mut self) {
        if !self.is_listpack(&Limits::current()) {
            return;
        }
        let zeros: Vec<Box<[u8]>> = self
            .iter()
            .filter(|&(_, s)| s == 0.0 && s.is_sign_negative())
            .map(|(m, _)| Box::from(m))
            .collect();
        for m in zeros {
            self.zsl.update_score(-0.0, &m, 0.0);
            if let Some(s) = self.dict.get_mut(&m) {
                *s = 0.0;
            }
        }
    }

    /// ZINCRBY: the new score.
    pub fn incr_by(&mut self, member: &[u8], delta: f64) -> Result<f64, Error> {
        let flags = ZAddFlags {
            incr: true,
            ..ZAddFlags::default()
        };
        Ok(self.add(member, delta, flags)?.score().unwrap_or(delta))
    }

    /// ZREM of one member; true when it existed.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self.dict.remove(member) {
            Some((_, score)) => {
                let removed = self.zsl.remove(score, member);
                debug_assert!(removed);
                true
            }
            None => false,
        }
    }

    /// ZRANK (or ZREVRANK when `reverse`): 0-based.
    pub fn rank(&self, member: &[u8], reverse: bool) -> Option<usize> {
        let score = self.score(member)?;
        let r = self.zsl.rank(score, member);
        if r == 0 {
            return None;
        }
        Some(if reverse { self.len() - r } else { r - 1 })
    }

    /// Members in order, lowest first, with scores.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&[u8], f64)> + ExactSizeIterator {
        Walk {
            zsl: &self.zsl,
            front: self.zsl.first(),
            back: self.zsl.last(),
            left: self.len(),
        }
    }

    fn walk(
        &self,
        mut x: u32,
        reverse: bool,
        mut keep: impl FnMut(&[u8], f64) -> bool,
        limit: usize,
    ) -> Vec<(&[u8], f64)> {
        let mut out = Vec::new();
        while x != NIL && out.len() < limit {
            let (m, s) = self.zsl.get(x);
            if !keep(m, s) {
                break;
            }
            out.push((m, s));
            x = if reverse {
                self.zsl.prev(x)
            } else {
                self.zsl.next(x)
            };
        }
        out
    }

    /// ZRANGE by index (`reverse`: ZREVRANGE), indexes normalised as Redis does.
    pub fn range_by_rank(&self, start: i64, end: i64, reverse: bool) -> Vec<(&[u8], f64)> {
        let Some((a, b)) = normalize_range(start, end, self.len()) else {
            return Vec::new();
        };
        let first = if reverse {
            self.zsl.by_rank(self.len() - a)
        } else {
            self.zsl.by_rank(a + 1)
        };
        self.walk(first, reverse, |_, _| true, b - a + 1)
    }

    /// Applies LIMIT's offset by rank: the node `offset` steps from (node, rank) in the walking
    /// direction.
    fn skip(&self, (x, rank): (u32, usize), reverse: bool, offset: i64) -> u32 {
        if x == NIL || offset < 0 {
            return NIL;
        }
        let offset = usize::try_from(offset).unwrap_or(usize::MAX);
        let target = if reverse {
            rank.checked_sub(offset)
        } else {
            rank.checked_add(offset)
        };
        target.map_or(NIL, |t| self.zsl.by_rank(t))
    }

    /// ZRANGEBYSCORE / ZREVRANGEBYSCORE with LIMIT: `offset < 0` gives nothing, `count < 0`
    /// means no limit, as in Redis.
    pub fn range_by_score(
        &self,
        range: &ScoreRange,
        reverse: bool,
        offset: i64,
        count: i64,
    ) -> Vec<(&[u8], f64)> {
        let start = if reverse {
            self.zsl.last_in_score(range)
        } else {
            self.zsl.first_in_score(range)
        };
        let x = self.skip(start, reverse, offset);
        let limit = usize::try_from(count).unwrap_or(usize::MAX);
        if reverse {
            self.walk(x, true, |_, s| range.gte_min(s), limit)
        } else {
            self.walk(x, false, |_, s| range.lte_max(s), limit)
        }
    }

    /// ZRANGEBYLEX / ZREVRANGEBYLEX with LIMIT (meaningful when all scores are equal).
    pub fn range_by_lex(
        &self,
        range: &LexRange,
        reverse: bool,
        offset: i64,
        count: i64,
    ) -> Vec<(&[u8], f64)> {
        let start = if reverse {
            self.zsl.last_in_lex(range, self.walks_like_listpack())
        } else {
            self.zsl.first_in_lex(range, self.walks_like_listpack())
        };
        let x = self.skip(start, reverse, offset);
        let limit = usize::try_from(count).unwrap_or(usize::MAX);
        if reverse {
            self.walk(x, true, |m, _| range.gte_min(m), limit)
        } else {
            self.walk(x, false, |m, _| range.lte_max(m), limit)
        }
    }

    /// ZCOUNT, in O(log N).
    pub fn count_in_score(&self, range: &ScoreRange) -> usize {
        let (first, a) = self.zsl.first_in_score(range);
        if first == NIL {
            return 0;
        }
        let (_, b) = self.zsl.last_in_score(range);
        b.saturating_sub(a) + 1
    }

    /// ZLEXCOUNT, in O(log N) (a listpack-sized set is walked, as Redis walks a listpack).
    pub fn count_in_lex(&self, range: &LexRange) -> usize {
        let scan = self.walks_like_listpack();
        let (first, a) = self.zsl.first_in_lex(range, scan);
        if first == NIL {
            return 0;
        }
        if scan {
            return self
                .walk(first, false, |m, _| range.lte_max(m), usize::MAX)
                .len();
        }
        let (_, b) = self.zsl.last_in_lex(range, false);
        b.saturating_sub(a) + 1
    }

    /// Whether Redis, with the limits in force, would keep this set as a listpack, whose lex
    /// range commands walk member by member. Lex ranges assume one score for all members; with
    /// mixed scores, walking as Redis does is how Ferrite gives Redis's answer (a skiplist's
    /// answer then depends on its random levels, in Redis too).
    fn walks_like_listpack(&self) -> bool {
        self.is_listpack(&Limits::current())
    }

    /// Whether Redis would still keep this set as a listpack under `limits` (it never went
    /// past them).
    fn is_listpack(&self, limits: &Limits) -> bool {
        self.peak_len as usize <= limits.zset_max_listpack_entries
            && self.peak_elem as usize <= limits.zset_max_listpack_value
    }

    fn forget(&mut self, members: Vec<Box<[u8]>>) -> usize {
        for m in &members {
            self.dict.remove(m);
        }
        members.len()
    }

    /// ZREMRANGEBYRANK: how many were removed.
    pub fn remove_range_by_rank(&mut self, start: i64, end: i64) -> usize {
        let Some((a, b)) = normalize_range(start, end, self.len()) else {
            return 0;
        };
        let removed = self.zsl.remove_rank_range(a + 1, b + 1);
        self.forget(removed)
    }

    /// ZREMRANGEBYSCORE: how many were removed.
    pub fn remove_range_by_score(&mut self, range: &ScoreRange) -> usize {
        let removed = self.zsl.remove_score_range(range);
        self.forget(removed)
    }

    /// ZREMRANGEBYLEX: how many were removed.
    pub fn remove_range_by_lex(&mut self, range: &LexRange) -> usize {
        let removed = self.zsl.remove_lex_range(range, self.walks_like_listpack());
        self.forget(removed)
    }

    /// ZPOPMIN / ZPOPMAX (`max`) with a count: up to `count` members with scores, in pop order.
    pub fn pop(&mut self, max: bool, count: u64) -> Vec<(Box<[u8]>, f64)> {
        let n = usize::try_from(count).unwrap_or(usize::MAX).min(self.len());
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let x = if max {
                self.zsl.last()
            } else {
                self.zsl.first()
            };
            if x == NIL {
                break;
            }
            let (m, s) = self.zsl.get(x);
            let m: Box<[u8]> = Box::from(m);
            self.remove(&m);
            out.push((m, s));
        }
        out
    }

    /// OBJECT ENCODING: "listpack" until the set ever exceeded `zset-max-listpack-entries` or
    /// held a member longer than `zset-max-listpack-value`, then "skiplist".
    pub fn encoding_name(&self, limits: &Limits) -> &'static str {
        if self.is_listpack(limits) {
            "listpack"
        } else {
            "skiplist"
        }
    }

    /// An estimate of the bytes held: the table, the skiplist and the members (twice, as
    /// both hold them). O(1) (capacities and running sums).
    pub fn memory_usage(&self) -> usize {
        size_of::<Self>() + self.dict.memory_usage() + self.zsl.memory_usage()
    }

    /// [`memory_usage`](Self::memory_usage) counted from scratch.
    #[cfg(test)]
    pub(crate) fn memory_usage_slow(&self) -> usize {
        size_of::<Self>() + self.dict.memory_usage_slow() + self.zsl.memory_usage_slow()
    }
}

/// A double-ended walk over the skiplist.
struct Walk<'a> {
    zsl: &'a SkipList,
    front: u32,
    back: u32,
    left: usize,
}

impl<'a> Iterator for Walk<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 || self.front == NIL {
            return None;
        }
        self.left -= 1;
        let x = self.front;
        self.front = self.zsl.next(x);
        Some(self.zsl.get(x))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Walk<'_> {}

impl DoubleEndedIterator for Walk<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.left == 0 || self.back == NIL {
            return None;
        }
        self.left -= 1;
        let x = self.back;
        self.back = self.zsl.prev(x);
        Some(self.zsl.get(x))
    }
}

#[cfg(test)]
mod tests;

/// A length as a high-water mark: `u32` keeps the set small, and past 4 Gi any limit is
/// exceeded anyway.
fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
