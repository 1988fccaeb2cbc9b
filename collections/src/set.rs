//! Redis sets: a sorted `i64` array while every member is an integer and the set is small
//! (Redis's intset, which SMEMBERS returns in ascending order), the crate's hash table otherwise.

use std::borrow::Cow;

use crate::Limits;
use crate::codec::{self, DecodeError, Reader, tag};
use crate::dict::Dict;
use crate::util::{Rng, parse_i64_strict, pick_distinct};

/// The largest set kept as a sorted integer array: inserts into it are O(n).
const INTSET_CAP: usize = 512;

#[derive(Clone, Debug)]
enum Repr {
    Ints(Vec<i64>),
    Table(Dict<()>),
}

/// A Redis set.
#[derive(Clone, Debug)]
pub struct Set {
    repr: Repr,
    /// The most members ever held (for the one-way intset → hashtable conversion).
    peak_len: usize,
    /// Whether a non-integer member was ever added.
    had_string: bool,
}

impl Default for Set {
    fn default() -> Self {
        Self {
            repr: Repr::Ints(Vec::new()),
            peak_len: 0,
            had_string: false,
        }
    }
}

fn int_bytes(i: i64) -> Cow<'static, [u8]> {
    Cow::Owned(i.to_string().into_bytes())
}

impl Set {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// SCARD.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Ints(v) => v.len(),
            Repr::Table(d) => d.len(),
        }
    }

    /// Whether the set is empty (the key should then be deleted).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// SISMEMBER.
    pub fn contains(&self, member: &[u8]) -> bool {
        match &self.repr {
            Repr::Ints(v) => parse_i64_strict(member).is_some_and(|i| v.binary_search(&i).is_ok()),
            Repr::Table(d) => d.find(member).is_some(),
        }
    }

    /// SADD of one member; true when it is new.
    pub fn insert(&mut self, member: &[u8]) -> bool {
        let int = parse_i64_strict(member);
        self.had_string |= int.is_none();
        if let Repr::Ints(v) = &mut self.repr {
            if let Some(i) = int {
                match v.binary_search(&i) {
                    Ok(_) => return false,
                    Err(at) if v.len() < INTSET_CAP => {
                        v.insert(at, i);
                        self.peak_len = self.peak_len.max(v.len());
                        return true;
                    }
                    Err(_) => {}
                }
            }
            self.convert();
        }
        let Repr::Table(d) = &mut self.repr else {
            unreachable!("converted above")
        };
        if d.find(member).is_some() {
            return false;
        }
        d.insert(Box::from(member), ());
        self.peak_len = self.peak_len.max(d.len());
        true
    }

    fn convert(&mut self) {
        if let Repr::Ints(v) = &self.repr {
            let mut d = Dict::default();
            for &i in v {
                d.insert(i.to_string().into_bytes().into_boxed_slice(), ());
            }
            self.repr = Repr::Table(d);
        }
    }

    /// SREM of one member; true when it existed.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Ints(v) => match parse_i64_strict(member).map(|i| v.binary_search(&i)) {
                Some(Ok(at)) => {
                    v.remove(at);
                    true
                }
                _ => false,
            },
            Repr::Table(d) => d.remove(member).is_some(),
        }
    }

    /// The members: ascending integers for an intset, table order otherwise.
    pub fn iter(&self) -> impl Iterator<Item = Cow<'_, [u8]>> {
        let (ints, table) = match &self.repr {
            Repr::Ints(v) => (Some(v.iter().map(|&i| int_bytes(i))), None),
            Repr::Table(d) => (None, Some(d.iter().map(|(k, ())| Cow::Borrowed(k)))),
        };
        ints.into_iter()
            .flatten()
            .chain(table.into_iter().flatten())
    }

    fn member_at(&self, i: usize) -> Option<Cow<'_, [u8]>> {
        match &self.repr {
            Repr::Ints(v) => v.get(i).map(|&i| int_bytes(i)),
            Repr::Table(d) => d.at(i).map(|(k, ())| Cow::Borrowed(k)),
        }
    }

    /// SRANDMEMBER without a count.
    pub fn random(&self, rng: &mut Rng) -> Option<Cow<'_, [u8]>> {
        self.member_at(rng.below(self.len()))
    }

    /// SRANDMEMBER with a positive count: up to `count` distinct members.
    pub fn random_distinct(&self, count: u64, rng: &mut Rng) -> Vec<Cow<'_, [u8]>> {
        let picks = pick_distinct(self.len(), count, rng);
        picks
            .into_iter()
            .filter_map(|i| self.member_at(i))
            .collect()
    }

    /// SRANDMEMBER with a negative count: `count` independent draws, lazily.
    pub fn random_repeated<'a>(
        &'a self,
        count: u64,
        rng: &'a mut Rng,
    ) -> impl Iterator<Item = Cow<'a, [u8]>> + 'a {
        let n = if self.is_empty() { 0 } else { count };
        (0..n).filter_map(move |_| self.member_at(rng.below(self.len())))
    }

    /// SPOP without a count.
    pub fn pop(&mut self, rng: &mut Rng) -> Option<Vec<u8>> {
        let at = rng.below(self.len());
        match &mut self.repr {
            Repr::Ints(v) if at < v.len() => Some(v.remove(at).to_string().into_bytes()),
            Repr::Table(d) if at < d.len() => Some(d.remove_at(at).0.into_vec()),
            _ => None,
        }
    }

    /// SPOP with a count: up to `count` distinct members, removed.
    pub fn pop_many(&mut self, count: u64, rng: &mut Rng) -> Vec<Vec<u8>> {
        let picked: Vec<Vec<u8>> = self
            .random_distinct(count, rng)
            .into_iter()
            .map(Cow::into_owned)
            .collect();
        for m in &picked {
            self.remove(m);
        }
        picked
    }

    /// SSCAN: the next cursor and this step's members. An intset is returned whole with
    /// cursor 0, as Redis does.
    pub fn scan(&self, cursor: u64, count: usize, _limits: &Limits) -> (u64, Vec<Cow<'_, [u8]>>) {
        match &self.repr {
            Repr::Ints(_) => (0, self.iter().collect()),
            Repr::Table(d) => {
                let mut out = Vec::new();
                let next = d.scan(cursor, count, |k, ()| out.push(Cow::Borrowed(k)));
                (next, out)
            }
        }
    }

    /// OBJECT ENCODING as Redis 7.0 names it: "intset" while every member ever added was an
    /// integer and the set never exceeded `set-max-intset-entries`, else "hashtable" (7.0 has
    /// no listpack sets).
    pub fn encoding_name(&self, limits: &Limits) -> &'static str {
        if self.had_string || self.peak_len > limits.set_max_intset_entries {
            "hashtable"
        } else {
            "intset"
        }
    }

    /// An estimate of the bytes held: the integer array, or the table and its members. O(1).
    pub fn memory_usage(&self) -> usize {
        size_of::<Self>()
            + match &self.repr {
                Repr::Ints(v) => v.capacity() * size_of::<i64>(),
                Repr::Table(d) => d.memory_usage(),
            }
    }

    /// [`memory_usage`](Self::memory_usage) counted from scratch.
    #[cfg(test)]
    pub(crate) fn memory_usage_slow(&self) -> usize {
        size_of::<Self>()
            + match &self.repr {
                Repr::Ints(v) => v.capacity() * size_of::<i64>(),
                Repr::Table(d) => d.memory_usage_slow(),
            }
    }

    /// SINTER: the members in every set; a missing key (`None`) makes the result empty.
    pub fn intersection(sets: &[Option<&Set>]) -> Set {
        let mut out = Set::new();
        let Some(present) = sets.iter().copied().collect::<Option<Vec<&Set>>>() else {
            return out;
        };
        let Some(smallest) = present.iter().min_by_key(|s| s.len()) else {
            return out;
        };
        for m in smallest.iter() {
            if present.iter().all(|s| s.contains(&m)) {
                out.insert(&m);
            }
        }
        out
    }

    /// SINTERCARD: the size of the intersection, stopping at `limit` (0 = no limit).
    pub fn intersection_len(sets: &[Option<&Set>], limit: usize) -> usize {
        let Some(present) = sets.iter().copied().collect::<Option<Vec<&Set>>>() else {
            return 0;
        };
        let Some(smallest) = present.iter().min_by_key(|s| s.len()) else {
            return 0;
        };
        let mut n = 0;
        for m in smallest.iter() {
            if present.iter().all(|s| s.contains(&m)) {
                n += 1;
                if n == limit {
                    break;
                }
            }
        }
        n
    }

    /// SUNION: the members of any set; missing keys are empty.
    pub fn union(sets: &[Option<&Set>]) -> Set {
        let mut out = Set::new();
        for s in sets.iter().flatten() {
            for m in s.iter() {
                out.insert(&m);
            }
        }
        out
    }

    /// SDIFF: the members of the first set in none of the others; missing keys are empty.
    pub fn difference(sets: &[Option<&Set>]) -> Set {
        let mut out = Set::new();
        let Some((Some(first), rest)) = sets.split_first() else {
            return out;
        };
        for m in first.iter() {
            if !rest.iter().flatten().any(|s| s.contains(&m)) {
                out.insert(&m);
            }
        }
        out
    }

    /// Appends the spill form.
    pub fn serialize(&self, out: &mut Vec<u8>) {
        match &self.repr {
            Repr::Ints(v) => {
                codec::put_header(out, tag::SET_INTS);
                codec::put_varint(out, v.len() as u64);
                for &i in v {
                    out.extend_from_slice(&i.to_le_bytes());
                }
            }
            Repr::Table(d) => {
                codec::put_header(out, tag::SET);
                codec::put_varint(out, d.len() as u64);
                for (k, ()) in d.iter() {
                    codec::put_bytes(out, k);
                }
            }
        }
    }

    /// Reads the spill form back; the encoding is re-derived from the contents.
    pub fn deserialize(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (mut r, found) = Reader::open(bytes, &[tag::SET, tag::SET_INTS])?;
        let mut s = Set::new();
        if found == tag::SET_INTS {
            let n = r.count(8)?;
            for _ in 0..n {
                let i = r.u64_le()? as i64;
                if !s.insert(i.to_string().as_bytes()) {
                    return Err(DecodeError::Corrupt("duplicate set member"));
                }
            }
        } else {
            let n = r.count(1)?;
            for _ in 0..n {
                if !s.insert(r.bytes()?) {
                    return Err(DecodeError::Corrupt("duplicate set member"));
                }
            }
        }
        r.finish()?;
        Ok(s)
    }
}

