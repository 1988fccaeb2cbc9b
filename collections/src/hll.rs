//! HyperLogLog exactly as Redis 7.0's `hyperloglog.c`: the same `HYLL` byte strings (sparse and
//! dense encodings, cached cardinality), the same MurmurHash64A, register updates, sparse-to-dense
//! promotion and Ertl's improved estimator, so PFADD/PFCOUNT/PFMERGE give Redis's answers and
//! the bytes can be exchanged with Redis (they are plain strings: GET, SET, DUMP).

/// Registers: 2^14.
const P: u32 = 14;
const Q: u32 = 64 - P;
const REGISTERS: usize = 1 << P;
const P_MASK: u64 = (REGISTERS - 1) as u64;
const BITS: usize = 6;
const REGISTER_MAX: u8 = (1 << BITS) - 1;
/// Header: magic (4), encoding (1), unused (3), cached cardinality (8, little endian).
const HDR: usize = 16;
const DENSE_SIZE: usize = HDR + (REGISTERS * BITS).div_ceil(8);
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
const SPARSE_VAL_MAX_VALUE: u8 = 32;
const SPARSE_VAL_MAX_LEN: usize = 4;
const SPARSE_ZERO_MAX_LEN: usize = 64;
const SPARSE_XZERO_MAX_LEN: usize = 16384;
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// `hll-sparse-max-bytes`'s default.
pub const DEFAULT_SPARSE_MAX_BYTES: usize = 3000;

/// A string that is not a usable HyperLogLog.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HllError {
    /// Not an HLL at all (wrong magic, encoding or size): Redis's full reply text.
    #[error("WRONGTYPE Key is not a valid HyperLogLog string value.")]
    NotHll,
    /// An HLL whose sparse opcodes are corrupt: Redis's full reply text.
    #[error("INVALIDOBJ Corrupted HLL object detected")]
    Corrupt,
}

