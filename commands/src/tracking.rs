//! Client-side caching (Redis's `tracking.c`): CLIENT TRACKING's key table and invalidation
//! messages.
//!
//! In the default mode the server remembers which clients read which keys (the keys of every
//! read-only command a tracking client runs, also inside MULTI and scripts) and, when a key
//! changes, tells each of them once (`invalidate` with the key) and forgets the pair. In BCAST
//! mode a client names prefixes instead and hears of every changed key under them. Messages are
//! RESP3 pushes, or Pub/Sub messages on `__redis__:invalidate` for a RESP2 client that
//! redirects them to a subscribed connection.
//!
//! Which keys changed comes from the store: while a client tracks, every write that takes
//! effect records a `Modified` event (Redis's `signalModifiedKey`: updates, deletions,
//! expiries, evictions), handed over at the end of the command
//! ([`after_command`]), so a client hears of its own changes after the reply, as in Redis.
//! FLUSHDB and FLUSHALL invalidate everything (a null key).
//!
//! A tracking read holds the table's lock from before it reads until its keys are in the table:
//! a write on another thread either comes before the read (and the read sees it) or finds the
//! keys and invalidates them, so no client keeps a value older than a write it was not told of.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ferrite_hybridlog::{KeyEvent, Session};

use crate::args::Args;
use crate::client::{Client, ClientShared, FLAG_PUBSUB};
use crate::resp::Reply;
use crate::server::Server;
use crate::table::{CommandSpec, flags};

/// A client's tracking mode (CLIENT TRACKING ON and its options).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mode {
    /// REDIRECT: the id of the client that receives the messages (0: this one).
    pub redirect: u64,
    /// BCAST: changes under [`prefixes`](Self::prefixes), nothing remembered per key.
    pub bcast: bool,
    /// OPTIN: keys are remembered only for a command after `CLIENT CACHING yes`.
    pub optin: bool,
    /// OPTOUT: keys are remembered except for a command after `CLIENT CACHING no`.
    pub optout: bool,
    /// NOLOOP: no messages about the client's own changes.
    pub noloop: bool,
    /// BCAST prefixes (none: every key).
    pub prefixes: Vec<Vec<u8>>,
}

/// A client's tracking state: its mode and the CLIENT CACHING answer for its next command.
#[derive(Debug, Clone, Default)]
pub struct ClientTracking {
    /// The mode.
    pub mode: Mode,
    /// `CLIENT CACHING yes|no` was given for the next command (Redis's
    /// `CLIENT_TRACKING_CACHING`).
    pub caching: bool,
}

impl ClientTracking {
    /// Whether a read now remembers its keys (`trackingRememberKeys`' OPTIN/OPTOUT test).
    fn remembers(&self) -> bool {
        let m = &self.mode;
        // OPTIN needs CACHING yes; OPTOUT is off after CACHING no.
        let chosen = if m.optin {
            self.caching
        } else {
            !(m.optout && self.caching)
        };
        !m.bcast && chosen
    }
}

/// What the table keeps of a tracking client.
#[derive(Debug)]
struct Tracker {
    shared: Arc<ClientShared>,
    redirect: u64,
    bcast: bool,
    noloop: bool,
    prefixes: Vec<Vec<u8>>,
    /// Its redirect target went away (CLIENT LIST flag `R`).
    broken: bool,
}

/// The table itself, behind [`Tracking`]'s lock.
#[derive(Debug, Default)]
pub(crate) struct Table {
    trackers: HashMap<u64, Tracker>,
    /// Key → the clients that may hold it, in the order they read it.
    keys: HashMap<Vec<u8>, Vec<u64>>,
    /// Key-client pairs in `keys` (INFO `tracking_total_items`).
    items: usize,
    /// BCAST prefix → its clients (INFO `tracking_total_prefixes`).
    prefixes: BTreeMap<Vec<u8>, Vec<u64>>,
}

/// The server's tracking state.
#[derive(Debug, Default)]
pub struct Tracking {
    table: Mutex<Table>,
    /// Tracking clients (INFO `tracking_clients`); 0 means nothing to do anywhere.
    clients: AtomicUsize,
}

/// The channel RESP2 clients receive redirected messages on.
pub const INVALIDATE_CHANNEL: &[u8] = b"__redis__:invalidate";

