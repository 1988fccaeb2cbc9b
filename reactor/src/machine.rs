//! The backend-neutral connection state machine: when the service is called, what its answers
//! do to a connection, backpressure, park/resume and close-after-flush.
//!
//! A backend reports events (`open`, `received`, `sent`, `peer_gone`, `tick`, `woken`) and then,
//! once per loop iteration, walks the dirty list and asks each dirty connection what it wants
//! (`want_read`, `Conn::stage_output`, `close_ready`). The machine never touches a socket or a
//! ring, so the same rules hold under io_uring and epoll.
//!
//! Lifecycle of a slot: free → `Open` → (`Draining`: flushing before close) → `Closing` (the
//! service has been told; the backend retires kernel operations) → free (`release`). A slot
//! only becomes free again when the backend says every kernel operation on it has completed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use slab::Slab;

use crate::conn::Conn;
use crate::runtime::Shared;
use crate::stats::{Counters, bump};
use crate::{After, Ctl, DiskRead, Service, Token};

/// Where a connection is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Reading and writing.
    Open,
    /// Not reading; flushing output, then closing.
    Draining,
    /// The service has been told it is closed; the backend is retiring its operations.
    Closing,
}

/// Requests a service made through [`Ctl`] during a callback, applied after it returns.
struct CtlQueue {
    thread_index: usize,
    /// See [`Ctl::accepting_fd`]; set only while `Service::accept` runs.
    accepting_fd: Option<i32>,
    resumes: Vec<Token>,
    closes: Vec<Token>,
    reads: Vec<DiskRead>,
    shared: Arc<Shared>,
}

impl Ctl for CtlQueue {
    fn resume(&mut self, token: Token) {
        self.resumes.push(token);
    }
    fn close(&mut self, token: Token) {
        self.closes.push(token);
    }
    fn shutdown(&mut self) {
        self.shared.request_shutdown();
    }
    fn accepting_fd(&self) -> Option<i32> {
        self.accepting_fd
    }
    fn thread_index(&self) -> usize {
        self.thread_index
    }
    fn read_disk(&mut self, read: DiskRead) {
        self.reads.push(read);
    }
}

/// One thread's connections and service.
pub(crate) struct Machine<S: Service, B> {
    service: S,
    ctl: CtlQueue,
    conns: Slab<Conn<S::Conn, B>>,
    /// Generation of the next occupant of each slot; bumped when a slot is released.
    generations: Vec<u32>,
    dirty: Vec<u32>,
    /// Connections whose buffered input should be offered to the service again (left
    /// backpressure).
    rerun: Vec<u32>,
    /// Scratch for iterating over every connection while calling into the service.
    keys: Vec<u32>,
    max_conns: usize,
    max_pending_output: usize,
    /// Input buffered for a parked connection beyond which it is no longer read.
    parked_input_limit: usize,
    counters: Arc<Counters>,
}

