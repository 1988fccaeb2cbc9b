//! What the replication tests share: a dataset of every type to load on a master, a stream
//! of writes for it, and the checks that a replica holds the same data (DEBUG DIGEST, INFO
//! keyspace, reads of every type).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{Conn, Ferrite, RedisServer, escape, split_aggregate};

/// The servers of the chain and failover tests: DEBUG DIGEST allowed, full resyncs that
/// start at once, and no pings for the length of a test, so that an idle master's offset stays
/// where its replica's is (a failover continues only from an offset the promoted replica had
/// reached).
pub const NODE_ARGS: &[&str] = &[
    "--enable-debug-command",
    "yes",
    "--repl-diskless-sync-delay",
    "0",
    "--repl-ping-replica-period",
    "3600",
];

/// A Ferrite node: two reactor threads, [`NODE_ARGS`].
pub fn ferrite_node(backend: &str) -> Ferrite {
    Ferrite::start(backend, &[&["--threads", "2"], NODE_ARGS].concat())
}

/// `N` redis-server nodes with [`NODE_ARGS`]; None (the test skips) without redis-server.
pub fn redis_nodes<const N: usize>() -> Option<[RedisServer; N]> {
    let nodes: Option<Vec<RedisServer>> =
        (0..N).map(|_| RedisServer::start_with(NODE_ARGS)).collect();
    nodes?.try_into().ok()
}

/// Fifty clients of redis-benchmark (which the caller made sure is installed) writing `n`
/// commands to a few hundred keys of several types at once, pipelined.
pub fn write_load(port: u16, n: &str) {
    let out = std::process::Command::new("redis-benchmark")
        .args(["-p", &port.to_string(), "-c", "50", "-P", "8", "-q"])
        .args(["-t", "set,incr,lpush,rpop,sadd,hset,zadd,lpop"])
        .args(["-n", n, "-r", "300", "-d", "8"])
        .output()
        .expect("run redis-benchmark");
    assert!(out.status.success(), "redis-benchmark: {out:?}");
}

/// How long any one wait for replication may take.
pub const DEADLINE: Duration = Duration::from_secs(10);
/// DEBUG DIGEST of an empty dataset.
pub const ZERO_DIGEST: &str = "0000000000000000000000000000000000000000";

/// Data of every type, in db 0 and db 3, on the master before the replica attaches. Hashes,
/// sets and sorted sets come small and past redis-server 7.0's compact-encoding thresholds
/// (512 entries for hashes and intsets, 64-byte hash values, 128 sorted-set entries), so that
/// the dump holds both RDB types of each.
pub fn load_initial_data(m: &mut Conn) {
    let mut cmds: Vec<Vec<String>> = Vec::new();
    let add = |cmds: &mut Vec<Vec<String>>, args: &[&str]| {
        cmds.push(args.iter().map(|s| s.to_string()).collect())
    };
    add(&mut cmds, &["SET", "str", "hello"]);
    add(&mut cmds, &["SET", "ttl", "expiring", "EX", "1000"]);
    add(&mut cmds, &["SET", "int", "12345"]);
    add(&mut cmds, &["SET", "negint", "-9223372036854775808"]);
    add(&mut cmds, &["SET", "flt", "3.25"]);
    add(&mut cmds, &["SET", "bin", "a\0b\r\nc\u{7f}"]);
    add(&mut cmds, &["SET", "long", &"long-value-".repeat(100)]);
    add(&mut cmds, &["PEXPIREAT", "long", "99999999999999"]);
    add(&mut cmds, &["RPUSH", "list", "a", "b", "c", "1", "2"]);
    let mut big_list = vec!["RPUSH".to_string(), "biglist".to_string()];
    big_list.extend((0..1000).map(|i| format!("item-{i}")));
    cmds.push(big_list);
    add(&mut cmds, &["HSET", "hsmall", "f1", "v1", "f2", "2"]);
    add(&mut cmds, &["HSET", "hlongval", "f", &"x".repeat(100)]);
    let mut big_hash = vec!["HSET".to_string(), "hbig".to_string()];
    big_hash.extend((0..600).flat_map(|i| [format!("field-{i}"), format!("value-{i}")]));
    cmds.push(big_hash);
    add(&mut cmds, &["SADD", "sint", "1", "2", "3", "-7", "100000"]);
    let mut big_set = vec!["SADD".to_string(), "sbig".to_string()];
    big_set.extend((0..600).map(|i| format!("member-{i}")));
    cmds.push(big_set);
    add(
        &mut cmds,
        &[
            "ZADD", "zsmall", "1", "a", "2", "b", "3.5", "c", "-inf", "low",
        ],
    );
    let mut big_zset = vec!["ZADD".to_string(), "zbig".to_string()];
    big_zset.extend((0..200).flat_map(|i| [format!("{}", i as f64 / 3.0), format!("m{i}")]));
    cmds.push(big_zset);
    for i in 1..=10 {
        add(
            &mut cmds,
            &["XADD", "stream", &format!("{i}-1"), "n", &i.to_string()],
        );
    }
    add(&mut cmds, &["XGROUP", "CREATE", "stream", "g1", "0"]);
    add(&mut cmds, &["XGROUP", "CREATE", "stream", "g2", "$"]);
    add(
        &mut cmds,
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "alice",
            "COUNT",
            "3",
            "STREAMS",
            "stream",
            ">",
        ],
    );
    add(&mut cmds, &["XACK", "stream", "g1", "1-1"]);
    add(
        &mut cmds,
        &["PFADD", "hll", "a", "b", "c", "d", "e", "f", "g"],
    );
    add(&mut cmds, &["SELECT", "3"]);
    add(&mut cmds, &["SET", "k3", "v3"]);
    add(&mut cmds, &["SET", "k3ttl", "v", "PX", "5000000"]);
    add(&mut cmds, &["HSET", "h3", "a", "1"]);
    add(&mut cmds, &["RPUSH", "l3", "x", "y"]);
    add(&mut cmds, &["SELECT", "0"]);
    let cmds: Vec<Vec<Vec<u8>>> = cmds
        .into_iter()
        .map(|c| c.into_iter().map(String::into_bytes).collect())
        .collect();
    for (cmd, reply) in cmds.iter().zip(m.pipeline(&cmds, 64)) {
        assert!(
            !reply.starts_with(b"-"),
            "{:?}: {}",
            String::from_utf8_lossy(&cmd[0]),
            escape(&reply)
        );
    }
}

