//! Incremental request parser (Redis's `processMultibulkBuffer` / `processInlineBuffer`).
//!
//! Redis 7.0.15 is the specification, quirks included, because a client that works against
//! Redis must see the same replies and the same disconnections here:
//!
//! - Lines are found the way Redis's `strchr` finds them: the search for the terminator stops at
//!   a NUL byte, so a NUL before the end of a header or inline line leaves the request waiting
//!   until the size limit turns it into an error.
//! - A multibulk line ends at `\r` and the byte after it is skipped unchecked, as is the pair of
//!   bytes after a bulk's data.
//! - Numbers follow `string2ll`; counts above `INT_MAX`, bulks above `proto-max-bulk-len`, and
//!   (before authentication) more than 10 elements or bulks above 16 KiB are refused.
//! - A line without its terminator is refused once more than 64 KiB are pending.
//!
//! Multibulk arguments are spans of the caller's buffer (no copy); inline arguments, which
//! quoting may rewrite, are unescaped into a buffer the parser owns.

use crate::args::{Args, parse_i64};

/// Limits the parser enforces, from the configuration and the client's state.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `proto-max-bulk-len`: the largest bulk argument accepted.
    pub max_bulk_len: u64,
    /// Whether the client is authenticated (unauthenticated clients get tighter limits, as in
    /// Redis).
    pub authenticated: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bulk_len: 512 * 1024 * 1024,
            authenticated: true,
        }
    }
}

/// The outcome of one `Parser::parse` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parse {
    /// A whole command is ready: `Parser::args` gives it; `consumed` bytes of input are done with.
    Command {
        /// Bytes of input the command occupied.
        consumed: usize,
    },
    /// Bytes that carry no command (an empty inline line, `*0`, `*-1`): consume them and go on.
    Skip {
        /// Bytes to consume.
        consumed: usize,
    },
    /// More bytes are needed; parsing resumes where it stopped when they arrive.
    Incomplete,
    /// A protocol error: the text after `ERR Protocol error: `. The connection is closed after the
    /// error reply, as Redis does.
    Error(&'static [u8]),
}

/// Redis's `PROTO_INLINE_MAX_SIZE`: how much may be pending without a line terminator.
pub const INLINE_MAX_SIZE: usize = 64 * 1024;

/// Largest multibulk count (`INT_MAX` in Redis).
const MAX_MULTIBULK_LEN: i64 = i32::MAX as i64;

/// Elements an unauthenticated client may send in one request.
const UNAUTH_MAX_MULTIBULK_LEN: i64 = 10;

/// Bulk length an unauthenticated client may send.
const UNAUTH_MAX_BULK_LEN: i64 = 16 * 1024;

/// Span slots reserved up front for a multibulk request: a client-supplied count must not make
/// the parser allocate before the elements arrive (Redis caps its `argv` the same way).
const MAX_RESERVE: usize = 1024;

/// Span capacity above which the vector is given back once a huge request is done with.
const KEEP_SPANS: usize = 4096;

/// Inline buffer capacity kept across requests.
const KEEP_INLINE: usize = INLINE_MAX_SIZE;

/// Parser state that survives across reads, so a large request is not re-parsed from its start
/// every time more of it arrives.
#[derive(Debug, Default)]
pub struct Parser {
    /// A request is partly parsed: `pos`, `scan`, `remaining` and `spans` describe it.
    started: bool,
    /// The multibulk header was read; `remaining` elements are still to come.
    in_multibulk: bool,
    /// Elements of the multibulk request not read yet.
    remaining: u32,
    /// Length of the bulk whose `$` line was read and whose data is awaited.
    bulk_len: Option<u64>,
    /// Offset (from the start of the request) where parsing resumes.
    pos: usize,
    /// Offset where the search for the current line's terminator resumes, so that a long line
    /// arriving in pieces is scanned once.
    scan: usize,
    /// The arguments: spans of the input (multibulk) or of `inline_buf` (inline).
    spans: Vec<(u32, u32)>,
    /// Unescaped inline arguments.
    inline_buf: Vec<u8>,
    /// Whether the last command was inline (its spans point into `inline_buf`).
    inline: bool,
}

/// What the search for a line terminator found.
enum Line {
    /// The terminator is at this offset.
    At(usize),
    /// Not found: the search resumes at this offset (a NUL byte there stops it for good, as it
    /// stops Redis's `strchr`).
    Pending(usize),
}

/// Finds `needle` at or after `from`, stopping at a NUL as C's `strchr` does.
#[inline]
fn find_line(input: &[u8], from: usize, needle: u8) -> Line {
    let tail = input.get(from..).unwrap_or_default();
    match tail.iter().position(|&b| b == needle || b == 0) {
        Some(i) if tail[i] == needle => Line::At(from + i),
        Some(i) => Line::Pending(from + i),
        None => Line::Pending(input.len()),
    }
}

