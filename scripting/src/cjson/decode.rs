//! `cjson.decode`: JSON text to Lua values, as lua-cjson 2.1.0 reads it.
//!
//! The C parser reads a NUL-terminated string: a NUL byte anywhere ends the input, and so does
//! the end of the text (`at` answers 0 there). Like the encoder, the parser keeps its open
//! containers in a Lua table and its position in a Rust `Vec`, so depth costs neither Rust
//! stack nor mlua reference slots.

use mlua::{Lua, Table, Value};

use super::number::strtod;
use super::{Config, LUAI_MAXCSTACK};
use crate::lauxlib::Raise;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    /// The decoded bytes are in `Parser::tmp`.
    Str,
    Number(f64),
    Boolean(bool),
    Null,
    Colon,
    Comma,
    End,
    Error(&'static str),
}

impl Tok {
    /// What a parse error says was found.
    fn found(self) -> &'static str {
        match self {
            Tok::ObjBegin => "T_OBJ_BEGIN",
            Tok::ObjEnd => "T_OBJ_END",
            Tok::ArrBegin => "T_ARR_BEGIN",
            Tok::ArrEnd => "T_ARR_END",
            Tok::Str => "T_STRING",
            Tok::Number(_) => "T_NUMBER",
            Tok::Boolean(_) => "T_BOOLEAN",
            Tok::Null => "T_NULL",
            Tok::Colon => "T_COLON",
            Tok::Comma => "T_COMMA",
            Tok::End => "T_END",
            Tok::Error(msg) => msg,
        }
    }
}

/// A token and where it starts (or, for an error, where the error is).
#[derive(Debug, Clone, Copy)]
struct Token {
    tok: Tok,
    index: usize,
}

/// An open array or object.
struct Frame {
    object: bool,
    /// The next array index.
    next_index: i64,
    /// The key whose value is being read (objects).
    key: Vec<u8>,
    /// The C stack height with this container on top (see `Parser::descend`).
    top: i64,
}

struct Parser<'a> {
    data: &'a [u8],
    ptr: usize,
    /// The last string token, unescaped.
    tmp: Vec<u8>,
    cfg: Config,
    depth: i32,
}

/// Decodes `data` with the configuration `cfg`.
pub(super) fn decode(lua: &Lua, cfg: Config, data: &[u8]) -> Result<Value, Raise> {
    // Only the first character of a JSON text is sure to be ASCII; a NUL next to it means
    // UTF-16 or UTF-32 (RFC 4627, section 3).
    if data.len() >= 2 && (data[0] == 0 || data[1] == 0) {
        return Err(Raise::error(
            "JSON parser does not support UTF-16 or UTF-32",
        ));
    }
    let mut p = Parser {
        data,
        ptr: 0,
        tmp: Vec::new(),
        cfg,
        depth: 0,
    };
    p.run(lua)
}

fn hex_digit(c: u8) -> Option<u32> {
    char::from(c).to_digit(16)
}

/// `codepoint_to_utf8`, for code points up to 0x10FFFF (all a `\u` escape can give).
fn push_utf8(out: &mut Vec<u8>, cp: u32) {
    if cp <= 0x7f {
        out.push(cp as u8);
    } else if cp <= 0x7ff {
        out.extend_from_slice(&[(cp >> 6) as u8 | 0xc0, (cp & 0x3f) as u8 | 0x80]);
    } else if cp <= 0xffff {
        out.extend_from_slice(&[
            (cp >> 12) as u8 | 0xe0,
            ((cp >> 6) & 0x3f) as u8 | 0x80,
            (cp & 0x3f) as u8 | 0x80,
        ]);
    } else {
        out.extend_from_slice(&[
            (cp >> 18) as u8 | 0xf0,
            ((cp >> 12) & 0x3f) as u8 | 0x80,
            ((cp >> 6) & 0x3f) as u8 | 0x80,
            (cp & 0x3f) as u8 | 0x80,
        ]);
    }
}

