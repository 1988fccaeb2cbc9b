//! Unit and property tests of the request parser against Redis 7.0.15's behaviour.

use proptest::prelude::*;

use super::*;

/// What the caller of the parser sees, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Command(Vec<Vec<u8>>),
    Error(&'static [u8]),
}

/// Runs the parser over `input` as the worker does; returns the events and the bytes left over.
fn run(input: &[u8], limits: &Limits) -> (Vec<Event>, usize) {
    let mut parser = Parser::new();
    let mut events = Vec::new();
    let mut pos = 0;
    loop {
        match parser.parse(&input[pos..], limits) {
            Parse::Command { consumed } => {
                assert!(consumed > 0 && consumed <= input.len() - pos);
                let args = parser.args(&input[pos..]);
                events.push(Event::Command(
                    args.iter_from(0).map(<[u8]>::to_vec).collect(),
                ));
                pos += consumed;
            }
            Parse::Skip { consumed } => {
                assert!(consumed > 0 && consumed <= input.len() - pos);
                pos += consumed;
            }
            Parse::Incomplete => return (events, input.len() - pos),
            Parse::Error(msg) => {
                events.push(Event::Error(msg));
                return (events, input.len() - pos);
            }
        }
    }
}

/// Feeds `input` in pieces cut at `cuts`, keeping the unconsumed prefix as a caller does.
fn run_split(input: &[u8], cuts: &[usize], limits: &Limits) -> (Vec<Event>, usize) {
    let mut parser = Parser::new();
    let mut events = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut bounds: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
    bounds.push(input.len());
    bounds.sort_unstable();
    let mut fed = 0;
    for &end in &bounds {
        buf.extend_from_slice(&input[fed..end]);
        fed = end;
        loop {
            match parser.parse(&buf, limits) {
                Parse::Command { consumed } => {
                    let args = parser.args(&buf);
                    events.push(Event::Command(
                        args.iter_from(0).map(<[u8]>::to_vec).collect(),
                    ));
                    buf.drain(..consumed);
                }
                Parse::Skip { consumed } => {
                    buf.drain(..consumed);
                }
                Parse::Incomplete => break,
                Parse::Error(msg) => {
                    events.push(Event::Error(msg));
                    return (events, buf.len());
                }
            }
        }
    }
    (events, buf.len())
}

fn cmds(input: &[u8]) -> Vec<Event> {
    run(input, &Limits::default()).0
}

fn cmd(args: &[&[u8]]) -> Event {
    Event::Command(args.iter().map(|a| a.to_vec()).collect())
}

fn first(input: &[u8]) -> Parse {
    Parser::new().parse(input, &Limits::default())
}

fn unauth() -> Limits {
    Limits {
        authenticated: false,
        ..Limits::default()
    }
}

