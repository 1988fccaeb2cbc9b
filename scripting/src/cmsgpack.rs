//! `cmsgpack`: Redis 7.0's `lua_cmsgpack.c` (antirez's lua-cmsgpack 0.4.0) for scripts, with
//! the same bytes, values and error texts.
//!
//! - `pack(v, ...)` encodes each argument and concatenates the encodings. A number that is an
//!   integer in `int64_t` range packs as the smallest msgpack integer, any other number as a
//!   float 32 when that is lossless, else as a float 64. Strings use fixstr / str 8 / str 16 /
//!   str 32. A table whose keys are exactly 1..n packs as an array, any other as a map (in
//!   `next` order); tables nested 16 deep pack as nil, which also stops cycles. Functions,
//!   threads and userdata pack as nil.
//! - `unpack(s)` returns every value encoded in `s`; `unpack_one(s [, offset])` the first value
//!   from byte `offset` (0-based), `unpack_limit(s, limit [, offset])` up to `limit` values; both
//!   return first the offset where the next value starts, or -1 at the end of `s`. Bin and ext
//!   types are not understood ("Bad data format in input."); integers come back as Lua numbers
//!   (so uint 64 values past 2^63 wrap negative, as in Redis).
//!
//! Like the C code, decoding counts the Lua stack slots it would use and fails with the same
//! "stack overflow (...)" errors at the same depth and value counts (Lua 5.1 gives a C function
//! 8000 slots), and it runs without recursion, so no input can exhaust the native stack.

use mlua::{Lua, MultiValue, Table, Value};

use crate::lauxlib::{
    MAX_C_STACK, Raise, Results, arg, check_integer, check_lstring, check_stack, double_to_i64,
    function, opt_integer,
};

/// `LUACMSGPACK_MAX_NESTING`: tables at this depth pack as nil.
const MAX_NESTING: usize = 16;

/// The message of the stack check before each decoded value.
const TOO_MANY_VALUES: &str =
    "too many return values at once; use unpack_one or unpack_limit instead.";

/// Opens the library: its table.
pub fn open(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    // Same fields in the same order as `luaopen_create`, so that the table's own layout (which
    // `cmsgpack.pack(cmsgpack)` shows) is Redis's.
    t.raw_set("pack", function(lua, pack)?)?;
    t.raw_set("unpack", function(lua, unpack)?)?;
    t.raw_set("unpack_one", function(lua, unpack_one)?)?;
    t.raw_set("unpack_limit", function(lua, unpack_limit)?)?;
    t.raw_set("_NAME", "cmsgpack")?;
    t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.raw_set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.raw_set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(t)
}

// ------------------------------------------------------------------------------ encoding ----

/// `mp_pack`.
fn pack(lua: &Lua, args: MultiValue) -> Result<Results, Raise> {
    let nargs = args.len();
    if nargs == 0 {
        return Err(Raise::arg(0, "MessagePack pack needs input."));
    }
    // `lua_checkstack(L, nargs)` on a stack already holding the nargs arguments.
    if nargs * 2 > MAX_C_STACK {
        return Err(Raise::arg(0, "Too many arguments for MessagePack pack."));
    }
    let mut buf = Vec::new();
    for v in args.iter() {
        encode(&mut buf, v, 0)?;
    }
    Ok(Results::one(Value::String(lua.create_string(buf)?)))
}

/// `mp_encode_lua_type`.
fn encode(buf: &mut Vec<u8>, v: &Value, level: usize) -> mlua::Result<()> {
    match v {
        Value::String(s) => encode_bytes(buf, &s.as_bytes()),
        Value::Boolean(b) => buf.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => encode_number(buf, *i as f64),
        Value::Number(n) => encode_number(buf, *n),
        Value::Table(t) if level < MAX_NESTING => encode_table(buf, t, level)?,
        _ => buf.push(0xc0),
    }
    Ok(())
}

/// `mp_encode_lua_number` (Lua 5.1): integers in `int64_t` range as integers.
fn encode_number(buf: &mut Vec<u8>, n: f64) {
    let i = double_to_i64(n);
    if !n.is_infinite() && i as f64 == n {
        encode_int(buf, i);
    } else {
        encode_double(buf, n);
    }
}

/// `mp_encode_double`: float 32 when converting to `float` and back gives the same number.
fn encode_double(buf: &mut Vec<u8>, d: f64) {
    let f = d as f32;
    if f64::from(f) == d {
        buf.push(0xca);
        buf.extend_from_slice(&f.to_be_bytes());
    } else {
        buf.push(0xcb);
        buf.extend_from_slice(&d.to_be_bytes());
    }
}

/// `mp_encode_int`: the smallest format for the value.
fn encode_int(buf: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        if n <= 127 {
            buf.push(n as u8);
        } else if n <= 0xff {
            buf.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            buf.push(0xcd);
            buf.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            buf.push(0xce);
            buf.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            buf.push(0xcf);
            buf.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        buf.push(n as i8 as u8);
    } else if n >= -128 {
        buf.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        buf.push(0xd1);
        buf.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        buf.push(0xd2);
        buf.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        buf.push(0xd3);
        buf.extend_from_slice(&n.to_be_bytes());
    }
}

/// `mp_encode_bytes`. Lengths past 32 bits keep their low 32 bits in the header, as in C.
fn encode_bytes(buf: &mut Vec<u8>, s: &[u8]) {
    let len = s.len();
    if len < 32 {
        buf.push(0xa0 | len as u8);
    } else if len <= 0xff {
        buf.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        buf.push(0xda);
        buf.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        buf.push(0xdb);
        buf.extend_from_slice(&(len as u32).to_be_bytes());
    }
    buf.extend_from_slice(s);
}

