//! Interoperability with redis-server 7.0: each loads the other's AOF directory, and the bytes
//! Ferrite writes are the bytes redis-server writes.

use std::collections::BTreeMap;
use std::fs;
use std::time::Duration;

use redis::{Commands, Value};

use super::common::RedisServer;
use super::{TempDir, client, client_db, copy_dir, incr_file, start, stop};

/// Every key of db 0 with its type and value, for comparing two servers.
pub(crate) fn snapshot(c: &mut redis::Connection) -> BTreeMap<String, String> {
    let keys: Vec<String> = c.keys("*").expect("KEYS");
    let mut out = BTreeMap::new();
    for k in keys {
        let t: String = redis::cmd("TYPE").arg(&k).query(c).expect("TYPE");
        let v: Value = match t.as_str() {
            "string" => redis::cmd("GET").arg(&k).query(c),
            "list" => redis::cmd("LRANGE").arg(&k).arg(0).arg(-1).query(c),
            "hash" => redis::cmd("HGETALL").arg(&k).query(c),
            "set" => redis::cmd("SORT").arg(&k).arg("ALPHA").query(c),
            "zset" => redis::cmd("ZRANGE")
                .arg(&k)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query(c),
            _ => Ok(Value::Nil),
        }
        .expect("read");
        let ttl: i64 = c.ttl(&k).expect("TTL");
        out.insert(k, format!("{t} {v:?} ttl>0:{}", ttl > 0));
    }
    out
}

/// A workload both servers understand, exercising the propagation rewrites.
pub(crate) fn workload(c: &mut redis::Connection) {
    let cmds: &[&[&str]] = &[
        &["SET", "s", "1"],
        &["SET", "ex", "v", "EX", "1000"],
        &["SETEX", "sx", "1000", "v"],
        &["INCR", "s"],
        &["INCRBYFLOAT", "f", "1.5"],
        &["RPUSH", "l", "a", "b", "c", "d"],
        &["LPOP", "l"],
        &["SADD", "set", "a", "b", "c", "d"],
        &["SPOP", "set"],
        &["HSET", "h", "a", "1", "b", "2"],
        &["HINCRBYFLOAT", "h", "a", "0.5"],
        &["ZADD", "z", "1", "a", "2", "b", "3", "c"],
        &["ZPOPMIN", "z"],
        &["EXPIRE", "s", "1000"],
        &["PERSIST", "s"],
        &["GETEX", "l2", "EX", "10"],
        &["SET", "gone", "x"],
        &["GETDEL", "gone"],
        &["SELECT", "2"],
        &["SET", "in2", "x"],
        &["SELECT", "0"],
        &["APPEND", "ap", "xyz"],
        &["SETRANGE", "ap", "1", "Q"],
        &["MSET", "m1", "1", "m2", "2"],
        &["RENAME", "m2", "m3"],
        &["BLPOP", "l", "0"],
    ];
    for cmd in cmds {
        let mut q = redis::cmd(cmd[0]);
        for a in &cmd[1..] {
            q.arg(*a);
        }
        let _: Value = q.query(c).unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    }
    let _: Value = redis::pipe()
        .atomic()
        .set("t1", "a")
        .incr("t2", 5)
        .query(c)
        .expect("MULTI/EXEC");
}

pub(crate) fn redis_loads_ferrite_aof(backend: &str) {
    let dir = TempDir::new("aof-to-redis");
    let s = start(backend, dir.path(), &["--appendfsync", "always"]);
    let mut c = client(s.port);
    workload(&mut c);
    let ours = snapshot(&mut c);
    stop(s, "term");
    let d = dir.path().display().to_string();
    let Some(r) = RedisServer::start_with(&["--appendonly", "yes", "--dir", &d]) else {
        return;
    };
    let mut rc = client(r.port);
    assert_eq!(
        snapshot(&mut rc),
        ours,
        "redis-server loaded Ferrite's AOF differently\n{}",
        r.log()
    );
    let v: Option<String> = redis::cmd("GET")
        .arg("in2")
        .query(&mut client_db(r.port, 2))
        .expect("GET");
    assert_eq!(v.as_deref(), Some("x"));
}

