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
        // No save points: FLUSHALL would save a dump.rdb into the crate's directory.
        let config = Config::default();
        config.set_startup("save", b"").expect("valid");
        let server = Arc::new(Server::new(store, config, 1));
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

/// Collections stored directly through the side session (independent of the collection
/// commands).
mod collections {
    use ferrite_collections::{End, Hash, List, Set, SortedSet, ZAddFlags};
    use ferrite_hybridlog::{NO_EXPIRY, Value};

    use super::Harness;
    use crate::objects::Collection;
    use crate::server::unix_ms;

    fn list(items: &[&[u8]]) -> Collection {
        let mut l = List::new();
        for i in items {
            l.push(End::Right, i);
        }
        Collection::List(l)
    }

    impl Harness {
        fn put(&mut self, db: u8, key: &[u8], c: Collection, expire_at: u64) {
            self.side.upsert_object(db, key, c.boxed(), expire_at);
        }

        /// The list at `key` and its expiry.
        fn list_at(&mut self, db: u8, key: &[u8]) -> Option<(Vec<Vec<u8>>, u64)> {
            self.side.read_value(db, key, unix_ms(), |e| match e.value {
                Value::Object(o) => match Collection::of(o) {
                    Some(Collection::List(l)) => {
                        (l.iter().map(<[u8]>::to_vec).collect(), e.expire_at)
                    }
                    _ => panic!("not a list"),
                },
                Value::String(_) => panic!("a string"),
            })
        }
    }

    #[test]
    fn type_and_scan_type_see_collections() {
        let mut h = Harness::new();
        h.put(0, b"l", list(&[b"a"]), NO_EXPIRY);
        let mut hash = Hash::new();
        hash.insert(b"f", b"v");
        h.put(0, b"h", Collection::Hash(hash), NO_EXPIRY);
        let mut set = Set::new();
        set.insert(b"1");
        h.put(0, b"s", Collection::Set(set), NO_EXPIRY);
        let mut z = SortedSet::new();
        z.add(b"m", 1.0, ZAddFlags::default()).unwrap();
        h.put(0, b"z", Collection::ZSet(z), NO_EXPIRY);
        h.set(0, b"str", b"x", NO_EXPIRY);
        for (k, t) in [
            ("l", "list"),
            ("h", "hash"),
            ("s", "set"),
            ("z", "zset"),
            ("str", "string"),
        ] {
            assert_eq!(h.cmd(&format!("TYPE {k}")), format!("+{t}\r\n"));
            let reply = h.cmd(&format!("SCAN 0 COUNT 1000 TYPE {t}"));
            assert!(
                reply.ends_with(&format!("*1\r\n${}\r\n{k}\r\n", k.len())),
                "{t}: {reply}"
            );
        }
        assert!(h.cmd("KEYS *").starts_with("*5\r\n"));
        assert_eq!(h.cmd("EXISTS l h s z str"), ":5\r\n");
        assert_eq!(h.cmd("DEL l h"), ":2\r\n");
        assert_eq!(h.cmd("TYPE l"), "+none\r\n");
        assert_eq!(h.cmd("DBSIZE"), ":3\r\n");
    }

