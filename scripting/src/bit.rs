//! LuaBitOp 1.0.2 (`bit`), as Redis 7.0 compiles it: 32-bit operations on Lua numbers.
//!
//! Every argument is normalized the way LuaBitOp does it on a double-based Lua: add 2^52+2^51
//! and keep the low 32 bits of the sum's representation, which wraps any number modulo 2^32
//! (and rounds fractions to nearest-even). Results are signed 32-bit values. An argument that
//! is neither a number nor a string convertible to one fails with `number expected, got ...`,
//! except when the normalized value happens to be nonzero (LuaBitOp only checks when it is 0).

use mlua::{Lua, MultiValue, Table, Value};

use crate::lauxlib::{self, Raise};

/// `barg`: argument `idx` (1-based) as 32 bits.
fn barg(lua: &Lua, args: &MultiValue, idx: usize) -> Result<u32, Raise> {
    let v = args.get(idx - 1);
    let n = lauxlib::to_number(lua, v)?;
    let b = tobit(n.unwrap_or(0.0));
    if b == 0 && n.is_none() {
        return Err(Raise::type_error(idx, "number", v));
    }
    Ok(b)
}

/// The 2^52+2^51 trick: the low word of the sum holds the number modulo 2^32.
fn tobit(n: f64) -> u32 {
    (n + 6_755_399_441_055_744.0).to_bits() as u32
}

/// `BRET`: a result is the signed reading of the 32 bits.
fn ret(b: u32) -> Result<MultiValue, Raise> {
    Ok(MultiValue::from_iter([Value::Number(f64::from(b as i32))]))
}

/// `band` / `bor` / `bxor`: the first argument, then the others from the last one down (the
/// order decides which bad argument is reported).
fn fold(lua: &Lua, args: &MultiValue, op: fn(u32, u32) -> u32) -> Result<MultiValue, Raise> {
    let mut b = barg(lua, args, 1)?;
    for i in (2..=args.len()).rev() {
        b = op(b, barg(lua, args, i)?);
    }
    ret(b)
}

/// Shifts and rotations: the count is the second argument's low 5 bits.
fn shift(lua: &Lua, args: &MultiValue, op: fn(u32, u32) -> u32) -> Result<MultiValue, Raise> {
    let b = barg(lua, args, 1)?;
    let n = barg(lua, args, 2)? & 31;
    ret(op(b, n))
}

