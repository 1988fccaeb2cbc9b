//! `struct`: Redis 7.0's `lua_struct.c` (Roberto Ierusalimschy's struct library, with Redis's
//! bounds checks) for scripts, with the same bytes, values and error texts.
//!
//! `struct.pack(fmt, ...)`, `struct.unpack(fmt, data [, pos])` (the values, then the position
//! after them) and `struct.size(fmt)`. The format, read up to its first NUL byte:
//!
//! | option | meaning |
//! | --- | --- |
//! | `>` `<` | big / little endian (little is the default: Redis's build is x86-64) |
//! | `![n]` | align to `n` bytes (a power of 2; default 8) |
//! | `x` | a zero byte |
//! | `b` `B` `h` `H` `l` `L` `T` | signed / unsigned 1-, 2-, 8-byte integers, `T` an 8-byte `size_t` |
//! | `i[n]` `I[n]` | signed / unsigned integers of `n` bytes (default 4, at most 32) |
//! | `f` `d` | float, double |
//! | `c[n]` | `n` bytes (default 1); `c0` packs the whole string, and unpacks as many bytes as the previous value says |
//! | `s` | a zero-terminated string |
//! | ` ` | ignored |
//!
//! Other alphanumeric options are accepted as nothing; any other byte is an error. The C code's
//! quirks are kept where they show: integers go through C's `long` casts as x86-64 performs them
//! (so NaN packs as `0x8000000000000000`), integers wider than 8 bytes only carry 64 bits,
//! alignment to a non-power-of-2 size follows the C arithmetic, and `pack`'s "string too short"
//! names the argument after the string.

use mlua::{Lua, MultiValue, Table, Value};

use crate::lauxlib::{
    Raise, Results, arg, check_lstring, check_number, check_stack, double_to_i64, double_to_u64,
    function, opt_integer, to_number,
};

/// `MAXINTSIZE`: the widest `i`/`I` option.
const MAX_INT_SIZE: i32 = 32;

/// `MAXALIGN` on x86-64: the default of `!`.
const MAX_ALIGN: i32 = 8;

/// Opens the library: its table.
pub fn open(lua: &Lua) -> mlua::Result<Table> {
    // `luaL_register` makes the table with room for its three functions, then sets them in
    // this order: the same layout as Redis's (visible through `next`).
    let t = lua.create_table_with_capacity(0, 3)?;
    t.raw_set("pack", function(lua, pack)?)?;
    t.raw_set("unpack", function(lua, unpack)?)?;
    t.raw_set("size", function(lua, size)?)?;
    Ok(t)
}

/// Endianness and alignment, changed by the control options.
struct Header {
    little: bool,
    align: usize,
}

impl Default for Header {
    fn default() -> Self {
        Header {
            little: true,
            align: 1,
        }
    }
}

/// The format string, read as C reads it: up to the first NUL.
struct Format<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Format<'a> {
    fn new(s: &'a [u8]) -> Self {
        let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        Format {
            s: &s[..end],
            pos: 0,
        }
    }

    fn next_option(&mut self) -> Option<u8> {
        let b = *self.s.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    /// `getnum`: the decimal number at this point, or `df` when there is none.
    fn getnum(&mut self, df: i32) -> Result<i32, Raise> {
        let mut a: i32 = 0;
        let mut any = false;
        while let Some(d) = self.s.get(self.pos).filter(|b| b.is_ascii_digit()) {
            let d = i32::from(d - b'0');
            if a > i32::MAX / 10 || a * 10 > i32::MAX - d {
                return Err(Raise::error("integral size overflow"));
            }
            a = a * 10 + d;
            self.pos += 1;
            any = true;
        }
        Ok(if any { a } else { df })
    }

    /// `optsize`: the size of option `opt` (reading its number if it takes one).
    fn optsize(&mut self, opt: u8) -> Result<usize, Raise> {
        Ok(match opt {
            b'B' | b'b' | b'x' => 1,
            b'H' | b'h' => 2,
            b'f' => 4,
            b'L' | b'l' | b'T' | b'd' => 8,
            // getnum never returns a negative number.
            b'c' => self.getnum(1)? as usize,
            b'i' | b'I' => {
                let sz = self.getnum(4)?;
                if sz > MAX_INT_SIZE {
                    return Err(Raise::error(format!(
                        "integral size {sz} is larger than limit of {MAX_INT_SIZE}"
                    )));
                }
                sz as usize
            }
            _ => 0,
        })
    }

    /// `controloptions`: space, endianness and alignment; anything else is invalid.
    fn control(&mut self, opt: u8, h: &mut Header) -> Result<(), Raise> {
        match opt {
            b' ' => {}
            b'>' => h.little = false,
            b'<' => h.little = true,
            b'!' => {
                let a = self.getnum(MAX_ALIGN)?;
                if a <= 0 || a & (a - 1) != 0 {
                    return Err(Raise::error(format!("alignment {a} is not a power of 2")));
                }
                h.align = a as usize;
            }
            _ => {
                let mut msg = b"invalid format option '".to_vec();
                msg.push(opt);
                msg.push(b'\'');
                return Err(Raise::arg(1, msg));
            }
        }
        Ok(())
    }
}

