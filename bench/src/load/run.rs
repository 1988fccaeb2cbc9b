//! A run: a closed loop of GET/SET for a duration or a number of requests, after a warm-up,
//! over connections that a few event-loop threads share ([`super::conns`]); and what the runs
//! and the preload ([`super::preload`]) have in common (request encoding, reply checks).

use std::io;
use std::net::TcpStream;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::conns;
use super::keys::{self, KeyChooser};
use super::resp::Reply;

/// Latencies are recorded in microseconds, from 1 µs to this bound (larger values saturate).
const MAX_LATENCY_US: u64 = 60_000_000;

/// Which commands a run sends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Workload {
    /// GET only.
    Get,
    /// SET only.
    Set,
    /// GET with this probability, SET otherwise.
    Mixed(f64),
}

/// When a run stops measuring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// After this long.
    Duration(Duration),
    /// After this many requests (all clients together).
    Requests(u64),
}

/// A run's parameters.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// `host:port`.
    pub addr: String,
    /// Connections.
    pub clients: usize,
    /// Event-loop threads the connections are spread over.
    pub threads: usize,
    /// Requests sent together before the replies are read.
    pub pipeline: usize,
    /// Keys `key:0000000000` up to this count (exclusive).
    pub keys: u64,
    /// Value length (SET writes it; GET checks it).
    pub value_size: usize,
    /// Key choice.
    pub chooser: KeyChooser,
    /// Commands.
    pub workload: Workload,
    /// Time before measuring starts (requests run, nothing is recorded).
    pub warmup: Duration,
    /// End of the measured phase.
    pub stop: Stop,
    /// A reply later than this is reported as a hang and ends the client.
    pub timeout: Duration,
    /// Seed of the clients' random streams.
    pub seed: u64,
    /// GET replies are compared with the value the preload wrote.
    pub verify: bool,
}

/// What a run (or a load) measured.
#[derive(Debug)]
pub struct Summary {
    /// Requests answered in the measured phase.
    pub ops: u64,
    /// Length of the measured phase.
    pub elapsed: Duration,
    /// Per-request latency (µs), measured phase only.
    pub latency: Histogram<u64>,
    /// Error replies, wrong replies and broken connections (the whole run, warm-up included).
    pub errors: u64,
    /// GETs answered with nil (the whole run).
    pub misses: u64,
    /// The first few problems, for the report.
    pub first_errors: Vec<String>,
}

impl Summary {
    /// Requests per second in the measured phase.
    pub fn ops_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.ops as f64 / secs
        } else {
            0.0
        }
    }

    /// The one-line report: `key=value` pairs, latencies in milliseconds.
    pub fn line(&self) -> String {
        let ms = |us: u64| us as f64 / 1000.0;
        let h = &self.latency;
        format!(
            "ops_per_sec={:.0} p50_ms={:.3} p99_ms={:.3} p999_ms={:.3} max_ms={:.3} errors={} misses={} ops={} secs={:.2}",
            self.ops_per_sec(),
            ms(h.value_at_quantile(0.50)),
            ms(h.value_at_quantile(0.99)),
            ms(h.value_at_quantile(0.999)),
            ms(h.max()),
            self.errors,
            self.misses,
            self.ops,
            self.elapsed.as_secs_f64()
        )
    }
}

/// Requests run, nothing is recorded.
pub(super) const WARMUP: u8 = 0;
/// Requests sent now are measured.
pub(super) const MEASURE: u8 = 1;
/// The event loops end.
pub(super) const STOPPED: u8 = 2;

/// What the event loops share.
pub(super) struct Shared {
    /// WARMUP, MEASURE or STOPPED.
    pub(super) phase: AtomicU8,
    /// Requests left to send in the measured phase (`Stop::Requests` only).
    pub(super) budget: AtomicU64,
    errors: Mutex<Vec<String>>,
}

impl Shared {
    /// Keeps the first few problems for the report.
    pub(super) fn note_error(&self, e: String) {
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if errors.len() < 10 {
            errors.push(e);
        }
    }
}

/// What one event loop counted.
pub(super) struct LoopResult {
    /// Requests sent and answered in the measured phase.
    pub(super) ops: u64,
    /// Error replies, wrong replies, broken or hung connections.
    pub(super) errors: u64,
    /// GETs answered nil.
    pub(super) misses: u64,
    /// Latency of the measured requests (µs).
    pub(super) latency: Histogram<u64>,
    /// When the loop ended (the end of a `Stop::Requests` run).
    pub(super) finished: Instant,
}

