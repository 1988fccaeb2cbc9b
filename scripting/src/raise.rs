//! Raising errors from the Rust libraries exactly as Lua's C functions raise them.
//!
//! A script sees the error value of a C library function as a plain string: `luaL_error` gives
//! `"user_script:1: message"` (the caller's position, empty when the caller is itself a C
//! function such as `pcall`), `luaL_argerror` gives `"bad argument #1 to 'encode' (...)"` with
//! the name the caller used. An mlua callback that returns `Err` instead raises a userdata whose
//! `tostring` is `"runtime error: message\nstack traceback: ..."`, which a script can tell apart
//! (`type(err)`, `redis.error_reply(err)`, string concatenation). So every library function is a
//! small C closure, [`trampoline`], around the Rust callback: the callback returns its outcome as
//! values and the trampoline, holding no Rust state, raises the string with the real
//! `luaL_where` / `luaL_argerror` of the Lua library.

use std::os::raw::c_int;

use mlua::{Function, IntoLua, Lua, MultiValue, Value, ffi};

/// How a library function fails, in the terms of the Lua C API.
#[derive(Debug, Clone)]
pub(crate) enum Raise {
    /// `luaL_error(L, msg)`: the message, prefixed with the caller's `source:line: `.
    Error(Vec<u8>),
    /// `luaL_argerror(L, narg, msg)`: `bad argument #narg to 'name' (msg)`.
    Arg(c_int, Vec<u8>),
    /// An error of mlua itself (out of memory, ...), raised as mlua raises it.
    Lua(mlua::Error),
}

impl Raise {
    /// `luaL_error` with a message.
    pub(crate) fn error(msg: impl Into<Vec<u8>>) -> Self {
        Raise::Error(msg.into())
    }

    /// `luaL_argerror` for argument `narg`.
    pub(crate) fn arg(narg: usize, msg: impl Into<Vec<u8>>) -> Self {
        Raise::Arg(c_int::try_from(narg).unwrap_or(c_int::MAX), msg.into())
    }

    /// `luaL_typerror`: `<expected> expected, got <type of the argument>`.
    pub(crate) fn type_error(narg: usize, expected: &str, got: Option<&Value>) -> Self {
        Self::arg(narg, format!("{expected} expected, got {}", typename(got)))
    }
}

impl From<mlua::Error> for Raise {
    fn from(e: mlua::Error) -> Self {
        Raise::Lua(e)
    }
}

/// `luaL_typename`: the Lua 5.1 type name of an argument, `"no value"` when it is absent.
pub(crate) fn typename(v: Option<&Value>) -> &'static str {
    match v {
        None => "no value",
        Some(Value::Nil) => "nil",
        Some(Value::Boolean(_)) => "boolean",
        Some(Value::Integer(_) | Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Table(_)) => "table",
        Some(Value::Function(_)) => "function",
        Some(Value::Thread(_)) => "thread",
        // Light and full userdata share one name in Lua 5.1; mlua's error values are userdata.
        Some(_) => "userdata",
    }
}

/// The C closure every library function is: calls the Rust callback in upvalue 1 with the
/// arguments, which answers `true, results...`, `false, message [, narg]` (raised as
/// `luaL_error` / `luaL_argerror` would) or `false, table` (raised as it is).
unsafe extern "C-unwind" fn trampoline(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: `state` is the running thread, as Lua calls a C function; the
    // upvalue was set by `function` below. No Rust value with a destructor lives in this frame,
    // so the longjmp of `lua_call` (an mlua error) or of `lua_error` may leave it.
    unsafe {
        let nargs = ffi::lua_gettop(state);
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
        ffi::lua_insert(state, 1);
        ffi::lua_call(state, nargs, ffi::LUA_MULTRET);
        let nres = ffi::lua_gettop(state);
        if ffi::lua_toboolean(state, 1) != 0 {
            return nres - 1;
        }
        if nres == 2 && ffi::lua_type(state, 2) == ffi::LUA_TTABLE {
            // A table (Redis's `{err = ...}`) is raised as it is, without a position.
            ffi::lua_settop(state, 2);
            ffi::lua_error(state);
        }
        if nres >= 3 {
            ffi::lua_settop(state, 3);
            let narg = ffi::lua_tonumber(state, 3) as c_int;
            return ffi::luaL_argerror(state, narg, ffi::lua_tostring(state, 2));
        }
        ffi::lua_settop(state, 2);
        ffi::luaL_where(state, 1);
        ffi::lua_insert(state, 2);
        ffi::lua_concat(state, 2);
        ffi::lua_error(state)
    }
}

