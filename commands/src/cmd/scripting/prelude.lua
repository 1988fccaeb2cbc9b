-- The Lua side of the script sandbox (see sandbox.rs), run once per interpreter with the
-- real globals table and the Rust helpers. Chunk name "=[ferrite]": the error handler skips
-- frames of this chunk, so errors raised here point at the user's line, as Redis's C
-- functions do. `register` (redis.register_function) is given to the function engine's
-- interpreter only (Redis's `luaEngineInitEngine`), whose globals differ from EVAL's a little.
local G, mkerr, errtext, register = ...
local functions = register ~= nil

local raw_error, raw_type, raw_select, raw_tostring = error, type, select, tostring
local raw_rawget, raw_rawset, raw_setmetatable = rawget, rawset, setmetatable
local raw_next, raw_pairs = next, pairs
local raw_pcall, raw_loadstring, raw_load, raw_setfenv = pcall, loadstring, load, setfenv

-- Tables a script may not change: Redis 7.0 makes the globals and every library table
-- read-only (its patched Lua's lua_enablereadonlytable); here they are proxies whose writes fail.
-- Each proxy maps to the table it shows, so that iteration and raw reads see its contents.
local readonly = raw_setmetatable({}, { __mode = "k" })
local function readonly_error()
    raw_error("Attempt to modify a readonly table", 2)
end

local function protect(real)
    -- `__readonly` lets the Rust libraries (cjson, cmsgpack) walk the real table.
    local proxy = raw_setmetatable({}, { __index = real, __newindex = readonly_error, __readonly = real })
    readonly[proxy] = real
    return proxy
end

-- redis.*: errors are tables {err = "CODE message"}. The functions that raise them (call,
-- sha1hex, log, setresp, ...) are Rust, as Redis's are C: a script's `return redis.call(...)`
-- is then no tail call that would hide the script's line from the error handler.
local redis = G.redis

local function one_string(...)
    return raw_select("#", ...) == 1 and raw_type((...)) == "string"
end

function redis.error_reply(...)
    if not one_string(...) then
        return mkerr("wrong number or type of arguments")
    end
    local e = ...
    if e:sub(1, 1) ~= "-" then
        e = "-" .. e
    end
    return mkerr(e)
end

function redis.status_reply(...)
    if not one_string(...) then
        return mkerr("wrong number or type of arguments")
    end
    return { ok = (...) }
end

if not functions then
    function redis.replicate_commands()
        return true
    end

    function redis.breakpoint()
        return false
    end

    function redis.debug() end
end

redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3

-- pcall hands back an error table's message, as Redis 7.0's does, and the text of an error
-- raised by a Rust library function.
local function caught(ok, ...)
    if ok then
        return ok, ...
    end
    local e = ...
    if raw_type(e) == "userdata" then
        e = errtext(e)
    end
    if raw_type(e) == "table" then
        local m = e.err
        if raw_type(m) == "string" or raw_type(m) == "number" then
            e = m
        end
    end
    return false, e
end

G.pcall = function(...)
    return caught(raw_pcall(...))
end

-- Redis's `luaProtectedTableError`: reading a missing name of a protected table.
local function missing(k)
    if raw_type(k) ~= "string" and raw_type(k) ~= "number" then
        raw_error("Second argument to luaProtectedTableError must be a string or number", 3)
    end
    raw_error("Script attempted to access nonexistent global variable '" .. k .. "'", 3)
end

-- The sandbox environment: reading a missing global is an error, writing any is. While a
-- function library loads, its names come from `source` = the library API instead (Redis swaps
-- the globals' `__index` the same way), so the functions it registers see the real globals
-- when they run.
local source = G
local env = {}
local env_meta = {
    __index = function(_, k)
        local v = raw_rawget(source, k)
        if v == nil then
            missing(k)
        end
        return v
    end,
    __newindex = readonly_error,
    __readonly = G,
}
raw_setmetatable(env, env_meta)
readonly[env] = G

-- Code compiled at run time runs in the sandbox too, and only from source text: Redis's Lua
-- parses every chunk as text, so bytecode fails as text would.
G.loadstring = function(s, name)
    if raw_type(s) == "string" and s:byte(1) == 27 then
        return raw_loadstring(" " .. s, name or s)
    end
    local f, e = raw_loadstring(s, name)
    if f then
        raw_setfenv(f, env)
    end
    return f, e
end

G.load = function(reader, name)
    local f, e = raw_load(reader, name)
    if f then
        raw_setfenv(f, env)
    end
    return f, e
end

-- Raised inside a C function in Redis, so with no position.
G.rawset = function(t, k, v)
    if readonly[t] then
        raw_error("Attempt to modify a readonly table", 0)
    end
    return raw_rawset(t, k, v)
end

G.rawget = function(t, k)
    return raw_rawget(readonly[t] or t, k)
end

G.next = function(t, k)
    return raw_next(readonly[t] or t, k)
end

G.pairs = function(t)
    local real = readonly[t]
    if real then
        return raw_next, real, nil
    end
    return raw_pairs(t)
end

G.setmetatable = function(t, m)
    if readonly[t] then
        raw_error("Attempt to modify a readonly table", 0)
    end
    return raw_setmetatable(t, m)
end

for _, name in ipairs({ "string", "math", "table", "coroutine", "redis", "cjson", "bit", "struct", "cmsgpack" }) do
    raw_rawset(G, name, protect(raw_rawget(G, name)))
end
raw_rawset(G, "_G", env)

-- Runs a compiled script under the error handler: (true, result) or (false, error table).
local xpcall, handler = xpcall, G.__redis__err__handler
local function run(f)
    return xpcall(f, handler)
end

if not functions then
    return env, run
end

-- The library API, the only global a library sees while it loads (`LIBRARY_API_NAME`): a
-- `redis` table whose missing names are errors too.
local lib_redis = {
    register_function = register,
    log = redis.log,
    REDIS_VERSION = redis.REDIS_VERSION,
    REDIS_VERSION_NUM = redis.REDIS_VERSION_NUM,
}
lib_redis.LOG_DEBUG, lib_redis.LOG_VERBOSE = redis.LOG_DEBUG, redis.LOG_VERBOSE
lib_redis.LOG_NOTICE, lib_redis.LOG_WARNING = redis.LOG_NOTICE, redis.LOG_WARNING
local lib_api = {
    redis = raw_setmetatable({}, {
        __index = function(_, k)
            local v = raw_rawget(lib_redis, k)
            if v == nil then
                missing(k)
            end
            return v
        end,
        __newindex = readonly_error,
    }),
}

-- A function runs with its keys and arguments as parameters; xpcall passes none in Lua 5.1.
local cur_f, cur_keys, cur_args
local function call_current()
    return cur_f(cur_keys, cur_args)
end
local function run_function(f, keys, args)
    cur_f, cur_keys, cur_args = f, keys, args
    local ok, res = xpcall(call_current, handler)
    cur_f, cur_keys, cur_args = nil, nil, nil
    return ok, res
end

-- Runs a library's body with the library API as its globals: (true) or (false, what it
-- raised), with no error handler, as `luaEngineCreate` runs it.
local function load_library(f)
    source = lib_api
    local ok, err = raw_pcall(f)
    source = G
    return ok, err
end

return env, run_function, load_library
