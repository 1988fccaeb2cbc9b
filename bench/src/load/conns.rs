//! The event loop of a run: one thread drives many non-blocking connections with epoll, each a
//! closed loop of batches (`pipeline` requests written together, then their replies read).
//! One thread per connection would spend the load generator's core on context switches and
//! become the bottleneck long before the server does.

use std::io::{self, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

use super::resp::ReplyReader;
use super::rng::SplitMix64;
use super::run::{self, Check, LoopResult, MEASURE, RunConfig, STOPPED, Shared, Stop, Workload};

/// How long one `epoll_wait` may sleep before the loop looks at the phase and the deadlines.
const WAIT_MS: u16 = 20;

/// One connection's closed loop.
struct Conn {
    stream: TcpStream,
    /// Its index, the epoll token.
    token: u64,
    reader: ReplyReader,
    /// The batch's requests, written from `written` on.
    request: Vec<u8>,
    written: usize,
    /// Registered for EPOLLOUT (a write that did not fit in the socket buffer).
    want_write: bool,
    /// The batch's keys and whether each is a GET.
    batch: Vec<(u64, bool)>,
    answered: usize,
    sent: Instant,
    /// The phase when the batch was sent: only batches sent in MEASURE count.
    sent_phase: u8,
    live: bool,
}

/// Runs connections `streams` until the phase is STOPPED, the request budget is spent, or every
/// connection has failed.
pub(super) fn drive(
    cfg: &RunConfig,
    streams: Vec<TcpStream>,
    shared: &Shared,
    seed: u64,
) -> LoopResult {
    let mut out = LoopResult {
        ops: 0,
        errors: 0,
        misses: 0,
        latency: run::histogram(),
        finished: Instant::now(),
    };
    let fail = |out: &mut LoopResult, what: String| {
        out.errors += 1;
        shared.note_error(what);
    };
    let epoll = match Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC) {
        Ok(e) => e,
        Err(e) => {
            fail(&mut out, format!("epoll_create1: {e}"));
            return out;
        }
    };
    let mut conns = Vec::with_capacity(streams.len());
    for (i, stream) in streams.into_iter().enumerate() {
        let registered = stream
            .set_nonblocking(true)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                epoll
                    .add(&stream, EpollEvent::new(EpollFlags::EPOLLIN, i as u64))
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = registered {
            fail(&mut out, format!("setting up a connection: {e}"));
            return out;
        }
        conns.push(Conn {
            stream,
            token: i as u64,
            reader: ReplyReader::new(),
            request: Vec::with_capacity(cfg.pipeline * (cfg.value_size + 64)),
            written: 0,
            want_write: false,
            batch: Vec::with_capacity(cfg.pipeline),
            answered: 0,
            sent: Instant::now(),
            sent_phase: run::WARMUP,
            live: true,
        });
    }
    let mut rng = SplitMix64::new(seed);
    let mut scratch = Vec::with_capacity(cfg.value_size);
    for c in &mut conns {
        if let Err(e) = start_batch(c, cfg, shared, &mut rng, &epoll) {
            fail(&mut out, e);
        }
    }
    let mut events = vec![EpollEvent::empty(); conns.len().max(1)];
    while conns.iter().any(|c| c.live) && shared.phase.load(Ordering::Relaxed) != STOPPED {
        let n = match epoll.wait(&mut events, EpollTimeout::from(WAIT_MS)) {
            Ok(n) => n,
            Err(Errno::EINTR) => 0,
            Err(e) => {
                fail(&mut out, format!("epoll_wait: {e}"));
                break;
            }
        };
        for ev in &events[..n] {
            let c = &mut conns[ev.data() as usize];
            if !c.live {
                continue;
            }
            let flags = ev.events();
            if flags.contains(EpollFlags::EPOLLOUT)
                && let Err(e) = flush(c, &epoll)
            {
                c.live = false;
                fail(&mut out, e);
                continue;
            }
            if flags.intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP)
                && let Err(e) = receive(c, cfg, shared, &mut rng, &epoll, &mut out, &mut scratch)
            {
                c.live = false;
                fail(&mut out, e);
            }
        }
        let now = Instant::now();
        for c in conns
            .iter_mut()
            .filter(|c| c.live && c.answered < c.batch.len())
        {
            if now.duration_since(c.sent) > cfg.timeout {
                c.live = false;
                fail(
                    &mut out,
                    format!("no reply within {:?} (server hung?)", cfg.timeout),
                );
            }
        }
    }
    out.finished = Instant::now();
    out
}

