//! Conversions between Redis replies and Lua values, as Redis 7.0's `script_lua.c` makes them:
//! a command's RESP reply becomes the Lua value `redis.call` returns
//! (`redisProtocolToLuaType`), and a script's return value becomes the client's reply
//! (`luaReplyToRedisReply`).

use mlua::{Lua, Table, Value};

use super::sandbox::{error_table, trim_newlines};
use crate::resp::Reply;

/// How deep a returned table may nest before the reply stops descending (Redis runs out of Lua
/// stack near here and answers an error in place of the rest).
const MAX_DEPTH: usize = 1000;

/// Converts a command's reply (one complete RESP2 or RESP3 value) into a Lua value.
pub(super) fn reply_to_lua(lua: &Lua, reply: &[u8]) -> mlua::Result<Value> {
    let mut p = RespReader { buf: reply, pos: 0 };
    Ok(p.value(lua)?.unwrap_or(Value::Nil))
}

struct RespReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl RespReader<'_> {
    /// The next line's bytes (without CRLF).
    fn line(&mut self) -> &[u8] {
        let rest = &self.buf[self.pos.min(self.buf.len())..];
        let end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .unwrap_or(rest.len());
        self.pos += end + 2;
        &rest[..end]
    }

    fn int(&mut self) -> i64 {
        std::str::from_utf8(self.line())
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    fn bytes(&mut self, len: usize) -> &[u8] {
        let start = self.pos.min(self.buf.len());
        let end = (start + len).min(self.buf.len());
        self.pos = end + 2;
        &self.buf[start..end]
    }

    /// One value; `None` for an attribute's or a malformed frame's absence of one.
    fn value(&mut self, lua: &Lua) -> mlua::Result<Option<Value>> {
        let Some(&kind) = self.buf.get(self.pos) else {
            return Ok(None);
        };
        self.pos += 1;
        let v = match kind {
            b'+' => {
                let t = lua.create_table()?;
                t.raw_set("ok", lua.create_string(self.line())?)?;
                Value::Table(t)
            }
            b'-' => {
                let line = self.line().to_vec();
                let t = error_table(lua, &[&b"-"[..], &line].concat())?;
                // Already counted when the command answered it.
                t.raw_set("ignore_error_stats_update", true)?;
                Value::Table(t)
            }
            b':' => Value::Number(self.int() as f64),
            b'$' => match self.int() {
                n if n < 0 => Value::Boolean(false),
                n => Value::String(lua.create_string(self.bytes(n as usize))?),
            },
            b'*' => match self.int() {
                n if n < 0 => Value::Boolean(false),
                n => {
                    let t = lua.create_table()?;
                    for i in 1..=n {
                        let v = self.value(lua)?.unwrap_or(Value::Nil);
                        t.raw_set(i, v)?;
                    }
                    Value::Table(t)
                }
            },
            b'%' => {
                let n = self.int();
                let map = lua.create_table()?;
                for _ in 0..n {
                    let k = self.value(lua)?.unwrap_or(Value::Nil);
                    let v = self.value(lua)?.unwrap_or(Value::Nil);
                    if !k.is_nil() {
                        map.raw_set(k, v)?;
                    }
                }
                wrapped(lua, "map", map)?
            }
            b'~' => {
                let n = self.int();
                let set = lua.create_table()?;
                for _ in 0..n {
                    let k = self.value(lua)?.unwrap_or(Value::Nil);
                    if !k.is_nil() {
                        set.raw_set(k, true)?;
                    }
                }
                wrapped(lua, "set", set)?
            }
            b'_' => {
                self.line();
                Value::Nil
            }
            b'#' => Value::Boolean(self.line() == b"t"),
            b',' => {
                let d = parse_double(self.line());
                let t = lua.create_table()?;
                t.raw_set("double", d)?;
                Value::Table(t)
            }
            b'(' => {
                let t = lua.create_table()?;
                t.raw_set("big_number", lua.create_string(self.line())?)?;
                Value::Table(t)
            }
            b'=' => {
                let n = self.int().max(0) as usize;
                let body = self.bytes(n);
                let (format, text) = if body.len() >= 4 {
                    (&body[..3], &body[4..])
                } else {
                    (&body[..0], body)
                };
                let inner = lua.create_table()?;
                inner.raw_set("string", lua.create_string(text)?)?;
                inner.raw_set("format", lua.create_string(format)?)?;
                wrapped(lua, "verbatim_string", inner)?
            }
            b'|' => {
                // Attributes are not shown to scripts: skip them, then read the value.
                let n = self.int();
                for _ in 0..n * 2 {
                    self.value(lua)?;
                }
                return self.value(lua);
            }
            _ => return Ok(None),
        };
        Ok(Some(v))
    }
}

