//! Redis lists: a ring buffer of boxed elements. Push and pop at both ends are O(1), and so is
//! access by index; LINSERT, LREM and LSET-by-value are O(N) as Redis documents.

use std::collections::VecDeque;

use crate::Error;
use crate::codec::{self, DecodeError, Reader, tag};
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
    items: VecDeque<Box<[u8]>>,
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
        let value = Box::from(value);
        match end {
            End::Left => self.items.push_front(value),
            End::Right => self.items.push_back(value),
        }
    }

    /// Pushes an element the caller already owns (LMOVE moves the popped box as is).
    pub fn push_boxed(&mut self, end: End, value: Box<[u8]>) {
        match end {
            End::Left => self.items.push_front(value),
            End::Right => self.items.push_back(value),
        }
    }

    /// LPOP / RPOP of one element.
    pub fn pop(&mut self, end: End) -> Option<Box<[u8]>> {
        match end {
            End::Left => self.items.pop_front(),
            End::Right => self.items.pop_back(),
        }
    }

    /// LPOP / RPOP with a count: up to `count` elements, in pop order.
    pub fn pop_many(&mut self, end: End, count: u64) -> Vec<Box<[u8]>> {
        let n = usize::try_from(count)
            .unwrap_or(usize::MAX)
            .min(self.items.len());
        match end {
            End::Left => self.items.drain(..n).collect(),
            End::Right => {
                let start = self.items.len() - n;
                self.items.drain(start..).rev().collect()
            }
        }
    }

    /// LMOVE / RPOPLPUSH within one list (source and destination are the same key): pops from
    /// `from` and pushes onto `to`, returning the element moved.
    pub fn rotate(&mut self, from: End, to: End) -> Option<&[u8]> {
        let v = self.pop(from)?;
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
        normalize_index(index, self.items.len()).map(|i| &*self.items[i])
    }

    /// LSET.
    pub fn set(&mut self, index: i64, value: &[u8]) -> Result<(), Error> {
        let i = normalize_index(index, self.items.len()).ok_or(Error::IndexOutOfRange)?;
        self.items[i] = Box::from(value);
        Ok(())
    }

    /// LRANGE: O(S+N) where S is the distance of `start` from the nearer end.
    pub fn range(&self, start: i64, end: i64) -> impl ExactSizeIterator<Item = &[u8]> {
        let (a, b) = match normalize_range(start, end, self.items.len()) {
            Some((a, b)) => (a, b + 1),
            None => (0, 0),
        };
        self.items.range(a..b).map(|v| &**v)
    }

    /// All elements, head to tail.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + ExactSizeIterator {
        self.items.iter().map(|v| &**v)
    }

    /// LTRIM: keeps only `start..=end`.
    pub fn trim(&mut self, start: i64, end: i64) {
        match normalize_range(start, end, self.items.len()) {
            None => self.items.clear(),
            Some((a, b)) => {
                self.items.truncate(b + 1);
                self.items.drain(..a);
            }
        }
    }

    /// LINSERT BEFORE|AFTER: inserts next to the first `pivot` from the head. Returns the new
    /// length, or `None` when the pivot is absent (Redis replies -1).
    pub fn insert(&mut self, before: bool, pivot: &[u8], value: &[u8]) -> Option<usize> {
        let at = self.items.iter().position(|v| **v == *pivot)?;
        let at = if before { at } else { at + 1 };
        self.items.insert(at, Box::from(value));
        Some(self.items.len())
    }

    /// LREM: removes up to |count| occurrences of `value`, from the head when `count > 0`, from
    /// the tail when `count < 0`, all when 0. Returns how many were removed.
    pub fn remove(&mut self, count: i64, value: &[u8]) -> usize {
        let limit = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
        let total = self.items.iter().filter(|v| ***v == *value).count();
        let to_remove = if count == 0 { total } else { total.min(limit) };
        // From the tail, the first `total - to_remove` matches (from the head) survive.
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
            if *self.items[index] != *value {
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

    /// An estimate of the bytes held.
    pub fn memory_usage(&self) -> usize {
        size_of::<Self>()
            + self.items.capacity() * size_of::<Box<[u8]>>()
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
        for v in &self.items {
            codec::put_bytes(out, v);
        }
    }

    /// Reads the spill form back.
    pub fn deserialize(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (mut r, _) = Reader::open(bytes, &[tag::LIST])?;
        let n = r.count(1)?;
        let mut items = VecDeque::with_capacity(n);
        for _ in 0..n {
            items.push_back(Box::from(r.bytes()?));
        }
        r.finish()?;
        Ok(Self { items })
    }
}

impl<'a> FromIterator<&'a [u8]> for List {
    fn from_iter<T: IntoIterator<Item = &'a [u8]>>(iter: T) -> Self {
        Self {
            items: iter.into_iter().map(Box::from).collect(),
        }
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
