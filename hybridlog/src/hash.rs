//! A keyed 64-bit hash in the wyhash family (Wang Yi's wyhash, final version), written here so
//! that the index owns its hash and its seed.
//!
//! The seed is drawn per store from std's `RandomState` (which the OS seeds), so that clients
//! cannot precompute keys that all land in one bucket (hash flooding).

use std::hash::BuildHasher;

const P0: u64 = 0xa076_1d64_78bd_642f;
const P1: u64 = 0xe703_7ed1_a0b4_28db;
const P2: u64 = 0x8ebc_6af0_9c88_c6e3;
const P3: u64 = 0x5899_65cc_7537_4cc3;

/// A keyed hasher; `Copy` so that sessions can keep their own.
#[derive(Debug, Clone, Copy)]
pub struct KeyHasher {
    seed: u64,
}

impl KeyHasher {
    /// A hasher with a fixed seed (tests and benchmarks want reproducible buckets).
    pub fn with_seed(seed: u64) -> Self {
        Self {
            seed: seed ^ mix(seed ^ P0, P1),
        }
    }

    /// A hasher with a seed drawn from the OS.
    pub fn random() -> Self {
        Self::with_seed(std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64))
    }

    /// Hashes `bytes`.
    pub fn hash(&self, bytes: &[u8]) -> u64 {
        let len = bytes.len();
        let mut seed = self.seed;
        let (a, b);
        if len <= 16 {
            if len >= 4 {
                let q = (len >> 3) << 2;
                a = (r4(bytes, 0) << 32) | r4(bytes, q);
                b = (r4(bytes, len - 4) << 32) | r4(bytes, len - 4 - q);
            } else if len > 0 {
                a = r3(bytes);
                b = 0;
            } else {
                a = 0;
                b = 0;
            }
        } else {
            let mut p = 0;
            let mut i = len;
            if i > 48 {
                let mut see1 = seed;
                let mut see2 = seed;
                while i > 48 {
                    seed = mix(r8(bytes, p) ^ P1, r8(bytes, p + 8) ^ seed);
                    see1 = mix(r8(bytes, p + 16) ^ P2, r8(bytes, p + 24) ^ see1);
                    see2 = mix(r8(bytes, p + 32) ^ P3, r8(bytes, p + 40) ^ see2);
                    p += 48;
                    i -= 48;
                }
                seed ^= see1 ^ see2;
            }
            while i > 16 {
                seed = mix(r8(bytes, p) ^ P1, r8(bytes, p + 8) ^ seed);
                p += 16;
                i -= 16;
            }
            a = r8(bytes, p + i - 16);
            b = r8(bytes, p + i - 8);
        }
        let (lo, hi) = mum(a ^ P1, b ^ seed);
        mix(lo ^ P0 ^ len as u64, hi ^ P1)
    }
}

#[inline]
fn mum(a: u64, b: u64) -> (u64, u64) {
    let r = u128::from(a) * u128::from(b);
    (r as u64, (r >> 64) as u64)
}

#[inline]
fn mix(a: u64, b: u64) -> u64 {
    let (lo, hi) = mum(a, b);
    lo ^ hi
}

#[inline]
fn r8(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

#[inline]
fn r4(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u64::from(u32::from_le_bytes(w))
}

#[inline]
fn r3(b: &[u8]) -> u64 {
    let k = b.len();
    (u64::from(b[0]) << 16) | (u64::from(b[k >> 1]) << 8) | u64::from(b[k - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_length_hashes_and_differs() {
        let h = KeyHasher::with_seed(7);
        let data: Vec<u8> = (0..200u32).map(|i| (i * 31 + 7) as u8).collect();
        let mut seen = std::collections::HashSet::new();
        for len in 0..=data.len() {
            assert!(
                seen.insert(h.hash(&data[..len])),
                "collision at length {len}"
            );
        }
    }

    #[test]
    fn seed_changes_hash_and_low_bits_spread() {
        let a = KeyHasher::with_seed(1);
        let b = KeyHasher::with_seed(2);
        assert_ne!(a.hash(b"key"), b.hash(b"key"));
        let mut buckets = [0u32; 16];
        for i in 0..16_000u32 {
            buckets[(a.hash(format!("key:{i}").as_bytes()) & 15) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&n| (800..1200).contains(&n)),
            "{buckets:?}"
        );
    }
}
