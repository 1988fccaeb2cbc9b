//! The pieces of Lua 5.1's C API (lauxlib) that Redis's C libraries lean on, for their Rust
//! ports (`bit`, `cjson`, `cmsgpack`, `struct`) and for the server's own `redis.*` and
//! `math.random` functions: errors raised the way `luaL_error`, `luaL_argerror` and `lua_error`
//! raise them, argument checks with lauxlib's texts (`luaL_checklstring`, `luaL_checknumber`,
//! `luaL_checkinteger`, `luaL_checkint`, `luaL_optinteger`), `luaL_typename`, and C's
//! double-to-integer casts as x86-64 performs them.
//!
//! Why a C trampoline: a script sees the error value of a C library function as a plain string
//! (`"user_script:1: message"`, the position empty when the caller is itself a C function such
//! as `pcall`; `"bad argument #1 to 'encode' (...)"` with the name the caller used). An mlua
//! callback that returns `Err` instead raises a userdata whose `tostring` is
//! `"runtime error: message\nstack traceback: ..."`, which a script can tell apart (`type(err)`,
//! `redis.error_reply(err)`, string concatenation). So every function made by [`function`] (or
//! wrapped by [`around`]) is a small C closure around the Rust callback: the callback reports
//! its outcome as values, and the C half, holding no Rust state, raises the error with Lua's own
//! `luaL_where` / `luaL_argerror`, so the position, the function's name as the script called it
//! (`'pack'`, `'?'` under `pcall`, "calling 'f' on bad self" for methods) and the plain string
//! come out exactly as from the C library. The same C half also hands over large result lists
//! ([`Results`]), which mlua's own result passing cannot do near Lua's 8000-slot limit.

use std::ffi::{c_int, c_void};

use mlua::{Function, LightUserData, Lua, LuaString, MultiValue, Table, Value, ffi};

/// `LUAI_MAXCSTACK`: the most stack slots a C function may use (`lua_checkstack` refuses more).
pub const MAX_C_STACK: usize = 8000;

/// How a library function fails, in the terms of the Lua C API.
#[derive(Debug, Clone)]
pub enum Raise {
    /// `luaL_error(L, msg)`: the calling line's position (`user_script:1: `, or nothing when the
    /// caller is a C function such as `pcall`), then the message.
    Error(Vec<u8>),
    /// `luaL_argerror(L, narg, msg)`: `bad argument #narg to 'name' (msg)` after the position.
    Arg(c_int, Vec<u8>),
    /// `lua_error` with a string: the bare message, no position. This is how an error of the
    /// Lua core inside a C function comes out (`lua_settable` with a nil key).
    Plain(Vec<u8>),
    /// `lua_error` with a table (Redis's `{err = ...}`): raised as it is.
    Table(Table),
    /// An error of mlua itself (out of memory, ...), raised as mlua raises it.
    Lua(mlua::Error),
}

impl Raise {
    /// `luaL_error` with a message.
    pub fn error(msg: impl Into<Vec<u8>>) -> Self {
        Raise::Error(msg.into())
    }

    /// `luaL_argerror` for argument `narg` (1-based; 0 names no argument, as in C). Callers
    /// count arguments as `usize` or as C's `int`, so both are taken.
    pub fn arg(narg: impl TryInto<c_int>, msg: impl Into<Vec<u8>>) -> Self {
        Raise::Arg(narg.try_into().unwrap_or(c_int::MAX), msg.into())
    }

    /// `luaL_typerror`: `<expected> expected, got <type of the argument>`.
    pub fn type_error(narg: impl TryInto<c_int>, expected: &str, got: Option<&Value>) -> Self {
        Self::arg(narg, format!("{expected} expected, got {}", typename(got)))
    }
}

impl From<mlua::Error> for Raise {
    fn from(e: mlua::Error) -> Self {
        Raise::Lua(e)
    }
}

/// `luaL_checkstack(L, space, msg)` for a function whose stack holds `used` slots.
pub fn check_stack(used: usize, space: usize, msg: &str) -> Result<(), Raise> {
    if used + space > MAX_C_STACK {
        return Err(Raise::error(format!("stack overflow ({msg})")));
    }
    Ok(())
}