/// `tohex(x [, n])`: `n` digits (default 8, at most 8), uppercase when `n` is negative.
fn tohex(lua: &Lua, args: &MultiValue) -> Result<MultiValue, Raise> {
    let mut b = barg(lua, args, 1)?;
    let mut n = if args.len() < 2 {
        8
    } else {
        barg(lua, args, 2)? as i32
    };
    // Redis's fix for CVE-2024-31449 (present in the 7.0.15 binary): -INT32_MIN overflows.
    if n == i32::MIN {
        n = i32::MIN + 1;
    }
    let digits: &[u8; 16] = if n < 0 {
        n = -n;
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let n = n.min(8) as usize;
    let mut buf = [0u8; 8];
    for slot in buf[..n].iter_mut().rev() {
        *slot = digits[(b & 15) as usize];
        b >>= 4;
    }
    Ok(MultiValue::from_iter([Value::String(
        lua.create_string(&buf[..n])?,
    )]))
}

/// Opens the library: its table.
pub fn open(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let set = |name: &str, f: fn(&Lua, &MultiValue) -> Result<MultiValue, Raise>| {
        t.raw_set(
            name,
            lauxlib::function(lua, move |lua, args| f(lua, &args))?,
        )
    };
    set("tobit", |lua, a| ret(barg(lua, a, 1)?))?;
    set("bnot", |lua, a| ret(!barg(lua, a, 1)?))?;
    set("band", |lua, a| fold(lua, a, |x, y| x & y))?;
    set("bor", |lua, a| fold(lua, a, |x, y| x | y))?;
    set("bxor", |lua, a| fold(lua, a, |x, y| x ^ y))?;
    set("lshift", |lua, a| shift(lua, a, |b, n| b << n))?;
    set("rshift", |lua, a| shift(lua, a, |b, n| b >> n))?;
    set("arshift", |lua, a| {
        shift(lua, a, |b, n| ((b as i32) >> n) as u32)
    })?;
    set("rol", |lua, a| shift(lua, a, u32::rotate_left))?;
    set("ror", |lua, a| shift(lua, a, u32::rotate_right))?;
    set("bswap", |lua, a| ret(barg(lua, a, 1)?.swap_bytes()))?;
    set("tohex", tohex)?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lua() -> Lua {
        let lua = Lua::new();
        lua.globals().set("bit", open(&lua).unwrap()).unwrap();
        lua
    }

    /// Evaluates `return <expr>` and renders the results with `tostring`, joined by spaces.
    fn run(lua: &Lua, expr: &str) -> String {
        let code = format!(
            "local r = {{pcall(function() return {expr} end)}}
             for i = 1, #r do r[i] = tostring(r[i]) end
             return table.concat(r, ' ')"
        );
        lua.load(&code)
            .set_name("@user_script")
            .eval::<String>()
            .unwrap()
    }

    #[test]
    fn normalization_wraps_modulo_2_32() {
        let lua = lua();
        // redis-cli eval 'return {bit.tobit(...), ...}' 0 (as strings via tostring)
        for (expr, want) in [
            ("bit.tobit(0xffffffff)", "-1"),
            ("bit.tobit(2^31)", "-2147483648"),
            ("bit.tobit(2^32 + 5)", "5"),
            ("bit.tobit(-1)", "-1"),
            ("bit.tobit(-0)", "0"),
            ("bit.tobit(1.5)", "2"),
            ("bit.tobit(2.5)", "2"),
            ("bit.tobit(-1.5)", "-2"),
            ("bit.tobit(0/0)", "0"),
            ("bit.tobit(1/0)", "0"),
            ("bit.tobit(1e300)", "-2013235812"),
            ("bit.tobit(2^53 + 2)", "1"),
            ("bit.tobit('0x10')", "16"),
            ("bit.tobit(' 12 ')", "12"),
        ] {
            assert_eq!(run(&lua, expr), format!("true {want}"), "{expr}");
        }
    }

    #[test]
    fn operations() {
        let lua = lua();
        for (expr, want) in [
            ("bit.bnot(0)", "-1"),
            ("bit.bnot(-1)", "0"),
            ("bit.band(0xff, 0x0f, 0x3)", "3"),
            ("bit.band(7)", "7"),
            ("bit.bor(1, 2, 4, 8)", "15"),
            ("bit.bxor(0xff, 0x0f)", "240"),
            ("bit.lshift(1, 31)", "-2147483648"),
            ("bit.lshift(1, 32)", "1"),
            ("bit.lshift(1, -1)", "-2147483648"),
            ("bit.rshift(-1, 28)", "15"),
            ("bit.rshift(-1, 0)", "-1"),
            ("bit.arshift(-256, 4)", "-16"),
            ("bit.arshift(256, 4)", "16"),
            ("bit.rol(0x12345678, 8)", "878082066"),
            ("bit.rol(0x12345678, 0)", "305419896"),
            ("bit.ror(0x12345678, 8)", "2014458966"),
            ("bit.ror(1, 1)", "-2147483648"),
            ("bit.bswap(0x12345678)", "2018915346"),
            ("bit.bswap(1)", "16777216"),
        ] {
            assert_eq!(run(&lua, expr), format!("true {want}"), "{expr}");
        }
    }

    #[test]
    fn tohex() {
        let lua = lua();
        // redis-cli eval 'return bit.tohex(0xabcdef, -2147483648)' 0 -> "00ABCDEF"
        for (expr, want) in [
            ("bit.tohex(255)", "000000ff"),
            ("bit.tohex(-1)", "ffffffff"),
            ("bit.tohex(-1, -4)", "FFFF"),
            ("bit.tohex(0xabcdef, 2)", "ef"),
            ("bit.tohex(0xabcdef, 20)", "00abcdef"),
            ("bit.tohex(0xabcdef, -20)", "00ABCDEF"),
            ("bit.tohex(1, 0)", ""),
            ("bit.tohex(0xabcdef, -2147483648)", "00ABCDEF"),
            ("bit.tohex(1, 2^32 + 3)", "001"),
        ] {
            assert_eq!(run(&lua, expr), format!("true {want}"), "{expr}");
        }
    }

    #[test]
    fn argument_errors() {
        let lua = lua();
        for (expr, want) in [
            (
                "bit.band('x')",
                "bad argument #1 to 'band' (number expected, got string)",
            ),
            (
                "bit.band()",
                "bad argument #1 to 'band' (number expected, got no value)",
            ),
            (
                "bit.bor(1, 'x', {})",
                "bad argument #3 to 'bor' (number expected, got table)",
            ),
            (
                "bit.tohex(1, nil)",
                "bad argument #2 to 'tohex' (number expected, got nil)",
            ),
            (
                "bit.lshift(1)",
                "bad argument #2 to 'lshift' (number expected, got no value)",
            ),
            (
                "bit.tobit(true)",
                "bad argument #1 to 'tobit' (number expected, got boolean)",
            ),
            (
                "bit.tobit('abc')",
                "bad argument #1 to 'tobit' (number expected, got string)",
            ),
        ] {
            assert_eq!(
                run(&lua, expr),
                format!("false user_script:1: {want}"),
                "{expr}"
            );
        }
    }
}
