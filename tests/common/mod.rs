//! Shared helpers for the integration tests: starting a Ferrite or a reference redis-server on a
//! free port, a minimal RESP client that returns the raw bytes of one reply, and the tokenizer
//! and escaping used by the differential runner.

#![allow(dead_code)]

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub mod replication;

/// How long a server gets to start accepting connections.
pub const START_DEADLINE: Duration = Duration::from_secs(10);
/// Read timeout of a [`Conn`].
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Store sizes for test servers: the defaults (a 64 MB index, 1 GB of log memory) make every
/// FLUSHALL and KEYS walk a million buckets, which takes about a second in a debug build. Tests
/// hold few keys; a test that passes `--index-size`/`--memory-size` itself overrides these.
/// Test servers also start without save points (`--save ""`), as the reference redis-server
/// does, so that stopping one writes no dump.rdb; persistence tests pass `--save` themselves.
pub const TEST_STORE_ARGS: &[&str] = &[
    "--index-size",
    "1mb",
    "--memory-size",
    "128mb",
    "--save",
    "",
];

/// The I/O backends every server-level test runs against.
pub fn backends() -> &'static [&'static str] {
    &["uring", "epoll"]
}

/// A port that was free a moment ago (bind 127.0.0.1:0, take the port, drop the listener).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// The ferrite binary under test: the one cargo built with the tests, or `FERRITE_BIN` if set
/// (e.g. `FERRITE_BIN=target/release/ferrite cargo test` runs the suite against a release build).
pub fn ferrite_bin() -> PathBuf {
    match std::env::var_os("FERRITE_BIN") {
        Some(p) if !p.is_empty() => {
            let p = PathBuf::from(p);
            assert!(p.is_file(), "FERRITE_BIN={} does not exist", p.display());
            std::fs::canonicalize(&p).unwrap_or(p)
        }
        _ => PathBuf::from(env!("CARGO_BIN_EXE_ferrite")),
    }
}

/// A release ferrite if `FERRITE_RELEASE_BIN` names one that exists (`.ci/run` builds it for
/// the redis-benchmark test), else [`ferrite_bin`].
pub fn ferrite_release_bin() -> PathBuf {
    match std::env::var_os("FERRITE_RELEASE_BIN") {
        Some(p) if Path::new(&p).is_file() => PathBuf::from(p),
        _ => ferrite_bin(),
    }
}

/// Whether the suite runs under CI (where a missing redis-server is a failure, not a skip).
pub fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

/// Whether `prog` can be run (is on PATH).
pub fn have_program(prog: &str) -> bool {
    Command::new(prog)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Check for a Redis tool (`redis-server`, `redis-cli`, `redis-benchmark`): present → true;
/// missing → panic under CI, else print why the test is skipped and return false.
pub fn require_tool(prog: &str) -> bool {
    if have_program(prog) {
        return true;
    }
    if in_ci() {
        panic!("`{prog}` is not on PATH, and CI=true: install redis-server and redis-tools");
    }
    eprintln!("SKIPPED: `{prog}` is not on PATH (install redis-server / redis-tools to run this)");
    false
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Make a fresh, empty directory whose name starts with `prefix`.
    pub fn new(prefix: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Wait for `child` to exit, at most `timeout`.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) => {}
            Err(_) => return None,
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) on the pid of a child we own and have not reaped yet; no memory is touched.
    unsafe {
        libc::kill(child.id() as libc::pid_t, sig);
    }
}

/// What a finished command printed, and how it ended.
pub struct Finished {
    /// The exit status, or None when it had to be killed after the timeout.
    pub status: Option<ExitStatus>,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

/// Run `cmd` with stdout/stderr captured in files, killing it after `timeout`.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Finished {
    let dir = TempDir::new("ferrite-run");
    let out_p = dir.path().join("stdout");
    let err_p = dir.path().join("stderr");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(File::create(&out_p).unwrap())
        .stderr(File::create(&err_p).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let status = wait_timeout(&mut child, timeout);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    Finished {
        status,
        stdout: String::from_utf8_lossy(&fs::read(&out_p).unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&fs::read(&err_p).unwrap_or_default()).into_owned(),
    }
}

/// A server process under test: started on a free port, in its own temp dir, with its output
/// kept in a log file; SIGTERM (then SIGKILL after 5 s) on drop, and the log is printed if the
/// test is failing.
pub struct Server {
    child: Option<Child>,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    /// What it is, for messages ("ferrite[uring]", "redis-server").
    pub name: String,
    log: PathBuf,
    dir: TempDir,
}

/// Ferrite under test (a [`Server`]).
pub struct Ferrite(Server);

/// The reference redis-server (a [`Server`]).
pub struct RedisServer(Server);

impl std::ops::Deref for Ferrite {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.0
    }
}

