//! Zipfian key choice: Gray et al.'s generator for the ranks, and a bijection that scatters the
//! ranks over the key space so that the hot keys are not neighbours (neighbours would share log
//! pages, index buckets and cache lines, and flatter the store).

use std::fmt;

/// Sums above this many terms use an Euler-Maclaurin tail instead of one `powf` per term.
const ZETA_EXACT_TERMS: u64 = 1 << 22;

/// Why a Zipf generator cannot be built.
#[derive(Debug, Clone, PartialEq)]
pub enum ZipfError {
    /// The key space is empty.
    NoItems,
    /// Gray et al.'s method needs 0 < theta < 1 (its exponent is 1 / (1 - theta)).
    Theta(f64),
}

impl fmt::Display for ZipfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoItems => write!(f, "a Zipf distribution needs at least one item"),
            Self::Theta(t) => write!(f, "zipf theta must be in (0, 1), not {t}"),
        }
    }
}

impl std::error::Error for ZipfError {}

/// Ranks in [0, n) with P(rank r) proportional to 1 / (r + 1)^theta, by the method of Gray,
/// Sundaresan, Englert, Baclawski and Weinberger, "Quickly generating billion-record synthetic
/// databases" (SIGMOD 1994), the generator YCSB uses. Ranks 0 and 1 get exactly their
/// probability; the rest follow a continuous approximation whose error shrinks with the rank.
#[derive(Debug, Clone)]
pub struct Zipf {
    n: u64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
    /// 1 + 0.5^theta: below it (times zetan), the sample is rank 1.
    rank1_bound: f64,
}

impl Zipf {
    /// A generator over `n` ranks with skew `theta` (0.99 is YCSB's default).
    pub fn new(n: u64, theta: f64) -> Result<Self, ZipfError> {
        if n == 0 {
            return Err(ZipfError::NoItems);
        }
        if !(theta > 0.0 && theta < 1.0) {
            return Err(ZipfError::Theta(theta));
        }
        let zetan = zeta(n, theta);
        let zeta2 = zeta(n.min(2), theta);
        // With two items or fewer the first two branches of `sample` cover every u; eta would be
        // 0 / 0.
        let eta = if n <= 2 {
            0.0
        } else {
            (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta2 / zetan)
        };
        Ok(Self {
            n,
            theta,
            alpha: 1.0 / (1.0 - theta),
            zetan,
            eta,
            rank1_bound: 1.0 + 0.5f64.powf(theta),
        })
    }

    /// The number of ranks.
    pub fn items(&self) -> u64 {
        self.n
    }

    /// The skew.
    pub fn theta(&self) -> f64 {
        self.theta
    }

    /// The exact probability of `rank` (0-based) under the Zipf law this approximates.
    pub fn probability(&self, rank: u64) -> f64 {
        1.0 / ((rank + 1) as f64).powf(self.theta) / self.zetan
    }

    /// The rank for a uniform `u` in [0, 1).
    pub fn sample(&self, u: f64) -> u64 {
        debug_assert!((0.0..1.0).contains(&u));
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < self.rank1_bound {
            return 1.min(self.n - 1);
        }
        let r = self.n as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha);
        // The float can round to n (or, for u near 1, beyond): clamp into range.
        (r as u64).min(self.n - 1)
    }
}

/// The generalized harmonic number H(n, theta) = sum over i in 1..=n of 1 / i^theta.
pub fn zeta(n: u64, theta: f64) -> f64 {
    zeta_with_cutoff(n, theta, ZETA_EXACT_TERMS)
}

/// [`zeta`] with the first `m` terms summed exactly and the rest by Euler-Maclaurin (integral,
/// end-point and first derivative corrections: the next term is below 1e-18 for m = 2^22).
fn zeta_with_cutoff(n: u64, theta: f64, m: u64) -> f64 {
    let exact = n.min(m);
    // Smallest terms first, for a little less rounding error.
    let mut sum: f64 = (1..=exact).rev().map(|i| (i as f64).powf(-theta)).sum();
    if n > m {
        let (a, b) = (m as f64, n as f64);
        let f = |x: f64| x.powf(-theta);
        let df = |x: f64| -theta * x.powf(-theta - 1.0);
        let integral = (b.powf(1.0 - theta) - a.powf(1.0 - theta)) / (1.0 - theta);
        sum += integral + (f(b) - f(a)) / 2.0 + (df(b) - df(a)) / 12.0;
    }
    sum
}

/// A bijection on [0, n): an invertible mix on the smallest power-of-two range that holds n,
/// cycle-walked until it lands below n (every step is a permutation of that range, so the walk
/// from a value below n returns below n, and distinct inputs give distinct outputs). Used to
/// turn Zipf ranks into key indexes so that rank r and r + 1 are far apart.
#[derive(Debug, Clone)]
pub struct Scramble {
    n: u64,
    bits: u32,
    mask: u64,
    seed: u64,
}

impl Scramble {
    /// A permutation of [0, n) chosen by `seed`.
    pub fn new(n: u64, seed: u64) -> Self {
        let bits = if n <= 1 {
            0
        } else {
            64 - (n - 1).leading_zeros()
        };
        let mask = if bits == 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        Self {
            n,
            bits,
            mask,
            seed,
        }
    }

    /// The image of `x` (which must be below n).
    pub fn apply(&self, x: u64) -> u64 {
        debug_assert!(x < self.n);
        if self.n <= 1 {
            return 0;
        }
        let mut y = self.mix(x);
        while y >= self.n {
            y = self.mix(y);
        }
        y
    }

