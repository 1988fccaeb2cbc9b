use super::*;
use crate::table;

/// Propagates `words` (with `reply`) at `now`, as the commands written.
fn prop(words: &[&str], reply: &[u8], wrote: bool) -> Vec<String> {
    let data: Vec<u8> = words.concat().into_bytes();
    let mut spans = Vec::new();
    let mut at = 0u32;
    for w in words {
        spans.push((at, w.len() as u32));
        at += w.len() as u32;
    }
    let args = Args::new(&data, &spans);
    let spec = table::lookup(words[0].as_bytes()).expect("known command");
    let mut e = Entry::default();
    command(
        &mut e,
        0,
        spec,
        args,
        reply,
        1_000_000,
        wrote,
        &mut |_: &[u8]| true,
    );
    e.commands()
        .map(|(_, c)| {
            // "*3\r\n$3\r\nSET\r\n..." → "SET k v"
            let text = String::from_utf8_lossy(c).into_owned();
            text.split("\r\n")
                .skip(1)
                .skip(1)
                .step_by(2)
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[test]
fn relative_times_become_absolute() {
    assert_eq!(
        prop(&["set", "k", "v", "EX", "10"], b"+OK\r\n", true),
        ["SET k v PXAT 1010000"]
    );
    assert_eq!(
        prop(&["SET", "k", "v", "GET", "px", "5"], b"$-1\r\n", true),
        ["SET k v PXAT 1000005"]
    );
    assert_eq!(
        prop(&["set", "k", "v", "XX", "KEEPTTL"], b"+OK\r\n", true),
        ["set k v XX KEEPTTL"]
    );
    assert_eq!(
        prop(&["setex", "k", "2", "v"], b"+OK\r\n", true),
        ["SET k v PXAT 1002000"]
    );
    assert_eq!(
        prop(&["expire", "k", "1", "NX"], b":1\r\n", true),
        ["PEXPIREAT k 1001000 NX"]
    );
    assert_eq!(prop(&["expireat", "k", "5"], b":1\r\n", true), ["DEL k"]);
    assert_eq!(
        prop(&["getex", "k", "persist"], b"$1\r\nv\r\n", true),
        ["PERSIST k"]
    );
    assert_eq!(
        prop(&["getex", "k", "PX", "7"], b"$1\r\nv\r\n", true),
        ["PEXPIREAT k 1000007"]
    );
    assert_eq!(
        prop(&["restore", "k", "50", "x"], b"+OK\r\n", true),
        ["restore k 1000050 x ABSTTL"]
    );
}

#[test]
fn outcomes_come_from_the_reply() {
    assert_eq!(
        prop(&["incrbyfloat", "f", "1.5"], b"$3\r\n3.5\r\n", true),
        ["SET f 3.5 KEEPTTL"]
    );
    assert_eq!(
        prop(&["hincrbyfloat", "h", "f", "1"], b"$1\r\n2\r\n", true),
        ["HSET h f 2"]
    );
    assert_eq!(prop(&["getdel", "k"], b"$1\r\nv\r\n", true), ["DEL k"]);
    assert_eq!(prop(&["spop", "s"], b"$1\r\na\r\n", true), ["SREM s a"]);
    assert_eq!(
        prop(&["spop", "s", "2"], b"*2\r\n$1\r\na\r\n$1\r\nb\r\n", true),
        ["SREM s a", "SREM s b"]
    );
    assert_eq!(
        prop(
            &["blpop", "a", "b", "0"],
            b"*2\r\n$1\r\nb\r\n$1\r\nx\r\n",
            true
        ),
        ["LPOP b"]
    );
    assert_eq!(
        prop(
            &["blmove", "a", "b", "left", "right", "0"],
            b"$1\r\nx\r\n",
            true
        ),
        ["LMOVE a b left right"]
    );
    assert_eq!(
        prop(
            &["blmpop", "0", "2", "a", "b", "right", "count", "5"],
            b"*2\r\n$1\r\nb\r\n*2\r\n$1\r\nx\r\n$1\r\ny\r\n",
            true
        ),
        ["RPOP b 2"]
    );
    assert_eq!(
        prop(
            &["zmpop", "1", "z", "MIN"],
            b"*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\nm\r\n$1\r\n1\r\n",
            true
        ),
        ["ZPOPMIN z 1"]
    );
    assert_eq!(
        prop(
            &["bzpopmax", "z", "0"],
            b"*3\r\n$1\r\nz\r\n$1\r\nm\r\n$1\r\n1\r\n",
            true
        ),
        ["ZPOPMAX z"]
    );
}

#[test]
fn nothing_changed_nothing_written() {
    assert!(prop(&["del", "k"], b":0\r\n", false).is_empty());
    assert!(prop(&["get", "k"], b"$-1\r\n", true).is_empty());
    assert_eq!(prop(&["flushall"], b"+OK\r\n", false), ["flushall"]);
    assert!(
        prop(
            &["swapdb", "0", "99"],
            b"-ERR DB index is out of range\r\n",
            false
        )
        .is_empty()
    );
}

#[test]
fn resp3_values_are_read_too() {
    assert_eq!(
        prop(&["incrbyfloat", "f", "1"], b",2.5\r\n", true),
        ["SET f 2.5 KEEPTTL"]
    );
    assert_eq!(
        prop(&["spop", "s", "2"], b"~2\r\n$1\r\na\r\n$1\r\nb\r\n", true),
        ["SREM s a", "SREM s b"]
    );
}

#[test]
fn stream_writes_are_written_as_they_turned_out() {
    assert_eq!(
        prop(&["xadd", "s", "*", "f", "v"], b"$3\r\n7-0\r\n", true),
        ["xadd s 7-0 f v"]
    );
    assert_eq!(
        prop(&["XADD", "s", "5-*", "f", "v"], b"$3\r\n5-3\r\n", true),
        ["XADD s 5-3 f v"]
    );
    // `~` becomes `=`; LIMIT stays, as Redis writes it (the loader accepts it).
    assert_eq!(
        prop(
            &[
                "XADD",
                "s",
                "NOMKSTREAM",
                "MAXLEN",
                "~",
                "5",
                "LIMIT",
                "9",
                "1-1",
                "f",
                "v"
            ],
            b"$3\r\n1-1\r\n",
            true
        ),
        ["XADD s NOMKSTREAM MAXLEN = 5 LIMIT 9 1-1 f v"]
    );
    assert_eq!(
        prop(&["XTRIM", "s", "MAXLEN", "3"], b":2\r\n", true),
        ["XTRIM s MAXLEN 3"]
    );
    // XADD NOMKSTREAM on a missing key wrote nothing.
    assert!(
        prop(
            &["XADD", "s", "NOMKSTREAM", "*", "f", "v"],
            b"$-1\r\n",
            false
        )
        .is_empty()
    );
}
