//! XADD and XTRIM.

use ferrite_collections::StreamId;
use ferrite_collections::stream::NewId;

use super::range::reply_stream_id;
use super::trim_args::parse_add_or_trim;
use super::write::update_stream;
use crate::args::Args;
use crate::ctx::Ctx;
use crate::notify::flags;
use crate::objects::WrongType;

/// `XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value
/// [field value ...]`
pub(crate) fn xadd(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let parsed = match parse_add_or_trim(&args, true, ctx.client.obey) {
        Ok(p) => p,
        Err(e) => return ctx.reply.error(e),
    };
    let field_pos = parsed.id_pos + 1;
    let argc = args.len();
    if argc < field_pos + 2 || (argc - field_pos) % 2 == 1 {
        return ctx
            .reply
            .error("ERR wrong number of arguments for 'xadd' command");
    }
    // Checked before the key is looked up, so that a refused 0-0 creates no empty stream.
    let id = match parsed.id {
        None => NewId::Auto,
        Some(p) if !p.seq_given => NewId::AutoSeq(p.id.ms),
        Some(p) if p.id == StreamId::MIN => {
            return ctx
                .reply
                .error("ERR The ID specified in XADD must be greater than 0-0");
        }
        Some(p) => NewId::Exact(p.id),
    };
    let fv: Vec<&[u8]> = args.iter_from(field_pos).collect();
    let key = args.get(1);
    let now = ctx.now_ms;
    let r = update_stream(ctx, key, !parsed.nomkstream, |s| {
        match s.entries.add(id, &fv, now) {
            Ok(added) => {
                let trimmed = parsed.trim.as_ref().map_or(0, |t| s.entries.trim(t));
                (Ok((added, trimmed > 0)), true)
            }
            Err(e) => (Err(e), false),
        }
    });
    match r {
        Err(WrongType) => ctx.wrong_type(),
        Ok(None) => ctx.reply.null(),
        Ok(Some(Err(e))) => ctx.reply.error(&format!("ERR {e}")),
        Ok(Some(Ok((added, trimmed)))) => {
            reply_stream_id(&mut ctx.reply, added);
            ctx.notify(flags::STREAM, "xadd", key);
            if trimmed {
                ctx.notify(flags::STREAM, "xtrim", key);
            }
            ctx.signal_key_ready(key);
        }
    }
}

/// `XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]`
pub(crate) fn xtrim(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let trim = match parse_add_or_trim(&args, false, ctx.client.obey) {
        Ok(p) => p.trim,
        Err(e) => return ctx.reply.error(e),
    };
    let Some(trim) = trim else {
        return ctx.syntax_error();
    };
    let r = update_stream(ctx, args.get(1), false, |s| {
        let n = s.entries.trim(&trim);
        (n, n > 0)
    });
    match r {
        Err(WrongType) => ctx.wrong_type(),
        Ok(n) => {
            let n = n.unwrap_or(0);
            if n > 0 {
                ctx.notify(flags::STREAM, "xtrim", args.get(1));
            }
            ctx.reply.int(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}
