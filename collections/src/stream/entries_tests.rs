//! Tests of [`Entries`]: node bytes against real redis-server 7.0.15 output, a model-based
//! property test, and untrusted nodes.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

/// Cases from `redis-server --rdbcompression no`: the commands run, then the counters and the
/// nodes (key, listpack) of `DUMP s`. Large nodes are given as `length:fnv1a64`.
const VECTORS: &str = include_str!("testdata/redis_nodes.txt");

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn token(t: &str) -> Vec<u8> {
    match t.split_once('*') {
        Some((c, n)) => c.repeat(n.parse().unwrap()).into_bytes(),
        None if t == "-" => Vec::new(),
        None => hex(t),
    }
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3)
    })
}

fn run(e: &mut Entries, line: &str) {
    let t: Vec<&str> = line.split(' ').collect();
    let n = |i: usize| t[i].parse::<u64>().unwrap();
    match t[0] {
        "A" => {
            let fv: Vec<Vec<u8>> = t[3..].iter().map(|s| token(s)).collect();
            let fv: Vec<&[u8]> = fv.iter().map(Vec::as_slice).collect();
            e.add(NewId::Exact(StreamId::new(n(1), n(2))), &fv, 0)
                .unwrap();
        }
        "D" => {
            assert!(e.delete(StreamId::new(n(1), n(2))));
        }
        "T" => {
            e.trim(&Trim {
                strategy: TrimStrategy::MaxLen(n(1)),
                approx: n(2) == 1,
                limit: n(3),
            });
        }
        "M" => {
            e.trim(&Trim {
                strategy: TrimStrategy::MinId(StreamId::new(n(1), n(2))),
                approx: n(3) == 1,
                limit: n(4),
            });
        }
        other => panic!("bad op {other}"),
    }
}

#[test]
fn nodes_are_byte_identical_to_redis() {
    let mut ops: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut cases = 0;
    let mut lines = VECTORS.lines();
    while let Some(head) = lines.next() {
        let name = head.strip_prefix("case ").unwrap().to_string();
        let mut e = Entries::new();
        let mut mine = Vec::new();
        let mut nodes = Vec::new();
        for line in lines.by_ref() {
            if line == "end" {
                break;
            }
            if let Some(base) = line.strip_prefix("base ") {
                for l in &ops[base] {
                    run(&mut e, l);
                }
                mine.extend(ops[base].clone());
            } else if let Some(meta) = line.strip_prefix("meta ") {
                let v: Vec<u64> = meta.split(' ').map(|x| x.parse().unwrap()).collect();
                assert_eq!(e.len(), v[0], "{name}: length");
                assert_eq!(e.last_id(), StreamId::new(v[1], v[2]), "{name}: last");
                assert_eq!(e.first_id(), StreamId::new(v[3], v[4]), "{name}: first");
                assert_eq!(
                    e.max_deleted_entry_id(),
                    StreamId::new(v[5], v[6]),
                    "{name}"
                );
                assert_eq!(e.entries_added(), v[7], "{name}: added");
            } else if let Some(node) = line.strip_prefix("node ") {
                nodes.push(node.to_string());
            } else {
                run(&mut e, line);
                mine.push(line.to_string());
            }
        }
        let got: Vec<(StreamId, &[u8])> = e.nodes().collect();
        assert_eq!(got.len(), nodes.len(), "{name}: node count");
        for ((key, lp), want) in got.iter().zip(&nodes) {
            let (k, bytes) = want.split_once(' ').unwrap();
            assert_eq!(key.to_be_bytes().to_vec(), hex(k), "{name}: node key");
            match bytes.split_once(':') {
                Some((len, h)) => {
                    assert_eq!(lp.len(), len.parse::<usize>().unwrap(), "{name}: {key}");
                    assert_eq!(format!("{:016x}", fnv(lp)), h, "{name}: {key}");
                }
                None => assert_eq!(lp.to_vec(), hex(bytes), "{name}: {key}"),
            }
        }
        // What Redis would load back is what we hold.
        let parts = got.iter().map(|(k, lp)| (*k, lp.to_vec())).collect();
        let back = Entries::from_parts(
            parts,
            e.len(),
            e.last_id(),
            e.first_id(),
            e.max_deleted_entry_id(),
            e.entries_added(),
        )
        .unwrap();
        assert_eq!(back.len(), e.len());
        ops.insert(name, mine);
        cases += 1;
    }
    assert!(cases >= 10);
}

