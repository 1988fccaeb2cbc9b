//! The link thread: connect, handshake, PSYNC, load a full resync's RDB, apply the stream
//! (Redis's `connectWithMaster`, `syncWithMaster`, `readSyncBulkPayload` and the master
//! client's `processInputBuffer`). Log lines are Redis's, so operators find what they know.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ferrite_hybridlog::Db;

use super::{Link, LinkState};
use crate::client::{Client, ReplyMode};
use crate::server::{Server, unix_ms};
use crate::worker::{Flow, Worker};

/// How long a failed link waits before the next attempt (Redis's cron period).
const RETRY: Duration = Duration::from_secs(1);
/// How long one blocking read waits, so that a stop and the periodic ACK are noticed.
const READ_TICK: Duration = Duration::from_millis(100);
/// How often the replica acknowledges its offset (Redis's `replicationCron`).
const ACK_EVERY: Duration = Duration::from_secs(1);
/// Length of the mark that ends a diskless transfer (Redis's `RDB_EOF_MARK_SIZE`).
const EOF_MARK_LEN: usize = 40;

type LinkResult<T> = Result<T, String>;

/// The thread's body: follows `link` until it is stopped.
pub(super) fn run(server: &Arc<Server>, link: &Arc<Link>) {
    let mut worker = Worker::background(Arc::clone(server));
    let mut master: Option<Client> = None;
    log::info!("Connecting to MASTER {}:{}", link.host, link.port);
    while !link.stopped() {
        if let Err(e) = follow(server, link, &mut worker, &mut master)
            && !link.stopped()
        {
            log::warn!("{e}");
        }
        // CLIENT KILL TYPE master: a new client takes the killed one's place, in its database,
        // so that the next PSYNC can still continue the stream (as Redis's cached master).
        if master.as_ref().is_some_and(|c| c.shared.killed())
            && let Some(old) = master.take()
        {
            let db = old.db;
            worker.closed(old);
            let mut client = new_master_client(&mut worker);
            client.db = db;
            link.set_master_client(Some(&client.shared));
            master = Some(client);
        }
        *link.socket.lock().unwrap_or_else(|e| e.into_inner()) = None;
        link.set_state(LinkState::Connect);
        let until = Instant::now() + RETRY;
        while !link.stopped() && Instant::now() < until {
            std::thread::sleep(READ_TICK);
        }
    }
    link.set_master_client(None);
    if let Some(client) = master.take() {
        worker.closed(client);
    }
}

/// One connection to the master: handshake, sync, then the stream until it fails or the link
/// is stopped (`Ok`).
fn follow(
    server: &Arc<Server>,
    link: &Link,
    worker: &mut Worker,
    master: &mut Option<Client>,
) -> LinkResult<()> {
    link.set_state(LinkState::Connecting);
    let mut conn = Conn::open(server, link)?;
    log::info!("MASTER <-> REPLICA sync started");
    link.set_state(LinkState::Handshake);
    handshake(server, link, &mut conn)?;
    let partial = psync(server, link, &mut conn, worker, master)?;
    let Some(client) = master.as_mut() else {
        return Err("MASTER <-> REPLICA sync: no master client after the sync".into());
    };
    link.set_state(LinkState::Connected);
    if partial {
        log::info!("MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.");
    } else {
        log::info!("MASTER <-> REPLICA sync: Finished with success");
    }
    stream(server, link, &mut conn, worker, client)
}

