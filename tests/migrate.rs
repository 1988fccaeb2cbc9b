//! MIGRATE against redis-server 7.0.15: the same steps run with redis-server and with Ferrite
//! as the source, each moving keys into a fresh redis-server target, and every reply (the
//! source's and the target's) is compared byte for byte: single keys and KEYS, COPY and
//! REPLACE, a refusing target (BUSYKEY, NOAUTH), AUTH / AUTH2, another database, missing keys,
//! a dead target, argument errors. Also Ferrite to Ferrite, and a MIGRATE that survives a
//! restart of an AOF source as the DEL it is propagated as. Both backends.

mod common;

use common::{Conn, Ferrite, RedisServer, TempDir, free_port};

per_backend!(migrate_matches_redis, migrate_is_a_del_in_the_aof);

/// Runs the steps with `source` moving keys into `target`; every reply, labelled.
fn scenario(source: u16, target: u16) -> Vec<(String, Vec<u8>)> {
    let mut t = Vec::new();
    let (mut s, mut d) = (Conn::connect(source), Conn::connect(target));
    let tport = target.to_string();
    let dead = free_port().to_string();
    let migrate = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["MIGRATE", "127.0.0.1", &tport]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let steps: Vec<(&str, bool, Vec<String>)> = vec![
        ("set a", true, vec!["SET".into(), "a".into(), "1".into()]),
        (
            "push l",
            true,
            vec!["RPUSH".into(), "l".into(), "x".into(), "y".into()],
        ),
        (
            "set e",
            true,
            vec![
                "SET".into(),
                "e".into(),
                "v".into(),
                "EX".into(),
                "1000".into(),
            ],
        ),
        (
            "hset h",
            true,
            vec!["HSET".into(), "h".into(), "f".into(), "v".into()],
        ),
        (
            "zadd z",
            true,
            vec!["ZADD".into(), "z".into(), "1.5".into(), "m".into()],
        ),
        ("one key", true, migrate(&["a", "0", "5000"])),
        ("a left", true, vec!["EXISTS".into(), "a".into()]),
        ("a arrived", false, vec!["GET".into(), "a".into()]),
        (
            "keys",
            true,
            migrate(&["", "0", "5000", "KEYS", "l", "e", "nokey"]),
        ),
        (
            "l left",
            true,
            vec!["EXISTS".into(), "l".into(), "e".into()],
        ),
        (
            "l arrived",
            false,
            vec!["LRANGE".into(), "l".into(), "0".into(), "-1".into()],
        ),
        // PERSIST answers 1 only for a key with a TTL (the TTL's value depends on the moment).
        ("e kept its ttl", false, vec!["PERSIST".into(), "e".into()]),
        ("copy", true, migrate(&["h", "0", "5000", "COPY"])),
        ("h stays", true, vec!["HGETALL".into(), "h".into()]),
        ("busy key", true, migrate(&["h", "0", "5000"])),
        ("h still here", true, vec!["EXISTS".into(), "h".into()]),
        ("replace", true, migrate(&["h", "0", "5000", "REPLACE"])),
        ("h left", true, vec!["EXISTS".into(), "h".into()]),
        ("other db", true, migrate(&["z", "3", "5000"])),
        ("select 3", false, vec!["SELECT".into(), "3".into()]),
        (
            "z in db 3",
            false,
            vec![
                "ZRANGE".into(),
                "z".into(),
                "0".into(),
                "-1".into(),
                "WITHSCORES".into(),
            ],
        ),
        ("select 0", false, vec!["SELECT".into(), "0".into()]),
        ("no key", true, migrate(&["nokey", "0", "5000"])),
        (
            "keys, none",
            true,
            migrate(&["", "0", "5000", "KEYS", "n1", "n2"]),
        ),
        (
            "keys with a key",
            true,
            migrate(&["a", "0", "5000", "KEYS", "b"]),
        ),
        ("bad timeout", true, migrate(&["a", "0", "abc"])),
        ("bad db", true, migrate(&["a", "x", "5000"])),
        ("bad option", true, migrate(&["a", "0", "5000", "NOSUCH"])),
        (
            "auth without password",
            true,
            migrate(&["a", "0", "5000", "AUTH"]),
        ),
        (
            "auth2 short",
            true,
            migrate(&["a", "0", "5000", "AUTH2", "u"]),
        ),
        ("set b", true, vec!["SET".into(), "b".into(), "2".into()]),
        (
            "dead target",
            true,
            vec![
                "MIGRATE".into(),
                "127.0.0.1".into(),
                dead,
                "b".into(),
                "0".into(),
                "1000".into(),
            ],
        ),
        ("b still here", true, vec!["EXISTS".into(), "b".into()]),
        (
            "target password",
            false,
            vec![
                "CONFIG".into(),
                "SET".into(),
                "requirepass".into(),
                "pw".into(),
            ],
        ),
        ("no auth", true, migrate(&["b", "0", "5000"])),
        (
            "wrong auth",
            true,
            migrate(&["b", "0", "5000", "AUTH", "nope"]),
        ),
        ("auth", true, migrate(&["b", "0", "5000", "AUTH", "pw"])),
        ("set c", true, vec!["SET".into(), "c".into(), "3".into()]),
        (
            "auth2",
            true,
            migrate(&["c", "0", "5000", "AUTH2", "default", "pw"]),
        ),
        ("target login", false, vec!["AUTH".into(), "pw".into()]),
        (
            "b and c arrived",
            false,
            vec!["MGET".into(), "b".into(), "c".into()],
        ),
        (
            "target password off",
            false,
            vec![
                "CONFIG".into(),
                "SET".into(),
                "requirepass".into(),
                "".into(),
            ],
        ),
        ("source empty", true, vec!["DBSIZE".into()]),
        ("hits and misses", true, vec!["INFO".into(), "stats".into()]),
    ];
    for (label, on_source, cmd) in steps {
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let c = if on_source { &mut s } else { &mut d };
        let mut reply = c.cmd_str(&args);
        if label == "hits and misses" {
            // Only the lookups' counters of INFO stats.
            let text = String::from_utf8_lossy(&reply).into_owned();
            reply = text
                .lines()
                .filter(|l| l.starts_with("keyspace_"))
                .collect::<Vec<_>>()
                .join(",")
                .into_bytes();
        }
        t.push((label.to_string(), reply));
    }
    t
}

