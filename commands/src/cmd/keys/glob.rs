//! Redis's glob matcher (`stringmatchlen` in `util.c`), ported rule for rule so that KEYS and
//! SCAN MATCH select exactly the keys Redis selects, quirks included: an unclosed `[` class,
//! a trailing `\`, reversed ranges (`[z-a]`) and bytes above 0x7f compared as C's signed `char`.

/// Recursion depth past which Redis gives up on a pattern (its protection against patterns
/// such as `a*a*a*...` that would otherwise take exponential time).
const MAX_NESTING: u32 = 1000;

/// Whether `string` matches the glob `pattern` (case-sensitive, as KEYS and SCAN use it).
pub fn matches(pattern: &[u8], string: &[u8]) -> bool {
    let mut skip_longer = false;
    match_impl(
        pattern,
        0,
        pattern.len() as i64,
        string,
        0,
        string.len() as i64,
        &mut skip_longer,
        0,
    )
}

/// The byte at `i`, or 0 past the end: the C code reads the pattern's NUL terminator there.
#[inline]
fn at(s: &[u8], i: usize) -> u8 {
    s.get(i).copied().unwrap_or(0)
}

/// C's `char` is signed on the platforms Redis ships for, and range bounds compare as such.
#[inline]
fn signed(b: u8) -> i32 {
    i32::from(b as i8)
}

/// `stringmatchlen_impl`: `p`/`plen` and `s`/`slen` are the C pointer offsets and remaining
/// lengths, kept as in the original so the port can be checked line by line.
#[allow(clippy::too_many_arguments)]
fn match_impl(
    pat: &[u8],
    mut p: usize,
    mut plen: i64,
    st: &[u8],
    mut s: usize,
    mut slen: i64,
    skip_longer: &mut bool,
    nesting: u32,
) -> bool {
    if nesting > MAX_NESTING {
        return false;
    }
    while plen > 0 && slen > 0 {
        match at(pat, p) {
            b'*' => {
                while plen > 0 && at(pat, p + 1) == b'*' {
                    p += 1;
                    plen -= 1;
                }
                if plen == 1 {
                    return true;
                }
                while slen > 0 {
                    if match_impl(pat, p + 1, plen - 1, st, s, slen, skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s += 1;
                    slen -= 1;
                }
                // No match for the rest of the pattern from anywhere in the rest of the string:
                // a longer match for an earlier `*` cannot help either.
                *skip_longer = true;
                return false;
            }
            b'?' => {
                s += 1;
                slen -= 1;
            }
            b'[' => {
                p += 1;
                plen -= 1;
                let not = at(pat, p) == b'^';
                if not {
                    p += 1;
                    plen -= 1;
                }
                let c = at(st, s);
                let mut matched = false;
                loop {
                    if at(pat, p) == b'\\' && plen >= 2 {
                        p += 1;
                        plen -= 1;
                        if at(pat, p) == c {
                            matched = true;
                        }
                    } else if at(pat, p) == b']' {
                        break;
                    } else if plen == 0 {
                        // Unclosed class: step back so the common advance below lands on the end.
                        p -= 1;
                        plen += 1;
                        break;
                    } else if plen >= 3 && at(pat, p + 1) == b'-' {
                        let mut start = signed(at(pat, p));
                        let mut end = signed(at(pat, p + 2));
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        p += 2;
                        plen -= 2;
                        let ci = signed(c);
                        if ci >= start && ci <= end {
                            matched = true;
                        }
                    } else if at(pat, p) == c {
                        matched = true;
                    }
                    p += 1;
                    plen -= 1;
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s += 1;
                slen -= 1;
            }
            first => {
                let lit = if first == b'\\' && plen >= 2 {
                    p += 1;
                    plen -= 1;
                    at(pat, p)
                } else {
                    first
                };
                if lit != at(st, s) {
                    return false;
                }
                s += 1;
                slen -= 1;
            }
        }
        p += 1;
        plen -= 1;
        if slen == 0 {
            while at(pat, p) == b'*' {
                p += 1;
                plen -= 1;
            }
            break;
        }
    }
    plen == 0 && slen == 0
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn literals_and_wildcards() {
        // Only KEYS' and SCAN's own `*` shortcut matches the empty key; the matcher does not.
        assert!(!matches(b"*", b""));
        assert!(matches(b"*", b"anything"));
        assert!(matches(b"", b""));
        assert!(!matches(b"", b"a"));
        assert!(matches(b"h?llo", b"hello"));
        assert!(!matches(b"h?llo", b"hllo"));
        assert!(matches(b"h*llo", b"hllo"));
        assert!(matches(b"h*llo", b"heeeello"));
        assert!(matches(b"a**b", b"ab"));
        assert!(matches(b"a*", b"a"));
        assert!(matches(b"a***", b"a"));
        assert!(!matches(b"a*b", b"a"));
        assert!(matches(b"*a*b*", b"xxaxxbxx"));
        assert!(!matches(b"*a*b*", b"xxbxxaxx"));
    }

    #[test]
    fn classes() {
        assert!(matches(b"h[ae]llo", b"hello"));
        assert!(!matches(b"h[ae]llo", b"hillo"));
        assert!(matches(b"h[^e]llo", b"hallo"));
        assert!(!matches(b"h[^e]llo", b"hello"));
        assert!(matches(b"h[a-b]llo", b"hbllo"));
        assert!(
            matches(b"h[b-a]llo", b"hallo"),
            "reversed ranges are swapped"
        );
        assert!(!matches(b"h[a-b]llo", b"hcllo"));
        assert!(matches(b"[\\]]", b"]"));
        // `a-]` is a range up to `]`, which leaves the class unclosed.
        assert!(!matches(b"[a-]", b"-"));
        assert!(matches(b"[a-]", b"_"));
        // An unclosed class still matches what it listed; `[^` alone matches any byte.
        assert!(matches(b"[ab", b"a"));
        assert!(!matches(b"[ab", b"c"));
        assert!(matches(b"[^", b"x"));
        assert!(!matches(b"[", b"x"));
    }

    #[test]
    fn escapes_and_high_bytes() {
        assert!(matches(b"\\*", b"*"));
        assert!(!matches(b"\\*", b"a"));
        assert!(matches(b"a\\", b"a\\"), "a trailing backslash is literal");
        assert!(matches(b"\\?x", b"?x"));
        // 0xff is -1 as a signed char, so `[a-\xff]` spans -1..=97.
        assert!(matches(b"[a-\xff]", b"\x00"));
        assert!(matches(b"[a-\xff]", b"\xff"));
        assert!(!matches(b"[a-\xff]", b"b"));
        assert!(!matches(b"[a-\xff]", b"\x80"));
        assert!(matches(b"a\x00b*", b"a\x00bc"));
    }

    #[test]
    fn abusive_patterns_terminate() {
        let pat = b"a*".repeat(2000);
        let s = vec![b'a'; 3000];
        // Beyond the nesting limit Redis reports no match.
        assert!(!matches(&pat, &s));
        let mut long = b"*".repeat(10);
        long.extend_from_slice(&b"a*".repeat(20));
        long.push(b'b');
        assert!(!matches(&long, &[b'a'; 100]));
    }
}
