//! `collection_stalls`: the worst single-element operation on a big collection (issue #4).
//!
//! ```text
//! collection_stalls --elements 4000000                  # set, hash, list-left, list-right
//! collection_stalls --elements 4000000 --kinds set,hash
//! ```
//!
//! Grows each collection one element at a time through the public API of `ferrite-collections`
//! (SADD, HSET, LPUSH, RPUSH), then drains it one element at a time (SREM, HDEL, LPOP, RPOP),
//! timing every call, and prints one line per phase with p50/p99/p99.9/p99.99 in microseconds
//! and the five slowest calls as `µs@size` (the collection's size when each happened). A table or buffer that resizes all at once shows
//! up as a max in milliseconds at a power of two; an incremental one keeps max near p99.9.
//! Single-threaded, in-process: pin it (`taskset -c 1`) on a quiet machine.

use std::time::Instant;

use clap::Parser;
use ferrite_collections::{End, Hash, List, Set};
use hdrhistogram::Histogram;

#[derive(Parser)]
#[command(about = "Per-operation latency of growing and draining one big collection")]
struct Cli {
    /// Elements to insert (then remove) per collection.
    #[arg(long, default_value_t = 4_000_000)]
    elements: u64,
    /// Comma-separated subset of: set, hash, list-left, list-right.
    #[arg(long, default_value = "set,hash,list-left,list-right")]
    kinds: String,
}

/// One collection under test, driven through its public API.
enum Subject {
    Set(Set),
    Hash(Hash),
    List(List, End),
}

impl Subject {
    fn new(kind: &str) -> Option<Self> {
        Some(match kind {
            "set" => Self::Set(Set::new()),
            "hash" => Self::Hash(Hash::new()),
            "list-left" => Self::List(List::new(), End::Left),
            "list-right" => Self::List(List::new(), End::Right),
            _ => return None,
        })
    }

    fn add(&mut self, member: &[u8]) {
        match self {
            Self::Set(s) => _ = s.insert(member),
            Self::Hash(h) => _ = h.insert(member, b"v"),
            Self::List(l, end) => l.push(*end, member),
        }
    }

    fn remove(&mut self, member: &[u8]) {
        match self {
            Self::Set(s) => _ = s.remove(member),
            Self::Hash(h) => _ = h.remove(member),
            Self::List(l, end) => _ = l.pop(*end),
        }
    }
}

/// How many of the slowest calls to list, with the size at which each happened.
const WORST: usize = 5;

/// Latencies of one phase, and where its worst calls happened.
struct Phase {
    hist: Histogram<u64>,
    /// (ns, size), slowest first.
    worst: Vec<(u64, u64)>,
}

impl Phase {
    fn new() -> Self {
        Self {
            hist: Histogram::new(3).expect("3 significant figures is valid"),
            worst: Vec::with_capacity(WORST + 1),
        }
    }

    fn record(&mut self, ns: u64, size: u64) {
        self.hist.saturating_record(ns.max(1));
        if self.worst.len() < WORST || ns > self.worst[WORST - 1].0 {
            let at = self.worst.partition_point(|&(w, _)| w >= ns);
            self.worst.insert(at, (ns, size));
            self.worst.truncate(WORST);
        }
    }

    fn print(&self, kind: &str, phase: &str) {
        let us = |q: f64| self.hist.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "kind={kind} phase={phase} ops={} p50_us={:.2} p99_us={:.2} p99.9_us={:.2} \
             p99.99_us={:.2} worst_us@size={}",
            self.hist.len(),
            us(0.5),
            us(0.99),
            us(0.999),
            us(0.9999),
            self.worst
                .iter()
                .map(|&(ns, size)| format!("{:.1}@{size}", ns as f64 / 1000.0))
                .collect::<Vec<_>>()
                .join(",")
        );
    }
}

fn member(buf: &mut Vec<u8>, i: u64) {
    use std::io::Write;
    buf.clear();
    _ = write!(buf, "member:{i}");
}

fn main() {
    let cli = Cli::parse();
    let mut buf = Vec::with_capacity(32);
    for kind in cli.kinds.split(',') {
        let Some(mut subject) = Subject::new(kind) else {
            eprintln!("unknown kind {kind:?}: expected set, hash, list-left or list-right");
            std::process::exit(2);
        };
        let mut grow = Phase::new();
        for i in 0..cli.elements {
            member(&mut buf, i);
            let t = Instant::now();
            subject.add(&buf);
            grow.record(t.elapsed().as_nanos() as u64, i);
        }
        grow.print(kind, "grow");
        let mut drain = Phase::new();
        for i in 0..cli.elements {
            member(&mut buf, i);
            let t = Instant::now();
            subject.remove(&buf);
            drain.record(t.elapsed().as_nanos() as u64, cli.elements - i);
        }
        drain.print(kind, "drain");
    }
}
