//! Handler tests through the real dispatcher and store (the differential suite compares the
//! same behaviours with redis-server byte for byte).

use std::sync::Arc;

use ferrite_hybridlog::{NO_EXPIRY, Session, Store, StoreConfig, ValueKind};

use crate::config::Config;
use crate::server::{Server, unix_ms};
use crate::{Client, Worker};

/// A one-thread server with a small index, a connected client, and a side session to set up
/// and inspect keys without going through other groups' commands.
pub(crate) struct Harness {
    worker: Worker,
    client: Client,
    side: Session,
}

impl Harness {
    pub(crate) fn new() -> Self {
        let store = Store::new(StoreConfig {
            index_buckets: 1 << 8,
            memory_size: 1 << 24,
            ..StoreConfig::default()
        })
        .expect("valid config");
        let side = store.session();
        let server = Arc::new(Server::new(store, Config::default(), 1));
        let mut worker = Worker::new(server, 0);
        let mut out = Vec::new();
        let client = worker.accept(None, None, &mut out).expect("accepted");
        Self {
            worker,
            client,
            side,
        }
    }

    /// Runs one command, returning its raw reply.
    pub(crate) fn run(&mut self, args: &[&[u8]]) -> Vec<u8> {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a);
            req.extend_from_slice(b"\r\n");
        }
        let mut out = Vec::new();
        let (used, _) = self.worker.input(&mut self.client, &req, &mut out);
        assert_eq!(used, req.len());
        out
    }

    /// `run` with space-separated arguments.
    pub(crate) fn cmd(&mut self, line: &str) -> String {
        let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        String::from_utf8_lossy(&self.run(&args)).into_owned()
    }

    pub(crate) fn set(&mut self, db: u8, key: &[u8], value: &[u8], expire_at: u64) {
        self.side
            .upsert(db, key, value, ValueKind::String, expire_at);
    }

    pub(crate) fn get(&mut self, db: u8, key: &[u8]) -> Option<(Vec<u8>, u64)> {
        self.side
            .read(db, key, unix_ms(), |e| (e.value.to_vec(), e.expire_at))
    }
}

#[test]
fn del_exists_touch_count_as_redis() {
    let mut h = Harness::new();
    h.set(0, b"a", b"1", NO_EXPIRY);
    h.set(0, b"b", b"2", NO_EXPIRY);
    assert_eq!(h.cmd("EXISTS a a b c"), ":3\r\n");
    assert_eq!(h.cmd("TOUCH a c"), ":1\r\n");
    assert_eq!(h.cmd("DEL a a c"), ":1\r\n");
    assert_eq!(h.cmd("UNLINK b"), ":1\r\n");
    assert_eq!(h.cmd("TYPE b"), "+none\r\n");
}

#[test]
fn expire_family() {
    let mut h = Harness::new();
    let far = unix_ms() + 100_000;
    h.set(0, b"k", b"v", NO_EXPIRY);
    assert_eq!(h.cmd("TTL k"), ":-1\r\n");
    assert_eq!(h.cmd("EXPIRE k 100 GT"), ":0\r\n");
    assert_eq!(h.cmd("EXPIRE k 100 LT"), ":1\r\n");
    assert_eq!(h.cmd("TTL k"), ":100\r\n");
    assert_eq!(h.cmd("EXPIRE k 100 NX"), ":0\r\n");
    assert_eq!(h.cmd("PERSIST k"), ":1\r\n");
    assert_eq!(h.cmd("PERSIST k"), ":0\r\n");
    assert_eq!(h.cmd("EXPIREAT k 4000000000"), ":1\r\n");
    assert_eq!(h.cmd("PEXPIRETIME k"), ":4000000000000\r\n");
    assert_eq!(
        h.cmd("EXPIRE k 1 NX XX"),
        "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"
    );
    assert_eq!(
        h.cmd("EXPIRE k 1 GT LT"),
        "-ERR GT and LT options at the same time are not compatible\r\n"
    );
    assert_eq!(h.cmd("EXPIRE k 1 foo"), "-ERR Unsupported option foo\r\n");
    assert_eq!(
        h.cmd("PEXPIRE k 9223372036854775807"),
        "-ERR invalid expire time in 'pexpire' command\r\n"
    );
    assert_eq!(h.cmd("EXPIRE k 0"), ":1\r\n");
    assert_eq!(h.get(0, b"k"), None);
    assert_eq!(h.cmd("TTL k"), ":-2\r\n");
    assert_eq!(h.cmd("EXPIRE k 10"), ":0\r\n");
    h.set(0, b"t", b"v", far);
    assert_eq!(h.cmd("TTL t"), ":100\r\n");
}