impl Parser {
    /// A parser at the start of a request.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the request at the start of `input` (the unconsumed input; the same prefix is passed
    /// again, with more bytes after it, when the previous call returned `Incomplete`).
    pub fn parse(&mut self, input: &[u8], limits: &Limits) -> Parse {
        if self.started && input.len() < self.pos.max(self.scan) {
            // The caller broke the contract (the prefix shrank): start over rather than read
            // stale offsets.
            debug_assert!(false, "parser input shrank while a request was in progress");
            self.started = false;
        }
        let fresh = !self.started;
        if fresh {
            self.begin();
        }
        let Some(&first) = input.first() else {
            return Parse::Incomplete;
        };
        // Anything unusual leaves the fast path: the general path starts over and says what.
        if fresh
            && first == b'*'
            && let Some(outcome) = self.whole_multibulk(input, limits)
        {
            self.finish();
            return outcome;
        }
        let outcome = if first == b'*' {
            self.multibulk(input, limits)
        } else {
            self.inline(input)
        };
        if outcome != Parse::Incomplete {
            self.finish();
        }
        outcome
    }

    /// The arguments of the command the last `parse` completed; `input` is the same buffer.
    pub fn args<'a>(&'a self, input: &'a [u8]) -> Args<'a> {
        if self.inline {
            Args::new(&self.inline_buf, &self.spans)
        } else {
            Args::new(input, &self.spans)
        }
    }

    /// Resets for a new request, keeping the buffers' capacity within bounds.
    fn begin(&mut self) {
        self.started = true;
        self.in_multibulk = false;
        self.remaining = 0;
        self.bulk_len = None;
        self.pos = 0;
        self.scan = 0;
        self.inline = false;
        self.spans.clear();
        if self.spans.capacity() > KEEP_SPANS {
            self.spans.shrink_to(KEEP_SPANS);
        }
        self.inline_buf.clear();
        if self.inline_buf.capacity() > KEEP_INLINE {
            self.inline_buf.shrink_to(KEEP_INLINE);
        }
    }

    /// The request is over (parsed, skipped or refused); `spans` stay for `args`.
    fn finish(&mut self) {
        self.started = false;
    }

    /// `processInlineBuffer`: one line, split like `sdssplitargs`.
    fn inline(&mut self, input: &[u8]) -> Parse {
        let newline = match find_line(input, self.scan, b'\n') {
            Line::At(i) => i,
            Line::Pending(resume) => {
                self.scan = resume;
                if input.len() > INLINE_MAX_SIZE {
                    return Parse::Error(b"too big inline request");
                }
                return Parse::Incomplete;
            }
        };
        let end = if newline > 0 && input[newline - 1] == b'\r' {
            newline - 1
        } else {
            newline
        };
        if split_args(&input[..end], &mut self.inline_buf, &mut self.spans).is_err() {
            return Parse::Error(b"unbalanced quotes in request");
        }
        let consumed = newline + 1;
        if self.spans.is_empty() {
            Parse::Skip { consumed }
        } else {
            self.inline = true;
            Parse::Command { consumed }
        }
    }

    /// The fast path of [`multibulk`](Self::multibulk): see [`parse_whole`].
    #[inline]
    fn whole_multibulk(&mut self, input: &[u8], limits: &Limits) -> Option<Parse> {
        let consumed = parse_whole(input, limits, &mut self.spans)?;
        Some(Parse::Command { consumed })
    }

    /// Whether no request is partly parsed (the next `parse` starts a new one).
    pub fn is_idle(&self) -> bool {
        !self.started
    }

