//! Geo helpers as Redis 7.0's `geohash.c`, `geohash_helper.c` and `geo.c`: 52-bit geohash
//! scores stored in a [`SortedSet`], haversine distances, the GEOHASH string, and GEOSEARCH by
//! radius or box over the nine cells Redis visits.

use crate::SortedSet;
use crate::zset::ScoreRange;

/// Redis's earth radius, in meters.
pub const EARTH_RADIUS_IN_METERS: f64 = 6372797.560856;
/// The web-mercator latitude limit.
pub const LAT_MAX: f64 = 85.05112878;
/// The southern latitude limit.
pub const LAT_MIN: f64 = -85.05112878;
/// The longitude limits.
pub const LON_MAX: f64 = 180.0;
/// The western longitude limit.
pub const LON_MIN: f64 = -180.0;
const STEP_MAX: u32 = 26;
const MERCATOR_MAX: f64 = 20037726.37;

/// A geohash: `bits` of `2 * step` interleaved bits (latitude even, longitude odd).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GeoHash {
    /// The interleaved bits.
    pub bits: u64,
    /// Bits per coordinate.
    pub step: u32,
}

#[derive(Clone, Copy, Debug)]
struct Area {
    lon: (f64, f64),
    lat: (f64, f64),
}

fn spread(v: u32) -> u64 {
    let mut x = u64::from(v);
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}

fn squash(mut x: u64) -> u32 {
    x &= 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    ((x | (x >> 16)) & 0x0000_0000_FFFF_FFFF) as u32
}

/// Whether GEOADD accepts the pair (Redis replies "invalid longitude,latitude pair" otherwise).
pub fn valid_lon_lat(lon: f64, lat: f64) -> bool {
    (LON_MIN..=LON_MAX).contains(&lon) && (LAT_MIN..=LAT_MAX).contains(&lat)
}

fn encode_in(
    lon_r: (f64, f64),
    lat_r: (f64, f64),
    lon: f64,
    lat: f64,
    step: u32,
) -> Option<GeoHash> {
    if step == 0 || step > 32 || !valid_lon_lat(lon, lat) {
        return None;
    }
    if lat < lat_r.0 || lat > lat_r.1 || lon < lon_r.0 || lon > lon_r.1 {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_off = (lat - lat_r.0) / (lat_r.1 - lat_r.0) * scale;
    let lon_off = (lon - lon_r.0) / (lon_r.1 - lon_r.0) * scale;
    Some(GeoHash {
        bits: spread(lat_off as u32) | (spread(lon_off as u32) << 1),
        step,
    })
}

/// `geohashEncodeWGS84`: the hash of a point at `step` bits per coordinate (26 for scores).
pub fn encode(lon: f64, lat: f64, step: u32) -> Option<GeoHash> {
    encode_in((LON_MIN, LON_MAX), (LAT_MIN, LAT_MAX), lon, lat, step)
}

/// The sorted-set score GEOADD stores for a point.
pub fn score(lon: f64, lat: f64) -> Option<f64> {
    encode(lon, lat, STEP_MAX).map(|h| h.bits as f64)
}

fn decode_area(h: GeoHash) -> Area {
    let lat_i = squash(h.bits);
    let lon_i = squash(h.bits >> 1);
    let scale = (1u64 << h.step) as f64;
    let (lat_s, lon_s) = (LAT_MAX - LAT_MIN, LON_MAX - LON_MIN);
    Area {
        lat: (
            LAT_MIN + (f64::from(lat_i) / scale) * lat_s,
            LAT_MIN + ((f64::from(lat_i) + 1.0) / scale) * lat_s,
        ),
        lon: (
            LON_MIN + (f64::from(lon_i) / scale) * lon_s,
            LON_MIN + ((f64::from(lon_i) + 1.0) / scale) * lon_s,
        ),
    }
}

/// C's `(uint64_t)score` as x86-64 compilers emit it (what Redis's `decodeGeohash` does to
/// scores that are not geohashes, e.g. set by ZADD): below 2^63 a signed truncation whose
/// out-of-range result is `1 << 63` (so `-1` becomes all ones and `-inf` is `1 << 63`); from
/// 2^63 on, the truncation of `score - 2^63` with the top bit flipped (so `inf` is 0).
pub fn score_bits(score: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if score >= TWO_63 {
        (cvttsd2si(score - TWO_63) as u64) ^ (1 << 63)
    } else {
        cvttsd2si(score) as u64
    }
}

/// `cvttsd2si`: truncation to `i64`, `i64::MIN` when out of range or NaN.
fn cvttsd2si(v: f64) -> i64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if (-TWO_63..TWO_63).contains(&v) {
        v as i64
    } else {
        i64::MIN
    }
}

