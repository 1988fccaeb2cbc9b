//! LZF 3.6, as Redis bundles it (`src/lzf_c.c`, `src/lzf_d.c`, with `lzfP.h`'s settings: HLOG
//! 16, VERY_FAST, hash slots as offsets). The compressor is a literal port, so DUMP output is
//! byte-identical to Redis's for the same input; the decompressor checks every bound, as
//! CHECK_INPUT does.

const HLOG: u32 = 16;
const HSIZE: usize = 1 << HLOG;
const MAX_LIT: usize = 1 << 5;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);

#[inline]
fn frst(input: &[u8], p: usize) -> u32 {
    let a = u32::from(input.get(p).copied().unwrap_or(0));
    let b = u32::from(input.get(p + 1).copied().unwrap_or(0));
    (a << 8) | b
}

#[inline]
fn next(v: u32, input: &[u8], p: usize) -> u32 {
    (v << 8) | u32::from(input.get(p + 2).copied().unwrap_or(0))
}

/// The VERY_FAST hash: `((h >> (3*8 - HLOG)) - h*5) & (HSIZE - 1)` in 32-bit arithmetic.
#[inline]
fn idx(h: u32) -> usize {
    ((h >> (24 - HLOG)).wrapping_sub(h.wrapping_mul(5)) as usize) & (HSIZE - 1)
}

/// Writes `v` at `i` if it is inside `out` (the C code relies on a spare byte past `out_len`;
/// the buffer has it too, this only keeps a logic slip from panicking).
#[inline]
fn put(out: &mut [u8], i: usize, v: u8) {
    if let Some(b) = out.get_mut(i) {
        *b = v;
    }
}

/// The compressor's hash table, all zeros between calls: 64 Ki slots, reused by every call on a
/// thread. Zeroing 256 KiB per string was 75% of an RDB save's time; a call instead puts back
/// only the slots it wrote, so each call still starts from the empty table (and the output
/// stays what a fresh zeroed table gives).
struct Table {
    slots: Vec<u32>,
    written: Vec<u32>,
}

impl Table {
    #[inline]
    fn get(&self, slot: usize) -> u32 {
        self.slots[slot]
    }

    #[inline]
    fn set(&mut self, slot: usize, v: u32) {
        self.slots[slot] = v;
        self.written.push(slot as u32);
    }

    fn reset(&mut self) {
        for &slot in &self.written {
            self.slots[slot as usize] = 0;
        }
        self.written.clear();
    }
}

thread_local! {
    static TABLE: std::cell::RefCell<Table> = std::cell::RefCell::new(Table {
        slots: vec![0; HSIZE],
        written: Vec::new(),
    });
}

/// `lzf_compress(in, in_len, out, out_len)`: the compressed bytes, or `None` when they would
/// not fit in `out_len` bytes (Redis then stores the string as is).
pub fn compress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    TABLE.with(|t| {
        let mut t = t.borrow_mut();
        let out = compress_with(&mut t, input, out_len);
        t.reset();
        out
    })
}

