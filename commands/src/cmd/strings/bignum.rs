//! A minimal unsigned big integer for INCRBYFLOAT's exact decimal/binary conversions.

use std::cmp::Ordering;

/// A minimal unsigned big integer (little-endian 64-bit limbs), enough for exact conversions.
#[derive(Debug, Clone)]
pub(super) struct Big(Vec<u64>);

impl Big {
    pub(super) fn zero() -> Self {
        Big(Vec::new())
    }

    pub(super) fn from_u64(v: u64) -> Self {
        let mut b = Big(vec![v]);
        b.trim();
        b
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    pub(super) fn bit_len(&self) -> usize {
        match self.0.last() {
            None => 0,
            Some(&top) => self.0.len() * 64 - top.leading_zeros() as usize,
        }
    }

    pub(super) fn mul_small(&mut self, k: u64) {
        let mut carry = 0u128;
        for limb in &mut self.0 {
            let v = u128::from(*limb) * u128::from(k) + carry;
            *limb = v as u64;
            carry = v >> 64;
        }
        if carry != 0 {
            self.0.push(carry as u64);
        }
        self.trim();
    }

    pub(super) fn add_small(&mut self, k: u64) {
        let mut carry = k;
        for limb in &mut self.0 {
            if carry == 0 {
                return;
            }
            let (v, o) = limb.overflowing_add(carry);
            *limb = v;
            carry = u64::from(o);
        }
        if carry != 0 {
            self.0.push(carry);
        }
    }

    pub(super) fn mul_pow10(&mut self, mut k: u32) {
        while k >= 19 {
            self.mul_small(10u64.pow(19));
            k -= 19;
        }
        if k > 0 {
            self.mul_small(10u64.pow(k));
        }
    }

    pub(super) fn shl(&mut self, bits: usize) {
        if self.0.is_empty() {
            return;
        }
        let (limbs, rem) = (bits / 64, bits % 64);
        if rem != 0 {
            let mut carry = 0u64;
            for limb in &mut self.0 {
                let v = *limb;
                *limb = (v << rem) | carry;
                carry = v >> (64 - rem);
            }
            if carry != 0 {
                self.0.push(carry);
            }
        }
        if limbs != 0 {
            self.0.splice(0..0, std::iter::repeat_n(0, limbs));
        }
    }

    fn shr1(&mut self) {
        let mut carry = 0u64;
        for limb in self.0.iter_mut().rev() {
            let v = *limb;
            *limb = (v >> 1) | (carry << 63);
            carry = v & 1;
        }
        self.trim();
    }

    fn cmp(&self, other: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }

    /// `self -= other`; requires `self >= other`.
    fn sub(&mut self, other: &Big) {
        let mut borrow = false;
        for (i, limb) in self.0.iter_mut().enumerate() {
            let o = other.0.get(i).copied().unwrap_or(0);
            let (v, b1) = limb.overflowing_sub(o);
            let (v, b2) = v.overflowing_sub(u64::from(borrow));
            *limb = v;
            borrow = b1 || b2;
        }
        self.trim();
    }

    pub(super) fn low_u128(&self) -> u128 {
        let lo = self.0.first().copied().unwrap_or(0);
        let hi = self.0.get(1).copied().unwrap_or(0);
        u128::from(lo) | (u128::from(hi) << 64)
    }

    /// `(self >> drop) as u128` and whether any dropped bit was set; `self >> drop` must fit.
    pub(super) fn top_bits(&self, drop: usize) -> (u128, bool) {
        let (limbs, rem) = (drop / 64, drop % 64);
        let sticky = self.0[..limbs].iter().any(|&l| l != 0)
            || (rem != 0 && self.0[limbs] & ((1u64 << rem) - 1) != 0);
        let word = |i: usize| u128::from(self.0.get(i).copied().unwrap_or(0));
        let mut v = word(limbs) >> rem;
        v |= word(limbs + 1) << (64 - rem);
        if rem != 0 {
            v |= word(limbs + 2) << (128 - rem);
        }
        (v, sticky)
    }

    /// Quotient (which must fit in 128 bits) and whether the remainder is nonzero.
    pub(super) fn div_small_quotient(&self, m: &Big) -> (u128, bool) {
        let mut r = self.clone();
        let t = self.bit_len().saturating_sub(m.bit_len());
        let mut ms = m.clone();
        ms.shl(t);
        let mut q = 0u128;
        for i in (0..=t).rev() {
            if r.cmp(&ms) != Ordering::Less {
                r.sub(&ms);
                q |= 1u128 << i;
            }
            ms.shr1();
        }
        (q, !r.0.is_empty())
    }

    pub(super) fn write_decimal(&self, out: &mut Vec<u8>) {
        if self.0.is_empty() {
            out.push(b'0');
            return;
        }
        const CHUNK: u64 = 10_000_000_000_000_000_000; // 10^19
        let mut n = self.0.clone();
        let mut chunks = Vec::new();
        while !n.is_empty() {
            let mut rem = 0u128;
            for limb in n.iter_mut().rev() {
                let cur = (rem << 64) | u128::from(*limb);
                *limb = (cur / u128::from(CHUNK)) as u64;
                rem = cur % u128::from(CHUNK);
            }
            while n.last() == Some(&0) {
                n.pop();
            }
            chunks.push(rem as u64);
        }
        let mut iter = chunks.iter().rev();
        if let Some(first) = iter.next() {
            out.extend_from_slice(first.to_string().as_bytes());
        }
        for c in iter {
            out.extend_from_slice(format!("{c:019}").as_bytes());
        }
    }
}
