//! The files themselves: torn and corrupt tails, expiry deletions, the old single-file layout,
//! switching the AOF at runtime.

use std::fs;
use std::time::Duration;

use redis::Commands;

use super::{Rng, TempDir, client, client_db, copy_dir, incr_file, start, start_in, stop};

pub(crate) fn torn_tail_loads_prefix_or_refuses(backend: &str) {
    let mut rng = Rng::seeded(&format!("torn_tail[{backend}]"));
    let dir = TempDir::new("aof-torn");
    let s = start(backend, dir.path(), &["--appendfsync", "always"]);
    let mut c = client(s.port);
    let n = 60;
    for i in 0..n {
        let _: () = c.set(format!("k{i}"), format!("value-{i}")).expect("SET");
    }
    stop(s, "term");
    let full = fs::read(incr_file(dir.path())).expect("read incr");
    for trial in 0..12 {
        let flip = trial % 3 == 2;
        let work = TempDir::new("aof-torn-trial");
        copy_dir(dir.path(), work.path());
        let mut bytes = full.clone();
        let at = rng.below(full.len() as u64) as usize;
        if flip {
            bytes[at] ^= 1 << rng.below(8);
        } else {
            bytes.truncate(at);
        }
        fs::write(incr_file(work.path()), &bytes).expect("write");
        let what = format!(
            "trial {trial}: {} at {at}",
            if flip { "flip" } else { "cut" }
        );
        match start_in(backend, work.path(), &[]) {
            Ok(s) => {
                assert!(!s.log().contains("panicked"), "{what}: {}", s.log());
                let mut c = client(s.port);
                // A prefix of the SETs, in order: k0..kj present, nothing after.
                let mut present = Vec::new();
                for i in 0..n {
                    // A flipped bit may have landed in a value: bytes, not text.
                    let v: Option<Vec<u8>> = c.get(format!("k{i}")).expect("GET");
                    present.push(v.is_some());
                }
                if !flip {
                    let j = present.iter().take_while(|&&p| p).count();
                    assert!(present[j..].iter().all(|&p| !p), "{what}: not a prefix");
                    assert!(
                        at >= full.len() - 40 || j < n,
                        "{what}: a cut file cannot hold every command"
                    );
                }
                stop(s, "term");
            }
            Err(log) => {
                assert!(
                    flip,
                    "{what}: a truncated tail must load (aof-load-truncated yes)\n{log}"
                );
                assert!(!log.contains("panicked"), "{what}: {log}");
                assert!(
                    log.contains("Bad file format") || log.contains("Unknown command"),
                    "{what}: refused without Redis's reason\n{log}"
                );
            }
        }
    }
    // With aof-load-truncated no, a cut tail is refused.
    let work = TempDir::new("aof-torn-strict");
    copy_dir(dir.path(), work.path());
    fs::write(incr_file(work.path()), &full[..full.len() - 3]).expect("write");
    let err = start_in(backend, work.path(), &["--aof-load-truncated", "no"]).err();
    let log = err.expect("aof-load-truncated no refuses a truncated file");
    assert!(log.contains("Unexpected end of file"), "{log}");
}

