//! Copying reads to the tail: a record a read finds on disk is copied back into memory with
//! its value, kind, expiry and access bits, so that the next read does not touch the disk; a
//! concurrent writer of the key wins over the copy; expired records stay where they are; the
//! copy is not a write (no commit number, no change to the key counts). With
//! `CopyReads::Repeated` only a key's second disk read within the doorkeeper's window copies.

mod common;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};

use common::{Bag, Dir, get, set, tiered_store};
use ferrite_hybridlog::tier::TierStats;
use ferrite_hybridlog::{CopyReads, Session, Store, StoreConfig, ValueKind};

const BUDGET: usize = 512 << 10;

fn tiered(name: &str, copy_reads_to_tail: CopyReads) -> (Arc<Store>, Dir) {
    let cfg = StoreConfig {
        index_buckets: 1 << 12,
        page_bits: 16,
        memory_size: BUDGET,
        mutable_fraction: 0.5,
        copy_reads_to_tail,
        ..StoreConfig::default()
    };
    tiered_store(&format!("promote-{name}"), cfg, None)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Writes enough filler (8x the budget) that everything written before is on disk.
fn push_to_disk(s: &mut Session, tag: &str) {
    for i in 0..25_000u64 {
        set(s, 1, format!("filler:{tag}:{i}").as_bytes(), &[b'f'; 150]);
    }
}

/// Whether reading `key` would read the disk, asked from a new thread: each thread keeps what
/// its walks found for a while, and `locate` answers no for those.
fn on_disk(store: &Arc<Store>, key: &[u8]) -> bool {
    std::thread::scope(|sc| {
        sc.spawn(|| store.session().locate(0, key).is_some())
            .join()
            .unwrap()
    })
}

/// GET from a new thread (nothing cached from earlier walks).
fn fresh_get(store: &Arc<Store>, key: &[u8]) -> Option<Vec<u8>> {
    std::thread::scope(|sc| {
        sc.spawn(|| get(&mut store.session(), 0, key, now()))
            .join()
            .unwrap()
    })
}

fn stat(t: &TierStats, f: impl Fn(&TierStats) -> &std::sync::atomic::AtomicU64) -> u64 {
    f(t).load(Ordering::Relaxed)
}

#[test]
fn a_record_read_from_disk_is_next_read_from_memory() {
    let (store, _dir) = tiered("hot", CopyReads::Always);
    let mut s = store.session();
    let t0 = now();
    let ttl = t0 + 3_600_000;
    let big = vec![b'b'; 40 << 10]; // Over the inline limit: a heap value, in the object log.
    s.upsert(0, b"plain", b"plain value", ValueKind::String, 0);
    s.upsert(0, b"ttl", b"expiring value", ValueKind::String, ttl);
    s.upsert(0, b"big", &big, ValueKind::String, 0);
    push_to_disk(&mut s, "a");
    let tier = store.tier_stats().unwrap();
    let (keys, expires) = (store.db_size(0), store.db_expires(0));
    store.set_commit_sequence(true);
    let cases: [(&[u8], &[u8], u64); 3] = [
        (b"plain", b"plain value", 0),
        (b"ttl", b"expiring value", ttl),
        (b"big", &big, 0),
    ];
    for (key, value, expire_at) in cases {
        assert!(on_disk(&store, key), "{key:?} is on disk");
        let bytes = store.dataset_bytes();
        let promoted = stat(tier, |t| &t.records_promoted);
        // The first read goes to the disk (here synchronously) and copies the record back.
        assert_eq!(get(&mut s, 0, key, now()).as_deref(), Some(value));
        s.end_command();
        assert_eq!(stat(tier, |t| &t.records_promoted), promoted + 1);
        assert!(!on_disk(&store, key), "{key:?} is in memory again");
        // The next read does no disk read, and sees the same value, kind and expiry.
        let sync = stat(tier, |t| &t.sync_reads);
        assert_eq!(fresh_get(&store, key).as_deref(), Some(value));
        assert_eq!(
            s.kind_and_expiry(0, key, now()),
            Some((ValueKind::String, expire_at))
        );
        assert_eq!(
            stat(tier, |t| &t.sync_reads),
            sync,
            "{key:?} read from disk"
        );
        s.end_command();
        if key != b"big" {
            // Same record size: the dataset did not grow.
            assert_eq!(store.dataset_bytes(), bytes);
        }
    }
    // Not a write: no commit numbers, no change to the key counts.
    let mut commits = Vec::new();
    s.take_commits(&mut commits);
    assert!(commits.is_empty(), "a promotion took a commit number");
    assert_eq!((store.db_size(0), store.db_expires(0)), (keys, expires));
    assert_eq!(stat(tier, |t| &t.io_errors), 0);
}

#[test]
fn the_copy_keeps_the_access_bits() {
    let (store, _dir) = tiered("lfu", CopyReads::Always);
    store.access().set_policy(Some((10, 1)));
    store.access().set_clock(now());
    let mut s = store.session();
    set(&mut s, 0, b"counted", b"v");
    let bits = store.access().bits_for_freq(200);
    s.set_access_bits(0, b"counted", now(), bits);
    push_to_disk(&mut s, "b");
    assert!(on_disk(&store, b"counted"));
    assert_eq!(
        get(&mut s, 0, b"counted", now()).as_deref(),
        Some(&b"v"[..])
    );
    s.end_command();
    assert!(!on_disk(&store, b"counted"));
    let after = s.access_bits(0, b"counted", now()).unwrap();
    // A fresh record would start at 5; the read may have added one.
    assert!(store.access().frequency(after) >= 200, "{after:#x}");
}

#[test]
fn expired_records_are_not_promoted() {
    let (store, _dir) = tiered("expired", CopyReads::Always);
    let mut s = store.session();
    let expire_at = now() + 300;
    s.upsert(0, b"short", b"short-lived", ValueKind::String, expire_at);
    push_to_disk(&mut s, "c");
    assert!(on_disk(&store, b"short"));
    while now() <= expire_at {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let tier = store.tier_stats().unwrap();
    let promoted = stat(tier, |t| &t.records_promoted);
    assert_eq!(get(&mut s, 0, b"short", now()), None);
    s.end_command();
    assert_eq!(stat(tier, |t| &t.records_promoted), promoted);
    assert_eq!(store.db_size(0), 0, "the expired key was reaped");
}

#[test]
fn switched_off_nothing_is_promoted() {
    let (store, _dir) = tiered("off", CopyReads::Never);
    let mut s = store.session();
    set(&mut s, 0, b"cold", b"stays cold");
    push_to_disk(&mut s, "d");
    let tier = store.tier_stats().unwrap();
    for _ in 0..2 {
        let sync = stat(tier, |t| &t.sync_reads);
        assert_eq!(
            fresh_get(&store, b"cold").as_deref(),
            Some(&b"stays cold"[..])
        );
        assert_eq!(stat(tier, |t| &t.sync_reads), sync + 1, "read from disk");
        assert!(on_disk(&store, b"cold"));
    }
    assert_eq!(stat(tier, |t| &t.records_promoted), 0);
}

/// Readers promoting keys while a writer overwrites them: whichever CAS comes second fails
/// (a promotion's is dropped, a write on a copy read back from disk starts over), so every
/// key ends with the written value, never the promoted old one.
#[test]
fn a_concurrent_writer_wins_over_the_promotion() {
    const KEYS: u64 = 400;
    const READERS: usize = 2;
    let (store, _dir) = tiered("race", CopyReads::Always);
    let key = |i: u64| format!("race:{i}").into_bytes();
    for round in 0..3 {
        {
            let mut s = store.session();
            for i in 0..KEYS {
                set(&mut s, 0, &key(i), format!("old-{round}-{i}").as_bytes());
            }
            push_to_disk(&mut s, &format!("race{round}"));
            assert!(on_disk(&store, &key(0)));
        }
        let start = Arc::new(Barrier::new(READERS + 1));
        let readers: Vec<_> = (0..READERS)
            .map(|r| {
                let (store, start) = (Arc::clone(&store), Arc::clone(&start));
                std::thread::spawn(move || {
                    let mut s = store.session();
                    start.wait();
                    for n in 0..KEYS {
                        // The readers go in opposite directions to meet the writer everywhere.
                        let i = if r % 2 == 0 { n } else { KEYS - 1 - n };
                        let got = get(&mut s, 0, &key(i), now()).unwrap();
                        let old = format!("old-{round}-{i}").into_bytes();
                        let new = format!("new-{round}-{i}").into_bytes();
                        assert!(got == old || got == new, "{:?}", String::from_utf8(got));
                        s.end_command();
                    }
                })
            })
            .collect();
        let mut w = store.session();
        start.wait();
        for i in 0..KEYS {
            set(&mut w, 0, &key(i), format!("new-{round}-{i}").as_bytes());
        }
        for r in readers {
            r.join().unwrap();
        }
        for i in 0..KEYS {
            assert_eq!(
                get(&mut w, 0, &key(i), now()),
                Some(format!("new-{round}-{i}").into_bytes()),
                "race:{i} lost its write in round {round}"
            );
            w.end_command();
        }
    }
    let tier = store.tier_stats().unwrap();
    assert!(stat(tier, |t| &t.records_promoted) > 0, "nothing raced");
    assert_eq!(stat(tier, |t| &t.io_errors), 0);
}

fn bag(s: &mut Session, key: &[u8]) -> Option<Vec<u64>> {
    common::bag(s, 0, key, now())
}

/// A collection comes back from the object log rebuilt, and its copy (a clone of the
/// rebuilt object) is what the key holds afterwards.
#[test]
fn collections_read_from_disk_come_back_too() {
    let (store, _dir) = tiered("objects", CopyReads::Always);
    store.set_object_reader(Bag::read);
    let mut s = store.session();
    let items: Vec<u64> = (0..500).collect();
    let ttl = now() + 3_600_000;
    s.upsert_object(0, b"bag", Box::new(Bag(items.clone())), ttl);
    push_to_disk(&mut s, "e");
    assert!(on_disk(&store, b"bag"));
    let tier = store.tier_stats().unwrap();
    let promoted = stat(tier, |t| &t.records_promoted);
    assert_eq!(bag(&mut s, b"bag"), Some(items.clone()));
    s.end_command();
    assert_eq!(stat(tier, |t| &t.records_promoted), promoted + 1);
    assert!(!on_disk(&store, b"bag"));
    let sync = stat(tier, |t| &t.sync_reads);
    let again = std::thread::scope(|sc| {
        sc.spawn(|| {
            let mut s = store.session();
            (bag(&mut s, b"bag"), s.kind_and_expiry(0, b"bag", now()))
        })
        .join()
        .unwrap()
    });
    assert_eq!(again, (Some(items), Some((ValueKind::Hash, ttl))));
    assert_eq!(stat(tier, |t| &t.sync_reads), sync, "read from disk again");
}

/// Bulk passes (RDB save, AOF rewrite) read without promoting.
#[test]
fn bulk_reads_leave_records_on_disk() {
    let (store, _dir) = tiered("bulk", CopyReads::Always);
    let mut s = store.session();
    set(&mut s, 0, b"saved", b"v");
    push_to_disk(&mut s, "f");
    let got = s.without_copying_reads(|s| get(s, 0, b"saved", now()));
    assert_eq!(got.as_deref(), Some(&b"v"[..]));
    s.end_command();
    let tier = store.tier_stats().unwrap();
    assert_eq!(stat(tier, |t| &t.records_promoted), 0);
    assert!(on_disk(&store, b"saved"));
    // And it is back on afterwards.
    assert_eq!(get(&mut s, 0, b"saved", now()).as_deref(), Some(&b"v"[..]));
    assert_eq!(stat(tier, |t| &t.records_promoted), 1);
}

/// A value over an eighth of the memory budget stays on disk: copying it back would push a
/// large part of the hot set out for one key.
#[test]
fn huge_values_stay_on_disk() {
    let (store, _dir) = tiered("huge", CopyReads::Always);
    let mut s = store.session();
    let huge = vec![b'h'; BUDGET / 4];
    set(&mut s, 0, b"huge", &huge);
    push_to_disk(&mut s, "g");
    assert!(on_disk(&store, b"huge"));
    assert_eq!(get(&mut s, 0, b"huge", now()), Some(huge));
    s.end_command();
    assert_eq!(
        stat(store.tier_stats().unwrap(), |t| &t.records_promoted),
        0
    );
    assert!(on_disk(&store, b"huge"));
}

/// `Repeated`: the first disk read of a key leaves it on disk, the second copies it back;
/// a bulk pass's reads are not remembered.
#[test]
fn repeated_copies_on_the_second_disk_read() {
    let (store, _dir) = tiered("repeated", CopyReads::Repeated);
    let mut s = store.session();
    set(&mut s, 0, b"twice", b"v2");
    set(&mut s, 0, b"bulk", b"vb");
    push_to_disk(&mut s, "h");
    let tier = store.tier_stats().unwrap();
    let promoted = stat(tier, |t| &t.records_promoted);
    assert_eq!(fresh_get(&store, b"twice").as_deref(), Some(&b"v2"[..]));
    assert_eq!(stat(tier, |t| &t.records_promoted), promoted);
    assert!(on_disk(&store, b"twice"), "copied on its first read");
    assert_eq!(fresh_get(&store, b"twice").as_deref(), Some(&b"v2"[..]));
    assert_eq!(stat(tier, |t| &t.records_promoted), promoted + 1);
    assert!(!on_disk(&store, b"twice"), "not copied on its second read");

    let got = s.without_copying_reads(|s| get(s, 0, b"bulk", now()));
    assert_eq!(got.as_deref(), Some(&b"vb"[..]));
    s.end_command();
    assert_eq!(fresh_get(&store, b"bulk").as_deref(), Some(&b"vb"[..]));
    assert!(
        on_disk(&store, b"bulk"),
        "the bulk read counted as a first read"
    );
    assert_eq!(stat(tier, |t| &t.records_promoted), promoted + 1);
}
