//! What the libraries' unit tests share: running a snippet as the script `user_script` and
//! reading its result or the error it raises.

use mlua::{Lua, Value};

/// The first result of `code`, run as the script `user_script`, as bytes (it must be a string).
pub(crate) fn bytes(lua: &Lua, code: &str) -> Vec<u8> {
    let v: Value = lua.load(code).set_name("@user_script").eval().unwrap();
    match v {
        Value::String(s) => s.as_bytes().to_vec(),
        other => panic!("{code}: not a string: {other:?}"),
    }
}

/// [`bytes`] as text.
pub(crate) fn text(lua: &Lua, code: &str) -> String {
    String::from_utf8_lossy(&bytes(lua, code)).into_owned()
}

/// The error value `code` raises, which must be a string, as bytes.
pub(crate) fn err_bytes(lua: &Lua, code: &str) -> Vec<u8> {
    let wrapped = format!(
        "local ok, e = pcall(function() {code} end) \
         assert(not ok, 'no error') assert(type(e) == 'string', type(e)) return e"
    );
    bytes(lua, &wrapped)
}

/// [`err_bytes`] as text.
pub(crate) fn err(lua: &Lua, code: &str) -> String {
    String::from_utf8_lossy(&err_bytes(lua, code)).into_owned()
}
