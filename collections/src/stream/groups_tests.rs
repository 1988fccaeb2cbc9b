//! Tests of the consumer groups: the PEL bookkeeping behind XREADGROUP, XACK, XPENDING,
//! XCLAIM and XAUTOCLAIM, and the spill format.

use super::*;
use crate::codec::{Reader, put_header, tag};

fn id(ms: u64, seq: u64) -> StreamId {
    StreamId::new(ms, seq)
}

/// A group where `alice` was delivered 1-0, 2-0, 3-0 at time 100 and `bob` 4-0 at 200.
fn sample() -> ConsumerGroup {
    let mut g = ConsumerGroup::new(id(4, 0), Some(4));
    for ms in 1..=3 {
        g.deliver(id(ms, 0), b"alice", 100);
    }
    g.deliver(id(4, 0), b"bob", 200);
    g
}

fn owners(g: &ConsumerGroup) -> Vec<(StreamId, Vec<u8>)> {
    g.pel()
        .iter()
        .map(|(k, n)| (*k, n.consumer().to_vec()))
        .collect()
}

/// The group's PEL and the consumers' PELs describe the same NACKs.
fn check_consistent(g: &ConsumerGroup) {
    let mut from_consumers = Vec::new();
    for (name, c) in g.consumers() {
        for i in c.pending() {
            from_consumers.push((i, name.to_vec()));
        }
    }
    from_consumers.sort();
    assert_eq!(owners(g), from_consumers);
}

#[test]
fn deliver_creates_the_consumer_and_moves_nacks() {
    let mut g = sample();
    check_consistent(&g);
    assert_eq!(g.consumer(b"alice").map(Consumer::pending_count), Some(3));
    // Delivered again to bob (after SETID): moved, count reset.
    g.pel().get(&id(1, 0)).unwrap();
    g.deliver(id(1, 0), b"bob", 300);
    let n = &g.pel()[&id(1, 0)];
    assert_eq!(
        (n.consumer(), n.delivery_count, n.delivery_time_ms),
        (&b"bob"[..], 1, 300)
    );
    assert_eq!(g.consumer(b"alice").map(Consumer::pending_count), Some(2));
    check_consistent(&g);
}

#[test]
fn ack_and_delete_consumer() {
    let mut g = sample();
    let before = g.memory_usage();
    assert!(g.ack(id(2, 0)));
    assert!(!g.ack(id(2, 0)));
    assert!(g.memory_usage() < before);
    assert_eq!(g.delete_consumer(b"alice"), Some(2));
    assert_eq!(g.delete_consumer(b"alice"), None);
    assert_eq!(g.pel().len(), 1);
    check_consistent(&g);
    assert!(g.create_consumer(b"carol", 5));
    assert!(!g.create_consumer(b"carol", 6));
    assert_eq!(g.consumer(b"carol").map(|c| c.seen_time_ms), Some(5));
    assert!(!g.touch_consumer(b"carol", 9));
    assert_eq!(g.consumer(b"carol").map(|c| c.seen_time_ms), Some(9));
    assert_eq!(g.delete_consumer(b"bob"), Some(1));
    assert_eq!(g.delete_consumer(b"carol"), Some(0));
    assert_eq!(g.memory_usage(), 0);
}

