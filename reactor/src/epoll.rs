//! The epoll readiness backend: same state machine, same rules, for machines without io_uring.
//!
//! Level-triggered, on purpose: under backpressure or while parked we leave bytes unread in the
//! socket and drop read interest; when interest comes back, level triggering reports the socket
//! again by itself. Edge triggering would make us remember "readable but not drained" per
//! connection. The listener, the waker eventfd and every connection share one epoll, tagged
//! with the same `op | slot | generation` packing as io_uring's `user_data`, so a readiness
//! event for a connection closed earlier in the same batch is recognised and dropped.

use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::{MsgFlags, SockFlag, accept4, recv, send};

use crate::disk::{self, Finished, IoThreads};
use crate::errno::{self, Disposition};
use crate::machine::Machine;
use crate::stats::bump;
use crate::user_data::{Op, UserData};
use crate::{DiskRead, Service, Waker};

/// Per-thread receive scratch buffer; bytes are copied from it into the connection's input.
const SCRATCH: usize = 64 * 1024;
/// Reads per readiness event before moving on to other connections (fairness).
const READS_PER_EVENT: usize = 4;
/// Accepts per listener readiness event.
const ACCEPTS_PER_EVENT: usize = 64;
/// Events per `epoll_wait`.
const EVENTS: usize = 1024;
/// Rounds of dirty-list flushing per iteration before waiting again.
const FLUSH_ROUNDS: usize = 16;

/// A connection's socket and the interest registered for it.
pub(crate) struct EpollIo {
    stream: TcpStream,
    interest: EpollFlags,
}

/// A thread's epoll, set up before the service is built.
pub(crate) struct Prepared {
    epoll: Epoll,
}

impl Prepared {
    pub(crate) fn new(listeners: &[TcpListener], waker: &Waker) -> std::io::Result<Prepared> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        for (i, listener) in listeners.iter().enumerate() {
            let accept = UserData::accept(i).pack();
            epoll.add(listener, EpollEvent::new(EpollFlags::EPOLLIN, accept))?;
        }
        let wake = UserData::global(Op::WakerRead).pack();
        epoll.add(waker.event_fd(), EpollEvent::new(EpollFlags::EPOLLIN, wake))?;
        Ok(Prepared { epoll })
    }

    pub(crate) fn run<S: Service>(
        self,
        machine: Machine<S, EpollIo>,
        listeners: Vec<TcpListener>,
        waker: Waker,
        tick: Duration,
    ) {
        let mut event_loop = Loop {
            epoll: self.epoll,
            machine,
            listeners,
            io: IoThreads::new(waker.clone()),
            reads: Vec::new(),
            finished: Vec::new(),
            waker,
            accept_paused: false,
            scratch: vec![0; SCRATCH],
            events: vec![EpollEvent::empty(); EVENTS],
            dirty: Vec::new(),
        };
        event_loop.run(tick);
    }
}

struct Loop<S: Service> {
    epoll: Epoll,
    machine: Machine<S, EpollIo>,
    /// Listener `i`'s events carry `i` as their tag's slot.
    listeners: Vec<TcpListener>,
    /// Disk reads: readiness does not apply to regular files, so threads do them.
    io: IoThreads,
    reads: Vec<DiskRead>,
    finished: Vec<Finished>,
    waker: Waker,
    /// Accept failed for lack of resources: listeners' interest is off until the next tick
    /// (level triggering would otherwise spin on the pending connection).
    accept_paused: bool,
    scratch: Vec<u8>,
    events: Vec<EpollEvent>,
    dirty: Vec<u32>,
}

impl<S: Service> Loop<S> {
    fn run(&mut self, tick: Duration) {
        let mut next_tick = Instant::now() + tick;
        loop {
            if self.machine.shutdown_requested() {
                self.machine.close_all();
                self.flush_dirty();
                assert!(self.machine.is_empty(), "epoll closes synchronously");
                return;
            }
            self.start_disk_reads();
            self.flush_dirty();
            let timeout = if self.machine.has_dirty() || self.machine.has_disk_reads() {
                EpollTimeout::ZERO
            } else {
                // Round up so that we do not wake a hair before the tick and spin.
                let wait = next_tick.saturating_duration_since(Instant::now());
                let ms = wait.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
                EpollTimeout::try_from(ms).unwrap_or(EpollTimeout::MAX)
            };
            let ready = match self.epoll.wait(&mut self.events, timeout) {
                Ok(n) => n,
                Err(Errno::EINTR) => 0,
                Err(err) => {
                    errno::report("epoll_wait", err as i32);
                    0
                }
            };
            for i in 0..ready {
                let event = self.events[i];
                self.dispatch(event.data(), event.events());
            }
            self.finish_disk_reads();
            let now = Instant::now();
            if now >= next_tick {
                next_tick = now + tick;
                if self.accept_paused {
                    self.set_listeners_interest(EpollFlags::EPOLLIN);
                    self.accept_paused = false;
                }
                self.machine.tick();
            }
        }
    }

