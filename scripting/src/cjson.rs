//! lua-cjson 2.1.0 (`cjson`) as Redis 7.0 builds it: `encode`, `decode`, `null`, `new` and the
//! configuration functions, with lua-cjson's number formatting (`%.14g`), escaping, array
//! detection, depth limits and error texts.
//!
//! Each instance (the library table and every `cjson.new()`) has its own configuration, shared
//! by its functions as the C closures share their config upvalue.

use std::sync::{Arc, Mutex, PoisonError};

use mlua::{Function, Lua, MultiValue, Table, Value};

use crate::lauxlib::{self, Raise};

mod decode;
mod encode;
mod number;
#[cfg(test)]
mod tests;

/// Lua 5.1's `LUAI_MAXCSTACK`: `lua_checkstack` refuses to grow a C function's stack beyond
/// this many values, which is where lua-cjson's deep nesting errors come from even when the
/// configured depth is higher.
const LUAI_MAXCSTACK: i64 = lauxlib::MAX_C_STACK as i64;

/// One instance's settings (`json_config_t`), with lua-cjson's defaults.
#[derive(Debug, Clone, Copy)]
struct Config {
    encode_sparse_convert: i32,
    encode_sparse_ratio: i32,
    encode_sparse_safe: i32,
    encode_max_depth: i32,
    /// 0: refuse NaN and Inf, 1: write `nan` / `inf`, 2: write `null`.
    encode_invalid_numbers: i32,
    encode_number_precision: i32,
    encode_keep_buffer: i32,
    decode_invalid_numbers: i32,
    decode_max_depth: i32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            encode_sparse_convert: 0,
            encode_sparse_ratio: 2,
            encode_sparse_safe: 10,
            encode_max_depth: 1000,
            encode_invalid_numbers: 0,
            encode_number_precision: 14,
            encode_keep_buffer: 1,
            decode_invalid_numbers: 1,
            decode_max_depth: 1000,
        }
    }
}

type Shared = Arc<Mutex<Config>>;

fn config(shared: &Shared) -> std::sync::MutexGuard<'_, Config> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `luaL_checklstring`: strings, and numbers as Lua prints them.
fn check_string(lua: &Lua, args: &MultiValue, idx: usize) -> Result<Vec<u8>, Raise> {
    let narg = i32::try_from(idx).unwrap_or(i32::MAX);
    Ok(lauxlib::check_lstring(lua, args.get(idx - 1), narg)?
        .as_bytes()
        .to_vec())
}

/// `luaL_checkint`, which lua-cjson's integer options use.
fn check_int(lua: &Lua, args: &MultiValue, idx: usize) -> Result<i32, Raise> {
    let narg = i32::try_from(idx).unwrap_or(i32::MAX);
    lauxlib::check_int(lua, args.get(idx - 1), narg)
}

fn is_nil(args: &MultiValue, idx: usize) -> bool {
    matches!(args.get(idx - 1), None | Some(Value::Nil))
}

/// `json_arg_init`: at most `n` arguments.
fn arg_init(args: &MultiValue, n: usize) -> Result<(), Raise> {
    if args.len() > n {
        return Err(Raise::arg(n + 1, "found too many arguments"));
    }
    Ok(())
}

/// `json_integer_option`: sets `setting` from argument `idx` unless it is nil, and returns it.
/// The range error names argument 1 whatever `idx` is, as lua-cjson does.
fn integer_option(
    lua: &Lua,
    args: &MultiValue,
    idx: usize,
    setting: &mut i32,
    min: i32,
    max: i32,
) -> Result<Value, Raise> {
    if !is_nil(args, idx) {
        let value = check_int(lua, args, idx)?;
        if !(min..=max).contains(&value) {
            return Err(Raise::arg(
                1,
                format!("expected integer between {min} and {max}"),
            ));
        }
        *setting = value;
    }
    Ok(Value::Integer(i64::from(*setting)))
}

/// `json_enum_option` with `bool_true` 1: a boolean or one of `options` (`luaL_checkoption`);
/// returns the setting as a boolean when it is 0 or 1, else as its option name.
fn enum_option(
    lua: &Lua,
    args: &MultiValue,
    idx: usize,
    setting: &mut i32,
    options: &[&str],
) -> Result<Value, Raise> {
    if !is_nil(args, idx) {
        if let Some(Value::Boolean(b)) = args.get(idx - 1) {
            *setting = i32::from(*b);
        } else {
            let name = check_string(lua, args, idx)?;
            // strcmp: the name ends at its first NUL.
            let name = name.split(|&b| b == 0).next().unwrap_or(&[]);
            let Some(i) = options.iter().position(|o| o.as_bytes() == name) else {
                let mut msg = b"invalid option '".to_vec();
                msg.extend_from_slice(name);
                msg.push(b'\'');
                return Err(Raise::arg(idx, msg));
            };
            *setting = i as i32;
        }
    }
    Ok(match *setting {
        0 | 1 => Value::Boolean(*setting == 1),
        s => Value::String(lua.create_string(options.get(s as usize).copied().unwrap_or(""))?),
    })
}