#[test]
fn summary_and_ranges() {
    let g = sample();
    let s = g.summary();
    assert_eq!(s.count, 4);
    assert_eq!(s.bounds, Some((id(1, 0), id(4, 0))));
    assert_eq!(s.consumers, vec![(&b"alice"[..], 3), (&b"bob"[..], 1)]);
    let ids = |v: Vec<(StreamId, &Nack)>| v.into_iter().map(|(i, _)| i).collect::<Vec<_>>();
    assert_eq!(
        ids(g.pending_range(id(2, 0), StreamId::MAX, 10, 0, None, 300)).len(),
        3
    );
    assert_eq!(
        ids(g.pending_range(StreamId::MIN, StreamId::MAX, 2, 0, None, 300)),
        [id(1, 0), id(2, 0)]
    );
    assert_eq!(
        ids(g.pending_range(StreamId::MIN, StreamId::MAX, 9, 0, Some(b"bob"), 300)),
        [id(4, 0)]
    );
    assert!(
        g.pending_range(StreamId::MIN, StreamId::MAX, 9, 0, Some(b"zed"), 300)
            .is_empty()
    );
    // Idle at least 150 at time 300: only alice's (delivered at 100).
    assert_eq!(
        ids(g.pending_range(StreamId::MIN, StreamId::MAX, 9, 150, None, 300)).len(),
        3
    );
    assert!(
        g.pending_range(id(5, 0), id(1, 0), 9, 0, None, 300)
            .is_empty()
    );
    assert!(
        g.pending_range(StreamId::MIN, StreamId::MAX, 0, 0, None, 300)
            .is_empty()
    );
    // A negative IDLE filters nothing; i64 extremes do not overflow.
    assert_eq!(
        g.pending_range(StreamId::MIN, StreamId::MAX, 9, i64::MIN, None, 0)
            .len(),
        4
    );
    assert!(
        g.pending_range(StreamId::MIN, StreamId::MAX, 9, i64::MAX, None, u64::MAX)
            .len()
            == 4
    );
    let empty = ConsumerGroup::new(StreamId::MIN, None);
    assert_eq!(empty.summary().bounds, None);
}

#[test]
fn history_redelivers_only_existing_entries() {
    let mut g = sample();
    let h = g.history(b"alice", id(2, 0), 0, 500, |i| i != id(3, 0));
    assert_eq!(h, [(id(2, 0), true), (id(3, 0), false)]);
    assert_eq!(g.pel()[&id(2, 0)].delivery_count, 2);
    assert_eq!(g.pel()[&id(2, 0)].delivery_time_ms, 500);
    assert_eq!(g.pel()[&id(3, 0)].delivery_count, 1);
    assert_eq!(
        g.history(b"alice", StreamId::MIN, 1, 500, |_| true).len(),
        1
    );
    assert!(
        g.history(b"nobody", StreamId::MIN, 0, 500, |_| true)
            .is_empty()
    );
}

#[test]
fn claim_options() {
    let mut g = sample();
    let opts = ClaimOptions {
        min_idle_ms: 150,
        delivery_time_ms: 1000,
        retry: Retry::Increment,
        force: false,
    };
    // 4-0 (bob, idle 100) is too recent; 9-0 is not pending; 3-0 was deleted.
    let got = g.claim(
        b"carol",
        &[id(1, 0), id(4, 0), id(9, 0), id(3, 0)],
        opts,
        300,
        |i| i != id(3, 0),
    );
    assert_eq!(got, [id(1, 0)]);
    assert_eq!(g.pel()[&id(1, 0)].delivery_count, 2);
    assert_eq!(g.pel()[&id(1, 0)].delivery_time_ms, 1000);
    assert!(!g.pel().contains_key(&id(3, 0)));
    check_consistent(&g);
    // FORCE creates a NACK for an existing entry; RETRYCOUNT sets the count.
    let force = ClaimOptions {
        force: true,
        retry: Retry::Set(7),
        ..opts
    };
    assert_eq!(
        g.claim(b"dave", &[id(9, 0)], force, 300, |_| true),
        [id(9, 0)]
    );
    assert_eq!(g.pel()[&id(9, 0)].delivery_count, 7);
    let keep = ClaimOptions {
        force: true,
        retry: Retry::Keep,
        min_idle_ms: 0,
        ..opts
    };
    assert_eq!(
        g.claim(b"dave", &[id(10, 0)], keep, 300, |_| true),
        [id(10, 0)]
    );
    assert_eq!(g.pel()[&id(10, 0)].delivery_count, 1);
    // Nothing claimed: the consumer is not created.
    assert!(
        g.claim(b"erin", &[id(99, 0)], opts, 300, |_| true)
            .is_empty()
    );
    assert!(g.consumer(b"erin").is_none());
    check_consistent(&g);
}

