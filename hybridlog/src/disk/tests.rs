//! Unit tests of the device, the verifier and the I/O pool (system-level and randomised tests
//! are in `hybridlog/tests/disk.rs`).

use super::testutil::{Rng, page_image};
use super::*;

const SEG_BITS: u32 = 16; // 64 KiB segments, 16 pages of 4 KiB

fn open(dir: &std::path::Path, direct: DirectIo) -> SegmentedFile {
    SegmentedFile::open(&DiskConfig {
        dir: dir.to_path_buf(),
        segment_bits: SEG_BITS,
        direct,
    })
    .unwrap()
}

/// Writes `pages` 4 KiB pages of records from address 0 and returns the image of the range.
fn fill(dev: &SegmentedFile, pages: usize, rng: &mut Rng) -> Vec<u8> {
    let mut all = Vec::new();
    for p in 0..pages {
        let address = (p * 4096) as u64;
        let values: Vec<usize> = (0..40).map(|_| rng.below(700) as usize).collect();
        let (page, _) = page_image(address, 4096, &values);
        dev.write_page(address, &page).unwrap();
        all.extend_from_slice(&page);
    }
    all
}

#[test]
fn round_trip_in_both_modes_across_segments() {
    for direct in [DirectIo::Auto, DirectIo::Off] {
        let dir = tempfile::tempdir().unwrap();
        let dev = open(dir.path(), direct);
        if direct == DirectIo::Off {
            assert_eq!(dev.mode(), IoMode::Buffered);
        }
        let mut rng = Rng(7);
        let image = fill(&dev, 40, &mut rng);
        dev.sync().unwrap();
        assert_eq!(dev.fds().len(), 3);
        let mut buf = AlignedBuf::new(0, 512);
        for _ in 0..300 {
            let a = rng.below(image.len() as u64);
            let len = rng.below(20_000) as usize;
            let got = dev.read_at(a, len, &mut buf).unwrap();
            let want = &image[a as usize..(a as usize + len).min(image.len())];
            assert_eq!(got, want, "read {a}+{len} in {:?}", dev.mode());
        }
        // Past the end of the last segment file, and in a segment never written.
        assert!(
            dev.read_at(image.len() as u64, 10, &mut buf)
                .unwrap()
                .is_empty()
        );
        assert!(dev.read_at(1 << 30, 10, &mut buf).unwrap().is_empty());
    }
}

#[test]
fn writes_check_alignment_and_bounce_unaligned_memory() {
    let dir = tempfile::tempdir().unwrap();
    let dev = open(dir.path(), DirectIo::Auto);
    let unaligned = |e| matches!(e, Err(DiskError::Unaligned { .. }));
    assert!(unaligned(dev.write_page(100, &[0; 4096])));
    assert!(unaligned(dev.write_page(4096, &[0; 100])));
    assert!(unaligned(dev.write_page(4096, &[])));
    // A slice one byte into an aligned buffer: O_DIRECT needs the copy.
    let mut raw = AlignedBuf::new(8192 + 4096, 4096);
    let (page, _) = page_image(8192, 8192, &[100, 200, 3000]);
    raw.as_mut_slice()[1..8193].copy_from_slice(&page);
    dev.write_page(8192, &raw.as_slice()[1..8193]).unwrap();
    let mut buf = AlignedBuf::new(4096, 4096);
    assert_eq!(dev.read_at(8192, 8192, &mut buf).unwrap(), &page[..]);
    assert!(dev.verify(8192, 16384).unwrap().is_clean());
    let far = dev.write_page(ADDRESS_LIMIT - 4096, &page);
    assert!(matches!(far, Err(DiskError::OutOfRange { .. })), "{far:?}");
}

