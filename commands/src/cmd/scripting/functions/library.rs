//! Function libraries (Redis's `functions.c`): a library is a `#!lua name=<lib>` body whose
//! loading registers functions; the server keeps the libraries, finds a function by name
//! (case-insensitively, as Redis's function dictionary does) and replaces, deletes, flushes,
//! dumps and restores libraries with Redis's checks and error texts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mlua::chunk::ChunkMode;
use mlua::{Function, HookTriggers, Value, VmState};

use super::register::Loading;
use crate::cmd::scripting::interp::Interp;
use crate::cmd::scripting::sandbox::{Kind, error_message};

/// How long a library's body may run while it loads (Redis's `LOAD_TIMEOUT_MS`).
pub(super) const LOAD_TIMEOUT: Duration = Duration::from_millis(500);

/// The error for a library or function name that is not `[a-zA-Z0-9_]+` (Redis uses the
/// same text for both).
pub(super) const BAD_NAME: &str = "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

/// A function a library registered.
pub(super) struct Registered {
    /// Its name.
    pub name: Vec<u8>,
    /// Its `description`, if it was given one.
    pub desc: Option<Vec<u8>>,
    /// Its flags (`script_flags`).
    pub flags: u32,
    /// Its callback.
    pub func: Function,
}

/// A loaded library.
pub(super) struct Library {
    /// Its name (from the shebang).
    pub name: Vec<u8>,
    /// Its whole code, shebang included: what FUNCTION LIST WITHCODE, FUNCTION DUMP, the RDB
    /// and the AOF carry.
    pub code: Vec<u8>,
    /// Its functions, in registration order.
    pub functions: Vec<Registered>,
}

/// A set of libraries with its function index (Redis's `functionsLibCtx`).
#[derive(Default)]
pub(super) struct LibSet {
    /// The libraries, in load order.
    pub libraries: Vec<Library>,
    /// Lower-cased function name to (library, function) positions.
    index: HashMap<Vec<u8>, (usize, usize)>,
}

impl LibSet {
    /// The library named `name` (case-sensitive, as Redis's library dictionary).
    pub fn library(&self, name: &[u8]) -> Option<usize> {
        self.libraries.iter().position(|l| l.name == name)
    }

    /// The function named `name`, in any case.
    pub fn function(&self, name: &[u8]) -> Option<&Registered> {
        let &(l, f) = self.index.get(&name.to_ascii_lowercase())?;
        Some(&self.libraries[l].functions[f])
    }

    /// How many functions the set has.
    pub fn function_count(&self) -> usize {
        self.index.len()
    }

    fn reindex(&mut self) {
        self.index.clear();
        for (l, lib) in self.libraries.iter().enumerate() {
            for (f, func) in lib.functions.iter().enumerate() {
                self.index
                    .entry(func.name.to_ascii_lowercase())
                    .or_insert((l, f));
            }
        }
    }

    /// Removes library `at` (`libraryUnlink`).
    pub fn unlink(&mut self, at: usize) -> Library {
        let lib = self.libraries.remove(at);
        self.reindex();
        lib
    }

    /// Adds `lib` (`libraryLink`).
    pub fn link(&mut self, lib: Library) {
        self.libraries.push(lib);
        self.reindex();
    }

    /// The first function of `lib` whose name this set already has.
    fn collision<'a>(&self, lib: &'a Library) -> Option<&'a [u8]> {
        lib.functions
            .iter()
            .find(|f| self.index.contains_key(&f.name.to_ascii_lowercase()))
            .map(|f| f.name.as_slice())
    }

    /// `libraryJoin`: moves every library of `src` into this set; with `replace`, a library of
    /// the same name is replaced, else refused. On an error nothing changes.
    pub fn join(&mut self, src: LibSet, replace: bool) -> Result<(), String> {
        let mut old = Vec::new();
        for lib in &src.libraries {
            if let Some(at) = self.library(&lib.name) {
                if !replace {
                    self.relink(old);
                    return Err(format!(
                        "ERR Library {} already exists",
                        String::from_utf8_lossy(&lib.name)
                    ));
                }
                old.push(self.unlink(at));
            }
        }
        for lib in &src.libraries {
            if let Some(name) = self.collision(lib) {
                let msg = format!(
                    "ERR Function {} already exists",
                    String::from_utf8_lossy(name)
                );
                self.relink(old);
                return Err(msg);
            }
        }
        self.libraries.extend(src.libraries);
        self.reindex();
        Ok(())
    }

    fn relink(&mut self, old: Vec<Library>) {
        self.libraries.extend(old);
        self.reindex();
    }
}

/// Redis's `functionsVerifyName`: `[a-zA-Z0-9_]+`.
pub(super) fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_')
}

/// What a library's shebang says (`functionExtractLibMetaData`).
struct Metadata<'a> {
    engine: Vec<u8>,
    name: Vec<u8>,
    /// The code after the shebang line, from its newline on (line numbers stay the code's).
    body: &'a [u8],
}