pub(crate) fn ferrite_loads_redis_aof(backend: &str) {
    // An AOF-format base (no RDB preamble), which Ferrite can load.
    let Some(mut r) = RedisServer::start_with(&[
        "--appendonly",
        "yes",
        "--aof-use-rdb-preamble",
        "no",
        "--appendfsync",
        "always",
    ]) else {
        return;
    };
    let mut rc = client(r.port);
    workload(&mut rc);
    let theirs = snapshot(&mut rc);
    let _ = r.terminate(Duration::from_secs(10));
    let dir = TempDir::new("aof-from-redis");
    copy_dir(
        &r.dir().join("appendonlydir"),
        &dir.path().join("appendonlydir"),
    );
    let s = start(backend, dir.path(), &[]);
    let mut c = client(s.port);
    assert_eq!(
        snapshot(&mut c),
        theirs,
        "Ferrite loaded redis-server's AOF differently\n{}",
        s.log()
    );
    stop(s, "term");

    // A base in RDB format (Redis's default) loads too.
    let Some(mut r) = RedisServer::start_with(&["--appendonly", "yes"]) else {
        return;
    };
    let mut rc = client(r.port);
    workload(&mut rc);
    let theirs = snapshot(&mut rc);
    let _ = r.terminate(Duration::from_secs(10));
    let dir = TempDir::new("aof-from-redis-rdb");
    copy_dir(
        &r.dir().join("appendonlydir"),
        &dir.path().join("appendonlydir"),
    );
    let s = start(backend, dir.path(), &[]);
    assert_eq!(
        snapshot(&mut client(s.port)),
        theirs,
        "Ferrite loaded redis-server's RDB-based AOF differently\n{}",
        s.log()
    );
    stop(s, "term");
}

