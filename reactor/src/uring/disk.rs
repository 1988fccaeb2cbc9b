//! Disk reads on the thread's own ring: `ReadFixed` into registered, page-aligned buffers.
//!
//! The buffers are allocated and registered on the first read, so a server that never reads
//! from disk pays nothing. If the kernel refuses the registration (a low `RLIMIT_MEMLOCK`),
//! the same buffers are used with plain `Read`s.

use std::collections::VecDeque;

use io_uring::types::Fd;
use io_uring::{Submitter, opcode, squeue};

use crate::DiskRead;
use crate::disk::{AlignedBuf, MAX_DISK_READ, READ_BUFFERS};
use crate::user_data::{Op, UserData};

/// The read buffers of one ring and the reads waiting for them.
#[derive(Default)]
pub(super) struct UringDisk {
    bufs: Vec<AlignedBuf>,
    free: Vec<u32>,
    queued: VecDeque<DiskRead>,
    /// The read each buffer is serving, by buffer index.
    serving: Vec<Option<DiskRead>>,
    fixed: bool,
}

impl UringDisk {
    /// Queues a read (already checked with `disk::check`).
    pub(super) fn queue(&mut self, read: DiskRead, submitter: &Submitter<'_>) {
        if self.bufs.is_empty() {
            self.allocate(submitter);
        }
        self.queued.push_back(read);
    }

    fn allocate(&mut self, submitter: &Submitter<'_>) {
        self.bufs = (0..READ_BUFFERS).map(|_| AlignedBuf::new()).collect();
        let iovecs: Vec<libc::iovec> = self.bufs.iter_mut().map(AlignedBuf::iovec).collect();
        // SAFETY: the buffers stay allocated as long as the ring: the loop drops the ring before
        // this struct, and leaks this struct if reads might still be running.
        match unsafe { submitter.register_buffers(&iovecs) } {
            Ok(()) => {
                self.fixed = true;
                log::info!(
                    "reactor: disk reads use {READ_BUFFERS} registered buffers of {} KiB",
                    MAX_DISK_READ / 1024
                );
            }
            Err(err) => log::warn!(
                "reactor: registering disk read buffers failed ({err}); using unregistered reads"
            ),
        }
        self.free = (0..READ_BUFFERS as u32).rev().collect();
        self.serving = vec![None; READ_BUFFERS];
    }

    /// The entry for the next queued read, if a buffer is free for it.
    pub(super) fn next_entry(&mut self) -> Option<squeue::Entry> {
        if self.queued.is_empty() {
            return None;
        }
        let index = self.free.pop()?;
        let read = self.queued.pop_front().expect("checked non-empty");
        let buf = &mut self.bufs[index as usize];
        let user_data = UserData {
            op: Op::DiskRead,
            slot: index,
            generation: 0,
        }
        .pack();
        let entry = if self.fixed {
            let buf_index = u16::try_from(index).expect("READ_BUFFERS fits u16");
            opcode::ReadFixed::new(Fd(read.fd), buf.as_mut_ptr(), read.len, buf_index)
                .offset(read.offset)
                .build()
        } else {
            opcode::Read::new(Fd(read.fd), buf.as_mut_ptr(), read.len)
                .offset(read.offset)
                .build()
        };
        self.serving[index as usize] = Some(read);
        Some(entry.user_data(user_data))
    }

    /// The read buffer `index` served and its bytes; call [`UringDisk::release`] after use.
    pub(super) fn finished(&self, index: u32) -> Option<(DiskRead, &AlignedBuf)> {
        let read = (*self.serving.get(index as usize)?)?;
        Some((read, &self.bufs[index as usize]))
    }

    /// Frees buffer `index` for the next read.
    pub(super) fn release(&mut self, index: u32) {
        if let Some(slot) = self.serving.get_mut(index as usize)
            && slot.take().is_some()
        {
            self.free.push(index);
        }
    }

    /// Reads the kernel has not completed yet.
    pub(super) fn in_flight(&self) -> usize {
        self.serving.iter().filter(|s| s.is_some()).count()
    }
}
