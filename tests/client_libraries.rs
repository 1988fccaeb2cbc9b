//! Unchanged client libraries against Ferrite: redis-py (RESP2 and RESP3) and ioredis run the
//! scripts in `tests/clients/` through their own APIs (connection set-up, reply parsing,
//! pipelines, transactions, pub/sub, scan iterators) once against redis-server and once against
//! Ferrite on each I/O backend; what the scripts print must be the same, byte for byte.
//!
//! The libraries come from `FERRITE_CLIENT_LIBS` (default `target/client-libs`), where
//! `.ci/run` installs them: `python/` on PYTHONPATH, `node_modules/` on NODE_PATH. A library the
//! interpreter cannot load skips its test with a message, or fails it under CI.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Ferrite, RedisServer, backends, in_ci, run_with_timeout};

/// How long one run of a client script may take (it does about 200 round trips).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

fn libs_dir() -> PathBuf {
    match std::env::var_os("FERRITE_CLIENT_LIBS") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/client-libs"),
    }
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

/// One client library: how to run its script against a port.
struct Client {
    name: &'static str,
    program: &'static str,
    script: &'static str,
    /// The module search path variable and the directory under [`libs_dir`] it gets.
    path_var: &'static str,
    path_dir: &'static str,
    /// A program argument that checks the library loads.
    probe: &'static [&'static str],
}

const REDIS_PY: Client = Client {
    name: "redis-py",
    program: "python3",
    script: "redis_py.py",
    path_var: "PYTHONPATH",
    path_dir: "python",
    probe: &["-c", "import redis"],
};

const IOREDIS: Client = Client {
    name: "ioredis",
    program: "node",
    script: "ioredis.js",
    path_var: "NODE_PATH",
    path_dir: "node_modules",
    probe: &["-e", "require('ioredis')"],
};

impl Client {
    fn command(&self) -> Command {
        let mut cmd = Command::new(self.program);
        let mut path = libs_dir().join(self.path_dir).into_os_string();
        if let Some(old) = std::env::var_os(self.path_var) {
            path.push(":");
            path.push(old);
        }
        cmd.env(self.path_var, path);
        cmd
    }

    /// Whether the library loads; if not, panics under CI and otherwise says why it skips.
    fn available(&self) -> bool {
        let probe = run_with_timeout(self.command().args(self.probe), SCRIPT_TIMEOUT);
        if probe.status.is_some_and(|s| s.success()) {
            return true;
        }
        let why = format!(
            "{} cannot load {} from {} ({}); .ci/run installs it",
            self.program,
            self.name,
            libs_dir().display(),
            probe
                .stderr
                .lines()
                .find(|l| l.contains("Error"))
                .unwrap_or("not found"),
        );
        assert!(!in_ci(), "{why}");
        eprintln!("SKIPPED: {why}");
        false
    }

    /// What the script prints against the server on `port`; panics if it fails.
    fn run(&self, port: u16, args: &[&str], server: &str) -> String {
        let done = run_with_timeout(
            self.command()
                .arg(script(self.script))
                .arg(port.to_string())
                .args(args),
            SCRIPT_TIMEOUT,
        );
        assert!(
            done.status.is_some_and(|s| s.success()),
            "{} against {server} failed ({:?})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.name,
            done.status,
            done.stdout,
            done.stderr
        );
        done.stdout
    }
}

/// Runs `client` with `args` against redis-server and against Ferrite on every backend, and
/// compares what it printed line by line.
fn same_as_redis(client: &Client, args: &[&str]) {
    if !client.available() {
        return;
    }
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let expected = client.run(redis.port, args, "redis-server");
    assert!(
        expected.lines().count() > 20,
        "{} printed too little against redis-server:\n{expected}",
        client.name
    );
    for backend in backends() {
        let ferrite = Ferrite::start(backend, &[]);
        let got = client.run(ferrite.port, args, &ferrite.name);
        let diff: Vec<String> = expected
            .lines()
            .zip(got.lines())
            .filter(|(e, g)| e != g)
            .map(|(e, g)| format!("  redis-server: {e}\n  {}: {g}", ferrite.name))
            .collect();
        assert!(
            diff.is_empty() && expected.lines().count() == got.lines().count(),
            "{} {args:?} saw different replies from {} and redis-server:\n{}\n\
             (lines: redis-server {}, ferrite {})",
            client.name,
            ferrite.name,
            diff.join("\n"),
            expected.lines().count(),
            got.lines().count()
        );
    }
}

#[test]
fn redis_py_resp2_sees_what_redis_gives() {
    same_as_redis(&REDIS_PY, &["2"]);
}

#[test]
fn redis_py_resp3_sees_what_redis_gives() {
    same_as_redis(&REDIS_PY, &["3"]);
}

#[test]
fn ioredis_sees_what_redis_gives() {
    same_as_redis(&IOREDIS, &[]);
}
