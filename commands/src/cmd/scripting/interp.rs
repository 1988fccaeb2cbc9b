//! Running a compiled script or function on one interpreter (Redis's `scriptPrepareForRun`,
//! `luaCallFunction` and the reply of `evalGenericCommand` / `fcallCommandGeneric`): the
//! start-of-run refusals, the call under the error handler with the run's `redis.*` context,
//! and the reply or error that comes out. EVAL's cache (`engine.rs`) and the function libraries
//! (`functions/`) each own one [`Interp`].

use std::cell::Cell;
use std::sync::{Arc, Mutex};

use ferrite_scripting::rand48::Rand48;
use mlua::{Function, Table, Value};

use super::busy::{Running, Shown};
use super::call::{self, Buffers, Run};
use super::convert::{error_reply, lua_to_reply};
use super::engine::script_flags::*;
use super::sandbox::{Kind, Sandbox, error_message};
use crate::args::Args;
use crate::ctx::Ctx;

/// How many runs pass between two incremental garbage-collection steps (Redis's
/// `LUA_GC_CYCLE_PERIOD`), so that no single run pays for a full cycle.
const GC_PERIOD: u32 = 50;

/// One interpreter and what its runs reuse.
pub(super) struct Interp {
    /// The interpreter.
    pub sandbox: Sandbox,
    /// `redis.call`'s buffers, reused by every run.
    bufs: Option<Buffers>,
    runs: u32,
    /// What the busy hook reports to.
    running: Running,
}

/// What a run is asked to do.
pub(super) struct Call<'a> {
    /// The compiled script or registered function.
    pub func: &'a Function,
    /// Its flags (`script_flags`).
    pub flags: u32,
    /// The name its errors give: the script's SHA-1 or the function's name.
    pub name: &'a str,
    /// Its keys.
    pub keys: &'a [&'a [u8]],
    /// Its other arguments.
    pub argv: &'a [&'a [u8]],
    /// Called as `EVAL_RO`, `EVALSHA_RO` or `FCALL_RO`.
    pub read_only_command: bool,
    /// The whole command line (FUNCTION STATS shows it while the run is busy).
    pub command: Args<'a>,
}

thread_local! {
    /// The [`Call`] running on this thread (erased), null outside a run: the busy hook reads
    /// its name and command line when the run turns busy.
    static RUNNING_CALL: Cell<*const ()> = const { Cell::new(std::ptr::null()) };
}