    /// `processMultibulkBuffer`: `*N\r\n` then `N` times `$len\r\n<len bytes>\r\n`.
    fn multibulk(&mut self, input: &[u8], limits: &Limits) -> Parse {
        if !self.in_multibulk {
            let cr = match find_line(input, self.scan, b'\r') {
                Line::At(i) => i,
                Line::Pending(resume) => {
                    self.scan = resume;
                    if input.len() > INLINE_MAX_SIZE {
                        return Parse::Error(b"too big mbulk count string");
                    }
                    return Parse::Incomplete;
                }
            };
            // Redis wants one byte after the `\r` (taken to be the `\n`) before going on.
            if cr + 1 >= input.len() {
                self.scan = cr;
                return Parse::Incomplete;
            }
            let count = match parse_i64(&input[1..cr]) {
                Some(n) if n <= MAX_MULTIBULK_LEN => n,
                _ => return Parse::Error(b"invalid multibulk length"),
            };
            if count > UNAUTH_MAX_MULTIBULK_LEN && !limits.authenticated {
                return Parse::Error(b"unauthenticated multibulk length");
            }
            let after = cr + 2;
            if count <= 0 {
                return Parse::Skip { consumed: after };
            }
            // 1 ..= i32::MAX, so it fits.
            self.remaining = count as u32;
            self.spans.reserve((count as usize).min(MAX_RESERVE));
            self.in_multibulk = true;
            self.pos = after;
            self.scan = after;
        }
        while self.remaining > 0 {
            let len = match self.bulk_len {
                Some(len) => len,
                None => match self.bulk_header(input, limits) {
                    Ok(Some(len)) => len,
                    Ok(None) => return Parse::Incomplete,
                    Err(msg) => return Parse::Error(msg),
                },
            };
            let available = (input.len() - self.pos) as u64;
            // `len` is at most i64::MAX, so the sum cannot overflow.
            if available < len + 2 {
                return Parse::Incomplete;
            }
            // Checked when the header was read: the span fits in u32.
            self.spans.push((self.pos as u32, len as u32));
            self.pos += len as usize + 2;
            self.scan = self.pos;
            self.bulk_len = None;
            self.remaining -= 1;
        }
        Parse::Command { consumed: self.pos }
    }

    /// Reads a `$len\r\n` line at `pos`: `Ok(None)` when it has not fully arrived.
    fn bulk_header(&mut self, input: &[u8], limits: &Limits) -> Result<Option<u64>, &'static [u8]> {
        let cr = match find_line(input, self.scan, b'\r') {
            Line::At(i) => i,
            Line::Pending(resume) => {
                self.scan = resume;
                if input.len() - self.pos > INLINE_MAX_SIZE {
                    return Err(b"too big bulk count string");
                }
                return Ok(None);
            }
        };
        if cr + 1 >= input.len() {
            self.scan = cr;
            return Ok(None);
        }
        let marker = input[self.pos];
        if marker != b'$' {
            return Err(expected_dollar(marker));
        }
        let len = match parse_i64(&input[self.pos + 1..cr]) {
            Some(n) if n >= 0 && n as u64 <= limits.max_bulk_len => n,
            _ => return Err(b"invalid bulk length"),
        };
        if len > UNAUTH_MAX_BULK_LEN && !limits.authenticated {
            return Err(b"unauthenticated bulk length");
        }
        let start = cr + 2;
        // Spans are u32 offsets: a single request past 4 GiB is refused rather than truncated.
        if (start as u64).saturating_add(len as u64) > u64::from(u32::MAX) {
            return Err(b"invalid bulk length");
        }
        self.pos = start;
        self.scan = start;
        self.bulk_len = Some(len as u64);
        Ok(Some(len as u64))
    }
}

/// The common case of a multibulk request, in one pass: one that has fully arrived at the
/// start of `input`, every count and length plain digits within `limits`. Appends its
/// arguments' spans (relative to `input`) to `spans` and returns the bytes it occupies. `None`
/// (with `spans` as it was) for anything else — a partial request, a sign, a leading zero, a
/// NUL, a limit — which [`Parser::parse`]'s general path then handles from the start: the two
/// give the same spans for every request this accepts.
#[inline]
pub fn parse_whole(input: &[u8], limits: &Limits, spans: &mut Vec<(u32, u32)>) -> Option<usize> {
    if input.first() != Some(&b'*') {
        return None;
    }
    let (count, mut p) = plain_number(input, 1)?;
    if count == 0 || count > MAX_RESERVE as u64 {
        return None;
    }
    if count > UNAUTH_MAX_MULTIBULK_LEN as u64 && !limits.authenticated {
        return None;
    }
    let max_len = if limits.authenticated {
        limits.max_bulk_len
    } else {
        limits.max_bulk_len.min(UNAUTH_MAX_BULK_LEN as u64)
    };
    let before = spans.len();
    spans.reserve(count as usize);
    for _ in 0..count {
        let parsed = (|| {
            if *input.get(p)? != b'$' {
                return None;
            }
            let (len, start) = plain_number(input, p + 1)?;
            if len > max_len {
                return None;
            }
            // Plain numbers have at most 10 digits, so none of this overflows.
            let next = start + len as usize + 2;
            if next > input.len() || next as u64 > u64::from(u32::MAX) {
                return None;
            }
            Some((start, len, next))
        })();
        let Some((start, len, next)) = parsed else {
            spans.truncate(before);
            return None;
        };
        spans.push((start as u32, len as u32));
        p = next;
    }
    Some(p)
}

