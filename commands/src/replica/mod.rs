//! Following a master (`REPLICAOF host port`): Ferrite as a replica of a redis-server (or any
//! master speaking Redis's replication protocol), which is also how a dataset moves from Redis
//! to Ferrite without downtime.
//!
//! One link thread per replica (`link.rs`) does what Redis's `replicationCron` and
//! `syncWithMaster` do: it connects, hands shakes (PING, AUTH with `masterauth`, REPLCONF
//! listening-port and capa eof psync2), asks for a partial resync (`PSYNC replid offset+1`, or
//! `PSYNC ? -1` the first time), loads the RDB of a full one, then applies the master's
//! command stream through a [`Worker`](crate::Worker) of its own, as Redis's master client:
//! commands run with every other reactor thread serving clients meanwhile, and go to
//! keyspace notifications, client-side caching, blocked clients and this server's own AOF like
//! any client's. Its socket is a blocking one on that thread, not a reactor connection: it is
//! one connection whose throughput is the master's write rate, and a reactor thread must never
//! block on the RDB load (which holds the store's exclusive gate, as Redis's replica is
//! loading). It acknowledges its offset every second and when the master sends `REPLCONF
//! GETACK`, so the master's `WAIT` counts it; a lost link is retried every second.
//!
//! While a replica, writes from clients are refused with Redis's `-READONLY` (unless
//! `replica-read-only no`), and neither the active expiry cycle nor a read that finds a key
//! past its TTL deletes it: the read answers it as missing, and the master's `DEL` removes it,
//! as in Redis. `REPLICAOF NO ONE` stops the thread and keeps the data.
//!
//! # One history along a chain (PSYNC2)
//! A replica's replication ID, offset and backlog are its master's: every chunk of the stream
//! its master client applies is relayed, byte for byte, to the backlog and to this server's
//! own replicas ([`Master::relay`](crate::master::Master::relay)), inside the shared section
//! that applied it (bytes of a transaction wait for its EXEC, as Redis's `reploff` does), so a
//! replica of a replica sees the same offsets as its grandmaster, and a fork cuts the relayed
//! stream exactly where its snapshot ends. A replica asks its master to continue its history
//! (`PSYNC replid offset+1`), including a master's own history when it is turned into a
//! replica, so that after a failover the old master continues from the new one without a
//! full sync; `REPLICAOF NO ONE` keeps the backlog under a new ID, the old one second.

mod link;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ferrite_hybridlog::Session;

use crate::client::ClientShared;
use crate::server::Server;

/// Where the link is, as Redis's `repl_state` (the names ROLE shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum LinkState {
    /// Waiting to connect (after a failure, or just told to follow).
    Connect = 0,
    /// Connecting.
    Connecting = 1,
    /// Connected, handshake in progress.
    Handshake = 2,
    /// Receiving the RDB of a full resync.
    Transfer = 3,
    /// Applying the master's stream.
    Connected = 4,
}

impl LinkState {
    fn from_u8(v: u8) -> LinkState {
        match v {
            1 => LinkState::Connecting,
            2 => LinkState::Handshake,
            3 => LinkState::Transfer,
            4 => LinkState::Connected,
            _ => LinkState::Connect,
        }
    }

    /// The state as ROLE names it.
    pub fn role_name(self) -> &'static str {
        match self {
            LinkState::Connect => "connect",
            LinkState::Connecting => "connecting",
            LinkState::Handshake => "handshake",
            LinkState::Transfer => "sync",
            LinkState::Connected => "connected",
        }
    }
}

/// One master being followed: what the link thread and the commands share.
#[derive(Debug)]
pub struct Link {
    /// The master's host, as given to REPLICAOF.
    pub host: String,
    /// The master's port.
    pub port: u16,
    stop: AtomicBool,
    state: AtomicU8,
    /// The replication offset applied (Redis's `master->reploff`); -1 before the first sync.
    offset: AtomicI64,
    /// Unix ms of the last bytes read from the master.
    last_io_ms: AtomicU64,
    /// Unix ms when the link went down (0: never up yet).
    down_since_ms: AtomicU64,
    /// Bytes of the RDB being received, and its size (-1 for a diskless transfer).
    transfer: Mutex<(i64, i64)>,
    /// The master's client (its CLIENT ID), for REPLCONF GETACK.
    master_client: AtomicU64,
    /// The master asked for an acknowledgement (REPLCONF GETACK).
    ack_wanted: AtomicBool,
    /// The socket, so that REPLICAOF NO ONE can end a blocking read.
    socket: Mutex<Option<std::net::TcpStream>>,
    /// The master's client, killed when the link ends so that nothing more of this master's
    /// stream applies (the worker checks it under the stream's cut).
    master_conn: Mutex<Option<Arc<ClientShared>>>,
}

