//! The state machine without any backend: generations, service call rules, backpressure.

use std::sync::atomic::AtomicBool;

use super::*;
use crate::Consumed;

/// Echoes complete lines; `P` parks, `C` closes after flush, `X` closes now; `B` writes 100
/// bytes. Takes one line per call.
#[derive(Default)]
struct Lines {
    closed: Vec<Token>,
    calls: usize,
}

impl Service for Lines {
    type Conn = ();
    fn accept(
        &mut self,
        _: &mut dyn Ctl,
        _: Token,
        _: Option<SocketAddr>,
        _: Option<SocketAddr>,
        _: &mut Vec<u8>,
    ) -> Option<()> {
        Some(())
    }
    fn input(
        &mut self,
        _: &mut dyn Ctl,
        _: Token,
        _: &mut (),
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Consumed {
        self.calls += 1;
        let Some(nl) = input.iter().position(|&b| b == b'\n') else {
            return Consumed {
                bytes: 0,
                after: After::Continue,
            };
        };
        let after = match &input[..nl] {
            b"P" => After::Park,
            b"C" => After::CloseAfterFlush,
            b"X" => After::CloseNow,
            b"B" => {
                out.extend_from_slice(&[b'b'; 100]);
                After::Continue
            }
            line => {
                out.extend_from_slice(line);
                After::Continue
            }
        };
        Consumed {
            bytes: nl + 1,
            after,
        }
    }
    fn closed(&mut self, token: Token, _: ()) {
        self.closed.push(token);
    }
    fn tick(&mut self, _: &mut dyn Ctl) {}
    fn poll(&mut self, _: Token, _: &mut (), _: &mut Vec<u8>) -> After {
        After::Continue
    }
    fn woken(&mut self, _: &mut dyn Ctl) {}
}

fn machine(max_conns: usize, max_pending_output: usize) -> Machine<Lines, ()> {
    let cfg = crate::Config {
        threads: 1,
        bind: vec![
            "127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        ],
        backend: crate::Backend::Epoll,
        pin_threads: false,
        tick: std::time::Duration::from_millis(10),
        max_pending_output,
        max_connections_per_thread: max_conns,
    };
    let shared = Arc::new(Shared {
        shutdown: AtomicBool::new(false),
        wakers: Vec::new(),
        counters: vec![Arc::default()],
    });
    Machine::new(Lines::default(), 0, &cfg, shared)
}

/// Drains what the backend would send.
fn send_all(m: &mut Machine<Lines, ()>, slot: u32) -> Vec<u8> {
    let mut sent = Vec::new();
    while m.conn_mut(slot).stage_output() {
        let chunk = m.conn(slot).unsent().to_vec();
        sent.extend_from_slice(&chunk);
        m.sent(slot, chunk.len());
    }
    sent
}

#[test]
fn generations_keep_stale_tokens_out() {
    let mut m = machine(2, 1024);
    let first = m.open((), None, None);
    assert_eq!(
        first,
        Token {
            slot: 0,
            generation: 0
        }
    );
    m.peer_gone(first.slot);
    assert_eq!(m.service.closed, vec![first]);
    // Still current until the backend releases it: late completions find it closing.
    assert!(m.is_current(0, 0));
    assert!(m.close_ready(0));
    m.release(0);
    assert!(!m.is_current(0, 0));
    let second = m.open((), None, None);
    assert_eq!(
        second,
        Token {
            slot: 0,
            generation: 1
        }
    );
    assert!(!m.is_current(first.slot, first.generation));
    assert!(m.is_current(second.slot, second.generation));
    // A resume or close for the old token does not reach the new occupant.
    m.ctl.resume(first);
    m.ctl.close(first);
    m.settle();
    assert_eq!(m.conn(0).phase, Phase::Open);
}

#[test]
fn table_is_bounded() {
    let mut m = machine(2, 1024);
    m.open((), None, None);
    m.open((), None, None);
    assert!(m.is_full());
}

#[test]
#[should_panic(expected = "not closing")]
fn releasing_an_open_slot_is_a_bug() {
    let mut m = machine(1, 1024);
    m.open((), None, None);
    m.release(0);
}

#[test]
fn input_is_offered_while_consumed_and_park_resume_keeps_order() {
    let mut m = machine(1, 1024);
    let t = m.open((), None, None);
    m.received(t.slot, b"a\nb\nP\nc\nd");
    assert_eq!(send_all(&mut m, t.slot), b"ab");
    assert!(m.conn(t.slot).parked);
    // Resume with no new bytes: the buffered "c" is handled, "d" waits for its newline.
    m.ctl.resume(t);
    m.settle();
    assert_eq!(send_all(&mut m, t.slot), b"c");
    m.received(t.slot, b"\n");
    assert_eq!(send_all(&mut m, t.slot), b"d");
}

#[test]
fn backpressure_has_hysteresis_and_replays_buffered_input() {
    let mut m = machine(1, 250);
    let t = m.open((), None, None);
    m.received(t.slot, b"B\nB\nB\nB\nB\n");
    // 300 bytes pending > 250: throttled after the third line; the rest waits.
    assert!(m.conn(t.slot).throttled);
    assert!(!m.want_read(t.slot));
    assert_eq!(m.conn(t.slot).out_bytes(), 300);
    m.received(t.slot, b"B\n"); // late bytes are buffered, not offered
    assert_eq!(m.conn(t.slot).out_bytes(), 300);
    // Sending 100 leaves 200: still above half the limit.
    assert!(m.conn_mut(t.slot).stage_output());
    m.sent(t.slot, 100);
    assert!(m.conn(t.slot).throttled);
    // 100 left, below half: the buffered lines are replayed until the limit bites again.
    m.sent(t.slot, 100);
    assert_eq!(m.conn(t.slot).out_bytes(), 300);
    assert!(m.conn(t.slot).throttled);
    let total = 200 + send_all(&mut m, t.slot).len();
    assert_eq!(total, 600, "every B was answered exactly once");
    assert!(m.want_read(t.slot));
}

#[test]
fn close_after_flush_waits_for_output_and_close_now_drops_it() {
    let mut m = machine(2, 1024);
    let a = m.open((), None, None);
    m.received(a.slot, b"hi\nC\nnever\n");
    assert!(!m.close_ready(a.slot), "output still pending");
    assert!(!m.want_read(a.slot));
    assert_eq!(send_all(&mut m, a.slot), b"hi");
    assert!(m.close_ready(a.slot));
    assert_eq!(m.service.closed, vec![a]);
    let b = m.open((), None, None);
    m.received(b.slot, b"bye\nX\n");
    assert!(m.close_ready(b.slot));
    assert_eq!(m.conn(b.slot).out_bytes(), 0);
}