/// `gettoalign`: the padding before an item of `size` bytes at offset `len`.
fn gettoalign(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    size.wrapping_sub(len & (size - 1)) & (size - 1)
}

fn is_integer_option(opt: u8) -> bool {
    matches!(
        opt,
        b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I'
    )
}

/// An argument of `pack`: the C function pushes a nil just above its arguments, so the first
/// missing one is "nil" rather than "no value".
fn pack_arg(args: &MultiValue, narg: i32) -> Option<&Value> {
    const NIL: &Value = &Value::Nil;
    match arg(args, narg) {
        None if usize::try_from(narg).ok() == Some(args.len() + 1) => Some(NIL),
        v => v,
    }
}

/// `b_pack`.
fn pack(lua: &Lua, args: MultiValue) -> Result<Results, Raise> {
    let fmt = check_lstring(lua, arg(&args, 1), 1)?;
    let fmt = fmt.as_bytes();
    let mut fmt = Format::new(&fmt);
    let mut h = Header::default();
    let mut narg = 2;
    let mut total = 0usize;
    let mut out = Vec::new();
    while let Some(opt) = fmt.next_option() {
        let mut size = fmt.optsize(opt)?;
        let toalign = gettoalign(total, &h, opt, size);
        total += toalign;
        out.resize(out.len() + toalign, 0);
        match opt {
            _ if is_integer_option(opt) => {
                let n = check_number(lua, pack_arg(&args, narg), narg)?;
                narg += 1;
                put_integer(&mut out, n, h.little, size);
            }
            b'x' => out.push(0),
            b'f' => {
                let f = check_number(lua, pack_arg(&args, narg), narg)? as f32;
                narg += 1;
                out.extend_from_slice(&if h.little {
                    f.to_le_bytes()
                } else {
                    f.to_be_bytes()
                });
            }
            b'd' => {
                let d = check_number(lua, pack_arg(&args, narg), narg)?;
                narg += 1;
                out.extend_from_slice(&if h.little {
                    d.to_le_bytes()
                } else {
                    d.to_be_bytes()
                });
            }
            b'c' | b's' => {
                let s = check_lstring(lua, pack_arg(&args, narg), narg)?;
                narg += 1;
                let s = s.as_bytes();
                if size == 0 {
                    size = s.len();
                }
                // The C code checks after moving to the next argument, and names that one.
                let Some(bytes) = s.get(..size) else {
                    return Err(Raise::arg(narg, "string too short"));
                };
                out.extend_from_slice(bytes);
                if opt == b's' {
                    out.push(0);
                    size += 1;
                }
            }
            _ => fmt.control(opt, &mut h)?,
        }
        total += size;
    }
    Ok(Results::one(Value::String(lua.create_string(out)?)))
}

