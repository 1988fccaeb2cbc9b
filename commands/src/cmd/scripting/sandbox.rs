//! The interpreter scripts run in, set up as Redis 7.0's `scriptingInit` sets up its own: Lua
//! 5.1 with the base, table, string and math libraries plus `bit`, `cjson`, `cmsgpack` and
//! `struct`; the `redis` table; `math.random` on Redis's generator; no file or OS access; and
//! globals that cannot be read when missing nor written at all.
//!
//! Most of the `redis` table and the protection are Lua (`prelude.lua`), so that errors are
//! raised the way Lua raises them; what needs Rust (running a command, SHA-1, the generator,
//! logging) is handed to it as functions.

use std::sync::{Arc, Mutex};

use ferrite_scripting::lauxlib::{self, Raise};
use ferrite_scripting::rand48::Rand48;
use mlua::chunk::ChunkMode;
use mlua::{Function, IntoLuaMulti, Lua, LuaOptions, MultiValue, StdLib, Table, Value};

/// The chunk name of the prelude: its frames are skipped when an error is located.
const PRELUDE_CHUNK: &str = "=[ferrite]";

/// The globals a script sees: exactly Redis 7.0.15's (`KEYS` and `ARGV` are set per run).
const GLOBALS: &[&str] = &[
    "_G",
    "_VERSION",
    "__redis__err__handler",
    "assert",
    "bit",
    "cjson",
    "cmsgpack",
    "collectgarbage",
    "coroutine",
    "error",
    "gcinfo",
    "getmetatable",
    "ipairs",
    "load",
    "loadstring",
    "math",
    "next",
    "pairs",
    "pcall",
    "rawequal",
    "rawget",
    "rawset",
    "redis",
    "select",
    "setmetatable",
    "string",
    "struct",
    "table",
    "tonumber",
    "tostring",
    "type",
    "unpack",
    "xpcall",
];

/// Which of Redis's two interpreters: EVAL's (`lctx`) or the function engine's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// EVAL scripts: `KEYS` and `ARGV` are globals.
    Eval,
    /// FUNCTION libraries: keys and arguments are parameters, and the `redis` table has
    /// neither the debugger's functions nor `replicate_commands`.
    Functions,
}

/// An interpreter ready to compile and run scripts.
pub(super) struct Sandbox {
    /// The interpreter.
    pub lua: Lua,
    /// The environment of every compiled script (a read-only view of the globals).
    pub env: Table,
    /// The real globals, where `KEYS` and `ARGV` are set before each run.
    pub globals: Table,
    /// `run(f)` (EVAL) or `run(f, keys, args)` (functions): calls `f` under the error
    /// handler, `(true, result)` or `(false, error)`.
    pub run: Function,
    /// Functions only: `load(chunk)` runs a library's body with the library API as its
    /// globals, `(true)` or `(false, what it raised)`.
    pub load: Option<Function>,
    /// Lua's own `next`, for walking returned tables.
    pub next: Function,
    /// The names `KEYS` and `ARGV`, made once (every run sets both).
    pub keys_name: mlua::LuaString,
    /// See `keys_name`.
    pub argv_name: mlua::LuaString,
}

impl Sandbox {
    /// A fresh interpreter of `kind` whose `math.random` draws from `rand`.
    pub fn new(kind: Kind, rand: Arc<Mutex<Rand48>>) -> mlua::Result<Sandbox> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::default(),
        )?;
        ferrite_scripting::open_libs(&lua)?;
        let globals = lua.globals();
        let next: Function = globals.raw_get("next")?;
        let redis = lua.create_table()?;
        redis.raw_set("REDIS_VERSION", crate::cmd::info::REDIS_VERSION)?;
        redis.raw_set(
            "REDIS_VERSION_NUM",
            version_num(crate::cmd::info::REDIS_VERSION),
        )?;
        globals.raw_set("redis", redis.clone())?;
        globals.raw_set("__redis__err__handler", lua.create_function(error_handler)?)?;
        let mkerr =
            lua.create_function(|lua, msg: mlua::LuaString| error_table(lua, &msg.as_bytes()))?;
        let errtext = lua.create_function(|lua, v: Value| match v {
            Value::Error(e) => Ok(Value::String(lua.create_string(error_message(&e))?)),
            other => Ok(other),
        })?;
        let math: Table = globals.raw_get("math")?;
        let random_rand = rand.clone();
        let random =
            lauxlib::function(&lua, move |lua, args| math_random(lua, &random_rand, &args))?;
        math.raw_set("random", random)?;
        let randomseed = lauxlib::function(&lua, move |lua, args| {
            let seed = lauxlib::check_int(lua, lauxlib::arg(&args, 1), 1)?;
            rand.lock().unwrap_or_else(|e| e.into_inner()).seed(seed);
            Ok::<_, Raise>(MultiValue::new())
        })?;
        math.raw_set("randomseed", randomseed)?;
        super::current::register(&lua, &redis)?;
        redis.raw_set("sha1hex", raising(&lua, lua.create_function(sha1hex)?)?)?;
        redis.raw_set("log", raising(&lua, lua.create_function(log)?)?)?;
        let register = match kind {
            Kind::Eval => None,
            Kind::Functions => Some(super::functions::register::function(&lua)?),
        };
        let (env, run, load): (Table, Function, Option<Function>) = lua
            .load(include_str!("prelude.lua"))
            .set_name(PRELUDE_CHUNK)
            .set_mode(ChunkMode::Text)
            .call((globals.clone(), mkerr, errtext, register))?;
        let names: Vec<Value> = globals
            .pairs::<Value, Value>()
            .map(|kv| kv.map(|(k, _)| k))
            .collect::<mlua::Result<_>>()?;
        // The function engine keeps its error handler out of sight (in Redis's registry).
        let hidden = |g: &&str| kind == Kind::Functions && *g == "__redis__err__handler";
        for name in names {
            let keep = matches!(&name, Value::String(s) if GLOBALS.iter().filter(|g| !hidden(g)).any(|g| s.as_bytes() == g.as_bytes()));
            if !keep {
                globals.raw_set(name, Value::Nil)?;
            }
        }
        let (keys_name, argv_name) = (lua.create_string("KEYS")?, lua.create_string("ARGV")?);
        Ok(Sandbox {
            lua,
            env,
            globals,
            run,
            load,
            next,
            keys_name,
            argv_name,
        })
    }
}

