//! XACK (`xackCommand`).

use ferrite_collections::StreamId;

use super::id_arg::{INVALID_ID, parse_id_arg};
use super::write::{Write, update_stream_with, wrote};
use crate::args::Args;
use crate::ctx::Ctx;

/// `XACK key group id [id ...]`: how many of the IDs were pending. A missing key or group
/// acknowledges nothing (even with malformed IDs); otherwise every ID is checked before any is
/// acknowledged.
pub(super) fn xack(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let group = args.get(2);
    let r = update_stream_with(ctx, args.get(1), true, |s, reply| {
        let Some(g) = s.and_then(|s| s.groups.get_mut(group)) else {
            reply.int(0);
            return Write::Keep(());
        };
        let mut ids: Vec<StreamId> = Vec::with_capacity(args.len() - 3);
        for a in args.iter_from(3) {
            match parse_id_arg(a, 0, true, false) {
                Some(p) => ids.push(p.id),
                None => {
                    reply.error(INVALID_ID);
                    return Write::Keep(());
                }
            }
        }
        let acked = ids.into_iter().filter(|&id| g.ack(id)).count();
        reply.int(i64::try_from(acked).unwrap_or(i64::MAX));
        wrote(acked > 0, ())
    });
    if r.is_err() {
        ctx.wrong_type();
    }
}