fn metadata(code: &[u8]) -> Result<Metadata<'_>, String> {
    if !code.starts_with(b"#!") {
        return Err("ERR Missing library metadata".into());
    }
    let Some(nl) = code.iter().position(|&b| b == b'\n') else {
        return Err("ERR Invalid library metadata".into());
    };
    // `sdssplitargs`: the shebang's words, quotes understood.
    let Some(parts) = crate::resp::parser::split_words(&code[..nl]) else {
        return Err("ERR Invalid library metadata".into());
    };
    let Some((first, rest)) = parts.split_first() else {
        return Err("ERR Invalid library metadata".into());
    };
    let engine = first.get(2..).unwrap_or_default().to_vec();
    let mut name = None;
    for part in rest {
        if part.len() >= 5 && part[..5].eq_ignore_ascii_case(b"name=") {
            if name.is_some() {
                return Err(
                    "ERR Invalid metadata value, name argument was given multiple times".into(),
                );
            }
            name = Some(part[5..].to_vec());
            continue;
        }
        return Err(format!(
            "ERR Invalid metadata value given: {}",
            String::from_utf8_lossy(part)
        ));
    }
    let Some(name) = name else {
        return Err("ERR Library name was not given".into());
    };
    Ok(Metadata {
        engine,
        name,
        body: &code[nl..],
    })
}

/// The function engine: its interpreter and the loaded libraries.
pub(super) struct Registry {
    pub interp: Interp,
    pub set: LibSet,
}

impl Registry {
    /// `functionsCreateWithLibraryCtx` into `set` (the current libraries, or a RESTORE's
    /// scratch set): the library's name, or the error reply's text. `timeout`: FUNCTION LOAD's
    /// limit on the body's run (none when loading a file).
    pub fn create(
        interp: &Interp,
        set: &mut LibSet,
        code: &[u8],
        replace: bool,
        timeout: Option<Duration>,
    ) -> Result<Vec<u8>, String> {
        let md = metadata(code)?;
        if !valid_name(&md.name) {
            return Err(format!("ERR {BAD_NAME}"));
        }
        if !md.engine.eq_ignore_ascii_case(b"lua") {
            return Err(format!(
                "ERR Engine '{}' not found",
                String::from_utf8_lossy(&md.engine)
            ));
        }
        let old = match set.library(&md.name) {
            Some(_) if !replace => {
                return Err(format!(
                    "ERR Library '{}' already exists",
                    String::from_utf8_lossy(&md.name)
                ));
            }
            Some(at) => Some(set.unlink(at)),
            None => None,
        };
        let made = compile_and_register(interp, md.body, timeout).and_then(|functions| {
            let lib = Library {
                name: md.name.clone(),
                code: code.to_vec(),
                functions,
            };
            if lib.functions.is_empty() {
                return Err("ERR No functions registered".into());
            }
            if let Some(name) = set.collision(&lib) {
                return Err(format!(
                    "ERR Function {} already exists",
                    String::from_utf8_lossy(name)
                ));
            }
            Ok(lib)
        });
        match made {
            Ok(lib) => {
                set.link(lib);
                Ok(md.name)
            }
            Err(e) => {
                if let Some(old) = old {
                    set.link(old);
                }
                Err(e)
            }
        }
    }
}

/// `luaEngineCreate`: compiles the body and runs it with the library API as its globals; the
/// functions it registered, or the error reply's text.
fn compile_and_register(
    interp: &Interp,
    body: &[u8],
    timeout: Option<Duration>,
) -> Result<Vec<Registered>, String> {
    let sb = &interp.sandbox;
    let lua = &sb.lua;
    let chunk = lua
        .load(body)
        .set_name("@user_function")
        .set_mode(ChunkMode::Text)
        .set_environment(sb.env.clone())
        .into_function()
        .map_err(|e| format!("ERR Error compiling function: {}", error_message(&e)))?;
    let Some(load) = &sb.load else {
        return Err("ERR Error registering functions: not a function engine".into());
    };
    lua.set_app_data(Loading::default());
    if let Some(limit) = timeout {
        let start = Instant::now();
        let hook = move |_: &mlua::Lua, _: &mlua::debug::Debug<'_>| {
            if start.elapsed() > limit {
                return Err(mlua::Error::runtime("FUNCTION LOAD timeout"));
            }
            Ok(VmState::Continue)
        };
        if let Err(e) = lua.set_hook(HookTriggers::new().every_nth_instruction(100_000), hook) {
            lua.remove_app_data::<Loading>();
            return Err(format!("ERR Error registering functions: {e}"));
        }
    }
    let result = load.call::<(bool, Value)>(chunk);
    if timeout.is_some() {
        interp.restore_hook();
    }
    let loading = lua.remove_app_data::<Loading>().unwrap_or_default();
    let (ok, raised) = result
        .map_err(|e| format!("ERR Error registering functions: ERR {}", error_message(&e)))?;
    if ok {
        return Ok(loading.functions);
    }
    // `luaExtractErrorInformation`: a string is prefixed with ERR, a table gives its `err`.
    let msg = match raised {
        Value::String(s) => format!("ERR {}", String::from_utf8_lossy(&s.as_bytes())),
        Value::Integer(_) | Value::Number(_) => {
            let s = lua.coerce_string(raised).ok().flatten();
            let s = s.map(|s| String::from_utf8_lossy(&s.as_bytes()).into_owned());
            format!("ERR {}", s.unwrap_or_default())
        }
        Value::Table(t) => match t.raw_get::<Value>("err") {
            Ok(Value::String(s)) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
            _ => "ERR unknown error".into(),
        },
        Value::Error(e) => format!("ERR {}", error_message(&e)),
        _ => "ERR unknown error".into(),
    };
    Err(format!("ERR Error registering functions: {msg}"))
}

