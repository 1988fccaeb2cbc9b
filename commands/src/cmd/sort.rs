//! SORT and SORT_RO (Redis's `sort.c`, `sortCommandGeneric`): lists, sets and sorted sets sorted
//! numerically or (ALPHA) as strings, by the elements themselves or by weights looked up through
//! a BY pattern (`weight_*`, `hash_*->field`), with LIMIT, GET patterns and STORE.
//!
//! Both run EXCLUSIVE: BY and GET read arbitrary keys and STORE writes one, and Redis does all
//! of it as one step.

use std::cmp::Ordering;

use ferrite_collections::{End, Limits, List, ZAddFlags, parse_hex_float};
use ferrite_hybridlog::{NO_EXPIRY, ObjectWrite, Value, ValueMut};

use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::ctx::Ctx;
use crate::notify::flags;
use crate::objects::Collection;
use crate::table::{CommandSpec, flags::*};

/// What SORT found at the key it sorts.
enum Source {
    /// No such key: sorts as an empty list.
    Missing,
    WrongType,
    List(Vec<Vec<u8>>),
    Set(Vec<Vec<u8>>),
    /// Members in score order.
    ZSet(Vec<Vec<u8>>),
}

/// One element of the sorting vector (`redisSortObject`).
struct Item {
    obj: Vec<u8>,
    score: f64,
    cmp: Option<Vec<u8>>,
}

/// The bytes C sees of a string: up to the first NUL.
fn c_str(s: &[u8]) -> &[u8] {
    match s.iter().position(|&b| b == 0) {
        Some(i) => &s[..i],
        None => s,
    }
}

/// Redis 7.0's check of a weight: `strtod` must consume the whole (NUL-terminated) string
/// without ERANGE, and not give NaN. As glibc does, an empty string reads as 0, and results that
/// overflow or come out subnormal or zero from non-zero digits are range errors.
fn sort_strtod(s: &[u8]) -> Option<f64> {
    let s = c_str(s);
    let start = s
        .iter()
        .position(|&c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
        .unwrap_or(s.len());
    let rest = &s[start..];
    if s.is_empty() {
        return Some(0.0);
    }
    if rest.is_empty() {
        // Nothing converted: the end pointer stays at the (blank) start.
        return None;
    }
    let text = std::str::from_utf8(rest).ok()?;
    let unsigned = text.trim_start_matches(['+', '-']);
    if unsigned.len() + 1 < text.len() {
        return None;
    }
    let is_hex = unsigned.len() > 1 && unsigned[..2].eq_ignore_ascii_case("0x");
    let v = if is_hex {
        parse_hex_float(rest)?
    } else {
        text.parse::<f64>().ok()?
    };
    if v.is_nan() {
        return None;
    }
    let lower = unsigned.to_ascii_lowercase();
    if v.is_infinite() && !lower.starts_with("inf") {
        return None;
    }
    if !is_hex && (v == 0.0 || v.is_subnormal()) {
        let mantissa = lower.split('e').next().unwrap_or("");
        if mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
            return None;
        }
    }
    Some(v)
}

