//! Writing an RDB file as Redis 7.0's `rdbSaveRio` does: `REDIS0010`, the AUX fields, then per
//! non-empty database SELECTDB and RESIZEDB followed by its keys (EXPIRETIME_MS, type, key,
//! value), EOF, and the CRC-64 of everything before it.

use std::io::{self, Write};

use ferrite_hybridlog::{NO_EXPIRY, Session, Value};

use crate::cmd::dump::crc64::crc64;
use crate::cmd::dump::rdb::{RDB_VERSION, encode_collection, encode_string, put_len, put_string};
use crate::objects::Collection;

/// RDB opcodes (`RDB_OPCODE_*`).
pub mod op {
    /// A function library (Redis 7.0 functions).
    pub const FUNCTION2: u8 = 245;
    /// The pre-release function format, refused by Redis 7.0 too.
    pub const FUNCTION_PRE_GA: u8 = 246;
    /// Module auxiliary data.
    pub const MODULE_AUX: u8 = 247;
    /// LRU idle time of the next key.
    pub const IDLE: u8 = 248;
    /// LFU frequency of the next key.
    pub const FREQ: u8 = 249;
    /// An AUX field: two strings.
    pub const AUX: u8 = 250;
    /// Sizes of the current database (a hint).
    pub const RESIZEDB: u8 = 251;
    /// Expiry of the next key in milliseconds.
    pub const EXPIRETIME_MS: u8 = 252;
    /// Expiry of the next key in seconds (old files).
    pub const EXPIRETIME: u8 = 253;
    /// The database the next keys belong to.
    pub const SELECTDB: u8 = 254;
    /// End of the data; the checksum follows.
    pub const EOF: u8 = 255;
}

/// What the AUX fields say about the saving server, and what is saved beside the keys.
#[derive(Debug, Clone, Default)]
pub struct Aux {
    /// Unix seconds of the save (`ctime`).
    pub ctime: u64,
    /// Memory in use (`used-mem`).
    pub used_mem: u64,
    /// The file is an AOF base (`aof-base` 1), written by an AOF rewrite.
    pub aof_base: bool,
    /// `rdb-key-save-delay`: microseconds to sleep after each key (negative: nanoseconds),
    /// Redis's testing knob for slow saves. Not an AUX field; 0 in production.
    pub key_delay: i64,
    /// The function libraries' code, saved after the AUX fields (taken before a fork, so the
    /// child reads no shared state).
    pub libraries: Vec<Vec<u8>>,
    /// The replication stream the file is cut from: its selected database, replication ID and
    /// offset (`repl-stream-db`, `repl-id`, `repl-offset`), when there is one.
    pub repl: Option<(u8, String, i64)>,
}

impl Aux {
    /// One key written: reports progress from a fork child (`child_info`) and sleeps as
    /// `rdb-key-save-delay` asks (Redis's `debugDelay`).
    pub(crate) fn after_key(&self) {
        super::child_info::key_done();
        match self.key_delay {
            0 => {}
            us if us > 0 => std::thread::sleep(std::time::Duration::from_micros(us as u64)),
            ns => std::thread::sleep(std::time::Duration::from_nanos(ns.unsigned_abs())),
        }
    }
}

