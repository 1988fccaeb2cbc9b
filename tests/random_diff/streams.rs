//! Random stream commands for the random differential test: explicit or `<ms>-*` IDs only
//! (never `*`, which takes each server's own clock), consumer groups, trimming that crosses
//! node boundaries (100 entries or 4 KiB per node), and the replies that carry times compared
//! by type only.

use super::{Cmp, Rng};

/// A stream entry ID: mostly increasing small IDs, sometimes special or malformed ones.
fn id(r: &mut Rng) -> String {
    match r.below(20) {
        0 => r
            .pick(&[
                "-",
                "+",
                "0",
                "0-0",
                "$",
                ">",
                "x",
                "1-x",
                "18446744073709551615-18446744073709551615",
            ])
            .to_string(),
        1 => format!("({}-{}", r.range(0, 60), r.range(0, 3)),
        2 => r.range(0, 60).to_string(),
        _ => format!("{}-{}", r.range(0, 60), r.range(0, 3)),
    }
}

fn group(r: &mut Rng) -> String {
    r.pick(&["g0", "g1"]).to_string()
}

fn consumer(r: &mut Rng) -> String {
    r.pick(&["alice", "bob", "carol"]).to_string()
}

/// The value of an added field: short, numeric, or long enough to fill a node's 4 KiB.
fn value(r: &mut Rng, m: &str) -> String {
    match r.below(10) {
        0 => "v".repeat(r.below(900) + 100),
        1 => r.range(-100_000, 100_000).to_string(),
        _ => m.to_string(),
    }
}

/// One random stream command on key `k` (another key `k2` for multi-key reads).
pub(super) fn step(
    r: &mut Rng,
    k: String,
    k2: String,
    m: String,
    m2: String,
) -> (Cmp, Vec<String>) {
    use Cmp::*;
    let v = |items: &[&str]| -> Vec<String> { items.iter().map(|x| x.to_string()).collect() };
    let n = r.range(0, 5).to_string();
    match r.below(30) {
        0..=5 => {
            // XADD, with increasing `<ms>-*` IDs most of the time.
            let mut line = v(&["XADD", &k]);
            if r.chance(10) {
                line.push("NOMKSTREAM".into());
            }
            if r.chance(20) {
                line.push(r.pick(&["MAXLEN", "MINID"]).into());
                line.push(r.pick(&["~", "=", "~"]).into());
                line.push(if line[line.len() - 2] == "MAXLEN" {
                    r.range(0, 150).to_string()
                } else {
                    id(r)
                });
                if r.chance(30) {
                    line.push("LIMIT".into());
                    line.push(r.range(0, 200).to_string());
                }
            }
            line.push(if r.chance(70) {
                format!("{}-*", r.range(0, 60))
            } else {
                id(r)
            });
            let pairs = if r.chance(5) { 0 } else { r.below(3) + 1 };
            for j in 0..pairs {
                line.push(if j == 0 { m.clone() } else { format!("f{j}") });
                line.push(value(r, &m2));
            }
            (Exact, line)
        }
        6 => (Exact, v(&["XLEN", &k])),
        7 => (Exact, v(&["XRANGE", &k, &id(r), &id(r)])),
        8 => (Exact, v(&["XREVRANGE", &k, &id(r), &id(r), "COUNT", &n])),
        9 => (Exact, v(&["XDEL", &k, &id(r), &id(r)])),
        10 => {
            let strategy = r.pick(&["MAXLEN", "MINID"]);
            let threshold = if strategy == "MAXLEN" {
                r.range(-1, 150).to_string()
            } else {
                id(r)
            };
            let mut line = v(&["XTRIM", &k, strategy, r.pick(&["~", "=", ""]), &threshold]);
            line.retain(|a| !a.is_empty());
            if r.chance(30) {
                line.extend(v(&["LIMIT", &r.range(0, 300).to_string()]));
            }
            (Exact, line)
        }
        11 => (
            Exact,
            v(&["XREAD", "COUNT", &n, "STREAMS", &k, &k2, &id(r), &id(r)]),
        ),
        12 => {
            let mut line = v(&[
                "XGROUP",
                "CREATE",
                &k,
                &group(r),
                r.pick(&["0", "$", "5-0"]),
            ]);
            if r.chance(40) {
                line.push("MKSTREAM".into());
            }
            if r.chance(30) {
                line.extend(v(&["ENTRIESREAD", &r.range(-2, 20).to_string()]));
            }
            (Exact, line)
        }
        13 => (Exact, v(&["XGROUP", "SETID", &k, &group(r), &id(r)])),
        14 => (
            Exact,
            v(&[
                "XGROUP",
                r.pick(&["CREATECONSUMER", "DELCONSUMER"]),
                &k,
                &group(r),
                &consumer(r),
            ]),
        ),
        15 => (Exact, v(&["XGROUP", "DESTROY", &k, &group(r)])),
        16..=18 => {
            let mut line = v(&["XREADGROUP", "GROUP", &group(r), &consumer(r), "COUNT", &n]);
            if r.chance(20) {
                line.push("NOACK".into());
            }
            line.extend(v(&["STREAMS", &k, r.pick(&[">", ">", "0", "3-0"])]));
            (Exact, line)
        }
        19 => (Exact, v(&["XACK", &k, &group(r), &id(r), &id(r)])),
        20 => (Exact, v(&["XPENDING", &k, &group(r)])),
        // The extended form carries idle times.
        21 => (Class, v(&["XPENDING", &k, &group(r), "-", "+", "10"])),
        22 => (
            Exact,
            v(&[
                "XCLAIM",
                &k,
                &group(r),
                &consumer(r),
                "0",
                &id(r),
                &id(r),
                "JUSTID",
            ]),
        ),
        23 => (
            Exact,
            v(&[
                "XAUTOCLAIM",
                &k,
                &group(r),
                &consumer(r),
                "0",
                &id(r),
                "COUNT",
                "3",
                "JUSTID",
            ]),
        ),
        24 => (Exact, v(&["XINFO", "GROUPS", &k])),
        25 => (Class, v(&["XINFO", "CONSUMERS", &k, &group(r)])),
        26 => (Exact, v(&["XINFO", "STREAM", &k])),
        27 => {
            let mut line = v(&["XSETID", &k, &id(r)]);
            if r.chance(40) {
                line.extend(v(&[
                    "ENTRIESADDED",
                    &r.range(0, 200).to_string(),
                    "MAXDELETEDID",
                    &id(r),
                ]));
            }
            (Exact, line)
        }
        // Consumers and pending entries carry the time they were seen or delivered, each
        // server's own clock: exact DUMPs of streams are in tests/diff/streams.txt and the
        // DUMP/RESTORE round trip.
        28 => (Class, v(&["DUMP", &k])),
        _ => (
            Exact,
            v(&["XRANGE", &k, "-", "+", "COUNT", &r.range(1, 4).to_string()]),
        ),
    }
}
