//! The process-wide Pub/Sub registry (Redis's `server.pubsub_channels` and
//! `server.pubsub_patterns`): which clients, on which reactor threads, listen to which channels
//! and patterns.
//!
//! PUBLISH runs on the publisher's thread. It encodes the message once per protocol (RESP2
//! array, RESP3 push), appends it to each receiver's outbox (a mutex-guarded buffer in its
//! [`ClientShared`]) and wakes each receiver's thread once; that thread moves the outbox into the
//! connection's output when the reactor polls it (`Worker::poll`), or before running the
//! connection's next command (`Worker::input`), so a message never lands inside another reply.
//!
//! An outbox is bounded as Redis bounds a pubsub client's output buffer
//! (`client-output-buffer-limit pubsub 32mb 8mb 60`): past the hard limit the client is marked
//! killed and its outbox dropped; its own thread closes it at the next poll.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::client::ClientShared;
use crate::cmd::keys::glob;
use crate::resp::Reply;
use crate::server::Server;

/// Redis's default pubsub hard output-buffer limit: a subscriber with this much undelivered
/// output is disconnected.
pub const OUTPUT_HARD_LIMIT: usize = 32 * 1024 * 1024;

/// The pubsub class's hard limit in force (`client-output-buffer-limit pubsub`; 0: none), read
/// by every delivery, which has no server at hand.
static HARD_LIMIT: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(OUTPUT_HARD_LIMIT);

/// Applies the pubsub class's hard limit.
pub fn set_hard_limit(bytes: u64) {
    let limit = match usize::try_from(bytes) {
        Ok(0) | Err(_) => usize::MAX,
        Ok(n) => n,
    };
    HARD_LIMIT.store(limit, Ordering::Relaxed);
}

/// One subscription of one client.
#[derive(Debug, Clone)]
struct Subscriber {
    shared: Arc<ClientShared>,
}

/// Channels and patterns, each to its subscribers in subscription order.
#[derive(Debug, Default)]
struct Inner {
    channels: HashMap<Vec<u8>, Vec<Subscriber>>,
    patterns: HashMap<Vec<u8>, Vec<Subscriber>>,
    /// Shard channels (SSUBSCRIBE): a namespace of their own, with no patterns.
    shards: HashMap<Vec<u8>, Vec<Subscriber>>,
}

/// The registry. One per process: channel names are global, as in Redis.
#[derive(Debug, Default)]
pub struct Registry {
    inner: RwLock<Inner>,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::default);

/// The process-wide registry.
pub fn registry() -> &'static Registry {
    &REGISTRY
}

/// Whether a channel or a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SUBSCRIBE.
    Channel,
    /// PSUBSCRIBE.
    Pattern,
    /// SSUBSCRIBE.
    Shard,
}

impl Registry {
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        // Every update is a single insert or remove: a panic cannot leave the maps half-changed.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `shared` to the subscribers of `name` (the caller knows it is not one yet).
    pub fn subscribe(&self, kind: Kind, name: &[u8], shared: &Arc<ClientShared>) {
        let mut inner = self.write();
        let map = match kind {
            Kind::Channel => &mut inner.channels,
            Kind::Pattern => &mut inner.patterns,
            Kind::Shard => &mut inner.shards,
        };
        map.entry(name.to_vec()).or_default().push(Subscriber {
            shared: shared.clone(),
        });
    }

    /// Removes client `id` from the subscribers of `name`; a name left without subscribers is
    /// forgotten.
    pub fn unsubscribe(&self, kind: Kind, name: &[u8], id: u64) {
        let mut inner = self.write();
        let map = match kind {
            Kind::Channel => &mut inner.channels,
            Kind::Pattern => &mut inner.patterns,
            Kind::Shard => &mut inner.shards,
        };
        if let Some(subs) = map.get_mut(name) {
            subs.retain(|s| s.shared.id != id);
            if subs.is_empty() {
                map.remove(name);
            }
        }
    }

