//! LCS: the longest common subsequence of two strings, by Redis's dynamic programme (the same
//! table and the same backtracking tie-break, so the same subsequence and ranges come out).

use super::is_string;
use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::config::Config;
use crate::ctx::Ctx;

/// Reads a key for LCS: `Ok(None)` when missing, `Err(())` when not a string.
fn read_string(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Vec<u8>>, ()> {
    let found = ctx.store.read(ctx.client.db, key, ctx.now_ms, |e| {
        is_string(e.kind).then(|| e.value.to_vec())
    });
    match found {
        None => {
            ctx.miss(key);
            Ok(None)
        }
        Some(v) => {
            ctx.hit();
            v.map(Some).ok_or(())
        }
    }
}

/// One matched range: `(a_start, a_end, b_start, b_end)`, inclusive.
type Range = (u32, u32, u32, u32);

/// `LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]` (EXCLUSIVE: both keys are read
/// at one instant).
pub(super) fn lcs(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let a = read_string(ctx, args.get(1));
    let b = read_string(ctx, args.get(2));
    let (Ok(a), Ok(b)) = (a, b) else {
        ctx.reply
            .error("ERR The specified keys must contain string values");
        return;
    };
    let a = a.unwrap_or_default();
    let b = b.unwrap_or_default();

    let (mut getlen, mut getidx, mut withmatchlen) = (false, false, false);
    let mut minmatchlen: i64 = 0;
    let mut j = 3;
    while j < args.len() {
        let opt = args.get(j);
        let more = j + 1 < args.len();
        if eq_ignore_case(opt, "idx") {
            getidx = true;
        } else if eq_ignore_case(opt, "len") {
            getlen = true;
        } else if eq_ignore_case(opt, "withmatchlen") {
            withmatchlen = true;
        } else if eq_ignore_case(opt, "minmatchlen") && more {
            let Some(v) = parse_i64(args.get(j + 1)) else {
                ctx.not_integer();
                return;
            };
            minmatchlen = v.max(0);
            j += 1;
        } else {
            ctx.syntax_error();
            return;
        }
        j += 1;
    }
    if getidx && getlen {
        ctx.reply
            .error("ERR If you want both the length and indexes, please just use IDX.");
        return;
    }
    if a.len() as u64 >= u64::from(u32::MAX - 1) || b.len() as u64 >= u64::from(u32::MAX - 1) {
        ctx.reply.error("ERR String too long for LCS");
        return;
    }
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u64 + 1) * (blen as u64 + 1);
    let max = Config::load(&ctx.server.config.proto_max_bulk_len);
    if cells.saturating_mul(4) > max {
        ctx.reply
            .error("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
        return;
    }
    let mut table: Vec<u32> = Vec::new();
    if table.try_reserve_exact(cells as usize).is_err() {
        ctx.reply
            .error("ERR Insufficient memory, failed allocating transient memory for LCS");
        return;
    }
    table.resize(cells as usize, 0);
    let w = blen + 1;
    for i in 1..=alen {
        for jj in 1..=blen {
            table[i * w + jj] = if a[i - 1] == b[jj - 1] {
                table[(i - 1) * w + jj - 1] + 1
            } else {
                table[(i - 1) * w + jj].max(table[i * w + jj - 1])
            };
        }
    }
    let total = table[alen * w + blen];

    let computelcs = getidx || !getlen;
    let mut result = vec![0u8; if computelcs { total as usize } else { 0 }];
    let mut ranges: Vec<Range> = Vec::new();
    let mut idx = total as usize;
    let (mut i, mut jj) = (alen, blen);
    // `astart == alen` means no range is open, as in Redis.
    let (mut astart, mut aend, mut bstart, mut bend) = (alen, 0usize, 0usize, 0usize);
    while computelcs && i > 0 && jj > 0 {
        let mut emit = false;
        if a[i - 1] == b[jj - 1] {
            result[idx - 1] = a[i - 1];
            if astart == alen {
                astart = i - 1;
                aend = i - 1;
                bstart = jj - 1;
                bend = jj - 1;
            } else if astart == i && bstart == jj {
                astart -= 1;
                bstart -= 1;
            } else {
                emit = true;
            }
            if astart == 0 || bstart == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            jj -= 1;
        } else {
            if table[(i - 1) * w + jj] > table[i * w + jj - 1] {
                i -= 1;
            } else {
                jj -= 1;
            }
            if astart != alen {
                emit = true;
            }
        }
        if emit {
            let match_len = aend.wrapping_sub(astart).wrapping_add(1) as u64;
            if getidx && (minmatchlen == 0 || match_len >= minmatchlen as u64) {
                ranges.push((astart as u32, aend as u32, bstart as u32, bend as u32));
            }
            astart = alen;
        }
    }

    if getidx {
        ctx.reply.map_len(2);
        ctx.reply.bulk(b"matches");
        ctx.reply.array_len(ranges.len());
        for (a0, a1, b0, b1) in ranges {
            ctx.reply.array_len(2 + usize::from(withmatchlen));
            ctx.reply.array_len(2);
            ctx.reply.int(i64::from(a0));
            ctx.reply.int(i64::from(a1));
            ctx.reply.array_len(2);
            ctx.reply.int(i64::from(b0));
            ctx.reply.int(i64::from(b1));
            if withmatchlen {
                ctx.reply.int(i64::from(a1 - a0 + 1));
            }
        }
        ctx.reply.bulk(b"len");
        ctx.reply.int(i64::from(total));
    } else if getlen {
        ctx.reply.int(i64::from(total));
    } else {
        ctx.reply.bulk(&result);
    }
}
