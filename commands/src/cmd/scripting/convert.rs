//! Conversions between Redis replies and Lua values, as Redis 7.0's `script_lua.c` makes them:
//! a command's RESP reply becomes the Lua value `redis.call` returns
//! (`redisProtocolToLuaType`), and a script's return value becomes the client's reply
//! (`luaReplyToRedisReply`).

use mlua::{Function, Lua, Table, Value};

use super::sandbox::{error_table, trim_newlines};
use crate::resp::Reply;

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

/// Lua stack slots Redis's conversion may use (`LUAI_MAXCSTACK`): it checks for 4 free ones
/// before each value and answers an error for the value when they are not there.
const MAX_SLOTS: usize = 8000;
/// Slots in use when the returned value is converted (the error handler and the value).
const TOP_SLOTS: usize = 2;

/// What a script returned, as its caller's reply. `script_resp3` is the protocol the script
/// chose with `redis.setresp` (it decides how booleans come out); `next` is Lua's `next`.
///
/// Tables are walked with an explicit stack, one element at a time, as Redis's recursion
/// walks them: a reply of any width or depth holds a handful of Rust references to Lua values
/// (the tables being walked wait in a Lua table, as mlua can hold only so many references),
/// and one of any depth (a table that contains itself) stops where Redis's does, with the same
/// error in place.
pub(super) fn lua_to_reply(
    lua: &Lua,
    reply: &mut Reply<'_>,
    v: Value,
    script_resp3: bool,
    next: &Function,
) -> mlua::Result<()> {
    let walking = lua.create_table()?;
    let mut stack: Vec<Frame> = Vec::new();
    let mut item = Some((v, TOP_SLOTS));
    loop {
        if let Some((v, slots)) = item.take()
            && let Some((t, frame)) = one_value(reply, v, slots, script_resp3, next)
        {
            walking.raw_set(stack.len() + 1, t)?;
            stack.push(frame);
        }
        let depth = stack.len();
        let Some(top) = stack.last_mut() else {
            return Ok(());
        };
        let t: Table = walking.raw_get(depth)?;
        match top.step(&t, next)? {
            Some(child) => item = Some(child),
            None => {
                walking.raw_set(stack.len(), Value::Nil)?;
                stack.pop();
            }
        }
    }
}

/// A table being written out (the table itself waits in the walk's Lua table).
struct Frame {
    slots: usize,
    kind: Walk,
}

/// How a table's elements are reached, and so how many Lua stack slots Redis has in use for
/// each (the frame's own slots count the table; a map's or set's frame counts the inner table
/// Redis fetched by name): an array element is pushed on top of its table (+1); a map walk
/// holds key and value with a copy of the key on top (+3, then +2 for the value); a set walk
/// holds the key and its copy (+2).
enum Walk {
    Array { next: usize },
    Map { key: Value, value: Option<Value> },
    Set { key: Value },
}

impl Frame {
    /// The next element to write, with the Lua stack slots Redis would have in use for it.
    fn step(&mut self, t: &Table, next: &Function) -> mlua::Result<Option<(Value, usize)>> {
        match &mut self.kind {
            Walk::Array { next: i } => {
                let v: Value = t.raw_get(*i)?;
                *i += 1;
                Ok((!v.is_nil()).then_some((v, self.slots + 1)))
            }
            Walk::Map { key, value } => {
                if let Some(v) = value.take() {
                    return Ok(Some((v, self.slots + 2)));
                }
                let (k, v): (Value, Value) = next.call((t.clone(), key.clone()))?;
                if k.is_nil() {
                    return Ok(None);
                }
                *key = k.clone();
                *value = Some(v);
                Ok(Some((k, self.slots + 3)))
            }
            Walk::Set { key } => {
                let (k, _): (Value, Value) = next.call((t.clone(), key.clone()))?;
                if k.is_nil() {
                    return Ok(None);
                }
                *key = k.clone();
                Ok(Some((k, self.slots + 2)))
            }
        }
    }
}

/// Writes `v`, or the header of a table whose elements follow (the returned table and frame).
fn one_value(
    reply: &mut Reply<'_>,
    v: Value,
    slots: usize,
    script_resp3: bool,
    next: &Function,
) -> Option<(Table, Frame)> {
    if slots + 4 > MAX_SLOTS {
        reply.error("ERR reached lua stack limit");
        return None;
    }
    match v {
        Value::String(s) => reply.bulk(&s.as_bytes()),
        Value::Boolean(b) if script_resp3 => reply.boolean(b),
        Value::Boolean(true) => reply.int(1),
        Value::Boolean(false) => reply.null(),
        Value::Integer(i) => reply.int(i),
        Value::Number(n) => reply.int(c_double_to_i64(n)),
        Value::Table(t) => return table_header(reply, t, slots, next),
        _ => reply.null(),
    }
    None
}

