//! LATENCY against redis-server 7.0.15: a script slow enough to pass latency-monitor-threshold
//! on both servers, then LATEST, HISTORY, GRAPH, DOCTOR and RESET compared with their numbers
//! (times, milliseconds) normalized. Both I/O backends.

mod common;

use std::time::{Duration, Instant};

use common::{Conn, Ferrite, RedisServer};

per_backend!(
    spikes_are_reported_as_redis_reports_them,
    threshold_from_the_command_line,
    histograms_count_calls_as_redis,
);

/// The threshold the tests set, ms: well above what a quick command takes on a loaded machine.
const THRESHOLD_MS: u64 = 50;

/// Every run of digits replaced by `N`.
fn digits_to_n(text: &str) -> String {
    let mut out = String::new();
    let mut in_num = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !in_num {
                out.push('N');
            }
            in_num = true;
        } else {
            in_num = false;
            out.push(c);
        }
    }
    out
}

/// A reply with every integer and every number in a bulk normalized.
fn normalized(reply: &[u8]) -> String {
    digits_to_n(&String::from_utf8_lossy(reply))
}

/// A Lua loop long enough to take three times the threshold on this server.
fn slow_script(c: &mut Conn) -> String {
    let mut n: u64 = 1_000_000;
    loop {
        let script = format!("local i = 0 while i < {n} do i = i + 1 end return 1");
        let t = Instant::now();
        assert_eq!(c.cmd_str(&["EVAL", &script, "0"]), b":1\r\n");
        if t.elapsed() >= Duration::from_millis(3 * THRESHOLD_MS) || n > 1 << 32 {
            return script;
        }
        n *= 2;
    }
}

/// What the test compares, per server.
#[derive(Debug, PartialEq)]
struct Seen {
    latest: String,
    history: String,
    graph: String,
    doctor: String,
    reset: Vec<u8>,
    after_reset: Vec<u8>,
}

fn scenario(port: u16) -> Seen {
    let mut c = Conn::connect(port);
    assert_eq!(
        c.cmd_str(&[
            "CONFIG",
            "SET",
            "latency-monitor-threshold",
            &THRESHOLD_MS.to_string()
        ]),
        b"+OK\r\n"
    );
    let script = slow_script(&mut c);
    // The calibration's own spikes are dropped: one spike, in one second.
    c.cmd_str(&["LATENCY", "RESET"]);
    let t = Instant::now();
    assert_eq!(c.cmd_str(&["EVAL", &script, "0"]), b":1\r\n");
    let took = t.elapsed();
    let latest = c.cmd_str(&["LATENCY", "LATEST"]);
    let text = String::from_utf8_lossy(&latest).into_owned();
    assert!(
        text.starts_with("*1\r\n*4\r\n$7\r\ncommand\r\n"),
        "{text:?}"
    );
    // The spike is the script's: at least the threshold, at most what the client saw.
    let ms: Vec<u64> = text
        .lines()
        .filter_map(|l| l.strip_prefix(':'))
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(
        ms[1] >= THRESHOLD_MS && ms[1] as u128 <= took.as_millis() + 1,
        "{ms:?}"
    );
    let history = c.cmd_str(&["LATENCY", "HISTORY", "command"]);
    let graph = c.cmd_str(&["LATENCY", "GRAPH", "command"]);
    let doctor = c.cmd_str(&["LATENCY", "DOCTOR"]);
    // Whether the process has transparent huge pages is the allocator's business: that
    // advice is left out of the comparison.
    let doctor = normalized(&doctor);
    let doctor = match doctor.find("- I detected a non zero amount of anonymous huge pages") {
        Some(at) => doctor[..at].to_string(),
        None => doctor,
    };
    let reset = c.cmd_str(&["LATENCY", "RESET", "COMMAND", "nosuch"]);
    let after_reset = c.cmd_str(&["LATENCY", "LATEST"]);
    c.cmd_str(&["CONFIG", "SET", "latency-monitor-threshold", "0"]);
    Seen {
        latest: normalized(&latest),
        history: normalized(&history),
        graph: normalized(&graph),
        doctor,
        reset,
        after_reset,
    }
}

fn spikes_are_reported_as_redis_reports_them(backend: &str) {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let f = Ferrite::start(backend, &["--threads", "2"]);
    let want = scenario(redis.port);
    let got = scenario(f.port);
    assert_eq!(got, want, "ferrite (left) vs redis-server (right)");
    assert!(
        got.doctor.contains("N. command: N latency spikes"),
        "{}",
        got.doctor
    );
    assert!(
        got.graph
            .contains("command - high N ms, low N ms (all time high N ms)")
    );
}

/// The threshold is a start-up setting like the others.
fn threshold_from_the_command_line(backend: &str) {
    let f = Ferrite::start(backend, &["--latency-monitor-threshold", "7"]);
    let mut c = f.conn();
    assert_eq!(
        c.cmd_str(&["CONFIG", "GET", "latency-monitor-threshold"]),
        b"*2\r\n$25\r\nlatency-monitor-threshold\r\n$1\r\n7\r\n"
    );
    assert!(
        normalized(&c.cmd_str(&["LATENCY", "DOCTOR"])).contains("Dave, no latency spike")
            || normalized(&c.cmd_str(&["LATENCY", "DOCTOR"])).contains("I have a few advices")
    );
}

