//! Completion handlers and the per-connection flush of the io_uring loop.

use super::*;

impl<S: Service> Loop<S> {
    /// Walks the dirty list: sends, receive (re-)arming or cancelling, and closing.
    pub(super) fn flush_dirty(&mut self) {
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
        if self.machine.close_ready(slot) {
            self.retire(slot);
            return;
        }
        let conn = self.machine.conn_mut(slot);
        let generation = conn.generation;
        // One send in flight per connection; `stage_output` moves pending replies into the
        // in-flight buffer only once the previous one is fully sent.
        if !conn.io.send_in_flight && conn.stage_output() {
            let unsent = conn.unsent();
            let len = unsent.len().min(MAX_SEND) as u32;
            let entry = opcode::Send::new(Fixed(slot), unsent.as_ptr(), len)
                .flags(libc::MSG_NOSIGNAL)
                .build()
                .user_data(
                    UserData {
                        op: Op::Send,
                        slot,
                        generation,
                    }
                    .pack(),
                );
            conn.io.send_in_flight = true;
            // SAFETY: the bytes are in the connection's in-flight buffer, a heap allocation
            // that is neither written, moved nor freed while `send_in_flight` is set: `Conn`
            // replaces or shrinks it only once fully sent (`stage_output`, `sent`, both after
            // this send's completion), closing drops only `pending`, and the slot (with the
            // buffer) is released only after this send completes.
            unsafe { self.push(entry) };
        }
        let want = self.machine.want_read(slot);
        let io = &mut self.machine.conn_mut(slot).io;
        let arm = want && !io.recv_armed;
        // Backpressure, or a parked connection with enough buffered: stop the multishot
        // receive. Bytes that still arrive before the cancel lands are kept.
        let cancel = !want && io.recv_armed && !io.recv_cancelled;
        let rearm = arm && io.armed_once;
        io.recv_armed |= arm;
        io.armed_once |= arm;
        io.recv_cancelled |= cancel;
        if rearm {
            bump(&self.machine.counters().rearms, 1);
        }
        let recv = UserData {
            op: Op::Recv,
            slot,
            generation,
        };
        if arm {
            self.recvs_armed += 1;
            let entry = opcode::RecvMulti::new(Fixed(slot), BGID)
                .build()
                .user_data(recv.pack());
            // SAFETY: a buffer-select receive points to no buffer of ours; it picks from the
            // registered buffer ring, which is freed only after the io_uring is dropped.
            unsafe { self.push(entry) };
        }
        if cancel {
            self.cancel(recv);
        }
    }

    /// Moves a closing slot towards release: cancel what is in flight, then close the fixed
    /// file once nothing else references it; the close completion releases the slot.
    fn retire(&mut self, slot: u32) {
        let conn = self.machine.conn_mut(slot);
        assert_eq!(conn.phase, Phase::Closing);
        let generation = conn.generation;
        let io = &mut conn.io;
        let cancel_recv = io.recv_armed && !io.recv_cancelled;
        let cancel_send = io.send_in_flight && !io.send_cancelled;
        io.recv_cancelled |= cancel_recv;
        io.send_cancelled |= cancel_send;
        let close = !io.recv_armed && !io.send_in_flight && !io.close_submitted;
        io.close_submitted |= close;
        if cancel_recv {
            self.cancel(UserData {
                op: Op::Recv,
                slot,
                generation,
            });
        }
        if cancel_send {
            self.cancel(UserData {
                op: Op::Send,
                slot,
                generation,
            });
        }
        if close {
            let entry = opcode::Close::new(Fixed(slot)).build().user_data(
                UserData {
                    op: Op::Close,
                    slot,
                    generation,
                }
                .pack(),
            );
            // SAFETY: closing a fixed file points to no buffer.
            unsafe { self.push(entry) };
        }
    }

    pub(super) fn on_accept(&mut self, listener: usize, result: i32, flags: u32) {
        if !cqueue::more(flags) {
            // Re-armed by `arm_globals` unless stopping.
            if let Some(armed) = self.accepts_armed.get_mut(listener) {
                *armed = false;
            }
        }
        if result < 0 {
            match errno::report("accept", -result) {
                Disposition::Exhausted | Disposition::Other | Disposition::Bug => {
                    self.accept_backoff = true;
                }
                Disposition::Retry | Disposition::Cancelled | Disposition::CloseQuietly => {}
            }
            return;
        }
        // SAFETY: the kernel just created this fd for us and nothing else owns it; the
        // `TcpStream` closes it when dropped.
        let stream = unsafe { std::net::TcpStream::from_raw_fd(result) };
        if self.stop_deadline.is_some() {
            return;
        }
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
        match self
            .ring
            .submitter()
            .register_files_update(token.slot, &[result])
        {
            Ok(1) => {}
            Ok(n) => {
                log::warn!("reactor: installing a connection updated {n} fixed files");
                return;
            }
            Err(err) => {
                log::warn!("reactor: installing a connection in the fixed-file table: {err}");
                return;
            }
        }
        // The table holds its own reference to the socket: the regular fd can go.
        drop(stream);
        let opened = self.machine.open(UringIo::default(), peer, local);
        assert_eq!(opened, token);
    }

