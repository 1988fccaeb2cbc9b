//! The AOF rewrite (BGREWRITEAOF, the automatic rewrite, `CONFIG SET appendonly yes` on a
//! non-empty dataset): a rewrite shrinks the directory and a restart recovers exactly, writes
//! from several clients during a rewrite are all there after a restart (nothing lost or doubled
//! at the cut), a `kill -9` mid-rewrite leaves a loadable directory, redis-server 7.0 and
//! Ferrite load each other's rewritten directory, and the replies match redis-server's. Every
//! test runs on both I/O backends.

mod common;
#[path = "aof_rewrite/helpers.rs"]
mod helpers;
#[path = "aof/model.rs"]
mod model;

use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Conn, RedisServer, TempDir};
use helpers::*;
use redis::Commands;

per_backend!(
    rewrite_shrinks_and_restart_recovers,
    writes_during_rewrite_survive_restart,
    kill9_during_rewrite_leaves_loadable_dir,
    redis_and_ferrite_load_each_others_rewrite,
    auto_rewrite_triggers,
    config_set_appendonly_on_data,
    replies_match_redis,
    rdb_preamble_with_aof_tail_loads,
);

fn rewrite_shrinks_and_restart_recovers(backend: &str) {
    for (preamble, how) in [("yes", "kill"), ("no", "term")] {
        let dir = TempDir::new("aofrw-shrink");
        let s = start(backend, dir.path(), &["--aof-use-rdb-preamble", preamble]);
        let mut c = client(s.port);
        overwrite_workload(&mut c, 20);
        let before = aof_dir_size(dir.path());
        let mut raw = Conn::connect(s.port);
        assert_eq!(
            raw.cmd_str(&["BGREWRITEAOF"]),
            b"+Background append only file rewriting started\r\n"
        );
        wait_rewrites(&mut raw, 1);
        let after = aof_dir_size(dir.path());
        eprintln!("preamble {preamble}: appendonlydir {before} -> {after} bytes");
        assert!(
            after * 4 < before,
            "preamble {preamble}: the rewrite left {after} bytes of {before}"
        );
        // Writes after the rewrite go to the new incremental file.
        let _: () = c.set("after", "1").expect("SET");
        let _: () = c.rpush("l0", "tail").expect("RPUSH");
        let want = snapshot_all(&mut c);
        let m = manifest(dir.path());
        let suffix = if preamble == "yes" { "rdb" } else { "aof" };
        assert_eq!(
            m,
            format!(
                "file appendonly.aof.2.base.{suffix} seq 2 type b\n\
                 file appendonly.aof.2.incr.aof seq 2 type i\n"
            ),
            "the old base and incr are history, deleted"
        );
        assert_eq!(
            aof_files(dir.path()).len(),
            3,
            "{:?}",
            aof_files(dir.path())
        );
        stop(s, how);
        let s = start(backend, dir.path(), &[]);
        let got = snapshot_all(&mut client(s.port));
        assert_eq!(got, want, "preamble {preamble}: the restart differs");
        stop(s, "term");
    }
}

