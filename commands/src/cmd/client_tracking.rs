//! CLIENT TRACKING, CLIENT CACHING, CLIENT GETREDIR and CLIENT TRACKINGINFO (Redis's
//! `networking.c` and `tracking.c`): turning client-side caching on and off for a connection,
//! with Redis's option checks and error texts. The table and the invalidations are in
//! [`crate::tracking`].

use crate::args::{Args, parse_i64};
use crate::ctx::Ctx;
use crate::tracking::{ClientTracking, Mode};

/// `CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX prefix ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]`
pub(super) fn tracking(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let mut mode = Mode::default();
    let mut j = 3;
    while j < args.len() {
        let opt = args.get(j);
        let more = j + 1 < args.len();
        if opt.eq_ignore_ascii_case(b"redirect") && more {
            j += 1;
            if mode.redirect != 0 {
                ctx.reply
                    .error("ERR A client can only redirect to a single other client");
                return;
            }
            let Some(id) = parse_i64(args.get(j)) else {
                ctx.not_integer();
                return;
            };
            // Required to exist now, even if it may disconnect later (Redis's sanity check).
            if u64::try_from(id)
                .ok()
                .and_then(|id| ctx.server.clients.get(id))
                .is_none()
            {
                ctx.reply
                    .error("ERR The client ID you want redirect to does not exist");
                return;
            }
            mode.redirect = id as u64;
        } else if opt.eq_ignore_ascii_case(b"bcast") {
            mode.bcast = true;
        } else if opt.eq_ignore_ascii_case(b"optin") {
            mode.optin = true;
        } else if opt.eq_ignore_ascii_case(b"optout") {
            mode.optout = true;
        } else if opt.eq_ignore_ascii_case(b"noloop") {
            mode.noloop = true;
        } else if opt.eq_ignore_ascii_case(b"prefix") && more {
            j += 1;
            mode.prefixes.push(args.get(j).to_vec());
        } else {
            ctx.syntax_error();
            return;
        }
        j += 1;
    }
    let on_off = args.get(2);
    if on_off.eq_ignore_ascii_case(b"on") {
        if let Err(msg) = check_on(ctx, &mode) {
            ctx.reply.error(&msg);
            return;
        }
        if mode.bcast
            && let Some((msg, fatal)) = prefix_collision(ctx, &mode.prefixes)
        {
            ctx.reply.error(&msg);
            if fatal {
                return;
            }
            // Redis reports a collision among the later prefixes given and goes on to enable
            // tracking and answer OK as well (`checkPrefixCollisionsOrReply` returns the
            // index, non-zero past the first): both replies are sent, as there.
        }
        let shared = ctx.client.shared.clone();
        ctx.server.tracking.enable(ctx.store, &shared, &mode);
        let t = ctx.client.tracking.get_or_insert_with(Box::default);
        let mut prefixes = std::mem::take(&mut t.mode.prefixes);
        for p in mode.prefixes.drain(..) {
            if !prefixes.contains(&p) {
                prefixes.push(p);
            }
        }
        mode.prefixes = prefixes;
        t.mode = mode;
    } else if on_off.eq_ignore_ascii_case(b"off") {
        if ctx.client.tracking.take().is_some() {
            ctx.server
                .tracking
                .disable(&ctx.server.store, ctx.client.id);
        }
    } else {
        ctx.syntax_error();
        return;
    }
    ctx.reply.ok();
}

/// The checks Redis makes before enabling tracking, in its order.
fn check_on(ctx: &Ctx<'_>, mode: &Mode) -> Result<(), String> {
    if !mode.bcast && !mode.prefixes.is_empty() {
        return Err("ERR PREFIX option requires BCAST mode to be enabled".into());
    }
    let now = ctx.client.tracking.as_ref().map(|t| &t.mode);
    if now.is_some_and(|m| m.bcast != mode.bcast) {
        return Err("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.".into());
    }
    if mode.bcast && (mode.optin || mode.optout) {
        return Err("ERR OPTIN and OPTOUT are not compatible with BCAST".into());
    }
    if mode.optin && mode.optout {
        return Err("ERR You can't specify both OPTIN mode and OPTOUT mode".into());
    }
    if now.is_some_and(|m| (mode.optin && m.optout) || (mode.optout && m.optin)) {
        return Err("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.".into());
    }
    Ok(())
}

