//! One connection slot: its buffers and its place in the lifecycle, shared by both backends.
//!
//! Buffer ownership, the rule both backends live by:
//! - `input` holds received bytes; `input[input_off..]` is what the service has not consumed.
//!   The consumed prefix is trimmed once per receive (in [`Conn::append_input`]), not once per
//!   command, so a batch of pipelined commands costs one `memmove` of the remainder at most.
//! - `pending` is where the service appends replies. It is never handed to the kernel.
//! - `in_flight[in_flight_off..]` is what the kernel is sending (io_uring) or what a nonblocking
//!   `send` left over (epoll). It is only replaced by [`Conn::stage_output`] once it is fully
//!   sent, so its heap buffer stays put while a send SQE points into it.

use crate::machine::Phase;

/// Buffers larger than this are released once empty, so that one 10 MB reply does not pin
/// 10 MB per connection forever.
const SHRINK_ABOVE: usize = 1 << 20;

/// A connection: buffers, lifecycle phase, the service's state, and the backend's own
/// bookkeeping `io` (flags for ops in flight, or the socket and its epoll interest).
pub(crate) struct Conn<C, B> {
    pub(crate) generation: u32,
    /// `None` once `Service::closed` has been called, or if the service refused the connection.
    pub(crate) svc: Option<C>,
    pub(crate) input: Vec<u8>,
    pub(crate) input_off: usize,
    pub(crate) pending: Vec<u8>,
    in_flight: Vec<u8>,
    in_flight_off: usize,
    /// The service parked the connection; `input` is not called until `Ctl::resume`.
    pub(crate) parked: bool,
    /// Output is over the limit: not read (and not fed to the service) until below half of it.
    pub(crate) throttled: bool,
    pub(crate) phase: Phase,
    /// Queued in the thread's dirty list (deduplicates entries).
    pub(crate) dirty: bool,
    pub(crate) io: B,
}

impl<C, B> Conn<C, B> {
    pub(crate) fn new(generation: u32, io: B) -> Self {
        Conn {
            generation,
            svc: None,
            input: Vec::new(),
            input_off: 0,
            pending: Vec::new(),
            in_flight: Vec::new(),
            in_flight_off: 0,
            parked: false,
            throttled: false,
            phase: Phase::Open,
            dirty: false,
            io,
        }
    }

    /// Bytes received and not yet consumed by the service.
    pub(crate) fn unconsumed(&self) -> usize {
        debug_assert!(self.input_off <= self.input.len());
        self.input.len() - self.input_off
    }

    /// Appends received bytes, first trimming what the service consumed since the last receive.
    pub(crate) fn append_input(&mut self, data: &[u8]) {
        assert!(!data.is_empty());
        if self.input_off > 0 {
            self.input.drain(..self.input_off);
            self.input_off = 0;
        }
        self.input.extend_from_slice(data);
    }

    /// Records that the service consumed `n` more bytes.
    pub(crate) fn consume(&mut self, n: usize) {
        assert!(
            n <= self.unconsumed(),
            "service consumed more input than it was given"
        );
        self.input_off += n;
        if self.input_off == self.input.len() {
            // Everything consumed: reset in place (no memmove), and drop a huge buffer.
            self.input_off = 0;
            if self.input.capacity() > SHRINK_ABOVE {
                self.input = Vec::new();
            } else {
                self.input.clear();
            }
        }
    }

    /// Bytes the service produced that the peer has not been sent yet.
    pub(crate) fn out_bytes(&self) -> usize {
        self.pending.len() + self.unsent().len()
    }

    /// The part of the in-flight buffer the kernel has not taken yet.
    pub(crate) fn unsent(&self) -> &[u8] {
        &self.in_flight[self.in_flight_off..]
    }

    /// Makes sure there is something in flight if anything is pending: moves `pending` into the
    /// (fully sent) in-flight buffer. Returns whether there is something to send. Callers must
    /// not call this while the kernel is still reading `in_flight` (a send in flight).
    pub(crate) fn stage_output(&mut self) -> bool {
        if self.unsent().is_empty() && !self.pending.is_empty() {
            debug_assert_eq!(self.in_flight_off, self.in_flight.len());
            self.in_flight.clear();
            self.in_flight_off = 0;
            // Swap rather than copy: the service keeps appending into the old (now empty)
            // in-flight allocation, and the replies of a whole tick leave in one send.
            std::mem::swap(&mut self.pending, &mut self.in_flight);
        }
        !self.unsent().is_empty()
    }

    /// Records that the kernel took `n` bytes of the in-flight buffer.
    pub(crate) fn sent(&mut self, n: usize) {
        assert!(n <= self.unsent().len(), "sent more than was in flight");
        self.in_flight_off += n;
        if self.unsent().is_empty() {
            self.in_flight_off = 0;
            if self.in_flight.capacity() > SHRINK_ABOVE {
                self.in_flight = Vec::new();
            } else {
                self.in_flight.clear();
            }
        }
    }

    /// Drops output not yet handed to the kernel (closing now). `in_flight` is left alone: a send
    /// may still be reading it.
    pub(crate) fn drop_pending(&mut self) {
        self.pending = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_is_trimmed_once_per_append() {
        let mut c: Conn<(), ()> = Conn::new(0, ());
        c.append_input(b"abcdef");
        c.consume(2);
        c.consume(1);
        assert_eq!(&c.input[c.input_off..], b"def");
        c.append_input(b"gh");
        assert_eq!(c.input_off, 0);
        assert_eq!(&c.input[..], b"defgh");
        c.consume(5);
        assert_eq!(c.unconsumed(), 0);
        assert!(c.input.is_empty());
    }

    #[test]
    #[should_panic(expected = "more input")]
    fn over_consumption_is_caught() {
        let mut c: Conn<(), ()> = Conn::new(0, ());
        c.append_input(b"ab");
        c.consume(3);
    }

    #[test]
    fn pending_and_in_flight_stay_apart() {
        let mut c: Conn<(), ()> = Conn::new(0, ());
        c.pending.extend_from_slice(b"hello");
        assert!(c.stage_output());
        assert_eq!(c.unsent(), b"hello");
        // The service appends while "hello" is in flight: it must not join the in-flight buffer.
        c.pending.extend_from_slice(b" world");
        let ptr = c.unsent().as_ptr();
        assert!(c.stage_output());
        assert_eq!(
            c.unsent().as_ptr(),
            ptr,
            "in-flight buffer moved under a send"
        );
        c.sent(2);
        assert_eq!(c.unsent(), b"llo");
        assert_eq!(c.out_bytes(), 3 + 6);
        c.sent(3);
        assert!(c.unsent().is_empty());
        assert!(c.stage_output());
        assert_eq!(c.unsent(), b" world");
        c.sent(6);
        assert!(!c.stage_output());
        assert_eq!(c.out_bytes(), 0);
    }
}
