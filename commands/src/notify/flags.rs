//! The `notify-keyspace-events` classes, with Redis 7.0's bits, parser
//! (`keyspaceEventsStringToFlags`) and formatter (`keyspaceEventsFlagsToString`).

/// `K`: publish to `__keyspace@<db>__:<key>`.
pub const KEYSPACE: u32 = 1 << 0;
/// `E`: publish to `__keyevent@<db>__:<event>`.
pub const KEYEVENT: u32 = 1 << 1;
/// `g`: generic commands (DEL, EXPIRE, RENAME, ...).
pub const GENERIC: u32 = 1 << 2;
/// `$`: string commands.
pub const STRING: u32 = 1 << 3;
/// `l`: list commands.
pub const LIST: u32 = 1 << 4;
/// `s`: set commands.
pub const SET: u32 = 1 << 5;
/// `h`: hash commands.
pub const HASH: u32 = 1 << 6;
/// `z`: sorted set commands.
pub const ZSET: u32 = 1 << 7;
/// `x`: a key expired.
pub const EXPIRED: u32 = 1 << 8;
/// `e`: a key was evicted for maxmemory.
pub const EVICTED: u32 = 1 << 9;
/// `t`: stream commands.
pub const STREAM: u32 = 1 << 10;
/// `m`: a key miss.
pub const KEY_MISS: u32 = 1 << 11;
/// `d`: module events (accepted and shown; Ferrite has no modules).
pub const MODULE: u32 = 1 << 13;
/// `n`: a key was created.
pub const NEW: u32 = 1 << 14;
/// `A`: Redis's `NOTIFY_ALL`, which leaves out `m` and `n`.
pub const ALL: u32 =
    GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// The error text Redis gives for a character that names no class.
pub const INVALID: &str = "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.";

/// `keyspaceEventsStringToFlags`: `None` for any character that names no class.
pub fn parse(classes: &[u8]) -> Option<u32> {
    classes.iter().try_fold(0, |flags, c| {
        let bit = match c {
            b'A' => ALL,
            b'g' => GENERIC,
            b'$' => STRING,
            b'l' => LIST,
            b's' => SET,
            b'h' => HASH,
            b'z' => ZSET,
            b'x' => EXPIRED,
            b'e' => EVICTED,
            b'K' => KEYSPACE,
            b'E' => KEYEVENT,
            b't' => STREAM,
            b'm' => KEY_MISS,
            b'd' => MODULE,
            b'n' => NEW,
            _ => return None,
        };
        Some(flags | bit)
    })
}

/// `keyspaceEventsFlagsToString`: what CONFIG GET shows. With every `A` class set it prints
/// `A` alone, so `n` is not shown then (though it stays set), as in Redis 7.0.
pub fn format(flags: u32) -> String {
    let mut s = String::new();
    if flags & ALL == ALL {
        s.push('A');
    } else {
        for (bit, c) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
        ] {
            if flags & bit != 0 {
                s.push(c);
            }
        }
    }
    for (bit, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if flags & bit != 0 {
            s.push(c);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CONFIG SET then CONFIG GET on redis-server 7.0.15.
    #[test]
    fn round_trips_as_redis() {
        let cases: &[(&str, &str)] = &[
            ("KEA", "AKE"),
            ("A", "A"),
            ("Ex", "xE"),
            ("gKE", "gKE"),
            ("m", "m"),
            ("n", "n"),
            ("", ""),
            ("Kn", "nK"),
            ("AKEmn", "AKEm"),
            ("x$", "$x"),
            ("K", "K"),
            ("g$lshzxetd", "A"),
            ("mEKndtezhxsl$g", "AKEm"),
            ("mnKgl", "glnKm"),
            ("gg", "g"),
        ];
        for (set, shown) in cases {
            let flags = parse(set.as_bytes()).unwrap();
            assert_eq!(format(flags), *shown, "{set}");
        }
        assert_eq!(
            parse(b"AKEmn"),
            Some(ALL | KEYSPACE | KEYEVENT | KEY_MISS | NEW)
        );
        assert_eq!(parse(b"q"), None);
        assert_eq!(parse(b"KEA "), None);
        assert_eq!(parse(b"a"), None);
    }
}
