//! Reading RESP2 replies off a stream: a pure parser over a byte slice (an incomplete reply is
//! an outcome, not an error) and a buffered reader that feeds it.

use std::io::{self, Read};

/// The largest reply the reader accepts (a bulk string or an array's total size); the load
/// generator's values are far smaller, so anything bigger is a protocol error.
pub const MAX_REPLY: usize = 64 << 20;

/// One reply. Bulk strings borrow from the reader's buffer; arrays are checked and skipped
/// (the load generator sends no command that answers with one it needs to read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `+...`
    Status(&'a [u8]),
    /// `-...`
    Error(&'a [u8]),
    /// `:n`
    Integer(i64),
    /// `$n` with its bytes.
    Bulk(&'a [u8]),
    /// `$-1` or `*-1`.
    Nil,
    /// `*n` and that many elements, which were parsed and skipped.
    Array(usize),
}

/// Bytes that are not RESP2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "protocol error: {}", self.0)
    }
}

impl std::error::Error for ProtocolError {}

/// Parses the reply at the start of `buf`: `Ok(Some((reply, length)))`, `Ok(None)` if `buf`
/// holds only part of it, or an error if the bytes cannot be RESP2.
pub fn parse(buf: &[u8]) -> Result<Option<(Reply<'_>, usize)>, ProtocolError> {
    parse_at(buf, 0, 0)
}

/// Arrays nest at most this deep (a safety bound on recursion, far above any real reply).
const MAX_DEPTH: usize = 64;

fn parse_at(
    buf: &[u8],
    pos: usize,
    depth: usize,
) -> Result<Option<(Reply<'_>, usize)>, ProtocolError> {
    if depth > MAX_DEPTH {
        return Err(ProtocolError("arrays nested too deep".into()));
    }
    let Some(end) = find_crlf(buf, pos + 1) else {
        if buf.len() > pos + 1 + 32 && !matches!(buf.get(pos), Some(b'+' | b'-')) {
            // A length line is never this long: the peer is not speaking RESP.
            return Err(ProtocolError("length line without CRLF".into()));
        }
        return Ok(None);
    };
    let Some(&kind) = buf.get(pos) else {
        return Ok(None);
    };
    let line = &buf[pos + 1..end];
    let next = end + 2;
    match kind {
        b'+' => Ok(Some((Reply::Status(line), next))),
        b'-' => Ok(Some((Reply::Error(line), next))),
        b':' => Ok(Some((Reply::Integer(number(line)?), next))),
        b'$' => {
            let len = number(line)?;
            if len == -1 {
                return Ok(Some((Reply::Nil, next)));
            }
            let len = length(len)?;
            let stop = next + len;
            if buf.len() < stop + 2 {
                return Ok(None);
            }
            if &buf[stop..stop + 2] != b"\r\n" {
                return Err(ProtocolError("bulk string not followed by CRLF".into()));
            }
            Ok(Some((Reply::Bulk(&buf[next..stop]), stop + 2)))
        }
        b'*' => {
            let count = number(line)?;
            if count == -1 {
                return Ok(Some((Reply::Nil, next)));
            }
            let count = length(count)?;
            let mut at = next;
            for _ in 0..count {
                match parse_at(buf, at, depth + 1)? {
                    Some((_, after)) => at = after,
                    None => return Ok(None),
                }
            }
            Ok(Some((Reply::Array(count), at)))
        }
        other => Err(ProtocolError(format!(
            "unexpected reply type byte 0x{other:02x}"
        ))),
    }
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let rest = buf.get(from..)?;
    rest.windows(2).position(|w| w == b"\r\n").map(|i| from + i)
}

fn number(line: &[u8]) -> Result<i64, ProtocolError> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ProtocolError(format!("bad number {:?}", String::from_utf8_lossy(line))))
}

fn length(n: i64) -> Result<usize, ProtocolError> {
    usize::try_from(n)
        .ok()
        .filter(|&n| n <= MAX_REPLY)
        .ok_or_else(|| ProtocolError(format!("bad length {n}")))
}

/// Buffers the bytes of a stream and hands out one reply at a time. It does not own the
/// stream, so the same reader serves a blocking socket ([`ReplyReader::next_blocking`]) and a
/// non-blocking one polled by an event loop ([`ReplyReader::read_from`] when readable, then
/// [`ReplyReader::try_next`] until it answers `None`).
#[derive(Debug)]
pub struct ReplyReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Default for ReplyReader {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplyReader {
    /// An empty reader.
    pub fn new() -> Self {
        Self {
            buf: vec![0; 64 << 10],
            start: 0,
            end: 0,
        }
    }

