//! [`SegmentedFile`]: the log address space as a sequence of segment files.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::buf::AlignedBuf;
use super::sums::{self, ENTRY_BYTES, SUM_BLOCK};
use super::sys::{self, DEFAULT_ALIGN};
use super::{ADDRESS_LIMIT, DiskConfig, DiskError, IoMode, MAX_SEGMENT_BITS, MIN_SEGMENT_BITS};

/// One segment: its data file (opened per the device's [`IoMode`]) and its checksum sidecar
/// (always buffered: its writes are small and unaligned).
#[derive(Debug)]
pub struct Segment {
    index: u64,
    data: File,
    sums: File,
    path: PathBuf,
    sum_path: PathBuf,
    /// Written since the last `sync`.
    dirty: AtomicBool,
    /// The sidecar entries this process wrote, kept in memory (8 bytes per 4 KiB block, 0.2%
    /// of the data) so that every read can be checked without a second read of the sidecar.
    written_sums: RwLock<Vec<u8>>,
}

impl Segment {
    /// The segment number (`address >> segment_bits`).
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The data file's descriptor, valid while this `Segment` (an `Arc` of it) is alive, even
    /// after `truncate_until` deleted the file.
    pub fn fd(&self) -> RawFd {
        self.data.as_raw_fd()
    }

    /// The data file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Where an asynchronous read of `[address, address + len)` goes (see
/// [`SegmentedFile::locate`]). Keep it (it holds the segment open) until the read completes.
/// Like `read_at`, the read comes back short at the end of the segment's written data: the
/// bytes wanted are `buf[skip..min(skip + len, bytes_read)]`.
#[derive(Debug, Clone)]
pub struct Location {
    /// The segment to read from.
    pub segment: Arc<Segment>,
    /// File offset of the read, aligned.
    pub file_offset: u64,
    /// Length of the read, aligned; the buffer must hold this many bytes.
    pub aligned_len: usize,
    /// Offset of the wanted bytes inside the buffer.
    pub skip: usize,
    /// Wanted bytes covered by this read: less than asked for when the range crosses into the
    /// next segment (locate `address + len` for the rest).
    pub len: usize,
}

/// The device: segment files `<dir>/hlog.<n>` mapping log addresses 1:1 onto file offsets.
/// Safe to share between the flusher, recovery, the reactors and the I/O pool.
#[derive(Debug)]
pub struct SegmentedFile {
    dir: PathBuf,
    segment_bits: u32,
    mode: IoMode,
    /// Read alignment (offsets and lengths of every read).
    align: usize,
    /// Write granule: addresses and lengths of `write_page` are multiples of it.
    write_block: usize,
    begin: AtomicU64,
    segments: RwLock<BTreeMap<u64, Arc<Segment>>>,
    /// A segment file was created since the last `sync` (the directory needs an fsync).
    dir_dirty: AtomicBool,
}

impl SegmentedFile {
    /// Opens (creating if needed) the device in `cfg.dir`, with the segments already there.
    /// The begin address is the start of the lowest existing segment (0 when there is none);
    /// recovery moves it up with [`SegmentedFile::truncate_until`].
    pub fn open(cfg: &DiskConfig) -> Result<SegmentedFile, DiskError> {
        if !(MIN_SEGMENT_BITS..=MAX_SEGMENT_BITS).contains(&cfg.segment_bits) {
            return Err(DiskError::Config(format!(
                "segment_bits {} is outside {MIN_SEGMENT_BITS}..={MAX_SEGMENT_BITS}",
                cfg.segment_bits
            )));
        }
        std::fs::create_dir_all(&cfg.dir).map_err(|e| DiskError::io(e, &cfg.dir, 0))?;
        let mode = sys::probe(&cfg.dir, cfg.direct)?;
        let align = match mode {
            IoMode::Direct { align } => align,
            IoMode::Buffered => DEFAULT_ALIGN,
        };
        let write_block = align.max(SUM_BLOCK);
        if write_block as u64 > 1 << cfg.segment_bits {
            return Err(DiskError::Config(format!(
                "segment of 2^{} bytes is smaller than the {write_block}-byte block",
                cfg.segment_bits
            )));
        }
        let dev = SegmentedFile {
            dir: cfg.dir.clone(),
            segment_bits: cfg.segment_bits,
            mode,
            align,
            write_block,
            begin: AtomicU64::new(0),
            segments: RwLock::new(BTreeMap::new()),
            dir_dirty: AtomicBool::new(false),
        };
        dev.open_existing()?;
        match mode {
            IoMode::Direct { align } => log::info!(
                "hybridlog disk {}: O_DIRECT, {align}-byte alignment",
                cfg.dir.display()
            ),
            IoMode::Buffered if cfg.direct == super::DirectIo::Off => log::info!(
                "hybridlog disk {}: buffered I/O with POSIX_FADV_DONTNEED (O_DIRECT turned off)",
                cfg.dir.display()
            ),
            IoMode::Buffered => log::warn!(
                "hybridlog disk {}: O_DIRECT is not supported here; buffered I/O with \
                 POSIX_FADV_DONTNEED",
                cfg.dir.display()
            ),
        }
        Ok(dev)
    }