impl std::ops::DerefMut for Ferrite {
    fn deref_mut(&mut self) -> &mut Server {
        &mut self.0
    }
}

impl std::ops::Deref for RedisServer {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.0
    }
}

impl std::ops::DerefMut for RedisServer {
    fn deref_mut(&mut self) -> &mut Server {
        &mut self.0
    }
}

impl Ferrite {
    /// Start ferrite with `--io-backend backend` and `extra_args` on a free port, with a temp
    /// `--dir`; panics (with its log) if it doesn't accept connections within 10 s.
    pub fn start(backend: &str, extra_args: &[&str]) -> Ferrite {
        Self::start_bin(&ferrite_bin(), backend, extra_args)
    }

    /// [`Server::start`] with a given binary (the release one for benchmarks).
    pub fn start_bin(bin: &Path, backend: &str, extra_args: &[&str]) -> Ferrite {
        let mut last_err = String::new();
        // A free port can be taken by someone else between probe and bind: retry a few times.
        for _ in 0..3 {
            let dir = TempDir::new("ferrite-test");
            let port = free_port();
            let mut cmd = Command::new(bin);
            cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--io-backend", backend])
                .arg("--dir")
                .arg(dir.path());
            for pair in TEST_STORE_ARGS.chunks(2) {
                if !extra_args.contains(&pair[0]) {
                    cmd.args(pair);
                }
            }
            cmd.args(extra_args).current_dir(dir.path());
            match Server::spawn(cmd, port, format!("ferrite[{backend}]"), dir) {
                Ok(s) => {
                    // A uring test that silently runs on the epoll fallback tests nothing new.
                    let log = s.log().to_lowercase();
                    if backend == "uring" && log.contains("falling back to epoll") {
                        panic!(
                            "--io-backend uring was asked for, but the server fell back to \
                             epoll:\n{}",
                            s.log()
                        );
                    }
                    return Ferrite(s);
                }
                Err(e) => last_err = e,
            }
        }
        panic!("ferrite did not start: {last_err}");
    }

    /// Ferrite on `dir` as its data directory, with two reactor threads and the small test
    /// store's sizes (`TEST_STORE_ARGS` but its `--save`: what `extra` does not set), then
    /// `extra`. An error is the reason it did not start (some tests expect a refused start-up).
    pub fn start_in(backend: &str, dir: &Path, extra: &[&str]) -> Result<Ferrite, String> {
        let mut outcome = Err(String::new());
        // A port free when probed may be taken by another test before the server binds it:
        // only that refusal is retried (other refusals are what some tests expect).
        for _ in 0..3 {
            let port = free_port();
            let dir = dir.display().to_string();
            let port_arg = port.to_string();
            let fixed = [
                "--port",
                &port_arg,
                "--bind",
                "127.0.0.1",
                "--io-backend",
                backend,
                "--threads",
                "2",
                "--dir",
                &dir,
            ];
            let sizes = TEST_STORE_ARGS
                .chunks(2)
                .filter(|pair| pair[0] != "--save" && !extra.contains(&pair[0]))
                .flatten();
            let args: Vec<String> = fixed
                .iter()
                .chain(sizes)
                .chain(extra)
                .map(|s| s.to_string())
                .collect();
            let name = format!("ferrite[{backend}]");
            outcome = Ferrite::start_custom(&ferrite_bin(), &args, port, &name);
            match &outcome {
                Err(e) if e.contains("Address already in use") => continue,
                _ => break,
            }
        }
        outcome
    }

