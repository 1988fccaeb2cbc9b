//! INFO's instantaneous rates (`instantaneous_ops_per_sec`, `instantaneous_input_kbps`,
//! `instantaneous_output_kbps`), as Redis's `trackInstantaneousMetric`: every reactor tick
//! (100 ms) a thread turns the growth of its own counters into a per-second rate, keeps the
//! last 16 samples and publishes their mean; INFO adds up the threads' means.

use std::sync::atomic::{AtomicU64, Ordering};

use super::ThreadStats;

/// Redis's `STATS_METRIC_SAMPLES`.
const SAMPLES: usize = 16;

/// The metrics, in the order of [`Published::values`].
const METRICS: usize = 3;

/// What a thread publishes for INFO.
#[derive(Debug, Default)]
pub struct Published {
    /// Mean rates: commands per second, input bytes per second, output bytes per second.
    pub values: [AtomicU64; METRICS],
    /// The RESETSTAT epoch the values belong to: values of an older epoch read as 0.
    pub epoch: AtomicU64,
}

/// One metric's samples.
#[derive(Debug, Default, Clone, Copy)]
struct Metric {
    samples: [u64; SAMPLES],
    idx: usize,
    last_ms: u64,
    last_count: u64,
}

impl Metric {
    fn track(&mut self, now_ms: u64, reading: u64) {
        let t = now_ms.saturating_sub(self.last_ms);
        let ops = reading.saturating_sub(self.last_count);
        self.samples[self.idx] = ops.saturating_mul(1000).checked_div(t).unwrap_or(0);
        self.idx = (self.idx + 1) % SAMPLES;
        self.last_ms = now_ms;
        self.last_count = reading;
    }

    fn mean(&self) -> u64 {
        self.samples.iter().sum::<u64>() / SAMPLES as u64
    }
}

/// One thread's sampler, owned by its worker.
#[derive(Debug, Default)]
pub struct Rates {
    metrics: [Metric; METRICS],
    epoch: u64,
}

impl Rates {
    /// Takes one sample of this thread's counters at `now_ms` and publishes the means; starts
    /// over when RESETSTAT moved the stats to `epoch`.
    pub fn sample(&mut self, stats: &ThreadStats, epoch: u64, now_ms: u64) {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let readings = [
            l(&stats.commands),
            l(&stats.net_input_bytes),
            l(&stats.net_output_bytes),
        ];
        if epoch != self.epoch {
            // Redis's resetServerStats: empty samples, counting from the (zeroed) counters.
            self.epoch = epoch;
            for (m, r) in self.metrics.iter_mut().zip(readings) {
                *m = Metric {
                    last_ms: now_ms,
                    last_count: r,
                    ..Metric::default()
                };
            }
        } else {
            for (m, r) in self.metrics.iter_mut().zip(readings) {
                m.track(now_ms, r);
            }
        }
        let p = &stats.rates;
        for (v, m) in p.values.iter().zip(&self.metrics) {
            v.store(m.mean(), Ordering::Relaxed);
        }
        p.epoch.store(self.epoch, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_of_sixteen_samples() {
        let mut m = Metric::default();
        m.track(0, 0);
        // 16 samples of 100 commands per 100 ms: 1000/s.
        for i in 1..=16 {
            m.track(i * 100, i * 100);
        }
        assert_eq!(m.mean(), 1000);
        // One sample alone counts for a sixteenth, as in Redis.
        let mut m = Metric::default();
        m.track(100, 1600);
        assert_eq!(m.mean(), 1000);
    }
}
