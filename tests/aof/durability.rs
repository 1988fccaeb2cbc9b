//! Durability: acknowledged writes survive clean and `kill -9` restarts under every policy,
//! writes of one key replay in the order they took effect, and a full disk behaves as Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::Commands;

use super::model::{Model, Op, run_writers, verify};
use super::{Rng, TempDir, client, kill9, start, stop};

pub(crate) fn restart_keeps_acknowledged_writes(backend: &str) {
    for policy in ["always", "everysec", "no"] {
        for how in ["term", "kill"] {
            let dir = TempDir::new("aof-restart");
            let what = format!("{backend} appendfsync {policy}, {how}");
            let s = start(backend, dir.path(), &["--appendfsync", policy]);
            let stop_flag = Arc::new(AtomicBool::new(false));
            let models = vec![Model::new(); 4];
            let results = run_writers(s.port, 4, 150, 42, &models, &stop_flag);
            assert!(
                results.iter().all(|r| r.1.is_none()),
                "{what}: a write failed"
            );
            stop(s, how);
            let s = start(backend, dir.path(), &["--appendfsync", policy]);
            verify(s.port, &results, &what);
            // The replayed file is appended to: a second restart sees the same.
            let mut c = client(s.port);
            let _: () = c.set("after", "restart").expect("SET");
            stop(s, "term");
            let s = start(backend, dir.path(), &["--appendfsync", policy]);
            verify(s.port, &results, &what);
            let v: Option<String> = client(s.port).get("after").expect("GET");
            assert_eq!(v.as_deref(), Some("restart"), "{what}");
        }
    }
}

pub(crate) fn crash_loop_keeps_acknowledged_writes(backend: &str) {
    let mut rng = Rng::seeded(&format!("crash_loop[{backend}]"));
    let dir = TempDir::new("aof-crash");
    let writers = 4;
    let mut models = vec![Model::new(); writers];
    for round in 0..10 {
        // Mostly `always`; the others too, as a kill -9 loses nothing written either (replies
        // wait for the write under every policy, as Redis writes before it replies).
        let policy = ["always", "always", "everysec", "no"][round % 4];
        let mut s = start(backend, dir.path(), &["--appendfsync", policy]);
        if round > 0 {
            // What the previous round left must be there before this one writes.
            let prev: Vec<(Model, Option<Op>)> = models.iter().map(|m| (m.clone(), None)).collect();
            verify(s.port, &prev, &format!("round {round} start"));
        }
        let stop_flag = Arc::new(AtomicBool::new(false));
        let kill_after = Duration::from_millis(30 + rng.below(250));
        let port = s.port;
        let seed = rng.next();
        let m = models.clone();
        let flag = Arc::clone(&stop_flag);
        let run = std::thread::spawn(move || run_writers(port, writers, 100_000, seed, &m, &flag));
        std::thread::sleep(kill_after);
        kill9(&mut s);
        stop_flag.store(true, Ordering::Relaxed);
        let results = run.join().expect("writers");
        drop(s);
        let s = start(backend, dir.path(), &["--appendfsync", policy]);
        let what = format!("round {round}, {policy} (killed after {kill_after:?})");
        let in_flight = results.iter().filter(|r| r.1.is_some()).count();
        eprintln!("crash loop {what}: {in_flight} writes in flight at the kill");
        models = verify(s.port, &results, &what);
        stop(s, "term");
    }
}

pub(crate) fn same_key_order_across_threads(backend: &str) {
    for how in ["term", "kill"] {
        let dir = TempDir::new("aof-order");
        let s = start(backend, dir.path(), &["--appendfsync", "always"]);
        // Four connections (so that, with two reactor threads, the alternation crosses
        // threads whatever the kernel's SO_REUSEPORT hashing), taking turns: each SET is sent
        // only after the previous one was acknowledged.
        let mut conns: Vec<_> = (0..4).map(|_| client(s.port)).collect();
        let mut last = 0;
        for i in 0..400 {
            let c = &mut conns[i % 4];
            let _: () = c.set("k", i).expect("SET");
            let _: i64 = c.incr("n", 1).expect("INCR");
            last = i;
        }
        stop(s, how);
        let s = start(backend, dir.path(), &["--appendfsync", "always"]);
        let mut c = client(s.port);
        let v: i64 = c.get("k").expect("GET");
        let n: i64 = c.get("n").expect("GET");
        assert_eq!(
            v, last as i64,
            "{how}: the last acknowledged SET wins after replay"
        );
        assert_eq!(n, 400, "{how}");
        stop(s, "term");
    }
    // Concurrent, pipelined appends to one string and one list from four connections: any
    // reordering of two appends across threads changes the value, so the replayed value must
    // be the very one the server held.
    let dir = TempDir::new("aof-order-concurrent");
    let s = start(backend, dir.path(), &["--appendfsync", "always"]);
    let port = s.port;
    let handles: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = client(port);
                for round in 0..20 {
                    let mut p = redis::pipe();
                    for i in 0..10 {
                        let item = format!("{t}.{round}.{i},");
                        p.append("s", &item).ignore().rpush("l", &item).ignore();
                    }
                    let _: () = p.query(&mut c).expect("pipeline");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("appender");
    }
    let mut c = client(port);
    let before: (String, Vec<String>) = (
        c.get("s").expect("GET"),
        c.lrange("l", 0, -1).expect("LRANGE"),
    );
    stop(s, "kill");
    let s = start(backend, dir.path(), &["--appendfsync", "always"]);
    let mut c = client(s.port);
    let after: (String, Vec<String>) = (
        c.get("s").expect("GET"),
        c.lrange("l", 0, -1).expect("LRANGE"),
    );
    assert_eq!(before.1.len(), 800);
    assert!(
        before == after,
        "concurrent appends replayed in another order"
    );
}

