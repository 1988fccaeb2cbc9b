//! Keyspace iteration: KEYS and SCAN, over the store's stable-cursor `scan`.

use ferrite_collections::format_u64;

use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::ctx::Ctx;
use crate::resp::reply::{format_i64, itoa_buf};

use super::generic::type_name;
use super::glob;

/// Buckets' worth of keys KEYS asks the store for per step.
const KEYS_STEP: usize = 1024;

/// Appends `key` as a RESP bulk string to a reply being assembled off to the side.
fn push_bulk(buf: &mut Vec<u8>, key: &[u8]) {
    let mut digits = itoa_buf();
    buf.push(b'$');
    buf.extend_from_slice(format_i64(&mut digits, key.len() as i64));
    buf.extend_from_slice(b"\r\n");
    buf.extend_from_slice(key);
    buf.extend_from_slice(b"\r\n");
}

/// `KEYS pattern`: walks the whole database, as Redis's KEYS does (and so takes as long).
pub(super) fn keys(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let pattern = args.get(1);
    let all = pattern == b"*";
    let db = ctx.client.db;
    let now = ctx.now_ms;
    let mut body = Vec::new();
    let mut n = 0usize;
    let mut cursor = 0u64;
    loop {
        cursor = ctx.store.scan(db, cursor, KEYS_STEP, now, |key, _entry| {
            if all || glob::matches(pattern, key) {
                push_bulk(&mut body, key);
                n += 1;
            }
        });
        if cursor == 0 {
            break;
        }
    }
    ctx.reply.array_len(n);
    ctx.reply.raw().extend_from_slice(&body);
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`
pub(super) fn scan(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let Some(cursor) = crate::args::parse_scan_cursor(args.get(1)) else {
        ctx.reply.error("ERR invalid cursor");
        return;
    };
    let mut count: i64 = 10;
    let mut pattern: Option<&[u8]> = None;
    let mut type_filter: Option<&[u8]> = None;
    let mut i = 2;
    while i < args.len() {
        let opt = args.get(i);
        let has_value = i + 1 < args.len();
        if eq_ignore_case(opt, "count") && has_value {
            let Some(c) = parse_i64(args.get(i + 1)) else {
                ctx.not_integer();
                return;
            };
            if c < 1 {
                ctx.syntax_error();
                return;
            }
            count = c;
        } else if eq_ignore_case(opt, "match") && has_value {
            let p = args.get(i + 1);
            // `*` alone matches everything: skip the matcher, as Redis does.
            pattern = (p != b"*").then_some(p);
        } else if eq_ignore_case(opt, "type") && has_value {
            type_filter = Some(args.get(i + 1));
        } else {
            ctx.syntax_error();
            return;
        }
        i += 2;
    }
    let db = ctx.client.db;
    let now = ctx.now_ms;
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    let mut body = Vec::new();
    let mut n = 0usize;
    let mut hits = 0u64;
    let next = ctx.store.scan(db, cursor, count, now, |key, entry| {
        if let Some(p) = pattern
            && !glob::matches(p, key)
        {
            return;
        }
        if let Some(t) = type_filter {
            // Redis looks the key up to learn its type, which counts as a keyspace hit.
            hits += 1;
            if !t.eq_ignore_ascii_case(type_name(entry.kind).as_bytes()) {
                return;
            }
        }
        push_bulk(&mut body, key);
        n += 1;
    });
    if hits > 0 {
        crate::stats::ThreadStats::add(&ctx.stats().keyspace_hits, hits);
    }
    let mut digits = itoa_buf();
    ctx.reply.array_len(2);
    ctx.reply.bulk(format_u64(&mut digits, next));
    ctx.reply.array_len(n);
    ctx.reply.raw().extend_from_slice(&body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_formatting() {
        let mut b = itoa_buf();
        assert_eq!(format_u64(&mut b, 0), b"0");
        assert_eq!(format_u64(&mut b, u64::MAX), b"18446744073709551615");
    }
}
