//! The tag every kernel event carries: `op | slot | generation` packed in 64 bits.
//!
//! io_uring hands `user_data` back on each completion and epoll hands back `data`; both
//! backends use the same packing so that an event for a slot's previous occupant is recognised
//! by its generation and dropped, never applied to the slot's next connection.
//!
//! Layout (most significant first): 8 bits op, 24 bits slot, 32 bits generation.

/// Bits for the operation kind.
const OP_BITS: u32 = 8;
/// Bits for the connection slot: bounds `max_connections_per_thread`.
const SLOT_BITS: u32 = 24;
/// Bits for the slot generation (wraps; 2^32 reuses of one slot before a collision).
const GEN_BITS: u32 = 32;

const _: () = assert!(OP_BITS + SLOT_BITS + GEN_BITS == 64);
const _: () = assert!(GEN_BITS == u32::BITS, "Token::generation is a u32");
const _: () = assert!(SLOT_BITS < u32::BITS, "Token::slot is a u32");

/// Exclusive upper bound on a slot index (and so on connections per thread).
pub(crate) const MAX_SLOTS: usize = 1 << SLOT_BITS;

const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;
const GEN_MASK: u64 = (1 << GEN_BITS) - 1;

/// What the tagged operation was. Zero is never used, so a zeroed `user_data` is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Op {
    /// The listener's (multishot) accept, or listener readiness.
    Accept = 1,
    /// A connection's (multishot) recv, or connection readiness under epoll.
    Recv = 2,
    /// A connection's one send in flight.
    Send = 3,
    /// Closing a connection's fixed file slot.
    Close = 4,
    /// The waker eventfd read (or readiness).
    WakerRead = 5,
    /// Reserved: a timeout SQE (the loop waits with `submit_with_args` instead).
    Timeout = 6,
    /// An `AsyncCancel` of one of the slot's operations.
    Cancel = 7,
    /// A `shutdown(2)` of the slot's socket, used when a cancel could not stop a recv.
    Shutdown = 8,
    /// A disk read for the service; the slot field is the read buffer's index.
    DiskRead = 9,
}

const _: () = assert!((Op::DiskRead as u64) < (1 << OP_BITS));

impl Op {
    fn from_bits(bits: u8) -> Option<Op> {
        Some(match bits {
            1 => Op::Accept,
            2 => Op::Recv,
            3 => Op::Send,
            4 => Op::Close,
            5 => Op::WakerRead,
            6 => Op::Timeout,
            7 => Op::Cancel,
            8 => Op::Shutdown,
            9 => Op::DiskRead,
            _ => return None,
        })
    }
}

/// An unpacked tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UserData {
    pub(crate) op: Op,
    pub(crate) slot: u32,
    pub(crate) generation: u32,
}

impl UserData {
    /// A tag for an operation that belongs to no connection (accept, waker).
    pub(crate) const fn global(op: Op) -> UserData {
        UserData {
            op,
            slot: 0,
            generation: 0,
        }
    }

    /// The tag of listener `listener`'s accept (its readiness, for epoll).
    pub(crate) fn accept(listener: usize) -> UserData {
        UserData {
            slot: u32::try_from(listener).expect("at most MAX_BIND_ADDRS listeners"),
            ..UserData::global(Op::Accept)
        }
    }

    pub(crate) fn pack(self) -> u64 {
        assert!((self.slot as usize) < MAX_SLOTS, "slot out of range");
        let packed = ((self.op as u64) << (SLOT_BITS + GEN_BITS))
            | ((u64::from(self.slot) & SLOT_MASK) << GEN_BITS)
            | (u64::from(self.generation) & GEN_MASK);
        debug_assert_eq!(UserData::unpack(packed), Some(self));
        packed
    }

    /// `None` for a value no `pack` produced (an unknown op).
    pub(crate) fn unpack(value: u64) -> Option<UserData> {
        let op = Op::from_bits((value >> (SLOT_BITS + GEN_BITS)) as u8)?;
        Some(UserData {
            op,
            slot: ((value >> GEN_BITS) & SLOT_MASK) as u32,
            generation: (value & GEN_MASK) as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_at_the_edges() {
        let ops = [
            Op::Accept,
            Op::Recv,
            Op::Send,
            Op::Close,
            Op::WakerRead,
            Op::Timeout,
            Op::Cancel,
            Op::Shutdown,
            Op::DiskRead,
        ];
        for op in ops {
            for slot in [0, 1, 4095, (MAX_SLOTS - 1) as u32] {
                for generation in [0, 1, 0x8000_0000, u32::MAX] {
                    let ud = UserData {
                        op,
                        slot,
                        generation,
                    };
                    assert_eq!(UserData::unpack(ud.pack()), Some(ud));
                }
            }
        }
    }

    #[test]
    fn fields_do_not_bleed() {
        let a = UserData {
            op: Op::Recv,
            slot: 7,
            generation: u32::MAX,
        }
        .pack();
        let b = UserData {
            op: Op::Recv,
            slot: 8,
            generation: 0,
        }
        .pack();
        assert_ne!(a, b);
        let c = UserData {
            op: Op::Send,
            slot: 7,
            generation: u32::MAX,
        }
        .pack();
        assert_ne!(a, c);
        // A late completion for generation g never matches generation g + 1 of the same slot.
        let old = UserData {
            op: Op::Recv,
            slot: 3,
            generation: 41,
        }
        .pack();
        let new = UserData {
            op: Op::Recv,
            slot: 3,
            generation: 42,
        }
        .pack();
        assert_ne!(old, new);
        assert_eq!(UserData::unpack(old).map(|u| u.generation), Some(41));
    }

    #[test]
    fn zero_and_unknown_ops_are_rejected() {
        assert_eq!(UserData::unpack(0), None);
        assert_eq!(UserData::unpack(u64::MAX), None);
    }

    #[test]
    #[should_panic(expected = "slot out of range")]
    fn slot_overflow_is_caught() {
        let _ = UserData {
            op: Op::Recv,
            slot: MAX_SLOTS as u32,
            generation: 0,
        }
        .pack();
    }
}
