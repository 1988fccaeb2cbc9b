//! The disk device end to end: random round trips in both I/O modes on the work disk and on
//! tmpfs, seeded damage found block for block, a full file system, and the I/O pool under
//! concurrent submitters.

use std::collections::{BTreeSet, HashMap};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ferrite_hybridlog::disk::{AlignedBuf, DirectIo, DiskConfig, IoMode, SUM_BLOCK, SegmentedFile};
use ferrite_hybridlog::log::BEGIN_ADDRESS;
use ferrite_hybridlog::record::{F_VALID, HEADER_BYTES, Shape};

const SEG_BITS: u32 = 16;
const SEG: u64 = 1 << SEG_BITS;
const PAGE: usize = 8192;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A log page image at `address`: records with random values, as the log lays them out.
fn page(address: u64, rng: &mut Rng) -> Vec<u8> {
    let mut data = vec![0u8; PAGE];
    let mut at = BEGIN_ADDRESS.saturating_sub(address) as usize;
    loop {
        let shape = Shape::new(8, rng.below(1500) as usize, false, 2048);
        if at + shape.size > PAGE || rng.below(30) == 0 {
            return data;
        }
        data[at..at + 8].copy_from_slice(&(F_VALID | 0x77).to_le_bytes());
        let sizes = (8u64 << 32) | shape.value_cap as u64;
        data[at + 16..at + 24].copy_from_slice(&sizes.to_le_bytes());
        for b in &mut data[at + HEADER_BYTES..at + shape.size] {
            *b = rng.next() as u8;
        }
        at += shape.size;
    }
}

fn open(dir: &Path, direct: DirectIo) -> SegmentedFile {
    SegmentedFile::open(&DiskConfig {
        dir: dir.to_path_buf(),
        segment_bits: SEG_BITS,
        direct,
    })
    .unwrap()
}

/// What the device should hold: the bytes, and each segment file's length.
#[derive(Default)]
struct Model {
    bytes: Vec<u8>,
    seg_len: HashMap<u64, u64>,
}

impl Model {
    fn write(&mut self, address: u64, data: &[u8]) {
        let end = address as usize + data.len();
        if self.bytes.len() < end {
            self.bytes.resize(end, 0);
        }
        self.bytes[address as usize..end].copy_from_slice(data);
        let n = address / SEG;
        let len = self.seg_len.entry(n).or_default();
        *len = (*len).max(end as u64 - n * SEG);
    }

    /// The bytes a read returns: up to the first segment end that is missing or short.
    fn read(&self, address: u64, len: usize) -> &[u8] {
        let mut stop = address + len as u64;
        let mut at = address;
        while at < stop {
            let n = at / SEG;
            let file_end = n * SEG + self.seg_len.get(&n).copied().unwrap_or(0);
            if file_end < ((n + 1) * SEG).min(stop) {
                stop = file_end.max(at);
                break;
            }
            at = (n + 1) * SEG;
        }
        let end = (stop as usize).min(self.bytes.len());
        &self.bytes[(address as usize).min(end)..end]
    }
}

fn random_round_trip(dir: &Path, direct: DirectIo, seed: u64) -> IoMode {
    let dev = open(dir, direct);
    let mut rng = Rng(seed);
    let mut model = Model::default();
    // 8 segments of 8 pages; pages written in random order, some never.
    let pages = (8 * SEG / PAGE as u64) as usize;
    for _ in 0..pages * 2 / 3 {
        let address = rng.below(pages as u64) * PAGE as u64;
        let data = page(address, &mut rng);
        dev.write_page(address, &data).unwrap();
        model.write(address, &data);
    }
    dev.sync().unwrap();
    let mut buf = AlignedBuf::new(0, 4096);
    for _ in 0..400 {
        let address = rng.below(8 * SEG);
        let len = rng.below(3 * PAGE as u64) as usize;
        let got = dev.read_at(address, len, &mut buf).unwrap();
        assert_eq!(
            got,
            model.read(address, len),
            "{address}+{len} in {:?}",
            dev.mode()
        );
    }
    // Every written block checks out; every other block is reported unwritten.
    let v = dev.verify(0, 8 * SEG).unwrap();
    assert_eq!(v.blocks, 8 * SEG / SUM_BLOCK as u64);
    for b in &v.bad {
        let page = (b.address as usize / PAGE) * PAGE;
        assert!(
            model.bytes.len() <= page || model.bytes[page..page + PAGE].iter().all(|&x| x == 0),
            "written block {} reported {:?}",
            b.address,
            b.damage
        );
    }
    dev.mode()
}

#[test]
fn random_round_trip_on_the_work_disk() {
    let dir = tempfile::tempdir().unwrap();
    match random_round_trip(dir.path(), DirectIo::Auto, 1) {
        IoMode::Direct { align } => println!("temp dir: O_DIRECT, align {align}"),
        IoMode::Buffered => println!("temp dir does not support O_DIRECT: buffered"),
    }
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        random_round_trip(dir.path(), DirectIo::Off, 2),
        IoMode::Buffered
    );
}

#[test]
fn random_round_trip_on_tmpfs() {
    if !Path::new("/dev/shm").is_dir() {
        println!("skipped: no /dev/shm");
        return;
    }
    for (direct, seed) in [(DirectIo::Auto, 3), (DirectIo::Off, 4)] {
        let dir = tempfile::tempdir_in("/dev/shm").unwrap();
        let mode = random_round_trip(dir.path(), direct, seed);
        println!("/dev/shm with {direct:?}: {mode:?}");
        if direct == DirectIo::Off {
            assert_eq!(mode, IoMode::Buffered);
        }
    }
}

