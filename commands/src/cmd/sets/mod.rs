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
use ferrite_hybridlog::NO_EXPIRY;

use crate::ctx::Ctx;
use crate::objects::{self, Collection};
use crate::resp::Reply;

use algebra::*;
use basic::*;

pub use table::COMMANDS;

pub(crate) use crate::objects::WrongType;

thread_local! {
    /// Each reactor thread draws SPOP/SRANDMEMBER/ZRANDMEMBER picks from its own generator, so
    /// no lock is taken on these paths.
    static RNG: RefCell<Rng> = RefCell::new(Rng::from_entropy());
}

/// Runs `f` with this thread's random generator.
pub(crate) fn with_rng<R>(f: impl FnOnce(&mut Rng) -> R) -> R {
    RNG.with(|r| f(&mut r.borrow_mut()))
}

/// Reads `key` as a set ([`objects::with_collection`]); `stats` counts a keyspace hit or miss.
pub(crate) fn with_set<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    stats: bool,
    f: impl FnOnce(Option<&Set>, &mut Reply<'_>) -> R,
) -> Result<R, WrongType> {
    objects::with_collection(ctx, key, stats, f)
}

/// Read-modify-write of `key` as a set ([`objects::update_collection`]); says whether it
/// emptied (deleted) the key.
pub(crate) fn update_set<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    f: impl FnMut(&mut Set) -> (R, bool),
) -> (Result<R, WrongType>, bool) {
    let (r, change) = objects::update_collection(ctx, key, f);
    (r, change.emptied)
}

/// Replaces `key` with `s` (any old value and TTL dropped), or deletes `key` when `s` is empty,
/// as the STORE commands do. Returns the stored cardinality.
pub(crate) fn store_set(ctx: &mut Ctx<'_>, key: &[u8], s: Set) -> usize {
    let n = s.len();
    if n == 0 {
        if ctx.store.delete(ctx.client.db, key, ctx.now_ms) {
            ctx.notify(crate::notify::flags::GENERIC, "del", key);
        }
    } else {
        ctx.reap_for_notify(key);
        ctx.store
            .upsert_object(ctx.client.db, key, Collection::Set(s).boxed(), NO_EXPIRY);
    }
    n
}
