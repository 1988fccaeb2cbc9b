//! redis.conf files: `ferrite /path/to/redis.conf [--name value ...]` starts from the file
//! redis-server would read. The same file (Debian's stock `/etc/redis/redis.conf`, and one that
//! exercises the syntax: quotes, `include`, accumulating `save` lines, per-class
//! `client-output-buffer-limit` lines) is given to redis-server and to Ferrite on each backend,
//! and every directive's CONFIG GET answer must be the same bytes; a bad line stops both with
//! Redis's message; CONFIG REWRITE after the same CONFIG SETs leaves both files alike (and
//! Ferrite starts again from its own); `client-output-buffer-limit` closes the same clients;
//! `daemonize`, `pidfile` and `logfile` behave alike.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Conn, Server, TempDir, escape, ferrite_bin, free_port, require_tool};

per_backend!(
    stock_redis_conf_loads_as_in_redis,
    redis_conf_syntax_as_redis_reads_it,
    output_limits_close_clients_as_in_redis_on_ferrite,
    config_rewrite_writes_what_redis_writes,
    daemonize_pidfile_and_logfile_on_ferrite,
    rdbchecksum_no_on_ferrite
);

const STOCK: &str = "/etc/redis/redis.conf";

/// Directives whose values are per process (where it listens, logs, keeps its files) and set on
/// the command line of both servers: not compared.
const PER_PROCESS: &[&str] = &["port", "pidfile", "logfile", "dir", "daemonize", "bind"];

