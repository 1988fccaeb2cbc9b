//! Redis's `rand.c`: the 48-bit linear congruential generator of `lrand48`, kept by Redis
//! itself rather than taken from libc so that `math.random` gives the same sequence on every
//! platform. One generator serves the whole server, seeded as `srand48` leaves it unseeded.

const A: u64 = 0x5_DEEC_E66D;
const C: u64 = 0xB;
const MASK: u64 = (1 << 48) - 1;
/// The state before any seed: `0x1234ABCD330E`.
const INITIAL: u64 = 0x1234_ABCD_330E;

/// Redis's `REDIS_LRAND48_MAX`.
pub const LRAND48_MAX: i32 = i32::MAX;

/// The generator's state.
#[derive(Debug, Clone)]
pub struct Rand48 {
    x: u64,
}

impl Default for Rand48 {
    fn default() -> Self {
        Self { x: INITIAL }
    }
}

impl Rand48 {
    /// `redisSrand48`: the seed's 32 bits become the state's high bits, under the fixed low
    /// word `0x330E`.
    pub fn seed(&mut self, seed: i32) {
        self.x = ((seed as u32 as u64) << 16) | 0x330E;
    }

    /// `redisLrand48`: the next value in `[0, 2^31)`.
    pub fn next_i32(&mut self) -> i32 {
        self.x = A.wrapping_mul(self.x).wrapping_add(C) & MASK;
        (self.x >> 17) as i32
    }

    /// The number Redis's `math.random` starts from: `[0, 1)`.
    pub fn next_unit(&mut self) -> f64 {
        f64::from(self.next_i32() % LRAND48_MAX) / f64::from(LRAND48_MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_libc_lrand48() {
        // glibc's lrand48 after srand48(0), the same LCG and output bits.
        let mut r = Rand48::default();
        r.seed(0);
        let got: Vec<i32> = (0..3).map(|_| r.next_i32()).collect();
        assert_eq!(got, [366_850_414, 1_610_402_240, 206_956_554]);
    }

    #[test]
    fn unseeded_starts_where_libc_does() {
        let mut r = Rand48::default();
        let got: Vec<i32> = (0..3).map(|_| r.next_i32()).collect();
        // What a fresh redis-server 7.0.15 answers to three `math.random()` calls, times 2^31-1.
        assert_eq!(got, [851_401_618, 1_804_928_587, 758_783_491]);
    }
}
