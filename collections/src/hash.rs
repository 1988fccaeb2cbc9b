//! Redis hashes: a field → value map over the crate's hash table.

use crate::codec::{self, DecodeError, Reader, tag};
use crate::dict::Dict;
use crate::util::{Rng, format_long_double, parse_i64_strict, parse_long_double, pick_distinct};
use crate::{Error, Limits};

/// Field/value pairs borrowed from a hash.
pub type Pairs<'a> = Vec<(&'a [u8], &'a [u8])>;

/// A Redis hash.
#[derive(Clone, Debug, Default)]
pub struct Hash {
    dict: Dict<Box<[u8]>>,
    /// The most entries ever held (for the one-way listpack → hashtable conversion).
    peak_len: usize,
    /// The longest field or value ever stored.
    peak_elem: usize,
    /// The bytes of all the values (the dict counts the fields), so that `memory_usage` is O(1).
    value_bytes: usize,
}

impl Hash {
    /// An empty hash.
    pub fn new() -> Self {
        Self::default()
    }

    /// HLEN.
    pub fn len(&self) -> usize {
        self.dict.len()
    }

    /// Whether the hash is empty (the key should then be deleted).
    pub fn is_empty(&self) -> bool {
        self.dict.len() == 0
    }

    /// HGET.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        self.dict.get(field).map(|v| &**v)
    }

    /// HEXISTS.
    pub fn contains(&self, field: &[u8]) -> bool {
        self.dict.find(field).is_some()
    }

    /// HSTRLEN.
    pub fn value_len(&self, field: &[u8]) -> usize {
        self.get(field).map_or(0, <[u8]>::len)
    }

    /// HSET of one pair; true when the field is new.
    pub fn insert(&mut self, field: &[u8], value: &[u8]) -> bool {
        self.peak_elem = self.peak_elem.max(field.len()).max(value.len());
        let new = if let Some(v) = self.dict.get_mut(field) {
            self.value_bytes -= v.len();
            *v = Box::from(value);
            false
        } else {
            self.dict.insert(Box::from(field), Box::from(value));
            true
        };
        self.value_bytes += value.len();
        self.peak_len = self.peak_len.max(self.dict.len());
        new
    }

    /// HSETNX; true when the field was set.
    pub fn insert_if_absent(&mut self, field: &[u8], value: &[u8]) -> bool {
        !self.contains(field) && self.insert(field, value)
    }

    /// HDEL of one field; true when it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        let Some((_, v)) = self.dict.remove(field) else {
            return false;
        };
        self.value_bytes -= v.len();
        true
    }

    /// HGETALL order: fields and values. While the hash is small this is insertion order, as
    /// Redis's listpack encoding gives.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&[u8], &[u8])> + ExactSizeIterator {
        self.dict.iter().map(|(k, v)| (k, &**v))
    }

    /// HINCRBY: the new value, or Redis's error when the value is not an integer or the sum
    /// overflows.
    pub fn incr_by(&mut self, field: &[u8], delta: i64) -> Result<i64, Error> {
        let current = match self.get(field) {
            Some(v) => parse_i64_strict(v).ok_or(Error::HashValueNotInteger)?,
            None => 0,
        };
        let new = current.checked_add(delta).ok_or(Error::Overflow)?;
        self.insert(field, new.to_string().as_bytes());
        Ok(new)
    }

    /// HINCRBYFLOAT: the new value as Redis formats (and stores) it.
    pub fn incr_by_float(&mut self, field: &[u8], delta: f64) -> Result<String, Error> {
        let current = match self.get(field) {
            Some(v) => parse_long_double(v).ok_or(Error::HashValueNotFloat)?,
            None => 0.0,
        };
        let new = current + delta;
        if !new.is_finite() {
            return Err(Error::NanOrInfinity);
        }
        let text = format_long_double(new);
        self.insert(field, text.as_bytes());
        Ok(text)
    }

    /// HRANDFIELD without a count.
    pub fn random(&self, rng: &mut Rng) -> Option<(&[u8], &[u8])> {
        self.entry(rng.below(self.len()))
    }

    /// HRANDFIELD with a positive count: up to `count` distinct fields (all, in order, when
    /// `count` is at least the length).
    pub fn random_distinct(&self, count: u64, rng: &mut Rng) -> Vec<(&[u8], &[u8])> {
        let picks = pick_distinct(self.len(), count, rng);
        picks.into_iter().filter_map(|i| self.entry(i)).collect()
    }

    /// HRANDFIELD with a negative count: `count` fields drawn independently (repetition
    /// allowed). Lazy, so that a huge count costs only what the caller takes.
    pub fn random_repeated<'a>(
        &'a self,
        count: u64,
        rng: &'a mut Rng,
    ) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        let n = if self.is_empty() { 0 } else { count };
        (0..n).filter_map(move |_| self.entry(rng.below(self.len())))
    }

    fn entry(&self, i: usize) -> Option<(&[u8], &[u8])> {
        self.dict.at(i).map(|(k, v)| (k, &**v))
    }

    /// HSCAN: the next cursor (0 when done) and the pairs of this step. A listpack-encoded hash
    /// is returned whole with cursor 0, as Redis does.
    pub fn scan(&self, cursor: u64, count: usize, limits: &Limits) -> (u64, Pairs<'_>) {
        if self.encoding_name(limits) == "listpack" {
            return (0, self.iter().collect());
        }
        let mut out = Vec::new();
        let next = self.dict.scan(cursor, count, |k, v| out.push((k, &**v)));
        (next, out)
    }

    /// OBJECT ENCODING: "listpack" until the hash has ever exceeded `hash-max-listpack-entries`
    /// or held a field or value longer than `hash-max-listpack-value`, then "hashtable".
    pub fn encoding_name(&self, limits: &Limits) -> &'static str {
        if self.peak_len > limits.hash_max_listpack_entries
            || self.peak_elem > limits.hash_max_listpack_value
        {
            "hashtable"
        } else {
            "listpack"
        }
    }

    /// An estimate of the bytes held: the table's arrays, fields and values. O(1) (running
    /// sums), so the store can measure a hash after every write.
    pub fn memory_usage(&self) -> usize {
        size_of::<Self>() + self.dict.memory_usage() + self.value_bytes
    }

    /// [`memory_usage`](Self::memory_usage) counted from scratch.
    #[cfg(test)]
    pub(crate) fn memory_usage_slow(&self) -> usize {
        size_of::<Self>()
            + self.dict.memory_usage_slow()
            + self.dict.iter().map(|(_, v)| v.len()).sum::<usize>()
    }

    /// Appends the spill form.
    pub fn serialize(&self, out: &mut Vec<u8>) {
        codec::put_header(out, tag::HASH);
        codec::put_varint(out, self.len() as u64);
        for (k, v) in self.iter() {
            codec::put_bytes(out, k);
            codec::put_bytes(out, v);
        }
    }

    /// Reads the spill form back; the encoding is re-derived from the contents, as Redis does
    /// on load.
    pub fn deserialize(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (mut r, _) = Reader::open(bytes, &[tag::HASH])?;
        let n = r.count(2)?;
        let mut h = Hash::new();
        for _ in 0..n {
            let (k, v) = (r.bytes()?, r.bytes()?);
            if !h.insert(k, v) {
                return Err(DecodeError::Corrupt("duplicate hash field"));
            }
        }
        r.finish()?;
        Ok(h)
    }
}

