//! One consumer group (`streamCG`), its consumers (`streamConsumer`) and its pending entries
//! (`streamNACK`), with the operations `t_stream.c` performs on them.
//!
//! Every NACK is in the group's PEL and in its owner's PEL, as in Redis (where both rax trees
//! point at one `streamNACK`); here the group's PEL holds the NACK and names its owner, and the
//! owner's PEL holds the ID. All mutations go through methods so the two stay in step and the
//! byte count stays exact.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::consumer::{AutoClaim, ClaimOptions, Consumer, Nack, PendingSummary, Retry};
use super::{Entries, StreamId};

/// Bytes charged per pending entry: the group's tree node and the consumer's (two 16-byte IDs,
/// the NACK's two counters and owner pointer, tree overhead).
pub(super) const NACK_BYTES: usize = 96;
/// Bytes charged per consumer besides its name.
pub(super) const CONSUMER_BYTES: usize = 80;
/// Bytes charged per group besides its name.
pub(super) const GROUP_BYTES: usize = 128;

/// A consumer group (`streamCG`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsumerGroup {
    /// The last ID delivered to the group's consumers with `>`.
    pub last_id: StreamId,
    /// The group's logical read counter; `None` is Redis's `SCG_INVALID_ENTRIES_READ` (-1).
    /// Redis keeps it in a `long long`, so commands keep it at most `i64::MAX`.
    pub entries_read: Option<u64>,
    pel: BTreeMap<StreamId, Nack>,
    consumers: BTreeMap<Arc<[u8]>, Consumer>,
    /// Bytes held by the PEL and the consumers (kept as they change: O(1) memory usage).
    bytes: usize,
}

impl ConsumerGroup {
    /// A group with nothing pending and no consumers (`streamCreateCG`).
    pub fn new(last_id: StreamId, entries_read: Option<u64>) -> Self {
        Self {
            last_id,
            entries_read,
            ..Self::default()
        }
    }

    /// Bytes held by the PEL and the consumers.
    pub fn memory_usage(&self) -> usize {
        self.bytes
    }

    /// The group's PEL: every pending ID with its NACK, in ID order.
    pub fn pel(&self) -> &BTreeMap<StreamId, Nack> {
        &self.pel
    }