fn fv(pairs: &[(&str, &str)]) -> Vec<Vec<u8>> {
    pairs
        .iter()
        .flat_map(|(f, v)| [f.as_bytes().to_vec(), v.as_bytes().to_vec()])
        .collect()
}

fn add(e: &mut Entries, id: NewId, pairs: &[(&str, &str)]) -> Result<StreamId, AddError> {
    let v = fv(pairs);
    let refs: Vec<&[u8]> = v.iter().map(Vec::as_slice).collect();
    e.add(id, &refs, 1000)
}

#[test]
fn ids_as_xadd_makes_them() {
    let mut e = Entries::new();
    assert_eq!(
        add(&mut e, NewId::Auto, &[("a", "1")]),
        Ok(StreamId::new(1000, 0))
    );
    assert_eq!(
        add(&mut e, NewId::Auto, &[("a", "1")]),
        Ok(StreamId::new(1000, 1))
    );
    assert_eq!(
        add(&mut e, NewId::AutoSeq(1000), &[("a", "1")]),
        Ok(StreamId::new(1000, 2))
    );
    assert_eq!(
        add(&mut e, NewId::AutoSeq(999), &[("a", "1")]),
        Err(AddError::IdTooSmall)
    );
    assert_eq!(
        add(&mut e, NewId::AutoSeq(2000), &[("a", "1")]),
        Ok(StreamId::new(2000, 0))
    );
    // The clock behind the last ID: `*` keeps the last ID's time.
    assert_eq!(
        add(&mut e, NewId::Auto, &[("a", "1")]),
        Ok(StreamId::new(2000, 1))
    );
    let top = StreamId::new(2000, 1);
    assert_eq!(
        add(&mut e, NewId::Exact(top), &[("a", "1")]),
        Err(AddError::IdTooSmall)
    );
    let near = StreamId::new(5, u64::MAX);
    e.set_last_id(StreamId::new(5, u64::MAX - 1), None, None);
    assert_eq!(add(&mut e, NewId::AutoSeq(5), &[("a", "1")]), Ok(near));
    assert_eq!(
        add(&mut e, NewId::AutoSeq(5), &[("a", "1")]),
        Err(AddError::IdTooSmall)
    );
    assert_eq!(
        add(&mut e, NewId::Exact(StreamId::MAX), &[("a", "1")]),
        Ok(StreamId::MAX)
    );
    assert_eq!(
        add(&mut e, NewId::Auto, &[("a", "1")]),
        Err(AddError::Exhausted)
    );
    type Pairs = Vec<(Vec<u8>, Vec<u8>)>;
    let got: Vec<(StreamId, Pairs)> = e
        .range(StreamId::MIN, StreamId::MAX, false)
        .map(|x| {
            (
                x.id(),
                x.fields().map(|(f, v)| (f.to_vec(), v.to_vec())).collect(),
            )
        })
        .collect();
    assert_eq!(got.len() as u64, e.len());
    assert_eq!(got[0].1, vec![(b"a".to_vec(), b"1".to_vec())]);
}

#[test]
fn lag_helpers_follow_redis() {
    let mut e = Entries::new();
    assert_eq!(
        e.estimate_distance_from_first_ever_entry(StreamId::new(9, 9)),
        Some(0)
    );
    for i in 1..=5 {
        add(&mut e, NewId::Exact(StreamId::new(i, 0)), &[("a", "1")]).unwrap();
    }
    let id = |ms| StreamId::new(ms, 0);
    assert_eq!(e.estimate_distance_from_first_ever_entry(id(5)), Some(5));
    assert_eq!(e.estimate_distance_from_first_ever_entry(id(1)), Some(1));
    assert_eq!(e.estimate_distance_from_first_ever_entry(id(3)), None);
    assert_eq!(e.estimate_distance_from_first_ever_entry(id(6)), None);
    assert!(!e.range_has_tombstones(StreamId::MIN, None));
    assert!(e.delete(id(3)));
    assert!(e.range_has_tombstones(id(2), None));
    assert!(!e.range_has_tombstones(id(4), None));
    assert!(e.delete(id(1)));
    assert_eq!(e.first_id(), id(2));
    assert_eq!(e.max_deleted_entry_id(), id(3));
}

