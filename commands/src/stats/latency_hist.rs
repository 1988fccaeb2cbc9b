//! Per-command latency distributions for LATENCY HISTOGRAM (`latency-tracking`).
//!
//! Redis records each call's duration (in ns, clamped to 1 ns ..= 1 s) into an HdrHistogram of
//! 2 significant digits and answers LATENCY HISTOGRAM by walking it with a logarithmic
//! iterator (first bucket 1024 ns, base 2): each bucket reports the calls whose recorded value
//! is at most the highest value equivalent to `1024 << k` at that precision, that is
//! `(1024 << k) + (8 << k) - 1` ns, shown in whole µs (1, 2, 4, 8, 16, 33, 66, ...). Those
//! cumulative counts are all Redis ever shows of the histogram, so Ferrite keeps exactly them:
//! one counter per bucket, per command, per thread (single writer, relaxed load and store).

use std::sync::atomic::{AtomicU64, Ordering};

use super::ThreadStats;
use crate::table::CmdId;

/// Buckets: `1024 << 20` ns is past the 1 s Redis clamps to.
pub const LEVELS: usize = 21;

/// Durations above this are recorded as this (Redis's `LATENCY_HISTOGRAM_MAX_VALUE`, ns).
const MAX_NS: u64 = 1_000_000_000;

/// The largest value, in ns, that bucket `k` holds.
#[inline]
const fn highest(k: usize) -> u64 {
    (1024 << k) + (8 << k) - 1
}

/// The bucket of a call that took `ns` nanoseconds.
#[inline]
pub fn level(ns: u64) -> usize {
    let v = ns.clamp(1, MAX_NS);
    // floor(log2(v)) - 10 is the bucket or the one before it.
    let mut k = (63 - v.leading_zeros() as usize).saturating_sub(10);
    while k < LEVELS - 1 && v > highest(k) {
        k += 1;
    }
    k
}

/// The label Redis gives bucket `k`: its highest value in whole µs.
pub fn level_micros(k: usize) -> u64 {
    highest(k) / 1000
}

/// One thread's distributions, by command id.
#[derive(Debug)]
pub struct LatencyHist {
    slots: Box<[[AtomicU64; LEVELS]]>,
}

impl Default for LatencyHist {
    fn default() -> Self {
        Self {
            slots: (0..crate::table::command_count())
                .map(|_| std::array::from_fn(|_| AtomicU64::new(0)))
                .collect(),
        }
    }
}

impl LatencyHist {
    /// Counts one call of `id` that took `ns` nanoseconds.
    #[inline]
    pub fn record(&self, id: CmdId, ns: u64) {
        if let Some(slot) = self.slots.get(usize::from(id)) {
            ThreadStats::add(&slot[level(ns)], 1);
        }
    }

    /// Adds this thread's counts into `into`, by command id.
    pub fn sum_into(&self, into: &mut [[u64; LEVELS]]) {
        for (sum, slot) in into.iter_mut().zip(self.slots.iter()) {
            for (s, c) in sum.iter_mut().zip(slot) {
                *s += c.load(Ordering::Relaxed);
            }
        }
    }

    /// Zeroes every count (CONFIG RESETSTAT).
    pub fn reset(&self) {
        for slot in self.slots.iter() {
            for c in slot {
                c.store(0, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_as_redis_labels_them() {
        let labels: Vec<u64> = (0..LEVELS).map(level_micros).collect();
        assert_eq!(
            labels[..12],
            [1, 2, 4, 8, 16, 33, 66, 132, 264, 528, 1056, 2113]
        );
        assert_eq!(labels[LEVELS - 1], 1_082_130);
        assert_eq!(level(0), 0);
        assert_eq!(level(1000), 0);
        assert_eq!(level(1031), 0);
        assert_eq!(level(1032), 1);
        assert_eq!(level(2000), 1);
        assert_eq!(level(3000), 2);
        assert_eq!(level(33_000), 5);
        assert_eq!(level(34_000), 6);
        assert_eq!(level(u64::MAX), LEVELS - 1);
        for k in 0..LEVELS {
            assert_eq!(level(highest(k)), k);
            if k + 1 < LEVELS {
                assert_eq!(level(highest(k) + 1), k + 1);
            }
        }
    }
}
