//! `redis.call` and `redis.pcall`: a script runs a command (Redis's `luaRedisGenericCommand`
//! and `scriptCall`). The arguments become a command line, which passes Redis's script checks
//! in Redis's order, runs as a nested call on the caller's client, and answers into a scratch
//! buffer that is read back as a Lua value.

use std::sync::atomic::Ordering;

use mlua::{Lua, MultiValue, Value};

use super::convert::reply_to_lua;
use super::sandbox::error_table;
use crate::aof::feed::TxnFeed;
use crate::args::Args;
use crate::ctx::Ctx;
use crate::table::{self, CommandSpec, flags};

/// The state of one script run that its `redis.*` functions share.
pub(super) struct Run<'r, 'c> {
    /// The EVAL's own context (its client is the script's client).
    pub ctx: &'r mut Ctx<'c>,
    /// `no-writes` script or an `*_RO` command: write commands are refused.
    pub read_only: bool,
    /// `allow-oom` script: commands are not refused for memory.
    pub allow_oom: bool,
    /// The dataset was over `maxmemory` when the script started.
    pub oom: bool,
    /// A write command ran (Redis's `SCRIPT_WRITE_DIRTY`).
    pub wrote: bool,
    /// The script's commands go to the AOF (`redis.set_repl` with `REPL_AOF` set, the default).
    pub to_aof: bool,
    /// The AOF side of the script's writes, while the AOF is on.
    pub txn: Option<TxnFeed>,
    /// Buffers of the running command, kept by the engine from run to run.
    bufs: Buffers,
}

/// The buffers `redis.call` fills for each command: its arguments and its reply. The engine
/// keeps them between runs, so a script's calls allocate nothing once they have grown.
#[derive(Default)]
pub(super) struct Buffers {
    /// Reply bytes of the running command.
    scratch: Vec<u8>,
    /// Arguments of the running command, back to back.
    argv: Vec<u8>,
    /// Each argument's offset and length in `argv`.
    spans: Vec<(u32, u32)>,
}

impl<'r, 'c> Run<'r, 'c> {
    /// The run of a script by `ctx`'s client, with the engine's `bufs`.
    pub fn new(ctx: &'r mut Ctx<'c>, read_only: bool, allow_oom: bool, bufs: Buffers) -> Self {
        let oom = crate::eviction::over_maxmemory(&ctx.server.config, ctx.store);
        let txn = ctx.server.aof.propagating().then(TxnFeed::default);
        Run {
            ctx,
            read_only,
            allow_oom,
            oom,
            wrote: false,
            to_aof: true,
            txn,
            bufs,
        }
    }

    /// Ends the run, handing back the buffers.
    pub fn into_buffers(self) -> Buffers {
        self.bufs
    }

    /// Collects the Lua arguments as a command line, as `luaArgsToRedisArgv`: strings as they
    /// are, numbers as `%.17g`, anything else refused.
    fn collect_args(&mut self, args: &MultiValue) -> Result<(), &'static str> {
        if args.is_empty() {
            return Err("Please specify at least one argument for this redis lib call");
        }
        self.bufs.argv.clear();
        self.bufs.spans.clear();
        for v in args {
            let start = self.bufs.argv.len();
            match v {
                Value::String(s) => self.bufs.argv.extend_from_slice(&s.as_bytes()),
                Value::Integer(i) => self
                    .bufs
                    .argv
                    .extend_from_slice(crate::resp::reply::format_double_g17(*i as f64).as_bytes()),
                Value::Number(n) => self
                    .bufs
                    .argv
                    .extend_from_slice(crate::resp::reply::format_double_g17(*n).as_bytes()),
                _ => return Err("Lua redis lib command arguments must be strings or integers"),
            }
            self.bufs
                .spans
                .push((start as u32, (self.bufs.argv.len() - start) as u32));
        }
        Ok(())
    }
}

/// `redis.call(...)` / `redis.pcall(...)`: the command's reply as a Lua value, and whether
/// `redis.call` must raise it (an error reply, or a refusal).
pub(super) fn call(
    lua: &Lua,
    run: &mut Run<'_, '_>,
    args: MultiValue,
) -> mlua::Result<(Value, bool)> {
    if let Err(msg) = run.collect_args(&args) {
        return Ok((Value::Table(error_table(lua, msg.as_bytes())?), true));
    }
    let argv = std::mem::take(&mut run.bufs.argv);
    let spans = std::mem::take(&mut run.bufs.spans);
    let result = call_args(lua, run, Args::new(&argv, &spans));
    run.bufs.argv = argv;
    run.bufs.spans = spans;
    result
}

fn call_args(lua: &Lua, run: &mut Run<'_, '_>, args: Args<'_>) -> mlua::Result<(Value, bool)> {
    let spec = match check(run, args) {
        Ok(spec) => spec,
        Err((msg, spec)) => return Ok((Value::Table(refusal(lua, run, &msg, spec)?), true)),
    };
    if spec.has(flags::WRITE) && !run.wrote {
        // A script killed while busy stops before its first write, never after it.
        if !run.ctx.server.scripts.running.mark_dirty() {
            return Err(mlua::Error::runtime(super::busy::KILLED_ERROR));
        }
        run.wrote = true;
    }
    let mut out = std::mem::take(&mut run.bufs.scratch);
    out.clear();
    let ctx = &mut *run.ctx;
    let mut outer = crate::nested::Outer {
        server: ctx.server,
        store: &mut *ctx.store,
        client: &mut *ctx.client,
        thread: ctx.thread,
        now_ms: ctx.now_ms,
        script: true,
    };
    crate::nested::call(
        &mut outer,
        spec,
        args,
        &mut out,
        run.txn.as_mut(),
        run.to_aof,
    );
    let value = reply_to_lua(lua, &out);
    let raise = out.first() == Some(&b'-');
    run.bufs.scratch = out;
    Ok((value?, raise))
}

