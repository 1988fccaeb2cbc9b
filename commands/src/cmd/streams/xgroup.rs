//! XGROUP CREATE / SETID / DESTROY / CREATECONSUMER / DELCONSUMER / HELP (`xgroupCommand`).

use ferrite_collections::Stream;

use super::group_util::{no_group, subcommand_syntax_error};
use super::id_arg::{INVALID_ID, parse_id_arg};
use super::write::{Write, update_stream_with, wrote};
use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::cmd::config_cmd::reply_help;
use crate::ctx::Ctx;
use crate::notify::flags;
use crate::resp::Reply;

/// The container is never run itself: the dispatcher resolves its subcommands.
pub(super) fn container(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    ctx.reply
        .error("ERR wrong number of arguments for 'xgroup' command");
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sub {
    Create,
    SetId,
    Destroy,
    CreateConsumer,
    DelConsumer,
}

/// `XGROUP CREATE key group <id|$> [MKSTREAM] [ENTRIESREAD n]`
pub(super) fn create(ctx: &mut Ctx<'_>, args: Args<'_>) {
    run(ctx, args, Sub::Create);
}

/// `XGROUP SETID key group <id|$> [ENTRIESREAD n]`
pub(super) fn setid(ctx: &mut Ctx<'_>, args: Args<'_>) {
    run(ctx, args, Sub::SetId);
}

/// `XGROUP DESTROY key group`
pub(super) fn destroy(ctx: &mut Ctx<'_>, args: Args<'_>) {
    run(ctx, args, Sub::Destroy);
}

/// `XGROUP CREATECONSUMER key group consumer`
pub(super) fn createconsumer(ctx: &mut Ctx<'_>, args: Args<'_>) {
    run(ctx, args, Sub::CreateConsumer);
}

/// `XGROUP DELCONSUMER key group consumer`
pub(super) fn delconsumer(ctx: &mut Ctx<'_>, args: Args<'_>) {
    run(ctx, args, Sub::DelConsumer);
}

const NO_KEY: &str = "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE \
                      you may want to use the MKSTREAM option to create an empty stream \
                      automatically.";
const BAD_ENTRIES_READ: &str = "ERR value for ENTRIESREAD must be positive or -1";

/// An ENTRIESREAD value: `Ok(None)` for -1, the error to reply otherwise.
fn entries_read(arg: &[u8]) -> Result<Option<u64>, &'static str> {
    match parse_i64(arg) {
        None => Err("ERR value is not an integer or out of range"),
        Some(-1) => Ok(None),
        Some(n) => u64::try_from(n).map(Some).map_err(|_| BAD_ENTRIES_READ),
    }
}

/// CREATE's options (parsed before the key is looked up, as Redis does): MKSTREAM and the
/// read counter, or the error already replied.
fn create_options(ctx: &mut Ctx<'_>, args: Args<'_>) -> Option<(bool, Option<u64>)> {
    let (mut mkstream, mut read) = (false, None);
    let mut i = 5;
    while i < args.len() {
        let a = args.get(i);
        if eq_ignore_case(a, "mkstream") {
            mkstream = true;
            i += 1;
        } else if eq_ignore_case(a, "entriesread") && i + 1 < args.len() {
            match entries_read(args.get(i + 1)) {
                Ok(r) => read = r,
                Err(e) => {
                    ctx.reply.error(e);
                    return None;
                }
            }
            i += 2;
        } else {
            subcommand_syntax_error(&mut ctx.reply, "xgroup", args.get(1));
            return None;
        }
    }
    Some((mkstream, read))
}

