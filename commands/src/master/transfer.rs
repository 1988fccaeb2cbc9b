//! Full resyncs: starting the fork a waiting replica needs, and sending its payload.
//!
//! Disk-based (`repl-diskless-sync no`, or a replica without `capa eof`): once the BGSAVE child
//! has written the dump, one thread per replica reads the file and hands it to the replica's
//! connection in 1 MiB chunks through its outbox (as a publication reaches a subscriber), waking
//! the connection's reactor thread to send each; the reactor thread itself never reads the
//! file. After the last byte the stream that collected since the fork follows, and the replica
//! is online.
//!
//! Diskless (`repl-diskless-sync yes`, Redis 7.0's default): the child streams the snapshot into
//! a pipe, framed by a random end mark, and one thread reads the pipe and hands each chunk to
//! every replica of that fork, as Redis's parent relays its child's pipe to the replicas'
//! sockets. The fork waits `repl-diskless-sync-delay` seconds after the first replica asks, so
//! that others can share it (or until `repl-diskless-sync-max-replicas` wait). After the mark
//! the replica is online, but the stream waits for its first `REPLCONF ACK`.
//!
//! Either sender keeps at most [`QUEUED`] bytes queued per replica (its outbox plus the
//! connection's unsent output, as last published), so a slow replica holds a bounded amount of
//! memory; the diskless one reads on only when every replica has room, so the slowest sets the
//! pace.

use std::fs::File;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ferrite_hybridlog::Session;

use super::{Master, Phase, Replica, deliver, drop_replica, lock};
use crate::client::ClientShared;
use crate::server::{Server, unix_ms};

/// How much of the dump may wait in a replica's outbox and unsent output.
const QUEUED: usize = 8 << 20;
/// The size of one read of the dump.
const CHUNK: usize = 1 << 20;
/// How long the diskless relay waits for the child's next bytes before looking at its replicas.
const POLL_MS: i32 = 100;
/// The diskless child's pipe size (the kernel's default is 64 KiB).
const PIPE_SIZE: libc::c_int = 1 << 20;
/// How long the sender waits for the queue to drain before looking again (waking the
/// connection's thread, whose poll publishes how much is still unsent).
const DRAIN_WAIT: Duration = Duration::from_millis(5);

impl Master {
    /// Redis's `replicationStartPendingFork`: with replicas waiting for a full resync and no
    /// child running, forks for them: diskless when `repl-diskless-sync` is on and every one of
    /// them takes it (once the first has waited `repl-diskless-sync-delay` seconds, or
    /// `repl-diskless-sync-max-replicas` wait), else a BGSAVE to disk. Returns whether a fork
    /// is still to come later (a diskless delay), for PSYNC's log line.
    pub(crate) fn start_pending_fork(&self, server: &Server, session: &mut Session) -> bool {
        if server.persist.child().is_some() || server.aof.rewrite.child().is_some() {
            return false;
        }
        let (waiting, all_eof, first_ms) = {
            let st = self.state();
            let waiting = st
                .replicas
                .iter()
                .filter(|e| matches!(e.phase, Phase::WaitBgsaveStart));
            let mut n = 0usize;
            let mut all_eof = true;
            let mut first_ms = u64::MAX;
            for e in waiting {
                n += 1;
                all_eof &= e.replica.eof;
                first_ms = first_ms.min(e.replica.since_ms);
            }
            (n, all_eof, first_ms)
        };
        if waiting == 0 {
            return false;
        }
        let cfg = &server.config;
        let diskless = all_eof && cfg.value("repl-diskless-sync").as_deref() == Some("yes");
        if !diskless {
            log::info!("Starting BGSAVE for SYNC with target: disk");
            let _ = crate::persist::snapshot::bgsave(server, session);
            return false;
        }
        let delay_ms = cfg.value_u64("repl-diskless-sync-delay") * 1000;
        let enough = cfg.value_u64("repl-diskless-sync-max-replicas");
        let waited = unix_ms().saturating_sub(first_ms) >= delay_ms;
        let enough_wait = enough > 0 && waiting as u64 >= enough;
        if !waited && !enough_wait {
            return true;
        }
        log::info!("Starting BGSAVE for SYNC with target: replicas sockets");
        if let Err(err) = fork_to_replicas(server, session) {
            log::warn!("BGSAVE for replication failed: {err}");
        }
        false
    }