/// `mp_encode_array` / `mp_encode_map`: the header for `n` elements (`fix` is 0x90 or 0x80,
/// `x16` 0xdc or 0xde; the 32-bit form follows it).
fn encode_header(buf: &mut Vec<u8>, n: usize, fix: u8, x16: u8) {
    if n <= 15 {
        buf.push(fix | n as u8);
    } else if n <= 0xffff {
        buf.push(x16);
        buf.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        buf.push(x16 + 1);
        buf.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

/// `mp_encode_lua_table`: an array when `table_is_an_array`, else a map in `next` order. The
/// table is walked twice (count, then encode) rather than copied, so that no more than a few
/// of its values are held at once (see `crate::lauxlib::SPILL` on mlua's limit).
fn encode_table(buf: &mut Vec<u8>, t: &Table, level: usize) -> mlua::Result<()> {
    let t = &crate::contents(t);
    let mut count = 0usize;
    let mut max = 0usize;
    let mut array = true;
    t.for_each(|k: Value, _: Value| {
        count += 1;
        if array {
            match array_index(&k) {
                Some(n) => max = max.max(n),
                None => array = false,
            }
        }
        Ok(())
    })?;
    if array && max == count {
        // Keys are exactly 1..count, so `lua_objlen` is count and every index is present.
        encode_header(buf, count, 0x90, 0xdc);
        for j in 1..=count {
            let v: Value = t.raw_get(j)?;
            encode(buf, &v, level + 1)?;
        }
    } else {
        encode_header(buf, count, 0x80, 0xde);
        t.for_each(|k: Value, v: Value| {
            encode(buf, &k, level + 1)?;
            encode(buf, &v, level + 1)
        })?;
    }
    Ok(())
}

/// The test `table_is_an_array` (Lua 5.1) applies to each key: a number, positive, and an
/// `int` (`(int)n == n`).
fn array_index(k: &Value) -> Option<usize> {
    let n = match k {
        Value::Integer(i) => *i as f64,
        Value::Number(n) => *n,
        _ => return None,
    };
    if n <= 0.0 || n > f64::from(i32::MAX) || n.fract() != 0.0 {
        return None;
    }
    Some(n as usize)
}

// ------------------------------------------------------------------------------ decoding ----

/// `mp_unpack`: every value.
fn unpack(lua: &Lua, args: MultiValue) -> Result<Results, Raise> {
    // The C function keeps all its arguments on the stack while it pushes the values.
    unpack_full(lua, &args, args.len(), 0, 0)
}

/// `mp_unpack_one`: the next offset and one value.
fn unpack_one(lua: &Lua, args: MultiValue) -> Result<Results, Raise> {
    let offset = opt_integer(lua, arg(&args, 2), 2, 0)?;
    unpack_full(lua, &args, args.len().min(1), 1, offset)
}

/// `mp_unpack_limit`: the next offset and up to `limit` values.
fn unpack_limit(lua: &Lua, args: MultiValue) -> Result<Results, Raise> {
    let limit = check_integer(lua, arg(&args, 2), 2)?;
    let offset = opt_integer(lua, arg(&args, 3), 3, 0)?;
    unpack_full(lua, &args, args.len().min(1), limit, offset)
}

/// `mp_unpack_full`. `base` is how many stack slots the arguments hold; limit and offset both
/// 0 mean "all values, no offset in the results" (so `unpack_limit(s, 0)` decodes everything).
fn unpack_full(
    lua: &Lua,
    args: &MultiValue,
    base: usize,
    limit: i64,
    offset: i64,
) -> Result<Results, Raise> {
    let s = check_lstring(lua, arg(args, 1), 1)?;
    let bytes = s.as_bytes();
    let len = bytes.len();
    let decode_all = limit == 0 && offset == 0;
    // The C code prints `(int)` casts, and the length where the limit was meant.
    if offset < 0 || limit < 0 {
        return Err(Raise::error(format!(
            "Invalid request to unpack with offset of {} and limit of {}.",
            offset as i32, len as i32
        )));
    }
    let Some(data) = bytes.get(offset as usize..) else {
        return Err(Raise::error(format!(
            "Start offset {} greater than input length {}.",
            offset as i32, len as i32
        )));
    };
    let limit = if decode_all {
        i64::from(i32::MAX)
    } else {
        limit
    };

    let mut results = Results::new();
    if !decode_all {
        // The next offset comes first; it is known at the end.
        results.push(lua, Value::Nil)?;
    }
    let mut cur = Cursor { data, pos: 0 };
    let mut nest = Nest::new(lua);
    let mut count = 0usize;
    while cur.left() > 0 && (count as i64) < limit {
        let v = decode(&mut nest, &mut cur, base + count)?;
        results.push(lua, v)?;
        count += 1;
    }
    if !decode_all {
        check_stack(base + count, 1, "in function mp_unpack_full")?;
        let next = if cur.left() == 0 {
            -1
        } else {
            (len - cur.left()) as i64
        };
        results.set(1, Value::Integer(next))?;
    }
    Ok(results)
}

/// The input being decoded.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn left(&self) -> usize {
        self.data.len() - self.pos
    }

    /// `mp_cur_need`: the next `n` bytes, or "Missing bytes in input.".
    fn need(&self, n: usize) -> Result<&[u8], Raise> {
        self.data
            .get(self.pos..)
            .and_then(|rest| rest.get(..n))
            .ok_or_else(|| Raise::error("Missing bytes in input."))
    }

    /// The `N` bytes after the type byte, consuming them and the type byte.
    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], Raise> {
        let b = self.need(1 + N)?;
        let mut out = [0; N];
        out.copy_from_slice(&b[1..]);
        self.pos += 1 + N;
        Ok(out)
    }

    /// A string of `len` bytes after a header of `hdr` bytes.
    fn string(&mut self, lua: &Lua, hdr: usize, len: usize) -> Result<Value, Raise> {
        let b = self.need(hdr.saturating_add(len))?;
        let s = lua.create_string(&b[hdr..])?;
        self.pos += hdr + len;
        Ok(Value::String(s))
    }
}

/// What one msgpack header gives: a whole value, or a container whose elements follow.
enum Item {
    Value(Value),
    Array(Table, usize),
    Map(Table, usize),
}

/// What a container being filled still expects.
enum Kind {
    Array { next: i64 },
    Map { has_key: bool },
}