    fn open_existing(&self) -> Result<(), DiskError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| DiskError::io(e, &self.dir, 0))?;
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| DiskError::io(e, &self.dir, 0))?;
            let name = entry.file_name();
            let Some(n) = name.to_str().and_then(|s| s.strip_prefix("hlog.")) else {
                continue;
            };
            if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
                match n.parse::<u64>() {
                    Ok(n) if n < ADDRESS_LIMIT >> self.segment_bits => found.push(n),
                    _ => log::warn!("ignoring {}: not a segment of this log", name.display()),
                }
            }
        }
        found.sort_unstable();
        for &n in &found {
            self.segment(n, true)?;
        }
        if let Some(&first) = found.first() {
            self.begin
                .store(first << self.segment_bits, Ordering::Release);
        }
        Ok(())
    }

    /// How the segments are opened.
    pub fn mode(&self) -> IoMode {
        self.mode
    }

    /// The read alignment: every read's file offset and length is a multiple of it.
    pub fn alignment(&self) -> usize {
        self.align
    }

    /// The write granule: `write_page` addresses and lengths are multiples of it.
    pub fn write_block(&self) -> usize {
        self.write_block
    }

    /// Bytes per segment.
    pub fn segment_bytes(&self) -> u64 {
        1 << self.segment_bits
    }

    /// The lowest address still on disk.
    pub fn begin_address(&self) -> u64 {
        self.begin.load(Ordering::Acquire)
    }

    /// The directory of the segment files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn data_path(&self, n: u64) -> PathBuf {
        self.dir.join(format!("hlog.{n}"))
    }

    /// Segment `n`, created if missing and `create`; `None` if it does not exist.
    pub(crate) fn segment(&self, n: u64, create: bool) -> Result<Option<Arc<Segment>>, DiskError> {
        if let Some(s) = self.read_segments().get(&n) {
            return Ok(Some(Arc::clone(s)));
        }
        let mut map = self.segments.write().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = map.get(&n) {
            return Ok(Some(Arc::clone(s)));
        }
        // Every segment file is in the map (found at open, or created here).
        if !create {
            return Ok(None);
        }
        let path = self.data_path(n);
        let sum_path = self.dir.join(format!("hlog.{n}.sum"));
        let direct = matches!(self.mode, IoMode::Direct { .. });
        let data = sys::open(&path, direct, create).map_err(|e| DiskError::io(e, &path, 0))?;
        let sums = sys::open(&sum_path, false, true).map_err(|e| DiskError::io(e, &sum_path, 0))?;
        self.dir_dirty.store(true, Ordering::Release);
        let seg = Arc::new(Segment {
            index: n,
            data,
            sums,
            path,
            sum_path,
            dirty: AtomicBool::new(false),
            written_sums: RwLock::new(Vec::new()),
        });
        map.insert(n, Arc::clone(&seg));
        Ok(Some(seg))
    }

    fn read_segments(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<u64, Arc<Segment>>> {
        self.segments.read().unwrap_or_else(|e| e.into_inner())
    }

    fn check_range(&self, address: u64, len: usize) -> Result<(), DiskError> {
        let begin = self.begin_address();
        if address < begin {
            return Err(DiskError::Truncated { address, begin });
        }
        match address.checked_add(len as u64) {
            Some(end) if end <= ADDRESS_LIMIT => Ok(()),
            _ => Err(DiskError::OutOfRange { address, len }),
        }
    }

    /// Splits `[start, end)` at segment boundaries: `(segment, offset in it, range start, end)`.
    fn pieces(&self, start: u64, end: u64) -> impl Iterator<Item = (u64, u64, u64, u64)> + '_ {
        let seg = self.segment_bytes();
        let mut at = start;
        std::iter::from_fn(move || {
            if at >= end {
                return None;
            }
            let n = at >> self.segment_bits;
            let piece_end = end.min((n + 1) * seg);
            let piece = (n, at & (seg - 1), at, piece_end);
            at = piece_end;
            Some(piece)
        })
    }

    /// Writes a page image (one log page, or a prefix of one, starting at the page start) at
    /// `address`, then its checksum entries. `address` and `data.len()` are multiples of
    /// [`SegmentedFile::write_block`]. Not durable until [`SegmentedFile::sync`]. Writing the
    /// same page again (a page first flushed in part) replaces it and its entries.
    pub fn write_page(&self, address: u64, data: &[u8]) -> Result<(), DiskError> {
        let wb = self.write_block;
        if data.is_empty() || !address.is_multiple_of(wb as u64) || !data.len().is_multiple_of(wb) {
            return Err(DiskError::Unaligned {
                address,
                len: data.len(),
                align: wb,
            });
        }
        self.check_range(address, data.len())?;
        let entries = sums::page_entries(address, data);
        // O_DIRECT reads the caller's memory itself: it must be aligned too (log pages are).
        let bounce;
        let data = if matches!(self.mode, IoMode::Direct { align } if !data.as_ptr().addr().is_multiple_of(align))
        {
            let mut b = AlignedBuf::new(data.len(), self.align);
            b.as_mut_slice()[..data.len()].copy_from_slice(data);
            bounce = b;
            &bounce.as_slice()[..data.len()]
        } else {
            data
        };
        let end = address + data.len() as u64;
        let pieces: Vec<_> = self.pieces(address, end).collect();
        let mut segs = Vec::with_capacity(pieces.len());
        for &(n, offset, lo, hi) in &pieces {
            let seg = self.segment(n, true)?.ok_or(DiskError::NoSegment {
                address: lo,
                segment: n,
            })?;
            let bytes = &data[(lo - address) as usize..(hi - address) as usize];
            sys::pwrite_all(&seg.data, &seg.path, bytes, offset)?;
            seg.dirty.store(true, Ordering::Release);
            if self.mode == IoMode::Buffered {
                sys::drop_cache(&seg.data, offset, bytes.len() as u64);
            }
            segs.push(seg);
        }
        // Entries only after all the data: an entry never vouches for data not yet written.
        for (seg, &(_, offset, lo, hi)) in segs.iter().zip(&pieces) {
            let e = |a: u64| (a - address) as usize / SUM_BLOCK * ENTRY_BYTES;
            let sum_offset = offset / SUM_BLOCK as u64 * ENTRY_BYTES as u64;
            sys::pwrite_all(&seg.sums, &seg.sum_path, &entries[e(lo)..e(hi)], sum_offset)?;
            let mut mem = seg.written_sums.write().unwrap_or_else(|e| e.into_inner());
            let (from, to) = (sum_offset as usize, sum_offset as usize + e(hi) - e(lo));
            if mem.len() < to {
                mem.resize(to, 0);
            }
            mem[from..to].copy_from_slice(&entries[e(lo)..e(hi)]);
        }
        Ok(())
    }

    /// Whether `data`, read at `address` (a multiple of [`SUM_BLOCK`]), is whole blocks that
    /// match their checksums: what every read of a record checks before trusting its bytes.
    /// Blocks written by an earlier process are checked against the sidecar file.
    pub fn check_blocks(&self, address: u64, data: &[u8]) -> bool {
        if !address.is_multiple_of(SUM_BLOCK as u64) || !data.len().is_multiple_of(SUM_BLOCK) {
            return false;
        }
        let mut from_file = Vec::new();
        for (i, block) in data.chunks_exact(SUM_BLOCK).enumerate() {
            let a = address + (i * SUM_BLOCK) as u64;
            let n = a >> self.segment_bits;
            let Ok(Some(seg)) = self.segment(n, false) else {
                return false;
            };
            let at = ((a - (n << self.segment_bits)) / SUM_BLOCK as u64) as usize * ENTRY_BYTES;
            let entry = {
                let mem = seg.written_sums.read().unwrap_or_else(|e| e.into_inner());
                mem.get(at..at + ENTRY_BYTES).map(sums::decode)
            };
            let entry = match entry {
                Some(e @ sums::Entry::Present { .. }) => e,
                // A block never written is a hole at a page's unused end: zeros, which hold no
                // record. Anything else there is damage (or a file of an earlier process,
                // whose sums are only in the sidecar).
                _ if block.iter().all(|&b| b == 0) => continue,
                _ => {
                    from_file.clear();
                    if self.read_entries(&seg, a, 1, &mut from_file).is_err() {
                        return false;
                    }
                    sums::decode(&from_file[..ENTRY_BYTES])
                }
            };
            match entry {
                sums::Entry::Present { crc, first_record }
                    if sums::block_crc(a, first_record, block) == crc => {}
                _ => return false,
            }
        }
        true
    }

    /// Reads `[address, address + len)` into `buf` (grown if needed) through an aligned window
    /// and returns the wanted bytes. Ranges may cross segments. The result is shorter than
    /// `len` at the end of the written data (a segment file's end, or a segment never
    /// written); addresses below the begin address are [`DiskError::Truncated`].
    pub fn read_at<'b>(
        &self,
        address: u64,
        len: usize,
        buf: &'b mut AlignedBuf,
    ) -> Result<&'b [u8], DiskError> {
        self.check_range(address, len)?;
        if buf.align() < self.align {
            *buf = AlignedBuf::new(0, self.align);
        }
        buf.ensure_capacity(self.window_len(address, len));
        let (skip, avail) = self.read_window(address, len, buf.as_mut_slice())?;
        Ok(&buf.as_slice()[skip..skip + avail])
    }

    /// Bytes of the aligned window that covers `[address, address + len)`.
    pub fn window_len(&self, address: u64, len: usize) -> usize {
        let a = self.align as u64;
        let start = address.min(ADDRESS_LIMIT) / a * a;
        let end = address.saturating_add(len as u64).min(ADDRESS_LIMIT);
        (end.next_multiple_of(a) - start) as usize
    }

    /// [`SegmentedFile::read_at`] into `mem`, which starts at an address aligned to
    /// [`SegmentedFile::alignment`] and holds [`SegmentedFile::window_len`] bytes. Returns
    /// where the wanted bytes start in `mem` and how many were read.
    pub(crate) fn read_window(
        &self,
        address: u64,
        len: usize,
        mem: &mut [u8],
    ) -> Result<(usize, usize), DiskError> {
        self.check_range(address, len)?;
        let a = self.align as u64;
        let start = address / a * a;
        let end = (address + len as u64)
            .next_multiple_of(a)
            .min(ADDRESS_LIMIT);
        assert!(mem.len() as u64 >= end - start, "read window too small");
        debug_assert!(
            mem.as_ptr()
                .addr()
                .is_multiple_of(self.align.min(super::BUF_ALIGN))
        );
        let mut got = 0usize;
        for (n, offset, lo, hi) in self.pieces(start, end) {
            let Some(seg) = self.segment(n, false)? else {
                break;
            };
            let window = &mut mem[(lo - start) as usize..(hi - start) as usize];
            let read = sys::pread_full(&seg.data, &seg.path, window, offset)?;
            got += read;
            if read < window.len() {
                break;
            }
        }
        let skip = (address - start) as usize;
        Ok((skip, got.saturating_sub(skip).min(len)))
    }

    /// Where to read `[address, address + len)` asynchronously: the segment, the aligned file
    /// offset and length for an io_uring `Read`/`ReadFixed`, and where the wanted bytes start in
    /// the buffer. Only the part inside the first segment is covered (`Location::len`).
    pub fn locate(&self, address: u64, len: usize) -> Result<Location, DiskError> {
        self.check_range(address, len)?;
        let n = address >> self.segment_bits;
        let segment = self.segment(n, false)?.ok_or(DiskError::NoSegment {
            address,
            segment: n,
        })?;
        let base = n << self.segment_bits;
        let wanted_end = (address + len as u64).min(base + self.segment_bytes());
        let a = self.align as u64;
        let file_offset = (address - base) / a * a;
        let aligned_end = (wanted_end - base).next_multiple_of(a);
        Ok(Location {
            segment,
            file_offset,
            aligned_len: (aligned_end - file_offset) as usize,
            skip: (address - base - file_offset) as usize,
            len: (wanted_end - address) as usize,
        })
    }

    /// The open segments' data-file descriptors, oldest first, for `register_files`.
    pub fn fds(&self) -> Vec<(u64, RawFd)> {
        self.read_segments()
            .values()
            .map(|s| (s.index, s.fd()))
            .collect()
    }

    /// The open segments, oldest first.
    pub fn segments(&self) -> Vec<Arc<Segment>> {
        self.read_segments().values().cloned().collect()
    }

    /// Makes every write so far durable: `fdatasync` of the data and sidecar files written since
    /// the last call, and of the directory if segments were created.
    pub fn sync(&self) -> Result<(), DiskError> {
        for seg in self.segments() {
            if !seg.dirty.swap(false, Ordering::AcqRel) {
                continue;
            }
            let r = seg
                .data
                .sync_data()
                .map_err(|e| DiskError::io(e, &seg.path, 0))
                .and_then(|()| {
                    seg.sums
                        .sync_data()
                        .map_err(|e| DiskError::io(e, &seg.sum_path, 0))
                });
            if let Err(e) = r {
                seg.dirty.store(true, Ordering::Release);
                return Err(e);
            }
            if self.mode == IoMode::Buffered {
                sys::drop_cache(&seg.data, 0, 0);
            }
        }
        if self.dir_dirty.swap(false, Ordering::AcqRel) {
            let r = File::open(&self.dir).and_then(|d| d.sync_all());
            if let Err(e) = r {
                self.dir_dirty.store(true, Ordering::Release);
                return Err(DiskError::io(e, &self.dir, 0));
            }
        }
        Ok(())
    }

    /// Moves the begin address up to `address` and deletes the segments that lie wholly below
    /// it (data and sidecar). Reads below `address` fail with [`DiskError::Truncated`] from now
    /// on; reads already holding a segment finish on the unlinked file. Returns the number of
    /// segments deleted. The caller orders it after the flushes below `address` (compaction
    /// truncates only what is flushed and copied forward): a `write_page` below `address` that
    /// races with it could re-create a deleted segment.
    pub fn truncate_until(&self, address: u64) -> Result<usize, DiskError> {
        let address = address.min(ADDRESS_LIMIT);
        self.begin.fetch_max(address, Ordering::AcqRel);
        let doomed: Vec<Arc<Segment>> = {
            let mut map = self.segments.write().unwrap_or_else(|e| e.into_inner());
            let keep = map.split_off(&(address >> self.segment_bits));
            std::mem::replace(&mut *map, keep).into_values().collect()
        };
        for seg in &doomed {
            for p in [&seg.path, &seg.sum_path] {
                match std::fs::remove_file(p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(DiskError::io(e, p, 0)),
                }
            }
        }
        if !doomed.is_empty() {
            self.dir_dirty.store(true, Ordering::Release);
        }
        Ok(doomed.len())
    }

    /// Reads the sidecar entries of `[address, address + blocks * SUM_BLOCK)` inside segment
    /// `seg` into `out` (zeros past the sidecar's end).
    pub(crate) fn read_entries(
        &self,
        seg: &Segment,
        address: u64,
        blocks: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), DiskError> {
        out.clear();
        out.resize(blocks * ENTRY_BYTES, 0);
        let offset = (address & (self.segment_bytes() - 1)) / SUM_BLOCK as u64;
        sys::pread_full(&seg.sums, &seg.sum_path, out, offset * ENTRY_BYTES as u64)?;
        Ok(())
    }
}

impl crate::tier::Device for SegmentedFile {
    fn write(&self, address: u64, bytes: &[u8]) -> std::io::Result<()> {
        self.write_page(address, bytes)
            .map_err(std::io::Error::from)
    }

    fn read(&self, address: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let (skip, got) = self
            .read_window(address, buf.len(), buf)
            .map_err(std::io::Error::from)?;
        debug_assert_eq!(skip, 0, "callers read from aligned addresses");
        Ok(got)
    }

    fn locate(&self, address: u64) -> std::io::Result<(RawFd, u64, crate::tier::KeepOpen)> {
        let at = SegmentedFile::locate(self, address, 1).map_err(std::io::Error::from)?;
        debug_assert_eq!(at.skip, 0, "callers read from aligned addresses");
        Ok((at.segment.fd(), at.file_offset, at.segment))
    }

    fn segment_bytes(&self) -> u64 {
        SegmentedFile::segment_bytes(self)
    }

    fn truncate_until(&self, address: u64) -> std::io::Result<()> {
        SegmentedFile::truncate_until(self, address)
            .map(|_| ())
            .map_err(std::io::Error::from)
    }

    fn check(&self, address: u64, bytes: &[u8]) -> bool {
        self.check_blocks(address, bytes)
    }
}
