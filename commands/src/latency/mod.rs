//! The latency monitor (Redis's `latency.c`): per event class ("command", "fast-command"), the
//! latest 160 seconds that had a latency spike of at least `latency-monitor-threshold`
//! milliseconds, with the worst per second and the worst ever.
//!
//! Samples are rare by construction (only spikes are recorded, and the threshold is in
//! milliseconds), so one process-wide mutex is enough; the hot path only compares a command's
//! ticks against the threshold, as the slow log does (see [`crate::slowlog::may_be_slow`]).

pub mod doctor;
pub mod sparkline;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::server::Server;

/// Samples kept per event (Redis's `LATENCY_TS_LEN`).
pub const TS_LEN: usize = 160;

/// One second's worst latency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    /// Unix time, seconds (0: an empty slot).
    pub time: i64,
    /// Milliseconds.
    pub latency: u64,
}

/// An event's ring of samples (Redis's `latencyTimeSeries`).
#[derive(Debug, Clone)]
pub struct Series {
    /// Where the next second's sample goes.
    idx: usize,
    /// The worst latency ever recorded.
    pub max: u64,
    samples: [Sample; TS_LEN],
}

impl Default for Series {
    fn default() -> Self {
        Self {
            idx: 0,
            max: 0,
            samples: [Sample::default(); TS_LEN],
        }
    }
}

impl Series {
    /// The samples, oldest first.
    pub fn samples(&self) -> impl Iterator<Item = Sample> + '_ {
        (0..TS_LEN)
            .map(move |j| self.samples[(self.idx + j) % TS_LEN])
            .filter(|s| s.time != 0)
    }

    /// The newest sample (an empty one if there is none).
    pub fn latest(&self) -> Sample {
        self.samples[(self.idx + TS_LEN - 1) % TS_LEN]
    }

    /// Redis's `latencyAddSample` on this series: a second keeps its worst latency.
    fn add(&mut self, now: i64, latency: u64) {
        self.max = self.max.max(latency);
        let prev = &mut self.samples[(self.idx + TS_LEN - 1) % TS_LEN];
        if prev.time == now {
            prev.latency = prev.latency.max(latency);
            return;
        }
        self.samples[self.idx] = Sample { time: now, latency };
        self.idx = (self.idx + 1) % TS_LEN;
    }
}

/// The process's latency events, in the order they first happened.
#[derive(Debug, Default)]
pub struct LatencyMonitor {
    events: Mutex<Vec<(String, Series)>>,
    /// GB of memory copied per second by the latest fork (Redis's `stat_fork_rate`, `f64`
    /// bits), for LATENCY DOCTOR's `fork` line.
    fork_rate: AtomicU64,
}

/// Records `ms` for `event` if the latency monitor is on and `ms` reaches its threshold
/// (Redis's `latencyAddSampleIfNeeded`).
pub fn add_if_needed(server: &Server, event: &str, ms: u64) {
    let threshold = server
        .config
        .latency_monitor_threshold
        .load(Ordering::Relaxed);
    if threshold > 0 && ms >= threshold as u64 {
        server.latency.add_sample(event, ms);
    }
}

/// A fork for BGSAVE or BGREWRITEAOF took `usec`: Redis's fork rate and `fork` event.
pub fn forked(server: &Server, usec: u64) {
    let st = server.store.stats();
    let used = st.log_memory_bytes.saturating_add(st.index_memory_bytes);
    let rate = used as f64 * 1_000_000.0 / usec.max(1) as f64 / (1024.0 * 1024.0 * 1024.0);
    server
        .latency
        .fork_rate
        .store(rate.to_bits(), Ordering::Relaxed);
    add_if_needed(server, "fork", usec / 1000);
}

/// How long `f` took, in whole ms, when the latency monitor is on (no clock read when off).
pub fn timed_ms<T>(server: &Server, f: impl FnOnce() -> T) -> (T, Option<u64>) {
    if server
        .config
        .latency_monitor_threshold
        .load(Ordering::Relaxed)
        <= 0
    {
        return (f(), None);
    }
    let started = std::time::Instant::now();
    let v = f();
    (v, Some(started.elapsed().as_millis() as u64))
}

impl LatencyMonitor {
    /// Redis's `stat_fork_rate`: GB/s of the latest fork (0 before any).
    pub fn fork_rate(&self) -> f64 {
        f64::from_bits(self.fork_rate.load(Ordering::Relaxed))
    }

    /// Records `latency` milliseconds for `event` now.
    pub fn add_sample(&self, event: &str, latency: u64) {
        self.add_sample_at(event, latency, (crate::server::unix_ms() / 1000) as i64);
    }

    fn add_sample_at(&self, event: &str, latency: u64, now: i64) {
        let mut events = self.lock();
        match events.iter_mut().find(|(name, _)| name == event) {
            Some((_, series)) => series.add(now, latency),
            None => {
                let mut series = Series::default();
                series.add(now, latency);
                events.push((event.to_owned(), series));
            }
        }
    }

    /// LATENCY RESET: drops the events named `event` (case-insensitively), or every event
    /// for `None`; returns how many were dropped.
    pub fn reset(&self, event: Option<&[u8]>) -> usize {
        let mut events = self.lock();
        let before = events.len();
        match event {
            None => events.clear(),
            Some(e) => events.retain(|(name, _)| !name.as_bytes().eq_ignore_ascii_case(e)),
        }
        before - events.len()
    }

    /// A copy of event `event`'s series (the name compares exactly, as Redis's dict lookup).
    pub fn series(&self, event: &[u8]) -> Option<Series> {
        self.lock()
            .iter()
            .find(|(name, _)| name.as_bytes() == event)
            .map(|(_, s)| s.clone())
    }

    /// A copy of every event.
    pub fn events(&self) -> Vec<(String, Series)> {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(String, Series)>> {
        // Updates leave the list whole: a poisoned lock still guards valid series.
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The event Redis's `call()` records a command's latency under.
pub fn command_event(spec: &crate::table::CommandSpec) -> &'static str {
    if spec.has(crate::table::flags::FAST) {
        "fast-command"
    } else {
        "command"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_keeps_its_worst_and_the_ring_wraps() {
        let m = LatencyMonitor::default();
        m.add_sample_at("command", 5, 100);
        m.add_sample_at("command", 3, 100);
        m.add_sample_at("command", 7, 100);
        m.add_sample_at("command", 2, 101);
        let s = m.series(b"command").unwrap();
        let got: Vec<_> = s.samples().map(|s| (s.time, s.latency)).collect();
        assert_eq!(got, vec![(100, 7), (101, 2)]);
        assert_eq!((s.max, s.latest().latency), (7, 2));
        for t in 0..200 {
            m.add_sample_at("command", 1, 1000 + t);
        }
        let s = m.series(b"command").unwrap();
        assert_eq!(s.samples().count(), TS_LEN);
        assert_eq!(s.samples().next().unwrap().time, 1040);
        assert_eq!(s.max, 7);
        assert!(m.series(b"COMMAND").is_none(), "lookups are exact");
        m.add_sample_at("fast-command", 1, 1);
        assert_eq!(m.reset(Some(b"COMMAND")), 1, "resets are not");
        assert_eq!(m.reset(None), 1);
        assert!(m.events().is_empty());
    }
}
