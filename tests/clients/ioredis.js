// Drives ioredis against the server on argv[2] (port) through the library's own API: its
// ready check (INFO), reply transformers (HGETALL to objects), pipelines, MULTI/EXEC, WATCH,
// pub/sub on a second connection, scanStream and binary Buffers. Prints one line per step (the
// step and a JSON rendering of the result or of the error) so that the output from Ferrite can
// be compared byte for byte with the output from redis-server (tests/client_libraries.rs).
"use strict";
const Redis = require("ioredis");

const port = Number(process.argv[2]);
const options = { port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0 };
const r = new Redis(options);

function show(value) {
  return JSON.stringify(value, (_k, v) => {
    if (v && v.type === "Buffer" && Array.isArray(v.data)) return "buf:" + Buffer.from(v.data).toString("hex");
    if (v instanceof Error) return "error:" + v.message;
    return v;
  });
}

async function step(name, f) {
  let out;
  try {
    out = show(await f());
  } catch (e) {
    out = "raised " + e.constructor.name + ": " + e.message;
  }
  process.stdout.write(name + " " + out + "\n");
}

function collect(stream) {
  return new Promise((resolve, reject) => {
    const keys = [];
    stream.on("data", (batch) => keys.push(...batch));
    stream.on("end", () => resolve(keys.sort()));
    stream.on("error", reject);
  });
}

async function main() {
  await r.connect();
  await r.flushall();
  await step("ping", () => r.ping());
  await step("status", () => r.status);
  await step("client setname", () => r.client("SETNAME", "io"));
  await step("client getname", () => r.client("GETNAME"));
  await step("info parsed", async () => (await r.info("server")).includes("redis_version:7.0.15"));
  await step("unknown", () => r.call("NOSUCH", "x"));
  await step("set px", () => r.set("s", "v", "PX", 100000));
  await step("get", () => r.get("s"));
  await step("getBuffer", () => r.getBuffer("s"));
  await step("set buffer", () => r.set("bin", Buffer.from([0, 255, 13, 10])));
  await step("get buffer", () => r.getBuffer("bin"));
  await step("ttl", () => r.ttl("s"));
  await step("mset object", () => r.mset({ a: "1", b: "2" }));
  await step("mget", () => r.mget("a", "b", "c"));
  await step("incr", () => r.incr("a"));
  await step("incrbyfloat", () => r.incrbyfloat("b", 1.5));
  await step("incr wrongtype", () => r.incr("s"));
  await step("hset object", () => r.hset("h", { f1: "1", f2: "2" }));
  await step("hgetall object", () => r.hgetall("h"));
  await step("hgetall missing", () => r.hgetall("nope"));
  await step("hincrby", () => r.hincrby("h", "f1", 41));
  await step("rpush", () => r.rpush("l", "x", "y", "z"));
  await step("lrange", () => r.lrange("l", 0, -1));
  await step("brpop", () => r.brpop("l", 1));
  await step("blpop timeout", () => r.blpop("none", 0.1));
  await step("sadd", () => r.sadd("set", "a", "b"));
  await step("smembers", async () => (await r.smembers("set")).sort());
  await step("zadd", () => r.zadd("z", 1, "a", 2, "b", 3, "c"));
  await step("zrange withscores", () => r.zrange("z", 0, -1, "WITHSCORES"));
  await step("zrangebyscore limit", () => r.zrangebyscore("z", "(1", "+inf", "LIMIT", 0, 1));
  await step("hget wrongtype", () => r.hget("z", "f"));
  await step("expire", () => r.expire("a", 100));
  await step("type", () => r.type("z"));
  await step("exists", () => r.exists("a", "b", "zz"));
  await step("scanStream", () => collect(r.scanStream({ match: "*", count: 2 })));
  await step("hscanStream", () => collect(r.hscanStream("h")));
  await step("pipeline", () => r.pipeline().set("p", "1").incr("p").incr("s").get("p").exec());
  await step("multi", () => r.multi().incr("p").lpush("pl", "v").exec());
  await step("multi error", () => r.multi().set("q", "x").incr("q").exec());
  await step("multi queue error", () => r.multi().set("q", "x").call("GET").exec());
  await step("watch abort", async () => {
    const w = new Redis(options);
    await w.connect();
    await w.watch("p");
    await r.set("p", "10");
    const res = await w.multi().set("p", "0").exec();
    w.disconnect();
    return res;
  });
  await step("watch ok", async () => {
    await r.watch("p");
    return r.multi().incr("p").exec();
  });
  await step("eval", () => r.eval("return {KEYS[1], ARGV[1], redis.call('set', KEYS[1], ARGV[1])}", 1, "ek", "ev"));
  await step("eval error", () => r.eval("return redis.call('incr', KEYS[1])", 1, "ek"));
  await step("defineCommand", async () => {
    r.defineCommand("incrTwice", {
      numberOfKeys: 1,
      lua: "redis.call('incr', KEYS[1]) return redis.call('incr', KEYS[1])",
    });
    await r.script("FLUSH");
    return [await r.incrTwice("dc"), await r.incrTwice("dc")];
  });
  await step("pubsub", async () => {
    const sub = new Redis(options);
    await sub.connect();
    const got = [];
    const done = new Promise((resolve) => {
      sub.on("message", (ch, msg) => got.push(["message", ch, msg]));
      sub.on("pmessage", (pat, ch, msg) => {
        got.push(["pmessage", pat, ch, msg]);
        resolve();
      });
    });
    got.push(["subscribe", await sub.subscribe("news")]);
    got.push(["psubscribe", await sub.psubscribe("ne*")]);
    // The publisher's reply and the subscriber's messages come over different sockets, so
    // their relative order is not the server's to give: wait for both, then report.
    const published = await r.publish("news", "hi");
    await done;
    got.push(["publish", published]);
    got.push(["unsubscribe", await sub.unsubscribe("news")]);
    sub.disconnect();
    return got;
  });
  await step("dbsize", () => r.dbsize());
  await step("flushdb", () => r.flushdb());
  r.disconnect();
}

main().catch((e) => {
  process.stdout.write("fatal " + e.message + "\n");
  process.exit(1);
});
