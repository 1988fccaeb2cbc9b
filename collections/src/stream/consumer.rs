//! The parts of a consumer group (`streamNACK`, `streamConsumer`) and what its operations take
//! and give back.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::StreamId;

/// A delivered entry not yet acknowledged (`streamNACK`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nack {
    /// Unix ms of the last delivery (XPENDING's idle time is measured from it).
    pub delivery_time_ms: u64,
    /// Deliveries so far (XCLAIM's RETRYCOUNT can set it to anything).
    pub delivery_count: u64,
    pub(super) consumer: Arc<[u8]>,
}

impl Nack {
    /// The consumer that owns it.
    pub fn consumer(&self) -> &[u8] {
        &self.consumer
    }

    /// Milliseconds since the last delivery at `now_ms` (0 if the clock went back).
    pub fn idle_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.delivery_time_ms)
    }
}

/// A consumer (`streamConsumer`; Redis 7.0 tracks only the seen time).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Consumer {
    /// Unix ms of the last time the consumer read, claimed or was created.
    pub seen_time_ms: u64,
    pub(super) pel: BTreeSet<StreamId>,
}

impl Consumer {
    /// The IDs it was delivered and has not acknowledged, in ID order.
    pub fn pending(&self) -> impl DoubleEndedIterator<Item = StreamId> + '_ {
        self.pel.iter().copied()
    }

    /// How many entries it has pending.
    pub fn pending_count(&self) -> usize {
        self.pel.len()
    }
}

/// How XCLAIM changes a claimed NACK's delivery count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// RETRYCOUNT given: set it.
    Set(u64),
    /// The default: one more delivery.
    Increment,
    /// JUSTID without RETRYCOUNT: unchanged.
    Keep,
}

/// XCLAIM's options after parsing (`xclaimCommand`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClaimOptions {
    /// Only entries idle at least this long are claimed (0: any).
    pub min_idle_ms: u64,
    /// The delivery time claimed entries get (IDLE/TIME, already clamped to `[0, now]`).
    pub delivery_time_ms: u64,
    /// What happens to the delivery count.
    pub retry: Retry,
    /// FORCE: an ID not pending but present in the stream gets a new NACK.
    pub force: bool,
}

/// What XAUTOCLAIM did (`xautoclaimCommand`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AutoClaim {
    /// The cursor for the next call: the first pending ID after the last one examined, 0-0 at
    /// the end of the PEL.
    pub next: StreamId,
    /// IDs claimed, in order.
    pub claimed: Vec<StreamId>,
    /// Pending IDs whose entries no longer exist: their NACKs were dropped.
    pub deleted: Vec<StreamId>,
}

/// XPENDING's summary form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingSummary<'a> {
    /// Entries pending in the group.
    pub count: usize,
    /// The smallest and largest pending IDs (`None` when nothing is pending).
    pub bounds: Option<(StreamId, StreamId)>,
    /// Consumers with pending entries, by name, with their counts.
    pub consumers: Vec<(&'a [u8], usize)>,
}
