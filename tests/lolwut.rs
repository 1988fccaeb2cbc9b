//! LOLWUT VERSION 5 and 6 against redis-server 7.0.15: the drawings are random, so what is
//! compared is their shape (lines, characters or pixels per line) and their caption, for the
//! default sizes and given ones. The versionless LOLWUT is compared byte for byte in
//! tests/diff/server.txt.

mod common;

use common::{Conn, Ferrite, RedisServer};

per_backend!(drawings_have_redis_shapes);

/// The verbatim text of a RESP2 bulk reply.
fn text(reply: &[u8]) -> String {
    let s = String::from_utf8(reply.to_vec()).expect("UTF-8");
    let (head, body) = s.split_once("\r\n").expect("a bulk reply");
    assert!(head.starts_with('$'), "not a bulk: {s:?}");
    body.strip_suffix("\r\n").unwrap_or(body).to_string()
}

/// Per line: its width in characters (Braille) or in pixels (a colored space each).
fn shape(text: &str) -> Vec<usize> {
    text.lines()
        .map(|l| {
            if l.contains('\u{1b}') {
                l.matches(" \u{1b}[0m").count()
            } else {
                l.chars().count()
            }
        })
        .collect()
}

fn drawings_have_redis_shapes(backend: &str) {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let f = Ferrite::start(backend, &[]);
    let cases: &[&[&str]] = &[
        &["LOLWUT", "VERSION", "5"],
        &["LOLWUT", "VERSION", "5", "20", "4", "4"],
        &["LOLWUT", "VERSION", "5", "1"],
        &["LOLWUT", "VERSION", "5", "5000", "500", "500"],
        &["LOLWUT", "VERSION", "6"],
        &["LOLWUT", "VERSION", "6", "30", "8"],
        &["LOLWUT", "VERSION", "6", "0", "-3"],
    ];
    let (mut r, mut c) = (Conn::connect(redis.port), Conn::connect(f.port));
    for case in cases {
        let want = text(&r.cmd_str(case));
        let have = text(&c.cmd_str(case));
        assert_eq!(shape(&have), shape(&want), "{}: {case:?}", f.name);
        let caption = |t: &str| {
            t.lines()
                .rev()
                .take(2)
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(caption(&have), caption(&want), "{}: {case:?}", f.name);
    }
}
