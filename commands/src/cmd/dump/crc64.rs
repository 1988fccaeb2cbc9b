//! Redis's CRC-64 (`src/crc64.c`): the Jones polynomial, reflected input and output, initial
//! value 0 and no final xor. DUMP payloads end with it, little-endian.

/// The reflected Jones polynomial (0xad93d23594c935a9 bit-reversed).
const POLY: u64 = 0x95ac_9329_ac4b_c9b5;

/// Byte-at-a-time table, built at compile time.
const TABLE: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// `crc64(crc, data)`: continues `crc` over `data` (start with 0).
pub fn crc64(mut crc: u64, data: &[u8]) -> u64 {
    for &b in data {
        crc = TABLE[((crc ^ u64::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_test_vectors() {
        // From crc64.c's own test.
        assert_eq!(crc64(0, b"123456789"), 0xe9c6_d914_c4b8_d9ca);
        // The trailer of `DUMP` of the string "hello" from redis-server 7.0.
        let payload = b"\x00\x05hello\x0a\x00";
        assert_eq!(crc64(0, payload).to_le_bytes(), *b"cr\xdfve4 \x0a");
    }
}
