//! The differential runner: every command in `tests/diff/*.txt` is sent to a real redis-server
//! and to Ferrite (on each I/O backend), and the raw reply bytes must be identical.
//! The file format is described in `tests/diff/README.md`.
//!
//! `DIFF_FILE=substring` limits the run to files whose name contains it;
//! `DIFF_VERBOSE=1` prints every command with both replies.

mod common;

use common::{Conn, Ferrite, RedisServer, escape, sort_reply, split_args, unescape};
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How a line's replies are compared.
#[derive(Clone, Debug, PartialEq)]
enum Mode {
    Exact,
    Sorted,
    NoCompare,
    TypeOfReply,
    /// Only the listed `name=value` / `name:value` fields of a text reply (see [`fields`]).
    Fields(Vec<String>),
    /// Only the field names of an INFO reply, in order (see [`keys`]).
    Keys,
}

#[derive(Debug)]
enum Step {
    Cmd { mode: Mode, args: Vec<Vec<u8>> },
    Raw(Vec<u8>),
    Sleep(u64),
}

#[derive(Debug)]
struct Line {
    no: usize,
    text: String,
    step: Step,
}

#[derive(Debug)]
struct Case {
    name: String,
    lines: Vec<Line>,
}

fn parse_file(text: &str) -> Result<Vec<Case>, String> {
    let mut cases = vec![Case {
        name: "(top)".to_string(),
        lines: Vec::new(),
    }];
    for (i, raw) in text.lines().enumerate() {
        let no = i + 1;
        let line = raw.trim();
        if let Some(name) = line.strip_prefix("###") {
            cases.push(Case {
                name: name.trim().to_string(),
                lines: Vec::new(),
            });
            continue;
        }
        if line.is_empty() || line.starts_with('#') || line.starts_with("!server-args") {
            continue;
        }
        let step = if let Some(rest) = line.strip_prefix('!') {
            let (dir, arg) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let arg = arg.trim();
            let cmd = |mode, arg: &str| -> Result<Step, String> {
                let args = split_args(arg).map_err(|e| format!("line {no}: {e}"))?;
                if args.is_empty() {
                    return Err(format!("line {no}: !{dir} without a command"));
                }
                Ok(Step::Cmd { mode, args })
            };
            match dir {
                "sorted" => cmd(Mode::Sorted, arg)?,
                "nocompare" => cmd(Mode::NoCompare, arg)?,
                "type-of-reply" => cmd(Mode::TypeOfReply, arg)?,
                "keys" => cmd(Mode::Keys, arg)?,
                "fields" => {
                    let (names, rest) = arg
                        .split_once(char::is_whitespace)
                        .ok_or_else(|| format!("line {no}: !fields NAME,NAME... COMMAND"))?;
                    let names = names.split(',').map(str::to_string).collect();
                    cmd(Mode::Fields(names), rest.trim())?
                }
                "sleep" => Step::Sleep(
                    arg.parse()
                        .map_err(|_| format!("line {no}: !sleep wants milliseconds"))?,
                ),
                "raw" => Step::Raw(unescape(arg).map_err(|e| format!("line {no}: {e}"))?),
                _ => return Err(format!("line {no}: unknown directive !{dir}")),
            }
        } else {
            let args = split_args(line).map_err(|e| format!("line {no}: {e}"))?;
            Step::Cmd {
                mode: Mode::Exact,
                args,
            }
        };
        cases.last_mut().unwrap().lines.push(Line {
            no,
            text: line.to_string(),
            step,
        });
    }
    if cases[0].lines.is_empty() {
        cases.remove(0);
    }
    Ok(cases)
}

/// The integer class used by `!type-of-reply`: -2, -1 or >= 0.
fn int_class(reply: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(reply.get(1..)?).ok()?.trim_end();
    let n: i64 = s.parse().ok()?;
    Some(if n >= 0 { 0 } else { n.max(-2) })
}

fn same_type(a: &[u8], b: &[u8]) -> bool {
    match (a.first(), b.first()) {
        (Some(b':'), Some(b':')) => int_class(a) == int_class(b),
        (x, y) => x == y,
    }
}

/// The text of a bulk or verbatim string reply (`txt:` stripped); other replies as they are.
fn reply_text(reply: &[u8]) -> Vec<u8> {
    let (Some(&kind), Some(nl)) = (reply.first(), reply.iter().position(|&b| b == b'\n')) else {
        return reply.to_vec();
    };
    if kind != b'$' && kind != b'=' {
        return reply.to_vec();
    }
    let body = &reply[nl + 1..];
    let body = body.strip_suffix(b"\r\n").unwrap_or(body);
    if kind == b'=' {
        body.get(4..).unwrap_or_default().to_vec()
    } else {
        body.to_vec()
    }
}

