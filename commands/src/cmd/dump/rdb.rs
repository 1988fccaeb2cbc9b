//! Redis's RDB value encoding (`src/rdb.c`, RDB version 10 as Redis 7.0 writes it): what DUMP
//! produces and RESTORE reads.
//!
//! A payload is `[type][value][version: u16 LE][CRC-64 LE]`. Ferrite writes the encoding Redis
//! would use for a value of the same contents and encoding (listpack hashes and sorted sets,
//! intsets, a quicklist of listpacks for lists), so DUMP output matches Redis byte for byte
//! where Redis's own layout is deterministic. Tables (big hashes and sets) come out in Ferrite's
//! iteration order, which is as valid as Redis's and as arbitrary. Streams are in
//! `stream_rdb.rs`.

use ferrite_collections::{End, Hash, Limits, List, Set, SortedSet, ZAddFlags};

use super::crc64::crc64;
use super::lzf;
use super::packed::{
    Elem, ListpackWriter, intset_blob, intset_values, listpack_elements, ziplist_elements,
};
use crate::args::parse_i64;
use crate::objects::Collection;

/// The RDB version Redis 7.0 writes; newer payloads are refused.
pub const RDB_VERSION: u16 = 10;

/// Object types (`RDB_TYPE_*`).
pub(crate) mod ty {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const STREAM_LISTPACKS_2: u8 = 19;
    // Types an RDB file may hold that Ferrite has no value for.
    pub const MODULE_PRE_GA: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;

    /// Whether [`Reader::value`](super::Reader::value) decodes type `t`.
    pub fn known(t: u8) -> bool {
        matches!(t, 0..=5 | 10..=19)
    }
}

/// `QUICKLIST_NODE_CONTAINER_PLAIN` / `_PACKED`.
const NODE_PLAIN: u64 = 1;
const NODE_PACKED: u64 = 2;
/// `list-max-listpack-size -2`: a quicklist node holds at most 8 KiB of listpack.
const QUICKLIST_NODE_BYTES: usize = 8192;
/// `SIZE_ESTIMATE_OVERHEAD` in quicklist.c's insert check.
const SIZE_ESTIMATE_OVERHEAD: usize = 8;

/// A value decoded from a payload.
pub enum Decoded {
    /// A string.
    String(Vec<u8>),
    /// A collection.
    Object(Collection),
}

// ---------------------------------------------------------------------------------------------
// Writing.