/// A container being filled, with the stack depth of its table.
struct Frame {
    kind: Kind,
    remaining: usize,
    depth: usize,
}

/// The containers being filled, innermost last. Only the innermost one's table and pending key
/// are held as Rust values; the outer ones wait in two Lua tables indexed by level, so that
/// deep input does not exhaust mlua's reference slots (see `crate::lauxlib::SPILL`).
struct Nest<'l> {
    lua: &'l Lua,
    frames: Vec<Frame>,
    table: Option<Table>,
    key: Option<Value>,
    spill: Option<(Table, Table)>,
}

impl<'l> Nest<'l> {
    fn new(lua: &'l Lua) -> Self {
        Nest {
            lua,
            frames: Vec::new(),
            table: None,
            key: None,
            spill: None,
        }
    }

    fn spill(&mut self) -> mlua::Result<(Table, Table)> {
        if self.spill.is_none() {
            self.spill = Some((self.lua.create_table()?, self.lua.create_table()?));
        }
        match &self.spill {
            Some((tables, keys)) => Ok((tables.clone(), keys.clone())),
            None => Err(mlua::Error::runtime("no spill tables")),
        }
    }

    /// Starts filling `table`, setting the current container aside.
    fn open(&mut self, table: Table, frame: Frame) -> mlua::Result<()> {
        if let Some(parent) = self.table.take() {
            let level = self.frames.len();
            let (tables, keys) = self.spill()?;
            tables.raw_set(level, parent)?;
            if let Some(k) = self.key.take() {
                keys.raw_set(level, k)?;
            }
        }
        self.frames.push(frame);
        self.table = Some(table);
        Ok(())
    }

    /// Finishes the current container, returning it, and takes back the one around it.
    fn close(&mut self) -> mlua::Result<Value> {
        self.frames.pop();
        let done = self.table.take().map_or(Value::Nil, Value::Table);
        if let Some(parent) = self.frames.last() {
            let awaiting_value = matches!(parent.kind, Kind::Map { has_key: true });
            let level = self.frames.len();
            let (tables, keys) = self.spill()?;
            self.table = Some(tables.raw_get(level)?);
            if awaiting_value {
                self.key = Some(keys.raw_get(level)?);
            }
        }
        Ok(done)
    }
}

/// `mp_decode_to_lua_type` for one value whose slot would be the `depth + 1`th on the stack,
/// without recursion: containers wait in `nest` for their elements. In C an array element
/// sits two slots above its table's slot (the table, then the index), a map key one and a map
/// value two.
fn decode(nest: &mut Nest, cur: &mut Cursor, mut depth: usize) -> Result<Value, Raise> {
    let lua = nest.lua;
    let bottom = nest.frames.len();
    loop {
        let mut value = match decode_item(lua, cur, depth)? {
            Item::Value(v) => v,
            Item::Array(table, len) => {
                let table_depth = depth + 1;
                check_stack(table_depth, 1, "in function mp_decode_to_lua_array")?;
                if len == 0 {
                    Value::Table(table)
                } else {
                    let kind = Kind::Array { next: 1 };
                    nest.open(
                        table,
                        Frame {
                            kind,
                            remaining: len,
                            depth: table_depth,
                        },
                    )?;
                    depth = table_depth + 1;
                    continue;
                }
            }
            Item::Map(table, len) => {
                let table_depth = depth + 1;
                if len == 0 {
                    Value::Table(table)
                } else {
                    let kind = Kind::Map { has_key: false };
                    nest.open(
                        table,
                        Frame {
                            kind,
                            remaining: len,
                            depth: table_depth,
                        },
                    )?;
                    depth = table_depth;
                    continue;
                }
            }
        };
        // Store the finished value in its container; a container completed by it is itself a
        // finished value for the one around it.
        loop {
            if nest.frames.len() == bottom {
                return Ok(value);
            }
            let (Some(frame), Some(table)) = (nest.frames.last_mut(), &nest.table) else {
                return Ok(value);
            };
            match &mut frame.kind {
                Kind::Array { next } => {
                    table.raw_set(*next, value)?;
                    *next += 1;
                    frame.remaining -= 1;
                    if frame.remaining > 0 {
                        depth = frame.depth + 1;
                        break;
                    }
                }
                Kind::Map { has_key } => {
                    if !*has_key {
                        *has_key = true;
                        nest.key = Some(value);
                        depth = frame.depth + 1;
                        break;
                    }
                    *has_key = false;
                    let k = nest.key.take().unwrap_or(Value::Nil);
                    set_field(table, k, value)?;
                    frame.remaining -= 1;
                    if frame.remaining > 0 {
                        depth = frame.depth;
                        break;
                    }
                }
            }
            value = nest.close()?;
        }
    }
}

/// `lua_settable` on a fresh table: the Lua core refuses nil and NaN keys with its own bare
/// messages.
fn set_field(table: &Table, k: Value, v: Value) -> Result<(), Raise> {
    match k {
        Value::Nil => Err(Raise::Plain(b"table index is nil".to_vec())),
        Value::Number(n) if n.is_nan() => Err(Raise::Plain(b"table index is NaN".to_vec())),
        k => Ok(table.raw_set(k, v)?),
    }
}

/// A decoded number.
fn num(n: f64) -> Result<Item, Raise> {
    Ok(Item::Value(Value::Number(n)))
}

