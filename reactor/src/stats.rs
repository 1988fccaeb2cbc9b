//! Per-thread event counters and their public sum.
//!
//! Each counter has exactly one writer (its reactor thread), so an increment is a relaxed load
//! and store rather than a locked read-modify-write: readers (`Running::stats`) only need a
//! recent value, not a consistent snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($name:ident: $doc:literal,)*) => {
        /// Event counts of the reactor loops (summed over threads by [`crate::Running::stats`]).
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct Stats {
            $(#[doc = $doc] pub $name: u64,)*
        }

        /// One thread's counters; written only by that thread.
        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $(pub(crate) $name: AtomicU64,)*
        }

        impl Counters {
            pub(crate) fn add_into(&self, stats: &mut Stats) {
                $(stats.$name += self.$name.load(Ordering::Relaxed);)*
            }
        }
    };
}

counters! {
    accepts: "Connections accepted from the kernel.",
    refused: "Connections refused (table full, or the service said no).",
    closes: "Connections closed (for any reason).",
    recvs: "Receive completions (io_uring) or successful reads (epoll) that carried data.",
    bytes_in: "Bytes received.",
    sends: "Sends completed.",
    bytes_out: "Bytes sent.",
    short_sends: "Sends that moved fewer bytes than asked (the rest was resubmitted).",
    enobufs: "Multishot receives that ended because the provided buffer ring was empty.",
    rearms: "Receives re-armed after a multishot receive ended (or read interest restored).",
    parks: "Times a connection was parked by the service.",
    resumes: "Parked connections resumed.",
    backpressure: "Times a connection stopped being read because its output was over the limit.",
    cancels: "Cancellations submitted (io_uring).",
    ticks: "Ticks run.",
    wakes: "Cross-thread wake-ups handled.",
    disk_reads: "Disk reads completed for the service (successful or not).",
}

/// Adds `n` to a counter owned by the calling thread.
pub(crate) fn bump(counter: &AtomicU64, n: u64) {
    // Single writer: no other thread stores, so load + store cannot lose an update.
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}
