//! ACL against redis-server 7.0.15 where one connection is not enough: failed AUTH and HELLO
//! AUTH attempts are logged with Redis's fields, grouped (a repeat within a minute counts into
//! its entry and moves it to the front), trimmed to `acllog-max-len`, and reset; denied
//! commands, keys and channels are logged with their context (`toplevel`, `multi`, `lua`); a
//! transaction whose user lost permissions while it was queued fails command by command at
//! EXEC; deleting a user closes its connections. Compared field by field: `age-seconds` and the
//! addresses in `client-info` differ between the servers.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Conn, Ferrite, RedisServer, Server, TempDir, escape, ferrite_bin, free_port};

per_backend!(
    failed_authentications_are_logged_as_redis_logs_them,
    denials_exec_rechecks_and_deleted_users_as_in_redis,
    users_from_redis_conf_and_acl_files_as_in_redis,
    subscribers_losing_channels_are_closed_as_in_redis,
    a_connection_that_never_authenticated_is_bound_again_as_in_redis,
    descriptions_choose_the_categories_redis_chooses
);

/// One ACL LOG entry's fields, in order, with the ones that cannot match reduced to their
/// shape (`age-seconds` a number, `client-info` its `cmd=` and `user=` fields).
fn entries(reply: &[u8]) -> Vec<Vec<String>> {
    let (_, items) = common::split_aggregate(reply).expect("ACL LOG is an array");
    items
        .iter()
        .map(|item| {
            let (_, fields) = common::split_aggregate(item).expect("an entry is an array");
            let text: Vec<String> = fields
                .iter()
                .map(|f| {
                    let s = String::from_utf8_lossy(f).into_owned();
                    match s.split_once("\r\n") {
                        Some((head, body)) if head.starts_with('$') => body.trim_end().to_string(),
                        _ => s.trim_end().to_string(),
                    }
                })
                .collect();
            text.chunks(2)
                .flat_map(|kv| {
                    let value = match kv[0].as_str() {
                        "age-seconds" => {
                            assert!(kv[1].parse::<f64>().is_ok(), "age {}", kv[1]);
                            "<age>".to_string()
                        }
                        "client-info" => kv[1]
                            .split(' ')
                            .filter(|f| f.starts_with("cmd=") || f.starts_with("user="))
                            .collect::<Vec<_>>()
                            .join(" "),
                        _ => kv[1].clone(),
                    };
                    [kv[0].clone(), value]
                })
                .collect()
        })
        .collect()
}

fn failed_authentications_are_logged_as_redis_logs_them(backend: &str) {
    let Some((logs, name)) = on_both(backend, |port| {
        let mut admin = Conn::connect(port);
        let mut steps = Vec::new();
        steps.push(admin.cmd_str(&["CONFIG", "SET", "requirepass", "secret"]));
        steps.push(admin.cmd_str(&["ACL", "LOG", "RESET"]));
        let mut c = Conn::connect(port);
        steps.push(c.cmd_str(&["AUTH", "wrong"]));
        steps.push(c.cmd_str(&["AUTH", "bob", "wrong"]));
        steps.push(c.cmd_str(&["AUTH", "wrong2"]));
        steps.push(c.cmd_str(&["HELLO", "2", "AUTH", "default", "bad"]));
        steps.push(c.cmd_str(&["AUTH", "secret"]));
        let first = admin.cmd_str(&["ACL", "LOG"]);
        let one = admin.cmd_str(&["ACL", "LOG", "1"]);
        steps.push(admin.cmd_str(&["CONFIG", "SET", "acllog-max-len", "1"]));
        steps.push(c.cmd_str(&["AUTH", "carol", "x"]));
        let trimmed = admin.cmd_str(&["ACL", "LOG"]);
        steps.push(admin.cmd_str(&["ACL", "LOG", "RESET"]));
        steps.push(admin.cmd_str(&["ACL", "LOG"]));
        steps.push(admin.cmd_str(&["CONFIG", "SET", "acllog-max-len", "128"]));
        steps.push(admin.cmd_str(&["CONFIG", "SET", "requirepass", ""]));
        (steps, entries(&first), entries(&one), entries(&trimmed))
    }) else {
        return;
    };
    let (want, have) = (&logs[0], &logs[1]);
    for (i, (w, h)) in want.0.iter().zip(&have.0).enumerate() {
        assert_eq!(escape(h), escape(w), "{}: step {i}", name);
    }
    assert_eq!(have.1, want.1, "{}: ACL LOG", name);
    assert_eq!(have.2, want.2, "{}: ACL LOG 1", name);
    assert_eq!(have.3, want.3, "{}: ACL LOG after trimming", name);
    assert_eq!(
        want.1.len(),
        3,
        "three groups: default/auth, bob, default/hello"
    );
}