/// Counts what `next` walks in `t`.
fn count_pairs(t: &Table, next: &Function) -> usize {
    let mut key = Value::Nil;
    let mut n = 0;
    while let Ok((k, _)) = next.call::<(Value, Value)>((t.clone(), key)) {
        if k.is_nil() {
            break;
        }
        n += 1;
        key = k;
    }
    n
}

/// `luaReplyToRedisReply` for a table: an error, status, double, big number or verbatim
/// string table is written whole; a map, set or array gets its header and a frame.
fn table_header(
    reply: &mut Reply<'_>,
    t: Table,
    slots: usize,
    next: &Function,
) -> Option<(Table, Frame)> {
    let field = |name: &str| t.raw_get::<Value>(name).unwrap_or(Value::Nil);
    if let Value::String(_) = field("err") {
        let msg = match t.get::<Value>("err") {
            Ok(Value::String(s)) => s.as_bytes().to_vec(),
            _ => Vec::new(),
        };
        let counted = !matches!(field("ignore_error_stats_update"), Value::Boolean(true));
        error_reply(reply, &msg, counted);
        return None;
    }
    if let Value::String(ok) = field("ok") {
        reply.raw().push(b'+');
        reply
            .raw()
            .extend(ok.as_bytes().iter().map(|&b| no_newline(b)));
        reply.raw().extend_from_slice(b"\r\n");
        return None;
    }
    match field("double") {
        Value::Integer(i) => {
            reply.double(i as f64);
            return None;
        }
        Value::Number(n) => {
            reply.double(n);
            return None;
        }
        _ => {}
    }
    if let Value::String(big) = field("big_number") {
        let text: Vec<u8> = big.as_bytes().iter().map(|&b| no_newline(b)).collect();
        reply.big_number(&text);
        return None;
    }
    if let Value::Table(v) = field("verbatim_string")
        && let (Ok(Value::String(format)), Ok(Value::String(text))) =
            (v.raw_get::<Value>("format"), v.raw_get::<Value>("string"))
        && format.as_bytes().len() >= 3
    {
        let format = String::from_utf8_lossy(&format.as_bytes()[..3]).into_owned();
        reply.verbatim(&format, &text.as_bytes());
        return None;
    }
    if let Value::Table(map) = field("map") {
        reply.map_len(count_pairs(&map, next));
        let kind = Walk::Map {
            key: Value::Nil,
            value: None,
        };
        return Some((
            map,
            Frame {
                slots: slots + 1,
                kind,
            },
        ));
    }
    if let Value::Table(set) = field("set") {
        reply.set_len(count_pairs(&set, next));
        let kind = Walk::Set { key: Value::Nil };
        return Some((
            set,
            Frame {
                slots: slots + 1,
                kind,
            },
        ));
    }
    let mut len = 0;
    while !matches!(t.raw_get::<Value>(len + 1), Ok(Value::Nil) | Err(_)) {
        len += 1;
    }
    reply.array_len(len);
    let kind = Walk::Array { next: 1 };
    Some((t, Frame { slots, kind }))
}

/// Redis's `sdsmapchars(s, "\r\n", "  ")` of one byte.
fn no_newline(b: u8) -> u8 {
    if b == b'\r' || b == b'\n' { b' ' } else { b }
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
        let next: Function = lua.globals().get("next").unwrap();
        lua_to_reply(&lua, &mut reply, v, false, &next).unwrap();
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

    fn convert(lua: &Lua, code: &str) -> Vec<u8> {
        let v: Value = lua.load(code).eval().unwrap();
        let mut out = Vec::new();
        let mut reply = Reply::new(&mut out, false);
        let next: Function = lua.globals().get("next").unwrap();
        lua_to_reply(lua, &mut reply, v, false, &next).unwrap();
        out
    }

    #[test]
    fn deep_tables_stop_where_redis_does() {
        // redis-server 7.0.15 answers 7995 nested one-element arrays, then the error.
        let lua = Lua::new();
        let out = convert(&lua, "local t = {} ; t[1] = t ; return t");
        assert_eq!(
            out.len(),
            7995 * 4 + b"-ERR reached lua stack limit\r\n".len()
        );
        assert!(out.ends_with(b"*1\r\n-ERR reached lua stack limit\r\n"));
    }

    #[test]
    fn wide_tables_are_not_cut() {
        // More strings than mlua can hold references to at once.
        let lua = Lua::new();
        let out = convert(
            &lua,
            "local t = {} for i = 1, 20000 do t[i] = 'x' .. i end return t",
        );
        assert!(out.starts_with(b"*20000\r\n$2\r\nx1\r\n"));
        assert!(out.ends_with(b"$6\r\nx20000\r\n"));
        let out = convert(
            &lua,
            "local t = {} for i = 1, 20000 do t['k' .. i] = i end return {map = t}",
        );
        assert!(out.starts_with(b"*40000\r\n"));
    }
}
