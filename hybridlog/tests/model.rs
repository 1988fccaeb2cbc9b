//! A random sequence of operations against the store and against a `BTreeMap` model gives the
//! same observable results.

mod common;

use std::collections::BTreeMap;

use ferrite_hybridlog::{ValueKind, Write};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Upsert {
        db: u8,
        key: u8,
        len: usize,
        fill: u8,
        ttl: Option<u64>,
    },
    Append {
        db: u8,
        key: u8,
        len: usize,
    },
    Expire {
        db: u8,
        key: u8,
        ttl: u64,
    },
    Delete {
        db: u8,
        key: u8,
    },
    Read {
        db: u8,
        key: u8,
    },
    Tick {
        ms: u64,
    },
    ActiveExpire,
    Swap {
        a: u8,
        b: u8,
    },
    Flush {
        db: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let db = 0u8..3;
    let key = 0u8..12;
    // Lengths cross the inline limit (1 KiB with 4 KiB pages).
    let len = prop_oneof![0usize..40, 900usize..1_300];
    prop_oneof![
        4 => (db.clone(), key.clone(), len.clone(), any::<u8>(), proptest::option::of(1u64..50))
            .prop_map(|(db, key, len, fill, ttl)| Op::Upsert { db, key, len, fill, ttl }),
        3 => (db.clone(), key.clone(), 0usize..300).prop_map(|(db, key, len)| Op::Append { db, key, len }),
        1 => (db.clone(), key.clone(), 1u64..50).prop_map(|(db, key, ttl)| Op::Expire { db, key, ttl }),
        2 => (db.clone(), key.clone()).prop_map(|(db, key)| Op::Delete { db, key }),
        4 => (db.clone(), key).prop_map(|(db, key)| Op::Read { db, key }),
        1 => (1u64..20).prop_map(|ms| Op::Tick { ms }),
        1 => Just(Op::ActiveExpire),
        1 => (db.clone(), db.clone()).prop_map(|(a, b)| Op::Swap { a, b }),
        1 => db.prop_map(|db| Op::Flush { db }),
    ]
}

/// The model: per logical db, key → (value, expire_at).
type Model = Vec<BTreeMap<u8, (Vec<u8>, u64)>>;

fn live(m: &mut Model, db: u8, key: u8, now: u64) -> Option<(Vec<u8>, u64)> {
    let e = m[db as usize].get(&key)?.clone();
    if e.1 != 0 && e.1 <= now {
        m[db as usize].remove(&key);
        return None;
    }
    Some(e)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_model(ops in proptest::collection::vec(op(), 1..200)) {
        let store = common::small(4);
        let mut s = store.session();
        let mut m: Model = vec![BTreeMap::new(); 3];
        let mut now = 1_000u64;
        for op in ops {
            match op {
                Op::Upsert { db, key, len, fill, ttl } => {
                    let v = vec![fill; len];
                    let exp = ttl.map_or(0, |t| now + t);
                    s.upsert(db, &[key], &v, ValueKind::String, exp);
                    m[db as usize].insert(key, (v, exp));
                }
                Op::Append { db, key, len } => {
                    let got = s.rmw(db, &[key], now, |old, out| {
                        let exp = old.map_or(0, |e| e.expire_at);
                        if let Some(e) = old { out.extend_from_slice(e.value) }
                        out.extend((0..len).map(|i| i as u8));
                        Write::Put { kind: ValueKind::String, expire_at: exp, result: out.len() }
                    });
                    let (mut v, exp) = live(&mut m, db, key, now).unwrap_or_default();
                    v.extend((0..len).map(|i| i as u8));
                    prop_assert_eq!(got, v.len());
                    m[db as usize].insert(key, (v, exp));
                }
                Op::Expire { db, key, ttl } => {
                    let hit = s.rmw(db, &[key], now, |old, _| match old {
                        Some(_) => Write::SetExpiry { expire_at: now + ttl, result: true },
                        None => Write::Keep(false),
                    });
                    let model_hit = live(&mut m, db, key, now).is_some();
                    prop_assert_eq!(hit, model_hit);
                    if let Some(e) = m[db as usize].get_mut(&key) { e.1 = now + ttl }
                }
                Op::Delete { db, key } => {
                    let model = live(&mut m, db, key, now).is_some();
                    m[db as usize].remove(&key);
                    prop_assert_eq!(s.delete(db, &[key], now), model);
                }
                Op::Read { db, key } => {
                    let got = s.read(db, &[key], now, |e| (e.value.to_vec(), e.expire_at));
                    prop_assert_eq!(got, live(&mut m, db, key, now));
                }
                Op::Tick { ms } => now += ms,
                Op::ActiveExpire => {
                    let expect = m.iter().map(|d| d.values().filter(|e| e.1 != 0 && e.1 <= now).count()).sum::<usize>();
                    for d in &mut m { d.retain(|_, e| e.1 == 0 || e.1 > now) }
                    prop_assert_eq!(s.active_expire(now, 64) as usize, expect);
                }
                Op::Swap { a, b } => {
                    s.swap_db(a, b);
                    m.swap(a as usize, b as usize);
                }
                Op::Flush { db } => {
                    s.flush_db(db);
                    m[db as usize].clear();
                }
            }
            // Counts may include expired-but-unreaped keys, as in Redis; after a full active
            // cycle they are exact.
            for db in 0..3u8 {
                prop_assert!(store.db_size(db) as usize >= m[db as usize].len());
            }
        }
        s.active_expire(now, 64);
        for d in &mut m { d.retain(|_, e| e.1 == 0 || e.1 > now) }
        for db in 0..3u8 {
            prop_assert_eq!(store.db_size(db) as usize, m[db as usize].len());
            let ttl = m[db as usize].values().filter(|e| e.1 != 0).count();
            prop_assert_eq!(store.db_expires(db) as usize, ttl);
            let mut keys = Vec::new();
            let mut cursor = 0;
            loop {
                cursor = s.scan(db, cursor, 3, now, |k, e| keys.push((k.to_vec(), e.value.to_vec())));
                if cursor == 0 { break }
            }
            keys.sort();
            let want: Vec<_> = m[db as usize].iter().map(|(k, v)| (vec![*k], v.0.clone())).collect();
            prop_assert_eq!(keys, want);
        }
    }
}
