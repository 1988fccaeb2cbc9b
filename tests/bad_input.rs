//! Hostile and broken clients: random bytes, truncated frames, absurd lengths, huge pipelines,
//! clients that never read, slowloris, clients that vanish mid-pipeline. After each subtest the
//! server must still answer PING on a new connection, and a key written at the start must be
//! intact. Every test runs on both I/O backends.

mod common;

use common::{Conn, Ferrite, RedisServer, escape};
use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

per_backend!(
    random_bytes,
    truncated_frames,
    protocol_errors,
    huge_multibulk_count,
    pipeline_100k,
    client_that_never_reads,
    slowloris,
    close_mid_pipeline,
);

const SENTINEL: &str = "bad-input:sentinel";
const SENTINEL_VALUE: &str = "still here";

/// Start ferrite and write the sentinel key.
fn start(backend: &str) -> Ferrite {
    start_bin(&common::ferrite_bin(), backend)
}

/// [`start`] with a given binary. The tests that measure responsiveness under a flood use the
/// release binary when `FERRITE_RELEASE_BIN` names one (as `.ci/run` does): a debug build
/// needs seconds for work that takes milliseconds in release.
fn start_bin(bin: &std::path::Path, backend: &str) -> Ferrite {
    let f = Ferrite::start_bin(bin, backend, &["--threads", "2"]);
    let mut c = f.conn();
    assert_eq!(c.cmd_str(&["SET", SENTINEL, SENTINEL_VALUE]), b"+OK\r\n");
    f
}

/// The server answers PING on a new connection and the sentinel key is intact.
fn assert_healthy(f: &mut Ferrite) {
    assert!(f.is_running(), "ferrite is not running any more");
    let mut c = Conn::try_connect(f.port).expect("connect after the abuse");
    let t0 = Instant::now();
    assert_eq!(escape(&c.cmd_str(&["PING"])), "+PONG\\r\\n");
    let v = c.cmd_str(&["GET", SENTINEL]);
    assert_eq!(
        escape(&v),
        escape(format!("${}\r\n{SENTINEL_VALUE}\r\n", SENTINEL_VALUE.len()).as_bytes()),
        "the sentinel key changed"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "slow: {:?}",
        t0.elapsed()
    );
}

/// xorshift64*: a small seeded generator, so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn seed() -> u64 {
    std::env::var("BAD_INPUT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        })
}

fn random_bytes(backend: &str) {
    let mut f = start(backend);
    let seed = seed();
    eprintln!("{backend}: random_bytes seed {seed} (replay with BAD_INPUT_SEED={seed})");
    let mut rng = Rng(seed);
    let valid: &[&[u8]] = &[
        b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$3\r\nabc\r\n",
        b"*2\r\n$3\r\nGET\r\n$1\r\nx\r\n",
        b"*1\r\n$4\r\nPING\r\n",
        b"PING\r\n",
        b"*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n",
    ];
    for round in 0..10 {
        let mut c = f.conn();
        let mut bytes = Vec::new();
        if round % 2 == 0 {
            // Pure noise.
            let n = 1 + rng.below(8192) as usize;
            bytes.extend((0..n).map(|_| rng.next() as u8));
        } else {
            // Valid frames with a few bytes flipped, dropped or duplicated.
            for _ in 0..(1 + rng.below(50)) {
                bytes.extend_from_slice(valid[rng.below(valid.len() as u64) as usize]);
            }
            for _ in 0..(1 + rng.below(8)) {
                let i = rng.below(bytes.len() as u64) as usize;
                match rng.below(3) {
                    0 => bytes[i] = rng.next() as u8,
                    1 => {
                        bytes.remove(i);
                    }
                    _ => {
                        let b = bytes[i];
                        bytes.insert(i, b);
                    }
                }
            }
        }
        let _ = c.stream.write_all(&bytes);
        let _ = c.read_until_idle(Duration::from_millis(50), Duration::from_secs(1));
        drop(c);
        assert!(
            f.is_running(),
            "ferrite died on round {round} (seed {seed}): {}",
            escape(&bytes)
        );
    }
    assert_healthy(&mut f);
}

fn truncated_frames(backend: &str) {
    let mut f = start(backend);
    let frames: &[&[u8]] = &[
        b"*3\r\n$3\r\nSET\r\n$4\r\nkey1\r\n$5\r\nvalue\r\n",
        b"*2\r\n$3\r\nGET\r\n$18\r\nbad-input:sentinel\r\n",
        b"SET inline \"quoted value\"\r\n",
    ];
    for frame in frames {
        for cut in 1..frame.len() {
            let mut s = TcpStream::connect(("127.0.0.1", f.port)).unwrap();
            s.write_all(&frame[..cut]).unwrap();
            drop(s);
        }
    }
    // Half-closed after a partial frame: the server must not wait forever or crash.
    let mut c = f.conn();
    c.send_raw(b"*2\r\n$3\r\nGET\r\n$3\r\nab");
    c.shutdown_write();
    let _ = c.wait_closed(Duration::from_secs(1));
    assert_healthy(&mut f);
    // A truncated SET never ran.
    let mut c = f.conn();
    assert_eq!(c.cmd_str(&["EXISTS", "key1", "inline"]), b":0\r\n");
}

