//! Property tests: each collection against a simple std-collection model over random operation
//! sequences, with a spill round trip at the end.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use ferrite_collections::{
    End, Hash, LexBound, LexRange, List, Rng, ScoreRange, Set, SortedSet, ZAddFlags, ZAddOutcome,
};
use proptest::prelude::*;

fn member() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (0u8..20).prop_map(|i| i.to_string().into_bytes()),
        prop::collection::vec(prop::sample::select(vec![b'a', b'b', b'c', 0, 0xff]), 0..3),
    ]
}

fn index() -> impl Strategy<Value = i64> {
    prop_oneof![-12i64..12, Just(i64::MIN), Just(i64::MAX)]
}

#[derive(Debug, Clone)]
enum ListOp {
    Push(bool, Vec<u8>),
    Pop(bool),
    Set(i64, Vec<u8>),
    Trim(i64, i64),
    Insert(bool, Vec<u8>, Vec<u8>),
    Remove(i64, Vec<u8>),
    Range(i64, i64),
    Pos(Vec<u8>, i64, u64, u64),
}

fn list_op() -> impl Strategy<Value = ListOp> {
    prop_oneof![
        4 => (any::<bool>(), member()).prop_map(|(l, m)| ListOp::Push(l, m)),
        1 => any::<bool>().prop_map(ListOp::Pop),
        1 => (index(), member()).prop_map(|(i, m)| ListOp::Set(i, m)),
        1 => (index(), index()).prop_map(|(a, b)| ListOp::Trim(a, b)),
        1 => (any::<bool>(), member(), member()).prop_map(|(b, p, m)| ListOp::Insert(b, p, m)),
        1 => (prop_oneof![-3i64..3, Just(i64::MIN)], member()).prop_map(|(c, m)| ListOp::Remove(c, m)),
        1 => (index(), index()).prop_map(|(a, b)| ListOp::Range(a, b)),
        1 => (member(), prop_oneof![-3i64..4, Just(i64::MIN)], 0u64..4, 0u64..6)
            .prop_map(|(m, r, c, l)| ListOp::Pos(m, r, c, l)),
    ]
}

