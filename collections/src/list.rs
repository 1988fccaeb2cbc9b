//! Redis lists: a chunked deque of boxed elements (like Redis's quicklist nodes, see
//! [`Deque`]). Push and pop at both ends are O(1) with no O(N) growth step, and so is access by
//! index; LINSERT, LREM and LSET-by-value are O(N) as Redis documents.

use crate::Error;
use crate::codec::{self, DecodeError, Reader, tag};
use crate::deque::Deque;
use crate::util::{normalize_index, normalize_range};

/// One end of a list: `LEFT` is the head, `RIGHT` the tail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The head (index 0): LPUSH, LPOP.
    Left,
    /// The tail (index -1): RPUSH, RPOP.
    Right,
}

/// A Redis list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct List {
    items: Deque<Box<[u8]>>,
    /// The bytes of all the elements, so that `memory_usage` is O(1).
    bytes: usize,
}

impl List {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// LLEN.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the list is empty (the key should then be deleted).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// LPUSH / RPUSH of one element.
    pub fn push(&mut self, end: End, value: &[u8]) {
        self.push_boxed(end, Box::from(value));
    }

    /// Pushes an element the caller already owns (LMOVE moves the popped box as is).
    pub fn push_boxed(&mut self, end: End, value: Box<[u8]>) {
        self.bytes += value.len();
        match end {
            End::Left => self.items.push_front(value),
            End::Right => self.items.push_back(value),
        }
    }

    /// LPOP / RPOP of one element.
    pub fn pop(&mut self, end: End) -> Option<Box<[u8]>> {
        let v = match end {
            End::Left => self.items.pop_front(),
            End::Right => self.items.pop_back(),
        }?;
        self.bytes -= v.len();
        Some(v)
    }

    /// LPOP / RPOP with a count: up to `count` elements, in pop order.
    pub fn pop_many(&mut self, end: End, count: u64) -> Vec<Box<[u8]>> {
        let n = usize::try_from(count)
            .unwrap_or(usize::MAX)
            .min(self.items.len());
        (0..n).filter_map(|_| self.pop(end)).collect()
    }

    /// LMOVE / RPOPLPUSH within one list (source and destination are the same key): pops from
    /// `from` and pushes onto `to`, returning the element moved.
    pub fn rotate(&mut self, from: End, to: End) -> Option<&[u8]> {
        let v = self.pop(from)?;
        self.bytes += v.len();
        match to {
            End::Left => {
                self.items.push_front(v);
                self.items.front().map(|v| &**v)
            }
            End::Right => {
                self.items.push_back(v);
                self.items.back().map(|v| &**v)
            }
        }
    }

