//! The parking machinery through the real dispatcher and store: two workers (threads 0 and 1)
//! of one server, driven by hand as the reactor would drive them (`input`, then `woken` or
//! `tick` to learn which connections to resume, then `input` again with the unconsumed bytes).

use std::sync::Arc;

use ferrite_hybridlog::{Store, StoreConfig};

use crate::config::Config;
use crate::server::Server;
use crate::{Client, Flow, Worker};

/// A connection as the reactor keeps it: the client and its unconsumed input.
struct Conn {
    client: Client,
    input: Vec<u8>,
    parked: bool,
}

struct Rig {
    workers: Vec<Worker>,
    next_token: u64,
}

impl Rig {
    fn new() -> Self {
        let store = Store::new(StoreConfig {
            index_buckets: 1 << 8,
            memory_size: 1 << 24,
            ..StoreConfig::default()
        })
        .expect("valid config");
        // No save points: thread 0's tick would otherwise check them (and could fork).
        let config = Config::default();
        config.set_startup("save", b"").expect("valid");
        let server = Arc::new(Server::new(store, config, 2));
        let workers = (0..2).map(|t| Worker::new(server.clone(), t)).collect();
        Self {
            workers,
            next_token: 1,
        }
    }

    fn connect(&mut self, thread: usize) -> Conn {
        let mut out = Vec::new();
        let mut client = self.workers[thread]
            .accept(None, None, &mut out)
            .expect("accepted");
        client.token = self.next_token;
        self.next_token += 1;
        Conn {
            client,
            input: Vec::new(),
            parked: false,
        }
    }

