//! The index's find-or-create protocol: racing creators of one (bucket, tag) leave exactly one
//! entry; creators of different tags both succeed.
#![cfg(loom)]

use ferrite_hybridlog::index::{HashIndex, TENTATIVE, entry_tag};
use loom::sync::Arc;
use loom::thread;

fn hash(tag: u64) -> u64 {
    tag << 50
}

fn builder() -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(2);
    b
}

#[test]
fn same_tag_twice_leaves_one_entry() {
    builder().check(|| {
        let ix = Arc::new(HashIndex::new(1, 1));
        let creators: Vec<_> = (0..2)
            .map(|_| {
                let ix = ix.clone();
                thread::spawn(move || ix.find_or_create(hash(5)).address())
            })
            .collect();
        for c in creators {
            assert_eq!(c.join().unwrap(), 0);
        }
        let entries = ix.raw_entries(0);
        assert_eq!(entries.len(), 1, "{entries:x?}");
        assert_eq!(entry_tag(entries[0]), 5);
        assert_eq!(entries[0] & TENTATIVE, 0);
    });
}

#[test]
fn two_tags_both_present() {
    builder().check(|| {
        let ix = Arc::new(HashIndex::new(1, 1));
        let creators: Vec<_> = [3, 9]
            .into_iter()
            .map(|tag| {
                let ix = ix.clone();
                thread::spawn(move || {
                    ix.find_or_create(hash(tag));
                })
            })
            .collect();
        for c in creators {
            c.join().unwrap();
        }
        let mut tags: Vec<u64> = ix.raw_entries(0).into_iter().map(entry_tag).collect();
        tags.sort_unstable();
        assert_eq!(tags, vec![3, 9]);
        assert!(ix.find(hash(3)).is_some() && ix.find(hash(9)).is_some());
    });
}

#[test]
fn created_entry_publishes_its_address() {
    // Both threads insert "the first record of a key": find or create the entry, and CAS an
    // address in only from an empty chain (what `ops::insert` does after walking the chain).
    // Exactly one wins, whoever created the entry.
    builder().check(|| {
        let ix = Arc::new(HashIndex::new(1, 1));
        let inserters: Vec<_> = [64, 128]
            .into_iter()
            .map(|address| {
                let ix = ix.clone();
                thread::spawn(move || {
                    let mut e = ix.find_or_create(hash(7));
                    e.address() == 0 && e.try_swap(address)
                })
            })
            .collect();
        let mut won = inserters.into_iter().map(|t| t.join().unwrap());
        let (mine, theirs) = (won.next().unwrap(), won.next().unwrap());
        assert!(mine ^ theirs, "exactly one CAS from the empty chain wins");
        let a = ix.find(hash(7)).unwrap().address();
        assert_eq!(a, if mine { 64 } else { 128 });
    });
}