/// `putinteger`: negative numbers through `(long)`, others through `(unsigned long)`, then
/// `size` bytes of that 64-bit value (zeros past the eighth).
fn put_integer(out: &mut Vec<u8>, n: f64, little: bool, size: usize) {
    let mut value = if n < 0.0 {
        double_to_i64(n) as u64
    } else {
        double_to_u64(n)
    };
    let mut buf = [0u8; MAX_INT_SIZE as usize];
    let buf = &mut buf[..size];
    let mut put = |b: &mut u8| {
        *b = value as u8;
        value >>= 8;
    };
    if little {
        buf.iter_mut().for_each(&mut put);
    } else {
        buf.iter_mut().rev().for_each(&mut put);
    }
    out.extend_from_slice(buf);
}

/// `getinteger`: the bytes as a 64-bit value (only the last eight count), sign-extended from
/// bit `size*8 - 1` taken modulo 64 (the x86-64 shift the C code's `<<` compiles to).
fn get_integer(bytes: &[u8], little: bool, signed: bool) -> f64 {
    let mut l: u64 = 0;
    let mut add = |b: &u8| l = (l << 8) | u64::from(*b);
    if little {
        bytes.iter().rev().for_each(&mut add);
    } else {
        bytes.iter().for_each(&mut add);
    }
    if !signed {
        return l as f64;
    }
    let shift = (bytes.len() as u32 * 8).wrapping_sub(1) & 63;
    let mask = u64::MAX << shift;
    if l & mask != 0 {
        l |= mask;
    }
    l as i64 as f64
}

/// Whether `size` bytes fit in the data at `pos` (the C check, safe from overflow).
fn fits(pos: usize, size: usize, len: usize) -> bool {
    size <= len && pos <= len - size
}

/// `b_unpack`.
fn unpack(lua: &Lua, args: MultiValue) -> Result<Results, Raise> {
    let fmt = check_lstring(lua, arg(&args, 1), 1)?;
    let data = check_lstring(lua, arg(&args, 2), 2)?;
    // `size_t pos = luaL_optinteger(...)`: negative offsets wrap to huge ones.
    let pos = opt_integer(lua, arg(&args, 3), 3, 1)? as u64 as usize;
    if pos == 0 {
        return Err(Raise::arg(3, "offset must be 1 or greater"));
    }
    let mut pos = pos - 1;
    let fmt = fmt.as_bytes();
    let mut fmt = Format::new(&fmt);
    let data = data.as_bytes();
    let ld = data.len();
    // The arguments stay on the stack below the results.
    let base = args.len();
    let mut h = Header::default();
    let mut results = Results::new();
    while let Some(opt) = fmt.next_option() {
        let mut size = fmt.optsize(opt)?;
        pos = pos.wrapping_add(gettoalign(pos, &h, opt, size));
        if !fits(pos, size, ld) {
            return Err(Raise::arg(2, "data string too short"));
        }
        // Room for this item and the final position.
        check_stack(base + results.len(), 2, "too many results")?;
        match opt {
            _ if is_integer_option(opt) => {
                let n = get_integer(&data[pos..pos + size], h.little, opt.is_ascii_lowercase());
                results.push(lua, Value::Number(n))?;
            }
            b'x' => {}
            b'f' => {
                let mut b = [0u8; 4];
                b.copy_from_slice(&data[pos..pos + 4]);
                let f = if h.little {
                    f32::from_le_bytes(b)
                } else {
                    f32::from_be_bytes(b)
                };
                results.push(lua, Value::Number(f64::from(f)))?;
            }
            b'd' => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&data[pos..pos + 8]);
                let d = if h.little {
                    f64::from_le_bytes(b)
                } else {
                    f64::from_be_bytes(b)
                };
                results.push(lua, Value::Number(d))?;
            }
            b'c' => {
                if size == 0 {
                    let prev = if results.is_empty() {
                        None
                    } else {
                        to_number(lua, Some(&results.last()?))?
                    };
                    let Some(n) = prev else {
                        return Err(Raise::error("format 'c0' needs a previous size"));
                    };
                    size = double_to_u64(n) as usize;
                    results.pop()?;
                    if !fits(pos, size, ld) {
                        return Err(Raise::arg(2, "data string too short"));
                    }
                }
                let s = lua.create_string(&data[pos..pos + size])?;
                results.push(lua, Value::String(s))?;
            }
            b's' => {
                let rest = &data[pos..];
                let Some(len) = rest.iter().position(|&b| b == 0) else {
                    return Err(Raise::error("unfinished string in data"));
                };
                size = len + 1;
                let s = lua.create_string(&rest[..len])?;
                results.push(lua, Value::String(s))?;
            }
            _ => fmt.control(opt, &mut h)?,
        }
        pos = pos.wrapping_add(size);
    }
    // `lua_pushinteger(L, pos + 1)`: through `ptrdiff_t` to a double.
    results.push(lua, Value::Number(pos.wrapping_add(1) as i64 as f64))?;
    Ok(results)
}

