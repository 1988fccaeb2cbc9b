//! The search family, Redis's `georadiusGeneric`: GEOSEARCH, GEOSEARCHSTORE, GEORADIUS,
//! GEORADIUSBYMEMBER and their `_RO` variants. Arguments are parsed in Redis's order, with the
//! source sorted set at hand (FROMMEMBER and GEORADIUSBYMEMBER look their member up while
//! parsing), so the first error Redis would report is the one reported.

use std::cmp::Ordering;

use ferrite_collections::SortedSet;
use ferrite_collections::ZAddFlags;
use ferrite_collections::geo::{self, GeoMatch, Shape};
use ferrite_hybridlog::NO_EXPIRY;

use super::{
    Lookup, parse_double, parse_lon_lat, parse_unit, reply_coordinate, reply_distance, with_zset,
};
use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::ctx::Ctx;
use crate::notify::flags as events;
use crate::objects::Collection;
use crate::resp::Reply;

/// Search around coordinates (GEORADIUS).
const RADIUS_COORDS: u8 = 1 << 0;
/// Search around a member (GEORADIUSBYMEMBER).
const RADIUS_MEMBER: u8 = 1 << 1;
/// STORE / STOREDIST refused (the `_RO` variants).
const RADIUS_NOSTORE: u8 = 1 << 2;
/// GEOSEARCH's arguments.
const GEOSEARCH: u8 = 1 << 3;
/// GEOSEARCHSTORE: the destination comes first, STOREDIST is a flag.
const GEOSEARCHSTORE: u8 = 1 << 4;

/// `GEORADIUS key longitude latitude radius unit [options]`.
pub(super) fn geo_radius(ctx: &mut Ctx<'_>, args: Args<'_>) {
    generic(ctx, args, 1, RADIUS_COORDS);
}

/// `GEORADIUSBYMEMBER key member radius unit [options]`.
pub(super) fn geo_radius_by_member(ctx: &mut Ctx<'_>, args: Args<'_>) {
    generic(ctx, args, 1, RADIUS_MEMBER);
}

/// `GEORADIUS_RO`: GEORADIUS without STORE.
pub(super) fn geo_radius_ro(ctx: &mut Ctx<'_>, args: Args<'_>) {
    generic(ctx, args, 1, RADIUS_COORDS | RADIUS_NOSTORE);
}

/// `GEORADIUSBYMEMBER_RO`: GEORADIUSBYMEMBER without STORE.
pub(super) fn geo_radius_by_member_ro(ctx: &mut Ctx<'_>, args: Args<'_>) {
    generic(ctx, args, 1, RADIUS_MEMBER | RADIUS_NOSTORE);
}

/// `GEOSEARCH key FROMMEMBER|FROMLONLAT ... BYRADIUS|BYBOX ... [options]`.
pub(super) fn geo_search(ctx: &mut Ctx<'_>, args: Args<'_>) {
    generic(ctx, args, 1, GEOSEARCH);
}

/// `GEOSEARCHSTORE destination source ... [STOREDIST]`.
pub(super) fn geo_search_store(ctx: &mut Ctx<'_>, args: Args<'_>) {
    generic(ctx, args, 2, GEOSEARCH | GEOSEARCHSTORE);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    None,
    Asc,
    Desc,
}

/// A fully parsed search.
struct Query<'a> {
    lon: f64,
    lat: f64,
    shape: Shape,
    /// Meters per unit.
    conversion: f64,
    with_dist: bool,
    with_hash: bool,
    with_coord: bool,
    sort: Sort,
    /// 0: no limit.
    count: usize,
    any: bool,
    store: Option<&'a [u8]>,
    store_dist: bool,
}

/// `extractDistanceOrReply`: a non-negative radius and its unit.
fn parse_radius(reply: &mut Reply<'_>, radius: &[u8], unit: &[u8]) -> Option<(f64, f64)> {
    let Some(r) = parse_double(radius) else {
        reply.error("ERR need numeric radius");
        return None;
    };
    if r < 0.0 {
        reply.error("ERR radius cannot be negative");
        return None;
    }
    Some((r, parse_unit(reply, unit)?))
}

/// `extractBoxOrReply`: width, height, then their unit.
fn parse_box(reply: &mut Reply<'_>, w: &[u8], h: &[u8], unit: &[u8]) -> Option<(f64, f64, f64)> {
    let Some(w) = parse_double(w) else {
        reply.error("ERR need numeric width");
        return None;
    };
    let Some(h) = parse_double(h) else {
        reply.error("ERR need numeric height");
        return None;
    };
    if h < 0.0 || w < 0.0 {
        reply.error("ERR height or width cannot be negative");
        return None;
    }
    Some((w, h, parse_unit(reply, unit)?))
}