#[test]
fn locate_gives_an_aligned_window_that_reads_the_bytes() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let dev = open(dir.path(), DirectIo::Auto);
    let image = fill(&dev, 20, &mut Rng(3));
    let a = dev.alignment();
    let mut rng = Rng(11);
    for _ in 0..200 {
        let address = rng.below(image.len() as u64 - 1);
        let len = 1 + rng.below(9000) as usize;
        let loc = dev.locate(address, len).unwrap();
        assert_eq!(loc.segment.index(), address >> SEG_BITS);
        assert!(loc.file_offset.is_multiple_of(a as u64) && loc.aligned_len.is_multiple_of(a));
        assert!(loc.skip < a && loc.skip + loc.len <= loc.aligned_len);
        let seg_end = ((address >> SEG_BITS) + 1) << SEG_BITS;
        assert_eq!(
            loc.len as u64,
            (address + len as u64).min(seg_end) - address
        );
        // What the reactor would do: one read of the window into an aligned buffer.
        let mut buf = AlignedBuf::new(loc.aligned_len, a);
        let file = std::fs::File::open(loc.segment.path()).unwrap();
        let n = file
            .read_at(&mut buf.as_mut_slice()[..loc.aligned_len], loc.file_offset)
            .unwrap();
        let got = &buf.as_slice()[loc.skip..(loc.skip + loc.len).min(n)];
        let end = (address as usize + loc.len).min(image.len());
        assert_eq!(got, &image[address as usize..end]);
    }
    let none = dev.locate(1 << 30, 8);
    assert!(matches!(
        none,
        Err(DiskError::NoSegment { segment: 16384, .. })
    ));
}

#[test]
fn truncate_until_deletes_whole_segments_below() {
    let dir = tempfile::tempdir().unwrap();
    let dev = open(dir.path(), DirectIo::Off);
    let image = fill(&dev, 64, &mut Rng(5)); // segments 0..4
    let exists = |n: u64| dir.path().join(format!("hlog.{n}")).exists();
    let sum_exists = |n: u64| dir.path().join(format!("hlog.{n}.sum")).exists();
    assert!((0..4).all(exists) && (0..4).all(sum_exists));
    // Mid-segment 2: segments 0 and 1 go, 2 stays (it still holds live addresses).
    let cut = (2 << SEG_BITS) + 4096;
    assert_eq!(dev.truncate_until(cut).unwrap(), 2);
    assert!(!exists(0) && !exists(1) && !sum_exists(1) && exists(2) && exists(3));
    assert_eq!(dev.begin_address(), cut);
    let mut buf = AlignedBuf::new(0, 4096);
    let err = dev.read_at(cut - 1, 10, &mut buf).unwrap_err();
    assert!(
        matches!(err, DiskError::Truncated { begin, .. } if begin == cut),
        "{err}"
    );
    assert!(err.to_string().contains("truncated"));
    assert!(matches!(dev.locate(0, 8), Err(DiskError::Truncated { .. })));
    assert!(matches!(dev.verify(0, 8), Err(DiskError::Truncated { .. })));
    assert!(matches!(
        dev.write_page(4096, &image[..4096]),
        Err(DiskError::Truncated { .. })
    ));
    let got = dev.read_at(cut, 100, &mut buf).unwrap();
    assert_eq!(got, &image[cut as usize..cut as usize + 100]);
    // Lower than begin is a no-op.
    assert_eq!(dev.truncate_until(10).unwrap(), 0);
    assert_eq!(dev.begin_address(), cut);
    dev.sync().unwrap();
    drop(dev);
    // Reopened, the device starts at its lowest segment.
    let dev = open(dir.path(), DirectIo::Auto);
    assert_eq!(dev.begin_address(), 2 << SEG_BITS);
    assert_eq!(dev.fds().iter().map(|f| f.0).collect::<Vec<_>>(), [2, 3]);
    let a = 3 << SEG_BITS;
    assert_eq!(
        dev.read_at(a, 5000, &mut buf).unwrap(),
        &image[a as usize..a as usize + 5000]
    );
    assert!(dev.verify(2 << SEG_BITS, 4 << SEG_BITS).unwrap().is_clean());
}

#[test]
fn open_rejects_bad_config_and_ignores_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    for bits in [11, 49] {
        let cfg = DiskConfig {
            segment_bits: bits,
            ..DiskConfig::new(dir.path())
        };
        assert!(matches!(
            SegmentedFile::open(&cfg),
            Err(DiskError::Config(_))
        ));
    }
    std::fs::write(dir.path().join("hlog.x"), b"").unwrap();
    std::fs::write(dir.path().join("hlog.99999999999999999999"), b"").unwrap();
    let dev = SegmentedFile::open(&DiskConfig::new(dir.path())).unwrap();
    assert!(dev.fds().is_empty() && dev.begin_address() == 0);
    assert_eq!(dev.segment_bytes(), 1 << 30);
    let file_in_the_way = dir.path().join("hlog.x");
    let err = SegmentedFile::open(&DiskConfig::new(&file_in_the_way)).unwrap_err();
    assert!(matches!(err, DiskError::Io { .. }), "{err}");
}

