//! The O(1) `memory_usage` of every collection (capacities and running sums) against a
//! recount from scratch, after random operation sequences that cross the encodings, the dict's
//! incremental grows and shrinks, and the chunk boundaries of the dense arrays.

use proptest::prelude::*;

use crate::util::Rng;
use crate::{End, Hash, List, Set, SortedSet, ZAddFlags, parse_lex_range, parse_score_range};

/// Members of varied lengths, some of them integers (so sets start as integer arrays).
fn member(k: u16) -> Vec<u8> {
    if k.is_multiple_of(3) {
        (i64::from(k) - 300).to_string().into_bytes()
    } else {
        let mut m = format!("m{k}-").into_bytes();
        m.resize(4 + usize::from(k % 97), b'x');
        m
    }
}

#[derive(Clone, Debug)]
enum Op {
    Add(u16, u16),
    Remove(u16),
    /// Many adds (`true`) or removals of a run of members: crosses grow and shrink steps.
    Bulk(bool, u16, u16),
    Pop(u8),
    RemoveRange(u16, u16),
    Clone,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..600u16, 0..200u16).prop_map(|(k, v)| Op::Add(k, v)),
        4 => (0..600u16).prop_map(Op::Remove),
        1 => (any::<bool>(), 0..600u16, 0..700u16).prop_map(|(a, s, n)| Op::Bulk(a, s, n)),
        1 => any::<u8>().prop_map(Op::Pop),
        1 => (0..600u16, 0..600u16).prop_map(|(a, b)| Op::RemoveRange(a, b)),
        1 => Just(Op::Clone),
    ]
}

/// What every collection under test offers to the sequence runner.
trait Subject: Clone {
    fn add(&mut self, k: u16, v: u16);
    fn remove(&mut self, k: u16);
    fn pop(&mut self, n: u8, rng: &mut Rng);
    /// Removes a run of members (one by one, unless the collection has a range removal).
    fn remove_range(&mut self, a: u16, b: u16) {
        for k in a.min(b)..a.max(b) {
            self.remove(k);
        }
    }
    fn fast(&self) -> usize;
    fn slow(&self) -> usize;
}

impl Subject for Hash {
    fn add(&mut self, k: u16, v: u16) {
        // Overwrites change a value's length in place.
        self.insert(&member(k), &vec![b'v'; usize::from(v)]);
    }
    fn remove(&mut self, k: u16) {
        Hash::remove(self, &member(k));
    }
    fn pop(&mut self, n: u8, rng: &mut Rng) {
        let fields: Vec<Vec<u8>> = self
            .random_distinct(n.into(), rng)
            .into_iter()
            .map(|(f, _)| f.to_vec())
            .collect();
        for f in fields {
            Hash::remove(self, &f);
        }
    }
    fn fast(&self) -> usize {
        self.memory_usage()
    }
    fn slow(&self) -> usize {
        self.memory_usage_slow()
    }
}

impl Subject for Set {
    fn add(&mut self, k: u16, _: u16) {
        self.insert(&member(k));
    }
    fn remove(&mut self, k: u16) {
        Set::remove(self, &member(k));
    }
    fn pop(&mut self, n: u8, rng: &mut Rng) {
        self.pop_many(n.into(), rng);
        Set::pop(self, rng);
    }
    fn fast(&self) -> usize {
        self.memory_usage()
    }
    fn slow(&self) -> usize {
        self.memory_usage_slow()
    }
}

impl Subject for SortedSet {
    fn add(&mut self, k: u16, v: u16) {
        // Re-adding with another score moves the member in the skiplist.
        let _ = SortedSet::add(self, &member(k), f64::from(v % 17), ZAddFlags::default());
    }
    fn remove(&mut self, k: u16) {
        SortedSet::remove(self, &member(k));
    }
    fn pop(&mut self, n: u8, _: &mut Rng) {
        SortedSet::pop(self, n.is_multiple_of(2), u64::from(n % 40));
    }
    fn remove_range(&mut self, a: u16, b: u16) {
        let (lo, hi) = (a.min(b), a.max(b));
        match a % 3 {
            0 => {
                self.remove_range_by_rank(i64::from(lo % 50), i64::from(hi % 80));
            }
            1 => {
                let r = parse_score_range(
                    (lo % 17).to_string().as_bytes(),
                    (hi % 17).to_string().as_bytes(),
                );
                if let Ok(r) = r {
                    self.remove_range_by_score(&r);
                }
            }
            _ => {
                if let Ok(r) = parse_lex_range(b"[m2", b"(m5") {
                    self.remove_range_by_lex(&r);
                }
            }
        }
    }
    fn fast(&self) -> usize {
        self.memory_usage()
    }
    fn slow(&self) -> usize {
        self.memory_usage_slow()
    }
}

