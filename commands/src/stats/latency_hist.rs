//! Per-command latency distributions (`latency-tracking`): LATENCY HISTOGRAM and INFO
//! latencystats.
//!
//! Redis records each call's duration (ns, clamped to 1 ns ..= 1 s) into an HdrHistogram with
//! 2 significant digits. Ferrite keeps the same histogram's counts (3072 counters: 24 buckets
//! of 128 sub-buckets), so that both replies come out as Redis computes them: LATENCY
//! HISTOGRAM walks it with HdrHistogram's logarithmic iterator (first bucket 1024 ns, base 2),
//! INFO latencystats asks for `hdr_value_at_percentile`. Each thread has its own counts per
//! command, allocated at the command's first call and written only by that thread (relaxed
//! load and store), summed when asked.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use super::ThreadStats;
use crate::table::CmdId;

/// Durations are clamped to this (Redis's `LATENCY_HISTOGRAM_MAX_VALUE`, ns).
const MAX_NS: u64 = 1_000_000_000;
/// Sub-buckets per bucket: 2 significant digits need 200 distinct values, rounded up to 2^8.
const SUB_BUCKET_COUNT: u64 = 256;
const SUB_BUCKET_HALF_MAGNITUDE: u32 = 7;
const SUB_BUCKET_HALF_COUNT: u64 = 128;
const SUB_BUCKET_MASK: u64 = SUB_BUCKET_COUNT - 1;
/// Buckets to reach 1 s from 256 by doubling (23), plus one: HdrHistogram's counts length.
pub const COUNTS_LEN: usize = 24 * SUB_BUCKET_HALF_COUNT as usize;

/// LATENCY HISTOGRAM's buckets: 1024 ns x 2^k; the last is past the 1 s clamp.
pub const LEVELS: usize = 21;

fn bucket_index(v: u64) -> u32 {
    (64 - (v | SUB_BUCKET_MASK).leading_zeros()) - (SUB_BUCKET_HALF_MAGNITUDE + 1)
}

/// HdrHistogram's `counts_index_for`.
fn counts_index(v: u64) -> usize {
    let b = bucket_index(v);
    let sub = v >> b;
    (((u64::from(b) + 1) << SUB_BUCKET_HALF_MAGNITUDE) + sub - SUB_BUCKET_HALF_COUNT) as usize
}

/// HdrHistogram's `hdr_value_at_index`: the lowest value counted at `idx`.
fn value_at_index(idx: usize) -> u64 {
    let idx = idx as u64;
    let mut b = (idx >> SUB_BUCKET_HALF_MAGNITUDE) as i64 - 1;
    let mut sub = (idx & (SUB_BUCKET_HALF_COUNT - 1)) + SUB_BUCKET_HALF_COUNT;
    if b < 0 {
        sub -= SUB_BUCKET_HALF_COUNT;
        b = 0;
    }
    sub << b
}

/// HdrHistogram's `lowest_equivalent_value`.
fn lowest_equivalent(v: u64) -> u64 {
    let b = bucket_index(v);
    (v >> b) << b
}

/// HdrHistogram's `highest_equivalent_value`.
fn highest_equivalent(v: u64) -> u64 {
    let b = bucket_index(v);
    let sub = v >> b;
    let range_bucket = if sub >= SUB_BUCKET_COUNT { b + 1 } else { b };
    lowest_equivalent(v) + (1u64 << range_bucket) - 1
}

/// The label LATENCY HISTOGRAM gives bucket `k`: the highest value equivalent to
/// `1024 << k`, in whole µs (1, 2, 4, 8, 16, 33, 66, ...).
pub fn level_micros(k: usize) -> u64 {
    highest_equivalent(1024 << k) / 1000
}

/// One command's counts on one thread, allocated at its first call.
type Counts = Box<[AtomicU64]>;

/// One thread's distributions, by command id.
#[derive(Debug)]
pub struct LatencyHist {
    slots: Box<[OnceLock<Counts>]>,
}

impl Default for LatencyHist {
    fn default() -> Self {
        Self {
            slots: (0..crate::table::command_count())
                .map(|_| OnceLock::new())
                .collect(),
        }
    }
}

