//! GET, SET and their variants: SETNX, SETEX, PSETEX, GETSET, GETDEL, GETEX, MGET, MSET, MSETNX.

use ferrite_hybridlog::{NO_EXPIRY, ValueKind, Write};

use super::is_string;
use crate::args::{Args, eq_ignore_case, parse_i64};
use crate::ctx::Ctx;
use crate::notify::flags;
use crate::resp::Reply;

/// `GET key`: one `read` whose callback writes the bulk straight into the reply.
pub(super) fn get(ctx: &mut Ctx<'_>, args: Args<'_>) {
    // One copy: the store writes the bulk header and the value straight into the reply buffer
    // (and takes them back out if the read was torn or the key holds another type).
    let out = ctx.reply.raw();
    let found = ctx.store.read_append(
        ctx.client.db,
        args.get(1),
        ctx.now_ms,
        out,
        |out, kind, len| {
            if is_string(kind) {
                // A bulk header is the same in RESP2 and RESP3.
                Reply::new(out, false).bulk_header(len);
                true
            } else {
                false
            }
        },
    );
    match found {
        Some(kind) if is_string(kind) => {
            ctx.reply.bulk_end();
            ctx.hit();
        }
        Some(_) => {
            ctx.hit();
            ctx.wrong_type();
        }
        None => {
            ctx.miss(args.get(1));
            ctx.reply.null();
        }
    }
}

/// Which expiry option was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ExpireKind {
    /// Relative seconds.
    Ex,
    /// Relative milliseconds.
    Px,
    /// Absolute Unix seconds.
    ExAt,
    /// Absolute Unix milliseconds.
    PxAt,
}

/// Options of SET and GETEX, as Redis's `parseExtendedStringArgumentsOrReply`.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct SetOptions<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    expire: Option<(ExpireKind, &'a [u8])>,
}

/// Parses options from argument `start`; `set` selects SET's options (else GETEX's). `None` is
/// a syntax error.
pub(super) fn parse_set_options(args: Args<'_>, start: usize, set: bool) -> Option<SetOptions<'_>> {
    let mut o = SetOptions::default();
    let mut j = start;
    while j < args.len() {
        let opt = args.get(j);
        let next = args.try_get(j + 1);
        let exp = o.expire.map(|(k, _)| k);
        let other_expire = |allowed: ExpireKind| exp.is_some_and(|k| k != allowed);
        if set && eq_ignore_case(opt, "nx") && !o.xx {
            o.nx = true;
        } else if set && eq_ignore_case(opt, "xx") && !o.nx {
            o.xx = true;
        } else if set && eq_ignore_case(opt, "get") {
            o.get = true;
        } else if set && eq_ignore_case(opt, "keepttl") && !o.persist && exp.is_none() {
            o.keepttl = true;
        } else if !set && eq_ignore_case(opt, "persist") && exp.is_none() && !o.keepttl {
            o.persist = true;
        } else {
            let kind = if eq_ignore_case(opt, "ex") {
                ExpireKind::Ex
            } else if eq_ignore_case(opt, "px") {
                ExpireKind::Px
            } else if eq_ignore_case(opt, "exat") {
                ExpireKind::ExAt
            } else if eq_ignore_case(opt, "pxat") {
                ExpireKind::PxAt
            } else {
                return None;
            };
            let value = next?;
            if o.keepttl || o.persist || other_expire(kind) {
                return None;
            }
            o.expire = Some((kind, value));
            j += 1;
        }
        j += 1;
    }
    Some(o)
}

/// Why an expiry argument was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ExpireError {
    /// Not an integer.
    NotInteger,
    /// Zero, negative or overflowing.
    Invalid,
}

/// Redis's `getExpireMillisecondsOrReply`: the absolute expiry in Unix ms.
pub(super) fn expire_at(kind: ExpireKind, arg: &[u8], now_ms: u64) -> Result<u64, ExpireError> {
    let v = parse_i64(arg).ok_or(ExpireError::NotInteger)?;
    let seconds = matches!(kind, ExpireKind::Ex | ExpireKind::ExAt);
    if v <= 0 || (seconds && v > i64::MAX / 1000) {
        return Err(ExpireError::Invalid);
    }
    let ms = if seconds { v * 1000 } else { v };
    let ms = match kind {
        ExpireKind::Ex | ExpireKind::Px => ms
            .checked_add(i64::try_from(now_ms).unwrap_or(i64::MAX))
            .ok_or(ExpireError::Invalid)?,
        ExpireKind::ExAt | ExpireKind::PxAt => ms,
    };
    Ok(ms as u64)
}