impl Link {
    fn new(host: String, port: u16) -> Link {
        Link {
            host,
            port,
            stop: AtomicBool::new(false),
            state: AtomicU8::new(LinkState::Connect as u8),
            offset: AtomicI64::new(-1),
            last_io_ms: AtomicU64::new(0),
            down_since_ms: AtomicU64::new(0),
            transfer: Mutex::new((0, 0)),
            master_client: AtomicU64::new(0),
            ack_wanted: AtomicBool::new(false),
            socket: Mutex::new(None),
            master_conn: Mutex::new(None),
        }
    }

    /// The link's state.
    pub fn state(&self) -> LinkState {
        LinkState::from_u8(self.state.load(Ordering::Acquire))
    }

    fn set_state(&self, s: LinkState) {
        let was = self.state.swap(s as u8, Ordering::AcqRel);
        if was == LinkState::Connected as u8 && s != LinkState::Connected {
            self.down_since_ms
                .store(crate::server::unix_ms(), Ordering::Relaxed);
        }
    }

    /// The replication offset applied, -1 before the first sync.
    pub fn offset(&self) -> i64 {
        self.offset.load(Ordering::Acquire)
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// The client the master's stream runs as now (None: no more).
    fn set_master_client(&self, client: Option<&Arc<ClientShared>>) {
        self.master_client
            .store(client.map_or(0, |c| c.id), Ordering::Release);
        *self.master_conn.lock().unwrap_or_else(|e| e.into_inner()) = client.cloned();
    }

    /// Ends the link: the thread sees the flag at its next step, a blocking read ends now, and
    /// the master's client applies nothing more.
    fn shut(&self) {
        self.stop.store(true, Ordering::Release);
        if let Some(c) = self
            .master_conn
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            c.kill.store(true, Ordering::Release);
        }
        if let Some(s) = self
            .socket
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// The server's replication role: a master, or a replica following one [`Link`].
#[derive(Debug, Default)]
pub struct Replication {
    link: Mutex<Option<Arc<Link>>>,
    /// A cheap test for the per-command read-only check.
    replica: AtomicBool,
}

impl Replication {
    fn lock(&self) -> MutexGuard<'_, Option<Arc<Link>>> {
        self.link.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this server follows a master.
    #[inline]
    pub fn is_replica(&self) -> bool {
        self.replica.load(Ordering::Relaxed)
    }

    /// Sets whether this server follows a master (under the exclusive gate, at a cut of the
    /// stream: also whether its stream is the master's, relayed).
    pub(crate) fn mark_replica(&self, on: bool) {
        self.replica.store(on, Ordering::Release);
    }

    /// The link to the master followed, if any.
    pub fn link(&self) -> Option<Arc<Link>> {
        self.lock().clone()
    }

    /// `REPLICAOF host port`: follows that master (from the next second on, as Redis's cron
    /// connects). Returns false when it already follows exactly that one. `session` is the
    /// caller's: the switch happens under the exclusive gate, so that no write of this server's
    /// own is half propagated when its stream becomes the master's.
    pub fn follow(
        &self,
        server: &Arc<Server>,
        session: &mut Session,
        host: &str,
        port: u16,
    ) -> Result<bool, MidChunk> {
        if self
            .link()
            .is_some_and(|l| l.host.eq_ignore_ascii_case(host) && l.port == port)
        {
            return Ok(false);
        }
        let link = Arc::new(Link::new(host.to_string(), port));
        at_a_cut(server, session, || {
            if let Some(old) = self.lock().replace(Arc::clone(&link)) {
                old.shut();
            }
            // From here the stream is the master's, relayed (see `Master::relay`).
            self.mark_replica(true);
            server.sync_lazy_expiry(crate::server::unix_ms());
        })
        .ok_or(MidChunk)?;
        crate::blocking::unblock_all_for_replica(server);
        let _ = server
            .config
            .set_startup("replicaof", format!("{host} {port}").as_bytes());
        let srv = Arc::clone(server);
        let spawned = std::thread::Builder::new()
            .name("ferrite-replica".into())
            .spawn(move || link::run(&srv, &link));
        if let Err(e) = spawned {
            log::warn!("Cannot start the replication thread: {e}");
        }
        Ok(true)
    }

    /// `REPLICAOF NO ONE`: stops following; the data and the backlog stay (see
    /// [`Master::promote`](crate::master::Master::promote)). Returns whether it was a replica.
    /// Under the exclusive gate: the master's stream stops exactly where this server's own
    /// writes begin.
    pub fn unfollow(&self, server: &Server, session: &mut Session) -> Result<bool, MidChunk> {
        let was = at_a_cut(server, session, || {
            let Some(link) = self.lock().take() else {
                return false;
            };
            link.shut();
            self.mark_replica(false);
            server.master.promote(server);
            server.sync_lazy_expiry(crate::server::unix_ms());
            true
        })
        .ok_or(MidChunk)?;
        if was {
            let _ = server.config.set_startup("replicaof", b"");
        }
        Ok(was)
    }

    /// REPLCONF GETACK from `client_id`: if that is the master's client, the link answers with
    /// its offset after the current batch.
    pub fn getack(&self, client_id: u64) {
        if let Some(l) = self.lock().as_ref()
            && l.master_client.load(Ordering::Acquire) == client_id
        {
            l.ack_wanted.store(true, Ordering::Release);
        }
    }

    /// INFO replication's role-specific lines (Redis 7.0's order) for a replica; false for a
    /// master.
    pub fn replica_info(&self, server: &Server, out: &mut String) -> bool {
        use std::fmt::Write;
        let Some(link) = self.link() else {
            return false;
        };
        let now = crate::server::unix_ms();
        let state = link.state();
        let offset = link.offset();
        let master_present = link.master_client.load(Ordering::Acquire) != 0;
        let last_io = if master_present {
            (now.saturating_sub(link.last_io_ms.load(Ordering::Relaxed)) / 1000) as i64
        } else {
            -1
        };
        let _ = write!(
            out,
            "role:slave\r\nmaster_host:{}\r\nmaster_port:{}\r\nmaster_link_status:{}\r\n\
             master_last_io_seconds_ago:{last_io}\r\nmaster_sync_in_progress:{}\r\n\
             slave_read_repl_offset:{offset}\r\nslave_repl_offset:{offset}\r\n",
            link.host,
            link.port,
            if state == LinkState::Connected {
                "up"
            } else {
                "down"
            },
            u8::from(state == LinkState::Transfer),
        );
        if state == LinkState::Transfer {
            let (read, total) = *link.transfer.lock().unwrap_or_else(|e| e.into_inner());
            // Redis's arithmetic, -1 total (diskless) included.
            let perc = if total == 0 {
                0.0
            } else {
                read as f64 * 100.0 / total as f64
            };
            let _ = write!(
                out,
                "master_sync_total_bytes:{total}\r\nmaster_sync_read_bytes:{read}\r\n\
                 master_sync_left_bytes:{}\r\nmaster_sync_perc:{perc:.2}\r\n\
                 master_sync_last_io_seconds_ago:{}\r\n",
                total - read,
                now.saturating_sub(link.last_io_ms.load(Ordering::Relaxed)) / 1000
            );
        }
        if state != LinkState::Connected {
            let since = link.down_since_ms.load(Ordering::Relaxed);
            let secs = if since == 0 {
                -1
            } else {
                (now.saturating_sub(since) / 1000) as i64
            };
            let _ = write!(out, "master_link_down_since_seconds:{secs}\r\n");
        }
        let cfg = &server.config;
        let yes = |name: &str| u8::from(cfg.value(name).as_deref() == Some("yes"));
        let _ = write!(
            out,
            "slave_priority:{}\r\nslave_read_only:{}\r\nreplica_announced:{}\r\n",
            cfg.value("replica-priority").unwrap_or_default(),
            yes("replica-read-only"),
            yes("replica-announced"),
        );
        true
    }
}

/// Runs `f` under the exclusive gate at a cut of the master's stream: no chunk of it applied
/// and not yet relayed (see [`Master::stream_cut`](crate::master::Master::stream_cut)). The
/// master's client takes the cut inside its shared section, so a holder may be waiting for
/// this very gate (an exclusive command of its chunk): then the gate is let go for it to finish
/// and taken again. A caller that already holds the gate cannot let it go: None then.
fn at_a_cut<R>(server: &Server, session: &mut Session, f: impl FnOnce() -> R) -> Option<R> {
    let nested = session.is_exclusive();
    let mut f = Some(f);
    loop {
        let done = session.exclusive(|_| {
            let _cut = server.master.stream_cut()?;
            f.take().map(|f| f())
        });
        if done.is_some() || nested {
            return done;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Why a role change could not happen now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MidChunk;

/// The error a role change inside an exclusive command (EXEC, PSYNC) answers when the
/// master's client is halfway through a chunk of the stream.
pub const MID_CHUNK_ERROR: &str = "ERR the master's stream is being applied right now, try again";

/// The master named by the `replicaof` parameter (`host port`), if it names one: what a
/// server started with `--replicaof "host port"` follows.
pub fn configured_master(server: &Server) -> Result<Option<(String, u16)>, String> {
    parse_master(&server.config.value("replicaof").unwrap_or_default())
}

/// `host port` (or nothing) as the `replicaof` parameter holds it.
fn parse_master(v: &str) -> Result<Option<(String, u16)>, String> {
    let mut parts = v.split_whitespace();
    match (parts.next(), parts.next(), parts.next()) {
        (None, _, _) => Ok(None),
        (Some(host), Some(port), None) => match port.parse::<u16>() {
            Ok(port) => Ok(Some((host.to_string(), port))),
            Err(_) => Err(format!("Invalid master port in replicaof: '{v}'")),
        },
        _ => Err(format!("replicaof takes a host and a port, not '{v}'")),
    }
}

/// Redis's `shared.masterdownerr`.
pub const MASTERDOWN_ERROR: &[u8] =
    b"MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.";

/// Whether commands without the `stale` flag must be refused now: a replica whose link is not
/// up, with `replica-serve-stale-data no`.
pub fn refuses_stale_reads(server: &Server) -> bool {
    // The parameter first: with its default (`yes`) this is one load, per command on a replica.
    !server
        .config
        .replica_serve_stale_data
        .load(Ordering::Relaxed)
        && server
            .replication
            .link()
            .is_some_and(|l| l.state() != LinkState::Connected)
}

/// Redis's `shared.roslaveerr`.
pub const READONLY_ERROR: &[u8] = b"READONLY You can't write against a read only replica.";

/// Whether clients' writes must be refused now: this server follows a master with
/// `replica-read-only yes` (the master's own client obeys, as Redis's `mustObeyClient`).
pub fn refuses_writes(server: &Server) -> bool {
    server.replication.is_replica() && server.config.replica_read_only.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicaof_parameter_names_a_host_and_a_port() {
        assert_eq!(parse_master(""), Ok(None));
        assert_eq!(parse_master("  "), Ok(None));
        assert_eq!(
            parse_master("10.0.0.1 6380"),
            Ok(Some(("10.0.0.1".to_string(), 6380)))
        );
        assert!(parse_master("10.0.0.1").is_err());
        assert!(parse_master("10.0.0.1 65536").is_err());
        assert!(parse_master("10.0.0.1 6380 x").is_err());
    }

    #[test]
    fn link_states_have_redis_role_names_and_the_down_time_starts_when_up_ends() {
        let link = Link::new("h".into(), 1);
        assert_eq!(link.state().role_name(), "connect");
        link.set_state(LinkState::Handshake);
        assert_eq!(link.state().role_name(), "handshake");
        assert_eq!(link.down_since_ms.load(Ordering::Relaxed), 0);
        link.set_state(LinkState::Transfer);
        assert_eq!(link.state().role_name(), "sync");
        link.set_state(LinkState::Connected);
        assert_eq!(link.state().role_name(), "connected");
        link.set_state(LinkState::Connect);
        assert!(link.down_since_ms.load(Ordering::Relaxed) > 0);
    }
}