#[test]
fn untrusted_nodes_never_panic() {
    let mut e = Entries::new();
    for i in 0..30u64 {
        let v = "x".repeat((i * 37 % 90) as usize);
        let pairs = if i % 4 == 0 {
            vec![("a", "1"), ("b", v.as_str())]
        } else {
            vec![("a", v.as_str())]
        };
        add(&mut e, NewId::Exact(StreamId::new(i + 1, i)), &pairs).unwrap();
    }
    e.delete(StreamId::new(4, 3));
    let nodes: Vec<(StreamId, Vec<u8>)> = e.nodes().map(|(k, lp)| (k, lp.to_vec())).collect();
    let meta = (
        e.len(),
        e.last_id(),
        e.first_id(),
        e.max_deleted_entry_id(),
        e.entries_added(),
    );
    let build = |nodes: Vec<(StreamId, Vec<u8>)>| {
        Entries::from_parts(nodes, meta.0, meta.1, meta.2, meta.3, meta.4)
    };
    assert!(build(nodes.clone()).is_ok());
    let mut rng = 0x1234_5678_u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for _ in 0..3000 {
        let mut bad = nodes.clone();
        let n = (next() % bad.len() as u64) as usize;
        let lp = &mut bad[n].1;
        match next() % 3 {
            0 => {
                let i = (next() % lp.len() as u64) as usize;
                lp[i] = next() as u8;
            }
            1 => {
                let i = (next() % lp.len() as u64) as usize;
                lp.truncate(i);
            }
            _ => bad[n].0 = StreamId::new(next() % 40, next() % 40),
        }
        if let Ok(e) = build(bad) {
            // Whatever was accepted must be fully usable.
            let mut e = e;
            let all: Vec<StreamId> = e
                .range(StreamId::MIN, StreamId::MAX, false)
                .map(|x| x.id())
                .collect();
            let rev: Vec<StreamId> = e
                .range(StreamId::MIN, StreamId::MAX, true)
                .map(|x| x.id())
                .collect();
            assert_eq!(all.len() as u64, e.len());
            assert_eq!(all.iter().rev().copied().collect::<Vec<_>>(), rev);
            for x in e.range(StreamId::MIN, StreamId::MAX, false) {
                x.fields().for_each(drop);
            }
            e.trim(&Trim {
                strategy: TrimStrategy::MaxLen(3),
                approx: false,
                limit: 0,
            });
        }
    }
    assert!(build(vec![(StreamId::new(1, 0), vec![])]).is_err());
}

