//! The `redis.*` functions that act on the running script (`call`, `pcall`, `setresp`,
//! `set_repl`, `acl_check_cmd`), and how they find it: Redis keeps the running script's context
//! in a global (`curr_run_ctx`); here it is a thread-local pointer to the [`Run`], set by
//! [`install`] for the duration of one Lua call.
//!
//! The functions are made once per interpreter, not per run: making five closures (and their C
//! wrappers) for every EVAL was a quarter of its instructions, and their garbage most of the
//! collector's work (callgrind, docs/BENCHMARKS.md).

use std::cell::Cell;
use std::marker::PhantomData;
use std::ptr::null_mut;

use mlua::{Lua, MultiValue, Table, Value};

use super::call::{self, Run};
use super::sandbox::{self, Outcome};

thread_local! {
    /// The running script's [`Run`] (erased), null outside a run and while a function uses it.
    static CURRENT: Cell<*mut ()> = const { Cell::new(null_mut()) };
}

/// While alive, the `redis.*` functions of this thread act on the run it was made from.
pub(super) struct Installed<'a> {
    _run: PhantomData<&'a mut ()>,
}

/// Makes `run` the current run until the returned guard is dropped. The guard borrows `run`,
/// so nothing else can reach it meanwhile.
pub(super) fn install<'a>(run: &'a mut Run<'_, '_>) -> Installed<'a> {
    CURRENT.with(|c| c.set(std::ptr::from_mut(run).cast::<()>()));
    Installed { _run: PhantomData }
}

impl Drop for Installed<'_> {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(null_mut()));
    }
}

/// Runs `f` on the current run; `None` outside a run, or when called from inside `f` (the
/// pointer is taken out while `f` runs, so there is never a second `&mut`).
fn with_run<R>(f: impl FnOnce(&mut Run<'_, '_>) -> R) -> Option<R> {
    let p = CURRENT.with(|c| c.replace(null_mut()));
    if p.is_null() {
        return None;
    }
    // SAFETY: `p` was set by `install` from a `&mut Run` that the `Installed` guard keeps
    // borrowed until it clears the pointer, on this same thread (the cell is thread-local);
    // it is taken out of the cell while `f` runs, so this is the only reference to the run.
    let run = unsafe { &mut *p.cast::<Run<'_, '_>>() };
    let r = f(run);
    CURRENT.with(|c| c.set(p));
    Some(r)
}

/// What a function answers when no script is running (it was kept and called later).
fn outside(lua: &Lua, name: &str) -> Outcome {
    sandbox::raise_msg(
        lua,
        &format!("{name} can only be called inside a script invocation"),
    )
}

/// Puts the run-bound functions into the `redis` table.
pub(super) fn register(lua: &Lua, redis: &Table) -> mlua::Result<()> {
    let call = lua.create_function(|lua, args: MultiValue| {
        match with_run(|run| call::call(lua, run, args)) {
            None => outside(lua, "redis.call/pcall"),
            Some(r) => match r? {
                (Value::Table(t), true) => sandbox::raise(t),
                (v, _) => sandbox::ok(lua, v),
            },
        }
    })?;
    redis.raw_set("call", sandbox::raising(lua, call)?)?;
    // pcall raises nothing of its own: a plain function.
    let pcall = lua.create_function(|lua, args: MultiValue| {
        match with_run(|run| call::call(lua, run, args)) {
            Some(r) => Ok(r?.0),
            None => Ok(Value::Table(sandbox::error_table(
                lua,
                b"redis.call/pcall can only be called inside a script invocation",
            )?)),
        }
    })?;
    redis.raw_set("pcall", pcall)?;
    let setresp = lua.create_function(|lua, args: MultiValue| {
        if args.len() != 1 {
            return sandbox::raise_msg(lua, "redis.setresp() requires one argument.");
        }
        let resp = lua_tonumber(lua, &args[0])?;
        if resp != 2.0 && resp != 3.0 {
            return sandbox::raise_msg(lua, "RESP version must be 2 or 3.");
        }
        match with_run(|run| run.ctx.client.resp3 = resp == 3.0) {
            Some(()) => sandbox::ok(lua, ()),
            None => outside(lua, "redis.setresp"),
        }
    })?;
    redis.raw_set("setresp", sandbox::raising(lua, setresp)?)?;
    // REPL_AOF decides whether the commands that follow reach the AOF; REPL_REPLICA is accepted
    // and changes nothing (there are no replicas).
    let set_repl = lua.create_function(|lua, args: MultiValue| {
        if args.len() != 1 {
            return sandbox::raise_msg(lua, "redis.set_repl() requires two arguments.");
        }
        let flags = lua_tonumber(lua, &args[0])? as i64;
        if flags & !3 != 0 {
            return sandbox::raise_msg(
                lua,
                "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
            );
        }
        match with_run(|run| run.to_aof = flags & 1 != 0) {
            Some(()) => sandbox::ok(lua, ()),
            None => outside(lua, "redis.set_repl"),
        }
    })?;
    redis.raw_set("set_repl", sandbox::raising(lua, set_repl)?)?;
    let acl_check = lua.create_function(|lua, args: MultiValue| {
        match with_run(|run| call::command_exists(lua, run, args)) {
            None => outside(lua, "redis.acl_check_cmd"),
            Some(r) => match r? {
                Err(t) => sandbox::raise(t),
                Ok(None) => {
                    sandbox::raise_msg(lua, "Invalid command passed to redis.acl_check_cmd()")
                }
                Ok(Some(allowed)) => sandbox::ok(lua, allowed),
            },
        }
    })?;
    redis.raw_set("acl_check_cmd", sandbox::raising(lua, acl_check)?)?;
    Ok(())
}

/// Lua's `lua_tonumber`: numbers and numeric strings (as Lua reads them), 0 for anything else.
fn lua_tonumber(lua: &Lua, v: &Value) -> mlua::Result<f64> {
    Ok(lua.coerce_number(v.clone())?.unwrap_or(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_run_means_no_access() {
        assert!(with_run(|_| ()).is_none());
    }
}