/// Redis's `lookupKeyByPattern`: `#` is the element itself; otherwise the first `*` is replaced
/// by the element and the key read as a string, or, with `->field` after the `*`, as a hash
/// field. Anything else (no `*`, a missing key, a key of another type) is `None`. Like Redis,
/// the pattern is searched as a C string (up to a NUL), but the key keeps every byte.
fn lookup_by_pattern(ctx: &mut Ctx<'_>, pattern: &[u8], subst: &[u8]) -> Option<Vec<u8>> {
    if pattern.first() == Some(&b'#') && pattern.get(1).is_none_or(|&b| b == 0) {
        return Some(subst.to_vec());
    }
    let cpat = c_str(pattern);
    let star = cpat.iter().position(|&b| b == b'*')?;
    let field_at = cpat[star + 1..]
        .windows(2)
        .position(|w| w == b"->")
        .map(|i| star + 1 + i)
        .filter(|&f| pattern.get(f + 2).is_some_and(|&b| b != 0));
    let (key_end, field) = match field_at {
        Some(f) => (f, Some(&pattern[f + 2..])),
        None => (pattern.len(), None),
    };
    let mut key = Vec::with_capacity(key_end + subst.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(subst);
    key.extend_from_slice(&pattern[star + 1..key_end]);
    let db = ctx.client.db;
    let found = ctx
        .store
        .read_value(db, &key, ctx.now_ms, |e| match (e.value, field) {
            (Value::String(s), None) => Some(s.to_vec()),
            (Value::Object(o), Some(f)) => match Collection::of(o) {
                Some(Collection::Hash(h)) => h.get(f).map(<[u8]>::to_vec),
                _ => None,
            },
            _ => None,
        });
    match found {
        Some(v) => {
            ctx.hit();
            v
        }
        None => {
            ctx.miss(&key);
            None
        }
    }
}

/// Reads the key to sort, copying its elements out of the record.
fn load(ctx: &mut Ctx<'_>, key: &[u8]) -> Source {
    let db = ctx.client.db;
    let src = ctx
        .store
        .read_value(db, key, ctx.now_ms, |e| match e.value {
            Value::String(_) => Source::WrongType,
            Value::Object(o) => match Collection::of(o) {
                Some(Collection::List(l)) => Source::List(l.iter().map(<[u8]>::to_vec).collect()),
                Some(Collection::Set(s)) => Source::Set(s.iter().map(|m| m.into_owned()).collect()),
                Some(Collection::ZSet(z)) => {
                    Source::ZSet(z.iter().map(|(m, _)| m.to_vec()).collect())
                }
                _ => Source::WrongType,
            },
        });
    match src {
        Some(s) => {
            ctx.hit();
            s
        }
        None => {
            ctx.miss(key);
            Source::Missing
        }
    }
}

/// Redis's SORT converts a sorted set to a skiplist (`zsetConvert(sortval, SKIPLIST)`) before
/// reading it, a one-way change OBJECT ENCODING and DUMP show afterwards. Ferrite derives the
/// encoding from the longest member ever held, so holding one longer than
/// `zset-max-listpack-value` for an instant makes the same change; SORT runs exclusively, so
/// nobody sees that member.
fn convert_zset_to_skiplist(ctx: &mut Ctx<'_>, key: &[u8]) {
    let limits = Limits::current();
    let marker = vec![0xffu8; limits.zset_max_listpack_value + 1];
    let db = ctx.client.db;
    ctx.store.rmw_value(db, key, ctx.now_ms, |e| {
        let Some(ValueMut::Object(o)) = e.map(|e| e.value) else {
            return ObjectWrite::Keep(());
        };
        let Some(Collection::ZSet(z)) = Collection::of_mut(o) else {
            return ObjectWrite::Keep(());
        };
        if z.encoding_name(&limits) != "listpack" || z.score(&marker).is_some() {
            return ObjectWrite::Keep(());
        }
        if z.add(&marker, 0.0, ZAddFlags::default()).is_ok() {
            z.remove(&marker);
        }
        ObjectWrite::Updated(())
    });
}

/// Sorting options.
struct Opts<'a> {
    desc: bool,
    alpha: bool,
    limit: (i64, i64),
    sortby: Option<&'a [u8]>,
    dontsort: bool,
    store: Option<&'a [u8]>,
    gets: Vec<&'a [u8]>,
}

/// Parses the options as Redis does, replying on error.
fn parse<'a>(ctx: &mut Ctx<'_>, args: Args<'a>, readonly: bool) -> Option<Opts<'a>> {
    let mut o = Opts {
        desc: false,
        alpha: false,
        limit: (0, -1),
        sortby: None,
        dontsort: false,
        store: None,
        gets: Vec::new(),
    };
    let mut j = 2;
    while j < args.len() {
        let a = args.get(j);
        let left = args.len() - j - 1;
        if eq_ignore_case(a, "asc") {
            o.desc = false;
        } else if eq_ignore_case(a, "desc") {
            o.desc = true;
        } else if eq_ignore_case(a, "alpha") {
            o.alpha = true;
        } else if eq_ignore_case(a, "limit") && left >= 2 {
            match (parse_i64(args.get(j + 1)), parse_i64(args.get(j + 2))) {
                (Some(s), Some(c)) => o.limit = (s, c),
                _ => {
                    ctx.not_integer();
                    return None;
                }
            }
            j += 2;
        } else if !readonly && eq_ignore_case(a, "store") && left >= 1 {
            o.store = Some(args.get(j + 1));
            j += 1;
        } else if eq_ignore_case(a, "by") && left >= 1 {
            let p = args.get(j + 1);
            o.sortby = Some(p);
            // A pattern without `*` names no per-element key: nothing to sort by.
            o.dontsort = !c_str(p).contains(&b'*');
            j += 1;
        } else if eq_ignore_case(a, "get") && left >= 1 {
            o.gets.push(args.get(j + 1));
            j += 1;
        } else {
            ctx.syntax_error();
            return None;
        }
        j += 1;
    }
    Some(o)
}