    /// A diskless BGSAVE child was just forked (under the exclusive gate): the replicas waiting
    /// for a fork that take a diskless transfer start theirs here (as [`Master::forked`]), fed
    /// by one thread reading the child's pipe.
    pub(crate) fn forked_to_replicas(
        &self,
        server: &Server,
        reader: File,
        mark: [u8; 40],
        pid: libc::pid_t,
    ) {
        // As in `forked`: only this server's own stream selects again after a cut.
        if !server.replication.is_replica() {
            server.aof.repl_reselect();
        }
        let mut st = self.state();
        let line = format!("+FULLRESYNC {} {}\r\n", self.replid(), self.offset());
        let mut wake = vec![false; server.threads];
        let mut targets = Vec::new();
        for e in &mut st.replicas {
            if matches!(e.phase, Phase::WaitBgsaveStart) && e.replica.eof {
                if !e.replica.sync_only {
                    deliver(server, &e.replica.shared, line.as_bytes(), &mut wake);
                }
                e.phase = Phase::Relay {
                    pending: Vec::new(),
                };
                targets.push(Arc::clone(&e.replica));
            }
        }
        drop(st);
        server.wake_marked(&wake);
        let Some(arc) = server.arc() else {
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("repl-diskless".into())
            .spawn(move || relay(&arc, targets, reader, mark, pid));
        if let Err(err) = spawned {
            // The pipe's reader is gone with the closure: the child fails on its next write.
            log::warn!("SYNC failed. Can't start the transfer thread: {err}");
        }
    }

    /// The diskless child ended (`ok`: it wrote the whole payload; the relay may still be
    /// handing its last bytes to the replicas, ahead of anything queued later): its replicas
    /// are online, or dropped (Redis's `updateSlavesWaitingBgsave` for a socket child).
    pub fn diskless_done(&self, server: &Server, ok: bool) {
        let relayed: Vec<Arc<Replica>> = self
            .state()
            .replicas
            .iter()
            .filter(|e| matches!(e.phase, Phase::Relay { .. }))
            .map(|e| Arc::clone(&e.replica))
            .collect();
        for r in relayed {
            if ok {
                self.streamed(server, &r);
            } else {
                log::warn!("SYNC failed. BGSAVE child returned an error");
                drop_replica(server, &r, "sync");
            }
        }
    }

    /// A diskless transfer is complete: the replica is online, and its stream starts on its
    /// first acknowledgement (Redis's `replicaPutOnline` with `repl_start_cmd_stream_on_ack`),
    /// at once if that came already (a replica acknowledges only once it has loaded).
    fn streamed(&self, server: &Server, replica: &Replica) {
        {
            let mut st = self.state();
            let Some(e) = st.entry_mut(replica) else {
                return;
            };
            let Phase::Relay { pending } = &mut e.phase else {
                return;
            };
            e.phase = Phase::WaitAck {
                pending: std::mem::take(pending),
            };
        }
        log::info!(
            "Streamed RDB transfer with replica {}:{} succeeded (socket). Waiting for REPLCONF \
             ACK from replica to enable streaming",
            replica.ip,
            replica.port
        );
        // Either this or `ack` (which stores the time, then takes the flag) sees the other's
        // write and starts the stream, never both.
        replica.start_on_ack.store(true, Ordering::SeqCst);
        let acked = replica.ack_ms.load(Ordering::SeqCst) != 0;
        if !acked {
            // Its lag counts from now.
            replica.ack_ms.store(unix_ms(), Ordering::Relaxed);
        } else if replica.start_on_ack.swap(false, Ordering::SeqCst) {
            self.start_stream(server, replica);
        }
        self.refresh_good(server, &self.state());
    }

    /// The first acknowledgement after a diskless transfer: the stream that collected since
    /// the fork follows, and from now on goes straight to the replica.
    pub(super) fn start_stream(&self, server: &Server, replica: &Replica) {
        self.go_online(server, replica, |phase| match phase {
            Phase::WaitAck { pending } => Some(std::mem::take(pending)),
            _ => None,
        });
    }

    /// The BGSAVE child ended: on success the replicas it was cut for start receiving `dump`
    /// (the file it wrote); otherwise they are dropped, to sync again (Redis's
    /// `updateSlavesWaitingBgsave`).
    pub fn bgsave_done(&self, server: &Server, dump: Option<&str>) {
        let mut st = self.state();
        for e in &mut st.replicas {
            let Phase::WaitBgsaveEnd { pending } = &mut e.phase else {
                continue;
            };
            let Some(name) = dump else {
                log::warn!("SYNC failed. BGSAVE child returned an error");
                drop_replica(server, &e.replica, "sync");
                continue;
            };
            // Opened now: a later BGSAVE renames another file over the name, not this one.
            let opened = File::open(name).and_then(|f| f.metadata().map(|m| (f, m.len())));
            let (file, len) = match opened {
                Ok(fl) => fl,
                Err(err) => {
                    log::warn!("SYNC failed. Can't open the RDB file {name}: {err}");
                    drop_replica(server, &e.replica, "sync");
                    continue;
                }
            };
            let Some(arc) = server.arc() else {
                return;
            };
            e.phase = Phase::SendBulk {
                pending: std::mem::take(pending),
            };
            let replica = Arc::clone(&e.replica);
            let spawned = std::thread::Builder::new()
                .name(format!("repl-send-{}", replica.shared.id))
                .spawn(move || send(&arc, &replica, file, len));
            if let Err(err) = spawned {
                log::warn!("SYNC failed. Can't start the transfer thread: {err}");
                drop_replica(server, &e.replica, "sync");
            }
        }
    }

    /// The dump was sent: the stream that collected since the fork follows it, and from now
    /// on the stream goes straight to the replica.
    fn put_online(&self, server: &Server, replica: &Replica) {
        self.go_online(server, replica, |phase| match phase {
            Phase::SendBulk { pending } => Some(std::mem::take(pending)),
            _ => None,
        });
    }

    /// Puts `replica` online if `take` finds its phase holding the pending stream (which it
    /// takes out): those bytes go first, everything later straight to the replica.
    fn go_online(
        &self,
        server: &Server,
        replica: &Replica,
        take: impl FnOnce(&mut Phase) -> Option<Vec<u8>>,
    ) {
        let mut st = self.state();
        let Some(e) = st.entry_mut(replica) else {
            return;
        };
        let Some(pending) = take(&mut e.phase) else {
            return;
        };
        let mut wake = vec![false; server.threads];
        deliver(server, &replica.shared, &pending, &mut wake);
        e.phase = Phase::Online;
        replica.ack_ms.store(unix_ms(), Ordering::Relaxed);
        self.refresh_good(server, &st);
        drop(st);
        server.wake_marked(&wake);
        log::info!(
            "Synchronization with replica {}:{} succeeded",
            replica.ip,
            replica.port
        );
    }
}

/// Forks the diskless child: a pipe (enlarged, so the child writes in big steps), a random
/// end mark, and the child on the pipe's write end.
fn fork_to_replicas(server: &Server, session: &mut Session) -> std::io::Result<()> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into the two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created by pipe2 and are owned by nobody else.
    let (reader, writer) = unsafe { (File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on a descriptor we own; a refusal (the size limit) only keeps 64 KiB.
    unsafe { libc::fcntl(fds[1], libc::F_SETPIPE_SZ, PIPE_SIZE) };
    let mut mark = [0u8; 40];
    mark.copy_from_slice(crate::server::random_hex(40).as_bytes());
    match crate::persist::snapshot::bgsave_to_replicas(server, session, writer, reader, mark) {
        // The relayed stream was mid-chunk: the next tick forks.
        Ok(_) | Err(crate::persist::snapshot::BgsaveError::NotACut) => Ok(()),
        Err(e) => Err(std::io::Error::other(format!("{e:?}"))),
    }
}

/// The diskless transfer thread: relays the child's pipe to every replica of its fork, at the
/// pace of the slowest, up to the end mark. Replicas that leave
/// are skipped; when none is left the pipe is closed, which makes the child fail and exit.
fn relay(
    server: &Arc<Server>,
    mut replicas: Vec<Arc<Replica>>,
    mut pipe: File,
    mark: [u8; 40],
    pid: libc::pid_t,
) {
    let mut buf = vec![0u8; CHUNK];
    let mut end = EndMark::new(mark);
    loop {
        replicas.retain(|r| !gone(server, &r.shared));
        if replicas.is_empty() {
            log::warn!("Diskless rdb transfer, last replica dropped, killing fork child.");
            crate::persist::snapshot::stop_child(server, pid);
            return;
        }
        if let Some(full) = replicas.iter().find(|r| queued(&r.shared) >= QUEUED) {
            std::thread::sleep(DRAIN_WAIT);
            server.wake(full.shared.thread);
            continue;
        }
        // A slow child (or none writing yet) must not keep the departures above unnoticed.
        if !readable(&pipe, POLL_MS) {
            continue;
        }
        let n = match pipe.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => 0,
        };
        if n == 0 {
            break;
        }
        for r in &replicas {
            append(server, &r.shared, &buf[..n]);
        }
        // The mark ends the payload (the child writes nothing after it, and its exit puts the
        // replicas online).
        if end.seen_after(&buf[..n]) {
            return;
        }
    }
    log::warn!("SYNC failed. The diskless transfer ended before its end mark");
    for r in &replicas {
        drop_replica(server, r, "sync");
    }
}

/// The transfer thread: `$<len>\r\n`, the dump, then the replica is online. Ends early (the
/// replica resyncs when it reconnects) if the connection closes or the file cannot be read.
fn send(server: &Arc<Server>, replica: &Replica, mut file: File, len: u64) {
    let shared = &replica.shared;
    append(server, shared, format!("${len}\r\n").as_bytes());
    let mut buf = vec![0u8; CHUNK];
    let mut left = len;
    while left > 0 {
        if gone(server, shared) {
            return;
        }
        if queued(shared) >= QUEUED {
            std::thread::sleep(DRAIN_WAIT);
            server.wake(shared.thread);
            continue;
        }
        let want = (left as usize).min(CHUNK);
        match file.read(&mut buf[..want]) {
            Ok(n) if n > 0 => {
                append(server, shared, &buf[..n]);
                left -= n as u64;
            }
            Ok(_) | Err(_) => {
                log::warn!("SYNC failed. Reading the RDB file for the replica failed");
                drop_replica(server, replica, "sync");
                return;
            }
        }
    }
    server.master.put_online(server, replica);
}

/// Recognises a diskless payload's end: the last bytes of the stream so far are the mark,
/// however the reads split it (as Redis's replica looks for it), and not the copy of the mark
/// in the `$EOF:<mark>\r\n` header.
struct EndMark {
    mark: [u8; 40],
    /// The stream's last (up to 40) bytes.
    tail: Vec<u8>,
    /// Bytes of the stream so far.
    seen: usize,
}

impl EndMark {
    fn new(mark: [u8; 40]) -> Self {
        EndMark {
            mark,
            tail: Vec::with_capacity(2 * mark.len()),
            seen: 0,
        }
    }