/// Reads what arrived and handles every complete reply; starts the next batch when the
/// current one is answered.
fn receive(
    c: &mut Conn,
    cfg: &RunConfig,
    shared: &Shared,
    rng: &mut SplitMix64,
    epoll: &Epoll,
    out: &mut LoopResult,
    scratch: &mut Vec<u8>,
) -> Result<(), String> {
    match c.reader.read_from(&mut c.stream) {
        Ok(_) => {}
        Err(e)
            if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted =>
        {
            return Ok(());
        }
        Err(e) => return Err(run::describe_read_error(&e, cfg.timeout)),
    }
    while c.answered < c.batch.len() {
        let reply = match c.reader.try_next() {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()),
            Err(e) => return Err(format!("reading a reply: {e}")),
        };
        let latency = c.sent.elapsed();
        let (index, get) = c.batch[c.answered];
        c.answered += 1;
        match run::check(&reply, index, get, cfg, scratch) {
            Check::Ok => {}
            Check::Miss => out.misses += 1,
            Check::Wrong(what) => {
                out.errors += 1;
                shared.note_error(what);
            }
        }
        // A request counts if it was sent in the measured phase and answered before its end
        // (requests straddling the end are few and would stretch the phase).
        if c.sent_phase == MEASURE && shared.phase.load(Ordering::Relaxed) == MEASURE {
            out.ops += 1;
            out.latency
                .saturating_record((latency.as_micros() as u64).max(1));
        }
    }
    start_batch(c, cfg, shared, rng, epoll)
}

/// Chooses the next batch's keys and commands and starts writing it; a connection whose
/// share of the request budget is spent stops (`live` false, not an error).
fn start_batch(
    c: &mut Conn,
    cfg: &RunConfig,
    shared: &Shared,
    rng: &mut SplitMix64,
    epoll: &Epoll,
) -> Result<(), String> {
    let phase = shared.phase.load(Ordering::Relaxed);
    let mut n = cfg.pipeline;
    if phase == MEASURE && matches!(cfg.stop, Stop::Requests(_)) {
        let left = shared
            .budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_sub(n as u64))
            })
            .unwrap_or(0);
        n = n.min(left as usize);
        if n == 0 {
            c.live = false;
            c.batch.clear();
            return Ok(());
        }
    }
    c.request.clear();
    c.batch.clear();
    for _ in 0..n {
        let index = cfg.chooser.next(rng);
        let get = match cfg.workload {
            Workload::Get => true,
            Workload::Set => false,
            Workload::Mixed(p) => rng.next_f64() < p,
        };
        run::encode(&mut c.request, index, get, cfg.value_size);
        c.batch.push((index, get));
    }
    c.written = 0;
    c.answered = 0;
    c.sent = Instant::now();
    c.sent_phase = phase;
    flush(c, epoll)
}

/// Writes as much of the batch as the socket takes; asks for EPOLLOUT while some is left.
fn flush(c: &mut Conn, epoll: &Epoll) -> Result<(), String> {
    while c.written < c.request.len() {
        match c.stream.write(&c.request[c.written..]) {
            Ok(0) => return Err("sending: the socket took no bytes".into()),
            Ok(n) => c.written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(format!("sending: {e}")),
        }
    }
    let want = c.written < c.request.len();
    if want != c.want_write {
        let flags = if want {
            EpollFlags::EPOLLIN | EpollFlags::EPOLLOUT
        } else {
            EpollFlags::EPOLLIN
        };
        let mut ev = EpollEvent::new(flags, c.token);
        epoll
            .modify(&c.stream, &mut ev)
            .map_err(|e| format!("epoll_ctl: {e}"))?;
        c.want_write = want;
    }
    Ok(())
}
