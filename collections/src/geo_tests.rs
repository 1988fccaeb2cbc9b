//! Expected values were produced by a real Redis 7.0.15 (GEOADD, ZRANGE WITHSCORES, GEOPOS,
//! GEODIST, GEOHASH, GEOSEARCH).

use super::*;
use crate::ZAddFlags;

const POINTS: [(&str, f64, f64, f64, &str, &str, &str); 6] = [
    (
        "Palermo",
        13.361389,
        38.115556,
        3479099956230698.0,
        "13.36138933897018433",
        "38.11555639549629859",
        "sqc8b49rny0",
    ),
    (
        "Catania",
        15.087269,
        37.502669,
        3479447370796909.0,
        "15.08726745843887329",
        "37.50266842333162032",
        "sqdtr74hyu0",
    ),
    (
        "Paris",
        2.3522,
        48.8566,
        3663832779122514.0,
        "2.35219806432723999",
        "48.8565995303492997",
        "u09tvw0f640",
    ),
    (
        "SF",
        -122.4194,
        37.7749,
        1367859919124626.0,
        "-122.41940170526504517",
        "37.77490001056577995",
        "9q8yyk8ytp0",
    ),
    (
        "Null",
        0.0,
        0.0,
        3377699720527872.0,
        "0.00000268220901489",
        "0.00000126736058093",
        "s0000000000",
    ),
    (
        "SW",
        -179.9999,
        -85.05,
        83801.0,
        "-179.99990075826644897",
        "-85.04999956172352427",
        "00bh0j05f60",
    ),
];

fn places() -> SortedSet {
    let mut z = SortedSet::new();
    for (name, lon, lat, ..) in POINTS {
        z.add(
            name.as_bytes(),
            score(lon, lat).unwrap(),
            ZAddFlags::default(),
        )
        .unwrap();
    }
    z
}

fn pos(z: &SortedSet, m: &str) -> (f64, f64) {
    decode_score(z.score(m.as_bytes()).unwrap())
}

#[test]
fn scores_positions_hashes_match_redis() {
    for (name, lon, lat, want_score, want_lon, want_lat, want_hash) in POINTS {
        let s = score(lon, lat).unwrap();
        assert_eq!(s, want_score, "{name}");
        let (dlon, dlat) = decode_score(s);
        assert_eq!(
            (
                format_coordinate(dlon).as_str(),
                format_coordinate(dlat).as_str()
            ),
            (want_lon, want_lat),
            "{name}"
        );
        assert_eq!(hash_string(s), want_hash, "{name}");
    }
    assert_eq!(score(180.1, 0.0), None);
    assert_eq!(score(0.0, 85.06), None);
    assert_eq!(score(f64::NAN, 0.0), None);
    assert!(!valid_lon_lat(f64::INFINITY, 0.0));
}

#[test]
fn distances_match_redis() {
    let z = places();
    let d = |a: &str, b: &str| {
        let ((x1, y1), (x2, y2)) = (pos(&z, a), pos(&z, b));
        distance(x1, y1, x2, y2)
    };
    assert_eq!(format_distance(d("Palermo", "Catania")), "166274.1516");
    assert_eq!(
        format_distance(d("Palermo", "Catania") / unit_factor(b"KM").unwrap()),
        "166.2742"
    );
    assert_eq!(
        format_distance(d("Paris", "SF") / unit_factor(b"mi").unwrap()),
        "5564.9629"
    );
    assert_eq!(
        format_distance(d("Null", "SW") / unit_factor(b"ft").unwrap()),
        "34648744.6677"
    );
    assert_eq!(unit_factor(b"yd"), None);
}

fn hits(z: &SortedSet, lon: f64, lat: f64, shape: Shape, conv: f64) -> Vec<(String, String)> {
    let mut v = search(z, lon, lat, shape, conv, None);
    v.sort_by(|a, b| a.distance.total_cmp(&b.distance));
    v.iter()
        .map(|m| {
            (
                String::from_utf8_lossy(m.member).into_owned(),
                format_distance(m.distance / conv),
            )
        })
        .collect()
}

