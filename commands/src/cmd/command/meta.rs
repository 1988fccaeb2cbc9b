//! What Redis 7.0.15 says about its commands beyond Ferrite's table: command tips, key specs,
//! `movablekeys`, and the argument docs `COMMAND DOCS` returns (redis-cli builds its hints from
//! them). Captured from a live server by `gen_meta.py` into `redis_meta.resp3`, parsed once.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::resp::Reply;

/// A RESP3 value, re-encoded in the client's protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `+text`
    Simple(String),
    /// `$bytes`
    Bulk(Vec<u8>),
    /// `:n`
    Int(i64),
    /// `_`
    Null,
    /// `*n`
    Array(Vec<Value>),
    /// `~n` (an array in RESP2)
    Set(Vec<Value>),
    /// `%n` (a flat array in RESP2)
    Map(Vec<(Value, Value)>),
}

impl Value {
    /// Writes the value.
    pub fn write(&self, reply: &mut Reply<'_>) {
        match self {
            Value::Simple(s) => reply.simple(s),
            Value::Bulk(b) => reply.bulk(b),
            Value::Int(i) => reply.int(*i),
            Value::Null => reply.null(),
            Value::Array(v) => {
                reply.array_len(v.len());
                v.iter().for_each(|e| e.write(reply));
            }
            Value::Set(v) => {
                reply.set_len(v.len());
                v.iter().for_each(|e| e.write(reply));
            }
            Value::Map(v) => {
                reply.map_len(v.len());
                for (k, e) in v {
                    k.write(reply);
                    e.write(reply);
                }
            }
        }
    }

    /// The value under `key` in a map.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(v) => v.iter().find(|(k, _)| k.is_str(key)).map(|(_, e)| e),
            _ => None,
        }
    }

    /// The elements of an array or set (empty otherwise).
    pub fn items(&self) -> &[Value] {
        match self {
            Value::Array(v) | Value::Set(v) => v,
            _ => &[],
        }
    }

    /// An integer's value.
    pub fn int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// A string's bytes (bulk or simple).
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(b) => Some(b),
            Value::Simple(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    fn is_str(&self, s: &str) -> bool {
        self.bytes() == Some(s.as_bytes())
    }
}

/// Redis's extra facts about one command or subcommand.
#[derive(Debug)]
pub struct Meta {
    /// Command tips (a set of bulk strings).
    pub tips: Value,
    /// Key specs (a set of maps).
    pub key_specs: Value,
    /// Whether Redis reports the `movablekeys` flag.
    pub movable: bool,
    /// COMMAND DOCS fields besides summary, since, group, complexity and subcommands, in Redis's
    /// order (doc_flags, deprecated_since, replaced_by, history, arguments).
    pub docs: Vec<(Value, Value)>,
}

static DATA: &[u8] = include_bytes!("redis_meta.resp3");

/// Meta for a full command name (`get`, `client|list`), if Redis has the command.
pub fn meta(full_name: &str) -> Option<&'static Meta> {
    static MAP: OnceLock<HashMap<String, Meta>> = OnceLock::new();
    MAP.get_or_init(|| {
        let mut pos = 0;
        let mut map = HashMap::new();
        // The file is generated from a real server; a malformed one yields no meta, not a panic.
        if let Some(Value::Map(entries)) = parse(DATA, &mut pos, 0) {
            for (k, v) in entries {
                let (Some(name), Value::Array(mut parts)) = (k.bytes().map(<[u8]>::to_vec), v)
                else {
                    continue;
                };
                if parts.len() != 4 {
                    continue;
                }
                let docs = match parts.pop() {
                    Some(Value::Map(m)) => m,
                    _ => Vec::new(),
                };
                let movable = parts.pop().and_then(|v| v.int()) == Some(1);
                let key_specs = parts.pop().unwrap_or(Value::Set(Vec::new()));
                let tips = parts.pop().unwrap_or(Value::Set(Vec::new()));
                map.insert(
                    String::from_utf8_lossy(&name).into_owned(),
                    Meta {
                        tips,
                        key_specs,
                        movable,
                        docs,
                    },
                );
            }
        }
        map
    })
    .get(full_name)
}

/// Parses one RESP3 value at `*pos`.
fn parse(data: &[u8], pos: &mut usize, depth: u32) -> Option<Value> {
    if depth > 64 {
        return None;
    }
    let rest = data.get(*pos..)?;
    let nl = rest.windows(2).position(|w| w == b"\r\n")?;
    let (&t, line) = rest[..nl].split_first()?;
    *pos += nl + 2;
    let num = || -> Option<i64> { std::str::from_utf8(line).ok()?.parse().ok() };
    let count = |n: i64| usize::try_from(n).ok();
    Some(match t {
        b'+' => Value::Simple(String::from_utf8_lossy(line).into_owned()),
        b':' => Value::Int(num()?),
        b'_' => Value::Null,
        b'$' => {
            let n = count(num()?)?;
            let b = data.get(*pos..pos.checked_add(n)?)?.to_vec();
            *pos += n + 2;
            Value::Bulk(b)
        }
        b'*' | b'~' => {
            let n = count(num()?)?;
            let mut v = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                v.push(parse(data, pos, depth + 1)?);
            }
            if t == b'*' {
                Value::Array(v)
            } else {
                Value::Set(v)
            }
        }
        b'%' => {
            let n = count(num()?)?;
            let mut v = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                let k = parse(data, pos, depth + 1)?;
                v.push((k, parse(data, pos, depth + 1)?));
            }
            Value::Map(v)
        }
        _ => return None,
    })
}

