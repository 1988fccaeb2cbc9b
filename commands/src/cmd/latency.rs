//! LATENCY LATEST / HISTORY / RESET / GRAPH / DOCTOR / HELP over the process's
//! [`crate::latency::LatencyMonitor`], and LATENCY HISTOGRAM over the per-command
//! distributions of [`crate::stats::latency_hist`] (Redis's `latencyCommand`).

use std::sync::atomic::Ordering;

use crate::args::Args;
use crate::cmd::config_cmd::reply_help;
use crate::ctx::Ctx;
use crate::latency::{doctor, sparkline::Sequence};
use crate::table::{self, CmdId, CommandSpec, flags::*};

/// Width of LATENCY GRAPH (Redis's `LATENCY_GRAPH_COLS`).
const GRAPH_COLS: usize = 80;
/// Height of LATENCY GRAPH's bars, in rows.
const GRAPH_ROWS: usize = 4;

fn now_secs() -> i64 {
    (crate::server::unix_ms() / 1000) as i64
}

/// The container is never run itself: the dispatcher resolves its subcommands.
fn latency(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    ctx.reply
        .error("ERR wrong number of arguments for 'latency' command");
}

/// `LATENCY LATEST`: per event, its newest sample and its worst ever.
fn latest(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    let events = ctx.server.latency.events();
    ctx.reply.array_len(events.len());
    for (name, series) in &events {
        let last = series.latest();
        ctx.reply.array_len(4);
        ctx.reply.bulk(name.as_bytes());
        ctx.reply.int(last.time);
        ctx.reply
            .int(i64::try_from(last.latency).unwrap_or(i64::MAX));
        ctx.reply.int(i64::try_from(series.max).unwrap_or(i64::MAX));
    }
}

/// `LATENCY HISTORY event`: its samples, oldest first (none for an unknown event).
fn history(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let Some(series) = ctx.server.latency.series(args.get(2)) else {
        ctx.reply.array_len(0);
        return;
    };
    let samples: Vec<_> = series.samples().collect();
    ctx.reply.array_len(samples.len());
    for s in samples {
        ctx.reply.array_len(2);
        ctx.reply.int(s.time);
        ctx.reply.int(i64::try_from(s.latency).unwrap_or(i64::MAX));
    }
}

/// `LATENCY RESET [event ...]`: the number of events dropped.
fn reset(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let n = if args.len() == 2 {
        ctx.server.latency.reset(None)
    } else {
        args.iter_from(2)
            .map(|e| ctx.server.latency.reset(Some(e)))
            .sum()
    };
    ctx.reply.int(i64::try_from(n).unwrap_or(i64::MAX));
}

/// `LATENCY GRAPH event`: Redis's `latencyCommandGenSparkeline`, labels in time elapsed.
fn graph(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let event = args.get(2);
    let Some(series) = ctx.server.latency.series(event) else {
        let event = event.split(|&b| b == 0).next().unwrap_or_default();
        let msg = [&b"ERR No samples available for event '"[..], event, b"'"].concat();
        ctx.reply.error_bytes(&msg);
        return;
    };
    let now = now_secs();
    let mut seq = Sequence::default();
    let (mut min, mut max) = (None::<u64>, 0u64);
    for s in series.samples() {
        min = Some(min.map_or(s.latency, |m| m.min(s.latency)));
        max = max.max(s.latency);
        let elapsed = now - s.time;
        let label = if elapsed < 60 {
            format!("{elapsed}s")
        } else if elapsed < 3600 {
            format!("{}m", elapsed / 60)
        } else if elapsed < 3600 * 24 {
            format!("{}h", elapsed / 3600)
        } else {
            format!("{}d", elapsed / (3600 * 24))
        };
        seq.add(s.latency as f64, &label);
    }
    let mut out = format!(
        "{} - high {} ms, low {} ms (all time high {} ms)\n",
        String::from_utf8_lossy(event),
        max,
        min.unwrap_or(0),
        series.max
    )
    .into_bytes();
    out.extend(std::iter::repeat_n(b'-', GRAPH_COLS));
    out.push(b'\n');
    seq.render(&mut out, GRAPH_COLS, GRAPH_ROWS);
    ctx.reply.verbatim("txt", &out);
}

/// `LATENCY DOCTOR`
fn doctor(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    let config = &ctx.server.config;
    let settings = doctor::Settings {
        threshold_ms: config.latency_monitor_threshold.load(Ordering::Relaxed),
        slowlog_us: config.slowlog_log_slower_than.load(Ordering::Relaxed),
        hz: crate::config::Config::load(&config.hz),
        fsync_always: config.value("appendfsync").as_deref() == Some("always"),
        anon_huge_bytes: doctor::anon_huge_pages_bytes(),
        now: now_secs(),
        fork_rate: ctx.server.latency.fork_rate(),
    };
    let text = doctor::report(&ctx.server.latency.events(), &settings);
    ctx.reply.verbatim("txt", text.as_bytes());
}

