//! SINTER SINTERCARD SINTERSTORE SUNION SUNIONSTORE SDIFF SDIFFSTORE. All run EXCLUSIVE: the
//! inputs are read (type-checked in key order, as Redis) and the destination written with every
//! other thread excluded.

use ferrite_collections::Set;

use super::{WrongType, store_set, with_set};
use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::ctx::Ctx;
use crate::notify::flags;

/// The three set operations.
#[derive(Clone, Copy)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// Computes `op` over the sets at `keys`, reading each input in place (no copy of the inputs):
/// a first pass checks every key's type in order (WRONGTYPE wins over a missing key, as in
/// Redis) and finds the sizes; the result is built into a fresh set, so that its encoding is
/// the one Redis's STORE forms give the destination.
fn compute(ctx: &mut Ctx<'_>, keys: &[&[u8]], op: Op) -> Result<Set, WrongType> {
    let mut sizes = Vec::with_capacity(keys.len());
    for &key in keys {
        sizes.push(with_set(ctx, key, true, |s, _| s.map(Set::len))?);
    }
    let mut out = Set::new();
    match op {
        Op::Union => {
            for &key in keys {
                add_all(ctx, key, &mut out)?;
            }
        }
        Op::Inter => {
            if sizes.iter().any(Option::is_none) {
                return Ok(out);
            }
            let Some(smallest) = (0..sizes.len()).min_by_key(|&i| sizes[i]) else {
                return Ok(out);
            };
            let others = keys.iter().enumerate().filter(|&(i, _)| i != smallest);
            add_filtered(ctx, keys[smallest], others.map(|(_, &k)| k), true, &mut out)?;
        }
        Op::Diff => {
            let Some(Some(first_len)) = sizes.first().copied() else {
                return Ok(out);
            };
            // Redis's choice between its two algorithms (`sunionDiffGenericCommand`), which
            // decides the destination's encoding: the first adds only the survivors (an
            // intset stays one when they are all integers), the second adds the whole first
            // set and then removes (a string in it makes a hashtable for good).
            let present = sizes.iter().flatten();
            let one_work = present.clone().count() * first_len / 2;
            let two_work: usize = present.sum();
            if one_work <= two_work {
                add_filtered(ctx, keys[0], keys[1..].iter().copied(), false, &mut out)?;
            } else {
                add_all(ctx, keys[0], &mut out)?;
                for &key in &keys[1..] {
                    if out.is_empty() {
                        break;
                    }
                    with_set(ctx, key, false, |s, _| {
                        for m in s.into_iter().flat_map(Set::iter) {
                            out.remove(&m);
                        }
                    })?;
                }
            }
        }
    }
    Ok(out)
}

/// Adds every member of the set at `key` (none if it is missing) to `out`.
fn add_all(ctx: &mut Ctx<'_>, key: &[u8], out: &mut Set) -> Result<(), WrongType> {
    with_set(ctx, key, false, |s, _| {
        for m in s.into_iter().flat_map(Set::iter) {
            out.insert(&m);
        }
    })
}

/// Adds to `out` the members of the set at `from` that are in every set at `others`
/// (`inside`) or in none of them (`!inside`), reading each set once; only those survivors are
/// inserted, so `out` keeps the encoding they call for.
fn add_filtered<'k>(
    ctx: &mut Ctx<'_>,
    from: &[u8],
    others: impl Iterator<Item = &'k [u8]>,
    inside: bool,
    out: &mut Set,
) -> Result<(), WrongType> {
    let mut survivors: Vec<Vec<u8>> = with_set(ctx, from, false, |s, _| {
        s.into_iter()
            .flat_map(Set::iter)
            .map(|m| m.into_owned())
            .collect()
    })?;
    for key in others {
        if survivors.is_empty() {
            break;
        }
        with_set(ctx, key, false, |s, _| {
            survivors.retain(|m| s.is_some_and(|s| s.contains(m)) == inside);
        })?;
    }
    for m in &survivors {
        out.insert(m);
    }
    Ok(())
}

/// The non-STORE forms: a RESP3 set of the result.
fn reply_op(ctx: &mut Ctx<'_>, args: Args<'_>, op: Op) {
    let result = match compute(ctx, &args.iter_from(1).collect::<Vec<_>>(), op) {
        Ok(s) => s,
        Err(_) => return ctx.wrong_type(),
    };
    ctx.reply.set_len(result.len());
    for m in result.iter() {
        ctx.reply.bulk(&m);
    }
}

