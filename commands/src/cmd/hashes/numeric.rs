//! HINCRBY and HINCRBYFLOAT.

use ferrite_collections::{Error, Hash};
use ferrite_hybridlog::{NO_EXPIRY, ObjectWrite};

use crate::args::{Args, parse_i64};
use crate::cmd::strings::longdouble::{self, Ld, Parsed};
use crate::ctx::Ctx;
use crate::notify::flags;
use crate::objects::Collection;

use super::{Slot, slot};

/// A counter update's outcome.
enum Counted<T> {
    Value(T),
    WrongType,
    Failed(Error),
}

/// `HINCRBY key field increment`
pub(super) fn hincrby(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let Some(delta) = parse_i64(args.get(3)) else {
        ctx.not_integer();
        return;
    };
    let field = args.get(2);
    let db = ctx.client.db;
    let outcome = ctx
        .store
        .rmw_value(db, args.get(1), ctx.now_ms, |e| match slot(e) {
            Slot::WrongType => ObjectWrite::Keep(Counted::WrongType),
            Slot::Of(h) => match h.incr_by(field, delta) {
                Ok(v) => ObjectWrite::Updated(Counted::Value(v)),
                Err(err) => ObjectWrite::Keep(Counted::Failed(err)),
            },
            Slot::Missing => {
                let mut h = Hash::new();
                match h.incr_by(field, delta) {
                    Ok(v) => ObjectWrite::Put {
                        object: Collection::Hash(h).boxed(),
                        expire_at: NO_EXPIRY,
                        result: Counted::Value(v),
                    },
                    Err(err) => ObjectWrite::Keep(Counted::Failed(err)),
                }
            }
        });
    match outcome {
        Counted::Value(v) => {
            ctx.reply.int(v);
            ctx.notify(flags::HASH, "hincrby", args.get(1));
        }
        Counted::WrongType => ctx.wrong_type(),
        Counted::Failed(err) => failed(ctx, &err),
    }
}

/// `-ERR <collection error>`.
#[cold]
fn failed(ctx: &mut Ctx<'_>, err: &Error) {
    let msg = format!("ERR {err}");
    ctx.reply.error(&msg);
}

/// Adds `incr` to the field's value in `long double` arithmetic, as Redis does, storing and
/// returning the printed sum.
fn add_float(h: &mut Hash, field: &[u8], incr: Ld) -> Result<Vec<u8>, Error> {
    let current = match h.get(field) {
        None => Ld::default(),
        Some(v) => match longdouble::parse(v) {
            None => return Err(Error::HashValueNotFloat),
            Some(Parsed::Infinite) => return Err(Error::NanOrInfinity),
            Some(Parsed::Finite(v)) => v,
        },
    };
    let sum = current.add(incr).ok_or(Error::NanOrInfinity)?;
    let text = sum.to_human();
    h.insert(field, &text);
    Ok(text)
}

/// `HINCRBYFLOAT key field increment`
pub(super) fn hincrbyfloat(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let incr = match longdouble::parse(args.get(3)) {
        Some(Parsed::Finite(v)) => v,
        Some(Parsed::Infinite) => {
            ctx.reply.error("ERR value is NaN or Infinity");
            return;
        }
        None => {
            ctx.not_float();
            return;
        }
    };
    let field = args.get(2);
    let db = ctx.client.db;
    let outcome = ctx
        .store
        .rmw_value(db, args.get(1), ctx.now_ms, |e| match slot(e) {
            Slot::WrongType => ObjectWrite::Keep(Counted::WrongType),
            Slot::Of(h) => match add_float(h, field, incr) {
                Ok(v) => ObjectWrite::Updated(Counted::Value(v)),
                Err(err) => ObjectWrite::Keep(Counted::Failed(err)),
            },
            Slot::Missing => {
                let mut h = Hash::new();
                match add_float(&mut h, field, incr) {
                    Ok(v) => ObjectWrite::Put {
                        object: Collection::Hash(h).boxed(),
                        expire_at: NO_EXPIRY,
                        result: Counted::Value(v),
                    },
                    Err(err) => ObjectWrite::Keep(Counted::Failed(err)),
                }
            }
        });
    match outcome {
        Counted::Value(v) => {
            ctx.reply.bulk(&v);
            ctx.notify(flags::HASH, "hincrbyfloat", args.get(1));
        }
        Counted::WrongType => ctx.wrong_type(),
        Counted::Failed(err) => failed(ctx, &err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(s: &str) -> Ld {
        match longdouble::parse(s.as_bytes()) {
            Some(Parsed::Finite(v)) => v,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn float_increments_print_like_redis() {
        let mut h = Hash::new();
        assert_eq!(add_float(&mut h, b"f", ld("0.1")).unwrap(), b"0.1");
        assert_eq!(add_float(&mut h, b"f", ld("0.2")).unwrap(), b"0.3");
        assert_eq!(add_float(&mut h, b"f", ld("-0.3")).unwrap(), b"0");
        assert_eq!(add_float(&mut h, b"f", ld("5.0e3")).unwrap(), b"5000");
        h.insert(b"s", b"abc");
        assert_eq!(
            add_float(&mut h, b"s", ld("1")),
            Err(Error::HashValueNotFloat)
        );
        h.insert(b"i", b"inf");
        assert_eq!(add_float(&mut h, b"i", ld("1")), Err(Error::NanOrInfinity));
        h.insert(b"big", b"1e4932");
        assert_eq!(
            add_float(&mut h, b"big", ld("1e4932")),
            Err(Error::NanOrInfinity)
        );
        h.insert(b"sp", b" 1");
        assert_eq!(
            add_float(&mut h, b"sp", ld("1")),
            Err(Error::HashValueNotFloat)
        );
    }
}