/// Writes on the master once the replica is attached.
pub fn stream_writes(m: &mut Conn) {
    for cmd in [
        &["SET", "str", "hello"][..],
        &["SET", "new", "value"],
        &["INCR", "int"],
        &["INCRBYFLOAT", "flt", "1.5"],
        &["LPUSH", "list", "front"],
        &["RPOP", "biglist"],
        &["HSET", "hsmall", "f3", "v3"],
        &["HDEL", "hbig", "field-7"],
        &["SREM", "sint", "2"],
        &["ZINCRBY", "zsmall", "10", "a"],
        &["EXPIRE", "new", "5000"],
        &["PERSIST", "long"],
        &["DEL", "negint", "missing"],
        &["APPEND", "bin", "-more"],
        &["SETRANGE", "str", "10", "!"],
        &["RENAME", "list", "list2"],
        &["XADD", "stream", "20-1", "n", "20"],
        &["XGROUP", "SETID", "stream", "g2", "5-1"],
        &["PFADD", "hll", "h", "i"],
        &["SET", "short", "v", "PX", "100"],
        &["SELECT", "3"],
        &["SET", "k3", "changed"],
        &["DEL", "h3"],
        &["SELECT", "7"],
        &["SET", "gone1", "1"],
        &["SET", "gone2", "2"],
        &["FLUSHDB"],
        &["SET", "kept7", "1"],
        &["SELECT", "0"],
    ] {
        let reply = m.cmd_str(cmd);
        assert!(!reply.starts_with(b"-"), "{cmd:?}: {}", escape(&reply));
    }
    // Random effects are replicated as what they did.
    let popped = m.cmd_str(&["SPOP", "sbig", "3"]);
    assert!(popped.starts_with(b"*3\r\n"), "SPOP: {}", escape(&popped));
    let big = "0123456789abcdef".repeat(16 * 1024);
    ok(m, &["SET", "bigval", &big]);
    ok(m, &["MULTI"]);
    assert_eq!(m.cmd_str(&["INCR", "counter"]), b"+QUEUED\r\n");
    assert_eq!(m.cmd_str(&["SADD", "txset", "a", "b"]), b"+QUEUED\r\n");
    assert_eq!(m.cmd_str(&["DEL", "str"]), b"+QUEUED\r\n");
    let exec = m.cmd_str(&["EXEC"]);
    assert_eq!(escape(&exec), "*3\\r\\n:1\\r\\n:2\\r\\n:1\\r\\n", "EXEC");
    let script = "redis.call('SET', KEYS[1], ARGV[1]); \
                  redis.call('SPOP', KEYS[3]); \
                  return redis.call('INCR', KEYS[2])";
    let eval = m.cmd_str(&["EVAL", script, "3", "evalkey", "counter", "sint", "scripty"]);
    assert_eq!(eval, b":2\r\n", "EVAL");
    let cmds: Vec<Vec<Vec<u8>>> = (0..500)
        .map(|i| {
            vec![
                b"SET".to_vec(),
                format!("pipelined:{i}").into_bytes(),
                format!("{i}").repeat(i % 7 + 1).into_bytes(),
            ]
        })
        .collect();
    assert!(m.pipeline(&cmds, 100).iter().all(|r| r == b"+OK\r\n"));
    // The short-lived key expires on the master; its access there deletes it and propagates
    // the DEL (a replica never expires keys itself).
    wait_for("the short-lived key to expire on the master", || {
        m.cmd_str(&["EXISTS", "short"]) == b":0\r\n"
    });
}