/// The bytes Ferrite writes for the workload are the bytes redis-server 7.0 writes (for the
/// commands whose propagation does not depend on the clock or randomness).
pub(crate) fn propagated_forms_match_redis(backend: &str) {
    let cmds: &[&[&str]] = &[
        &["SET", "a", "1"],
        &["set", "a", "2", "XX", "KEEPTTL"],
        &["SET", "a", "3", "NX"],
        &["DEL", "nothing"],
        &["INCRBYFLOAT", "f", "1.5"],
        &["INCRBYFLOAT", "f", "1.5"],
        &["HINCRBYFLOAT", "h", "x", "2.5"],
        &["SADD", "s", "a"],
        &["SADD", "s", "a"],
        &["RPUSH", "l", "a", "b", "c"],
        &["LMPOP", "1", "l", "LEFT", "COUNT", "2"],
        &["ZADD", "z", "1", "a", "2", "b"],
        &["ZMPOP", "1", "z", "MIN", "COUNT", "5"],
        &["GETDEL", "a"],
        &["GETDEL", "a"],
        &["EXPIRE", "missing", "10"],
        &["PERSIST", "f"],
        &["SET", "e", "1"],
        &["EXPIRE", "e", "0"],
        &["SADD", "one", "only"],
        &["SPOP", "one"],
        &["SADD", "two", "a", "b"],
        &["SPOP", "two", "5"],
        &["RPUSH", "bl", "a", "b", "c", "d", "e"],
        &["BLPOP", "nothing", "bl", "0"],
        &["BRPOP", "bl", "0"],
        &["BRPOPLPUSH", "bl", "bl2", "0"],
        &["BLMOVE", "bl", "bl2", "LEFT", "RIGHT", "0"],
        &["BLMPOP", "0", "1", "bl2", "RIGHT", "COUNT", "9"],
        &["ZADD", "bz", "1", "a", "2", "b", "3", "c"],
        &["BZPOPMIN", "bz", "0"],
        &["BZPOPMAX", "bz", "0"],
        &["BZMPOP", "0", "1", "bz", "MIN"],
        &["SET", "p", "1", "PXAT", "99999999999999", "GET"],
        &["GETEX", "p", "PXAT", "99999999999999"],
        &["GETEX", "p", "PERSIST"],
        &["PEXPIREAT", "p", "1"],
        &["HSET", "hh", "a", "1"],
        &["HSETNX", "hh", "a", "2"],
        &["HDEL", "hh", "a"],
        &["SELECT", "5"],
        &["SET", "in5", "x"],
        &["MOVE", "in5", "6"],
        &["SELECT", "0"],
        &["SWAPDB", "5", "6"],
        &["MULTI"],
        &["SET", "t", "1"],
        &["INCR", "t"],
        &["GET", "t"],
        &["SELECT", "3"],
        &["DEL", "t3"],
        &["SET", "t3", "x"],
        &["EXEC"],
        &["MULTI"],
        &["SET", "t4", "one write"],
        &["GET", "t4"],
        &["EXEC"],
        &["MULTI"],
        &["GET", "t4"],
        &["EXEC"],
        &["SELECT", "0"],
        // Scripts propagate as the commands they ran, MULTI/EXEC around more than one.
        &[
            "EVAL",
            "return redis.call('set', KEYS[1], ARGV[1])",
            "1",
            "sk",
            "v",
        ],
        &[
            "EVAL",
            "redis.call('incr', 'sc') redis.call('incr', 'sc')",
            "0",
        ],
        &["EVAL", "return redis.call('get', 'sk')", "0"],
        &[
            "EVAL",
            "redis.call('select', 2) redis.call('set', 'in2', 'x')",
            "0",
        ],
        &[
            "EVAL",
            "redis.set_repl(redis.REPL_NONE) redis.call('set', 'nr', 1) \
             redis.set_repl(redis.REPL_ALL) redis.call('set', 'r', 2)",
            "0",
        ],
        &[
            "EVAL",
            "redis.call('set', 'sk2', 'x') return redis.pcall('lpush', 'sk2', 1).err",
            "0",
        ],
        &["MULTI"],
        &[
            "EVAL",
            "redis.call('incr', 'sm') redis.call('incr', 'sm')",
            "0",
        ],
        &["SET", "sm2", "y"],
        &["EXEC"],
        // Library changes propagate as they were sent (failed ones not at all: see
        // functions_survive_restarts); a function's writes as a script's.
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=lib\nredis.register_function('fset', function(keys, args) \
             return redis.call('set', keys[1], args[1]) end)",
        ],
        &["FCALL", "fset", "1", "fk", "fv"],
        &[
            "FUNCTION",
            "LOAD",
            "REPLACE",
            "#!lua name=lib\nredis.register_function('fset', function(keys, args) \
             redis.call('set', keys[1], args[1]) redis.call('incr', 'fcount') end)",
        ],
        &["FCALL", "fset", "1", "fk", "fv2"],
        &["FUNCTION", "DELETE", "lib"],
        &["FUNCTION", "FLUSH", "ASYNC"],
        &[
            "GEOADD",
            "g",
            "13.361389",
            "38.115556",
            "Palermo",
            "15.087269",
            "37.502669",
            "Catania",
        ],
        &[
            "GEOADD",
            "g",
            "XX",
            "CH",
            "13.361389",
            "38.115556",
            "Palermo",
        ],
        &["GEOADD", "g", "NX", "1", "1", "m"],
        &["LPUSH", "ll", "a", "b", "c", "a"],
        &["LSET", "ll", "0", "z"],
        &["LINSERT", "ll", "BEFORE", "z", "y"],
        &["LINSERT", "ll", "BEFORE", "nope", "y"],
        &["LREM", "ll", "0", "a"],
        &["LREM", "ll", "0", "nope"],
        &["LTRIM", "ll", "0", "1"],
        &["LPUSHX", "missing", "a"],
        &["RPOPLPUSH", "ll", "ll2"],
        &["LMOVE", "ll", "ll2", "LEFT", "LEFT"],
        &["SETRANGE", "sr", "0", ""],
        &["SETRANGE", "sr", "2", "ab"],
        &["SETBIT", "bits", "7", "1"],
        &["SETBIT", "bits", "7", "1"],
        &["BITOP", "OR", "dest", "bits", "sr"],
        &["BITFIELD", "bf", "SET", "u8", "0", "255", "GET", "u8", "0"],
        &["PFADD", "hll", "a", "b"],
        &["PFADD", "hll", "a"],
        &["PFMERGE", "hll2", "hll"],
        &["SADD", "sa", "1", "2", "3"],
        &["SADD", "sb", "3", "4"],
        &["SMOVE", "sa", "sb", "1"],
        &["SMOVE", "sa", "sb", "nope"],
        &["SINTERSTORE", "sd", "sa", "sb"],
        &["SINTERSTORE", "empty", "sa", "nothing"],
        &["SUNIONSTORE", "su", "sa", "sb"],
        &["SDIFFSTORE", "sf", "sa", "sb"],
        &["SREM", "sa", "nope"],
        &["ZADD", "za", "1", "a", "2", "b", "3", "c"],
        &["ZINCRBY", "za", "5", "a"],
        &["ZREM", "za", "nope"],
        &["ZREMRANGEBYSCORE", "za", "0", "2"],
        &["ZRANGESTORE", "zr", "za", "0", "-1"],
        &["ZUNIONSTORE", "zu", "2", "za", "zr"],
        &["ZPOPMAX", "zu", "2"],
        &["HSET", "hm", "a", "1"],
        &["HMSET", "hm", "b", "2"],
        &["HDEL", "hm", "nope"],
        &["HINCRBY", "hm", "a", "3"],
        &["GETSET", "gs", "1"],
        &["SETNX", "gs", "2"],
        &["MSETNX", "gs", "3", "new", "4"],
        &["RENAMENX", "gs", "hm"],
        &["COPY", "gs", "gs2"],
        &["UNLINK", "gs2", "nothing"],
        &["DEL", "gs", "nothing"],
        &["INCRBY", "cnt", "5"],
        &["DECRBY", "cnt", "2"],
        &["SORT", "ll2", "ALPHA", "STORE", "sorted"],
        &["EXPIREAT", "cnt", "99999999999"],
        &["EXPIREAT", "cnt", "99999999998", "XX"],
        &["EXPIRE", "cnt", "10", "NX"],
        &["PERSIST", "cnt"],
        // Streams: generated IDs and approximate trims are written as they turned out; the
        // group commands whose forms carry times are given explicit ones.
        &["XADD", "xs", "1-1", "f", "v"],
        &["XADD", "xs", "1-*", "f", "w"],
        &[
            "XADD", "xs", "MAXLEN", "~", "1", "LIMIT", "5", "2-*", "n", "1",
        ],
        &[
            "XADD",
            "xs",
            "NOMKSTREAM",
            "MINID",
            "=",
            "1-2",
            "3-0",
            "n",
            "2",
        ],
        &["XADD", "nostream", "NOMKSTREAM", "5-*", "f", "v"],
        &["XTRIM", "xs", "MAXLEN", "=", "10"],
        &["XDEL", "xs", "1-2", "9-9"],
        &["XGROUP", "CREATE", "xs", "g", "0"],
        &[
            "XGROUP",
            "CREATE",
            "xm",
            "g",
            "$",
            "MKSTREAM",
            "ENTRIESREAD",
            "0",
        ],
        &["XGROUP", "CREATECONSUMER", "xs", "g", "carol"],
        &["XGROUP", "CREATECONSUMER", "xs", "g", "carol"],
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "bob",
            "NOACK",
            "COUNT",
            "1",
            "STREAMS",
            "xs",
            ">",
        ],
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "bob",
            "NOACK",
            "STREAMS",
            "xs",
            ">",
        ],
        &[
            "XCLAIM",
            "xs",
            "g",
            "alice",
            "0",
            "2-0",
            "TIME",
            "1000",
            "RETRYCOUNT",
            "4",
            "FORCE",
        ],
        &[
            "XCLAIM",
            "xs",
            "g",
            "dave",
            "0",
            "2-0",
            "3-0",
            "TIME",
            "2000",
            "RETRYCOUNT",
            "7",
            "JUSTID",
        ],
        &["XACK", "xs", "g", "2-0", "5-5"],
        &["XGROUP", "SETID", "xs", "g", "1-0", "ENTRIESREAD", "1"],
        &["XGROUP", "DELCONSUMER", "xs", "g", "carol"],
        &["XGROUP", "DESTROY", "xs", "g"],
        &["XTRIM", "xs", "MAXLEN", "~", "0"],
        &[
            "XSETID",
            "xs",
            "10-0",
            "ENTRIESADDED",
            "20",
            "MAXDELETEDID",
            "9-0",
        ],
        &["FLUSHDB"],
        &["SET", "y", "1"],
        &["FLUSHALL"],
    ];
    let run = |port: u16| {
        let mut c = client(port);
        for cmd in cmds {
            let mut q = redis::cmd(cmd[0]);
            for a in &cmd[1..] {
                q.arg(*a);
            }
            let _: Value = q.query(&mut c).unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        }
    };
    let dir = TempDir::new("aof-forms");
    let s = start(backend, dir.path(), &["--appendfsync", "always"]);
    run(s.port);
    stop(s, "term");
    let ours = fs::read(incr_file(dir.path())).expect("ours");
    let Some(mut r) = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"])
    else {
        return;
    };
    run(r.port);
    let _ = r.terminate(Duration::from_secs(10));
    let theirs = fs::read(r.dir().join("appendonlydir/appendonly.aof.1.incr.aof")).expect("theirs");
    assert_eq!(
        String::from_utf8_lossy(&ours),
        String::from_utf8_lossy(&theirs),
        "Ferrite's AOF differs from redis-server's"
    );
}

