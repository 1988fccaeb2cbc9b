//! Geo commands (Redis's `geo.c`): GEOADD, GEOPOS, GEODIST, GEOHASH and the search family
//! (GEOSEARCH, GEOSEARCHSTORE, GEORADIUS[BYMEMBER][_RO]) over sorted sets whose scores are
//! 52-bit geohashes. The geometry lives in `ferrite_collections::geo`; this module parses
//! arguments in Redis's order (so the same error wins) and formats replies byte for byte.

mod num;
mod search;

use ferrite_collections::geo;
use ferrite_collections::{SortedSet, ZAddFlags, ZAddOutcome};
use ferrite_hybridlog::{NO_EXPIRY, ObjectWrite, ValueMut};

use crate::args::{Args, eq_ignore_case};
use crate::ctx::Ctx;
use crate::notify::flags as events;
use crate::objects::{self, Collection};
use crate::resp::Reply;
use crate::table::{CommandSpec, flags::*};

pub use num::parse_double;
use search::{
    geo_radius, geo_radius_by_member, geo_radius_by_member_ro, geo_radius_ro, geo_search,
    geo_search_store,
};

/// The complexity Redis documents for every radius/box search.
const SEARCH_COMPLEXITY: &str = "O(N+log(M)) where N is the number of elements in the grid-aligned bounding box area around the shape provided as the filter and M is the number of items inside the shape";
const RADIUS_COMPLEXITY: &str = "O(N+log(M)) where N is the number of elements inside the bounding box of the circular area delimited by center and radius and M is the number of items inside the index.";

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "geoadd",
        arity: -5,
        flags: WRITE | DENYOOM,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["write", "geo", "slow"],
        group: "geo",
        since: "3.2.0",
        summary: "Add one or more geospatial items in the geospatial index represented using a sorted set",
        complexity: "O(log(N)) for each item added, where N is the number of elements in the sorted set.",
        handler: geoadd,
        subcommands: &[],
    },
    CommandSpec {
        name: "geopos",
        arity: -2,
        flags: READONLY,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["read", "geo", "slow"],
        group: "geo",
        since: "3.2.0",
        summary: "Returns longitude and latitude of members of a geospatial index",
        complexity: "O(N) where N is the number of members requested.",
        handler: geopos,
        subcommands: &[],
    },
    CommandSpec {
        name: "geodist",
        arity: -4,
        flags: READONLY,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["read", "geo", "slow"],
        group: "geo",
        since: "3.2.0",
        summary: "Returns the distance between two members of a geospatial index",
        complexity: "O(log(N))",
        handler: geodist,
        subcommands: &[],
    },
    CommandSpec {
        name: "geohash",
        arity: -2,
        flags: READONLY,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["read", "geo", "slow"],
        group: "geo",
        since: "3.2.0",
        summary: "Returns members of a geospatial index as standard geohash strings",
        complexity: "O(log(N)) for each member requested, where N is the number of elements in the sorted set.",
        handler: geohash,
        subcommands: &[],
    },
    CommandSpec {
        name: "geosearch",
        arity: -7,
        flags: READONLY,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["read", "geo", "slow"],
        group: "geo",
        since: "6.2.0",
        summary: "Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle.",
        complexity: SEARCH_COMPLEXITY,
        handler: geo_search,
        subcommands: &[],
    },
    CommandSpec {
        name: "geosearchstore",
        arity: -8,
        flags: WRITE | DENYOOM | EXCLUSIVE,
        first_key: 1,
        last_key: 2,
        step: 1,
        acl: &["write", "geo", "slow"],
        group: "geo",
        since: "6.2.0",
        summary: "Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle, and store the result in another key.",
        complexity: SEARCH_COMPLEXITY,
        handler: geo_search_store,
        subcommands: &[],
    },
    CommandSpec {
        name: "georadius",
        arity: -6,
        // EXCLUSIVE: with STORE it reads one key and writes another.
        flags: WRITE | DENYOOM | EXCLUSIVE,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["write", "geo", "slow"],
        group: "geo",
        since: "3.2.0",
        summary: "Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a point",
        complexity: RADIUS_COMPLEXITY,
        handler: geo_radius,
        subcommands: &[],
    },
    CommandSpec {
        name: "georadiusbymember",
        arity: -5,
        flags: WRITE | DENYOOM | EXCLUSIVE,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["write", "geo", "slow"],
        group: "geo",
        since: "3.2.0",
        summary: "Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a member",
        complexity: RADIUS_COMPLEXITY,
        handler: geo_radius_by_member,
        subcommands: &[],
    },
    CommandSpec {
        name: "georadius_ro",
        arity: -6,
        flags: READONLY,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["read", "geo", "slow"],
        group: "geo",
        since: "3.2.10",
        summary: "A read-only variant for GEORADIUS",
        complexity: RADIUS_COMPLEXITY,
        handler: geo_radius_ro,
        subcommands: &[],
    },
    CommandSpec {
        name: "georadiusbymember_ro",
        arity: -5,
        flags: READONLY,
        first_key: 1,
        last_key: 1,
        step: 1,
        acl: &["read", "geo", "slow"],
        group: "geo",
        since: "3.2.10",
        summary: "A read-only variant for GEORADIUSBYMEMBER",
        complexity: RADIUS_COMPLEXITY,
        handler: geo_radius_by_member_ro,
        subcommands: &[],
    },
];