/// `b_size`.
fn size(lua: &Lua, args: MultiValue) -> Result<Results, Raise> {
    let fmt = check_lstring(lua, arg(&args, 1), 1)?;
    let fmt = fmt.as_bytes();
    let mut fmt = Format::new(&fmt);
    let mut h = Header::default();
    let mut pos = 0usize;
    while let Some(opt) = fmt.next_option() {
        let size = fmt.optsize(opt)?;
        pos = pos.wrapping_add(gettoalign(pos, &h, opt, size));
        if opt == b's' {
            return Err(Raise::arg(1, "option 's' has no fixed size"));
        } else if opt == b'c' && size == 0 {
            return Err(Raise::arg(1, "option 'c0' has no fixed size"));
        }
        if !opt.is_ascii_alphanumeric() {
            fmt.control(opt, &mut h)?;
        }
        pos = pos.wrapping_add(size);
    }
    Ok(Results::one(Value::Number(pos as i64 as f64)))
}

#[cfg(test)]
mod tests {
    //! Expected bytes and messages come from redis-server 7.0.15, e.g.
    //! `redis-cli --no-raw eval "return struct.pack('>i4', 7)" 0`; error texts are the part of
    //! Redis's reply after "ERR " and before " script: ...".

    use super::*;
    use crate::testutil::*;

    fn lua() -> Lua {
        let lua = Lua::new();
        lua.globals().set("struct", open(&lua).unwrap()).unwrap();
        lua.load(
            r#"
            function showall(...)
                local out = {}
                for i = 1, select('#', ...) do
                    local v = select(i, ...)
                    out[i] = type(v) == 'string' and string.format('%q', v) or tostring(v)
                end
                return table.concat(out, ' ')
            end
            "#,
        )
        .exec()
        .unwrap();
        lua
    }

    /// `return showall(<expr>)`.
    fn show(lua: &Lua, expr: &str) -> String {
        text(lua, &format!("return showall({expr})"))
    }