/// A count or length at `at` as [`parse_whole`] accepts it: `0` or a digit 1-9
/// followed by at most nine digits, then `\r` and one more byte (Redis skips that byte
/// unchecked). Returns the value and the position after those two bytes.
#[inline]
fn plain_number(input: &[u8], at: usize) -> Option<(u64, usize)> {
    let first = *input.get(at)?;
    let mut n = u64::from(first.wrapping_sub(b'0'));
    if n > 9 {
        return None;
    }
    let mut p = at + 1;
    loop {
        let b = *input.get(p)?;
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        if n == 0 || p - at >= 10 {
            return None;
        }
        n = n * 10 + u64::from(digit);
        p += 1;
    }
    (input[p] == b'\r' && p + 1 < input.len()).then_some((n, p + 2))
}

/// Length of one `expected '$', got 'X'` message.
const EXPECTED_LEN: usize = "expected '$', got 'X'".len();

/// The message for every byte, back to back, so that each is a `&'static [u8]`.
static EXPECTED_BYTES: [u8; 256 * EXPECTED_LEN] = {
    let template = b"expected '$', got 'X'";
    let mut table = [0u8; 256 * EXPECTED_LEN];
    let mut c = 0;
    while c < 256 {
        let mut i = 0;
        while i < EXPECTED_LEN {
            table[c * EXPECTED_LEN + i] = template[i];
            i += 1;
        }
        table[c * EXPECTED_LEN + EXPECTED_LEN - 2] = c as u8;
        c += 1;
    }
    table
};

/// Redis's `expected '$', got '%c'`: the byte as it is, even above 0x7f (the error line is
/// then not UTF-8, as Redis's is not); a NUL ends the C string early, as in Redis (the line
/// search makes that case unreachable, but the text stays faithful).
fn expected_dollar(byte: u8) -> &'static [u8] {
    match byte {
        0 => b"expected '$', got '",
        _ => {
            let at = byte as usize * EXPECTED_LEN;
            &EXPECTED_BYTES[at..at + EXPECTED_LEN]
        }
    }
}

/// C's `isspace` in the C locale.
#[inline]
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

#[inline]
fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The line has unbalanced quotes, or a closing quote not followed by a space.
#[derive(Debug, PartialEq, Eq)]
struct Unbalanced;

/// Redis's `sdssplitargs` on `line`: its words, or `None` when its quotes are unbalanced.
pub fn split_words(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let (mut buf, mut spans) = (Vec::new(), Vec::new());
    split_args(line, &mut buf, &mut spans).ok()?;
    Some(
        spans
            .iter()
            .map(|&(at, len)| buf[at as usize..(at + len) as usize].to_vec())
            .collect(),
    )
}

/// Redis's `sdssplitargs`: arguments separated by blanks, `"..."` with `\n \r \t \b \a \xHH`
/// and `\<any>` escapes, `'...'` with `\'` only; a closing quote must be followed by a blank or
/// the end. The line is read as a C string: a NUL ends it.
fn split_args(
    line: &[u8],
    buf: &mut Vec<u8>,
    spans: &mut Vec<(u32, u32)>,
) -> Result<(), Unbalanced> {
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    // Offsets are u32; a line that long cannot be an inline request anyway.
    if u32::try_from(line.len()).is_err() {
        return Err(Unbalanced);
    }
    let mut p = 0;
    loop {
        while at(p) != 0 && is_c_space(at(p)) {
            p += 1;
        }
        if at(p) == 0 {
            return Ok(());
        }
        let start = buf.len();
        let (mut in_dq, mut in_sq, mut done) = (false, false, false);
        while !done {
            let c = at(p);
            if in_dq {
                let hex = match (c, at(p + 1)) {
                    (b'\\', b'x') => hex_value(at(p + 2)).zip(hex_value(at(p + 3))),
                    _ => None,
                };
                if let Some((hi, lo)) = hex {
                    buf.push(hi * 16 + lo);
                    p += 3;
                } else if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    buf.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    if at(p + 1) != 0 && !is_c_space(at(p + 1)) {
                        return Err(Unbalanced);
                    }
                    done = true;
                } else if c == 0 {
                    return Err(Unbalanced);
                } else {
                    buf.push(c);
                }
            } else if in_sq {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    buf.push(b'\'');
                } else if c == b'\'' {
                    if at(p + 1) != 0 && !is_c_space(at(p + 1)) {
                        return Err(Unbalanced);
                    }
                    done = true;
                } else if c == 0 {
                    return Err(Unbalanced);
                } else {
                    buf.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => done = true,
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    _ => buf.push(c),
                }
            }
            if at(p) != 0 {
                p += 1;
            }
        }
        // The unescaped text is never longer than the line, which fits in u32.
        spans.push((start as u32, (buf.len() - start) as u32));
    }
}

#[cfg(test)]
mod tests;