fn denials_exec_rechecks_and_deleted_users_as_in_redis(backend: &str) {
    let Some((runs, name)) = on_both(backend, |port| {
        let mut admin = Conn::connect(port);
        let mut steps = Vec::new();
        let mut step = |r: Vec<u8>| steps.push(escape(&r));
        step(admin.cmd_str(&[
            "ACL", "SETUSER", "m", "on", "nopass", "~*", "&*", "+multi", "+exec", "+set", "+get",
            "+publish", "+eval", "+ping",
        ]));
        let mut c = Conn::connect(port);
        step(c.cmd_str(&["AUTH", "m", "x"]));
        step(c.cmd_str(&["MULTI"]));
        step(c.cmd_str(&["SET", "k", "v"]));
        step(c.cmd_str(&["GET", "k"]));
        step(c.cmd_str(&["PUBLISH", "c", "m"]));
        step(c.cmd_str(&["GET", "z1"]));
        step(admin.cmd_str(&[
            "ACL",
            "SETUSER",
            "m",
            "-set",
            "resetchannels",
            "resetkeys",
            "~z*",
        ]));
        step(c.cmd_str(&["EXEC"]));
        step(c.cmd_str(&["DEL", "z1"]));
        step(c.cmd_str(&["EVAL", "return redis.call('publish','c','m')", "0"]));
        step(c.cmd_str(&["EVAL", "return redis.pcall('get','k')", "0"]));
        step(c.cmd_str(&["EVAL", "return redis.acl_check_cmd('get','k')", "0"]));
        step(c.cmd_str(&["EVAL", "return redis.acl_check_cmd('get','z1')", "0"]));
        let log = entries(&admin.cmd_str(&["ACL", "LOG"]));
        step(admin.cmd_str(&["ACL", "DELUSER", "m"]));
        // The deleted user's connection is closed.
        c.send(&[b"PING"]);
        let closed = c.try_read_reply().is_err();
        step(admin.cmd_str(&["ACL", "LOG", "RESET"]));
        (steps, log, closed)
    }) else {
        return;
    };
    let (want, have) = (&runs[0], &runs[1]);
    for (i, (w, h)) in want.0.iter().zip(&have.0).enumerate() {
        assert_eq!(h, w, "{}: step {i}", name);
    }
    assert_eq!(have.1, want.1, "{}: ACL LOG", name);
    assert!(want.2, "redis-server closes a deleted user's connection");
    assert_eq!(have.2, want.2, "{}: the deleted user's connection", name);
}

/// Runs `scenario` with the port of a redis-server, then with that of a Ferrite on `backend`
/// (two threads): their results in that order, and Ferrite's name. None where redis-server is
/// missing (outside CI).
fn on_both<T>(backend: &str, scenario: impl Fn(u16) -> T) -> Option<(Vec<T>, String)> {
    let redis = RedisServer::start()?;
    let ferrite = Ferrite::start(backend, &["--threads", "2"]);
    let runs = vec![scenario(redis.port), scenario(ferrite.port)];
    Some((runs, ferrite.name.clone()))
}