impl<S: Service, B> Machine<S, B> {
    pub(crate) fn new(
        service: S,
        thread_index: usize,
        cfg: &crate::Config,
        shared: Arc<Shared>,
    ) -> Self {
        let max_conns = cfg.max_connections_per_thread;
        assert!(max_conns > 0 && max_conns < crate::user_data::MAX_SLOTS);
        assert!(cfg.max_pending_output > 0);
        let counters = Arc::clone(&shared.counters[thread_index]);
        Machine {
            service,
            ctl: CtlQueue {
                thread_index,
                accepting_fd: None,
                resumes: Vec::new(),
                closes: Vec::new(),
                reads: Vec::new(),
                shared,
            },
            // Sized once: the table never grows past the limit, so it never reallocates.
            conns: Slab::with_capacity(max_conns),
            generations: vec![0; max_conns],
            dirty: Vec::with_capacity(max_conns),
            rerun: Vec::new(),
            keys: Vec::with_capacity(max_conns),
            max_conns,
            max_pending_output: cfg.max_pending_output,
            parked_input_limit: cfg.max_pending_output.max(64 * 1024),
            counters,
        }
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    pub(crate) fn is_full(&self) -> bool {
        self.conns.len() >= self.max_conns
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// The token the next `open` will hand out.
    pub(crate) fn next_token(&self) -> Token {
        assert!(!self.is_full());
        let slot = self.conns.vacant_key();
        assert!(
            slot < self.max_conns,
            "slab handed out a slot beyond the table"
        );
        Token {
            slot: slot as u32,
            generation: self.generations[slot],
        }
    }

    /// Whether `(slot, generation)` names a live occupant (not a late event for an old one).
    pub(crate) fn is_current(&self, slot: u32, generation: u32) -> bool {
        self.conns
            .get(slot as usize)
            .is_some_and(|c| c.generation == generation)
    }

    pub(crate) fn conn(&self, slot: u32) -> &Conn<S::Conn, B> {
        &self.conns[slot as usize]
    }

    pub(crate) fn conn_mut(&mut self, slot: u32) -> &mut Conn<S::Conn, B> {
        &mut self.conns[slot as usize]
    }

    /// A new connection: asks the service, which may refuse it (the connection then flushes
    /// what the service wrote and closes).
    pub(crate) fn open(
        &mut self,
        io: B,
        peer: Option<SocketAddr>,
        local: Option<SocketAddr>,
    ) -> Token {
        self.open_fd(io, peer, local, None)
    }

    /// [`open`](Self::open) for a connection with a descriptor the service may ask about
    /// ([`Ctl::accepting_fd`]).
    pub(crate) fn open_fd(
        &mut self,
        io: B,
        peer: Option<SocketAddr>,
        local: Option<SocketAddr>,
        fd: Option<i32>,
    ) -> Token {
        let token = self.next_token();
        let slot = self.conns.insert(Conn::new(token.generation, io));
        assert_eq!(slot, token.slot as usize);
        bump(&self.counters.accepts, 1);
        let conn = &mut self.conns[slot];
        self.ctl.accepting_fd = fd;
        let accepted = self
            .service
            .accept(&mut self.ctl, token, peer, local, &mut conn.pending);
        self.ctl.accepting_fd = None;
        match accepted {
            Some(state) => conn.svc = Some(state),
            None => {
                conn.phase = Phase::Draining;
                bump(&self.counters.refused, 1);
            }
        }
        self.mark_dirty(token.slot);
        self.settle();
        token
    }

    /// Bytes arrived for `slot`.
    pub(crate) fn received(&mut self, slot: u32, data: &[u8]) {
        bump(&self.counters.recvs, 1);
        bump(&self.counters.bytes_in, data.len() as u64);
        let conn = &mut self.conns[slot as usize];
        if conn.phase == Phase::Closing {
            return; // Late bytes for a connection the service already forgot.
        }
        conn.append_input(data);
        self.run_input(slot);
        self.settle();
    }

    /// The kernel took `n` bytes of `slot`'s in-flight output.
    pub(crate) fn sent(&mut self, slot: u32, n: usize) {
        bump(&self.counters.sends, 1);
        bump(&self.counters.bytes_out, n as u64);
        self.conns[slot as usize].sent(n);
        if self.conns[slot as usize].phase != Phase::Closing {
            self.update_throttle(slot);
        }
        self.mark_dirty(slot);
        self.settle();
    }

    /// The peer closed, reset, or an error ended the connection: close without flushing.
    pub(crate) fn peer_gone(&mut self, slot: u32) {
        self.terminate(slot);
    }

    /// Whether the backend should keep (or start) receiving for `slot`.
    pub(crate) fn want_read(&self, slot: u32) -> bool {
        let conn = &self.conns[slot as usize];
        conn.phase == Phase::Open
            && !conn.throttled
            && !(conn.parked && conn.unconsumed() >= self.parked_input_limit)
    }

    /// Whether the backend should retire `slot`'s operations and close it. A draining
    /// connection whose output is all sent becomes `Closing` here (and the service is told).
    pub(crate) fn close_ready(&mut self, slot: u32) -> bool {
        let conn = &self.conns[slot as usize];
        if conn.phase == Phase::Draining && conn.out_bytes() == 0 {
            self.terminate(slot);
        }
        self.conns[slot as usize].phase == Phase::Closing
    }

    /// Frees a slot whose kernel operations have all completed. Returns the backend state (to
    /// drop the socket, for instance).
    pub(crate) fn release(&mut self, slot: u32) -> B {
        let conn = self.conns.remove(slot as usize);
        if conn.dirty {
            // Queued earlier in this round; the slot's next occupant must not inherit it.
            self.dirty.retain(|&s| s != slot);
        }
        assert_eq!(
            conn.phase,
            Phase::Closing,
            "released a slot that was not closing"
        );
        assert!(
            conn.svc.is_none(),
            "released a slot the service was not told about"
        );
        let generation = &mut self.generations[slot as usize];
        assert_eq!(*generation, conn.generation);
        *generation = generation.wrapping_add(1);
        conn.io
    }

    /// Closes every connection now (shutdown).
    pub(crate) fn close_all(&mut self) {
        self.collect_keys();
        let keys = std::mem::take(&mut self.keys);
        for &slot in &keys {
            self.terminate(slot);
        }
        self.keys = keys;
    }

    /// Periodic work: `Service::tick`, then `poll` on every connection.
    pub(crate) fn tick(&mut self) {
        bump(&self.counters.ticks, 1);
        self.service.tick(&mut self.ctl);
        self.settle();
        self.poll_all();
    }

    /// Moves the disk reads the service asked for into `into`.
    pub(crate) fn take_disk_reads(&mut self, into: &mut Vec<DiskRead>) {
        into.append(&mut self.ctl.reads);
    }

    /// Whether the service has asked for disk reads not yet taken.
    pub(crate) fn has_disk_reads(&self) -> bool {
        !self.ctl.reads.is_empty()
    }

    /// A disk read finished: tell the service, then apply what it asked for (resumes).
    pub(crate) fn disk_read_done(&mut self, tag: u64, result: std::io::Result<&[u8]>) {
        bump(&self.counters.disk_reads, 1);
        self.service.disk_read_done(&mut self.ctl, tag, result);
        self.settle();
    }

    /// A cross-thread wake-up: `Service::woken`, then `poll` on every connection.
    pub(crate) fn woken(&mut self) {
        bump(&self.counters.wakes, 1);
        self.service.woken(&mut self.ctl);
        self.settle();
        self.poll_all();
    }

    /// Moves the dirty list into `into` (which must be empty) and clears the dirty marks.
    pub(crate) fn take_dirty(&mut self, into: &mut Vec<u32>) {
        assert!(into.is_empty());
        std::mem::swap(&mut self.dirty, into);
        for &slot in into.iter() {
            let conn = &mut self.conns[slot as usize];
            assert!(conn.dirty);
            conn.dirty = false;
        }
    }

    pub(crate) fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    pub(crate) fn mark_dirty(&mut self, slot: u32) {
        let conn = &mut self.conns[slot as usize];
        if !conn.dirty {
            conn.dirty = true;
            self.dirty.push(slot);
        }
    }

    /// Ends a connection for the service: calls `Service::closed` once and drops unsent
    /// output. The backend then retires the slot's kernel operations.
    fn terminate(&mut self, slot: u32) {
        let conn = &mut self.conns[slot as usize];
        if conn.phase == Phase::Closing {
            return;
        }
        conn.phase = Phase::Closing;
        conn.drop_pending();
        let token = Token {
            slot,
            generation: conn.generation,
        };
        if let Some(state) = conn.svc.take() {
            self.service.closed(token, state);
        }
        bump(&self.counters.closes, 1);
        self.mark_dirty(slot);
    }

    /// Offers buffered input to the service while it keeps consuming (a service may take one
    /// batch per call). The consumed prefix is trimmed on the next receive, not per command.
    fn run_input(&mut self, slot: u32) {
        loop {
            let conn = &mut self.conns[slot as usize];
            if conn.phase != Phase::Open || conn.parked || conn.throttled {
                break;
            }
            let token = Token {
                slot,
                generation: conn.generation,
            };
            let Some(state) = conn.svc.as_mut() else {
                break;
            };
            let input = &conn.input[conn.input_off..];
            if input.is_empty() {
                break;
            }
            let given = input.len();
            let consumed =
                self.service
                    .input(&mut self.ctl, token, state, input, &mut conn.pending);
            assert!(
                consumed.bytes <= given,
                "service consumed more input than it was given"
            );
            conn.consume(consumed.bytes);
            let keep_going = consumed.after == After::Continue && consumed.bytes > 0;
            self.apply(slot, consumed.after);
            self.update_throttle(slot);
            if !keep_going {
                break;
            }
        }
        self.mark_dirty(slot);
    }

    fn apply(&mut self, slot: u32, after: After) {
        let conn = &mut self.conns[slot as usize];
        match after {
            After::Continue => {}
            After::Park => {
                if !conn.parked {
                    conn.parked = true;
                    bump(&self.counters.parks, 1);
                }
            }
            After::CloseAfterFlush => {
                if conn.phase == Phase::Open {
                    conn.phase = Phase::Draining;
                }
            }
            After::CloseNow => self.terminate(slot),
        }
    }

    /// Backpressure with hysteresis: stop above the limit, resume below half of it.
    fn update_throttle(&mut self, slot: u32) {
        let limit = self.max_pending_output;
        let conn = &mut self.conns[slot as usize];
        let out = conn.out_bytes();
        if !conn.throttled && out > limit {
            conn.throttled = true;
            bump(&self.counters.backpressure, 1);
        } else if conn.throttled && out <= limit / 2 {
            conn.throttled = false;
            if conn.unconsumed() > 0 {
                self.rerun.push(slot);
            }
        }
    }

    /// Applies what services asked through `Ctl` until nothing is left (a resumed connection's
    /// input may ask for more).
    fn settle(&mut self) {
        loop {
            if self.ctl.resumes.is_empty() && self.ctl.closes.is_empty() && self.rerun.is_empty() {
                break;
            }
            let resumes = std::mem::take(&mut self.ctl.resumes);
            let closes = std::mem::take(&mut self.ctl.closes);
            let rerun = std::mem::take(&mut self.rerun);
            for token in &resumes {
                if self.is_current(token.slot, token.generation)
                    && self.conns[token.slot as usize].parked
                {
                    self.conns[token.slot as usize].parked = false;
                    bump(&self.counters.resumes, 1);
                    self.run_input(token.slot);
                }
            }
            for token in &closes {
                if self.is_current(token.slot, token.generation) {
                    self.apply(token.slot, After::CloseAfterFlush);
                    self.mark_dirty(token.slot);
                }
            }
            for &slot in &rerun {
                if self.conns.contains(slot as usize) {
                    self.run_input(slot);
                }
            }
            // Hand the allocations back so steady state does not allocate.
            if self.ctl.resumes.is_empty() {
                self.ctl.resumes = resumes;
                self.ctl.resumes.clear();
            }
            if self.ctl.closes.is_empty() {
                self.ctl.closes = closes;
                self.ctl.closes.clear();
            }
        }
    }

    fn poll_all(&mut self) {
        self.collect_keys();
        let keys = std::mem::take(&mut self.keys);
        for &slot in &keys {
            let conn = &mut self.conns[slot as usize];
            if conn.phase == Phase::Closing {
                continue;
            }
            let token = Token {
                slot,
                generation: conn.generation,
            };
            let Some(state) = conn.svc.as_mut() else {
                continue;
            };
            let before = conn.pending.len();
            let after = self.service.poll(token, state, &mut conn.pending);
            let wrote = conn.pending.len() != before;
            self.apply(slot, after);
            if wrote || after != After::Continue {
                if self.conns[slot as usize].phase != Phase::Closing {
                    self.update_throttle(slot);
                }
                self.mark_dirty(slot);
            }
        }
        self.keys = keys;
        self.settle();
    }

    fn collect_keys(&mut self) {
        self.keys.clear();
        self.keys
            .extend(self.conns.iter().map(|(slot, _)| slot as u32));
    }

    /// Whether the loop was asked to stop.
    pub(crate) fn shutdown_requested(&self) -> bool {
        self.ctl.shared.shutdown.load(Ordering::Acquire)
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