/// `luaL_typename`: the Lua 5.1 type name of an argument, `"no value"` when it is absent.
pub fn typename(v: Option<&Value>) -> &'static str {
    match v {
        None => "no value",
        Some(Value::Nil) => "nil",
        Some(Value::Boolean(_)) => "boolean",
        Some(Value::Integer(_) | Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Table(_)) => "table",
        Some(Value::Function(_)) => "function",
        Some(Value::Thread(_)) => "thread",
        // Light and full userdata share one name in Lua 5.1; mlua's error values are userdata.
        Some(_) => "userdata",
    }
}

/// The argument at 1-based position `narg`, `None` when it was not passed.
pub fn arg(args: &MultiValue, narg: i32) -> Option<&Value> {
    usize::try_from(narg)
        .ok()?
        .checked_sub(1)
        .and_then(|i| args.get(i))
}

/// `luaL_checklstring`: a string, or a number converted as Lua converts it (`%.14g`).
pub fn check_lstring(lua: &Lua, v: Option<&Value>, narg: i32) -> Result<LuaString, Raise> {
    match v {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(n @ (Value::Integer(_) | Value::Number(_))) => lua
            .coerce_string(n.clone())?
            .ok_or_else(|| Raise::type_error(narg, "string", v)),
        _ => Err(Raise::type_error(narg, "string", v)),
    }
}

/// `lua_tonumber`: a number, or a string Lua reads as one; `None` otherwise.
pub fn to_number(lua: &Lua, v: Option<&Value>) -> Result<Option<f64>, Raise> {
    Ok(match v {
        Some(Value::Integer(i)) => Some(*i as f64),
        Some(Value::Number(n)) => Some(*n),
        Some(s @ Value::String(_)) => lua.coerce_number(s.clone())?,
        _ => None,
    })
}

/// `luaL_checknumber`.
pub fn check_number(lua: &Lua, v: Option<&Value>, narg: i32) -> Result<f64, Raise> {
    to_number(lua, v)?.ok_or_else(|| Raise::type_error(narg, "number", v))
}

/// `luaL_checkinteger`: the number cast to `lua_Integer` as C casts it.
pub fn check_integer(lua: &Lua, v: Option<&Value>, narg: i32) -> Result<i64, Raise> {
    check_number(lua, v, narg).map(double_to_i64)
}

/// `luaL_checkint`: `luaL_checkinteger` then C's cast to `int` (the low 32 bits), so a number
/// out of the 64-bit range gives 0 as on Redis.
pub fn check_int(lua: &Lua, v: Option<&Value>, narg: i32) -> Result<i32, Raise> {
    check_integer(lua, v, narg).map(|i| i as i32)
}

/// `luaL_optinteger`: `default` when the argument is absent or nil.
pub fn opt_integer(lua: &Lua, v: Option<&Value>, narg: i32, default: i64) -> Result<i64, Raise> {
    match v {
        None | Some(Value::Nil) => Ok(default),
        _ => check_integer(lua, v, narg),
    }
}

