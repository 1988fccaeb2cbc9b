//! The options XADD and XTRIM share (`streamParseAddOrTrimArgsOrReply`): MAXLEN or MINID with
//! `=` or `~`, LIMIT, and for XADD NOMKSTREAM and the ID.

use ferrite_collections::stream::{Trim, TrimStrategy};

use super::id_arg::{INVALID_ID, ParsedId, parse_id_arg};
use crate::args::{Args, eq_ignore_case, parse_i64};

/// What the options said.
#[derive(Debug)]
pub(super) struct AddTrimArgs {
    /// The trimming asked for, if any.
    pub trim: Option<Trim>,
    /// XADD's ID; `None` for `*`.
    pub id: Option<ParsedId>,
    /// XADD NOMKSTREAM.
    pub nomkstream: bool,
    /// Position of XADD's ID argument (the fields follow it).
    pub id_pos: usize,
}

const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
const BOTH: &str = "ERR syntax error, MAXLEN and MINID options at the same time are not compatible";

/// Parses the options from argument 2 on, in Redis's order and with its errors. `obey`: the
/// command replays the AOF (Redis's `mustObeyClient`), whose trims were written exact, with any
/// LIMIT kept: no limit applies and LIMIT with `=` is accepted.
pub(super) fn parse_add_or_trim(
    args: &Args<'_>,
    xadd: bool,
    obey: bool,
) -> Result<AddTrimArgs, &'static str> {
    let argc = args.len();
    let mut strategy: Option<TrimStrategy> = None;
    let mut approx = false;
    let mut limit: i64 = 0;
    let mut limit_given = false;
    let mut nomkstream = false;
    let mut id = None;
    let mut i = 2;
    while i < argc {
        let moreargs = argc - 1 - i;
        let opt = args.get(i);
        if xadd && opt == b"*" {
            break;
        } else if moreargs > 0 && (eq_ignore_case(opt, "maxlen") || eq_ignore_case(opt, "minid")) {
            if strategy.is_some() {
                return Err(BOTH);
            }
            approx = false;
            let next = args.get(i + 1);
            if moreargs >= 2 && next == b"~" {
                approx = true;
                i += 1;
            } else if moreargs >= 2 && next == b"=" {
                i += 1;
            }
            let bound = args.get(i + 1);
            strategy = Some(if eq_ignore_case(opt, "maxlen") {
                let n = parse_i64(bound).ok_or(NOT_INTEGER)?;
                TrimStrategy::MaxLen(
                    u64::try_from(n).map_err(|_| "ERR The MAXLEN argument must be >= 0.")?,
                )
            } else {
                TrimStrategy::MinId(parse_id_arg(bound, 0, true, false).ok_or(INVALID_ID)?.id)
            });
            i += 1;
        } else if moreargs > 0 && eq_ignore_case(opt, "limit") {
            limit = parse_i64(args.get(i + 1)).ok_or(NOT_INTEGER)?;
            if limit < 0 {
                return Err("ERR The LIMIT argument must be >= 0.");
            }
            limit_given = true;
            i += 1;
        } else if xadd && eq_ignore_case(opt, "nomkstream") {
            nomkstream = true;
        } else if xadd {
            // Strict: `-` and `+` are not IDs XADD takes.
            id = Some(parse_id_arg(opt, 0, true, true).ok_or(INVALID_ID)?);
            break;
        } else {
            return Err("ERR syntax error");
        }
        i += 1;
    }
    if limit != 0 && strategy.is_none() {
        return Err(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        );
    }
    if !xadd && strategy.is_none() {
        return Err("ERR syntax error, XTRIM must be called with a trimming strategy");
    }
    if limit_given && !approx && !obey {
        return Err("ERR syntax error, LIMIT cannot be used without the special ~ option");
    }
    let limit = match (limit_given, approx) {
        _ if obey => 0,
        (true, _) => limit as u64,
        (false, true) => Trim::default_approx_limit(),
        (false, false) => 0,
    };
    Ok(AddTrimArgs {
        trim: strategy.map(|strategy| Trim {
            strategy,
            approx,
            limit,
        }),
        id,
        nomkstream,
        id_pos: i,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &str, xadd: bool) -> Result<AddTrimArgs, &'static str> {
        parse_as(words, xadd, false)
    }

    fn parse_as(words: &str, xadd: bool, obey: bool) -> Result<AddTrimArgs, &'static str> {
        let data = words.as_bytes();
        let mut spans = Vec::new();
        let mut off = 0;
        for w in words.split(' ') {
            spans.push((off as u32, w.len() as u32));
            off += w.len() + 1;
        }
        parse_add_or_trim(&Args::new(data, &spans), xadd, obey)
    }

    #[test]
    fn the_aof_loader_replays_exact_trims_with_their_limit() {
        // What the AOF holds for `XADD s MAXLEN ~ 7 LIMIT 3 ...`: loaded, it trims exactly.
        let p = parse_as("XADD s MAXLEN = 7 LIMIT 3 5-1 a b", true, true).unwrap();
        assert_eq!(p.trim.map(|t| (t.approx, t.limit)), Some((false, 0)));
        assert!(parse_as("XADD s MAXLEN = 7 LIMIT 3 5-1 a b", true, false).is_err());
    }

    #[test]
    fn approximate_trims_get_the_default_limit() {
        let p = parse("XTRIM s MAXLEN ~ 5", false).unwrap();
        let want = Trim {
            strategy: TrimStrategy::MaxLen(5),
            approx: true,
            limit: Trim::default_approx_limit(),
        };
        assert_eq!(p.trim, Some(want));
        let p = parse("XTRIM s MINID = 5 ", false);
        assert_eq!(p.unwrap_err(), "ERR syntax error");
        let p = parse("XADD s NOMKSTREAM MINID 7 LIMIT 0 5-* a b", true);
        assert_eq!(
            p.unwrap_err(),
            "ERR syntax error, LIMIT cannot be used without the special ~ option"
        );
        let p = parse("XADD s NOMKSTREAM MAXLEN ~ 7 LIMIT 3 5-* a b", true).unwrap();
        assert!(p.nomkstream);
        assert_eq!(p.id_pos, 8);
        assert_eq!(p.trim.map(|t| t.limit), Some(3));
        assert_eq!(p.id.map(|i| i.seq_given), Some(false));
        let p = parse("XADD s MAXLEN", true);
        assert_eq!(p.unwrap_err(), INVALID_ID);
    }
}