/// `longLatFromMember`, with Redis's error when the member is missing.
fn member_position(reply: &mut Reply<'_>, z: &SortedSet, member: &[u8]) -> Option<(f64, f64)> {
    match z.score(member) {
        Some(score) => Some(geo::decode_score(score)),
        None => {
            reply.error("ERR could not decode requested zset member");
            None
        }
    }
}

/// Parses the arguments as `georadiusGeneric` does, replying with the first error. `z` is the
/// source set, `None` when the key is missing (Redis still parses, but skips member lookups
/// and, for GEORADIUSBYMEMBER, the radius).
fn parse<'a>(
    reply: &mut Reply<'_>,
    args: Args<'a>,
    src: usize,
    flags: u8,
    z: Option<&SortedSet>,
) -> Option<Query<'a>> {
    let mut q = Query {
        lon: 0.0,
        lat: 0.0,
        shape: Shape::Radius(0.0),
        conversion: 1.0,
        with_dist: false,
        with_hash: false,
        with_coord: false,
        sort: Sort::None,
        count: 0,
        any: false,
        store: None,
        store_dist: false,
    };
    let base = if flags & RADIUS_COORDS != 0 {
        (q.lon, q.lat) = parse_lon_lat(reply, args.get(2), args.get(3))?;
        let (r, conversion) = parse_radius(reply, args.get(4), args.get(5))?;
        (q.shape, q.conversion) = (Shape::Radius(r), conversion);
        6
    } else if flags & RADIUS_MEMBER != 0 {
        if let Some(z) = z {
            (q.lon, q.lat) = member_position(reply, z, args.get(2))?;
            let (r, conversion) = parse_radius(reply, args.get(3), args.get(4))?;
            (q.shape, q.conversion) = (Shape::Radius(r), conversion);
        }
        5
    } else if flags & GEOSEARCHSTORE != 0 {
        q.store = Some(args.get(1));
        src + 1
    } else {
        src + 1
    };

    let search = flags & GEOSEARCH != 0;
    let store_ok = flags & (RADIUS_NOSTORE | GEOSEARCH) == 0;
    let (mut from_member, mut from_loc, mut by_radius, mut by_box) = (false, false, false, false);
    let remaining = args.len().saturating_sub(base);
    let mut i = 0;
    while i < remaining {
        let at = |k: usize| args.get(base + i + k);
        let arg = at(0);
        if eq_ignore_case(arg, "withdist") {
            q.with_dist = true;
        } else if eq_ignore_case(arg, "withhash") {
            q.with_hash = true;
        } else if eq_ignore_case(arg, "withcoord") {
            q.with_coord = true;
        } else if eq_ignore_case(arg, "any") {
            q.any = true;
        } else if eq_ignore_case(arg, "asc") {
            q.sort = Sort::Asc;
        } else if eq_ignore_case(arg, "desc") {
            q.sort = Sort::Desc;
        } else if eq_ignore_case(arg, "count") && i + 1 < remaining {
            let Some(count) = parse_i64(at(1)) else {
                reply.error("ERR value is not an integer or out of range");
                return None;
            };
            if count <= 0 {
                reply.error("ERR COUNT must be > 0");
                return None;
            }
            q.count = usize::try_from(count).unwrap_or(usize::MAX);
            i += 1;
        } else if eq_ignore_case(arg, "store") && i + 1 < remaining && store_ok {
            q.store = Some(at(1));
            q.store_dist = false;
            i += 1;
        } else if eq_ignore_case(arg, "storedist") && i + 1 < remaining && store_ok {
            q.store = Some(at(1));
            q.store_dist = true;
            i += 1;
        } else if eq_ignore_case(arg, "storedist") && flags & GEOSEARCHSTORE != 0 {
            q.store_dist = true;
        } else if eq_ignore_case(arg, "frommember") && i + 1 < remaining && search && !from_loc {
            if let Some(z) = z {
                (q.lon, q.lat) = member_position(reply, z, at(1))?;
            }
            from_member = true;
            i += 1;
        } else if eq_ignore_case(arg, "fromlonlat") && i + 2 < remaining && search && !from_member {
            (q.lon, q.lat) = parse_lon_lat(reply, at(1), at(2))?;
            from_loc = true;
            i += 2;
        } else if eq_ignore_case(arg, "byradius") && i + 2 < remaining && search && !by_box {
            let (r, conversion) = parse_radius(reply, at(1), at(2))?;
            (q.shape, q.conversion) = (Shape::Radius(r), conversion);
            by_radius = true;
            i += 2;
        } else if eq_ignore_case(arg, "bybox") && i + 3 < remaining && search && !by_radius {
            let (w, h, conversion) = parse_box(reply, at(1), at(2), at(3))?;
            (q.shape, q.conversion) = (Shape::Box(w, h), conversion);
            by_box = true;
            i += 3;
        } else {
            reply.error("ERR syntax error");
            return None;
        }
        i += 1;
    }

    if q.store.is_some() && (q.with_dist || q.with_hash || q.with_coord) {
        reply.error(if flags & GEOSEARCHSTORE != 0 {
            "ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        } else {
            "ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        });
        return None;
    }
    if search && !(from_member || from_loc) {
        reply.error(&format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {}",
            String::from_utf8_lossy(args.get(0))
        ));
        return None;
    }
    if search && !(by_radius || by_box) {
        reply.error(&format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {}",
            String::from_utf8_lossy(args.get(0))
        ));
        return None;
    }
    if q.any && q.count == 0 {
        reply.error("ERR the ANY argument requires COUNT argument");
        return None;
    }
    // COUNT needs the nearest N, so it implies ASC, unless ANY asked for the first N found.
    if q.count != 0 && q.sort == Sort::None && !q.any {
        q.sort = Sort::Asc;
    }
    Some(q)
}