/// PING, AUTH, REPLCONF listening-port and capa, as Redis's `syncWithMaster` sends them.
fn handshake(server: &Server, link: &Link, conn: &mut Conn) -> LinkResult<()> {
    conn.send(&[b"PING"])?;
    let pong = conn.line(link)?;
    // A master that wants a password answers NOAUTH (or NOPERM) here; AUTH comes next.
    if pong.starts_with('-')
        && !pong.starts_with("-NOAUTH")
        && !pong.starts_with("-NOPERM")
        && !pong.starts_with("-ERR operation not permitted")
    {
        return Err(format!("Error reply to PING from master: '{pong}'"));
    }
    let cfg = &server.config;
    let pass = cfg.value("masterauth").unwrap_or_default();
    if !pass.is_empty() {
        let user = cfg.value("masteruser").unwrap_or_default();
        if user.is_empty() {
            conn.send(&[b"AUTH", pass.as_bytes()])?;
        } else {
            conn.send(&[b"AUTH", user.as_bytes(), pass.as_bytes()])?;
        }
        let r = conn.line(link)?;
        if r.starts_with('-') {
            return Err(format!("Unable to AUTH to MASTER: {r}"));
        }
    }
    let port = server.port.get().copied().unwrap_or(0).to_string();
    conn.send(&[b"REPLCONF", b"listening-port", port.as_bytes()])?;
    let r = conn.line(link)?;
    if r.starts_with('-') {
        log::info!("(Non critical) Master does not understand REPLCONF listening-port: {r}");
    }
    // As Redis's replica: diskless transfers (`eof`) and PSYNC's new-ID continuation (`psync2`).
    conn.send(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"])?;
    let r = conn.line(link)?;
    if r.starts_with('-') {
        log::info!("(Non critical) Master does not understand REPLCONF capa: {r}");
    }
    Ok(())
}

/// Asks to continue from the offset applied (or for a full sync the first time), and loads the
/// RDB of a full one. Returns whether the master continued the old stream.
fn psync(
    server: &Server,
    link: &Link,
    conn: &mut Conn,
    worker: &mut Worker,
    master: &mut Option<Client>,
) -> LinkResult<bool> {
    // This server's history: its last master's, or its own when it was a master.
    let (id, offset) = match server.master.history() {
        Some((id, o)) => (id, (o + 1).to_string()),
        None => ("?".to_string(), "-1".to_string()),
    };
    if id == "?" {
        log::info!("Partial resynchronization not possible (no cached master)");
    } else {
        log::info!("Trying a partial resynchronization (request {id}:{offset}).");
    }
    // A master handing over (FAILOVER) asks its chosen replica to take over with this PSYNC.
    let failover = server.master.failover.in_progress();
    if failover {
        conn.send(&[b"PSYNC", id.as_bytes(), offset.as_bytes(), b"FAILOVER"])?;
    } else {
        conn.send(&[b"PSYNC", id.as_bytes(), offset.as_bytes()])?;
    }
    let reply = conn.nonempty_line(link)?;
    if failover {
        let accepted = reply.starts_with("+CONTINUE") || reply.starts_with("+FULLRESYNC");
        server.master.failover.answered(server, accepted);
        if !accepted {
            return Err(format!("Unexpected reply to PSYNC from master: {reply}"));
        }
    }
    if let Some(rest) = reply.strip_prefix("+CONTINUE") {
        server.master.continued(server, rest.trim());
        match master.as_mut() {
            Some(client) => {
                // The stream resumes at the first command not relayed: whatever the parser had
                // seen of a command cut by the lost link, and a transaction not yet executed
                // (Redis's `replicationCacheMaster` discards it), come again from their start.
                client.parser = Default::default();
                client.multi = None;
                client.repl_unrelayed.clear();
            }
            None => {
                // This server's history goes on under the master: it was a master (the new
                // one's first write after its promotion selects a database), or it restarted
                // from a dump cut from this stream (which says where the stream was).
                let mut client = new_master_client(worker);
                client.db = server.master.stream_db();
                client.shared.db.store(client.db, Ordering::Relaxed);
                link.set_master_client(Some(&client.shared));
                *master = Some(client);
            }
        }
        link.offset.store(server.master.offset(), Ordering::Release);
        return Ok(true);
    }
    let Some(rest) = reply.strip_prefix("+FULLRESYNC ") else {
        return Err(format!("Unexpected reply to PSYNC from master: {reply}"));
    };
    let mut parts = rest.split_whitespace();
    let (Some(replid), Some(offset)) = (parts.next(), parts.next().and_then(|o| o.parse().ok()))
    else {
        return Err(format!(
            "Master replied with wrong +FULLRESYNC syntax: {reply}"
        ));
    };
    log::info!("Full resync from master: {replid}:{offset}");
    link.set_state(LinkState::Transfer);
    receive_rdb(server, link, conn)?;
    server.master.full_sync_begins(server);
    let stream_db = load_rdb(server)?;
    if let Some(old) = master.take() {
        worker.closed(old);
    }
    let mut client = new_master_client(worker);
    // The stream goes on in the database it had selected at the snapshot's cut.
    client.db = stream_db;
    client.shared.db.store(stream_db, Ordering::Relaxed);
    link.set_master_client(Some(&client.shared));
    *master = Some(client);
    server.master.full_sync_done(server, replid, offset);
    link.offset.store(offset, Ordering::Release);
    Ok(false)
}

/// The client the master's commands run as: obeying, replies off (Redis's master client never
/// gets one), type `master` in CLIENT LIST from the start.
fn new_master_client(worker: &mut Worker) -> Client {
    let mut client = worker.internal_client();
    client.reply_mode = ReplyMode::Off;
    client.master_link = true;
    client.shared.conn.flags.store(
        crate::client::FLAG_MASTER,
        std::sync::atomic::Ordering::Relaxed,
    );
    client
}

/// Reads the `$<len>` payload into the dump file (through a temp file, as Redis does).
fn receive_rdb(server: &Server, link: &Link, conn: &mut Conn) -> LinkResult<()> {
    // The master sends newlines while it prepares the RDB, to keep the link alive.
    let header = conn.nonempty_line(link)?;
    if header.starts_with('-') {
        return Err(format!(
            "MASTER aborted replication with an error: {header}"
        ));
    }
    // A diskless transfer (`capa eof`) has no length: the payload ends with the 40-byte mark.
    let eof_mark = header
        .strip_prefix("$EOF:")
        .map(|m| m.as_bytes().to_vec())
        .filter(|m| m.len() == EOF_MARK_LEN);
    let len = match &eof_mark {
        Some(_) => None,
        None => match header.strip_prefix('$').and_then(|n| n.parse::<u64>().ok()) {
            Some(len) => Some(len),
            None => {
                return Err(format!(
                    "Bad protocol from MASTER, the first byte is not '$' (we received \
                     '{header}'), are you sure the host and port are right?"
                ));
            }
        },
    };
    match len {
        Some(len) => {
            log::info!("MASTER <-> REPLICA sync: receiving {len} bytes from master to disk");
        }
        None => log::info!(
            "MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF to disk"
        ),
    }
    let tmp = format!("temp-{}.{}.rdb", unix_ms() / 1000, std::process::id());
    let write_err = |e: std::io::Error| {
        format!(
            "Write error or short write writing to the DB dump file needed for MASTER <-> REPLICA synchronization: {e}"
        )
    };
    let mut file = std::fs::File::create(&tmp).map_err(|e| {
        format!("Opening the temp file needed for MASTER <-> REPLICA synchronization: {e}")
    })?;
    let total = len.map_or(-1, |l| l as i64);
    *link.transfer.lock().unwrap_or_else(|e| e.into_inner()) = (0, total);
    let mut read = 0u64;
    loop {
        // With a mark, the last EOF_MARK_LEN bytes seen may be it: they are held back.
        let keep = if eof_mark.is_some() { EOF_MARK_LEN } else { 0 };
        let mut take = conn.buf.len().saturating_sub(keep);
        if let Some(len) = len {
            take = take.min((len - read) as usize);
        }
        if take > 0 {
            file.write_all(&conn.buf[..take]).map_err(write_err)?;
            conn.buf.drain(..take);
            read += take as u64;
            link.transfer.lock().unwrap_or_else(|e| e.into_inner()).0 = read as i64;
        }
        let done = match (&eof_mark, len) {
            (Some(mark), _) => conn.buf == *mark,
            (None, Some(len)) => read == len,
            (None, None) => unreachable!("a transfer has a length or a mark"),
        };
        if done {
            // After a `$<len>` payload the master's stream may follow at once (its writes
            // during the transfer): those bytes are the stream's first. After an EOF mark
            // nothing follows until this replica acknowledges, as with Redis's own replica.
            if eof_mark.is_some() {
                conn.buf.clear();
            }
            break;
        }
        conn.fill(link)?;
    }
    file.sync_all().map_err(write_err)?;
    drop(file);
    let name = crate::persist::snapshot::dbfilename(server);
    std::fs::rename(&tmp, &name).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!(
            "Failed trying to rename the temp DB into {name} in MASTER <-> REPLICA synchronization: {e}"
        )
    })?;
    Ok(())
}