/// An empty latency histogram (µs, three significant digits).
pub(super) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("static histogram bounds are valid")
}

/// A connection with Nagle off and I/O timeouts (for the blocking preload).
pub(super) fn connect(addr: &str, timeout: Duration) -> io::Result<TcpStream> {
    let s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    Ok(s)
}

/// Runs the closed loop: `clients` connections over `threads` event loops, warm-up, measured
/// phase, merged results.
pub fn run(cfg: &RunConfig) -> io::Result<Summary> {
    assert!(cfg.clients > 0 && cfg.pipeline > 0 && cfg.threads > 0);
    let shared = Arc::new(Shared {
        phase: AtomicU8::new(WARMUP),
        budget: AtomicU64::new(match cfg.stop {
            Stop::Requests(n) => n,
            Stop::Duration(_) => u64::MAX,
        }),
        errors: Mutex::new(Vec::new()),
    });
    // Connect everyone first, so a refused connection fails the run before it starts.
    let streams = (0..cfg.clients)
        .map(|_| connect(&cfg.addr, cfg.timeout))
        .collect::<io::Result<Vec<_>>>()?;
    let threads = cfg.threads.min(cfg.clients);
    let mut groups: Vec<Vec<TcpStream>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, stream) in streams.into_iter().enumerate() {
        groups[i % threads].push(stream);
    }
    let mut handles = Vec::with_capacity(threads);
    for (i, group) in groups.into_iter().enumerate() {
        let shared = Arc::clone(&shared);
        let cfg = cfg.clone();
        let seed = cfg.seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        handles.push(
            thread::Builder::new()
                .name(format!("loop-{i}"))
                .spawn(move || conns::drive(&cfg, group, &shared, seed))?,
        );
    }
    thread::sleep(cfg.warmup);
    let start = Instant::now();
    shared.phase.store(MEASURE, Ordering::SeqCst);
    if let Stop::Duration(d) = cfg.stop {
        // Sleep in slices so that a run whose clients all died does not wait out the duration.
        while start.elapsed() < d && handles.iter().any(|h| !h.is_finished()) {
            thread::sleep((d - start.elapsed().min(d)).min(Duration::from_millis(100)));
        }
        shared.phase.store(STOPPED, Ordering::SeqCst);
    }
    let stop_time = Instant::now();
    let mut summary = Summary {
        ops: 0,
        elapsed: Duration::ZERO,
        latency: histogram(),
        errors: 0,
        misses: 0,
        first_errors: Vec::new(),
    };
    let mut last = start;
    for h in handles {
        let r = h
            .join()
            .map_err(|_| io::Error::other("an event-loop thread panicked"))?;
        summary.ops += r.ops;
        summary.errors += r.errors;
        summary.misses += r.misses;
        summary
            .latency
            .add(&r.latency)
            .map_err(|e| io::Error::other(format!("merging histograms: {e:?}")))?;
        last = last.max(r.finished);
    }
    summary.elapsed = match cfg.stop {
        Stop::Duration(_) => stop_time - start,
        Stop::Requests(_) => last.saturating_duration_since(start),
    };
    summary.first_errors =
        std::mem::take(&mut *shared.errors.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(summary)
}

/// A read error as the report shows it (a timeout is a hang).
pub(super) fn describe_read_error(e: &io::Error, timeout: Duration) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            format!("no reply within {timeout:?} (server hung?)")
        }
        _ => format!("reading a reply: {e}"),
    }
}

/// Appends `GET key` or `SET key value` as a RESP array.
pub(super) fn encode(out: &mut Vec<u8>, index: u64, get: bool, value_size: usize) {
    if get {
        out.extend_from_slice(b"*2\r\n$3\r\nGET\r\n");
    } else {
        out.extend_from_slice(b"*3\r\n$3\r\nSET\r\n");
    }
    out.extend_from_slice(format!("${}\r\n", keys::KEY_LEN).as_bytes());
    keys::write_key(out, index);
    out.extend_from_slice(b"\r\n");
    if !get {
        out.extend_from_slice(format!("${value_size}\r\n").as_bytes());
        keys::write_value(out, index, value_size);
        out.extend_from_slice(b"\r\n");
    }
}

/// What a reply was worth.
pub(super) enum Check {
    /// The expected reply.
    Ok,
    /// GET answered nil.
    Miss,
    /// Anything else, described.
    Wrong(String),
}