/// The model's index normalisation, written independently with i128.
fn model_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i128;
    let fix = |i: i64| {
        if i < 0 {
            len + i128::from(i)
        } else {
            i128::from(i)
        }
    };
    let (s, e) = (fix(start).max(0), fix(end).min(len - 1));
    (s <= e && s < len).then_some((s as usize, e as usize))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn list_matches_vecdeque(ops in prop::collection::vec(list_op(), 0..60)) {
        let mut l = List::new();
        let mut m: VecDeque<Vec<u8>> = VecDeque::new();
        for op in ops {
            match op {
                ListOp::Push(left, v) => {
                    l.push(if left { End::Left } else { End::Right }, &v);
                    if left { m.push_front(v) } else { m.push_back(v) }
                }
                ListOp::Pop(left) => {
                    let got = l.pop(if left { End::Left } else { End::Right }).map(|b| b.to_vec());
                    let want = if left { m.pop_front() } else { m.pop_back() };
                    prop_assert_eq!(got, want);
                }
                ListOp::Set(i, v) => {
                    let at = model_range(i, i, m.len()).filter(|_| i >= -(m.len() as i64));
                    let ok = l.set(i, &v).is_ok();
                    prop_assert_eq!(ok, at.is_some());
                    if let Some((a, _)) = at { m[a] = v; }
                }
                ListOp::Trim(a, b) => {
                    l.trim(a, b);
                    m = match model_range(a, b, m.len()) {
                        Some((s, e)) => m.range(s..=e).cloned().collect(),
                        None => VecDeque::new(),
                    };
                }
                ListOp::Insert(before, pivot, v) => {
                    let got = l.insert(before, &pivot, &v);
                    let want = m.iter().position(|x| *x == pivot).map(|p| {
                        m.insert(if before { p } else { p + 1 }, v);
                        m.len()
                    });
                    prop_assert_eq!(got, want);
                }
                ListOp::Remove(count, v) => {
                    let got = l.remove(count, &v);
                    let mut idx: Vec<usize> = (0..m.len()).filter(|&i| m[i] == v).collect();
                    if count < 0 { idx.reverse(); }
                    if count != 0 { idx.truncate(count.unsigned_abs().min(1 << 20) as usize); }
                    idx.sort_unstable();
                    for &i in idx.iter().rev() { m.remove(i); }
                    prop_assert_eq!(got, idx.len());
                }
                ListOp::Range(a, b) => {
                    let got: Vec<Vec<u8>> = l.range(a, b).map(<[u8]>::to_vec).collect();
                    let want: Vec<Vec<u8>> = model_range(a, b, m.len())
                        .map_or(vec![], |(s, e)| m.range(s..=e).cloned().collect());
                    prop_assert_eq!(got, want);
                }
                ListOp::Pos(v, rank, count, maxlen) => {
                    let got = l.positions(&v, rank, count, maxlen);
                    if rank == 0 { prop_assert!(got.is_err()); continue; }
                    let order: Vec<usize> = if rank > 0 { (0..m.len()).collect() } else { (0..m.len()).rev().collect() };
                    let scanned = if maxlen == 0 { order.len() } else { (maxlen as usize).min(order.len()) };
                    let mut want: Vec<usize> = order[..scanned].iter().copied().filter(|&i| m[i] == v)
                        .skip((rank.unsigned_abs() - 1).min(1 << 20) as usize).collect();
                    if count != 0 { want.truncate(count as usize); }
                    prop_assert_eq!(got.unwrap(), want);
                }
            }
            prop_assert_eq!(l.len(), m.len());
        }
        prop_assert!(l.iter().eq(m.iter().map(|v| &v[..])));
        let mut out = Vec::new();
        l.serialize(&mut out);
        prop_assert_eq!(List::deserialize(&out).unwrap(), l);
    }

    #[test]
    fn hash_matches_hashmap(ops in prop::collection::vec((0u8..5, member(), member(), -5i64..5), 0..80)) {
        let mut h = Hash::new();
        let mut m: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        for (op, f, v, n) in ops {
            match op {
                0 | 1 => prop_assert_eq!(h.insert(&f, &v), m.insert(f, v).is_none()),
                2 => prop_assert_eq!(h.remove(&f), m.remove(&f).is_some()),
                3 => {
                    let got = h.incr_by(&f, n);
                    let cur = m.get(&f).map(|v| String::from_utf8_lossy(v).parse::<i64>().ok()
                        .filter(|i| i.to_string().as_bytes() == &v[..]));
                    match cur {
                        Some(None) => prop_assert!(got.is_err()),
                        other => {
                            let want = other.flatten().unwrap_or(0) + n;
                            prop_assert_eq!(got, Ok(want));
                            m.insert(f, want.to_string().into_bytes());
                        }
                    }
                }
                _ => prop_assert_eq!(h.get(&f), m.get(&f).map(|v| &v[..])),
            }
            prop_assert_eq!(h.len(), m.len());
        }
        let got: BTreeMap<_, _> = h.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        prop_assert_eq!(got, m.into_iter().collect::<BTreeMap<_, _>>());
        let mut out = Vec::new();
        h.serialize(&mut out);
        prop_assert_eq!(Hash::deserialize(&out).unwrap(), h);
    }

    #[test]
    fn set_matches_btreeset(ops in prop::collection::vec((0u8..5, member()), 0..120), seed: u64) {
        let mut s = Set::new();
        let mut m: BTreeSet<Vec<u8>> = BTreeSet::new();
        let mut rng = Rng::new(seed);
        for (op, v) in ops {
            match op {
                0 | 1 => prop_assert_eq!(s.insert(&v), m.insert(v)),
                2 => prop_assert_eq!(s.remove(&v), m.remove(&v)),
                3 => {
                    if let Some(p) = s.pop(&mut rng) { prop_assert!(m.remove(&p)); } else { prop_assert!(m.is_empty()); }
                }
                _ => prop_assert_eq!(s.contains(&v), m.contains(&v)),
            }
            prop_assert_eq!(s.len(), m.len());
        }
        let got: BTreeSet<Vec<u8>> = s.iter().map(|c| c.into_owned()).collect();
        prop_assert_eq!(&got, &m);
        let mut out = Vec::new();
        s.serialize(&mut out);
        prop_assert_eq!(Set::deserialize(&out).unwrap(), s);
    }
}

