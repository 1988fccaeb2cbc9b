//! Read-modify-write of a stream key. Unlike the other collections, a stream left empty stays
//! (Redis deletes a stream only on DEL, or XADD NOMKSTREAM never creates one).

use ferrite_collections::Stream;
use ferrite_hybridlog::{NO_EXPIRY, ObjectWrite};

use crate::ctx::Ctx;
use crate::objects::{Collection, Slot, WrongType, slot};
use crate::resp::Reply;

/// What a stream read-modify-write decided.
pub(super) enum Write<R> {
    /// Nothing changed.
    Keep(R),
    /// The stream was changed in place.
    Updated(R),
    /// The key was missing: store this new stream.
    Create(Stream, R),
}

/// Read-modify-write of `key` as a stream, atomically. `f` gets the stream (`None` when the
/// key is missing) and the reply, which it may write directly: if a racing writer makes the
/// store call `f` again, what the previous call wrote is dropped first. An emptied stream stays
/// (Redis never deletes a stream on its own). `Err(WrongType)` (nothing replied) when the key
/// holds another type. `stats` counts a keyspace hit or miss, for the commands Redis looks
/// their key up with `lookupKeyRead` (a wrong type is a hit).
pub(super) fn update_stream_with<'c, R>(
    ctx: &mut Ctx<'c>,
    key: &[u8],
    stats: bool,
    mut f: impl FnMut(Option<&mut Stream>, &mut Reply<'c>) -> Write<R>,
) -> Result<R, WrongType> {
    let db = ctx.client.db;
    let reply = &mut ctx.reply;
    let mark = reply.mark();
    let mut found = false;
    let r = ctx.store.rmw_value(db, key, ctx.now_ms, |e| {
        reply.truncate(mark);
        found = e.is_some();
        let s = match slot::<Stream>(e) {
            Slot::WrongType => return ObjectWrite::Keep(Err(WrongType)),
            Slot::Missing => None,
            Slot::Of(s) => Some(s),
        };
        match f(s, reply) {
            Write::Keep(r) => ObjectWrite::Keep(Ok(r)),
            Write::Updated(r) => ObjectWrite::Updated(Ok(r)),
            Write::Create(s, r) => ObjectWrite::Put {
                object: Collection::Stream(s).boxed(),
                expire_at: NO_EXPIRY,
                result: Ok(r),
            },
        }
    });
    if stats {
        if found {
            ctx.hit();
        } else {
            ctx.miss(key);
        }
    }
    r
}

/// `Write::Updated` when `changed`, else `Write::Keep`.
pub(super) fn wrote<R>(changed: bool, r: R) -> Write<R> {
    if changed {
        Write::Updated(r)
    } else {
        Write::Keep(r)
    }
}

/// Atomically runs `f` on the stream at `key`. A missing key gets a new empty stream if
/// `create` (stored whatever `f` does, as `streamTypeLookupWriteOrCreate` creates it before the
/// command can fail), else `f` is not called and the result is `Ok(None)`. `f` returns its
/// result and whether it changed the stream; it may run again if a racing writer wins, so it
/// must have no side effects outside the stream and its result.
pub(super) fn update_stream<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    create: bool,
    mut f: impl FnMut(&mut Stream) -> (R, bool),
) -> Result<Option<R>, WrongType> {
    update_stream_with(ctx, key, false, |s, _| match s {
        Some(s) => {
            let (r, changed) = f(s);
            wrote(changed, Some(r))
        }
        None if create => {
            let mut s = Stream::new();
            let (r, _) = f(&mut s);
            Write::Create(s, Some(r))
        }
        None => Write::Keep(None),
    })
}