fn flip(path: &Path, offset: u64, rng: &mut Rng) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= 1 + rng.below(255) as u8;
    f.write_all_at(&b, offset).unwrap();
}

/// Damages a synced device at seeded random places and checks that `verify` names exactly the
/// damaged blocks, and that reads and verification never panic.
fn damage_round(seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let dev = open(
        dir.path(),
        if seed.is_multiple_of(2) {
            DirectIo::Auto
        } else {
            DirectIo::Off
        },
    );
    let mut rng = Rng(seed);
    let segs = 3u64;
    let end = segs * SEG;
    let mut pages = Vec::new();
    for address in (0..end).step_by(PAGE) {
        let p = page(address, &mut rng);
        dev.write_page(address, &p).unwrap();
        pages.push(p);
    }
    dev.sync().unwrap();
    let data = |n: u64| dir.path().join(format!("hlog.{n}"));
    let sums = |n: u64| dir.path().join(format!("hlog.{n}.sum"));
    let block = SUM_BLOCK as u64;
    let mut expect = BTreeSet::new();
    // A torn page write: the new version of a page lands in part, the old version stays.
    let torn = rng.below(end / PAGE as u64) * PAGE as u64;
    let newer = page(torn, &mut rng);
    dev.write_page(torn, &newer).unwrap();
    let old = &pages[(torn / PAGE as u64) as usize];
    let keep_old = rng.below((PAGE / SUM_BLOCK) as u64);
    if old[keep_old as usize * SUM_BLOCK..][..SUM_BLOCK]
        != newer[keep_old as usize * SUM_BLOCK..][..SUM_BLOCK]
    {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(data(torn / SEG))
            .unwrap();
        let at = torn + keep_old * block;
        f.write_all_at(&old[keep_old as usize * SUM_BLOCK..][..SUM_BLOCK], at % SEG)
            .unwrap();
        expect.insert(at);
    }
    for _ in 0..1 + rng.below(4) {
        let a = rng.below(end);
        flip(&data(a / SEG), a % SEG, &mut rng);
        expect.insert(a / block * block);
    }
    for _ in 0..rng.below(3) {
        let b = rng.below(end / block);
        let n = b * block / SEG;
        flip(&sums(n), (b % (SEG / block)) * 8 + rng.below(8), &mut rng);
        expect.insert(b * block);
    }
    // Cut one segment's data file, and maybe another's sidecar.
    let n = rng.below(segs);
    let cut = rng.below(SEG);
    std::fs::OpenOptions::new()
        .write(true)
        .open(data(n))
        .unwrap()
        .set_len(cut)
        .unwrap();
    for b in (cut / block..SEG / block).map(|b| n * SEG + b * block) {
        expect.insert(b);
    }
    if rng.below(2) == 0 {
        let n = rng.below(segs);
        let cut = rng.below(SEG / block * 8);
        std::fs::OpenOptions::new()
            .write(true)
            .open(sums(n))
            .unwrap()
            .set_len(cut)
            .unwrap();
        for b in (cut / 8..SEG / block).map(|b| n * SEG + b * block) {
            expect.insert(b);
        }
    }
    let v = dev.verify(0, end).unwrap();
    let found: BTreeSet<u64> = v.bad.iter().map(|b| b.address).collect();
    assert_eq!(found, expect, "seed {seed}: {:?}", v.bad);
    for run in &v.runs {
        assert!(run.start < run.end && run.resume_at.is_none_or(|r| r >= run.end));
        if let Some(r) = run.resume_at {
            assert!(
                !found.contains(&(r / block * block)),
                "resume in a bad block"
            );
        }
    }
    // Reads over the damage return bytes or short reads, never a panic.
    let mut buf = AlignedBuf::new(0, 4096);
    for _ in 0..50 {
        let _ = dev
            .read_at(rng.below(end), rng.below(20000) as usize, &mut buf)
            .unwrap();
    }
}

#[test]
fn seeded_damage_is_reported_block_for_block() {
    for seed in 1..=24 {
        damage_round(seed);
    }
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        ok.then(|| Tmpfs {
            path: dir.path().to_path_buf(),
            _dir: dir,
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(&self.path)
            .status();
    }
}

#[test]
fn a_full_disk_is_an_error_and_writes_resume_after_freeing_space() {
    let Some(fs) = Tmpfs::mount("512k") else {
        println!("skipped: cannot mount a tmpfs here (not root, or no mount permission)");
        return;
    };
    for direct in [DirectIo::Off, DirectIo::Auto] {
        let dir = fs.path.join(format!("{direct:?}"));
        let dev = open(&dir, direct);
        let mut rng = Rng(99);
        let mut written = Vec::new();
        let mut address = 0;
        let (err, failed_page) = loop {
            let p = page(address, &mut rng);
            match dev.write_page(address, &p) {
                Ok(()) => written.push(p),
                Err(e) => break (e, p),
            }
            address += PAGE as u64;
            assert!(address < 1 << 24, "512 KiB tmpfs never filled");
        };
        assert!(err.is_no_space(), "{err}");
        assert!(err.to_string().contains("no space"), "{err}");
        println!(
            "{:?}: full after {} pages: {err}",
            dev.mode(),
            written.len()
        );
        // Free two segments and write the same page again.
        assert_eq!(dev.truncate_until(2 * SEG).unwrap(), 2);
        dev.write_page(address, &failed_page).unwrap();
        dev.sync().unwrap();
        let mut buf = AlignedBuf::new(0, 4096);
        assert_eq!(
            dev.read_at(address, PAGE, &mut buf).unwrap(),
            &failed_page[..]
        );
        let v = dev.verify(2 * SEG, address + PAGE as u64).unwrap();
        assert!(v.is_clean(), "{:?}", v.bad);
        drop(dev);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