#[derive(Debug, Clone)]
enum ZOp {
    Add(Vec<u8>, f64, u8),
    Remove(Vec<u8>),
    RangeRank(i64, i64, bool),
    RangeScore(f64, f64, bool, bool, bool, i64, i64),
    RemoveRank(i64, i64),
    RemoveScore(f64, f64),
    RemoveLex(Vec<u8>, Vec<u8>),
    Pop(bool, u64),
}

fn score() -> impl Strategy<Value = f64> {
    prop_oneof![
        (-4i32..4).prop_map(f64::from),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(0.5)
    ]
}

fn zop() -> impl Strategy<Value = ZOp> {
    prop_oneof![
        5 => (member(), score(), 0u8..8).prop_map(|(m, s, f)| ZOp::Add(m, s, f)),
        2 => member().prop_map(ZOp::Remove),
        1 => (index(), index(), any::<bool>()).prop_map(|(a, b, r)| ZOp::RangeRank(a, b, r)),
        2 => (score(), score(), any::<bool>(), any::<bool>(), any::<bool>(), -1i64..3, -1i64..4)
            .prop_map(|(a, b, x, y, r, o, c)| ZOp::RangeScore(a, b, x, y, r, o, c)),
        1 => (index(), index()).prop_map(|(a, b)| ZOp::RemoveRank(a, b)),
        1 => (score(), score()).prop_map(|(a, b)| ZOp::RemoveScore(a, b)),
        1 => (member(), member()).prop_map(|(a, b)| ZOp::RemoveLex(a, b)),
        1 => (any::<bool>(), prop_oneof![0u64..3, Just(u64::MAX)]).prop_map(|(m, c)| ZOp::Pop(m, c)),
    ]
}

fn sorted_model(m: &HashMap<Vec<u8>, f64>) -> Vec<(Vec<u8>, f64)> {
    let mut v: Vec<_> = m.iter().map(|(k, s)| (k.clone(), *s)).collect();
    v.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap().then_with(|| a.0.cmp(&b.0)));
    v
}

