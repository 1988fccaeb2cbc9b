//! Sending the dump of a full resync: once the BGSAVE child has written it, one thread per
//! replica reads the file and hands it to the replica's connection in 1 MiB chunks through its
//! outbox (as a publication reaches a subscriber), waking the connection's reactor thread to
//! send each; the reactor thread itself never reads the file. It keeps at most [`QUEUED`] bytes
//! queued (the outbox plus the connection's unsent output, as last published), so a slow
//! replica holds a bounded amount of memory. After the last byte the stream that collected
//! since the fork follows, and the replica is online.

use std::fs::File;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Master, Phase, Replica, deliver, drop_replica, lock};
use crate::client::ClientShared;
use crate::server::{Server, unix_ms};

/// How much of the dump may wait in a replica's outbox and unsent output.
const QUEUED: usize = 8 << 20;
/// The size of one read of the dump.
const CHUNK: usize = 1 << 20;
/// How long the sender waits for the queue to drain before looking again (waking the
/// connection's thread, whose poll publishes how much is still unsent).
const DRAIN_WAIT: Duration = Duration::from_millis(5);

impl Master {
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
        let mut st = self.state();
        let Some(e) = st
            .replicas
            .iter_mut()
            .find(|e| e.replica.shared.id == replica.shared.id)
        else {
            return;
        };
        let Phase::SendBulk { pending } = &mut e.phase else {
            return;
        };
        let mut wake = vec![false; server.threads];
        deliver(&replica.shared, pending, &mut wake);
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

/// The transfer thread: `$<len>\r\n`, the dump, then the replica is online. Ends early (the
/// replica resyncs when it reconnects) if the connection closes or the file cannot be read.
fn send(server: &Arc<Server>, replica: &Replica, mut file: File, len: u64) {
    let shared = &replica.shared;
    append(server, shared, format!("${len}\r\n").as_bytes());
    let mut buf = vec![0u8; CHUNK];
    let mut left = len;
    while left > 0 {
        if shared.killed() || server.clients.get(shared.id).is_none() {
            return;
        }
        let queued = lock(&shared.outbox).len() + shared.conn.obl.load(Ordering::Relaxed) as usize;
        if queued >= QUEUED {
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

/// Appends part of the dump to the replica's outbox and wakes its thread.
fn append(server: &Server, shared: &ClientShared, bytes: &[u8]) {
    let mut outbox = lock(&shared.outbox);
    outbox.extend_from_slice(bytes);
    shared.outbox_ready.store(true, Ordering::Release);
    drop(outbox);
    server.wake(shared.thread);
}