#[test]
fn autoclaim_scans_with_a_cursor() {
    let mut g = sample();
    // Count 2: claims 1-0, finds 2-0 deleted; cursor at 3-0.
    let r = g.autoclaim(b"carol", 150, StreamId::MIN, 2, false, 300, |i| {
        i != id(2, 0)
    });
    assert_eq!(r.claimed, [id(1, 0)]);
    assert_eq!(r.deleted, [id(2, 0)]);
    assert_eq!(r.next, id(3, 0));
    // From 3-0: claims 3-0, skips 4-0 (too recent), reaches the end.
    let r = g.autoclaim(b"carol", 150, r.next, 10, true, 300, |_| true);
    assert_eq!(r.claimed, [id(3, 0)]);
    assert_eq!(r.next, StreamId::MIN);
    assert_eq!(g.pel()[&id(3, 0)].delivery_count, 1);
    assert_eq!(g.pel()[&id(1, 0)].delivery_count, 2);
    check_consistent(&g);
    // Attempts are count * 10: with count 1 and 12 too-recent entries the scan stops early.
    let mut g = ConsumerGroup::new(StreamId::MIN, None);
    for ms in 1..=12 {
        g.deliver(id(ms, 0), b"a", 1000);
    }
    let r = g.autoclaim(b"b", 500, StreamId::MIN, 1, false, 1000, |_| true);
    assert!(r.claimed.is_empty());
    assert_eq!(r.next, id(11, 0));
    assert!(g.consumer(b"b").is_none());
    // The maximum ID does not wrap the cursor.
    g.deliver(StreamId::MAX, b"a", 0);
    let r = g.autoclaim(b"b", 0, StreamId::MAX, 5, false, 1000, |_| true);
    assert_eq!((r.claimed, r.next), (vec![StreamId::MAX], StreamId::MIN));
    let r = g.autoclaim(b"b", 0, StreamId::MIN, usize::MAX, false, 1000, |_| true);
    assert_eq!(r.claimed.len(), 13);
}

#[test]
fn advance_follows_the_read_counter_rules() {
    let mut g = ConsumerGroup::new(id(1, 0), Some(1));
    g.advance(id(2, 0), true, 5, || panic!("not needed"));
    assert_eq!((g.last_id, g.entries_read), (id(2, 0), Some(2)));
    g.advance(id(3, 0), false, 5, || None);
    assert_eq!((g.last_id, g.entries_read), (id(3, 0), None));
    g.advance(id(4, 0), true, 5, || Some(4));
    assert_eq!(g.entries_read, Some(4));
    // Not past the last ID: nothing changes.
    g.advance(id(4, 0), true, 5, || Some(9));
    assert_eq!(g.entries_read, Some(4));
    let mut g = ConsumerGroup::new(StreamId::MIN, None);
    g.advance(id(1, 0), false, 0, || Some(9));
    assert_eq!((g.last_id, g.entries_read), (id(1, 0), None));
}

#[test]
fn groups_create_destroy() {
    let mut gs = Groups::default();
    assert!(gs.create(b"b", id(1, 0), None));
    assert!(gs.create(b"a", StreamId::MIN, Some(0)));
    assert!(!gs.create(b"a", StreamId::MAX, None));
    assert_eq!(
        gs.iter().map(|(n, _)| n.to_vec()).collect::<Vec<_>>(),
        [b"a".to_vec(), b"b".to_vec()]
    );
    assert_eq!(gs.get(b"a").map(|g| g.entries_read), Some(Some(0)));
    assert!(gs.destroy(b"a"));
    assert!(!gs.destroy(b"a"));
    assert_eq!(gs.len(), 1);
}