fn multibulk(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Every byte escaped inside double quotes: the inline form of any argument.
fn quoted(arg: &[u8]) -> Vec<u8> {
    let mut out = vec![b'"'];
    for b in arg {
        out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
    }
    out.push(b'"');
    out
}

#[test]
fn multibulk_commands() {
    assert_eq!(cmds(b"*1\r\n$4\r\nPING\r\n"), vec![cmd(&[b"PING"])]);
    assert_eq!(
        cmds(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n*1\r\n$4\r\nPING\r\n"),
        vec![cmd(&[b"SET", b"k", b""]), cmd(&[b"PING"])]
    );
    assert_eq!(
        first(b"*2\r\n$3\r\nGET\r\n$3\r\na\0b\r\nrest"),
        Parse::Command { consumed: 22 }
    );
    assert_eq!(
        cmds(b"*2\r\n$3\r\nGET\r\n$3\r\na\0b\r\n"),
        vec![cmd(&[b"GET", b"a\0b"])]
    );
}

#[test]
fn empty_multibulks_are_skipped() {
    assert_eq!(first(b"*0\r\n"), Parse::Skip { consumed: 4 });
    assert_eq!(first(b"*-1\r\n"), Parse::Skip { consumed: 5 });
    assert_eq!(cmds(b"*-10\r\nPING\r\n"), vec![cmd(&[b"PING"])]);
    assert_eq!(run(b"*-10\r\n", &unauth()).0, vec![]);
}

#[test]
fn multibulk_quirks_follow_redis() {
    // The byte after `\r` and the two after a bulk are skipped without being checked.
    assert_eq!(cmds(b"*1\rX$4\r\nPINGab"), vec![cmd(&[b"PING"])]);
    // A `\r` that ends the input waits for the byte after it.
    assert_eq!(first(b"*1\r"), Parse::Incomplete);
    assert_eq!(first(b"*1\r\n$4\r"), Parse::Incomplete);
    assert_eq!(first(b"*1\r\n$4\r\nPING\r"), Parse::Incomplete);
}

#[test]
fn multibulk_count_errors() {
    let invalid = Parse::Error(b"invalid multibulk length");
    for input in [
        &b"*3000000000\r\n"[..],
        b"*2147483648\r\n",
        b"*01\r\n",
        b"*+1\r\n",
        b"*\r\n",
        b"*abc\r\n",
        b"*1 \r\n",
        b"*-0\r\n",
        b"*99999999999999999999\r\n",
        b"*1\n\r\n",
    ] {
        assert_eq!(first(input), invalid, "{input:?}");
    }
    assert_eq!(first(b"*2147483647\r\n"), Parse::Incomplete);
    assert_eq!(first(b"*20000000\r\n"), Parse::Incomplete);
}

#[test]
fn huge_count_costs_nothing_until_elements_arrive() {
    let mut p = Parser::new();
    assert_eq!(
        p.parse(b"*1000000000\r\n", &Limits::default()),
        Parse::Incomplete
    );
    assert!(p.spans.capacity() <= MAX_RESERVE);
    assert_eq!(p.remaining, 1_000_000_000);
}

#[test]
fn bulk_length_errors() {
    let invalid = Parse::Error(b"invalid bulk length");
    assert_eq!(first(b"*1\r\n$-1\r\n"), invalid);
    assert_eq!(first(b"*1\r\n$01\r\n"), invalid);
    assert_eq!(first(b"*1\r\n$\r\n"), invalid);
    assert_eq!(first(b"*1\r\n$x\r\n"), invalid);
    assert_eq!(first(b"*1\r\n$536870913\r\n"), invalid);
    assert_eq!(first(b"*1\r\n$1099511627776\r\n"), invalid);
    assert_eq!(first(b"*1\r\n$536870912\r\n"), Parse::Incomplete);
    let small = Limits {
        max_bulk_len: 3,
        authenticated: true,
    };
    assert_eq!(Parser::new().parse(b"*1\r\n$4\r\n", &small), invalid);
    assert_eq!(
        Parser::new().parse(b"*1\r\n$3\r\n", &small),
        Parse::Incomplete
    );
}

#[test]
fn expected_dollar_names_the_byte() {
    assert_eq!(
        first(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n"),
        Parse::Error(b"expected '$', got 'f'")
    );
    assert_eq!(
        first(b"*1\r\n\r\n"),
        Parse::Error(b"expected '$', got '\r'")
    );
    assert_eq!(
        first(b"*1\r\n\n\r\n"),
        Parse::Error(b"expected '$', got '\n'")
    );
    assert_eq!(
        first(b"*1\r\n*\r\n"),
        Parse::Error(b"expected '$', got '*'")
    );
    assert_eq!(
        first(b"*1\r\n\x7f\r\n"),
        Parse::Error(b"expected '$', got '\x7f'")
    );
    assert_eq!(
        first(b"*1\r\n\xff\r\n"),
        Parse::Error(b"expected '$', got '\xff'")
    );
    // Redis's %c writes any byte as it is, 0x80 and above included.
    for b in 1..=0xffu8 {
        let msg = expected_dollar(b);
        assert_eq!(msg.len(), EXPECTED_LEN);
        assert_eq!(msg[EXPECTED_LEN - 2], b);
        assert!(msg.starts_with(b"expected '$', got '"));
        assert!(msg.ends_with(b"'"));
    }
}

#[test]
fn unauthenticated_limits() {
    let limits = unauth();
    let one = |input: &[u8]| Parser::new().parse(input, &limits);
    assert_eq!(
        one(b"*11\r\n"),
        Parse::Error(b"unauthenticated multibulk length")
    );
    assert_eq!(one(b"*10\r\n"), Parse::Incomplete);
    assert_eq!(
        one(b"*2147483648\r\n"),
        Parse::Error(b"invalid multibulk length")
    );
    assert_eq!(
        one(b"*1\r\n$16385\r\n"),
        Parse::Error(b"unauthenticated bulk length")
    );
    assert_eq!(one(b"*1\r\n$16384\r\n"), Parse::Incomplete);
    assert_eq!(
        one(b"*1\r\n$536870913\r\n"),
        Parse::Error(b"invalid bulk length")
    );
    // Inline requests have no such limit.
    let long = format!("ECHO {}\r\n", "a".repeat(20_000));
    assert!(matches!(one(long.as_bytes()), Parse::Command { .. }));
}

#[test]
fn unterminated_lines_are_bounded() {
    let mut inline = vec![b'a'; INLINE_MAX_SIZE];
    assert_eq!(first(&inline), Parse::Incomplete);
    inline.push(b'a');
    assert_eq!(first(&inline), Parse::Error(b"too big inline request"));

    let mut header = vec![b'1'; INLINE_MAX_SIZE];
    header[0] = b'*';
    assert_eq!(first(&header), Parse::Incomplete);
    header.push(b'1');
    assert_eq!(first(&header), Parse::Error(b"too big mbulk count string"));

    // The bulk count limit counts from the start of the `$` line.
    let mut bulk = b"*2\r\n$1\r\nx\r\n".to_vec();
    let line_start = bulk.len();
    bulk.resize(line_start + INLINE_MAX_SIZE, b'9');
    bulk[line_start] = b'$';
    assert_eq!(first(&bulk), Parse::Incomplete);
    bulk.push(b'9');
    assert_eq!(first(&bulk), Parse::Error(b"too big bulk count string"));

    // A `\r` at the very end is not checked against the limit.
    let mut cr = vec![b'1'; INLINE_MAX_SIZE * 2];
    cr[0] = b'*';
    cr.push(b'\r');
    assert_eq!(first(&cr), Parse::Incomplete);
}

#[test]
fn nul_stops_the_line_search_like_strchr() {
    assert_eq!(first(b"PI\0NG\r\nPING\r\n"), Parse::Incomplete);
    let mut stuck = b"PI\0NG\r\n".to_vec();
    stuck.resize(INLINE_MAX_SIZE + 1, b'x');
    assert_eq!(first(&stuck), Parse::Error(b"too big inline request"));
    assert_eq!(first(b"*1\0\r\n"), Parse::Incomplete);
    assert_eq!(first(b"*1\r\n$\x004\r\n"), Parse::Incomplete);
}

#[test]
fn inline_commands() {
    assert_eq!(cmds(b"PING\r\n"), vec![cmd(&[b"PING"])]);
    assert_eq!(
        cmds(b"PING\nPING\r\n"),
        vec![cmd(&[b"PING"]), cmd(&[b"PING"])]
    );
    assert_eq!(cmds(b"\r\n\n   \r\nPING\n"), vec![cmd(&[b"PING"])]);
    assert_eq!(first(b"\r\n"), Parse::Skip { consumed: 2 });
    assert_eq!(first(b"\n"), Parse::Skip { consumed: 1 });
    assert_eq!(first(b"PING"), Parse::Incomplete);
    assert_eq!(cmds(b"  set\tk  v \r\n"), vec![cmd(&[b"set", b"k", b"v"])]);
    // A lone `\r` inside the line separates arguments.
    assert_eq!(cmds(b"a\rb\r\n"), vec![cmd(&[b"a", b"b"])]);
    // Only `\r\n` or `\n` end the line; the `\r` of `\r\r\n` stays and is a blank.
    assert_eq!(cmds(b"a\r\r\n"), vec![cmd(&[b"a"])]);
}

#[test]
fn sdssplitargs_rules() {
    let split = |line: &[u8]| -> Result<Vec<Vec<u8>>, Unbalanced> {
        let (mut buf, mut spans) = (Vec::new(), Vec::new());
        split_args(line, &mut buf, &mut spans)?;
        Ok(spans
            .iter()
            .map(|&(o, l)| buf[o as usize..(o + l) as usize].to_vec())
            .collect())
    };
    let ok = |v: &[&[u8]]| Ok(v.iter().map(|a| a.to_vec()).collect::<Vec<_>>());
    assert_eq!(
        split(br#"set "a\x41\n" 'it\'s'"#),
        ok(&[b"set", b"aA\n", b"it's"])
    );
    assert_eq!(
        split(br#""\x4g" "\q" "\\" "\"""#),
        ok(&[b"x4g", b"q", b"\\", b"\""])
    );
    assert_eq!(split(br#""\n\r\t\b\a""#), ok(&[b"\n\r\t\x08\x07"]));
    assert_eq!(split(br#"'\n' '\x41'"#), ok(&[b"\\n", b"\\x41"]));
    assert_eq!(split(br#"a"b c" "" ''"#), ok(&[b"ab c", b"", b""]));
    assert_eq!(split(b"\x0b\x0ca\x0bb"), ok(&[b"a\x0bb"]));
    assert_eq!(split(b"\"a\"\x0bb"), ok(&[b"a", b"b"]));
    assert_eq!(split(b""), ok(&[]));
    assert_eq!(split(b"   "), ok(&[]));
    for bad in [
        &br#""foo"#[..],
        br#""foo"bar"#,
        br#"'foo'bar"#,
        br#"'foo"#,
        br#""foo\"#,
        br#"a "b"c"#,
        br#"'\\'"#,
    ] {
        assert_eq!(split(bad), Err(Unbalanced), "{bad:?}");
    }
    assert_eq!(
        first(b"\"foo\r\n"),
        Parse::Error(b"unbalanced quotes in request")
    );
}

#[test]
fn partial_requests_resume_without_rescanning() {
    let limits = Limits::default();
    let mut p = Parser::new();
    let full = b"*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n";
    assert_eq!(p.parse(&full[..10], &limits), Parse::Incomplete);
    assert_eq!((p.spans.len(), p.pos, p.bulk_len), (0, 8, Some(4)));
    assert_eq!(p.parse(&full[..16], &limits), Parse::Incomplete);
    assert_eq!(
        (p.spans.len(), p.pos, p.scan, p.bulk_len),
        (1, 14, 16, None)
    );
    assert_eq!(p.parse(&full[..20], &limits), Parse::Incomplete);
    assert_eq!((p.pos, p.bulk_len), (18, Some(5)));
    assert_eq!(
        p.parse(full, &limits),
        Parse::Command {
            consumed: full.len()
        }
    );
    assert_eq!(p.args(full).get(1), b"hello");

    // An inline line arriving in pieces resumes its search where it stopped.
    let mut q = Parser::new();
    assert_eq!(q.parse(b"PING aaaa", &limits), Parse::Incomplete);
    assert_eq!(q.scan, 9);
    assert_eq!(
        q.parse(b"PING aaaa\r\n", &limits),
        Parse::Command { consumed: 11 }
    );
}

/// One request of a generated stream and the arguments it must produce.
#[derive(Debug, Clone)]
enum Frame {
    Multibulk(Vec<Vec<u8>>),
    /// Plain words, with the separators to put between them.
    InlinePlain(Vec<Vec<u8>>, bool),
    InlineQuoted(Vec<Vec<u8>>),
    Empty(&'static [u8]),
}

impl Frame {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Frame::Multibulk(args) => out.extend_from_slice(&multibulk(args)),
            Frame::InlinePlain(words, lf_only) => {
                out.extend_from_slice(&words.join(&b' '));
                out.extend_from_slice(if *lf_only { b"\n" } else { b"\r\n" });
            }
            Frame::InlineQuoted(args) => {
                let parts: Vec<Vec<u8>> = args.iter().map(|a| quoted(a)).collect();
                out.extend_from_slice(&parts.join(&b'\t'));
                out.extend_from_slice(b"\r\n");
            }
            Frame::Empty(bytes) => out.extend_from_slice(bytes),
        }
    }

    fn expected(&self) -> Option<Event> {
        match self {
            Frame::Multibulk(args) | Frame::InlinePlain(args, _) | Frame::InlineQuoted(args) => {
                Some(Event::Command(args.clone()))
            }
            Frame::Empty(_) => None,
        }
    }
}

fn arg() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..24),
        prop::collection::vec(any::<u8>(), 100..400),
    ]
}

fn word() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(b"abcXYZ019:-_.!{}".to_vec()), 1..10)
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        4 => prop::collection::vec(arg(), 1..6).prop_map(Frame::Multibulk),
        2 => (prop::collection::vec(word(), 1..5), any::<bool>())
            .prop_map(|(w, lf)| Frame::InlinePlain(w, lf)),
        1 => prop::collection::vec(prop::collection::vec(any::<u8>(), 0..12), 1..4)
            .prop_map(Frame::InlineQuoted),
        1 => prop::sample::select(vec![
            &b"*0\r\n"[..], b"*-1\r\n", b"\r\n", b"\n", b"  \t \r\n",
        ]).prop_map(Frame::Empty),
    ]
}

/// Bytes that are half protocol punctuation and digits, to reach deep parser states (a plain
/// map of `any::<u8>()`, cheaper to generate than a weighted union).
fn noisy_byte() -> impl Strategy<Value = u8> {
    const PUNCTUATION: &[u8] = b"*$\r\n\r\n\"'\\ \x00-0123456789";
    (any::<bool>(), any::<u8>()).prop_map(|(raw, b)| {
        if raw {
            b
        } else {
            PUNCTUATION[usize::from(b) % PUNCTUATION.len()]
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// (a) Any valid stream, cut anywhere and fed piece by piece, gives the same commands as
    /// the whole, and exactly the commands it encodes.
    #[test]
    fn split_streams_parse_the_same(
        frames in prop::collection::vec(frame(), 1..12),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
    ) {
        let mut stream = Vec::new();
        for f in &frames {
            f.encode(&mut stream);
        }
        let expected: Vec<Event> = frames.iter().filter_map(Frame::expected).collect();
        let limits = Limits::default();
        let (whole, left) = run(&stream, &limits);
        prop_assert_eq!(&whole, &expected);
        prop_assert_eq!(left, 0);
        let cuts: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        let (pieces, left) = run_split(&stream, &cuts, &limits);
        prop_assert_eq!(&pieces, &expected);
        prop_assert_eq!(left, 0);
        // Byte by byte, the worst case for resumption (quadratic here: kept to short streams).
        if stream.len() <= 1500 {
            let every: Vec<usize> = (0..stream.len()).collect();
            let (bytes, _) = run_split(&stream, &every, &limits);
            prop_assert_eq!(&bytes, &expected);
        }
    }

    /// (b) Random bytes never panic: every call consumes something within the input, waits,
    /// or refuses; and cutting the input does not change the outcome.
    #[test]
    fn random_bytes_never_panic(
        input in prop::collection::vec(noisy_byte(), 0..300),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
        authenticated in any::<bool>(),
        max_bulk_len in prop_oneof![Just(512 * 1024 * 1024u64), 0..64u64],
    ) {
        let limits = Limits { max_bulk_len, authenticated };
        let (whole, _) = run(&input, &limits);
        let cuts: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
        let (pieces, _) = run_split(&input, &cuts, &limits);
        // Pieces may stop earlier only where a size limit depends on what has arrived, which
        // needs more than 64 KiB: with these inputs both must agree.
        prop_assert_eq!(whole, pieces);
    }

    /// (d) The whole-request fast path agrees with the general path (which a byte-by-byte
    /// feed always takes) on frames that are almost, but not quite, well formed: signs,
    /// leading zeros, NULs, wrong markers, bytes other than `\n` after `\r`.
    #[test]
    fn fast_path_matches_general_path(
        args in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..8), 1..4),
        noise in prop::collection::vec((any::<prop::sample::Index>(), noisy_byte()), 0..3),
        authenticated in any::<bool>(),
        max_bulk_len in prop_oneof![Just(512 * 1024 * 1024u64), 0..8u64],
    ) {
        let mut input = multibulk(&args);
        for (at, byte) in noise {
            let i = at.index(input.len());
            input[i] = byte;
        }
        let limits = Limits { max_bulk_len, authenticated };
        let (whole, _) = run(&input, &limits);
        let every: Vec<usize> = (0..input.len()).collect();
        // (What is left unconsumed after an error depends on how much had arrived.)
        let (bytes, _) = run_split(&input, &every, &limits);
        prop_assert_eq!(whole, bytes);
    }

    /// (c) The inline and multibulk forms of the same command give the same arguments.
    #[test]
    fn inline_and_multibulk_agree(args in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..16), 1..6)) {
        let mut inline = Vec::new();
        Frame::InlineQuoted(args.clone()).encode(&mut inline);
        let mb = multibulk(&args);
        let a = cmds(&inline);
        let b = cmds(&mb);
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(a, vec![Event::Command(args)]);
    }
}