#[test]
fn verify_pinpoints_damage_and_where_records_resume() {
    let dir = tempfile::tempdir().unwrap();
    let dev = open(dir.path(), DirectIo::Off);
    // Page 1 (4096..8192) in 2 KiB records + one record of 3 blocks, to see resume points.
    let (page, starts) = page_image(16384, 16384, &[2000, 2000, 9000, 2000, 2000]);
    dev.write_page(16384, &page).unwrap();
    let clean = dev.verify(16384, 32768).unwrap();
    assert!(clean.is_clean() && clean.blocks == 4);
    // Damage block 1 (20480..24576): records overlapping it are lost; the walk resumes at the
    // first record starting in a good block after it.
    let seg = dir.path().join("hlog.0");
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[20480 + 77] ^= 0x40;
    std::fs::write(&seg, &bytes).unwrap();
    let v = dev.verify(16384, 32768).unwrap();
    assert_eq!(
        v.bad,
        [BadBlock {
            address: 20480,
            damage: Damage::Corrupt
        }]
    );
    let resume = starts.iter().copied().find(|&s| s >= 24576);
    assert_eq!(v.runs.len(), 1);
    assert_eq!(v.runs[0].resume_at, resume, "starts {starts:?}");
    // Outside the flushed range every block is "unwritten".
    let v = dev.verify(32768, 40960).unwrap();
    assert_eq!(v.bad.len(), 2);
    assert!(v.bad.iter().all(|b| b.damage == Damage::Unwritten));
    assert_eq!(
        v.runs,
        [BadRun {
            start: 32768,
            end: 40960,
            resume_at: None
        }]
    );
    let v = dev.verify(1 << 20, (1 << 20) + 4096).unwrap();
    assert_eq!(v.bad[0].damage, Damage::Unwritten);
}

#[test]
fn sync_and_segments_report_the_open_files() {
    let dir = tempfile::tempdir().unwrap();
    let dev = open(dir.path(), DirectIo::Auto);
    dev.sync().unwrap();
    fill(&dev, 17, &mut Rng(1));
    dev.sync().unwrap();
    dev.sync().unwrap();
    let segs = dev.segments();
    assert_eq!(segs.len(), 2);
    assert_eq!(
        dev.fds(),
        segs.iter().map(|s| (s.index(), s.fd())).collect::<Vec<_>>()
    );
    assert!(dev.write_block() >= SUM_BLOCK && dev.dir() == dir.path());
}

#[test]
fn reads_are_checked_against_the_sums_written() {
    let dir = tempfile::tempdir().unwrap();
    let dev = open(dir.path(), DirectIo::Off);
    let mut rng = Rng(11);
    let image = fill(&dev, 3, &mut rng);
    assert!(dev.check_blocks(0, &image));
    // One flipped bit in the middle block.
    let mut bad = image.clone();
    bad[4096 + 123] ^= 0x08;
    assert!(!dev.check_blocks(0, &bad));
    assert!(
        dev.check_blocks(0, &bad[..4096]),
        "the blocks before it are fine"
    );
    // A block never written (a page's unused end reads as zeros) holds nothing to check, but
    // anything other than zeros there is damage.
    let hole = vec![0u8; 4096];
    assert!(dev.check_blocks(5 * 4096, &hole));
    let mut junk = hole.clone();
    junk[9] = 1;
    assert!(!dev.check_blocks(5 * 4096, &junk));
    // Partial blocks and unaligned addresses are never vouched for.
    assert!(!dev.check_blocks(0, &image[..100]));
    assert!(!dev.check_blocks(512, &image[512..4608]));
    // A device reopened by another process checks against the sidecar file.
    drop(dev);
    let reopened = open(dir.path(), DirectIo::Off);
    assert!(reopened.check_blocks(0, &image));
    assert!(!reopened.check_blocks(0, &bad));
}
