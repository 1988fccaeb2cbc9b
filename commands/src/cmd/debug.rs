//! DEBUG (Redis's `debug.c`): refused unless `enable-debug-command` allows it (`no` by default,
//! as in Redis 7.0; `local` allows loopback clients), then the subcommands that make sense for
//! Ferrite: SLEEP, SET-ACTIVE-EXPIRE, OBJECT, PROTOCOL, ERROR, LOG, POPULATE, DIGEST,
//! DIGEST-VALUE and RELOAD. The ones that crash the server on purpose (SEGFAULT, PANIC, ASSERT,
//! OOM, CRASH-AND-RECOVER, RESTART), or inspect Redis's own structures (SDSLEN, LISTPACK,
//! QUICKLIST, HTSTATS, STRUCTSIZE, MALLCTL, ...), answer the unknown-subcommand error.
//!
//! DEBUG is `EXCLUSIVE`: SLEEP stops every thread, as it stops Redis, and DIGEST, POPULATE
//! and RELOAD see or change the whole dataset at once.

use ferrite_hybridlog::{NO_EXPIRY, Value, ValueKind, Write};
use ferrite_scripting::sha1::sha1;

use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::cmd::config_cmd::reply_help;
use crate::ctx::Ctx;
use crate::objects::Collection;
use crate::table::{CommandSpec, flags::*};

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[CommandSpec::new("debug", -2, "server", debug)
    .with_flags(ADMIN | NOSCRIPT | LOADING | STALE | PROTECTED | EXCLUSIVE)
    .with_acl(&["admin", "slow", "dangerous"])
    .with_docs(
        "1.0.0",
        "A container for debugging commands",
        "Depends on subcommand.",
    )];

/// Redis's help lines for the subcommands Ferrite has.
const HELP: &[&str] = &[
    "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DIGEST",
    "    Output a hex signature representing the current DB content.",
    "DIGEST-VALUE <key> [<key> ...]",
    "    Output a hex signature of the values of all the specified keys.",
    "ERROR <string>",
    "    Return a Redis protocol error with <string> as message. Useful for clients",
    "    unit tests to simulate Redis errors.",
    "LOG <message>",
    "    Write <message> to the server log.",
    "OBJECT <key>",
    "    Show low level info about `key` and associated value.",
    "POPULATE <count> [<prefix>] [<size>]",
    "    Create <count> string keys named key:<num>. If <prefix> is specified then",
    "    it is used instead of the 'key' prefix. These are not propagated to",
    "    replicas. Cluster slots are not respected so keys not belonging to the",
    "    current node can be created in cluster mode.",
    "PROTOCOL <type>",
    "    Reply with a test value of the specified type. <type> can be: string,",
    "    integer, double, bignum, null, array, set, map, attrib, push, verbatim,",
    "    true, false.",
    "RELOAD [option ...]",
    "    Save the RDB on disk and reload it back to memory. Valid <option> values:",
    "    * MERGE: conflicting keys will be loaded from RDB.",
    "    * NOFLUSH: the existing database will not be removed before load, but",
    "      conflicting keys will generate an exception and kill the server.",
    "    * NOSAVE: the database will be loaded from an existing RDB file.",
    "    Examples:",
    "    * DEBUG RELOAD: verify that the server is able to persist, flush and reload",
    "      the database.",
    "    * DEBUG RELOAD NOSAVE: replace the current database with the contents of an",
    "      existing RDB file.",
    "    * DEBUG RELOAD NOSAVE NOFLUSH MERGE: add the contents of an existing RDB",
    "      file to the database.",
    "SET-ACTIVE-EXPIRE <0|1>",
    "    Setting it to 0 disables expiring keys in background when they are not",
    "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
    "    default.",
    "SLEEP <seconds>",
    "    Stop the server for <seconds>. Decimals allowed.",
    "HELP",
    "    Prints this help.",
];