    /// Every subscription of the clients `of` picks: its kind, its channel or pattern, and
    /// the client.
    pub fn subscriptions(
        &self,
        of: impl Fn(&ClientShared) -> bool,
    ) -> Vec<(Kind, Vec<u8>, Arc<ClientShared>)> {
        let inner = self.read();
        let mut out = Vec::new();
        for (kind, map) in [
            (Kind::Channel, &inner.channels),
            (Kind::Pattern, &inner.patterns),
            (Kind::Shard, &inner.shards),
        ] {
            for (name, subs) in map {
                for s in subs.iter().filter(|s| of(&s.shared)) {
                    out.push((kind, name.clone(), s.shared.clone()));
                }
            }
        }
        out
    }

    /// `PUBLISH channel message` (`kind` Channel) or `SPUBLISH` (`kind` Shard): delivers to
    /// every subscriber of the channel, then, for PUBLISH, to every subscriber of every
    /// matching pattern (shard channels have no patterns), waking each receiver's thread once;
    /// returns the number of deliveries. A receiver that is `me` (a RESP3 client may publish
    /// while subscribed) gets its message written into `own` at once, before the command's
    /// reply, as Redis does.
    pub fn publish(
        &self,
        server: &Server,
        kind: Kind,
        channel: &[u8],
        message: &[u8],
        me: u64,
        own: &mut Vec<u8>,
    ) -> i64 {
        let mut wake = vec![false; server.threads];
        let mut count = 0i64;
        let mut encoded: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
        {
            let inner = self.read();
            let (map, verb): (_, &[u8]) = match kind {
                Kind::Shard => (&inner.shards, b"smessage"),
                _ => (&inner.channels, b"message"),
            };
            if let Some(subs) = map.get(channel) {
                for s in subs {
                    let resp3 = s.shared.resp.load(Ordering::Relaxed) == 3;
                    let msg = &mut encoded[usize::from(resp3)];
                    if msg.is_empty() {
                        encode(msg, resp3, verb, None, channel, message);
                    }
                    deliver(&s.shared, msg, me, own, &mut wake);
                    count += 1;
                }
            }
            if kind == Kind::Channel && !inner.patterns.is_empty() {
                let mut pencoded: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
                for (pattern, subs) in &inner.patterns {
                    if !glob::matches(pattern, channel) {
                        continue;
                    }
                    pencoded[0].clear();
                    pencoded[1].clear();
                    for s in subs {
                        let resp3 = s.shared.resp.load(Ordering::Relaxed) == 3;
                        let msg = &mut pencoded[usize::from(resp3)];
                        if msg.is_empty() {
                            encode(msg, resp3, b"pmessage", Some(pattern), channel, message);
                        }
                        deliver(&s.shared, msg, me, own, &mut wake);
                        count += 1;
                    }
                }
            }
        }
        server.wake_marked(&wake);
        count
    }

    /// `PUBSUB CHANNELS [pattern]` (or SHARDCHANNELS with `Kind::Shard`): the channels with
    /// at least one subscriber.
    pub fn channels(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        let inner = self.read();
        let map = match kind {
            Kind::Shard => &inner.shards,
            _ => &inner.channels,
        };
        map.keys()
            .filter(|c| pattern.is_none_or(|p| glob::matches(p, c)))
            .cloned()
            .collect()
    }

    /// `PUBSUB NUMSUB` (or SHARDNUMSUB): the number of subscribers of `channel`.
    pub fn numsub(&self, kind: Kind, channel: &[u8]) -> usize {
        let inner = self.read();
        let map = match kind {
            Kind::Shard => &inner.shards,
            _ => &inner.channels,
        };
        map.get(channel).map_or(0, Vec::len)
    }

    /// `PUBSUB NUMPAT`: the number of distinct patterns subscribed to.
    pub fn numpat(&self) -> usize {
        self.read().patterns.len()
    }
}

/// Appends `msg` to a receiver's outbox (or to `own` for the client whose command sends it),
/// and marks the receiver's thread in `wake` unless an earlier delivery, not drained yet,
/// already did (that wake-up is still to come, and its poll moves everything).
pub(crate) fn deliver(
    shared: &ClientShared,
    msg: &[u8],
    me: u64,
    own: &mut Vec<u8>,
    wake: &mut [bool],
) {
    if shared.id == me {
        own.extend_from_slice(msg);
        return;
    }
    append_limited(shared, msg, HARD_LIMIT.load(Ordering::Relaxed), wake);
}