impl LatencyHist {
    /// Counts one call of `id` that took `ns` nanoseconds.
    #[inline]
    pub fn record(&self, id: CmdId, ns: u64) {
        let Some(slot) = self.slots.get(usize::from(id)) else {
            return;
        };
        let counts = slot.get_or_init(|| (0..COUNTS_LEN).map(|_| AtomicU64::new(0)).collect());
        if let Some(c) = counts.get(counts_index(ns.clamp(1, MAX_NS))) {
            ThreadStats::add(c, 1);
        }
    }

    /// Adds this thread's counts of every command that ran into `into`, by command id.
    pub fn sum_into(&self, into: &mut [Option<Histogram>]) {
        for (sum, slot) in into.iter_mut().zip(self.slots.iter()) {
            let Some(counts) = slot.get() else {
                continue;
            };
            let h = sum.get_or_insert_with(Histogram::default);
            for (s, c) in h.counts.iter_mut().zip(counts.iter()) {
                *s += c.load(Ordering::Relaxed);
            }
        }
    }

    /// Zeroes every count (CONFIG RESETSTAT; a command that ran shows again once it runs).
    pub fn reset(&self) {
        for counts in self.slots.iter().filter_map(OnceLock::get) {
            for c in counts.iter() {
                c.store(0, Ordering::Relaxed);
            }
        }
    }
}

/// One command's distribution over all threads.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; COUNTS_LEN],
        }
    }
}

impl Histogram {
    /// Calls counted (HdrHistogram's `total_count`).
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// LATENCY HISTOGRAM's `histogram_usec`: per logarithmic bucket whose cumulative count
    /// grew, its label and that count.
    pub fn log_buckets(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut level = 0;
        let mut cumulative = 0;
        let mut reported = 0;
        for (idx, &n) in self.counts.iter().enumerate() {
            cumulative += n;
            // A level is reported once the walk reaches its value, counts there included.
            while level < LEVELS && value_at_index(idx) >= 1024 << level {
                if cumulative > reported {
                    out.push((level_micros(level), cumulative));
                    reported = cumulative;
                }
                level += 1;
            }
        }
        if cumulative > reported && level < LEVELS {
            out.push((level_micros(level), cumulative));
        }
        out
    }

    /// HdrHistogram's `hdr_value_at_percentile`, ns.
    pub fn value_at_percentile(&self, percentile: f64) -> u64 {
        let requested = percentile.min(100.0);
        let at = (((requested / 100.0) * self.total() as f64) + 0.5) as u64;
        let at = at.max(1);
        let mut cumulative = 0;
        for (idx, &n) in self.counts.iter().enumerate() {
            cumulative += n;
            if cumulative >= at {
                let v = value_at_index(idx);
                return if percentile == 0.0 {
                    lowest_equivalent(v)
                } else {
                    highest_equivalent(v)
                };
            }
        }
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values_ns: &[u64]) -> Histogram {
        let h = LatencyHist::default();
        for &v in values_ns {
            h.record(0, v);
        }
        let mut sum = vec![None];
        h.sum_into(&mut sum);
        sum.pop().unwrap().unwrap()
    }

    #[test]
    fn buckets_as_redis_labels_them() {
        let labels: Vec<u64> = (0..LEVELS).map(level_micros).collect();
        assert_eq!(
            labels[..12],
            [1, 2, 4, 8, 16, 33, 66, 132, 264, 528, 1056, 2113]
        );
        assert_eq!(labels[LEVELS - 1], 1_082_130);
        // Redis: 1 µs and 2 µs calls, one of 33 µs and one of 34 µs.
        let h = hist(&[1000, 2000, 33_000, 34_000, 0, u64::MAX]);
        assert_eq!(
            h.log_buckets(),
            vec![(1, 2), (2, 3), (33, 4), (66, 5), (1_082_130, 6)]
        );
        assert_eq!(h.total(), 6);
    }

    #[test]
    fn percentiles_as_redis_reports_them() {
        // What redis-server 7.0.15 answered for SETs of 9 µs, 10 µs and 39 µs.
        let h = hist(&[9000, 10_000, 39_000]);
        assert_eq!(h.value_at_percentile(0.0), 8960);
        assert_eq!(h.value_at_percentile(50.0), 10_047);
        assert_eq!(h.value_at_percentile(99.0), 39_167);
        assert_eq!(h.value_at_percentile(100.0), 39_167);
        assert_eq!(value_at_index(counts_index(255)), 255);
        assert_eq!(highest_equivalent(1024), 1031);
    }
}
