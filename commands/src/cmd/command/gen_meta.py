#!/usr/bin/env python3
"""Regenerates redis_meta.resp3: the parts of Redis 7.0.15's COMMAND INFO / COMMAND DOCS that
Ferrite's command table does not carry (tips, key specs, movablekeys, argument docs, history).

Usage: start `redis-server --port 7000 --save '' --appendonly no` (7.0.15), then
    python3 gen_meta.py 7000 > redis_meta.resp3
The output is one RESP3 map: full name (`get`, `client|list`) -> [tips, key_specs, movable, docs],
where docs is COMMAND DOCS' map without summary, since, group, complexity and subcommands (those
come from Ferrite's table).
"""
import socket
import sys


def enc_cmd(args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def parse(f):
    line = f.readline()
    t, rest = line[:1], line[1:-2]
    if t in (b"+", b"-"):
        return (t, rest)
    if t == b":":
        return (t, int(rest))
    if t == b"$":
        n = int(rest)
        data = f.read(n + 2)[:-2]
        return (t, data)
    if t == b"_":
        return (t, None)
    if t in (b"*", b"~"):
        return (t, [parse(f) for _ in range(int(rest))])
    if t == b"%":
        return (t, [(parse(f), parse(f)) for _ in range(int(rest))])
    raise ValueError(line)


def ser(v):
    t, x = v
    if t in (b"+", b"-"):
        return t + x + b"\r\n"
    if t == b":":
        return b":%d\r\n" % x
    if t == b"$":
        return b"$%d\r\n%s\r\n" % (len(x), x)
    if t == b"_":
        return b"_\r\n"
    if t in (b"*", b"~"):
        return t + b"%d\r\n" % len(x) + b"".join(ser(e) for e in x)
    if t == b"%":
        return b"%%%d\r\n" % len(x) + b"".join(ser(k) + ser(e) for k, e in x)
    raise ValueError(t)


def main():
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    f = s.makefile("rb")
    s.sendall(enc_cmd(["HELLO", "3"]))
    parse(f)
    s.sendall(enc_cmd(["COMMAND"]))
    info = parse(f)
    s.sendall(enc_cmd(["COMMAND", "DOCS"]))
    docs = parse(f)

    meta = {}

    def walk_info(entry):
        items = entry[1]
        name = items[0][1].decode()
        flags = [e[1] for e in items[2][1]]
        meta[name] = [items[7], items[8], (b":", 1 if b"movablekeys" in flags else 0), None]
        for sub in items[9][1]:
            walk_info(sub)

    for e in info[1]:
        walk_info(e)

    skip = {b"summary", b"since", b"group", b"complexity", b"subcommands"}

    def walk_docs(name, m):
        extra = [(k, v) for k, v in m[1] if k[1] not in skip]
        if name in meta:
            meta[name][3] = (b"%", extra)
        for k, v in m[1]:
            if k[1] == b"subcommands":
                for sk, sv in v[1]:
                    walk_docs(sk[1].decode(), sv)

    for k, v in docs[1]:
        walk_docs(k[1].decode(), v)

    out = []
    for name in sorted(meta):
        tips, specs, movable, extra = meta[name]
        out.append(((b"$", name.encode()), (b"*", [tips, specs, movable, extra or (b"%", [])])))
    sys.stdout.buffer.write(ser((b"%", out)))


main()
