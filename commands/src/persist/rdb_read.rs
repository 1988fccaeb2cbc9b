//! Reading an RDB file as Redis 7.0's `rdbLoadRioWithLoadingCtx` does: every opcode it writes
//! (AUX, SELECTDB, RESIZEDB, EXPIRETIME and EXPIRETIME_MS, IDLE and FREQ, which Ferrite skips),
//! the value types of [`crate::cmd::dump::rdb`], and the CRC-64 at the end. Function libraries,
//! module values and streams are not Ferrite types: a file holding one is refused with a message
//! saying so. Any malformation is an error, never a panic: the caller refuses to start.

use std::fmt;
use std::path::Path;

use ferrite_hybridlog::{NO_EXPIRY, Session, ValueKind};

use super::rdb_write::op;
use crate::cmd::dump::crc64::crc64;
use crate::cmd::dump::rdb::{Decoded, RDB_VERSION, Reader, ty};

/// Why a file could not be loaded. `Display` gives the lines Redis would log.
#[derive(Debug)]
pub enum LoadError {
    /// The file exists but cannot be read.
    Io(std::io::Error),
    /// Not an RDB file.
    Signature,
    /// A newer (or nonsensical) RDB version.
    Version(u64),
    /// The data ends early.
    ShortRead(usize),
    /// Malformed data at an offset.
    Corrupt(usize, String),
    /// The checksum does not match.
    Checksum {
        /// What the data hashes to.
        expected: u64,
        /// What the file says.
        got: u64,
        /// Where the checksum is.
        offset: usize,
    },
    /// A database number beyond `databases`.
    TooManyDbs(usize),
    /// Something Redis can store and Ferrite cannot.
    Unsupported(String),
    /// The same key twice in one database.
    Duplicate(Vec<u8>, u8),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let internal = |f: &mut fmt::Formatter<'_>, offset: usize, what: &str| {
            write!(
                f,
                "Internal error in RDB reading offset {offset}, function at rdb_read.rs -> \
                 {what}\nTerminating server after rdb file reading failure."
            )
        };
        match self {
            LoadError::Io(e) => write!(
                f,
                "Fatal error loading the DB: {}. Exiting.",
                super::strerror(e)
            ),
            LoadError::Signature => write!(
                f,
                "Wrong signature trying to load DB from file\nFatal error loading the DB: \
                 Invalid argument. Exiting."
            ),
            LoadError::Version(v) => write!(
                f,
                "Can't handle RDB format version {v}\nFatal error loading the DB: Invalid \
                 argument. Exiting."
            ),
            LoadError::ShortRead(offset) => {
                writeln!(
                    f,
                    "Short read or OOM loading DB. Unrecoverable error, aborting now."
                )?;
                internal(f, *offset, "Unexpected EOF reading RDB file")
            }
            LoadError::Corrupt(offset, what) => internal(f, *offset, what),
            LoadError::Checksum {
                expected,
                got,
                offset,
            } => {
                writeln!(
                    f,
                    "Wrong RDB checksum expected: ({expected:x}) got: ({got:x}). Aborting now."
                )?;
                internal(f, *offset, "RDB CRC error")
            }
            LoadError::TooManyDbs(n) => write!(
                f,
                "FATAL: Data file was created with a Redis server configured to handle more \
                 than {n} databases. Exiting"
            ),
            LoadError::Unsupported(what) => write!(f, "{what}. Exiting."),
            LoadError::Duplicate(key, db) => write!(
                f,
                "RDB has duplicated key '{}' in DB {db}\nDuplicated key found in RDB file",
                String::from_utf8_lossy(key)
            ),
        }
    }
}

impl std::error::Error for LoadError {}

/// What a load did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// Keys added to the store.
    pub keys: u64,
    /// Keys skipped because their TTL had passed.
    pub expired: u64,
    /// Empty collections skipped (Redis skips them too).
    pub empty: u64,
    /// The function libraries' code, in file order (for the caller to load).
    pub libraries: Vec<Vec<u8>>,
    /// The database the replication stream had selected when the file was cut from it
    /// (`repl-stream-db`), which a replica's master client starts in.
    pub repl_stream_db: Option<u8>,
    /// That stream's replication ID and offset (`repl-id`, `repl-offset`), from which a
    /// restarted replica asks its master to continue.
    pub repl_position: Option<(String, i64)>,
}