/// How a search against an existing set ended.
enum Done {
    /// Replied already (results or an argument error).
    Replied,
    /// STORE: the set to store (`None`: no results, delete the destination) and its size.
    Store(Option<SortedSet>, usize),
}

/// Runs the search and sorts the hits; returns them and how many to use.
fn matches<'z>(z: &'z SortedSet, q: &Query<'_>) -> (Vec<GeoMatch<'z>>, usize) {
    let any_limit = (q.any && q.count > 0).then_some(q.count);
    let mut hits = geo::search(z, q.lon, q.lat, q.shape, q.conversion, any_limit);
    let returned = if q.count == 0 {
        hits.len()
    } else {
        hits.len().min(q.count)
    };
    let by_dist = |a: &GeoMatch<'_>, b: &GeoMatch<'_>| {
        a.distance
            .partial_cmp(&b.distance)
            .unwrap_or(Ordering::Equal)
    };
    match q.sort {
        Sort::None => {}
        Sort::Asc => hits.sort_by(by_dist),
        Sort::Desc => hits.sort_by(|a, b| by_dist(b, a)),
    }
    (hits, returned)
}

fn search_existing(reply: &mut Reply<'_>, z: &SortedSet, q: &Query<'_>) -> Done {
    let (hits, returned) = matches(z, q);
    if q.store.is_some() {
        if returned == 0 {
            return Done::Store(None, 0);
        }
        let mut out = SortedSet::new();
        for m in &hits[..returned] {
            let score = if q.store_dist {
                m.distance / q.conversion
            } else {
                m.score
            };
            let _ = out.add(m.member, score, ZAddFlags::default());
        }
        return Done::Store(Some(out), returned);
    }
    let options = usize::from(q.with_dist) + usize::from(q.with_hash) + usize::from(q.with_coord);
    reply.array_len(returned);
    for m in &hits[..returned] {
        if options > 0 {
            reply.array_len(options + 1);
        }
        reply.bulk(m.member);
        if q.with_dist {
            reply_distance(reply, m.distance / q.conversion);
        }
        if q.with_hash {
            reply.int(geo::score_hash_int(m.score));
        }
        if q.with_coord {
            reply.array_len(2);
            reply_coordinate(reply, m.lon);
            reply_coordinate(reply, m.lat);
        }
    }
    Done::Replied
}

/// `georadiusGeneric`: `src` is the position of the source key.
fn generic(ctx: &mut Ctx<'_>, args: Args<'_>, src: usize, flags: u8) {
    let lookup = with_zset(ctx, args.get(src), |z, reply| {
        let q = parse(reply, args, src, flags, Some(z))?;
        Some((search_existing(reply, z, &q), q.store))
    });
    let (done, store) = match lookup {
        Lookup::WrongType => return ctx.wrong_type(),
        Lookup::Found(None) => return,
        Lookup::Found(Some(found)) => found,
        Lookup::Missing => {
            let Some(q) = parse(&mut ctx.reply, args, src, flags, None) else {
                return;
            };
            match q.store {
                Some(dest) => (Done::Store(None, 0), Some(dest)),
                None => {
                    ctx.reply.array_len(0);
                    return;
                }
            }
        }
    };
    if let (Done::Store(set, n), Some(dest)) = (done, store) {
        match set {
            Some(set) => {
                // Like SET, the destination is replaced whatever it held, and loses its TTL.
                ctx.reap_for_notify(dest);
                ctx.store.upsert_object(
                    ctx.client.db,
                    dest,
                    Collection::ZSet(set).boxed(),
                    NO_EXPIRY,
                );
                ctx.signal_key_ready(dest);
                let event = if flags & GEOSEARCH != 0 {
                    "geosearchstore"
                } else {
                    "georadiusstore"
                };
                ctx.notify(events::ZSET, event, dest);
            }
            None => {
                if ctx.store.delete(ctx.client.db, dest, ctx.now_ms) {
                    ctx.notify(events::GENERIC, "del", dest);
                }
            }
        }
        ctx.reply.int(n as i64);
    }
}
