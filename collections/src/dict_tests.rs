use super::*;
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};

/// Rehash accounting, kept by every `Dict` under test.
#[derive(Clone, Debug, Default)]
pub(super) struct Stats {
    /// The most rehash work (entries moved + empty buckets passed) done by one step.
    pub(super) max_step: usize,
    /// Resizes that became due while the previous one was still in progress.
    pub(super) overdue: usize,
    /// Resizes started.
    pub(super) resizes: usize,
}

impl Stats {
    pub(super) fn note_step(&mut self, work: usize) {
        self.max_step = self.max_step.max(work);
    }

    pub(super) fn note_due(&mut self, rehashing: bool) {
        if rehashing {
            self.overdue += 1;
        } else {
            self.resizes += 1;
        }
    }
}

fn key(i: usize) -> Box<[u8]> {
    i.to_string().into_bytes().into_boxed_slice()
}

/// Checks the structure: every entry is reachable from exactly one chain, in a bucket where
/// lookups look for it.
fn check_links<V>(d: &Dict<V>) {
    let mut seen = vec![false; d.len()];
    let mut tables = vec![(&d.table, false)];
    if let Resize::Grow { old, .. } = &d.resize {
        tables.push((old, true));
    }
    for (table, is_old) in tables {
        for (b, &head) in table.iter().enumerate() {
            let mut at = head;
            while at != NIL {
                let i = at as usize - 1;
                let e = d.entries.get(i).expect("link in range");
                let found = d.slots(e.hash).into_iter().flatten().any(|s| match s {
                    Slot::Old(x) => is_old && x == b,
                    Slot::Table(x) => !is_old && x == b,
                });
                assert!(
                    found,
                    "entry {i} in bucket {b} (old: {is_old}) where lookups do not look"
                );
                assert!(
                    !std::mem::replace(&mut seen[i], true),
                    "entry {i} linked twice"
                );
                at = e.next;
            }
        }
    }
    assert!(seen.iter().all(|&s| s), "an entry is unreachable");
}

fn growing<V>(d: &Dict<V>) -> bool {
    matches!(d.resize, Resize::Grow { .. })
}

fn shrinking<V>(d: &Dict<V>) -> bool {
    matches!(d.resize, Resize::Shrink { .. })
}

#[test]
fn insert_find_remove_both_regimes() {
    let mut d = Dict::default();
    for i in 0..2000 {
        assert!(d.insert(key(i), i).is_none());
    }
    assert_eq!(d.insert(key(5), 55), Some(5));
    for i in (0..2000).step_by(3) {
        assert_eq!(
            d.remove(&key(i)).map(|(_, v)| v),
            Some(if i == 5 { 55 } else { i })
        );
    }
    for i in 0..2000 {
        assert_eq!(d.get(&key(i)).is_some(), i % 3 != 0, "{i}");
    }
    check_links(&d);
    while d.len() > 0 {
        let (k, _) = d.remove_at(d.len() / 2);
        assert!(d.get(&k).is_none());
    }
    // Shrinks fold the table in place and keep its memory.
    assert!(d.size() <= 2 * MIN_BUCKETS);
    assert!(d.table.capacity() >= 1024);
    assert_eq!(d.stats.overdue, 0);
}

#[test]
fn small_removal_keeps_order() {
    let mut d = Dict::default();
    for i in 0..ORDER_KEEPING_LEN {
        d.insert(key(i), ());
    }
    let removed = [3, 0, 100, ORDER_KEEPING_LEN - 1];
    for r in removed {
        d.remove(&key(r));
        check_links(&d);
    }
    let order: Vec<_> = d.iter().map(|(k, _)| k.to_vec()).collect();
    let want: Vec<_> = (0..ORDER_KEEPING_LEN)
        .filter(|i| !removed.contains(i))
        .map(|i| key(i).to_vec())
        .collect();
    assert_eq!(order, want);
}

/// Issue #4: no operation relinks the whole table. Grows to 200k entries and shrinks back to
/// none, checking that every step's work is bounded and that no resize ever has to wait.
#[test]
fn rehash_work_per_operation_is_bounded() {
    let mut d = Dict::default();
    let n = 200_000;
    for i in 0..n {
        d.insert(key(i), ());
    }
    for i in 0..n {
        d.remove(&key(i));
        if i % 3 == 0 {
            // Replacing does a step too; it must not disturb anything.
            d.insert(key(i + n), ());
            d.remove(&key(i + n));
        }
    }
    assert_eq!(d.len(), 0);
    assert!(d.stats.resizes > 20, "{:?}", d.stats);
    assert_eq!(d.stats.overdue, 0, "{:?}", d.stats);
    assert!(d.stats.max_step <= 32, "{:?}", d.stats);
}

