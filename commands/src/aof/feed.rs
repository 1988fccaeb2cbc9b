//! A reactor thread's side of the AOF: after each command, turns the commit numbers the
//! command took into entries for the sequencer, and holds replies until the writer is there.

use ferrite_collections::{Stream, StreamId};
use ferrite_hybridlog::{Commit, Db, Session, Value};

use super::propagate;
use super::{Entry, Txn};
use crate::args::Args;
use crate::client::Client;
use crate::objects::Collection;
use crate::server::Server;
use crate::table::CommandSpec;

/// One thread's pending AOF entries.
#[derive(Debug, Default)]
pub struct Feed {
    /// Scratch for the session's commit numbers.
    commits: Vec<Commit>,
    /// Entries (None: "nothing") for the sequencer, by commit number.
    batch: Vec<(u64, Option<Entry>)>,
}

/// What a connection holds back until the AOF writer's watermark passes.
#[derive(Debug, Default)]
pub struct Held {
    /// Replies not yet released, in order.
    pub out: Vec<u8>,
    /// The commit number the writer must reach first.
    pub until: u64,
}

impl Feed {
    /// Files the command just run: lazy-expiry deletions as `DEL` under their own numbers, the
    /// command's propagated form under the largest number it took (or `exclusive`, the number
    /// an exclusive command took after running), "nothing" under the rest. `txn` is EXEC's
    /// propagated transaction, when the command was EXEC.
    #[allow(clippy::too_many_arguments)]
    pub fn command(
        &mut self,
        server: &Server,
        session: &mut Session,
        db: Db,
        spec: &CommandSpec,
        args: Args<'_>,
        reply: &[u8],
        now_ms: u64,
        exclusive: Option<u64>,
        txn: Option<Txn>,
    ) {
        session.take_commits(&mut self.commits);
        let mut own: Option<u64> = None;
        for c in self.commits.drain(..) {
            if let Some(e) = reaped_del(server, &c) {
                self.batch.push((c.seq, Some(e)));
                continue;
            }
            // The largest own number becomes the command's; every other is "nothing".
            if let Some(prev) = own.replace(c.seq) {
                self.batch.push((prev, None));
            }
        }
        let wrote = own.is_some();
        let tag = match exclusive {
            Some(seq) => {
                if let Some(o) = own {
                    self.batch.push((o, None));
                }
                Some(seq)
            }
            None => own,
        };
        let Some(tag) = tag else {
            // Took no number: changed nothing (Redis's always-propagated commands, FLUSHALL
            // and SWAPDB, are exclusive, so they have one).
            if let Some(t) = txn {
                self.batch.extend(t.seqs.into_iter().map(|s| (s, None)));
            }
            return;
        };
        let entry = match txn {
            Some(t) => {
                self.batch.extend(t.seqs.into_iter().map(|s| (s, None)));
                t.entry
            }
            None => {
                let mut e = Entry::default();
                let mut after = After {
                    session,
                    db,
                    now_ms,
                };
                propagate::command(&mut e, db, spec, args, reply, now_ms, wrote, &mut after);
                e
            }
        };
        self.batch.push((tag, (!entry.is_empty()).then_some(entry)));
    }

    /// Files writes made outside commands (active expiry on the tick): deletions as `DEL`.
    /// Numbers taken while the sequence was off (a stale leftover) are dropped.
    pub fn background(&mut self, server: &Server, session: &mut Session) {
        session.take_commits(&mut self.commits);
        if !server.store.commit_sequence_on() {
            self.commits.clear();
            return;
        }
        for c in self.commits.drain(..) {
            let e = reaped_del(server, &c);
            self.batch.push((c.seq, e));
        }
    }

    /// Hands the batch to the sequencer.
    pub fn push(&mut self, server: &Server) {
        server.aof.push(server, &mut self.batch);
    }

    /// Whether entries wait to be pushed.
    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }
}

/// The dataset as a command left it, for its propagated form.
struct After<'s> {
    session: &'s mut Session,
    db: Db,
    now_ms: u64,
}

impl After<'_> {
    fn with_stream<R>(&mut self, key: &[u8], f: impl FnOnce(&Stream) -> R) -> Option<R> {
        self.session
            .read_value(self.db, key, self.now_ms, |e| match e.value {
                Value::Object(o) => match Collection::of(o) {
                    Some(Collection::Stream(s)) => Some(f(s)),
                    _ => None,
                },
                Value::String(_) => None,
            })
            .flatten()
    }
}

