//! The append-only file: every acknowledged write survives a restart (clean or `kill -9`) under
//! each `appendfsync` policy, writes of one key from several reactor threads replay in the order
//! they took effect, a torn or corrupt file loads its prefix or is refused as Redis would, and
//! redis-server 7.0 and Ferrite load each other's AOF directory. Every test runs on both I/O
//! backends.

mod common;
#[path = "aof/durability.rs"]
mod durability;
#[path = "aof/files.rs"]
mod files;
#[path = "aof/interop.rs"]
mod interop;
#[path = "aof/model.rs"]
mod model;

use common::{Ferrite, TempDir};
use durability::*;
use files::*;
use interop::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

per_backend!(
    restart_keeps_acknowledged_writes,
    crash_loop_keeps_acknowledged_writes,
    same_key_order_across_threads,
    torn_tail_loads_prefix_or_refuses,
    redis_loads_ferrite_aof,
    ferrite_loads_redis_aof,
    ferrite_upgrades_old_style_aof,
    config_set_appendonly,
    propagated_forms_match_redis,
    disk_full_misconf_then_recovers,
    expiry_propagates_del,
    functions_survive_restarts,
);

/// The AOF suites' server in `dir` ([`Ferrite::start_aof_in`]), or why it did not start.
fn start_in(backend: &str, dir: &Path, extra: &[&str]) -> Result<Ferrite, String> {
    Ferrite::start_aof_in(backend, dir, extra)
}

fn start(backend: &str, dir: &Path, extra: &[&str]) -> Ferrite {
    start_in(backend, dir, extra).unwrap_or_else(|e| panic!("{e}"))
}

fn client(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .expect("client")
        .get_connection()
        .expect("connect")
}

fn client_db(port: u16, db: u8) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/{db}"))
        .expect("client")
        .get_connection()
        .expect("connect")
}

/// SIGKILL, and wait for the process to be gone.
fn kill9(s: &mut Ferrite) {
    s.kill9();
}

fn stop(mut s: Ferrite, how: &str) {
    if how == "kill" {
        kill9(&mut s);
    } else {
        let st = s.terminate(Duration::from_secs(10));
        assert!(
            st.is_some_and(|s| s.success()),
            "clean exit: {st:?}\n{}",
            s.log()
        );
    }
}

/// A seeded xorshift (no dependency): the seed is printed so a failure can be replayed with
/// `AOF_TEST_SEED`.
struct Rng(u64);

impl Rng {
    fn seeded(name: &str) -> Rng {
        let seed = std::env::var("AOF_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        eprintln!("{name}: seed {seed} (AOF_TEST_SEED={seed} replays it)");
        Rng(seed | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The incremental file of a Ferrite AOF directory.
fn incr_file(dir: &Path) -> PathBuf {
    dir.join("appendonlydir").join("appendonly.aof.1.incr.aof")
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for e in fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            fs::copy(&p, to.join(e.file_name())).expect("copy");
        }
    }
}