/// The figures INFO shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Figures {
    /// `tracking_clients`.
    pub clients: usize,
    /// `tracking_total_keys`.
    pub keys: usize,
    /// `tracking_total_items`.
    pub items: usize,
    /// `tracking_total_prefixes`.
    pub prefixes: usize,
}

impl Tracking {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether any client tracks (one relaxed load).
    #[inline]
    pub fn active(&self) -> bool {
        self.clients.load(Ordering::Relaxed) != 0
    }

    /// CLIENT TRACKING ON for `shared` with `mode` (already validated). Before the first
    /// tracking client is in the table, the store's `Modified` events are turned on under the
    /// exclusive gate, so every session records them from its next shared section on (the gate
    /// is never waited for with the table locked: a session inside it may be waiting for the
    /// table).
    pub fn enable(&self, session: &mut Session, shared: &Arc<ClientShared>, mode: &Mode) {
        let store = session.store().clone();
        let mut t = loop {
            let t = self.lock();
            if store.modified_events_on() {
                break t;
            }
            drop(t);
            session.exclusive(|_| store.set_modified_events(true));
        };
        let id = shared.id;
        let mut prefixes: Vec<Vec<u8>> = Vec::new();
        match t.trackers.remove(&id) {
            // Re-enabling adds to the prefixes given before, as Redis does.
            Some(old) => {
                remove_prefixes(&mut t, id, &old.prefixes);
                prefixes = old.prefixes.into_iter().filter(|p| !p.is_empty()).collect();
            }
            None => {
                self.clients.fetch_add(1, Ordering::Relaxed);
            }
        }
        for p in &mode.prefixes {
            if !prefixes.contains(p) {
                prefixes.push(p.clone());
            }
        }
        if mode.bcast && prefixes.is_empty() {
            // BCAST without prefixes: every key (the empty prefix).
            prefixes.push(Vec::new());
        }
        if !mode.bcast {
            prefixes.clear();
        }
        for p in &prefixes {
            let ids = t.prefixes.entry(p.clone()).or_default();
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        t.trackers.insert(
            id,
            Tracker {
                shared: shared.clone(),
                redirect: mode.redirect,
                bcast: mode.bcast,
                noloop: mode.noloop,
                prefixes,
                broken: false,
            },
        );
    }

    /// CLIENT TRACKING OFF, RESET or a disconnect: the client stops tracking (its remembered
    /// keys are dropped lazily, when they next change). The last one turns the store's
    /// `Modified` events off.
    pub fn disable(&self, store: &ferrite_hybridlog::Store, id: u64) {
        let mut t = self.lock();
        if let Some(old) = t.trackers.remove(&id) {
            remove_prefixes(&mut t, id, &old.prefixes);
            if self.clients.fetch_sub(1, Ordering::Relaxed) == 1 {
                store.set_modified_events(false);
            }
        }
    }

    /// A tracking client's redirect and whether the redirect is broken (CLIENT LIST,
    /// CLIENT TRACKINGINFO).
    pub fn info(&self, id: u64) -> Option<(u64, bool)> {
        if !self.active() {
            return None;
        }
        let t = self.lock();
        t.trackers.get(&id).map(|tr| (tr.redirect, tr.broken))
    }

    /// INFO's figures.
    pub fn figures(&self) -> Figures {
        if !self.active() {
            return Figures::default();
        }
        let t = self.lock();
        Figures {
            clients: t.trackers.len(),
            keys: t.keys.len(),
            items: t.items,
            prefixes: t.prefixes.len(),
        }
    }
}

fn remove_prefixes(t: &mut Table, id: u64, prefixes: &[Vec<u8>]) {
    for p in prefixes {
        if let Some(ids) = t.prefixes.get_mut(p) {
            ids.retain(|&x| x != id);
            if ids.is_empty() {
                t.prefixes.remove(p);
            }
        }
    }
}

/// A read by a tracking client about to run: the table's lock, held until the read's keys are
/// in it ([`remember`]). `None` when the command remembers nothing.
#[inline]
pub(crate) fn before_read<'s>(
    server: &'s Server,
    client: &Client,
    spec: &CommandSpec,
    args: Args<'_>,
) -> Option<MutexGuard<'s, Table>> {
    client.tracking.as_ref()?;
    tracking_read(server, client, spec, args)
}