/// Replaces the dataset with the dump just received, under the store's exclusive gate: clients
/// wait meanwhile, as Redis's replica answers nothing while it loads. With the AOF on, a
/// rewrite starts at once (Redis's `restartAOFAfterSYNC`), so that the file describes the
/// loaded data rather than what it replaced. Returns the database the master's stream had
/// selected at the snapshot's cut (its `repl-stream-db`; 0 when the file does not say).
fn load_rdb(server: &Server) -> LinkResult<Db> {
    log::info!("MASTER <-> REPLICA sync: Flushing old data");
    let name = crate::persist::snapshot::dbfilename(server);
    let mut session = server.store.session();
    let loaded = session.exclusive(|s| {
        s.flush_all();
        server.scripts.functions.flush();
        log::info!("MASTER <-> REPLICA sync: Loading DB in memory");
        let loaded = crate::persist::rdb_read::load_file_with(
            std::path::Path::new(&name),
            s,
            unix_ms(),
            false,
        );
        if loaded.is_ok() && server.aof.state() != crate::aof::State::Off {
            crate::aof::rewrite::kill_child(server);
            if crate::aof::rewrite::start(server, s).is_err() {
                server.aof.rewrite.schedule();
            }
        }
        loaded
    });
    // The load's writes took commit numbers while the AOF is on: file them (as nothing: the
    // rewrite's base holds their result), or the AOF writer would wait for them forever.
    let mut feed = crate::aof::Feed::default();
    feed.background(server, &mut session);
    feed.push(server);
    let failed = || "Failed trying to load the MASTER synchronization DB from disk".to_string();
    match loaded {
        Ok(Some(l)) => {
            server
                .scripts
                .load_libraries_replacing(&l.libraries, false)
                .map_err(|e| format!("{}: {e}", failed()))?;
            Ok(l.repl_stream_db
                .filter(|&db| usize::from(db) < server.store.databases())
                .unwrap_or(0))
        }
        Ok(None) => Err(failed()),
        Err(e) => Err(format!("{}: {e}", failed())),
    }
}

