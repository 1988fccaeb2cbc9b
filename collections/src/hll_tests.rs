//! Expected values were produced by a real Redis 7.0.15 (PFADD, PFCOUNT, PFMERGE, GET).

use super::*;

const AZ_SPARSE: &str = "48594c4c01000000000000000000008044458c42268040898846e89441758440ec840e8040c484449094446680426280443c843880408f8041ac8047d18043b08042ed8441fc8c43938443188840df80426d8041d080407e8408";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3)
    })
}

fn numbers(n: u32) -> Hll {
    let mut h = Hll::new();
    for i in 1..=n {
        h.add(i.to_string().as_bytes(), DEFAULT_SPARSE_MAX_BYTES)
            .unwrap();
    }
    h
}

#[test]
fn letters_match_redis_bytes_and_count() {
    let mut h = Hll::new();
    let changed = (b'a'..=b'z')
        .filter(|c| h.add(&[*c], DEFAULT_SPARSE_MAX_BYTES).unwrap())
        .count();
    assert_eq!(changed, 25, "two letters share a register");
    assert_eq!(hex(h.as_bytes()), AZ_SPARSE);
    assert_eq!(h.count(), Ok(25));
    // The cached count is written into the header, as Redis does.
    assert_eq!(&hex(h.as_bytes())[16..32], "1900000000000000");
    assert_eq!(h.count(), Ok(25));
    assert!(!h.add(b"a", DEFAULT_SPARSE_MAX_BYTES).unwrap());
}

#[test]
fn numbers_match_redis_through_promotion() {
    for (n, len, sum) in [
        (100, 287, 0xac12_d593_e674_f307),
        (300, 698, 0xe6b9_db60_2d3e_c8ec),
        (1000, 1922, 0xabde_ac6c_99b1_409d),
    ] {
        let h = numbers(n);
        assert_eq!(
            (h.as_bytes().len(), fnv(h.as_bytes())),
            (len, sum),
            "n = {n}"
        );
    }
    let mut h = numbers(10000);
    assert!(!h.is_sparse());
    assert_eq!(
        (h.as_bytes().len(), fnv(h.as_bytes())),
        (12304, 0x3a3f_10e0_e48d_0f9b)
    );
    assert_eq!(h.count(), Ok(9988));
    assert_eq!(fnv(h.as_bytes()), 0x9078_d254_4925_87b6);
    assert_eq!(numbers(100).count(), Ok(100));
    assert_eq!(numbers(300).count(), Ok(302));
    assert_eq!(numbers(1000).count(), Ok(1001));
}

#[test]
fn union_and_merge_match_redis() {
    let mut letters = Hll::new();
    for c in b'a'..=b'z' {
        letters.add(&[c], DEFAULT_SPARSE_MAX_BYTES).unwrap();
    }
    let nums = numbers(10000);
    assert_eq!(
        Hll::count_union(&[Some(&letters), None, Some(&nums)]),
        Ok(10018)
    );
    let mut dst = Hll::new();
    dst.merge(&[Some(&letters), Some(&nums)], DEFAULT_SPARSE_MAX_BYTES)
        .unwrap();
    assert_eq!(
        (dst.as_bytes().len(), fnv(dst.as_bytes())),
        (12304, 0x129c_ad19_27dc_4a17)
    );
    let mut dst = Hll::new();
    dst.merge(&[Some(&letters)], DEFAULT_SPARSE_MAX_BYTES)
        .unwrap();
    assert_eq!(hex(dst.as_bytes()), AZ_SPARSE);
}

#[test]
fn empty_and_invalid() {
    let mut h = Hll::new();
    assert_eq!(hex(h.as_bytes()), "48594c4c0100000000000000000000007fff");
    assert_eq!(h.count(), Ok(0));
    assert_eq!(Hll::from_bytes(b"HYLL".to_vec()), Err(HllError::NotHll));
    assert_eq!(
        Hll::from_bytes(b"nope nope nope nope".to_vec()),
        Err(HllError::NotHll)
    );
    let mut dense_short = h.as_bytes().to_vec();
    dense_short[4] = DENSE;
    assert_eq!(Hll::from_bytes(dense_short), Err(HllError::NotHll));
    // A sparse body that covers too few registers is corrupt.
    let mut bad = h.as_bytes().to_vec();
    bad[16] = 0x00;
    bad[15] |= 0x80;
    let mut bad = Hll::from_bytes(bad).unwrap();
    assert_eq!(bad.count(), Err(HllError::Corrupt));
    let _ = bad.add(b"x", DEFAULT_SPARSE_MAX_BYTES);
    let mut trunc = Hll::from_bytes(h.as_bytes()[..17].to_vec()).unwrap();
    assert!(trunc.add(b"x", DEFAULT_SPARSE_MAX_BYTES).is_err());
    assert_eq!(murmur_hash64a(b"", 0), 0);
}

