//! Commands whose keys live below the store's head address wait for asynchronous disk reads.
//!
//! Before a command runs, the worker asks the store, for each of its keys (the command table's
//! first/last/step key positions), whether the lookup would read the device
//! (`Session::locate`). If any would, the command does not run: the connection parks with the
//! command still unconsumed, the reads go to the reactor (`Worker::take_disk_reads`), and each
//! completion advances its key's walk (`Worker::disk_read_done`); when the last walk of the
//! command is done the connection resumes and the command runs again, now finding its records
//! in the thread's cache of records read back. Other connections of the thread run meanwhile,
//! and the parked connection's later pipelined commands wait behind it, so replies keep
//! their order.
//!
//! EXEC waits for the keys of every queued command. A command whose keys move (a `numkeys`
//! argument: EVAL, ZUNION, LMPOP, ...) has them found by Redis's key specs. Keys nothing can
//! name up front (SORT's BY and GET patterns, keys a script reaches without declaring them)
//! are read synchronously by the store when the command reaches them.

use std::collections::{HashMap, HashSet};

use ferrite_hybridlog::tier::{Fetch, FetchStep, FileRead};
use ferrite_hybridlog::{Db, Session};

use crate::args::Args;
use crate::client::Client;
use crate::table::CommandSpec;

/// A disk read the reactor should perform for this worker, named by `tag`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskRead {
    /// The read.
    pub read: FileRead,
    /// Handed back with the result to [`crate::Worker::disk_read_done`].
    pub tag: u64,
}

struct Waiting {
    client: u64,
    token: u64,
    fetch: Fetch,
}

/// The walks in flight on one worker.
#[derive(Default)]
pub(crate) struct DiskWaits {
    next_tag: u64,
    fetches: HashMap<u64, Waiting>,
    /// Walks not yet finished, per client id.
    pending: HashMap<u64, usize>,
    /// Clients one of whose walks ended on an unreadable block: their command is answered with
    /// an error instead of running on a value that could not be read.
    failed: HashSet<u64>,
    outbox: Vec<DiskRead>,
}

/// What [`DiskWaits::start`] decided for a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// Its keys are in memory or already read back: run it.
    Run,
    /// Reads were started: park until they finish, then run it again.
    Park,
    /// A key's record could not be read back (I/O error or corrupt block): answer
    /// [`READ_FAILED`] instead of running it.
    Failed,
}

/// The error a command gets when a key's record could not be read back from disk.
pub(crate) const READ_FAILED: &[u8] =
    b"ERR a key's value could not be read back from disk (I/O error or corrupt block; see the server log)";

/// The keys `spec` names at fixed positions in `args`, then, for a command whose keys move
/// (EVAL's numkeys, ZUNION, XREAD's STREAMS, ...), the keys Redis's key specs find.
fn keys<'a>(spec: &CommandSpec, args: Args<'a>) -> impl Iterator<Item = &'a [u8]> {
    // Shard channels (SSUBSCRIBE, SPUBLISH) sit where keys would, but name none.
    let n = if spec.has(crate::table::flags::PUBSUB) {
        0
    } else {
        spec.key_count(args.len())
    };
    let (first, step) = (spec.first_key.max(1) as usize, spec.step.max(1) as usize);
    let fixed = (0..n).map(move |i| args.get(first + i * step));
    fixed.chain(movable_keys(spec, args))
}

/// The keys of `args` for `spec`, as Redis's key specs find them (client-side caching
/// remembers a read's keys this way).
pub(crate) fn command_keys<'a>(
    spec: &CommandSpec,
    args: Args<'a>,
) -> impl Iterator<Item = &'a [u8]> {
    keys(spec, args)
}