#[test]
fn searches_match_redis() {
    let z = places();
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        hits(&z, 15.0, 37.0, Shape::Radius(200.0), 1000.0),
        [pair("Catania", "56.4413"), pair("Palermo", "190.4424")]
    );
    assert_eq!(
        hits(&z, 15.0, 37.0, Shape::Radius(100.0), 1000.0),
        [pair("Catania", "56.4413")]
    );
    assert_eq!(
        hits(&z, 15.0, 37.0, Shape::Box(400.0, 400.0), 1000.0),
        [pair("Catania", "56.4413"), pair("Palermo", "190.4424")]
    );
    let (plon, plat) = pos(&z, "Paris");
    let names: Vec<_> = hits(&z, plon, plat, Shape::Radius(10000.0), 1000.0)
        .into_iter()
        .map(|p| p.0)
        .collect();
    assert_eq!(names, ["Paris", "Palermo", "Catania", "Null", "SF"]);
    let d: Vec<_> = hits(&z, plon, plat, Shape::Radius(10000.0), 1000.0)
        .into_iter()
        .map(|p| p.1)
        .collect();
    assert_eq!(
        d,
        ["0.0000", "1485.5540", "1626.9307", "5438.8285", "8955.9175"]
    );
    let names: Vec<_> = hits(&z, 0.0, 0.0, Shape::Box(40000.0, 40000.0), 1000.0)
        .into_iter()
        .map(|p| p.0)
        .collect();
    assert_eq!(names, ["Null", "Catania", "Palermo", "Paris", "SW", "SF"]);
    assert_eq!(
        search(&z, 15.0, 37.0, Shape::Radius(200.0), 1000.0, Some(1)).len(),
        1
    );
    assert!(search(&z, 15.0, 37.0, Shape::Radius(0.0), 1.0, None).is_empty());
    assert!(search(&SortedSet::new(), 0.0, 0.0, Shape::Radius(1e9), 1.0, None).is_empty());
}

#[test]
fn non_geohash_scores_decode_like_redis_on_x86_64() {
    // Values observed from Redis 7.0.15 (GEOPOS / GEOHASH of ZADD-set scores).
    assert_eq!(score_bits(-1.0), u64::MAX);
    assert_eq!(score_bits(f64::NEG_INFINITY), 1 << 63);
    assert_eq!(score_bits(-1e300), 1 << 63);
    assert_eq!(score_bits(f64::INFINITY), 0);
    assert_eq!(score_bits(1e300), 0);
    assert_eq!(score_bits(1.5), 1);
    assert_eq!(score_bits(9_223_372_036_854_775_808.0), 1 << 63);
    assert_eq!(score_hash_int(f64::INFINITY), i64::MIN);
    assert_eq!(score_hash_int(-3.7), -3);
    assert_eq!(hash_string(-1.0), "bp05b5048p0");
    assert_eq!(hash_string(f64::NEG_INFINITY), "00bh0hbj200");
    let (lon, lat) = decode_score(-1.0);
    assert_eq!(
        (format_coordinate(lon), format_coordinate(lat)),
        ("180".to_owned(), "85.0511287799999991".to_owned())
    );
    let (lon, lat) = decode_score(f64::NEG_INFINITY);
    assert_eq!(
        (format_coordinate(lon), format_coordinate(lat)),
        ("180".to_owned(), "-85.05112751263942528".to_owned())
    );
}

#[test]
fn units_are_case_insensitive() {
    assert_eq!(unit_factor(b"KM"), Some(1000.0));
    assert_eq!(unit_factor(b"Mi"), Some(1609.34));
    assert_eq!(unit_factor(b"fT"), Some(0.3048));
    assert_eq!(unit_factor(b"m"), Some(1.0));
    assert_eq!(unit_factor(b"mm"), None);
    assert_eq!(unit_factor(b""), None);
}