impl PartialEq for Hash {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_delete_order() {
        let mut h = Hash::new();
        assert!(h.insert(b"a", b"1"));
        assert!(h.insert(b"b", b"2"));
        assert!(!h.insert(b"a", b"3"));
        assert!(!h.insert_if_absent(b"a", b"9"));
        assert!(h.insert_if_absent(b"c", b"4"));
        assert!(h.remove(b"b"));
        assert!(!h.remove(b"b"));
        let all: Vec<_> = h.iter().collect();
        assert_eq!(all, [(&b"a"[..], &b"3"[..]), (b"c", b"4")]);
        assert_eq!(h.value_len(b"a"), 1);
        assert_eq!(h.value_len(b"zz"), 0);
    }

    #[test]
    fn incr_errors_match_redis() {
        let mut h = Hash::new();
        assert_eq!(h.incr_by(b"n", 5), Ok(5));
        assert_eq!(h.incr_by(b"n", i64::MAX), Err(Error::Overflow));
        assert_eq!(h.incr_by(b"n", -5), Ok(0));
        assert_eq!(h.incr_by(b"n", i64::MIN), Ok(i64::MIN));
        assert_eq!(h.incr_by(b"n", -1), Err(Error::Overflow));
        h.insert(b"s", b"abc");
        assert_eq!(h.incr_by(b"s", 1), Err(Error::HashValueNotInteger));
        assert_eq!(h.incr_by_float(b"s", 1.0), Err(Error::HashValueNotFloat));
        h.insert(b"f", b"10.5");
        assert_eq!(h.incr_by_float(b"f", 0.1).as_deref(), Ok("10.6"));
        assert_eq!(h.get(b"f"), Some(&b"10.6"[..]));
        assert_eq!(
            h.incr_by_float(b"f", f64::INFINITY),
            Err(Error::NanOrInfinity)
        );
        assert_eq!(h.incr_by_float(b"g", 3.0e3).as_deref(), Ok("3000"));
        assert_eq!(h.incr_by(b"f", 1), Err(Error::HashValueNotInteger));
    }