    #[test]
    fn pack_formats() {
        let lua = lua();
        let cases: &[(&str, &[u8])] = &[
            ("struct.pack('>d', 1.5)", b"?\xf8\x00\x00\x00\x00\x00\x00"),
            ("struct.pack('<f', 1/3)", b"\xab\xaa\xaa>"),
            ("struct.pack('>f', -2.5)", b"\xc0 \x00\x00"),
            ("struct.pack('>f', 1e300)", b"\x7f\x80\x00\x00"),
            (
                "struct.pack('d', -0.0)",
                b"\x00\x00\x00\x00\x00\x00\x00\x80",
            ),
            (
                "struct.pack('>bBhHlLTiI', -1, 255, -2, 65535, -3, 4, 5, -6, 7)",
                b"\xff\xff\xff\xfe\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfd\x00\x00\x00\x00\
                  \x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x05\xff\xff\xff\xfa\x00\x00\
                  \x00\x07",
            ),
            ("struct.pack('i', 1)", b"\x01\x00\x00\x00"),
            ("struct.pack('>I', -1)", b"\xff\xff\xff\xff"),
            ("struct.pack('<h', 40000)", b"@\x9c"),
            ("struct.pack('>i', 2^31)", b"\x80\x00\x00\x00"),
            ("struct.pack('>i2', 70000)", b"\x11p"),
            ("struct.pack('<I3', -1)", b"\xff\xff\xff"),
            (
                "struct.pack('>i8', -2^63)",
                b"\x80\x00\x00\x00\x00\x00\x00\x00",
            ),
            (
                "struct.pack('>I8', 2^64-2048)",
                b"\xff\xff\xff\xff\xff\xff\xf8\x00",
            ),
            // Through C's casts: NaN, 2^64 and beyond, and huge negatives.
            (
                "struct.pack('>L', 0/0)",
                b"\x80\x00\x00\x00\x00\x00\x00\x00",
            ),
            (
                "struct.pack('>L', 2^64)",
                b"\x00\x00\x00\x00\x00\x00\x00\x00",
            ),
            (
                "struct.pack('>L', 2^63)",
                b"\x80\x00\x00\x00\x00\x00\x00\x00",
            ),
            (
                "struct.pack('>L', 1e300)",
                b"\x00\x00\x00\x00\x00\x00\x00\x00",
            ),
            (
                "struct.pack('>l', -1e300)",
                b"\x80\x00\x00\x00\x00\x00\x00\x00",
            ),
            (
                "struct.pack('>l', -0.5)",
                b"\x00\x00\x00\x00\x00\x00\x00\x00",
            ),
            (
                "struct.pack('>l', 2^63+4096)",
                b"\x80\x00\x00\x00\x00\x00\x10\x00",
            ),
            // Wider than 8 bytes: 64 bits of value, then zeros.
            (
                "struct.pack('<i16', -1)",
                b"\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00",
            ),
            (
                "struct.pack('>i16', -5)",
                b"\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xfb",
            ),
            ("struct.pack('i0', 5)", b""),
            // Alignment.
            (
                "struct.pack('!4 b i', 1, 2)",
                b"\x01\x00\x00\x00\x02\x00\x00\x00",
            ),
            (
                "struct.pack('!b i3 h', 1, 2, 3)",
                b"\x01\x00\x00\x02\x00\x00\x03\x00",
            ),
            (
                "struct.pack('!8 b d', 1, 2)",
                b"\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00@",
            ),
            (
                "struct.pack('! b d', 1, 2)",
                b"\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00@",
            ),
            ("struct.pack('!2 b i', 1, 2)", b"\x01\x00\x02\x00\x00\x00"),
            (
                "struct.pack('!8 b i3 h', 1, 2, 3)",
                b"\x01\x00\x00\x02\x00\x00\x03\x00",
            ),
            ("struct.pack('!8 b c3 h', 1, 'abc', 3)", b"\x01abc\x03\x00"),
            (
                "struct.pack('!8 b x h s T', 1, 3, 'z', 5)",
                b"\x01\x00\x03\x00z\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00",
            ),
            // Strings.
            ("struct.pack('s', 'a\\0b')", b"a\x00b\x00"),
            ("struct.pack('c0', 'hello')", b"hello"),
            ("struct.pack('c2', 'hello')", b"he"),
            ("struct.pack('c', 5)", b"5"),
            ("struct.pack('i', '12')", b"\x0c\x00\x00\x00"),
            // The format ends at its first NUL; extra arguments are ignored.
            ("struct.pack('b\\0i', 1)", b"\x01"),
            ("struct.pack('b', 1, 2, 3)", b"\x01"),
            ("struct.pack(' ', 1)", b""),
        ];
        for (expr, want) in cases {
            assert_eq!(bytes(&lua, &format!("return {expr}")), *want, "{expr}");
        }
    }