    /// Takes the next bytes of the stream; true if it now ends with the mark.
    fn seen_after(&mut self, bytes: &[u8]) -> bool {
        let keep = bytes.len().min(self.mark.len());
        self.tail.extend_from_slice(&bytes[bytes.len() - keep..]);
        let excess = self.tail.len().saturating_sub(self.mark.len());
        self.tail.drain(..excess);
        self.seen += bytes.len();
        // The header (`$EOF:`, the mark, CRLF) comes before the end mark.
        self.seen >= 2 * self.mark.len() + 7 && self.tail == self.mark
    }
}

/// Whether `pipe` has bytes (or its end) within `ms` milliseconds.
fn readable(pipe: &File, ms: i32) -> bool {
    use std::os::fd::AsRawFd;
    let mut fd = libc::pollfd {
        fd: pipe.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: polls one valid pollfd that lives across the call.
    unsafe { libc::poll(&mut fd, 1, ms) > 0 }
}

/// The replica's connection closed or is being closed.
fn gone(server: &Server, shared: &ClientShared) -> bool {
    shared.killed() || server.clients.get(shared.id).is_none()
}

/// Bytes waiting for the replica: its outbox and its connection's unsent output.
fn queued(shared: &ClientShared) -> usize {
    lock(&shared.outbox).len() + shared.conn.obl.load(Ordering::Relaxed) as usize
}

/// Appends part of the dump to the replica's outbox and wakes its thread.
fn append(server: &Server, shared: &ClientShared, bytes: &[u8]) {
    let mut outbox = lock(&shared.outbox);
    outbox.extend_from_slice(bytes);
    shared.outbox_ready.store(true, Ordering::Release);
    drop(outbox);
    server.wake(shared.thread);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_mark_is_seen_however_reads_split_it() {
        let mark: [u8; 40] = *b"0123456789abcdef0123456789abcdef01234567";
        let mut payload = b"$EOF:".to_vec();
        payload.extend_from_slice(&mark);
        payload.extend_from_slice(b"\r\nREDIS0010 some dump bytes");
        payload.extend_from_slice(&mark);
        for split in 1..payload.len() {
            let mut end = EndMark::new(mark);
            let ends: Vec<bool> = payload
                .chunks(split)
                .map(|chunk| end.seen_after(chunk))
                .collect();
            assert_eq!(ends.iter().filter(|&&e| e).count(), 1, "split {split}");
            assert!(ends.last().copied().unwrap_or(false), "split {split}");
        }
        // A read that ends with the header's copy of the mark is not the end.
        let mut end = EndMark::new(mark);
        assert!(!end.seen_after(&payload[..45]));
    }

    #[test]
    fn a_pipe_with_bytes_or_closed_is_readable() {
        let (reader, mut writer) = std::io::pipe().expect("pipe");
        let reader = File::from(std::os::fd::OwnedFd::from(reader));
        assert!(!readable(&reader, 0), "empty and open");
        std::io::Write::write_all(&mut writer, b"x").expect("write");
        assert!(readable(&reader, 0), "a byte waits");
        let mut one = [0u8; 1];
        (&reader).read_exact(&mut one).expect("read");
        drop(writer);
        assert!(readable(&reader, 0), "closed: read returns its end");
    }
}
