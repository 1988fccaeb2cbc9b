//! The few pieces of Lua 5.1's C API that Redis's C libraries (`lua_cmsgpack.c`, `lua_struct.c`)
//! lean on, for their Rust ports: argument checks with lauxlib's texts (`luaL_checklstring`,
//! `luaL_checknumber`, `luaL_checkinteger`, `luaL_optinteger`), errors raised the way `luaL_error`
//! and `luaL_argerror` raise them, and C's double-to-integer casts as x86-64 performs them.
//!
//! Errors: an mlua callback that returns `Err` raises a userdata (mlua's wrapped error), so a
//! script's `pcall` would see a userdata where Redis gives the message string. The functions made
//! by [`create_function`] therefore run behind a small C function that calls the Rust one and,
//! when it reports an error, raises it from C with Lua's own `luaL_error` / `luaL_argerror`
//! logic: the position (`user_script:1: `), the function's name as the script called it (`'pack'`,
//! `'?'` under `pcall`, "calling 'f' on bad self" for methods) and a plain string error value come
//! out exactly as from the C library. The same C half also hands over large result lists
//! ([`Results`]), which mlua's own result passing cannot do near Lua's 8000-slot limit.
//!
//! This duplicates what `raise.rs` (bit/cjson) provides and could be merged into it; that needs
//! its `Raise` to gain the bare-message kind ([`Raise::Plain`]) and the table-spread results.

use std::ffi::{c_int, c_void};

use mlua::{Function, LightUserData, Lua, LuaString, MultiValue, Table, Value, ffi};

/// `LUAI_MAXCSTACK`: the most stack slots a C function may use (`lua_checkstack` refuses more).
pub(crate) const MAX_C_STACK: usize = 8000;

/// An error as the C library raises it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Raise {
    /// `luaL_error`: the calling line's position ("user_script:1: ", or nothing when the caller
    /// is a C function such as `pcall`), then the message.
    Error(Vec<u8>),
    /// `luaL_argerror(narg, msg)`: "bad argument #narg to 'name' (msg)" after the position.
    Arg(i32, Vec<u8>),
    /// An error of the Lua core inside the C function (`lua_settable` with a nil key): the bare
    /// message, no position.
    Plain(Vec<u8>),
}

/// Why a ported function stopped: an error it raises itself, or one from mlua (memory...).
#[derive(Debug)]
pub(crate) enum Failure {
    /// An error of the library, raised as the C code would.
    Raise(Raise),
    /// An error of the Lua state itself, propagated as it is.
    Lua(mlua::Error),
}

impl From<mlua::Error> for Failure {
    fn from(e: mlua::Error) -> Self {
        Failure::Lua(e)
    }
}

impl From<Raise> for Failure {
    fn from(r: Raise) -> Self {
        Failure::Raise(r)
    }
}

/// The result of a ported function.
pub(crate) type CResult<T> = Result<T, Failure>;

/// `luaL_error(L, msg)`.
pub(crate) fn error(msg: impl Into<Vec<u8>>) -> Failure {
    Failure::Raise(Raise::Error(msg.into()))
}

/// `luaL_argerror(L, narg, msg)`.
pub(crate) fn arg_error(narg: i32, msg: impl Into<Vec<u8>>) -> Failure {
    Failure::Raise(Raise::Arg(narg, msg.into()))
}

/// `luaL_checkstack(L, space, msg)` for a function whose stack holds `used` slots.
pub(crate) fn check_stack(used: usize, space: usize, msg: &str) -> CResult<()> {
    if used + space > MAX_C_STACK {
        return Err(error(format!("stack overflow ({msg})")));
    }
    Ok(())
}

/// `luaL_typename`: what the messages call the type of argument `v` (`None`: not passed).
pub(crate) fn type_name(v: Option<&Value>) -> &'static str {
    match v {
        None => "no value",
        Some(Value::Nil) => "nil",
        Some(Value::Boolean(_)) => "boolean",
        Some(Value::Integer(_) | Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Table(_)) => "table",
        Some(Value::Function(_)) => "function",
        Some(Value::Thread(_)) => "thread",
        // Light and full userdata, and mlua's own error values (a userdata in Lua).
        Some(_) => "userdata",
    }
}