/// MurmurHash64A as Redis uses it (endian-neutral, little-endian reads).
pub fn murmur_hash64a(key: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for chunk in &mut chunks {
        let mut k = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// `hllPatLen`: the register an element hashes to and the length of its 000..1 pattern.
fn pattern(elem: &[u8]) -> (usize, u8) {
    let hash = murmur_hash64a(elem, 0xadc8_3b19);
    let index = (hash & P_MASK) as usize;
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

fn dense_get(regs: &[u8], i: usize) -> u8 {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let b0 = u16::from(regs.get(byte).copied().unwrap_or(0));
    let b1 = u16::from(regs.get(byte + 1).copied().unwrap_or(0));
    (((b0 >> fb) | (b1 << (8 - fb))) as u8) & REGISTER_MAX
}

fn dense_set(regs: &mut [u8], i: usize, v: u8) {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let v = u16::from(v);
    let max = u16::from(REGISTER_MAX);
    if let Some(b) = regs.get_mut(byte) {
        *b = ((u16::from(*b) & !(max << fb)) | (v << fb)) as u8;
    }
    if let Some(b) = regs.get_mut(byte + 1) {
        *b = ((u16::from(*b) & !(max >> (8 - fb))) | (v >> (8 - fb))) as u8;
    }
}

/// A sparse opcode: (bytes it takes, registers it covers, value). An XZERO cut off by the end
/// of the string (a SETRANGE/APPEND-damaged HLL) reads its second byte as 0, as Redis reads
/// the sds terminator there.
fn opcode(bytes: &[u8], p: usize) -> (usize, usize, u8) {
    let b = bytes[p];
    if b & 0xc0 == 0 {
        (1, usize::from(b & 0x3f) + 1, 0)
    } else if b & 0x80 != 0 {
        (1, usize::from(b & 0x3) + 1, ((b >> 2) & 0x1f) + 1)
    } else {
        let b1 = bytes.get(p + 1).copied().unwrap_or(0);
        (2, ((usize::from(b & 0x3f) << 8) | usize::from(b1)) + 1, 0)
    }
}

fn push_zeros(seq: &mut Vec<u8>, len: usize) {
    if len > SPARSE_ZERO_MAX_LEN {
        let l = len - 1;
        seq.push((l >> 8) as u8 | 0x40);
        seq.push((l & 0xff) as u8);
    } else {
        seq.push((len - 1) as u8);
    }
}

fn val_op(value: u8, len: usize) -> u8 {
    ((value - 1) << 2) | (len - 1) as u8 | 0x80
}

/// A HyperLogLog value: the exact bytes Redis stores in the string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hll {
    bytes: Vec<u8>,
}

impl Default for Hll {
    fn default() -> Self {
        Self::new()
    }
}

impl Hll {
    /// An empty HLL, as `createHLLObject` makes it: sparse, one XZERO opcode.
    pub fn new() -> Self {
        let mut bytes = vec![0u8; HDR];
        bytes[..4].copy_from_slice(b"HYLL");
        bytes[4] = SPARSE;
        let mut left = REGISTERS;
        while left > 0 {
            let run = left.min(SPARSE_XZERO_MAX_LEN);
            push_zeros(&mut bytes, run);
            left -= run;
        }
        Self { bytes }
    }

    /// Adopts a string value after Redis's `isHLLObjectOrReply` checks.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, HllError> {
        Self::check(&bytes)?;
        Ok(Self { bytes })
    }

    /// Redis's `isHLLObjectOrReply` on a string value: the magic, a known encoding, and the
    /// exact size of a dense one. (Sparse opcodes are only checked when they are walked.)
    pub fn check(bytes: &[u8]) -> Result<(), HllError> {
        if bytes.len() < HDR || &bytes[..4] != b"HYLL" || bytes[4] > SPARSE {
            return Err(HllError::NotHll);
        }
        if bytes[4] == DENSE && bytes.len() != DENSE_SIZE {
            return Err(HllError::NotHll);
        }
        Ok(())
    }

    /// The cached cardinality of a string that passed [`Hll::check`], if the cache is valid
    /// (PFCOUNT then answers without touching the value).
    pub fn cached_count(bytes: &[u8]) -> Option<u64> {
        let card: [u8; 8] = bytes.get(8..16)?.try_into().ok()?;
        (card[7] & 0x80 == 0).then(|| u64::from_le_bytes(card))
    }

    /// The string value.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The string value, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Whether the sparse encoding is in use.
    pub fn is_sparse(&self) -> bool {
        self.bytes[4] == SPARSE
    }

    /// Marks the cached cardinality stale (PFADD does it whenever it reports 1, including when
    /// it creates the key).
    pub fn invalidate_cache(&mut self) {
        self.bytes[15] |= 0x80;
    }

    /// PFADD of one element: true when a register changed (the cached count is invalidated).
    pub fn add(&mut self, elem: &[u8], sparse_max_bytes: usize) -> Result<bool, HllError> {
        let (index, count) = pattern(elem);
        let updated = self.set_register(index, count, sparse_max_bytes)?;
        if updated {
            self.invalidate_cache();
        }
        Ok(updated)
    }

    fn set_register(&mut self, i: usize, count: u8, max_bytes: usize) -> Result<bool, HllError> {
        if self.is_sparse() {
            self.sparse_set(i, count, max_bytes)
        } else {
            let regs = &mut self.bytes[HDR..];
            if count > dense_get(regs, i) {
                dense_set(regs, i, count);
                Ok(true)
            } else {
                Ok(false)
            }
        }
    }

    /// `hllSparseSet`: updates register `index` to `count` if greater, splitting and merging
    /// opcodes in place, promoting to dense when needed.
    fn sparse_set(&mut self, index: usize, count: u8, max_bytes: usize) -> Result<bool, HllError> {
        if count > SPARSE_VAL_MAX_VALUE {
            return self.promote(index, count);
        }
        let b = &self.bytes;
        let end = b.len();
        let (mut p, mut first, mut prev) = (HDR, 0usize, None);
        let mut op = (0, 0, 0);
        while p < end {
            op = opcode(b, p);
            if index < first + op.1 {
                break;
            }
            prev = Some(p);
            p += op.0;
            first += op.1;
        }
        let (oplen, span, value) = op;
        if span == 0 || p >= end || index >= first + span {
            return Err(HllError::Corrupt);
        }
        let is_val = b[p] & 0x80 != 0;
        if is_val && value >= count {
            return Ok(false);
        }
        if span == 1 && (is_val || oplen == 1) {
            // A VAL or ZERO opcode of one register: rewrite it in place.
            self.bytes[p] = val_op(count, 1);
        } else {
            let last = first + span - 1;
            let mut seq = Vec::with_capacity(5);
            if is_val {
                if index != first {
                    seq.push(val_op(value, index - first));
                }
                seq.push(val_op(count, 1));
                if index != last {
                    seq.push(val_op(value, last - index));
                }
            } else {
                if index != first {
                    push_zeros(&mut seq, index - first);
                }
                seq.push(val_op(count, 1));
                if index != last {
                    push_zeros(&mut seq, last - index);
                }
            }
            if seq.len() > oplen && end + seq.len() - oplen > max_bytes {
                return self.promote(index, count);
            }
            if p + oplen > end {
                // A cut-off XZERO (see `opcode`): Redis grows the string by the sequence's
                // length less the two bytes it takes the opcode for, so the last byte of the
                // sequence lands past the new end.
                seq.truncate(seq.len() - (p + oplen - end));
                self.bytes.truncate(p);
                self.bytes.extend_from_slice(&seq);
            } else {
                self.bytes.splice(p..p + oplen, seq);
            }
        }
        self.merge_adjacent(prev.unwrap_or(HDR));
        self.invalidate_cache();
        Ok(true)
    }

    /// Step 4 of `hllSparseSet`: merges up to five adjacent equal VAL opcodes from `p`.
    fn merge_adjacent(&mut self, mut p: usize) {
        let mut scan = 5;
        while p < self.bytes.len() && scan > 0 {
            scan -= 1;
            let b = self.bytes[p];
            if b & 0xc0 == 0x40 {
                p += 2;
                continue;
            } else if b & 0xc0 == 0 {
                p += 1;
                continue;
            }
            if let Some(&n) = self.bytes.get(p + 1)
                && n & 0x80 != 0
            {
                let (v1, v2) = (((b >> 2) & 0x1f) + 1, ((n >> 2) & 0x1f) + 1);
                let len = usize::from(b & 3) + usize::from(n & 3) + 2;
                if v1 == v2 && len <= SPARSE_VAL_MAX_LEN {
                    self.bytes[p + 1] = val_op(v1, len);
                    self.bytes.remove(p);
                    continue;
                }
            }
            p += 1;
        }
    }

    fn promote(&mut self, index: usize, count: u8) -> Result<bool, HllError> {
        self.densify()?;
        let regs = &mut self.bytes[HDR..];
        if count > dense_get(regs, index) {
            dense_set(regs, index, count);
        }
        Ok(true)
    }

    /// PFDEBUG TODENSE: converts a sparse HLL to the dense encoding; whether it was sparse.
    pub fn to_dense(&mut self) -> Result<bool, HllError> {
        let was = self.is_sparse();
        self.densify()?;
        Ok(was)
    }

    /// PFDEBUG GETREG: every register's value, after converting to the dense encoding (as
    /// Redis does).
    pub fn registers(&mut self) -> Result<Vec<u8>, HllError> {
        self.densify()?;
        let regs = &self.bytes[HDR..];
        Ok((0..REGISTERS).map(|i| dense_get(regs, i)).collect())
    }

    /// PFDEBUG DECODE: the sparse opcodes as Redis prints them (`z:len`, `Z:len`,
    /// `v:value,len`), `None` for a dense HLL.
    pub fn decode_sparse(&self) -> Option<String> {
        if !self.is_sparse() {
            return None;
        }
        let mut out = Vec::new();
        let mut p = HDR;
        while p < self.bytes.len() {
            let (size, len, value) = opcode(&self.bytes, p);
            out.push(match (size, value) {
                (2, _) => format!("Z:{len}"),
                (_, 0) => format!("z:{len}"),
                _ => format!("v:{value},{len}"),
            });
            p += size;
        }
        Some(out.join(" "))
    }

    /// PFSELFTEST: checks the dense register packing on every register, and that a sparse and
    /// a dense sketch fed the same elements agree and stay within the estimator's error bound
    /// as they grow. `Err` names the first failure.
    pub fn self_test() -> Result<(), String> {
        let mut regs = vec![0u8; DENSE_SIZE - HDR];
        let mut seed = 0x1234_5678_9abc_def0_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..100 {
            let values: Vec<u8> = (0..REGISTERS).map(|_| (next() & 63) as u8).collect();
            for (i, &v) in values.iter().enumerate() {
                dense_set(&mut regs, i, v);
            }
            if let Some(i) = (0..REGISTERS).find(|&i| dense_get(&regs, i) != values[i]) {
                return Err(format!("TESTFAILED Register error at {i}"));
            }
        }
        let mut sparse = Hll::new();
        let mut dense = Hll::new();
        dense.densify().map_err(|e| e.to_string())?;
        let relative_error = 1.04 / (REGISTERS as f64).sqrt();
        let mut checkpoint = 1u64;
        for j in 1..=100_000u64 {
            let elem = j.to_le_bytes();
            sparse
                .add(&elem, DEFAULT_SPARSE_MAX_BYTES)
                .map_err(|e| e.to_string())?;
            dense
                .add(&elem, DEFAULT_SPARSE_MAX_BYTES)
                .map_err(|e| e.to_string())?;
            if j != checkpoint {
                continue;
            }
            checkpoint *= 10;
            let (a, b) = (
                sparse.count().map_err(|e| e.to_string())?,
                dense.count().map_err(|e| e.to_string())?,
            );
            if a != b {
                return Err(format!(
                    "TESTFAILED Sparse and dense sketches disagree at {j}: {a} vs {b}"
                ));
            }
            // Redis's bound: 5 standard errors, and exact enough for tiny sets.
            let max = if j < 10 {
                1.0
            } else {
                relative_error * 5.0 * j as f64
            };
            if (b as f64 - j as f64).abs() > max {
                return Err(format!(
                    "TESTFAILED Too big error. card:{j} abserr:{}",
                    (b as f64 - j as f64).abs()
                ));
            }
        }
        Ok(())
    }

    /// `hllSparseToDense`; a no-op on a dense HLL.
    fn densify(&mut self) -> Result<(), HllError> {
        if !self.is_sparse() {
            return Ok(());
        }
        let mut dense = vec![0u8; DENSE_SIZE];
        dense[..HDR].copy_from_slice(&self.bytes[..HDR]);
        dense[4] = DENSE;
        let mut idx = 0;
        self.for_each_run(|start, len, v| {
            for i in start..start + len {
                dense_set(&mut dense[HDR..], i, v);
            }
        })
        .map(|n| idx = n)?;
        debug_assert_eq!(idx, REGISTERS);
        self.bytes = dense;
        Ok(())
    }

    /// Calls `f(first, len, value)` for each VAL run of a sparse HLL; checks the opcodes cover
    /// exactly the registers.
    fn for_each_run(&self, f: impl FnMut(usize, usize, u8)) -> Result<usize, HllError> {
        sparse_runs(&self.bytes, f)
    }

    /// `hllMerge`: `max[i] = max(max[i], register i)`.
    fn merge_into(&self, max: &mut [u8]) -> Result<(), HllError> {
        merge_bytes(&self.bytes, max)
    }

    /// PFCOUNT of one key: the cached cardinality when valid, else computed and cached (which
    /// modifies the string, as in Redis).
    pub fn count(&mut self) -> Result<u64, HllError> {
        if self.bytes[15] & 0x80 == 0 {
            let card: [u8; 8] = self.bytes[8..16].try_into().unwrap_or([0; 8]);
            return Ok(u64::from_le_bytes(card));
        }
        let mut max = vec![0u8; REGISTERS];
        self.merge_into(&mut max)?;
        let card = estimate(&max);
        self.bytes[8..16].copy_from_slice(&card.to_le_bytes());
        Ok(card)
    }

    /// PFCOUNT of several keys: the cardinality of their union (missing keys are `None`).
    pub fn count_union(hlls: &[Option<&Hll>]) -> Result<u64, HllError> {
        let mut max = vec![0u8; REGISTERS];
        for h in hlls.iter().flatten() {
            h.merge_into(&mut max)?;
        }
        Ok(estimate(&max))
    }

    /// PFMERGE into `self` (the destination, `Hll::new()` when the key is missing) of the
    /// sources: the registerwise maximum, dense if any input was dense.
    pub fn merge(
        &mut self,
        sources: &[Option<&Hll>],
        sparse_max_bytes: usize,
    ) -> Result<(), HllError> {
        let mut max = vec![0u8; REGISTERS];
        let mut use_dense = !self.is_sparse();
        self.merge_into(&mut max)?;
        for h in sources.iter().flatten() {
            use_dense |= !h.is_sparse();
            h.merge_into(&mut max)?;
        }
        if use_dense {
            self.densify()?;
        }
        for (i, &m) in max.iter().enumerate() {
            if m != 0 {
                self.set_register(i, m, sparse_max_bytes)?;
            }
        }
        self.invalidate_cache();
        Ok(())
    }
}

/// Calls `f(first, len, value)` for each VAL run of the sparse HLL string `bytes`; checks the
/// opcodes cover exactly the registers.
fn sparse_runs(bytes: &[u8], mut f: impl FnMut(usize, usize, u8)) -> Result<usize, HllError> {
    let (mut p, mut idx) = (HDR, 0usize);
    while p < bytes.len() {
        let (oplen, span, v) = opcode(bytes, p);
        if v != 0 {
            if idx + span > REGISTERS {
                return Err(HllError::Corrupt);
            }
            f(idx, span, v);
        }
        idx += span;
        p += oplen;
    }
    if idx == REGISTERS {
        Ok(idx)
    } else {
        Err(HllError::Corrupt)
    }
}

/// `hllMerge` of a string that passed [`Hll::check`]: `max[i] = max(max[i], register i)`.
fn merge_bytes(bytes: &[u8], max: &mut [u8]) -> Result<(), HllError> {
    if bytes.get(4) == Some(&SPARSE) {
        sparse_runs(bytes, |start, len, v| {
            if let Some(run) = max.get_mut(start..start + len) {
                for m in run {
                    *m = (*m).max(v);
                }
            }
        })?;
    } else {
        let regs = bytes.get(HDR..).ok_or(HllError::NotHll)?;
        for (i, m) in max.iter_mut().enumerate() {
            *m = (*m).max(dense_get(regs, i));
        }
    }
    Ok(())
}

/// The registerwise maximum of several HLL strings: PFCOUNT of several keys counts it, PFMERGE
/// writes it into the destination. Strings are merged straight from the store's bytes, without
/// copying them into an [`Hll`] first.
#[derive(Clone, Debug)]
pub struct HllUnion {
    max: Vec<u8>,
    dense: bool,
}

impl Default for HllUnion {
    fn default() -> Self {
        Self::new()
    }
}

impl HllUnion {
    /// No registers set yet.
    pub fn new() -> Self {
        Self {
            max: vec![0; REGISTERS],
            dense: false,
        }
    }

    /// Merges one string value, checking it as Redis does (`isHLLObjectOrReply`, then
    /// `hllMerge`'s opcode walk).
    pub fn merge(&mut self, bytes: &[u8]) -> Result<(), HllError> {
        Hll::check(bytes)?;
        self.dense |= bytes[4] == DENSE;
        merge_bytes(bytes, &mut self.max)
    }

    /// Whether a dense HLL was merged (PFMERGE then makes the destination dense).
    pub fn saw_dense(&self) -> bool {
        self.dense
    }

    /// The cardinality estimate of the union.
    pub fn count(&self) -> u64 {
        estimate(&self.max)
    }

    /// PFMERGE's write: `dest` (the destination's value, already merged into `self`, or
    /// `Hll::new()` for a missing key) gets every non-zero register, dense if any merged input
    /// was dense; its cached count is invalidated.
    pub fn store_into(&self, dest: &mut Hll, sparse_max_bytes: usize) -> Result<(), HllError> {
        if self.dense {
            dest.densify()?;
        }
        for (i, &m) in self.max.iter().enumerate() {
            if m != 0 {
                dest.set_register(i, m, sparse_max_bytes)?;
            }
        }
        dest.invalidate_cache();
        Ok(())
    }
}

/// `hllCount` from the register values: Ertl's improved estimator over the histogram.
fn estimate(registers: &[u8]) -> u64 {
    let mut histo = [0u32; 64];
    for &r in registers {
        histo[usize::from(r & 63)] += 1;
    }
    let m = REGISTERS as f64;
    let mut z = m * tau((m - f64::from(histo[Q as usize + 1])) / m);
    for j in (1..=Q as usize).rev() {
        z += f64::from(histo[j]);
        z *= 0.5;
    }
    z += m * sigma(f64::from(histo[0]) / m);
    (ALPHA_INF * m * m / z).round() as u64
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let prev = z;
        z += x * y;
        y += y;
        if prev == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let prev = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if prev == z {
            return z / 3.0;
        }
    }
}

#[cfg(test)]
#[path = "hll_tests.rs"]
mod tests;
