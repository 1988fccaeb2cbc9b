//! Reply encoding: RESP2 or RESP3, chosen per connection by HELLO.
//!
//! Handlers describe replies by meaning (`null`, `map_len`, `double`), and the encoder writes the
//! bytes the client's protocol version expects, exactly as Redis 7.0 does: a RESP3 map is an array
//! of pairs in RESP2, a RESP3 null is `$-1` or `*-1` in RESP2 depending on what was expected.

use crate::stats::ThreadStats;

/// Appends replies to a connection's output buffer.
pub struct Reply<'a> {
    out: &'a mut Vec<u8>,
    resp3: bool,
    errors: u32,
    /// Where error replies are counted (INFO `total_error_replies` and errorstats); `None`
    /// for replies that no client sees as such (tests, pre-encoded messages).
    stats: Option<&'a ThreadStats>,
}

impl<'a> Reply<'a> {
    /// Wraps `out`; `resp3` selects RESP3 encodings. Its errors are not counted in INFO.
    pub fn new(out: &'a mut Vec<u8>, resp3: bool) -> Self {
        Self {
            out,
            resp3,
            errors: 0,
            stats: None,
        }
    }

    /// Wraps `out` for a client's replies: its errors are counted in `stats`.
    #[inline]
    pub fn counted(out: &'a mut Vec<u8>, resp3: bool, stats: &'a ThreadStats) -> Self {
        Self {
            out,
            resp3,
            errors: 0,
            stats: Some(stats),
        }
    }