    #[test]
    fn pack_errors() {
        let lua = lua();
        let cases = [
            (
                "struct.pack()",
                "bad argument #1 to 'pack' (string expected, got no value)",
            ),
            (
                "struct.pack(5, 1)",
                "bad argument #1 to 'pack' (invalid format option '5')",
            ),
            (
                "struct.pack('=i', 1)",
                "bad argument #1 to 'pack' (invalid format option '=')",
            ),
            (
                "struct.pack('q')",
                "bad argument #1 to 'pack' (invalid format option 'q')",
            ),
            (
                "struct.pack('i', 'x')",
                "bad argument #2 to 'pack' (number expected, got string)",
            ),
            // The first missing argument is the nil the C function pushes after them.
            (
                "struct.pack('i')",
                "bad argument #2 to 'pack' (number expected, got nil)",
            ),
            (
                "struct.pack('bb', 1)",
                "bad argument #3 to 'pack' (number expected, got nil)",
            ),
            (
                "struct.pack('i', {})",
                "bad argument #2 to 'pack' (number expected, got table)",
            ),
            (
                "struct.pack('s', {})",
                "bad argument #2 to 'pack' (string expected, got table)",
            ),
            (
                "struct.pack('s')",
                "bad argument #2 to 'pack' (string expected, got nil)",
            ),
            // "string too short" names the argument after the string.
            (
                "struct.pack('c5', 'ab')",
                "bad argument #3 to 'pack' (string too short)",
            ),
            (
                "struct.pack('c999999999', 'a')",
                "bad argument #3 to 'pack' (string too short)",
            ),
            (
                "struct.pack('i99')",
                "integral size 99 is larger than limit of 32",
            ),
            ("struct.pack('i9999999999')", "integral size overflow"),
            ("struct.pack('c2147483648', 'a')", "integral size overflow"),
            ("struct.pack('!3')", "alignment 3 is not a power of 2"),
            ("struct.pack('!0')", "alignment 0 is not a power of 2"),
        ];
        for (code, want) in cases {
            assert_eq!(err(&lua, code), format!("user_script:1: {want}"), "{code}");
        }
        assert_eq!(
            err_bytes(&lua, "struct.pack('\\200')"),
            b"user_script:1: bad argument #1 to 'pack' (invalid format option '\xc8')"
        );
        assert_eq!(
            err(&lua, "struct:pack()"),
            "user_script:1: calling 'pack' on bad self (string expected, got table)"
        );
    }

    #[test]
    fn unpack_formats() {
        let lua = lua();
        let cases = [
            (
                "struct.unpack('>bBhHlLTiI', struct.pack('>bBhHlLTiI', -1, 255, -2, 65535, -3, \
                 4, 5, -6, 7))",
                "-1 255 -2 65535 -3 4 5 -6 7 39",
            ),
            (
                "struct.unpack('<i3 I3 i5', struct.pack('<i3 I3 i5', -2, 16777215, -3))",
                "-2 16777215 -3 12",
            ),
            ("struct.unpack('<i16', struct.pack('<i16', -1))", "-1 17"),
            ("struct.unpack('>i16', struct.pack('>i16', -5))", "-5 17"),
            // Past 8 bytes the sign bit is bit (size*8-1) mod 64, as the x86 shift takes it.
            (
                "struct.unpack('<i9', '\\128\\0\\0\\0\\0\\0\\0\\0\\1')",
                "-128 10",
            ),
            (
                "struct.unpack('<i9', '\\0\\0\\0\\0\\0\\0\\0\\128\\1')",
                "-128 10",
            ),
            (
                "struct.unpack('<I9', '\\0\\0\\0\\0\\0\\0\\0\\128\\1')",
                "9.2233720368548e+18 10",
            ),
            (
                "struct.unpack('>I8', '\\255\\255\\255\\255\\255\\255\\248\\0')",
                "1.844674407371e+19 9",
            ),
            ("struct.unpack('<i0', '')", "0 1"),
            ("struct.unpack('>h<h', '\\1\\2\\1\\2')", "258 513 5"),
            (
                "struct.unpack('<f', struct.pack('<f', 0.1))",
                "0.10000000149012 5",
            ),
            ("struct.unpack('>f', '\\63\\128\\0\\0')", "1 5"),
            ("struct.unpack('>d', struct.pack('>d', 0/0))", "-nan 9"),
            (
                "struct.unpack('!8 b d', struct.pack('!8 b d', 1, 2))",
                "1 2 17",
            ),
            ("struct.unpack('b', 'abc', 2)", "98 3"),
            ("struct.unpack('b', 'abc', 2.9)", "98 3"),
            ("struct.unpack('x', 'abcd', 4)", "5"),
            ("struct.unpack('', 'abcd', 10)", "10"),
            ("struct.unpack('ss', 'ab\\0c\\0d')", "\"ab\" \"c\" 6"),
            ("struct.unpack('c2 c1', 'abc')", "\"ab\" \"c\" 4"),
            // c0 takes its length from the previous value, which it replaces.
            ("struct.unpack('bc0', '\\2abc')", "\"ab\" 4"),
            ("struct.unpack('c2c0', '02abc')", "\"ab\" 5"),
            ("struct.unpack('c1c0', '2abc')", "\"ab\" 4"),
            ("struct.unpack('sc0', '3\\0abcd')", "\"abc\" 6"),
            (
                "struct.unpack('dc0', struct.pack('d', 2.7) .. 'abc')",
                "\"ab\" 11",
            ),
            (
                "struct.unpack('dc0', struct.pack('d', -0.5) .. 'abc')",
                "\"\" 9",
            ),
            (
                "struct.unpack('dc0', struct.pack('d', 2^64) .. 'abc')",
                "\"\" 9",
            ),
            ("struct.unpack(' < i ', '\\1\\0\\0\\0')", "1 5"),
        ];
        for (expr, want) in cases {
            assert_eq!(show(&lua, expr), want, "{expr}");
        }
    }

