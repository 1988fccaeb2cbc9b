//! The client threads: `run` (a closed loop of GET/SET for a duration or a number of requests,
//! after a warm-up) and `load` (the preload: every key written once, pipelined).

use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::keys::{self, KeyChooser};
use super::resp::{Reply, ReplyReader};
use super::rng::SplitMix64;

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
    /// Connections, one thread each.
    pub clients: usize,
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

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOPPED: u8 = 2;

/// What the clients share.
struct Shared {
    phase: AtomicU8,
    /// Requests left to send in the measured phase (`Stop::Requests` only).
    budget: AtomicU64,
    errors: Mutex<Vec<String>>,
}

impl Shared {
    fn note_error(&self, e: String) {
        let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if errors.len() < 10 {
            errors.push(e);
        }
    }
}

/// What one client counted.
struct ClientResult {
    ops: u64,
    errors: u64,
    misses: u64,
    latency: Histogram<u64>,
    finished: Instant,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("static histogram bounds are valid")
}

fn connect(addr: &str, timeout: Duration) -> io::Result<TcpStream> {
    let s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    Ok(s)
}

/// Runs the closed loop: `clients` threads, warm-up, measured phase, merged results.
pub fn run(cfg: &RunConfig) -> io::Result<Summary> {
    assert!(cfg.clients > 0 && cfg.pipeline > 0);
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
    let mut handles = Vec::with_capacity(cfg.clients);
    for (i, stream) in streams.into_iter().enumerate() {
        let shared = Arc::clone(&shared);
        let cfg = cfg.clone();
        let seed = cfg.seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        handles.push(
            thread::Builder::new()
                .name(format!("client-{i}"))
                .stack_size(256 << 10)
                .spawn(move || client(&cfg, stream, &shared, seed))?,
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
            .map_err(|_| io::Error::other("a client thread panicked"))?;
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

/// One connection's closed loop. Returns when the phase is STOPPED, the request budget is spent,
/// or the connection fails (a failure is counted as an error and noted).
fn client(cfg: &RunConfig, stream: TcpStream, shared: &Shared, seed: u64) -> ClientResult {
    let mut out = ClientResult {
        ops: 0,
        errors: 0,
        misses: 0,
        latency: histogram(),
        finished: Instant::now(),
    };
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(e) => {
            out.errors += 1;
            shared.note_error(format!("cloning the socket: {e}"));
            return out;
        }
    };
    let mut reader = ReplyReader::new(stream);
    let mut rng = SplitMix64::new(seed);
    let mut request = Vec::with_capacity(cfg.pipeline * (cfg.value_size + 64));
    let mut batch: Vec<(u64, bool)> = Vec::with_capacity(cfg.pipeline);
    let mut scratch = Vec::with_capacity(cfg.value_size);
    loop {
        let phase = shared.phase.load(Ordering::Relaxed);
        if phase == STOPPED {
            break;
        }
        let mut n = cfg.pipeline;
        if phase == MEASURE && matches!(cfg.stop, Stop::Requests(_)) {
            let left = shared
                .budget
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                    Some(b.saturating_sub(n as u64))
                })
                .unwrap_or(0);
            n = n.min(left as usize);
            if n == 0 {
                break;
            }
        }
        request.clear();
        batch.clear();
        for _ in 0..n {
            let index = cfg.chooser.next(&mut rng);
            let get = match cfg.workload {
                Workload::Get => true,
                Workload::Set => false,
                Workload::Mixed(p) => rng.next_f64() < p,
            };
            encode(&mut request, index, get, cfg.value_size);
            batch.push((index, get));
        }
        let sent = Instant::now();
        if let Err(e) = writer.write_all(&request) {
            out.errors += 1;
            shared.note_error(format!("sending: {e}"));
            break;
        }
        for &(index, get) in &batch {
            let reply = match reader.next_reply() {
                Ok(r) => r,
                Err(e) => {
                    out.errors += 1;
                    shared.note_error(describe_read_error(&e, cfg.timeout));
                    out.finished = Instant::now();
                    return out;
                }
            };
            let latency = sent.elapsed();
            match check(&reply, index, get, cfg, &mut scratch) {
                Check::Ok => {}
                Check::Miss => out.misses += 1,
                Check::Wrong(what) => {
                    out.errors += 1;
                    shared.note_error(what);
                }
            }
            // A request counts if it was sent in the measured phase and answered before its
            // end (requests straddling the end are few and would stretch the phase).
            if phase == MEASURE && shared.phase.load(Ordering::Relaxed) == MEASURE {
                out.ops += 1;
                out.latency
                    .saturating_record((latency.as_micros() as u64).max(1));
            }
        }
    }
    out.finished = Instant::now();
    out
}