impl propagate::After for After<'_> {
    fn exists(&mut self, key: &[u8]) -> bool {
        self.session.exists(self.db, key, self.now_ms)
    }

    fn stream_edges(&mut self, key: &[u8]) -> Option<(u64, StreamId)> {
        self.with_stream(key, |s| {
            let first = if s.entries.is_empty() {
                StreamId::MAX
            } else {
                s.entries.first_id()
            };
            (s.entries.len(), first)
        })
    }

    fn group(&mut self, key: &[u8], group: &[u8]) -> Option<(StreamId, Option<u64>)> {
        self.with_stream(key, |s| {
            s.groups.get(group).map(|g| (g.last_id, g.entries_read))
        })
        .flatten()
    }

    fn entry_exists(&mut self, key: &[u8], id: StreamId) -> Option<bool> {
        self.with_stream(key, |s| s.entries.get(id).is_some())
    }

    fn nack(&mut self, key: &[u8], group: &[u8], id: StreamId) -> Option<(Vec<u8>, u64, u64)> {
        self.with_stream(key, |s| {
            let n = s.groups.get(group)?.pel().get(&id)?;
            Some((n.consumer().to_vec(), n.delivery_time_ms, n.delivery_count))
        })
        .flatten()
    }
}

/// `DEL key` for a commit that only reaped an expired key.
fn reaped_del(server: &Server, c: &Commit) -> Option<Entry> {
    let mut e = Entry::default();
    push_reaped_del(server, c, &mut e).then_some(e)
}

/// Appends `DEL key` to `entry` if `c` only reaped an expired key; returns whether it did.
fn push_reaped_del(server: &Server, c: &Commit, entry: &mut Entry) -> bool {
    let Some((pdb, key)) = c.reaped.as_ref() else {
        return false;
    };
    match server.store.logical_db(*pdb) {
        Some(db) => {
            entry.push(db, [&b"DEL"[..], key]);
            true
        }
        None => false,
    }
}

/// The AOF side of EXEC: each queued command's propagated form, in order (the worker files
/// the whole transaction under EXEC's one commit number, see [`Feed::command`]).
#[derive(Debug, Default)]
pub struct TxnFeed {
    txn: Txn,
    commits: Vec<Commit>,
}

impl TxnFeed {
    /// After one queued command ran: its lazy-expiry deletions and its propagated form.
    #[allow(clippy::too_many_arguments)]
    pub fn command(
        &mut self,
        server: &Server,
        session: &mut Session,
        db: Db,
        spec: &CommandSpec,
        args: Args<'_>,
        reply: &[u8],
        now_ms: u64,
    ) {
        session.take_commits(&mut self.commits);
        let mut wrote = false;
        for c in self.commits.drain(..) {
            self.txn.seqs.push(c.seq);
            wrote |= c.reaped.is_none();
            push_reaped_del(server, &c, &mut self.txn.entry);
        }
        let mut after = After {
            session,
            db,
            now_ms,
        };
        let e = &mut self.txn.entry;
        propagate::command(e, db, spec, args, reply, now_ms, wrote, &mut after);
    }

    /// After a command whose propagation was turned off (a script's `redis.set_repl`): its
    /// commit numbers are taken (filed as "nothing"), its lazy-expiry deletions still go out.
    pub fn unpropagated(&mut self, server: &Server, session: &mut Session) {
        session.take_commits(&mut self.commits);
        for c in self.commits.drain(..) {
            self.txn.seqs.push(c.seq);
            push_reaped_del(server, &c, &mut self.txn.entry);
        }
    }

    /// Adds a transaction filed by a command run inside this one (a script run by EXEC).
    pub fn absorb(&mut self, inner: Txn) {
        self.txn.entry.extend(&inner.entry);
        self.txn.seqs.extend(inner.seqs);
    }

    /// The transaction, for the worker.
    pub fn finish(self) -> Txn {
        self.txn
    }
}

/// After a batch of `client`'s commands wrote `out[from..]`: while the AOF is on, moves those
/// replies behind the connection's held ones unless the writer already covers every number
/// the store has handed out (so nothing the replies reflect can be lost).
pub fn hold_replies(server: &Server, client: &mut Client, out: &mut Vec<u8>, from: usize) {
    let aof = &server.aof;
    if !aof.is_on() && client.held.out.is_empty() {
        return;
    }
    let target = server.store.next_commit_seq().saturating_sub(1);
    if client.held.out.is_empty() {
        if out.len() == from || !aof.hold(target) {
            return;
        }
        client.held.until = target;
    } else {
        client.held.until = client.held.until.max(target);
    }
    client.held.out.extend_from_slice(&out[from..]);
    out.truncate(from);
}

/// Moves `client`'s held replies to `out` once the writer has passed them; returns whether any
/// remain held.
pub fn release_replies(server: &Server, client: &mut Client, out: &mut Vec<u8>) -> bool {
    if client.held.out.is_empty() {
        return false;
    }
    if server.aof.released() < client.held.until {
        return true;
    }
    out.extend_from_slice(&client.held.out);
    client.held.out.clear();
    client.held.until = 0;
    server.aof.unhold();
    false
}