/// The server's function engine: created on first use, replaced by FUNCTION FLUSH.
#[derive(Default)]
pub struct Functions {
    registry: Mutex<Option<Registry>>,
    /// INFO `used_memory_vm_functions`: the interpreter's heap.
    pub lua_memory: AtomicU64,
    /// INFO `number_of_functions`.
    pub functions: AtomicU64,
    /// INFO `number_of_libraries`.
    pub libraries: AtomicU64,
    /// INFO `used_memory_functions`: the libraries' code and names.
    pub overhead: AtomicU64,
}

impl Functions {
    fn lock(&self) -> MutexGuard<'_, Option<Registry>> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the registry, made first if there is none, and publishes the figures INFO
    /// shows.
    pub(super) fn with<R>(
        &self,
        rand: &std::sync::Arc<Mutex<ferrite_scripting::rand48::Rand48>>,
        running: &super::super::busy::Running,
        f: impl FnOnce(&mut Registry) -> R,
    ) -> Result<R, String> {
        let mut guard = self.lock();
        if guard.is_none() {
            *guard = Some(Registry {
                interp: Interp::new(Kind::Functions, rand.clone(), running)?,
                set: LibSet::default(),
            });
        }
        let reg = guard.as_mut().expect("made above");
        let r = f(reg);
        self.publish(reg);
        Ok(r)
    }

    /// Runs `f` on the registry if there is one (nothing to find in a registry never made).
    pub(super) fn existing<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> Option<R> {
        let mut guard = self.lock();
        let reg = guard.as_mut()?;
        let r = f(reg);
        self.publish(reg);
        Some(r)
    }

    /// Runs `f` on the libraries, if any were ever loaded (reading them needs no interpreter).
    pub(super) fn read<R>(&self, f: impl FnOnce(&LibSet) -> R) -> R {
        let guard = self.lock();
        match guard.as_ref() {
            Some(reg) => f(&reg.set),
            None => f(&LibSet::default()),
        }
    }

    /// FUNCTION FLUSH: no libraries, and a fresh interpreter when one is next needed.
    pub(crate) fn flush(&self) {
        *self.lock() = None;
        for figure in [
            &self.lua_memory,
            &self.functions,
            &self.libraries,
            &self.overhead,
        ] {
            figure.store(0, Ordering::Relaxed);
        }
    }

    fn publish(&self, reg: &Registry) {
        reg.interp.publish_memory(&self.lua_memory);
        let set = &reg.set;
        self.functions
            .store(set.function_count() as u64, Ordering::Relaxed);
        self.libraries
            .store(set.libraries.len() as u64, Ordering::Relaxed);
        let bytes: usize = set
            .libraries
            .iter()
            .map(|l| {
                l.code.len()
                    + l.name.len()
                    + l.functions
                        .iter()
                        .map(|f| f.name.len() + f.desc.as_ref().map_or(0, Vec::len))
                        .sum::<usize>()
            })
            .sum();
        self.overhead.store(bytes as u64, Ordering::Relaxed);
    }

    /// Every library's code, in load order: what a snapshot or an AOF rewrite saves. Taken
    /// before a fork, so that the child needs no lock.
    pub fn codes(&self) -> Vec<Vec<u8>> {
        self.read(|set| set.libraries.iter().map(|l| l.code.clone()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_word_characters() {
        assert!(valid_name(b"lib_1"));
        assert!(!valid_name(b""));
        assert!(!valid_name(b"a-b"));
        assert!(!valid_name("é".as_bytes()));
    }

    #[test]
    fn metadata_is_read_as_redis_reads_it() {
        let md = metadata(b"#!lua name=mylib\nreturn 1").unwrap();
        assert_eq!(md.engine, b"lua");
        assert_eq!(md.name, b"mylib");
        assert_eq!(md.body, b"\nreturn 1");
        assert_eq!(
            metadata(b"#!LUA NAME=x\n").map(|m| m.name),
            Ok(b"x".to_vec())
        );
        let err = |code: &[u8]| metadata(code).err().unwrap();
        assert_eq!(err(b"return 1"), "ERR Missing library metadata");
        assert_eq!(err(b"#!lua name=x"), "ERR Invalid library metadata");
        assert_eq!(err(b"#!lua\n"), "ERR Library name was not given");
        assert_eq!(
            err(b"#!lua name=a name=b\n"),
            "ERR Invalid metadata value, name argument was given multiple times"
        );
        assert_eq!(err(b"#!lua foo\n"), "ERR Invalid metadata value given: foo");
        assert_eq!(err(b"#!lua \"a\n"), "ERR Invalid library metadata");
    }
}