/// One msgpack header (and a scalar's payload) at the cursor, for a value at stack `depth`.
fn decode_item(lua: &Lua, cur: &mut Cursor, depth: usize) -> Result<Item, Raise> {
    let b = cur.need(1)?[0];
    check_stack(depth, 1, TOO_MANY_VALUES)?;
    match b {
        0xcc => num(f64::from(cur.fixed::<1>()?[0])),
        0xd0 => num(f64::from(cur.fixed::<1>()?[0] as i8)),
        0xcd => num(f64::from(u16::from_be_bytes(cur.fixed()?))),
        0xd1 => num(f64::from(i16::from_be_bytes(cur.fixed()?))),
        0xce => num(f64::from(u32::from_be_bytes(cur.fixed()?))),
        0xd2 => num(f64::from(i32::from_be_bytes(cur.fixed()?))),
        // Pushed as a `lua_Integer`: past 2^63 it wraps negative.
        0xcf => num(u64::from_be_bytes(cur.fixed()?) as i64 as f64),
        0xd3 => num(i64::from_be_bytes(cur.fixed()?) as f64),
        0xc0 => {
            cur.pos += 1;
            Ok(Item::Value(Value::Nil))
        }
        0xc2 | 0xc3 => {
            cur.pos += 1;
            Ok(Item::Value(Value::Boolean(b == 0xc3)))
        }
        0xca => num(f64::from(f32::from_be_bytes(cur.fixed()?))),
        0xcb => num(f64::from_be_bytes(cur.fixed()?)),
        0xd9 => {
            let len = usize::from(cur.need(2)?[1]);
            cur.string(lua, 2, len).map(Item::Value)
        }
        0xda => {
            let h = cur.need(3)?;
            let len = usize::from(u16::from_be_bytes([h[1], h[2]]));
            cur.string(lua, 3, len).map(Item::Value)
        }
        0xdb => {
            let len = u32::from_be_bytes(cur.fixed()?) as usize;
            cur.string(lua, 0, len).map(Item::Value)
        }
        0xdc => {
            let len = usize::from(u16::from_be_bytes(cur.fixed()?));
            Ok(Item::Array(lua.create_table()?, len))
        }
        0xdd => {
            let len = u32::from_be_bytes(cur.fixed()?) as usize;
            Ok(Item::Array(lua.create_table()?, len))
        }
        0xde => {
            let len = usize::from(u16::from_be_bytes(cur.fixed()?));
            Ok(Item::Map(lua.create_table()?, len))
        }
        0xdf => {
            let len = u32::from_be_bytes(cur.fixed()?) as usize;
            Ok(Item::Map(lua.create_table()?, len))
        }
        _ if b & 0x80 == 0 => {
            cur.pos += 1;
            num(f64::from(b))
        }
        _ if b & 0xe0 == 0xe0 => {
            cur.pos += 1;
            num(f64::from(b as i8))
        }
        _ if b & 0xe0 == 0xa0 => cur.string(lua, 1, usize::from(b & 0x1f)).map(Item::Value),
        _ if b & 0xf0 == 0x90 => {
            cur.pos += 1;
            Ok(Item::Array(lua.create_table()?, usize::from(b & 0xf)))
        }
        _ if b & 0xf0 == 0x80 => {
            cur.pos += 1;
            Ok(Item::Map(lua.create_table()?, usize::from(b & 0xf)))
        }
        // Bin, ext, fixext and 0xc1.
        _ => Err(Raise::error("Bad data format in input.")),
    }
}

#[cfg(test)]
mod tests {
    //! Expected bytes and messages come from redis-server 7.0.15, e.g.
    //! `redis-cli --no-raw eval "return cmsgpack.pack({1,2,3})" 0`; error texts are the part of
    //! Redis's reply after "ERR " and before " script: ...".

    use super::*;
    use crate::testutil::*;

