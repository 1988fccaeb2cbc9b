//! Server statistics for INFO. Each reactor thread owns one cache-padded block and is its only
//! writer, so counting a command costs a load and a store on a line no other thread writes.

pub mod clock;
pub mod commands;
pub mod errors;
pub mod latency_hist;
pub mod rate;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

pub use commands::{CallTimer, CommandStats, RunTimer};
pub use errors::ErrorStats;
pub use rate::Rates;

/// One thread's counters.
#[derive(Debug, Default)]
pub struct ThreadStats {
    /// Commands executed.
    pub commands: AtomicU64,
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections refused by `maxclients`.
    pub rejected_connections: AtomicU64,
    /// Bytes read from clients.
    pub net_input_bytes: AtomicU64,
    /// Bytes of replies produced.
    pub net_output_bytes: AtomicU64,
    /// Successful key lookups.
    pub keyspace_hits: AtomicU64,
    /// Failed key lookups.
    pub keyspace_misses: AtomicU64,
    /// Error replies.
    pub error_replies: AtomicU64,
    /// Commands refused before running (unknown, arity, auth).
    pub rejected_calls: AtomicU64,
    /// Write commands executed without an error reply (the RDB dirty counter; see
    /// [`crate::persist::count_write`]). Not reset by CONFIG RESETSTAT, as Redis's `dirty`.
    pub dirty: AtomicU64,
    /// Per-command counters (INFO commandstats).
    pub commands_by_id: CommandStats,
    /// Error replies by code (INFO errorstats).
    pub errors: ErrorStats,
    /// Per-command latency distributions (LATENCY HISTOGRAM).
    pub latency: latency_hist::LatencyHist,
    /// Instantaneous rates this thread publishes (see [`rate`]).
    pub rates: rate::Published,
}

impl ThreadStats {
    /// Adds `n` to a counter this thread owns (single writer: no read-modify-write needed).
    #[inline]
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.store(
            counter.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Counts one error reply (`msg` without its `-`): the total and its code.
    #[cold]
    pub fn error_reply(&self, msg: &[u8]) {
        Self::add(&self.error_replies, 1);
        self.errors.count(msg);
    }
}

/// Every thread's counters.
#[derive(Debug)]
pub struct Stats {
    threads: Vec<CachePadded<ThreadStats>>,
    /// Bumped by every RESETSTAT, so that threads restart their rate samples.
    epoch: AtomicU64,
}

/// Sums over all threads.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    /// See [`ThreadStats`].
    pub commands: u64,
    /// See [`ThreadStats`].
    pub connections: u64,
    /// See [`ThreadStats`].
    pub rejected_connections: u64,
    /// See [`ThreadStats`].
    pub net_input_bytes: u64,
    /// See [`ThreadStats`].
    pub net_output_bytes: u64,
    /// See [`ThreadStats`].
    pub keyspace_hits: u64,
    /// See [`ThreadStats`].
    pub keyspace_misses: u64,
    /// See [`ThreadStats`].
    pub error_replies: u64,
    /// See [`ThreadStats`].
    pub rejected_calls: u64,
}

impl Stats {
    /// Counters for `threads` reactor threads.
    pub fn new(threads: usize) -> Self {
        Self {
            threads: (0..threads.max(1))
                .map(|_| CachePadded::default())
                .collect(),
            epoch: AtomicU64::new(0),
        }
    }

    /// Thread `i`'s counters.
    #[inline]
    pub fn thread(&self, i: usize) -> &ThreadStats {
        &self.threads[i]
    }

    /// Sums every thread's counters.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for s in &self.threads {
            let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
            t.commands += l(&s.commands);
            t.connections += l(&s.connections);
            t.rejected_connections += l(&s.rejected_connections);
            t.net_input_bytes += l(&s.net_input_bytes);
            t.net_output_bytes += l(&s.net_output_bytes);
            t.keyspace_hits += l(&s.keyspace_hits);
            t.keyspace_misses += l(&s.keyspace_misses);
            t.error_replies += l(&s.error_replies);
            t.rejected_calls += l(&s.rejected_calls);
        }
        t
    }

    /// Every thread's dirty counter summed (monotonic; the RDB state keeps the baseline).
    pub fn dirty(&self) -> u64 {
        self.threads
            .iter()
            .map(|s| s.dirty.load(Ordering::Relaxed))
            .fold(0u64, u64::wrapping_add)
    }

    /// The RESETSTAT epoch (see [`Rates::sample`]).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Per-command sums over all threads, by command id: `(calls, ticks, rejected, failed)`.
    pub fn command_totals(&self) -> Vec<[u64; 4]> {
        let mut v = vec![[0u64; 4]; crate::table::command_count()];
        for s in &self.threads {
            for (sum, c) in v.iter_mut().zip(s.commands_by_id.iter()) {
                let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
                sum[0] += l(&c.calls);
                sum[1] += l(&c.ticks);
                sum[2] += l(&c.rejected);
                sum[3] += l(&c.failed);
            }
        }
        v
    }

    /// Per-command latency distributions summed over all threads, by command id (`None` for
    /// a command that never ran while `latency-tracking` was on).
    pub fn latency_totals(&self) -> Vec<Option<latency_hist::Histogram>> {
        let mut v = vec![None; crate::table::command_count()];
        for s in &self.threads {
            s.latency.sum_into(&mut v);
        }
        v
    }

    /// Error replies by code, summed over all threads, in code order.
    pub fn error_totals(&self) -> BTreeMap<Box<[u8]>, u64> {
        let mut m = BTreeMap::new();
        for s in &self.threads {
            s.errors.sum_into(&mut m);
        }
        m
    }

    /// Instantaneous rates summed over the threads: ops/s, input bytes/s, output bytes/s. A
    /// thread that has not sampled since the last RESETSTAT counts as 0, as Redis's reset
    /// empties its samples.
    pub fn rates(&self) -> [u64; 3] {
        let epoch = self.epoch();
        let mut r = [0u64; 3];
        for s in &self.threads {
            if s.rates.epoch.load(Ordering::Acquire) != epoch {
                continue;
            }
            for (sum, v) in r.iter_mut().zip(&s.rates.values) {
                *sum += v.load(Ordering::Relaxed);
            }
        }
        r
    }

    /// CONFIG RESETSTAT. A count racing with the reset may survive it; INFO is advisory.
    pub fn reset(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        for s in &self.threads {
            s.commands_by_id.reset();
            s.errors.reset();
            s.latency.reset();
            for c in [
                &s.commands,
                &s.connections,
                &s.rejected_connections,
                &s.net_input_bytes,
                &s.net_output_bytes,
                &s.keyspace_hits,
                &s.keyspace_misses,
                &s.error_replies,
                &s.rejected_calls,
            ] {
                c.store(0, Ordering::Relaxed);
            }
        }
    }
}