/// `!fields`: from each line of a text reply, the `name=value` items (separated by spaces or
/// commas, as in CLIENT LIST and INFO commandstats) whose name is listed, prefixed by the
/// line's `key:` when it has one (`cmdstat_get:calls=1`); or the whole `name:value` line when
/// `name` is listed (INFO). Lines with nothing listed are dropped; the rest are sorted (Redis
/// prints commandstats in hash order).
fn fields(reply: &[u8], names: &[String]) -> Vec<u8> {
    let text = String::from_utf8_lossy(&reply_text(reply)).into_owned();
    let mut lines = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        let (prefix, items) = match line.split_once(':') {
            Some((k, _)) if names.iter().any(|n| n == k) => {
                lines.push(line.to_string());
                continue;
            }
            Some((k, rest)) if !k.contains(['=', ' ']) => (format!("{k}:"), rest),
            _ => (String::new(), line),
        };
        let kept: Vec<&str> = items
            .split([' ', ','])
            .filter(|item| {
                item.split_once('=')
                    .is_some_and(|(k, _)| names.iter().any(|n| n == k))
            })
            .collect();
        if !kept.is_empty() {
            lines.push(format!("{prefix}{}", kept.join(",")));
        }
    }
    lines.sort();
    lines.join("\n").into_bytes()
}

/// `!keys`: the section headers and field names of an INFO reply, in order.
fn keys(reply: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(&reply_text(reply)).into_owned();
    let names: Vec<&str> = text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.is_empty())
        .map(|l| {
            if l.starts_with('#') {
                l
            } else {
                l.split_once(':').map_or(l, |(k, _)| k)
            }
        })
        .collect();
    names.join("\n").into_bytes()
}

/// A reply, or what went wrong reading it (rendered into the comparison).
fn outcome(r: io::Result<Vec<u8>>) -> (Vec<u8>, bool) {
    match r {
        Ok(v) => (v, false),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            (b"<connection closed>".to_vec(), true)
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            (b"<timeout: no reply within 5 s>".to_vec(), true)
        }
        Err(e) => (format!("<error: {e}>").into_bytes(), true),
    }
}

struct Side<'a> {
    port: u16,
    name: &'a str,
    conn: Option<Conn>,
}

impl Side<'_> {
    fn conn(&mut self) -> io::Result<&mut Conn> {
        if self.conn.is_none() {
            self.conn = Some(Conn::try_connect(self.port)?);
        }
        Ok(self.conn.as_mut().unwrap())
    }

    fn command(&mut self, args: &[Vec<u8>]) -> (Vec<u8>, bool) {
        let a: Vec<&[u8]> = args.iter().map(|v| v.as_slice()).collect();
        let r = self.conn().and_then(|c| {
            c.try_send(&a)?;
            c.try_read_reply()
        });
        let (bytes, broken) = outcome(r);
        if broken {
            // The stream is out of step (or gone): the next line starts on a new connection.
            self.conn = None;
        }
        (bytes, broken)
    }

    /// Send raw bytes, read until idle; returns the bytes and whether the server closed. With
    /// `expect` (the reference server's answer), idleness only ends the read once at least as
    /// many bytes (and the close, if it closed) have arrived, so a slow machine does not make a
    /// late reply look missing.
    fn raw(&mut self, bytes: &[u8], expect: Option<&(Vec<u8>, bool)>) -> (Vec<u8>, bool) {
        let c = match self.conn() {
            Ok(c) => c,
            Err(e) => return (format!("<connect error: {e}>").into_bytes(), true),
        };
        let _ = c.stream.write_all(bytes);
        let deadline = Instant::now() + Duration::from_secs(5);
        let (mut out, mut closed) = (Vec::new(), false);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (more, now_closed) = c.read_until_idle(Duration::from_millis(200), left);
            out.extend_from_slice(&more);
            closed |= now_closed;
            let satisfied = match expect {
                None => true,
                Some((want, want_closed)) => out.len() >= want.len() && (closed || !want_closed),
            };
            if satisfied || closed || Instant::now() >= deadline {
                break;
            }
        }
        if closed {
            self.conn = None;
        }
        (out, closed)
    }
}

struct FileReport {
    compared: usize,
    failures: Vec<String>,
    notes: Vec<String>,
    /// Lines after whose `!raw` the server closed the connection (the case reconnected).
    reconnects: Vec<String>,
}