#[cold]
#[inline(never)]
fn tracking_read<'s>(
    server: &'s Server,
    client: &Client,
    spec: &CommandSpec,
    args: Args<'_>,
) -> Option<MutexGuard<'s, Table>> {
    let tracking = client.tracking.as_ref()?;
    // A read-only script is not tracked itself: the commands it runs are (Redis's `call`).
    let script = matches!(spec.name, "eval_ro" | "evalsha_ro" | "fcall_ro");
    if !spec.has(flags::READONLY) || script || !tracking.remembers() {
        return None;
    }
    // A read of no key (SCAN, KEYS, DBSIZE, ...) remembers nothing: it must not hold the lock
    // every writer's invalidations take while it runs.
    crate::disk_wait::command_keys(spec, args).next()?;
    Some(server.tracking.lock())
}

/// After a command of a tracking client: CLIENT CACHING applies to the next command only (any
/// CLIENT subcommand keeps it, and so does a MULTI until EXEC, as in Redis).
#[cold]
pub(crate) fn after_tracked_command(client: &mut Client, spec: &CommandSpec) {
    let in_multi = client.multi.is_some();
    let Some(t) = client.tracking.as_mut() else {
        return;
    };
    let client_cmd = crate::table::lookup(b"client").is_some_and(|c| {
        std::ptr::eq(c, spec) || c.subcommands.iter().any(|s| std::ptr::eq(s, spec))
    });
    if !in_multi && !client_cmd {
        t.caching = false;
    }
}

/// Remembers that `client` read the keys of `args` (`trackingRememberKeys`), keeping the table
/// within `tracking-table-max-keys`.
pub(crate) fn remember(
    mut table: MutexGuard<'_, Table>,
    server: &Server,
    client: &Client,
    spec: &CommandSpec,
    args: Args<'_>,
) {
    let id = client.id;
    let t = &mut *table;
    for key in crate::disk_wait::command_keys(spec, args) {
        let ids = t.keys.entry(key.to_vec()).or_default();
        if !ids.contains(&id) {
            ids.push(id);
            t.items += 1;
        }
    }
    let max = server
        .config
        .tracking_table_max_keys
        .load(Ordering::Relaxed);
    if max != 0 && t.keys.len() as u64 > max {
        limit_keys(server, t, max as usize);
    }
}

/// `trackingLimitUsedSlots`: over `tracking-table-max-keys`, keys are dropped from the table,
/// each client that tracked one told to invalidate it (Redis picks them at random from its
/// cron; here the hash map's order picks them, as soon as the table grows past the limit).
#[cold]
fn limit_keys(server: &Server, t: &mut Table, max: usize) {
    let excess = t.keys.len().saturating_sub(max);
    let victims: Vec<Vec<u8>> = t.keys.keys().take(excess).cloned().collect();
    let mut wake = vec![false; server.threads];
    let mut scratch = Vec::new();
    for key in victims {
        let Some(ids) = t.keys.remove(&key) else {
            continue;
        };
        t.items -= ids.len();
        for id in ids {
            if t.trackers.get(&id).is_some_and(|tr| !tr.bcast) {
                let one = [key.clone()];
                send(server, t, id, Some(&one), 0, &mut scratch, &mut wake);
            }
        }
    }
    server.wake_marked(&wake);
}

/// After a command (or active expiry, or eviction): tells the clients that track the keys the
/// session's writes changed. `me` is the client that ran the command (0: none), whose own
/// messages go into `own` after its reply.
#[inline]
pub fn after_command(server: &Server, session: &mut Session, me: u64, own: &mut Vec<u8>) {
    if session.has_modified() {
        invalidate(server, session, me, own);
    }
}

