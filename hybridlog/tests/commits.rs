//! The commit sequence: off, writes take no numbers; on, every number taken is reported, a
//! key's writes are numbered in the order they took effect (across threads, across in-place
//! updates, read-copy-update and inserts), and reaping reports the key it deleted.

mod common;

use common::{incr, set, small};
use ferrite_hybridlog::{Commit, ValueKind};

#[test]
fn off_takes_no_numbers() {
    let store = small(64);
    let mut s = store.session();
    set(&mut s, 0, b"k", b"v");
    incr(&mut s, 0, b"n", 0);
    let mut out = Vec::new();
    s.take_commits(&mut out);
    assert!(out.is_empty());
}

#[test]
fn concurrent_increments_are_numbered_in_effect_order() {
    // A small log, so increments cross the read-only boundary (read-copy-update) too.
    let store = small(64);
    store.set_commit_sequence(true);
    let first = store.next_commit_seq();
    let per_thread = 3000;
    let handles: Vec<_> = (0..3)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut s = store.session();
                let mut tagged = Vec::new();
                let mut commits = Vec::new();
                for i in 0..per_thread {
                    // Another key in between, so the chain moves and inserts race too.
                    set(&mut s, 0, format!("t{t}:{i}").as_bytes(), b"x");
                    s.take_commits(&mut commits);
                    let mut all: Vec<u64> = commits.drain(..).map(|c| c.seq).collect();
                    let v = incr(&mut s, 0, b"n", 0);
                    s.take_commits(&mut commits);
                    let own: Vec<u64> = commits.drain(..).map(|c| c.seq).collect();
                    tagged.push((*own.iter().max().expect("a write takes a number"), v));
                    all.extend(own);
                    tagged.extend(all.into_iter().map(|s| (s, -1)));
                }
                tagged
            })
        })
        .collect();
    let mut all: Vec<(u64, i64)> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort();
    // Every number from `first` is reported, exactly once (as a write or as "nothing").
    let mut seqs: Vec<u64> = all.iter().map(|&(s, _)| s).collect();
    seqs.dedup();
    let incr_tags: Vec<(u64, i64)> = all.iter().copied().filter(|&(_, v)| v >= 0).collect();
    let numbers: std::collections::BTreeSet<u64> = seqs.iter().copied().collect();
    assert_eq!(
        numbers.len() as u64,
        store.next_commit_seq() - first,
        "a number is missing"
    );
    // In number order, the increments' results are 1, 2, 3, ...: the order they took effect.
    for (i, &(_, v)) in incr_tags.iter().enumerate() {
        assert_eq!(v, i as i64 + 1, "increment {i} is out of order");
    }
}

#[test]
fn reaping_reports_the_key() {
    let store = small(64);
    store.set_commit_sequence(true);
    let mut s = store.session();
    s.upsert(3, b"gone", b"v", ValueKind::String, 10);
    let mut out: Vec<Commit> = Vec::new();
    s.take_commits(&mut out);
    assert_eq!(out.len(), 1);
    assert!(out[0].reaped.is_none());
    out.clear();
    assert!(s.read(3, b"gone", 20, |_| ()).is_none());
    s.take_commits(&mut out);
    assert_eq!(out.len(), 1);
    let pdb = out[0].reaped.as_ref().map(|(p, k)| (*p, k.to_vec()));
    assert_eq!(pdb, Some((3, b"gone".to_vec())));
    assert_eq!(store.logical_db(3), Some(3));
}

/// `Modified` events: off, none; on, one per write that took effect (insert, in-place update,
/// delete, a lazily reaped expired key), none for a delete of a missing key; handed over apart
/// from the notification events.
#[test]
fn modified_events_name_every_changed_key() {
    let store = small(64);
    let mut s = store.session();
    let mut out = Vec::new();
    set(&mut s, 0, b"quiet", b"v");
    s.take_modified(&mut out);
    assert!(out.is_empty() && !s.has_modified());
    store.set_modified_events(true);
    set(&mut s, 0, b"a", b"1");
    set(&mut s, 0, b"a", b"2");
    incr(&mut s, 0, b"n", 0);
    assert!(s.delete(0, b"a", 0));
    assert!(!s.delete(0, b"missing", 0));
    s.upsert(0, b"ttl", b"v", ValueKind::String, 10);
    assert!(s.has_modified());
    let mut events = Vec::new();
    s.take_key_events(&mut events);
    assert!(events.is_empty(), "notification events stay off");
    s.take_modified(&mut out);
    let keys: Vec<&[u8]> = out.iter().map(|e| &*e.key).collect();
    assert_eq!(keys, [&b"a"[..], b"a", b"n", b"a", b"ttl"]);
    out.clear();
    // A write that finds the key expired reaps it first: one event for the key.
    assert!(!s.delete(0, b"ttl", 20));
    s.take_modified(&mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(&*out[0].key, b"ttl");
    store.set_modified_events(false);
    set(&mut s, 0, b"a", b"3");
    out.clear();
    s.take_modified(&mut out);
    assert!(out.is_empty());
}
