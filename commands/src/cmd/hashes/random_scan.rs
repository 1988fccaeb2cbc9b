//! HRANDFIELD and HSCAN.

use std::cell::RefCell;

use ferrite_collections::{Limits, Rng};

use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::cmd::keys::glob;
use crate::ctx::Ctx;
use crate::resp::Reply;

use super::{Found, read_hash};

thread_local! {
    /// Each reactor thread draws from its own generator: no sharing, no locking.
    static RNG: RefCell<Rng> = RefCell::new(Rng::from_entropy());
}

/// `HRANDFIELD key [count [WITHVALUES]]`
pub(super) fn hrandfield(ctx: &mut Ctx<'_>, args: Args<'_>) {
    if args.len() < 3 {
        let found = read_hash(ctx, args.get(1), |h, r| {
            let picked = RNG.with(|rng| h.random(&mut rng.borrow_mut()).map(|(f, _)| f));
            match picked {
                Some(f) => r.bulk(f),
                None => r.null(),
            }
        });
        match found {
            Found::Yes => {}
            Found::Missing => ctx.reply.null(),
            Found::WrongType => ctx.wrong_type(),
        }
        return;
    }
    let Some(count) = parse_i64(args.get(2)) else {
        ctx.not_integer();
        return;
    };
    if count == i64::MIN {
        ctx.reply.error(
            "ERR value is out of range, value must between -9223372036854775807 and \
             9223372036854775807",
        );
        return;
    }
    if args.len() > 4 || (args.len() == 4 && !eq_ignore_case(args.get(3), "withvalues")) {
        ctx.syntax_error();
        return;
    }
    let with_values = args.len() == 4;
    // Redis refuses counts whose doubled reply length would overflow.
    if with_values && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        ctx.reply.error("ERR value is out of range");
        return;
    }
    match read_hash(ctx, args.get(1), |h, r| {
        RNG.with(|rng| {
            random_fields(h, r, count, with_values, &mut rng.borrow_mut());
        });
    }) {
        Found::Yes => {}
        Found::Missing => ctx.reply.array_len(0),
        Found::WrongType => ctx.wrong_type(),
    }
}

/// Redis's `hrandfieldWithCountCommand`: a negative count draws with repetition, a positive
/// one distinct fields (the whole hash, in order, when it asks for at least as many as there
/// are). With values, RESP3 nests each pair in an array and RESP2 flattens them.
fn random_fields(
    h: &ferrite_collections::Hash,
    r: &mut Reply<'_>,
    count: i64,
    with_values: bool,
    rng: &mut Rng,
) {
    let n = count.unsigned_abs();
    if n == 0 {
        r.array_len(0);
        return;
    }
    let resp3 = r.is_resp3();
    let emit = |r: &mut Reply<'_>, f: &[u8], v: &[u8]| {
        if with_values && resp3 {
            r.array_len(2);
        }
        r.bulk(f);
        if with_values {
            r.bulk(v);
        }
    };
    let header = |r: &mut Reply<'_>, len: u64| {
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if with_values && !resp3 {
            r.array_len(len.saturating_mul(2));
        } else {
            r.array_len(len);
        }
    };
    if count < 0 || n == 1 {
        header(r, n);
        for (f, v) in h.random_repeated(n, rng) {
            emit(r, f, v);
        }
        return;
    }
    let picks = h.random_distinct(n, rng);
    header(r, picks.len() as u64);
    for (f, v) in picks {
        emit(r, f, v);
    }
}

/// Why HSCAN's options were refused (reported only once the key is known to be a hash, as
/// Redis parses them after the lookup).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OptionError {
    NotInteger,
    Syntax,
}

/// HSCAN's options: COUNT and MATCH (the pattern is `None` for `*`).
fn parse_scan_options(args: Args<'_>) -> Result<(usize, Option<&[u8]>), OptionError> {
    let mut count: usize = 10;
    let mut pattern = None;
    let mut i = 3;
    while i < args.len() {
        let opt = args.get(i);
        let has_value = i + 1 < args.len();
        if eq_ignore_case(opt, "count") && has_value {
            let c = parse_i64(args.get(i + 1)).ok_or(OptionError::NotInteger)?;
            if c < 1 {
                return Err(OptionError::Syntax);
            }
            count = usize::try_from(c).unwrap_or(usize::MAX);
        } else if eq_ignore_case(opt, "match") && has_value {
            let p = args.get(i + 1);
            pattern = (p != b"*").then_some(p);
        } else {
            return Err(OptionError::Syntax);
        }
        i += 2;
    }
    Ok((count, pattern))
}

/// `HSCAN key cursor [MATCH pattern] [COUNT count]`
pub(super) fn hscan(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let Some(cursor) = crate::args::parse_scan_cursor(args.get(2)) else {
        ctx.reply.error("ERR invalid cursor");
        return;
    };
    let options = parse_scan_options(args);
    let mut refused = None;
    let found = read_hash(ctx, args.get(1), |h, r| {
        let (count, pattern) = match options {
            Ok(o) => o,
            Err(e) => {
                refused = Some(e);
                return;
            }
        };
        let (next, mut pairs) = h.scan(cursor, count, &Limits::current());
        if let Some(p) = pattern {
            pairs.retain(|(f, _)| glob::matches(p, f));
        }
        r.array_len(2);
        let digits = next.to_string();
        r.bulk(digits.as_bytes());
        r.array_len(pairs.len() * 2);
        for (f, v) in pairs {
            r.bulk(f);
            r.bulk(v);
        }
    });
    match (found, refused) {
        (Found::Yes, None) => {}
        (Found::Yes, Some(OptionError::NotInteger)) => ctx.not_integer(),
        (Found::Yes, Some(OptionError::Syntax)) => ctx.syntax_error(),
        (Found::Missing, _) => {
            ctx.reply.array_len(2);
            ctx.reply.bulk(b"0");
            ctx.reply.array_len(0);
        }
        (Found::WrongType, _) => ctx.wrong_type(),
    }
}