/// The STORE forms: the destination is replaced (or deleted when the result is empty).
fn store_op(ctx: &mut Ctx<'_>, args: Args<'_>, op: Op) {
    let result = match compute(ctx, &args.iter_from(2).collect::<Vec<_>>(), op) {
        Ok(s) => s,
        Err(_) => return ctx.wrong_type(),
    };
    // Redis replies first, then raises the event (or `del`, which `store_set` raises).
    let n = result.len();
    let event = match op {
        Op::Inter => "sinterstore",
        Op::Union => "sunionstore",
        Op::Diff => "sdiffstore",
    };
    if n == 0 {
        ctx.reply.int(0);
        store_set(ctx, args.get(1), result);
    } else {
        store_set(ctx, args.get(1), result);
        ctx.reply.int(n as i64);
        ctx.notify(flags::SET, event, args.get(1));
    }
}

/// `SINTER key [key ...]`
pub(crate) fn sinter(ctx: &mut Ctx<'_>, args: Args<'_>) {
    reply_op(ctx, args, Op::Inter);
}

/// `SUNION key [key ...]`
pub(crate) fn sunion(ctx: &mut Ctx<'_>, args: Args<'_>) {
    reply_op(ctx, args, Op::Union);
}

/// `SDIFF key [key ...]`
pub(crate) fn sdiff(ctx: &mut Ctx<'_>, args: Args<'_>) {
    reply_op(ctx, args, Op::Diff);
}

/// `SINTERSTORE destination key [key ...]`
pub(crate) fn sinterstore(ctx: &mut Ctx<'_>, args: Args<'_>) {
    store_op(ctx, args, Op::Inter);
}

/// `SUNIONSTORE destination key [key ...]`
pub(crate) fn sunionstore(ctx: &mut Ctx<'_>, args: Args<'_>) {
    store_op(ctx, args, Op::Union);
}

/// `SDIFFSTORE destination key [key ...]`
pub(crate) fn sdiffstore(ctx: &mut Ctx<'_>, args: Args<'_>) {
    store_op(ctx, args, Op::Diff);
}

/// Parses a `numkeys` argument as Redis's SINTERCARD/ZINTERCARD/ZMPOP do: at least 1 (any
/// parse failure gives the same message), and no more than the arguments after it. Replies and
/// returns `None` on error.
pub(crate) fn parse_numkeys(ctx: &mut Ctx<'_>, args: Args<'_>, at: usize) -> Option<usize> {
    let n = match parse_i64(args.get(at)) {
        Some(n) if n >= 1 => n,
        _ => {
            ctx.reply.error("ERR numkeys should be greater than 0");
            return None;
        }
    };
    let room = args.len() - at - 1;
    match usize::try_from(n) {
        Ok(n) if n <= room => Some(n),
        _ => {
            ctx.reply
                .error("ERR Number of keys can't be greater than number of args");
            None
        }
    }
}

/// Parses `[LIMIT limit]` after the keys of SINTERCARD/ZINTERCARD: 0 means no limit.
pub(crate) fn parse_limit(ctx: &mut Ctx<'_>, args: Args<'_>, start: usize) -> Option<usize> {
    let mut limit = 0;
    let mut i = start;
    while i < args.len() {
        match args.try_get(i + 1) {
            Some(v) if eq_ignore_case(args.get(i), "limit") => {
                match parse_i64(v).and_then(|l| usize::try_from(l).ok()) {
                    Some(l) => limit = l,
                    None => {
                        ctx.reply.error("ERR LIMIT can't be negative");
                        return None;
                    }
                }
                i += 2;
            }
            _ => {
                ctx.syntax_error();
                return None;
            }
        }
    }
    Some(limit)
}

/// `SINTERCARD numkeys key [key ...] [LIMIT limit]`
pub(crate) fn sintercard(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let Some(numkeys) = parse_numkeys(ctx, args, 1) else {
        return;
    };
    let Some(limit) = parse_limit(ctx, args, 2 + numkeys) else {
        return;
    };
    let keys: Vec<&[u8]> = args.iter_from(2).take(numkeys).collect();
    match compute(ctx, &keys, Op::Inter) {
        Ok(s) if limit > 0 => ctx.reply.int(s.len().min(limit) as i64),
        Ok(s) => ctx.reply.int(s.len() as i64),
        Err(_) => ctx.wrong_type(),
    }
}