/// A small tmpfs mounted for a test (root only); unmounted on drop.
pub(crate) struct Tmpfs(TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = TempDir::new("aof-tmpfs");
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs(dir))
    }

    fn resize(&self, size: &str) {
        let st = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.0.path())
            .status()
            .expect("remount");
        assert!(st.success(), "remount {size}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.0.path())
            .status();
    }
}

/// A full disk: the failing write is answered (as Redis does with `everysec`), later writes
/// and PING get `-MISCONF Errors writing to the AOF file: ...`, reads keep working, and once
/// there is room again the writer catches up and writes are accepted.
pub(crate) fn disk_full_misconf_then_recovers(backend: &str) {
    let Some(fs) = Tmpfs::mount("256k") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let s = start(backend, fs.0.path(), &["--appendfsync", "everysec"]);
    let mut c = client(s.port);
    let big = "x".repeat(16 * 1024);
    let mut refused = None;
    for i in 0..200 {
        match c.set::<_, _, ()>(format!("k{i}"), &big) {
            Ok(()) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => {
                refused = Some(e.to_string());
                break;
            }
        }
    }
    let e = refused.expect("a full disk refuses writes");
    assert!(
        e.contains("MISCONF")
            && e.contains("Errors writing to the AOF file: No space left on device"),
        "{e}"
    );
    let info: String = redis::cmd("INFO")
        .arg("persistence")
        .query(&mut c)
        .expect("INFO");
    assert!(info.contains("aof_last_write_status:err"), "{info}");
    let v: Option<String> = c.get("k0").expect("reads keep working");
    assert_eq!(v.as_deref(), Some(big.as_str()));
    let ping = redis::cmd("PING")
        .query::<String>(&mut c)
        .expect_err("PING is refused too");
    assert!(ping.to_string().contains("MISCONF"), "{ping}");
    fs.resize("16m");
    let mut ok = false;
    for _ in 0..100 {
        if c.set::<_, _, ()>("after", "room").is_ok() {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        ok,
        "writes are accepted again once the AOF can be written\n{}",
        s.log()
    );
    assert!(
        s.log().contains("AOF write error looks solved"),
        "{}",
        s.log()
    );
    stop(s, "term");
    let s = start(backend, fs.0.path(), &[]);
    let v: Option<String> = client(s.port).get("after").expect("GET");
    assert_eq!(v.as_deref(), Some("room"));
    stop(s, "term");

    // With `always` a failed write cannot be answered honestly: Redis exits, and so do we,
    // never acknowledging the write that did not reach the file.
    let Some(fs) = Tmpfs::mount("256k") else {
        return;
    };
    let mut s = start(backend, fs.0.path(), &["--appendfsync", "always"]);
    let mut c = client(s.port);
    let mut acked = 0;
    for i in 0..200 {
        if c.set::<_, _, ()>(format!("k{i}"), &big).is_err() {
            break;
        }
        acked += 1;
    }
    assert!(acked < 200, "a full disk must stop acknowledging writes");
    let st = s.terminate(Duration::from_secs(10));
    assert!(
        st.is_some_and(|st| !st.success()),
        "exits with an error: {st:?}"
    );
    assert!(
        s.log()
            .contains("Can't recover from AOF write error when the AOF fsync policy is 'always'"),
        "{}",
        s.log()
    );
    fs.resize("16m");
    let s = start(backend, fs.0.path(), &[]);
    let mut c = client(s.port);
    for i in 0..acked {
        let v: Option<String> = c.get(format!("k{i}")).expect("GET");
        assert!(v.is_some(), "acknowledged k{i} is in the AOF");
    }
    stop(s, "term");
}