/// `{name = inner}`.
fn wrapped(lua: &Lua, name: &str, inner: Table) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set(name, inner)?;
    Ok(Value::Table(t))
}

/// `strtod` of a RESP3 double's text (`inf`, `-inf`, `nan` included).
fn parse_double(s: &[u8]) -> f64 {
    std::str::from_utf8(s)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0)
}

/// What a script returned, as its caller's reply. `script_resp3` is the protocol the script
/// chose with `redis.setresp` (it decides how booleans come out).
pub(super) fn lua_to_reply(reply: &mut Reply<'_>, v: &Value, script_resp3: bool) {
    to_reply(reply, v, script_resp3, 0);
}

fn to_reply(reply: &mut Reply<'_>, v: &Value, script_resp3: bool, depth: usize) {
    if depth > MAX_DEPTH {
        reply.error("ERR reached lua stack limit");
        return;
    }
    match v {
        Value::String(s) => reply.bulk(&s.as_bytes()),
        Value::Boolean(b) if script_resp3 => reply.boolean(*b),
        Value::Boolean(true) => reply.int(1),
        Value::Boolean(false) => reply.null(),
        Value::Integer(i) => reply.int(*i),
        Value::Number(n) => reply.int(c_double_to_i64(*n)),
        Value::Table(t) => table_to_reply(reply, t, script_resp3, depth),
        _ => reply.null(),
    }
}

/// C's `(long long)` of a double as x86-64 computes it: out of range and NaN give i64::MIN.
fn c_double_to_i64(n: f64) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if !(-LIMIT..LIMIT).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

fn table_to_reply(reply: &mut Reply<'_>, t: &Table, script_resp3: bool, depth: usize) {
    let field = |name: &str| t.raw_get::<Value>(name).unwrap_or(Value::Nil);
    if let Value::String(_) = field("err") {
        let msg = match t.get::<Value>("err") {
            Ok(Value::String(s)) => s.as_bytes().to_vec(),
            _ => Vec::new(),
        };
        let counted = !matches!(field("ignore_error_stats_update"), Value::Boolean(true));
        error_reply(reply, &msg, counted);
        return;
    }
    if let Value::String(ok) = field("ok") {
        let text: Vec<u8> = ok
            .as_bytes()
            .iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
            .collect();
        reply.raw().push(b'+');
        reply.raw().extend_from_slice(&text);
        reply.raw().extend_from_slice(b"\r\n");
        return;
    }
    if let Value::Number(_) | Value::Integer(_) = field("double") {
        let d = match field("double") {
            Value::Integer(i) => i as f64,
            Value::Number(n) => n,
            _ => 0.0,
        };
        reply.double(d);
        return;
    }
    if let Value::String(big) = field("big_number") {
        let text: Vec<u8> = big
            .as_bytes()
            .iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
            .collect();
        reply.big_number(&text);
        return;
    }
    if let Value::Table(v) = field("verbatim_string")
        && let (Ok(Value::String(format)), Ok(Value::String(text))) =
            (v.raw_get::<Value>("format"), v.raw_get::<Value>("string"))
    {
        let format = format.as_bytes();
        let format = String::from_utf8_lossy(&format[..format.len().min(3)]).into_owned();
        if format.len() == 3 {
            reply.verbatim(&format, &text.as_bytes());
            return;
        }
    }
    if let Value::Table(map) = field("map") {
        let pairs: Vec<(Value, Value)> = map.pairs().filter_map(Result::ok).collect();
        reply.map_len(pairs.len());
        for (k, v) in &pairs {
            to_reply(reply, k, script_resp3, depth + 1);
            to_reply(reply, v, script_resp3, depth + 1);
        }
        return;
    }
    if let Value::Table(set) = field("set") {
        let keys: Vec<Value> = set
            .pairs::<Value, Value>()
            .filter_map(|kv| kv.ok().map(|(k, _)| k))
            .collect();
        reply.set_len(keys.len());
        for k in &keys {
            to_reply(reply, k, script_resp3, depth + 1);
        }
        return;
    }
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(v),
        }
    }
    reply.array_len(items.len());
    for v in &items {
        to_reply(reply, v, script_resp3, depth + 1);
    }
}

