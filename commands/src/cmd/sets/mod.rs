//! Set commands (Redis's `t_set.c`): SADD SREM SCARD SISMEMBER SMISMEMBER SMEMBERS SPOP
//! SRANDMEMBER SMOVE, the algebra (SINTER SINTERCARD SUNION SDIFF and their STORE forms) and
//! SSCAN.
//!
//! Single-key writes are one `rmw_value` each; commands over several keys run with the EXCLUSIVE
//! flag, so reading the inputs and writing the destination is atomic across threads.

mod algebra;
mod basic;
pub(crate) mod scan;
mod table;

use std::cell::RefCell;

use ferrite_collections::{Rng, Set};
use ferrite_hybridlog::{NO_EXPIRY, ObjectWrite, Value, ValueKind, ValueMut};

use crate::ctx::Ctx;
use crate::objects::Collection;
use crate::resp::Reply;

use algebra::*;
use basic::*;

pub use table::COMMANDS;

/// The key holds a value of another type: the caller replies with [`Ctx::wrong_type`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WrongType;

thread_local! {
    /// Each reactor thread draws SPOP/SRANDMEMBER/ZRANDMEMBER picks from its own generator, so
    /// no lock is taken on these paths.
    static RNG: RefCell<Rng> = RefCell::new(Rng::from_entropy());
}

/// Runs `f` with this thread's random generator.
pub(crate) fn with_rng<R>(f: impl FnOnce(&mut Rng) -> R) -> R {
    RNG.with(|r| f(&mut r.borrow_mut()))
}

/// The set inside a value, if it is one.
fn set_of<'a>(v: &Value<'a>) -> Option<&'a Set> {
    match v {
        Value::Object(o) => match Collection::of(*o) {
            Some(Collection::Set(s)) => Some(s),
            _ => None,
        },
        Value::String(_) => None,
    }
}

/// Reads `key` as a set: `f` gets the set (`None` when missing or expired) and the reply. It runs
/// under the record's lock, so it must be short and must not use the store. `stats` counts a
/// keyspace hit or miss (Redis's `lookupKeyRead`; writers use `lookupKeyWrite`, which does not).
/// Returns `Err(WrongType)`, without calling `f`, when the key holds another type.
pub(crate) fn with_set<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    stats: bool,
    f: impl FnOnce(Option<&Set>, &mut Reply<'_>) -> R,
) -> Result<R, WrongType> {
    let mut f = Some(f);
    let reply = &mut ctx.reply;
    let found = ctx
        .store
        .read_value(ctx.client.db, key, ctx.now_ms, |e| match set_of(&e.value) {
            Some(s) => f.take().map(|f| f(Some(s), reply)).ok_or(WrongType),
            None => Err(WrongType),
        });
    match found {
        Some(r) => {
            if stats {
                ctx.hit();
            }
            r
        }
        None => {
            if stats {
                ctx.miss();
            }
            // `f` is still there: the store did not call the closure.
            f.take().map(|f| f(None, &mut ctx.reply)).ok_or(WrongType)
        }
    }
}

/// Read-modify-write of `key` as a set, atomically. `f` gets the set (a new empty one when the
/// key is missing) and returns its result and whether it changed anything. A new non-empty set
/// is stored without TTL, an existing set that became empty is deleted, an updated one keeps its
/// TTL. `f` may be called again with a fresh view if a racing insert wins.
pub(crate) fn update_set<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    mut f: impl FnMut(&mut Set) -> (R, bool),
) -> Result<R, WrongType> {
    ctx.store
        .rmw_value(ctx.client.db, key, ctx.now_ms, |e| match e {
            None => {
                let mut s = Set::new();
                let (r, _) = f(&mut s);
                if s.is_empty() {
                    ObjectWrite::Keep(Ok(r))
                } else {
                    ObjectWrite::Put {
                        object: Collection::Set(s).boxed(),
                        expire_at: NO_EXPIRY,
                        result: Ok(r),
                    }
                }
            }
            Some(e) => {
                let s = match e.value {
                    ValueMut::Object(o) if e.kind == ValueKind::Set => {
                        match Collection::of_mut(o) {
                            Some(Collection::Set(s)) => s,
                            _ => return ObjectWrite::Keep(Err(WrongType)),
                        }
                    }
                    _ => return ObjectWrite::Keep(Err(WrongType)),
                };
                let (r, changed) = f(s);
                if s.is_empty() {
                    ObjectWrite::Delete(Ok(r))
                } else if changed {
                    ObjectWrite::Updated(Ok(r))
                } else {
                    ObjectWrite::Keep(Ok(r))
                }
            }
        })
}

/// Replaces `key` with `s` (any old value and TTL dropped), or deletes `key` when `s` is empty,
/// as the STORE commands do. Returns the stored cardinality.
pub(crate) fn store_set(ctx: &mut Ctx<'_>, key: &[u8], s: Set) -> usize {
    let n = s.len();
    if n == 0 {
        ctx.store.delete(ctx.client.db, key, ctx.now_ms);
    } else {
        ctx.store
            .upsert_object(ctx.client.db, key, Collection::Set(s).boxed(), NO_EXPIRY);
    }
    n
}
