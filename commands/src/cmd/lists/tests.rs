//! List handlers through the real dispatcher and store.

use crate::cmd::keys::tests::Harness;

#[test]
fn push_pop_and_delete_when_empty() {
    let mut h = Harness::new();
    assert_eq!(h.cmd("LPUSHX l a"), ":0\r\n");
    assert_eq!(h.cmd("RPUSH l a b c"), ":3\r\n");
    assert_eq!(h.cmd("LPUSH l z"), ":4\r\n");
    assert_eq!(
        h.cmd("LRANGE l 0 -1"),
        "*4\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"
    );
    assert_eq!(h.cmd("RPOP l 2"), "*2\r\n$1\r\nc\r\n$1\r\nb\r\n");
    assert_eq!(h.cmd("LPOP l 0"), "*0\r\n");
    assert_eq!(h.cmd("LPOP l"), "$1\r\nz\r\n");
    assert_eq!(
        h.cmd("LPOP l -1"),
        "-ERR value is out of range, must be positive\r\n"
    );
    assert_eq!(
        h.cmd("LPOP l 1 2"),
        "-ERR wrong number of arguments for 'lpop' command\r\n"
    );
    assert_eq!(h.cmd("RPOP l 5"), "*1\r\n$1\r\na\r\n");
    assert_eq!(h.cmd("EXISTS l"), ":0\r\n");
    assert_eq!(h.cmd("LPOP l 0"), "*-1\r\n");
    assert_eq!(h.cmd("LPOP l"), "$-1\r\n");
    h.set(0, b"s", b"v", ferrite_hybridlog::NO_EXPIRY);
    assert!(h.cmd("LPUSH s a").starts_with("-WRONGTYPE"));
    assert!(h.cmd("LLEN s").starts_with("-WRONGTYPE"));
}

#[test]
fn index_edits() {
    let mut h = Harness::new();
    assert_eq!(h.cmd("LSET l 0 x"), "-ERR no such key\r\n");
    assert_eq!(h.cmd("LINDEX l abc"), "$-1\r\n");
    h.cmd("RPUSH l a b c a");
    assert_eq!(
        h.cmd("LINDEX l abc"),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(h.cmd("LSET l 9 x"), "-ERR index out of range\r\n");
    assert_eq!(h.cmd("LSET l -1 x"), "+OK\r\n");
    assert_eq!(h.cmd("LINDEX l -1"), "$1\r\nx\r\n");
    assert_eq!(h.cmd("LINSERT l middle a b"), "-ERR syntax error\r\n");
    assert_eq!(h.cmd("LINSERT l AFTER a q"), ":5\r\n");
    assert_eq!(h.cmd("LINSERT l before nope q"), ":-1\r\n");
    assert_eq!(h.cmd("LREM l 0 q"), ":1\r\n");
    assert_eq!(h.cmd("LTRIM l 1 1"), "+OK\r\n");
    assert_eq!(h.cmd("LRANGE l 0 -1"), "*1\r\n$1\r\nb\r\n");
    assert_eq!(h.cmd("LTRIM l 5 1"), "+OK\r\n");
    assert_eq!(h.cmd("EXISTS l"), ":0\r\n");
}

#[test]
fn lpos_options() {
    let mut h = Harness::new();
    assert_eq!(h.cmd("LPOS l c"), "$-1\r\n");
    assert_eq!(h.cmd("LPOS l c COUNT 0"), "*0\r\n");
    h.cmd("RPUSH l c a c b c");
    assert_eq!(h.cmd("LPOS l c"), ":0\r\n");
    assert_eq!(h.cmd("LPOS l c RANK -1"), ":4\r\n");
    assert_eq!(h.cmd("LPOS l c RANK 2 COUNT 0"), "*2\r\n:2\r\n:4\r\n");
    assert_eq!(
        h.cmd("LPOS l c RANK -9223372036854775808 COUNT 1"),
        "*3\r\n:4\r\n:2\r\n:0\r\n"
    );
    assert_eq!(h.cmd("LPOS l c MAXLEN 1 RANK -1"), ":4\r\n");
    assert!(
        h.cmd("LPOS l c RANK 0")
            .starts_with("-ERR RANK can't be zero")
    );
    assert_eq!(
        h.cmd("LPOS l c COUNT -1"),
        "-ERR COUNT can't be negative\r\n"
    );
    assert_eq!(
        h.cmd("LPOS l c MAXLEN x"),
        "-ERR MAXLEN can't be negative\r\n"
    );
    assert_eq!(h.cmd("LPOS l c RANK"), "-ERR syntax error\r\n");
}

#[test]
fn moves() {
    let mut h = Harness::new();
    assert_eq!(h.cmd("LMOVE a b LEFT UP"), "-ERR syntax error\r\n");
    assert_eq!(h.cmd("RPOPLPUSH a b"), "$-1\r\n");
    h.cmd("RPUSH a 1 2 3");
    assert_eq!(h.cmd("RPOPLPUSH a a"), "$1\r\n3\r\n");
    assert_eq!(h.cmd("LMOVE a b LEFT RIGHT"), "$1\r\n3\r\n");
    assert_eq!(h.cmd("LMOVE a b LEFT LEFT"), "$1\r\n1\r\n");
    assert_eq!(h.cmd("LMOVE a b RIGHT RIGHT"), "$1\r\n2\r\n");
    assert_eq!(h.cmd("EXISTS a"), ":0\r\n");
    assert_eq!(
        h.cmd("LRANGE b 0 -1"),
        "*3\r\n$1\r\n1\r\n$1\r\n3\r\n$1\r\n2\r\n"
    );
    h.set(0, b"s", b"v", ferrite_hybridlog::NO_EXPIRY);
    assert!(h.cmd("LMOVE b s LEFT LEFT").starts_with("-WRONGTYPE"));
    assert_eq!(h.cmd("LLEN b"), ":3\r\n");
    assert_eq!(
        h.cmd("LMPOP 0 b LEFT"),
        "-ERR numkeys should be greater than 0\r\n"
    );
    assert_eq!(h.cmd("LMPOP 3 b LEFT"), "-ERR syntax error\r\n");
    assert_eq!(
        h.cmd("LMPOP 1 b LEFT COUNT 0"),
        "-ERR count should be greater than 0\r\n"
    );
    assert_eq!(
        h.cmd("LMPOP 1 b LEFT COUNT 1 COUNT 1"),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        h.cmd("LMPOP 2 x b RIGHT COUNT 2"),
        "*2\r\n$1\r\nb\r\n*2\r\n$1\r\n2\r\n$1\r\n3\r\n"
    );
    assert!(h.cmd("LMPOP 2 s b RIGHT").starts_with("-WRONGTYPE"));
    assert_eq!(h.cmd("LMPOP 1 x LEFT"), "*-1\r\n");
}