/// What a Rust `redis.*` function answers: its results, or the error table to raise.
pub(super) type Outcome = mlua::Result<MultiValue>;

/// A successful [`Outcome`].
pub(super) fn ok(lua: &Lua, v: impl IntoLuaMulti) -> Outcome {
    let mut out = v.into_lua_multi(lua)?;
    out.push_front(Value::Boolean(true));
    Ok(out)
}

/// An [`Outcome`] that raises `t` (an error table).
pub(super) fn raise(t: Table) -> Outcome {
    Ok(MultiValue::from_iter([
        Value::Boolean(false),
        Value::Table(t),
    ]))
}

/// Raises Redis's error table for `msg` (`luaPushError` then `luaError`).
pub(super) fn raise_msg(lua: &Lua, msg: &str) -> Outcome {
    raise(error_table(lua, msg.as_bytes())?)
}

/// `f`, which answers an [`Outcome`], as a function that raises like Redis's C functions do.
pub(super) fn raising(lua: &Lua, f: Function) -> mlua::Result<Function> {
    lauxlib::around(lua, f)
}

/// Redis's `math.random`: Lua 5.1's, drawing from Redis's `rand48` (drawn before the arguments
/// are checked, as there).
fn math_random(lua: &Lua, rand: &Mutex<Rand48>, args: &MultiValue) -> Result<MultiValue, Raise> {
    let r = rand.lock().unwrap_or_else(|e| e.into_inner()).next_unit();
    let checkint = |n| lauxlib::check_int(lua, lauxlib::arg(args, n), n);
    let drawn = match args.len() {
        0 => r,
        1 => {
            let u = checkint(1)?;
            if u < 1 {
                return Err(Raise::arg(1, "interval is empty"));
            }
            (r * f64::from(u)).floor() + 1.0
        }
        2 => {
            let l = checkint(1)?;
            let u = checkint(2)?;
            if l > u {
                return Err(Raise::arg(2, "interval is empty"));
            }
            (r * (f64::from(u) - f64::from(l) + 1.0)).floor() + f64::from(l)
        }
        _ => return Err(Raise::error("wrong number of arguments")),
    };
    Ok(MultiValue::from_iter([Value::Number(drawn)]))
}

/// `redis.sha1hex(s)`.
fn sha1hex(lua: &Lua, args: MultiValue) -> Outcome {
    if args.len() != 1 {
        return raise_msg(lua, "wrong number of arguments");
    }
    let v = args.into_iter().next().unwrap_or(Value::Nil);
    let bytes = match lua.coerce_string(v)? {
        Some(s) => s.as_bytes().to_vec(),
        None => Vec::new(),
    };
    ok(
        lua,
        lua.create_string(ferrite_scripting::sha1::sha1_hex(&bytes))?,
    )
}

/// `redis.log(level, message...)`: the message parts joined by spaces, at Redis's levels
/// (debug, verbose, notice, warning) mapped onto the log's.
fn log(lua: &Lua, args: MultiValue) -> Outcome {
    if args.len() < 2 {
        return raise_msg(lua, "redis.log() requires two arguments or more.");
    }
    // `lua_isnumber`: a number or a string Lua reads as one.
    let Some(level) = lua.coerce_number(args[0].clone())? else {
        return raise_msg(lua, "First argument must be a number (log level).");
    };
    let level = level as i64;
    if !(0..=3).contains(&level) {
        return raise_msg(lua, "Invalid debug level.");
    }
    let mut msg = Vec::new();
    for (j, v) in args.iter().enumerate().skip(1) {
        if let Some(s) = lua.coerce_string(v.clone())? {
            if j != 1 {
                msg.push(b' ');
            }
            msg.extend_from_slice(&s.as_bytes());
        }
    }
    let msg = String::from_utf8_lossy(&msg);
    match level {
        0 | 1 => log::debug!("{msg}"),
        2 => log::info!("{msg}"),
        _ => log::warn!("{msg}"),
    }
    ok(lua, ())
}

