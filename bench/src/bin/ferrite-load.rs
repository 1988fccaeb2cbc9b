//! `ferrite-load`: a closed-loop load generator for Ferrite and Redis.
//!
//! ```text
//! ferrite-load load --keys 1000000 --value-size 1024            # preload key:0000000000..
//! ferrite-load run --keys 1000000 --value-size 1024 --dist zipf:0.99 --clients 50 --duration 30
//! ```
//!
//! Prints one line of `key=value` pairs (ops_per_sec, p50/p99/p99.9/max in ms, errors, misses)
//! on stdout, the first errors on stderr, and exits with status 1 if there were any errors (or,
//! for GET, misses: after a preload every key exists).

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ferrite_bench::load::keys::{Distribution, KeyChooser, MAX_KEYS};
use ferrite_bench::load::preload::{self, LoadConfig};
use ferrite_bench::load::run::{self, RunConfig, Stop, Summary, Workload};

#[derive(Parser)]
#[command(about = "Closed-loop GET/SET load over RESP, with per-request latency histograms")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Write every key once (pipelined SETs), for a preload.
    Load(LoadArgs),
    /// Send GET/SET requests for a duration or a number of requests and report latency.
    Run(RunArgs),
}

#[derive(Args)]
struct Common {
    /// Server host.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(short, long, default_value_t = 6379)]
    port: u16,
    /// Number of keys (key:0000000000 up to this count).
    #[arg(short = 'n', long)]
    keys: u64,
    /// Value size in bytes.
    #[arg(short = 'd', long, default_value_t = 1024)]
    value_size: usize,
    /// Seconds without a reply before a connection counts as hung.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
}

#[derive(Args)]
struct LoadArgs {
    #[command(flatten)]
    common: Common,
    /// Connections, each writing a contiguous share of the keys.
    #[arg(short, long, default_value_t = 4)]
    clients: usize,
    /// SETs sent together per connection.
    #[arg(short = 'P', long, default_value_t = 64)]
    pipeline: usize,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    common: Common,
    /// Connections.
    #[arg(short, long, default_value_t = 50)]
    clients: usize,
    /// Event-loop threads the connections are spread over.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Requests sent together before reading their replies.
    #[arg(short = 'P', long, default_value_t = 1)]
    pipeline: usize,
    /// Key choice: uniform or zipf:<theta> (0 < theta < 1).
    #[arg(long, default_value = "uniform")]
    dist: Distribution,
    /// get, set, or mixed (GET with probability --read-ratio).
    #[arg(long, default_value = "get")]
    command: String,
    /// Share of GETs in `mixed`.
    #[arg(long, default_value_t = 0.5)]
    read_ratio: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds measured (ignored with --requests).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Measure this many requests instead of a duration.
    #[arg(long)]
    requests: Option<u64>,
    /// Seed of the clients' random streams.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Do not compare GET replies with the preloaded values.
    #[arg(long)]
    no_verify: bool,
}

fn seconds(s: f64, what: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|_| format!("--{what} {s}: not a duration"))
}

fn check_common(c: &Common) -> Result<(String, Duration), String> {
    if c.keys == 0 || c.keys > MAX_KEYS {
        return Err(format!("--keys must be in 1..={MAX_KEYS}"));
    }
    Ok((
        format!("{}:{}", c.host, c.port),
        seconds(c.timeout, "timeout")?,
    ))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli.mode) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("ferrite-load: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the mode; `Ok(false)` if the server answered wrongly.
fn execute(mode: Mode) -> Result<bool, String> {
    match mode {
        Mode::Load(a) => {
            let (addr, timeout) = check_common(&a.common)?;
            if a.clients == 0 || a.pipeline == 0 {
                return Err("--clients and --pipeline must be positive".into());
            }
            let cfg = LoadConfig {
                addr,
                clients: a.clients,
                pipeline: a.pipeline,
                keys: a.common.keys,
                value_size: a.common.value_size,
                timeout,
            };
            let s = preload::load(&cfg).map_err(|e| format!("load: {e}"))?;
            let mb = s.ops as f64 * (a.common.value_size + 14) as f64 / 1e6;
            println!(
                "loaded={} secs={:.2} ops_per_sec={:.0} mb_per_sec={:.1} errors={}",
                s.ops,
                s.elapsed.as_secs_f64(),
                s.ops_per_sec(),
                mb / s.elapsed.as_secs_f64().max(1e-9),
                s.errors
            );
            Ok(report_errors(&s, false))
        }
        Mode::Run(a) => {
            let (addr, timeout) = check_common(&a.common)?;
            if a.clients == 0 || a.pipeline == 0 || a.threads == 0 {
                return Err("--clients, --threads and --pipeline must be positive".into());
            }
            let workload = match a.command.as_str() {
                "get" => Workload::Get,
                "set" => Workload::Set,
                "mixed" if (0.0..=1.0).contains(&a.read_ratio) => Workload::Mixed(a.read_ratio),
                "mixed" => return Err("--read-ratio must be in [0, 1]".into()),
                other => return Err(format!("--command {other}: expected get, set or mixed")),
            };
            let chooser = KeyChooser::new(&a.dist, a.common.keys).map_err(|e| e.to_string())?;
            let stop = match a.requests {
                Some(0) => return Err("--requests must be positive".into()),
                Some(n) => Stop::Requests(n),
                None => Stop::Duration(seconds(a.duration, "duration")?),
            };
            let cfg = RunConfig {
                addr,
                clients: a.clients,
                threads: a.threads,
                pipeline: a.pipeline,
                keys: a.common.keys,
                value_size: a.common.value_size,
                chooser,
                workload,
                warmup: seconds(a.warmup, "warmup")?,
                stop,
                timeout,
                seed: a.seed,
                verify: !a.no_verify,
            };
            let s = run::run(&cfg).map_err(|e| format!("run: {e}"))?;
            println!("{}", s.line());
            Ok(report_errors(&s, workload != Workload::Set))
        }
    }
}

/// Prints the first problems on stderr; whether the run was clean.
fn report_errors(s: &Summary, misses_are_errors: bool) -> bool {
    for e in &s.first_errors {
        eprintln!("ferrite-load: {e}");
    }
    if misses_are_errors && s.misses > 0 {
        eprintln!(
            "ferrite-load: {} GETs answered nil for preloaded keys",
            s.misses
        );
    }
    s.errors == 0 && !(misses_are_errors && s.misses > 0)
}
