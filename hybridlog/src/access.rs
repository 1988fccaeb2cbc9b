//! Access tracking for `maxmemory` eviction and OBJECT IDLETIME/FREQ, as Redis keeps it in an
//! object's 24-bit `lru` field, here in the 22 access bits of a record's meta word:
//!
//! - LRU policies: the clock in seconds when the key was last accessed (wraps every 48 days;
//!   Redis's wraps every 194).
//! - LFU policies: Redis's logarithmic access counter (8 bits, `lfu-log-factor`) and the
//!   minute it was last decremented (14 bits: wraps every 11 days), halved by `lfu-decay-time`.
//!
//! Readers touch the record they found (one compare-and-swap, and only when the bits change:
//! at most once a second for LRU, rarely for LFU once a key is hot); a new record starts at
//! "now" (LRU) or at Redis's initial counter of 5 (LFU).

use std::cell::Cell;

use crate::record::{ACCESS_BITS, ACCESS_MASK, Rec};
use crate::sync::Ordering;
use crate::sync::raw::AtomicU64;

/// LFU: a new key's counter (Redis's `LFU_INIT_VAL`).
pub const LFU_INIT: u32 = 5;
const LFU_COUNTER_BITS: u32 = 8;
const LFU_COUNTER_MASK: u32 = (1 << LFU_COUNTER_BITS) - 1;
const LFU_MINUTES_MASK: u64 = (1 << (ACCESS_BITS - LFU_COUNTER_BITS)) - 1;

/// The store's access-tracking settings and clock.
#[derive(Debug)]
pub struct Access {
    /// Seconds since the Unix epoch, as of the last `set_clock`.
    clock: AtomicU64,
    /// 0: LRU; else LFU with `(log_factor << 32) | decay_minutes`.
    lfu: AtomicU64,
}

impl Default for Access {
    fn default() -> Self {
        Access {
            clock: AtomicU64::new(unix_s()),
            lfu: AtomicU64::new(0),
        }
    }
}

fn unix_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

thread_local! {
    static RNG: Cell<u64> = const { Cell::new(0x9E37_79B9_7F4A_7C15) };
}