fn run(ctx: &mut Ctx<'_>, args: Args<'_>, sub: Sub) {
    let (mkstream, read) = if sub == Sub::Create {
        match create_options(ctx, args) {
            Some(o) => o,
            None => return,
        }
    } else {
        (false, None)
    };
    let key = args.get(2);
    let group = args.get(3);
    let now = ctx.now_ms;
    let r = update_stream_with(ctx, key, false, |s, reply| {
        let Some(s) = s else {
            if !mkstream {
                reply.error(NO_KEY);
                return Write::Keep(false);
            }
            // Only CREATE with MKSTREAM gets here.
            let mut s = Stream::new();
            return match create_group(reply, args, &mut s, read) {
                true => Write::Create(s, true),
                false => Write::Keep(false),
            };
        };
        let exists = s.groups.get(group).is_some();
        if !exists && matches!(sub, Sub::SetId | Sub::CreateConsumer | Sub::DelConsumer) {
            no_group(reply, key, group);
            return Write::Keep(false);
        }
        match sub {
            Sub::Create => {
                let changed = create_group(reply, args, s, read);
                wrote(changed, changed)
            }
            Sub::SetId => {
                let set = set_id(reply, args, s);
                wrote(set, set)
            }
            Sub::Destroy => {
                let gone = s.groups.destroy(group);
                reply.int(i64::from(gone));
                wrote(gone, gone)
            }
            Sub::CreateConsumer => {
                let g = s.groups.get_mut(group);
                let created = g.is_some_and(|g| g.create_consumer(args.get(4), now));
                reply.int(i64::from(created));
                wrote(created, created)
            }
            Sub::DelConsumer => {
                let pending = s
                    .groups
                    .get_mut(group)
                    .and_then(|g| g.delete_consumer(args.get(4)));
                reply.int(pending.map_or(0, |n| i64::try_from(n).unwrap_or(i64::MAX)));
                wrote(pending.is_some(), pending.is_some())
            }
        }
    });
    match r {
        Err(_) => ctx.wrong_type(),
        Ok(true) => {
            let event = match sub {
                Sub::Create => "xgroup-create",
                Sub::SetId => "xgroup-setid",
                Sub::Destroy => "xgroup-destroy",
                Sub::CreateConsumer => "xgroup-createconsumer",
                Sub::DelConsumer => "xgroup-delconsumer",
            };
            ctx.notify(flags::STREAM, event, key);
            // A destroyed group unblocks its XREADGROUP clients (with -NOGROUP).
            if sub == Sub::Destroy {
                ctx.signal_key_ready(key);
            }
        }
        Ok(false) => {}
    }
}

/// CREATE once the key is settled: replies and says whether a group was created.
fn create_group(reply: &mut Reply<'_>, args: Args<'_>, s: &mut Stream, read: Option<u64>) -> bool {
    if !(5..=8).contains(&args.len()) {
        subcommand_syntax_error(reply, "xgroup", args.get(1));
        return false;
    }
    let id = match args.get(4) {
        b"$" => s.entries.last_id(),
        a => match parse_id_arg(a, 0, true, false) {
            Some(p) => p.id,
            None => {
                reply.error(INVALID_ID);
                return false;
            }
        },
    };
    if s.groups.create(args.get(3), id, read) {
        reply.ok();
        true
    } else {
        reply.error("BUSYGROUP Consumer Group name already exists");
        false
    }
}

/// SETID on an existing group: replies and says whether the group changed.
fn set_id(reply: &mut Reply<'_>, args: Args<'_>, s: &mut Stream) -> bool {
    if args.len() != 5 && args.len() != 7 {
        subcommand_syntax_error(reply, "xgroup", args.get(1));
        return false;
    }
    let id = match args.get(4) {
        b"$" => s.entries.last_id(),
        a => match parse_id_arg(a, 0, false, false) {
            Some(p) => p.id,
            None => {
                reply.error(INVALID_ID);
                return false;
            }
        },
    };
    let mut read = None;
    if args.len() == 7 {
        if !eq_ignore_case(args.get(5), "entriesread") {
            subcommand_syntax_error(reply, "xgroup", args.get(1));
            return false;
        }
        match entries_read(args.get(6)) {
            Ok(r) => read = r,
            Err(e) => {
                reply.error(e);
                return false;
            }
        }
    }
    let Some(g) = s.groups.get_mut(args.get(3)) else {
        // The caller checked it under the same lock: not reached.
        no_group(reply, args.get(2), args.get(3));
        return false;
    };
    g.last_id = id;
    g.entries_read = read;
    reply.ok();
    true
}

const HELP: &[&str] = &[
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
];

/// `XGROUP HELP`
pub(super) fn help(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    reply_help(&mut ctx.reply, HELP);
}