fn debug(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let sub = args.get(1).to_ascii_lowercase();
    let n = args.len();
    match (sub.as_slice(), n) {
        (b"help", 2) => reply_help(&mut ctx.reply, HELP),
        (b"sleep", 3) => sleep(ctx, args.get(2)),
        (b"set-active-expire", 3) => {
            let on = atoi(args.get(2)) != 0;
            ctx.server
                .active_expire
                .store(on, std::sync::atomic::Ordering::Relaxed);
            ctx.reply.ok();
        }
        (b"object", 3) => object(ctx, args.get(2)),
        (b"protocol", 3) => protocol(ctx, args.get(2)),
        (b"error", 3) => {
            // Written as is (no error statistics), newlines made spaces, as Redis does.
            let out = ctx.reply.raw();
            out.push(b'-');
            out.extend(args.get(2).iter().map(|&b| match b {
                b'\r' | b'\n' => b' ',
                b => b,
            }));
            out.extend_from_slice(b"\r\n");
        }
        (b"log", 3) => {
            log::warn!("DEBUG LOG: {}", String::from_utf8_lossy(args.get(2)));
            ctx.reply.ok();
        }
        (b"populate", 3..=5) => populate(ctx, args),
        (b"digest", 2) => {
            let d = dataset_digest(ctx);
            ctx.reply.simple(&hex(&d));
        }
        (b"digest-value", _) => {
            ctx.reply.array_len(n - 2);
            for key in args.iter_from(2) {
                let d = value_digest(ctx, key).unwrap_or([0; 20]);
                ctx.reply.simple(&hex(&d));
            }
        }
        (b"reload", _) => reload(ctx, args),
        _ => ctx.subcommand_syntax_error(args),
    }
}

/// C's `atoi`: leading blanks, a sign, digits; anything else ends the number (0 if none).
fn atoi(s: &[u8]) -> i64 {
    let s = s.trim_ascii_start();
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let v = digits
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0i64, |v, &d| {
            v.wrapping_mul(10).wrapping_add(i64::from(d - b'0'))
        });
    if neg { v.wrapping_neg() } else { v }
}

