//! A look ahead over pipelined requests: finds the first argument of the next few complete
//! multibulk commands without parsing them for real, so that the worker can prefetch their keys'
//! index buckets and records before it runs them (the batch prefetching Garnet and Dragonfly do;
//! with a large index every lookup is otherwise a cache and TLB miss, one after the other).
//!
//! It only ever reads: anything that is not a plain, complete `*N` / `$len` frame ends the look
//! ahead, and the real parser deals with it (errors included).

/// Calls `f(name, first_arg)` for up to `max` complete multibulk commands of two or more
/// arguments at the start of `input`; returns how many bytes those commands span.
pub fn peek_commands<'a>(
    input: &'a [u8],
    max: usize,
    mut f: impl FnMut(&'a [u8], &'a [u8]),
) -> usize {
    let mut pos = 0;
    for _ in 0..max {
        let Some(frame) = frame(input, pos) else {
            break;
        };
        if let Some(first) = frame.first {
            f(frame.name, first);
        }
        pos = frame.end;
    }
    pos
}

/// What the look-ahead needs of one complete frame.
struct Frame<'a> {
    /// Position just after the frame.
    end: usize,
    /// The command name.
    name: &'a [u8],
    /// The first argument, if there is one.
    first: Option<&'a [u8]>,
}

/// The complete frame at `pos`, if there is one.
fn frame(input: &[u8], pos: usize) -> Option<Frame<'_>> {
    if *input.get(pos)? != b'*' {
        return None;
    }
    let (argc, mut p) = number(input, pos + 1)?;
    if argc == 0 || argc > 1024 {
        return None;
    }
    let mut name: &[u8] = &[];
    let mut first = None;
    for i in 0..argc {
        if *input.get(p)? != b'$' {
            return None;
        }
        let (len, start) = number(input, p + 1)?;
        let end = start.checked_add(len)?;
        if input.get(end..end + 2)? != b"\r\n" {
            return None;
        }
        match i {
            0 => name = &input[start..end],
            1 => first = Some(&input[start..end]),
            _ => {}
        }
        p = end + 2;
    }
    Some(Frame {
        end: p,
        name,
        first,
    })
}

/// A decimal number ending in CRLF at `pos`: its value and the position after the CRLF.
fn number(input: &[u8], pos: usize) -> Option<(usize, usize)> {
    let mut n: usize = 0;
    let mut p = pos;
    while let Some(&b) = input.get(p) {
        match b {
            b'0'..=b'9' if p - pos < 12 => n = n * 10 + usize::from(b - b'0'),
            b'\r' if p > pos && input.get(p + 1) == Some(&b'\n') => return Some((n, p + 2)),
            _ => return None,
        }
        p += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    type Seen = Vec<(Vec<u8>, Vec<u8>)>;

    fn peek(input: &[u8], max: usize) -> (Seen, usize) {
        let mut seen = Vec::new();
        let n = peek_commands(input, max, |a, b| seen.push((a.to_vec(), b.to_vec())));
        (seen, n)
    }

    #[test]
    fn finds_first_arguments_of_complete_frames() {
        let input = b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*3\r\n$3\r\nSET\r\n$2\r\nbb\r\n$1\r\nv\r\n*2\r\n$3\r\nGET";
        let (seen, n) = peek(input, 16);
        assert_eq!(
            seen,
            vec![
                (b"GET".to_vec(), b"a".to_vec()),
                (b"SET".to_vec(), b"bb".to_vec())
            ]
        );
        assert_eq!(&input[n..], b"*2\r\n$3\r\nGET");
    }

    #[test]
    fn stops_at_max_and_at_anything_unusual() {
        let one = b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n";
        let many = one.repeat(5);
        assert_eq!(peek(&many, 3).0.len(), 3);
        assert_eq!(peek(b"PING\r\n", 4).1, 0);
        assert_eq!(peek(b"*1\r\n$4\r\nPING\r\n", 4).0.len(), 0);
        assert_eq!(peek(b"*2\r\n$3\r\nGET\r\n$1\r\naXY", 4).1, 0);
        assert_eq!(peek(b"*2\r\n$-1\r\n", 4).1, 0);
        assert_eq!(peek(b"*99999999999999\r\n", 4).1, 0);
    }

    #[test]
    fn never_panics_on_prefixes() {
        let input = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
        for i in 0..input.len() {
            let _ = peek(&input[..i], 4);
        }
    }
}
