//! One-million-element collections: single-element operations must stay fast. Run with
//! `cargo test --release -p ferrite-collections --test scale -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use ferrite_collections::{End, Hash, List, Rng, ScoreRange, Set, SortedSet, ZAddFlags};

const N: u32 = 1_000_000;

fn worst(mut f: impl FnMut(u32)) -> Duration {
    let mut worst = Duration::ZERO;
    let mut at = 0;
    for i in 0..N {
        let t = Instant::now();
        f(i);
        if t.elapsed() > worst {
            worst = t.elapsed();
            at = i;
        }
    }
    println!("  (worst at operation {at})");
    worst
}

#[test]
#[ignore = "slow in debug builds; run in release"]
fn million_element_collections() {
    let mut z = SortedSet::new();
    let w = worst(|i| {
        z.add(
            format!("member:{i}").as_bytes(),
            f64::from(i % 1000),
            ZAddFlags::default(),
        )
        .unwrap();
    });
    println!("zadd worst {w:?}");
    let t = Instant::now();
    assert_eq!(z.rank(b"member:999999", false), Some(999_999));
    assert_eq!(z.range_by_rank(500_000, 500_009, true).len(), 10);
    let r = ScoreRange {
        min: 10.0,
        max: 10.0,
        min_exclusive: false,
        max_exclusive: false,
    };
    assert_eq!(z.count_in_score(&r), 1000);
    assert_eq!(
        z.range_by_score(&ScoreRange::ALL, false, 900_000, 5).len(),
        5
    );
    println!("zset queries {:?}", t.elapsed());
    let w = worst(|i| {
        z.remove(format!("member:{i}").as_bytes());
    });
    println!("zrem worst {w:?}");

    let mut h = Hash::new();
    let w = worst(|i| {
        h.insert(format!("f{i}").as_bytes(), b"v");
    });
    println!("hset worst {w:?}");
    let mut s = Set::new();
    let w = worst(|i| {
        s.insert(i.to_string().as_bytes());
    });
    println!("sadd worst {w:?}");
    let mut rng = Rng::new(1);
    let w = worst(|_| {
        s.pop(&mut rng);
    });
    println!("spop worst {w:?}");
    let mut l = List::new();
    let w = worst(|i| l.push(if i % 2 == 0 { End::Left } else { End::Right }, b"x"));
    println!("push worst {w:?}");
    assert_eq!(l.get(500_000), Some(&b"x"[..]));
}
