//! Pub/Sub end to end, on both I/O backends with two reactor threads: a publisher on one
//! connection reaches subscribers on several others (and so, for most of them, another thread),
//! patterns match, unsubscribing stops delivery, one publisher's messages arrive in order, a
//! disconnected subscriber is forgotten, and a subscriber that reads nothing is dropped at the
//! pubsub output-buffer limit instead of growing without bound.

mod common;

use std::time::{Duration, Instant};

use common::{Conn, Ferrite, escape};

per_backend!(
    publisher_reaches_subscribers_on_other_connections,
    patterns_receive_pmessage,
    unsubscribe_stops_delivery,
    order_of_one_publisher_is_kept,
    resp3_subscribers_get_pushes,
    disconnected_subscribers_are_forgotten,
    slow_subscriber_is_dropped_at_the_limit,
);

fn start(backend: &str) -> Ferrite {
    Ferrite::start(backend, &["--threads", "2"])
}

fn cmd(c: &mut Conn, args: &[&str]) -> String {
    escape(&c.cmd_str(args))
}

fn read(c: &mut Conn) -> String {
    escape(&c.read_reply())
}

fn message(channel: &str, payload: &str) -> String {
    format!(
        "*3\\r\\n$7\\r\\nmessage\\r\\n${}\\r\\n{channel}\\r\\n${}\\r\\n{payload}\\r\\n",
        channel.len(),
        payload.len()
    )
}

fn subscribed(c: &mut Conn, verb: &str, name: &str, count: usize) {
    assert_eq!(
        cmd(c, &[verb, name]),
        format!(
            "*3\\r\\n${}\\r\\n{verb}\\r\\n${}\\r\\n{name}\\r\\n:{count}\\r\\n",
            verb.len(),
            name.len()
        )
    );
}