/// `rdbSaveLen`.
pub(crate) fn put_len(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.push(0x40 | (len >> 8) as u8);
        out.push(len as u8);
    } else if let Ok(l) = u32::try_from(len) {
        out.push(0x80);
        out.extend_from_slice(&l.to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// `rdbSaveRawString`: small integers as 8/16/32-bit encodings, strings over 20 bytes LZF
/// compressed when that saves at least 4 bytes, else length and bytes.
/// `rdbcompression`: strings over 20 bytes are stored LZF-compressed when that saves space (in
/// RDB files and DUMP payloads alike, as Redis's `rdbSaveRawString`).
static COMPRESS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Applies `rdbcompression`.
pub fn set_compression(on: bool) {
    COMPRESS.store(on, std::sync::atomic::Ordering::Relaxed);
}

pub(crate) fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() <= 11
        && let Some(v) = parse_i64(s)
    {
        if let Ok(v) = i8::try_from(v) {
            out.push(0xc0);
            out.extend_from_slice(&v.to_le_bytes());
            return;
        } else if let Ok(v) = i16::try_from(v) {
            out.push(0xc1);
            out.extend_from_slice(&v.to_le_bytes());
            return;
        } else if let Ok(v) = i32::try_from(v) {
            out.push(0xc2);
            out.extend_from_slice(&v.to_le_bytes());
            return;
        }
    }
    if s.len() > 20
        && COMPRESS.load(std::sync::atomic::Ordering::Relaxed)
        && let Some(c) = lzf::compress(s, s.len() - 4)
    {
        out.push(0xc3);
        put_len(out, c.len() as u64);
        put_len(out, s.len() as u64);
        out.extend_from_slice(&c);
        return;
    }
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// Redis's `double2ll`: an integral double within ±`LLONG_MAX/2`, as a listpack stores sorted
/// set scores as integers.
fn double2ll(d: f64) -> Option<i64> {
    let lim = (i64::MAX / 2) as f64;
    if !(-lim..=lim).contains(&d) {
        return None;
    }
    let ll = d as i64;
    (ll as f64 == d).then_some(ll)
}

/// A score as `zzlInsertAt` writes it into a listpack: an integer when it is one, else `%.17g`.
fn listpack_score(score: f64) -> Vec<u8> {
    match double2ll(score) {
        Some(i) => i.to_string().into_bytes(),
        None => crate::resp::reply::format_double_g17(score).into_bytes(),
    }
}

/// The quicklist of a list: listpack nodes filled as RPUSH fills them.
/// The listpacks of the quicklist Redis would hold `list` in (its nodes, as RDB saves them).
pub(crate) fn quicklist_nodes(list: &List) -> Vec<Vec<u8>> {
    let mut nodes: Vec<Vec<u8>> = Vec::new();
    let mut cur = ListpackWriter::new();
    for e in list.iter() {
        if !cur.is_empty() && cur.bytes() + e.len() + SIZE_ESTIMATE_OVERHEAD > QUICKLIST_NODE_BYTES
        {
            nodes.push(std::mem::take(&mut cur).finish());
        }
        cur.push(e);
    }
    if !cur.is_empty() {
        nodes.push(cur.finish());
    }
    nodes
}

fn put_quicklist(out: &mut Vec<u8>, list: &List) {
    let nodes = quicklist_nodes(list);
    put_len(out, nodes.len() as u64);
    for n in &nodes {
        put_len(out, NODE_PACKED);
        put_string(out, n);
    }
}

/// The type byte, then `key` (an RDB file's key-value pair; none in a DUMP payload), then the
/// value of a string.
pub(crate) fn encode_string(out: &mut Vec<u8>, key: Option<&[u8]>, s: &[u8]) {
    out.push(ty::STRING);
    if let Some(k) = key {
        put_string(out, k);
    }
    put_string(out, s);
}

/// The type byte, then `key` if any, then the value of a collection, in the encoding Redis
/// would have chosen.
pub(crate) fn encode_collection(out: &mut Vec<u8>, key: Option<&[u8]>, c: &Collection) {
    let limits = Limits::current();
    let typed = |out: &mut Vec<u8>, t: u8| {
        out.push(t);
        if let Some(k) = key {
            put_string(out, k);
        }
    };
    match c {
        Collection::List(l) => {
            typed(out, ty::LIST_QUICKLIST_2);
            put_quicklist(out, l);
        }
        Collection::Hash(h) if h.encoding_name(&limits) == "listpack" => {
            typed(out, ty::HASH_LISTPACK);
            let mut w = ListpackWriter::new();
            for (f, v) in h.iter() {
                w.push(f);
                w.push(v);
            }
            put_string(out, &w.finish());
        }
        Collection::Hash(h) => {
            typed(out, ty::HASH);
            put_len(out, h.len() as u64);
            for (f, v) in h.iter() {
                put_string(out, f);
                put_string(out, v);
            }
        }
        Collection::Set(s) if s.encoding_name(&limits) == "intset" => {
            typed(out, ty::SET_INTSET);
            let values: Vec<i64> = s.iter().filter_map(|m| parse_i64(&m)).collect();
            put_string(out, &intset_blob(&values));
        }
        Collection::Set(s) => {
            typed(out, ty::SET);
            put_len(out, s.len() as u64);
            for m in s.iter() {
                put_string(out, &m);
            }
        }
        Collection::ZSet(z) if z.encoding_name(&limits) == "listpack" => {
            typed(out, ty::ZSET_LISTPACK);
            let mut w = ListpackWriter::new();
            for (m, score) in z.iter() {
                w.push(m);
                w.push(&listpack_score(score));
            }
            put_string(out, &w.finish());
        }
        Collection::ZSet(z) => {
            // Greatest first, as Redis saves skiplists (so loading appends at the head).
            typed(out, ty::ZSET_2);
            put_len(out, z.len() as u64);
            for (m, score) in z.iter().rev() {
                put_string(out, m);
                out.extend_from_slice(&score.to_le_bytes());
            }
        }
        Collection::Stream(s) => {
            typed(out, ty::STREAM_LISTPACKS_2);
            super::stream_rdb::put_stream(out, s);
        }
    }
}

/// Appends the version and checksum trailer.
pub(crate) fn finish_payload(mut out: Vec<u8>) -> Vec<u8> {
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// DUMP of a string value.
pub fn dump_string(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 16);
    encode_string(&mut out, None, s);
    finish_payload(out)
}

/// DUMP of a collection.
pub fn dump_collection(c: &Collection) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    encode_collection(&mut out, None, c);
    finish_payload(out)
}

// ---------------------------------------------------------------------------------------------
// Reading.

/// Redis's `verifyDumpPayload`: at least the trailer, a version Redis 7.0 can read, and a
/// matching checksum.
pub fn verify(payload: &[u8]) -> bool {
    if payload.len() < 10 {
        return false;
    }
    let footer = &payload[payload.len() - 10..];
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    if version > RDB_VERSION {
        return false;
    }
    crc64(0, &payload[..payload.len() - 8]).to_le_bytes() == footer[2..10]
}

/// Any malformation: RESTORE answers "Bad data format".
#[derive(Debug, PartialEq, Eq)]
pub struct BadFormat;

type R<T> = Result<T, BadFormat>;

/// A cursor over a payload or a whole RDB file.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// A length, or the special string encoding it announces.
enum Len {
    Plain(u64),
    Encoded(u8),
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn byte(&mut self) -> R<u8> {
        let b = *self.buf.get(self.pos).ok_or(BadFormat)?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn take(&mut self, n: u64) -> R<&'a [u8]> {
        let n = usize::try_from(n).map_err(|_| BadFormat)?;
        let end = self.pos.checked_add(n).ok_or(BadFormat)?;
        let s = self.buf.get(self.pos..end).ok_or(BadFormat)?;
        self.pos = end;
        Ok(s)
    }

    /// `rdbLoadLen` with its `isencoded` flag.
    fn len_or_enc(&mut self) -> R<Len> {
        let b = self.byte()?;
        Ok(match b >> 6 {
            0 => Len::Plain(u64::from(b & 0x3f)),
            1 => Len::Plain((u64::from(b & 0x3f) << 8) | u64::from(self.byte()?)),
            2 => match b {
                0x80 => {
                    let s = self.take(4)?;
                    Len::Plain(u64::from(u32::from_be_bytes([s[0], s[1], s[2], s[3]])))
                }
                0x81 => {
                    let s = self.take(8)?;
                    Len::Plain(u64::from_be_bytes(s.try_into().map_err(|_| BadFormat)?))
                }
                _ => return Err(BadFormat),
            },
            _ => Len::Encoded(b & 0x3f),
        })
    }

    pub(crate) fn len(&mut self) -> R<u64> {
        match self.len_or_enc()? {
            Len::Plain(n) => Ok(n),
            Len::Encoded(_) => Err(BadFormat),
        }
    }

    /// A collection's element count, bounded by the bytes left (each element takes at least
    /// one), so a forged count cannot make us reserve memory.
    fn count(&mut self) -> R<usize> {
        let n = self.len()?;
        let left = (self.buf.len() - self.pos) as u64;
        if n > left {
            return Err(BadFormat);
        }
        Ok(n as usize)
    }

    /// `rdbGenericLoadStringObject`.
    pub(crate) fn string(&mut self) -> R<Vec<u8>> {
        match self.len_or_enc()? {
            Len::Plain(n) => Ok(self.take(n)?.to_vec()),
            Len::Encoded(0) => Ok((self.byte()? as i8).to_string().into_bytes()),
            Len::Encoded(1) => {
                let s = self.take(2)?;
                Ok(i16::from_le_bytes([s[0], s[1]]).to_string().into_bytes())
            }
            Len::Encoded(2) => {
                let s = self.take(4)?;
                Ok(i32::from_le_bytes([s[0], s[1], s[2], s[3]])
                    .to_string()
                    .into_bytes())
            }
            Len::Encoded(3) => {
                let clen = self.len()?;
                let len = self.len()?;
                let compressed = self.take(clen)?;
                // LZF expands at most ~100x; refuse claims beyond that before allocating.
                if len > clen.saturating_mul(128).saturating_add(64) {
                    return Err(BadFormat);
                }
                lzf::decompress(compressed, len as usize).ok_or(BadFormat)
            }
            Len::Encoded(_) => Err(BadFormat),
        }
    }

    /// `rdbLoadBinaryDoubleValue`.
    fn binary_double(&mut self) -> R<f64> {
        let s = self.take(8)?;
        Ok(f64::from_le_bytes(s.try_into().map_err(|_| BadFormat)?))
    }

    /// `rdbLoadDoubleValue` (the old ZSET encoding): a length byte with 253/254/255 meaning
    /// NaN, +inf and -inf, else that many ASCII bytes.
    fn text_double(&mut self) -> R<f64> {
        match self.byte()? {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => {
                let s = self.take(u64::from(n))?;
                ferrite_collections::parse_f64_strtod(s).ok_or(BadFormat)
            }
        }
    }
}

fn score_of(e: &Elem<'_>) -> R<f64> {
    let v = match e {
        Elem::Int(i) => *i as f64,
        Elem::Str(s) => ferrite_collections::parse_f64_strtod(s).ok_or(BadFormat)?,
    };
    if v.is_nan() { Err(BadFormat) } else { Ok(v) }
}

fn zadd(z: &mut SortedSet, member: &[u8], score: f64) -> R<()> {
    if score.is_nan() || z.score(member).is_some() {
        return Err(BadFormat);
    }
    z.add(member, score, ZAddFlags::default())
        .map(drop)
        .map_err(|_| BadFormat)
}

fn hset(h: &mut Hash, field: &[u8], value: &[u8]) -> R<()> {
    if h.insert(field, value) {
        Ok(())
    } else {
        Err(BadFormat)
    }
}

fn pairs_to_hash(elems: &[Elem<'_>]) -> R<Hash> {
    if !elems.len().is_multiple_of(2) {
        return Err(BadFormat);
    }
    let mut h = Hash::new();
    for p in elems.chunks_exact(2) {
        hset(&mut h, &p[0].to_vec(), &p[1].to_vec())?;
    }
    Ok(h)
}

fn pairs_to_zset(elems: &[Elem<'_>]) -> R<SortedSet> {
    if !elems.len().is_multiple_of(2) {
        return Err(BadFormat);
    }
    let mut z = SortedSet::new();
    for p in elems.chunks_exact(2) {
        zadd(&mut z, &p[0].to_vec(), score_of(&p[1])?)?;
    }
    Ok(z)
}

/// Redis's `rdbLoadObject` for the types Redis 7.0 can restore (modules are not Ferrite
/// types). An empty collection is an error, as Redis refuses to create empty keys (a stream
/// without entries is not empty: it keeps its IDs and groups).
///
/// Like Redis's reader over the whole argument, a value may run into the trailer (a payload cut
/// short by two bytes reads the version bytes as data); anything past the value is ignored.
pub fn decode(payload: &[u8]) -> R<Decoded> {
    let mut r = Reader::new(payload);
    let t = r.byte()?;
    r.value(t)?.ok_or(BadFormat)
}

impl Reader<'_> {
    /// The value of an object of type `t` (already read): `None` for an empty collection,
    /// which RESTORE refuses and an RDB load skips (Redis's `RDB_LOAD_ERR_EMPTY_KEY`).
    pub(crate) fn value(&mut self, t: u8) -> R<Option<Decoded>> {
        let r = self;
        let value = match t {
            ty::STRING => return Ok(Some(Decoded::String(r.string()?))),
            ty::LIST => {
                let n = r.count()?;
                let mut l = List::new();
                for _ in 0..n {
                    l.push(End::Right, &r.string()?);
                }
                Collection::List(l)
            }
            ty::LIST_QUICKLIST | ty::LIST_QUICKLIST_2 => {
                let nodes = r.count()?;
                let mut l = List::new();
                for _ in 0..nodes {
                    let container = if t == ty::LIST_QUICKLIST_2 {
                        r.len()?
                    } else {
                        NODE_PACKED
                    };
                    let blob = r.string()?;
                    match container {
                        NODE_PLAIN => l.push(End::Right, &blob),
                        NODE_PACKED => {
                            let elems = if t == ty::LIST_QUICKLIST {
                                ziplist_elements(&blob)
                            } else {
                                listpack_elements(&blob)
                            }
                            .ok_or(BadFormat)?;
                            for e in &elems {
                                l.push(End::Right, &e.to_vec());
                            }
                        }
                        _ => return Err(BadFormat),
                    }
                }
                Collection::List(l)
            }
            ty::LIST_ZIPLIST => {
                let blob = r.string()?;
                let mut l = List::new();
                for e in &ziplist_elements(&blob).ok_or(BadFormat)? {
                    l.push(End::Right, &e.to_vec());
                }
                Collection::List(l)
            }
            ty::SET => {
                let n = r.count()?;
                let mut s = Set::new();
                for _ in 0..n {
                    if !s.insert(&r.string()?) {
                        return Err(BadFormat);
                    }
                }
                Collection::Set(s)
            }
            ty::SET_INTSET => {
                let blob = r.string()?;
                let values = intset_values(&blob).ok_or(BadFormat)?;
                let mut s = Set::new();
                for v in values {
                    if !s.insert(v.to_string().as_bytes()) {
                        return Err(BadFormat);
                    }
                }
                Collection::Set(s)
            }
            ty::ZSET | ty::ZSET_2 => {
                let n = r.count()?;
                let mut z = SortedSet::new();
                for _ in 0..n {
                    let m = r.string()?;
                    let score = if t == ty::ZSET_2 {
                        r.binary_double()?
                    } else {
                        r.text_double()?
                    };
                    zadd(&mut z, &m, score)?;
                }
                Collection::ZSet(z)
            }
            ty::HASH => {
                let n = r.count()?;
                let mut h = Hash::new();
                for _ in 0..n {
                    let f = r.string()?;
                    let v = r.string()?;
                    hset(&mut h, &f, &v)?;
                }
                Collection::Hash(h)
            }
            ty::HASH_LISTPACK | ty::HASH_ZIPLIST => {
                let blob = r.string()?;
                let elems = if t == ty::HASH_LISTPACK {
                    listpack_elements(&blob)
                } else {
                    ziplist_elements(&blob)
                };
                Collection::Hash(pairs_to_hash(&elems.ok_or(BadFormat)?)?)
            }
            ty::ZSET_LISTPACK | ty::ZSET_ZIPLIST => {
                let blob = r.string()?;
                let elems = if t == ty::ZSET_LISTPACK {
                    listpack_elements(&blob)
                } else {
                    ziplist_elements(&blob)
                };
                Collection::ZSet(pairs_to_zset(&elems.ok_or(BadFormat)?)?)
            }
            ty::STREAM_LISTPACKS | ty::STREAM_LISTPACKS_2 => Collection::Stream(r.stream(t)?),
            _ => return Err(BadFormat),
        };
        let empty = match &value {
            Collection::List(l) => l.is_empty(),
            Collection::Hash(h) => h.is_empty(),
            Collection::Set(s) => s.is_empty(),
            Collection::ZSet(z) => z.is_empty(),
            // Redis keeps an empty stream: it may still carry groups and its last ID.
            Collection::Stream(_) => false,
        };
        if empty {
            return Ok(None);
        }
        Ok(Some(Decoded::Object(value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_match_redis() {
        assert_eq!(
            dump_string(b"hello"),
            b"\x00\x05hello\x0a\x00cr\xdfve4 \x0a"
        );
        assert_eq!(
            dump_string(b"12"),
            b"\x00\xc0\x0c\x0a\x00<*\xf8Q\\\x04\xbc\xd5"
        );
        let a35 = [b'a'; 35];
        assert_eq!(
            dump_string(&a35),
            b"\x00\xc3\x09\x23\x01aa\xe0\x16\x00\x01aa\x0a\x00\x1c>\xa2\xaa\xce9#\x01"
        );
        for s in [
            &b""[..],
            b"-1",
            b"128",
            b"-32769",
            b"2147483648",
            b"007",
            &a35,
        ] {
            let p = dump_string(s);
            assert!(verify(&p));
            match decode(&p) {
                Ok(Decoded::String(v)) => assert_eq!(v, s),
                _ => panic!("string did not round-trip"),
            }
        }
    }

    #[test]
    fn list_matches_redis() {
        let mut l = List::new();
        for e in ["a", "b", "1", "-5000"] {
            l.push(End::Right, e.as_bytes());
        }
        let p = dump_collection(&Collection::List(l.clone()));
        assert_eq!(
            p,
            b"\x12\x01\x02\x13\x13\x00\x00\x00\x04\x00\x81a\x02\x81b\x02\x01\x01\xf1x\xec\x03\xff\x0a\x00\xb2\xcb\xfd5\x9d\xa8?@"
        );
        match decode(&p) {
            Ok(Decoded::Object(Collection::List(back))) => assert_eq!(back, l),
            _ => panic!("list did not round-trip"),
        }
    }

    #[test]
    fn collections_round_trip() {
        let mut h = Hash::new();
        h.insert(b"f", b"v");
        h.insert(b"n", b"12");
        let mut big = Hash::new();
        for i in 0..200 {
            big.insert(format!("f{i}").as_bytes(), b"x");
        }
        let mut s = Set::new();
        s.insert(b"3");
        s.insert(b"-70000");
        let mut ss = Set::new();
        ss.insert(b"a");
        ss.insert(b"b");
        let mut z = SortedSet::new();
        z.add(b"a", 1.5, ZAddFlags::default()).unwrap();
        z.add(b"b", -0.0, ZAddFlags::default()).unwrap();
        z.add(b"c", 1e300, ZAddFlags::default()).unwrap();
        let mut bz = SortedSet::new();
        for i in 0..200 {
            bz.add(
                format!("m{i}").as_bytes(),
                f64::from(i) / 3.0,
                ZAddFlags::default(),
            )
            .unwrap();
        }
        for c in [
            Collection::Hash(h),
            Collection::Hash(big),
            Collection::Set(s),
            Collection::Set(ss),
            Collection::ZSet(z),
            Collection::ZSet(bz),
        ] {
            let p = dump_collection(&c);
            assert!(verify(&p));
            let Ok(Decoded::Object(back)) = decode(&p) else {
                panic!("did not round-trip");
            };
            assert_eq!(dump_collection(&back), p);
        }
    }

    #[test]
    fn rejects_corruption() {
        let p = dump_string(b"hello");
        let mut bad = p.clone();
        bad[3] ^= 1;
        assert!(!verify(&bad));
        let mut newer = p[..p.len() - 10].to_vec();
        newer.extend_from_slice(&11u16.to_le_bytes());
        let crc = crc64(0, &newer);
        newer.extend_from_slice(&crc.to_le_bytes());
        assert!(!verify(&newer));
        assert!(!verify(b"short"));
        // Truncations of a valid body, re-checksummed, never panic.
        let mut l = List::new();
        for i in 0..50 {
            l.push(End::Right, format!("element-{i}").as_bytes());
        }
        let p = dump_collection(&Collection::List(l));
        for cut in 0..p.len() - 10 {
            let mut body = p[..cut].to_vec();
            body.extend_from_slice(&RDB_VERSION.to_le_bytes());
            let crc = crc64(0, &body);
            body.extend_from_slice(&crc.to_le_bytes());
            assert!(verify(&body));
            let _ = decode(&body);
        }
    }
}