#[test]
fn scan_survives_resizes() {
    // Scans with resizes started (and left in progress) between calls, in both directions:
    // keys 0..500 stay throughout and must each be seen.
    for (grow_at, shrink_at, step) in [(5, 20, 1), (2, 9, 7), (1, 3, 50), (30, 31, 3)] {
        let mut d = Dict::default();
        for i in 0..1000 {
            d.insert(key(i), ());
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut round = 0;
        let mut next = 1000;
        loop {
            cursor = d.scan(cursor, 10, |k, _| {
                seen.insert(k.to_vec());
            });
            round += 1;
            if (grow_at..shrink_at).contains(&round) {
                for _ in 0..(step * 40) {
                    d.insert(key(next), ());
                    next += 1;
                }
            } else if round >= shrink_at {
                for _ in 0..(step * 40) {
                    if next > 500 {
                        next -= 1;
                        d.remove(&key(next));
                    }
                }
            }
            if cursor == 0 {
                break;
            }
        }
        for i in 0..500 {
            assert!(
                seen.contains(&*key(i)),
                "missed {i} ({grow_at} {shrink_at} {step})"
            );
        }
        assert!(d.stats.resizes >= 2);
    }
}

#[test]
fn scan_mid_rehash_sees_everything_once_per_bucket() {
    // Stop a grow and a shrink half way and scan the whole two-table state.
    let mut d = Dict::default();
    for i in 0..4096 {
        d.insert(key(i), ());
    }
    d.insert(key(4096), ());
    assert!(growing(&d), "4097th insert starts a grow");
    for want_shrink in [false, true] {
        let mut seen = HashMap::new();
        let mut cursor = 0;
        loop {
            cursor = d.scan(cursor, 1, |k, _| *seen.entry(k.to_vec()).or_insert(0) += 1);
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), d.len());
        assert!(
            seen.values().all(|&n| n == 1),
            "an unchanged table yields each key once"
        );
        if !want_shrink {
            let mut next = 4097;
            while !shrinking(&d) {
                next -= 1;
                d.remove(&key(next));
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Insert(u16, u32),
    Remove(u16),
    RemoveAt(u16),
    Bulk(bool, u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..2000u16, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        3 => (0..2000u16).prop_map(Op::Remove),
        1 => any::<u16>().prop_map(Op::RemoveAt),
        1 => (any::<bool>(), 0..1500u16).prop_map(|(grow, n)| Op::Bulk(grow, n)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Dict against a std HashMap over random operations, including bulk runs that cross
    /// several grow and shrink cycles and the order-keeping threshold.
    #[test]
    fn matches_hashmap(ops in prop::collection::vec(op(), 1..120)) {
        let mut d: Dict<u32> = Dict::default();
        let mut model: HashMap<Vec<u8>, u32> = HashMap::new();
        for op in ops {
            match op {
                Op::Insert(k, v) => {
                    let k = key(k.into());
                    prop_assert_eq!(d.insert(k.clone(), v), model.insert(k.to_vec(), v));
                }
                Op::Remove(k) => {
                    let k = key(k.into());
                    prop_assert_eq!(d.remove(&k).map(|(_, v)| v), model.remove(&*k));
                }
                Op::RemoveAt(i) if d.len() > 0 => {
                    let (k, v) = d.remove_at(usize::from(i) % d.len());
                    prop_assert_eq!(model.remove(&*k), Some(v));
                }
                Op::RemoveAt(_) => {}
                Op::Bulk(true, n) => {
                    for k in 0..n {
                        let k = key(usize::from(k) + 10_000);
                        d.insert(k.clone(), 7);
                        model.insert(k.to_vec(), 7);
                    }
                }
                Op::Bulk(false, n) => {
                    for k in 0..n {
                        let k = key(usize::from(k) + 10_000);
                        prop_assert_eq!(d.remove(&k).map(|(_, v)| v), model.remove(&*k));
                    }
                }
            }
            prop_assert_eq!(d.len(), model.len());
            prop_assert_eq!(d.memory_usage(), d.memory_usage_slow());
            check_links(&d);
        }
        let copy = d.clone();
        prop_assert_eq!(copy.memory_usage(), copy.memory_usage_slow());
        for (k, v) in &model {
            prop_assert_eq!(d.get(k), Some(v));
        }
        let listed: HashMap<Vec<u8>, u32> = d.iter().map(|(k, &v)| (k.to_vec(), v)).collect();
        prop_assert_eq!(&listed, &model);
        for i in 0..d.len() {
            let (k, v) = d.at(i).expect("dense");
            prop_assert_eq!(model.get(k), Some(v));
        }
        let mut scanned = HashSet::new();
        let mut cursor = 0;
        loop {
            cursor = d.scan(cursor, 3, |k, _| {
                scanned.insert(k.to_vec());
            });
            if cursor == 0 {
                break;
            }
        }
        prop_assert_eq!(scanned.len(), model.len());
        prop_assert_eq!(d.stats.overdue, 0);
    }
}
