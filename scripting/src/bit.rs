//! Placeholder: being written (see lib.rs).

use mlua::{Lua, Table};

/// Opens the library: its table.
pub fn open(lua: &Lua) -> mlua::Result<Table> {
    lua.create_table()
}
