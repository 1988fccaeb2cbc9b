//! Changing the memory budget of a running store (`CONFIG SET memory-size`): shrinking moves
//! the head and gives the pages back, growing lets more stay, and every key reads back the same
//! throughout, while another thread keeps writing.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{get, set, tiered_store};
use ferrite_hybridlog::{Session, Store, StoreConfig};

const PAGE_BITS: u32 = 16;
const PAGE: u64 = 1 << PAGE_BITS;
const BIG: u64 = 8 << 20;
const SMALL: u64 = 1 << 20;

fn config() -> StoreConfig {
    StoreConfig {
        index_buckets: 1 << 14,
        page_bits: PAGE_BITS,
        memory_size: BIG as usize,
        databases: 16,
        ..StoreConfig::default()
    }
}

fn value(i: u64, round: u64) -> Vec<u8> {
    format!("{i}:{round}:").repeat(30).into_bytes()
}

fn load(s: &mut Session, keys: std::ops::Range<u64>, round: u64, model: &mut HashMap<u64, u64>) {
    for i in keys {
        set(s, 0, format!("key:{i}").as_bytes(), &value(i, round));
        model.insert(i, round);
        s.end_command();
    }
}

fn check(s: &mut Session, model: &HashMap<u64, u64>) {
    for (&i, &round) in model {
        let got = get(s, 0, format!("key:{i}").as_bytes(), 0);
        assert_eq!(got, Some(value(i, round)), "key:{i}");
        s.end_command();
    }
}

/// Polls (pinning and unpinning, which moves the epoch the evictions wait for) until `done`.
fn wait_for(store: &Arc<Store>, s: &mut Session, what: &str, done: impl Fn(&Store) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done(store) {
        assert!(Instant::now() < deadline, "{what}: {:?}", store.stats());
        let _ = get(s, 0, b"key:0", 0);
        s.end_command();
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn shrinking_frees_pages_and_growing_keeps_more() {
    let (store, _dir) = tiered_store("resize", config(), Some(22));
    let mut s = store.session();
    let mut model = HashMap::new();
    // About 6 MiB of records: everything stays in the 8 MiB budget.
    load(&mut s, 0..16_000, 0, &mut model);
    let before = store.stats();
    assert_eq!(before.head_address, 64, "nothing evicted yet: {before:?}");
    assert!(before.log_memory_bytes > 4 * SMALL, "{before:?}");

    assert_eq!(store.set_memory_size(SMALL).unwrap(), SMALL);
    wait_for(&store, &mut s, "shrink to 1 MiB", |st| {
        let stats = st.stats();
        stats.log_memory_bytes <= SMALL + 4 * PAGE
            && stats.spare_page_bytes + stats.log_memory_bytes <= SMALL + 6 * PAGE
    });
    let after = store.stats();
    assert!(
        after.head_address + SMALL + 4 * PAGE >= before.tail_address,
        "{after:?} {before:?}"
    );
    check(&mut s, &model);

    // Writing on under the small budget keeps to it.
    load(&mut s, 16_000..20_000, 0, &mut model);
    load(&mut s, 0..2_000, 1, &mut model);
    wait_for(&store, &mut s, "writes under 1 MiB", |st| {
        st.stats().log_memory_bytes <= SMALL + 4 * PAGE
    });
    check(&mut s, &model);

    // Grown again, new pages stay in memory: the head stops while the tail moves on.
    assert_eq!(store.set_memory_size(BIG).unwrap(), BIG);
    let head = store.stats().head_address;
    load(&mut s, 20_000..26_000, 0, &mut model);
    let after = store.stats();
    assert!(after.log_memory_bytes > 2 * SMALL, "{after:?}");
    assert!(
        after.head_address <= head + 2 * PAGE,
        "{after:?} after {head}"
    );
    check(&mut s, &model);
}

#[test]
fn shrinking_under_a_concurrent_writer_loses_nothing() {
    let (store, _dir) = tiered_store("resize-writer", config(), Some(22));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut s = store.session();
            let mut model = HashMap::new();
            let mut round = 0;
            while !stop.load(Ordering::Relaxed) {
                load(&mut s, 0..4_000, round, &mut model);
                round += 1;
            }
            check(&mut s, &model);
            round
        })
    };
    for size in [SMALL, BIG, 2 * SMALL, SMALL, 4 * SMALL] {
        store.set_memory_size(size).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    assert!(writer.join().unwrap() > 0);
}

#[test]
fn budgets_below_two_pages_or_without_a_disk_tier_are_refused() {
    let (store, _dir) = tiered_store("resize-refused", config(), Some(22));
    assert!(store.set_memory_size(2 * PAGE - 1).is_err());
    assert_eq!(store.set_memory_size(2 * PAGE).unwrap(), 2 * PAGE);
    // Not a whole number of pages: rounded down.
    assert_eq!(store.set_memory_size(3 * PAGE + 100).unwrap(), 3 * PAGE);
    let memory_only = Store::new(config()).unwrap();
    assert!(memory_only.set_memory_size(BIG).is_err());
}
