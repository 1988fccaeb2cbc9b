//! INFO stats / commandstats / errorstats and CLIENT LIST fields, end to end: exact counts
//! after known sequences (also with clients spread over two reactor threads), instantaneous
//! rates under load, CONFIG RESETSTAT, and the flags CLIENT LIST shows. Both I/O backends.

mod common;

use common::{Conn, Ferrite, RedisServer};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

per_backend!(
    commandstats_count_exactly_across_threads,
    instantaneous_rates_under_load,
    resetstat_zeroes_everything,
    noauth_is_a_rejected_call,
    client_list_flags_and_counts,
    blocked_calls_count_as_redis,
    memory_stats_has_redis_fields,
);

/// The text of a bulk (RESP2) reply.
fn text(reply: &[u8]) -> String {
    let s = String::from_utf8_lossy(reply).into_owned();
    match s.split_once("\r\n") {
        Some((head, body)) if head.starts_with('$') => body.trim_end().to_string(),
        _ => panic!("not a bulk reply: {s:?}"),
    }
}

/// `INFO section` as `name -> value` pairs.
fn info(c: &mut Conn, section: &str) -> Vec<(String, String)> {
    text(&c.cmd_str(&["INFO", section]))
        .lines()
        .filter_map(|l| l.trim_end().split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn field(c: &mut Conn, section: &str, name: &str) -> Option<String> {
    info(c, section)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// `cmdstat_<name>` as its `key=value` items.
fn cmdstat(c: &mut Conn, name: &str) -> Option<Vec<(String, String)>> {
    let v = field(c, "commandstats", &format!("cmdstat_{name}"))?;
    Some(
        v.split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn item<'a>(items: &'a [(String, String)], key: &str) -> &'a str {
    items
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key} in {items:?}"))
}

fn num(items: &[(String, String)], key: &str) -> u64 {
    item(items, key).parse().unwrap()
}

fn commandstats_count_exactly_across_threads(backend: &str) {
    let f = Ferrite::start(backend, &["--threads", "2"]);
    let mut admin = f.conn();
    assert_eq!(admin.cmd_str(&["SET", "str", "x"]), b"+OK\r\n");
    assert_eq!(admin.cmd_str(&["CONFIG", "RESETSTAT"]), b"+OK\r\n");
    // 16 connections: the kernel spreads them over both reactor threads (all on one thread
    // would take 15 coin flips the same way).
    const CONNS: u64 = 16;
    let port = f.port;
    let workers: Vec<_> = (0..CONNS)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = Conn::connect(port);
                let key = format!("k{i}");
                // Pipelined, to exercise runs of one command timed together.
                let mut batch = Vec::new();
                for _ in 0..100 {
                    batch.extend_from_slice(&common::encode_command(&[
                        b"SET",
                        key.as_bytes(),
                        b"v",
                    ]));
                }
                for _ in 0..50 {
                    batch.extend_from_slice(&common::encode_command(&[b"GET", key.as_bytes()]));
                }
                for _ in 0..10 {
                    batch.extend_from_slice(&common::encode_command(&[b"LPUSH", b"str", b"x"]));
                }
                for _ in 0..5 {
                    batch.extend_from_slice(&common::encode_command(&[b"GET"]));
                }
                c.send_raw(&batch);
                for _ in 0..165 {
                    c.read_reply();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let set = cmdstat(&mut admin, "set").expect("cmdstat_set");
    assert_eq!(num(&set, "calls"), 100 * CONNS);
    assert_eq!(num(&set, "failed_calls"), 0);
    assert!(num(&set, "usec") > 0, "{set:?}");
    let get = cmdstat(&mut admin, "get").expect("cmdstat_get");
    assert_eq!(num(&get, "calls"), 50 * CONNS);
    assert_eq!(num(&get, "rejected_calls"), 5 * CONNS);
    let lpush = cmdstat(&mut admin, "lpush").expect("cmdstat_lpush");
    assert_eq!(num(&lpush, "calls"), 10 * CONNS);
    assert_eq!(num(&lpush, "failed_calls"), 10 * CONNS);
    let per_call: f64 = item(&set, "usec_per_call").parse().unwrap();
    assert!(per_call >= 0.0);
    let errors = info(&mut admin, "errorstats");
    assert_eq!(
        errors,
        vec![
            ("errorstat_ERR".to_string(), format!("count={}", 5 * CONNS)),
            (
                "errorstat_WRONGTYPE".to_string(),
                format!("count={}", 10 * CONNS)
            ),
        ]
    );
    let stats = info(&mut admin, "stats");
    let get_field = |n: &str| stats.iter().find(|(k, _)| k == n).unwrap().1.clone();
    assert_eq!(get_field("total_error_replies"), (15 * CONNS).to_string());
    // The commands above, RESETSTAT itself and the three INFO calls before this one.
    assert_eq!(
        get_field("total_commands_processed"),
        (160 * CONNS + 1 + 4).to_string()
    );
    // Subcommands are named container|sub.
    admin.cmd_str(&["CLIENT", "ID"]);
    let id = cmdstat(&mut admin, "client|id").expect("cmdstat_client|id");
    assert_eq!(num(&id, "calls"), 1);
}

fn instantaneous_rates_under_load(backend: &str) {
    let f = Ferrite::start(backend, &["--threads", "2"]);
    let mut admin = f.conn();
    let stop = Arc::new(AtomicBool::new(false));
    let port = f.port;
    let load = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut c = Conn::connect(port);
            let batch: Vec<u8> = (0..50)
                .flat_map(|_| common::encode_command(&[b"PING"]))
                .collect();
            // Bounded: at most 10 s, normally stopped after the rate shows.
            let deadline = Instant::now() + Duration::from_secs(10);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                c.send_raw(&batch);
                for _ in 0..50 {
                    c.read_reply();
                }
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let (mut ops, mut kbps_in, mut kbps_out) = (0u64, 0f64, 0f64);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
        let stats = info(&mut admin, "stats");
        let get = |n: &str| stats.iter().find(|(k, _)| k == n).unwrap().1.clone();
        ops = get("instantaneous_ops_per_sec").parse().unwrap();
        kbps_in = get("instantaneous_input_kbps").parse().unwrap();
        kbps_out = get("instantaneous_output_kbps").parse().unwrap();
        if ops > 0 && kbps_in > 0.0 && kbps_out > 0.0 {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    assert!(ops > 0, "instantaneous_ops_per_sec stayed 0");
    assert!(kbps_in > 0.0 && kbps_out > 0.0, "kbps {kbps_in} {kbps_out}");
    // Once idle, the mean of the last 16 samples (1.6 s) decays to 0.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let v: u64 = field(&mut admin, "stats", "instantaneous_ops_per_sec")
            .unwrap()
            .parse()
            .unwrap();
        // The INFO calls themselves are a few per second.
        if v < 20 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ops/s still {v} long after the load"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn resetstat_zeroes_everything(backend: &str) {
    let f = Ferrite::start(backend, &["--threads", "2"]);
    let mut c = f.conn();
    c.cmd_str(&["SET", "a", "1"]);
    c.cmd_str(&["LPUSH", "a", "x"]);
    c.cmd_str(&["GET"]);
    c.cmd_str(&["NOSUCH"]);
    assert!(cmdstat(&mut c, "set").is_some());
    assert_eq!(c.cmd_str(&["CONFIG", "RESETSTAT"]), b"+OK\r\n");
    // Only RESETSTAT itself has run since, as in Redis.
    let cmds = info(&mut c, "commandstats");
    assert_eq!(cmds.len(), 1, "{cmds:?}");
    assert_eq!(cmds[0].0, "cmdstat_config|resetstat");
    assert!(cmds[0].1.starts_with("calls=1,"), "{cmds:?}");
    assert!(info(&mut c, "errorstats").is_empty());
    let stats = info(&mut c, "stats");
    let get = |n: &str| stats.iter().find(|(k, _)| k == n).unwrap().1.clone();
    assert_eq!(get("total_error_replies"), "0");
    assert_eq!(get("total_commands_processed"), "3");
    assert_eq!(get("instantaneous_ops_per_sec"), "0");
    assert_eq!(get("keyspace_hits"), "0");
}

fn noauth_is_a_rejected_call(backend: &str) {
    let f = Ferrite::start(backend, &["--threads", "2", "--requirepass", "secret"]);
    let mut c = f.conn();
    assert_eq!(
        c.cmd_str(&["GET", "k"]),
        b"-NOAUTH Authentication required.\r\n"
    );
    c.cmd_str(&["GET"]);
    assert_eq!(c.cmd_str(&["AUTH", "secret"]), b"+OK\r\n");
    let get = cmdstat(&mut c, "get").expect("cmdstat_get");
    assert_eq!(num(&get, "calls"), 0);
    assert_eq!(num(&get, "rejected_calls"), 2);
    let errors = info(&mut c, "errorstats");
    assert!(
        errors.contains(&("errorstat_NOAUTH".into(), "count=1".into())),
        "{errors:?}"
    );
}

/// CLIENT LIST as one map of fields per client id.
fn client_list(c: &mut Conn) -> Vec<Vec<(String, String)>> {
    text(&c.cmd_str(&["CLIENT", "LIST"]))
        .lines()
        .map(|l| {
            l.split(' ')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn client_id(c: &mut Conn) -> String {
    let r = c.cmd_str(&["CLIENT", "ID"]);
    String::from_utf8_lossy(&r[1..r.len() - 2]).into_owned()
}

fn client_list_flags_and_counts(backend: &str) {
    let f = Ferrite::start(backend, &["--threads", "2"]);
    let mut admin = f.conn();
    let mut sub = f.conn();
    let sub_id = client_id(&mut sub);
    sub.cmd_str(&["SUBSCRIBE", "a"]);
    sub.cmd_str(&["SUBSCRIBE", "b"]);
    sub.cmd_str(&["PSUBSCRIBE", "p*"]);
    let mut multi = f.conn();
    let multi_id = client_id(&mut multi);
    multi.cmd_str(&["MULTI"]);
    multi.cmd_str(&["SET", "k", "v"]);
    let mut blocked = f.conn();
    let blocked_id = client_id(&mut blocked);
    blocked.send(&[b"BLPOP", b"list", b"0"]);
    let mut noevict = f.conn();
    let noevict_id = client_id(&mut noevict);
    noevict.cmd_str(&["CLIENT", "NO-EVICT", "on"]);

    // The BLPOP parks asynchronously: wait for it to show.
    let deadline = Instant::now() + Duration::from_secs(5);
    let list = loop {
        let list = client_list(&mut admin);
        let parked = list
            .iter()
            .any(|c| item(c, "id") == blocked_id && item(c, "flags") == "b");
        if parked || Instant::now() > deadline {
            break list;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let by_id = |id: &str| list.iter().find(|c| item(c, "id") == id).unwrap().clone();
    let s = by_id(&sub_id);
    assert_eq!(item(&s, "flags"), "P");
    assert_eq!(item(&s, "sub"), "2");
    assert_eq!(item(&s, "psub"), "1");
    assert_eq!(item(&s, "cmd"), "psubscribe");
    let m = by_id(&multi_id);
    assert_eq!(item(&m, "flags"), "x");
    assert_eq!(item(&m, "multi"), "1");
    // Redis's multi-mem: argument bytes plus a pointer per argument.
    assert_eq!(item(&m, "multi-mem"), "29");
    let b = by_id(&blocked_id);
    assert_eq!(item(&b, "flags"), "b");
    assert_eq!(item(&b, "cmd"), "blpop");
    assert_eq!(item(&b, "argv-mem"), "10");
    let e = by_id(&noevict_id);
    assert_eq!(item(&e, "flags"), "e");
    let me = list
        .iter()
        .find(|c| item(c, "cmd") == "client|list")
        .unwrap();
    assert_eq!(item(me, "flags"), "N");
    assert_eq!(item(me, "multi"), "-1");
    // A real descriptor on epoll; io_uring sockets live only in the ring's fixed-file table.
    for c in &list {
        let fd: i64 = item(c, "fd").parse().unwrap();
        if backend == "epoll" {
            assert!(fd > 2, "{c:?}");
        } else {
            assert_eq!(fd, -1, "{c:?}");
        }
    }

    // State changes show after the client's next command.
    sub.cmd_str(&["UNSUBSCRIBE", "a"]);
    multi.cmd_str(&["DISCARD"]);
    let list = client_list(&mut admin);
    let by_id = |id: &str| list.iter().find(|c| item(c, "id") == id).unwrap().clone();
    assert_eq!(item(&by_id(&sub_id), "sub"), "1");
    let m = by_id(&multi_id);
    assert_eq!(item(&m, "flags"), "N");
    assert_eq!(item(&m, "multi"), "-1");
    let stats = info(&mut admin, "stats");
    let get = |n: &str| stats.iter().find(|(k, _)| k == n).unwrap().1.clone();
    assert_eq!(get("pubsub_channels"), "1");
    assert_eq!(get("pubsub_patterns"), "1");
}

/// Blocking commands across connections, run against redis-server and Ferrite: the counts of
/// INFO commandstats (without times) and errorstats must be the same.
fn blocked_calls_count_as_redis(backend: &str) {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let f = Ferrite::start(backend, &["--threads", "2"]);
    let expected = blocking_scenario(redis.port);
    let got = blocking_scenario(f.port);
    assert_eq!(got, expected, "ferrite (left) vs redis-server (right)");
}

fn blocking_scenario(port: u16) -> (Vec<String>, Vec<(String, String)>) {
    let mut a = Conn::connect(port);
    let mut b = Conn::connect(port);
    let mut d = Conn::connect(port);
    assert_eq!(b.cmd_str(&["CONFIG", "RESETSTAT"]), b"+OK\r\n");
    let id_a = client_id(&mut a);
    let wait_blocked = |c: &mut Conn, n: &str| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while field(c, "clients", "blocked_clients").as_deref() != Some(n) {
            assert!(Instant::now() < deadline, "no client blocked");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    // Served by a push from another connection.
    a.send(&[b"BLPOP", b"l1", b"0"]);
    wait_blocked(&mut b, "1");
    b.cmd_str(&["RPUSH", "l1", "x"]);
    assert!(a.read_reply().starts_with(b"*2"));
    // Timed out.
    assert_eq!(d.cmd_str(&["BLPOP", "l2", "0.05"]), b"*-1\r\n");
    // Unblocked with an error: BLPOP fails, and so does CLIENT UNBLOCK in Redis 7.0.
    a.send(&[b"BLPOP", b"l3", b"0"]);
    wait_blocked(&mut b, "1");
    assert_eq!(b.cmd_str(&["CLIENT", "UNBLOCK", &id_a, "ERROR"]), b":1\r\n");
    assert!(a.read_reply().starts_with(b"-UNBLOCKED"));
    // Unblocked as a timeout.
    a.send(&[b"BRPOP", b"l4", b"0"]);
    wait_blocked(&mut b, "1");
    assert_eq!(b.cmd_str(&["CLIENT", "UNBLOCK", &id_a]), b":1\r\n");
    assert_eq!(a.read_reply(), b"*-1\r\n");
    // A blocking command inside MULTI answers at once.
    d.cmd_str(&["MULTI"]);
    d.cmd_str(&["BLPOP", "l5", "0"]);
    d.cmd_str(&["EXEC"]);
    let mut cmds: Vec<String> = info(&mut b, "commandstats")
        .into_iter()
        .filter(|(k, _)| k != "cmdstat_info")
        .map(|(k, v)| {
            let items: Vec<&str> = v.split(',').filter(|kv| !kv.starts_with("usec")).collect();
            format!("{k}:{}", items.join(","))
        })
        .collect();
    cmds.sort();
    (cmds, info(&mut b, "errorstats"))
}

/// MEMORY STATS in RESP2: the names (every other element, databases' maps as one element each)
/// and the integer values by name.
fn memory_stats(c: &mut Conn) -> (Vec<String>, std::collections::HashMap<String, i64>) {
    let reply = c.cmd_str(&["MEMORY", "STATS"]);
    let (_, elems) = common::split_aggregate(&reply).expect("MEMORY STATS is an array");
    let mut names = Vec::new();
    let mut ints = std::collections::HashMap::new();
    for pair in elems.chunks(2) {
        let name = text(&pair[0]);
        if let Some(v) = pair[1].strip_prefix(b":") {
            let v = String::from_utf8_lossy(v).trim_end().parse().unwrap();
            ints.insert(name.clone(), v);
        }
        names.push(name);
    }
    (names, ints)
}

/// MEMORY STATS names Redis 7.0.15's figures in Redis's order (databases with keys included)
/// and agrees with INFO and DBSIZE; MALLOC-STATS answers as Redis built on the C allocator.
fn memory_stats_has_redis_fields(backend: &str) {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let f = Ferrite::start(backend, &["--threads", "2"]);
    let mut all = Vec::new();
    for port in [redis.port, f.port] {
        let mut c = Conn::connect(port);
        c.cmd_str(&["SET", "a", "1"]);
        c.cmd_str(&["SELECT", "3"]);
        c.cmd_str(&["RPUSH", "l", "x", "y"]);
        c.cmd_str(&["SET", "b", "2"]);
        c.cmd_str(&["SELECT", "0"]);
        all.push(memory_stats(&mut c));
    }
    assert_eq!(all[1].0, all[0].0, "{}: MEMORY STATS fields", f.name);
    // INFO memory: Redis's fields, in Redis's order (Ferrite adds used_memory_log and
    // used_memory_index of its own).
    let names = |port| -> Vec<String> {
        info(&mut Conn::connect(port), "memory")
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k != "used_memory_log" && k != "used_memory_index")
            .collect()
    };
    assert_eq!(
        names(f.port),
        names(redis.port),
        "{}: INFO memory fields",
        f.name
    );
    let ints = &all[1].1;
    assert_eq!(ints["keys.count"], 3);
    let mut c = f.conn();
    let used: i64 = info(&mut c, "memory")
        .into_iter()
        .find(|(k, _)| k == "used_memory")
        .map(|(_, v)| v.parse().unwrap())
        .unwrap();
    assert!((ints["total.allocated"] - used).abs() < 1 << 20);
    assert!(ints["peak.allocated"] >= ints["total.allocated"]);
    assert_eq!(
        text(&c.cmd_str(&["MEMORY", "MALLOC-STATS"])),
        "Stats not supported for the current allocator"
    );
}
