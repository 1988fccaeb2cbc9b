//! Sorted-set algebra (ZUNION, ZINTER, ZDIFF, ZINTERCARD and their STORE forms), random
//! members, ZSCAN and the spill format.

use std::borrow::Cow;

use super::{SortedSet, ZAddFlags};
use crate::codec::{self, DecodeError, Reader, tag};
use crate::dict::Dict;
use crate::util::{Rng, pick_distinct};
use crate::{Limits, Set};

/// One input key of ZUNION/ZINTER/ZDIFF: a sorted set, a plain set (every score 1), or a
/// missing key (empty).
#[derive(Clone, Copy, Debug)]
pub enum ZSource<'a> {
    /// A sorted set.
    Zset(&'a SortedSet),
    /// A set; its members score 1.
    Set(&'a Set),
    /// A key that does not exist.
    Missing,
}

/// AGGREGATE SUM|MIN|MAX.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Aggregate {
    /// Add the weighted scores (the default); `+inf + -inf` gives 0.
    #[default]
    Sum,
    /// Keep the least.
    Min,
    /// Keep the greatest.
    Max,
}

impl Aggregate {
    /// `zunionInterAggregate`.
    fn apply(self, target: &mut f64, value: f64) {
        match self {
            Aggregate::Sum => {
                *target += value;
                if target.is_nan() {
                    *target = 0.0;
                }
            }
            Aggregate::Min => {
                if value < *target {
                    *target = value;
                }
            }
            Aggregate::Max => {
                if value > *target {
                    *target = value;
                }
            }
        }
    }
}

impl ZSource<'_> {
    fn len(&self) -> usize {
        match self {
            ZSource::Zset(z) => z.len(),
            ZSource::Set(s) => s.len(),
            ZSource::Missing => 0,
        }
    }

    fn find(&self, member: &[u8]) -> Option<f64> {
        match self {
            ZSource::Zset(z) => z.score(member),
            ZSource::Set(s) => s.contains(member).then_some(1.0),
            ZSource::Missing => None,
        }
    }

    fn members(&self) -> Box<dyn Iterator<Item = (Cow<'_, [u8]>, f64)> + '_> {
        match self {
            ZSource::Zset(z) => Box::new(z.iter().map(|(m, s)| (Cow::Borrowed(m), s))),
            ZSource::Set(s) => Box::new(s.iter().map(|m| (m, 1.0))),
            ZSource::Missing => Box::new(std::iter::empty()),
        }
    }
}

/// Weighted score as Redis computes it: `weight * score`, NaN (0 × inf) becoming 0.
fn weighted(weight: f64, score: f64) -> f64 {
    let v = weight * score;
    if v.is_nan() { 0.0 } else { v }
}

/// The inputs ordered by cardinality, as Redis sorts them (stably here).
fn by_size<'a, 'b>(inputs: &'b [(ZSource<'a>, f64)]) -> Vec<&'b (ZSource<'a>, f64)> {
    let mut v: Vec<_> = inputs.iter().collect();
    v.sort_by_key(|(s, _)| s.len());
    v
}

fn collect(acc: Dict<f64>) -> SortedSet {
    let mut out = SortedSet::new();
    for (m, &s) in acc.iter() {
        // Scores were made non-NaN above; `add` cannot fail.
        let _ = out.add_with(m, s, ZAddFlags::default(), false);
    }
    out
}

