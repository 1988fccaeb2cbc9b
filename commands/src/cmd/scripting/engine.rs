//! The script cache and the one Lua interpreter of the server (Redis's `lctx`): compiling a
//! body into a cached function (`luaCreateFunction`) and running one (`evalGenericCommand`,
//! `luaCallFunction`).
//!
//! One interpreter serves every reactor thread, behind a lock. EVAL runs with every other
//! thread excluded anyway (its table entry is `EXCLUSIVE`: a script may touch any key), so the
//! lock is only contended by SCRIPT LOAD/EXISTS/FLUSH, which are short. Nothing a script can
//! run takes the lock (the SCRIPT commands are `NOSCRIPT`; INFO reads the published figures).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ferrite_scripting::rand48::Rand48;
use ferrite_scripting::sha1::sha1_hex;
use mlua::Function;
use mlua::chunk::ChunkMode;

use super::convert::error_reply;
use super::interp::{Call, Interp};
use super::sandbox::Kind;
use crate::args::Args;
use crate::ctx::Ctx;

/// Shebang flags (`#!lua flags=...`), Redis's `SCRIPT_FLAG_*`.
pub(super) mod script_flags {
    /// `no-writes`.
    pub const NO_WRITES: u32 = 1;
    /// `allow-oom`.
    pub const ALLOW_OOM: u32 = 2;
    /// `allow-stale`.
    pub const ALLOW_STALE: u32 = 4;
    /// `no-cluster`.
    pub const NO_CLUSTER: u32 = 8;
    /// No shebang: the script keeps the rules of Redis before 7.0.
    pub const EVAL_COMPAT_MODE: u32 = 16;
    /// `allow-cross-slot-keys`.
    pub const ALLOW_CROSS_SLOT: u32 = 32;

    /// The flags' names in Redis's order (`scripts_flags_def`), which FUNCTION LIST keeps.
    pub const NAMES: [(&str, u32); 5] = [
        ("no-writes", NO_WRITES),
        ("allow-oom", ALLOW_OOM),
        ("allow-stale", ALLOW_STALE),
        ("no-cluster", NO_CLUSTER),
        ("allow-cross-slot-keys", ALLOW_CROSS_SLOT),
    ];
}
use script_flags::*;

/// A script name: the 40 lower-case hex digits of its body's SHA-1.
pub(super) type Sha = [u8; 40];

/// A cached script: its shebang flags and compiled function (the body itself is not needed
/// again: Ferrite propagates a script's effects, never the script).
struct Script {
    flags: u32,
    func: Function,
}

struct Engine {
    interp: Interp,
    scripts: HashMap<Sha, Script>,
    /// The cached bodies' bytes plus their names (INFO `used_memory_scripts_eval`).
    bodies: usize,
}

/// The server's scripting state.
pub struct Scripts {
    engine: Mutex<Option<Engine>>,
    /// Redis's `redisLrand48` state: one for the server, kept across SCRIPT FLUSH, shared
    /// with the function engine.
    pub(super) rand: Arc<Mutex<Rand48>>,
    /// INFO `used_memory_lua`: the interpreter's heap after the last script operation.
    pub lua_memory: AtomicU64,
    /// INFO `number_of_cached_scripts`.
    pub cached: AtomicU64,
    /// INFO `used_memory_scripts_eval`: the cached bodies and their names.
    pub bodies_memory: AtomicU64,
    /// The function libraries (FUNCTION, FCALL), in their own interpreter.
    pub functions: super::functions::Functions,
    /// The script running now, as the other threads see it (BUSY, SCRIPT KILL).
    pub running: super::busy::Running,
}

impl Default for Scripts {
    fn default() -> Self {
        Scripts {
            engine: Mutex::new(None),
            rand: Arc::new(Mutex::new(Rand48::default())),
            lua_memory: AtomicU64::new(0),
            cached: AtomicU64::new(0),
            bodies_memory: AtomicU64::new(0),
            functions: Default::default(),
            running: Default::default(),
        }
    }
}

/// A script that could not be created: the error reply's text.
pub(super) type CreateError = String;

impl Scripts {
    fn lock(&self) -> MutexGuard<'_, Option<Engine>> {
        self.engine.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_engine<R>(&self, f: impl FnOnce(&mut Engine) -> R) -> Result<R, String> {
        let mut guard = self.lock();
        if guard.is_none() {
            *guard = Some(Engine {
                interp: Interp::new(Kind::Eval, self.rand.clone(), &self.running)?,
                scripts: HashMap::new(),
                bodies: 0,
            });
        }
        let engine = guard.as_mut().expect("created above");
        let r = f(engine);
        self.publish(engine);
        Ok(r)
    }