/// Checks the reply to `GET`/`SET` of key `index`.
pub(super) fn check(
    reply: &Reply<'_>,
    index: u64,
    get: bool,
    cfg: &RunConfig,
    scratch: &mut Vec<u8>,
) -> Check {
    let mut key = Vec::new();
    let mut name = || {
        keys::write_key(&mut key, index);
        String::from_utf8_lossy(&key).into_owned()
    };
    match (reply, get) {
        (Reply::Error(e), _) => Check::Wrong(format!(
            "{} {}: error reply {:?}",
            if get { "GET" } else { "SET" },
            name(),
            String::from_utf8_lossy(e)
        )),
        (Reply::Nil, true) => Check::Miss,
        (Reply::Bulk(v), true) => {
            if !cfg.verify || keys::value_matches(v, index, cfg.value_size, scratch) {
                Check::Ok
            } else {
                Check::Wrong(format!(
                    "GET {}: wrong value ({} bytes, starting {:?})",
                    name(),
                    v.len(),
                    String::from_utf8_lossy(&v[..v.len().min(24)])
                ))
            }
        }
        (Reply::Status(b"OK"), false) => Check::Ok,
        (other, _) => Check::Wrong(format!(
            "{} {}: unexpected reply {other:?}",
            if get { "GET" } else { "SET" },
            name()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::keys::Distribution;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A server that answers fixed-size `GET key:NNNNNNNNNN` requests with the preload's
    /// value, except that key `wrong` gets a value one byte short.
    fn fake_server(value_size: usize, wrong: u64) -> (String, thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let handle = thread::spawn(move || {
            let mut conns = Vec::new();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                // Replies go out one write each: without this, Nagle holds every second one
                // for the client's delayed ACK.
                stream.set_nodelay(true).unwrap();
                conns.push(thread::spawn(move || {
                    let mut req = [0u8; 34];
                    while stream.read_exact(&mut req).is_ok() {
                        let key = std::str::from_utf8(&req[18..32]).unwrap();
                        let index: u64 = key[4..].parse().unwrap();
                        let len = if index == wrong {
                            value_size - 1
                        } else {
                            value_size
                        };
                        let mut out = format!("${len}\r\n").into_bytes();
                        keys::write_value(&mut out, index, len);
                        out.extend_from_slice(b"\r\n");
                        if stream.write_all(&out).is_err() {
                            return;
                        }
                    }
                }));
                if conns.len() == 4 {
                    break;
                }
            }
            for c in conns {
                c.join().unwrap();
            }
        });
        (addr, handle)
    }

    fn config(addr: String, keys: u64, wrong_possible: bool) -> RunConfig {
        RunConfig {
            addr,
            clients: 4,
            threads: 2,
            pipeline: 3,
            keys,
            value_size: 100,
            chooser: KeyChooser::new(&Distribution::Zipf(0.99), keys).unwrap(),
            workload: Workload::Get,
            warmup: Duration::ZERO,
            stop: Stop::Requests(if wrong_possible { 3000 } else { 1000 }),
            timeout: Duration::from_secs(5),
            seed: 9,
            verify: true,
        }
    }

    #[test]
    fn run_measures_exactly_the_requested_count() {
        let (addr, server) = fake_server(100, u64::MAX);
        let s = run(&config(addr, 1000, false)).unwrap();
        assert_eq!(s.ops, 1000);
        assert_eq!(s.latency.len(), 1000);
        assert_eq!((s.errors, s.misses), (0, 0), "{:?}", s.first_errors);
        assert!(s.line().starts_with("ops_per_sec="));
        // Closing the clients ends the server's connection threads.
        server.join().unwrap();
    }

    #[test]
    fn run_reports_a_wrong_value() {
        // Two keys only: both are read, and one of them is answered short.
        let (addr, server) = fake_server(100, 1);
        let s = run(&config(addr, 2, true)).unwrap();
        assert!(s.errors > 0);
        assert!(
            s.first_errors[0].contains("wrong value"),
            "{:?}",
            s.first_errors
        );
        server.join().unwrap();
    }

    #[test]
    fn encodes_get_and_set() {
        let mut out = Vec::new();
        encode(&mut out, 5, true, 0);
        assert_eq!(out, b"*2\r\n$3\r\nGET\r\n$14\r\nkey:0000000005\r\n");
        out.clear();
        encode(&mut out, 5, false, 4);
        assert_eq!(
            out,
            b"*3\r\n$3\r\nSET\r\n$14\r\nkey:0000000005\r\n$4\r\n0000\r\n"
        );
    }
}