const ON_OFF: &[&str] = &["off", "on"];

fn one(v: Value) -> MultiValue {
    MultiValue::from_iter([v])
}

/// A configuration function with at most `max_args` arguments.
fn config_fn(
    lua: &Lua,
    shared: &Shared,
    max_args: usize,
    f: fn(&Lua, &MultiValue, &mut Config) -> Result<MultiValue, Raise>,
) -> mlua::Result<Function> {
    let shared = shared.clone();
    lauxlib::function(lua, move |lua, args| {
        arg_init(&args, max_args)?;
        f(lua, &args, &mut config(&shared))
    })
}

/// Builds one instance table (`lua_cjson_new`).
fn new_instance(lua: &Lua, next: &Function) -> mlua::Result<Table> {
    let shared: Shared = Arc::new(Mutex::new(Config::default()));
    let t = lua.create_table()?;

    let (cfg, next_fn) = (shared.clone(), next.clone());
    t.raw_set(
        "encode",
        lauxlib::function(lua, move |lua, args| {
            if args.len() != 1 {
                return Err(Raise::arg(1, "expected 1 argument"));
            }
            let c = *config(&cfg);
            let value = args.into_iter().next().unwrap_or(Value::Nil);
            let json = encode::encode(lua, c, &next_fn, value)?;
            Ok(one(Value::String(lua.create_string(json)?)))
        })?,
    )?;

    let cfg = shared.clone();
    t.raw_set(
        "decode",
        lauxlib::function(lua, move |lua, args| {
            if args.len() != 1 {
                return Err(Raise::arg(1, "expected 1 argument"));
            }
            let text = check_string(lua, &args, 1)?;
            let c = *config(&cfg);
            Ok(one(decode::decode(lua, c, &text)?))
        })?,
    )?;

    t.raw_set(
        "encode_sparse_array",
        config_fn(lua, &shared, 3, |lua, args, c| {
            let convert = enum_option(lua, args, 1, &mut c.encode_sparse_convert, ON_OFF)?;
            let ratio = integer_option(lua, args, 2, &mut c.encode_sparse_ratio, 0, i32::MAX)?;
            let safe = integer_option(lua, args, 3, &mut c.encode_sparse_safe, 0, i32::MAX)?;
            Ok(MultiValue::from_iter([convert, ratio, safe]))
        })?,
    )?;
    t.raw_set(
        "encode_max_depth",
        config_fn(lua, &shared, 1, |lua, args, c| {
            Ok(one(integer_option(
                lua,
                args,
                1,
                &mut c.encode_max_depth,
                1,
                i32::MAX,
            )?))
        })?,
    )?;
    t.raw_set(
        "decode_max_depth",
        config_fn(lua, &shared, 1, |lua, args, c| {
            Ok(one(integer_option(
                lua,
                args,
                1,
                &mut c.decode_max_depth,
                1,
                i32::MAX,
            )?))
        })?,
    )?;
    t.raw_set(
        "encode_number_precision",
        config_fn(lua, &shared, 1, |lua, args, c| {
            Ok(one(integer_option(
                lua,
                args,
                1,
                &mut c.encode_number_precision,
                1,
                14,
            )?))
        })?,
    )?;
    t.raw_set(
        "encode_keep_buffer",
        config_fn(lua, &shared, 1, |lua, args, c| {
            // Only the setting is kept: the buffer it controls is an allocation detail.
            Ok(one(enum_option(
                lua,
                args,
                1,
                &mut c.encode_keep_buffer,
                ON_OFF,
            )?))
        })?,
    )?;
    t.raw_set(
        "encode_invalid_numbers",
        config_fn(lua, &shared, 1, |lua, args, c| {
            let options = &["off", "on", "null"];
            Ok(one(enum_option(
                lua,
                args,
                1,
                &mut c.encode_invalid_numbers,
                options,
            )?))
        })?,
    )?;
    t.raw_set(
        "decode_invalid_numbers",
        config_fn(lua, &shared, 1, |lua, args, c| {
            Ok(one(enum_option(
                lua,
                args,
                1,
                &mut c.decode_invalid_numbers,
                ON_OFF,
            )?))
        })?,
    )?;

    let next_fn = next.clone();
    t.raw_set(
        "new",
        lauxlib::function(lua, move |lua, _args| {
            Ok(one(Value::Table(new_instance(lua, &next_fn)?)))
        })?,
    )?;

    t.raw_set("null", Value::NULL)?;
    t.raw_set("_NAME", "cjson")?;
    t.raw_set("_VERSION", "2.1.0")?;
    Ok(t)
}

/// Opens the library: its table.
pub fn open(lua: &Lua) -> mlua::Result<Table> {
    // Objects are walked with the base library's `next` (raw, like `lua_next`), taken now so
    // that nothing a script does to its globals later can change it.
    let next: Function = lua.globals().raw_get("next")?;
    new_instance(lua, &next)
}