    #[test]
    fn random_fields() {
        let mut rng = Rng::new(3);
        let mut h = Hash::new();
        assert!(h.random(&mut rng).is_none());
        assert_eq!(h.random_repeated(u64::MAX, &mut rng).count(), 0);
        for i in 0..100u32 {
            h.insert(i.to_string().as_bytes(), b"v");
        }
        assert_eq!(h.random_distinct(u64::MAX, &mut rng).len(), 100);
        let some = h.random_distinct(10, &mut rng);
        let mut fields: Vec<_> = some.iter().map(|p| p.0).collect();
        fields.dedup();
        assert_eq!(fields.len(), 10);
        assert_eq!(h.random_repeated(1000, &mut rng).count(), 1000);
    }

    #[test]
    fn encodings_and_scan() {
        let limits = Limits::default();
        let mut h = Hash::new();
        h.insert(b"f", b"v");
        assert_eq!(h.encoding_name(&limits), "listpack");
        assert_eq!(h.scan(0, 10, &limits).0, 0);
        h.insert(b"long", &[b'x'; 65]);
        assert_eq!(h.encoding_name(&limits), "hashtable");
        h.remove(b"long");
        assert_eq!(h.encoding_name(&limits), "hashtable");
        let mut h = Hash::new();
        for i in 0..512u32 {
            h.insert(i.to_string().as_bytes(), b"v");
        }
        assert_eq!(h.encoding_name(&limits), "listpack");
        h.insert(b"512", b"v");
        assert_eq!(h.encoding_name(&limits), "hashtable");
        let (mut cursor, mut seen) = (0, 0);
        loop {
            let (next, items) = h.scan(cursor, 10, &limits);
            seen += items.len();
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen, 513);
    }

    #[test]
    fn spill_round_trip() {
        let mut h = Hash::new();
        h.insert(b"", b"");
        h.insert(b"k\0", b"\xff");
        let mut out = Vec::new();
        h.serialize(&mut out);
        assert_eq!(Hash::deserialize(&out), Ok(h));
        assert!(Hash::deserialize(&out[..out.len() - 1]).is_err());
    }
}