    /// LMOVE between two lists: pops from `self` at `from` and pushes onto `dst` at `to`.
    pub fn move_to<'d>(&mut self, from: End, dst: &'d mut List, to: End) -> Option<&'d [u8]> {
        let v = self.pop(from)?;
        dst.bytes += v.len();
        match to {
            End::Left => {
                dst.items.push_front(v);
                dst.items.front().map(|v| &**v)
            }
            End::Right => {
                dst.items.push_back(v);
                dst.items.back().map(|v| &**v)
            }
        }
    }

    /// LINDEX (negative counts from the tail).
    pub fn get(&self, index: i64) -> Option<&[u8]> {
        normalize_index(index, self.items.len())
            .and_then(|i| self.items.get(i))
            .map(|v| &**v)
    }

    /// LSET.
    pub fn set(&mut self, index: i64, value: &[u8]) -> Result<(), Error> {
        let slot = normalize_index(index, self.items.len())
            .and_then(|i| self.items.get_mut(i))
            .ok_or(Error::IndexOutOfRange)?;
        self.bytes = self.bytes - slot.len() + value.len();
        *slot = Box::from(value);
        Ok(())
    }

    /// LRANGE: O(S+N) where S is the distance of `start` from the nearer end.
    pub fn range(&self, start: i64, end: i64) -> impl ExactSizeIterator<Item = &[u8]> {
        let (a, b) = match normalize_range(start, end, self.items.len()) {
            Some((a, b)) => (a, b + 1),
            None => (0, 0),
        };
        self.items.range(a, b).map(|v| &**v)
    }

    /// All elements, head to tail.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + ExactSizeIterator {
        self.items.iter().map(|v| &**v)
    }

    /// LTRIM: keeps only `start..=end`.
    pub fn trim(&mut self, start: i64, end: i64) {
        match normalize_range(start, end, self.items.len()) {
            None => *self = List::default(),
            Some((a, b)) => {
                // O(elements removed), as Redis documents for LTRIM.
                while self.items.len() > b + 1 {
                    self.pop(End::Right);
                }
                for _ in 0..a {
                    self.pop(End::Left);
                }
            }
        }
    }

    /// LINSERT BEFORE|AFTER: inserts next to the first `pivot` from the head. Returns the new
    /// length, or `None` when the pivot is absent (Redis replies -1).
    pub fn insert(&mut self, before: bool, pivot: &[u8], value: &[u8]) -> Option<usize> {
        let at = self.items.iter().position(|v| **v == *pivot)?;
        let at = if before { at } else { at + 1 };
        self.items.insert(at, Box::from(value));
        self.bytes += value.len();
        Some(self.items.len())
    }

    /// LREM: removes up to |count| occurrences of `value`, from the head when `count > 0`, from
    /// the tail when `count < 0`, all when 0. Returns how many were removed.
    pub fn remove(&mut self, count: i64, value: &[u8]) -> usize {
        let limit = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
        let total = self.items.iter().filter(|v| ***v == *value).count();
        let to_remove = if count == 0 { total } else { total.min(limit) };
        // From the tail, the first `total - to_remove` matches (from the head) survive.
        if to_remove == 0 {
            return 0;
        }
        let mut keep_first = if count < 0 { total - to_remove } else { 0 };
        let mut removed = 0;
        self.items.retain(|v| {
            if **v != *value || removed == to_remove {
                return true;
            }
            if keep_first > 0 {
                keep_first -= 1;
                return true;
            }
            removed += 1;
            false
        });
        self.bytes -= removed * value.len();
        removed
    }

    /// LPOS, exactly as Redis's `lposCommand`: `rank` picks the first match to report (negative
    /// searches from the tail), `count` how many to report (0 = all), `maxlen` how many elements
    /// to compare at most (0 = all). Indexes are always from the head.
    pub fn positions(
        &self,
        value: &[u8],
        rank: i64,
        count: u64,
        maxlen: u64,
    ) -> Result<Vec<usize>, Error> {
        if rank == 0 {
            return Err(Error::RankZero);
        }
        let skip = rank.unsigned_abs() - 1;
        let len = self.items.len();
        let maxlen = if maxlen == 0 { u64::MAX } else { maxlen };
        let mut out = Vec::new();
        let mut matches: u64 = 0;
        let scanned = usize::try_from(maxlen).unwrap_or(usize::MAX).min(len);
        for step in 0..scanned {
            let index = if rank > 0 { step } else { len - 1 - step };
            if self.items.get(index).is_none_or(|v| **v != *value) {
                continue;
            }
            matches += 1;
            if matches > skip {
                out.push(index);
                if count != 0 && out.len() as u64 >= count {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// An estimate of the bytes held: the chunks' slots, the chunk table and the elements.
    /// O(1) (capacities and a running sum), so the store can measure a list after every write.
    pub fn memory_usage(&self) -> usize {
        let (slots, table) = self.items.capacity();
        size_of::<Self>() + slots * size_of::<Box<[u8]>>() + table + self.bytes
    }

    /// [`memory_usage`](Self::memory_usage) counted from scratch.
    #[cfg(test)]
    pub(crate) fn memory_usage_slow(&self) -> usize {
        let (slots, table) = self.items.capacity_slow();
        size_of::<Self>()
            + slots * size_of::<Box<[u8]>>()
            + table
            + self.items.iter().map(|v| v.len()).sum::<usize>()
    }

    /// OBJECT ENCODING: Redis 7.0 lists are always quicklists (listpack lists came in 7.2).
    pub fn encoding_name(&self, _limits: &crate::Limits) -> &'static str {
        "quicklist"
    }

    /// Appends the spill form.
    pub fn serialize(&self, out: &mut Vec<u8>) {
        codec::put_header(out, tag::LIST);
        codec::put_varint(out, self.items.len() as u64);
        for v in self.items.iter() {
            codec::put_bytes(out, v);
        }
    }

    /// Reads the spill form back.
    pub fn deserialize(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (mut r, _) = Reader::open(bytes, &[tag::LIST])?;
        let n = r.count(1)?;
        let mut list = List::new();
        for _ in 0..n {
            list.push(End::Right, r.bytes()?);
        }
        r.finish()?;
        Ok(list)
    }
}

impl<'a> FromIterator<&'a [u8]> for List {
    fn from_iter<T: IntoIterator<Item = &'a [u8]>>(iter: T) -> Self {
        let mut list = List::new();
        for v in iter {
            list.push(End::Right, v);
        }
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> List {
        items.iter().map(|s| s.as_bytes()).collect()
    }

    fn strs<'a>(it: impl Iterator<Item = &'a [u8]>) -> Vec<String> {
        it.map(|v| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    #[test]
    fn lpos_like_redis() {
        // The examples of the LPOS documentation.
        let l = list(&["a", "b", "c", "1", "2", "3", "c", "c"]);
        assert_eq!(l.positions(b"c", 1, 1, 0), Ok(vec![2]));
        assert_eq!(l.positions(b"c", 2, 1, 0), Ok(vec![6]));
        assert_eq!(l.positions(b"c", -1, 1, 0), Ok(vec![7]));
        assert_eq!(l.positions(b"c", 1, 2, 0), Ok(vec![2, 6]));
        assert_eq!(l.positions(b"c", -1, 0, 0), Ok(vec![7, 6, 2]));
        assert_eq!(l.positions(b"c", 1, 0, 2), Ok(vec![]));
        assert_eq!(l.positions(b"c", -2, 0, 2), Ok(vec![6]));
        assert_eq!(l.positions(b"c", i64::MAX, 0, 0), Ok(vec![]));
        assert_eq!(l.positions(b"c", i64::MIN, 1, u64::MAX), Ok(vec![]));
        assert_eq!(l.positions(b"c", 0, 0, 0), Err(Error::RankZero));
    }

    #[test]
    fn lrem_directions() {
        let mut l = list(&["a", "x", "a", "y", "a"]);
        assert_eq!(l.remove(-2, b"a"), 2);
        assert_eq!(strs(l.iter()), ["a", "x", "y"]);
        let mut l = list(&["a", "x", "a", "y", "a"]);
        assert_eq!(l.remove(1, b"a"), 1);
        assert_eq!(strs(l.iter()), ["x", "a", "y", "a"]);
        assert_eq!(l.remove(0, b"a"), 2);
        assert_eq!(l.remove(i64::MIN, b"x"), 1);
        assert_eq!(strs(l.iter()), ["y"]);
    }

    #[test]
    fn ranges_trim_insert_set() {
        let mut l = list(&["a", "b", "c", "d"]);
        assert_eq!(strs(l.range(1, -2)), ["b", "c"]);
        assert_eq!(l.range(i64::MIN, i64::MAX).len(), 4);
        assert_eq!(l.range(3, 1).len(), 0);
        assert_eq!(l.insert(true, b"c", b"X"), Some(5));
        assert_eq!(l.insert(false, b"d", b"Y"), Some(6));
        assert_eq!(l.insert(false, b"zz", b"Y"), None);
        assert_eq!(strs(l.iter()), ["a", "b", "X", "c", "d", "Y"]);
        assert_eq!(l.set(-1, b"Z"), Ok(()));
        assert_eq!(l.set(6, b"Z"), Err(Error::IndexOutOfRange));
        assert_eq!(l.set(i64::MIN, b"Z"), Err(Error::IndexOutOfRange));
        assert_eq!(l.get(-6), Some(&b"a"[..]));
        assert_eq!(l.get(i64::MAX), None);
        l.trim(1, -2);
        assert_eq!(strs(l.iter()), ["b", "X", "c", "d"]);
        l.trim(i64::MIN, i64::MAX);
        assert_eq!(l.len(), 4);
        l.trim(5, 1);
        assert!(l.is_empty());
    }

    #[test]
    fn pops_and_moves() {
        let mut l = list(&["a", "b", "c"]);
        assert_eq!(
            strs(l.pop_many(End::Right, 2).iter().map(|v| &**v)),
            ["c", "b"]
        );
        assert_eq!(l.pop_many(End::Left, u64::MAX).len(), 1);
        assert!(l.pop(End::Left).is_none());
        let mut l = list(&["a", "b", "c"]);
        assert_eq!(l.rotate(End::Right, End::Left), Some(&b"c"[..]));
        assert_eq!(strs(l.iter()), ["c", "a", "b"]);
        let mut d = List::new();
        assert_eq!(l.move_to(End::Left, &mut d, End::Right), Some(&b"c"[..]));
        assert_eq!(d.len(), 1);
        d.push_boxed(End::Left, Box::from(&b"z"[..]));
        assert_eq!(strs(d.iter()), ["z", "c"]);
        assert_eq!(l.encoding_name(&crate::Limits::default()), "quicklist");
    }

    #[test]
    fn spill_round_trip() {
        let l = list(&["", "a", "binary\0\u{ff}"]);
        let mut out = Vec::new();
        l.serialize(&mut out);
        assert_eq!(List::deserialize(&out), Ok(l));
        assert!(List::deserialize(&out[..out.len() - 1]).is_err());
    }
}

#[cfg(test)]
mod model_tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    #[derive(Clone, Debug)]
    enum Op {
        Push(bool, u8),
        Pop(bool),
        PopMany(bool, u8),
        Rotate(bool, bool),
        Set(i8, u8),
        Trim(i16, i16),
        Insert(bool, u8, u8),
        Remove(i8, u8),
        PushMany(u16),
    }

    /// Elements of different lengths, so that the running byte count is really tested.
    fn el(v: u8) -> Vec<u8> {
        vec![v; 1 + usize::from(v)]
    }

    fn end(left: bool) -> End {
        if left { End::Left } else { End::Right }
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (any::<bool>(), 0..6u8).prop_map(|(l, v)| Op::Push(l, v)),
            3 => any::<bool>().prop_map(Op::Pop),
            1 => (any::<bool>(), any::<u8>()).prop_map(|(l, n)| Op::PopMany(l, n)),
            1 => (any::<bool>(), any::<bool>()).prop_map(|(a, b)| Op::Rotate(a, b)),
            1 => (any::<i8>(), 0..6u8).prop_map(|(i, v)| Op::Set(i, v)),
            1 => (any::<i16>(), any::<i16>()).prop_map(|(a, b)| Op::Trim(a, b)),
            1 => (any::<bool>(), 0..6u8, 0..6u8).prop_map(|(b, p, v)| Op::Insert(b, p, v)),
            1 => (any::<i8>(), 0..6u8).prop_map(|(c, v)| Op::Remove(c, v)),
            1 => (0..300u16).prop_map(Op::PushMany),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// List against a `VecDeque` model over random command sequences.
        #[test]
        fn matches_vecdeque(ops in prop::collection::vec(op(), 1..120)) {
            let mut l = List::new();
            let mut m: VecDeque<Vec<u8>> = VecDeque::new();
            for op in ops {
                match op {
                    Op::Push(left, v) => {
                        l.push(end(left), &el(v));
                        if left { m.push_front(el(v)) } else { m.push_back(el(v)) }
                    }
                    Op::Pop(left) => {
                        let want = if left { m.pop_front() } else { m.pop_back() };
                        prop_assert_eq!(l.pop(end(left)).map(Vec::from), want);
                    }
                    Op::PopMany(left, n) => {
                        let got: Vec<Vec<u8>> = l.pop_many(end(left), n.into()).into_iter().map(Vec::from).collect();
                        let want: Vec<Vec<u8>> = (0..n).filter_map(|_| if left { m.pop_front() } else { m.pop_back() }).collect();
                        prop_assert_eq!(got, want);
                    }
                    Op::Rotate(from, to) => {
                        let got = l.rotate(end(from), end(to)).map(<[u8]>::to_vec);
                        let v = if from { m.pop_front() } else { m.pop_back() };
                        if let Some(v) = v.clone() {
                            if to { m.push_front(v) } else { m.push_back(v) }
                        }
                        prop_assert_eq!(got, v);
                    }
                    Op::Set(i, v) => {
                        let at = normalize_index(i.into(), m.len());
                        prop_assert_eq!(l.set(i.into(), &el(v)).is_ok(), at.is_some());
                        if let Some(at) = at { m[at] = el(v); }
                        prop_assert_eq!(l.get(i.into()).map(<[u8]>::to_vec), at.map(|a| m[a].clone()));
                    }
                    Op::Trim(a, b) => {
                        let want: VecDeque<Vec<u8>> = match normalize_range(a.into(), b.into(), m.len()) {
                            None => VecDeque::new(),
                            Some((a, b)) => m.range(a..=b).cloned().collect(),
                        };
                        prop_assert!(l.range(a.into(), b.into()).eq(want.iter().map(|v| &v[..])));
                        l.trim(a.into(), b.into());
                        m = want;
                    }
                    Op::Insert(before, p, v) => {
                        let at = m.iter().position(|x| *x == el(p));
                        prop_assert_eq!(l.insert(before, &el(p), &el(v)), at.map(|_| m.len() + 1));
                        if let Some(at) = at { m.insert(if before { at } else { at + 1 }, el(v)); }
                    }
                    Op::Remove(count, v) => {
                        let mut idx: Vec<usize> = (0..m.len()).filter(|&i| m[i] == el(v)).collect();
                        if count < 0 { idx.reverse(); }
                        if count != 0 { idx.truncate(count.unsigned_abs().into()); }
                        idx.sort_unstable();
                        for &i in idx.iter().rev() { m.remove(i); }
                        prop_assert_eq!(l.remove(count.into(), &el(v)), idx.len());
                    }
                    Op::PushMany(n) => {
                        for i in 0..n {
                            l.push(End::Right, &el((i % 6) as u8));
                            m.push_back(el((i % 6) as u8));
                        }
                    }
                }
                prop_assert_eq!(l.len(), m.len());
                prop_assert_eq!(l.memory_usage(), l.memory_usage_slow());
            }
            let copy = l.clone();
            prop_assert_eq!(copy.memory_usage(), copy.memory_usage_slow());
            prop_assert!(l.iter().eq(m.iter().map(|v| &v[..])));
            let mut out = Vec::new();
            l.serialize(&mut out);
            prop_assert_eq!(List::deserialize(&out), Ok(l));
        }
    }
}