impl PartialEq for Set {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|m| other.contains(&m))
    }
}

impl<'a> FromIterator<&'a [u8]> for Set {
    fn from_iter<T: IntoIterator<Item = &'a [u8]>>(iter: T) -> Self {
        let mut s = Set::new();
        for m in iter {
            s.insert(m);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> Set {
        items.iter().map(|s| s.as_bytes()).collect()
    }

    fn sorted(s: &Set) -> Vec<String> {
        let mut v: Vec<_> = s
            .iter()
            .map(|m| String::from_utf8_lossy(&m).into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn intset_then_hashtable() {
        let limits = Limits::default();
        let mut s = set(&["3", "1", "2", "-5"]);
        assert_eq!(s.encoding_name(&limits), "intset");
        let order: Vec<_> = s.iter().map(|m| m.into_owned()).collect();
        assert_eq!(order, [&b"-5"[..], b"1", b"2", b"3"]);
        assert!(!s.insert(b"1"));
        assert!(s.contains(b"2"));
        assert!(!s.contains(b"02"));
        assert!(s.insert(b"02"));
        assert_eq!(s.encoding_name(&limits), "hashtable");
        assert!(s.contains(b"2") && s.contains(b"02") && s.len() == 5);
        s.remove(b"02");
        assert_eq!(s.encoding_name(&limits), "hashtable");

        let mut big = Set::new();
        for i in 0..513 {
            big.insert(i.to_string().as_bytes());
        }
        assert_eq!(big.encoding_name(&limits), "hashtable");
        assert_eq!(big.len(), 513);
        big.remove(b"0");
        assert!(!big.contains(b"0") && big.contains(b"512"));
    }

    #[test]
    fn algebra() {
        let a = set(&["a", "b", "c", "1"]);
        let b = set(&["b", "c", "d"]);
        let c = set(&["c", "1"]);
        assert_eq!(
            sorted(&Set::intersection(&[Some(&a), Some(&b)])),
            ["b", "c"]
        );
        assert!(Set::intersection(&[Some(&a), None]).is_empty());
        assert!(Set::intersection(&[]).is_empty());
        assert_eq!(Set::intersection_len(&[Some(&a), Some(&b), Some(&c)], 0), 1);
        assert_eq!(Set::intersection_len(&[Some(&a), Some(&b)], 1), 1);
        assert_eq!(Set::union(&[Some(&a), None, Some(&b)]).len(), 5);
        assert_eq!(
            sorted(&Set::difference(&[Some(&a), Some(&b), None, Some(&c)])),
            ["a"]
        );
        assert!(Set::difference(&[None, Some(&a)]).is_empty());
    }

    #[test]
    fn random_and_pop() {
        let mut rng = Rng::new(9);
        let mut s = Set::new();
        assert!(s.pop(&mut rng).is_none());
        assert!(s.pop_many(u64::MAX, &mut rng).is_empty());
        for i in 0..50 {
            s.insert(i.to_string().as_bytes());
        }
        s.insert(b"x");
        assert_eq!(s.random_distinct(10, &mut rng).len(), 10);
        assert_eq!(s.random_repeated(100, &mut rng).count(), 100);
        let popped = s.pop_many(20, &mut rng);
        assert_eq!(popped.len(), 20);
        assert_eq!(s.len(), 31);
        assert!(popped.iter().all(|m| !s.contains(m)));
        assert_eq!(s.pop_many(u64::MAX, &mut rng).len(), 31);
        assert!(s.is_empty());
    }

    #[test]
    fn spill_round_trip() {
        for s in [set(&["1", "-9223372036854775808"]), set(&["a", "", "1"])] {
            let mut out = Vec::new();
            s.serialize(&mut out);
            let back = Set::deserialize(&out).unwrap();
            assert_eq!(back, s);
            assert_eq!(
                back.encoding_name(&Limits::default()),
                s.encoding_name(&Limits::default())
            );
        }
    }
}
