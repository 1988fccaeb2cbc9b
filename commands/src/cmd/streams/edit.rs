//! XDEL and XSETID.

use ferrite_collections::StreamId;

use super::id_arg::{INVALID_ID, parse_id_arg};
use super::write::update_stream;
use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::ctx::Ctx;
use crate::notify::flags;
use crate::objects::WrongType;

/// `XDEL key id [id ...]`: the key is looked up before the IDs are checked (a missing key
/// answers 0 whatever they are), and no entry goes unless every ID is valid.
pub(crate) fn xdel(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let ids: Option<Vec<StreamId>> = args
        .iter_from(2)
        .map(|a| parse_id_arg(a, 0, true, false).map(|p| p.id))
        .collect();
    let r = update_stream(ctx, args.get(1), false, |s| match &ids {
        None => (None, false),
        Some(ids) => {
            let n = ids.iter().filter(|id| s.entries.delete(**id)).count();
            (Some(n), n > 0)
        }
    });
    match r {
        Err(WrongType) => ctx.wrong_type(),
        Ok(None) => ctx.reply.int(0),
        Ok(Some(None)) => ctx.reply.error(INVALID_ID),
        Ok(Some(Some(n))) => {
            if n > 0 {
                ctx.notify(flags::STREAM, "xdel", args.get(1));
            }
            ctx.reply.int(n as i64);
        }
    }
}

/// `XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]`
pub(crate) fn xsetid(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let Some(id) = parse_id_arg(args.get(2), 0, true, false).map(|p| p.id) else {
        return ctx.reply.error(INVALID_ID);
    };
    let mut entries_added: Option<u64> = None;
    let mut max_deleted = StreamId::MIN;
    let mut i = 3;
    while i < args.len() {
        let more = i + 1 < args.len();
        let opt = args.get(i);
        if more && eq_ignore_case(opt, "entriesadded") {
            let Some(n) = parse_i64(args.get(i + 1)) else {
                return ctx.not_integer();
            };
            let Ok(n) = u64::try_from(n) else {
                return ctx.reply.error("ERR entries_added must be positive");
            };
            entries_added = Some(n);
        } else if more && eq_ignore_case(opt, "maxdeletedid") {
            let Some(m) = parse_id_arg(args.get(i + 1), 0, true, false) else {
                return ctx.reply.error(INVALID_ID);
            };
            if id < m.id {
                return ctx.reply.error(
                    "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                );
            }
            max_deleted = m.id;
        } else {
            return ctx.syntax_error();
        }
        i += 2;
    }
    let r = update_stream(ctx, args.get(1), false, |s| {
        // Redis 7.0 checks the new ID against the top entry only, not against the stream's
        // largest deleted ID (7.2 added that).
        let e = &mut s.entries;
        if !e.is_empty() {
            if e.last_entry_id().is_some_and(|top| id < top) {
                return (
                    Err(
                        "ERR The ID specified in XSETID is smaller than the target stream top item",
                    ),
                    false,
                );
            }
            if entries_added.is_some_and(|n| e.len() > n) {
                return (
                    Err(
                        "ERR The entries_added specified in XSETID is smaller than the target stream length",
                    ),
                    false,
                );
            }
        }
        let max = (max_deleted != StreamId::MIN).then_some(max_deleted);
        e.set_last_id(id, entries_added, max);
        (Ok(()), true)
    });
    match r {
        Err(WrongType) => ctx.wrong_type(),
        Ok(None) => ctx.reply.error("ERR no such key"),
        Ok(Some(Err(e))) => ctx.reply.error(e),
        Ok(Some(Ok(()))) => {
            ctx.notify(flags::STREAM, "xsetid", args.get(1));
            ctx.reply.ok();
        }
    }
}