pub(crate) fn config_set_appendonly(backend: &str) {
    let dir = TempDir::new("aof-config");
    let s = start(backend, dir.path(), &["--appendonly", "no"]);
    let mut c = client(s.port);
    let info: String = redis::cmd("INFO")
        .arg("persistence")
        .query(&mut c)
        .expect("INFO");
    assert!(info.contains("aof_enabled:0"), "{info}");
    // An empty dataset: turning the AOF on starts an empty incremental file.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("appendonly")
        .arg("yes")
        .query(&mut c)
        .expect("CONFIG SET");
    let _: () = c.set("k", "v").expect("SET");
    let info: String = redis::cmd("INFO")
        .arg("persistence")
        .query(&mut c)
        .expect("INFO");
    assert!(
        info.contains("aof_enabled:1") && info.contains("aof_last_write_status:ok"),
        "{info}"
    );
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("appendonly")
        .arg("no")
        .query(&mut c)
        .expect("off");
    // With data, turning it on rewrites the dataset into a new base first (Redis's
    // wait_rewrite; tests/aof_rewrite.rs covers it in depth).
    let _: () = c.set("k2", "v2").expect("SET");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("appendonly")
        .arg("yes")
        .query(&mut c)
        .expect("on with data");
    let v: String = redis::cmd("CONFIG")
        .arg("GET")
        .arg("appendonly")
        .query::<Vec<String>>(&mut c)
        .expect("GET")[1]
        .clone();
    assert_eq!(v, "yes");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let info: String = redis::cmd("INFO")
            .arg("persistence")
            .query(&mut c)
            .expect("INFO");
        if info.contains("aof_rewrites:2") && info.contains("aof_rewrite_in_progress:0") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{info}");
        std::thread::sleep(Duration::from_millis(20));
    }
    stop(s, "term");
    let s = start(backend, dir.path(), &[]);
    let v: Option<String> = client(s.port).get("k").expect("GET");
    assert_eq!(v.as_deref(), Some("v"));
    let v: Option<String> = client(s.port).get("k2").expect("GET");
    assert_eq!(v.as_deref(), Some("v2"));
}

/// Lazy expiry (a read finds the key expired) and active expiry (the tick's cycle) delete keys
/// and write `DEL` for them, as Redis does; a restart then does not resurrect them.
pub(crate) fn expiry_propagates_del(backend: &str) {
    let dir = TempDir::new("aof-expiry");
    let s = start(backend, dir.path(), &["--appendfsync", "always"]);
    let mut c = client(s.port);
    let _: () = redis::cmd("SET")
        .arg("lazy")
        .arg("v")
        .arg("PX")
        .arg(50)
        .query(&mut c)
        .expect("SET");
    let _: () = redis::cmd("SET")
        .arg("active")
        .arg("v")
        .arg("PX")
        .arg(50)
        .query(&mut c)
        .expect("SET");
    let mut c3 = client_db(s.port, 3);
    let _: () = redis::cmd("SET")
        .arg("in3")
        .arg("v")
        .arg("PX")
        .arg(50)
        .query(&mut c3)
        .expect("SET");
    std::thread::sleep(Duration::from_millis(100));
    let v: Option<String> = c.get("lazy").expect("GET");
    assert_eq!(v, None);
    let del = |k: &str| format!("*2\r\n$3\r\nDEL\r\n${}\r\n{k}\r\n", k.len());
    let mut text = String::new();
    for _ in 0..100 {
        text =
            String::from_utf8_lossy(&fs::read(incr_file(dir.path())).expect("read")).into_owned();
        if text.contains(&del("active")) && text.contains(&del("in3")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        text.contains(&del("lazy")),
        "lazy expiry wrote no DEL:\n{text}"
    );
    assert!(
        text.contains(&del("active")),
        "active expiry wrote no DEL:\n{text}"
    );
    let at = text.find(&del("in3")).expect("DEL in3");
    let select = "SELECT\r\n$1\r\n";
    let last = text[..at].rfind(select).expect("a SELECT before");
    assert_eq!(
        &text[last + select.len()..last + select.len() + 1],
        "3",
        "DEL in3 runs in db 3:\n{text}"
    );
    stop(s, "term");
}

/// A Redis 6 style single `appendonly.aof` in the working directory is moved into the AOF
/// directory as its base, as redis-server 7 does, and loaded.
pub(crate) fn ferrite_upgrades_old_style_aof(backend: &str) {
    let dir = TempDir::new("aof-old-style");
    let old = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$3\r\nold\r\n$5\r\nstyle\r\n";
    fs::write(dir.path().join("appendonly.aof"), old).expect("write");
    let s = start(backend, dir.path(), &[]);
    let v: Option<String> = client(s.port).get("old").expect("GET");
    assert_eq!(v.as_deref(), Some("style"));
    assert!(
        s.log()
            .contains("Successfully migrated an old-style AOF file"),
        "{}",
        s.log()
    );
    stop(s, "term");
    let manifest = fs::read_to_string(dir.path().join("appendonlydir/appendonly.aof.manifest"))
        .expect("manifest");
    assert_eq!(
        manifest,
        "file appendonly.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
    );
    assert!(!dir.path().join("appendonly.aof").exists());
}
