//! A chain walk below the head driven by someone else's asynchronous reads (the reactor's).
//!
//! `Session::locate` says whether a key's lookup would read the device; if so it hands out a
//! [`Fetch`]. The caller performs each [`FileRead`] without blocking, feeds the bytes back with
//! [`Fetch::complete`], and once that says [`FetchStep::Done`] re-runs the command: the walk's
//! result is in this thread's cache, so the lookup no longer touches the device.

use std::os::fd::RawFd;

use super::disk_record::{DiskFile, Next, Walk};
use super::{KeepOpen, TierStats};
use crate::store::Store;

/// A read of `len` bytes at `offset` of the open file `fd` (aligned for direct I/O).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRead {
    /// The file (owned by the store's device; open as long as the store).
    pub fd: RawFd,
    /// Byte offset.
    pub offset: u64,
    /// Bytes to read.
    pub len: u32,
}

/// What a fetch wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchStep {
    /// Perform this read and call [`Fetch::complete`] with its bytes.
    Read(FileRead),
    /// Finished: run the command again (on this thread).
    Done,
}

/// One key's walk below the head, waiting for reads.
pub struct Fetch {
    walk: Walk,
    next: Next,
    /// The file of the read in flight, kept open until it completes.
    open: Option<KeepOpen>,
}

impl std::fmt::Debug for Fetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetch")
            .field("at", &self.walk.at())
            .finish_non_exhaustive()
    }
}

impl Fetch {
    pub(crate) fn new(walk: Walk) -> Fetch {
        let next = walk.next_read();
        Fetch {
            walk,
            next,
            open: None,
        }
    }

    /// Whether the walk ended on an unreadable or corrupt block (an I/O error, a checksum
    /// mismatch): the key then reads as absent, which the caller should not take for an answer.
    pub fn failed(&self) -> bool {
        self.walk.failed()
    }

    /// The first step: the read to perform.
    pub fn start(&mut self, store: &Store) -> FetchStep {
        self.step(store)
    }

    fn step(&mut self, store: &Store) -> FetchStep {
        let Some(tier) = store.tier.as_ref() else {
            return FetchStep::Done;
        };
        loop {
            let Next::Read { file, address, len } = self.next else {
                self.open = None;
                return FetchStep::Done;
            };
            // The record's address, not the aligned read's (the log's first record starts
            // after its first block does).
            if self.walk.at() < store.log.begin_address() {
                // Compaction moved everything live above this: the chain ends here.
                self.next = self.walk.end();
                continue;
            }
            let device = match file {
                DiskFile::Log => Some(&*tier.device),
                DiskFile::Objects => tier.objects.as_ref().map(|o| &*o.device),
            };
            let located = match device {
                Some(d) => d.locate(address),
                None => Err(std::io::Error::other("the store has no object log")),
            };
            match located {
                Ok((fd, offset, open)) => {
                    self.open = Some(open);
                    return FetchStep::Read(FileRead {
                        fd,
                        offset,
                        len: len as u32,
                    });
                }
                Err(_) if self.walk.at() < store.log.begin_address() => {
                    self.next = self.walk.end();
                }
                Err(err) => {
                    log::error!("disk tier: cannot locate address {address} ({file:?}): {err}");
                    self.next = self.walk.feed(&[], &tier.stats, store.object_reader());
                }
            }
        }
    }

    /// The read asked for finished with `result`: what next.
    pub fn complete(&mut self, store: &Store, result: std::io::Result<&[u8]>) -> FetchStep {
        let Some(tier) = store.tier.as_ref() else {
            return FetchStep::Done;
        };
        TierStats::bump(&tier.stats.async_reads);
        let cut = self.walk.at() < store.log.begin_address();
        // The read that just finished: a log block is checked against its checksum.
        let log_read = match self.next {
            Next::Read {
                file: DiskFile::Log,
                address,
                ..
            } => Some(address),
            _ => None,
        };
        self.next = match result {
            // Compaction deleted the file under the read: the chain ends here (see `step`).
            Ok([]) | Err(_) if cut => self.walk.end(),
            Ok(bytes) if log_read.is_some_and(|a| !tier.device.check(a, bytes)) => {
                if self.walk.at() < store.log.begin_address() {
                    // Compaction deleted the segment meanwhile (its sums went with it).
                    self.walk.end()
                } else {
                    self.walk
                        .corrupt("a block that fails its checksum", &tier.stats)
                }
            }
            Ok(bytes) => self.walk.feed(bytes, &tier.stats, store.object_reader()),
            Err(err) => {
                log::error!(
                    "disk tier: read at log address {} failed: {err}",
                    self.walk.at()
                );
                self.walk.feed(&[], &tier.stats, store.object_reader())
            }
        };
        self.step(store)
    }
}
