use super::*;
use crate::Set;
use crate::util::Rng;

fn zset(pairs: &[(&str, f64)]) -> SortedSet {
    pairs.iter().map(|&(m, s)| (m.as_bytes(), s)).collect()
}

fn names(v: &[(&[u8], f64)]) -> Vec<String> {
    v.iter()
        .map(|(m, _)| String::from_utf8_lossy(m).into_owned())
        .collect()
}

#[test]
fn order_is_score_then_bytes() {
    let z = zset(&[
        ("b", 1.0),
        ("a", 1.0),
        ("c", 0.5),
        ("", 1.0),
        ("\u{ff}", -1.0),
    ]);
    assert_eq!(
        names(&z.iter().collect::<Vec<_>>()),
        ["\u{ff}", "c", "", "a", "b"]
    );
    assert_eq!(z.rank(b"a", false), Some(3));
    assert_eq!(z.rank(b"a", true), Some(1));
    assert_eq!(z.rank(b"zz", false), None);
    z.zsl.check();
}

#[test]
fn zadd_flags_like_redis() {
    let f = ZAddFlags::default();
    assert_eq!(
        ZAddFlags {
            nx: true,
            xx: true,
            ..f
        }
        .validate(1),
        Err(Error::ZAddXxNx)
    );
    assert_eq!(
        ZAddFlags {
            gt: true,
            lt: true,
            ..f
        }
        .validate(1),
        Err(Error::ZAddGtLtNx)
    );
    assert_eq!(
        ZAddFlags {
            gt: true,
            nx: true,
            ..f
        }
        .validate(1),
        Err(Error::ZAddGtLtNx)
    );
    assert_eq!(
        ZAddFlags { incr: true, ..f }.validate(2),
        Err(Error::ZAddIncrPairs)
    );
    let mut z = SortedSet::new();
    assert_eq!(z.add(b"a", 1.0, f), Ok(ZAddOutcome::Added(1.0)));
    assert_eq!(z.add(b"a", 1.0, f), Ok(ZAddOutcome::Unchanged(1.0)));
    assert_eq!(
        z.add(b"a", 2.0, ZAddFlags { nx: true, ..f }),
        Ok(ZAddOutcome::Skipped)
    );
    assert_eq!(
        z.add(b"b", 2.0, ZAddFlags { xx: true, ..f }),
        Ok(ZAddOutcome::Skipped)
    );
    assert_eq!(
        z.add(b"a", 0.0, ZAddFlags { gt: true, ..f }),
        Ok(ZAddOutcome::Skipped)
    );
    assert_eq!(
        z.add(b"a", 3.0, ZAddFlags { gt: true, ..f }),
        Ok(ZAddOutcome::Updated(3.0))
    );
    assert_eq!(
        z.add(
            b"a",
            0.0,
            ZAddFlags {
                incr: true,
                gt: true,
                ..f
            }
        ),
        Ok(ZAddOutcome::Skipped)
    );
    // GT still adds new members.
    assert_eq!(
        z.add(b"n", 5.0, ZAddFlags { gt: true, ..f }),
        Ok(ZAddOutcome::Added(5.0))
    );
    assert_eq!(z.add(b"a", f64::NAN, f), Err(Error::ScoreNan));
    assert_eq!(z.incr_by(b"i", f64::INFINITY), Ok(f64::INFINITY));
    assert_eq!(z.incr_by(b"i", f64::NEG_INFINITY), Err(Error::ScoreNan));
    assert_eq!(z.score(b"i"), Some(f64::INFINITY));
    assert!(ZAddOutcome::Updated(1.0).counts(true) && !ZAddOutcome::Updated(1.0).counts(false));
    z.zsl.check();
}