fn run_file(path: &Path, backend: &str, verbose: bool) -> FileReport {
    let fname = path.file_name().unwrap().to_string_lossy().into_owned();
    let mut rep = FileReport {
        compared: 0,
        failures: Vec::new(),
        notes: Vec::new(),
        reconnects: Vec::new(),
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            rep.failures.push(format!("{fname}: cannot read: {e}"));
            return rep;
        }
    };
    let cases = match parse_file(&text) {
        Ok(c) => c,
        Err(e) => {
            rep.failures.push(format!("{fname}: parse error: {e}"));
            return rep;
        }
    };
    // `!server-args ...` lines: configuration both servers start with.
    let extra: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("!server-args"))
        .flat_map(|a| a.split_whitespace().map(str::to_string))
        .collect();
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let Some(redis) = RedisServer::start_with(&extra) else {
        return rep;
    };
    let mut ferrite = Ferrite::start(backend, &[&["--threads", "2"][..], &extra].concat());
    let mut r = Side {
        port: redis.port,
        name: "redis",
        conn: None,
    };
    let mut f = Side {
        port: ferrite.port,
        name: "ferrite",
        conn: None,
    };

    for case in &cases {
        // A fresh start for each case: new connections, empty keyspace.
        for s in [&mut r, &mut f] {
            s.conn = None;
            let (rep_bytes, _) = s.command(&[b"FLUSHALL".to_vec()]);
            if rep_bytes != b"+OK\r\n" {
                let msg = format!(
                    "{fname} [{backend}] case '{}': FLUSHALL on {} replied {}",
                    case.name,
                    s.name,
                    escape(&rep_bytes)
                );
                rep.failures.push(msg);
            }
        }
        for line in &case.lines {
            let at = format!("{fname}:{} [{backend}] case '{}'", line.no, case.name);
            match &line.step {
                Step::Sleep(ms) => std::thread::sleep(Duration::from_millis(*ms)),
                Step::Cmd { mode, args } => {
                    let (a, a_broken) = r.command(args);
                    let (b, b_broken) = f.command(args);
                    if a_broken && a.starts_with(b"<timeout") {
                        rep.notes.push(format!(
                            "{at}: redis-server itself timed out on `{}`",
                            line.text
                        ));
                    }
                    let (ok, shown_a, shown_b) = match mode {
                        Mode::Exact => (a == b, a.clone(), b.clone()),
                        Mode::Sorted => {
                            let (sa, sb) = (sort_reply(&a), sort_reply(&b));
                            (sa == sb, sa, sb)
                        }
                        Mode::NoCompare => (true, a.clone(), b.clone()),
                        Mode::TypeOfReply => (same_type(&a, &b), a.clone(), b.clone()),
                        Mode::Fields(names) => {
                            let (fa, fb) = (fields(&a, names), fields(&b, names));
                            (fa == fb, fa, fb)
                        }
                        Mode::Keys => {
                            let (ka, kb) = (keys(&a), keys(&b));
                            (ka == kb, ka, kb)
                        }
                    };
                    if *mode != Mode::NoCompare {
                        rep.compared += 1;
                    }
                    if verbose {
                        eprintln!(
                            "{at}: {}\n    redis:   {}\n    ferrite: {}",
                            line.text,
                            escape(&shown_a),
                            escape(&shown_b)
                        );
                    }
                    if !ok {
                        rep.failures.push(format!(
                            "{at}: {}\n    redis:   {}\n    ferrite: {}",
                            line.text,
                            escape(&shown_a),
                            escape(&shown_b)
                        ));
                    }
                    if b_broken && !ferrite.is_running() {
                        rep.failures.push(format!(
                            "{at}: ferrite died on `{}`; rest of the file skipped",
                            line.text
                        ));
                        eprintln!("--- ferrite log ---\n{}", ferrite.log());
                        return rep;
                    }
                }
                Step::Raw(bytes) => {
                    let reference = r.raw(bytes, None);
                    let (b, b_closed) = f.raw(bytes, Some(&reference));
                    let (mut a, mut a_closed) = reference;
                    if b.len() > a.len() && !a_closed {
                        // Ferrite said more: on a loaded machine redis-server may just have
                        // been slower than the idle timeout. Give it as long as Ferrite got.
                        let (more, closed) = r.raw(b"", Some(&(b[a.len()..].to_vec(), b_closed)));
                        a.extend_from_slice(&more);
                        a_closed = closed;
                    }
                    rep.compared += 1;
                    if a_closed || b_closed {
                        rep.reconnects.push(if a_closed == b_closed {
                            line.no.to_string()
                        } else {
                            format!(
                                "{} (redis closed: {a_closed}, ferrite: {b_closed})",
                                line.no
                            )
                        });
                    }
                    if verbose {
                        eprintln!(
                            "{at}: {}\n    redis:   {}{}\n    ferrite: {}{}",
                            line.text,
                            escape(&a),
                            if a_closed { " <closed>" } else { "" },
                            escape(&b),
                            if b_closed { " <closed>" } else { "" },
                        );
                    }
                    if a != b || a_closed != b_closed {
                        rep.failures.push(format!(
                            "{at}: {}\n    redis:   {}{}\n    ferrite: {}{}",
                            line.text,
                            escape(&a),
                            if a_closed { " <then closed>" } else { "" },
                            escape(&b),
                            if b_closed { " <then closed>" } else { "" },
                        ));
                    }
                }
            }
        }
    }
    drop(redis);
    rep
}