    fn publish(&self, engine: &Engine) {
        engine.interp.publish_memory(&self.lua_memory);
        self.cached
            .store(engine.scripts.len() as u64, Ordering::Relaxed);
        self.bodies_memory
            .store(engine.bodies as u64, Ordering::Relaxed);
    }

    /// SCRIPT LOAD: compiles and caches `body`, returning its name.
    pub(super) fn load(&self, body: &[u8]) -> Result<Sha, CreateError> {
        self.with_engine(|e| e.create(body))?
    }

    /// SCRIPT EXISTS of one name (any case).
    pub(super) fn exists(&self, sha: &[u8]) -> bool {
        let Some(sha) = normalize(sha) else {
            return false;
        };
        self.lock()
            .as_ref()
            .is_some_and(|e| e.scripts.contains_key(&sha))
    }

    /// Whether EVAL (`by_sha` false: `arg` is the body) or EVALSHA of `arg` may write, as
    /// Redis 7.0.15 decides before running anything (`evalGetCommandFlags`): only a script known
    /// to be `no-writes`, cached or by the shebang of a new body, may not.
    pub(crate) fn writes(&self, by_sha: bool, arg: &[u8]) -> bool {
        let sha = if by_sha {
            normalize(arg)
        } else {
            Some(sha1_hex(arg))
        };
        let cached = sha.and_then(|sha| {
            self.lock()
                .as_ref()
                .and_then(|e| e.scripts.get(&sha).map(|s| s.flags))
        });
        let flags = match cached {
            Some(flags) => Some(flags),
            None if by_sha || !arg.starts_with(b"#!") => None,
            None => arg
                .iter()
                .position(|&b| b == b'\n')
                .and_then(|nl| shebang_flags(&arg[..nl]).ok()),
        };
        flags.is_none_or(|f| f & NO_WRITES == 0)
    }

    /// SCRIPT FLUSH: a new interpreter and an empty cache.
    pub(super) fn flush(&self) {
        *self.lock() = None;
        self.lua_memory.store(0, Ordering::Relaxed);
        self.cached.store(0, Ordering::Relaxed);
        self.bodies_memory.store(0, Ordering::Relaxed);
    }

    /// EVAL / EVALSHA: runs the script named by `source` (its body, or its SHA-1 for EVALSHA)
    /// with `keys` and `argv`, answering on `ctx`.
    pub(super) fn eval(
        &self,
        ctx: &mut Ctx<'_>,
        source: Source<'_>,
        keys: &[&[u8]],
        argv: &[&[u8]],
        read_only_command: bool,
        command: Args<'_>,
    ) {
        let result = self.with_engine(|engine| {
            let sha = match source {
                Source::Body(body) => match engine.create(body) {
                    Ok(sha) => sha,
                    Err(msg) => return Err(msg),
                },
                Source::Sha(sha) => match normalize(sha) {
                    Some(sha) if engine.scripts.contains_key(&sha) => sha,
                    _ => return Err(NOSCRIPT.to_string()),
                },
            };
            let script = &engine.scripts[&sha];
            let func = script.func.clone();
            let call = Call {
                func: &func,
                flags: script.flags,
                // Hex digits: always UTF-8.
                name: std::str::from_utf8(&sha).unwrap_or_default(),
                keys,
                argv,
                read_only_command,
                command,
            };
            engine.interp.run(ctx, &call);
            Ok(())
        });
        match result {
            Ok(Ok(())) => {}
            Ok(Err(msg)) | Err(msg) => error_reply(&mut ctx.reply, msg.as_bytes(), true),
        }
    }
}