fn writes_during_rewrite_survive_restart(backend: &str) {
    for (policy, rewrites) in [("everysec", 3), ("always", 2)] {
        let dir = TempDir::new("aofrw-concurrent");
        // 2000 keys at 300 us each: each rewrite takes about 0.6 s while the writers run.
        let s = start(
            backend,
            dir.path(),
            &["--rdb-key-save-delay", "300", "--appendfsync", policy],
        );
        preload(&mut client(s.port), 2000);
        let writers = 6;
        let stop_flag = Arc::new(AtomicBool::new(false));
        let models = vec![model::Model::new(); writers];
        let seed = seed("writes_during_rewrite");
        let port = s.port;
        let flag = Arc::clone(&stop_flag);
        let runner = std::thread::spawn(move || {
            model::run_writers(port, writers, 1_000_000, seed, &models, &flag)
        });
        // Counters: any write lost or replayed twice at a cut changes them.
        let counters: Vec<_> = (0..2)
            .map(|t| {
                let flag = Arc::clone(&stop_flag);
                std::thread::spawn(move || {
                    let mut c = client(port);
                    let mut acked = 0u64;
                    while !flag.load(Ordering::Relaxed) {
                        let (): () = redis::pipe()
                            .incr(format!("ctr{t}"), 1)
                            .ignore()
                            .rpush(format!("seq{t}"), acked)
                            .ignore()
                            .query(&mut c)
                            .expect("INCR + RPUSH");
                        acked += 1;
                    }
                    acked
                })
            })
            .collect();
        let mut raw = Conn::connect(s.port);
        for n in 1..=rewrites {
            std::thread::sleep(Duration::from_millis(150));
            assert_eq!(
                raw.cmd_str(&["BGREWRITEAOF"]),
                b"+Background append only file rewriting started\r\n"
            );
            wait_rewrites(&mut raw, n);
        }
        std::thread::sleep(Duration::from_millis(100));
        stop_flag.store(true, Ordering::Relaxed);
        let results = runner.join().expect("writers");
        let acked: Vec<u64> = counters
            .into_iter()
            .map(|h| h.join().expect("counter"))
            .collect();
        let keys: usize = results.iter().map(|(m, _)| m.len()).sum();
        assert!(keys > 0, "the writers wrote nothing");
        let mut s = s;
        kill9(&mut s);
        let s = start(backend, dir.path(), &[]);
        model::verify(
            s.port,
            &results,
            &format!("{policy}: after {rewrites} rewrites under load and kill -9"),
        );
        let mut c = client(s.port);
        for (t, &n) in acked.iter().enumerate() {
            let ctr: u64 = c.get(format!("ctr{t}")).expect("GET");
            let seq: Vec<u64> = c.lrange(format!("seq{t}"), 0, -1).expect("LRANGE");
            assert_eq!(ctr, n, "{policy}: counter {t}");
            assert!(
                seq.iter().copied().eq(0..n),
                "{policy}: list {t} is not 0..{n}: {} items",
                seq.len()
            );
        }
        for i in (0..2000).step_by(97) {
            let v: String = c.get(format!("pre:{i}")).expect("GET");
            assert_eq!(v, format!("value-{i}"));
        }
        stop(s, "term");
    }
}