    /// [`Ferrite::start_in`] with `--appendonly yes` and no save points (unless `extra` says
    /// otherwise): the AOF suites' server.
    pub fn start_aof_in(backend: &str, dir: &Path, extra: &[&str]) -> Result<Ferrite, String> {
        let mut args = vec!["--appendonly", "yes"];
        if !extra.contains(&"--save") {
            args.extend(["--save", ""]);
        }
        args.extend(extra);
        Ferrite::start_in(backend, dir, &args)
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill9(&mut self) {
        // SAFETY: kill(2) with a pid we spawned; no memory is involved.
        unsafe { libc::kill(self.pid() as i32, libc::SIGKILL) };
        for _ in 0..500 {
            if !self.is_running() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("ferrite survived SIGKILL");
    }

    /// Start `bin args...` (no arguments added) and wait until `port` accepts connections.
    /// The process runs in a temp dir, which `args` may name as `{dir}`.
    pub fn start_custom(
        bin: &Path,
        args: &[String],
        port: u16,
        name: &str,
    ) -> Result<Ferrite, String> {
        let dir = TempDir::new("ferrite-custom");
        let d = dir.path().display().to_string();
        let mut cmd = Command::new(bin);
        cmd.args(args.iter().map(|a| a.replace("{dir}", &d)))
            .current_dir(dir.path());
        Server::spawn(cmd, port, name.to_string(), dir).map(Ferrite)
    }
}

impl RedisServer {
    /// Start redis-server on a free port (no persistence, temp cwd). None (test skipped) if
    /// redis-server is not installed, unless CI=true, where that panics.
    pub fn start() -> Option<RedisServer> {
        Self::start_with(&[])
    }

    /// [`RedisServer::start`] with extra arguments (`--requirepass x`, ...).
    pub fn start_with(extra_args: &[&str]) -> Option<RedisServer> {
        if !require_tool("redis-server") {
            return None;
        }
        let mut last_err = String::new();
        for _ in 0..3 {
            let dir = TempDir::new("redis-test");
            let port = free_port();
            let mut cmd = Command::new("redis-server");
            cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .args(extra_args)
                .current_dir(dir.path());
            match Server::spawn(cmd, port, "redis-server".to_string(), dir) {
                Ok(s) => return Some(RedisServer(s)),
                Err(e) => last_err = e,
            }
        }
        panic!("redis-server did not start: {last_err}");
    }
}

impl Server {
    /// Spawns `cmd` (running in `dir`, its output in `dir/server.log`) and waits until `port`
    /// accepts connections.
    pub fn spawn(
        mut cmd: Command,
        port: u16,
        name: String,
        dir: TempDir,
    ) -> Result<Server, String> {
        let log = dir.path().join("server.log");
        let f = File::create(&log).map_err(|e| e.to_string())?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(f.try_clone().map_err(|e| e.to_string())?)
            .stderr(f)
            .spawn()
            .map_err(|e| format!("spawn {cmd:?}: {e}"))?;
        let mut s = Server {
            child: Some(child),
            port,
            name,
            log,
            dir,
        };
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            // Our process must say it is ready before a connection counts: the port may have
            // been handed to another server between probe and bind, and a connect would then
            // reach that one.
            if s.log().contains("Ready to accept connections")
                && TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                return Ok(s);
            }
            if let Some(st) = s.child.as_mut().unwrap().try_wait().ok().flatten() {
                s.child = None;
                return Err(format!(
                    "{} exited during start-up ({st}); command: {cmd:?}\n--- log ---\n{}",
                    s.name,
                    s.log()
                ));
            }
            if Instant::now() >= deadline {
                let msg = format!(
                    "{} not accepting connections on port {port} after {START_DEADLINE:?}; \
                     command: {cmd:?}\n--- log ---\n{}",
                    s.name,
                    s.log()
                );
                drop(s);
                return Err(msg);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `redis://127.0.0.1:PORT/` for the `redis` crate.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The server's working directory (its `--dir`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the server has printed so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// A new raw RESP connection.
    pub fn conn(&self) -> Conn {
        Conn::connect(self.port)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Resident set size in KiB (VmRSS from /proc/PID/status).
    pub fn rss_kb(&self) -> u64 {
        let s = fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// CPU seconds (user + sys) the process has used so far, from /proc/PID/stat.
    pub fn cpu_seconds(&self) -> f64 {
        let s = fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // Fields after the ")" that closes comm: state is field 3; utime 14 and stime 15.
        let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
            + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        // SAFETY: sysconf has no memory-safety preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        ticks / hz
    }

    /// Send SIGTERM and wait up to `timeout` for the exit status (None: still running, then
    /// it is killed).
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        signal(&child, libc::SIGTERM);
        let st = wait_timeout(&mut child, timeout);
        if st.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        st
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, libc::SIGTERM);
            if wait_timeout(&mut child, Duration::from_secs(5)).is_none() {
                eprintln!("{}: no exit 5 s after SIGTERM, sending SIGKILL", self.name);
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            let log = self.log();
            let tail: String = if log.len() > 20_000 {
                format!("...\n{}", &log[log.len() - 20_000..])
            } else {
                log
            };
            eprintln!(
                "--- {} (port {}) log ---\n{tail}\n--- end of log ---",
                self.name, self.port
            );
        }
    }
}

/// Encode a command as a RESP multibulk.
pub fn encode_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + args.iter().map(|a| a.len() + 16).sum::<usize>());
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A minimal RESP client over a TcpStream, returning raw reply bytes.
pub struct Conn {
    /// The socket.
    pub stream: TcpStream,
    buf: Vec<u8>,
    /// The port it is connected to.
    pub port: u16,
}

impl Conn {
    /// Connect to 127.0.0.1:port with a 5 s read timeout.
    pub fn connect(port: u16) -> Conn {
        Self::try_connect(port).unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"))
    }

    /// [`Conn::connect`] that reports failure.
    pub fn try_connect(port: u16) -> io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_write_timeout(Some(Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
            port,
        })
    }

    /// Send one command as a RESP multibulk.
    pub fn send(&mut self, args: &[&[u8]]) {
        self.try_send(args).expect("send");
    }

    /// [`Conn::send`] that reports failure.
    pub fn try_send(&mut self, args: &[&[u8]]) -> io::Result<()> {
        self.stream.write_all(&encode_command(args))
    }

    /// Send bytes verbatim.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send raw bytes");
    }