    /// Each step is invertible on `bits`-bit values: xor with a constant, multiplication by an
    /// odd number modulo 2^bits, and xor with a right shift of itself.
    fn mix(&self, x: u64) -> u64 {
        let shift = self.bits.div_ceil(2).max(1);
        let mut y = (x ^ self.seed) & self.mask;
        y = y.wrapping_mul(0x9e37_79b9_7f4a_7c15) & self.mask;
        y ^= y >> shift;
        y = y.wrapping_mul(0xbf58_476d_1ce4_e5b9) & self.mask;
        y ^= y >> shift;
        y = y.wrapping_mul(0x94d0_49bb_1331_11eb) & self.mask;
        y ^ (y >> shift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::rng::SplitMix64;

    fn frequencies(z: &Zipf, samples: u64, seed: u64) -> Vec<u64> {
        let mut rng = SplitMix64::new(seed);
        let mut counts = vec![0u64; z.items() as usize];
        for _ in 0..samples {
            counts[z.sample(rng.next_f64()) as usize] += 1;
        }
        counts
    }

    /// `observed` out of `samples` is within `sigmas` standard deviations of probability `p`.
    fn assert_close(observed: u64, samples: u64, p: f64, sigmas: f64, what: &str) {
        let expected = p * samples as f64;
        let sd = (samples as f64 * p * (1.0 - p)).sqrt();
        let diff = (observed as f64 - expected).abs();
        assert!(
            diff <= sigmas * sd,
            "{what}: observed {observed}, expected {expected:.0} +- {:.0}",
            sigmas * sd
        );
    }

    #[test]
    fn rank_one_and_two_frequencies_match_theory() {
        for &(n, theta) in &[(1000u64, 0.99), (100_000, 0.99), (1000, 0.5), (10, 0.2)] {
            let z = Zipf::new(n, theta).unwrap();
            let samples = 2_000_000;
            let counts = frequencies(&z, samples, n ^ 0x5eed);
            assert_close(counts[0], samples, z.probability(0), 5.0, "rank 1");
            assert_close(counts[1], samples, z.probability(1), 5.0, "rank 2");
            // YCSB's theta 0.99 over 1000 items: the top item takes about 13%.
            if n == 1000 && theta == 0.99 {
                let share = counts[0] as f64 / samples as f64;
                assert!((0.12..0.14).contains(&share), "{share}");
            }
        }
    }

    #[test]
    fn head_and_tail_shares_follow_the_law() {
        // Gray's method approximates ranks beyond 2; the share of the top 1% of ranks must
        // still be within a few percent of the exact law.
        let n = 10_000;
        let z = Zipf::new(n, 0.99).unwrap();
        let samples = 2_000_000;
        let counts = frequencies(&z, samples, 3);
        let top = n / 100;
        let observed: u64 = counts[..top as usize].iter().sum();
        let expected: f64 = (0..top).map(|r| z.probability(r)).sum::<f64>() * samples as f64;
        let rel = (observed as f64 - expected).abs() / expected;
        assert!(
            rel < 0.03,
            "top 1%: observed {observed}, expected {expected:.0}"
        );
        // The last rank is reachable.
        assert!(counts[n as usize - 1] > 0);
    }

    #[test]
    fn samples_stay_in_range_at_the_edges() {
        for n in [1u64, 2, 3, 17] {
            let z = Zipf::new(n, 0.99).unwrap();
            for u in [0.0, 0.25, 0.5, 0.999_999, 1.0 - f64::EPSILON] {
                assert!(z.sample(u) < n, "n {n} u {u}");
            }
        }
        let z = Zipf::new(1, 0.5).unwrap();
        assert_eq!(z.sample(0.7), 0);
    }

    #[test]
    fn rejects_bad_parameters() {
        assert_eq!(Zipf::new(0, 0.5).unwrap_err(), ZipfError::NoItems);
        assert!(matches!(Zipf::new(10, 1.0), Err(ZipfError::Theta(_))));
        assert!(matches!(Zipf::new(10, 0.0), Err(ZipfError::Theta(_))));
        assert!(matches!(Zipf::new(10, f64::NAN), Err(ZipfError::Theta(_))));
    }

    #[test]
    fn zeta_tail_matches_the_exact_sum() {
        for theta in [0.5, 0.99] {
            let exact = zeta_with_cutoff(1_000_000, theta, u64::MAX);
            let approx = zeta_with_cutoff(1_000_000, theta, 1000);
            assert!((exact - approx).abs() / exact < 1e-12, "{exact} {approx}");
        }
        assert!((zeta(2, 1.0 - 1e-9) - 1.5).abs() < 1e-6);
    }

    #[test]
    fn scramble_is_a_permutation_that_separates_neighbours() {
        for n in [1u64, 2, 3, 1000, 1024, 1025, 65_537] {
            let s = Scramble::new(n, 42);
            let mut seen = vec![false; n as usize];
            for x in 0..n {
                let y = s.apply(x);
                assert!(y < n);
                assert!(!seen[y as usize], "n {n}: {y} twice");
                seen[y as usize] = true;
            }
        }
        let s = Scramble::new(1_000_000, 42);
        let adjacent = (0..100)
            .filter(|&r| s.apply(r).abs_diff(s.apply(r + 1)) < 16)
            .count();
        assert!(
            adjacent < 5,
            "{adjacent} of the top 100 ranks stay next to each other"
        );
    }
}
