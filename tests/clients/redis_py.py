"""Drives redis-py against the server on argv[1] (port) with RESP argv[2] (2 or 3) through the
library's own API: connection set-up (HELLO, CLIENT SETINFO), replies parsed into Python types,
pipelines, WATCH/MULTI/EXEC, pub/sub, SCAN iterators. Prints one line per step (the step and
the repr of what the library returned, or of the exception it raised) so that the output from
Ferrite can be compared byte for byte with the output from redis-server
(tests/client_libraries.rs). Values that legitimately differ between servers (ids, addresses,
timings) are reduced to their type or shape."""

import sys

import redis

port, proto = int(sys.argv[1]), int(sys.argv[2])
r = redis.Redis(port=port, protocol=proto, decode_responses=True)
rb = redis.Redis(port=port, protocol=proto)


def step(name, f):
    try:
        out = repr(f())
    except Exception as e:  # the library's error for a server error reply is part of the output
        out = "raised " + type(e).__name__ + ": " + str(e)
    print(name, out, flush=True)


def sorted_keys(d):
    return sorted(d.keys())


r.flushall()
# Connection and server.
step("ping", r.ping)
step("echo", lambda: r.echo("hé"))
step("hello proto", lambda: r.execute_command("HELLO", proto)["proto"] if proto == 3 else proto)
step("client id type", lambda: type(r.client_id()).__name__)
step("client setname", lambda: r.client_setname("compat"))
step("client getname", r.client_getname)
step("client list fields", lambda: sorted_keys(r.client_list()[0])[:8])
step("client info name", lambda: r.client_info()["name"])
step("info server version", lambda: r.info("server")["redis_version"])
step("info keyspace empty", lambda: r.info("keyspace"))
step("config get", lambda: r.config_get("maxmemory-policy"))
step("config set", lambda: r.config_set("maxmemory-policy", "noeviction"))
step("time shape", lambda: [type(x).__name__ for x in r.time()])
step("select", lambda: r.select(0))
step("unknown command", lambda: r.execute_command("NOSUCHCOMMAND", "x"))
step("wrong arity", lambda: r.execute_command("GET"))

# Strings.
step("set ex", lambda: r.set("s", "v", ex=100))
step("get", lambda: r.get("s"))
step("ttl", lambda: r.ttl("s"))
step("set nx", lambda: r.set("s", "w", nx=True))
step("set get", lambda: r.set("s", "w", get=True))
step("getex persist", lambda: r.getex("s", persist=True))
step("ttl persisted", lambda: r.ttl("s"))
step("mset", lambda: r.mset({"m1": "1", "m2": "2"}))
step("mget", lambda: r.mget("m1", "m2", "missing"))
step("incr", lambda: r.incr("m1"))
step("incrby", lambda: r.incrby("m1", 10))
step("incrbyfloat", lambda: r.incrbyfloat("m2", 0.5))
step("incr wrong", lambda: r.incr("s"))
step("append", lambda: r.append("s", "xyz"))
step("getrange", lambda: r.getrange("s", 1, -1))
step("strlen", lambda: r.strlen("s"))
step("setrange", lambda: r.setrange("s", 10, "!"))
step("get binary", lambda: rb.get("s"))
step("lcs", lambda: r.lcs("m1", "m2"))
step("setbit", lambda: r.setbit("b", 7, 1))
step("bitcount", lambda: r.bitcount("b"))
step("bitpos", lambda: r.bitpos("b", 1))
step("bitfield", lambda: r.bitfield("bf").set("u8", 0, 255).incrby("u8", 0, 10).get("u8", 0).execute())
step("getdel", lambda: r.getdel("m2"))