/// What EVAL names: a body, or (EVALSHA) a body's SHA-1.
#[derive(Clone, Copy)]
pub(super) enum Source<'a> {
    /// EVAL's script.
    Body(&'a [u8]),
    /// EVALSHA's name.
    Sha(&'a [u8]),
}

/// `-NOSCRIPT`.
pub(super) const NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";

/// A SHA-1 given by a client, lower-cased; `None` if it cannot name a script.
fn normalize(sha: &[u8]) -> Option<Sha> {
    let sha: Sha = sha.try_into().ok()?;
    Some(sha.map(|b| b.to_ascii_lowercase()))
}

/// The flags of a `#!lua` shebang line (without its newline), or the error reply's text.
fn shebang_flags(line: &[u8]) -> Result<u32, String> {
    let mut parts = line
        .split(|b| b.is_ascii_whitespace() || *b == 0x0b)
        .filter(|p| !p.is_empty());
    let engine = parts.next().unwrap_or_default();
    if engine != b"#!lua" {
        return Err(format!(
            "ERR Unexpected engine in script shebang: {}",
            String::from_utf8_lossy(engine)
        ));
    }
    let mut flags = 0;
    for part in parts {
        let Some(list) = part.strip_prefix(b"flags=") else {
            return Err(format!(
                "ERR Unknown lua shebang option: {}",
                String::from_utf8_lossy(part)
            ));
        };
        if list.is_empty() {
            continue;
        }
        for name in list.split(|&b| b == b',') {
            let Some(&(_, flag)) = NAMES.iter().find(|(n, _)| n.as_bytes() == name) else {
                return Err(format!(
                    "ERR Unexpected flag in script shebang: {}",
                    String::from_utf8_lossy(name)
                ));
            };
            flags |= flag;
        }
    }
    Ok(flags)
}

impl Engine {
    /// `luaCreateFunction`: the cached script of `body`, compiled on first sight.
    fn create(&mut self, body: &[u8]) -> Result<Sha, CreateError> {
        let sha = sha1_hex(body);
        if self.scripts.contains_key(&sha) {
            return Ok(sha);
        }
        let (flags, code) = if body.starts_with(b"#!") {
            let Some(nl) = body.iter().position(|&b| b == b'\n') else {
                return Err("ERR Invalid script shebang".into());
            };
            (shebang_flags(&body[..nl])?, &body[nl..])
        } else {
            (EVAL_COMPAT_MODE, body)
        };
        // The body is the chunk itself (a vararg function called with no arguments), named
        // `@user_script` so that messages say `user_script:<line>`; the shebang line's newline
        // is kept so that line numbers stay the body's.
        let sandbox = &self.interp.sandbox;
        let func = sandbox
            .lua
            .load(code)
            .set_name("@user_script")
            .set_mode(ChunkMode::Text)
            .set_environment(sandbox.env.clone())
            .into_function()
            .map_err(|e| {
                format!(
                    "ERR Error compiling script (new function): {}",
                    super::sandbox::error_message(&e)
                )
            })?;
        self.bodies += body.len() + sha.len();
        self.scripts.insert(sha, Script { flags, func });
        Ok(sha)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebangs_parse_as_redis_7_0_15() {
        assert_eq!(shebang_flags(b"#!lua"), Ok(0));
        assert_eq!(shebang_flags(b"#!lua  flags=no-writes"), Ok(NO_WRITES));
        assert_eq!(shebang_flags(b"#!lua flags="), Ok(0));
        assert_eq!(
            shebang_flags(b"#!lua flags=no-writes,allow-oom"),
            Ok(NO_WRITES | ALLOW_OOM)
        );
        assert_eq!(
            shebang_flags(b"#!lua flags=no-writes,,allow-oom"),
            Err("ERR Unexpected flag in script shebang: ".into())
        );
        assert_eq!(
            shebang_flags(b"#!luax"),
            Err("ERR Unexpected engine in script shebang: #!luax".into())
        );
        assert_eq!(
            shebang_flags(b"#!lua x"),
            Err("ERR Unknown lua shebang option: x".into())
        );
    }

    #[test]
    fn names_are_case_insensitive() {
        let upper = b"E0E1F9FABFC9D4800C877A703B823AC0578FF8DB";
        assert_eq!(
            normalize(upper),
            Some(*b"e0e1f9fabfc9d4800c877a703b823ac0578ff8db")
        );
        assert_eq!(normalize(b"abc"), None);
    }

    #[test]
    fn only_known_no_writes_scripts_do_not_write() {
        let scripts = Scripts::default();
        assert!(scripts.writes(false, b"return 1"));
        assert!(scripts.writes(false, b"#!lua\nreturn 1"));
        assert!(!scripts.writes(false, b"#!lua flags=no-writes\nreturn 1"));
        assert!(!scripts.writes(false, b"#!lua flags=allow-oom,no-writes\nreturn 1"));
        assert!(scripts.writes(false, b"#!lua flags=bad\nreturn 1"));
        assert!(scripts.writes(false, b"#!lua"));
        assert!(scripts.writes(true, b"abc"));
        let sha = scripts.load(b"#!lua flags=no-writes\nreturn 2").unwrap();
        assert!(!scripts.writes(true, &sha));
        assert!(!scripts.writes(true, &sha.to_ascii_uppercase()));
        let sha = scripts.load(b"return 3").unwrap();
        assert!(scripts.writes(true, &sha));
    }
}