#[test]
fn rename_copy_move_keep_ttl() {
    let mut h = Harness::new();
    let far = unix_ms() + 100_000;
    h.set(0, b"a", b"v", far);
    assert_eq!(h.cmd("RENAME a b"), "+OK\r\n");
    assert_eq!(h.get(0, b"b"), Some((b"v".to_vec(), far)));
    assert_eq!(h.cmd("RENAME a b"), "-ERR no such key\r\n");
    assert_eq!(h.cmd("RENAMENX b b"), ":0\r\n");
    assert_eq!(h.cmd("COPY b c DB 1"), ":1\r\n");
    assert_eq!(h.get(1, b"c"), Some((b"v".to_vec(), far)));
    assert_eq!(
        h.cmd("COPY b b"),
        "-ERR source and destination objects are the same\r\n"
    );
    assert_eq!(h.cmd("COPY b c DB 99"), "-ERR DB index is out of range\r\n");
    assert_eq!(h.cmd("MOVE b 2"), ":1\r\n");
    assert_eq!(h.get(2, b"b"), Some((b"v".to_vec(), far)));
    assert_eq!(h.get(0, b"b"), None);
    assert_eq!(h.cmd("MOVE b 2"), ":0\r\n");
}

#[test]
fn keys_and_full_scan() {
    let mut h = Harness::new();
    let mut want = Vec::new();
    for i in 0..50 {
        let k = format!("key:{i}");
        h.set(0, k.as_bytes(), b"x", NO_EXPIRY);
        want.push(k);
    }
    h.set(1, b"other", b"x", NO_EXPIRY);
    assert!(h.cmd("KEYS key:4?").starts_with("*10\r\n"));
    assert!(h.cmd("KEYS *").starts_with("*50\r\n"));
    assert_eq!(h.cmd("KEYS nomatch"), "*0\r\n");
    // Iterating with a small COUNT visits every key exactly once.
    let mut seen = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let reply = h.cmd(&format!("SCAN {cursor} COUNT 3"));
        let lines: Vec<&str> = reply.split("\r\n").collect();
        cursor = lines[2].to_string();
        seen.extend(lines[4..].iter().skip(1).step_by(2).map(|s| s.to_string()));
        if cursor == "0" {
            break;
        }
    }
    seen.sort();
    want.sort();
    assert_eq!(seen, want);
    assert_eq!(h.cmd("SCAN 0 COUNT 0"), "-ERR syntax error\r\n");
    assert_eq!(h.cmd("SCAN x"), "-ERR invalid cursor\r\n");
}

#[test]
fn object_and_randomkey() {
    let mut h = Harness::new();
    assert_eq!(h.cmd("RANDOMKEY"), "$-1\r\n");
    h.set(0, b"n", b"42", NO_EXPIRY);
    assert_eq!(h.cmd("RANDOMKEY"), "$1\r\nn\r\n");
    assert_eq!(h.cmd("OBJECT ENCODING n"), "$3\r\nint\r\n");
    assert_eq!(h.cmd("OBJECT REFCOUNT n"), ":2147483647\r\n");
    assert_eq!(h.cmd("OBJECT IDLETIME n"), ":0\r\n");
    assert_eq!(h.cmd("OBJECT ENCODING nokey"), "$-1\r\n");
    assert!(
        h.cmd("OBJECT FREQ n")
            .starts_with("-ERR An LFU maxmemory policy")
    );
    assert!(h.cmd("OBJECT HELP").starts_with("*15\r\n"));
}
