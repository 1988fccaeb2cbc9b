//! `redis.register_function`, the one thing a library's body can do while it loads (Redis's
//! `luaRegisterFunction` and its argument readers), with Redis's error texts and checks in
//! Redis's order.

use mlua::{Function, Lua, MultiValue, Table, Value};

use super::library::{Registered, valid_name};
use crate::cmd::scripting::engine::script_flags::NAMES;
use crate::cmd::scripting::sandbox::{self, Outcome};

/// The library being loaded: what `redis.register_function` adds to. Present (as the
/// interpreter's app data) only while a library's body runs.
#[derive(Default)]
pub(super) struct Loading {
    /// The functions registered so far, in order.
    pub functions: Vec<Registered>,
}

/// `redis.register_function`, made once per function-engine interpreter.
pub(in crate::cmd::scripting) fn function(lua: &Lua) -> mlua::Result<Function> {
    let f = lua.create_function(register)?;
    sandbox::raising(lua, f)
}

fn register(lua: &Lua, args: MultiValue) -> Outcome {
    if lua.app_data_ref::<Loading>().is_none() {
        return sandbox::raise_msg(
            lua,
            "redis.register_function can only be called on FUNCTION LOAD command",
        );
    }
    let f = match read_args(lua, args)? {
        Ok(f) => f,
        Err(msg) => return sandbox::raise_msg(lua, msg),
    };
    if !valid_name(&f.name) {
        return sandbox::raise_msg(lua, super::library::BAD_NAME);
    }
    let Some(mut loading) = lua.app_data_mut::<Loading>() else {
        return sandbox::raise_msg(
            lua,
            "redis.register_function can only be called on FUNCTION LOAD command",
        );
    };
    if loading.functions.iter().any(|g| g.name == f.name) {
        drop(loading);
        return sandbox::raise_msg(lua, "Function already exists in the library");
    }
    loading.functions.push(f);
    drop(loading);
    sandbox::ok(lua, ())
}

/// `luaRegisterFunctionReadArgs`: a name and a callback, or one table of named arguments.
fn read_args(lua: &Lua, args: MultiValue) -> mlua::Result<Result<Registered, &'static str>> {
    match args.len() {
        1 => named_args(lua, &args[0]),
        2 => {
            let Some(name) = string_of(lua, &args[0])? else {
                return Ok(Err(
                    "first argument to redis.register_function must be a string",
                ));
            };
            let Value::Function(callback) = &args[1] else {
                return Ok(Err(
                    "second argument to redis.register_function must be a function",
                ));
            };
            Ok(Ok(Registered {
                name,
                desc: None,
                flags: 0,
                func: callback.clone(),
            }))
        }
        _ => Ok(Err("wrong number of arguments to redis.register_function")),
    }
}

/// `luaRegisterFunctionReadNamedArgs`: the table's entries in `next` order, so that the first
/// bad one is the one Redis names.
fn named_args(lua: &Lua, arg: &Value) -> mlua::Result<Result<Registered, &'static str>> {
    let Value::Table(t) = arg else {
        return Ok(Err(
            "calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).",
        ));
    };
    let (mut name, mut desc, mut func, mut flags) = (None, None, None, 0);
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        let Some(key) = string_of(lua, &k)? else {
            return Ok(Err(
                "named argument key given to redis.register_function is not a string",
            ));
        };
        if key.eq_ignore_ascii_case(b"function_name") {
            let Some(s) = string_of(lua, &v)? else {
                return Ok(Err(
                    "function_name argument given to redis.register_function must be a string",
                ));
            };
            name = Some(s);
        } else if key.eq_ignore_ascii_case(b"description") {
            let Some(s) = string_of(lua, &v)? else {
                return Ok(Err(
                    "description argument given to redis.register_function must be a string",
                ));
            };
            desc = Some(s);
        } else if key.eq_ignore_ascii_case(b"callback") {
            let Value::Function(f) = v else {
                return Ok(Err(
                    "callback argument given to redis.register_function must be a function",
                ));
            };
            func = Some(f);
        } else if key.eq_ignore_ascii_case(b"flags") {
            let Value::Table(list) = v else {
                return Ok(Err(
                    "flags argument to redis.register_function must be a table representing function flags",
                ));
            };
            match read_flags(lua, &list)? {
                Some(f) => flags = f,
                None => return Ok(Err("unknown flag given")),
            }
        } else {
            return Ok(Err("unknown argument given to redis.register_function"));
        }
    }
    let Some(name) = name else {
        return Ok(Err(
            "redis.register_function must get a function name argument",
        ));
    };
    let Some(func) = func else {
        return Ok(Err("redis.register_function must get a callback argument"));
    };
    Ok(Ok(Registered {
        name,
        desc,
        flags,
        func,
    }))
}

/// `luaRegisterFunctionReadFlags`: `list[1]`, `list[2]`, ... up to the first nil (read as Lua
/// reads them, metamethods included); `None` for a flag that is not a known name.
fn read_flags(lua: &Lua, list: &Table) -> mlua::Result<Option<u32>> {
    let mut flags = 0;
    for j in 1.. {
        let v: Value = list.get(j)?;
        if v.is_nil() {
            break;
        }
        let Some(s) = string_of(lua, &v)? else {
            return Ok(None);
        };
        match NAMES
            .iter()
            .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(&s))
        {
            Some(&(_, f)) => flags |= f,
            None => return Ok(None),
        }
    }
    Ok(Some(flags))
}

/// `lua_isstring` then `lua_tolstring`: strings, and numbers in Lua's text form.
fn string_of(lua: &Lua, v: &Value) -> mlua::Result<Option<Vec<u8>>> {
    match v {
        Value::String(s) => Ok(Some(s.as_bytes().to_vec())),
        Value::Integer(_) | Value::Number(_) => {
            Ok(lua.coerce_string(v.clone())?.map(|s| s.as_bytes().to_vec()))
        }
        _ => Ok(None),
    }
}