    /// The consumers in name byte order.
    pub fn consumers(&self) -> impl DoubleEndedIterator<Item = (&[u8], &Consumer)> + '_ {
        self.consumers.iter().map(|(k, v)| (&**k, v))
    }

    /// Consumers.
    pub fn consumer_count(&self) -> usize {
        self.consumers.len()
    }

    /// A consumer by name.
    pub fn consumer(&self, name: &[u8]) -> Option<&Consumer> {
        self.consumers.get(name)
    }

    /// Creates a consumer seen at `now_ms` (`streamCreateConsumer`); false if it exists.
    pub fn create_consumer(&mut self, name: &[u8], now_ms: u64) -> bool {
        if self.consumers.contains_key(name) {
            return false;
        }
        self.bytes += CONSUMER_BYTES + name.len();
        let c = Consumer {
            seen_time_ms: now_ms,
            pel: BTreeSet::new(),
        };
        self.consumers.insert(Arc::from(name), c);
        true
    }

    /// Looks a consumer up and refreshes its seen time, creating it when missing
    /// (`streamLookupConsumer(SLC_DEFAULT)` then `streamCreateConsumer`). True if created.
    pub fn touch_consumer(&mut self, name: &[u8], now_ms: u64) -> bool {
        match self.consumers.get_mut(name) {
            Some(c) => {
                c.seen_time_ms = now_ms;
                false
            }
            None => self.create_consumer(name, now_ms),
        }
    }

    /// Deletes a consumer and its pending entries (`streamDelConsumer`): how many it had, or
    /// `None` if there is no such consumer.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let (key, consumer) = self.consumers.remove_entry(name)?;
        for id in &consumer.pel {
            self.pel.remove(id);
        }
        let n = consumer.pel.len();
        let freed = CONSUMER_BYTES + key.len() + n * NACK_BYTES;
        self.bytes = self.bytes.saturating_sub(freed);
        Some(n)
    }

    /// The shared name of consumer `name`, created (seen now) if missing.
    fn owner(&mut self, name: &[u8], now_ms: u64) -> Arc<[u8]> {
        if let Some((k, _)) = self.consumers.get_key_value(name) {
            return k.clone();
        }
        self.create_consumer(name, now_ms);
        self.consumers
            .get_key_value(name)
            .map_or_else(|| Arc::from(name), |(k, _)| k.clone())
    }

    /// Makes `consumer` own the NACK of `id` (creating the NACK if there is none), with the
    /// given delivery time and count.
    fn assign(&mut self, id: StreamId, consumer: &[u8], time_ms: u64, count: u64) {
        let owner = self.owner(consumer, time_ms);
        let previous = self.pel.insert(
            id,
            Nack {
                delivery_time_ms: time_ms,
                delivery_count: count,
                consumer: owner.clone(),
            },
        );
        match previous {
            Some(old) if *old.consumer != *owner => {
                if let Some(c) = self.consumers.get_mut(&old.consumer) {
                    c.pel.remove(&id);
                }
            }
            Some(_) => {}
            None => self.bytes += NACK_BYTES,
        }
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pel.insert(id);
        }
    }

    /// Records the delivery of `id` to `consumer` by XREADGROUP `>` (not NOACK): a new NACK,
    /// or the existing one moved to `consumer` with its count reset to 1 (SETID can make an
    /// entry be delivered again).
    pub fn deliver(&mut self, id: StreamId, consumer: &[u8], now_ms: u64) {
        self.assign(id, consumer, now_ms, 1);
    }

    /// Moves the group's last delivered ID to `id` as `streamReplyWithRange` does when it
    /// serves `id` with `>`: `counter_valid` says the read counter may simply be incremented
    /// (it is valid and no tombstone lies at or after `id`); otherwise, if the stream ever had
    /// entries, the counter becomes `estimate` (`streamEstimateDistanceFromFirstEverEntry`).
    pub fn advance(
        &mut self,
        id: StreamId,
        counter_valid: bool,
        entries_added: u64,
        estimate: impl FnOnce() -> Option<u64>,
    ) {
        if id <= self.last_id {
            return;
        }
        match self.entries_read {
            Some(n) if counter_valid => self.entries_read = Some(n.saturating_add(1)),
            _ if entries_added > 0 => self.entries_read = estimate(),
            _ => {}
        }
        self.last_id = id;
    }

    /// [`ConsumerGroup::advance`] with the stream's own answers (`streamReplyWithRange`).
    pub fn advance_in(&mut self, id: StreamId, entries: &Entries) {
        let valid = !entries.range_has_tombstones(id, None);
        let estimate = || entries.estimate_distance_from_first_ever_entry(id);
        self.advance(id, valid, entries.entries_added(), estimate);
    }

    /// The group's lag (`streamReplyWithCGLag`): entries added to the stream and not yet read
    /// by the group, `None` when tombstones make it unknowable. Redis computes it in `long
    /// long`, so a counter set beyond the stream's (ENTRIESREAD) gives a negative lag.
    pub fn lag(&self, entries: &Entries) -> Option<i64> {
        let added = entries.entries_added();
        if added == 0 {
            return Some(0);
        }
        let read = match self.entries_read {
            Some(n) if !entries.range_has_tombstones(self.last_id, None) => n,
            _ => entries.estimate_distance_from_first_ever_entry(self.last_id)?,
        };
        Some((added as i64).wrapping_sub(read as i64))
    }

    /// Acknowledges `id` (`xackCommand`): whether it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        let Some(nack) = self.pel.remove(&id) else {
            return false;
        };
        if let Some(c) = self.consumers.get_mut(&nack.consumer) {
            c.pel.remove(&id);
        }
        self.bytes = self.bytes.saturating_sub(NACK_BYTES);
        true
    }

    /// XREADGROUP with an explicit ID (`streamReplyWithRangeFromConsumerPEL`): the consumer's
    /// pending IDs from `start`, at most `count` (0: all). Each whose entry still exists
    /// (`exists`) is delivered again (time now, count + 1); the flag says whether it exists.
    pub fn history(
        &mut self,
        consumer: &[u8],
        start: StreamId,
        count: usize,
        now_ms: u64,
        mut exists: impl FnMut(StreamId) -> bool,
    ) -> Vec<(StreamId, bool)> {
        let Some(c) = self.consumers.get(consumer) else {
            return Vec::new();
        };
        let limit = if count == 0 { usize::MAX } else { count };
        let ids: Vec<StreamId> = c.pel.range(start..).take(limit).copied().collect();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let found = exists(id);
            if found && let Some(nack) = self.pel.get_mut(&id) {
                nack.delivery_time_ms = now_ms;
                nack.delivery_count = nack.delivery_count.wrapping_add(1);
            }
            out.push((id, found));
        }
        out
    }

    /// XPENDING's summary form.
    pub fn summary(&self) -> PendingSummary<'_> {
        let bounds = match (self.pel.keys().next(), self.pel.keys().next_back()) {
            (Some(&a), Some(&b)) => Some((a, b)),
            _ => None,
        };
        let consumers = self
            .consumers()
            .filter(|(_, c)| !c.pel.is_empty())
            .map(|(n, c)| (n, c.pel.len()))
            .collect();
        PendingSummary {
            count: self.pel.len(),
            bounds,
            consumers,
        }
    }

    /// XPENDING's extended form: pending entries in `[start, end]` (of `consumer`'s PEL if
    /// given), at most `count`, skipping those idle less than `min_idle_ms` (Redis's `IDLE`, signed;
    /// 0 filters nothing). A missing consumer has none.
    pub fn pending_range(
        &self,
        start: StreamId,
        end: StreamId,
        count: usize,
        min_idle_ms: i64,
        consumer: Option<&[u8]>,
        now_ms: u64,
    ) -> Vec<(StreamId, &Nack)> {
        if start > end || count == 0 {
            return Vec::new();
        }
        let idle_ok = |n: &Nack| {
            min_idle_ms == 0
                || i128::from(now_ms) - i128::from(n.delivery_time_ms) >= i128::from(min_idle_ms)
        };
        let it: Box<dyn Iterator<Item = (StreamId, &Nack)> + '_> = match consumer {
            None => Box::new(self.pel.range(start..=end).map(|(k, v)| (*k, v))),
            Some(name) => match self.consumers.get(name) {
                None => return Vec::new(),
                Some(c) => Box::new(
                    c.pel
                        .range(start..=end)
                        .filter_map(|id| self.pel.get(id).map(|n| (*id, n))),
                ),
            },
        };
        it.filter(|(_, n)| idle_ok(n)).take(count).collect()
    }

    /// XCLAIM (`xclaimCommand`) of `ids` for `consumer`: the IDs claimed, in argument order.
    /// A pending ID whose entry no longer exists (`exists`) loses its NACK; the consumer is
    /// created (or its seen time refreshed) only when something is claimed.
    pub fn claim(
        &mut self,
        consumer: &[u8],
        ids: &[StreamId],
        opts: ClaimOptions,
        now_ms: u64,
        mut exists: impl FnMut(StreamId) -> bool,
    ) -> Vec<StreamId> {
        let mut claimed = Vec::new();
        let mut touched = false;
        for &id in ids {
            if !exists(id) {
                self.ack(id);
                continue;
            }
            let (count, idle) = match self.pel.get(&id) {
                Some(n) => (n.delivery_count, Some(n.idle_ms(now_ms))),
                // `streamCreateNACK` starts a forced NACK at one delivery.
                None if opts.force => (1, None),
                None => continue,
            };
            // A NACK created by FORCE has no owner yet, so Redis skips its idle check.
            if let Some(idle) = idle
                && opts.min_idle_ms > 0
                && idle < opts.min_idle_ms
            {
                continue;
            }
            if !touched {
                self.touch_consumer(consumer, now_ms);
                touched = true;
            }
            let count = match opts.retry {
                Retry::Set(n) => n,
                Retry::Increment => count.wrapping_add(1),
                Retry::Keep => count,
            };
            self.assign(id, consumer, opts.delivery_time_ms, count);
            claimed.push(id);
        }
        claimed
    }

    /// XAUTOCLAIM (`xautoclaimCommand`): scans the PEL from `start`, examining at most
    /// `count * 10` entries, claiming for `consumer` those idle at least `min_idle_ms`, until
    /// `count` entries were claimed or found deleted. `justid` leaves delivery counts alone.
    // The command's own argument list; a struct for it would only be unpacked here.
    #[allow(clippy::too_many_arguments)]
    pub fn autoclaim(
        &mut self,
        consumer: &[u8],
        min_idle_ms: u64,
        start: StreamId,
        count: usize,
        justid: bool,
        now_ms: u64,
        mut exists: impl FnMut(StreamId) -> bool,
    ) -> AutoClaim {
        let mut out = AutoClaim::default();
        let mut attempts = count.saturating_mul(10);
        let mut left = count;
        let mut cursor = start;
        let mut touched = false;
        while attempts > 0 && left > 0 {
            attempts -= 1;
            let Some((&id, nack)) = self.pel.range(cursor..).next() else {
                return out;
            };
            let (idle, delivered) = (nack.idle_ms(now_ms), nack.delivery_count);
            cursor = match id.next() {
                Some(n) => n,
                None => StreamId::MAX,
            };
            if !exists(id) {
                self.ack(id);
                out.deleted.push(id);
                left -= 1;
            } else if min_idle_ms == 0 || idle >= min_idle_ms {
                if !touched {
                    self.touch_consumer(consumer, now_ms);
                    touched = true;
                }
                let n = if justid {
                    delivered
                } else {
                    delivered.wrapping_add(1)
                };
                self.assign(id, consumer, now_ms, n);
                out.claimed.push(id);
                left -= 1;
            }
            if id == StreamId::MAX {
                return out;
            }
        }
        out.next = self
            .pel
            .range(cursor..)
            .next()
            .map_or(StreamId::MIN, |(k, _)| *k);
        out
    }

    /// Adds a pending entry owned by `consumer` (created, seen at `seen_time_ms`, if missing)
    /// as an RDB or spill loader does; false if `id` was already pending (corrupt input).
    pub fn load_pending(
        &mut self,
        consumer: &[u8],
        id: StreamId,
        delivery_time_ms: u64,
        delivery_count: u64,
    ) -> bool {
        if self.pel.contains_key(&id) {
            return false;
        }
        self.assign(id, consumer, delivery_time_ms, delivery_count);
        true
    }

    /// Adds a consumer with its seen time as a loader does; false if it exists.
    pub fn load_consumer(&mut self, name: &[u8], seen_time_ms: u64) -> bool {
        self.create_consumer(name, seen_time_ms)
    }
}