    /// Renders values for comparison (run by the tests, not by Redis): strings quoted with
    /// `%q`, tables as sorted `{k=v}`.
    const PRELUDE: &str = r#"
        local function show(v)
            if type(v) == 'table' then
                local keys = {}
                for k in pairs(v) do keys[#keys + 1] = k end
                table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
                local parts = {}
                for _, k in ipairs(keys) do parts[#parts + 1] = show(k) .. '=' .. show(v[k]) end
                return '{' .. table.concat(parts, ',') .. '}'
            elseif type(v) == 'string' then
                return string.format('%q', v)
            end
            return tostring(v)
        end
        function showall(...)
            local out = {}
            for i = 1, select('#', ...) do out[i] = show((select(i, ...))) end
            return table.concat(out, ' ')
        end
        function sum(s)
            local h = 0
            for i = 1, #s do h = (h * 31 + s:byte(i)) % 4294967296 end
            return #s .. ':' .. h
        end
    "#;

    fn lua() -> Lua {
        let lua = Lua::new();
        lua.globals().set("cmsgpack", open(&lua).unwrap()).unwrap();
        lua.load(PRELUDE).exec().unwrap();
        lua
    }

    #[test]
    fn pack_scalars() {
        let lua = lua();
        // redis-cli eval "return cmsgpack.pack({1,2,3}, 'a', {a=1}, true, false, nil, -1, -33,
        //   1.5, 2^32, 2^53, -2^63, 2^63, 0/0, 1/0, -1/0, -0.0, 0.1)" 0
        assert_eq!(
            bytes(
                &lua,
                "return cmsgpack.pack({1,2,3}, 'a', {a=1}, true, false, nil, -1, -33, 1.5, \
                 2^32, 2^53, -2^63, 2^63, 0/0, 1/0, -1/0, -0.0, 0.1)"
            ),
            b"\x93\x01\x02\x03\xa1a\x81\xa1a\x01\xc3\xc2\xc0\xff\xd0\xdf\xca?\xc0\x00\x00\
              \xcf\x00\x00\x00\x01\x00\x00\x00\x00\xcf\x00 \x00\x00\x00\x00\x00\x00\
              \xd3\x80\x00\x00\x00\x00\x00\x00\x00\xca_\x00\x00\x00\
              \xcb\xff\xf8\x00\x00\x00\x00\x00\x00\xca\x7f\x80\x00\x00\xca\xff\x80\x00\x00\
              \x00\xcb?\xb9\x99\x99\x99\x99\x99\x9a"
        );
        assert_eq!(
            bytes(
                &lua,
                "return cmsgpack.pack(-32, -129, -32769, -2147483649, 128, 256, 65536, \
                 4294967296, 2^63-1024)"
            ),
            b"\xe0\xd1\xff\x7f\xd2\xff\xff\x7f\xff\xd3\xff\xff\xff\xff\x7f\xff\xff\xff\
              \xcc\x80\xcd\x01\x00\xce\x00\x01\x00\x00\xcf\x00\x00\x00\x01\x00\x00\x00\x00\
              \xcf\x7f\xff\xff\xff\xff\xff\xfc\x00"
        );
        assert_eq!(
            bytes(
                &lua,
                "return cmsgpack.pack(127, 255, 65535, 4294967295, -128, -32768, -2^31)"
            ),
            b"\x7f\xcc\xff\xcd\xff\xff\xce\xff\xff\xff\xff\xd0\x80\xd1\x80\x00\xd2\x80\x00\x00\x00"
        );
        assert_eq!(
            bytes(
                &lua,
                "return cmsgpack.pack(1e308, 3.4028234663852886e38, 1e-45, 2^-149)"
            ),
            b"\xcb\x7f\xe1\xcc\xf3\x85\xeb\xc8\xa0\xca\x7f\x7f\xff\xff\
              \xcb6\x96\xd6\x01\xad7j\xb9\xca\x00\x00\x00\x01"
        );
        // Numeric strings stay strings; functions and threads are nil.
        assert_eq!(bytes(&lua, "return cmsgpack.pack('12')"), b"\xa212");
        assert_eq!(
            bytes(
                &lua,
                "return cmsgpack.pack(function() end, coroutine.create(function() end))"
            ),
            b"\xc0\xc0"
        );
    }

    #[test]
    fn pack_strings() {
        let lua = lua();
        let mut want = vec![0xbf];
        want.extend_from_slice(&[b'x'; 31]);
        want.extend_from_slice(b"\xd9 ");
        want.extend_from_slice(&[b'y'; 32]);
        assert_eq!(
            bytes(
                &lua,
                "return cmsgpack.pack(string.rep('x', 31), string.rep('y', 32))"
            ),
            want
        );
        assert_eq!(bytes(&lua, "return cmsgpack.pack('')"), b"\xa0");
        assert_eq!(
            bytes(&lua, "return cmsgpack.pack(string.rep('z', 255)):sub(1, 3)"),
            b"\xd9\xffz"
        );
        assert_eq!(
            bytes(&lua, "return cmsgpack.pack(string.rep('z', 256)):sub(1, 4)"),
            b"\xda\x01\x00z"
        );
        assert_eq!(
            bytes(
                &lua,
                "return cmsgpack.pack(string.rep('z', 65536)):sub(1, 6)"
            ),
            b"\xdb\x00\x01\x00\x00z"
        );
    }

    #[test]
    fn pack_tables() {
        let lua = lua();
        assert_eq!(bytes(&lua, "return cmsgpack.pack({})"), b"\x90");
        assert_eq!(
            bytes(&lua, "return cmsgpack.pack({{{}}}, {[{}]=1})"),
            b"\x91\x91\x90\x81\x90\x01"
        );
        assert_eq!(
            bytes(
                &lua,
                "local t = {} for i=1,16 do t[i]=i end return cmsgpack.pack(t):sub(1,4)"
            ),
            b"\xdc\x00\x10\x01"
        );
        assert_eq!(
            bytes(
                &lua,
                "local t = {} for i=1,65536 do t[i]=1 end return cmsgpack.pack(t):sub(1,6)"
            ),
            b"\xdd\x00\x01\x00\x00\x01"
        );
        // Map order is Lua's `next` order, the same in both Luas.
        assert_eq!(
            bytes(
                &lua,
                "local t = {} for i=1,16 do t['k'..i]=i end return cmsgpack.pack(t)"
            ),
            b"\xde\x00\x10\xa3k12\x0c\xa3k16\x10\xa2k9\t\xa2k8\x08\xa2k1\x01\xa3k15\x0f\
              \xa2k3\x03\xa2k2\x02\xa3k14\x0e\xa3k13\r\xa3k10\n\xa3k11\x0b\xa2k6\x06\
              \xa2k7\x07\xa2k4\x04\xa2k5\x05"
        );
        assert_eq!(
            bytes(
                &lua,
                "return cmsgpack.pack({a=1,b=2,c=3,[1]=4,[2.5]=5,[true]=6})"
            ),
            b"\x86\xa1a\x01\xc3\x06\xa1c\x03\xa1b\x02\x01\x04\xca@ \x00\x00\x05"
        );
        // Keys must be exactly 1..n for an array.
        assert_eq!(
            bytes(
                &lua,
                "return cmsgpack.pack({[-1]=1}, {[0]=1}, {nil, 2}, {1, nil, 3})"
            ),
            b"\x81\xff\x01\x81\x00\x01\x81\x02\x02\x82\x01\x01\x03\x03"
        );
        assert_eq!(
            bytes(&lua, "local t = {1,2,3} t[2]=nil return cmsgpack.pack(t)"),
            b"\x82\x01\x01\x03\x03"
        );
        assert_eq!(
            bytes(&lua, "return cmsgpack.pack({[1.5]=1})"),
            b"\x81\xca?\xc0\x00\x00\x01"
        );
        assert_eq!(
            bytes(&lua, "return cmsgpack.pack({[2^31]=1})"),
            b"\x81\xce\x80\x00\x00\x00\x01"
        );
        assert_eq!(
            bytes(&lua, "return cmsgpack.pack({1, 2, x=3})"),
            b"\x83\x01\x01\x02\x02\xa1x\x03"
        );
        // Metatables play no part.
        assert_eq!(
            bytes(
                &lua,
                "return cmsgpack.pack(setmetatable({}, {__index=function() return 1 end}))"
            ),
            b"\x90"
        );
        // The library's own table, with its metadata fields in Redis's order.
        assert_eq!(
            bytes(&lua, "return cmsgpack:pack()"),
            b"\x88\xac_DESCRIPTION\xd9$MessagePack C implementation for Lua\xa4pack\xc0\
              \xa5_NAME\xa8cmsgpack\xa6unpack\xc0\xaa_COPYRIGHT\xd9(Copyright (C) 2012, \
              Salvatore Sanfilippo\xa8_VERSION\xb2lua-cmsgpack 0.4.0\xaaunpack_one\xc0\
              \xacunpack_limit\xc0"
        );
    }

    #[test]
    fn pack_nesting_limit_and_cycles() {
        let lua = lua();
        let mut want = vec![0x91; 16];
        want.push(0xc0);
        assert_eq!(
            bytes(&lua, "local t = {} t[1] = t return cmsgpack.pack(t)"),
            want
        );
        // Keys count as a level too.
        let mut want = vec![0x81; 16];
        want.push(0xc0);
        want.extend(1..=16u8);
        assert_eq!(
            bytes(
                &lua,
                "local t = {} for i = 1, 16 do t = {[t] = i} end return cmsgpack.pack(t)"
            ),
            want
        );
        // A wide cyclic structure still terminates; redis-cli eval "local t = {} for i=1,16
        // do t[i] = {x={1}} end t.y = {[t]=t} return cmsgpack.pack(t)" 0 (checksum of the reply)
        assert_eq!(
            text(
                &lua,
                "local t = {} for i=1,16 do t[i] = {x={1}} end t.y = {[t]=t} \
                 return sum(cmsgpack.pack(t))"
            ),
            CYCLIC_SUM
        );
    }

    /// `sum` (see PRELUDE) of Redis's reply in `pack_nesting_limit_and_cycles`.
    const CYCLIC_SUM: &str = "24218:3221567166";

    #[test]
    fn pack_errors() {
        let lua = lua();
        assert_eq!(
            err(&lua, "cmsgpack.pack()"),
            "user_script:1: bad argument #0 to 'pack' (MessagePack pack needs input.)"
        );
        assert_eq!(
            err(&lua, "local p = cmsgpack.pack; p()"),
            "user_script:1: bad argument #0 to 'p' (MessagePack pack needs input.)"
        );
        assert_eq!(
            text(&lua, "local ok, e = pcall(cmsgpack.pack) return e"),
            "bad argument #0 to '?' (MessagePack pack needs input.)"
        );
        assert_eq!(
            text(
                &lua,
                "local t = {} for i=1,4000 do t[i]=i%100 end return #cmsgpack.pack(unpack(t)) .. ''"
            ),
            "4000"
        );
        assert_eq!(
            err(
                &lua,
                "local t = {} for i=1,4001 do t[i]=i%100 end cmsgpack.pack(unpack(t))"
            ),
            "user_script:1: bad argument #0 to 'pack' (Too many arguments for MessagePack pack.)"
        );
    }

    #[test]
    fn unpack_values() {
        let lua = lua();
        let show = |code: &str| text(&lua, &format!("return showall({code})"));
        assert_eq!(show("cmsgpack.unpack('\\147\\1\\2\\3')"), "{1=1,2=2,3=3}");
        assert_eq!(show("cmsgpack.unpack('')"), "");
        assert_eq!(show("cmsgpack.unpack('\\1\\2\\3')"), "1 2 3");
        assert_eq!(show("cmsgpack.unpack(12)"), "49 50");
        // redis-cli eval "return {cmsgpack.unpack('\208\128\209\255\128\210\255\255\255\128
        //   \204\255\205\255\255\206\255\255\255\255')}" 0
        assert_eq!(
            show(
                "cmsgpack.unpack('\\208\\128\\209\\255\\128\\210\\255\\255\\255\\128\\204\\255\
                 \\205\\255\\255\\206\\255\\255\\255\\255\\224\\127')"
            ),
            "-128 -128 -128 255 65535 4294967295 -32 127"
        );
        // uint 64 goes through lua_Integer: past 2^63 it wraps.
        assert_eq!(
            show("cmsgpack.unpack('\\207\\255\\255\\255\\255\\255\\255\\255\\255')"),
            "-1"
        );
        assert_eq!(
            show("cmsgpack.unpack('\\207\\128\\0\\0\\0\\0\\0\\0\\1')"),
            "-9.2233720368548e+18"
        );
        assert_eq!(
            show("cmsgpack.unpack('\\207\\0\\32\\0\\0\\0\\0\\0\\1')"),
            "9.007199254741e+15"
        );
        assert_eq!(
            show("cmsgpack.unpack('\\211\\128\\0\\0\\0\\0\\0\\0\\1')"),
            "-9.2233720368548e+18"
        );
        assert_eq!(
            show("cmsgpack.unpack('\\202\\64\\73\\15\\219')"),
            "3.1415927410126"
        );
        assert_eq!(
            show("cmsgpack.unpack('\\203\\64\\9\\33\\251\\84\\68\\45\\24')"),
            "3.1415926535898"
        );
        assert_eq!(
            show("cmsgpack.unpack('\\217\\3abc\\218\\0\\2xy\\219\\0\\0\\0\\1z\\160')"),
            "\"abc\" \"xy\" \"z\" \"\""
        );
        assert_eq!(
            show("cmsgpack.unpack('\\192\\194\\195\\144\\128')"),
            "nil false true {} {}"
        );
        assert_eq!(
            show("cmsgpack.unpack('\\220\\0\\2\\1\\2\\221\\0\\0\\0\\1\\3')"),
            "{1=1,2=2} {1=3}"
        );
        assert_eq!(
            show("cmsgpack.unpack('\\222\\0\\1\\161a\\1\\223\\0\\0\\0\\1\\1\\192')"),
            "{\"a\"=1} {}"
        );
        // Map values may be nil (no entry); arrays keep their holes.
        assert_eq!(
            show("cmsgpack.unpack('\\130\\1\\192\\2\\3\\147\\1\\192\\3')"),
            "{2=3} {1=1,3=3}"
        );
    }

    #[test]
    fn unpack_one_and_limit() {
        let lua = lua();
        let show = |code: &str| text(&lua, &format!("return showall({code})"));
        assert_eq!(show("cmsgpack.unpack_one('\\1\\2\\3')"), "1 1");
        assert_eq!(show("cmsgpack.unpack_one('\\1\\2\\3', 2)"), "-1 3");
        assert_eq!(show("cmsgpack.unpack_one('\\1\\2\\3', 3)"), "-1");
        assert_eq!(show("cmsgpack.unpack_one('\\1\\2\\3', 1.7)"), "2 2");
        assert_eq!(show("cmsgpack.unpack_one('\\1\\2\\3', '1')"), "2 2");
        assert_eq!(show("cmsgpack.unpack_one('')"), "-1");
        assert_eq!(show("cmsgpack.unpack_one('', 0)"), "-1");
        assert_eq!(show("cmsgpack.unpack_limit('\\1\\2\\3', 2)"), "2 1 2");
        assert_eq!(show("cmsgpack.unpack_limit('\\1\\2\\3', '2')"), "2 1 2");
        assert_eq!(show("cmsgpack.unpack_limit('\\1\\2\\3', 5, 1)"), "-1 2 3");
        // Limit and offset 0 is a plain unpack: no offset in the results.
        assert_eq!(show("cmsgpack.unpack_limit('\\1\\2\\3', 0)"), "1 2 3");
        assert_eq!(show("cmsgpack.unpack_limit('\\1\\2\\3', 0, 1)"), "1");
        assert_eq!(
            err(&lua, "cmsgpack.unpack_one('\\1\\2\\3', 4)"),
            "user_script:1: Start offset 4 greater than input length 3."
        );
        // (int) of 2^40 is 0.
        assert_eq!(
            err(&lua, "cmsgpack.unpack_one('\\1\\2\\3', 2^40)"),
            "user_script:1: Start offset 0 greater than input length 3."
        );
        // The message prints the input length where the limit belongs.
        assert_eq!(
            err(&lua, "cmsgpack.unpack_one('\\1\\2\\3', -1)"),
            "user_script:1: Invalid request to unpack with offset of -1 and limit of 3."
        );
        assert_eq!(
            err(&lua, "cmsgpack.unpack_limit('\\1\\2\\3', -1)"),
            "user_script:1: Invalid request to unpack with offset of 0 and limit of 3."
        );
        assert_eq!(
            err(&lua, "cmsgpack.unpack_limit('\\1\\2\\3')"),
            "user_script:1: bad argument #2 to 'unpack_limit' (number expected, got no value)"
        );
        assert_eq!(
            err(&lua, "cmsgpack.unpack_limit('\\1\\2\\3', 'x')"),
            "user_script:1: bad argument #2 to 'unpack_limit' (number expected, got string)"
        );
        assert_eq!(
            err(&lua, "cmsgpack.unpack_one('\\1', {})"),
            "user_script:1: bad argument #2 to 'unpack_one' (number expected, got table)"
        );
        assert_eq!(
            err(&lua, "cmsgpack.unpack_one()"),
            "user_script:1: bad argument #1 to 'unpack_one' (string expected, got no value)"
        );
    }

    #[test]
    fn unpack_errors() {
        let lua = lua();
        assert_eq!(
            err(&lua, "cmsgpack.unpack()"),
            "user_script:1: bad argument #1 to 'unpack' (string expected, got no value)"
        );
        assert_eq!(
            text(&lua, "local ok, e = pcall(cmsgpack.unpack, {}) return e"),
            "bad argument #1 to '?' (string expected, got table)"
        );
        for bad in [
            "\\196\\0",
            "\\193",
            "\\199\\0\\0",
            "\\212\\0\\0",
            "\\145\\198",
        ] {
            assert_eq!(
                err(&lua, &format!("cmsgpack.unpack('{bad}')")),
                "user_script:1: Bad data format in input.",
                "{bad}"
            );
        }
        for short in [
            "\\147\\1\\2",
            "\\204",
            "\\205\\1",
            "\\206\\1\\2\\3",
            "\\207\\1",
            "\\211\\1",
            "\\202\\0",
            "\\203\\0\\0",
            "\\163ab",
            "\\217",
            "\\217\\3ab",
            "\\218\\0",
            "\\219\\0\\0\\0\\5abcd",
            "\\220\\0",
            "\\221\\0\\0\\0\\1",
            "\\222\\0\\1\\1",
            "\\223\\0\\0\\0",
            "\\129\\192",
            "\\1\\2\\145",
        ] {
            assert_eq!(
                err(&lua, &format!("cmsgpack.unpack('{short}')")),
                "user_script:1: Missing bytes in input.",
                "{short}"
            );
        }
        // Errors of lua_settable carry no position.
        assert_eq!(
            err(&lua, "cmsgpack.unpack('\\129\\192\\1')"),
            "table index is nil"
        );
        assert_eq!(
            err(
                &lua,
                "cmsgpack.unpack('\\129\\203\\255\\248\\0\\0\\0\\0\\0\\0\\1')"
            ),
            "table index is NaN"
        );
    }

    /// The stack limits of the C code: `pcall(cmsgpack.unpack, s)` succeeds or fails at the
    /// same sizes as on redis-server.
    #[test]
    fn unpack_stack_limits() {
        let lua = lua();
        let outcome = |s: &str| {
            text(
                &lua,
                &format!(
                    "local ok, e = pcall(cmsgpack.unpack, {s}) \
                     return ok and 'ok' or e"
                ),
            )
        };
        let too_many = "stack overflow (too many return values at once; use unpack_one or \
                        unpack_limit instead.)";
        let array = "stack overflow (in function mp_decode_to_lua_array)";
        // (Not under pcall: in debug builds Lua's API checks reject pcall's push of its status
        // above ~8000 results, in mlua's pcall as in Lua's own.)
        assert_eq!(outcome("string.rep('\\1', 8000)"), too_many);
        assert_eq!(
            text(
                &lua,
                "return #{cmsgpack.unpack(string.rep('\\1', 7999))} .. ''"
            ),
            "7999"
        );
        assert_eq!(
            err(&lua, "cmsgpack.unpack(string.rep('\\1', 7999), 1)"),
            format!("user_script:1: {too_many}")
        );
        assert_eq!(
            err(&lua, "cmsgpack.unpack_limit(string.rep('\\1', 7999), 8000)"),
            "user_script:1: stack overflow (in function mp_unpack_full)"
        );
        assert_eq!(
            text(
                &lua,
                "return #{cmsgpack.unpack_limit(string.rep('\\1', 7998), 8000)} .. ''"
            ),
            "7999"
        );
        assert_eq!(outcome("string.rep('\\145', 3999) .. '\\1'"), "ok");
        assert_eq!(outcome("string.rep('\\145', 4000) .. '\\1'"), array);
        assert_eq!(outcome("string.rep('\\145', 3998) .. '\\144'"), "ok");
        assert_eq!(outcome("string.rep('\\145', 3999) .. '\\144'"), array);
        assert_eq!(
            outcome("string.rep('\\145', 3999)"),
            "Missing bytes in input."
        );
        assert_eq!(outcome("string.rep('\\129\\1', 3999) .. '\\1'"), "ok");
        assert_eq!(outcome("string.rep('\\129\\1', 4000) .. '\\1'"), too_many);
        assert_eq!(
            outcome("string.rep('\\129', 7998) .. '\\1'"),
            "Missing bytes in input."
        );
        assert_eq!(outcome("string.rep('\\129', 7999) .. '\\1'"), too_many);
        // Far deeper input fails the same way, without exhausting the native stack.
        assert_eq!(outcome("string.rep('\\145', 1000000)"), array);
        assert_eq!(outcome("string.rep('\\129', 1000000)"), too_many);
    }

    /// Large inputs hold few Lua values on the Rust side at a time (mlua's reference slots).
    #[test]
    fn large_tables_and_many_values() {
        let lua = lua();
        // redis-cli eval "<PRELUDE> local t = {} for i=1,20000 do t['key'..i] = {i, 'v'..i} end
        //   return sum(cmsgpack.pack(t))" 0
        assert_eq!(
            text(
                &lua,
                "local t = {} for i=1,20000 do t['key'..i] = {i, 'v'..i} end \
                 return sum(cmsgpack.pack(t))"
            ),
            "377409:1085781493"
        );
        assert_eq!(
            text(
                &lua,
                "local t = {} for i=1,20000 do t[i] = 'v'..i end return sum(cmsgpack.pack(t))"
            ),
            "128897:3033387568"
        );
        assert_eq!(
            text(
                &lua,
                "local t = {} for i=1,20000 do t['key'..i] = {i, 'v'..i} end \
                 local u = cmsgpack.unpack(cmsgpack.pack(t)) local n = 0 \
                 for k, v in pairs(u) do n = n + 1 assert(v[2] == 'v'..v[1]) end return n .. ''"
            ),
            "20000"
        );
        assert_eq!(
            text(
                &lua,
                "local t = {cmsgpack.unpack(string.rep('\\161a', 7999))} \
                 return #t .. t[1] .. t[7999]"
            ),
            "7999aa"
        );
        // Deep nesting of maps as keys and as values decodes back to the same shape.
        assert_eq!(
            text(
                &lua,
                "local t = cmsgpack.unpack(string.rep('\\129', 3000) .. '\\1\\2' .. \
                 string.rep('\\3', 2999)) local n = 0 \
                 while type(t) == 'table' do local k, v = next(t) n = n + v t = k end \
                 return n .. ' ' .. t"
            ),
            "8999 1"
        );
    }

    #[test]
    fn round_trips() {
        let lua = lua();
        assert_eq!(
            text(
                &lua,
                "local s = cmsgpack.pack({1, 'two', {three=3}, 4.5, true}) \
                 local t = cmsgpack.unpack(s) \
                 return showall(t[1], t[2], t[3].three, t[4], t[5], #t)"
            ),
            "1 \"two\" 3 4.5 true 5"
        );
        let values = [
            "0",
            "-1",
            "127",
            "128",
            "-32",
            "-33",
            "255",
            "256",
            "65535",
            "65536",
            "-32768",
            "-32769",
            "2^32",
            "-2^31",
            "-2^31-1",
            "2^53",
            "-2^53",
            "2^62",
            "-2^63",
            "0.5",
            "1/3",
            "-1e300",
            "1/0",
            "-1/0",
            "'x'",
            "string.rep('a', 300)",
            "string.rep('b', 70000)",
            "true",
            "false",
            "{1, {2, {3}}, k={v='w'}}",
        ];
        for v in values {
            let code = format!(
                "local v = {v} local s = cmsgpack.pack(v) \
                 local w, extra = cmsgpack.unpack(s) \
                 assert(extra == nil) \
                 return showall(v) == showall(w) and 'same' or (showall(v) .. ' ~= ' .. showall(w))"
            );
            assert_eq!(text(&lua, &code), "same", "{v}");
        }
        // NaN comes back as a NaN.
        assert_eq!(
            text(
                &lua,
                "local v = cmsgpack.unpack(cmsgpack.pack(0/0)) return tostring(v ~= v)"
            ),
            "true"
        );
        // A stream of values, read one at a time.
        assert_eq!(
            text(
                &lua,
                "local s = cmsgpack.pack(1, 'a', {2}) local out = {} local off = 0 \
                 while off ~= -1 do local v off, v = cmsgpack.unpack_one(s, off) \
                 out[#out + 1] = showall(v) end return table.concat(out, ',')"
            ),
            "1,\"a\",{1=2}"
        );
    }

    #[test]
    fn no_panic_on_random_input() {
        let lua = lua();
        // A small deterministic generator: every byte pattern must decode or raise an error.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let unpack: mlua::Function = lua
            .load("return function(s) return pcall(cmsgpack.unpack, s) end")
            .eval()
            .unwrap();
        for round in 0..3000 {
            let len = round % 40;
            let mut input = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                input.push(x as u8);
            }
            let s = lua.create_string(&input).unwrap();
            let _: MultiValue = unpack.call(s).unwrap();
        }
    }
}
