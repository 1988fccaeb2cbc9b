//! `bind` with several addresses, as redis-server takes it: every address is listened on (by
//! every reactor thread), one marked optional (`-addr`) that the machine lacks is skipped with
//! Redis's warning, and one that is not optional stops the server. The same command lines run
//! redis-server and Ferrite on each backend.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Conn, Server, TempDir, ferrite_bin, free_port, require_tool};

per_backend!(
    several_addresses_as_redis_listens_on_them,
    a_missing_address_stops_the_server_as_redis
);

/// 192.0.2.0/24 is TEST-NET-1: no machine has it.
const ABSENT: &str = "192.0.2.1";

/// `bin --port P --bind <bind...> args`, in a temp dir.
fn command(bin: &Path, port: u16, bind: &[&str], args: &[&str], dir: &TempDir) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(["--port", &port.to_string(), "--bind"])
        .args(bind)
        .args(["--save", "", "--daemonize", "no"])
        .args(args)
        .current_dir(dir.path());
    cmd
}

/// The two servers' programs: redis-server, and Ferrite on `backend`.
fn programs(backend: &str) -> [(std::path::PathBuf, Vec<&str>, String); 2] {
    [
        ("redis-server".into(), vec![], "redis-server".into()),
        (
            ferrite_bin(),
            vec!["--io-backend", backend, "--threads", "2"],
            format!("ferrite[{backend}]"),
        ),
    ]
}

fn ping(addr: SocketAddr) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"PING\r\n").unwrap();
    let mut reply = [0; 7];
    s.read_exact(&mut reply).unwrap();
    reply.to_vec()
}

fn ipv6_loopback() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

fn several_addresses_as_redis_listens_on_them(backend: &str) {
    if !require_tool("redis-server") {
        return;
    }
    let bind = ["127.0.0.1", "-192.0.2.1", "127.0.0.2", "-::1"];
    let mut config_bind = Vec::new();
    for (bin, args, name) in programs(backend) {
        let port = free_port();
        let dir = TempDir::new("bind");
        let cmd = command(&bin, port, &bind, &args, &dir);
        let server = Server::spawn(cmd, port, name.clone(), dir).unwrap_or_else(|e| panic!("{e}"));
        let mut listened = vec![format!("127.0.0.1:{port}"), format!("127.0.0.2:{port}")];
        if ipv6_loopback() {
            listened.push(format!("[::1]:{port}"));
        }
        for addr in &listened {
            assert_eq!(
                ping(addr.parse().unwrap()),
                b"+PONG\r\n",
                "{name} on {addr}"
            );
        }
        // Many connections, so that each of Ferrite's threads accepts on each address.
        let mut conns: Vec<_> = (0..16)
            .map(|i| TcpStream::connect(listened[i % listened.len()].as_str()).unwrap())
            .collect();
        for c in &mut conns {
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            c.write_all(b"PING\r\n").unwrap();
            let mut reply = [0; 7];
            c.read_exact(&mut reply).unwrap();
            assert_eq!(&reply, b"+PONG\r\n", "{name}");
        }
        let warning = format!(
            "Warning: Could not create server TCP listening socket {ABSENT}:{port}: bind: \
             Cannot assign requested address"
        );
        assert!(server.log().contains(&warning), "{name}:\n{}", server.log());
        config_bind.push(Conn::connect(port).cmd_str(&["CONFIG", "GET", "bind"]));
    }
    assert_eq!(
        String::from_utf8_lossy(&config_bind[0]),
        String::from_utf8_lossy(&config_bind[1])
    );
}

fn a_missing_address_stops_the_server_as_redis(backend: &str) {
    if !require_tool("redis-server") {
        return;
    }
    for (bin, args, name) in programs(backend) {
        let port = free_port();
        let dir = TempDir::new("bind");
        let log = dir.path().join("server.log");
        let mut cmd = command(&bin, port, &["127.0.0.1", ABSENT], &args, &dir);
        let out = std::fs::File::create(&log).unwrap();
        let mut child = cmd
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{name} kept running without {ABSENT}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(!status.success(), "{name}: {status}");
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.contains(&format!(
                "Could not create server TCP listening socket {ABSENT}:{port}"
            )),
            "{name}:\n{text}"
        );
    }
}