/// The libraries a server has, with their code, sorted (each has one function, so a library's
/// own reply has one order).
fn libraries(c: &mut redis::Connection) -> Vec<String> {
    let list: Value = redis::cmd("FUNCTION")
        .arg("LIST")
        .arg("WITHCODE")
        .query(c)
        .expect("FUNCTION LIST");
    let Value::Array(libs) = list else {
        panic!("FUNCTION LIST: {list:?}");
    };
    let mut out: Vec<String> = libs.iter().map(|l| format!("{l:?}")).collect();
    out.sort();
    out
}

/// Waits until `n` rewrites have been done and none is running.
fn wait_rewrites(c: &mut redis::Connection, n: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let info: String = redis::cmd("INFO")
            .arg("persistence")
            .query(c)
            .expect("INFO");
        if info.contains(&format!("aof_rewrites:{n}\r\n"))
            && info.contains("aof_rewrite_in_progress:0")
            && info.contains("aof_rewrite_scheduled:0")
        {
            assert!(info.contains("aof_last_bgrewrite_status:ok"), "{info}");
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{info}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Function libraries come back after a restart from the AOF, from a rewritten AOF (RDB
/// preamble or commands), and in redis-server from Ferrite's AOF; a failed FUNCTION LOAD
/// leaves nothing behind.
pub(crate) fn functions_survive_restarts(backend: &str) {
    let dir = TempDir::new("aof-functions");
    let s = start(backend, dir.path(), &["--appendfsync", "always"]);
    let mut c = client(s.port);
    let load = |c: &mut redis::Connection, code: &str| -> redis::RedisResult<String> {
        redis::cmd("FUNCTION").arg("LOAD").arg(code).query(c)
    };
    load(
        &mut c,
        "#!lua name=a\nredis.register_function('aset', function(keys, args) \
         return redis.call('set', keys[1], args[1]) end)",
    )
    .expect("load a");
    assert!(load(&mut c, "#!lua name=bad\nerror('never loaded')").is_err());
    load(
        &mut c,
        "#!lua name=b\nredis.register_function('bf', function() return 'b' end)",
    )
    .expect("load b");
    let _: () = redis::cmd("FUNCTION")
        .arg("DELETE")
        .arg("b")
        .query(&mut c)
        .expect("delete b");
    load(
        &mut c,
        "#!lua name=c\nredis.register_function{function_name='cf', \
         callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}}",
    )
    .expect("load c");
    let _: () = redis::cmd("FCALL")
        .arg("aset")
        .arg(1)
        .arg("k")
        .arg("v")
        .query(&mut c)
        .expect("FCALL");
    let before = libraries(&mut c);
    assert_eq!(before.len(), 2, "{before:?}");
    let check = |port: u16, what: &str| {
        let mut c = client(port);
        assert_eq!(libraries(&mut c), before, "{what}");
        let v: String = redis::cmd("FCALL_RO")
            .arg("cf")
            .arg(1)
            .arg("k")
            .query(&mut c)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(v, "v", "{what}");
    };
    stop(s, "term");
    let aof = fs::read(incr_file(dir.path())).expect("incr file");
    assert!(
        !String::from_utf8_lossy(&aof).contains("never loaded"),
        "a failed FUNCTION LOAD reached the AOF"
    );

    let s = start(backend, dir.path(), &[]);
    check(s.port, "after a restart from the AOF");
    let mut c = client(s.port);
    let _: String = redis::cmd("BGREWRITEAOF").query(&mut c).expect("rewrite");
    wait_rewrites(&mut c, 1);
    stop(s, "term");
    let s = start(backend, dir.path(), &[]);
    check(s.port, "after a rewrite with an RDB preamble");
    let mut c = client(s.port);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("aof-use-rdb-preamble")
        .arg("no")
        .query(&mut c)
        .expect("CONFIG SET");
    let _: String = redis::cmd("BGREWRITEAOF").query(&mut c).expect("rewrite");
    wait_rewrites(&mut c, 1);
    stop(s, "term");
    let s = start(backend, dir.path(), &["--aof-use-rdb-preamble", "no"]);
    check(s.port, "after a rewrite as commands");
    stop(s, "term");

    let d = dir.path().display().to_string();
    let Some(r) = RedisServer::start_with(&["--appendonly", "yes", "--dir", &d]) else {
        return;
    };
    check(r.port, "redis-server on Ferrite's AOF");
}