/// `bin conf args...` in `dir` (its working directory and `dir`) on a free port.
fn start_with_conf(bin: &Path, name: &str, dir: &Path, conf: &str, args: &[&str]) -> Server {
    let port = free_port();
    let mut cmd = Command::new(bin);
    cmd.arg(conf)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .arg("--dir")
        .arg(dir)
        .args(args)
        .current_dir(dir);
    let log_dir = TempDir::new("acl-conf-log");
    Server::spawn(cmd, port, name.to_string(), log_dir).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `user` lines in redis.conf, CONFIG REWRITE of the users, and an `aclfile` with ACL SAVE and
/// ACL LOAD (a bad file changes nothing and names its errors), on redis-server and Ferrite.
fn users_from_redis_conf_and_acl_files_as_in_redis(backend: &str) {
    if !common::require_tool("redis-server") {
        return;
    }
    let conf = "user alice on >pw ~k* &* +@string\nuser default on nopass ~* &* +@all -flushall\n";
    let acl_file = "user default on nopass ~* &* +@all\nuser carol on #2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881 ~c* resetchannels -@all +@hash\n";
    let mut runs = Vec::new();
    let ferrite_args = ["--io-backend", backend, "--threads", "2"];
    for (bin, args) in [
        (Path::new("redis-server").to_path_buf(), &[][..]),
        (ferrite_bin(), &ferrite_args[..]),
    ] {
        let mut steps = Vec::new();
        let dir = TempDir::new("acl-conf");
        std::fs::write(dir.path().join("s.conf"), conf).unwrap();
        let s = start_with_conf(&bin, "server", dir.path(), "s.conf", args);
        let mut c = Conn::connect(s.port);
        steps.push(c.cmd_str(&["ACL", "LIST"]));
        steps.push(c.cmd_str(&["FLUSHALL"]));
        steps.push(c.cmd_str(&["AUTH", "alice", "pw"]));
        steps.push(c.cmd_str(&["SET", "k1", "v"]));
        steps.push(c.cmd_str(&["SET", "x", "v"]));
        steps.push(c.cmd_str(&["AUTH", "default", "x"]));
        steps.push(c.cmd_str(&["ACL", "SETUSER", "bob", "on", ">b", "+@read", "~*"]));
        steps.push(c.cmd_str(&["CONFIG", "REWRITE"]));
        let rewritten = std::fs::read_to_string(dir.path().join("s.conf")).unwrap();
        let users: Vec<String> = rewritten
            .lines()
            .filter(|l| l.starts_with("user "))
            .map(str::to_owned)
            .collect();
        drop(c);
        drop(s);
        // An ACL file.
        let acl_dir = TempDir::new("acl-file");
        std::fs::write(acl_dir.path().join("users.acl"), acl_file).unwrap();
        std::fs::write(acl_dir.path().join("a.conf"), "aclfile users.acl\n").unwrap();
        let s = start_with_conf(&bin, "server", acl_dir.path(), "a.conf", args);
        let mut c = Conn::connect(s.port);
        steps.push(c.cmd_str(&["ACL", "LIST"]));
        steps.push(c.cmd_str(&["AUTH", "carol", "x"]));
        steps.push(c.cmd_str(&["HSET", "c1", "f", "v"]));
        steps.push(c.cmd_str(&["AUTH", "default", "x"]));
        steps.push(c.cmd_str(&["ACL", "SETUSER", "dave", "on", "nopass", "+get", "~d*"]));
        steps.push(c.cmd_str(&["ACL", "SAVE"]));
        let saved = std::fs::read_to_string(acl_dir.path().join("users.acl")).unwrap();
        std::fs::write(
            acl_dir.path().join("users.acl"),
            "user erin on bogus\nnot a user line\nuser erin off\n",
        )
        .unwrap();
        steps.push(c.cmd_str(&["ACL", "LOAD"]));
        steps.push(c.cmd_str(&["ACL", "USERS"]));
        std::fs::write(
            acl_dir.path().join("users.acl"),
            "user frank on nopass +ping\n",
        )
        .unwrap();
        steps.push(c.cmd_str(&["ACL", "LOAD"]));
        steps.push(c.cmd_str(&["ACL", "LIST"]));
        std::fs::remove_file(acl_dir.path().join("users.acl")).unwrap();
        steps.push(c.cmd_str(&["ACL", "LOAD"]));
        runs.push((steps, users, saved));
    }
    let (want, have) = (&runs[0], &runs[1]);
    // The scenario does what it means to on redis-server: alice and carol authenticate.
    assert_eq!(want.0[2], b"+OK\r\n");
    assert_eq!(want.0[9], b"+OK\r\n");
    assert_eq!(want.1.len(), 3, "{:?}", want.1);
    for (i, (w, h)) in want.0.iter().zip(&have.0).enumerate() {
        assert_eq!(escape(h), escape(w), "{backend}: step {i}");
    }
    assert_eq!(have.1, want.1, "{backend}: CONFIG REWRITE's user lines");
    assert_eq!(have.2, want.2, "{backend}: ACL SAVE's file");
}

/// ACL SETUSER that takes channels away closes the user's subscribers whose channels or
/// patterns are no longer allowed (a pattern must be allowed letter for letter), and only those.
fn subscribers_losing_channels_are_closed_as_in_redis(backend: &str) {
    let Some((runs, name)) = on_both(backend, |port| {
        let mut admin = Conn::connect(port);
        let mut steps = Vec::new();
        steps.push(admin.cmd_str(&[
            "ACL",
            "SETUSER",
            "s",
            "on",
            "nopass",
            "+@pubsub",
            "+ping",
            "resetchannels",
            "&a*",
            "&b",
        ]));
        let subscribe = |args: &[&str]| {
            let mut c = Conn::connect(port);
            assert_eq!(c.cmd_str(&["AUTH", "s", "x"]), b"+OK\r\n");
            let reply = c.cmd_str(args);
            assert!(!reply.starts_with(b"-"), "{args:?}: {}", escape(&reply));
            c
        };
        let mut on_channel = subscribe(&["SUBSCRIBE", "ab"]);
        let mut on_pattern = subscribe(&["PSUBSCRIBE", "a*"]);
        let mut on_b = subscribe(&["SUBSCRIBE", "b"]);
        // Adding a channel keeps everyone; taking `a*` away leaves `ab` (matched by `a?`) but
        // not the `a*` pattern, nor `b`.
        steps.push(admin.cmd_str(&["ACL", "SETUSER", "s", "&c"]));
        steps.push(admin.cmd_str(&["ACL", "SETUSER", "s", "resetchannels", "&a?", "&c"]));
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut alive = Vec::new();
        for c in [&mut on_channel, &mut on_pattern, &mut on_b] {
            c.send(&[b"PING"]);
            alive.push(c.try_read_reply().is_ok());
        }
        (steps, alive)
    }) else {
        return;
    };
    assert_eq!(runs[0].1, vec![true, false, false], "redis-server");
    assert_eq!(runs[1], runs[0], "{}", name);
}

/// Redis decides per command whether a connection must authenticate: one opened while a
/// password was set may run commands while none is set (though HELLO still says it never
/// authenticated), and must authenticate again once one is.
fn a_connection_that_never_authenticated_is_bound_again_as_in_redis(backend: &str) {
    let Some((runs, name)) = on_both(backend, |port| {
        let mut admin = Conn::connect(port);
        let mut steps = Vec::new();
        steps.push(admin.cmd_str(&["CONFIG", "SET", "requirepass", "pw"]));
        let mut c = Conn::connect(port);
        steps.push(c.cmd_str(&["GET", "k"]));
        steps.push(admin.cmd_str(&["CONFIG", "SET", "requirepass", ""]));
        steps.push(c.cmd_str(&["GET", "k"]));
        steps.push(c.cmd_str(&["HELLO", "2"]));
        steps.push(admin.cmd_str(&["CONFIG", "SET", "requirepass", "pw"]));
        steps.push(c.cmd_str(&["GET", "k"]));
        steps.push(c.cmd_str(&["AUTH", "pw"]));
        steps.push(c.cmd_str(&["CONFIG", "SET", "requirepass", ""]));
        steps.push(c.cmd_str(&["GET", "k"]));
        steps.iter().map(|r| escape(r)).collect::<Vec<_>>()
    }) else {
        return;
    };
    assert_eq!(runs[1], runs[0], "{}", name);
}

/// ACL GETUSER's `commands` for rules whose description needs several single-command rules:
/// the category rules must be Redis's, in Redis's order; the single-command rules the same set
/// (Redis writes them in the order of its command hash table, random per process).
fn descriptions_choose_the_categories_redis_chooses(backend: &str) {
    let rule_sets: &[&[&str]] = &[
        &["-@all", "+@read", "+@write", "-@dangerous"],
        &["+@all", "-@read", "-@write"],
        &["-@all", "+@keyspace", "+@string", "-@write"],
        &[
            "-@all",
            "+@scripting",
            "+@transaction",
            "+@pubsub",
            "-@slow",
        ],
        &["nocommands", "+@sortedset", "+@list", "+@set", "-@blocking"],
        &[
            "+@all",
            "-@fast",
            "+get",
            "+set",
            "-client|list",
            "-config|get",
        ],
        &["-@all", "+@admin", "-@dangerous", "+select|0", "+select|1"],
        &["-@all", "+@all", "-@dangerous", "+@admin"],
    ];
    let Some((runs, name)) = on_both(backend, |port| {
        let mut c = Conn::connect(port);
        let mut out = Vec::new();
        for rules in rule_sets {
            let mut args = vec!["ACL", "SETUSER", "desc"];
            args.extend_from_slice(rules);
            assert_eq!(c.cmd_str(&args), b"+OK\r\n", "{rules:?}");
            let reply = String::from_utf8_lossy(&c.cmd_str(&["ACL", "LIST"])).into_owned();
            let line = reply
                .split("\r\n")
                .find(|l| l.starts_with("user desc "))
                .expect("the user's line")
                .to_owned();
            let words: Vec<&str> = line.split(' ').collect();
            let at = words
                .iter()
                .position(|w| w.starts_with("+@all") || w.starts_with("-@all"));
            let at = at.expect("a command rule");
            let categories: Vec<String> = words[at..]
                .iter()
                .take_while(|w| w.get(1..2) == Some("@"))
                .map(|w| w.to_string())
                .collect();
            let mut singles: Vec<String> = words[at + categories.len()..]
                .iter()
                .map(|w| w.to_string())
                .collect();
            singles.sort();
            out.push((rules.join(" "), categories, singles));
            assert_eq!(c.cmd_str(&["ACL", "DELUSER", "desc"]), b":1\r\n");
        }
        out
    }) else {
        return;
    };
    for (want, have) in runs[0].iter().zip(&runs[1]) {
        assert_eq!(have, want, "{name}");
    }
}