/// Redis's `moduleTypeNameByID`: the 9-character type name in a module id.
fn module_name(id: u64) -> String {
    const CSET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut id = id >> 10;
    let mut name = [0u8; 9];
    for c in name.iter_mut().rev() {
        *c = CSET[(id & 63) as usize];
        id >>= 6;
    }
    String::from_utf8_lossy(&name).into_owned()
}

/// Parses a whole RDB file in `buf`, handing each live key to `sink(db, key, value, expire_at)`
/// (expired keys, as of `now_ms`, are counted and skipped, as a master does). `databases`
/// bounds SELECTDB. The checksum is checked at the end, as Redis does: the caller must discard
/// what it loaded when this fails (Ferrite refuses to start).
pub fn parse(
    buf: &[u8],
    databases: usize,
    now_ms: u64,
    sink: impl FnMut(u8, Vec<u8>, Decoded, u64) -> Result<(), LoadError>,
) -> Result<Loaded, LoadError> {
    parse_prefix(buf, databases, now_ms, sink).map(|(loaded, _)| loaded)
}

/// [`parse`] for an RDB file followed by other bytes (an AOF's RDB preamble, whose AOF tail
/// follows the checksum): also returns where the RDB part ends.
pub fn parse_prefix(
    buf: &[u8],
    databases: usize,
    now_ms: u64,
    mut sink: impl FnMut(u8, Vec<u8>, Decoded, u64) -> Result<(), LoadError>,
) -> Result<(Loaded, usize), LoadError> {
    let mut r = Reader::new(buf);
    // Malformed data where the file ends is a short read; elsewhere it is corruption.
    let fail = |r: &Reader<'_>, what: &str| {
        if buf.len().saturating_sub(r.pos()) < 9 {
            LoadError::ShortRead(r.pos())
        } else {
            LoadError::Corrupt(r.pos(), what.to_owned())
        }
    };
    let magic = r.take(9).map_err(|_| LoadError::ShortRead(0))?;
    if &magic[..5] != b"REDIS" {
        return Err(LoadError::Signature);
    }
    let version = std::str::from_utf8(&magic[5..])
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    if version < 1 || version > u64::from(RDB_VERSION) {
        return Err(LoadError::Version(version));
    }
    let mut loaded = Loaded::default();
    let mut db: u8 = 0;
    let mut expire_at = NO_EXPIRY;
    loop {
        let t = r.byte().map_err(|_| LoadError::ShortRead(r.pos()))?;
        let short = |r: &Reader<'_>| LoadError::ShortRead(r.pos());
        match t {
            op::EXPIRETIME => {
                let s = r.take(4).map_err(|_| short(&r))?;
                let secs = i32::from_le_bytes([s[0], s[1], s[2], s[3]]);
                expire_at = (i64::from(secs) * 1000).max(1) as u64;
                continue;
            }
            op::EXPIRETIME_MS => {
                let s = r.take(8).map_err(|_| short(&r))?;
                let ms = i64::from_le_bytes(s.try_into().map_err(|_| short(&r))?);
                // A time at or before the epoch is long past; 0 would mean "no expiry".
                expire_at = ms.max(1) as u64;
                continue;
            }
            op::FREQ => {
                r.byte().map_err(|_| short(&r))?;
                continue;
            }
            op::IDLE => {
                r.len().map_err(|_| short(&r))?;
                continue;
            }
            op::EOF => break,
            op::SELECTDB => {
                let id = r.len().map_err(|_| short(&r))?;
                if id >= databases as u64 {
                    return Err(LoadError::TooManyDbs(databases));
                }
                db = id as u8;
                continue;
            }
            op::RESIZEDB => {
                r.len().map_err(|_| short(&r))?;
                r.len().map_err(|_| short(&r))?;
                continue;
            }
            op::AUX => {
                let k = r.string().map_err(|_| fail(&r, "Bad AUX field"))?;
                let v = r.string().map_err(|_| fail(&r, "Bad AUX field"))?;
                aux_field(&k, &v);
                let text = || std::str::from_utf8(&v).ok();
                if k.eq_ignore_ascii_case(b"repl-stream-db") {
                    loaded.repl_stream_db = text().and_then(|v| v.parse().ok());
                } else if k.eq_ignore_ascii_case(b"repl-id") {
                    let id = text().unwrap_or_default().to_string();
                    let offset = loaded.repl_position.take().map_or(0, |(_, o)| o);
                    loaded.repl_position = Some((id, offset));
                } else if k.eq_ignore_ascii_case(b"repl-offset") {
                    let offset = text().and_then(|v| v.parse().ok()).unwrap_or(0);
                    let id = loaded.repl_position.take().map(|(id, _)| id);
                    loaded.repl_position = Some((id.unwrap_or_default(), offset));
                }
                continue;
            }
            op::MODULE_AUX => {
                let id = r.len().map_err(|_| short(&r))?;
                return Err(LoadError::Unsupported(format!(
                    "The RDB file contains AUX module data I can't load: no matching module '{}'",
                    module_name(id)
                )));
            }
            op::FUNCTION_PRE_GA => {
                return Err(LoadError::Corrupt(
                    r.pos(),
                    "Pre-release function format not supported.".into(),
                ));
            }
            op::FUNCTION2 => {
                let code = r
                    .string()
                    .map_err(|_| fail(&r, "Failed loading library payload"))?;
                loaded.libraries.push(code);
                continue;
            }
            _ => {}
        }
        let key = r.string().map_err(|_| fail(&r, "Bad key"))?;
        let shown = String::from_utf8_lossy(&key).into_owned();
        let value = match t {
            ty::MODULE_PRE_GA | ty::MODULE_2 => {
                let id = r.len().map_err(|_| short(&r))?;
                return Err(LoadError::Unsupported(format!(
                    "The RDB file contains module data I can't load: no matching module type \
                     '{}' (key '{shown}')",
                    module_name(id)
                )));
            }
            ty::HASH_ZIPMAP => {
                return Err(LoadError::Unsupported(format!(
                    "The RDB file contains a zipmap-encoded hash (key '{shown}', Redis 2.x): \
                     Ferrite does not read that encoding"
                )));
            }
            t if !ty::known(t) => {
                return Err(LoadError::Corrupt(
                    r.pos(),
                    format!("Unknown RDB encoding type {t}"),
                ));
            }
            t => r
                .value(t)
                .map_err(|_| fail(&r, &format!("Bad data format in key '{shown}'")))?,
        };
        let exp = std::mem::replace(&mut expire_at, NO_EXPIRY);
        match value {
            None => {
                if loaded.empty < 10 {
                    log::info!("rdbLoadObject skipping empty key: {shown}");
                }
                loaded.empty += 1;
            }
            Some(_) if exp != NO_EXPIRY && exp < now_ms => loaded.expired += 1,
            Some(v) => {
                sink(db, key, v, exp)?;
                loaded.keys += 1;
            }
        }
    }
    if version >= 5 {
        let offset = r.pos();
        let s = r.take(8).map_err(|_| LoadError::ShortRead(offset))?;
        let got = u64::from_le_bytes(s.try_into().map_err(|_| LoadError::ShortRead(offset))?);
        if got == 0 {
            log::info!("RDB file was saved with checksum disabled: no check performed.");
        } else {
            let expected = crc64(0, &buf[..offset]);
            if got != expected {
                return Err(LoadError::Checksum {
                    expected,
                    got,
                    offset,
                });
            }
        }
    }
    Ok((loaded, r.pos()))
}