/// Redis's `addReplyErrorFormatEx(c, flags, "-%s", msg)`: CR/LF at the ends trimmed, inside
/// them spaces; `counted` false when the error was already counted as a command's reply.
pub(super) fn error_reply(reply: &mut Reply<'_>, msg: &[u8], counted: bool) {
    let msg = trim_newlines(msg);
    if counted {
        reply.error_bytes(msg);
    } else {
        let out = reply.raw();
        out.push(b'-');
        out.extend(
            msg.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
        out.extend_from_slice(b"\r\n");
        reply.mark_failed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(resp: &[u8], resp3: bool) -> Vec<u8> {
        let lua = Lua::new();
        let v = reply_to_lua(&lua, resp).unwrap();
        let mut out = Vec::new();
        let mut reply = Reply::new(&mut out, resp3);
        lua_to_reply(&mut reply, &v, false);
        out
    }

    #[test]
    fn replies_come_back_as_redis_converts_them() {
        assert_eq!(roundtrip(b":42\r\n", false), b":42\r\n");
        assert_eq!(roundtrip(b"$3\r\nabc\r\n", false), b"$3\r\nabc\r\n");
        // A null bulk becomes false, which a RESP2 script returns as a null.
        assert_eq!(roundtrip(b"$-1\r\n", false), b"$-1\r\n");
        assert_eq!(roundtrip(b"+OK\r\n", false), b"+OK\r\n");
        assert_eq!(
            roundtrip(b"-WRONGTYPE Operation against\r\n", false),
            b"-WRONGTYPE Operation against\r\n"
        );
        assert_eq!(
            roundtrip(b"*3\r\n:1\r\n$1\r\nx\r\n*1\r\n:2\r\n", false),
            b"*3\r\n:1\r\n$1\r\nx\r\n*1\r\n:2\r\n"
        );
        // An array stops at its first nil (a null inside it).
        assert_eq!(
            roundtrip(b"*3\r\n:1\r\n_\r\n:2\r\n", false),
            b"*1\r\n:1\r\n"
        );
        assert_eq!(roundtrip(b",1.5\r\n", true), b",1.5\r\n");
        assert_eq!(
            roundtrip(b"%1\r\n$1\r\na\r\n:1\r\n", true),
            b"%1\r\n$1\r\na\r\n:1\r\n"
        );
        assert_eq!(roundtrip(b"~1\r\n$1\r\na\r\n", true), b"~1\r\n$1\r\na\r\n");
        assert_eq!(roundtrip(b"(123\r\n", true), b"(123\r\n");
    }

    #[test]
    fn numbers_truncate_like_c() {
        assert_eq!(c_double_to_i64(3.99), 3);
        assert_eq!(c_double_to_i64(-0.5), 0);
        assert_eq!(c_double_to_i64(1e30), i64::MIN);
        assert_eq!(c_double_to_i64(f64::NAN), i64::MIN);
    }

    #[test]
    fn deep_tables_stop_with_an_error() {
        let lua = Lua::new();
        let t: Table = lua
            .load("local t = {} ; t[1] = t ; return t")
            .eval()
            .unwrap();
        let mut out = Vec::new();
        let mut reply = Reply::new(&mut out, false);
        lua_to_reply(&mut reply, &Value::Table(t), false);
        assert!(out.ends_with(b"-ERR reached lua stack limit\r\n"));
    }
}