/// Appends `msg` to a client's outbox, or closes the client (dropping its outbox) when that
/// would pass `limit` bytes, and marks its thread in `wake` unless an earlier delivery, not
/// drained yet, already did. Pub/Sub messages and monitor lines use the pubsub class's limit,
/// a replica's stream its own (see [`crate::master`]).
pub(crate) fn append_limited(shared: &ClientShared, msg: &[u8], limit: usize, wake: &mut [bool]) {
    if shared.killed() {
        return;
    }
    let mut outbox = shared.outbox.lock().unwrap_or_else(|e| e.into_inner());
    if outbox.len().saturating_add(msg.len()) > limit {
        log::warn!(
            "Client id={} scheduled to be closed ASAP for overcoming of output buffer limits.",
            shared.id
        );
        *outbox = Vec::new();
        shared.kill.store(true, Ordering::Release);
    } else {
        outbox.extend_from_slice(msg);
    }
    let pending = shared.outbox_ready.swap(true, Ordering::Release);
    drop(outbox);
    if pending && !shared.killed() {
        return;
    }
    if let Some(w) = wake.get_mut(shared.thread) {
        *w = true;
    }
}

/// `message channel payload`, `smessage channel payload` or `pmessage pattern channel
/// payload`, as an array (RESP2) or a push (RESP3).
fn encode(
    out: &mut Vec<u8>,
    resp3: bool,
    verb: &[u8],
    pattern: Option<&[u8]>,
    channel: &[u8],
    msg: &[u8],
) {
    let mut r = Reply::new(out, resp3);
    r.push_len(if pattern.is_some() { 4 } else { 3 });
    r.bulk(verb);
    if let Some(p) = pattern {
        r.bulk(p);
    }
    r.bulk(channel);
    r.bulk(msg);
}

/// Moves a client's outbox to the end of `out` (nothing to do, and no lock taken, when empty).
pub fn drain(shared: &ClientShared, out: &mut Vec<u8>) {
    if !shared.outbox_ready.load(Ordering::Acquire) {
        return;
    }
    let mut outbox = shared.outbox.lock().unwrap_or_else(|e| e.into_inner());
    shared.outbox_ready.store(false, Ordering::Relaxed);
    if out.is_empty() {
        std::mem::swap(out, &mut outbox);
    } else {
        out.extend_from_slice(&outbox);
        outbox.clear();
    }
}

/// Drops a client's outbox: what Redis would not have written to it (a monitor's lines under
/// CLIENT REPLY OFF).
pub fn discard(shared: &ClientShared) {
    if !shared.outbox_ready.load(Ordering::Acquire) {
        return;
    }
    let mut outbox = shared.outbox.lock().unwrap_or_else(|e| e.into_inner());
    shared.outbox_ready.store(false, Ordering::Relaxed);
    outbox.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_both_protocols() {
        let mut out = Vec::new();
        encode(&mut out, false, b"message", None, b"ch", b"hi");
        assert_eq!(out, b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
        out.clear();
        encode(&mut out, true, b"pmessage", Some(b"c*"), b"ch", b"");
        assert_eq!(
            out,
            b">4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$0\r\n\r\n"
        );
    }

    #[test]
    fn outbox_drains_and_overflow_kills() {
        let shared = ClientShared::new(99, 0, String::new(), String::new(), 0);
        let mut wake = vec![false; 1];
        let mut own = Vec::new();
        deliver(&shared, b"abc", 1, &mut own, &mut wake);
        assert!(wake[0] && own.is_empty());
        let mut out = b"x".to_vec();
        drain(&shared, &mut out);
        assert_eq!(out, b"xabc");
        drain(&shared, &mut out);
        assert_eq!(out, b"xabc");
        deliver(&shared, b"me", 99, &mut own, &mut wake);
        assert_eq!(own, b"me");
        let big = vec![0u8; OUTPUT_HARD_LIMIT];
        deliver(&shared, &big, 1, &mut own, &mut wake);
        deliver(&shared, b"more", 1, &mut own, &mut wake);
        assert!(shared.killed());
    }
}