    #[test]
    fn unpack_errors() {
        let lua = lua();
        let short = "bad argument #2 to 'unpack' (data string too short)";
        let c0 = "format 'c0' needs a previous size";
        let cases = [
            ("struct.unpack('i', 'abc')", short),
            (
                "struct.unpack('b', 'abc', 0)",
                "bad argument #3 to 'unpack' (offset must be 1 or greater)",
            ),
            ("struct.unpack('b', 'abc', -1)", short),
            ("struct.unpack('i', 'abcd', 2^64)", short),
            ("struct.unpack('b', 'abc', 4)", short),
            (
                "struct.unpack('i', 'abcd', 'x')",
                "bad argument #3 to 'unpack' (number expected, got string)",
            ),
            (
                "struct.unpack('=')",
                "bad argument #2 to 'unpack' (string expected, got no value)",
            ),
            (
                "struct.unpack({}, 'a')",
                "bad argument #1 to 'unpack' (string expected, got table)",
            ),
            (
                "struct.unpack('q', 'ab')",
                "bad argument #1 to 'unpack' (invalid format option 'q')",
            ),
            // The bounds check comes before the option's own check.
            ("struct.unpack('q', 'ab', 5)", short),
            ("struct.unpack('c0', '12')", c0),
            ("struct.unpack('c0', 'ab', 1.5)", c0),
            ("struct.unpack('c0', '')", c0),
            ("struct.unpack('c1c0', 'xabc')", c0),
            ("struct.unpack('bc0', struct.pack('b', -1) .. 'abc')", short),
            (
                "struct.unpack('dc0', struct.pack('d', 0/0) .. 'abc')",
                short,
            ),
            ("struct.unpack('s', 'abc')", "unfinished string in data"),
            (
                "struct.unpack('s', 'ab\\0', 4)",
                "unfinished string in data",
            ),
            ("struct.unpack('s', 'ab\\0', 5)", short),
            (
                "struct.unpack('i33', '')",
                "integral size 33 is larger than limit of 32",
            ),
            ("struct.unpack('!6', '')", "alignment 6 is not a power of 2"),
        ];
        for (code, want) in cases {
            assert_eq!(err(&lua, code), format!("user_script:1: {want}"), "{code}");
        }
    }

    #[test]
    fn unpack_stack_limit() {
        let lua = lua();
        // redis-cli eval "return #{struct.unpack(string.rep('b', 7997), string.rep('\0', 7997))}" 0
        assert_eq!(
            text(
                &lua,
                "return #{struct.unpack(string.rep('b', 7997), string.rep('\\0', 7997))} .. ''"
            ),
            "7998"
        );
        assert_eq!(
            err(
                &lua,
                "struct.unpack(string.rep('b', 7998), string.rep('\\0', 7998))"
            ),
            "user_script:1: stack overflow (too many results)"
        );
        assert_eq!(
            text(
                &lua,
                "return #{struct.unpack(string.rep('b', 7996), string.rep('\\0', 7997), 1)} .. ''"
            ),
            "7997"
        );
        assert_eq!(
            err(
                &lua,
                "struct.unpack(string.rep('b', 7997), string.rep('\\0', 7997), 1)"
            ),
            "user_script:1: stack overflow (too many results)"
        );
        // Strings too: more than mlua could hold as Rust values at once.
        assert_eq!(
            text(
                &lua,
                "local t = {struct.unpack(string.rep('c1', 7997), string.rep('x', 7997))} \
                 return #t .. t[7997]"
            ),
            "7998x"
        );
        // Options that push nothing are counted against the limit all the same.
        assert_eq!(
            text(
                &lua,
                "return #{struct.unpack(string.rep('x', 9000), string.rep('\\0', 9000))} .. ''"
            ),
            "1"
        );
    }