fn owned(v: Vec<(&[u8], f64)>) -> Vec<(Vec<u8>, f64)> {
    v.into_iter().map(|(m, s)| (m.to_vec(), s)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn sorted_set_matches_model(ops in prop::collection::vec(zop(), 0..80)) {
        let mut z = SortedSet::new();
        let mut m: HashMap<Vec<u8>, f64> = HashMap::new();
        for op in ops {
            let sorted = sorted_model(&m);
            match op {
                ZOp::Add(k, s, f) => {
                    let flags = ZAddFlags { nx: f == 1, xx: f == 2, gt: f == 3, lt: f == 4, incr: f >= 5, ch: false };
                    let got = z.add(&k, s, flags);
                    let cur = m.get(&k).copied();
                    let new = if flags.incr { cur.unwrap_or(0.0) + s } else { s };
                    if new.is_nan() { prop_assert!(got.is_err()); continue; }
                    let apply = match cur {
                        None => !flags.xx,
                        Some(c) => {
                            let blocked = flags.nx || (flags.gt && new <= c) || (flags.lt && new >= c);
                            !blocked
                        }
                    };
                    prop_assert_eq!(got.unwrap() == ZAddOutcome::Skipped, !apply);
                    if apply { m.insert(k, new); }
                }
                ZOp::Remove(k) => prop_assert_eq!(z.remove(&k), m.remove(&k).is_some()),
                ZOp::RangeRank(a, b, rev) => {
                    let mut want: Vec<_> = model_range(a, b, sorted.len()).map_or(vec![], |(s, e)| {
                        if rev { sorted.iter().rev().skip(s).take(e - s + 1).cloned().collect() }
                        else { sorted[s..=e].to_vec() }
                    });
                    if rev && want.is_empty() { want.clear(); }
                    prop_assert_eq!(owned(z.range_by_rank(a, b, rev)), want);
                }
                ZOp::RangeScore(min, max, minx, maxx, rev, off, cnt) => {
                    let r = ScoreRange { min, max, min_exclusive: minx, max_exclusive: maxx };
                    let mut want: Vec<_> = sorted.iter().filter(|(_, s)| r.contains(*s)).cloned().collect();
                    if rev { want.reverse(); }
                    let want: Vec<_> = if off < 0 { vec![] } else {
                        want.into_iter().skip(off as usize).take(if cnt < 0 { usize::MAX } else { cnt as usize }).collect()
                    };
                    prop_assert_eq!(owned(z.range_by_score(&r, rev, off, cnt)), want.clone());
                    if off == 0 && cnt < 0 { prop_assert_eq!(z.count_in_score(&r), want.len()); }
                }
                ZOp::RemoveRank(a, b) => {
                    let gone = model_range(a, b, sorted.len()).map_or(vec![], |(s, e)| sorted[s..=e].to_vec());
                    for (k, _) in &gone { m.remove(k); }
                    prop_assert_eq!(z.remove_range_by_rank(a, b), gone.len());
                }
                ZOp::RemoveScore(min, max) => {
                    let r = ScoreRange { min, max, min_exclusive: false, max_exclusive: false };
                    let before = m.len();
                    m.retain(|_, s| !r.contains(*s));
                    prop_assert_eq!(z.remove_range_by_score(&r), before - m.len());
                }
                ZOp::RemoveLex(a, b) => {
                    let r = LexRange { min: LexBound::Inclusive(a.into()), max: LexBound::Exclusive(b.into()) };
                    let before = m.len();
                    // Lex removal on mixed scores removes the contiguous run Redis finds; only
                    // compare when all scores are equal (its documented precondition).
                    if sorted.windows(2).all(|w| w[0].1 == w[1].1) {
                        let want = sorted.iter().filter(|(k, _)| r.contains(k)).count();
                        prop_assert_eq!(z.count_in_lex(&r), want);
                        let fwd: Vec<_> = sorted.iter().filter(|(k, _)| r.contains(k)).cloned().collect();
                        prop_assert_eq!(owned(z.range_by_lex(&r, false, 0, -1)), fwd);
                        m.retain(|k, _| !r.contains(k));
                        prop_assert_eq!(z.remove_range_by_lex(&r), before - m.len());
                        prop_assert_eq!(z.count_in_lex(&r), 0);
                    }
                }
                ZOp::Pop(max, count) => {
                    let got: Vec<_> = z.pop(max, count).into_iter().map(|(k, s)| (k.into_vec(), s)).collect();
                    let n = (count.min(sorted.len() as u64)) as usize;
                    let want: Vec<_> = if max { sorted.iter().rev().take(n).cloned().collect() } else { sorted[..n].to_vec() };
                    for (k, _) in &want { m.remove(k); }
                    prop_assert_eq!(got, want);
                }
            }
            let sorted = sorted_model(&m);
            prop_assert_eq!(owned(z.iter().collect()), sorted.clone());
            for (i, (k, s)) in sorted.iter().enumerate() {
                prop_assert_eq!(z.rank(k, false), Some(i));
                prop_assert_eq!(z.score(k), Some(*s));
            }
        }
        let mut out = Vec::new();
        z.serialize(&mut out);
        prop_assert_eq!(SortedSet::deserialize(&out).unwrap(), z);
    }

    #[test]
    fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = List::deserialize(&bytes);
        let _ = Hash::deserialize(&bytes);
        let _ = Set::deserialize(&bytes);
        let _ = SortedSet::deserialize(&bytes);
        let _ = ferrite_collections::Hll::from_bytes(bytes.clone());
    }
}
