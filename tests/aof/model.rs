//! A model of what each concurrent writer's keys must hold after a restart.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use redis::Commands;

use super::{Rng, client};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Val {
    Str(String),
    List(Vec<String>),
    Hash(BTreeMap<String, String>),
}

pub(crate) type Model = BTreeMap<String, Val>;

/// One operation a writer sends; each touches only that writer's keys.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Set(String, String),
    Incr(String),
    Push(String, String),
    HSet(String, String, String),
    SetEx(String, String),
    Multi(String, String, String),
    Del(String),
}

impl Op {
    pub(crate) fn random(rng: &mut Rng, t: usize, i: usize) -> Op {
        let k = |n: &str| format!("w{t}:{n}");
        match rng.below(7) {
            0 => Op::Set(k("s"), format!("v{i}")),
            1 => Op::Incr(k("n")),
            2 => Op::Push(k("l"), format!("e{i}")),
            3 => Op::HSet(k("h"), format!("f{}", i % 5), format!("{i}")),
            4 => Op::SetEx(k("e"), format!("x{i}")),
            5 => Op::Multi(k("m1"), k("m2"), format!("{i}")),
            _ => Op::Del(k("s")),
        }
    }

    pub(crate) fn send(&self, c: &mut redis::Connection) -> redis::RedisResult<()> {
        match self {
            Op::Set(k, v) => c.set(k, v),
            Op::Incr(k) => c.incr(k, 1),
            Op::Push(k, v) => c.rpush(k, v),
            Op::HSet(k, f, v) => c.hset(k, f, v),
            Op::SetEx(k, v) => redis::cmd("SET")
                .arg(k)
                .arg(v)
                .arg("EX")
                .arg(100_000)
                .query(c),
            Op::Multi(a, b, v) => redis::pipe().atomic().set(a, v).incr(b, 1).query::<()>(c),
            Op::Del(k) => c.del(k),
        }
    }

    pub(crate) fn apply(&self, m: &mut Model) {
        let incr = |m: &mut Model, k: &str| {
            let n = match m.get(k) {
                Some(Val::Str(s)) => s.parse::<i64>().unwrap_or(0),
                _ => 0,
            };
            m.insert(k.to_string(), Val::Str((n + 1).to_string()));
        };
        match self {
            Op::Set(k, v) | Op::SetEx(k, v) => {
                m.insert(k.clone(), Val::Str(v.clone()));
            }
            Op::Incr(k) => incr(m, k),
            Op::Push(k, v) => {
                if let Val::List(l) = m.entry(k.clone()).or_insert(Val::List(Vec::new())) {
                    l.push(v.clone());
                }
            }
            Op::HSet(k, f, v) => {
                if let Val::Hash(h) = m.entry(k.clone()).or_insert(Val::Hash(BTreeMap::new())) {
                    h.insert(f.clone(), v.clone());
                }
            }
            Op::Multi(a, b, v) => {
                m.insert(a.clone(), Val::Str(v.clone()));
                incr(m, b);
            }
            Op::Del(k) => {
                m.remove(k);
            }
        }
    }
}

/// The value of `key` on the server, as the model sees it.
pub(crate) fn read(c: &mut redis::Connection, key: &str) -> Option<Val> {
    let t: String = redis::cmd("TYPE").arg(key).query(c).expect("TYPE");
    match t.as_str() {
        "none" => None,
        "string" => Some(Val::Str(c.get(key).expect("GET"))),
        "list" => Some(Val::List(c.lrange(key, 0, -1).expect("LRANGE"))),
        "hash" => Some(Val::Hash(c.hgetall(key).expect("HGETALL"))),
        other => panic!("{key} has unexpected type {other}"),
    }
}

pub(crate) fn writer_keys(t: usize) -> Vec<String> {
    ["s", "n", "l", "h", "e", "m1", "m2"]
        .iter()
        .map(|n| format!("w{t}:{n}"))
        .collect()
}

/// Runs `writers` concurrent writers of random ops against `port` until `stop` (or `ops`
/// each); returns each writer's model after its acknowledged ops, and its one op in flight
/// when the connection broke (if any).
pub(crate) fn run_writers(
    port: u16,
    writers: usize,
    ops: usize,
    seed: u64,
    models: &[Model],
    stop: &Arc<AtomicBool>,
) -> Vec<(Model, Option<Op>)> {
    let handles: Vec<_> = (0..writers)
        .map(|t| {
            let stop = Arc::clone(stop);
            let mut model = models[t].clone();
            let mut rng = Rng(seed.wrapping_add(t as u64 * 7919) | 1);
            std::thread::spawn(move || {
                let Ok(mut c) = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                    .and_then(|cl| cl.get_connection())
                else {
                    return (model, None);
                };
                for i in 0..ops {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let op = Op::random(&mut rng, t, i);
                    match op.send(&mut c) {
                        Ok(()) => op.apply(&mut model),
                        Err(_) => return (model, Some(op)),
                    }
                }
                (model, None)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("writer thread"))
        .collect()
}

/// Checks the server holds each writer's acknowledged state, or that state plus its op in
/// flight (applied whole); returns the state found, to continue from.
pub(crate) fn verify(port: u16, results: &[(Model, Option<Op>)], what: &str) -> Vec<Model> {
    let mut c = client(port);
    let mut found = Vec::new();
    for (t, (acked, inflight)) in results.iter().enumerate() {
        let actual: Model = writer_keys(t)
            .into_iter()
            .filter_map(|k| read(&mut c, &k).map(|v| (k, v)))
            .collect();
        let mut with = acked.clone();
        if let Some(op) = inflight {
            op.apply(&mut with);
        }
        assert!(
            actual == *acked || actual == with,
            "{what}: writer {t} lost an acknowledged write or holds a torn one\n\
             acknowledged: {acked:?}\nin flight: {inflight:?}\nfound: {actual:?}"
        );
        found.push(actual);
    }
    found
}