/// The running call's name and command line (`busy::Running`'s `show`).
fn show_running_call() -> Option<Shown> {
    let p = RUNNING_CALL.with(Cell::get);
    if p.is_null() {
        return None;
    }
    // SAFETY: `p` is set by `Interp::run` from a `&Call` that outlives the run, on this thread
    // (the cell is thread-local), and cleared before that borrow ends; the hook that calls
    // this runs inside that run, and only reads.
    let c = unsafe { &*p.cast::<Call<'_>>() };
    Some((
        c.name.to_owned(),
        c.command.iter_from(0).map(<[u8]>::to_vec).collect(),
    ))
}

impl Interp {
    /// A fresh interpreter of `kind`, or the error reply's text; `running` watches its runs.
    pub fn new(kind: Kind, rand: Arc<Mutex<Rand48>>, running: &Running) -> Result<Interp, String> {
        let start_error = |e: mlua::Error| format!("ERR could not start the Lua interpreter: {e}");
        let sandbox = Sandbox::new(kind, rand).map_err(start_error)?;
        running
            .install_hook(&sandbox.lua, show_running_call)
            .map_err(start_error)?;
        Ok(Interp {
            sandbox,
            bufs: Some(Buffers::default()),
            runs: 0,
            running: running.clone(),
        })
    }

    /// Puts the busy hook back after something else (FUNCTION LOAD's time limit) replaced it.
    pub fn restore_hook(&self) {
        if let Err(e) = self
            .running
            .install_hook(&self.sandbox.lua, show_running_call)
        {
            log::warn!("cannot watch scripts for SCRIPT KILL: {e}");
        }
    }

    /// The heap the interpreter uses, for INFO.
    pub fn publish_memory(&self, to: &std::sync::atomic::AtomicU64) {
        call::publish_memory(&self.sandbox.lua, to);
    }

    /// Runs `c` for `ctx`'s client and answers it: Redis's start-of-run checks, the run, then
    /// its reply.
    pub fn run(&mut self, ctx: &mut Ctx<'_>, c: &Call<'_>) {
        if let Err(msg) = prepare(ctx, c.flags, c.read_only_command) {
            ctx.reply.error(&msg);
            return;
        }
        let compat = c.flags & EVAL_COMPAT_MODE != 0;
        let read_only = c.read_only_command || (!compat && c.flags & NO_WRITES != 0);
        let allow_oom = !compat && c.flags & ALLOW_OOM != 0;
        let client = &mut *ctx.client;
        let saved = (client.db, client.resp3, client.deny_blocking);
        // The script's commands answer in RESP2 until it calls redis.setresp, and never block.
        client.resp3 = false;
        client.deny_blocking = true;
        let threshold = crate::config::Config::load(&ctx.server.config.busy_reply_threshold);
        let now = crate::server::unix_ms();
        self.running
            .begin(self.sandbox.load.is_none(), now, threshold);
        RUNNING_CALL.with(|p| p.set(std::ptr::from_ref(c).cast()));
        let outcome = self.call_function(ctx, c, read_only, allow_oom);
        RUNNING_CALL.with(|p| p.set(std::ptr::null()));
        self.running.end();
        let client = &mut *ctx.client;
        (client.db, client.resp3, client.deny_blocking) = saved;
        client
            .shared
            .db
            .store(saved.0, std::sync::atomic::Ordering::Relaxed);
        self.runs += 1;
        if self.runs.is_multiple_of(GC_PERIOD) {
            let _ = self.sandbox.lua.gc_step();
        }
        let name = c.name;
        match outcome {
            Ok((true, value, script_resp3)) => {
                let (lua, next) = (&self.sandbox.lua, &self.sandbox.next);
                if let Err(e) = lua_to_reply(lua, &mut ctx.reply, value, script_resp3, next) {
                    let msg = error_message(&e);
                    ctx.reply
                        .error(&format!("ERR Error running script {name}, {msg:.100}"));
                }
            }
            Ok((false, Value::Table(err), _)) => script_error(ctx, &err, name),
            Ok((false, other, _)) => {
                let msg = format!(
                    "ERR Error running script {name}, {:.100}",
                    format!("{other:?}")
                );
                ctx.reply.error(&msg);
            }
            Err(e) => {
                let msg = error_message(&e);
                ctx.reply
                    .error(&format!("ERR Error running script {name}, {msg:.100}"));
            }
        }
    }

    /// `luaCallFunction`: hands the script its keys and arguments (EVAL's `KEYS` and `ARGV`
    /// globals, a function's two parameters) and its `redis.*` context, and calls it under the
    /// error handler. Returns whether it succeeded, what it returned or raised, and the
    /// protocol it chose.
    fn call_function(
        &mut self,
        ctx: &mut Ctx<'_>,
        c: &Call<'_>,
        read_only: bool,
        allow_oom: bool,
    ) -> mlua::Result<(bool, Value, bool)> {
        let sb = &self.sandbox;
        let lua = &sb.lua;
        let (keys, argv) = (string_array(lua, c.keys)?, string_array(lua, c.argv)?);
        let bufs = self.bufs.take().unwrap_or_default();
        let mut run = Run::new(ctx, read_only, allow_oom, bufs);
        let result = {
            let _installed = super::current::install(&mut run);
            if sb.load.is_some() {
                sb.run.call::<(bool, Value)>((c.func.clone(), keys, argv))
            } else {
                sb.globals.raw_set(&sb.keys_name, keys)?;
                sb.globals.raw_set(&sb.argv_name, argv)?;
                sb.run.call::<(bool, Value)>(c.func.clone())
            }
        };
        let script_resp3 = run.ctx.client.resp3;
        if let Some(txn) = run.txn.take() {
            run.ctx.client.aof_txn = Some(txn.finish());
        }
        self.bufs = Some(run.into_buffers());
        let (ok, value) = result?;
        Ok((ok, value, script_resp3))
    }
}

/// `scriptPrepareForRun`'s refusals, for scripts with a shebang (flags), functions, and `*_RO`
/// commands.
fn prepare(ctx: &Ctx<'_>, flags: u32, read_only_command: bool) -> Result<(), String> {
    if flags & EVAL_COMPAT_MODE != 0 {
        return Ok(());
    }
    if flags & ALLOW_OOM == 0 && crate::eviction::over_maxmemory(&ctx.server.config, ctx.store) {
        return Err("OOM allow-oom flag is not set on the script, can not run it when used memory > 'maxmemory'".into());
    }
    if flags & NO_WRITES == 0 {
        // Redis refuses such a script before it runs, as a write command (its flags make
        // `getCommandFlags` answer `write`), with the plain READONLY error.
        if !ctx.client.obey && crate::replica::refuses_writes(ctx.server) {
            return Err(String::from_utf8_lossy(crate::replica::READONLY_ERROR).into_owned());
        }
        if let Some(msg) = crate::worker::disk_error(ctx.server, ctx.store) {
            return Err(if msg == crate::persist::MISCONF {
                "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Writable scripts are blocked. Use 'no-writes' flag for read only scripts.".to_string()
            } else {
                format!(
                    "{msg}. Writable scripts are blocked. Use 'no-writes' flag for read only scripts."
                )
            });
        }
        if crate::master::refuses_writes(ctx.server) {
            return Err(crate::master::NOREPLICAS.into());
        }
        if read_only_command {
            return Err("ERR Can not execute a script with write flag using *_ro command.".into());
        }
    }
    Ok(())
}

/// The reply to a script that raised `err` (`{err=..., source=..., line=...}`).
fn script_error(ctx: &mut Ctx<'_>, err: &Table, name: &str) {
    let text = |field: &str| -> Option<Vec<u8>> {
        match err.get::<Value>(field).ok()? {
            Value::String(s) => Some(s.as_bytes().to_vec()),
            Value::Integer(i) => Some(i.to_string().into_bytes()),
            Value::Number(n) => Some(crate::resp::reply::format_double_g(n, 14).into_bytes()),
            _ => None,
        }
    };
    // Redis 7.0 crashes on an error table without a message; Ferrite names the problem.
    let mut msg = text("err").unwrap_or_else(|| b"ERR unknown error".to_vec());
    if let (Some(source), Some(line)) = (text("source"), text("line")) {
        msg.extend_from_slice(format!(" script: {name}, on ").as_bytes());
        msg.extend_from_slice(&source);
        msg.push(b':');
        msg.extend_from_slice(&line);
        msg.push(b'.');
    }
    let counted = !matches!(
        err.get::<Value>("ignore_error_stats_update"),
        Ok(Value::Boolean(true))
    );
    error_reply(&mut ctx.reply, &msg, counted);
}

/// `luaCreateArray`: a Lua array of the strings.
fn string_array(lua: &mlua::Lua, items: &[&[u8]]) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.iter().enumerate() {
        t.raw_set(i + 1, lua.create_string(item)?)?;
    }
    Ok(t)
}