/// C's `strtod` on the longest prefix that is a number (0 if none).
fn strtod(s: &[u8]) -> f64 {
    let s = std::str::from_utf8(s).unwrap_or("").trim_start();
    (1..=s.len())
        .rev()
        .filter(|&i| s.is_char_boundary(i))
        .find_map(|i| s[..i].parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// `DEBUG SLEEP seconds`: the whole server stops (DEBUG runs with every thread held out).
fn sleep(ctx: &mut Ctx<'_>, arg: &[u8]) {
    let micros = (strtod(arg) * 1_000_000.0) as i64;
    if micros > 0 {
        std::thread::sleep(std::time::Duration::from_micros(micros as u64));
    }
    ctx.reply.ok();
}

/// `DEBUG PROTOCOL type`: a sample reply of each RESP type (Redis's values).
fn protocol(ctx: &mut Ctx<'_>, name: &[u8]) {
    let name = name.to_ascii_lowercase();
    let r = &mut ctx.reply;
    match name.as_slice() {
        b"string" => r.bulk(b"Hello World"),
        b"integer" => r.int(12345),
        // Redis's sample value, not pi.
        #[allow(clippy::approx_constant)]
        b"double" => r.double(3.141),
        b"bignum" => r.big_number(b"1234567999999999999999999999999999999"),
        b"null" => r.null(),
        b"array" | b"set" => {
            if name == b"array" {
                r.array_len(3);
            } else {
                r.set_len(3);
            }
            for j in 0..3 {
                r.int(j);
            }
        }
        b"map" => {
            r.map_len(3);
            for j in 0..3 {
                r.int(j);
                r.boolean(j == 1);
            }
        }
        b"attrib" => {
            if r.is_resp3() {
                r.raw().extend_from_slice(b"|1\r\n");
                r.bulk(b"key-popularity");
                r.array_len(2);
                r.bulk(b"key:123");
                r.int(90);
            }
            // An attribute is not a reply: a real one follows it.
            r.bulk(b"Some real reply following the attribute");
        }
        b"push" => {
            if !r.is_resp3() {
                r.error("ERR RESP2 is not supported by this command");
                return;
            }
            r.push_len(2);
            r.bulk(b"server-cpu-usage");
            r.int(42);
            r.bulk(b"Some real reply following the push reply");
        }
        b"true" => r.boolean(true),
        b"false" => r.boolean(false),
        b"verbatim" => r.verbatim("txt", b"This is a verbatim\nstring"),
        _ => r.error(
            "ERR Wrong protocol type name. Please use one of the following: \
             string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false",
        ),
    }
}

/// `DEBUG OBJECT key`: Redis's line (the address is the value's, the sizes are what an RDB
/// file would hold).
fn object(ctx: &mut Ctx<'_>, key: &[u8]) {
    let db = ctx.client.db;
    let found = ctx.store.read_value(db, key, ctx.now_ms, |e| {
        let framing = super::dump::PAYLOAD_FRAMING;
        let len = super::dump::payload(&e.value).map_or(0, |p| p.len() - framing);
        match e.value {
            Value::String(s) => (
                s.as_ptr() as usize,
                super::keys::string_refcount(s),
                super::keys::string_encoding(s),
                len,
                String::new(),
            ),
            Value::Object(o) => {
                let extra = match Collection::of(o) {
                    Some(Collection::List(l))
                        if super::keys::collection_encoding(o) == "quicklist" =>
                    {
                        let nodes = super::dump::quicklist_nodes(l);
                        let bytes: usize = nodes.iter().map(Vec::len).sum();
                        format!(
                            " ql_nodes:{} ql_avg_node:{:.2} ql_listpack_max:-2 ql_compressed:0 \
                         ql_uncompressed_size:{bytes}",
                            nodes.len(),
                            l.len() as f64 / nodes.len().max(1) as f64
                        )
                    }
                    _ => String::new(),
                };
                (
                    std::ptr::from_ref(o).cast::<u8>() as usize,
                    1,
                    super::keys::collection_encoding(o),
                    len,
                    extra,
                )
            }
        }
    });
    let Some((addr, refcount, encoding, len, extra)) = found else {
        ctx.reply.error("ERR no such key");
        return;
    };
    let bits = ctx.store.access_bits(db, key, ctx.now_ms).unwrap_or(0);
    let idle = ctx.store.store().access().idle_seconds(bits);
    ctx.reply.simple(&format!(
        "Value at:0x{addr:x} refcount:{refcount} encoding:{encoding} serializedlength:{len} \
         lru:{bits} lru_seconds_idle:{idle}{extra}"
    ));
}

/// `DEBUG POPULATE count [prefix] [size]`: string keys `prefix:N` (`key:N`) holding `value:N`,
/// or that text zero-padded or cut to `size` bytes; keys that exist are left alone. Not
/// propagated, as in Redis.
fn populate(ctx: &mut Ctx<'_>, args: Args<'_>) {
    // Redis's `getPositiveLongFromObjectOrReply`: one message for "not a number" and "< 0".
    const NOT_POSITIVE: &str = "ERR value is out of range, must be positive";
    let positive = |a: &[u8]| parse_i64(a).filter(|v| *v >= 0);
    let Some(count) = positive(args.get(2)) else {
        return ctx.reply.error(NOT_POSITIVE);
    };
    let size = match args.try_get(4).map(positive) {
        None => 0,
        Some(None) => return ctx.reply.error(NOT_POSITIVE),
        Some(Some(v)) => v as usize,
    };
    // Redis formats into a C string of 128 bytes: the prefix ends at a NUL, the name at 127.
    let prefix = args.try_get(3).unwrap_or(b"key");
    let prefix = &prefix[..prefix.iter().position(|&b| b == 0).unwrap_or(prefix.len())];
    let db = ctx.client.db;
    let mut key = Vec::with_capacity(prefix.len() + 21);
    let mut value = Vec::new();
    for j in 0..count {
        key.clear();
        key.extend_from_slice(prefix);
        key.extend_from_slice(format!(":{j}").as_bytes());
        key.truncate(127);
        let text = format!("value:{j}");
        value.clear();
        if size == 0 {
            value.extend_from_slice(text.as_bytes());
        } else {
            value.resize(size, 0);
            let n = size.min(text.len());
            value[..n].copy_from_slice(&text.as_bytes()[..n]);
        }
        ctx.store.rmw(db, &key, ctx.now_ms, |entry, buf| {
            if entry.is_some() {
                return Write::Keep(());
            }
            buf.clear();
            buf.extend_from_slice(&value);
            Write::Put {
                kind: ValueKind::String,
                expire_at: NO_EXPIRY,
                result: (),
            }
        });
    }
    ctx.reply.ok();
}

/// `DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]`: save the dump (unless NOSAVE), empty the
/// dataset and the function libraries (unless NOFLUSH), and load the dump back; MERGE lets
/// loaded keys and libraries replace existing ones.
fn reload(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let (mut merge, mut flush, mut save) = (false, true, true);
    for opt in args.iter_from(2) {
        if eq_ignore_case(opt, "merge") {
            merge = true;
        } else if eq_ignore_case(opt, "noflush") {
            flush = false;
        } else if eq_ignore_case(opt, "nosave") {
            save = false;
        } else {
            ctx.reply
                .error("ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.");
            return;
        }
    }
    let server = ctx.server;
    if save && !crate::persist::snapshot::save(server, ctx.store) {
        ctx.reply.error("ERR");
        return;
    }
    if flush {
        ctx.store.flush_all();
        server.scripts.functions.flush();
    }
    let name = crate::persist::snapshot::dbfilename(server);
    let loaded = crate::persist::rdb_read::load_file_with(
        std::path::Path::new(&name),
        ctx.store,
        crate::server::unix_ms(),
        merge,
    );
    let ok = match loaded {
        Ok(Some(l)) => match server.scripts.load_libraries_replacing(&l.libraries, merge) {
            Ok(()) => true,
            Err(e) => {
                log::warn!("DEBUG RELOAD: a function library failed to load: {e}");
                false
            }
        },
        Ok(None) => true,
        Err(e) => {
            log::warn!("DEBUG RELOAD: {e}");
            false
        }
    };
    if !ok {
        ctx.reply.error("ERR Error trying to load the RDB dump");
        return;
    }
    log::warn!("DB reloaded by DEBUG RELOAD");
    ctx.reply.ok();
}

/// Lower-case hex of a digest.
fn hex(d: &[u8; 20]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Redis's `xorDigest`: XORs the SHA-1 of `data` into `digest`.
fn xor_digest(digest: &mut [u8; 20], data: &[u8]) {
    for (d, h) in digest.iter_mut().zip(sha1(data)) {
        *d ^= h;
    }
}

/// Redis's `mixDigest`: XORs in the SHA-1 of `data`, then replaces the digest by its own SHA-1,
/// so that the order of mixed items matters.
fn mix_digest(digest: &mut [u8; 20], data: &[u8]) {
    xor_digest(digest, data);
    *digest = sha1(digest);
}

/// The digest of `key`'s value in the client's database (Redis's `xorObjectDigest`), `None`
/// when there is no key.
fn value_digest(ctx: &mut Ctx<'_>, key: &[u8]) -> Option<[u8; 20]> {
    let db = ctx.client.db;
    ctx.store.read_value(db, key, ctx.now_ms, |e| {
        let mut d = [0u8; 20];
        object_digest(&mut d, &e.value, e.kind);
        if e.expire_at != NO_EXPIRY {
            xor_digest(&mut d, b"!!expire!!");
        }
        d
    })
}

/// Mixes a value into `d`, element by element, as Redis does per type: ordered types are
/// mixed, unordered ones XORed, and pairs are digested on their own first.
fn object_digest(d: &mut [u8; 20], value: &Value<'_>, kind: ValueKind) {
    // Redis's OBJ_* type numbers.
    let ty: u32 = match kind {
        ValueKind::String => 0,
        ValueKind::List => 1,
        ValueKind::Set => 2,
        ValueKind::ZSet => 3,
        ValueKind::Hash => 4,
        ValueKind::Stream => 6,
    };
    mix_digest(d, &ty.to_be_bytes());
    let pair = |d: &mut [u8; 20], a: &[u8], b: &[u8]| {
        let mut e = [0u8; 20];
        mix_digest(&mut e, a);
        mix_digest(&mut e, b);
        xor_digest(d, &e);
    };
    match value {
        Value::String(s) => mix_digest(d, s),
        Value::Object(o) => match Collection::of(*o) {
            Some(Collection::List(l)) => l.iter().for_each(|e| mix_digest(d, e)),
            Some(Collection::Set(s)) => s.iter().for_each(|m| xor_digest(d, &m)),
            Some(Collection::ZSet(z)) => {
                for (m, score) in z.iter() {
                    pair(
                        d,
                        m,
                        crate::resp::reply::format_double_g17(score).as_bytes(),
                    );
                }
            }
            Some(Collection::Hash(h)) => h.iter().for_each(|(f, v)| pair(d, f, v)),
            Some(Collection::Stream(s)) => {
                let all = ferrite_collections::StreamId::MIN..=ferrite_collections::StreamId::MAX;
                for entry in s.entries.range(*all.start(), *all.end(), false) {
                    let id = entry.id();
                    mix_digest(d, format!("{}.{}", id.ms, id.seq).as_bytes());
                    for (f, v) in entry.fields() {
                        mix_digest(d, &f.to_vec());
                        mix_digest(d, &v.to_vec());
                    }
                }
            }
            None => {}
        },
    }
}

/// `DEBUG DIGEST`: every database's keys and values in one digest (all zeros when empty),
/// independent of the order keys are visited in.
fn dataset_digest(ctx: &mut Ctx<'_>) -> [u8; 20] {
    let mut total = [0u8; 20];
    let dbs = ctx.store_databases();
    let now = ctx.now_ms;
    for db in 0..dbs {
        let mut keys: Vec<Box<[u8]>> = Vec::new();
        let mut cursor = 0;
        loop {
            cursor = ctx
                .store
                .scan(db as _, cursor, 1024, now, |k, _| keys.push(k.into()));
            if cursor == 0 {
                break;
            }
        }
        if keys.is_empty() {
            continue;
        }
        mix_digest(&mut total, &(db as u32).to_be_bytes());
        for key in keys {
            let found = ctx.store.read_value(db as _, &key, now, |e| {
                let mut d = [0u8; 20];
                mix_digest(&mut d, &key);
                object_digest(&mut d, &e.value, e.kind);
                if e.expire_at != NO_EXPIRY {
                    xor_digest(&mut d, b"!!expire!!");
                }
                d
            });
            if let Some(d) = found {
                xor_digest(&mut total, &d);
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_number_parsing() {
        assert_eq!(atoi(b" 12abc"), 12);
        assert_eq!(atoi(b"-3"), -3);
        assert_eq!(atoi(b"x"), 0);
        assert_eq!(strtod(b"1.5s"), 1.5);
        assert_eq!(strtod(b"abc"), 0.0);
        assert_eq!(strtod(b"0.25"), 0.25);
    }

    #[test]
    fn mixing_depends_on_order_and_xor_does_not() {
        let (mut a, mut b) = ([0u8; 20], [0u8; 20]);
        mix_digest(&mut a, b"x");
        mix_digest(&mut a, b"y");
        mix_digest(&mut b, b"y");
        mix_digest(&mut b, b"x");
        assert_ne!(a, b);
        let (mut a, mut b) = ([0u8; 20], [0u8; 20]);
        xor_digest(&mut a, b"x");
        xor_digest(&mut a, b"y");
        xor_digest(&mut b, b"y");
        xor_digest(&mut b, b"x");
        assert_eq!(a, b);
    }
}