/// The keys of a command whose table entry names none up front, by its key specs; empty for
/// every other command (no allocation).
fn movable_keys<'a>(spec: &CommandSpec, args: Args<'a>) -> Vec<&'a [u8]> {
    if spec.first_key > 0 {
        return Vec::new();
    }
    let Some(meta) = crate::cmd::command::meta::meta(spec.name).filter(|m| m.movable) else {
        return Vec::new();
    };
    let argv: Vec<&[u8]> = args.iter_from(0).collect();
    crate::cmd::command::meta::keys_from_specs(&meta.key_specs, &argv)
        .map(|found| found.iter().map(|k| argv[k.pos]).collect())
        .unwrap_or_default()
}

impl DiskWaits {
    /// Starts the reads `client`'s command needs: whether it runs, waits for them, or cannot
    /// run because a read failed.
    pub(crate) fn start(
        &mut self,
        session: &mut Session,
        client: &Client,
        spec: &CommandSpec,
        args: Args<'_>,
    ) -> Start {
        // Checked once per command, before anything is collected: this runs for every command.
        if !session.may_read_disk() {
            return Start::Run;
        }
        let mut started = 0;
        for key in keys(spec, args) {
            started += usize::from(self.read_key(session, client, client.db, key));
        }
        if spec.name == "exec"
            && let Some(multi) = &client.multi
        {
            // The queued commands' keys, in the database each will run in.
            let mut db = client.db;
            for i in 0..multi.commands.len() {
                let Some((queued, qargs)) = multi.args(i) else {
                    continue;
                };
                if queued.name == "select" {
                    if let Some(d) =
                        crate::args::parse_i64(qargs.get(1)).and_then(|d| Db::try_from(d).ok())
                    {
                        db = d;
                    }
                    continue;
                }
                for key in keys(queued, qargs) {
                    started += usize::from(self.read_key(session, client, db, key));
                }
            }
        }
        if started > 0 {
            *self.pending.entry(client.id).or_default() += started;
            return Start::Park;
        }
        if self.failed.remove(&client.id) {
            return Start::Failed;
        }
        Start::Run
    }

    /// Starts the walk for `key` if its lookup would read the device; true if it did.
    fn read_key(&mut self, session: &mut Session, client: &Client, db: Db, key: &[u8]) -> bool {
        let Some(mut fetch) = session.locate(db, key) else {
            return false;
        };
        match fetch.start(session.store()) {
            FetchStep::Read(read) => {
                self.send(read, client.id, client.token, fetch);
                true
            }
            _ => {
                if fetch.failed() {
                    self.failed.insert(client.id);
                }
                false
            }
        }
    }

    fn send(&mut self, read: FileRead, client: u64, token: u64, fetch: Fetch) {
        let tag = self.next_tag;
        self.next_tag = self.next_tag.wrapping_add(1);
        self.outbox.push(DiskRead { read, tag });
        self.fetches.insert(
            tag,
            Waiting {
                client,
                token,
                fetch,
            },
        );
    }

    /// A read finished: advances its walk. Returns the token of a client whose command can run
    /// again (all its walks are done).
    pub(crate) fn done(
        &mut self,
        session: &Session,
        tag: u64,
        result: std::io::Result<&[u8]>,
    ) -> Option<u64> {
        let Waiting {
            client,
            token,
            mut fetch,
        } = self.fetches.remove(&tag)?;
        match fetch.complete(session.store(), result) {
            FetchStep::Read(read) => {
                self.send(read, client, token, fetch);
                None
            }
            FetchStep::Done => {
                if fetch.failed() && self.pending.contains_key(&client) {
                    self.failed.insert(client);
                }
                let left = self.pending.get_mut(&client)?;
                *left -= 1;
                if *left > 0 {
                    return None;
                }
                self.pending.remove(&client);
                Some(token)
            }
        }
    }

    /// Moves the reads to perform into `into`.
    pub(crate) fn take_reads(&mut self, into: &mut Vec<DiskRead>) {
        into.append(&mut self.outbox);
    }

    /// `client` is gone: its walks finish unobserved (their results only warm the cache).
    pub(crate) fn forget(&mut self, client: u64) {
        self.pending.remove(&client);
        self.failed.remove(&client);
    }
}
