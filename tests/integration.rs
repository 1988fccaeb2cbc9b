//! End-to-end tests of the ferrite binary with real clients: the `redis` crate, redis-cli,
//! redis-benchmark and raw sockets; connection limits, auth, timeouts, shutdown and start-up
//! errors. Every test runs on both I/O backends.

mod common;

use common::{Conn, Ferrite, RedisServer, TempDir, escape, free_port, require_tool};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

per_backend!(
    redis_crate_basics,
    concurrent_incr,
    mset_is_atomic,
    redis_cli_outputs,
    inline_commands,
    redis_benchmark_runs,
    quit_closes,
    requirepass,
    idle_timeout,
    maxclients,
    client_kill_across_threads,
    sigterm_exits_cleanly,
    startup_port_in_use,
    startup_unknown_key,
    startup_bad_value,
    config_file,
);

fn client(s: &common::Server) -> redis::Connection {
    redis::Client::open(s.url())
        .expect("client")
        .get_connection()
        .expect("connect with the redis crate")
}

fn redis_crate_basics(backend: &str) {
    let f = Ferrite::start(backend, &["--threads", "2"]);
    let mut c = client(&f);
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    let v: String = redis::cmd("GET").arg("k").query(&mut c).unwrap();
    assert_eq!(v, "v");
    let missing: Option<String> = redis::cmd("GET").arg("nope").query(&mut c).unwrap();
    assert_eq!(missing, None);
    let n: i64 = redis::cmd("INCR").arg("n").query(&mut c).unwrap();
    assert_eq!(n, 1);
    let n: i64 = redis::cmd("INCR").arg("n").query(&mut c).unwrap();
    assert_eq!(n, 2);
    let vals: Vec<Option<String>> = redis::cmd("MGET")
        .arg("k")
        .arg("nope")
        .arg("n")
        .query(&mut c)
        .unwrap();
    assert_eq!(vals, vec![Some("v".into()), None, Some("2".into())]);
    let (a, b, n): (String, String, i64) = redis::pipe()
        .cmd("SET")
        .arg("p1")
        .arg("x")
        .ignore()
        .cmd("SET")
        .arg("p2")
        .arg("y")
        .ignore()
        .cmd("GET")
        .arg("p1")
        .cmd("GET")
        .arg("p2")
        .cmd("INCRBY")
        .arg("n")
        .arg(40)
        .query(&mut c)
        .unwrap();
    assert_eq!((a.as_str(), b.as_str(), n), ("x", "y", 42));
    let err = redis::cmd("INCR")
        .arg("k")
        .query::<i64>(&mut c)
        .unwrap_err();
    assert!(
        err.to_string().contains("not an integer"),
        "INCR on a string: {err}"
    );
    // A binary-safe value round-trips.
    let blob: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    let _: () = redis::cmd("SET")
        .arg("blob")
        .arg(&blob)
        .query(&mut c)
        .unwrap();
    let got: Vec<u8> = redis::cmd("GET").arg("blob").query(&mut c).unwrap();
    assert!(got == blob, "100 KB binary value did not round-trip");
}

fn concurrent_incr(backend: &str) {
    const CLIENTS: usize = 50;
    const PER: usize = 200;
    let f = Ferrite::start(backend, &["--threads", "2"]);
    let url = f.url();
    let handles: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
                for _ in 0..PER {
                    let _: i64 = redis::cmd("INCR").arg("counter").query(&mut c).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("client thread");
    }
    let mut c = client(&f);
    let total: i64 = redis::cmd("GET").arg("counter").query(&mut c).unwrap();
    assert_eq!(total as usize, CLIENTS * PER);
}

