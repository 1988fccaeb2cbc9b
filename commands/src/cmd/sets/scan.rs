//! What SSCAN, ZSCAN (and HSCAN-style commands) share with Redis's `scanGenericCommand`: the
//! cursor and option parsing, and the reply shape.

use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::cmd::keys::glob;
use crate::ctx::Ctx;
use crate::resp::Reply;

/// The options of a key-scanning command.
pub(crate) struct ScanOptions<'a> {
    /// MATCH pattern; `None` for none or `*` (which matches everything).
    pub pattern: Option<&'a [u8]>,
    /// COUNT (at least 1).
    pub count: usize,
}

impl ScanOptions<'_> {
    /// Whether `member` passes the MATCH filter.
    pub(crate) fn matches(&self, member: &[u8]) -> bool {
        self.pattern.is_none_or(|p| glob::matches(p, member))
    }
}

/// Parses `[MATCH pattern] [COUNT count]` from argument `start`, replying with Redis's error
/// when they are malformed.
pub(crate) fn parse_options<'a>(
    ctx: &mut Ctx<'_>,
    args: Args<'a>,
    start: usize,
) -> Option<ScanOptions<'a>> {
    let mut opts = ScanOptions {
        pattern: None,
        count: 10,
    };
    let mut i = start;
    while i < args.len() {
        let opt = args.get(i);
        let Some(value) = args.try_get(i + 1) else {
            ctx.syntax_error();
            return None;
        };
        if eq_ignore_case(opt, "count") {
            let Some(c) = parse_i64(value) else {
                ctx.not_integer();
                return None;
            };
            if c < 1 {
                ctx.syntax_error();
                return None;
            }
            opts.count = usize::try_from(c).unwrap_or(usize::MAX);
        } else if eq_ignore_case(opt, "match") {
            opts.pattern = (value != b"*").then_some(value);
        } else {
            ctx.syntax_error();
            return None;
        }
        i += 2;
    }
    Some(opts)
}

/// Writes the header of a scan reply: `[cursor, [` followed by `n` elements the caller writes.
pub(crate) fn reply_header(reply: &mut Reply<'_>, cursor: u64, n: usize) {
    let mut buf = [0u8; 20];
    reply.array_len(2);
    reply.bulk(ferrite_collections::format_u64(&mut buf, cursor));
    reply.array_len(n);
}