/// `checkPrefixCollisionsOrReply`: the first overlap of a new prefix with one the client has,
/// or with a later new one; `true` when Redis stops there (an overlap with an existing prefix,
/// or among the new ones found from the first).
fn prefix_collision(ctx: &Ctx<'_>, asked: &[Vec<u8>]) -> Option<(String, bool)> {
    let mut have: Vec<Vec<u8>> = match &ctx.client.tracking {
        // BCAST without prefixes registered the empty prefix.
        Some(t) if t.mode.bcast && t.mode.prefixes.is_empty() => vec![Vec::new()],
        Some(t) => t.mode.prefixes.clone(),
        None => Vec::new(),
    };
    // Redis walks them in its radix tree's (byte) order.
    have.sort();
    let shown = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let starts = |a: &[u8], b: &[u8]| a.starts_with(b) || b.starts_with(a);
    for (i, p) in asked.iter().enumerate() {
        if let Some(h) = have.iter().find(|h| starts(h, p)) {
            let msg = format!(
                "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                shown(p),
                shown(h)
            );
            return Some((msg, true));
        }
        if let Some(q) = asked[i + 1..].iter().find(|q| starts(p, q)) {
            let msg = format!(
                "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                shown(p),
                shown(q)
            );
            return Some((msg, i == 0));
        }
    }
    None
}

/// `CLIENT CACHING YES|NO`
pub(super) fn caching(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let Some(t) = ctx.client.tracking.as_mut() else {
        ctx.reply.error("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled");
        return;
    };
    let v = args.get(2);
    if v.eq_ignore_ascii_case(b"yes") {
        if !t.mode.optin {
            ctx.reply.error(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            );
            return;
        }
        t.caching = true;
    } else if v.eq_ignore_ascii_case(b"no") {
        if !t.mode.optout {
            ctx.reply.error(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            );
            return;
        }
        t.caching = true;
    } else {
        ctx.syntax_error();
        return;
    }
    ctx.reply.ok();
}

/// `CLIENT GETREDIR`: -1 when not tracking, 0 without a redirect.
pub(super) fn getredir(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    let redir = ctx
        .client
        .tracking
        .as_ref()
        .map_or(-1, |t| t.mode.redirect as i64);
    ctx.reply.int(redir);
}

/// `CLIENT TRACKINGINFO`
pub(super) fn trackinginfo(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    let t: Option<&ClientTracking> = ctx.client.tracking.as_deref();
    let broken = ctx
        .server
        .tracking
        .info(ctx.client.id)
        .is_some_and(|(_, broken)| broken);
    let mut flags: Vec<&str> = Vec::new();
    match t {
        None => flags.push("off"),
        Some(t) => {
            flags.push("on");
            let m = &t.mode;
            if m.bcast {
                flags.push("bcast");
            }
            if m.optin {
                flags.push("optin");
                if t.caching {
                    flags.push("caching-yes");
                }
            }
            if m.optout {
                flags.push("optout");
                if t.caching {
                    flags.push("caching-no");
                }
            }
            if m.noloop {
                flags.push("noloop");
            }
            if broken {
                flags.push("broken_redirect");
            }
        }
    }
    let r = &mut ctx.reply;
    r.map_len(3);
    r.bulk(b"flags");
    r.set_len(flags.len());
    for f in flags {
        r.bulk(f.as_bytes());
    }
    r.bulk(b"redirect");
    r.int(t.map_or(-1, |t| t.mode.redirect as i64));
    r.bulk(b"prefixes");
    let mut prefixes: Vec<&[u8]> = match t {
        Some(t) if t.mode.bcast && t.mode.prefixes.is_empty() => vec![b""],
        Some(t) => t.mode.prefixes.iter().map(Vec::as_slice).collect(),
        None => Vec::new(),
    };
    // Redis keeps them in a radix tree: in byte order.
    prefixes.sort();
    r.array_len(prefixes.len());
    for p in prefixes {
        r.bulk(p);
    }
}