/// What Redis logs of the AUX fields it knows; the rest are skipped by the AUX contract.
fn aux_field(k: &[u8], v: &[u8]) {
    let v = String::from_utf8_lossy(v);
    let num = || v.trim().parse::<i64>().unwrap_or(0);
    if k.first() == Some(&b'%') {
        log::info!("RDB '{}': {v}", String::from_utf8_lossy(k));
    } else if k.eq_ignore_ascii_case(b"redis-ver") {
        log::info!("Loading RDB produced by version {v}");
    } else if k.eq_ignore_ascii_case(b"ctime") {
        let age = (super::unix_secs() as i64 - num()).max(0);
        log::info!("RDB age {age} seconds");
    } else if k.eq_ignore_ascii_case(b"used-mem") {
        log::info!(
            "RDB memory usage when created {:.2} Mb",
            num() as f64 / (1024.0 * 1024.0)
        );
    } else if k.eq_ignore_ascii_case(b"aof-preamble") && num() != 0 {
        log::info!("RDB has an AOF tail");
    } else if k.eq_ignore_ascii_case(b"aof-base") && num() != 0 {
        log::info!("RDB is base AOF");
    }
}

/// Loads `path` into the store through `session` (at start-up, before any client): `Ok(None)`
/// when there is no such file. On an error the store may hold part of the file: the caller
/// must not serve it.
pub fn load_file(
    path: &Path,
    session: &mut Session,
    now_ms: u64,
) -> Result<Option<Loaded>, LoadError> {
    load_file_with(path, session, now_ms, false)
}