    /// The next complete reply among the bytes read so far, or `None` if they end in the
    /// middle of one. A protocol error is `InvalidData`.
    pub fn try_next(&mut self) -> io::Result<Option<Reply<'_>>> {
        // Borrows only `buf`, so `start` can move while the reply borrows the bytes.
        match parse(&self.buf[self.start..self.end]) {
            Ok(Some((reply, len))) => {
                self.start += len;
                Ok(Some(reply))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }

    /// One `read` from `stream` into the buffer (which is compacted, or grown if a single
    /// reply fills it). Returns the bytes read; the end of the stream is `UnexpectedEof`, and a
    /// non-blocking stream's `WouldBlock` is passed on.
    pub fn read_from(&mut self, stream: &mut impl Read) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            // Move the partial reply to the front; grow only if it fills the whole buffer.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.end == self.buf.len() {
                if self.buf.len() > MAX_REPLY + 64 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "reply too large",
                    ));
                }
                self.buf.resize(self.buf.len() * 2, 0);
            }
        }
        let n = stream.read(&mut self.buf[self.end..])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed by the server",
            ));
        }
        self.end += n;
        Ok(n)
    }

    /// The next reply from a blocking stream, reading as much as it needs.
    pub fn next_blocking(&mut self, stream: &mut impl Read) -> io::Result<Reply<'_>> {
        // Measure first, then take the reply: returning a borrow from inside the loop would
        // hold `self` across the reads.
        while parse(&self.buf[self.start..self.end])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
            .is_none()
        {
            self.read_from(stream)?;
        }
        self.try_next()?
            .ok_or_else(|| io::Error::other("a complete reply vanished"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_type() {
        assert_eq!(parse(b"+OK\r\n"), Ok(Some((Reply::Status(b"OK"), 5))));
        assert_eq!(parse(b"-ERR x\r\n"), Ok(Some((Reply::Error(b"ERR x"), 8))));
        assert_eq!(parse(b":-12\r\n"), Ok(Some((Reply::Integer(-12), 6))));
        assert_eq!(parse(b"$3\r\nabc\r\n"), Ok(Some((Reply::Bulk(b"abc"), 9))));
        assert_eq!(parse(b"$0\r\n\r\n"), Ok(Some((Reply::Bulk(b""), 6))));
        assert_eq!(parse(b"$-1\r\n"), Ok(Some((Reply::Nil, 5))));
        assert_eq!(parse(b"*-1\r\n"), Ok(Some((Reply::Nil, 5))));
        let arr = b"*3\r\n$1\r\na\r\n*1\r\n:1\r\n+x\r\n";
        assert_eq!(parse(arr), Ok(Some((Reply::Array(3), arr.len()))));
        // A reply followed by the next: only the first is consumed.
        assert_eq!(parse(b"+A\r\n+B\r\n"), Ok(Some((Reply::Status(b"A"), 4))));
    }

    #[test]
    fn every_prefix_is_incomplete() {
        let whole: &[u8] = b"*2\r\n$5\r\nhello\r\n$-1\r\n";
        for cut in 0..whole.len() {
            assert_eq!(parse(&whole[..cut]), Ok(None), "cut at {cut}");
        }
        assert!(matches!(parse(whole), Ok(Some((Reply::Array(2), 20)))));
    }

    #[test]
    fn rejects_what_is_not_resp() {
        assert!(parse(b"hello\r\n").is_err());
        assert!(parse(b"$3\r\nabcd\r\n").is_err());
        assert!(parse(b"$x\r\n").is_err());
        assert!(parse(b"$-2\r\n").is_err());
        assert!(parse(b":1.5\r\n").is_err());
        assert!(parse(&[b'$'; 100]).is_err());
        let deep = "*1\r\n".repeat(MAX_DEPTH + 2);
        assert!(parse(deep.as_bytes()).is_err());
    }

    /// Hands out its bytes a few at a time, as a socket may.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn reader_reassembles_split_replies() {
        let big = vec![b'v'; 200_000];
        let mut stream = Vec::new();
        stream.extend_from_slice(b"+OK\r\n$3\r\nabc\r\n");
        stream.extend_from_slice(format!("${}\r\n", big.len()).as_bytes());
        stream.extend_from_slice(&big);
        stream.extend_from_slice(b"\r\n:7\r\n");
        for chunk in [1, 3, 4096, 1 << 20] {
            let mut s = Trickle(&stream, chunk);
            let mut r = ReplyReader::new();
            assert_eq!(r.next_blocking(&mut s).unwrap(), Reply::Status(b"OK"));
            assert_eq!(r.next_blocking(&mut s).unwrap(), Reply::Bulk(b"abc"));
            assert_eq!(r.next_blocking(&mut s).unwrap(), Reply::Bulk(&big));
            assert_eq!(r.next_blocking(&mut s).unwrap(), Reply::Integer(7));
            let eof = r.next_blocking(&mut s).unwrap_err();
            assert_eq!(eof.kind(), io::ErrorKind::UnexpectedEof);
        }
    }

    #[test]
    fn try_next_hands_out_what_is_complete() {
        let mut s = Trickle(b"+A\r\n:1\r\n$5\r\nhel", 100);
        let mut r = ReplyReader::new();
        assert_eq!(r.try_next().unwrap(), None);
        assert_eq!(r.read_from(&mut s).unwrap(), 15);
        assert_eq!(r.try_next().unwrap(), Some(Reply::Status(b"A")));
        assert_eq!(r.try_next().unwrap(), Some(Reply::Integer(1)));
        assert_eq!(r.try_next().unwrap(), None);
        let mut rest = Trickle(b"lo\r\n", 100);
        r.read_from(&mut rest).unwrap();
        assert_eq!(r.try_next().unwrap(), Some(Reply::Bulk(b"hello")));
        assert_eq!(r.try_next().unwrap(), None);
    }

    #[test]
    fn reader_reports_garbage_as_invalid_data() {
        let mut r = ReplyReader::new();
        let err = r
            .next_blocking(&mut Trickle(b"?what\r\n", 100))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