    #[test]
    fn object_encoding_of_collections() {
        let mut h = Harness::new();
        h.put(0, b"l", list(&[b"a"]), NO_EXPIRY);
        assert_eq!(h.cmd("OBJECT ENCODING l"), "$9\r\nquicklist\r\n");
        assert_eq!(h.cmd("OBJECT REFCOUNT l"), ":1\r\n");
        let mut small = Hash::new();
        small.insert(b"f", b"v");
        h.put(0, b"h", Collection::Hash(small), NO_EXPIRY);
        assert_eq!(h.cmd("OBJECT ENCODING h"), "$8\r\nlistpack\r\n");
        let mut big = Hash::new();
        big.insert(b"f", &[b'v'; 65]);
        h.put(0, b"h2", Collection::Hash(big), NO_EXPIRY);
        assert_eq!(h.cmd("OBJECT ENCODING h2"), "$9\r\nhashtable\r\n");
        let mut ints = Set::new();
        ints.insert(b"1");
        h.put(0, b"s", Collection::Set(ints), NO_EXPIRY);
        assert_eq!(h.cmd("OBJECT ENCODING s"), "$6\r\nintset\r\n");
        let mut strs = Set::new();
        strs.insert(b"a");
        h.put(0, b"s2", Collection::Set(strs), NO_EXPIRY);
        assert_eq!(h.cmd("OBJECT ENCODING s2"), "$9\r\nhashtable\r\n");
        let mut z = SortedSet::new();
        z.add(b"m", 1.0, ZAddFlags::default()).unwrap();
        h.put(0, b"z", Collection::ZSet(z.clone()), NO_EXPIRY);
        assert_eq!(h.cmd("OBJECT ENCODING z"), "$8\r\nlistpack\r\n");
        for i in 0..129 {
            z.add(format!("m{i}").as_bytes(), 1.0, ZAddFlags::default())
                .unwrap();
        }
        h.put(0, b"z2", Collection::ZSet(z), NO_EXPIRY);
        assert_eq!(h.cmd("OBJECT ENCODING z2"), "$8\r\nskiplist\r\n");
    }

    #[test]
    fn rename_copy_move_collections_keep_ttl() {
        let mut h = Harness::new();
        let far = unix_ms() + 100_000;
        h.put(0, b"a", list(&[b"x", b"y"]), far);
        let xy = vec![b"x".to_vec(), b"y".to_vec()];
        assert_eq!(h.cmd("RENAME a b"), "+OK\r\n");
        assert_eq!(h.list_at(0, b"a"), None);
        assert_eq!(h.list_at(0, b"b"), Some((xy.clone(), far)));
        h.set(0, b"str", b"v", NO_EXPIRY);
        assert_eq!(h.cmd("RENAMENX b str"), ":0\r\n");
        assert_eq!(h.cmd("TYPE str"), "+string\r\n");
        // RENAME over a string replaces it with the list.
        assert_eq!(h.cmd("RENAME b str"), "+OK\r\n");
        assert_eq!(h.cmd("TYPE str"), "+list\r\n");
        assert_eq!(h.cmd("TTL str"), ":100\r\n");
        // COPY is deep: changing the copy leaves the source alone.
        assert_eq!(h.cmd("COPY str c DB 1"), ":1\r\n");
        assert_eq!(h.list_at(1, b"c"), Some((xy.clone(), far)));
        assert_eq!(h.cmd("COPY str c DB 1"), ":0\r\n");
        h.side.rmw_value(1, b"c", unix_ms(), |e| {
            let Some(e) = e else { panic!("c exists") };
            let ferrite_hybridlog::ValueMut::Object(o) = e.value else {
                panic!("an object")
            };
            let Some(Collection::List(l)) = Collection::of_mut(o) else {
                panic!("a list")
            };
            l.push(End::Left, b"w");
            ferrite_hybridlog::ObjectWrite::Updated(())
        });
        assert_eq!(h.list_at(0, b"str"), Some((xy.clone(), far)));
        assert_eq!(h.list_at(1, b"c").unwrap().0.len(), 3);
        // COPY REPLACE of a string over a list, and MOVE of a list.
        h.set(0, b"s", b"v", NO_EXPIRY);
        assert_eq!(h.cmd("COPY s c DB 1 REPLACE"), ":1\r\n");
        assert_eq!(h.get(1, b"c"), Some((b"v".to_vec(), NO_EXPIRY)));
        assert_eq!(h.cmd("MOVE str 2"), ":1\r\n");
        assert_eq!(h.list_at(2, b"str"), Some((xy, far)));
        assert_eq!(h.list_at(0, b"str"), None);
        assert_eq!(h.cmd("MOVE str 2"), ":0\r\n");
        // Expiry commands on a collection.
        assert_eq!(h.cmd("SELECT 2"), "+OK\r\n");
        assert_eq!(h.cmd("PERSIST str"), ":1\r\n");
        assert_eq!(h.cmd("TTL str"), ":-1\r\n");
        assert_eq!(h.cmd("EXPIRE str 0"), ":1\r\n");
        assert_eq!(h.cmd("TYPE str"), "+none\r\n");
    }
}