    fn dispatch(&mut self, data: u64, events: EpollFlags) {
        let Some(ud) = UserData::unpack(data) else {
            debug_assert!(false, "epoll event with unknown data {data:#x}");
            return;
        };
        match ud.op {
            Op::Accept => self.on_listener(ud.slot as usize),
            Op::WakerRead => self.on_waker(),
            Op::Recv => self.on_conn(ud, events),
            _ => debug_assert!(false, "unexpected epoll tag {ud:?}"),
        }
    }

    /// Hands the reads the service asked for to the I/O threads.
    fn start_disk_reads(&mut self) {
        self.machine.take_disk_reads(&mut self.reads);
        for read in self.reads.drain(..) {
            match disk::check(&read) {
                Ok(()) => self.io.submit(read),
                Err(err) => self.machine.disk_read_done(read.tag, Err(err)),
            }
        }
    }

    /// Gives the service the reads the I/O threads finished.
    fn finish_disk_reads(&mut self) {
        if !self.io.has_finished() {
            return;
        }
        self.io.take_finished(&mut self.finished);
        for Finished { read, buf, result } in self.finished.drain(..) {
            let result = result.map(|n| &buf.bytes()[..n]);
            self.machine.disk_read_done(read.tag, result);
            self.io.recycle(buf);
        }
    }

    fn on_waker(&mut self) {
        // Level-triggered and readable: the read returns at once and resets the counter.
        if let Err(err) = self.waker.event_fd().read() {
            errno::report("waker read", err as i32);
        }
        if !self.machine.shutdown_requested() {
            self.machine.woken();
        }
    }

    fn on_listener(&mut self, listener: usize) {
        if listener >= self.listeners.len() {
            debug_assert!(false, "accept event for listener {listener}");
            return;
        }
        for _ in 0..ACCEPTS_PER_EVENT {
            let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
            match accept4(&self.listeners[listener], flags) {
                Ok(fd) => self.on_accept(TcpStream::from(fd)),
                Err(Errno::EAGAIN) => return,
                Err(err) => match errno::report("accept", err as i32) {
                    Disposition::Retry | Disposition::CloseQuietly | Disposition::Cancelled => {}
                    Disposition::Exhausted | Disposition::Other | Disposition::Bug => {
                        self.set_listeners_interest(EpollFlags::empty());
                        self.accept_paused = true;
                        return;
                    }
                },
            }
        }
    }

    fn set_listeners_interest(&mut self, flags: EpollFlags) {
        for (i, listener) in self.listeners.iter().enumerate() {
            let mut event = EpollEvent::new(flags, UserData::accept(i).pack());
            if let Err(err) = self.epoll.modify(listener, &mut event) {
                errno::report("epoll_ctl(listener)", err as i32);
            }
        }
    }

    fn on_accept(&mut self, stream: TcpStream) {
        if self.machine.is_full() {
            log::debug!("reactor: connection table full, closing a new connection");
            bump(&self.machine.counters().refused, 1);
            return;
        }
        if let Err(err) = stream.set_nodelay(true) {
            log::debug!("reactor: TCP_NODELAY on a new connection: {err}");
        }
        let peer = stream.peer_addr().ok();
        let local = stream.local_addr().ok();
        let token = self.machine.next_token();
        let tag = UserData {
            op: Op::Recv,
            slot: token.slot,
            generation: token.generation,
        };
        let interest = EpollFlags::EPOLLIN;
        if let Err(err) = self
            .epoll
            .add(&stream, EpollEvent::new(interest, tag.pack()))
        {
            errno::report("epoll_ctl(add)", err as i32);
            return;
        }
        let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
        let opened = self
            .machine
            .open_fd(EpollIo { stream, interest }, peer, local, Some(fd));
        assert_eq!(opened, token);
    }