/// Starts `bin` (redis-server or Ferrite) with `conf` as its first argument, then `args`.
fn start(bin: &Path, name: &str, conf: &Path, args: &[&str]) -> Server {
    let dir = TempDir::new("redis-conf");
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.arg(conf)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--daemonize", "no", "--logfile", ""])
        .arg("--dir")
        .arg(dir.path())
        .arg("--pidfile")
        .arg(dir.path().join("server.pid"))
        .args(args)
        .current_dir(dir.path());
    Server::spawn(cmd, port, name.to_string(), dir).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The two servers on one file: redis-server, and Ferrite on `backend`.
fn both(backend: &str, conf: &Path) -> (Server, Server) {
    let redis = start(Path::new("redis-server"), "redis-server", conf, &[]);
    let ferrite = start(
        &ferrite_bin(),
        "ferrite",
        conf,
        &["--io-backend", backend, "--threads", "2"],
    );
    (redis, ferrite)
}

/// The directive names of a redis.conf text, first occurrence order.
fn directives(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name = line.split_whitespace().next().unwrap_or("").to_lowercase();
        if name != "include" && !PER_PROCESS.contains(&name.as_str()) && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// Every name's CONFIG GET answer is the same on both servers.
fn assert_same_config(redis: &Server, ferrite: &Server, names: &[String]) {
    let (mut r, mut f) = (Conn::connect(redis.port), Conn::connect(ferrite.port));
    let mut differ = Vec::new();
    for name in names {
        let (a, b) = (
            r.cmd_str(&["CONFIG", "GET", name]),
            f.cmd_str(&["CONFIG", "GET", name]),
        );
        if a != b {
            differ.push(format!(
                "{name}:\n  redis:   {}\n  ferrite: {}",
                escape(&a),
                escape(&b)
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "CONFIG GET differs:\n{}",
        differ.join("\n")
    );
}

fn stock_redis_conf_loads_as_in_redis(backend: &str) {
    if !require_tool("redis-server") {
        return;
    }
    let Ok(text) = std::fs::read_to_string(STOCK) else {
        // The redis-server package installs it; CI installs the package.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{STOCK} is missing"
        );
        eprintln!("skipped: no {STOCK}");
        return;
    };
    let (redis, ferrite) = both(backend, Path::new(STOCK));
    let names = directives(&text);
    assert!(names.len() > 40, "{STOCK} has {} directives", names.len());
    assert_same_config(&redis, &ferrite, &names);
}

/// A file that uses what redis.conf syntax allows.
const SYNTAX: &str = r#"
# Comments and blank lines are skipped.

   maxclients 1234
TIMEOUT 30
save 900 1
save 300 10
requirepass "a secret \"with\" quotes"
notify-keyspace-events 'Ex'
client-output-buffer-limit pubsub 64mb 16mb 90
client-output-buffer-limit replica 512mb 128mb 120
maxmemory 100mb
maxmemory-policy allkeys-lru
hz 20
include INCLUDED
stream-node-max-entries 50
"#;

fn redis_conf_syntax_as_redis_reads_it(backend: &str) {
    if !require_tool("redis-server") {
        return;
    }
    let dir = TempDir::new("redis-conf-files");
    let included = dir.path().join("included.conf");
    std::fs::write(&included, "maxclients 4321\nappendfsync always\n").expect("write");
    let conf = dir.path().join("redis.conf");
    let text = SYNTAX.replace("INCLUDED", &included.display().to_string());
    std::fs::write(&conf, &text).expect("write");
    let (redis, ferrite) = both(backend, &conf);
    let mut names = directives(&text);
    names.extend(["appendfsync".to_string(), "save".to_string()]);
    for s in [&redis, &ferrite] {
        let mut c = Conn::connect(s.port);
        assert_eq!(
            c.cmd_str(&["AUTH", "a secret \"with\" quotes"]),
            b"+OK\r\n",
            "{}",
            s.name
        );
        // The include came after `maxclients 1234`: its value wins.
        assert_eq!(
            c.cmd_str(&["CONFIG", "GET", "maxclients"]),
            b"*2\r\n$10\r\nmaxclients\r\n$4\r\n4321\r\n"
        );
        let info = String::from_utf8_lossy(&c.cmd_str(&["INFO", "server"])).into_owned();
        assert!(
            info.contains(&format!("config_file:{}\r\n", conf.display())),
            "{}: {info}",
            s.name
        );
    }
    // Authenticated connections for the comparison.
    let (mut r, mut f) = (Conn::connect(redis.port), Conn::connect(ferrite.port));
    r.cmd_str(&["AUTH", "a secret \"with\" quotes"]);
    f.cmd_str(&["AUTH", "a secret \"with\" quotes"]);
    let mut differ = Vec::new();
    for name in &names {
        let (a, b) = (
            r.cmd_str(&["CONFIG", "GET", name]),
            f.cmd_str(&["CONFIG", "GET", name]),
        );
        if a != b {
            differ.push(format!("{name}: {} vs {}", escape(&a), escape(&b)));
        }
    }
    assert!(
        differ.is_empty(),
        "CONFIG GET differs:\n{}",
        differ.join("\n")
    );
}

/// A line neither knows stops both servers, with Redis's message naming the line.
#[test]
fn a_bad_directive_stops_both() {
    if !require_tool("redis-server") {
        return;
    }
    let dir = TempDir::new("redis-conf-bad");
    let conf = dir.path().join("bad.conf");
    std::fs::write(&conf, "maxclients 100\nno-such-directive 1\n").expect("write");
    for bin in [Path::new("redis-server"), &ferrite_bin()] {
        let out = Command::new(bin)
            .arg(&conf)
            .current_dir(dir.path())
            .output()
            .expect("run");
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{bin:?} started");
        for want in [
            "*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***",
            "at line 2",
            ">>> 'no-such-directive 1'",
            "Bad directive or wrong number of arguments",
        ] {
            assert!(text.contains(want), "{bin:?} said: {text}");
        }
    }
}

#[test]
fn output_limits_close_clients_as_in_redis_on_redis() {
    if !require_tool("redis-server") {
        return;
    }
    let Some(redis) = common::RedisServer::start() else {
        return;
    };
    output_limits_scenario(redis.port);
}

fn output_limits_close_clients_as_in_redis_on_ferrite(backend: &str) {
    let ferrite = common::Ferrite::start(backend, &[]);
    output_limits_scenario(ferrite.port);
}

/// `client-output-buffer-limit` set at runtime: a normal client whose reply passes the normal
/// class's hard limit is closed without it; a subscriber that does not read is closed past the
/// pubsub class's (lowered) hard limit; the server keeps serving others.
fn output_limits_scenario(port: u16) {
    let mut admin = Conn::connect(port);
    let ok = |c: &mut Conn, args: &[&str]| {
        let reply = c.cmd_str(args);
        assert_eq!(reply, b"+OK\r\n", "{args:?}: {}", escape(&reply));
    };
    ok(
        &mut admin,
        &[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal 1mb 0 0 pubsub 256kb 0 0",
        ],
    );
    let big = "x".repeat(2 << 20);
    ok(&mut admin, &["SET", "big", &big]);
    let mut reader = Conn::connect(port);
    reader.send(&[b"GET", b"big"]);
    assert!(
        reader.try_read_reply().is_err(),
        "a 2 MiB reply passed the 1 MiB normal limit"
    );
    assert_eq!(admin.cmd_str(&["STRLEN", "big"]), b":2097152\r\n");

    let mut sub = Conn::connect(port);
    sub.send(&[b"SUBSCRIBE", b"ch"]);
    let _ = sub.read_reply();
    // The subscriber never reads again: its output grows in the server past 256 KiB (the
    // socket buffers take some first).
    let chunk = "m".repeat(64 << 10);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let n = admin.cmd_str(&["PUBLISH", "ch", &chunk]);
        if n == b":0\r\n" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the subscriber was never closed"
        );
    }
    ok(
        &mut admin,
        &[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal 0 0 0 pubsub 32mb 8mb 60",
        ],
    );
    assert_eq!(admin.cmd_str(&["GET", "nothing"]), b"$-1\r\n");
}

/// Lines CONFIG REWRITE writes that name the process (its port, files, backend) rather than
/// the configuration under test, and Ferrite's own parameters.
const NOT_COMPARED: &[&str] = &[
    "port",
    "bind",
    "dir",
    "pidfile",
    "logfile",
    "daemonize",
    "threads",
    "io-backend",
];

/// The file as compared: the lines before the signature in order, those after it sorted (Redis
/// appends in its hash table's order).
fn comparable(text: &str) -> (Vec<String>, Vec<String>) {
    let keep = |l: &&str| {
        let name = l.split_whitespace().next().unwrap_or("");
        !NOT_COMPARED.contains(&name)
    };
    let (before, after) = match text.split_once("# Generated by CONFIG REWRITE\n") {
        Some((b, a)) => (b, a),
        None => (text, ""),
    };
    let mut appended: Vec<String> = after.lines().filter(keep).map(String::from).collect();
    appended.sort();
    (
        before.lines().filter(keep).map(String::from).collect(),
        appended,
    )
}

const REWRITTEN: &str = r#"# A comment that stays.
maxclients 100
slaveof 127.0.0.1 1
maxclients 200
save 900 1

# Another comment.
hash-max-ziplist-entries 64
notify-keyspace-events Ex
timeout 0
"#;

fn config_rewrite_writes_what_redis_writes(backend: &str) {
    if !require_tool("redis-server") {
        return;
    }
    let dir = TempDir::new("redis-conf-rewrite");
    let (redis_conf, ferrite_conf) = (dir.path().join("r.conf"), dir.path().join("f.conf"));
    for conf in [&redis_conf, &ferrite_conf] {
        std::fs::write(conf, REWRITTEN).expect("write");
    }
    let redis = start(Path::new("redis-server"), "redis-server", &redis_conf, &[]);
    let ferrite = start(
        &ferrite_bin(),
        "ferrite",
        &ferrite_conf,
        &["--io-backend", backend, "--threads", "2"],
    );
    let sets: &[&[&str]] = &[
        &["REPLICAOF", "NO", "ONE"],
        &["CONFIG", "SET", "maxmemory", "2gb"],
        &["CONFIG", "SET", "save", ""],
        &["CONFIG", "SET", "hz", "20"],
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
        &["CONFIG", "SET", "appendfsync", "always"],
        &["CONFIG", "SET", "slowlog-max-len", "1000"],
        &["CONFIG", "SET", "repl-backlog-size", "3mb"],
        &["CONFIG", "SET", "lazyfree-lazy-user-del", "yes"],
        &[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 64mb 16mb 90",
        ],
        &["CONFIG", "SET", "masterauth", "a \"quoted\" secret"],
        &["CONFIG", "SET", "notify-keyspace-events", "KA"],
        &["CONFIG", "SET", "requirepass", "p w"],
    ];
    let mut files = Vec::new();
    for (s, conf) in [(&redis, &redis_conf), (&ferrite, &ferrite_conf)] {
        let mut c = Conn::connect(s.port);
        for args in sets {
            let reply = c.cmd_str(args);
            assert!(reply.starts_with(b"+OK"), "{args:?}: {}", escape(&reply));
        }
        assert_eq!(c.cmd_str(&["AUTH", "p w"]), b"+OK\r\n");
        // Twice: the second rewrite starts from the first one's file.
        for _ in 0..2 {
            assert_eq!(c.cmd_str(&["CONFIG", "REWRITE"]), b"+OK\r\n", "{}", s.name);
        }
        files.push(std::fs::read_to_string(conf).expect("read the rewritten file"));
    }
    assert_eq!(
        comparable(&files[1]),
        comparable(&files[0]),
        "ferrite's file:\n{}\nredis-server's:\n{}",
        files[1],
        files[0]
    );
    // Ferrite starts again from the file it wrote, with the values it had.
    drop(ferrite);
    let again = start(
        &ferrite_bin(),
        "ferrite",
        &ferrite_conf,
        &["--io-backend", backend],
    );
    let mut c = Conn::connect(again.port);
    assert_eq!(c.cmd_str(&["AUTH", "p w"]), b"+OK\r\n");
    assert_eq!(
        c.cmd_str(&["CONFIG", "GET", "maxmemory"]),
        b"*2\r\n$9\r\nmaxmemory\r\n$10\r\n2147483648\r\n"
    );
    assert_eq!(
        c.cmd_str(&["CONFIG", "GET", "masterauth"]),
        b"*2\r\n$10\r\nmasterauth\r\n$17\r\na \"quoted\" secret\r\n"
    );
}

#[test]
fn daemonize_pidfile_and_logfile_on_redis() {
    if !require_tool("redis-server") {
        return;
    }
    daemon_scenario(Path::new("redis-server"), &[]);
}

fn daemonize_pidfile_and_logfile_on_ferrite(backend: &str) {
    daemon_scenario(&ferrite_bin(), &["--io-backend", backend]);
}

/// `daemonize yes`: the command returns at once with status 0 and the server keeps running in
/// the background; `pidfile` holds its pid while it runs and is gone after SHUTDOWN;
/// `logfile` (relative: in `dir`) has its log.
fn daemon_scenario(bin: &Path, args: &[&str]) {
    let dir = TempDir::new("daemon");
    let port = free_port();
    let pidfile = dir.path().join("server.pid");
    let status = Command::new(bin)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--daemonize", "yes", "--logfile", "server.log"])
        .arg("--pidfile")
        .arg(&pidfile)
        .arg("--dir")
        .arg(dir.path())
        .args(args)
        .status()
        .expect("run");
    assert!(status.success(), "{bin:?} --daemonize yes: {status}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut conn = loop {
        if let Ok(mut c) = Conn::try_connect(port)
            && c.cmd_str(&["PING"]) == b"+PONG\r\n"
        {
            break c;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{bin:?} never answered"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let pid = std::fs::read_to_string(&pidfile).expect("the pid file");
    assert!(pid.ends_with('\n'), "{pid:?}");
    let pid = pid.trim();
    assert!(Path::new(&format!("/proc/{pid}")).exists(), "pid {pid}");
    // (Ferrite's reactors may answer just before its main thread logs that line.)
    let logged = |what: &str| {
        std::fs::read_to_string(dir.path().join("server.log")).is_ok_and(|l| l.contains(what))
    };
    while !logged("Ready to accept connections") {
        assert!(std::time::Instant::now() < deadline, "{bin:?}: no log");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    conn.send(&[b"SHUTDOWN", b"NOSAVE"]);
    let _ = conn.try_read_reply();
    while pidfile.exists() || Conn::try_connect(port).is_ok() {
        assert!(std::time::Instant::now() < deadline, "{bin:?} did not exit");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(logged("Removing the pid file."));
}

#[test]
fn rdbchecksum_no_on_redis() {
    if !require_tool("redis-server") {
        return;
    }
    let Some(redis) = common::RedisServer::start_with(&["--rdbchecksum", "no"]) else {
        return;
    };
    assert_zero_checksum(&redis);
}

fn rdbchecksum_no_on_ferrite(backend: &str) {
    let ferrite = common::Ferrite::start(backend, &["--rdbchecksum", "no"]);
    assert_zero_checksum(&ferrite);
}

/// `rdbchecksum no`: SAVE's file ends with the EOF opcode and eight zero bytes where the
/// CRC-64 goes.
fn assert_zero_checksum(s: &Server) {
    let mut c = Conn::connect(s.port);
    assert_eq!(c.cmd_str(&["SET", "k", "v"]), b"+OK\r\n");
    assert_eq!(c.cmd_str(&["SAVE"]), b"+OK\r\n");
    let dump = std::fs::read(s.dir().join("dump.rdb")).expect("dump.rdb");
    assert!(dump.len() > 9, "{}: {} bytes", s.name, dump.len());
    assert_eq!(&dump[dump.len() - 8..], &[0u8; 8], "{}", s.name);
    assert_eq!(dump[dump.len() - 9], 0xff, "{}: EOF opcode", s.name);
}