    /// Read the raw bytes of exactly one complete RESP2/RESP3 reply; panics on error/timeout.
    pub fn read_reply(&mut self) -> Vec<u8> {
        self.try_read_reply()
            .unwrap_or_else(|e| panic!("reading a reply from port {}: {e}", self.port))
    }

    /// [`Conn::read_reply`] that reports failure (`UnexpectedEof` when the peer closed,
    /// `WouldBlock`/`TimedOut` on timeout, `InvalidData` on a malformed reply).
    pub fn try_read_reply(&mut self) -> io::Result<Vec<u8>> {
        loop {
            match resp_len(&self.buf) {
                Ok(Some(n)) => return Ok(self.buf.drain(..n).collect()),
                Ok(None) => {}
                Err(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{e}: {}", escape(&self.buf)),
                    ));
                }
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "connection closed by the server (after {} unparsed bytes: {})",
                        self.buf.len(),
                        escape(&self.buf)
                    ),
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Send a command and read its reply.
    pub fn cmd(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.send(args);
        self.read_reply()
    }

    /// One numeric field of an INFO section (panics when it is missing).
    pub fn info_u64(&mut self, section: &str, name: &str) -> u64 {
        let info = String::from_utf8_lossy(&self.cmd_str(&["INFO", section])).into_owned();
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name} in {info}"))
            .trim()
            .parse()
            .unwrap()
    }

    /// Sends `cmds` pipelined in batches of `batch` and returns the replies in order.
    pub fn pipeline(&mut self, cmds: &[Vec<Vec<u8>>], batch: usize) -> Vec<Vec<u8>> {
        let mut replies = Vec::with_capacity(cmds.len());
        for chunk in cmds.chunks(batch) {
            for cmd in chunk {
                let args: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
                self.send(&args);
            }
            for _ in chunk {
                replies.push(self.read_reply());
            }
        }
        replies
    }

    /// [`Conn::cmd`] with string arguments.
    pub fn cmd_str(&mut self, args: &[&str]) -> Vec<u8> {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        self.cmd(&a)
    }

    /// Read everything until the connection has been idle for `idle` or is closed (or `max`
    /// has passed). Returns the bytes and whether the server closed the connection.
    pub fn read_until_idle(&mut self, idle: Duration, max: Duration) -> (Vec<u8>, bool) {
        let mut out = std::mem::take(&mut self.buf);
        let deadline = Instant::now() + max;
        let _ = self.stream.set_read_timeout(Some(idle));
        let mut closed = false;
        loop {
            if Instant::now() >= deadline {
                break;
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => out.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        let _ = self.stream.set_read_timeout(Some(READ_TIMEOUT));
        (out, closed)
    }

    /// Whether the server has closed this connection (waits up to `timeout` for EOF; data
    /// that arrives meanwhile is discarded).
    pub fn wait_closed(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let _ = self
            .stream
            .set_read_timeout(Some(Duration::from_millis(50)));
        let closed = loop {
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => break true,
                Ok(_) => {}
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut
                        || e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break true,
            }
            if Instant::now() >= deadline {
                break false;
            }
        };
        let _ = self.stream.set_read_timeout(Some(READ_TIMEOUT));
        closed
    }

    /// Half-close (no more writes from us).
    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|p| from + p)
}