/// The replica is attached and up, the master counts it online, and the offsets agree.
pub fn wait_in_sync(m: &mut Conn, r: &mut Conn, master_port: u16, replica_port: u16) {
    wait_all_in_sync(m, &mut [(r, replica_port)], master_port);
}

/// Every replica is attached and up, the master counts exactly them online (each by the port
/// it announced with REPLCONF listening-port), and every offset agrees with the master's.
pub fn wait_all_in_sync(m: &mut Conn, replicas: &mut [(&mut Conn, u16)], master_port: u16) {
    for (r, _) in replicas.iter_mut() {
        wait_for("the replica's link to be up", || {
            let i = info(r, "replication");
            field_of(&i, "master_link_status") == "up"
                && field_of(&i, "master_sync_in_progress") == "0"
        });
    }
    let n = replicas.len();
    wait_for(
        &format!("the master to count {n} online replica(s)"),
        || {
            let i = info(m, "replication");
            i.get("connected_slaves") == Some(&n.to_string())
                && (0..n).all(|k| {
                    i.get(&format!("slave{k}"))
                        .is_some_and(|s| s.contains("state=online"))
                })
        },
    );
    for (r, replica_port) in replicas.iter_mut() {
        wait_for("equal replication offsets", || {
            let master_offset = field_of(&info(m, "replication"), "master_repl_offset");
            field_of(&info(r, "replication"), "slave_repl_offset") == master_offset
        });
        let i = info(r, "replication");
        assert_eq!(field_of(&i, "role"), "slave");
        assert_eq!(field_of(&i, "master_host"), "127.0.0.1");
        assert_eq!(field_of(&i, "master_port"), master_port.to_string());
        let listed = info(m, "replication");
        let prefix = format!("ip=127.0.0.1,port={replica_port},state=online,offset=");
        assert!(
            (0..n).any(|k| listed
                .get(&format!("slave{k}"))
                .is_some_and(|s| s.starts_with(&prefix))),
            "the master does not list the replica on port {replica_port}: {listed:?}"
        );
    }
}