/// [`load_file`], where `merge` lets a loaded key replace one the store holds (Redis's
/// `RDBFLAGS_ALLOW_DUP`, DEBUG RELOAD MERGE) instead of failing the load.
pub fn load_file_with(
    path: &Path,
    session: &mut Session,
    now_ms: u64,
    merge: bool,
) -> Result<Option<Loaded>, LoadError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LoadError::Io(e)),
    };
    let len = file.metadata().map_err(LoadError::Io)?.len();
    if len == 0 {
        return Err(LoadError::ShortRead(0));
    }
    // SAFETY: the mapping is read-only and private to this load; the file is Ferrite's own
    // dump, which nothing truncates while the server starts (a concurrent truncation would
    // fault, not corrupt memory we hand out: every value is copied into the store).
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(LoadError::Io)?;
    load_bytes_with(&map, session, now_ms, merge).map(|(loaded, _)| Some(loaded))
}

/// Loads the RDB data at the start of `buf` into the store through `session`; returns what
/// was loaded and where the RDB data ends (an AOF's RDB preamble is followed by commands).
pub fn load_bytes(
    buf: &[u8],
    session: &mut Session,
    now_ms: u64,
) -> Result<(Loaded, usize), LoadError> {
    load_bytes_with(buf, session, now_ms, false)
}