/// `luaL_typerror`: "`expected` expected, got `type`" against argument `narg`.
pub(crate) fn type_error(narg: i32, expected: &str, got: Option<&Value>) -> Failure {
    arg_error(narg, format!("{expected} expected, got {}", type_name(got)))
}

/// The argument at 1-based position `narg`.
pub(crate) fn arg(args: &MultiValue, narg: i32) -> Option<&Value> {
    usize::try_from(narg)
        .ok()?
        .checked_sub(1)
        .and_then(|i| args.get(i))
}

/// `luaL_checklstring`: a string, or a number converted as Lua converts it (`%.14g`).
pub(crate) fn check_lstring(lua: &Lua, v: Option<&Value>, narg: i32) -> CResult<LuaString> {
    match v {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(n @ (Value::Integer(_) | Value::Number(_))) => lua
            .coerce_string(n.clone())?
            .ok_or_else(|| type_error(narg, "string", v)),
        _ => Err(type_error(narg, "string", v)),
    }
}

/// `lua_tonumber`: a number, or a string Lua reads as one; `None` otherwise.
pub(crate) fn to_number(lua: &Lua, v: Option<&Value>) -> CResult<Option<f64>> {
    Ok(match v {
        Some(Value::Integer(i)) => Some(*i as f64),
        Some(Value::Number(n)) => Some(*n),
        Some(s @ Value::String(_)) => lua.coerce_number(s.clone())?,
        _ => None,
    })
}

/// `luaL_checknumber`.
pub(crate) fn check_number(lua: &Lua, v: Option<&Value>, narg: i32) -> CResult<f64> {
    to_number(lua, v)?.ok_or_else(|| type_error(narg, "number", v))
}

/// `luaL_checkinteger`: the number cast to `lua_Integer` as C casts it.
pub(crate) fn check_integer(lua: &Lua, v: Option<&Value>, narg: i32) -> CResult<i64> {
    check_number(lua, v, narg).map(double_to_i64)
}

/// `luaL_optinteger`: `default` when the argument is absent or nil.
pub(crate) fn opt_integer(lua: &Lua, v: Option<&Value>, narg: i32, default: i64) -> CResult<i64> {
    match v {
        None | Some(Value::Nil) => Ok(default),
        _ => check_integer(lua, v, narg),
    }
}

/// C's `(int64_t)d` on x86-64 (`cvttsd2si`): truncation, and `INT64_MIN` for NaN and anything
/// out of range (where Rust's `as` would saturate instead).
pub(crate) fn double_to_i64(d: f64) -> i64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if (-TWO_63..TWO_63).contains(&d) {
        d as i64
    } else {
        i64::MIN
    }
}

/// C's `(uint64_t)d` as gcc compiles it for x86-64: below 2^63 (or NaN) the signed conversion,
/// else the signed conversion of `d - 2^63` with the top bit flipped; so NaN gives 2^63 and
/// anything from 2^64 up gives 0.
pub(crate) fn double_to_u64(d: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if d >= TWO_63 {
        (double_to_i64(d - TWO_63) as u64) ^ (1 << 63)
    } else {
        double_to_i64(d) as u64
    }
}

/// Addresses that mark the reports of the Rust half of a function to its C half: an error
/// (element 0) or results passed in a table (element 1).
static SENTINELS: [u8; 2] = [0; 2];

fn error_sentinel() -> *mut c_void {
    std::ptr::addr_of!(SENTINELS[0]) as *mut c_void
}

fn many_sentinel() -> *mut c_void {
    std::ptr::addr_of!(SENTINELS[1]) as *mut c_void
}

/// Up to this many results are kept as Rust values; past it they go into a Lua table. mlua
/// keeps every Lua value a Rust value refers to in one auxiliary stack of about 8000 slots
/// shared by the whole state, so thousands of strings or tables held at once would exhaust it
/// where the C code has room; and mlua pushes a callback's results with a spare slot on top of
/// its arguments, so near the 8000-slot limit it would refuse counts the C function returns.
const SPILL: usize = 64;

