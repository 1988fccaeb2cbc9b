//! SHA-1, which names scripts (EVALSHA, SCRIPT LOAD) and backs `redis.sha1hex`. A script's name
//! is the hex digest of its body, so this must be the real SHA-1, not a faster hash.

/// The 40 lower-case hex digits of `data`'s SHA-1 (Redis's `sha1hex`).
pub fn sha1_hex(data: &[u8]) -> [u8; 40] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 40];
    for (i, b) in sha1(data).iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 15)];
    }
    out
}

/// The 20-byte SHA-1 digest of `data` (FIPS 180-4).
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let bit_len = (data.len() as u64).wrapping_mul(8);
    let whole = data.len() / 64 * 64;
    for block in data[..whole].chunks_exact(64) {
        compress(&mut h, block);
    }
    // The rest, the 0x80 marker and the length fill one or two blocks, on the stack (EVAL hashes
    // every script body it gets, so no allocation here).
    let rest = &data[whole..];
    let mut tail = [0u8; 128];
    tail[..rest.len()].copy_from_slice(rest);
    tail[rest.len()] = 0x80;
    let blocks = if rest.len() < 56 { 1 } else { 2 };
    tail[blocks * 64 - 8..blocks * 64].copy_from_slice(&bit_len.to_be_bytes());
    for block in tail[..blocks * 64].chunks_exact(64) {
        compress(&mut h, block);
    }
    let mut out = [0u8; 20];
    for (i, word) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&word.to_be_bytes());
    }
    out
}

fn compress(h: &mut [u32; 5], block: &[u8]) {
    let mut w = [0u32; 16];
    for (i, word) in block.chunks_exact(4).enumerate() {
        w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
    }
    let mut s = *h;
    // Four stretches of twenty rounds, each with its own function and constant, so that no
    // round chooses at run time (EVAL hashes every body it is given).
    rounds(&mut s, &mut w, 0, |b, c, d| (b & c) | (!b & d), 0x5A82_7999);
    rounds(&mut s, &mut w, 20, |b, c, d| b ^ c ^ d, 0x6ED9_EBA1);
    rounds(
        &mut s,
        &mut w,
        40,
        |b, c, d| (b & c) | (b & d) | (c & d),
        0x8F1B_BCDC,
    );
    rounds(&mut s, &mut w, 60, |b, c, d| b ^ c ^ d, 0xCA62_C1D6);
    for (x, v) in h.iter_mut().zip(s) {
        *x = x.wrapping_add(v);
    }
}

/// Rounds `start..start + 20`; the message schedule is kept as a 16-word ring.
#[inline(always)]
fn rounds(
    s: &mut [u32; 5],
    w: &mut [u32; 16],
    start: usize,
    f: impl Fn(u32, u32, u32) -> u32,
    k: u32,
) {
    let [mut a, mut b, mut c, mut d, mut e] = *s;
    for i in start..start + 20 {
        if i >= 16 {
            w[i & 15] =
                (w[(i + 13) & 15] ^ w[(i + 8) & 15] ^ w[(i + 2) & 15] ^ w[i & 15]).rotate_left(1);
        }
        let t = a
            .rotate_left(5)
            .wrapping_add(f(b, c, d))
            .wrapping_add(e)
            .wrapping_add(k)
            .wrapping_add(w[i & 15]);
        e = d;
        d = c;
        c = b.rotate_left(30);
        b = a;
        a = t;
    }
    *s = [a, b, c, d, e];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(data: &[u8]) -> String {
        String::from_utf8(sha1_hex(data).to_vec()).unwrap()
    }

    #[test]
    fn known_digests() {
        assert_eq!(hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        // `redis-cli SCRIPT LOAD 'return 1'` on redis-server 7.0.15.
        assert_eq!(hex(b"return 1"), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
        let million = vec![b'a'; 1_000_000];
        assert_eq!(hex(&million), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
        // Lengths around the padding boundary (Python's hashlib.sha1).
        for (n, want) in [
            (55, "cef734ba81a024479e09eb5a75b6ddae62e6abf1"),
            (56, "901305367c259952f4e7af8323f480d59f81335b"),
            (63, "0ddc4e0cccd9a12850deb5abb0853a4425559fec"),
            (64, "bb2fa3ee7afb9f54c6dfb5d021f14b1ffe40c163"),
            (65, "78c741ddc482e4cdf8c474a0876347a0905b6233"),
            (119, "4300320394f7ee239bcdce7d3b8bcee173a0cd5c"),
        ] {
            assert_eq!(hex(&vec![b'x'; n]), want, "length {n}");
        }
    }
}
