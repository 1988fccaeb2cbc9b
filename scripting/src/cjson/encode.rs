//! `cjson.encode`: Lua value to JSON text, as lua-cjson 2.1.0 writes it.
//!
//! The walk is iterative, and the tables being walked wait in a Lua table rather than in Rust
//! handles: a script may nest thousands of levels (cyclic tables, a raised `encode_max_depth`)
//! and neither the Rust stack nor mlua's reference slots may grow with that depth.

use mlua::{Function, Lua, Table, Value};

use super::number::fmt_g;
use super::{Config, LUAI_MAXCSTACK};
use crate::lauxlib::{Raise, typename};

/// Output beyond this many bytes fails instead of exhausting memory (only reachable with
/// sparse-array checks disabled and a huge index, where Redis would die trying).
const MAX_OUTPUT: usize = 1 << 30;

/// What remains to be written of a table being encoded.
enum Kind {
    /// `next` is the index to write, up to `len`.
    Array { next: i32, len: i32 },
    /// `started`: a pair was written (the next one needs a comma).
    Object { started: bool },
}

struct Frame {
    kind: Kind,
    /// Nesting depth of the table (the outermost table is 1).
    depth: i32,
    /// The Lua stack height lua-cjson's C code has while inside this table, with the table on
    /// top: its `lua_checkstack` limit decides where deep nesting fails.
    top: i64,
}

struct Encoder<'a> {
    cfg: Config,
    next: &'a Function,
    out: Vec<u8>,
    frames: Vec<Frame>,
    /// The innermost table and its current key (for `next`).
    current: Option<(Table, Value)>,
    /// The enclosing tables and keys, at `2 * depth - 1` and `2 * depth`.
    parents: Table,
}

/// Encodes `value` with the configuration `cfg`; `next` is Lua's `next`.
pub(super) fn encode(
    lua: &Lua,
    cfg: Config,
    next: &Function,
    value: Value,
) -> Result<Vec<u8>, Raise> {
    let mut enc = Encoder {
        cfg,
        next,
        out: Vec::new(),
        frames: Vec::new(),
        current: None,
        parents: lua.create_table()?,
    };
    enc.value(value, 0, 1)?;
    enc.run()?;
    Ok(enc.out)
}

/// `char2escape`: how each byte of a string is written.
fn escape(b: u8) -> Option<&'static [u8]> {
    Some(match b {
        b'\x08' => b"\\b",
        b'\t' => b"\\t",
        b'\n' => b"\\n",
        b'\x0c' => b"\\f",
        b'\r' => b"\\r",
        b'"' => b"\\\"",
        b'/' => b"\\/",
        b'\\' => b"\\\\",
        _ => return None,
    })
}

fn append_string(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    for &b in s {
        if let Some(esc) = escape(b) {
            out.extend_from_slice(esc);
        } else if b < 0x20 || b == 0x7f {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 15)]);
        } else {
            out.push(b);
        }
    }
    out.push(b'"');
}

/// The C conversion of a double to `int` on x86-64 (`cvttsd2si`): out of range gives INT_MIN.
fn c_int(k: f64) -> i32 {
    if k > -2_147_483_649.0 && k < 2_147_483_648.0 {
        k as i32
    } else {
        i32::MIN
    }
}