impl SortedSet {
    /// ZUNION / ZUNIONSTORE: `inputs` are (key, weight) pairs.
    pub fn union(inputs: &[(ZSource<'_>, f64)], aggregate: Aggregate) -> SortedSet {
        let mut acc: Dict<f64> = Dict::default();
        for (src, weight) in by_size(inputs) {
            for (m, score) in src.members() {
                let score = weighted(*weight, score);
                match acc.get_mut(&m) {
                    Some(t) => aggregate.apply(t, score),
                    None => {
                        acc.insert(Box::from(&*m), score);
                    }
                }
            }
        }
        collect(acc)
    }

    /// ZINTER / ZINTERSTORE: members in every input, scores aggregated.
    pub fn intersection(inputs: &[(ZSource<'_>, f64)], aggregate: Aggregate) -> SortedSet {
        let mut acc: Dict<f64> = Dict::default();
        let sorted = by_size(inputs);
        let Some(((first, w0), rest)) = sorted.split_first() else {
            return SortedSet::new();
        };
        'members: for (m, score) in first.members() {
            let mut total = weighted(*w0, score);
            for (src, w) in rest {
                let Some(s) = src.find(&m) else {
                    continue 'members;
                };
                aggregate.apply(&mut total, s * w);
            }
            acc.insert(Box::from(&*m), total);
        }
        collect(acc)
    }

    /// ZINTERCARD: the intersection's size, stopping at `limit` (0 = no limit).
    pub fn intersection_len(inputs: &[ZSource<'_>], limit: usize) -> usize {
        let mut sorted: Vec<_> = inputs.iter().collect();
        sorted.sort_by_key(|s| s.len());
        let Some((first, rest)) = sorted.split_first() else {
            return 0;
        };
        let mut n = 0;
        for (m, _) in first.members() {
            if rest.iter().all(|s| s.find(&m).is_some()) {
                n += 1;
                if n == limit {
                    break;
                }
            }
        }
        n
    }

    /// ZDIFF / ZDIFFSTORE: members of the first input in none of the others, with the first's
    /// scores.
    pub fn difference(inputs: &[ZSource<'_>]) -> SortedSet {
        let mut out = SortedSet::new();
        let Some((first, rest)) = inputs.split_first() else {
            return out;
        };
        for (m, score) in first.members() {
            if rest.iter().all(|s| s.find(&m).is_none()) {
                let _ = out.add_with(&m, score, ZAddFlags::default(), false);
            }
        }
        out
    }

    /// ZRANDMEMBER without a count.
    pub fn random(&self, rng: &mut Rng) -> Option<(&[u8], f64)> {
        self.dict.at(rng.below(self.len())).map(|(m, &s)| (m, s))
    }

    /// ZRANDMEMBER with a positive count: up to `count` distinct members.
    pub fn random_distinct(&self, count: u64, rng: &mut Rng) -> Vec<(&[u8], f64)> {
        if count >= self.len() as u64 {
            // Redis returns the whole set, highest score first.
            return self.iter().rev().collect();
        }
        let picks = pick_distinct(self.len(), count, rng);
        picks
            .into_iter()
            .filter_map(|i| self.dict.at(i).map(|(m, &s)| (m, s)))
            .collect()
    }

    /// ZRANDMEMBER with a negative count: `count` independent draws, lazily.
    pub fn random_repeated<'a>(
        &'a self,
        count: u64,
        rng: &'a mut Rng,
    ) -> impl Iterator<Item = (&'a [u8], f64)> + 'a {
        let n = if self.is_empty() { 0 } else { count };
        (0..n).filter_map(move |_| self.random(rng))
    }

    /// ZSCAN: the next cursor and this step's pairs. A listpack-encoded set is returned whole,
    /// in order, with cursor 0, as Redis does.
    pub fn scan(&self, cursor: u64, count: usize, limits: &Limits) -> (u64, Vec<(&[u8], f64)>) {
        if self.encoding_name(limits) == "listpack" {
            return (0, self.iter().collect());
        }
        let mut out = Vec::new();
        let next = self.dict.scan(cursor, count, |m, &s| out.push((m, s)));
        (next, out)
    }

    /// Appends the spill form (members in score order).
    pub fn serialize(&self, out: &mut Vec<u8>) {
        codec::put_header(out, tag::ZSET);
        codec::put_varint(out, self.len() as u64);
        for (m, s) in self.iter() {
            codec::put_bytes(out, m);
            out.extend_from_slice(&s.to_bits().to_le_bytes());
        }
    }

    /// Reads the spill form back; the encoding is re-derived from the contents.
    pub fn deserialize(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (mut r, _) = Reader::open(bytes, &[tag::ZSET])?;
        let n = r.count(9)?;
        let mut z = SortedSet::new();
        for _ in 0..n {
            let m = r.bytes()?;
            let s = f64::from_bits(r.u64_le()?);
            if s.is_nan() {
                return Err(DecodeError::Corrupt("NaN score"));
            }
            if z.score(m).is_some() {
                return Err(DecodeError::Corrupt("duplicate sorted set member"));
            }
            let _ = z.add(m, s, ZAddFlags::default());
        }
        r.finish()?;
        Ok(z)
    }
}

impl PartialEq for SortedSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<'a> FromIterator<(&'a [u8], f64)> for SortedSet {
    /// Builds with plain ZADD semantics (later pairs update earlier ones; NaN is skipped).
    fn from_iter<T: IntoIterator<Item = (&'a [u8], f64)>>(iter: T) -> Self {
        let mut z = SortedSet::new();
        for (m, s) in iter {
            let _ = z.add(m, s, ZAddFlags::default());
        }
        z
    }
}