/// An operation of the property test.
#[derive(Clone, Debug)]
enum Op {
    Add {
        ms: u64,
        seq: Option<u64>,
        fields: u8,
        size: usize,
    },
    Del(usize),
    Trim {
        maxlen: Option<u64>,
        minid_pick: usize,
        approx: bool,
        limit: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u64..4, proptest::option::of(0u64..3), 0u8..3, 0usize..400)
            .prop_map(|(ms, seq, fields, size)| Op::Add { ms, seq, fields, size }),
        2 => (0usize..1000).prop_map(Op::Del),
        1 => (proptest::option::of(0u64..300), 0usize..1000, any::<bool>(), 0u64..150)
            .prop_map(|(maxlen, minid_pick, approx, limit)| Op::Trim { maxlen, minid_pick, approx, limit }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Add, delete, trim and range agree with a BTreeMap model (exact trims exactly, approximate
    /// ones within their bound), and the nodes always pass validation.
    #[test]
    fn matches_a_model(ops in proptest::collection::vec(op(), 1..400)) {
        let mut e = Entries::new();
        let mut model: BTreeMap<StreamId, Vec<Vec<u8>>> = BTreeMap::new();
        let mut ever = Vec::new();
        for op in ops {
            match op {
                Op::Add { ms, seq, fields, size } => {
                    let last = e.last_id();
                    let id = match seq {
                        Some(s) => NewId::Exact(StreamId::new(last.ms + ms, last.seq + s)),
                        None => NewId::AutoSeq(last.ms + ms),
                    };
                    let value = "v".repeat(size);
                    let mut v = vec![b"f".to_vec(), value.into_bytes()];
                    if fields > 0 { v.extend([b"g".to_vec(), b"12".to_vec()]); }
                    if fields > 1 { v.extend([b"h".to_vec(), b"-3".to_vec()]); }
                    let refs: Vec<&[u8]> = v.iter().map(Vec::as_slice).collect();
                    match e.add(id, &refs, 0) {
                        Ok(id) => { model.insert(id, v); ever.push(id); }
                        Err(err) => prop_assert_eq!(err, AddError::IdTooSmall),
                    }
                }
                Op::Del(i) if !ever.is_empty() => {
                    let id = ever[i % ever.len()];
                    prop_assert_eq!(e.delete(id), model.remove(&id).is_some());
                }
                Op::Del(_) => {}
                Op::Trim { maxlen, minid_pick, approx, limit } => {
                    let strategy = match maxlen {
                        Some(n) => TrimStrategy::MaxLen(n),
                        None if ever.is_empty() => TrimStrategy::MinId(StreamId::MIN),
                        None => TrimStrategy::MinId(ever[minid_pick % ever.len()]),
                    };
                    let limit = if approx { limit } else { 0 };
                    let before = e.len();
                    let n = e.trim(&Trim { strategy, approx, limit });
                    prop_assert_eq!(before - n, e.len());
                    // Trimming removes from the head only.
                    let keep: Vec<StreamId> = model.keys().copied().skip(n as usize).collect();
                    model.retain(|k, _| keep.contains(k));
                    if !approx {
                        match strategy {
                            TrimStrategy::MaxLen(m) => prop_assert!(e.len() <= m),
                            TrimStrategy::MinId(min) => prop_assert!(model.keys().all(|k| *k >= min)),
                        }
                    }
                }
            }
            prop_assert_eq!(e.len(), model.len() as u64);
            prop_assert_eq!(e.first_id(), model.keys().next().copied().unwrap_or_default());
        }
        let got: Vec<(StreamId, Vec<Vec<u8>>)> = e
            .range(StreamId::MIN, StreamId::MAX, false)
            .map(|x| (x.id(), x.fields().flat_map(|(f, v)| [f.to_vec(), v.to_vec()]).collect()))
            .collect();
        let want: Vec<(StreamId, Vec<Vec<u8>>)> = model.clone().into_iter().collect();
        prop_assert_eq!(&got, &want);
        // Sub-ranges both ways.
        if let (Some(a), Some(b)) = (ever.first(), ever.last()) {
            let mid = StreamId::new((a.ms + b.ms) / 2, 1);
            let fwd: Vec<StreamId> = e.range(mid, StreamId::MAX, false).map(|x| x.id()).collect();
            let mut rev: Vec<StreamId> = e.range(mid, StreamId::MAX, true).map(|x| x.id()).collect();
            rev.reverse();
            prop_assert_eq!(&fwd, &rev);
            prop_assert_eq!(fwd, model.range(mid..).map(|(k, _)| *k).collect::<Vec<_>>());
            for id in &ever {
                prop_assert_eq!(e.get(*id).is_some(), model.contains_key(id));
            }
        }
        let nodes = e.nodes().map(|(k, lp)| (k, lp.to_vec())).collect();
        let back = Entries::from_parts(nodes, e.len(), e.last_id(), e.first_id(),
            e.max_deleted_entry_id(), e.entries_added());
        prop_assert!(back.is_ok(), "{:?}", back.err());
        // The spill format round-trips through validation.
        let s = Stream { entries: e.clone(), groups: Groups::default() };
        let mut out = Vec::new();
        s.serialize(&mut out);
        let back = Stream::deserialize(&out).map_err(|err| TestCaseError::fail(err.to_string()))?;
        prop_assert!(back.entries.nodes().eq(e.nodes()));
        prop_assert_eq!(back.entries.len(), e.len());
        prop_assert_eq!(back.entries.last_id(), e.last_id());
        prop_assert_eq!(back.entries.first_id(), e.first_id());
        prop_assert_eq!(back.entries.max_deleted_entry_id(), e.max_deleted_entry_id());
        prop_assert_eq!(back.entries.entries_added(), e.entries_added());
    }
}