/// `sortCompare`.
fn compare(a: &Item, b: &Item, o: &Opts<'_>) -> Ordering {
    let cmp = if !o.alpha {
        a.score
            .partial_cmp(&b.score)
            .unwrap_or(Ordering::Equal)
            .then_with(|| a.obj.cmp(&b.obj))
    } else if o.sortby.is_some() {
        match (&a.cmp, &b.cmp) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) if o.store.is_some() => x.cmp(y),
            (Some(x), Some(y)) => c_str(x).cmp(c_str(y)),
        }
    } else if o.store.is_some() {
        a.obj.cmp(&b.obj)
    } else {
        // strcoll in the C/C.UTF-8 locale: byte order up to the first NUL.
        c_str(&a.obj).cmp(c_str(&b.obj))
    };
    if o.desc { cmp.reverse() } else { cmp }
}

fn sort_generic(ctx: &mut Ctx<'_>, args: Args<'_>, readonly: bool) {
    let Some(mut o) = parse(ctx, args, readonly) else {
        return;
    };
    let (elements, is_set, ordered) = match load(ctx, args.get(1)) {
        Source::WrongType => return ctx.wrong_type(),
        Source::Missing => (Vec::new(), false, true),
        Source::List(v) => (v, false, true),
        Source::ZSet(v) => {
            convert_zset_to_skiplist(ctx, args.get(1));
            (v, false, true)
        }
        Source::Set(v) => (v, true, false),
    };
    // An unsorted set would be stored in an arbitrary order: Redis sorts it instead.
    if o.dontsort && is_set && o.store.is_some() {
        o.dontsort = false;
        o.alpha = true;
        o.sortby = None;
    }
    let vectorlen = i64::try_from(elements.len()).unwrap_or(i64::MAX);
    let mut start = o.limit.0.clamp(0, vectorlen);
    let count = o.limit.1.max(-1).min(vectorlen);
    let mut end = if count < 0 {
        vectorlen - 1
    } else {
        start + count - 1
    };
    if start >= vectorlen {
        start = vectorlen - 1;
        end = vectorlen - 2;
    }
    end = end.min(vectorlen - 1);

    let mut vector: Vec<Item> = if ordered && o.dontsort {
        // Lists and sorted sets keep their own order (reversed for DESC); only the LIMIT range
        // is taken.
        let (s, e) = (start.max(0) as usize, end);
        let range: Vec<Vec<u8>> = if e < start {
            Vec::new()
        } else {
            let n = (e - start + 1) as usize;
            if o.desc {
                elements.into_iter().rev().skip(s).take(n).collect()
            } else {
                elements.into_iter().skip(s).take(n).collect()
            }
        };
        if end >= start {
            end -= start;
            start = 0;
        }
        range
            .into_iter()
            .map(|obj| Item {
                obj,
                score: 0.0,
                cmp: None,
            })
            .collect()
    } else {
        elements
            .into_iter()
            .map(|obj| Item {
                obj,
                score: 0.0,
                cmp: None,
            })
            .collect()
    };

    let mut conversion_error = false;
    if !o.dontsort {
        for item in vector.iter_mut() {
            let byval = match o.sortby {
                Some(p) => match lookup_by_pattern(ctx, p, &item.obj) {
                    Some(v) => v,
                    None => continue,
                },
                None => item.obj.clone(),
            };
            if o.alpha {
                if o.sortby.is_some() {
                    item.cmp = Some(byval);
                }
            } else {
                match sort_strtod(&byval) {
                    Some(v) => item.score = v,
                    None => conversion_error = true,
                }
            }
        }
        vector.sort_by(|a, b| compare(a, b, &o));
    }

    let range_len = (end - start + 1).max(0) as usize;
    let outputlen = if o.gets.is_empty() {
        range_len
    } else {
        o.gets.len() * range_len
    };
    if conversion_error {
        ctx.reply
            .error("ERR One or more scores can't be converted into double");
        return;
    }
    let first = start.max(0) as usize;
    let selected = vector.get(first..first + range_len).unwrap_or(&[]);
    match o.store {
        None => {
            ctx.reply.array_len(outputlen);
            for item in selected {
                if o.gets.is_empty() {
                    ctx.reply.bulk(&item.obj);
                }
                for p in &o.gets {
                    match lookup_by_pattern(ctx, p, &item.obj) {
                        Some(v) => ctx.reply.bulk(&v),
                        None => ctx.reply.null(),
                    }
                }
            }
        }
        Some(dest) => {
            let mut list = List::new();
            for item in selected {
                if o.gets.is_empty() {
                    list.push(End::Right, &item.obj);
                }
                for p in &o.gets {
                    let v = lookup_by_pattern(ctx, p, &item.obj).unwrap_or_default();
                    list.push(End::Right, &v);
                }
            }
            let db = ctx.client.db;
            if outputlen > 0 {
                ctx.reap_for_notify(dest);
                ctx.store
                    .upsert_object(db, dest, Collection::List(list).boxed(), NO_EXPIRY);
                ctx.signal_key_ready(dest);
                ctx.notify(flags::LIST, "sortstore", dest);
            } else if ctx.store.delete(db, dest, ctx.now_ms) {
                ctx.notify(flags::GENERIC, "del", dest);
            }
            ctx.reply.int(i64::try_from(outputlen).unwrap_or(i64::MAX));
        }
    }
}