/// A uniform draw in [0, 1) from this thread's xorshift generator.
fn unit() -> f64 {
    RNG.with(|r| {
        let mut x = r.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

impl Access {
    /// Advances the clock (callers pass their per-batch time; the word is written only when
    /// the second changes).
    #[inline]
    pub fn set_clock(&self, now_ms: u64) {
        let s = now_ms / 1000;
        if self.clock.load(Ordering::Relaxed) != s {
            self.clock.store(s, Ordering::Relaxed);
        }
    }

    /// Tracks frequency (LFU) with Redis's `lfu-log-factor` and `lfu-decay-time` (minutes),
    /// or recency (LRU) when `lfu` is `None`.
    pub fn set_policy(&self, lfu: Option<(u32, u32)>) {
        let v = lfu.map_or(0, |(factor, decay)| {
            (1 << 63) | u64::from(factor) << 32 | u64::from(decay)
        });
        self.lfu.store(v, Ordering::Relaxed);
    }

    /// Whether LFU is tracked.
    pub fn is_lfu(&self) -> bool {
        self.lfu.load(Ordering::Relaxed) != 0
    }

    fn now_s(&self) -> u64 {
        self.clock.load(Ordering::Relaxed)
    }

    /// The access bits of a new record.
    pub(crate) fn initial(&self) -> u32 {
        if self.is_lfu() {
            self.lfu_bits(self.minutes(), LFU_INIT)
        } else {
            (self.now_s() & ACCESS_MASK) as u32
        }
    }

    /// Records an access to `rec`.
    #[inline]
    pub(crate) fn touch(&self, rec: Rec<'_>) {
        let lfu = self.lfu.load(Ordering::Relaxed);
        if lfu == 0 {
            let now = (self.now_s() & ACCESS_MASK) as u32;
            rec.touch(|_| now);
        } else {
            let factor = ((lfu >> 32) & 0x7FFF_FFFF) as u32;
            let decay = lfu as u32;
            rec.touch(|old| {
                let counter = self.decayed(old, decay);
                self.lfu_bits(self.minutes(), log_incr(counter, factor))
            });
        }
    }

    fn minutes(&self) -> u64 {
        (self.now_s() / 60) & LFU_MINUTES_MASK
    }

    fn lfu_bits(&self, minutes: u64, counter: u32) -> u32 {
        ((minutes as u32) << LFU_COUNTER_BITS) | (counter & LFU_COUNTER_MASK)
    }

    /// Redis's `LFUDecrAndReturn`: the counter less one per `decay` minutes since it was last
    /// decremented.
    fn decayed(&self, bits: u32, decay: u32) -> u32 {
        let counter = bits & LFU_COUNTER_MASK;
        let last = u64::from(bits >> LFU_COUNTER_BITS);
        let now = self.minutes();
        let elapsed = if now >= last {
            now - last
        } else {
            LFU_MINUTES_MASK + 1 - last + now
        };
        let periods = if decay == 0 {
            0
        } else {
            elapsed / u64::from(decay)
        };
        counter.saturating_sub(periods.min(255) as u32)
    }

    /// LRU bits for a key last accessed `idle` seconds ago (RESTORE IDLETIME).
    pub fn bits_for_idle(&self, idle: u64) -> u32 {
        (self.now_s().wrapping_sub(idle) & ACCESS_MASK) as u32
    }

    /// LFU bits for a counter of `freq`, decremented now (RESTORE FREQ).
    pub fn bits_for_freq(&self, freq: u8) -> u32 {
        self.lfu_bits(self.minutes(), u32::from(freq))
    }

    /// OBJECT IDLETIME: seconds since the last access (LRU bits).
    pub fn idle_seconds(&self, bits: u32) -> u64 {
        let now = self.now_s() & ACCESS_MASK;
        let then = u64::from(bits);
        if now >= then {
            now - then
        } else {
            ACCESS_MASK + 1 - then + now
        }
    }

    /// OBJECT FREQ: the decayed LFU counter.
    pub fn frequency(&self, bits: u32) -> u32 {
        let lfu = self.lfu.load(Ordering::Relaxed);
        self.decayed(bits, lfu as u32)
    }

    /// How evictable a record is under the current tracking: larger evicts first (idle
    /// seconds for LRU, 255 minus the counter for LFU), as Redis's eviction pool ranks.
    pub(crate) fn evictability(&self, bits: u32) -> u64 {
        if self.is_lfu() {
            255 - u64::from(self.frequency(bits))
        } else {
            self.idle_seconds(bits)
        }
    }
}

/// Redis's `LFULogIncr`: increments with probability 1 / ((counter - 5) * factor + 1).
fn log_incr(counter: u32, factor: u32) -> u32 {
    if counter >= 255 {
        return 255;
    }
    let base = counter.saturating_sub(LFU_INIT);
    let p = 1.0 / (f64::from(base) * f64::from(factor) + 1.0);
    if unit() < p { counter + 1 } else { counter }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lfu_counter_grows_logarithmically_and_decays() {
        let mut c = LFU_INIT;
        for _ in 0..1000 {
            c = log_incr(c, 10);
        }
        // Redis's table: ~1K hits at factor 10 give a counter of about 10-18.
        assert!((8..=25).contains(&c), "{c}");
        let a = Access::default();
        a.set_policy(Some((10, 1)));
        let now = a.minutes();
        assert_eq!(a.decayed(a.lfu_bits(now, 40), 1), 40);
        assert_eq!(
            a.decayed(
                a.lfu_bits((now + LFU_MINUTES_MASK - 2) & LFU_MINUTES_MASK, 40),
                1
            ),
            37
        );
    }

    #[test]
    fn idle_time_wraps() {
        let a = Access::default();
        a.set_clock(1000 * 1000);
        assert_eq!(a.idle_seconds(990), 10);
        a.set_clock((ACCESS_MASK + 5) * 1000);
        assert_eq!(a.idle_seconds(ACCESS_MASK as u32), 5);
    }
}
