//! Redis Sentinel (redis-server 7.0.15 in sentinel mode) watching a master and its replica:
//! it finds the replica through the master's INFO replication, and when the master dies
//! (SIGKILL) it promotes the replica (REPLICAOF NO ONE inside its MULTI with CONFIG REWRITE);
//! the old master, started again on its port, is turned into a replica of the new one (REPLICAOF
//! host port) and syncs from it. Run with redis-server as master and replica (the reference,
//! validating the test) and with Ferrite as both, on each I/O backend.

mod common;

use std::fs;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::replication::{field_of, info, ok};
use common::{Conn, Server, TempDir, escape, ferrite_bin, free_port, require_tool};

per_backend!(sentinel_fails_over_ferrite);

/// How long Sentinel may take for each step (it refreshes INFO every 10 s when all is well).
const SENTINEL_DEADLINE: Duration = Duration::from_secs(40);

#[derive(Clone, Copy)]
enum Kind<'a> {
    Redis,
    Ferrite(&'a str),
}

#[test]
fn sentinel_fails_over_redis() {
    if require_tool("redis-server") {
        scenario(Kind::Redis);
    }
}

fn sentinel_fails_over_ferrite(backend: &str) {
    if require_tool("redis-server") {
        scenario(Kind::Ferrite(backend));
    }
}

/// A data server of `kind` on `port`, following `master` if given.
fn start(kind: Kind<'_>, port: u16, master: Option<u16>) -> Server {
    let dir = TempDir::new("sentinel-node");
    let port_arg = port.to_string();
    let replicaof = master.map(|m| format!("127.0.0.1 {m}"));
    let (mut cmd, name) = match kind {
        Kind::Redis => {
            let mut c = Command::new("redis-server");
            c.args(["--port", &port_arg, "--bind", "127.0.0.1", "--save", ""]);
            c.args(["--appendonly", "no", "--daemonize", "no"]);
            c.args(["--repl-diskless-sync-delay", "0"]);
            (c, "redis-server".to_string())
        }
        Kind::Ferrite(backend) => {
            let mut c = Command::new(ferrite_bin());
            c.args(["--port", &port_arg, "--bind", "127.0.0.1", "--save", ""]);
            c.args(["--io-backend", backend, "--threads", "2"]);
            c.args(["--repl-diskless-sync-delay", "0"]);
            c.args(["--index-size", "1mb", "--memory-size", "128mb"]);
            c.arg("--dir").arg(dir.path());
            (c, format!("ferrite[{backend}]"))
        }
    };
    if let Some(r) = &replicaof {
        cmd.args(["--replicaof", r]);
    }
    cmd.current_dir(dir.path());
    Server::spawn(cmd, port, name, dir).unwrap_or_else(|e| panic!("start on {port}: {e}"))
}

fn scenario(kind: Kind<'_>) {
    let (mport, rport) = (free_port(), free_port());
    let mut master = start(kind, mport, None);
    let replica = start(kind, rport, Some(mport));
    let mut m = master.conn();
    let mut r = replica.conn();
    ok(&mut m, &["SET", "before", "1"]);
    wait_for("the replica to sync", || {
        r.cmd_str(&["GET", "before"]) == b"$1\r\n1\r\n"
    });

    let sport = free_port();
    let sdir = TempDir::new("sentinel");
    let conf = sdir.path().join("sentinel.conf");
    // 3 s, not less: after a failover Sentinel opens new links to the promoted node, and on a
    // loaded machine a first PING answered late within a 1 s window made it declare the new
    // master down and fail over again to the empty restarted one (seen with redis-server nodes).
    fs::write(
        &conf,
        format!(
            "port {sport}\nbind 127.0.0.1\ndir {}\nsentinel monitor mymaster 127.0.0.1 {mport} 1\n\
             sentinel down-after-milliseconds mymaster 3000\n\
             sentinel failover-timeout mymaster 10000\n",
            sdir.path().display()
        ),
    )
    .expect("write sentinel.conf");
    let sentinel = Sentinel::start(&conf, sport, sdir);
    let mut s = Conn::connect(sentinel.port);
    wait_for("Sentinel to find the replica", || {
        let reply = s.cmd_str(&["SENTINEL", "REPLICAS", "mymaster"]);
        let text = String::from_utf8_lossy(&reply);
        text.contains(&format!("\r\n{rport}\r\n")) && text.contains("\r\nslave\r\n")
    });

    // The master dies: the replica is promoted.
    drop(m);
    kill9(&mut master);
    drop(master);
    wait_for("Sentinel to promote the replica", || {
        let addr = s.cmd_str(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"]);
        addr.ends_with(format!("\r\n{rport}\r\n").as_bytes())
    });
    // Sentinel's promotion ends with CLIENT KILL TYPE normal: connect again.
    wait_for("the promoted replica to say master", || {
        field_of(&info(&mut Conn::connect(rport), "replication"), "role") == "master"
    });
    let mut r = Conn::connect(rport);
    assert_eq!(escape(&r.cmd_str(&["SET", "after", "2"])), "+OK\\r\\n");
    assert_eq!(r.cmd_str(&["GET", "before"]), b"$1\r\n1\r\n");

    // The old master comes back on its port: Sentinel makes it a replica of the new master
    // (and drops its clients again).
    let _old = start(kind, mport, None);
    wait_for("Sentinel to turn the old master into a replica", || {
        let i = info(&mut Conn::connect(mport), "replication");
        i.get("role").map(String::as_str) == Some("slave")
            && i.get("master_port") == Some(&rport.to_string())
            && i.get("master_link_status").map(String::as_str) == Some("up")
    });
    wait_for("the old master to get the new writes", || {
        Conn::connect(mport).cmd_str(&["GET", "after"]) == b"$1\r\n2\r\n"
    });
    assert_eq!(
        escape(&Conn::connect(mport).cmd_str(&["SET", "x", "1"])),
        "-READONLY You can't write against a read only replica.\\r\\n"
    );
    let ri = info(&mut Conn::connect(rport), "replication");
    assert_eq!(field_of(&ri, "connected_slaves"), "1", "{ri:?}");
}

fn kill9(s: &mut Server) {
    let status = Command::new("kill")
        .args(["-9", &s.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.is_running() {
        assert!(Instant::now() < deadline, "{} survived SIGKILL", s.name);
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `cond` every 50 ms until it holds; panics after [`SENTINEL_DEADLINE`].
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + SENTINEL_DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// redis-server in sentinel mode (it never logs "Ready to accept connections", so not a
/// [`Server`]); SIGKILLed on drop, its log printed if the test is failing.
struct Sentinel {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Sentinel {
    fn start(conf: &Path, port: u16, dir: TempDir) -> Sentinel {
        let log = fs::File::create(dir.path().join("sentinel.log")).expect("create the log");
        let child = Command::new("redis-server")
            .arg(conf)
            .arg("--sentinel")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log"))
            .stderr(log)
            .spawn()
            .expect("spawn redis-server --sentinel");
        let s = Sentinel { child, port, dir };
        wait_for("Sentinel to start monitoring", || {
            s.log().contains("+monitor master") && TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        s
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sentinel.log")).unwrap_or_default()
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- sentinel log ---\n{}\n--- end of log ---", self.log());
        }
    }
}
