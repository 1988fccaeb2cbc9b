//! Pipelined look-ahead: the next few whole requests of a read are parsed, their commands
//! found in the table and their keys' index buckets and records prefetched before the first of
//! them runs (the batch prefetching Garnet and Dragonfly do: with a large index every lookup is
//! otherwise a cache and TLB miss, one after the other). Each request is parsed and looked up
//! once; the worker then runs them from here in order.
//!
//! Only requests [`parse_whole`] accepts enter the look-ahead; anything else (a partial or
//! unusual frame, an inline command) is left to the worker's incremental parser, which reports
//! it exactly as before. Parsing depends on the client's state (authentication, the bulk limit),
//! so the worker drops what is left of the look-ahead after any command that could change that
//! state ([`Ahead::keeps_after`]).

use ferrite_hybridlog::{Db, KeyHash, Session};

use crate::args::Args;
use crate::resp::Limits;
use crate::resp::parser::parse_whole;
use crate::table::{self, CmdId, CommandSpec, flags};

/// Requests parsed ahead at most: enough to cover a `-P 16` pipeline per connection.
const AHEAD: usize = 16;

/// One request parsed ahead.
#[derive(Clone, Copy)]
struct Parsed {
    /// Its bytes.
    consumed: usize,
    /// Its arguments: `spans[first..first + len]`, relative to its first byte.
    first: usize,
    len: usize,
    /// Its table entry (and id), if the name is known.
    found: Option<(&'static CommandSpec, CmdId)>,
    /// Its first key's hash, when the key was prefetched.
    key_hash: Option<KeyHash>,
}

/// The requests parsed ahead on one worker (reused across reads: no allocation per batch).
#[derive(Default)]
pub(crate) struct Ahead {
    spans: Vec<(u32, u32)>,
    parsed: Vec<Parsed>,
    next: usize,
}

/// A request handed out by [`Ahead::pop`].
pub(crate) struct Request<'a> {
    /// Bytes of input it occupies.
    pub consumed: usize,
    /// Its arguments.
    pub args: Args<'a>,
    /// Its top-level table entry, if its name is known.
    pub found: Option<(&'static CommandSpec, CmdId)>,
    /// Its first key's hash, when the key was prefetched: for [`Session::hint_key`].
    pub key_hash: Option<KeyHash>,
}

impl Ahead {
    /// Whether every request parsed ahead has been handed out.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.next >= self.parsed.len()
    }

    /// Forgets what is left (the client's state changed, or the batch ended).
    #[inline]
    pub fn clear(&mut self) {
        self.spans.clear();
        self.parsed.clear();
        self.next = 0;
    }

    /// Parses up to [`AHEAD`] whole requests at the start of `input`, resolves their names and,
    /// when there are two keys or more, prefetches them in `db`.
    pub fn fill(&mut self, input: &[u8], limits: &Limits, session: &mut Session, db: Db) {
        self.clear();
        // Each key, with the request it belongs to.
        let mut keys: [(&[u8], usize); AHEAD] = [(&[], 0); AHEAD];
        let mut n_keys = 0;
        let mut at = 0;
        while self.parsed.len() < AHEAD {
            let first = self.spans.len();
            let Some(consumed) = parse_whole(&input[at..], limits, &mut self.spans) else {
                break;
            };
            let request = &input[at..at + consumed];
            let arg = |(o, l): (u32, u32)| &request[o as usize..(o + l) as usize];
            let found = table::lookup_id(arg(self.spans[first]));
            if let Some((spec, _)) = found
                && spec.first_key == 1
                && let Some(&key) = self.spans.get(first + 1)
            {
                keys[n_keys] = (arg(key), self.parsed.len());
                n_keys += 1;
            }
            self.parsed.push(Parsed {
                consumed,
                first,
                len: self.spans.len() - first,
                found,
                key_hash: None,
            });
            at += consumed;
        }
        // A lone key gains nothing: its lookup would miss just the same right after.
        if n_keys < 2 {
            return;
        }
        for &(key, request) in &keys[..n_keys] {
            self.parsed[request].key_hash = Some(session.prefetch(db, key));
        }
        for &(key, request) in &keys[..n_keys] {
            if let Some(hash) = self.parsed[request].key_hash {
                session.prefetch_record(db, key, hash);
            }
        }
    }

    /// The next request parsed ahead; `input` starts where it does (the worker's position).
    #[inline]
    pub fn pop<'a>(&'a mut self, input: &'a [u8]) -> Option<Request<'a>> {
        let p = *self.parsed.get(self.next)?;
        self.next += 1;
        Some(Request {
            consumed: p.consumed,
            args: Args::new(&input[..p.consumed], &self.spans[p.first..p.first + p.len]),
            found: p.found,
            key_hash: p.key_hash,
        })
    }

    /// Whether requests parsed before `spec` ran are still parsed right after it: only data
    /// commands are known not to change what parsing depends on (AUTH, HELLO and RESET change
    /// authentication, CONFIG SET the bulk limit, and so on).
    #[inline]
    pub fn keeps_after(spec: &CommandSpec) -> bool {
        (spec.has(flags::READONLY) || spec.has(flags::WRITE)) && !spec.has(flags::ADMIN)
    }
}