/// Bad frames and what Redis 7.0 answers (then it closes the connection when `true`).
const PROTOCOL_ERRORS: &[(&[u8], &[u8], bool)] = &[
    (
        b"*1\r\n$1099511627776\r\n",
        b"-ERR Protocol error: invalid bulk length\r\n",
        true,
    ),
    (
        b"*abc\r\n",
        b"-ERR Protocol error: invalid multibulk length\r\n",
        true,
    ),
    (
        b"*3000000000\r\n",
        b"-ERR Protocol error: invalid multibulk length\r\n",
        true,
    ),
    (
        b"*1\r\nfoo\r\n",
        b"-ERR Protocol error: expected '$', got 'f'\r\n",
        true,
    ),
    // Redis's %c writes a byte above 0x7f as it is: the error line is not UTF-8.
    (
        b"*1\r\n\xe9foo\r\n",
        b"-ERR Protocol error: expected '$', got '\xe9'\r\n",
        true,
    ),
    (
        b"*2\r\n$-5\r\n",
        b"-ERR Protocol error: invalid bulk length\r\n",
        true,
    ),
    (
        b"*1\r\n$abc\r\n",
        b"-ERR Protocol error: invalid bulk length\r\n",
        true,
    ),
    (
        b"\"PING\r\n",
        b"-ERR Protocol error: unbalanced quotes in request\r\n",
        true,
    ),
    (b"*-1\r\nPING\r\n", b"+PONG\r\n", false),
    (b"*0\r\nPING\r\n", b"+PONG\r\n", false),
    (b"\r\n\r\nPING\r\n", b"+PONG\r\n", false),
    (b"*1\r\n$4\r\nPING\r", b"", false),
];

fn probe(port: u16, bytes: &[u8]) -> (Vec<u8>, bool) {
    let mut c = Conn::connect(port);
    c.send_raw(bytes);
    c.read_until_idle(Duration::from_millis(300), Duration::from_secs(3))
}