/// What a lookup of a key expected to hold a sorted set found.
enum Lookup<R> {
    /// No such key (or it expired).
    Missing,
    /// The key holds another type.
    WrongType,
    /// The callback's result.
    Found(R),
}

/// Runs `f` on the sorted set at `key` ([`objects::with_collection`]), counting a keyspace hit
/// or miss as Redis's `lookupKeyRead` does. `f` runs under the record's lock, so it must not use
/// the store.
fn with_zset<R>(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    f: impl FnOnce(&SortedSet, &mut Reply<'_>) -> R,
) -> Lookup<R> {
    match objects::with_collection(ctx, key, true, |z, reply| z.map(|z| f(z, reply))) {
        Err(_) => Lookup::WrongType,
        Ok(None) => Lookup::Missing,
        Ok(Some(r)) => Lookup::Found(r),
    }
}

/// `-ERR invalid longitude,latitude pair %f,%f`.
#[cold]
fn invalid_pair(reply: &mut Reply<'_>, lon: f64, lat: f64) {
    reply.error(&format!(
        "ERR invalid longitude,latitude pair {lon:.6},{lat:.6}"
    ));
}

/// `extractLongLatOrReply`: two doubles, then the range check.
fn parse_lon_lat(reply: &mut Reply<'_>, lon: &[u8], lat: &[u8]) -> Option<(f64, f64)> {
    let Some(lon) = parse_double(lon) else {
        reply.error("ERR value is not a valid float");
        return None;
    };
    let Some(lat) = parse_double(lat) else {
        reply.error("ERR value is not a valid float");
        return None;
    };
    if !geo::valid_lon_lat(lon, lat) {
        invalid_pair(reply, lon, lat);
        return None;
    }
    Some((lon, lat))
}

/// `extractUnitOrReply`.
fn parse_unit(reply: &mut Reply<'_>, unit: &[u8]) -> Option<f64> {
    let factor = geo::unit_factor(unit);
    if factor.is_none() {
        reply.error("ERR unsupported unit provided. please use M, KM, FT, MI");
    }
    factor
}

/// `addReplyHumanLongDouble`: a bulk string in RESP2, a double in RESP3, `%.17Lf` trimmed.
fn reply_coordinate(reply: &mut Reply<'_>, v: f64) {
    let s = geo::format_coordinate(v);
    if reply.is_resp3() {
        let out = reply.raw();
        out.push(b',');
        out.extend_from_slice(s.as_bytes());
        out.extend_from_slice(b"\r\n");
    } else {
        reply.bulk(s.as_bytes());
    }
}

/// `addReplyDoubleDistance`: `%.4f` in a bulk string, in both protocols.
fn reply_distance(reply: &mut Reply<'_>, v: f64) {
    reply.bulk(geo::format_distance(v).as_bytes());
}

/// What GEOADD's write did.
enum AddOutcome {
    /// The ZADD reply and whether any member was added.
    Count(i64, bool),
    WrongType,
}

/// What adding GEOADD's points to a sorted set did.
#[derive(Default)]
struct Added {
    /// ZADD's reply: added members, plus updated ones with CH.
    reply: i64,
    /// Members added.
    added: usize,
    /// Members added or moved.
    changed: usize,
}

/// Adds the (longitude, latitude, member) triples of `args` from `first` (already validated)
/// to `z`.
fn add_points(z: &mut SortedSet, args: Args<'_>, first: usize, flags: ZAddFlags) -> Added {
    let mut out = Added::default();
    let mut i = first;
    while i + 2 < args.len() {
        let lon = parse_double(args.get(i)).unwrap_or(0.0);
        let lat = parse_double(args.get(i + 1)).unwrap_or(0.0);
        if let Some(score) = geo::score(lon, lat)
            && let Ok(outcome) = z.add(args.get(i + 2), score, flags)
        {
            match outcome {
                ZAddOutcome::Added(_) => {
                    out.added += 1;
                    out.changed += 1;
                }
                ZAddOutcome::Updated(_) => out.changed += 1,
                ZAddOutcome::Unchanged(_) | ZAddOutcome::Skipped => {}
            }
            if outcome.counts(flags.ch) {
                out.reply += 1;
            }
        }
        i += 3;
    }
    out
}

/// `GEOADD key [NX|XX] [CH] longitude latitude member [...]`: ZADD of the geohash scores.
fn geoadd(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let mut flags = ZAddFlags::default();
    let mut first = 2;
    while first < args.len() {
        let opt = args.get(first);
        if eq_ignore_case(opt, "nx") {
            flags.nx = true;
        } else if eq_ignore_case(opt, "xx") {
            flags.xx = true;
        } else if eq_ignore_case(opt, "ch") {
            flags.ch = true;
        } else {
            break;
        }
        first += 1;
    }
    let rest = args.len() - first;
    // No triples at all is ZADD's own syntax error.
    if !rest.is_multiple_of(3) || rest == 0 || (flags.xx && flags.nx) {
        return ctx.syntax_error();
    }
    // Validate every pair before touching the key, as Redis builds the ZADD vector first.
    let mut i = first;
    while i < args.len() {
        if parse_lon_lat(&mut ctx.reply, args.get(i), args.get(i + 1)).is_none() {
            return;
        }
        i += 3;
    }
    let key = args.get(1);
    let mut changed = false;
    let outcome = ctx
        .store
        .rmw_value(ctx.client.db, key, ctx.now_ms, |entry| match entry {
            // ZADD XX does not create the key.
            None if flags.xx => ObjectWrite::Keep(AddOutcome::Count(0, false)),
            None => {
                let mut z = SortedSet::new();
                let a = add_points(&mut z, args, first, flags);
                changed = a.changed > 0;
                ObjectWrite::Put {
                    object: Collection::ZSet(z).boxed(),
                    expire_at: NO_EXPIRY,
                    result: AddOutcome::Count(a.reply, true),
                }
            }
            Some(e) => match e.value {
                ValueMut::Object(o) => match Collection::of_mut(o) {
                    Some(Collection::ZSet(z)) => {
                        let a = add_points(z, args, first, flags);
                        changed = a.changed > 0;
                        let result = AddOutcome::Count(a.reply, a.added > 0);
                        if a.changed > 0 {
                            ObjectWrite::Updated(result)
                        } else {
                            ObjectWrite::Keep(result)
                        }
                    }
                    _ => ObjectWrite::Keep(AddOutcome::WrongType),
                },
                ValueMut::String(_) => ObjectWrite::Keep(AddOutcome::WrongType),
            },
        });
    match outcome {
        AddOutcome::Count(n, added) => {
            if added {
                ctx.signal_key_ready(key);
            }
            ctx.reply.int(n);
            // GEOADD is Redis's ZADD underneath, events included.
            if changed {
                ctx.notify(events::ZSET, "zadd", key);
            }
        }
        AddOutcome::WrongType => ctx.wrong_type(),
    }
}

/// `GEOPOS key [member ...]`: `[lon, lat]` per member, a null array for missing ones.
fn geopos(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let mut wrote = false;
    let lookup = with_zset(ctx, args.get(1), |z, reply| {
        wrote = true;
        reply.array_len(args.len() - 2);
        for member in args.iter_from(2) {
            match z.score(member) {
                Some(score) => {
                    let (lon, lat) = geo::decode_score(score);
                    reply.array_len(2);
                    reply_coordinate(reply, lon);
                    reply_coordinate(reply, lat);
                }
                None => reply.null_array(),
            }
        }
    });
    match lookup {
        Lookup::WrongType => ctx.wrong_type(),
        Lookup::Missing => {
            ctx.reply.array_len(args.len() - 2);
            for _ in 2..args.len() {
                ctx.reply.null_array();
            }
        }
        Lookup::Found(()) => debug_assert!(wrote),
    }
}

/// `GEODIST key member1 member2 [unit]`: the distance with 4 decimals, or null.
fn geodist(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let to_meter = match args.len() {
        4 => 1.0,
        5 => match parse_unit(&mut ctx.reply, args.get(4)) {
            Some(f) => f,
            None => return,
        },
        _ => return ctx.syntax_error(),
    };
    let (a, b) = (args.get(2), args.get(3));
    let lookup = with_zset(ctx, args.get(1), |z, _| {
        let (s1, s2) = (z.score(a)?, z.score(b)?);
        let (lon1, lat1) = geo::decode_score(s1);
        let (lon2, lat2) = geo::decode_score(s2);
        Some(geo::distance(lon1, lat1, lon2, lat2) / to_meter)
    });
    match lookup {
        Lookup::WrongType => ctx.wrong_type(),
        Lookup::Missing | Lookup::Found(None) => ctx.reply.null(),
        Lookup::Found(Some(d)) => reply_distance(&mut ctx.reply, d),
    }
}

/// `GEOHASH key [member ...]`: the 11-character standard geohash per member, or null.
fn geohash(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let lookup = with_zset(ctx, args.get(1), |z, reply| {
        reply.array_len(args.len() - 2);
        for member in args.iter_from(2) {
            match z.score(member) {
                Some(score) => reply.bulk(geo::hash_string(score).as_bytes()),
                None => reply.null(),
            }
        }
    });
    match lookup {
        Lookup::WrongType => ctx.wrong_type(),
        Lookup::Missing => {
            ctx.reply.array_len(args.len() - 2);
            for _ in 2..args.len() {
                ctx.reply.null();
            }
        }
        Lookup::Found(()) => {}
    }
}