/// Replies the error for a refused expiry.
#[cold]
pub(super) fn expire_error(ctx: &mut Ctx<'_>, e: ExpireError) {
    match e {
        ExpireError::NotInteger => ctx.not_integer(),
        ExpireError::Invalid => {
            let msg = format!("ERR invalid expire time in '{}' command", ctx.spec.name);
            ctx.reply.error(&msg);
        }
    }
}

/// The expiry of `opts`, replying the error when it is refused.
fn options_expiry(ctx: &mut Ctx<'_>, opts: &SetOptions<'_>) -> Result<Option<u64>, ()> {
    match opts.expire {
        None => Ok(None),
        Some((kind, arg)) => match expire_at(kind, arg, ctx.now_ms) {
            Ok(at) => Ok(Some(at)),
            Err(e) => {
                expire_error(ctx, e);
                Err(())
            }
        },
    }
}

/// What a conditional SET did.
enum SetOutcome {
    Done,
    Aborted,
    WrongType,
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT ts|PXAT ms-ts|KEEPTTL]`
pub(super) fn set(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let Some(opts) = parse_set_options(args, 3, true) else {
        ctx.syntax_error();
        return;
    };
    let Ok(expire) = options_expiry(ctx, &opts) else {
        return;
    };
    let (key, value) = (args.get(1), args.get(2));
    let db = ctx.client.db;
    if !(opts.nx || opts.xx || opts.get || opts.keepttl) {
        // The hottest write: one load decides both notification steps.
        let notifying = ctx.notifying();
        if notifying {
            ctx.reap_for_notify(key);
        }
        ctx.store.upsert(
            db,
            key,
            value,
            ValueKind::String,
            expire.unwrap_or(NO_EXPIRY),
        );
        if notifying {
            notify_set(ctx, key, expire.is_some());
        }
        ctx.reply.ok();
        return;
    }
    let mut old: Option<Vec<u8>> = None;
    let outcome = ctx.store.rmw(db, key, ctx.now_ms, |entry, buf| {
        old = None;
        if opts.get
            && let Some(e) = entry
        {
            if !is_string(e.kind) {
                return Write::Keep(SetOutcome::WrongType);
            }
            old = Some(e.value.to_vec());
        }
        let found = entry.is_some();
        if (opts.nx && found) || (opts.xx && !found) {
            return Write::Keep(SetOutcome::Aborted);
        }
        let expire_at = match (opts.keepttl, entry) {
            (true, Some(e)) => e.expire_at,
            _ => expire.unwrap_or(NO_EXPIRY),
        };
        buf.clear();
        buf.extend_from_slice(value);
        Write::Put {
            kind: ValueKind::String,
            expire_at,
            result: SetOutcome::Done,
        }
    });
    let done = matches!(outcome, SetOutcome::Done);
    // Redis replies GET's old value before it sets, and OK after.
    if done && !opts.get {
        notify_set(ctx, key, expire.is_some());
    }
    if opts.get {
        if matches!(outcome, SetOutcome::WrongType) || old.is_some() {
            ctx.hit();
        } else {
            ctx.miss(key);
        }
    }
    match outcome {
        SetOutcome::WrongType => ctx.wrong_type(),
        _ if opts.get => match old {
            Some(v) => ctx.reply.bulk(&v),
            None => ctx.reply.null(),
        },
        SetOutcome::Aborted => ctx.reply.null(),
        SetOutcome::Done => ctx.reply.ok(),
    }
    if done && opts.get {
        notify_set(ctx, key, expire.is_some());
    }
}

/// Redis's events of `setGenericCommand`: `set`, then `expire` when it was given one.
fn notify_set(ctx: &mut Ctx<'_>, key: &[u8], expire: bool) {
    ctx.notify(flags::STRING, "set", key);
    if expire {
        ctx.notify(flags::GENERIC, "expire", key);
    }
}

/// `SETNX key value`
pub(super) fn setnx(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let value = args.get(2);
    let set = ctx
        .store
        .rmw(ctx.client.db, args.get(1), ctx.now_ms, |entry, buf| {
            if entry.is_some() {
                return Write::Keep(false);
            }
            buf.clear();
            buf.extend_from_slice(value);
            Write::Put {
                kind: ValueKind::String,
                expire_at: NO_EXPIRY,
                result: true,
            }
        });
    if set {
        ctx.notify(flags::STRING, "set", args.get(1));
    }
    ctx.reply.int(i64::from(set));
}

fn setex_generic(ctx: &mut Ctx<'_>, args: Args<'_>, kind: ExpireKind) {
    let at = match expire_at(kind, args.get(2), ctx.now_ms) {
        Ok(at) => at,
        Err(e) => return expire_error(ctx, e),
    };
    ctx.reap_for_notify(args.get(1));
    ctx.store.upsert(
        ctx.client.db,
        args.get(1),
        args.get(3),
        ValueKind::String,
        at,
    );
    notify_set(ctx, args.get(1), true);
    ctx.reply.ok();
}

/// `SETEX key seconds value`
pub(super) fn setex(ctx: &mut Ctx<'_>, args: Args<'_>) {
    setex_generic(ctx, args, ExpireKind::Ex);
}

/// `PSETEX key milliseconds value`
pub(super) fn psetex(ctx: &mut Ctx<'_>, args: Args<'_>) {
    setex_generic(ctx, args, ExpireKind::Px);
}

/// What a GET-and-modify command found.
enum Found {
    Missing,
    WrongType,
    Value(Vec<u8>),
    BadExpire(ExpireError),
}

/// Replies a [`Found`] as GET would, counting the lookup.
fn reply_found(ctx: &mut Ctx<'_>, key: &[u8], found: Found) {
    match found {
        Found::Missing => {
            ctx.miss(key);
            ctx.reply.null();
        }
        Found::WrongType => {
            ctx.hit();
            ctx.wrong_type();
        }
        Found::Value(v) => {
            ctx.hit();
            ctx.reply.bulk(&v);
        }
        Found::BadExpire(err) => {
            ctx.hit();
            expire_error(ctx, err);
        }
    }
}

/// `GETSET key value`: the old value, and the new one stored without a TTL.
pub(super) fn getset(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let value = args.get(2);
    let found = ctx
        .store
        .rmw(ctx.client.db, args.get(1), ctx.now_ms, |entry, buf| {
            let found = match entry {
                Some(e) if !is_string(e.kind) => return Write::Keep(Found::WrongType),
                Some(e) => Found::Value(e.value.to_vec()),
                None => Found::Missing,
            };
            buf.clear();
            buf.extend_from_slice(value);
            Write::Put {
                kind: ValueKind::String,
                expire_at: NO_EXPIRY,
                result: found,
            }
        });
    let set = !matches!(found, Found::WrongType);
    reply_found(ctx, args.get(1), found);
    if set {
        ctx.notify(flags::STRING, "set", args.get(1));
    }
}

/// `GETDEL key`
pub(super) fn getdel(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let found = ctx.store.rmw(
        ctx.client.db,
        args.get(1),
        ctx.now_ms,
        |entry, _| match entry {
            None => Write::Keep(Found::Missing),
            Some(e) if !is_string(e.kind) => Write::Keep(Found::WrongType),
            Some(e) => Write::Delete(Found::Value(e.value.to_vec())),
        },
    );
    let deleted = matches!(found, Found::Value(_));
    reply_found(ctx, args.get(1), found);
    if deleted {
        ctx.notify(flags::GENERIC, "del", args.get(1));
    }
}

/// `GETEX key [EX s|PX ms|EXAT ts|PXAT ms-ts|PERSIST]`
pub(super) fn getex(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let Some(opts) = parse_set_options(args, 2, false) else {
        ctx.syntax_error();
        return;
    };
    if opts.expire.is_none() && !opts.persist {
        get(ctx, args);
        return;
    }
    let now = ctx.now_ms;
    // Validated up front but reported, as Redis does, only once the key is known to be a string.
    let expire = opts
        .expire
        .map(|(kind, arg)| (kind, expire_at(kind, arg, now)));
    // The event of what was done: Redis replies the value first, then changes the key.
    let mut event = None;
    let found = ctx.store.rmw(ctx.client.db, args.get(1), now, |entry, _| {
        event = None;
        let e = match entry {
            None => return Write::Keep(Found::Missing),
            Some(e) if !is_string(e.kind) => return Write::Keep(Found::WrongType),
            Some(e) => e,
        };
        let value = Found::Value(e.value.to_vec());
        match expire {
            None => {
                if e.expire_at == NO_EXPIRY {
                    Write::Keep(value)
                } else {
                    event = Some("persist");
                    Write::SetExpiry {
                        expire_at: NO_EXPIRY,
                        result: value,
                    }
                }
            }
            Some((_, Err(err))) => Write::Keep(Found::BadExpire(err)),
            Some((kind, Ok(at))) => {
                if matches!(kind, ExpireKind::ExAt | ExpireKind::PxAt) && at <= now {
                    event = Some("del");
                    Write::Delete(value)
                } else {
                    event = Some("expire");
                    Write::SetExpiry {
                        expire_at: at,
                        result: value,
                    }
                }
            }
        }
    });
    reply_found(ctx, args.get(1), found);
    if let Some(event) = event {
        ctx.notify(flags::GENERIC, event, args.get(1));
    }
}

/// `MGET key [key ...]`: a missing key or one of another type is a null.
pub(super) fn mget(ctx: &mut Ctx<'_>, args: Args<'_>) {
    ctx.reply.array_len(args.len() - 1);
    let db = ctx.client.db;
    for key in args.iter_from(1) {
        let reply = &mut ctx.reply;
        let found = ctx.store.read(db, key, ctx.now_ms, |e| {
            if is_string(e.kind) {
                reply.bulk(e.value);
                true
            } else {
                false
            }
        });
        match found {
            Some(true) => ctx.hit(),
            Some(false) => {
                ctx.hit();
                ctx.reply.null();
            }
            None => {
                ctx.miss(key);
                ctx.reply.null();
            }
        }
    }
}

/// Redis replies an arity error when the key/value pairs do not pair up.
fn pairs_ok(ctx: &mut Ctx<'_>, args: Args<'_>) -> bool {
    if args.len().is_multiple_of(2) {
        let msg = format!(
            "ERR wrong number of arguments for '{}' command",
            ctx.spec.name
        );
        ctx.reply.error(&msg);
        return false;
    }
    true
}

/// `MSET key value [key value ...]` (EXCLUSIVE: all keys change at once).
pub(super) fn mset(ctx: &mut Ctx<'_>, args: Args<'_>) {
    if !pairs_ok(ctx, args) {
        return;
    }
    let db = ctx.client.db;
    for j in (1..args.len()).step_by(2) {
        ctx.reap_for_notify(args.get(j));
        ctx.store.upsert(
            db,
            args.get(j),
            args.get(j + 1),
            ValueKind::String,
            NO_EXPIRY,
        );
        ctx.notify(flags::STRING, "set", args.get(j));
    }
    ctx.reply.ok();
}

/// `MSETNX key value [key value ...]`: sets all or nothing (EXCLUSIVE, so the existence checks
/// and the writes are one atomic step).
pub(super) fn msetnx(ctx: &mut Ctx<'_>, args: Args<'_>) {
    if !pairs_ok(ctx, args) {
        return;
    }
    let db = ctx.client.db;
    let now = ctx.now_ms;
    if (1..args.len())
        .step_by(2)
        .any(|j| ctx.store.exists(db, args.get(j), now))
    {
        ctx.reply.int(0);
        return;
    }
    for j in (1..args.len()).step_by(2) {
        ctx.store.upsert(
            db,
            args.get(j),
            args.get(j + 1),
            ValueKind::String,
            NO_EXPIRY,
        );
        ctx.notify(flags::STRING, "set", args.get(j));
    }
    ctx.reply.int(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(parts: &[&str], set: bool) -> Option<SetOptions<'static>> {
        let mut data = Vec::new();
        let mut spans = Vec::new();
        for p in parts {
            spans.push((data.len() as u32, p.len() as u32));
            data.extend_from_slice(p.as_bytes());
        }
        let data: &'static [u8] = Box::leak(data.into_boxed_slice());
        let spans: &'static [(u32, u32)] = Box::leak(spans.into_boxed_slice());
        parse_set_options(Args::new(data, spans), if set { 3 } else { 2 }, set)
    }

    #[test]
    fn set_option_combinations() {
        assert!(opts(&["set", "k", "v", "NX", "GET"], true).is_some());
        assert!(opts(&["set", "k", "v", "XX", "NX"], true).is_none());
        assert!(opts(&["set", "k", "v", "EX", "1", "PX", "1"], true).is_none());
        assert!(opts(&["set", "k", "v", "EX", "1", "EX", "2"], true).is_some());
        assert!(opts(&["set", "k", "v", "KEEPTTL", "EX", "1"], true).is_none());
        assert!(opts(&["set", "k", "v", "EX"], true).is_none());
        assert!(opts(&["set", "k", "v", "PERSIST"], true).is_none());
        assert!(opts(&["getex", "k", "PERSIST"], false).is_some());
        assert!(opts(&["getex", "k", "PERSIST", "EX", "1"], false).is_none());
        assert!(opts(&["getex", "k", "NX"], false).is_none());
    }

    #[test]
    fn expiry_arithmetic() {
        use ExpireError::*;
        use ExpireKind::*;
        assert_eq!(expire_at(Ex, b"10", 1000), Ok(11_000));
        assert_eq!(expire_at(PxAt, b"5", 1000), Ok(5));
        assert_eq!(expire_at(Ex, b"0", 1000), Err(Invalid));
        assert_eq!(expire_at(Px, b"-1", 1000), Err(Invalid));
        assert_eq!(expire_at(Ex, b"9223372036854775807", 1000), Err(Invalid));
        assert_eq!(expire_at(Px, b"9223372036854775807", 1000), Err(Invalid));
        assert_eq!(expire_at(Ex, b"x", 1000), Err(NotInteger));
    }
}