/// The length of the first complete RESP2/RESP3 value in `buf`: Ok(None) if incomplete,
/// Err if the bytes are not RESP.
pub fn resp_len(buf: &[u8]) -> Result<Option<usize>, String> {
    value_end(buf, 0)
}

fn parse_int(line: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| format!("bad length {:?}", escape(line)))
}

/// End offset of the value starting at `pos`. Iterative: a reply may nest thousands of levels
/// deep (a script returning a table that contains itself), more than a test thread's stack
/// holds in a debug build if each level were a call.
fn value_end(buf: &[u8], mut pos: usize) -> Result<Option<usize>, String> {
    // Values still owed by each open aggregate.
    let mut owed: Vec<usize> = Vec::new();
    loop {
        let Some(&t) = buf.get(pos) else {
            return Ok(None);
        };
        let Some(eol) = find_crlf(buf, pos + 1) else {
            return Ok(None);
        };
        let line = &buf[pos + 1..eol];
        let after = eol + 2;
        pos = match t {
            b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => after,
            b'$' | b'=' | b'!' => {
                let n = parse_int(line)?;
                if n < 0 {
                    after
                } else {
                    let end = after + n as usize + 2;
                    if buf.len() < end {
                        return Ok(None);
                    } else if &buf[end - 2..end] != b"\r\n" {
                        return Err("bulk string not terminated by CRLF".into());
                    }
                    end
                }
            }
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                let n = parse_int(line)?;
                let mut count = n.max(0) as usize;
                if t == b'%' || t == b'|' {
                    count *= 2;
                }
                if t == b'|' {
                    // An attribute map precedes the value it describes.
                    count += 1;
                }
                if count > 0 {
                    owed.push(count);
                    pos = after;
                    continue;
                }
                after
            }
            _ => return Err(format!("unknown RESP type byte {:?}", t as char)),
        };
        // One value ended: settle it with the aggregates it completes.
        loop {
            match owed.last_mut() {
                None => return Ok(Some(pos)),
                Some(1) => {
                    owed.pop();
                }
                Some(n) => {
                    *n -= 1;
                    break;
                }
            }
        }
    }
}

/// Split a complete aggregate reply into its header line and its top-level elements (raw
/// bytes each). Maps yield key+value pairs as one element. None if `reply` is not an
/// aggregate.
pub fn split_aggregate(reply: &[u8]) -> Option<(Vec<u8>, Vec<Vec<u8>>)> {
    let t = *reply.first()?;
    if !matches!(t, b'*' | b'~' | b'>' | b'%') {
        return None;
    }
    let eol = find_crlf(reply, 1)?;
    let n: i64 = parse_int(&reply[1..eol]).ok()?;
    let header = reply[..eol + 2].to_vec();
    let mut elems = Vec::new();
    let mut p = eol + 2;
    for _ in 0..n.max(0) {
        let start = p;
        p = value_end(reply, p).ok()??;
        if t == b'%' {
            p = value_end(reply, p).ok()??;
        }
        elems.push(reply[start..p].to_vec());
    }
    Some((header, elems))
}

