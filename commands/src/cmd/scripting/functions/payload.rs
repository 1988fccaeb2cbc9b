//! FUNCTION DUMP's payload and its reading back by FUNCTION RESTORE: each library's code after
//! the RDB opcode `FUNCTION2`, then the RDB version and a CRC-64, as Redis's
//! `functionDumpCommand` writes it (the same bytes an RDB file holds for a library).

use crate::cmd::dump::rdb::{Reader, finish_payload, put_string, verify};
use crate::persist::rdb_write::op;

/// The payload of `codes`.
pub fn dump(codes: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for code in codes {
        out.push(op::FUNCTION2);
        put_string(&mut out, code);
    }
    finish_payload(out)
}

/// The library codes of a payload, up to the first malformed part, and the error reply's text
/// for that part (`functionRestoreCommand`: Redis creates each library as it reads it, so a
/// library's own error comes before a later part's).
pub fn read(payload: &[u8]) -> (Vec<Vec<u8>>, Option<String>) {
    if !verify(payload) {
        let e = "ERR DUMP payload version or checksum are wrong";
        return (Vec::new(), Some(e.into()));
    }
    let body = &payload[..payload.len() - 10];
    let mut r = Reader::new(body);
    let mut codes = Vec::new();
    while r.pos() < body.len() {
        let err = match r.byte() {
            Err(_) => "ERR can not read data type",
            Ok(op::FUNCTION_PRE_GA) => "ERR Pre-GA function format not supported",
            Ok(op::FUNCTION2) => match r.string() {
                Ok(code) => {
                    codes.push(code);
                    continue;
                }
                Err(_) => "ERR Failed loading library payload",
            },
            Ok(_) => "ERR given type is not a function",
        };
        return (codes, Some(err.into()));
    }
    (codes, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        let codes = vec![
            b"#!lua name=a\nredis.register_function('a', function() return 1 end)".to_vec(),
            b"#!lua name=b\n".to_vec(),
        ];
        assert_eq!(read(&dump(&codes)), (codes, None));
        assert_eq!(read(&dump(&[])), (vec![], None));
    }

    #[test]
    fn bad_payloads_are_refused() {
        let mut p = dump(&[b"#!lua name=a\n".to_vec()]);
        p[3] ^= 1;
        let wrong = "ERR DUMP payload version or checksum are wrong";
        assert_eq!(read(&p), (vec![], Some(wrong.into())));
        // A key's DUMP is not a library.
        let key = crate::cmd::dump::rdb::dump_string(b"v");
        let not = "ERR given type is not a function";
        assert_eq!(read(&key), (vec![], Some(not.into())));
    }
}