fn protocol_errors(backend: &str) {
    let mut f = start(backend);
    let redis = RedisServer::start();
    let mut cases: Vec<(Vec<u8>, Vec<u8>, bool)> = PROTOCOL_ERRORS
        .iter()
        .map(|(a, b, c)| (a.to_vec(), b.to_vec(), *c))
        .collect();
    // An inline request over 64 KB without a newline.
    cases.push((
        vec![b'A'; 70_000],
        b"-ERR Protocol error: too big inline request\r\n".to_vec(),
        true,
    ));
    let mut failures = Vec::new();
    for (input, known, known_closed) in &cases {
        let (want, want_closed) = match &redis {
            Some(r) => probe(r.port, input),
            None => (known.clone(), *known_closed),
        };
        let (got, got_closed) = probe(f.port, input);
        if got != want || got_closed != want_closed {
            failures.push(format!(
                "input {}\n    redis:   {}{}\n    ferrite: {}{}",
                escape(input),
                escape(&want),
                if want_closed { " <then closed>" } else { "" },
                escape(&got),
                if got_closed { " <then closed>" } else { "" },
            ));
        }
    }
    assert_healthy(&mut f);
    assert!(
        failures.is_empty(),
        "{} protocol error replies differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn huge_multibulk_count(backend: &str) {
    let mut f = start(backend);
    let before = f.rss_kb();
    let mut conns = Vec::new();
    for _ in 0..10 {
        let mut c = f.conn();
        c.send_raw(b"*1000000000\r\n");
        conns.push(c);
    }
    // Claim huge bulks inside the huge array too, without sending them.
    let mut c = f.conn();
    c.send_raw(b"*1000000\r\n$536870912\r\nab");
    conns.push(c);
    std::thread::sleep(Duration::from_millis(300));
    let during = f.rss_kb();
    drop(conns);
    std::thread::sleep(Duration::from_millis(200));
    let after = f.rss_kb();
    eprintln!("{backend}: VmRSS {before} kB before, {during} kB with the claims, {after} kB after");
    let growth = during.max(after).saturating_sub(before);
    assert!(
        growth < 100 * 1024,
        "RSS grew by {growth} kB on absurd length claims"
    );
    assert_healthy(&mut f);
}

fn pipeline_100k(backend: &str) {
    const N: usize = 100_000;
    let mut f = start(backend);
    let mut c = f.conn();
    let mut buf = Vec::with_capacity(N * 40);
    for i in 0..N {
        let k = format!("k:{i}");
        buf.extend_from_slice(&common::encode_command(&[b"SET", k.as_bytes(), b"v"]));
    }
    // Write from another thread so that a server answering while we write cannot deadlock us.
    let mut w = c.stream.try_clone().unwrap();
    let writer = std::thread::spawn(move || w.write_all(&buf));
    let t0 = Instant::now();
    for i in 0..N {
        let r = c.read_reply();
        if r != b"+OK\r\n" {
            panic!("reply {i} of {N}: {}", escape(&r));
        }
    }
    writer.join().unwrap().expect("writing the pipeline");
    eprintln!("{backend}: {N} pipelined SETs in {:?}", t0.elapsed());
    // Plus the sentinel key.
    assert_eq!(
        escape(&c.cmd_str(&["DBSIZE"])),
        escape(format!(":{}\r\n", N + 1).as_bytes())
    );
    assert_eq!(c.cmd_str(&["GET", "k:99999"]), b"$1\r\nv\r\n");
    assert_healthy(&mut f);
}

fn client_that_never_reads(backend: &str) {
    const GETS: usize = 200_000;
    let mut f = start_bin(&common::ferrite_release_bin(), backend);
    let mut c = f.conn();
    let value = vec![b'x'; 10 * 1024];
    assert_eq!(c.cmd(&[b"SET", b"big", &value]), b"+OK\r\n");
    let before = f.rss_kb();
    let hog = TcpStream::connect(("127.0.0.1", f.port)).unwrap();
    hog.set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut w = hog.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let one = common::encode_command(&[b"GET", b"big"]);
        let chunk: Vec<u8> = one.repeat(1000);
        let mut sent = 0;
        while sent < GETS {
            if w.write_all(&chunk).is_err() {
                break;
            }
            sent += 1000;
        }
        sent
    });
    // Meanwhile another client is served promptly, and memory stays bounded.
    let mut other = f.conn();
    let mut max_rss = before;
    for i in 0..10 {
        std::thread::sleep(Duration::from_millis(300));
        let t0 = Instant::now();
        assert_eq!(other.cmd_str(&["PING"]), b"+PONG\r\n");
        let took = t0.elapsed();
        assert!(
            took < Duration::from_secs(2),
            "PING took {took:?} while a client does not read (check {i})"
        );
        max_rss = max_rss.max(f.rss_kb());
    }
    let _ = hog.shutdown(Shutdown::Both);
    let sent = writer.join().unwrap();
    max_rss = max_rss.max(f.rss_kb());
    let growth = max_rss.saturating_sub(before);
    eprintln!(
        "{backend}: a non-reading client got {sent} GETs of 10 KB in; RSS grew by {} MB",
        growth / 1024
    );
    assert!(
        growth < 1024 * 1024,
        "RSS grew by {} MB for a client that does not read",
        growth / 1024
    );
    drop(hog);
    assert_healthy(&mut f);
}

fn slowloris(backend: &str) {
    let mut f = start(backend);
    let conns: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", f.port)).unwrap();
            s.write_all(b"*3\r\n$3\r\nSET\r\n$5\r\nslow:").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    let mut c = f.conn();
    assert_eq!(c.cmd_str(&["SET", "fresh", "1"]), b"+OK\r\n");
    assert_eq!(c.cmd_str(&["GET", "fresh"]), b"$1\r\n1\r\n");
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_healthy(&mut f);
    drop(conns);
    assert_healthy(&mut f);
}

fn close_mid_pipeline(backend: &str) {
    let mut f = start_bin(&common::ferrite_release_bin(), backend);
    let mut c = f.conn();
    let value = vec![b'y'; 4096];
    assert_eq!(c.cmd(&[b"SET", b"v4k", &value]), b"+OK\r\n");
    let mut pipeline = Vec::new();
    for i in 0..2_000 {
        let k = format!("p:{i}");
        pipeline.extend_from_slice(&common::encode_command(&[b"SET", k.as_bytes(), b"1"]));
        pipeline.extend_from_slice(&common::encode_command(&[b"GET", b"v4k"]));
    }
    for round in 0..20 {
        let mut s = TcpStream::connect(("127.0.0.1", f.port)).unwrap();
        // Part of the pipeline, ending in the middle of a frame, then gone (RST or FIN).
        let cut = pipeline.len() / 2 + round * 13;
        let _ = s.write_all(&pipeline[..cut]);
        if round % 2 == 0 {
            // Unread replies make close() send a RST.
            drop(s);
        } else {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
    // Redis frees such a client on its first failed write; a server that executes the rest of
    // the dead pipelines keeps new clients waiting meanwhile.
    let t0 = Instant::now();
    assert_healthy(&mut f);
    eprintln!(
        "{backend}: new client served {:?} after the vanished pipelines",
        t0.elapsed()
    );
    assert_eq!(c.cmd_str(&["PING"]), b"+PONG\r\n");
}
