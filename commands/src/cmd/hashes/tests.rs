//! Hash handlers through the real dispatcher and store.

use crate::cmd::keys::tests::Harness;

#[test]
fn set_get_delete() {
    let mut h = Harness::new();
    assert_eq!(
        h.cmd("HSET h a"),
        "-ERR wrong number of arguments for 'hset' command\r\n"
    );
    assert_eq!(
        h.cmd("HMSET h a 1 b"),
        "-ERR wrong number of arguments for 'hmset' command\r\n"
    );
    assert_eq!(h.cmd("HSET h a 1 b 2 a 3"), ":2\r\n");
    assert_eq!(h.cmd("HMSET h c 4"), "+OK\r\n");
    assert_eq!(h.cmd("HSETNX h a 9"), ":0\r\n");
    assert_eq!(h.cmd("HSETNX h d 5"), ":1\r\n");
    assert_eq!(h.cmd("HGET h a"), "$1\r\n3\r\n");
    assert_eq!(h.cmd("HMGET h a zz"), "*2\r\n$1\r\n3\r\n$-1\r\n");
    assert_eq!(h.cmd("HMGET nokey a zz"), "*2\r\n$-1\r\n$-1\r\n");
    assert_eq!(
        h.cmd("HKEYS h"),
        "*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n"
    );
    assert_eq!(h.cmd("HLEN h"), ":4\r\n");
    assert_eq!(h.cmd("HSTRLEN h a"), ":1\r\n");
    assert_eq!(h.cmd("HEXISTS h zz"), ":0\r\n");
    assert_eq!(h.cmd("HDEL h a b zz"), ":2\r\n");
    assert_eq!(
        h.cmd("HGETALL h"),
        "*4\r\n$1\r\nc\r\n$1\r\n4\r\n$1\r\nd\r\n$1\r\n5\r\n"
    );
    assert_eq!(h.cmd("HDEL h c d"), ":2\r\n");
    assert_eq!(h.cmd("EXISTS h"), ":0\r\n");
    assert_eq!(h.cmd("HGETALL h"), "*0\r\n");
}

#[test]
fn counters() {
    let mut h = Harness::new();
    assert_eq!(
        h.cmd("HINCRBY h n x"),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(h.cmd("HINCRBY h n 5"), ":5\r\n");
    assert_eq!(
        h.cmd("HINCRBY h n 9223372036854775807"),
        "-ERR increment or decrement would overflow\r\n"
    );
    assert_eq!(h.cmd("HINCRBYFLOAT h n 0.5"), "$3\r\n5.5\r\n");
    assert_eq!(
        h.cmd("HINCRBY h n 1"),
        "-ERR hash value is not an integer\r\n"
    );
    assert_eq!(
        h.cmd("HINCRBYFLOAT h f inf"),
        "-ERR value is NaN or Infinity\r\n"
    );
    assert_eq!(
        h.cmd("HINCRBYFLOAT h f nan"),
        "-ERR value is not a valid float\r\n"
    );
    assert_eq!(h.cmd("HINCRBYFLOAT h f 0.1"), "$3\r\n0.1\r\n");
    assert_eq!(h.cmd("HINCRBYFLOAT h f 0.2"), "$3\r\n0.3\r\n");
    h.cmd("HSET h s abc");
    assert_eq!(
        h.cmd("HINCRBYFLOAT h s 1"),
        "-ERR hash value is not a float\r\n"
    );
}

#[test]
fn random_and_scan() {
    let mut h = Harness::new();
    assert_eq!(h.cmd("HRANDFIELD h"), "$-1\r\n");
    assert_eq!(h.cmd("HRANDFIELD h 3"), "*0\r\n");
    assert_eq!(h.cmd("HSCAN h 0 COUNT 0"), "*2\r\n$1\r\n0\r\n*0\r\n");
    h.cmd("HSET h a 1 b 2");
    assert_eq!(h.cmd("HRANDFIELD h 0"), "*0\r\n");
    assert_eq!(
        h.cmd("HRANDFIELD h 5 WITHVALUES"),
        "*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"
    );
    assert_eq!(h.cmd("HRANDFIELD h -3").matches('$').count(), 3);
    assert_eq!(h.cmd("HRANDFIELD h 1 foo"), "-ERR syntax error\r\n");
    assert_eq!(
        h.cmd("HRANDFIELD h -9223372036854775807 WITHVALUES"),
        "-ERR value is out of range\r\n"
    );
    assert_eq!(h.cmd("HSCAN h x"), "-ERR invalid cursor\r\n");
    assert_eq!(h.cmd("HSCAN h 0 COUNT 0"), "-ERR syntax error\r\n");
    assert_eq!(
        h.cmd("HSCAN h 0 MATCH b"),
        "*2\r\n$1\r\n0\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n"
    );
}