fn kill9_during_rewrite_leaves_loadable_dir(backend: &str) {
    let dir = TempDir::new("aofrw-kill");
    // 1500 keys at 4 ms each: the rewrite takes about 6 s; it is killed long before.
    let mut s = start(backend, dir.path(), &["--rdb-key-save-delay", "4000"]);
    let mut c = client(s.port);
    preload(&mut c, 1500);
    let mut raw = Conn::connect(s.port);
    assert_eq!(
        raw.cmd_str(&["BGREWRITEAOF"]),
        b"+Background append only file rewriting started\r\n"
    );
    for i in 0..200 {
        let _: () = c.set(format!("post:{i}"), i).expect("SET");
    }
    let _: () = c.del("pre:7").expect("DEL");
    assert_eq!(info_field(&mut raw, "aof_rewrite_in_progress"), "1");
    let want = snapshot_all(&mut c);
    // The manifest was switched to the new incremental file at the fork.
    assert_eq!(
        manifest(dir.path()),
        "file appendonly.aof.1.base.rdb seq 1 type b\n\
         file appendonly.aof.1.incr.aof seq 1 type i\n\
         file appendonly.aof.2.incr.aof seq 2 type i\n"
    );
    let children = children_of(s.pid());
    assert!(!children.is_empty(), "no rewrite child found");
    kill9(&mut s);
    for pid in children {
        // SAFETY: kill(2) on the orphaned rewrite child we found; no memory is involved.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let s = start(backend, dir.path(), &[]);
    let mut c = client(s.port);
    assert_eq!(snapshot_all(&mut c), want, "the old manifest's files");
    // The next rewrite of the recovered server works and keeps everything.
    let mut raw = Conn::connect(s.port);
    assert_eq!(
        raw.cmd_str(&["BGREWRITEAOF"]),
        b"+Background append only file rewriting started\r\n"
    );
    wait_rewrites(&mut raw, 1);
    assert_eq!(
        manifest(dir.path()),
        "file appendonly.aof.2.base.rdb seq 2 type b\n\
         file appendonly.aof.3.incr.aof seq 3 type i\n"
    );
    stop(s, "term");
    let s = start(backend, dir.path(), &[]);
    assert_eq!(snapshot_all(&mut client(s.port)), want);
    stop(s, "term");
}

fn redis_and_ferrite_load_each_others_rewrite(backend: &str) {
    for preamble in ["yes", "no"] {
        // Ferrite rewrites, redis-server loads.
        let dir = TempDir::new("aofrw-to-redis");
        let s = start(backend, dir.path(), &["--aof-use-rdb-preamble", preamble]);
        let mut c = client(s.port);
        mixed_workload(&mut c);
        let mut raw = Conn::connect(s.port);
        raw.cmd_str(&["BGREWRITEAOF"]);
        wait_rewrites(&mut raw, 1);
        let _: () = c.set("after-rewrite", "x").expect("SET");
        let _: () = c.sadd("set", "late").expect("SADD");
        let ours = snapshot_all(&mut c);
        stop(s, "term");
        let d = dir.path().display().to_string();
        let Some(r) = RedisServer::start_with(&["--appendonly", "yes", "--dir", &d]) else {
            return;
        };
        assert_eq!(
            snapshot_all(&mut client(r.port)),
            ours,
            "redis-server loaded Ferrite's rewritten AOF (preamble {preamble}) differently\n{}",
            r.log()
        );
        drop(r);

        // redis-server rewrites, Ferrite loads.
        let Some(mut r) =
            RedisServer::start_with(&["--appendonly", "yes", "--aof-use-rdb-preamble", preamble])
        else {
            return;
        };
        let mut rc = client(r.port);
        mixed_workload(&mut rc);
        let mut rraw = Conn::connect(r.port);
        rraw.cmd_str(&["BGREWRITEAOF"]);
        wait_rewrites(&mut rraw, 1);
        let _: () = rc.set("after-rewrite", "x").expect("SET");
        let theirs = snapshot_all(&mut rc);
        let _ = r.terminate(Duration::from_secs(10));
        let dir = TempDir::new("aofrw-from-redis");
        copy_dir(
            &r.dir().join("appendonlydir"),
            &dir.path().join("appendonlydir"),
        );
        let s = start(backend, dir.path(), &[]);
        assert_eq!(
            snapshot_all(&mut client(s.port)),
            theirs,
            "Ferrite loaded redis-server's rewritten AOF (preamble {preamble}) differently\n{}",
            s.log()
        );
        stop(s, "term");
    }
}

fn auto_rewrite_triggers(backend: &str) {
    let dir = TempDir::new("aofrw-auto");
    let s = start(
        backend,
        dir.path(),
        &[
            "--auto-aof-rewrite-min-size",
            "64kb",
            "--auto-aof-rewrite-percentage",
            "100",
        ],
    );
    let mut c = client(s.port);
    let mut raw = Conn::connect(s.port);
    assert_eq!(
        raw.cmd_str(&["CONFIG", "GET", "auto-aof-rewrite-min-size"]),
        b"*2\r\n$25\r\nauto-aof-rewrite-min-size\r\n$5\r\n65536\r\n"
    );
    assert_eq!(
        raw.cmd_str(&["CONFIG", "GET", "auto-aof-rewrite-percentage"]),
        b"*2\r\n$27\r\nauto-aof-rewrite-percentage\r\n$3\r\n100\r\n"
    );
    let value = "x".repeat(200);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut i = 0u64;
    while info_field(&mut raw, "aof_rewrites") == "0" {
        assert!(
            Instant::now() < deadline,
            "no automatic rewrite\n{}",
            s.log()
        );
        let mut p = redis::pipe();
        for _ in 0..100 {
            p.set(format!("k{}", i % 50), &value).ignore();
            i += 1;
        }
        let _: () = p.query(&mut c).expect("pipeline");
    }
    wait_rewrites(&mut raw, 1);
    assert!(
        s.log().contains("Starting automatic rewriting of AOF on"),
        "{}",
        s.log()
    );
    // The base now measures the rewritten files: 50 keys are far below the minimum.
    let current: u64 = info_field(&mut raw, "aof_current_size")
        .parse()
        .expect("size");
    let base: u64 = info_field(&mut raw, "aof_base_size").parse().expect("size");
    assert!(current < 64 * 1024 && base <= current, "{current} {base}");
    // Percentage 0 turns it off.
    raw.cmd_str(&["CONFIG", "SET", "auto-aof-rewrite-percentage", "0"]);
    for _ in 0..20 {
        let mut p = redis::pipe();
        for _ in 0..100 {
            p.set(format!("k{}", i % 50), &value).ignore();
            i += 1;
        }
        let _: () = p.query(&mut c).expect("pipeline");
    }
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(info_field(&mut raw, "aof_rewrites"), "1");
    let want = snapshot_all(&mut c);
    stop(s, "kill");
    let s = start(backend, dir.path(), &[]);
    assert_eq!(snapshot_all(&mut client(s.port)), want);
    stop(s, "term");
}

fn config_set_appendonly_on_data(backend: &str) {
    let dir = TempDir::new("aofrw-config");
    let s = start(
        backend,
        dir.path(),
        &["--appendonly", "no", "--rdb-key-save-delay", "1000"],
    );
    let mut c = client(s.port);
    preload(&mut c, 500);
    mixed_workload(&mut c);
    let mut raw = Conn::connect(s.port);
    assert_eq!(
        raw.cmd_str(&["CONFIG", "SET", "appendonly", "yes"]),
        b"+OK\r\n"
    );
    // Waiting for the rewrite: on, rewriting, and the temp incremental file collects writes.
    assert_eq!(info_field(&mut raw, "aof_enabled"), "1");
    assert_eq!(info_field(&mut raw, "aof_rewrite_in_progress"), "1");
    // The rewrite is the AOF's only copy yet: SHUTDOWN without FORCE is refused (Redis).
    assert_eq!(
        raw.cmd_str(&["SHUTDOWN"]),
        b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n"
    );
    for i in 0..100 {
        let _: () = c.incr("during", 1).expect("INCR");
        let _: () = c.set(format!("pre:{i}"), "changed").expect("SET");
    }
    assert!(
        dir.path()
            .join("appendonlydir/temp-appendonly.aof.incr")
            .exists()
    );
    wait_rewrites(&mut raw, 1);
    assert_eq!(
        manifest(dir.path()),
        "file appendonly.aof.1.base.rdb seq 1 type b\n\
         file appendonly.aof.1.incr.aof seq 1 type i\n"
    );
    let _: () = c.incr("during", 1).expect("INCR");
    let want = snapshot_all(&mut c);
    stop(s, "kill");
    let s = start(backend, dir.path(), &[]);
    let mut c = client(s.port);
    assert_eq!(snapshot_all(&mut c), want);
    let n: i64 = c.get("during").expect("GET");
    assert_eq!(n, 101);
    stop(s, "term");
}

/// The replies around BGSAVE and BGREWRITEAOF running, scheduled and refused, byte for byte
/// against redis-server (both with slow saves, so that each child runs for a while).
fn replies_match_redis(backend: &str) {
    let dir = TempDir::new("aofrw-replies");
    let args = ["--rdb-key-save-delay", "20000", "--appendonly", "no"];
    let s = start(backend, dir.path(), &args);
    let ours = child_replies(s.port);
    stop(s, "term");
    let Some(r) = RedisServer::start_with(&args) else {
        return;
    };
    let theirs = child_replies(r.port);
    assert_eq!(
        ours.iter().map(|r| common::escape(r)).collect::<Vec<_>>(),
        theirs.iter().map(|r| common::escape(r)).collect::<Vec<_>>()
    );
}

/// The sequence `replies_match_redis` compares.
fn child_replies(port: u16) -> Vec<Vec<u8>> {
    let mut c = client(port);
    preload(&mut c, 60);
    let mut raw = Conn::connect(port);
    let mut out = vec![
        raw.cmd_str(&["BGSAVE"]),
        raw.cmd_str(&["BGREWRITEAOF"]),
        info_field(&mut raw, "aof_rewrite_scheduled").into_bytes(),
        raw.cmd_str(&["BGSAVE"]),
        raw.cmd_str(&["BGSAVE", "SCHEDULE"]),
    ];
    // The scheduled rewrite starts when the save is done.
    wait_for(&mut raw, "aof_rewrite_in_progress", "1");
    out.push(raw.cmd_str(&["BGREWRITEAOF"]));
    out.push(raw.cmd_str(&["BGSAVE"]));
    out.push(raw.cmd_str(&["BGSAVE", "SCHEDULE"]));
    wait_rewrites(&mut raw, 1);
    wait_for(&mut raw, "rdb_bgsave_in_progress", "0");
    out.push(info_field(&mut raw, "aof_last_bgrewrite_status").into_bytes());
    raw.cmd_str(&["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    out.push(raw.cmd_str(&["CONFIG", "GET", "rdb-key-save-delay"]));
    out.push(raw.cmd_str(&["CONFIG", "GET", "rdb-key-save-*"]));
    out.push(raw.cmd_str(&["MULTI"]));
    out.push(raw.cmd_str(&["BGREWRITEAOF"]));
    out.push(raw.cmd_str(&["EXEC"]));
    wait_rewrites(&mut raw, 2);
    out.push(raw.cmd_str(&["BGREWRITEAOF", "extra"]));
    out
}

/// An old-style `appendonly.aof` (Redis < 7) with an RDB preamble and an AOF tail is moved
/// into the directory and loaded whole, by Ferrite as by redis-server.
fn rdb_preamble_with_aof_tail_loads(backend: &str) {
    let src = TempDir::new("aofrw-preamble-src");
    let s = start(backend, src.path(), &["--appendonly", "no"]);
    let mut c = client(s.port);
    mixed_workload(&mut c);
    let _: () = redis::cmd("SAVE").query(&mut c).expect("SAVE");
    let mut file = fs::read(src.path().join("dump.rdb")).expect("dump.rdb");
    let tail = ["SET", "tail", "t"];
    file.extend_from_slice(&common::encode_command(
        &tail.iter().map(|a| a.as_bytes()).collect::<Vec<_>>(),
    ));
    file.extend_from_slice(b"*2\r\n$4\r\nINCR\r\n$1\r\ns\r\n");
    let _: () = c.set("tail", "t").expect("SET");
    let _: i64 = c.incr("s", 1).expect("INCR");
    let want = snapshot_all(&mut c);
    stop(s, "term");
    let dir = TempDir::new("aofrw-preamble");
    fs::write(dir.path().join("appendonly.aof"), &file).expect("write");
    let s = start(backend, dir.path(), &[]);
    assert_eq!(snapshot_all(&mut client(s.port)), want, "{}", s.log());
    assert!(
        s.log().contains("Reading the remaining AOF tail"),
        "{}",
        s.log()
    );
    stop(s, "term");
    let dir = TempDir::new("aofrw-preamble-redis");
    fs::write(dir.path().join("appendonly.aof"), &file).expect("write");
    let d = dir.path().display().to_string();
    let Some(r) = RedisServer::start_with(&["--appendonly", "yes", "--dir", &d]) else {
        return;
    };
    assert_eq!(snapshot_all(&mut client(r.port)), want, "{}", r.log());
}

/// The files in the AOF directory.
fn aof_files(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir.join("appendonlydir"))
        .expect("appendonlydir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