/// `rdbchecksum`: files end with their CRC-64 (else with 0, which loaders take as "not
/// checked"), set at start-up.
static CHECKSUM: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Applies `rdbchecksum`.
pub fn set_checksum(on: bool) {
    CHECKSUM.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// An RDB stream over `W`, keeping the running checksum.
pub struct RdbWriter<W: Write> {
    w: W,
    crc: u64,
    buf: Vec<u8>,
}

impl<W: Write> RdbWriter<W> {
    /// A writer that has written nothing yet.
    pub fn new(w: W) -> Self {
        Self {
            w,
            crc: 0,
            buf: Vec::with_capacity(4096),
        }
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        if CHECKSUM.load(std::sync::atomic::Ordering::Relaxed) {
            self.crc = crc64(self.crc, &self.buf);
        }
        let r = self.w.write_all(&self.buf);
        self.buf.clear();
        r
    }

    fn aux(&mut self, key: &str, value: &str) {
        self.buf.push(op::AUX);
        put_string(&mut self.buf, key.as_bytes());
        put_string(&mut self.buf, value.as_bytes());
    }

    /// The magic and the AUX fields `rdbSaveInfoAuxFields` writes (the `repl-*` ones when the
    /// file is cut from a replication stream).
    pub fn header(&mut self, aux: &Aux) -> io::Result<()> {
        self.buf
            .extend_from_slice(format!("REDIS{RDB_VERSION:04}").as_bytes());
        self.aux("redis-ver", crate::cmd::info::REDIS_VERSION);
        self.aux("redis-bits", &usize::BITS.to_string());
        self.aux("ctime", &aux.ctime.to_string());
        self.aux("used-mem", &aux.used_mem.to_string());
        if let Some((db, replid, offset)) = &aux.repl {
            self.aux("repl-stream-db", &db.to_string());
            self.aux("repl-id", replid);
            self.aux("repl-offset", &offset.to_string());
        }
        self.aux("aof-base", if aux.aof_base { "1" } else { "0" });
        // `rdbSaveFunctions`: each library's code.
        for code in &aux.libraries {
            self.buf.push(op::FUNCTION2);
            put_string(&mut self.buf, code);
        }
        self.flush_buf()
    }

    /// SELECTDB and RESIZEDB.
    pub fn select_db(&mut self, db: u64, keys: u64, expires: u64) -> io::Result<()> {
        self.buf.push(op::SELECTDB);
        put_len(&mut self.buf, db);
        self.buf.push(op::RESIZEDB);
        put_len(&mut self.buf, keys);
        put_len(&mut self.buf, expires);
        self.flush_buf()
    }

    fn expiry(&mut self, expire_at: u64) {
        if expire_at != NO_EXPIRY {
            self.buf.push(op::EXPIRETIME_MS);
            self.buf.extend_from_slice(&expire_at.to_le_bytes());
        }
    }

    /// A string key.
    pub fn string_entry(&mut self, key: &[u8], value: &[u8], expire_at: u64) -> io::Result<()> {
        self.expiry(expire_at);
        encode_string(&mut self.buf, Some(key), value);
        self.flush_buf()
    }

    /// A collection key.
    pub fn collection_entry(
        &mut self,
        key: &[u8],
        c: &Collection,
        expire_at: u64,
    ) -> io::Result<()> {
        self.expiry(expire_at);
        encode_collection(&mut self.buf, Some(key), c);
        self.flush_buf()
    }

    /// EOF and the checksum; returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.buf.push(op::EOF);
        self.flush_buf()?;
        self.w.write_all(&self.crc.to_le_bytes())?;
        Ok(self.w)
    }
}

/// Writes every live key of the store as of `now_ms` (keys already expired are left out) to
/// `w`; returns how many keys were written. The caller makes the store still: SAVE holds the
/// exclusive gate, a BGSAVE child is the only thread of its process.
pub fn write_snapshot<W: Write>(
    session: &mut Session,
    now_ms: u64,
    aux: Aux,
    w: W,
) -> io::Result<(W, u64)> {
    let mut out = RdbWriter::new(w);
    out.header(&aux)?;
    let store = std::sync::Arc::clone(session.store());
    let mut written = 0u64;
    let mut objects: Vec<(Vec<u8>, u64)> = Vec::new();
    for db in 0..store.databases().min(256) {
        let db = db as u8;
        let keys = store.db_size(db);
        if keys == 0 {
            continue;
        }
        out.select_db(u64::from(db), keys, store.db_expires(db))?;
        let mut cursor = 0;
        loop {
            let mut result = Ok(());
            objects.clear();
            cursor = session.scan(db, cursor, 512, now_ms, |key, e| {
                if result.is_err() {
                    return;
                }
                if e.kind.is_object() {
                    objects.push((key.to_vec(), e.expire_at));
                } else {
                    written += 1;
                    result = out.string_entry(key, e.value, e.expire_at);
                    aux.after_key();
                }
            });
            result?;
            for (key, _) in &objects {
                // A bulk pass: nothing it reads from disk is copied back into memory.
                let r = session.without_copying_reads(|session| {
                    session.read_value(db, key, now_ms, |e| match e.value {
                        Value::String(s) => Some(out.string_entry(key, s, e.expire_at)),
                        Value::Object(o) => {
                            Collection::of(o).map(|c| out.collection_entry(key, c, e.expire_at))
                        }
                    })
                });
                if let Some(Some(r)) = r {
                    r?;
                    written += 1;
                    aux.after_key();
                }
            }
            if cursor == 0 {
                break;
            }
        }
    }
    Ok((out.finish()?, written))
}