/// Applies the master's commands as they come (the worker relays them to this server's own
/// stream), acknowledging the offset every second and when asked; returns `Ok` once the link
/// is stopped.
fn stream(
    server: &Server,
    link: &Link,
    conn: &mut Conn,
    worker: &mut Worker,
    client: &mut Client,
) -> LinkResult<()> {
    let mut out = Vec::new();
    let mut last_ack: Option<Instant> = None;
    loop {
        if link.stopped() {
            return Ok(());
        }
        if client.shared.killed() {
            return Err("Connection with master lost (the master client was killed).".into());
        }
        let mut fed = 0;
        while fed < conn.buf.len() {
            let (n, flow) = worker.input(client, &conn.buf[fed..], &mut out);
            out.clear();
            fed += n;
            if matches!(flow, Flow::CloseNow | Flow::CloseAfterFlush) {
                // A protocol error (or a query past the buffer limit): Redis drops the link
                // and syncs again.
                link.offset.store(server.master.offset(), Ordering::Release);
                return Err("Protocol error in the stream from MASTER: link dropped".into());
            }
            if n == 0 {
                break;
            }
        }
        conn.buf.drain(..fed);
        // What was relayed: a transaction not yet executed is not counted (Redis's `reploff`).
        link.offset.store(server.master.offset(), Ordering::Release);
        let asked = link.ack_wanted.swap(false, Ordering::AcqRel);
        if asked || last_ack.is_none_or(|t| t.elapsed() >= ACK_EVERY) {
            let offset = link.offset().to_string();
            conn.send(&[b"REPLCONF", b"ACK", offset.as_bytes()])?;
            last_ack = Some(Instant::now());
        }
        conn.fill(link)?;
    }
}

