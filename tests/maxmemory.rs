//! `maxmemory` and its policies, and the access tracking behind them (OBJECT IDLETIME/FREQ),
//! through the real server on both backends.

mod common;

use std::time::Duration;

use common::{Conn, Ferrite, escape};

per_backend!(
    noeviction_refuses_writes_but_serves_reads,
    allkeys_lru_keeps_the_hot_keys,
    volatile_policies_need_keys_with_a_ttl,
    idletime_and_freq_track_access,
);

const OOM: &[u8] = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n";

fn start(backend: &str) -> Ferrite {
    Ferrite::start(backend, &["--threads", "2"])
}

fn noeviction_refuses_writes_but_serves_reads(backend: &str) {
    let f = start(backend);
    let mut c = f.conn();
    assert_eq!(
        c.cmd_str(&["CONFIG", "SET", "maxmemory", "1mb"]),
        b"+OK\r\n"
    );
    let value = vec![b'v'; 1000];
    let mut written = 0;
    loop {
        let r = c.cmd(&[b"SET", format!("k:{written}").as_bytes(), &value]);
        if r == OOM {
            break;
        }
        assert_eq!(escape(&r), "+OK\\r\\n");
        written += 1;
        assert!(written < 5000, "maxmemory 1mb never refused a write");
    }
    assert!(written > 500, "refused after {written} keys");
    // Reads, and writes that free memory, still run; RPUSH (DENYOOM) does not.
    assert_eq!(c.cmd_str(&["GET", "k:0"])[..6], b"$1000\r"[..]);
    assert_eq!(c.cmd_str(&["RPUSH", "l", "x"]), OOM);
    assert_eq!(c.cmd_str(&["MULTI"]), b"+OK\r\n");
    assert_eq!(
        c.cmd_str(&["GET", "k:0"]),
        OOM,
        "anything queued in MULTI may grow memory"
    );
    assert_eq!(c.cmd_str(&["DISCARD"]), b"+OK\r\n");
    for i in 0..100 {
        assert_eq!(c.cmd_str(&["DEL", &format!("k:{i}")]), b":1\r\n");
    }
    assert_eq!(c.cmd_str(&["SET", "fits", "again"]), b"+OK\r\n");
}

fn allkeys_lru_keeps_the_hot_keys(backend: &str) {
    let f = start(backend);
    let mut c = f.conn();
    assert_eq!(
        c.cmd_str(&["CONFIG", "SET", "maxmemory", "2mb"]),
        b"+OK\r\n"
    );
    assert_eq!(
        c.cmd_str(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]),
        b"+OK\r\n"
    );
    let value = vec![b'v'; 1000];
    for i in 0..100 {
        assert_eq!(
            c.cmd(&[b"SET", format!("hot:{i}").as_bytes(), &value]),
            b"+OK\r\n"
        );
    }
    // A steady stream of cold writes while the hot keys are read all the time. The LRU clock
    // has Redis's one-second resolution, so the writes are paced: the keys written in the
    // current second tie with the hot ones, the older ones are idle longer and go first.
    for step in 0..50 {
        for i in 0..100 {
            c.cmd_str(&["GET", &format!("hot:{i}")]);
        }
        for i in 0..60 {
            let k = format!("cold:{step}:{i}");
            assert_eq!(c.cmd(&[b"SET", k.as_bytes(), &value]), b"+OK\r\n", "{k}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let dbsize: u64 = String::from_utf8_lossy(&c.cmd_str(&["DBSIZE"]))[1..]
        .trim()
        .parse()
        .unwrap();
    assert!(dbsize < 3_100, "nothing evicted: {dbsize} keys");
    assert!(c.info_u64("stats", "evicted_keys") > 0);
    assert!(c.info_u64("memory", "used_memory_dataset") <= 2 << 20);
    let hot = (0..100)
        .filter(|i| c.cmd_str(&["EXISTS", &format!("hot:{i}")]) == b":1\r\n")
        .count();
    assert!(
        hot >= 90,
        "only {hot} of 100 hot keys survived LRU eviction"
    );
}

fn volatile_policies_need_keys_with_a_ttl(backend: &str) {
    let f = start(backend);
    let mut c = f.conn();
    let value = vec![b'v'; 1000];
    for i in 0..2000 {
        c.cmd(&[b"SET", format!("k:{i}").as_bytes(), &value]);
    }
    for policy in [
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] {
        assert_eq!(
            c.cmd_str(&["CONFIG", "SET", "maxmemory-policy", policy]),
            b"+OK\r\n"
        );
        assert_eq!(
            c.cmd_str(&["CONFIG", "SET", "maxmemory", "1mb"]),
            b"+OK\r\n"
        );
        assert_eq!(c.cmd_str(&["SET", "one", "more"]), OOM, "{policy}");
        assert_eq!(c.cmd_str(&["CONFIG", "SET", "maxmemory", "0"]), b"+OK\r\n");
    }
    // With keys that have a TTL, volatile-ttl evicts the nearest expiry first.
    for i in 0..1500 {
        let k = format!("k:{i}");
        c.cmd_str(&["PEXPIRE", &k, &(1_000_000 + i * 1000).to_string()]);
    }
    assert_eq!(
        c.cmd_str(&["CONFIG", "SET", "maxmemory", "1mb"]),
        b"+OK\r\n"
    );
    assert_eq!(c.cmd_str(&["SET", "one", "more"]), b"+OK\r\n");
    assert_eq!(
        c.cmd_str(&["EXISTS", "k:1999"]),
        b":1\r\n",
        "no TTL: not a candidate"
    );
    assert_eq!(
        c.cmd_str(&["EXISTS", "k:1499"]),
        b":1\r\n",
        "latest expiry: evicted last"
    );
}

fn idletime_and_freq_track_access(backend: &str) {
    let f = start(backend);
    let mut c = f.conn();
    c.cmd_str(&["SET", "a", "1"]);
    c.cmd_str(&["SET", "b", "1"]);
    std::thread::sleep(Duration::from_millis(2100));
    c.cmd_str(&["GET", "b"]);
    let idle = |c: &mut Conn, k: &str| {
        let r = c.cmd_str(&["OBJECT", "IDLETIME", k]);
        String::from_utf8_lossy(&r[1..])
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    assert!(idle(&mut c, "a") >= 2, "a untouched for 2 s");
    assert!(idle(&mut c, "b") <= 1, "b just read");
    assert!(idle(&mut c, "a") >= 2, "OBJECT itself is not an access");
    assert_eq!(c.cmd_str(&["OBJECT", "IDLETIME", "nope"]), b"$-1\r\n");
    assert!(
        c.cmd_str(&["OBJECT", "FREQ", "a"])
            .starts_with(b"-ERR An LFU maxmemory policy is not selected")
    );
    assert_eq!(
        c.cmd_str(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"]),
        b"+OK\r\n"
    );
    std::thread::sleep(Duration::from_millis(300)); // the store follows the policy on a tick
    c.cmd_str(&["SET", "hot", "1"]);
    for _ in 0..500 {
        c.cmd_str(&["GET", "hot"]);
    }
    let freq = |c: &mut Conn, k: &str| {
        let r = c.cmd_str(&["OBJECT", "FREQ", k]);
        String::from_utf8_lossy(&r[1..])
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    assert!(
        freq(&mut c, "hot") > 5,
        "500 reads raise the counter above its start"
    );
    assert!(
        c.cmd_str(&["OBJECT", "IDLETIME", "hot"])
            .starts_with(b"-ERR An LFU maxmemory policy is selected")
    );
}
