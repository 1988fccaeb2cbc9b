//! The clock that times commands for INFO commandstats: the time-stamp counter on x86_64 (one
//! `rdtsc`, about 10 ns here, against about 25 ns for `Instant::now` through the vDSO), and
//! `Instant` elsewhere or where the TSC is not invariant.
//!
//! There is no start-up calibration loop: the clock records an (`Instant`, ticks) anchor when
//! the server starts, and converts ticks to time by the ratio of ticks to nanoseconds elapsed
//! since then, measured when INFO asks. That ratio gets more exact the longer the server runs
//! and costs nothing on the hot path.

use std::sync::OnceLock;
use std::time::Instant;

/// What [`Clock::now`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The invariant time-stamp counter.
    Tsc,
    /// Nanoseconds since the anchor, from `Instant`.
    Instant,
}

/// A cheap monotonic tick counter, and how to turn ticks into microseconds.
#[derive(Debug)]
pub struct Clock {
    source: Source,
    anchor: Instant,
    anchor_ticks: u64,
}

impl Clock {
    /// The process's clock (the source is chosen once).
    pub fn get() -> &'static Clock {
        static CLOCK: OnceLock<Clock> = OnceLock::new();
        CLOCK.get_or_init(|| {
            let source = if invariant_tsc() {
                Source::Tsc
            } else {
                Source::Instant
            };
            let anchor = Instant::now();
            let mut c = Clock {
                source,
                anchor,
                anchor_ticks: 0,
            };
            c.anchor_ticks = c.now();
            c
        })
    }

    /// The current tick count. Only differences taken on one thread are meaningful.
    #[inline]
    pub fn now(&self) -> u64 {
        match self.source {
            Source::Tsc => tsc(),
            Source::Instant => self.anchor.elapsed().as_nanos() as u64,
        }
    }

    /// Ticks per microsecond, measured over the time since the anchor (a fixed 1000 for the
    /// `Instant` source, whose ticks are nanoseconds).
    pub fn ticks_per_us(&self) -> f64 {
        match self.source {
            Source::Instant => 1000.0,
            Source::Tsc => {
                let ns = self.anchor.elapsed().as_nanos() as f64;
                let ticks = tsc().wrapping_sub(self.anchor_ticks) as f64;
                if ns < 1000.0 || ticks <= 0.0 {
                    // Too early to tell: assume a 1 GHz counter rather than divide by nothing.
                    1000.0
                } else {
                    ticks * 1000.0 / ns
                }
            }
        }
    }

    /// Whether the clock uses the time-stamp counter (for the report in the log).
    pub fn is_tsc(&self) -> bool {
        self.source == Source::Tsc
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn tsc() -> u64 {
    // SAFETY: `rdtsc` has no preconditions and is available on every x86_64 CPU.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn tsc() -> u64 {
    0
}

/// Whether the CPU says its TSC runs at a constant rate in every power state (CPUID leaf
/// 0x8000_0007, EDX bit 8), so that ticks measure time.
#[cfg(target_arch = "x86_64")]
fn invariant_tsc() -> bool {
    use core::arch::x86_64::__cpuid;
    // Leaf 0x8000_0000 reports the highest extended leaf, checked before 0x8000_0007 is read.
    let max = __cpuid(0x8000_0000).eax;
    if max < 0x8000_0007 {
        return false;
    }
    let edx = __cpuid(0x8000_0007).edx;
    edx & (1 << 8) != 0
}

#[cfg(not(target_arch = "x86_64"))]
fn invariant_tsc() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_advance_and_convert() {
        let c = Clock::get();
        let a = c.now();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let b = c.now();
        assert!(b > a);
        let us = (b - a) as f64 / c.ticks_per_us();
        assert!((15_000.0..2_000_000.0).contains(&us), "{us} µs");
    }
}
