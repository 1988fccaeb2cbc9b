//! Keyspace notifications (Redis's `notify.c`): with `notify-keyspace-events` set, every write
//! publishes `__keyspace@<db>__:<key>` (message: the event) and/or `__keyevent@<db>__:<event>`
//! (message: the key) through the ordinary Pub/Sub registry.
//!
//! Commands call [`Ctx::notify`] where Redis calls `notifyKeyspaceEvent`. The events Redis's
//! database layer raises (`expired`, `evicted`, `new`) happen inside the store, so the store
//! records them in the session ([`KeyEvent`]) while they are on, and they are published before
//! the next command event, at the end of the command, or after the tick's active expiry: in
//! the order they happened relative to the command's own events.
//!
//! Off (the default), [`Ctx::notify`] costs one relaxed load and a branch.

pub mod flags;

use std::sync::atomic::Ordering;

use ferrite_hybridlog::{Db, KeyEvent, KeyEventKind, Session};

use crate::ctx::Ctx;
use crate::pubsub::{Kind, registry};
use crate::server::Server;

/// Applies the configured classes to the store: it records key events only while some could
/// be published. Call after `notify-keyspace-events` may have changed.
pub fn sync(server: &Server) {
    let bits = server.config.notify_keyspace_events.load(Ordering::Relaxed);
    server.store.set_key_events(publishes(bits));
}

/// Whether `bits` can publish anything at all (a class without K or E publishes nothing).
fn publishes(bits: u32) -> bool {
    bits & (flags::KEYSPACE | flags::KEYEVENT) != 0
        && bits & (flags::EXPIRED | flags::EVICTED | flags::NEW) != 0
}

impl Ctx<'_> {
    /// Redis's `notifyKeyspaceEvent(class, event, key, db)` for the calling client's database:
    /// publishes `event` on `key` if `class` is enabled, after any store event still pending.
    #[inline]
    pub fn notify(&mut self, class: u32, event: &str, key: &[u8]) {
        let db = self.client.db;
        self.notify_in(class, event, key, db);
    }

    /// [`notify`](Self::notify) for a key of database `db` (MOVE's and COPY's destination).
    #[inline]
    pub fn notify_in(&mut self, class: u32, event: &str, key: &[u8], db: Db) {
        let bits = self
            .server
            .config
            .notify_keyspace_events
            .load(Ordering::Relaxed);
        if bits == 0 {
            return;
        }
        self.notify_slow(bits, class, event, key, db);
    }

    #[cold]
    #[inline(never)]
    fn notify_slow(&mut self, bits: u32, class: u32, event: &str, key: &[u8], db: Db) {
        self.flush_key_events();
        if bits & class != 0 {
            let me = self.client.id;
            publish(
                self.server,
                bits,
                event.as_bytes(),
                key,
                db,
                me,
                self.reply.raw(),
            );
        }
    }

    /// Whether `notify-keyspace-events` is set at all (one relaxed load), for a hot path that
    /// calls [`notify`](Self::notify) and [`reap_for_notify`](Self::reap_for_notify) only then.
    #[inline]
    pub fn notifying(&self) -> bool {
        self.server
            .config
            .notify_keyspace_events
            .load(Ordering::Relaxed)
            != 0
    }

    /// Before a blind overwrite of `key` (SET, MSET): Redis's `lookupKeyWrite` deletes an
    /// expired key first, so an overwrite of one raises `expired` and `new`; the store's blind
    /// write does not look at the clock, so with those events on, look the key up first.
    #[inline]
    pub fn reap_for_notify(&mut self, key: &[u8]) {
        if self.server.store.key_events_on() {
            self.store.exists(self.client.db, key, self.now_ms);
        }
    }

    /// Publishes the store events (expiry, eviction, creation) the command's writes caused so
    /// far. Cheap when none are pending.
    #[inline]
    pub fn flush_key_events(&mut self) {
        let me = self.client.id;
        flush(self.server, self.store, me, self.reply.raw());
    }
}

/// Publishes the key events `session` recorded. `me` and `own` are as in
/// [`Registry::publish`](crate::pubsub::Registry::publish) (0 and a scratch buffer when no
/// client is running a command: active expiry, eviction before a command).
pub fn flush(server: &Server, session: &mut Session, me: u64, own: &mut Vec<u8>) {
    let mut events: Vec<KeyEvent> = Vec::new();
    session.take_key_events(&mut events);
    if events.is_empty() {
        return;
    }
    let bits = server.config.notify_keyspace_events.load(Ordering::Relaxed);
    for e in events {
        let (class, name): (u32, &[u8]) = match e.kind {
            KeyEventKind::Expired => (flags::EXPIRED, b"expired"),
            KeyEventKind::Evicted => (flags::EVICTED, b"evicted"),
            KeyEventKind::Created => (flags::NEW, b"new"),
            // Handed over apart (client-side caching), never among these.
            KeyEventKind::Modified => continue,
        };
        if bits & class == 0 {
            continue;
        }
        // SWAPDB may have moved the physical database since; Redis names the database the key
        // is in when the event happens, which is this one unless a swap ran in between.
        if let Some(db) = server.store.logical_db(e.pdb) {
            publish(server, bits, name, &e.key, db, me, own);
        }
    }
}

/// The two publications of one event, keyspace first, as `notifyKeyspaceEvent`.
fn publish(
    server: &Server,
    bits: u32,
    event: &[u8],
    key: &[u8],
    db: Db,
    me: u64,
    own: &mut Vec<u8>,
) {
    let mut channel = Vec::with_capacity(16 + key.len().max(event.len()));
    if bits & flags::KEYSPACE != 0 {
        channel.extend_from_slice(b"__keyspace@");
        channel.extend_from_slice(db.to_string().as_bytes());
        channel.extend_from_slice(b"__:");
        channel.extend_from_slice(key);
        registry().publish(server, Kind::Channel, &channel, event, me, own);
    }
    if bits & flags::KEYEVENT != 0 {
        channel.clear();
        channel.extend_from_slice(b"__keyevent@");
        channel.extend_from_slice(db.to_string().as_bytes());
        channel.extend_from_slice(b"__:");
        channel.extend_from_slice(event);
        registry().publish(server, Kind::Channel, &channel, key, me, own);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_records_only_what_can_be_published() {
        assert!(!publishes(0));
        assert!(!publishes(flags::ALL), "no K or E: nothing is published");
        assert!(!publishes(flags::KEYSPACE | flags::STRING));
        assert!(publishes(flags::KEYEVENT | flags::EXPIRED));
        assert!(publishes(flags::KEYSPACE | flags::NEW));
    }
}