/// The results of a ported function, in the order the C function pushes them.
pub(crate) struct Results {
    values: Vec<Value>,
    table: Option<Table>,
    len: usize,
}

impl Results {
    pub(crate) fn new() -> Self {
        Results {
            values: Vec::new(),
            table: None,
            len: 0,
        }
    }

    /// One result.
    pub(crate) fn one(v: Value) -> Self {
        Results {
            values: vec![v],
            table: None,
            len: 1,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a result after the others.
    pub(crate) fn push(&mut self, lua: &Lua, v: Value) -> mlua::Result<()> {
        if self.table.is_none() && self.values.len() >= SPILL {
            let t = lua.create_table()?;
            for (i, v) in self.values.drain(..).enumerate() {
                t.raw_set(i + 1, v)?;
            }
            self.table = Some(t);
        }
        match &self.table {
            Some(t) => t.raw_set(self.len + 1, v)?,
            None => self.values.push(v),
        }
        self.len += 1;
        Ok(())
    }

    /// Replaces result `i` (1-based, at most `len`).
    pub(crate) fn set(&mut self, i: usize, v: Value) -> mlua::Result<()> {
        match &self.table {
            Some(t) => t.raw_set(i, v),
            None => {
                if let Some(slot) = i.checked_sub(1).and_then(|i| self.values.get_mut(i)) {
                    *slot = v;
                }
                Ok(())
            }
        }
    }

    /// The last result.
    pub(crate) fn last(&self) -> mlua::Result<Value> {
        match &self.table {
            Some(t) => t.raw_get(self.len),
            None => Ok(self.values.last().cloned().unwrap_or(Value::Nil)),
        }
    }

    /// Removes the last result.
    pub(crate) fn pop(&mut self) -> mlua::Result<()> {
        if self.len == 0 {
            return Ok(());
        }
        match &self.table {
            Some(t) => t.raw_set(self.len, Value::Nil)?,
            None => {
                self.values.pop();
            }
        }
        self.len -= 1;
        Ok(())
    }

    /// What the Rust half returns to the C half: the values, or (sentinel, table, count).
    fn into_returns(self) -> MultiValue {
        match self.table {
            None => MultiValue::from_iter(self.values),
            Some(t) => MultiValue::from_iter([
                Value::LightUserData(LightUserData(many_sentinel())),
                Value::Table(t),
                Value::Integer(self.len as i64),
            ]),
        }
    }
}

/// Makes a Lua function out of `f` that behaves as a C function of the library: its results,
/// or its error raised as the C code raises it (see the module documentation).
pub(crate) fn create_function<F>(lua: &Lua, f: F) -> mlua::Result<Function>
where
    F: Fn(&Lua, MultiValue) -> CResult<Results> + Send + 'static,
{
    let inner = lua.create_function(move |lua, args: MultiValue| match f(lua, args) {
        Ok(results) => Ok(results.into_returns()),
        Err(Failure::Lua(e)) => Err(e),
        Err(Failure::Raise(raise)) => {
            let (msg, kind) = match raise {
                Raise::Error(m) => (m, Value::Boolean(true)),
                Raise::Plain(m) => (m, Value::Boolean(false)),
                Raise::Arg(narg, m) => (m, Value::Integer(i64::from(narg))),
            };
            Ok(MultiValue::from_iter([
                Value::LightUserData(LightUserData(error_sentinel())),
                Value::String(lua.create_string(msg)?),
                kind,
            ]))
        }
    })?;
    // SAFETY: `exec_raw` runs the closure with `inner` as the only value on a protected stack;
    // `lua_pushcclosure` pops it as the upvalue of `trampoline` and leaves the new closure,
    // which is the one result `exec_raw` converts into a `Function`.
    unsafe {
        lua.exec_raw::<Function>(inner, |state| {
            ffi::lua_pushcclosure(state, trampoline, 1);
        })
    }
}

/// The C half of the functions made by [`create_function`]: calls the Rust half (upvalue 1)
/// with its arguments and returns its results (given in a table when there are many), or,
/// when the results are an error report (error sentinel, message, kind), raises that error. Being a C function called by the script just
/// where the library's C function would be, `luaL_argerror` and `luaL_where` find the same
/// function name and calling line as they do in Redis.
unsafe extern "C-unwind" fn trampoline(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: `state` is the running Lua state calling this C function, whose upvalue 1 is the
    // Rust half (set by `create_function`). The stack use stays within the LUA_MINSTACK slots a
    // C function is granted (one push before the call; the callee grows the stack for its
    // results). `lua_call`, `luaL_argerror` and `lua_error` may leave this frame by longjmp:
    // it holds no Rust value with a destructor, so nothing is skipped.
    unsafe {
        let nargs = ffi::lua_gettop(state);
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
        ffi::lua_insert(state, 1);
        ffi::lua_call(state, nargs, ffi::LUA_MULTRET);
        let nresults = ffi::lua_gettop(state);
        if nresults != 3 {
            return nresults;
        }
        let mark = ffi::lua_touserdata(state, 1);
        if mark == many_sentinel() {
            // The results are in the table at index 2, their count at 3: spread them over
            // this frame's stack, which then holds only the table below them.
            let n = ffi::lua_tonumber(state, 3) as c_int;
            ffi::lua_settop(state, 2);
            ffi::lua_remove(state, 1);
            // `lua_checkstack` itself: mlua-sys's `luaL_checkstack` asks for 20 more slots.
            if ffi::lua_checkstack(state, n) == 0 {
                ffi::lua_pushstring(state, c"stack overflow".as_ptr());
                ffi::lua_error(state);
            }
            for i in 1..=n {
                ffi::lua_rawgeti(state, 1, ffi::lua_Integer::from(i));
            }
            return n;
        }
        if mark != error_sentinel() {
            return nresults;
        }
        if ffi::lua_type(state, 3) == ffi::LUA_TNUMBER {
            let narg = ffi::lua_tonumber(state, 3) as c_int;
            // The message stays on the stack (index 2), so the pointer outlives the call.
            return ffi::luaL_argerror(state, narg, ffi::lua_tostring(state, 2));
        }
        let with_position = ffi::lua_toboolean(state, 3) != 0;
        ffi::lua_settop(state, 2);
        if with_position {
            ffi::luaL_where(state, 1);
            ffi::lua_insert(state, 2);
            ffi::lua_concat(state, 2);
        }
        ffi::lua_error(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lua_with(f: fn(&Lua, MultiValue) -> CResult<Results>) -> Lua {
        let lua = Lua::new();
        let t = lua.create_table().unwrap();
        t.raw_set("f", create_function(&lua, f).unwrap()).unwrap();
        lua.globals().raw_set("lib", t).unwrap();
        lua
    }

    fn run(lua: &Lua, code: &str) -> mlua::Result<MultiValue> {
        lua.load(code).set_name("@user_script").eval()
    }

    fn raise_error(_: &Lua, _: MultiValue) -> CResult<Results> {
        Err(error("boom"))
    }

    fn raise_arg(_: &Lua, _: MultiValue) -> CResult<Results> {
        Err(arg_error(2, "too short"))
    }

    fn raise_plain(_: &Lua, _: MultiValue) -> CResult<Results> {
        Err(Failure::Raise(Raise::Plain(b"table index is nil".to_vec())))
    }

    fn echo(lua: &Lua, args: MultiValue) -> CResult<Results> {
        let mut out = Results::new();
        for v in args {
            out.push(lua, v)?;
        }
        Ok(out)
    }

    /// As many strings as its argument says, each its own index.
    fn strings(lua: &Lua, args: MultiValue) -> CResult<Results> {
        let n = check_integer(lua, arg(&args, 1), 1)?;
        let mut out = Results::new();
        for i in 0..n {
            out.push(lua, Value::String(lua.create_string(i.to_string())?))?;
        }
        out.push(lua, Value::Nil)?;
        out.pop()?;
        Ok(out)
    }

    fn first_string(v: MultiValue) -> String {
        match v.into_iter().next() {
            Some(Value::String(s)) => s.to_string_lossy(),
            other => panic!("not a string: {other:?}"),
        }
    }

    #[test]
    fn errors_are_plain_strings_with_position_and_name() {
        let lua = lua_with(raise_error);
        let got = run(&lua, "local ok, e = pcall(function() lib.f() end) return e").unwrap();
        assert_eq!(first_string(got), "user_script:1: boom");
        // Under pcall the caller is C: no position, as luaL_where gives.
        let got = run(
            &lua,
            "local ok, e = pcall(lib.f) return type(e) .. '|' .. tostring(e)",
        );
        assert_eq!(first_string(got.unwrap()), "string|boom");
        let err = run(&lua, "\n\nreturn lib.f()").unwrap_err();
        assert!(err.to_string().contains("user_script:3: boom"), "{err}");

        let lua = lua_with(raise_arg);
        let got = run(
            &lua,
            "local ok, e = pcall(function() lib.f(1) end) return e",
        )
        .unwrap();
        assert_eq!(
            first_string(got),
            "user_script:1: bad argument #2 to 'f' (too short)"
        );
        let got = run(&lua, "local ok, e = pcall(lib.f) return e").unwrap();
        assert_eq!(first_string(got), "bad argument #2 to '?' (too short)");
        let got = run(
            &lua,
            "local g = lib.f local ok, e = pcall(function() g() end) return e",
        );
        assert_eq!(
            first_string(got.unwrap()),
            "user_script:1: bad argument #2 to 'g' (too short)"
        );
        // A method call does not count self.
        let got = run(&lua, "local ok, e = pcall(function() lib:f() end) return e").unwrap();
        assert_eq!(
            first_string(got),
            "user_script:1: bad argument #1 to 'f' (too short)"
        );

        let lua = lua_with(raise_plain);
        let got = run(&lua, "local ok, e = pcall(function() lib.f() end) return e").unwrap();
        assert_eq!(first_string(got), "table index is nil");
    }

    #[test]
    fn results_pass_through() {
        let lua = lua_with(echo);
        let got = run(&lua, "return select('#', lib.f(1, nil, 'x', nil))").unwrap();
        assert_eq!(got.into_iter().next(), Some(Value::Integer(4)));
        let got = run(&lua, "return lib.f(true, 'a')").unwrap();
        assert_eq!(got.len(), 2);
        let got = run(&lua, "return select('#', lib.f(unpack({}, 1, 7000)))").unwrap();
        assert_eq!(got.into_iter().next(), Some(Value::Integer(7000)));
    }

    #[test]
    fn many_results_fit_in_the_c_limit() {
        // 7999 strings: more Lua values than mlua could hold as Rust values at once, and the
        // most a C function with one argument can return.
        let lua = lua_with(strings);
        let got = run(
            &lua,
            "local t = {lib.f(7999)} return #t .. ' ' .. t[1] .. ' ' .. t[7999]",
        );
        assert_eq!(first_string(got.unwrap()), "7999 0 7998");
        let got = run(&lua, "return select('#', lib.f(3))").unwrap();
        assert_eq!(got.into_iter().next(), Some(Value::Integer(3)));
    }

    #[test]
    fn c_casts() {
        assert_eq!(double_to_i64(-1.5), -1);
        assert_eq!(double_to_i64(f64::NAN), i64::MIN);
        assert_eq!(double_to_i64(1e300), i64::MIN);
        assert_eq!(double_to_i64(-9_223_372_036_854_775_808.0), i64::MIN);
        // redis-cli eval "return struct.pack('>L', 0/0)" 0 -> "\x80\x00..."; 2^64 and 1e300 -> 0
        assert_eq!(double_to_u64(f64::NAN), 1 << 63);
        assert_eq!(double_to_u64(18_446_744_073_709_551_616.0), 0);
        assert_eq!(double_to_u64(1e300), 0);
        assert_eq!(
            double_to_u64(9_223_372_036_854_779_904.0),
            0x8000_0000_0000_1000
        );
        assert_eq!(double_to_u64(-1.0), u64::MAX);
        assert_eq!(double_to_u64(-1e300), 1 << 63);
    }
}