/// One key found by [`keys_from_specs`]: its argument position and its spec's flags.
pub struct KeyRef<'a> {
    /// Index into the arguments (0 is the command name).
    pub pos: usize,
    /// The key spec's flags (`RO`, `access`, ...).
    pub flags: &'a Value,
}

/// Whether a key spec's flags mark its arguments as no keys at all (`not_key`: the shard
/// channels of SSUBSCRIBE and SPUBLISH), which key lookups skip as Redis's do.
pub fn not_key(flags: &Value) -> bool {
    flags.items().iter().any(|f| f.bytes() == Some(b"not_key"))
}

/// Redis's `getKeysUsingKeySpecs`: the keys of `args` (the command name first) according to
/// the key specs; `None` when a spec does not fit the arguments.
pub fn keys_from_specs<'a>(specs: &'a Value, args: &[&[u8]]) -> Option<Vec<KeyRef<'a>>> {
    let argc = args.len() as i64;
    let mut out = Vec::new();
    for spec in specs.items() {
        let flags = spec.get("flags")?;
        if not_key(flags) {
            continue;
        }
        let bs = spec.get("begin_search")?;
        let bs_spec = bs.get("spec")?;
        let first: i64 = match bs.get("type")?.bytes()? {
            b"index" => bs_spec.get("index")?.int()?,
            b"keyword" => {
                let keyword = bs_spec.get("keyword")?.bytes()?;
                let startfrom = bs_spec.get("startfrom")?.int()?;
                let (start, end) = if startfrom > 0 {
                    (startfrom, argc - 1)
                } else {
                    (argc + startfrom, 1)
                };
                let mut i = start;
                let mut found = 0;
                while i != end {
                    if i >= argc || i < 1 {
                        break;
                    }
                    if args[i as usize].eq_ignore_ascii_case(keyword) {
                        found = i + 1;
                        break;
                    }
                    i += if start <= end { 1 } else { -1 };
                }
                if found == 0 {
                    continue;
                }
                found
            }
            _ => return None,
        };
        let fk = spec.get("find_keys")?;
        let fk_spec = fk.get("spec")?;
        let (first, last, step) = match fk.get("type")?.bytes()? {
            b"range" => {
                let lastkey = fk_spec.get("lastkey")?.int()?;
                let step = fk_spec.get("keystep")?.int()?;
                let limit = fk_spec.get("limit")?.int()?;
                let last = if lastkey >= 0 {
                    first + lastkey
                } else if limit == 0 {
                    argc + lastkey
                } else {
                    first + ((argc - first) / limit + lastkey)
                };
                (first, last, step)
            }
            b"keynum" => {
                let idx = fk_spec.get("keynumidx")?.int()?;
                if idx >= argc - first {
                    return None;
                }
                let n = crate::args::parse_i64(args[(first + idx) as usize])?;
                if n < 0 {
                    return None;
                }
                let first = first + fk_spec.get("firstkey")?.int()?;
                (first, first + n - 1, fk_spec.get("keystep")?.int()?)
            }
            _ => return None,
        };
        if last >= argc || last < first || first >= argc || step <= 0 {
            return None;
        }
        let mut i = first;
        while i <= last {
            out.push(KeyRef {
                pos: i as usize,
                flags,
            });
            i += step;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_parses() {
        let get = meta("get").expect("get is in the data");
        assert_eq!(get.key_specs.items().len(), 1);
        assert!(!get.movable);
        assert!(meta("eval").expect("eval").movable);
        assert!(meta("client|list").is_some());
        assert!(meta("nonexistent").is_none());
    }

    #[test]
    fn key_specs() {
        let keys = |name: &str, args: &[&[u8]]| -> Option<Vec<usize>> {
            let m = meta(name).expect("known");
            keys_from_specs(&m.key_specs, args).map(|v| v.iter().map(|k| k.pos).collect())
        };
        assert_eq!(keys("get", &[b"get", b"a"]), Some(vec![1]));
        assert_eq!(
            keys("mset", &[b"mset", b"a", b"1", b"b", b"2"]),
            Some(vec![1, 3])
        );
        assert_eq!(keys("eval", &[b"eval", b"s", b"1", b"k"]), Some(vec![3]));
        assert_eq!(keys("eval", &[b"eval", b"s", b"5", b"k"]), None);
        assert_eq!(
            keys("fcall", &[b"fcall", b"f", b"2", b"k1", b"k2", b"a"]),
            Some(vec![3, 4])
        );
        assert_eq!(
            keys("xread", &[b"xread", b"streams", b"a", b"b"]),
            Some(vec![2])
        );
        assert_eq!(
            keys("zunionstore", &[b"zunionstore", b"d", b"2", b"a", b"b"]),
            Some(vec![1, 3, 4])
        );
    }
}
