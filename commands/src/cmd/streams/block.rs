//! XREAD and XREADGROUP with BLOCK: parking a client until an XADD reaches one of its streams.
//!
//! The blocking machinery (`crate::blocking`) re-runs a woken command from its request. For
//! streams that needs one thing more than for lists: XREAD's `$` means "the last ID when I
//! blocked", so the IDs resolved at the first park are kept in the client's wait and used by
//! every re-run instead of resolving `$` again.

use ferrite_collections::StreamId;

use crate::blocking::{self, Attempt, Denied, Want};
use crate::ctx::Ctx;

/// Runs a stream read that may block. `ids` are the IDs the client asked for, one per key,
/// with `$` resolved by the caller; a re-run after a wake-up gets the IDs resolved at the first
/// park instead. `attempt` serves the read with the IDs it is given or reports `Empty`;
/// `timeout_ms` is the BLOCK argument (0: forever). In MULTI (no blocking) an empty read
/// answers a null array, as Redis does.
pub(super) fn serve_or_block(
    ctx: &mut Ctx<'_>,
    keys: &[&[u8]],
    ids: Vec<StreamId>,
    timeout_ms: i64,
    mut attempt: impl FnMut(&mut Ctx<'_>, &[StreamId]) -> Attempt,
) {
    let ids = match &ctx.client.blocked {
        Some(b) if b.want == Want::Stream && b.stream_ids.len() == ids.len() => {
            b.stream_ids.clone()
        }
        _ => ids,
    };
    blocking::serve_or_block(
        ctx,
        keys.iter().copied(),
        Want::Stream,
        timeout_ms,
        Denied::NullArray,
        |ctx| attempt(ctx, &ids),
    );
    if ctx.client.park
        && let Some(b) = ctx.client.blocked.as_mut()
        && b.stream_ids.is_empty()
    {
        b.stream_ids = ids;
    }
}

/// Whether this run of a stream read is a re-run of one that parked (XREADGROUP then answers
/// a group deleted meanwhile with Redis's "no longer exists" error).
pub(super) fn is_rerun(ctx: &Ctx<'_>) -> bool {
    ctx.client
        .blocked
        .as_ref()
        .is_some_and(|b| b.want == Want::Stream)
}