    /// A reply encoder over the same buffer and counters, with its own error count (the
    /// replies of the commands inside EXEC).
    pub fn nested(&mut self) -> Reply<'_> {
        Reply {
            out: &mut *self.out,
            resp3: self.resp3,
            errors: 0,
            stats: self.stats,
        }
    }

    /// Whether the client speaks RESP3.
    #[inline]
    pub fn is_resp3(&self) -> bool {
        self.resp3
    }

    /// Switches protocol (HELLO replies in the version it selects).
    pub fn set_resp3(&mut self, resp3: bool) {
        self.resp3 = resp3;
    }

    /// Error replies written so far, plus failures noted with [`mark_failed`](Self::mark_failed):
    /// non-zero makes the call a failed one (INFO commandstats `failed_calls`).
    pub fn errors(&self) -> u32 {
        self.errors
    }

    /// Counts the running command as failed without writing an error: Redis 7.0 counts any
    /// error reply produced during a call against that call, also one written to another client
    /// (`CLIENT UNBLOCK ... ERROR`), which in Ferrite that client's thread writes later.
    pub fn mark_failed(&mut self) {
        self.errors += 1;
    }

    /// Bytes in the output buffer (a mark to truncate back to, e.g. for `CLIENT REPLY OFF`).
    pub fn mark(&self) -> usize {
        self.out.len()
    }

    /// Drops everything written after `mark`.
    pub fn truncate(&mut self, mark: usize) {
        self.out.truncate(mark);
    }

    /// The raw buffer, for encoders that write pre-formatted protocol.
    pub fn raw(&mut self) -> &mut Vec<u8> {
        self.out
    }

    /// `+OK`.
    #[inline]
    pub fn ok(&mut self) {
        self.out.extend_from_slice(b"+OK\r\n");
    }

    /// A simple string (`+s`); `s` must not contain CR or LF.
    #[inline]
    pub fn simple(&mut self, s: &str) {
        debug_assert!(!s.contains(['\r', '\n']));
        self.out.push(b'+');
        self.out.extend_from_slice(s.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// An error reply. `msg` starts with the error code (`ERR ...`, `WRONGTYPE ...`); newlines
    /// are replaced by spaces, as Redis does, so that a message can never break the protocol.
    #[cold]
    pub fn error(&mut self, msg: &str) {
        self.error_bytes(msg.as_bytes());
    }

    /// [`error`](Self::error) for a message that is not UTF-8 (Redis copies client bytes
    /// into some errors as they are).
    #[cold]
    pub fn error_bytes(&mut self, msg: &[u8]) {
        self.errors += 1;
        if let Some(stats) = self.stats {
            stats.error_reply(msg);
        }
        self.out.push(b'-');
        self.out.extend(
            msg.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
        self.out.extend_from_slice(b"\r\n");
    }

    /// An integer.
    #[inline]
    pub fn int(&mut self, v: i64) {
        self.prefixed(b':', v);
    }

    /// A bulk string.
    #[inline]
    pub fn bulk(&mut self, s: &[u8]) {
        self.bulk_header(s.len());
        self.out.extend_from_slice(s);
        self.out.extend_from_slice(b"\r\n");
    }

    /// The header of a bulk string of `len` bytes; the caller appends exactly `len` bytes and then
    /// calls [`Reply::bulk_end`].
    #[inline]
    pub fn bulk_header(&mut self, len: usize) {
        self.prefixed(b'$', len as i64);
    }

    /// Ends a bulk string started with [`Reply::bulk_header`].
    #[inline]
    pub fn bulk_end(&mut self) {
        self.out.extend_from_slice(b"\r\n");
    }

    /// An integer formatted as a bulk string (e.g. INCRBYFLOAT-style replies).
    pub fn bulk_int(&mut self, v: i64) {
        let mut buf = itoa_buf();
        let s = format_i64(&mut buf, v);
        self.bulk(s);
    }

    /// A null bulk string (`$-1` in RESP2, `_` in RESP3).
    #[inline]
    pub fn null(&mut self) {
        self.out
            .extend_from_slice(if self.resp3 { b"_\r\n" } else { b"$-1\r\n" });
    }

    /// A null array (`*-1` in RESP2, `_` in RESP3).
    #[inline]
    pub fn null_array(&mut self) {
        self.out
            .extend_from_slice(if self.resp3 { b"_\r\n" } else { b"*-1\r\n" });
    }

    /// The header of an array of `n` elements.
    #[inline]
    pub fn array_len(&mut self, n: usize) {
        self.prefixed(b'*', n as i64);
    }

    /// The header of a map of `n` pairs (an array of `2n` in RESP2).
    pub fn map_len(&mut self, n: usize) {
        if self.resp3 {
            self.prefixed(b'%', n as i64);
        } else {
            self.prefixed(b'*', 2 * n as i64);
        }
    }

    /// The header of a set of `n` elements (an array in RESP2).
    pub fn set_len(&mut self, n: usize) {
        self.prefixed(if self.resp3 { b'~' } else { b'*' }, n as i64);
    }

    /// The header of a push message of `n` elements (an array in RESP2).
    pub fn push_len(&mut self, n: usize) {
        self.prefixed(if self.resp3 { b'>' } else { b'*' }, n as i64);
    }

    /// A boolean (`#t`/`#f` in RESP3, `:1`/`:0` in RESP2).
    pub fn boolean(&mut self, v: bool) {
        if self.resp3 {
            self.out
                .extend_from_slice(if v { b"#t\r\n" } else { b"#f\r\n" });
        } else {
            self.int(v as i64);
        }
    }

    /// A double, as Redis's `addReplyDouble`: `%.17g` in a bulk string in RESP2, `,` in RESP3.
    pub fn double(&mut self, v: f64) {
        let s = format_double_g17(v);
        if self.resp3 {
            self.out.push(b',');
            self.out.extend_from_slice(s.as_bytes());
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.bulk(s.as_bytes());
        }
    }

    /// A big number (`(` in RESP3, a bulk string in RESP2), as Redis's `addReplyBigNum`.
    pub fn big_number(&mut self, digits: &[u8]) {
        if self.resp3 {
            self.out.push(b'(');
            self.out.extend_from_slice(digits);
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.bulk(digits);
        }
    }

    /// A verbatim string (`=` with a three-letter format in RESP3, a bulk string in RESP2).
    pub fn verbatim(&mut self, format: &str, text: &[u8]) {
        debug_assert_eq!(format.len(), 3);
        if self.resp3 {
            self.prefixed(b'=', (text.len() + 4) as i64);
            self.out.extend_from_slice(format.as_bytes());
            self.out.push(b':');
            self.out.extend_from_slice(text);
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text);
        }
    }

    #[inline]
    fn prefixed(&mut self, prefix: u8, v: i64) {
        let mut buf = itoa_buf();
        let digits = format_i64(&mut buf, v);
        self.out.push(prefix);
        self.out.extend_from_slice(digits);
        self.out.extend_from_slice(b"\r\n");
    }
}

/// A stack buffer large enough for any i64 in decimal.
#[inline]
pub fn itoa_buf() -> [u8; 20] {
    [0u8; 20]
}

/// Formats `v` in decimal into `buf`, returning the digits (Redis's `ll2string`).
pub use ferrite_collections::format_i64;

/// Formats a double as C's `printf("%.17g")`, which Redis uses for double replies; infinities
/// are `inf`/`-inf`, NaN is `nan`.
pub fn format_double_g17(v: f64) -> String {
    format_double_g(v, 17)
}

/// C's `%.{precision}g` for finite and non-finite doubles.
pub fn format_double_g(v: f64, precision: usize) -> String {
    if v.is_nan() {
        return "nan".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let p = precision.max(1);
    // %e with p-1 digits gives the exponent after rounding, which decides the style.
    let e_repr = format!("{:.*e}", p - 1, v);
    let (mantissa, exp) = e_repr.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("exponent is an integer");
    if exp < -4 || exp >= p as i32 {
        let mantissa = strip_fraction_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        strip_fraction_zeros(&format!("{:.*}", decimals, v)).to_string()
    }
}

fn strip_fraction_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(resp3: bool, f: impl FnOnce(&mut Reply<'_>)) -> Vec<u8> {
        let mut out = Vec::new();
        f(&mut Reply::new(&mut out, resp3));
        out
    }

    #[test]
    fn integers_and_bulks() {
        assert_eq!(enc(false, |r| r.int(0)), b":0\r\n");
        assert_eq!(
            enc(false, |r| r.int(i64::MIN)),
            b":-9223372036854775808\r\n"
        );
        assert_eq!(enc(false, |r| r.bulk(b"ab")), b"$2\r\nab\r\n");
        assert_eq!(enc(false, |r| r.bulk(b"")), b"$0\r\n\r\n");
    }

    #[test]
    fn nulls_follow_protocol() {
        assert_eq!(enc(false, |r| r.null()), b"$-1\r\n");
        assert_eq!(enc(false, |r| r.null_array()), b"*-1\r\n");
        assert_eq!(enc(true, |r| r.null()), b"_\r\n");
        assert_eq!(enc(true, |r| r.map_len(2)), b"%2\r\n");
        assert_eq!(enc(false, |r| r.map_len(2)), b"*4\r\n");
    }

    #[test]
    fn errors_never_break_framing() {
        assert_eq!(enc(false, |r| r.error("ERR a\r\nb")), b"-ERR a  b\r\n");
    }

    #[test]
    fn doubles_match_printf_g17() {
        assert_eq!(format_double_g17(1.5), "1.5");
        assert_eq!(format_double_g17(0.1), "0.10000000000000001");
        assert_eq!(format_double_g17(1e20), "1e+20");
        assert_eq!(format_double_g17(123456.0), "123456");
        assert_eq!(format_double_g17(1e-5), "1.0000000000000001e-05");
        assert_eq!(format_double_g17(f64::INFINITY), "inf");
        assert_eq!(format_double_g(3.0, 17), "3");
        assert_eq!(enc(true, |r| r.double(2.5)), b",2.5\r\n");
        assert_eq!(enc(false, |r| r.double(2.5)), b"$3\r\n2.5\r\n");
    }
}