fn diff_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diff");
    let filter = std::env::var("DIFF_FILE").unwrap_or_default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "txt"))
                .filter(|p| {
                    filter.is_empty() || p.file_name().unwrap().to_string_lossy().contains(&filter)
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn run_backend(backend: &str) {
    if !common::require_tool("redis-server") {
        return;
    }
    let verbose = std::env::var("DIFF_VERBOSE").is_ok_and(|v| !v.is_empty() && v != "0");
    let files = diff_files();
    if files.is_empty() {
        eprintln!("no tests/diff/*.txt files (or none match DIFF_FILE)");
        return;
    }
    let started = Instant::now();
    let mut all_failures = Vec::new();
    let mut total = 0;
    let mut summary = String::new();
    for path in &files {
        let t0 = Instant::now();
        let rep = run_file(path, backend, verbose);
        let name = path.file_name().unwrap().to_string_lossy();
        let line = format!(
            "{name} [{backend}]: {} commands compared, {} mismatches ({:.1} s)",
            rep.compared,
            rep.failures.len(),
            t0.elapsed().as_secs_f64()
        );
        eprintln!("{line}");
        for n in &rep.notes {
            eprintln!("  note: {n}");
        }
        if !rep.reconnects.is_empty() {
            eprintln!(
                "  the server closed the connection after !raw on line(s) {}; \
                 reconnected for the lines after",
                rep.reconnects.join(", ")
            );
        }
        let _ = writeln!(summary, "{line}");
        total += rep.compared;
        all_failures.extend(rep.failures);
    }
    eprintln!(
        "[{backend}] {} files, {total} commands compared in {:.1} s",
        files.len(),
        started.elapsed().as_secs_f64()
    );
    if !all_failures.is_empty() {
        panic!(
            "{} differential mismatch(es) on the {backend} backend:\n\n{}\n\nper file:\n{summary}",
            all_failures.len(),
            all_failures.join("\n\n")
        );
    }
}

#[test]
fn differential_uring() {
    run_backend("uring");
}

#[test]
fn differential_epoll() {
    run_backend("epoll");
}

#[test]
fn diff_file_format_parses() {
    let cases = parse_file(
        "SET a 1\n# c\n\n### two\n!sorted KEYS *\n!nocompare INFO\n!sleep 5\n\
         !type-of-reply TTL a\n!raw \"PING\\r\\n\"\n",
    )
    .unwrap();
    assert_eq!(cases.len(), 2);
    assert_eq!(cases[0].name, "(top)");
    assert_eq!(cases[1].lines.len(), 5);
    assert!(matches!(
        cases[1].lines[3].step,
        Step::Cmd {
            mode: Mode::TypeOfReply,
            ..
        }
    ));
    assert!(matches!(&cases[1].lines[4].step, Step::Raw(b) if b == b"PING\r\n"));
    assert!(same_type(b":5\r\n", b":0\r\n"));
    assert!(!same_type(b":-1\r\n", b":-2\r\n"));
    assert!(!same_type(b":-1\r\n", b"$1\r\n1\r\n"));
    let cases = parse_file("!fields flags,sub CLIENT INFO\n!keys INFO stats\n").unwrap();
    assert!(matches!(
        &cases[0].lines[0].step,
        Step::Cmd { mode: Mode::Fields(n), args } if n.len() == 2 && args.len() == 2
    ));
    let info = b"=61\r\ntxt:id=3 addr=1.2.3.4:5 flags=P sub=1 psub=0 cmd=client|info\n\r\n";
    assert_eq!(
        fields(info, &["flags".into(), "sub".into()]),
        b"flags=P,sub=1"
    );
    let stats =
        b"$74\r\n# Commandstats\r\ncmdstat_get:calls=2,usec=5,failed_calls=0\r\nx:1\r\n\r\n";
    assert_eq!(
        fields(stats, &["calls".into(), "failed_calls".into(), "x".into()]),
        b"cmdstat_get:calls=2,failed_calls=0\nx:1"
    );
    assert_eq!(keys(stats), b"# Commandstats\ncmdstat_get\nx");
    // Every checked-in file must parse.
    for p in diff_files() {
        let t = std::fs::read_to_string(&p).unwrap();
        if let Err(e) = parse_file(&t) {
            panic!("{}: {e}", p.display());
        }
    }
}