/// WITHHASH's integer: C's `(long long)score` on x86-64 (`i64::MIN` when out of range).
pub fn score_hash_int(score: f64) -> i64 {
    cvttsd2si(score)
}

/// `decodeGeohash`: the (longitude, latitude) centre of the cell a score names.
pub fn decode_score(score: f64) -> (f64, f64) {
    let a = decode_area(GeoHash {
        bits: score_bits(score),
        step: STEP_MAX,
    });
    let lon = ((a.lon.0 + a.lon.1) / 2.0).clamp(LON_MIN, LON_MAX);
    let lat = ((a.lat.0 + a.lat.1) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (lon, lat)
}

/// GEOPOS's formatting of a coordinate (`%.17Lf`, trailing zeros trimmed).
pub fn format_coordinate(v: f64) -> String {
    let s = format!("{v:.17}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// GEODIST's formatting of a distance already divided by the unit (`%.4f`).
pub fn format_distance(v: f64) -> String {
    format!("{v:.4}")
}

/// The meters in a unit name (`m`, `km`, `ft`, `mi`, any case), as GEODIST and GEOSEARCH take.
pub fn unit_factor(unit: &[u8]) -> Option<f64> {
    [("m", 1.0), ("km", 1000.0), ("ft", 0.3048), ("mi", 1609.34)]
        .into_iter()
        .find(|(name, _)| unit.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, factor)| factor)
}

/// The 11-character GEOHASH string of a score (re-encoded with the standard ±90 latitude).
pub fn hash_string(score: f64) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (lon, lat) = decode_score(score);
    let bits = encode_in((-180.0, 180.0), (-90.0, 90.0), lon, lat, STEP_MAX).map_or(0, |h| h.bits);
    (0..11)
        .map(|i| {
            let idx = if i == 10 {
                0
            } else {
                (bits >> (52 - (i + 1) * 5)) & 0x1f
            };
            char::from(ALPHABET[idx as usize])
        })
        .collect()
}

fn deg_rad(d: f64) -> f64 {
    d * (std::f64::consts::PI / 180.0)
}

fn rad_deg(r: f64) -> f64 {
    r / (std::f64::consts::PI / 180.0)
}

fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_IN_METERS * (deg_rad(lat2) - deg_rad(lat1)).abs()
}

/// `geohashGetDistance`: the haversine distance in meters.
pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let v = ((deg_rad(lon2) - deg_rad(lon1)) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let (lat1r, lat2r) = (deg_rad(lat1), deg_rad(lat2));
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_IN_METERS * a.sqrt().asin()
}

/// A GEOSEARCH shape, sizes in `unit`s times `conversion` meters per unit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Shape {
    /// BYRADIUS.
    Radius(f64),
    /// BYBOX width height.
    Box(f64, f64),
}

/// One GEOSEARCH hit.
#[derive(Clone, Debug, PartialEq)]
pub struct GeoMatch<'a> {
    /// The member.
    pub member: &'a [u8],
    /// Its distance from the centre, in meters.
    pub distance: f64,
    /// Its score (WITHHASH).
    pub score: f64,
    /// Its decoded position (WITHCOORD).
    pub lon: f64,
    /// Its decoded latitude.
    pub lat: f64,
}

fn steps_for(mut range: f64, lat: f64) -> u32 {
    if range == 0.0 {
        return STEP_MAX;
    }
    let mut step: i32 = 1;
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, STEP_MAX as i32) as u32
}

fn move_x(h: GeoHash, d: i8) -> GeoHash {
    let mut x = h.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let y = h.bits & 0x5555_5555_5555_5555;
    let zz = 0x5555_5555_5555_5555u64 >> (64 - h.step * 2);
    if d > 0 {
        x = x.wrapping_add(zz + 1);
    } else {
        x = (x | zz).wrapping_sub(zz + 1);
    }
    x &= 0xaaaa_aaaa_aaaa_aaaau64 >> (64 - h.step * 2);
    GeoHash {
        bits: x | y,
        step: h.step,
    }
}

fn move_y(h: GeoHash, d: i8) -> GeoHash {
    let x = h.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let mut y = h.bits & 0x5555_5555_5555_5555;
    let zz = 0xaaaa_aaaa_aaaa_aaaau64 >> (64 - h.step * 2);
    if d > 0 {
        y = y.wrapping_add(zz + 1);
    } else {
        y = (y | zz).wrapping_sub(zz + 1);
    }
    y &= 0x5555_5555_5555_5555u64 >> (64 - h.step * 2);
    GeoHash {
        bits: x | y,
        step: h.step,
    }
}

