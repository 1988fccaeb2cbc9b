//! The preload: every key written once with pipelined SETs, over a few blocking connections
//! (deep pipelines make context switches rare, so threads are good enough here).

use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::keys;
use super::resp::{Reply, ReplyReader};
use super::run::{self, Summary};

/// Parameters of the preload.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// `host:port`.
    pub addr: String,
    /// Connections, one thread each, each writing a contiguous share of the keys.
    pub clients: usize,
    /// SETs in flight per connection.
    pub pipeline: usize,
    /// Keys 0..keys are written.
    pub keys: u64,
    /// Value length.
    pub value_size: usize,
    /// A reply later than this is reported as a hang.
    pub timeout: Duration,
}

/// Writes every key once; `Summary::ops` is the number of keys written and `latency` the
/// batches' round trips.
pub fn load(cfg: &LoadConfig) -> io::Result<Summary> {
    assert!(cfg.clients > 0 && cfg.pipeline > 0);
    assert!(cfg.keys <= keys::MAX_KEYS);
    let streams = (0..cfg.clients)
        .map(|_| run::connect(&cfg.addr, cfg.timeout))
        .collect::<io::Result<Vec<_>>>()?;
    let start = Instant::now();
    let errors = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for (i, stream) in streams.into_iter().enumerate() {
        let from = cfg.keys * i as u64 / cfg.clients as u64;
        let to = cfg.keys * (i as u64 + 1) / cfg.clients as u64;
        let cfg = cfg.clone();
        let errors = Arc::clone(&errors);
        handles.push(
            thread::Builder::new()
                .name(format!("load-{i}"))
                .spawn(move || {
                    let r = load_range(&cfg, stream, from, to);
                    if let Err(e) = &r {
                        let mut errors = errors.lock().unwrap_or_else(|p| p.into_inner());
                        errors.push(e.clone());
                    }
                    r
                })?,
        );
    }
    let mut summary = Summary {
        ops: 0,
        elapsed: Duration::ZERO,
        latency: run::histogram(),
        errors: 0,
        misses: 0,
        first_errors: Vec::new(),
    };
    for h in handles {
        match h
            .join()
            .map_err(|_| io::Error::other("a load thread panicked"))?
        {
            Ok((written, hist)) => {
                summary.ops += written;
                summary
                    .latency
                    .add(&hist)
                    .map_err(|e| io::Error::other(format!("merging histograms: {e:?}")))?;
            }
            Err(_) => summary.errors += 1,
        }
    }
    summary.elapsed = start.elapsed();
    summary.first_errors = std::mem::take(&mut *errors.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(summary)
}

fn load_range(
    cfg: &LoadConfig,
    stream: TcpStream,
    from: u64,
    to: u64,
) -> Result<(u64, Histogram<u64>), String> {
    let mut writer = stream
        .try_clone()
        .map_err(|e| format!("cloning the socket: {e}"))?;
    let mut stream = stream;
    let mut reader = ReplyReader::new();
    let mut request = Vec::with_capacity(cfg.pipeline * (cfg.value_size + 64));
    let mut hist = run::histogram();
    let mut next = from;
    while next < to {
        let end = (next + cfg.pipeline as u64).min(to);
        request.clear();
        for index in next..end {
            run::encode(&mut request, index, false, cfg.value_size);
        }
        let sent = Instant::now();
        writer
            .write_all(&request)
            .map_err(|e| format!("sending SETs from key {next}: {e}"))?;
        for index in next..end {
            match reader.next_blocking(&mut stream) {
                Ok(Reply::Status(b"OK")) => {}
                Ok(other) => {
                    return Err(format!("SET key index {index}: unexpected reply {other:?}"));
                }
                Err(e) => {
                    return Err(format!(
                        "SET key index {index}: {}",
                        run::describe_read_error(&e, cfg.timeout)
                    ));
                }
            }
        }
        hist.saturating_record((sent.elapsed().as_micros() as u64).max(1));
        next = end;
    }
    Ok((to - from, hist))
}
