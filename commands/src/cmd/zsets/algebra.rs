//! ZUNION ZINTER ZDIFF ZINTERCARD and ZUNIONSTORE ZINTERSTORE ZDIFFSTORE, through Redis's
//! `zunionInterDiffGenericCommand` order of checks: numkeys, then the keys' types, then the
//! options. All EXCLUSIVE; plain sets are accepted as inputs, every member scoring 1.

use ferrite_collections::{Aggregate, Set, SortedSet, ZSource};
use ferrite_hybridlog::Value;

use super::WrongType;
use super::parse_score;
use super::reply_pairs;
use super::write::checked;
use super::{notify_stored, store_zset};
use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::ctx::Ctx;
use crate::objects::Collection;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Inter,
    Diff,
}

/// An owned copy of one input (the store lends one value at a time; the command runs
/// EXCLUSIVE, so the copies are a consistent snapshot).
enum Input {
    Zset(SortedSet),
    Set(Set),
    Missing,
}

impl Input {
    fn source(&self) -> ZSource<'_> {
        match self {
            Input::Zset(z) => ZSource::Zset(z),
            Input::Set(s) => ZSource::Set(s),
            Input::Missing => ZSource::Missing,
        }
    }
}

fn load(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Input, WrongType> {
    let found = ctx
        .store
        .read_value(ctx.client.db, key, ctx.now_ms, |e| match e.value {
            Value::Object(o) => match Collection::of(o) {
                Some(Collection::ZSet(z)) => Ok(Input::Zset(z.clone())),
                Some(Collection::Set(s)) => Ok(Input::Set(s.clone())),
                _ => Err(WrongType),
            },
            Value::String(_) => Err(WrongType),
        });
    // Read with `lookupKeyRead`, the STORE forms' sources too: counted, misses announced.
    if found.is_some() {
        ctx.hit();
    } else {
        ctx.miss(key);
    }
    found.unwrap_or(Ok(Input::Missing))
}

/// The common body. `numkeys_at` is where `numkeys` is; `store` says whether argument 1 is a
/// destination; `card` is ZINTERCARD.
fn generic(ctx: &mut Ctx<'_>, args: Args<'_>, numkeys_at: usize, op: Op, store: bool, card: bool) {
    let Some(numkeys) = parse_i64(args.get(numkeys_at)) else {
        return ctx.not_integer();
    };
    if numkeys < 1 {
        let msg = format!(
            "ERR at least 1 input key is needed for '{}' command",
            ctx.spec.name
        );
        return ctx.reply.error(&msg);
    }
    let room = args.len() - numkeys_at - 1;
    let numkeys = match usize::try_from(numkeys) {
        Ok(n) if n <= room => n,
        _ => return ctx.syntax_error(),
    };
    let mut inputs = Vec::with_capacity(numkeys);
    for key in args.iter_from(numkeys_at + 1).take(numkeys) {
        let r = load(ctx, key);
        match checked(ctx, r) {
            Some(i) => inputs.push(i),
            None => return,
        }
    }
    let mut weights = vec![1.0f64; numkeys];
    let mut aggregate = Aggregate::Sum;
    let mut withscores = false;
    let mut limit = 0usize;
    let mut j = numkeys_at + 1 + numkeys;
    while j < args.len() {
        let a = args.get(j);
        let remaining = args.len() - j;
        if op != Op::Diff && !card && remaining > numkeys && eq_ignore_case(a, "weights") {
            for (i, w) in weights.iter_mut().enumerate() {
                match parse_score(args.get(j + 1 + i)) {
                    Some(v) => *w = v,
                    None => return ctx.reply.error("ERR weight value is not a float"),
                }
            }
            j += 1 + numkeys;
        } else if op != Op::Diff && !card && remaining >= 2 && eq_ignore_case(a, "aggregate") {
            let v = args.get(j + 1);
            aggregate = if eq_ignore_case(v, "sum") {
                Aggregate::Sum
            } else if eq_ignore_case(v, "min") {
                Aggregate::Min
            } else if eq_ignore_case(v, "max") {
                Aggregate::Max
            } else {
                return ctx.syntax_error();
            };
            j += 2;
        } else if !store && !card && eq_ignore_case(a, "withscores") {
            withscores = true;
            j += 1;
        } else if card && remaining >= 2 && eq_ignore_case(a, "limit") {
            match parse_i64(args.get(j + 1)).and_then(|l| usize::try_from(l).ok()) {
                Some(l) => limit = l,
                None => return ctx.reply.error("ERR LIMIT can't be negative"),
            }
            j += 2;
        } else {
            return ctx.syntax_error();
        }
    }
    if card {
        let sources: Vec<ZSource<'_>> = inputs.iter().map(Input::source).collect();
        let n = SortedSet::intersection_len(&sources, limit);
        return ctx.reply.int(n as i64);
    }
    let result = match op {
        Op::Diff => {
            let sources: Vec<ZSource<'_>> = inputs.iter().map(Input::source).collect();
            SortedSet::difference(&sources)
        }
        _ => {
            let weighted: Vec<(ZSource<'_>, f64)> = inputs
                .iter()
                .map(Input::source)
                .zip(weights.iter().copied())
                .collect();
            if op == Op::Union {
                SortedSet::union(&weighted, aggregate)
            } else {
                SortedSet::intersection(&weighted, aggregate)
            }
        }
    };
    drop(inputs);
    if store {
        let stored = store_zset(ctx, args.get(1), result);
        ctx.reply.int(stored.0 as i64);
        let event = match op {
            Op::Union => "zunionstore",
            Op::Inter => "zinterstore",
            Op::Diff => "zdiffstore",
        };
        notify_stored(ctx, args.get(1), event, stored);
    } else {
        reply_pairs(&mut ctx.reply, result.iter(), withscores);
    }
}

/// `ZUNION numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`
pub(crate) fn zunion(ctx: &mut Ctx<'_>, args: Args<'_>) {
    generic(ctx, args, 1, Op::Union, false, false);
}

/// `ZINTER numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`
pub(crate) fn zinter(ctx: &mut Ctx<'_>, args: Args<'_>) {
    generic(ctx, args, 1, Op::Inter, false, false);
}

/// `ZDIFF numkeys key [key ...] [WITHSCORES]`
pub(crate) fn zdiff(ctx: &mut Ctx<'_>, args: Args<'_>) {
    generic(ctx, args, 1, Op::Diff, false, false);
}

/// `ZINTERCARD numkeys key [key ...] [LIMIT limit]`
pub(crate) fn zintercard(ctx: &mut Ctx<'_>, args: Args<'_>) {
    generic(ctx, args, 1, Op::Inter, false, true);
}

/// `ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS ...] [AGGREGATE ...]`
pub(crate) fn zunionstore(ctx: &mut Ctx<'_>, args: Args<'_>) {
    generic(ctx, args, 2, Op::Union, true, false);
}

/// `ZINTERSTORE destination numkeys key [key ...] [WEIGHTS ...] [AGGREGATE ...]`
pub(crate) fn zinterstore(ctx: &mut Ctx<'_>, args: Args<'_>) {
    generic(ctx, args, 2, Op::Inter, true, false);
}

/// `ZDIFFSTORE destination numkeys key [key ...]`
pub(crate) fn zdiffstore(ctx: &mut Ctx<'_>, args: Args<'_>) {
    generic(ctx, args, 2, Op::Diff, true, false);
}
