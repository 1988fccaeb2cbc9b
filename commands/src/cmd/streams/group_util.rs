//! What the consumer-group handlers share: Redis's formatted errors.

use crate::resp::Reply;

/// An argument as Redis's `%s` prints it: a C string, so cut at the first NUL.
fn c_str(b: &[u8]) -> &[u8] {
    b.split(|&c| c == 0).next().unwrap_or_default()
}

/// Replies an error built from `parts` (the `-CODE` included), as `addReplyErrorFormat`:
/// arguments are C strings, and CR/LF become spaces so the reply stays one line.
pub(super) fn error_fmt(reply: &mut Reply<'_>, parts: &[&[u8]]) {
    let mut msg = Vec::new();
    for p in parts {
        msg.extend(
            c_str(p)
                .iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
    }
    reply.error_bytes(&msg);
}

/// `-NOGROUP No such key '<key>' or consumer group '<group>'<suffix>` (XCLAIM, XAUTOCLAIM,
/// XPENDING; XREADGROUP adds " in XREADGROUP with GROUP option").
pub(super) fn no_key_or_group(reply: &mut Reply<'_>, key: &[u8], group: &[u8], suffix: &str) {
    error_fmt(
        reply,
        &[
            b"NOGROUP No such key '",
            key,
            b"' or consumer group '",
            group,
            b"'",
            suffix.as_bytes(),
        ],
    );
}

/// `-NOGROUP No such consumer group '<group>' for key name '<key>'` (XGROUP, XINFO).
pub(super) fn no_group(reply: &mut Reply<'_>, key: &[u8], group: &[u8]) {
    error_fmt(
        reply,
        &[
            b"NOGROUP No such consumer group '",
            group,
            b"' for key name '",
            key,
            b"'",
        ],
    );
}

/// `addReplySubcommandSyntaxError`: the subcommand as typed, the command upper-cased.
pub(super) fn subcommand_syntax_error(reply: &mut Reply<'_>, command: &str, sub: &[u8]) {
    let sub = &c_str(sub)[..c_str(sub).len().min(128)];
    let cmd = command.to_ascii_uppercase();
    error_fmt(
        reply,
        &[
            b"ERR unknown subcommand or wrong number of arguments for '",
            sub,
            b"'. Try ",
            cmd.as_bytes(),
            b" HELP.",
        ],
    );
}

/// A count as a RESP integer.
pub(super) fn int(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replied(f: impl FnOnce(&mut Reply<'_>)) -> Vec<u8> {
        let mut out = Vec::new();
        let mut r = Reply::new(&mut out, false);
        f(&mut r);
        out
    }

    #[test]
    fn formatted_errors_are_one_line_c_strings() {
        let got = replied(|r| no_group(r, b"k\r\ney", b"g\0hidden"));
        assert_eq!(
            got,
            b"-NOGROUP No such consumer group 'g' for key name 'k  ey'\r\n"
        );
        let got = replied(|r| no_key_or_group(r, b"k", b"g", " in XREADGROUP with GROUP option"));
        assert_eq!(
            got,
            b"-NOGROUP No such key 'k' or consumer group 'g' in XREADGROUP with GROUP option\r\n"
        );
        let got = replied(|r| subcommand_syntax_error(r, "xgroup", b"CrEaTe"));
        assert_eq!(
            got,
            b"-ERR unknown subcommand or wrong number of arguments for 'CrEaTe'. Try XGROUP \
              HELP.\r\n"
        );
    }
}