/// A command the script may not run: the error table for the script. Counted where it happens,
/// as Redis's `scriptCall` counts it (in errorstats, and as a rejected call of the command when
/// there is one), so the table says not to count it again when the script returns it.
fn refusal(
    lua: &Lua,
    run: &Run<'_, '_>,
    msg: &str,
    spec: Option<&'static CommandSpec>,
) -> mlua::Result<mlua::Table> {
    let t = error_table(lua, msg.as_bytes())?;
    let stats = run.ctx.server.stats.thread(run.ctx.thread);
    stats.error_reply(&t.raw_get::<mlua::LuaString>("err")?.as_bytes());
    if let Some(spec) = spec {
        crate::resolve::count_rejected(stats, crate::table::id_of(spec));
    }
    t.raw_set("ignore_error_stats_update", true)?;
    Ok(t)
}

/// Why a script may not run a command: the error, and the command when it was found.
type Refused = (String, Option<&'static CommandSpec>);

/// The command `args` names, if the script may run it (Redis's `scriptCall` checks, in order),
/// else why not.
fn check(run: &Run<'_, '_>, args: Args<'_>) -> Result<&'static CommandSpec, Refused> {
    let unknown = || ("Unknown Redis command called from script".to_string(), None);
    let base = table::lookup(args.get(0)).ok_or_else(unknown)?;
    let spec = if base.subcommands.is_empty() || args.len() < 2 {
        base
    } else {
        base.subcommand(args.get(1)).ok_or_else(unknown)?
    };
    let refuse = |msg: String| Err((msg, Some(spec)));
    if !spec.arity_ok(args.len()) {
        return refuse("Wrong number of args calling Redis command from script".into());
    }
    if spec.has(flags::NOSCRIPT) {
        return refuse("This Redis command is not allowed from script".into());
    }
    // Redis's `scriptVerifyACL`: the caller's user, logged with context `lua`.
    if let Some(user) = &run.ctx.client.user
        && !user.unrestricted()
    {
        let argv: Vec<&[u8]> = args.iter_from(0).collect();
        if let Err(denied) = crate::acl::check(user, spec, &argv) {
            let ctx = &*run.ctx;
            crate::cmd::acl::log_denied(
                ctx.server, ctx.client, denied, spec, &argv, "lua", ctx.spec,
            );
            return refuse(denied.script_message().into());
        }
    }
    if spec.has(flags::WRITE) {
        if run.read_only {
            return refuse("Write commands are not allowed from read-only scripts.".into());
        }
        // Redis's `scriptVerifyWriteCommandAllow`: a read-only replica takes no write from a
        // script either (a script that already wrote is past failing).
        if !run.wrote && !run.ctx.client.obey && crate::replica::refuses_writes(run.ctx.server) {
            let text = String::from_utf8_lossy(crate::replica::READONLY_ERROR);
            return refuse(format!("-{text}"));
        }
        if let Some(msg) = crate::worker::disk_error(run.ctx.server, run.ctx.store) {
            return refuse(format!("-{msg}"));
        }
        if !run.wrote && crate::master::refuses_writes(run.ctx.server) {
            return refuse(format!("-{}", crate::master::NOREPLICAS));
        }
    }
    if !run.allow_oom && run.oom && !run.wrote && spec.has(flags::DENYOOM) {
        return refuse("-OOM command not allowed when used memory > 'maxmemory'.".into());
    }
    Ok(spec)
}

/// `redis.acl_check_cmd`: whether the caller's user may run the command the arguments name
/// (`None`: they name none), or the error table of an argument error.
pub(super) fn command_exists(
    lua: &Lua,
    run: &mut Run<'_, '_>,
    args: MultiValue,
) -> mlua::Result<Result<Option<bool>, mlua::Table>> {
    if let Err(msg) = run.collect_args(&args) {
        return Ok(Err(error_table(lua, msg.as_bytes())?));
    }
    let args = Args::new(&run.bufs.argv, &run.bufs.spans);
    let Some(base) = table::lookup(args.get(0)) else {
        return Ok(Ok(None));
    };
    let spec = if base.subcommands.is_empty() || args.len() < 2 {
        base
    } else {
        match base.subcommand(args.get(1)) {
            Some(sub) => sub,
            None => return Ok(Ok(None)),
        }
    };
    // Redis's `luaRedisAclCheckCmdPermissionsCommand`: the caller's user may run it.
    let allowed = run.ctx.client.user.as_ref().is_none_or(|user| {
        let argv: Vec<&[u8]> = args.iter_from(0).collect();
        user.unrestricted() || crate::acl::check(user, spec, &argv).is_ok()
    });
    Ok(Ok(Some(allowed)))
}

/// Keeps the Lua figures of INFO memory current after a run.
pub(super) fn publish_memory(lua: &Lua, used: &std::sync::atomic::AtomicU64) {
    used.store(lua.used_memory() as u64, Ordering::Relaxed);
}