# Keys.
step("exists", lambda: r.exists("s", "m1", "nope"))
step("type", lambda: r.type("s"))
step("expire", lambda: r.expire("m1", 50))
step("expire gt", lambda: r.expire("m1", 10, gt=True))
step("pttl range", lambda: 49000 < r.pttl("m1") <= 50000)
step("persist", lambda: r.persist("m1"))
step("expiretime", lambda: r.expiretime("m1"))
step("rename", lambda: r.rename("m1", "m3"))
step("renamenx", lambda: r.renamenx("m3", "s"))
step("copy", lambda: r.copy("m3", "m4"))
step("touch", lambda: r.touch("m3", "m4", "none"))
step("object encoding", lambda: r.object("encoding", "m3"))
step("dump restore", lambda: r.restore("m5", 0, rb.dump("m3")))
step("get restored", lambda: r.get("m5"))
step("unlink", lambda: r.unlink("m4", "m5"))
step("keys", lambda: sorted(r.keys("*")))
step("scan_iter", lambda: sorted(r.scan_iter(match="m*", count=2)))
step("randomkey in keys", lambda: r.randomkey() in r.keys("*"))
step("dbsize", r.dbsize)

# Hashes.
step("hset", lambda: r.hset("h", mapping={"f1": "1", "f2": "two", "f3": "3.5"}))
step("hget", lambda: r.hget("h", "f2"))
step("hmget", lambda: r.hmget("h", ["f1", "nope"]))
step("hgetall", lambda: r.hgetall("h"))
step("hincrby", lambda: r.hincrby("h", "f1", 5))
step("hincrbyfloat", lambda: r.hincrbyfloat("h", "f3", 1.25))
step("hkeys", lambda: sorted(r.hkeys("h")))
step("hlen", lambda: r.hlen("h"))
step("hexists", lambda: r.hexists("h", "f1"))
step("hdel", lambda: r.hdel("h", "f2", "zz"))
step("hrandfield count", lambda: len(r.hrandfield("h", 5, withvalues=True)))
step("hscan_iter", lambda: sorted(r.hscan_iter("h")))
step("hget wrongtype", lambda: r.hget("s", "f"))

# Lists.
step("rpush", lambda: r.rpush("l", "a", "b", "c", "b"))
step("lpush", lambda: r.lpush("l", "z"))
step("lrange", lambda: r.lrange("l", 0, -1))
step("lpos", lambda: r.lpos("l", "b", rank=-1))
step("linsert", lambda: r.linsert("l", "before", "c", "bb"))
step("lindex", lambda: r.lindex("l", -1))
step("lset", lambda: r.lset("l", 0, "y"))
step("lrem", lambda: r.lrem("l", 0, "b"))
step("lpop count", lambda: r.lpop("l", 2))
step("rpop", lambda: r.rpop("l"))
step("lmove", lambda: r.lmove("l", "l2", "LEFT", "RIGHT"))
step("blpop ready", lambda: r.blpop(["l", "l2"], timeout=1))
step("blpop timeout", lambda: r.blpop(["empty"], timeout=0.1))
step("lmpop", lambda: r.lmpop(2, "nol", "l2", direction="LEFT", count=3))
step("llen", lambda: r.llen("l"))

# Sets.
step("sadd", lambda: r.sadd("set1", "a", "b", "c"))
step("sadd2", lambda: r.sadd("set2", "b", "c", "d"))
step("smembers", lambda: sorted(r.smembers("set1")))
step("sismember", lambda: r.sismember("set1", "a"))
step("smismember", lambda: r.smismember("set1", ["a", "x"]))
step("sinter", lambda: sorted(r.sinter("set1", "set2")))
step("sunion", lambda: sorted(r.sunion("set1", "set2")))
step("sdiff", lambda: sorted(r.sdiff("set1", "set2")))
step("sintercard", lambda: r.sintercard(2, ["set1", "set2"]))
step("sunionstore", lambda: r.sunionstore("set3", ["set1", "set2"]))
step("srem", lambda: r.srem("set3", "a", "nope"))
step("smove", lambda: r.smove("set1", "set2", "a"))
step("scard", lambda: r.scard("set2"))
step("spop count", lambda: len(r.spop("set3", 2)))
step("srandmember", lambda: len(r.srandmember("set2", -5)))
step("sscan_iter", lambda: sorted(r.sscan_iter("set2")))