    #[test]
    fn size_formats() {
        let lua = lua();
        let cases = [
            ("struct.size('')", "0"),
            ("struct.size('bBhHlLTiIfd')", "50"),
            ("struct.size('!4bi')", "8"),
            ("struct.size('!8 b x h T c5 i3 I16')", "48"),
            ("struct.size('i7 c9')", "16"),
            // Other alphanumeric options are accepted as nothing.
            ("struct.size('q')", "0"),
        ];
        for (expr, want) in cases {
            assert_eq!(show(&lua, expr), want, "{expr}");
        }
        let cases = [
            (
                "struct.size('s')",
                "bad argument #1 to 'size' (option 's' has no fixed size)",
            ),
            (
                "struct.size('i0 c0')",
                "bad argument #1 to 'size' (option 'c0' has no fixed size)",
            ),
            (
                "struct.size()",
                "bad argument #1 to 'size' (string expected, got no value)",
            ),
            (
                "struct.size('<>=')",
                "bad argument #1 to 'size' (invalid format option '=')",
            ),
            ("struct.size('!5')", "alignment 5 is not a power of 2"),
            (
                "struct.size('i40')",
                "integral size 40 is larger than limit of 32",
            ),
        ];
        for (code, want) in cases {
            assert_eq!(err(&lua, code), format!("user_script:1: {want}"), "{code}");
        }
        assert_eq!(
            err_bytes(&lua, "struct.size('\\200')"),
            b"user_script:1: bad argument #1 to 'size' (invalid format option '\xc8')"
        );
    }

    #[test]
    fn round_trips() {
        let lua = lua();
        let values = [
            ("b", "-128"),
            ("B", "255"),
            ("h", "-32768"),
            ("H", "65535"),
            ("l", "-2^63"),
            ("L", "2^53"),
            ("T", "12345"),
            ("i", "-2^31"),
            ("I", "2^32-1"),
            ("i1", "-5"),
            ("I2", "513"),
            ("i8", "-2^53"),
            ("f", "0.5"),
            ("d", "1/3"),
            ("d", "-1/0"),
            ("c3", "'abc'"),
            ("s", "'hello'"),
            ("!8 b d", "1, 2.5"),
        ];
        for (fmt, v) in values {
            for endian in ["<", ">"] {
                let code = format!(
                    "local f = '{endian}{fmt}' local s = struct.pack(f, {v}) \
                     assert(#s == (f:find('s') and #s or struct.size(f))) \
                     local r = {{struct.unpack(f, s)}} table.remove(r) \
                     return showall(unpack(r)) == showall({v}) and 'same' or showall(unpack(r))"
                );
                assert_eq!(text(&lua, &code), "same", "{endian}{fmt} {v}");
            }
        }
    }

    #[test]
    fn no_panic_on_random_formats() {
        let lua = lua();
        let f: mlua::Function = lua
            .load(
                "return function(fmt, data) \
                 pcall(struct.pack, fmt, 1, 2, 'ab', 3) \
                 pcall(struct.unpack, fmt, data) \
                 pcall(struct.unpack, fmt, data, 3) \
                 pcall(struct.size, fmt) end",
            )
            .eval()
            .unwrap();
        let alphabet = b"<>!=xbBhHlLTiIfdcs 0123456789\x00\xff";
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..3000 {
            let fmt: Vec<u8> = (0..round % 12)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let data: Vec<u8> = (0..round % 30).map(|_| next() as u8).collect();
            let (fmt, data) = (
                lua.create_string(&fmt).unwrap(),
                lua.create_string(&data).unwrap(),
            );
            f.call::<()>((fmt, data)).unwrap();
        }
    }
}