fn load_bytes_with(
    buf: &[u8],
    session: &mut Session,
    now_ms: u64,
    merge: bool,
) -> Result<(Loaded, usize), LoadError> {
    let databases = session.store().databases();
    parse_prefix(buf, databases, now_ms, |db, key, value, expire_at| {
        if !merge && session.exists(db, &key, now_ms) {
            return Err(LoadError::Duplicate(key, db));
        }
        match value {
            Decoded::String(s) => session.upsert(db, &key, &s, ValueKind::String, expire_at),
            Decoded::Object(c) => session.upsert_object(db, &key, c.boxed(), expire_at),
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_decode() {
        // "ReJSON-RL" with encoding version 1 is Redis's example module type id.
        let cset = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut id: u64 = 0;
        for c in b"ReJSON-RL" {
            id = (id << 6) | cset.iter().position(|x| x == c).unwrap() as u64;
        }
        assert_eq!(module_name((id << 10) | 1), "ReJSON-RL");
    }

    use crate::cmd::dump::rdb::dump_collection;
    use crate::objects::Collection;
    use crate::persist::rdb_write::{Aux, RdbWriter};
    use ferrite_collections::{End, Hash, List};

    /// A small file: two databases, a TTL, an expired key, a string, a list and a hash.
    fn sample() -> Vec<u8> {
        let mut w = RdbWriter::new(Vec::new());
        w.header(&Aux {
            ctime: 1,
            used_mem: 2,
            aof_base: false,
            key_delay: 0,
            libraries: Vec::new(),
            repl: Some((3, "a".repeat(40), 1234)),
        })
        .unwrap();
        w.select_db(0, 3, 1).unwrap();
        w.string_entry(b"s", b"hello", NO_EXPIRY).unwrap();
        w.string_entry(b"n", b"-70000", 5_000).unwrap();
        w.string_entry(b"old", b"x", 10).unwrap();
        let mut l = List::new();
        for e in ["a", "b", "12"] {
            l.push(End::Right, e.as_bytes());
        }
        w.collection_entry(b"l", &Collection::List(l), NO_EXPIRY)
            .unwrap();
        w.select_db(7, 1, 0).unwrap();
        let mut h = Hash::new();
        h.insert(b"f", b"v");
        w.collection_entry(b"h", &Collection::Hash(h), NO_EXPIRY)
            .unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn round_trip() {
        let file = sample();
        assert_eq!(&file[..9], b"REDIS0010");
        let mut seen = Vec::new();
        let loaded = parse(&file, 16, 1_000, |db, key, v, exp| {
            let shown = match v {
                Decoded::String(s) => String::from_utf8(s).unwrap(),
                Decoded::Object(c) => format!("{:?}", dump_collection(&c).len()),
            };
            seen.push((db, String::from_utf8(key).unwrap(), shown, exp));
            Ok(())
        })
        .unwrap();
        assert_eq!(loaded.keys, 4);
        assert_eq!(loaded.expired, 1);
        assert_eq!(
            loaded.repl_stream_db,
            Some(3),
            "the stream's database comes back"
        );
        assert_eq!(loaded.repl_position, Some(("a".repeat(40), 1234)));
        assert_eq!(seen[0], (0, "s".into(), "hello".into(), NO_EXPIRY));
        assert_eq!(seen[1], (0, "n".into(), "-70000".into(), 5_000));
        assert_eq!((seen[3].0, seen[3].1.as_str()), (7, "h"));
        // Database 7 does not exist with 4 databases.
        let few = parse(&file, 4, 1_000, |_, _, _, _| Ok(()));
        assert!(matches!(few, Err(LoadError::TooManyDbs(4))));
    }

    #[test]
    fn lru_lfu_and_second_expiries_are_read() {
        let mut f = b"REDIS0009".to_vec();
        f.extend_from_slice(&[op::SELECTDB, 2, op::FREQ, 5, op::IDLE, 0x40, 0x80]);
        f.push(op::EXPIRETIME);
        f.extend_from_slice(&2_000_000_000i32.to_le_bytes());
        f.extend_from_slice(&[ty::STRING, 1, b'k', 2, b'v', b'1']);
        f.extend_from_slice(&[ty::STRING, 1, b'z', 0xc0, 7, op::EOF]);
        let crc = crc64(0, &f);
        f.extend_from_slice(&crc.to_le_bytes());
        let mut seen = Vec::new();
        parse(&f, 16, 0, |db, k, v, exp| {
            let Decoded::String(v) = v else {
                panic!("not a string")
            };
            seen.push((db, k, v, exp));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![
                (2, b"k".to_vec(), b"v1".to_vec(), 2_000_000_000_000),
                (2, b"z".to_vec(), b"7".to_vec(), NO_EXPIRY)
            ]
        );
    }

    #[test]
    fn every_truncation_and_flip_is_an_error() {
        let file = sample();
        for cut in 0..file.len() {
            let r = parse(&file[..cut], 16, 0, |_, _, _, _| Ok(()));
            assert!(r.is_err(), "truncated at {cut} loaded");
        }
        for at in 0..file.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut bad = file.clone();
                bad[at] ^= mask;
                let r = parse(&bad, 16, 0, |_, _, _, _| Ok(()));
                assert!(r.is_err(), "byte {at} ^ {mask:#x} loaded");
            }
        }
    }

    #[test]
    fn empty_and_bad_headers() {
        let sink = |_: u8, _: Vec<u8>, _: Decoded, _: u64| Ok(());
        assert!(matches!(
            parse(b"", 16, 0, sink),
            Err(LoadError::ShortRead(0))
        ));
        assert!(matches!(
            parse(b"RADIS0010\xff", 16, 0, sink),
            Err(LoadError::Signature)
        ));
        assert!(matches!(
            parse(b"REDIS0011\xff", 16, 0, sink),
            Err(LoadError::Version(11))
        ));
        assert!(matches!(
            parse(b"REDIS0010\xff", 16, 0, sink),
            Err(LoadError::ShortRead(10))
        ));
        // Version 4 has no checksum.
        assert_eq!(
            parse(b"REDIS0004\xff", 16, 0, sink).unwrap(),
            Loaded::default()
        );
    }
}
