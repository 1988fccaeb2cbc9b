//! Key versions for optimistic locking (WATCH): a read-only fingerprint of a key's newest record
//! that changes whenever the key is written.

use crate::Db;
use crate::record::Meta;
use crate::session::Session;

/// The state of a key's newest record, as WATCH remembers it and EXEC compares it. A record's
/// address is unique in the log and its seqlock version moves on every in-place change, so the
/// pair changes with every write, including a delete (which leaves a tombstone) and a re-create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyVersion {
    /// No record at all.
    Absent,
    /// A tombstone: `(address, version)`.
    Deleted(u64, u64),
    /// A record whose TTL has passed: `(address, version)`.
    Expired(u64, u64),
    /// A live record: `(address, version)`.
    Live(u64, u64),
}

impl Session {
    /// The version of `key`'s newest record in `db`, as seen at `now_ms`. Reads only: an expired
    /// key is reported as such, not reaped.
    pub fn key_version(&mut self, db: Db, key: &[u8], now_ms: u64) -> KeyVersion {
        let s = &*self.store;
        let guard = self.handle.pin();
        let pdb = s.pdb(db);
        let hash = self.hash_of(key);
        let Some(rec) = s.newest(hash, pdb, key) else {
            return KeyVersion::Absent;
        };
        let mut step = 0;
        let (meta, expire_at, version) = loop {
            if let Some(v) = crate::seqlock::read_begin(rec.version()) {
                let (m, e) = (Meta(rec.meta()), rec.expire_at());
                if crate::seqlock::read_validate(rec.version(), v) {
                    break (m, e, v);
                }
            }
            crate::sync::spin_wait(&mut step);
        };
        drop(guard);
        let at = (rec.address(), version);
        if meta.tombstone() {
            KeyVersion::Deleted(at.0, at.1)
        } else if crate::ops::is_expired(expire_at, now_ms) {
            KeyVersion::Expired(at.0, at.1)
        } else {
            KeyVersion::Live(at.0, at.1)
        }
    }
}