# Sorted sets.
step("zadd", lambda: r.zadd("z", {"a": 1, "b": 2.5, "c": 3}))
step("zadd incr", lambda: r.zadd("z", {"a": 2}, incr=True))
step("zadd gt ch", lambda: r.zadd("z", {"b": 1, "c": 4}, gt=True, ch=True))
step("zrange withscores", lambda: r.zrange("z", 0, -1, withscores=True))
step("zrange byscore rev limit", lambda: r.zrange("z", "+inf", "(1", desc=True, byscore=True, offset=0, num=2, withscores=True))
step("zrangebylex", lambda: r.zrangebylex("z", "-", "[b"))
step("zscore", lambda: r.zscore("z", "c"))
step("zmscore", lambda: r.zmscore("z", ["a", "nope"]))
step("zrank", lambda: r.zrank("z", "c"))
step("zrevrank", lambda: r.zrevrank("z", "c"))
step("zincrby", lambda: r.zincrby("z", -0.5, "a"))
step("zcount", lambda: r.zcount("z", 1, 3))
step("zpopmin", lambda: r.zpopmin("z"))
step("zpopmax count", lambda: r.zpopmax("z", 5))
step("zadd again", lambda: r.zadd("z", {"x": 1, "y": 2, "w": 3}))
step("zunionstore", lambda: r.zunionstore("zu", {"z": 2, "zz": 1}, aggregate="MAX"))
step("zinter withscores", lambda: r.zinter(["z", "zu"], withscores=True))
step("zrangestore", lambda: r.zrangestore("zr", "z", 0, 1))
step("zremrangebyscore", lambda: r.zremrangebyscore("z", "-inf", 1))
step("bzpopmin", lambda: r.bzpopmin(["nozz", "z"], timeout=1))
step("zmpop", lambda: r.zmpop(1, ["z"], max=True))
step("zscan_iter", lambda: sorted(r.zscan_iter("zu")))
step("zrandmember", lambda: len(r.zrandmember("zu", 2, withscores=True)))

# HyperLogLog, geo, sort.
step("pfadd", lambda: r.pfadd("hll", *[str(i) for i in range(100)]))
step("pfcount", lambda: r.pfcount("hll"))
step("pfmerge", lambda: r.pfmerge("hll2", "hll"))
step("geoadd", lambda: r.geoadd("g", (13.361389, 38.115556, "Palermo", 15.087269, 37.502669, "Catania")))
step("geodist", lambda: r.geodist("g", "Palermo", "Catania", unit="km"))
step("geopos", lambda: r.geopos("g", "Palermo"))
step("geohash", lambda: r.geohash("g", "Palermo", "Catania"))
step("geosearch", lambda: r.geosearch("g", longitude=15, latitude=37, radius=200, unit="km", withdist=True, sort="ASC"))
step("rpush nums", lambda: r.rpush("nums", 3, 1, 2))
step("sort", lambda: r.sort("nums"))
step("sort desc alpha limit", lambda: r.sort("nums", start=0, num=2, desc=True, alpha=True))
step("sort store", lambda: r.sort("nums", store="sorted"))

# Pipelines and transactions.
step("pipeline", lambda: r.pipeline(transaction=False).set("p", 1).incr("p").get("p").execute())
step("multi exec", lambda: r.pipeline(transaction=True).incr("p").lpush("pl", "x").execute())
step("pipeline with error", lambda: r.pipeline(transaction=False).set("q", "x").incr("q").get("q").execute(raise_on_error=False))
step("exec with error", lambda: r.pipeline(transaction=True).set("q", "x").incr("q").get("q").execute(raise_on_error=False))


def watch_ok():
    with r.pipeline() as p:
        p.watch("p")
        value = int(p.get("p"))
        p.multi()
        p.set("p", value + 1)
        return p.execute()


def watch_aborted():
    with r.pipeline() as p:
        p.watch("p")
        r.set("p", 100)
        p.multi()
        p.set("p", 0)
        return p.execute()


step("watch ok", watch_ok)
step("watch aborted", watch_aborted)
step("transaction helper", lambda: r.transaction(lambda p: p.multi() or p.incr("p"), "p"))