/// The socket to the master and what was read from it and not used yet.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    last_io: Instant,
    /// `repl-timeout`: how long the master may stay silent.
    timeout: Duration,
}

impl Conn {
    fn open(server: &Server, link: &Link) -> LinkResult<Conn> {
        let timeout = repl_timeout(server);
        let fail = |e: &dyn std::fmt::Display| format!("Error condition on socket for SYNC: {e}");
        let addr = (link.host.as_str(), link.port)
            .to_socket_addrs()
            .map_err(|e| fail(&e))?
            .next()
            .ok_or_else(|| fail(&"no address"))?;
        let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| fail(&e))?;
        let _ = stream.set_nodelay(true);
        stream
            .set_read_timeout(Some(READ_TICK))
            .map_err(|e| fail(&e))?;
        stream
            .set_write_timeout(Some(timeout))
            .map_err(|e| fail(&e))?;
        let copy = stream.try_clone().map_err(|e| fail(&e))?;
        *link.socket.lock().unwrap_or_else(|e| e.into_inner()) = Some(copy);
        if link.stopped() {
            return Err("stopped".into());
        }
        log::info!(
            "MASTER <-> REPLICA sync: connected to {}:{}",
            link.host,
            link.port
        );
        Ok(Conn {
            stream,
            buf: Vec::new(),
            last_io: Instant::now(),
            timeout,
        })
    }

    fn send(&mut self, args: &[&[u8]]) -> LinkResult<()> {
        let mut b = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            b.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            b.extend_from_slice(a);
            b.extend_from_slice(b"\r\n");
        }
        self.stream
            .write_all(&b)
            .map_err(|e| format!("Error writing to MASTER: {e}"))
    }

    /// Reads what is there (waiting up to [`READ_TICK`]); fails when the master closed the
    /// link, stayed silent for `repl-timeout`, or the link was stopped.
    fn fill(&mut self, link: &Link) -> LinkResult<()> {
        if link.stopped() {
            return Err("stopped".into());
        }
        let mut chunk = [0u8; 64 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => Err("MASTER closed the connection".into()),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                self.last_io = Instant::now();
                link.last_io_ms.store(unix_ms(), Ordering::Relaxed);
                Ok(())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                if self.last_io.elapsed() > self.timeout {
                    Err("MASTER timeout: no data nor PING received...".into())
                } else {
                    Ok(())
                }
            }
            Err(e) => Err(format!("Error reading from MASTER: {e}")),
        }
    }

    /// One line of a reply, without its line ending.
    fn line(&mut self, link: &Link) -> LinkResult<String> {
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line);
                return Ok(text.trim_end_matches(['\r', '\n']).to_string());
            }
            self.fill(link)?;
        }
    }

    /// The next line that is not one of the newlines a master sends to keep the link alive.
    fn nonempty_line(&mut self, link: &Link) -> LinkResult<String> {
        loop {
            let l = self.line(link)?;
            if !l.is_empty() {
                return Ok(l);
            }
        }
    }
}

fn repl_timeout(server: &Server) -> Duration {
    let secs = server
        .config
        .value("repl-timeout")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(60)
        .max(1);
    Duration::from_secs(secs)
}