/// The replica holds what the master holds: the digest, the keys per database, and replies to
/// reads of each type.
pub fn assert_same_data(m: &mut Conn, r: &mut Conn, when: &str) {
    let want = digest(m);
    assert_ne!(want, ZERO_DIGEST, "{when}: the master has data");
    assert_eq!(digest(r), want, "{when}: DEBUG DIGEST of the replica");
    assert_eq!(
        keyspace(r),
        keyspace(m),
        "{when}: INFO keyspace (keys, expires)"
    );
    for db in ["0", "3"] {
        ok(m, &["SELECT", db]);
        ok(r, &["SELECT", db]);
        assert_eq!(
            escape(&r.cmd_str(&["DBSIZE"])),
            escape(&m.cmd_str(&["DBSIZE"])),
            "{when}: DBSIZE of db {db}"
        );
    }
    ok(m, &["SELECT", "0"]);
    ok(r, &["SELECT", "0"]);
    let reads: &[(&[&str], bool)] = &[
        (&["GET", "str"], false),
        (&["GET", "int"], false),
        (&["GET", "flt"], false),
        (&["GET", "bin"], false),
        (&["GET", "hll"], false),
        (&["GET", "bigval"], false),
        (&["LRANGE", "list", "0", "-1"], false),
        (&["LRANGE", "list2", "0", "-1"], false),
        (&["LRANGE", "biglist", "0", "-1"], false),
        (&["HGETALL", "hsmall"], true),
        (&["HGETALL", "hbig"], true),
        (&["HGETALL", "hlongval"], true),
        (&["HGETALL", "shared"], true),
        (&["SMEMBERS", "sint"], true),
        (&["SMEMBERS", "sbig"], true),
        (&["ZRANGE", "zsmall", "0", "-1", "WITHSCORES"], false),
        (&["ZRANGE", "zbig", "0", "-1", "WITHSCORES"], false),
        (&["XRANGE", "stream", "-", "+"], false),
        (&["XINFO", "GROUPS", "stream"], false),
        (&["XPENDING", "stream", "g1"], false),
        (&["TYPE", "stream"], false),
    ];
    for &(cmd, unordered) in reads {
        let (mut want, mut have) = (m.cmd_str(cmd), r.cmd_str(cmd));
        if unordered {
            want = sort_pairs(&want, cmd[0] == "HGETALL");
            have = sort_pairs(&have, cmd[0] == "HGETALL");
        }
        assert_eq!(escape(&have), escape(&want), "{when}: {cmd:?}");
    }
}

/// The reply, with its elements (pairs of elements if `pairs`) sorted.
pub fn sort_pairs(reply: &[u8], pairs: bool) -> Vec<u8> {
    let Some((header, elems)) = split_aggregate(reply) else {
        return reply.to_vec();
    };
    let mut groups: Vec<Vec<u8>> = elems
        .chunks(if pairs { 2 } else { 1 })
        .map(|c| c.concat())
        .collect();
    groups.sort();
    [header, groups.concat()].concat()
}

/// The master's count of (full, partial) resyncs it served (INFO stats `sync_full`,
/// `sync_partial_ok`).
pub fn syncs(m: &mut Conn) -> (u64, u64) {
    (
        m.info_u64("stats", "sync_full"),
        m.info_u64("stats", "sync_partial_ok"),
    )
}

/// Sends a command that must not answer an error.
pub fn ok(c: &mut Conn, args: &[&str]) {
    let reply = c.cmd_str(args);
    assert!(
        !reply.starts_with(b"-"),
        "{args:?} on port {}: {}",
        c.port,
        escape(&reply)
    );
}

/// An integer reply's value.
pub fn int_reply(reply: &[u8]) -> i64 {
    std::str::from_utf8(reply)
        .ok()
        .and_then(|s| s.strip_prefix(':'))
        .and_then(|s| s.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("not an integer reply: {}", escape(reply)))
}

/// DEBUG DIGEST's 40 hex digits.
pub fn digest(c: &mut Conn) -> String {
    let reply = c.cmd_str(&["DEBUG", "DIGEST"]);
    let s = String::from_utf8_lossy(&reply);
    match s.strip_prefix('+').map(str::trim_end) {
        Some(d) if d.len() == 40 => d.to_string(),
        _ => panic!("DEBUG DIGEST on port {}: {}", c.port, escape(&reply)),
    }
}

/// An INFO section as `name -> value` (lines `name:value`).
pub fn info(c: &mut Conn, section: &str) -> BTreeMap<String, String> {
    let reply = c.cmd_str(&["INFO", section]);
    assert!(
        reply.starts_with(b"$"),
        "INFO {section}: {}",
        escape(&reply)
    );
    String::from_utf8_lossy(&reply)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim_end().to_string()))
        .collect()
}

/// One INFO field, which must be there.
pub fn field_of(info: &BTreeMap<String, String>, name: &str) -> String {
    info.get(name)
        .unwrap_or_else(|| panic!("no {name} in INFO: {info:?}"))
        .clone()
}

/// INFO keyspace as `dbN -> "keys=..,expires=.."` (avg_ttl dropped: it is an estimate).
pub fn keyspace(c: &mut Conn) -> BTreeMap<String, String> {
    info(c, "keyspace")
        .into_iter()
        .map(|(db, v)| {
            let kept: Vec<&str> = v
                .split(',')
                .filter(|f| !f.starts_with("avg_ttl="))
                .collect();
            (db, kept.join(","))
        })
        .collect()
}

/// Polls `cond` every 20 ms until it holds; panics after [`DEADLINE`].
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