/// The reply with the elements of its top-level aggregate sorted (unchanged if not one).
pub fn sort_reply(reply: &[u8]) -> Vec<u8> {
    match split_aggregate(reply) {
        Some((header, mut elems)) => {
            elems.sort();
            let mut out = header;
            for e in elems {
                out.extend_from_slice(&e);
            }
            out
        }
        None => reply.to_vec(),
    }
}

/// Bytes as a readable string: printable ASCII as is, `\r` `\n` `\t` `\"` `\\` escaped,
/// everything else as `\xHH`. Long values are cut in the middle.
pub fn escape(bytes: &[u8]) -> String {
    const MAX: usize = 600;
    let mut s = String::new();
    let mut push = |b: u8| match b {
        b'\r' => s.push_str("\\r"),
        b'\n' => s.push_str("\\n"),
        b'\t' => s.push_str("\\t"),
        b'"' => s.push_str("\\\""),
        b'\\' => s.push_str("\\\\"),
        0x20..=0x7e => s.push(b as char),
        _ => s.push_str(&format!("\\x{b:02x}")),
    };
    if bytes.len() <= MAX {
        bytes.iter().for_each(|&b| push(b));
    } else {
        bytes[..MAX / 2].iter().for_each(|&b| push(b));
        let cut = bytes.len() - MAX;
        s.push_str(&format!("...<{cut} bytes>..."));
        bytes[bytes.len() - MAX / 2..]
            .iter()
            .for_each(|&b| s.push_str(&escape(&[b])));
    }
    s
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Split a line into arguments the way redis-cli does (sdssplitargs): whitespace-separated,
/// `"double quoted"` with `\n \r \t \b \a \" \\ \xHH` escapes, `'single quoted'` literal with
/// `\'`. A closing quote must be followed by whitespace or the end of the line.
pub fn split_args(line: &str) -> Result<Vec<Vec<u8>>, String> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            return Ok(out);
        }
        let mut cur = Vec::new();
        let mut inq = false; // inside "double quotes"
        let mut insq = false; // inside 'single quotes'
        loop {
            if inq {
                if i >= b.len() {
                    return Err("unbalanced double quotes".into());
                }
                if b[i] == b'\\'
                    && i + 3 < b.len()
                    && b[i + 1] == b'x'
                    && hex_val(b[i + 2]).is_some()
                    && hex_val(b[i + 3]).is_some()
                {
                    cur.push(hex_val(b[i + 2]).unwrap() * 16 + hex_val(b[i + 3]).unwrap());
                    i += 3;
                } else if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                    cur.push(match b[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        c => c,
                    });
                } else if b[i] == b'"' {
                    if i + 1 < b.len() && !b[i + 1].is_ascii_whitespace() {
                        return Err("closing quote must be followed by a space".into());
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(b[i]);
                }
            } else if insq {
                if i >= b.len() {
                    return Err("unbalanced single quotes".into());
                }
                if b[i] == b'\\' && i + 1 < b.len() && b[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if b[i] == b'\'' {
                    if i + 1 < b.len() && !b[i + 1].is_ascii_whitespace() {
                        return Err("closing quote must be followed by a space".into());
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(b[i]);
                }
            } else {
                if i >= b.len() || b[i].is_ascii_whitespace() {
                    break;
                }
                match b[i] {
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    c => cur.push(c),
                }
            }
            i += 1;
        }
        out.push(cur);
    }
}

/// Unescape a string as one double-quoted token (surrounding quotes optional).
pub fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let t = s.trim();
    let quoted = if t.starts_with('"') {
        t.to_string()
    } else {
        format!("\"{}\"", t.replace('"', "\\\""))
    };
    let mut v = split_args(&quoted)?;
    if v.len() != 1 {
        return Err(format!(
            "expected one quoted string, got {} tokens",
            v.len()
        ));
    }
    Ok(v.pop().unwrap())
}

