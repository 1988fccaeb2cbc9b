//! Key names, values and the choice of the next key.

use std::fmt;

use super::rng::SplitMix64;
use super::zipf::{Scramble, Zipf, ZipfError};

/// Every key is this prefix and [`KEY_DIGITS`] decimal digits.
pub const KEY_PREFIX: &[u8] = b"key:";
/// Digits of the key index (zero-padded, so all keys have the same length).
pub const KEY_DIGITS: usize = 10;
/// The length of every key.
pub const KEY_LEN: usize = KEY_PREFIX.len() + KEY_DIGITS;
/// The most keys the naming scheme can hold.
pub const MAX_KEYS: u64 = 10_000_000_000;

/// Appends the name of key `index` (`key:0000000042`).
pub fn write_key(out: &mut Vec<u8>, index: u64) {
    assert!(index < MAX_KEYS, "key index {index} out of range");
    out.extend_from_slice(KEY_PREFIX);
    let mut digits = [b'0'; KEY_DIGITS];
    let mut rest = index;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    out.extend_from_slice(&digits);
}

/// Appends the value of key `index`, `len` bytes: its ten-digit index and a `:`, repeated and
/// cut to length. A reply can be checked against it, and a value read back for the wrong key
/// (from the wrong disk block, say) does not match.
pub fn write_value(out: &mut Vec<u8>, index: u64, len: usize) {
    let mut stamp = [b':'; KEY_DIGITS + 1];
    let mut rest = index;
    for d in stamp[..KEY_DIGITS].iter_mut().rev() {
        *d = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    let mut left = len;
    while left > 0 {
        let n = left.min(stamp.len());
        out.extend_from_slice(&stamp[..n]);
        left -= n;
    }
}

/// Whether `got` is the value [`write_value`] makes for key `index` and length `len`.
pub fn value_matches(got: &[u8], index: u64, len: usize, scratch: &mut Vec<u8>) -> bool {
    scratch.clear();
    write_value(scratch, index, len);
    got == scratch.as_slice()
}

/// How the next key is chosen: `uniform` or `zipf:<theta>`.
#[derive(Debug, Clone, PartialEq)]
pub enum Distribution {
    /// Every key equally likely.
    Uniform,
    /// Zipfian ranks with this skew, scattered over the keys.
    Zipf(f64),
}

impl std::str::FromStr for Distribution {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "uniform" {
            return Ok(Self::Uniform);
        }
        if let Some(theta) = s.strip_prefix("zipf:") {
            let t: f64 = theta
                .parse()
                .map_err(|_| format!("bad zipf theta '{theta}'"))?;
            if !(t > 0.0 && t < 1.0) {
                return Err(format!("zipf theta must be in (0, 1), not {t}"));
            }
            return Ok(Self::Zipf(t));
        }
        Err(format!(
            "key distribution '{s}': expected uniform or zipf:<theta>"
        ))
    }
}

impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Uniform => write!(f, "uniform"),
            Self::Zipf(t) => write!(f, "zipf:{t}"),
        }
    }
}

/// The key choice of a run, shared read-only by the clients (each brings its own generator).
#[derive(Debug, Clone)]
pub enum KeyChooser {
    /// Uniform over [0, n).
    Uniform(u64),
    /// Zipfian ranks mapped to key indexes by a fixed permutation.
    Zipf(Zipf, Scramble),
}

/// The permutation of ranks is the same in every run, so the hot keys of two runs (tiered and
/// in memory) are the same keys.
const SCRAMBLE_SEED: u64 = 0x0123_4567_89ab_cdef;

impl KeyChooser {
    /// A chooser over `keys` keys.
    pub fn new(dist: &Distribution, keys: u64) -> Result<Self, ZipfError> {
        Ok(match dist {
            Distribution::Uniform => {
                if keys == 0 {
                    return Err(ZipfError::NoItems);
                }
                Self::Uniform(keys)
            }
            Distribution::Zipf(theta) => {
                Self::Zipf(Zipf::new(keys, *theta)?, Scramble::new(keys, SCRAMBLE_SEED))
            }
        })
    }

    /// The next key index.
    pub fn next(&self, rng: &mut SplitMix64) -> u64 {
        match self {
            Self::Uniform(n) => rng.below(*n),
            Self::Zipf(z, s) => s.apply(z.sample(rng.next_f64())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_fixed_length() {
        let mut out = Vec::new();
        write_key(&mut out, 42);
        assert_eq!(out, b"key:0000000042");
        out.clear();
        write_key(&mut out, MAX_KEYS - 1);
        assert_eq!(out, b"key:9999999999");
        assert_eq!(out.len(), KEY_LEN);
    }

    #[test]
    fn values_are_stamped_with_their_key() {
        let mut v = Vec::new();
        write_value(&mut v, 7, 25);
        assert_eq!(v, b"0000000007:0000000007:000");
        let mut scratch = Vec::new();
        assert!(value_matches(&v, 7, 25, &mut scratch));
        assert!(!value_matches(&v, 8, 25, &mut scratch));
        assert!(!value_matches(&v[..24], 7, 25, &mut scratch));
        v.clear();
        write_value(&mut v, 1, 0);
        assert!(v.is_empty());
    }

    #[test]
    fn distribution_parses() {
        assert_eq!("uniform".parse::<Distribution>(), Ok(Distribution::Uniform));
        assert_eq!(
            "zipf:0.99".parse::<Distribution>(),
            Ok(Distribution::Zipf(0.99))
        );
        assert!("zipf:1".parse::<Distribution>().is_err());
        assert!("zipf:x".parse::<Distribution>().is_err());
        assert!("latest".parse::<Distribution>().is_err());
    }

    #[test]
    fn zipf_chooser_makes_scattered_hot_keys() {
        let c = KeyChooser::new(&Distribution::Zipf(0.99), 100_000).unwrap();
        let mut rng = SplitMix64::new(1);
        let mut counts = std::collections::HashMap::new();
        for _ in 0..100_000 {
            *counts.entry(c.next(&mut rng)).or_insert(0u32) += 1;
        }
        let (&hottest, &hits) = counts.iter().max_by_key(|&(_, &n)| n).unwrap();
        // Rank 1 of 100k at theta 0.99 is about 8% of the draws, and it is not key 0.
        assert!(hits > 6000, "{hits}");
        assert_ne!(hottest, 0);
    }
}