    fn on_conn(&mut self, ud: UserData, events: EpollFlags) {
        if !self.machine.is_current(ud.slot, ud.generation) {
            return; // Closed earlier in this batch; its socket is gone.
        }
        let slot = ud.slot;
        let hangup = events.intersects(EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP);
        if events.contains(EpollFlags::EPOLLOUT) {
            self.write(slot);
        }
        if self.machine.want_read(slot)
            && events.intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP)
        {
            self.read(slot);
        } else if hangup {
            // Not reading (and so not going to see EOF), yet the socket is dead: level
            // triggering would report it forever.
            self.machine.peer_gone(slot);
        }
        self.machine.mark_dirty(slot);
    }

    fn read(&mut self, slot: u32) {
        for _ in 0..READS_PER_EVENT {
            if !self.machine.want_read(slot) {
                return;
            }
            let fd = self.machine.conn(slot).io.stream.as_raw_fd();
            match recv(fd, &mut self.scratch, MsgFlags::MSG_DONTWAIT) {
                Ok(0) => {
                    self.machine.peer_gone(slot); // EOF: the peer closed or half-closed
                    return;
                }
                Ok(n) => {
                    self.machine.received(slot, &self.scratch[..n]);
                    if n < self.scratch.len() {
                        return; // Drained for now.
                    }
                }
                Err(Errno::EAGAIN) => return,
                Err(err) => match errno::report("recv", err as i32) {
                    Disposition::Retry => {}
                    _ => {
                        self.machine.peer_gone(slot);
                        return;
                    }
                },
            }
        }
    }

    /// Sends what is staged until it is all gone or the socket is full.
    fn write(&mut self, slot: u32) {
        loop {
            let conn = self.machine.conn_mut(slot);
            if conn.phase == crate::machine::Phase::Closing || !conn.stage_output() {
                return;
            }
            let unsent = conn.unsent();
            let fd = conn.io.stream.as_raw_fd();
            let flags = MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT;
            match send(fd, unsent, flags) {
                Ok(n) => {
                    if n < unsent.len() {
                        bump(&self.machine.counters().short_sends, 1);
                    }
                    self.machine.sent(slot, n);
                }
                Err(Errno::EAGAIN) => return,
                Err(err) => match errno::report("send", err as i32) {
                    Disposition::Retry => {}
                    _ => {
                        self.machine.peer_gone(slot);
                        return;
                    }
                },
            }
        }
    }

    fn flush_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for _ in 0..FLUSH_ROUNDS {
            if !self.machine.has_dirty() {
                break;
            }
            self.machine.take_dirty(&mut dirty);
            for &slot in &dirty {
                self.flush(slot);
            }
            dirty.clear();
        }
        self.dirty = dirty;
    }

    fn flush(&mut self, slot: u32) {
        if !self.machine.close_ready(slot) {
            self.write(slot);
        }
        if self.machine.close_ready(slot) {
            // Nothing of ours is in the kernel: close at once.
            let io = self.machine.release(slot);
            if let Err(err) = self.epoll.delete(&io.stream) {
                errno::report("epoll_ctl(del)", err as i32);
            }
            return; // dropping `io` closes the socket
        }
        let was_rearmable = !self
            .machine
            .conn(slot)
            .io
            .interest
            .contains(EpollFlags::EPOLLIN);
        let mut interest = EpollFlags::empty();
        if self.machine.want_read(slot) {
            interest |= EpollFlags::EPOLLIN;
        }
        if !self.machine.conn(slot).unsent().is_empty() {
            interest |= EpollFlags::EPOLLOUT;
        }
        let conn = self.machine.conn(slot);
        if interest != conn.io.interest {
            let tag = UserData {
                op: Op::Recv,
                slot,
                generation: conn.generation,
            }
            .pack();
            let mut event = EpollEvent::new(interest, tag);
            if let Err(err) = self.epoll.modify(&conn.io.stream, &mut event) {
                errno::report("epoll_ctl(mod)", err as i32);
            }
            if was_rearmable && interest.contains(EpollFlags::EPOLLIN) {
                bump(&self.machine.counters().rearms, 1);
            }
            self.machine.conn_mut(slot).io.interest = interest;
        }
    }
}