/// `SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]
/// [STORE destination]`
fn sort(ctx: &mut Ctx<'_>, args: Args<'_>) {
    sort_generic(ctx, args, false);
}

/// `SORT_RO key ...`: SORT without STORE.
fn sort_ro(ctx: &mut Ctx<'_>, args: Args<'_>) {
    sort_generic(ctx, args, true);
}

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "sort",
        arity: -2,
        flags: WRITE | DENYOOM | EXCLUSIVE,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["write", "set", "sortedset", "list", "slow", "dangerous"],
        group: "generic",
        since: "1.0.0",
        summary: "Sort the elements in a list, set or sorted set",
        complexity: "O(N+M*log(M)) where N is the number of elements in the list or set to sort, and M the number of returned elements. When the elements are not sorted, complexity is O(N).",
        handler: sort,
        subcommands: &[],
    },
    CommandSpec {
        name: "sort_ro",
        arity: -2,
        flags: READONLY | EXCLUSIVE,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["read", "set", "sortedset", "list", "slow", "dangerous"],
        group: "generic",
        since: "7.0.0",
        summary: "Sort the elements in a list, set or sorted set. Read-only variant of SORT.",
        complexity: "O(N+M*log(M)) where N is the number of elements in the list or set to sort, and M the number of returned elements. When the elements are not sorted, complexity is O(N).",
        handler: sort_ro,
        subcommands: &[],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_parse_like_glibc_strtod() {
        assert_eq!(sort_strtod(b"1.5"), Some(1.5));
        assert_eq!(sort_strtod(b""), Some(0.0));
        assert_eq!(sort_strtod(b"  5"), Some(5.0));
        assert_eq!(sort_strtod(b"0x10"), Some(16.0));
        assert_eq!(sort_strtod(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(sort_strtod(b"3\0junk"), Some(3.0));
        assert_eq!(sort_strtod(b"0e-400"), Some(0.0));
        for bad in [
            &b" "[..],
            b"abc",
            b"1e",
            b"nan",
            b"1e400",
            b"1e-310",
            b"1e-400",
            b"5 ",
            b"+-1",
        ] {
            assert_eq!(sort_strtod(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn c_strings() {
        assert_eq!(c_str(b"ab\0cd"), b"ab");
        assert_eq!(c_str(b"abc"), b"abc");
    }
}