impl Parser<'_> {
    fn at(&self, i: usize) -> u8 {
        self.data.get(i).copied().unwrap_or(0)
    }

    fn error_token(&self, msg: &'static str) -> Token {
        Token {
            tok: Tok::Error(msg),
            index: self.ptr,
        }
    }

    fn hex4(&self, i: usize) -> Option<u32> {
        (0..4).try_fold(0, |acc, k| Some(acc << 4 | hex_digit(self.at(i + k))?))
    }

    /// `json_append_unicode_escape` at `\u`: appends the UTF-8 and moves past the escape (a
    /// surrogate pair is two escapes).
    fn unicode_escape(&mut self) -> Option<()> {
        let mut cp = self.hex4(self.ptr + 2)?;
        let mut len = 6;
        if cp & 0xf800 == 0xd800 {
            if cp & 0x400 != 0 {
                return None;
            }
            if self.at(self.ptr + 6) != b'\\' || self.at(self.ptr + 7) != b'u' {
                return None;
            }
            let low = self.hex4(self.ptr + 8)?;
            if low & 0xfc00 != 0xdc00 {
                return None;
            }
            cp = (((cp & 0x3ff) << 10) | (low & 0x3ff)) + 0x10000;
            len = 12;
        }
        push_utf8(&mut self.tmp, cp);
        self.ptr += len;
        Some(())
    }

    fn string_token(&mut self, index: usize) -> Token {
        self.ptr += 1;
        self.tmp.clear();
        loop {
            let mut ch = self.at(self.ptr);
            match ch {
                b'"' => break,
                0 => return self.error_token("unexpected end of string"),
                b'\\' => {
                    ch = match self.at(self.ptr + 1) {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => b'\x08',
                        b't' => b'\t',
                        b'n' => b'\n',
                        b'f' => b'\x0c',
                        b'r' => b'\r',
                        b'u' => {
                            if self.unicode_escape().is_some() {
                                continue;
                            }
                            return self.error_token("invalid unicode escape code");
                        }
                        _ => return self.error_token("invalid escape code"),
                    };
                    self.ptr += 1;
                }
                _ => {}
            }
            self.tmp.push(ch);
            self.ptr += 1;
        }
        self.ptr += 1;
        Token {
            tok: Tok::Str,
            index,
        }
    }

    /// `json_is_invalid_number`: forms strtod takes but JSON does not (`+1`, `0x1`, `01`,
    /// `inf`, `nan`).
    fn is_invalid_number(&self) -> bool {
        let mut p = self.ptr;
        if self.at(p) == b'+' {
            return true;
        }
        if self.at(p) == b'-' {
            p += 1;
        }
        if self.at(p) == b'0' {
            let ch2 = self.at(p + 1);
            return ch2 | 0x20 == b'x' || ch2.is_ascii_digit();
        }
        // A C `char` is signed: bytes >= 0x80 compare below '9' too.
        if self.at(p) <= b'9' || self.at(p) >= 0x80 {
            return false;
        }
        let word = [self.at(p), self.at(p + 1), self.at(p + 2)];
        word.eq_ignore_ascii_case(b"inf") || word.eq_ignore_ascii_case(b"nan")
    }

    fn number_token(&mut self, index: usize) -> Token {
        let (n, used) = strtod(self.data.get(self.ptr..).unwrap_or(&[]));
        if used == 0 {
            return self.error_token("invalid number");
        }
        self.ptr += used;
        Token {
            tok: Tok::Number(n),
            index,
        }
    }

    fn next_token(&mut self) -> Token {
        while matches!(self.at(self.ptr), b' ' | b'\t' | b'\n' | b'\r') {
            self.ptr += 1;
        }
        let index = self.ptr;
        let ch = self.at(index);
        let single = match ch {
            b'{' => Some(Tok::ObjBegin),
            b'}' => Some(Tok::ObjEnd),
            b'[' => Some(Tok::ArrBegin),
            b']' => Some(Tok::ArrEnd),
            b',' => Some(Tok::Comma),
            b':' => Some(Tok::Colon),
            _ => None,
        };
        if let Some(tok) = single {
            self.ptr += 1;
            return Token { tok, index };
        }
        let rest = self.data.get(index..).unwrap_or(&[]);
        match ch {
            0 => Token {
                tok: Tok::End,
                index,
            },
            b'"' => self.string_token(index),
            b'-' | b'0'..=b'9' => {
                if self.cfg.decode_invalid_numbers == 0 && self.is_invalid_number() {
                    return self.error_token("invalid number");
                }
                self.number_token(index)
            }
            b'f' | b'i' | b'I' | b'n' | b'N' | b't' | b'+' => {
                let word = [
                    (&b"true"[..], Tok::Boolean(true)),
                    (b"false", Tok::Boolean(false)),
                    (b"null", Tok::Null),
                ]
                .into_iter()
                .find(|(w, _)| rest.starts_with(w));
                if let Some((w, tok)) = word {
                    self.ptr += w.len();
                    return Token { tok, index };
                }
                if self.cfg.decode_invalid_numbers != 0 && self.is_invalid_number() {
                    return self.number_token(index);
                }
                self.error_token("invalid token")
            }
            _ => self.error_token("invalid token"),
        }
    }

    fn parse_error(&self, expected: &str, token: Token) -> Raise {
        Raise::error(format!(
            "Expected {expected} but found {} at character {}",
            token.tok.found(),
            token.index + 1
        ))
    }

    /// `json_decode_descend`: one level deeper, within `decode_max_depth` and within the Lua
    /// stack the C parser would use (`top` values, `slots` more for the new container).
    fn descend(&mut self, top: i64, slots: i64) -> Result<(), Raise> {
        self.depth = self.depth.saturating_add(1);
        if self.depth <= self.cfg.decode_max_depth && top + slots <= LUAI_MAXCSTACK {
            return Ok(());
        }
        Err(Raise::error(format!(
            "Found too many nested data structures ({}) at character {}",
            self.depth, self.ptr
        )))
    }

    /// After `{` or `,` in an object: the key string and the colon; leaves the value's first
    /// token in `token`.
    fn object_key(&mut self, token: &mut Token, frame: &mut Frame) -> Result<(), Raise> {
        if token.tok != Tok::Str {
            return Err(self.parse_error("object key string", *token));
        }
        frame.key.clear();
        frame.key.extend_from_slice(&self.tmp);
        *token = self.next_token();
        if token.tok != Tok::Colon {
            return Err(self.parse_error("colon", *token));
        }
        *token = self.next_token();
        Ok(())
    }

    fn run(&mut self, lua: &Lua) -> Result<Value, Raise> {
        let mut frames: Vec<Frame> = Vec::new();
        // The innermost container; the enclosing ones wait in `parents[depth]`.
        let mut current: Option<Table> = None;
        let parents = lua.create_table()?;
        let mut token = self.next_token();
        let root = 'value: loop {
            // `token` starts a value, which belongs in the innermost container.
            let top = match frames.last() {
                None => 1,
                Some(f) if f.object => f.top + 1,
                Some(f) => f.top,
            };
            let mut v = match token.tok {
                Tok::Str => Value::String(lua.create_string(&self.tmp)?),
                Tok::Number(n) => Value::Number(n),
                Tok::Boolean(b) => Value::Boolean(b),
                Tok::Null => Value::NULL,
                Tok::ObjBegin | Tok::ArrBegin => {
                    let object = token.tok == Tok::ObjBegin;
                    self.descend(top, if object { 3 } else { 2 })?;
                    if let Some(parent) = current.replace(lua.create_table()?) {
                        parents.raw_set(frames.len(), parent)?;
                    }
                    let mut frame = Frame {
                        object,
                        next_index: 1,
                        key: Vec::new(),
                        top: top + 1,
                    };
                    token = self.next_token();
                    let empty = if object { Tok::ObjEnd } else { Tok::ArrEnd };
                    if token.tok != empty {
                        if object {
                            self.object_key(&mut token, &mut frame)?;
                        }
                        frames.push(frame);
                        continue 'value;
                    }
                    self.depth -= 1;
                    let Some(t) = current.take() else {
                        return Err(Raise::error("BUG: no container"));
                    };
                    if !frames.is_empty() {
                        current = Some(parents.raw_get(frames.len())?);
                    }
                    Value::Table(t)
                }
                _ => return Err(self.parse_error("value", token)),
            };
            // Store the finished value; finishing a container may finish its parent too.
            loop {
                let Some(frame) = frames.last_mut() else {
                    break 'value v;
                };
                let Some(t) = current.as_ref() else {
                    return Err(Raise::error("BUG: no container"));
                };
                if frame.object {
                    t.raw_set(lua.create_string(&frame.key)?, v)?;
                } else {
                    t.raw_set(frame.next_index, v)?;
                    frame.next_index += 1;
                }
                token = self.next_token();
                let (end, expected) = if frame.object {
                    (Tok::ObjEnd, "comma or object end")
                } else {
                    (Tok::ArrEnd, "comma or array end")
                };
                if token.tok == end {
                    self.depth -= 1;
                    frames.pop();
                    let Some(t) = current.take() else {
                        return Err(Raise::error("BUG: no container"));
                    };
                    if !frames.is_empty() {
                        current = Some(parents.raw_get(frames.len())?);
                    }
                    v = Value::Table(t);
                    continue;
                }
                if token.tok != Tok::Comma {
                    return Err(self.parse_error(expected, token));
                }
                token = self.next_token();
                if frame.object {
                    self.object_key(&mut token, frame)?;
                }
                continue 'value;
            }
        };
        let token = self.next_token();
        if token.tok != Tok::End {
            return Err(self.parse_error("the end", token));
        }
        Ok(root)
    }
}