fn migrate_matches_redis(backend: &str) {
    let Some(redis_source) = RedisServer::start() else {
        return;
    };
    let Some(target_a) = RedisServer::start() else {
        return;
    };
    let Some(target_b) = RedisServer::start() else {
        return;
    };
    let ferrite = Ferrite::start(backend, &["--threads", "2"]);
    let want = scenario(redis_source.port, target_a.port);
    let have = scenario(ferrite.port, target_b.port);
    common::assert_same_transcript(&ferrite.name, &want, &have);
    // Ferrite as the target too: the same replies as redis-server's target gave.
    let ferrite_target = Ferrite::start(backend, &["--threads", "2"]);
    let source = Ferrite::start(backend, &["--threads", "2"]);
    let both = scenario(source.port, ferrite_target.port);
    common::assert_same_transcript(&format!("{} to ferrite", ferrite.name), &want, &both);
}

fn migrate_is_a_del_in_the_aof(backend: &str) {
    let Some(target) = RedisServer::start() else {
        return;
    };
    let dir = TempDir::new("migrate-aof");
    let mut f = Ferrite::start_aof_in(backend, dir.path(), &[]).unwrap();
    let mut c = f.conn();
    c.cmd_str(&["SET", "moved", "1"]);
    c.cmd_str(&["SET", "copied", "2"]);
    c.cmd_str(&["SET", "kept", "3"]);
    let port = target.port.to_string();
    assert_eq!(
        c.cmd_str(&["MIGRATE", "127.0.0.1", &port, "moved", "0", "5000"]),
        b"+OK\r\n"
    );
    assert_eq!(
        c.cmd_str(&["MIGRATE", "127.0.0.1", &port, "copied", "0", "5000", "COPY"]),
        b"+OK\r\n"
    );
    drop(c);
    f.terminate(std::time::Duration::from_secs(10));
    let f = Ferrite::start_aof_in(backend, dir.path(), &[]).unwrap();
    let mut c = f.conn();
    assert_eq!(
        c.cmd_str(&["EXISTS", "moved"]),
        b":0\r\n",
        "the migrated key stays gone"
    );
    assert_eq!(
        c.cmd_str(&["MGET", "copied", "kept"]),
        b"*2\r\n$1\r\n2\r\n$1\r\n3\r\n"
    );
    // The target got each key once: the AOF replays no MIGRATE.
    let mut t = Conn::connect(target.port);
    assert_eq!(
        t.cmd_str(&["MGET", "moved", "copied"]),
        b"*2\r\n$1\r\n1\r\n$1\r\n2\r\n"
    );
}