fn spill(gs: &Groups) -> Vec<u8> {
    let mut out = Vec::new();
    put_header(&mut out, tag::STREAM);
    gs.serialize(&mut out);
    out
}

fn unspill(bytes: &[u8]) -> Result<Groups, crate::DecodeError> {
    let (mut r, _) = Reader::open(bytes, &[tag::STREAM])?;
    let gs = Groups::deserialize(&mut r)?;
    r.finish()?;
    Ok(gs)
}

#[test]
fn spill_round_trip() {
    let mut gs = Groups::default();
    gs.create(b"g1", id(7, 7), Some(u64::MAX >> 1));
    gs.create(b"", StreamId::MAX, None);
    let g = gs.get_mut(b"g1").unwrap();
    *g = sample();
    g.create_consumer(b"idle", 42);
    g.claim(
        b"bob",
        &[id(1, 0)],
        ClaimOptions {
            min_idle_ms: 0,
            delivery_time_ms: 5,
            retry: Retry::Set(u64::MAX),
            force: false,
        },
        9,
        |_| true,
    );
    let bytes = spill(&gs);
    let back = unspill(&bytes).unwrap();
    assert_eq!(back, gs);
    assert_eq!(back.memory_usage(), gs.memory_usage());
    // Every truncation fails cleanly, never panics.
    for n in 0..bytes.len() {
        assert!(unspill(&bytes[..n]).is_err());
    }
}

#[test]
fn corrupt_spills_are_refused() {
    // Garbage never panics.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for len in 0..300 {
        let mut b = vec![tag::STREAM, 1];
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            b.push((seed % 7) as u8);
        }
        let _ = unspill(&b);
    }
    // A duplicate group name.
    let mut gs = Groups::default();
    gs.create(b"g", StreamId::MIN, None);
    let mut bytes = spill(&gs);
    bytes[2] = 2;
    let tail = bytes[3..].to_vec();
    bytes.extend_from_slice(&tail);
    assert!(unspill(&bytes).is_err());
}

/// Random operations keep the two PELs in step and the byte count exact, and never panic.
#[test]
fn random_operations_keep_the_invariants() {
    use super::group::{CONSUMER_BYTES, NACK_BYTES};
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let names: [&[u8]; 4] = [b"a", b"bb", b"", b"dddd"];
    let mut g = ConsumerGroup::new(StreamId::MIN, None);
    for step in 0..5000u64 {
        let i = id(next(40), next(3));
        let who = names[next(4) as usize];
        let now = step * 10;
        let exists = |x: StreamId| !x.ms.is_multiple_of(7);
        match next(9) {
            0 | 1 => g.deliver(i, who, now),
            2 => {
                g.ack(i);
            }
            3 => {
                let opts = ClaimOptions {
                    min_idle_ms: next(100),
                    delivery_time_ms: now,
                    retry: [Retry::Increment, Retry::Keep, Retry::Set(next(5))][next(3) as usize],
                    force: next(2) == 0,
                };
                g.claim(who, &[i, id(next(40), 0)], opts, now, exists);
            }
            4 => {
                let count = next(5) as usize;
                g.autoclaim(who, next(100), i, count, next(2) == 0, now, exists);
            }
            5 => {
                g.delete_consumer(who);
            }
            6 => {
                g.history(who, i, next(4) as usize, now, exists);
            }
            7 => {
                g.touch_consumer(who, now);
            }
            _ => {
                let _ = g.pending_range(i, id(next(40), 9), next(6) as usize, 5, Some(who), now);
                let _ = g.summary();
            }
        }
        check_consistent(&g);
        let expected: usize = g
            .consumers()
            .map(|(n, c)| CONSUMER_BYTES + n.len() + c.pending_count() * NACK_BYTES)
            .sum();
        assert_eq!(g.memory_usage(), expected, "step {step}");
    }
}