impl Subject for List {
    fn add(&mut self, k: u16, v: u16) {
        let end = if k.is_multiple_of(2) {
            End::Left
        } else {
            End::Right
        };
        self.push(end, &member(k));
        if v.is_multiple_of(5) {
            // Overwrites an element with one of another length.
            let _ = self.set(i64::from(v % 13), &member(v));
        }
    }
    fn remove(&mut self, k: u16) {
        List::remove(self, i64::from(k % 3) - 1, &member(k));
        if k.is_multiple_of(4) {
            self.insert(k.is_multiple_of(8), &member(k / 2), &member(k + 1));
        }
    }
    fn pop(&mut self, n: u8, _: &mut Rng) {
        let end = if n.is_multiple_of(2) {
            End::Left
        } else {
            End::Right
        };
        self.pop_many(end, u64::from(n % 50));
        self.rotate(End::Left, End::Right);
    }
    fn remove_range(&mut self, a: u16, b: u16) {
        self.trim(i64::from(a % 100), -i64::from(b % 100) - 1);
    }
    fn fast(&self) -> usize {
        self.memory_usage()
    }
    fn slow(&self) -> usize {
        self.memory_usage_slow()
    }
}

/// Runs `ops` on `c`, checking the running figure after every step.
fn run<C: Subject>(mut c: C, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut rng = Rng::new(7);
    for op in ops {
        match *op {
            Op::Add(k, v) => c.add(k, v),
            Op::Remove(k) => c.remove(k),
            Op::Bulk(true, start, n) => (start..start.saturating_add(n)).for_each(|k| c.add(k, k)),
            Op::Bulk(false, start, n) => (start..start.saturating_add(n)).for_each(|k| c.remove(k)),
            Op::Pop(n) => c.pop(n, &mut rng),
            Op::RemoveRange(a, b) => c.remove_range(a, b),
            Op::Clone => c = c.clone(),
        }
        prop_assert_eq!(c.fast(), c.slow(), "after {:?}", op);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn hash_memory_is_a_true_running_sum(ops in prop::collection::vec(op(), 1..80)) {
        run(Hash::new(), &ops)?;
    }

    #[test]
    fn set_memory_is_a_true_running_sum(ops in prop::collection::vec(op(), 1..80)) {
        run(Set::new(), &ops)?;
    }

    #[test]
    fn zset_memory_is_a_true_running_sum(ops in prop::collection::vec(op(), 1..80)) {
        run(SortedSet::new(), &ops)?;
    }

    #[test]
    fn list_memory_is_a_true_running_sum(ops in prop::collection::vec(op(), 1..80)) {
        run(List::new(), &ops)?;
    }
}

#[test]
fn spill_round_trips_keep_the_figures_exact() {
    let mut h = Hash::new();
    let mut s = Set::new();
    let mut z = SortedSet::new();
    let mut l = List::new();
    for k in 0..3000u16 {
        Subject::add(&mut h, k, k % 300);
        Subject::add(&mut s, k, 0);
        Subject::add(&mut z, k, k);
        Subject::add(&mut l, k, k);
    }
    let mut out = Vec::new();
    h.serialize(&mut out);
    let h2 = Hash::deserialize(&out).unwrap();
    assert_eq!(h2.memory_usage(), h2.memory_usage_slow());
    out.clear();
    s.serialize(&mut out);
    let s2 = Set::deserialize(&out).unwrap();
    assert_eq!(s2.memory_usage(), s2.memory_usage_slow());
    out.clear();
    z.serialize(&mut out);
    let z2 = SortedSet::deserialize(&out).unwrap();
    assert_eq!(z2.memory_usage(), z2.memory_usage_slow());
    out.clear();
    l.serialize(&mut out);
    let l2 = List::deserialize(&out).unwrap();
    assert_eq!(l2.memory_usage(), l2.memory_usage_slow());
    // The estimate is of the same order as the payload (not a constant, not a multiple).
    let payload: usize = h.iter().map(|(f, v)| f.len() + v.len()).sum();
    assert!(h.memory_usage() > payload && h.memory_usage() < 3 * payload);
}

#[test]
fn a_sorted_set_stays_small() {
    // Enums hold sorted sets by value (GEOSEARCHSTORE's result): clippy's large-variant limit.
    assert!(size_of::<SortedSet>() <= 216, "{}", size_of::<SortedSet>());
}