/// `LATENCY HISTOGRAM [command ...]`: per command that ran, its calls and the cumulative
/// distribution of their durations; every such command without arguments.
fn histogram(ctx: &mut Ctx<'_>, args: Args<'_>) {
    let totals = ctx.server.stats.latency_totals();
    let ran = |id: CmdId| {
        totals
            .get(usize::from(id))
            .is_some_and(|h| h.as_ref().is_some_and(|h| h.total() > 0))
    };
    let mut shown: Vec<CmdId> = Vec::new();
    if args.len() == 2 {
        shown.extend((0..table::command_count() as CmdId).filter(|&id| ran(id)));
    } else {
        for name in args.iter_from(2) {
            let Some((spec, id)) = lookup_full(name) else {
                continue;
            };
            if ran(id) {
                shown.push(id);
            }
            // A container's subcommands follow it.
            let subs = (0..table::command_count() as CmdId).filter(|&sub| {
                table::by_id(sub).is_some_and(|(_, p)| p.is_some_and(|p| std::ptr::eq(p, spec)))
            });
            shown.extend(subs.filter(|&sub| ran(sub)));
        }
    }
    let r = &mut ctx.reply;
    r.map_len(shown.len());
    for id in shown {
        let Some(((spec, parent), h)) = table::by_id(id).zip(totals[usize::from(id)].as_ref())
        else {
            continue;
        };
        r.bulk(full_name(spec, parent).as_bytes());
        r.map_len(2);
        r.bulk(b"calls");
        r.int(i64::try_from(h.total()).unwrap_or(i64::MAX));
        r.bulk(b"histogram_usec");
        let buckets = h.log_buckets();
        r.map_len(buckets.len());
        for (micros, cumulative) in buckets {
            r.int(i64::try_from(micros).unwrap_or(i64::MAX));
            r.int(i64::try_from(cumulative).unwrap_or(i64::MAX));
        }
    }
}

/// `get`, or `config|get` for a subcommand.
pub(crate) fn full_name(spec: &CommandSpec, parent: Option<&CommandSpec>) -> String {
    match parent {
        Some(p) => format!("{}|{}", p.name, spec.name),
        None => spec.name.to_owned(),
    }
}

/// Redis's `lookupCommandBySds`: `name` or `container|sub`, case-insensitively.
fn lookup_full(name: &[u8]) -> Option<(&'static CommandSpec, CmdId)> {
    let mut parts = name.split(|&b| b == b'|');
    let first = parts.next()?;
    let (top, top_id) = table::lookup_id(first)?;
    let Some(sub) = parts.next() else {
        return Some((top, top_id));
    };
    if parts.next().is_some() || top.subcommands.is_empty() {
        return None;
    }
    table::lookup_sub(top, top_id, sub)
}

const HELP: &[&str] = &[
    "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the \
     specified command names.",
    "    If no commands are specified then all histograms are replied.",
    "HELP",
    "    Prints this help.",
];

/// `LATENCY HELP` (Redis's text, HISTOGRAM included).
fn help(ctx: &mut Ctx<'_>, _args: Args<'_>) {
    reply_help(&mut ctx.reply, HELP);
}

/// One of the administrative LATENCY subcommands (all but HELP).
const fn admin_sub(
    name: &'static str,
    arity: i32,
    summary: &'static str,
    handler: crate::table::Handler,
) -> CommandSpec {
    CommandSpec::new(name, arity, "server", handler)
        .with_flags(ADMIN | NOSCRIPT | LOADING | STALE)
        .with_acl(&["admin", "slow", "dangerous"])
        .with_docs("2.8.13", summary, "O(1)")
}

// As Redis's `commands.c` lists them (its replies follow a per-process random dict order).
const SUBCOMMANDS: &[CommandSpec] = &[
    admin_sub(
        "doctor",
        2,
        "Return a human readable latency analysis report.",
        doctor,
    ),
    admin_sub("graph", 3, "Return a latency graph for the event.", graph),
    CommandSpec {
        name: "help",
        arity: 2,
        flags: LOADING | STALE,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["slow"],
        group: "server",
        since: "2.8.13",
        summary: "Show helpful text about the different subcommands.",
        complexity: "O(1)",
        handler: help,
        subcommands: &[],
    },
    CommandSpec {
        name: "histogram",
        arity: -2,
        flags: ADMIN | NOSCRIPT | LOADING | STALE,
        first_key: 0,
        last_key: 0,
        step: 0,
        acl: &["admin", "slow", "dangerous"],
        group: "server",
        since: "7.0.0",
        summary: "Return the cumulative distribution of latencies of a subset of commands or \
                  all.",
        complexity: "O(N) where N is the number of commands with latency information being \
                     retrieved.",
        handler: histogram,
        subcommands: &[],
    },
    admin_sub(
        "history",
        3,
        "Return timestamp-latency samples for the event.",
        history,
    ),
    admin_sub(
        "latest",
        2,
        "Return the latest latency samples for all events.",
        latest,
    ),
    admin_sub(
        "reset",
        -2,
        "Reset latency data for one or more events.",
        reset,
    ),
];

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[CommandSpec {
    name: "latency",
    arity: -2,
    flags: 0,
    first_key: 0,
    last_key: 0,
    step: 0,
    acl: &["slow"],
    group: "server",
    since: "2.8.13",
    summary: "A container for latency diagnostics commands",
    complexity: "Depends on subcommand.",
    handler: latency,
    subcommands: SUBCOMMANDS,
}];
