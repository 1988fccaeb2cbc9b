//! Command resolution for the worker: finds a request's table entry (and subcommand) with its
//! id, checks arity, and builds Redis's rejection errors byte for byte.

use crate::stats::ThreadStats;
use crate::table::{self, CmdId, CommandSpec};

/// Counts a call refused before running; `id` is the command, when it was found.
#[cold]
pub(crate) fn count_rejected(stats: &ThreadStats, id: Option<CmdId>) {
    ThreadStats::add(&stats.rejected_calls, 1);
    if let Some(id) = id {
        stats.commands_by_id.reject(id);
    }
}

/// Why a command was refused before running: the error message, and the command's id when it
/// was found.
pub(crate) type Rejected = (Vec<u8>, Option<CmdId>);

/// Finds the command (or container subcommand) and checks its arity, with Redis's error texts
/// (client bytes in them as they are, as Redis's `%s` copies them). The error carries the
/// command's id when the command was found (a rejected call of it). `found` is the name's
/// lookup when the caller already did it (`Some(None)`: not a command).
pub(crate) fn resolve(
    args: crate::args::Args<'_>,
    found: Option<Option<(&'static CommandSpec, CmdId)>>,
) -> Result<(&'static CommandSpec, CmdId), Rejected> {
    let name = args.get(0);
    let Some((spec, id)) = found.unwrap_or_else(|| table::lookup_id(name)) else {
        // Redis's commandCheckExistence: each argument gets what is left of 128 bytes.
        let mut list = Vec::new();
        for a in args.iter_from(1) {
            if list.len() >= 128 {
                break;
            }
            let room = 128 - list.len();
            list.push(b'\'');
            list.extend_from_slice(clip(a, room));
            list.extend_from_slice(b"' ");
        }
        let msg = [
            &b"ERR unknown command '"[..],
            clip(name, 128),
            b"', with args beginning with: ",
            &list,
        ]
        .concat();
        return Err((msg, None));
    };
    if spec.subcommands.is_empty() || args.len() < 2 {
        if !spec.arity_ok(args.len()) {
            let msg = format!("ERR wrong number of arguments for '{}' command", spec.name);
            return Err((msg.into_bytes(), Some(id)));
        }
        return Ok((spec, id));
    }
    let Some((sub, sub_id)) = table::lookup_sub(spec, id, args.get(1)) else {
        let help = format!("'. Try {} HELP.", spec.name.to_ascii_uppercase());
        let msg = [
            &b"ERR unknown subcommand '"[..],
            clip(args.get(1), 128),
            help.as_bytes(),
        ]
        .concat();
        return Err((msg, None));
    };
    if !sub.arity_ok(args.len()) {
        let msg = format!(
            "ERR wrong number of arguments for '{}|{}' command",
            spec.name, sub.name
        );
        return Err((msg.into_bytes(), Some(sub_id)));
    }
    Ok((sub, sub_id))
}

/// Redis's `%.<max>s` of a client argument: at most `max` bytes, and a NUL ends it (C string).
fn clip(s: &[u8], max: usize) -> &[u8] {
    let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
    &s[..end.min(max)]
}