/// Wraps a library function: a Lua function that calls `f` with its arguments and returns its
/// results, or raises its [`Raise`] as the C library would.
pub(crate) fn function<F>(lua: &Lua, f: F) -> mlua::Result<Function>
where
    F: Fn(&Lua, MultiValue) -> Result<MultiValue, Raise> + Send + 'static,
{
    let inner = lua.create_function(move |lua, args: MultiValue| {
        let mut out = MultiValue::new();
        match f(lua, args) {
            Ok(results) => {
                out.push_back(Value::Boolean(true));
                out.extend(results);
            }
            Err(Raise::Error(msg)) => {
                out.push_back(Value::Boolean(false));
                out.push_back(Value::String(lua.create_string(msg)?));
            }
            Err(Raise::Arg(narg, msg)) => {
                out.push_back(Value::Boolean(false));
                out.push_back(Value::String(lua.create_string(msg)?));
                out.push_back(narg.into_lua(lua)?);
            }
            Err(Raise::Lua(e)) => return Err(e),
        }
        Ok(out)
    })?;
    around(lua, inner)
}

/// Wraps `inner`, a function that answers `true, results...` on success and `false, message
/// [, narg]` or `false, table` on failure, into a function that returns the results or raises
/// the failure as a C function does: a message with the caller's position (or as an argument
/// error), a table as it is. Being a C function, the wrapper keeps its caller's frame when
/// called in tail position, so an error handler still finds the caller's line.
pub fn around(lua: &Lua, inner: Function) -> mlua::Result<Function> {
    // SAFETY: `exec_raw` runs the closure with `inner` pushed on a protected stack; it only
    // turns that value into a C closure whose upvalue is `inner` and leaves it as the result.
    unsafe {
        lua.exec_raw::<Function>(inner, |state| {
            ffi::lua_pushcclosure(state, trampoline, 1);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_plain_strings_with_the_callers_position() {
        let lua = Lua::new();
        let f = function(&lua, |_, _| Err(Raise::error("boom"))).unwrap();
        lua.globals().set("f", f).unwrap();
        let (ty, msg): (String, String) = lua
            .load("local ok, e = pcall(function() f() end) return type(e), e")
            .set_name("@user_script")
            .eval()
            .unwrap();
        assert_eq!(
            (ty.as_str(), msg.as_str()),
            ("string", "user_script:1: boom")
        );
        // Called directly by pcall (a C function): no position, as with luaL_error.
        let msg: String = lua.load("return select(2, pcall(f))").eval().unwrap();
        assert_eq!(msg, "boom");
    }

    #[test]
    fn argument_errors_name_the_function_as_called() {
        let lua = Lua::new();
        let f = function(&lua, |_, _| Err(Raise::arg(1, "expected 1 argument"))).unwrap();
        let t = lua.create_table().unwrap();
        t.set("encode", f).unwrap();
        lua.globals().set("cjson", t).unwrap();
        let msgs: Vec<String> = lua
            .load(
                "local a = select(2, pcall(function() cjson.encode() end))
                 local b = select(2, pcall(function() cjson:encode() end))
                 local c = select(2, pcall(function() local g = cjson.encode g() end))
                 return {a, b, c}",
            )
            .set_name("@user_script")
            .eval()
            .unwrap();
        assert_eq!(
            msgs,
            [
                "user_script:1: bad argument #1 to 'encode' (expected 1 argument)",
                "user_script:2: calling 'encode' on bad self (expected 1 argument)",
                "user_script:3: bad argument #1 to 'g' (expected 1 argument)",
            ]
        );
    }

    #[test]
    fn tables_are_raised_as_they_are() {
        let lua = Lua::new();
        let inner = lua
            .create_function(|lua, ()| {
                let t = lua.create_table()?;
                t.set("err", "ERR x")?;
                Ok((false, t))
            })
            .unwrap();
        lua.globals()
            .set("f", around(&lua, inner).unwrap())
            .unwrap();
        let err: String = lua
            .load("local ok, e = pcall(function() return f() end) return e.err")
            .eval()
            .unwrap();
        assert_eq!(err, "ERR x");
    }

    #[test]
    fn results_and_mlua_errors_pass_through() {
        let lua = Lua::new();
        let ok = function(&lua, |_, args| Ok(args)).unwrap();
        lua.globals().set("f", ok).unwrap();
        let n: (i64, Option<i64>, i64) = lua.load("return f(1, nil, 3)").eval().unwrap();
        assert_eq!(n, (1, None, 3));
        let nothing: MultiValue = lua.load("return f()").eval().unwrap();
        assert!(nothing.is_empty());
        let bad = function(&lua, |_, _| Err(Raise::Lua(mlua::Error::runtime("inner")))).unwrap();
        lua.globals().set("g", bad).unwrap();
        let err = lua.load("g()").exec().unwrap_err();
        assert!(err.to_string().contains("inner"), "{err}");
    }
}