/// Declares `mod uring` and `mod epoll`, each with a `#[test]` per listed function that calls it
/// with its backend's name: every integration suite runs on both I/O backends.
#[macro_export]
macro_rules! per_backend {
    ($($name:ident),* $(,)?) => {
        mod uring {
            $(#[test] fn $name() { super::$name("uring") })*
        }
        mod epoll {
            $(#[test] fn $name() { super::$name("epoll") })*
        }
    };
}

/// A tmpfs mounted on a fresh temp directory, unmounted on drop (declare it before the server
/// that uses it, so that the server stops first).
pub struct Tmpfs(TempDir);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (mount's syntax, e.g. `4m`); None, with a SKIPPED message,
    /// where mounting is not permitted (not root).
    pub fn mount(prefix: &str, size: &str) -> Option<Tmpfs> {
        let dir = TempDir::new(prefix);
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status();
        if matches!(st, Ok(s) if s.success()) {
            Some(Tmpfs(dir))
        } else {
            eprintln!("SKIPPED: cannot mount a tmpfs at {}", dir.path().display());
            None
        }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// Grows (or shrinks) the file system to `size`.
    pub fn resize(&self, size: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.path())
            .status()
            .expect("remount");
        assert!(st.success(), "remount of {} failed", self.path().display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.path()).status();
    }
}

/// Asserts that Ferrite's replies (`have`, labelled by step) equal redis-server's (`want`) for
/// the same steps, byte for byte, naming the first step that differs.
pub fn assert_same_transcript(
    server: &str,
    want: &[(String, Vec<u8>)],
    have: &[(String, Vec<u8>)],
) {
    for ((step, w), (_, h)) in want.iter().zip(have) {
        assert_eq!(
            escape(h),
            escape(w),
            "{server}: step {step:?} differs from redis-server"
        );
    }
    assert_eq!(have.len(), want.len(), "{server}: number of steps");
}

#[cfg(test)]
mod self_tests {
    use super::*;

    #[test]
    fn resp_lengths() {
        assert_eq!(resp_len(b"+OK\r\n"), Ok(Some(5)));
        assert_eq!(resp_len(b"+OK\r"), Ok(None));
        assert_eq!(resp_len(b"$3\r\nabc\r\n+x"), Ok(Some(9)));
        assert_eq!(resp_len(b"$-1\r\n"), Ok(Some(5)));
        assert_eq!(resp_len(b"*2\r\n$1\r\na\r\n:1\r\n"), Ok(Some(15)));
        assert_eq!(resp_len(b"*2\r\n$1\r\na\r\n"), Ok(None));
        assert_eq!(resp_len(b"%1\r\n+a\r\n:1\r\n"), Ok(Some(12)));
        assert_eq!(resp_len(b"|1\r\n+a\r\n:1\r\n+v\r\n"), Ok(Some(16)));
        assert_eq!(resp_len(b"=7\r\ntxt:abc\r\n"), Ok(Some(13)));
        assert_eq!(resp_len(b"*-1\r\n"), Ok(Some(5)));
        assert_eq!(resp_len(b"*2\r\n*0\r\n*1\r\n:1\r\n+x"), Ok(Some(16)));
        assert!(resp_len(b"?x\r\n").is_err());
        // Nesting deeper than any call stack would take.
        let mut deep = b"*1\r\n".repeat(100_000);
        deep.extend_from_slice(b":1\r\n");
        assert_eq!(resp_len(&deep), Ok(Some(deep.len())));
        assert_eq!(resp_len(&deep[..deep.len() - 1]), Ok(None));
    }

    #[test]
    fn tokenizer() {
        assert_eq!(
            split_args(r#"SET "a b" 'c d' e\n"#).unwrap(),
            vec![
                b"SET".to_vec(),
                b"a b".to_vec(),
                b"c d".to_vec(),
                b"e\\n".to_vec()
            ]
        );
        assert_eq!(
            split_args(r#""\x41\r\n" 'it\'s'"#).unwrap(),
            vec![b"A\r\n".to_vec(), b"it's".to_vec()]
        );
        assert!(split_args(r#""abc"#).is_err());
        assert!(split_args(r#""abc"x"#).is_err());
        assert_eq!(unescape(r#""PING\r\n""#).unwrap(), b"PING\r\n".to_vec());
    }

    #[test]
    fn sorting() {
        assert_eq!(
            sort_reply(b"*2\r\n$1\r\nb\r\n$1\r\na\r\n"),
            b"*2\r\n$1\r\na\r\n$1\r\nb\r\n".to_vec()
        );
    }
}