    /// Feeds the connection's buffered input to its worker; returns the replies.
    fn run(&mut self, c: &mut Conn) -> String {
        let w = &mut self.workers[c.client.shared.thread];
        let mut out = Vec::new();
        let (used, flow) = w.input(&mut c.client, &c.input, &mut out);
        c.input.drain(..used);
        c.parked = flow == Flow::Park;
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Sends one command (space-separated) and runs what can run.
    fn send(&mut self, c: &mut Conn, line: &str) -> String {
        let args: Vec<&str> = line.split(' ').collect();
        c.input
            .extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            c.input
                .extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
        if c.parked {
            return String::new();
        }
        self.run(c)
    }

    /// The tokens thread `t` resumes after a wake-up.
    fn woken(&mut self, t: usize) -> Vec<u64> {
        let mut v = Vec::new();
        self.workers[t].woken(&mut |tok| v.push(tok));
        v
    }

    fn tick(&mut self, t: usize) -> Vec<u64> {
        let mut v = Vec::new();
        self.workers[t].tick(&mut |tok| v.push(tok));
        v
    }

    /// Resumes `c` if its thread was asked to, returning its replies.
    fn resume_if(&mut self, c: &mut Conn, tokens: &[u64]) -> String {
        if c.parked && tokens.contains(&c.client.token) {
            c.parked = false;
            self.run(c)
        } else {
            String::new()
        }
    }

    fn close(&mut self, c: Conn) {
        let t = c.client.shared.thread;
        self.workers[t].closed(c.client);
    }
}

#[test]
fn a_push_on_another_thread_wakes_the_waiter() {
    let mut r = Rig::new();
    let mut w = r.connect(0);
    let mut p = r.connect(1);
    assert_eq!(r.send(&mut w, "BLPOP q 0"), "");
    assert!(w.parked);
    assert_eq!(r.workers[0].parked(), 1);
    assert!(w.client.shared.is_blocked());
    assert_eq!(crate::blocking::blocked_clients(r.workers[0].server()), 1);
    // Input that arrives meanwhile waits behind the parked command.
    assert_eq!(r.send(&mut w, "PING"), "");
    assert_eq!(r.send(&mut p, "RPUSH q a b"), ":2\r\n");
    assert!(r.woken(1).is_empty());
    let tokens = r.woken(0);
    assert_eq!(
        r.resume_if(&mut w, &tokens),
        "*2\r\n$1\r\nq\r\n$1\r\na\r\n+PONG\r\n"
    );
    assert!(!w.parked && w.input.is_empty());
    assert!(!w.client.shared.is_blocked());
    assert_eq!(r.workers[0].parked(), 0);
    assert_eq!(r.send(&mut p, "LRANGE q 0 -1"), "*1\r\n$1\r\nb\r\n");
}

#[test]
fn turns_go_in_blocking_order_and_are_passed_on() {
    let mut r = Rig::new();
    let mut a = r.connect(0);
    let mut b = r.connect(1);
    let mut c = r.connect(0);
    let mut p = r.connect(1);
    for conn in [&mut a, &mut b, &mut c] {
        assert_eq!(r.send(conn, "BRPOP q 0"), "");
    }
    assert_eq!(r.send(&mut p, "LPUSH q 1 2"), ":2\r\n");
    // Only the first waiter holds the turn; the others stay parked.
    let t0 = r.woken(0);
    assert!(r.woken(1).is_empty());
    assert_eq!(r.resume_if(&mut c, &t0), "");
    assert_eq!(r.resume_if(&mut a, &t0), "*2\r\n$1\r\nq\r\n$1\r\n1\r\n");
    // Served with an element left: the turn passes to b.
    let t1 = r.woken(1);
    assert_eq!(r.resume_if(&mut b, &t1), "*2\r\n$1\r\nq\r\n$1\r\n2\r\n");
    assert!(r.woken(0).is_empty());
    assert!(c.parked);
    assert_eq!(r.send(&mut p, "RPUSH q 3"), ":1\r\n");
    let t0 = r.woken(0);
    assert_eq!(r.resume_if(&mut c, &t0), "*2\r\n$1\r\nq\r\n$1\r\n3\r\n");
}

#[test]
fn a_woken_waiter_that_finds_nothing_keeps_its_place() {
    let mut r = Rig::new();
    let mut a = r.connect(0);
    let mut b = r.connect(1);
    let mut p = r.connect(1);
    assert_eq!(r.send(&mut a, "BLPOP q 0"), "");
    assert_eq!(r.send(&mut b, "BLPOP q 0"), "");
    assert_eq!(r.send(&mut p, "RPUSH q x"), ":1\r\n");
    // Someone else takes the element before the waiter runs again.
    assert_eq!(r.send(&mut p, "LPOP q"), "$1\r\nx\r\n");
    let t0 = r.woken(0);
    assert_eq!(r.resume_if(&mut a, &t0), "");
    assert!(a.parked);
    assert_eq!(r.send(&mut p, "RPUSH q y"), ":1\r\n");
    let t0 = r.woken(0);
    assert_eq!(r.resume_if(&mut a, &t0), "*2\r\n$1\r\nq\r\n$1\r\ny\r\n");
    assert!(b.parked);
}

#[test]
fn wrong_kind_writes_do_not_wake() {
    let mut r = Rig::new();
    let mut l = r.connect(0);
    let mut z = r.connect(0);
    let mut p = r.connect(1);
    assert_eq!(r.send(&mut l, "BLPOP k 0"), "");
    assert_eq!(r.send(&mut z, "BZPOPMIN k 0"), "");
    assert_eq!(r.send(&mut p, "ZADD k 1 m"), ":1\r\n");
    let t0 = r.woken(0);
    assert_eq!(t0, vec![z.client.token]);
    assert_eq!(
        r.resume_if(&mut z, &t0),
        "*3\r\n$1\r\nk\r\n$1\r\nm\r\n$1\r\n1\r\n"
    );
    assert_eq!(r.send(&mut p, "RPUSH k v"), ":1\r\n");
    let t0 = r.woken(0);
    assert_eq!(r.resume_if(&mut l, &t0), "*2\r\n$1\r\nk\r\n$1\r\nv\r\n");
}

#[test]
fn timeouts_unblock_and_disconnects() {
    let mut r = Rig::new();
    let mut a = r.connect(0);
    let mut b = r.connect(0);
    let c = r.connect(1);
    let mut p = r.connect(1);
    assert_eq!(r.send(&mut a, "BLPOP q 0.01"), "");
    std::thread::sleep(std::time::Duration::from_millis(15));
    let t0 = r.tick(0);
    assert_eq!(r.resume_if(&mut a, &t0), "*-1\r\n");
    assert_eq!(r.workers[0].parked(), 0);

    assert_eq!(r.send(&mut b, "BZPOPMAX z 0"), "");
    let id = b.client.id.to_string();
    assert_eq!(
        r.send(&mut p, &format!("CLIENT UNBLOCK {id} ERROR")),
        ":1\r\n"
    );
    assert_eq!(r.send(&mut p, &format!("CLIENT UNBLOCK {id}")), ":0\r\n");
    let t0 = r.woken(0);
    assert_eq!(
        r.resume_if(&mut b, &t0),
        "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"
    );

    let mut c = c;
    assert_eq!(r.send(&mut c, "BLPOP gone 0"), "");
    assert_eq!(r.send(&mut a, "BLPOP gone 0"), "");
    assert_eq!(r.send(&mut p, "RPUSH gone v"), ":1\r\n");
    // c holds the turn and disconnects: the turn passes to a.
    r.close(c);
    assert!(r.woken(1).is_empty());
    let t0 = r.woken(0);
    assert_eq!(r.resume_if(&mut a, &t0), "*2\r\n$4\r\ngone\r\n$1\r\nv\r\n");
    assert_eq!(crate::blocking::blocked_clients(r.workers[0].server()), 0);
}

#[test]
fn deny_blocking_answers_at_once() {
    let mut r = Rig::new();
    let mut a = r.connect(0);
    a.client.deny_blocking = true;
    assert_eq!(r.send(&mut a, "BLPOP q 0"), "*-1\r\n");
    assert_eq!(r.send(&mut a, "BLMOVE q d LEFT LEFT 0"), "$-1\r\n");
    assert!(!a.parked);
}

#[test]
fn client_reply_skip_applies_to_the_parked_answer() {
    let mut r = Rig::new();
    let mut a = r.connect(0);
    let mut p = r.connect(1);
    assert_eq!(r.send(&mut a, "CLIENT REPLY SKIP"), "");
    assert_eq!(r.send(&mut a, "BLPOP q 0"), "");
    assert_eq!(r.send(&mut p, "RPUSH q v"), ":1\r\n");
    let t0 = r.woken(0);
    assert_eq!(r.resume_if(&mut a, &t0), "");
    assert_eq!(r.send(&mut a, "PING"), "+PONG\r\n");
}