/// `geohashCalculateAreasByShapeWGS84`: the cells to visit, in Redis's order (centre, N, S, E,
/// W, NE, NW, SE, SW), with useless ones removed (`None`).
fn cells(lon: f64, lat: f64, shape: Shape, conversion: f64) -> [Option<GeoHash>; 9] {
    let (h_m, w_m, radius) = match shape {
        Shape::Radius(r) => (conversion * r, conversion * r, r),
        Shape::Box(w, h) => (
            conversion * (h / 2.0),
            conversion * (w / 2.0),
            ((w / 2.0) * (w / 2.0) + (h / 2.0) * (h / 2.0)).sqrt(),
        ),
    };
    let lat_delta = rad_deg(h_m / EARTH_RADIUS_IN_METERS);
    let lon_top = rad_deg(w_m / EARTH_RADIUS_IN_METERS / deg_rad(lat + lat_delta).cos());
    let lon_bottom = rad_deg(w_m / EARTH_RADIUS_IN_METERS / deg_rad(lat - lat_delta).cos());
    let delta = if lat < 0.0 { lon_bottom } else { lon_top };
    let (min_lon, max_lon, min_lat, max_lat) =
        (lon - delta, lon + delta, lat - lat_delta, lat + lat_delta);

    let mut steps = steps_for(radius * conversion, lat);
    let around = |steps: u32| {
        let h = encode(lon, lat, steps).unwrap_or(GeoHash {
            bits: 0,
            step: steps,
        });
        let n = [
            h,
            move_y(h, 1),
            move_y(h, -1),
            move_x(h, 1),
            move_x(h, -1),
            move_y(move_x(h, 1), 1),
            move_y(move_x(h, -1), 1),
            move_y(move_x(h, 1), -1),
            move_y(move_x(h, -1), -1),
        ];
        (n, decode_area(h))
    };
    let (mut n, mut area) = around(steps);
    let decrease = decode_area(n[1]).lat.1 < max_lat
        || decode_area(n[2]).lat.0 > min_lat
        || decode_area(n[3]).lon.1 < max_lon
        || decode_area(n[4]).lon.0 > min_lon;
    if steps > 1 && decrease {
        steps -= 1;
        (n, area) = around(steps);
    }
    let mut out = n.map(Some);
    if steps >= 2 {
        let mut drop = |ids: [usize; 3]| ids.iter().for_each(|&i| out[i] = None);
        if area.lat.0 < min_lat {
            drop([2, 8, 7]);
        }
        if area.lat.1 > max_lat {
            drop([1, 5, 6]);
        }
        if area.lon.0 < min_lon {
            drop([4, 8, 6]);
        }
        if area.lon.1 > max_lon {
            drop([3, 7, 5]);
        }
    }
    out
}

/// GEOSEARCH / GEORADIUS: the members within `shape` (sizes in units of `conversion` meters)
/// of (`lon`, `lat`), in Redis's visiting order. `any_limit` stops after that many hits (COUNT
/// ANY). Sorting by distance and plain COUNT are the caller's (Redis sorts ASC when COUNT is
/// given without ANY).
pub fn search<'a>(
    zset: &'a SortedSet,
    lon: f64,
    lat: f64,
    shape: Shape,
    conversion: f64,
    any_limit: Option<usize>,
) -> Vec<GeoMatch<'a>> {
    let mut out = Vec::new();
    let cells = cells(lon, lat, shape, conversion);
    // Redis skips a cell equal to the last one it searched, but its `last_processed` index
    // starts at 0 and 0 is "none": a neighbour equal to the centre cell is searched again.
    let mut last_processed = 0;
    for (i, cell) in cells.iter().enumerate() {
        let Some(cell) = *cell else { continue };
        if cell.bits == 0 && cell.step == 0 {
            continue;
        }
        if last_processed != 0 && cells[last_processed] == Some(cell) {
            continue;
        }
        if any_limit.is_some_and(|l| !out.is_empty() && out.len() >= l) {
            break;
        }
        last_processed = i;
        let shift = 52 - cell.step * 2;
        let range = ScoreRange {
            min: (cell.bits << shift) as f64,
            max: ((cell.bits + 1) << shift) as f64,
            min_exclusive: false,
            max_exclusive: true,
        };
        for (member, score) in zset.range_by_score(&range, false, 0, -1) {
            let (plon, plat) = decode_score(score);
            let d = match shape {
                Shape::Radius(r) => {
                    let d = distance(lon, lat, plon, plat);
                    (d <= r * conversion).then_some(d)
                }
                Shape::Box(w, h) => {
                    let inside = lat_distance(plat, lat) <= h * conversion / 2.0
                        && distance(plon, plat, lon, plat) <= w * conversion / 2.0;
                    inside.then(|| distance(lon, lat, plon, plat))
                }
            };
            if let Some(distance) = d {
                out.push(GeoMatch {
                    member,
                    distance,
                    score,
                    lon: plon,
                    lat: plat,
                });
                if any_limit.is_some_and(|l| out.len() >= l) {
                    break;
                }
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "geo_tests.rs"]
mod tests;