# Scripting: EVAL, EVALSHA through register_script (NOSCRIPT then load), and redis-py's Lock,
# which acquires with SET NX and releases and extends with Lua scripts.
step("eval", lambda: r.eval("return {KEYS[1], ARGV[1], 3, redis.call('set', KEYS[1], ARGV[1])}", 1, "ek", "ev"))
step("eval error", lambda: r.eval("return redis.call('incr', KEYS[1])", 1, "ek"))
step("eval resp3 types", lambda: r.eval("redis.setresp(3) return {redis.call('hgetall', 'nohash'), {double = 1.5}, true}", 0))
counter = r.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
step("script flush", lambda: r.script_flush())
step("registered script loads itself", lambda: counter(keys=["ctr"], args=[5]))
step("registered script by sha", lambda: counter(keys=["ctr"], args=[2]))
step("script exists", lambda: r.script_exists(counter.sha, "0" * 40))
step("script load", lambda: r.script_load("return 'loaded'"))
step("evalsha", lambda: r.evalsha(r.script_load("return ARGV[1]"), 0, "arg"))


def lock_cycle():
    lock = r.lock("resource", timeout=30)
    got = [lock.acquire(blocking=False)]
    got.append(r.lock("resource", timeout=30).acquire(blocking=False))
    got.append(lock.owned())
    got.append(lock.extend(10))
    got.append(0 < r.pttl("resource") <= 40000)
    lock.release()
    got.append(r.exists("resource"))
    return got


step("lock", lock_cycle)

# Functions: redis-py's function_* and fcall helpers. (One function per library: Redis lists a
# library's functions in its hash table's order.)
LIB = "#!lua name=pylib\nredis.register_function('pyset', function(keys, args) return redis.call('set', keys[1], args[1]) end)"
LIB2 = "#!lua name=pylib2\nredis.register_function{function_name='pyget', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads'}"
step("function flush", lambda: r.function_flush())
step("function load", lambda: r.function_load(LIB))
step("function load again", lambda: r.function_load(LIB))
step("function load replace", lambda: r.function_load(LIB, replace=True))
step("function load second", lambda: r.function_load(LIB2))
step("fcall", lambda: r.fcall("pyset", 1, "fk", "fv"))
step("fcall_ro", lambda: r.fcall_ro("pyget", 1, "fk"))
step("fcall_ro refused", lambda: r.fcall_ro("pyset", 1, "fk", "x"))
step("function list", lambda: r.function_list(library="pylib2", withcode=True))
step("function stats", lambda: r.function_stats())
step("function restore", lambda: r.function_restore(r.function_dump(), "REPLACE"))
step("function delete", lambda: r.function_delete("pylib"))
step("fcall missing", lambda: r.fcall("pyset", 1, "fk", "fv"))
step("function flush async", lambda: r.function_flush("ASYNC"))

# Pub/sub.
ps = r.pubsub()
step("subscribe", lambda: ps.subscribe("news"))
step("psubscribe", lambda: ps.psubscribe("n*"))
step("subscribe msg", lambda: ps.get_message(timeout=2))
step("psubscribe msg", lambda: ps.get_message(timeout=2))
step("publish", lambda: r.publish("news", "hello"))
step("message", lambda: ps.get_message(timeout=2))
step("pmessage", lambda: ps.get_message(timeout=2))
step("pubsub numsub", lambda: r.pubsub_numsub("news"))
step("pubsub channels", lambda: r.pubsub_channels())
step("unsubscribe", lambda: ps.unsubscribe("news"))
step("unsubscribe msg", lambda: ps.get_message(timeout=2))
ps.close()

# Sharded pub/sub (a standalone server's second namespace).
sps = r.pubsub()
step("ssubscribe", lambda: sps.ssubscribe("shard"))
step("ssubscribe msg", lambda: sps.get_sharded_message(timeout=2))
step("spublish", lambda: r.spublish("shard", "sharded hello"))
step("publish to the same name", lambda: r.publish("shard", "plain"))
step("smessage", lambda: sps.get_sharded_message(timeout=2))
step("pubsub shardnumsub", lambda: r.pubsub_shardnumsub("shard"))
step("pubsub shardchannels", lambda: r.pubsub_shardchannels())
step("sunsubscribe", lambda: sps.sunsubscribe("shard"))
step("sunsubscribe msg", lambda: sps.get_sharded_message(timeout=2))
sps.close()

# Keyspace at the end, through INFO parsing.
step("info keyspace", lambda: r.info("keyspace"))
step("flushdb", r.flushdb)
step("dbsize after", r.dbsize)