fn mset_is_atomic(backend: &str) {
    let f = Ferrite::start(backend, &["--threads", "2"]);
    let stop = Arc::new(AtomicBool::new(false));
    let mut w = client(&f);
    let _: () = redis::cmd("MSET")
        .arg("a")
        .arg("0")
        .arg("b")
        .arg("0")
        .query(&mut w)
        .unwrap();
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) && i < 200_000 {
                i += 1;
                let v = i.to_string();
                let _: () = redis::cmd("MSET")
                    .arg("a")
                    .arg(&v)
                    .arg("b")
                    .arg(&v)
                    .query(&mut w)
                    .unwrap();
            }
            i
        })
    };
    let mut r = client(&f);
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut reads = 0;
    while Instant::now() < deadline {
        let (a, b): (String, String) = redis::cmd("MGET").arg("a").arg("b").query(&mut r).unwrap();
        reads += 1;
        if a != b {
            stop.store(true, Ordering::Relaxed);
            panic!("MGET saw a torn MSET after {reads} reads: a={a} b={b}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    eprintln!("{backend}: {writes} MSETs, {reads} MGETs, never torn");
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("run redis-cli");
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn redis_cli_outputs(backend: &str) {
    if !require_tool("redis-cli") {
        return;
    }
    let f = Ferrite::start(backend, &[]);
    assert_eq!(cli(f.port, &["PING"]), "PONG\n");
    assert_eq!(cli(f.port, &["SET", "a", "b"]), "OK\n");
    assert_eq!(cli(f.port, &["--no-raw", "GET", "a"]), "\"b\"\n");
    assert_eq!(cli(f.port, &["--no-raw", "GET", "missing"]), "(nil)\n");
    assert_eq!(cli(f.port, &["--no-raw", "INCR", "n"]), "(integer) 1\n");
    // Same output as against Redis itself, errors included.
    if let Some(r) = RedisServer::start() {
        for args in [
            &["--no-raw", "SET", "a", "b"][..],
            &["--no-raw", "INCR", "a"],
            &["--no-raw", "NOSUCHCOMMAND", "x"],
            &["--no-raw", "MGET", "a", "zz"],
        ] {
            assert_eq!(cli(f.port, args), cli(r.port, args), "redis-cli {args:?}");
        }
    }
}

fn inline_commands(backend: &str) {
    let f = Ferrite::start(backend, &[]);
    let mut s = TcpStream::connect(("127.0.0.1", f.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"PING\r\n").unwrap();
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"+PONG\r\n");
    // Inline commands with arguments, quotes, and a bare \n line ending, pipelined.
    let mut c = Conn::connect(f.port);
    c.send_raw(b"SET k \"hello world\"\r\nGET k\nEXISTS k nope\r\n");
    assert_eq!(c.read_reply(), b"+OK\r\n");
    assert_eq!(c.read_reply(), b"$11\r\nhello world\r\n");
    assert_eq!(c.read_reply(), b":1\r\n");
}

fn benchmark(port: u16, extra: &[&str]) {
    let mut cmd = Command::new("redis-benchmark");
    cmd.args(["-p", &port.to_string(), "-t", "ping,set,get,incr,mset"])
        .args(["-n", "100000", "-q"])
        .args(extra);
    let t0 = Instant::now();
    let out = common::run_with_timeout(&mut cmd, Duration::from_secs(180));
    let all = format!("{}{}", out.stdout, out.stderr);
    eprintln!(
        "redis-benchmark {extra:?} ({:.1} s):\n{all}",
        t0.elapsed().as_secs_f64()
    );
    let st = out
        .status
        .expect("redis-benchmark did not finish within 180 s");
    assert!(st.success(), "redis-benchmark exited with {st}:\n{all}");
    assert!(
        !all.contains("ERR") && !all.contains("error"),
        "redis-benchmark reported errors:\n{all}"
    );
    for t in [
        "PING_INLINE: ",
        "PING_MBULK: ",
        "SET: ",
        "GET: ",
        "INCR: ",
        "MSET (10 keys): ",
    ] {
        assert!(all.contains(t), "no result line for {t}:\n{all}");
    }
}

fn redis_benchmark_runs(backend: &str) {
    if !require_tool("redis-benchmark") {
        return;
    }
    // A release binary (FERRITE_RELEASE_BIN, set by .ci/run) keeps this quick.
    let f = Ferrite::start_bin(&common::ferrite_release_bin(), backend, &["--threads", "2"]);
    benchmark(f.port, &[]);
    benchmark(f.port, &["-P", "16"]);
}

fn quit_closes(backend: &str) {
    let f = Ferrite::start(backend, &[]);
    let mut c = f.conn();
    assert_eq!(c.cmd_str(&["QUIT"]), b"+OK\r\n");
    assert!(
        c.wait_closed(Duration::from_secs(2)),
        "connection still open after QUIT"
    );
    // Inline QUIT too.
    let mut c = f.conn();
    c.send_raw(b"QUIT\r\n");
    let (out, closed) = c.read_until_idle(Duration::from_secs(2), Duration::from_secs(3));
    assert_eq!(out, b"+OK\r\n");
    assert!(closed, "connection still open after inline QUIT");
}

fn requirepass(backend: &str) {
    let f = Ferrite::start(backend, &["--requirepass", "s3cret"]);
    let redis = RedisServer::start_with(&["--requirepass", "s3cret"]);
    let steps: [(&[&str], Option<&[u8]>); 6] = [
        (&["GET", "a"], Some(b"-NOAUTH Authentication required.\r\n")),
        (&["PING"], None),
        (
            &["AUTH", "wrong"],
            Some(b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"),
        ),
        (&["AUTH", "s3cret"], Some(b"+OK\r\n")),
        (&["SET", "a", "1"], Some(b"+OK\r\n")),
        (&["GET", "a"], Some(b"$1\r\n1\r\n")),
    ];
    let mut fc = f.conn();
    let mut rc = redis.as_ref().map(|r| r.conn());
    for (args, expected) in steps {
        let got = fc.cmd_str(args);
        if let Some(rc) = rc.as_mut() {
            let want = rc.cmd_str(args);
            assert_eq!(
                escape(&got),
                escape(&want),
                "{args:?}: ferrite vs redis-server"
            );
        }
        if let Some(e) = expected {
            assert_eq!(escape(&got), escape(e), "{args:?}");
        }
    }
    // A new connection starts unauthenticated; HELLO with AUTH works.
    let mut c2 = f.conn();
    assert_eq!(
        c2.cmd_str(&["GET", "a"]),
        b"-NOAUTH Authentication required.\r\n"
    );
    let mut rc = client_url(&format!("redis://:s3cret@127.0.0.1:{}/", f.port));
    let v: String = redis::cmd("GET").arg("a").query(&mut rc).unwrap();
    assert_eq!(v, "1");
}

fn client_url(url: &str) -> redis::Connection {
    redis::Client::open(url).unwrap().get_connection().unwrap()
}

fn idle_timeout(backend: &str) {
    let f = Ferrite::start(backend, &["--timeout", "1"]);
    let mut idle = f.conn();
    assert_eq!(idle.cmd_str(&["PING"]), b"+PONG\r\n");
    let t0 = Instant::now();
    let closed = idle.wait_closed(Duration::from_secs(4));
    let waited = t0.elapsed();
    assert!(closed, "idle client not closed within 4 s with --timeout 1");
    assert!(
        waited >= Duration::from_millis(900),
        "idle client closed too early: after {waited:?}"
    );
    eprintln!("{backend}: idle client closed after {waited:?}");
    // A client that keeps talking is not closed.
    let mut fresh = f.conn();
    for _ in 0..6 {
        assert_eq!(fresh.cmd_str(&["PING"]), b"+PONG\r\n");
        std::thread::sleep(Duration::from_millis(400));
    }
}

fn maxclients(backend: &str) {
    let f = Ferrite::start(backend, &["--maxclients", "2"]);
    // Let the server see the start-up probe's connection go away.
    std::thread::sleep(Duration::from_millis(300));
    let mut a = f.conn();
    let mut b = f.conn();
    assert_eq!(a.cmd_str(&["PING"]), b"+PONG\r\n");
    assert_eq!(b.cmd_str(&["PING"]), b"+PONG\r\n");
    let mut c = f.conn();
    let (out, closed) = c.read_until_idle(Duration::from_secs(2), Duration::from_secs(3));
    assert_eq!(
        escape(&out),
        escape(b"-ERR max number of clients reached\r\n")
    );
    assert!(closed, "the refused connection was not closed");
    // Once one leaves, a new client gets in.
    drop(a);
    std::thread::sleep(Duration::from_millis(200));
    let mut d = f.conn();
    assert_eq!(d.cmd_str(&["PING"]), b"+PONG\r\n");
    assert_eq!(b.cmd_str(&["PING"]), b"+PONG\r\n");
}

fn client_id(c: &mut Conn) -> i64 {
    let r = c.cmd_str(&["CLIENT", "ID"]);
    std::str::from_utf8(&r[1..])
        .unwrap()
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("CLIENT ID: {}", escape(&r)))
}

fn client_kill_across_threads(backend: &str) {
    let f = Ferrite::start(backend, &["--threads", "2"]);
    let mut killer = f.conn();
    // Enough connections that some surely live on the other thread than the killer's.
    let mut victims: Vec<(i64, Conn)> = (0..8)
        .map(|_| {
            let mut c = f.conn();
            (client_id(&mut c), c)
        })
        .collect();
    for (id, _) in &victims {
        let r = killer.cmd_str(&["CLIENT", "KILL", "ID", &id.to_string()]);
        assert_eq!(r, b":1\r\n", "CLIENT KILL ID {id}");
    }
    for (id, c) in victims.iter_mut() {
        assert!(
            c.wait_closed(Duration::from_secs(2)),
            "client {id} still connected after CLIENT KILL"
        );
    }
    // Old style: CLIENT KILL addr:port.
    let mut v = f.conn();
    assert_eq!(v.cmd_str(&["PING"]), b"+PONG\r\n");
    let addr = v.stream.local_addr().unwrap().to_string();
    assert_eq!(killer.cmd_str(&["CLIENT", "KILL", &addr]), b"+OK\r\n");
    assert!(v.wait_closed(Duration::from_secs(2)));
    assert_eq!(
        killer.cmd_str(&["CLIENT", "KILL", "ID", "999999"]),
        b":0\r\n"
    );
    assert_eq!(killer.cmd_str(&["PING"]), b"+PONG\r\n");
}

fn sigterm_exits_cleanly(backend: &str) {
    let mut f = Ferrite::start(backend, &["--threads", "2"]);
    let mut c = f.conn();
    assert_eq!(c.cmd_str(&["SET", "a", "1"]), b"+OK\r\n");
    let t0 = Instant::now();
    let st = f.terminate(Duration::from_secs(5));
    let st = st.unwrap_or_else(|| panic!("no exit within 5 s of SIGTERM\n{}", f.log()));
    assert!(st.success(), "exit status after SIGTERM: {st}\n{}", f.log());
    eprintln!("{backend}: exited {st} {:?} after SIGTERM", t0.elapsed());
}

fn run_ferrite(args: &[&str]) -> common::Finished {
    let dir = TempDir::new("ferrite-startup");
    let mut cmd = Command::new(common::ferrite_bin());
    cmd.arg("--dir").arg(dir.path()).args(args);
    common::run_with_timeout(&mut cmd, Duration::from_secs(10))
}

fn startup_port_in_use(backend: &str) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let out = run_ferrite(&[
        "--port",
        &port,
        "--bind",
        "127.0.0.1",
        "--io-backend",
        backend,
    ]);
    let st = out
        .status
        .expect("ferrite kept running on a port already in use");
    assert!(!st.success(), "exit status {st} on a port already in use");
    let msg = out.stderr.to_lowercase();
    assert!(
        msg.contains("in use") || msg.contains(&port),
        "stderr doesn't say why:\nstderr: {}\nstdout: {}",
        out.stderr,
        out.stdout
    );
    drop(l);

    // A second ferrite on a running ferrite's port (whose listeners use SO_REUSEPORT) must not
    // join its group and split the traffic.
    let first = Ferrite::start(backend, &[]);
    let port = first.port.to_string();
    let out = run_ferrite(&[
        "--port",
        &port,
        "--bind",
        "127.0.0.1",
        "--io-backend",
        backend,
    ]);
    let st = out
        .status
        .expect("a second ferrite kept running on the first one's port");
    assert!(!st.success(), "exit status {st} on a ferrite's port");
    assert!(
        out.stderr.to_lowercase().contains("in use"),
        "stderr: {}",
        out.stderr
    );
}

fn startup_unknown_key(backend: &str) {
    let port = free_port().to_string();
    let out = run_ferrite(&["--port", &port, "--io-backend", backend, "--nosuchkey", "1"]);
    let st = out.status.expect("ferrite kept running with --nosuchkey");
    assert!(!st.success(), "exit status {st} with --nosuchkey 1");
    assert!(
        !out.stderr.trim().is_empty(),
        "no message on stderr for --nosuchkey"
    );
}

fn startup_bad_value(backend: &str) {
    let out = run_ferrite(&["--port", "abc", "--io-backend", backend]);
    let st = out.status.expect("ferrite kept running with --port abc");
    assert!(!st.success(), "exit status {st} with --port abc");
    assert!(
        !out.stderr.trim().is_empty(),
        "no message on stderr for --port abc"
    );
}

fn config_file(backend: &str) {
    let cfgdir = TempDir::new("ferrite-config");
    let port = free_port();
    let path = cfgdir.path().join("ferrite.toml");
    std::fs::write(&path, format!("port = {port}\nrequirepass = \"x\"\n")).unwrap();
    let args: Vec<String> = [
        "--config",
        path.to_str().unwrap(),
        "--bind",
        "127.0.0.1",
        "--io-backend",
        backend,
        "--dir",
        "{dir}",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let f = Ferrite::start_custom(&common::ferrite_bin(), &args, port, "ferrite[config]")
        .unwrap_or_else(|e| panic!("ferrite with a config file did not listen on {port}: {e}"));
    let mut c = f.conn();
    assert_eq!(
        c.cmd_str(&["PING"]),
        b"-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(c.cmd_str(&["AUTH", "x"]), b"+OK\r\n");
    assert_eq!(c.cmd_str(&["PING"]), b"+PONG\r\n");
    let r = c.cmd_str(&["CONFIG", "GET", "port"]);
    assert_eq!(
        escape(&r),
        escape(
            format!(
                "*2\r\n$4\r\nport\r\n${}\r\n{port}\r\n",
                port.to_string().len()
            )
            .as_bytes()
        )
    );
}