impl Encoder<'_> {
    fn number(&mut self, n: f64) -> Result<(), Raise> {
        match self.cfg.encode_invalid_numbers {
            0 if !n.is_finite() => {
                return Err(Raise::error(
                    "Cannot serialise number: must not be NaN or Inf",
                ));
            }
            1 if n.is_nan() => {
                self.out.extend_from_slice(b"nan");
                return Ok(());
            }
            0 | 1 => {}
            _ if !n.is_finite() => {
                self.out.extend_from_slice(b"null");
                return Ok(());
            }
            _ => {}
        }
        let precision = usize::try_from(self.cfg.encode_number_precision).unwrap_or(14);
        self.out.extend_from_slice(fmt_g(n, precision).as_bytes());
        Ok(())
    }

    /// `lua_array_length`: the array length of `t`, or -1 to write it as an object.
    fn array_length(&self, t: &Table) -> Result<i32, Raise> {
        let mut max: i32 = 0;
        let mut items: i32 = 0;
        for pair in t.pairs::<Value, Value>() {
            let k = match pair?.0 {
                Value::Integer(i) => i as f64,
                Value::Number(n) => n,
                _ => return Ok(-1),
            };
            if k == 0.0 || k.floor() != k || k < 1.0 {
                return Ok(-1);
            }
            if k > f64::from(max) {
                max = c_int(k);
            }
            items = items.wrapping_add(1);
        }
        let cfg = &self.cfg;
        if cfg.encode_sparse_ratio > 0
            && max > items.wrapping_mul(cfg.encode_sparse_ratio)
            && max > cfg.encode_sparse_safe
        {
            if cfg.encode_sparse_convert == 0 {
                return Err(Raise::error(
                    "Cannot serialise table: excessively sparse array",
                ));
            }
            return Ok(-1);
        }
        Ok(max)
    }

    /// Writes a value, or opens a table (its contents are written by `run`). `parent_depth` is
    /// the depth of the enclosing table, `top` the C stack height with the value on top.
    fn value(&mut self, v: Value, parent_depth: i32, top: i64) -> Result<(), Raise> {
        match v {
            Value::String(s) => append_string(&mut self.out, &s.as_bytes()),
            Value::Integer(i) => self.number(i as f64)?,
            Value::Number(n) => self.number(n)?,
            Value::Boolean(true) => self.out.extend_from_slice(b"true"),
            Value::Boolean(false) => self.out.extend_from_slice(b"false"),
            Value::Nil => self.out.extend_from_slice(b"null"),
            Value::LightUserData(p) if p.0.is_null() => self.out.extend_from_slice(b"null"),
            Value::Table(t) => {
                let t = crate::contents(&t);
                let depth = parent_depth.saturating_add(1);
                if depth > self.cfg.encode_max_depth || top + 3 > LUAI_MAXCSTACK {
                    return Err(Raise::error(format!(
                        "Cannot serialise, excessive nesting ({depth})"
                    )));
                }
                let len = self.array_length(&t)?;
                let kind = if len > 0 {
                    self.out.push(b'[');
                    Kind::Array { next: 1, len }
                } else {
                    self.out.push(b'{');
                    Kind::Object { started: false }
                };
                if let Some((table, key)) = self.current.take() {
                    let slot = 2 * self.frames.len() as i64;
                    self.parents.raw_set(slot - 1, table)?;
                    self.parents.raw_set(slot, key)?;
                }
                self.current = Some((t, Value::Nil));
                self.frames.push(Frame { kind, depth, top });
            }
            other => {
                return Err(Raise::error(format!(
                    "Cannot serialise {}: type not supported",
                    typename(Some(&other))
                )));
            }
        }
        Ok(())
    }

    /// Closes the innermost table and makes its parent current again.
    fn close(&mut self, bracket: u8) -> Result<(), Raise> {
        self.out.push(bracket);
        self.frames.pop();
        self.current = None;
        if !self.frames.is_empty() {
            let slot = 2 * self.frames.len() as i64;
            let table: Table = self.parents.raw_get(slot - 1)?;
            let key: Value = self.parents.raw_get(slot)?;
            self.current = Some((table, key));
        }
        Ok(())
    }

    fn run(&mut self) -> Result<(), Raise> {
        while let Some(frame) = self.frames.last_mut() {
            let (depth, top) = (frame.depth, frame.top);
            // What to do in this table: write element `i`, write the pair after the current
            // key (`Some(started)`), or close it.
            let (index, pair) = match &mut frame.kind {
                Kind::Array { next, len } if *next <= *len => {
                    *next += 1;
                    (Some(*next - 1), None)
                }
                Kind::Array { .. } => (None, None),
                Kind::Object { started } => (None, Some(std::mem::replace(started, true))),
            };
            let Some((table, key)) = self.current.as_mut() else {
                return Err(Raise::error("BUG: no table being encoded"));
            };
            if let Some(i) = index {
                let v: Value = table.raw_get(i)?;
                if i > 1 {
                    self.out.push(b',');
                }
                if self.out.len() > MAX_OUTPUT {
                    return Err(Raise::error("not enough memory"));
                }
                self.value(v, depth, top + 1)?;
                continue;
            }
            let Some(started) = pair else {
                self.close(b']')?;
                continue;
            };
            let (k, v): (Value, Value) = self.next.call((table.clone(), std::mem::take(key)))?;
            *key = k.clone();
            if k.is_nil() {
                self.close(b'}')?;
                continue;
            }
            if started {
                self.out.push(b',');
            }
            match k {
                Value::Integer(i) => self.number_key(i as f64)?,
                Value::Number(n) => self.number_key(n)?,
                Value::String(s) => {
                    append_string(&mut self.out, &s.as_bytes());
                    self.out.push(b':');
                }
                other => {
                    return Err(Raise::error(format!(
                        "Cannot serialise {}: table key must be a number or string",
                        typename(Some(&other))
                    )));
                }
            }
            self.value(v, depth, top + 2)?;
        }
        Ok(())
    }

    fn number_key(&mut self, n: f64) -> Result<(), Raise> {
        self.out.push(b'"');
        self.number(n)?;
        self.out.extend_from_slice(b"\":");
        Ok(())
    }
}
