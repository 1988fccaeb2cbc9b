//! A line service and helpers shared by the reactor's integration tests.
//!
//! The service uppercases each complete line, and understands a few commands:
//! `PARK` (replies `PARKED`, parks, and is resumed on the next tick), `CLOSE` (replies `BYE`,
//! closes after flush), `QUIT` (closes now), `BIG n` (replies n bytes of `x` and a newline),
//! `SHUTDOWN` (stops the reactor), `DISK off len` (reads `len` bytes at `off` of the file
//! `Observed::disk_fd` names through the reactor, parks meanwhile, and replies
//! `DISK <n> <fnv1a of the bytes>` or `DISKERR <errno>`), `KILL` (the next `poll` replies `KILLED` and closes after
//! flush, like an idle timeout), `LATER` (the next tick closes it through `Ctl::close`). It handles at most `BATCH` lines per call, so the reactor's
//! "call again while it consumes" rule is exercised.

#![allow(dead_code, missing_docs)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrite_reactor::{
    After, Backend, Config, Consumed, Ctl, ReactorError, Running, Service, Token, Waker,
};

/// Lines handled per `input` call.
pub const BATCH: usize = 8;
pub const MAX_PENDING: usize = 256 * 1024;

#[derive(Default)]
pub struct Observed {
    pub accepted: AtomicUsize,
    pub closed: AtomicUsize,
    pub woken: AtomicUsize,
    /// Largest `out.len()` the service saw on entry to `input`.
    pub max_out: AtomicUsize,
    /// Refuse connections beyond this many (0: never).
    pub refuse_after: AtomicUsize,
    /// The file `DISK` reads from (-1: none).
    pub disk_fd: std::sync::atomic::AtomicI32,
}

/// FNV-1a, to name read bytes in a short reply.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

pub struct LineService {
    obs: Arc<Observed>,
    parked: Vec<Token>,
    close_at_tick: Vec<Token>,
    /// Finished disk reads by connection, waiting for the parked `DISK` line to run again.
    disk_results: std::collections::HashMap<Token, Result<Vec<u8>, i32>>,
}

fn token_tag(token: Token) -> u64 {
    (u64::from(token.slot) << 32) | u64::from(token.generation)
}

fn tag_token(tag: u64) -> Token {
    Token {
        slot: (tag >> 32) as u32,
        generation: tag as u32,
    }
}

impl Service for LineService {
    /// Whether the next `poll` should close the connection.
    type Conn = bool;

    fn accept(
        &mut self,
        _ctl: &mut dyn Ctl,
        _token: Token,
        peer: Option<SocketAddr>,
        local: Option<SocketAddr>,
        out: &mut Vec<u8>,
    ) -> Option<bool> {
        assert!(
            peer.is_some() && local.is_some(),
            "addresses of a TCP peer are known"
        );
        let n = self.obs.accepted.fetch_add(1, Ordering::SeqCst) + 1;
        let limit = self.obs.refuse_after.load(Ordering::SeqCst);
        if limit != 0 && n > limit {
            out.extend_from_slice(b"-ERR max number of clients reached\n");
            return None;
        }
        Some(false)
    }