/// Waits until PUBSUB NUMSUB reports `n` subscribers of `channel`.
fn wait_numsub(c: &mut Conn, channel: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let want = format!("*2\\r\\n${}\\r\\n{channel}\\r\\n:{n}\\r\\n", channel.len());
    loop {
        let got = cmd(c, &["PUBSUB", "NUMSUB", channel]);
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "NUMSUB {channel}: {got}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn publisher_reaches_subscribers_on_other_connections(backend: &str) {
    let server = start(backend);
    let mut subs: Vec<Conn> = (0..6).map(|_| server.conn()).collect();
    for s in &mut subs {
        subscribed(s, "subscribe", "news", 1);
    }
    let mut publisher = server.conn();
    assert_eq!(
        cmd(&mut publisher, &["PUBLISH", "news", "hello"]),
        ":6\\r\\n"
    );
    assert_eq!(cmd(&mut publisher, &["PUBLISH", "other", "x"]), ":0\\r\\n");
    for s in &mut subs {
        assert_eq!(read(s), message("news", "hello"));
    }
    // A subscriber that also listens elsewhere gets only what was published there.
    subscribed(&mut subs[0], "subscribe", "sports", 2);
    assert_eq!(
        cmd(&mut publisher, &["PUBLISH", "sports", "goal"]),
        ":1\\r\\n"
    );
    assert_eq!(read(&mut subs[0]), message("sports", "goal"));
    assert_eq!(
        cmd(&mut subs[1], &["PING"]),
        "*2\\r\\n$4\\r\\npong\\r\\n$0\\r\\n\\r\\n"
    );
}

fn patterns_receive_pmessage(backend: &str) {
    let server = start(backend);
    let mut a = server.conn();
    let mut b = server.conn();
    subscribed(&mut a, "psubscribe", "news.*", 1);
    subscribed(&mut b, "psubscribe", "news.*", 1);
    subscribed(&mut b, "psubscribe", "*.art", 2);
    subscribed(&mut b, "subscribe", "news.art", 3);
    let mut publisher = server.conn();
    assert_eq!(cmd(&mut publisher, &["PUBSUB", "NUMPAT"]), ":2\\r\\n");
    // a: one pattern; b: the channel, then both patterns.
    assert_eq!(
        cmd(&mut publisher, &["PUBLISH", "news.art", "m"]),
        ":4\\r\\n"
    );
    let pmessage = |p: &str| {
        format!(
            "*4\\r\\n$8\\r\\npmessage\\r\\n${}\\r\\n{p}\\r\\n$8\\r\\nnews.art\\r\\n$1\\r\\nm\\r\\n",
            p.len()
        )
    };
    assert_eq!(read(&mut a), pmessage("news.*"));
    assert_eq!(read(&mut b), message("news.art", "m"));
    let mut got = vec![read(&mut b), read(&mut b)];
    got.sort();
    let mut want = vec![pmessage("news.*"), pmessage("*.art")];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(cmd(&mut publisher, &["PUBLISH", "sport", "m"]), ":0\\r\\n");
}

fn unsubscribe_stops_delivery(backend: &str) {
    let server = start(backend);
    let mut s = server.conn();
    subscribed(&mut s, "subscribe", "c", 1);
    subscribed(&mut s, "psubscribe", "c*", 2);
    let mut publisher = server.conn();
    assert_eq!(cmd(&mut publisher, &["PUBLISH", "c", "1"]), ":2\\r\\n");
    assert_eq!(read(&mut s), message("c", "1"));
    read(&mut s);
    subscribed(&mut s, "unsubscribe", "c", 1);
    assert_eq!(cmd(&mut publisher, &["PUBLISH", "c", "2"]), ":1\\r\\n");
    assert!(read(&mut s).contains("pmessage"));
    subscribed(&mut s, "punsubscribe", "c*", 0);
    assert_eq!(cmd(&mut publisher, &["PUBLISH", "c", "3"]), ":0\\r\\n");
    // Out of subscribed mode: ordinary commands work, and nothing else arrived first.
    assert_eq!(cmd(&mut s, &["GET", "k"]), "$-1\\r\\n");
    // RESET unsubscribes too.
    subscribed(&mut s, "subscribe", "d", 1);
    assert_eq!(cmd(&mut s, &["RESET"]), "+RESET\\r\\n");
    assert_eq!(cmd(&mut publisher, &["PUBLISH", "d", "x"]), ":0\\r\\n");
}

fn order_of_one_publisher_is_kept(backend: &str) {
    const N: usize = 5000;
    let server = start(backend);
    let mut subs: Vec<Conn> = (0..3).map(|_| server.conn()).collect();
    for s in &mut subs {
        subscribed(s, "subscribe", "seq", 1);
    }
    let mut publisher = server.conn();
    let mut pipeline = Vec::new();
    for i in 0..N {
        let payload = i.to_string();
        pipeline.extend_from_slice(&common::encode_command(&[
            b"PUBLISH",
            b"seq",
            payload.as_bytes(),
        ]));
    }
    publisher.send_raw(&pipeline);
    for _ in 0..N {
        assert_eq!(read(&mut publisher), ":3\\r\\n");
    }
    for s in &mut subs {
        for i in 0..N {
            assert_eq!(read(s), message("seq", &i.to_string()));
        }
    }
}

fn resp3_subscribers_get_pushes(backend: &str) {
    let server = start(backend);
    let mut s = server.conn();
    cmd(&mut s, &["HELLO", "3"]);
    assert_eq!(
        cmd(&mut s, &["SUBSCRIBE", "c"]),
        ">3\\r\\n$9\\r\\nsubscribe\\r\\n$1\\r\\nc\\r\\n:1\\r\\n"
    );
    // RESP3 clients keep running commands while subscribed.
    assert_eq!(cmd(&mut s, &["SET", "k", "v"]), "+OK\\r\\n");
    let mut publisher = server.conn();
    assert_eq!(cmd(&mut publisher, &["PUBLISH", "c", "hi"]), ":1\\r\\n");
    assert_eq!(
        read(&mut s),
        ">3\\r\\n$7\\r\\nmessage\\r\\n$1\\r\\nc\\r\\n$2\\r\\nhi\\r\\n"
    );
    assert_eq!(cmd(&mut s, &["GET", "k"]), "$1\\r\\nv\\r\\n");
}

fn disconnected_subscribers_are_forgotten(backend: &str) {
    let server = start(backend);
    let mut publisher = server.conn();
    {
        let mut s = server.conn();
        subscribed(&mut s, "subscribe", "gone", 1);
        subscribed(&mut s, "psubscribe", "go*", 2);
        wait_numsub(&mut publisher, "gone", 1);
    }
    wait_numsub(&mut publisher, "gone", 0);
    assert_eq!(cmd(&mut publisher, &["PUBSUB", "NUMPAT"]), ":0\\r\\n");
    assert_eq!(cmd(&mut publisher, &["PUBLISH", "gone", "x"]), ":0\\r\\n");
    assert_eq!(cmd(&mut publisher, &["PUBSUB", "CHANNELS"]), "*0\\r\\n");
}

fn slow_subscriber_is_dropped_at_the_limit(backend: &str) {
    let server = start(backend);
    let mut s = server.conn();
    subscribed(&mut s, "subscribe", "flood", 1);
    let mut publisher = server.conn();
    let payload = vec![b'x'; 1 << 20];
    // Published to a subscriber that reads nothing: past the 32 MiB hard limit plus whatever
    // the socket buffers absorb it must be closed, not buffered. The kernel's share depends on
    // receive-buffer autotuning (`tcp_rmem` max is 32 MiB on some machines), so publish until
    // the subscriber is gone, up to a bound no kernel buffering explains.
    let numsub_zero = "*2\\r\\n$5\\r\\nflood\\r\\n:0\\r\\n";
    for sent in 1..=192 {
        publisher.cmd(&[b"PUBLISH", b"flood", &payload]);
        if sent >= 64 && cmd(&mut publisher, &["PUBSUB", "NUMSUB", "flood"]) == numsub_zero {
            break;
        }
    }
    wait_numsub(&mut publisher, "flood", 0);
    let (_, closed) = s.read_until_idle(Duration::from_millis(500), Duration::from_secs(30));
    assert!(closed, "the slow subscriber was not disconnected");
}