    pub(super) fn on_waker(&mut self, result: i32) {
        self.waker_armed = false; // re-armed by `arm_globals` unless stopping
        if result < 0 {
            errno::report("waker read", -result);
            return;
        }
        debug_assert_eq!(result, 8);
        if self.stop_deadline.is_none() && !self.machine.shutdown_requested() {
            self.machine.woken();
        }
    }

    pub(super) fn on_recv(&mut self, ud: UserData, result: i32, flags: u32) {
        let bid = cqueue::buffer_select(flags);
        if !self.machine.is_current(ud.slot, ud.generation) {
            if let Some(bid) = bid {
                self.bufs.recycle(bid);
            }
            debug_assert!(false, "recv completion for a released slot: {ud:?}");
            return;
        }
        let slot = ud.slot;
        if !cqueue::more(flags) {
            let io = &mut self.machine.conn_mut(slot).io;
            debug_assert!(io.recv_armed);
            self.recvs_armed -= usize::from(io.recv_armed);
            io.recv_armed = false;
            io.recv_cancelled = false;
        }
        if result > 0 {
            let Some(bid) = bid else {
                debug_assert!(false, "recv data without a buffer");
                self.machine.peer_gone(slot);
                return;
            };
            let data = self.bufs.get(bid, result as usize);
            self.machine.received(slot, data);
            // Copied into the connection's input: the buffer goes straight back.
            self.bufs.recycle(bid);
        } else {
            if let Some(bid) = bid {
                self.bufs.recycle(bid);
            }
            if result == 0 {
                self.machine.peer_gone(slot); // EOF: the peer closed or half-closed
            } else if -result == libc::ENOBUFS {
                // The buffer ring ran dry; buffers are published before the next wait and
                // the receive is re-armed by the flush.
                bump(&self.machine.counters().enobufs, 1);
            } else {
                match errno::report("recv", -result) {
                    Disposition::Retry | Disposition::Cancelled | Disposition::Exhausted => {}
                    Disposition::CloseQuietly | Disposition::Bug | Disposition::Other => {
                        self.machine.peer_gone(slot);
                    }
                }
            }
        }
        self.machine.mark_dirty(slot);
    }

    pub(super) fn on_send(&mut self, ud: UserData, result: i32) {
        if !self.machine.is_current(ud.slot, ud.generation) {
            debug_assert!(false, "send completion for a released slot: {ud:?}");
            return;
        }
        let slot = ud.slot;
        let conn = self.machine.conn_mut(slot);
        assert!(conn.io.send_in_flight);
        conn.io.send_in_flight = false;
        conn.io.send_cancelled = false;
        if result >= 0 {
            let asked = conn.unsent().len().min(MAX_SEND);
            let sent = result as usize;
            if sent < asked {
                // The flush resubmits the rest from the same (untouched) buffer.
                bump(&self.machine.counters().short_sends, 1);
            }
            self.machine.sent(slot, sent);
        } else {
            match errno::report("send", -result) {
                Disposition::Retry | Disposition::Cancelled | Disposition::Exhausted => {}
                Disposition::CloseQuietly | Disposition::Bug | Disposition::Other => {
                    self.machine.peer_gone(slot);
                }
            }
        }
        self.machine.mark_dirty(slot);
    }

    pub(super) fn on_close(&mut self, ud: UserData, result: i32) {
        assert!(
            self.machine.is_current(ud.slot, ud.generation),
            "close for a released slot"
        );
        if result < 0 {
            errno::report("close", -result);
        }
        let io = self.machine.release(ud.slot);
        assert!(io.close_submitted && !io.recv_armed && !io.send_in_flight);
    }

    /// Cancels (and shutdowns) hold no resources; their completions only matter when a cancel
    /// could not stop a receive of a closing connection: then shut the socket down, which ends
    /// the receive with EOF.
    pub(super) fn on_cancel(&mut self, ud: UserData, result: i32) {
        if ud.op != Op::Cancel || result != -libc::EALREADY {
            return;
        }
        if !self.machine.is_current(ud.slot, ud.generation) {
            return;
        }
        let conn = self.machine.conn_mut(ud.slot);
        if conn.phase != Phase::Closing || conn.io.shutdown_submitted || conn.io.close_submitted {
            return;
        }
        conn.io.shutdown_submitted = true;
        let entry = opcode::Shutdown::new(Fixed(ud.slot), libc::SHUT_RDWR)
            .build()
            .user_data(
                UserData {
                    op: Op::Shutdown,
                    ..ud
                }
                .pack(),
            );
        // SAFETY: a shutdown points to no buffer.
        unsafe { self.push(entry) };
    }
}