    fn input(
        &mut self,
        ctl: &mut dyn Ctl,
        token: Token,
        kill: &mut bool,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Consumed {
        self.obs.max_out.fetch_max(out.len(), Ordering::SeqCst);
        let mut used = 0;
        for _ in 0..BATCH {
            let Some(nl) = input[used..].iter().position(|&b| b == b'\n') else {
                break;
            };
            let line = &input[used..used + nl];
            used += nl + 1;
            match line {
                b"PARK" => {
                    out.extend_from_slice(b"PARKED\n");
                    self.parked.push(token);
                    return Consumed {
                        bytes: used,
                        after: After::Park,
                    };
                }
                b"CLOSE" => {
                    out.extend_from_slice(b"BYE\n");
                    return Consumed {
                        bytes: used,
                        after: After::CloseAfterFlush,
                    };
                }
                b"QUIT" => {
                    return Consumed {
                        bytes: used,
                        after: After::CloseNow,
                    };
                }
                _ if line.starts_with(b"DISK ") => {
                    match self.disk_results.remove(&token) {
                        Some(Ok(bytes)) => out.extend_from_slice(
                            format!("DISK {} {}\n", bytes.len(), fnv1a(&bytes)).as_bytes(),
                        ),
                        Some(Err(errno)) => {
                            out.extend_from_slice(format!("DISKERR {errno}\n").as_bytes())
                        }
                        None => {
                            let text = std::str::from_utf8(&line[5..]).unwrap();
                            let (off, len) = text.split_once(' ').unwrap();
                            ctl.read_disk(ferrite_reactor::DiskRead {
                                fd: self.obs.disk_fd.load(Ordering::SeqCst),
                                offset: off.parse().unwrap(),
                                len: len.parse().unwrap(),
                                tag: token_tag(token),
                            });
                            // Leave the line unconsumed: it runs again once the read is done.
                            return Consumed {
                                bytes: used - nl - 1,
                                after: After::Park,
                            };
                        }
                    }
                }
                b"SHUTDOWN" => ctl.shutdown(),
                b"KILL" => *kill = true,
                b"LATER" => self.close_at_tick.push(token),
                _ if line.starts_with(b"BIG ") => {
                    let n: usize = std::str::from_utf8(&line[4..]).unwrap().parse().unwrap();
                    // One memset + memcpy even in debug builds (`resize` loops per byte there).
                    out.extend_from_slice(&vec![b'x'; n]);
                    out.push(b'\n');
                }
                _ => {
                    out.extend(line.iter().map(u8::to_ascii_uppercase));
                    out.push(b'\n');
                }
            }
        }
        Consumed {
            bytes: used,
            after: After::Continue,
        }
    }

    fn closed(&mut self, _token: Token, _conn: bool) {
        self.obs.closed.fetch_add(1, Ordering::SeqCst);
    }

    fn tick(&mut self, ctl: &mut dyn Ctl) {
        for token in self.parked.drain(..) {
            ctl.resume(token);
        }
        for token in self.close_at_tick.drain(..) {
            ctl.close(token);
        }
    }

    fn poll(&mut self, _token: Token, kill: &mut bool, out: &mut Vec<u8>) -> After {
        if *kill {
            out.extend_from_slice(b"KILLED\n");
            return After::CloseAfterFlush;
        }
        After::Continue
    }

    fn woken(&mut self, _ctl: &mut dyn Ctl) {
        self.obs.woken.fetch_add(1, Ordering::SeqCst);
    }

    fn disk_read_done(&mut self, ctl: &mut dyn Ctl, tag: u64, result: std::io::Result<&[u8]>) {
        let token = tag_token(tag);
        let result = result
            .map(<[u8]>::to_vec)
            .map_err(|e| e.raw_os_error().unwrap_or(-1));
        self.disk_results.insert(token, result);
        ctl.resume(token);
    }
}

pub fn config(backend: Backend, threads: usize) -> Config {
    Config {
        threads,
        bind: vec![
            "127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        ],
        backend,
        pin_threads: false,
        tick: Duration::from_millis(5),
        max_pending_output: MAX_PENDING,
        max_connections_per_thread: 256,
    }
}

pub struct Server {
    pub running: Running,
    pub obs: Arc<Observed>,
    pub addr: SocketAddr,
}

impl Server {
    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        stream
    }

    pub fn stop(self) {
        self.running.shutdown();
        join_within(self.running, Duration::from_secs(10));
    }
}

/// Starts a line server, or `None` (with a message) where io_uring is unavailable.
pub fn start_with(cfg: Config, obs: Arc<Observed>) -> Option<Server> {
    let backend = cfg.backend;
    let make_obs = Arc::clone(&obs);
    let wakers: Arc<Mutex<Vec<Waker>>> = Arc::default();
    let made = move |_i: usize, w: &[Waker]| {
        wakers.lock().unwrap().extend_from_slice(w);
        LineService {
            obs: Arc::clone(&make_obs),
            parked: Vec::new(),
            close_at_tick: Vec::new(),
            disk_results: Default::default(),
        }
    };
    match ferrite_reactor::start(cfg, made) {
        Ok(running) => {
            assert_ne!(running.backend(), Backend::Auto);
            if backend != Backend::Auto {
                assert_eq!(running.backend(), backend);
            }
            let addr = running.local_addr();
            Some(Server { running, obs, addr })
        }
        Err(ReactorError::UringUnavailable(err)) if backend == Backend::Uring => {
            eprintln!("skipping io_uring: {err}");
            None
        }
        Err(err) => panic!("start failed: {err}"),
    }
}

pub fn start(backend: Backend, threads: usize) -> Option<Server> {
    start_with(config(backend, threads), Arc::default())
}

/// Every backend and thread count the behaviour tests run under.
pub fn each_setup(mut test: impl FnMut(&Server)) {
    for backend in [Backend::Uring, Backend::Epoll] {
        for threads in [1, 2] {
            if let Some(server) = start(backend, threads) {
                test(&server);
                server.stop();
            }
        }
    }
}

pub fn join_within(running: Running, limit: Duration) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(running.join().is_ok()).unwrap());
    assert_eq!(
        rx.recv_timeout(limit),
        Ok(true),
        "reactor did not join in time"
    );
}

/// Reads exactly `n` bytes.
pub fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    stream.read_exact(&mut buf).unwrap();
    buf
}

pub fn read_to_eof(stream: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).unwrap();
    buf
}

pub fn round_trip(stream: &mut TcpStream, line: &str) {
    stream.write_all(format!("{line}\n").as_bytes()).unwrap();
    let expected = format!("{}\n", line.to_ascii_uppercase());
    assert_eq!(read_n(stream, expected.len()), expected.as_bytes());
}

/// Waits until `cond` holds, failing after a few seconds.
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}