/// `REDIS_VERSION_NUM`: `0x00MMmmpp` of "M.m.p".
fn version_num(version: &str) -> i64 {
    version
        .split('.')
        .take(3)
        .fold(0, |n, part| (n << 8) | part.parse::<i64>().unwrap_or(0))
}

/// Redis's `luaPushErrorBuff`: the error table for `buf`, which is either `-CODE message` or a
/// bare message (code `ERR`); newlines at the ends of the message are trimmed.
pub(super) fn error_table(lua: &Lua, buf: &[u8]) -> mlua::Result<Table> {
    let (code, msg): (&[u8], &[u8]) = match buf.strip_prefix(b"-") {
        Some(rest) => match rest.iter().position(|&b| b == b' ') {
            Some(sp) => (&rest[..sp], &rest[sp + 1..]),
            None => (b"ERR", rest),
        },
        None => (b"ERR", buf),
    };
    let msg = trim_newlines(msg);
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string([code, b" ", msg].concat())?)?;
    Ok(t)
}

/// `sdstrim(s, "\r\n")`.
pub(super) fn trim_newlines(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&b| b != b'\r' && b != b'\n')
        .map_or(start, |i| i + 1);
    &s[start..end]
}

/// The message of an error raised by a Rust function (a library's `luaL_error`).
pub(super) fn error_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { cause, .. } => error_message(cause),
        mlua::Error::WithContext { cause, .. } => error_message(cause),
        mlua::Error::RuntimeError(msg) => msg.clone(),
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// `__redis__err__handler`: turns what a script raised into `{err=..., source=..., line=...}`,
/// locating the user's line: past the C function that raised it (`error`, a library call) and
/// past the prelude's own frames.
fn error_handler(lua: &Lua, err: Value) -> mlua::Result<Table> {
    let t = match err {
        Value::Table(t) => t,
        other => {
            let text = lua_tostring(lua, other)?;
            let t = lua.create_table()?;
            t.raw_set("err", lua.create_string([&b"ERR "[..], &text].concat())?)?;
            t
        }
    };
    if let Some((source, line)) = user_frame(lua) {
        t.raw_set("source", source)?;
        t.raw_set("line", line)?;
    }
    Ok(t)
}

/// Lua's `tostring` of a raised value; an error raised by a Rust function is its message.
fn lua_tostring(lua: &Lua, v: Value) -> mlua::Result<Vec<u8>> {
    if let Value::Error(e) = &v {
        return Ok(error_message(e).into_bytes());
    }
    if let Some(s) = lua.coerce_string(v.clone())? {
        return Ok(s.as_bytes().to_vec());
    }
    let tostring: Function = lua.globals().raw_get("tostring")?;
    let s: mlua::LuaString = tostring.call(v)?;
    Ok(s.as_bytes().to_vec())
}

/// The source and current line of the function the error is the user's: level 1 is the
/// function that raised (the handler is level 0); a C function there means its caller.
fn user_frame(lua: &Lua) -> Option<(String, i64)> {
    let info = |level: usize| {
        lua.inspect_stack(level, |d| {
            let s = d.source();
            let line = d.current_line().map_or(-1, |l| l as i64);
            (s.what, s.source.map(|x| x.into_owned()), line)
        })
    };
    let mut level = 1;
    let mut frame = info(level)?;
    if frame.0 == "C" {
        level += 1;
        frame = info(level)?;
    }
    while frame.1.as_deref() == Some(PRELUDE_CHUNK) {
        level += 1;
        frame = info(level)?;
    }
    Some((frame.1?, frame.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_number_is_redis_encoding() {
        assert_eq!(version_num("7.0.15"), 0x0007_000f);
    }

    #[test]
    fn error_tables_split_the_code() {
        let lua = Lua::new();
        let err = |b: &[u8]| -> String {
            let t = error_table(&lua, b).unwrap();
            t.get::<String>("err").unwrap()
        };
        assert_eq!(err(b"-WRONGTYPE Operation"), "WRONGTYPE Operation");
        assert_eq!(err(b"-NOSCRIPT"), "ERR NOSCRIPT");
        assert_eq!(err(b"plain words"), "ERR plain words");
        assert_eq!(err(b"-FOO  bar\r\n"), "FOO  bar");
        assert_eq!(err(b""), "ERR ");
    }
}
