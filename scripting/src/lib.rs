//! What Redis 7.0 puts in a script's Lua 5.1 environment besides the standard libraries: the
//! `bit`, `cjson`, `cmsgpack` and `struct` libraries (Redis compiles C versions of them into its
//! Lua; these are Rust ports with the same results and error texts) and `math.random` on
//! Redis's own `rand48` generator, so that a script sees the same numbers as on Redis.
//!
//! The command side (EVAL, the `redis` table, the sandbox) lives in `ferrite-commands`; this
//! crate knows nothing of commands or the store.

use mlua::{Lua, Table};

pub mod bit;
pub mod cjson;
pub mod cmsgpack;
pub mod lauxlib;
pub mod rand48;
pub mod sha1;
pub mod structlib;
#[cfg(test)]
mod testutil;

/// A library's `luaopen_*`: builds its table.
type Opener = fn(&Lua) -> mlua::Result<Table>;

/// Opens the four libraries as globals `bit`, `cjson`, `cmsgpack` and `struct`.
pub fn open_libs(lua: &Lua) -> mlua::Result<()> {
    let globals = lua.globals();
    let libs: [(&str, Opener); 4] = [
        ("cjson", cjson::open),
        ("struct", structlib::open),
        ("cmsgpack", cmsgpack::open),
        ("bit", bit::open),
    ];
    for (name, open) in libs {
        globals.raw_set(name, open(lua)?)?;
    }
    Ok(())
}

/// The table whose contents `t` shows: `t` itself, or, for one of the server's read-only views
/// of a library table or of the globals (whose metatable names the real table as
/// `__readonly`), that real table. Redis's read-only tables are real tables, so a library that
/// walks a table (cjson, cmsgpack) must see through the view to give the same result.
pub fn contents(t: &Table) -> Table {
    t.metatable()
        .and_then(|m| m.raw_get::<Option<Table>>("__readonly").ok().flatten())
        .unwrap_or_else(|| t.clone())
}