#[cold]
#[inline(never)]
fn invalidate(server: &Server, session: &mut Session, me: u64, own: &mut Vec<u8>) {
    let mut changed: Vec<KeyEvent> = Vec::new();
    session.take_modified(&mut changed);
    if !server.tracking.active() {
        return;
    }
    let mut t = server.tracking.lock();
    let mut wake = vec![false; server.threads];
    let mut bcast: HashMap<u64, Vec<Vec<u8>>> = HashMap::new();
    for e in &changed {
        let key: &[u8] = &e.key;
        if let Some(ids) = t.keys.remove(key) {
            t.items -= ids.len();
            for id in ids {
                let Some(tr) = t.trackers.get(&id) else {
                    continue;
                };
                if tr.bcast || (tr.noloop && id == me) {
                    continue;
                }
                let one = [key.to_vec()];
                send(server, &mut t, id, Some(&one), me, own, &mut wake);
            }
        }
        if !t.prefixes.is_empty() {
            for (p, ids) in &t.prefixes {
                if key.starts_with(p) {
                    for &id in ids {
                        let noloop = t.trackers.get(&id).is_some_and(|tr| tr.noloop);
                        if !(noloop && id == me) {
                            bcast.entry(id).or_default().push(key.to_vec());
                        }
                    }
                }
            }
        }
    }
    let mut ids: Vec<u64> = bcast.keys().copied().collect();
    ids.sort_unstable();
    for id in ids {
        let keys = bcast.remove(&id).unwrap_or_default();
        send(server, &mut t, id, Some(&keys), me, own, &mut wake);
    }
    drop(t);
    server.wake_marked(&wake);
}

/// FLUSHDB / FLUSHALL (`trackingInvalidateKeysOnFlush`): every tracking client is told that
/// everything changed (a null key); FLUSHALL (`all`) also empties the table, tracking clients
/// or not.
pub fn flushed(server: &Server, all: bool, me: u64, own: &mut Vec<u8>) {
    if !server.tracking.active() && !all {
        return;
    }
    let mut t = server.tracking.lock();
    let mut wake = vec![false; server.threads];
    let mut ids: Vec<u64> = t.trackers.keys().copied().collect();
    ids.sort_unstable();
    for id in ids {
        send(server, &mut t, id, None, me, own, &mut wake);
    }
    if all {
        t.keys.clear();
        t.items = 0;
    }
    drop(t);
    server.wake_marked(&wake);
}

/// `sendTrackingMessage`: `keys` (or a null: everything) to tracking client `id`, through its
/// redirect if it has one.
fn send(
    server: &Server,
    t: &mut Table,
    id: u64,
    keys: Option<&[Vec<u8>]>,
    me: u64,
    own: &mut Vec<u8>,
    wake: &mut [bool],
) {
    let Some(tr) = t.trackers.get_mut(&id) else {
        return;
    };
    let own_resp3 = tr.shared.resp.load(Ordering::Relaxed) == 3;
    let mut msg = Vec::new();
    let target = if tr.redirect != 0 {
        match server.clients.get(tr.redirect) {
            Some(redir) => redir,
            None => {
                tr.broken = true;
                if own_resp3 {
                    let mut r = Reply::new(&mut msg, true);
                    r.push_len(2);
                    r.bulk(b"tracking-redir-broken");
                    r.int(tr.redirect as i64);
                    let shared = tr.shared.clone();
                    crate::pubsub::deliver(&shared, &msg, me, own, wake);
                }
                return;
            }
        }
    } else {
        tr.shared.clone()
    };
    let redirected = tr.redirect != 0;
    let resp3 = target.resp.load(Ordering::Relaxed) == 3;
    let subscribed = target.conn.flags.load(Ordering::Relaxed) & FLAG_PUBSUB != 0;
    let mut r = Reply::new(&mut msg, resp3);
    if resp3 {
        r.push_len(2);
        r.bulk(b"invalidate");
    } else if redirected && subscribed {
        r.array_len(3);
        r.bulk(b"message");
        r.bulk(INVALIDATE_CHANNEL);
    } else {
        // A RESP2 client without a subscribed redirect has nowhere to be told.
        return;
    }
    match keys {
        Some(keys) => {
            r.array_len(keys.len());
            for k in keys {
                r.bulk(k);
            }
        }
        // Redis writes the null of the tracking client's own protocol.
        None => r
            .raw()
            .extend_from_slice(if own_resp3 { b"_\r\n" } else { b"$-1\r\n" }),
    }
    crate::pubsub::deliver(&target, &msg, me, own, wake);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optin_and_optout_decide_with_caching() {
        let mut c = ClientTracking::default();
        assert!(c.remembers());
        c.mode.optin = true;
        assert!(!c.remembers());
        c.caching = true;
        assert!(c.remembers());
        c.mode = Mode {
            optout: true,
            ..Mode::default()
        };
        assert!(!c.remembers());
        c.caching = false;
        assert!(c.remembers());
        c.mode.bcast = true;
        assert!(!c.remembers());
    }
}