#[test]
fn ranges() {
    let z = zset(&[("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0), ("e", 5.0)]);
    assert_eq!(names(&z.range_by_rank(1, -2, false)), ["b", "c", "d"]);
    assert_eq!(names(&z.range_by_rank(0, 1, true)), ["e", "d"]);
    assert_eq!(names(&z.range_by_rank(i64::MIN, i64::MAX, true)).len(), 5);
    assert!(z.range_by_rank(3, 1, false).is_empty());
    let r = parse_score_range(b"(1", b"4").unwrap();
    assert_eq!(names(&z.range_by_score(&r, false, 0, -1)), ["b", "c", "d"]);
    assert_eq!(names(&z.range_by_score(&r, true, 0, -1)), ["d", "c", "b"]);
    assert_eq!(names(&z.range_by_score(&r, false, 1, 1)), ["c"]);
    assert_eq!(names(&z.range_by_score(&r, true, 2, 5)), ["b"]);
    assert!(z.range_by_score(&r, false, -1, 1).is_empty());
    assert!(z.range_by_score(&r, false, i64::MAX, 1).is_empty());
    assert!(z.range_by_score(&r, false, 0, 0).is_empty());
    assert_eq!(z.count_in_score(&r), 3);
    assert_eq!(z.count_in_score(&ScoreRange::ALL), 5);
    assert_eq!(
        z.count_in_score(&parse_score_range(b"6", b"+inf").unwrap()),
        0
    );
    assert_eq!(
        z.count_in_score(&parse_score_range(b"(3", b"(3").unwrap()),
        0
    );

    let l = zset(&[("a", 0.0), ("b", 0.0), ("c", 0.0), ("d", 0.0)]);
    let r = parse_lex_range(b"[b", b"(d").unwrap();
    assert_eq!(names(&l.range_by_lex(&r, false, 0, -1)), ["b", "c"]);
    assert_eq!(names(&l.range_by_lex(&r, true, 0, -1)), ["c", "b"]);
    assert_eq!(
        names(&l.range_by_lex(&LexRange::ALL, true, 1, 2)),
        ["c", "b"]
    );
    assert_eq!(l.count_in_lex(&r), 2);
    assert_eq!(l.count_in_lex(&parse_lex_range(b"+", b"-").unwrap()), 0);
}

#[test]
fn removals_and_pops() {
    let mut z: SortedSet = (0..100)
        .map(|i| (format!("m{i:03}"), i as f64))
        .collect::<Vec<_>>()
        .iter()
        .map(|(m, s)| (m.as_bytes(), *s))
        .collect();
    assert_eq!(z.remove_range_by_rank(0, 9), 10);
    assert_eq!(z.remove_range_by_rank(-5, i64::MAX), 5);
    assert_eq!(z.remove_range_by_rank(100, 200), 0);
    z.zsl.check();
    assert_eq!(
        z.remove_range_by_score(&parse_score_range(b"(20", b"30").unwrap()),
        10
    );
    assert_eq!(
        z.remove_range_by_lex(&parse_lex_range(b"[m050", b"(m060").unwrap()),
        10
    );
    z.zsl.check();
    assert_eq!(z.len(), 65);
    let low = z.pop(false, 2);
    assert_eq!(low[0], (Box::from(&b"m010"[..]), 10.0));
    let high = z.pop(true, 1);
    assert_eq!(high[0].1, 94.0);
    assert_eq!(z.pop(true, u64::MAX).len(), 62);
    assert!(z.is_empty());
    assert!(z.pop(false, 3).is_empty());
    z.zsl.check();
    assert_eq!(z.remove_range_by_score(&ScoreRange::ALL), 0);
}

#[test]
fn algebra_with_weights_and_nan_rule() {
    let a = zset(&[("x", 1.0), ("y", f64::INFINITY)]);
    let b = zset(&[("y", f64::NEG_INFINITY), ("z", 3.0)]);
    let s: Set = [&b"x"[..], b"z"].into_iter().collect();
    let u = SortedSet::union(
        &[(ZSource::Zset(&a), 1.0), (ZSource::Zset(&b), 1.0)],
        Aggregate::Sum,
    );
    assert_eq!(u.score(b"y"), Some(0.0));
    let u = SortedSet::union(
        &[
            (ZSource::Zset(&a), 2.0),
            (ZSource::Set(&s), 10.0),
            (ZSource::Missing, 1.0),
        ],
        Aggregate::Max,
    );
    assert_eq!(
        (u.score(b"x"), u.score(b"z"), u.len()),
        (Some(10.0), Some(10.0), 3)
    );
    let i = SortedSet::intersection(
        &[(ZSource::Zset(&a), 0.0), (ZSource::Zset(&b), 1.0)],
        Aggregate::Min,
    );
    // 0 * inf is NaN, made 0; MIN(0, -inf) is -inf.
    assert_eq!(i.score(b"y"), Some(f64::NEG_INFINITY));
    assert!(
        SortedSet::intersection(
            &[(ZSource::Zset(&a), 1.0), (ZSource::Missing, 1.0)],
            Aggregate::Sum
        )
        .is_empty()
    );
    assert_eq!(
        SortedSet::intersection_len(&[ZSource::Zset(&a), ZSource::Set(&s)], 0),
        1
    );
    let d = SortedSet::difference(&[ZSource::Zset(&a), ZSource::Set(&s)]);
    assert_eq!(names(&d.iter().collect::<Vec<_>>()), ["y"]);
}

#[test]
fn random_scan_encoding_spill() {
    let limits = Limits::default();
    let mut rng = Rng::new(5);
    let mut z = SortedSet::new();
    assert!(z.random(&mut rng).is_none());
    assert_eq!(z.random_repeated(u64::MAX, &mut rng).count(), 0);
    for i in 0..200 {
        z.add(
            format!("{i}").as_bytes(),
            f64::from(i % 7),
            ZAddFlags::default(),
        )
        .unwrap();
    }
    assert_eq!(z.encoding_name(&limits), "skiplist");
    assert_eq!(z.random_distinct(10, &mut rng).len(), 10);
    assert_eq!(z.random_distinct(u64::MAX, &mut rng).len(), 200);
    let (mut cursor, mut seen) = (0, std::collections::HashSet::new());
    loop {
        let (next, items) = z.scan(cursor, 7, &limits);
        seen.extend(items.iter().map(|(m, _)| m.to_vec()));
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(seen.len(), 200);
    let mut out = Vec::new();
    z.serialize(&mut out);
    assert_eq!(SortedSet::deserialize(&out), Ok(z.clone()));
    assert!(SortedSet::deserialize(&out[..out.len() - 3]).is_err());
    let small = zset(&[("a", 1.0)]);
    assert_eq!(small.encoding_name(&limits), "listpack");
    assert_eq!(
        zset(&[(&"x".repeat(65), 1.0)]).encoding_name(&limits),
        "skiplist"
    );
}

#[test]
fn big_set_stays_consistent() {
    let mut z = SortedSet::new();
    let mut rng = Rng::new(11);
    for i in 0..5000u32 {
        let s = (rng.below(100) as f64) - 50.0;
        z.add(format!("m{}", i % 3000).as_bytes(), s, ZAddFlags::default())
            .unwrap();
    }
    for i in (0..3000u32).step_by(4) {
        z.remove(format!("m{i}").as_bytes());
    }
    z.zsl.check();
    for (rank, (m, _)) in z.iter().enumerate() {
        assert_eq!(z.rank(m, false), Some(rank));
    }
    let rev: Vec<_> = z.iter().rev().collect();
    assert_eq!(rev.len(), z.len());
}

#[test]
fn negative_zero_is_positive_while_small() {
    let mut z = SortedSet::new();
    z.add(b"a", -0.0, ZAddFlags::default()).unwrap();
    assert!(z.score(b"a").unwrap().is_sign_positive());
    // An update to -0 in a small set is stored as 0 (and is no change from 0).
    assert!(matches!(
        z.add(b"a", -0.0, ZAddFlags::default()),
        Ok(ZAddOutcome::Unchanged(_))
    ));
    // Once a member is too long for a listpack, -0 is kept as Redis's skiplist keeps it.
    let long = [b'x'; 65];
    z.add(&long, 1.0, ZAddFlags::default()).unwrap();
    z.add(b"b", -0.0, ZAddFlags::default()).unwrap();
    assert!(z.score(b"b").unwrap().is_sign_negative());
}

#[test]
fn random_distinct_whole_set_is_highest_first() {
    let z = zset(&[("a", 1.0), ("b", 2.0), ("c", 3.0)]);
    let mut rng = Rng::new(1);
    assert_eq!(names(&z.random_distinct(3, &mut rng)), ["c", "b", "a"]);
    assert_eq!(
        names(&z.random_distinct(u64::MAX, &mut rng)),
        ["c", "b", "a"]
    );
    assert_eq!(z.random_distinct(2, &mut rng).len(), 2);
    assert!(z.random_distinct(0, &mut rng).is_empty());
}