#[test]
fn union_from_bytes_matches_hll_merge() {
    let mut letters = Hll::new();
    for c in b'a'..=b'z' {
        letters.add(&[c], DEFAULT_SPARSE_MAX_BYTES).unwrap();
    }
    let nums = numbers(10000);
    let mut u = HllUnion::new();
    u.merge(letters.as_bytes()).unwrap();
    assert!(!u.saw_dense());
    u.merge(nums.as_bytes()).unwrap();
    assert!(u.saw_dense());
    assert_eq!(u.count(), 10018);
    let mut dst = Hll::new();
    u.store_into(&mut dst, DEFAULT_SPARSE_MAX_BYTES).unwrap();
    assert_eq!(
        (dst.as_bytes().len(), fnv(dst.as_bytes())),
        (12304, 0x129c_ad19_27dc_4a17)
    );
    // A sparse-only union keeps the destination sparse.
    let mut u = HllUnion::new();
    u.merge(letters.as_bytes()).unwrap();
    let mut dst = Hll::new();
    u.store_into(&mut dst, DEFAULT_SPARSE_MAX_BYTES).unwrap();
    assert_eq!(hex(dst.as_bytes()), AZ_SPARSE);
    // Bad inputs: not an HLL, and a sparse body covering too few registers.
    assert_eq!(HllUnion::new().merge(b"garbage"), Err(HllError::NotHll));
    let mut short = Hll::new().as_bytes().to_vec();
    short[16] = 0;
    assert_eq!(HllUnion::new().merge(&short), Err(HllError::Corrupt));
}

#[test]
fn cached_count_reads_the_header() {
    let mut h = numbers(100);
    assert_eq!(Hll::cached_count(h.as_bytes()), None);
    assert_eq!(h.count(), Ok(100));
    assert_eq!(Hll::cached_count(h.as_bytes()), Some(100));
    assert_eq!(Hll::cached_count(Hll::new().as_bytes()), Some(0));
    assert_eq!(Hll::cached_count(b"HYLL"), None);
    h.invalidate_cache();
    assert_eq!(Hll::cached_count(h.as_bytes()), None);
    assert_eq!(Hll::check(h.as_bytes()), Ok(()));
}

#[test]
fn a_cut_off_xzero_reads_as_redis_reads_it() {
    // PFADD, then SETRANGE 18 "c", APPEND "d" and PFADD "x y" "c" (the random differential test's seed
    // 1795921542488599010): the string ends in the first byte of an XZERO. Redis reads the sds
    // terminator as its second byte; bytes below from redis-server 7.0.15.
    let mut h = Hll::new();
    for e in [&b"-3"[..], b"007"] {
        h.add(e, DEFAULT_SPARSE_MAX_BYTES).unwrap();
    }
    let mut bytes = h.into_bytes();
    bytes[18] = b'c';
    bytes.push(b'd');
    let mut h = Hll::from_bytes(bytes).unwrap();
    assert_eq!(h.add(b"x y", DEFAULT_SPARSE_MAX_BYTES), Ok(true));
    h.add(b"c", DEFAULT_SPARSE_MAX_BYTES).unwrap();
    let want: &[u8] = b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80\x4a\xbb\x56\x37\x80\x4d\x36\xbb\x84\x45\x85\x45\xee\x84\x5e";
    assert_eq!(h.as_bytes(), want);
    assert_eq!(h.count(), Err(HllError::Corrupt));
}

#[test]
fn self_test_passes() {
    assert_eq!(Hll::self_test(), Ok(()));
}

#[test]
fn debug_views_of_a_sparse_hll() {
    let mut h = Hll::new();
    assert_eq!(h.decode_sparse().as_deref(), Some("Z:16384"));
    h.add(b"a", DEFAULT_SPARSE_MAX_BYTES).unwrap();
    let decoded = h.decode_sparse().unwrap();
    assert!(decoded.contains("v:"), "{decoded}");
    let regs = h.clone().registers().unwrap();
    assert_eq!(regs.len(), 16384);
    assert_eq!(regs.iter().filter(|&&r| r > 0).count(), 1);
    assert!(h.to_dense().unwrap());
    assert!(!h.to_dense().unwrap());
    assert_eq!(h.decode_sparse(), None);
}