fn compress_with(htab: &mut Table, input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    let in_end = input.len();
    if in_end < 3 || out_len == 0 {
        // Redis only compresses strings longer than 20 bytes.
        return None;
    }
    // Positions of earlier trigrams by hash; 0 doubles as "none", since a reference at the
    // very first byte is refused anyway (`ref > in_data`).
    // One spare byte, as Redis allocates `outlen + 1`.
    let mut out = vec![0u8; out_len + 1];
    let out_end = out_len;
    let mut ip = 0usize;
    let mut op = 1usize; // start run
    let mut lit = 0usize;
    let mut hval = frst(input, ip);
    while ip < in_end - 2 {
        hval = next(hval, input, ip);
        let slot = idx(hval);
        let r = htab.get(slot) as usize;
        htab.set(slot, ip as u32);
        let matched =
            r > 0 && r < ip && ip - r - 1 < MAX_OFF && input[r..r + 3] == input[ip..ip + 3];
        if matched {
            let off = ip - r - 1;
            let mut len = 2usize;
            let maxlen = (in_end - ip - len).min(MAX_REF);
            if op + 3 + 1 >= out_end && op - usize::from(lit == 0) + 3 + 1 >= out_end {
                return None;
            }
            put(&mut out, op - lit - 1, (lit as u8).wrapping_sub(1)); // stop run
            op -= usize::from(lit == 0); // undo run if length is zero
            'scan: {
                if maxlen > 16 {
                    for _ in 0..16 {
                        len += 1;
                        if input.get(r + len) != input.get(ip + len) {
                            break 'scan;
                        }
                    }
                }
                loop {
                    len += 1;
                    if !(len < maxlen && input[r + len] == input[ip + len]) {
                        break;
                    }
                }
            }
            len -= 2; // now #octets - 2
            ip += 1;
            if len < 7 {
                put(&mut out, op, ((off >> 8) + (len << 5)) as u8);
                op += 1;
            } else {
                put(&mut out, op, ((off >> 8) + (7 << 5)) as u8);
                put(&mut out, op + 1, (len - 7) as u8);
                op += 2;
            }
            put(&mut out, op, off as u8);
            op += 1;
            lit = 0;
            op += 1; // start run
            ip += len + 1;
            if ip >= in_end - 2 {
                break;
            }
            ip -= 2;
            hval = frst(input, ip);
            hval = next(hval, input, ip);
            htab.set(idx(hval), ip as u32);
            ip += 1;
            hval = next(hval, input, ip);
            htab.set(idx(hval), ip as u32);
            ip += 1;
        } else {
            if op >= out_end {
                return None;
            }
            lit += 1;
            put(&mut out, op, input[ip]);
            op += 1;
            ip += 1;
            if lit == MAX_LIT {
                put(&mut out, op - lit - 1, (lit - 1) as u8); // stop run
                lit = 0;
                op += 1; // start run
            }
        }
    }
    if op + 3 > out_end {
        return None;
    }
    while ip < in_end {
        lit += 1;
        put(&mut out, op, input[ip]);
        op += 1;
        ip += 1;
        if lit == MAX_LIT {
            put(&mut out, op - lit - 1, (lit - 1) as u8);
            lit = 0;
            op += 1;
        }
    }
    put(&mut out, op - lit - 1, (lit as u8).wrapping_sub(1)); // end run
    op -= usize::from(lit == 0);
    out.truncate(op);
    Some(out)
}

/// `lzf_decompress`: exactly `out_len` bytes, or `None` when the stream is malformed or does not
/// produce exactly that many (Redis's "Invalid LZF compressed string").
pub fn decompress(input: &[u8], out_len: usize) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(out_len);
    let mut ip = 0usize;
    while ip < input.len() {
        let ctrl = usize::from(input[ip]);
        ip += 1;
        if ctrl < (1 << 5) {
            let n = ctrl + 1;
            if out.len() + n > out_len {
                return None;
            }
            let lit = input.get(ip..ip + n)?;
            out.extend_from_slice(lit);
            ip += n;
        } else {
            let mut len = ctrl >> 5;
            let back = ((ctrl & 0x1f) << 8) + 1;
            if len == 7 {
                len += usize::from(*input.get(ip)?);
                ip += 1;
            }
            let back = back + usize::from(*input.get(ip)?);
            ip += 1;
            let n = len + 2;
            if out.len() + n > out_len || back > out.len() {
                return None;
            }
            let from = out.len() - back;
            // Byte by byte: the reference may overlap what it produces.
            for i in from..from + n {
                let b = out[i];
                out.push(b);
            }
        }
    }
    (out.len() == out_len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_redis_output() {
        // DUMP of a 35-byte run of 'a' from redis-server 7.0: 0xc3, clen 9, len 35, then these.
        let input = [b'a'; 35];
        let c = compress(&input, input.len() - 4).unwrap();
        assert_eq!(c, b"\x01aa\xe0\x16\x00\x01aa");
        assert_eq!(decompress(&c, 35).unwrap(), input);
    }

    #[test]
    fn round_trips_and_refuses_incompressible() {
        let mut rng = 0x1234_5678_u64;
        let mut noise = Vec::new();
        for _ in 0..300 {
            rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            noise.push((rng >> 33) as u8);
        }
        assert!(compress(&noise, noise.len() - 4).is_none());
        let text: Vec<u8> = b"hello world, hello ferrite, hello redis! "
            .iter()
            .cycle()
            .take(5000)
            .copied()
            .collect();
        let c = compress(&text, text.len() - 4).unwrap();
        assert!(c.len() < text.len() / 4);
        assert_eq!(decompress(&c, text.len()).unwrap(), text);
        for n in 21..200 {
            let v: Vec<u8> = (0..n).map(|i| (i % 7) as u8).collect();
            if let Some(c) = compress(&v, n - 4) {
                assert_eq!(decompress(&c, n).unwrap(), v, "n={n}");
            }
        }
    }

    #[test]
    fn decompress_rejects_garbage() {
        assert!(decompress(b"\x05ab", 6).is_none());
        assert!(decompress(b"\x20\x00", 3).is_none());
        assert!(decompress(b"\x00a", 2).is_none());
        assert!(decompress(b"\xe0", 9).is_none());
        assert_eq!(decompress(b"", 0), Some(Vec::new()));
    }
}