fn describe_read_error(e: &io::Error, timeout: Duration) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            format!("no reply within {timeout:?} (server hung?)")
        }
        _ => format!("reading a reply: {e}"),
    }
}

/// Appends `GET key` or `SET key value` as a RESP array.
fn encode(out: &mut Vec<u8>, index: u64, get: bool, value_size: usize) {
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

enum Check {
    Ok,
    Miss,
    Wrong(String),
}

fn check(
    reply: &Reply<'_>,
    index: u64,
    get: bool,
    cfg: &RunConfig,
    scratch: &mut Vec<u8>,
) -> Check {
    let mut key = Vec::with_capacity(keys::KEY_LEN);
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

/// Parameters of the preload.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// `host:port`.
    pub addr: String,
    /// Connections, one thread each, each writing a contiguous share of the keys.
    pub clients: usize,
    /// SETs in flight per connection.
    pub pipeline: usize,
    /// Keys 0..keys are written.
    pub keys: u64,
    /// Value length.
    pub value_size: usize,
    /// A reply later than this is reported as a hang.
    pub timeout: Duration,
}

/// Writes every key once; `Summary::ops` is the number of keys written and `latency` the
/// batches' round trips.
pub fn load(cfg: &LoadConfig) -> io::Result<Summary> {
    assert!(cfg.clients > 0 && cfg.pipeline > 0);
    assert!(cfg.keys <= keys::MAX_KEYS);
    let streams = (0..cfg.clients)
        .map(|_| connect(&cfg.addr, cfg.timeout))
        .collect::<io::Result<Vec<_>>>()?;
    let start = Instant::now();
    let errors = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for (i, stream) in streams.into_iter().enumerate() {
        let from = cfg.keys * i as u64 / cfg.clients as u64;
        let to = cfg.keys * (i as u64 + 1) / cfg.clients as u64;
        let cfg = cfg.clone();
        let errors = Arc::clone(&errors);
        handles.push(
            thread::Builder::new()
                .name(format!("load-{i}"))
                .spawn(move || {
                    let r = load_range(&cfg, stream, from, to);
                    if let Err(e) = &r {
                        let mut errors = errors.lock().unwrap_or_else(|p| p.into_inner());
                        errors.push(e.clone());
                    }
                    r
                })?,
        );
    }
    let mut summary = Summary {
        ops: 0,
        elapsed: Duration::ZERO,
        latency: histogram(),
        errors: 0,
        misses: 0,
        first_errors: Vec::new(),
    };
    for h in handles {
        match h
            .join()
            .map_err(|_| io::Error::other("a load thread panicked"))?
        {
            Ok((written, hist)) => {
                summary.ops += written;
                summary
                    .latency
                    .add(&hist)
                    .map_err(|e| io::Error::other(format!("merging histograms: {e:?}")))?;
            }
            Err(_) => summary.errors += 1,
        }
    }
    summary.elapsed = start.elapsed();
    summary.first_errors = std::mem::take(&mut *errors.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(summary)
}

fn load_range(
    cfg: &LoadConfig,
    stream: TcpStream,
    from: u64,
    to: u64,
) -> Result<(u64, Histogram<u64>), String> {
    let mut writer = stream
        .try_clone()
        .map_err(|e| format!("cloning the socket: {e}"))?;
    let mut reader = ReplyReader::new(stream);
    let mut request = Vec::with_capacity(cfg.pipeline * (cfg.value_size + 64));
    let mut hist = histogram();
    let mut next = from;
    while next < to {
        let end = (next + cfg.pipeline as u64).min(to);
        request.clear();
        for index in next..end {
            encode(&mut request, index, false, cfg.value_size);
        }
        let sent = Instant::now();
        writer
            .write_all(&request)
            .map_err(|e| format!("sending SETs from key {next}: {e}"))?;
        for index in next..end {
            match reader.next_reply() {
                Ok(Reply::Status(b"OK")) => {}
                Ok(other) => {
                    return Err(format!("SET key index {index}: unexpected reply {other:?}"));
                }
                Err(e) => {
                    return Err(format!(
                        "SET key index {index}: {}",
                        describe_read_error(&e, cfg.timeout)
                    ));
                }
            }
        }
        hist.saturating_record((sent.elapsed().as_micros() as u64).max(1));
        next = end;
    }
    Ok((to - from, hist))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::keys::Distribution;
    use std::io::Read;
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