/// C's `(int64_t)d` on x86-64 (`cvttsd2si`): truncation, and `INT64_MIN` for NaN and anything
/// out of range (where Rust's `as` would saturate instead).
pub fn double_to_i64(d: f64) -> i64 {
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
pub fn double_to_u64(d: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if d >= TWO_63 {
        (double_to_i64(d - TWO_63) as u64) ^ (1 << 63)
    } else {
        double_to_i64(d) as u64
    }
}

/// The address that marks results handed over in a table: the Rust half answers
/// `(MANY, table, count)` instead of `true, results...`. A script cannot make this light
/// userdata, so the mark cannot be taken for a function's real results.
static MANY: u8 = 0;

fn many_sentinel() -> *mut c_void {
    std::ptr::addr_of!(MANY) as *mut c_void
}

/// Up to this many results are kept as Rust values; past it they go into a Lua table. mlua
/// keeps every Lua value a Rust value refers to in one auxiliary stack of about 8000 slots
/// shared by the whole state, so thousands of strings or tables held at once would exhaust it
/// where the C code has room; and mlua pushes a callback's results with a spare slot on top of
/// its arguments, so near the 8000-slot limit it would refuse counts the C function returns.
const SPILL: usize = 64;

/// The results of a library function, in the order the C function pushes them; past a few
/// dozen they are kept in a Lua table (see `SPILL`) and spread on the stack by the C half.
#[derive(Debug, Default)]
pub struct Results {
    /// The results while there are few of them.
    values: MultiValue,
    /// All the results (at 1..=len) once there are many.
    table: Option<Table>,
    len: usize,
}

impl Results {
    /// No results.
    pub fn new() -> Self {
        Self::default()
    }

    /// One result.
    pub fn one(v: Value) -> Self {
        Results {
            values: MultiValue::from_iter([v]),
            table: None,
            len: 1,
        }
    }

    /// How many results there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a result after the others.
    pub fn push(&mut self, lua: &Lua, v: Value) -> mlua::Result<()> {
        if self.table.is_none() && self.values.len() >= SPILL {
            let t = lua.create_table()?;
            for (i, v) in self.values.drain(..).enumerate() {
                t.raw_set(i + 1, v)?;
            }
            self.table = Some(t);
        }
        match &self.table {
            Some(t) => t.raw_set(self.len + 1, v)?,
            None => self.values.push_back(v),
        }
        self.len += 1;
        Ok(())
    }

    /// Replaces result `i` (1-based, at most `len`).
    pub fn set(&mut self, i: usize, v: Value) -> mlua::Result<()> {
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
    pub fn last(&self) -> mlua::Result<Value> {
        match &self.table {
            Some(t) => t.raw_get(self.len),
            None => Ok(self.values.back().cloned().unwrap_or(Value::Nil)),
        }
    }

    /// Removes the last result.
    pub fn pop(&mut self) -> mlua::Result<()> {
        if self.len == 0 {
            return Ok(());
        }
        match &self.table {
            Some(t) => t.raw_set(self.len, Value::Nil)?,
            None => {
                self.values.pop_back();
            }
        }
        self.len -= 1;
        Ok(())
    }

    /// What the Rust half answers the C half on success: `true, values...`, or
    /// `(MANY, table, count)`.
    fn into_returns(self) -> MultiValue {
        match self.table {
            None => {
                let mut out = self.values;
                out.push_front(Value::Boolean(true));
                out
            }
            Some(t) => MultiValue::from_iter([
                Value::LightUserData(LightUserData(many_sentinel())),
                Value::Table(t),
                Value::Integer(self.len as i64),
            ]),
        }
    }
}

/// Results given as mlua values (functions with few results).
impl From<MultiValue> for Results {
    fn from(values: MultiValue) -> Self {
        let len = values.len();
        Results {
            values,
            table: None,
            len,
        }
    }
}

/// Makes a Lua function out of `f` that behaves as a C function of a library: it returns `f`'s
/// results, or raises `f`'s [`Raise`] as the C code raises it (see the module documentation).
pub fn function<F, R>(lua: &Lua, f: F) -> mlua::Result<Function>
where
    F: Fn(&Lua, MultiValue) -> Result<R, Raise> + Send + 'static,
    R: Into<Results>,
{
    let inner = lua.create_function(move |lua, args: MultiValue| {
        let fail = |v: Value, kind: Option<Value>| {
            let mut out = MultiValue::from_iter([Value::Boolean(false), v]);
            out.extend(kind);
            out
        };
        Ok(match f(lua, args) {
            Ok(results) => results.into().into_returns(),
            Err(Raise::Error(msg)) => fail(Value::String(lua.create_string(msg)?), None),
            Err(Raise::Arg(narg, msg)) => fail(
                Value::String(lua.create_string(msg)?),
                Some(Value::Integer(i64::from(narg))),
            ),
            Err(Raise::Plain(msg)) => fail(
                Value::String(lua.create_string(msg)?),
                Some(Value::Boolean(false)),
            ),
            Err(Raise::Table(t)) => fail(Value::Table(t), None),
            Err(Raise::Lua(e)) => return Err(e),
        })
    })?;
    around(lua, inner)
}

/// Wraps `inner`, a function that answers `true, results...` on success and on failure
/// `false, message` (raised with the caller's position, as `luaL_error`), `false, message,
/// narg` (as `luaL_argerror`), `false, message, false` (the bare message) or `false, table`
/// (the table as it is), into a function that returns the results or raises the failure as a
/// C function does. Being a C function, the wrapper keeps its caller's frame when called in
/// tail position, so an error handler still finds the caller's line.
pub fn around(lua: &Lua, inner: Function) -> mlua::Result<Function> {
    // SAFETY: `exec_raw` runs the closure with `inner` as the only value on a protected stack;
    // `lua_pushcclosure` pops it as the upvalue of `trampoline` and leaves the new closure,
    // which is the one result `exec_raw` converts into a `Function`.
    unsafe {
        lua.exec_raw::<Function>(inner, |state| {
            ffi::lua_pushcclosure(state, trampoline, 1);
        })
    }
}

/// The C half of the functions made by [`around`]: calls the Rust half (upvalue 1) with its
/// arguments and returns its results (spread from a table when there are many), or raises the
/// failure it reports (see [`around`] for the protocol). Being a C function called by the
/// script just where the library's C function would be, `luaL_argerror` and `luaL_where` find
/// the same function name and calling line as they do in Redis.
unsafe extern "C-unwind" fn trampoline(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: `state` is the running Lua state calling this C function, whose upvalue 1 is the
    // Rust half (set by `around`). The stack use stays within the LUA_MINSTACK slots a C
    // function is granted (one push before the call; the callee grows the stack for its
    // results, and `lua_checkstack` is asked before spreading a table). `lua_call`,
    // `luaL_argerror` and `lua_error` may leave this frame by longjmp: it holds no Rust value
    // with a destructor, so nothing is skipped.
    unsafe {
        let nargs = ffi::lua_gettop(state);
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
        ffi::lua_insert(state, 1);
        ffi::lua_call(state, nargs, ffi::LUA_MULTRET);
        let nres = ffi::lua_gettop(state);
        if nres == 3 && ffi::lua_touserdata(state, 1) == many_sentinel() {
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
        if ffi::lua_toboolean(state, 1) != 0 {
            return nres - 1;
        }
        if nres == 2 && ffi::lua_type(state, 2) == ffi::LUA_TTABLE {
            // A table (Redis's `{err = ...}`) is raised as it is, without a position.
            ffi::lua_settop(state, 2);
            ffi::lua_error(state);
        }
        if nres >= 3 {
            ffi::lua_settop(state, 3);
            if ffi::lua_type(state, 3) == ffi::LUA_TBOOLEAN && ffi::lua_toboolean(state, 3) == 0 {
                // A bare message: raised as it is, as the Lua core raises its own errors.
                ffi::lua_settop(state, 2);
                ffi::lua_error(state);
            }
            let narg = ffi::lua_tonumber(state, 3) as c_int;
            // The message stays on the stack (index 2), so the pointer outlives the call.
            return ffi::luaL_argerror(state, narg, ffi::lua_tostring(state, 2));
        }
        ffi::lua_settop(state, 2);
        ffi::luaL_where(state, 1);
        ffi::lua_insert(state, 2);
        ffi::lua_concat(state, 2);
        ffi::lua_error(state)
    }
}

#[cfg(test)]
mod tests {
    use mlua::IntoLuaMulti;

    use super::*;

    fn lua_with(f: fn(&Lua, MultiValue) -> Result<Results, Raise>) -> Lua {
        let lua = Lua::new();
        let t = lua.create_table().unwrap();
        t.raw_set("f", function(&lua, f).unwrap()).unwrap();
        lua.globals().raw_set("lib", t).unwrap();
        lua
    }

    fn run(lua: &Lua, code: &str) -> mlua::Result<MultiValue> {
        lua.load(code).set_name("@user_script").eval()
    }

    fn raise_error(_: &Lua, _: MultiValue) -> Result<Results, Raise> {
        Err(Raise::error("boom"))
    }

    fn raise_arg(_: &Lua, _: MultiValue) -> Result<Results, Raise> {
        Err(Raise::arg(2, "too short"))
    }

    fn raise_plain(_: &Lua, _: MultiValue) -> Result<Results, Raise> {
        Err(Raise::Plain(b"table index is nil".to_vec()))
    }

    fn echo(lua: &Lua, args: MultiValue) -> Result<Results, Raise> {
        let mut out = Results::new();
        for v in args {
            out.push(lua, v)?;
        }
        Ok(out)
    }

    /// As many strings as its argument says, each its own index.
    fn strings(lua: &Lua, args: MultiValue) -> Result<Results, Raise> {
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

    #[test]
    fn tables_are_raised_as_they_are() {
        // Through `around`, as the server's `redis.*` functions answer `false, table`.
        let lua = Lua::new();
        let inner = lua
            .create_function(|lua, ()| {
                let t = lua.create_table()?;
                t.set("err", "ERR x")?;
                Ok((false, t))
            })
            .unwrap();
        lua.globals()
            .set("f", around(&lua, inner).unwrap())
            .unwrap();
        // And through `function`, with `Raise::Table`.
        let g = function(&lua, |lua, _| -> Result<MultiValue, Raise> {
            let t = lua.create_table()?;
            t.set("err", "ERR y")?;
            Err(Raise::Table(t))
        })
        .unwrap();
        lua.globals().set("g", g).unwrap();
        let errs: (String, String) = lua
            .load(
                "local _, a = pcall(function() return f() end)
                 local _, b = pcall(function() g() end)
                 return a.err, b.err",
            )
            .eval()
            .unwrap();
        assert_eq!(errs, ("ERR x".to_string(), "ERR y".to_string()));
    }

    #[test]
    fn around_keeps_its_protocol() {
        // `false, message [, narg]` as the commands crate answers it.
        let lua = Lua::new();
        let inner = lua
            .create_function(|lua, n: Option<i64>| match n {
                Some(n) => (false, "interval is empty", n).into_lua_multi(lua),
                None => (false, "wrong number of arguments").into_lua_multi(lua),
            })
            .unwrap();
        let t = lua.create_table().unwrap();
        t.set("random", around(&lua, inner).unwrap()).unwrap();
        lua.globals().set("math", t).unwrap();
        let msgs: Vec<String> = lua
            .load(
                "local a = select(2, pcall(function() math.random(2) end))
                 local b = select(2, pcall(function() math.random() end))
                 return {a, b}",
            )
            .set_name("@user_script")
            .eval()
            .unwrap();
        assert_eq!(
            msgs,
            [
                "user_script:1: bad argument #2 to 'random' (interval is empty)",
                "user_script:2: wrong number of arguments",
            ]
        );
    }

    #[test]
    fn multivalue_results_and_mlua_errors_pass_through() {
        let lua = Lua::new();
        let ok = function(&lua, |_, args| Ok::<_, Raise>(args)).unwrap();
        lua.globals().set("f", ok).unwrap();
        let n: (i64, Option<i64>, i64) = lua.load("return f(1, nil, 3)").eval().unwrap();
        assert_eq!(n, (1, None, 3));
        let nothing: MultiValue = lua.load("return f()").eval().unwrap();
        assert!(nothing.is_empty());
        let bad = function(&lua, |_, _| -> Result<MultiValue, Raise> {
            Err(Raise::Lua(mlua::Error::runtime("inner")))
        })
        .unwrap();
        lua.globals().set("g", bad).unwrap();
        let err = lua.load("g()").exec().unwrap_err();
        assert!(err.to_string().contains("inner"), "{err}");
    }

    #[test]
    fn argument_checks() {
        let lua = Lua::new();
        let s = |v: &str| Value::String(lua.create_string(v).unwrap());
        let int = |v: Value| check_int(&lua, Some(&v), 1).ok();
        assert_eq!(int(Value::Number(-2.9)), Some(-2));
        assert_eq!(int(s(" 0x10 ")), Some(16));
        assert_eq!(int(s("1e3")), Some(1000));
        // (int)(lua_Integer)1e300: INT64_MIN, whose low 32 bits are 0.
        assert_eq!(int(Value::Number(1e300)), Some(0));
        assert_eq!(int(Value::Number(4_294_967_297.0)), Some(1));
        let msg = |r: Raise| match r {
            Raise::Arg(n, m) => (n, String::from_utf8(m).unwrap()),
            other => panic!("{other:?}"),
        };
        let e = check_int(&lua, Some(&s("1x")), 2).unwrap_err();
        assert_eq!(msg(e), (2, "number expected, got string".to_string()));
        let e = check_int(&lua, None, 1).unwrap_err();
        assert_eq!(msg(e), (1, "number expected, got no value".to_string()));
        let e = check_lstring(&lua, Some(&Value::Boolean(true)), 1).unwrap_err();
        assert_eq!(msg(e), (1, "string expected, got boolean".to_string()));
        let got = check_lstring(&lua, Some(&Value::Number(0.1)), 1).unwrap();
        assert_eq!(got.to_str().unwrap(), "0.1");
        let args = MultiValue::from_iter([Value::Nil, Value::Integer(7)]);
        assert_eq!(opt_integer(&lua, arg(&args, 1), 1, 5).unwrap(), 5);
        assert_eq!(opt_integer(&lua, arg(&args, 2), 2, 5).unwrap(), 7);
        assert_eq!(opt_integer(&lua, arg(&args, 3), 3, 5).unwrap(), 5);
        assert!(arg(&args, 0).is_none());
    }
}
