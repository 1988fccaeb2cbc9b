//! Test helpers shared by the disk layer's unit tests.

use crate::log::BEGIN_ADDRESS;
use crate::record::{F_VALID, HEADER_BYTES, Shape};

/// A page image with records of the given value lengths (key 8 bytes), as the log lays
/// them out: headers with the VALID flag and the sizes word.
pub(crate) fn page_image(address: u64, bytes: usize, values: &[usize]) -> (Vec<u8>, Vec<u64>) {
    let mut data = vec![0u8; bytes];
    let mut at = BEGIN_ADDRESS.saturating_sub(address) as usize;
    let mut starts = Vec::new();
    for &v in values {
        let shape = Shape::new(8, v, false, 1 << 20);
        if at + shape.size > bytes {
            break;
        }
        data[at..at + 8].copy_from_slice(&(F_VALID | 0x1234).to_le_bytes());
        let sizes = (8u64 << 32) | shape.value_cap as u64;
        data[at + 16..at + 24].copy_from_slice(&sizes.to_le_bytes());
        for (i, b) in data[at + HEADER_BYTES..at + shape.size]
            .iter_mut()
            .enumerate()
        {
            *b = (address as usize + at + i) as u8 ^ (i >> 8) as u8;
        }
        starts.push(address + at as u64);
        at += shape.size;
    }
    (data, starts)
}

/// A seeded xorshift generator: tests are reproducible without a dependency.
pub(crate) struct Rng(pub u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `0..n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