/// The labels Redis gives LATENCY HISTOGRAM's buckets (µs).
const BUCKETS: &[i64] = &[
    1, 2, 4, 8, 16, 33, 66, 132, 264, 528, 1056, 2113, 4227, 8454, 16908, 33816, 67633, 135266,
    270532, 541065, 1082130,
];

/// LATENCY HISTOGRAM's reply (RESP2) as `(command, calls, calls counted in the buckets)`,
/// after checking that buckets are Redis's labels, increasing, with increasing counts.
fn histogram(reply: &[u8]) -> Vec<(String, i64, i64)> {
    let text = String::from_utf8_lossy(reply).into_owned();
    let mut lines = text.split("\r\n");
    let mut next = || lines.next().unwrap().to_string();
    let n: usize = next()[1..].parse().unwrap();
    let mut out = Vec::new();
    for _ in 0..n / 2 {
        next();
        let name = next();
        assert_eq!(next(), "*4");
        next();
        assert_eq!(next(), "calls");
        let calls: i64 = next()[1..].parse().unwrap();
        next();
        assert_eq!(next(), "histogram_usec");
        let pairs: usize = next()[1..].parse().unwrap();
        let (mut last_bucket, mut last_count) = (0, 0);
        for _ in 0..pairs / 2 {
            let bucket: i64 = next()[1..].parse().unwrap();
            let count: i64 = next()[1..].parse().unwrap();
            assert!(
                BUCKETS.contains(&bucket) && bucket > last_bucket,
                "{text:?}"
            );
            assert!(count > last_count, "{text:?}");
            (last_bucket, last_count) = (bucket, count);
        }
        out.push((name, calls, last_count));
    }
    out
}

fn histogram_scenario(port: u16) -> Vec<(String, i64, i64)> {
    let mut c = Conn::connect(port);
    let run = |c: &mut Conn, cmd: &[&str]| {
        c.cmd_str(cmd);
    };
    run(&mut c, &["CONFIG", "RESETSTAT"]);
    for _ in 0..3 {
        run(&mut c, &["SET", "k", "v"]);
    }
    for _ in 0..5 {
        run(&mut c, &["GET", "k"]);
    }
    run(&mut c, &["GET"]);
    run(&mut c, &["MULTI"]);
    run(&mut c, &["INCR", "n"]);
    run(&mut c, &["INCR", "n"]);
    run(&mut c, &["EXEC"]);
    run(&mut c, &["EVAL", "return redis.call('incr', 'n')", "0"]);
    run(&mut c, &["CONFIG", "SET", "latency-tracking", "no"]);
    run(&mut c, &["GET", "k"]);
    run(&mut c, &["CONFIG", "SET", "latency-tracking", "yes"]);
    run(
        &mut c,
        &[
            "CONFIG",
            "SET",
            "latency-tracking-info-percentiles",
            "0 50 99.9 100",
        ],
    );
    let info = c.cmd_str(&["INFO", "latencystats"]);
    run(
        &mut c,
        &[
            "CONFIG",
            "SET",
            "latency-tracking-info-percentiles",
            "50 99 99.9",
        ],
    );
    let mut lines = latencystats(&info);
    lines.sort();
    let mut out = vec![(lines.join("\n"), 0, 0)];
    let reply = c.cmd_str(&[
        "LATENCY",
        "HISTOGRAM",
        "set",
        "GET",
        "incr",
        "exec",
        "eval",
        "multi",
        "nosuch",
        "config|set",
        "get",
    ]);
    out.extend(histogram(&reply));
    out
}

/// INFO latencystats' lines with the percentile values checked (increasing, µs with three
/// decimals) and replaced by `N`.
fn latencystats(info: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(info).into_owned();
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("latency_percentiles_usec_"))
    {
        let (name, values) = line.split_once(':').unwrap();
        let mut last = 0.0f64;
        let mut labels = Vec::new();
        for item in values.split(',') {
            let (label, v) = item.split_once('=').unwrap();
            let (whole, frac) = v.split_once('.').unwrap();
            assert_eq!(frac.len(), 3, "{line}");
            let v: f64 = format!("{whole}.{frac}").parse().unwrap();
            assert!(v >= last && v > 0.0, "{line}");
            last = v;
            labels.push(format!("{label}=N"));
        }
        out.push(format!("{name}:{}", labels.join(",")));
    }
    out
}

/// Which calls LATENCY HISTOGRAM counts: EXEC's and a script's commands on their own, not
/// refused ones, not while tracking is off.
fn histograms_count_calls_as_redis(backend: &str) {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let f = Ferrite::start(backend, &["--threads", "2"]);
    let want = histogram_scenario(redis.port);
    let got = histogram_scenario(f.port);
    assert_eq!(got, want, "ferrite (left) vs redis-server (right)");
    assert_eq!(got[2], ("get".to_string(), 5, 5));
    assert!(
        got[0]
            .0
            .contains("latency_percentiles_usec_incr:p0=N,p50=N,p99.9=N,p100=N")
    );
}
