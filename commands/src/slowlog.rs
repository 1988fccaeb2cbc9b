//! The slow log (Redis's `slowlog.c`): the latest `slowlog-max-len` commands that ran for at
//! least `slowlog-log-slower-than` microseconds, newest first, for the whole process.
//!
//! Each reactor thread times its own commands (the clock read INFO commandstats already makes,
//! see [`crate::stats::RunTimer::lap`]) and compares the ticks against the threshold with
//! [`may_be_slow`]: a multiplication and a comparison, no lock, no conversion. Only a command
//! that may be slow enough reaches [`SlowLog::push`], which converts the ticks exactly, takes
//! the lock, copies the arguments and hands out the next id, so the entries of every thread
//! share one increasing sequence.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};

use crate::args::Args;
use crate::config::Config;
use crate::resp::Reply;

/// At most this many arguments are kept per entry; the last one kept says how many more
/// there were (Redis's `SLOWLOG_ENTRY_MAX_ARGC`).
pub const MAX_ARGC: usize = 32;
/// Arguments are cut to this many bytes (Redis's `SLOWLOG_ENTRY_MAX_STRING`).
pub const MAX_STRING: usize = 128;
/// What a redacted argument (a password) is logged as (Redis's `shared.redacted`).
pub const REDACTED: &[u8] = b"(redacted)";

/// A lower bound of the clock's ticks per microsecond (the TSC of any x86_64 CPU still in use
/// runs above 1 GHz; the `Instant` fallback counts nanoseconds), so that `threshold *
/// MIN_TICKS_PER_US` ticks is less time than the threshold and the hot path can compare raw
/// ticks. A command past it is converted exactly before it is logged.
const MIN_TICKS_PER_US: u64 = 256;

/// Whether a command that took `ticks` clock ticks may have run for `threshold_us` or more
/// (never false for one that did). `threshold_us` is `slowlog-log-slower-than`, at least 0.
#[inline]
pub fn may_be_slow(ticks: u64, threshold_us: i64) -> bool {
    ticks >= (threshold_us as u64).saturating_mul(MIN_TICKS_PER_US)
}

/// One logged command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Unique, increasing from 0 for the life of the process (SLOWLOG RESET keeps counting).
    pub id: u64,
    /// Unix time in seconds when the command was logged.
    pub time: i64,
    /// How long the command ran, in microseconds.
    pub duration_us: u64,
    /// The arguments, cut as [`MAX_ARGC`] and [`MAX_STRING`] say, passwords redacted.
    pub args: Vec<Box<[u8]>>,
    /// The client's address, `ip:port`.
    pub addr: Box<str>,
    /// The client's name (empty: none).
    pub name: Box<[u8]>,
}

/// Who ran a logged command.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// `ip:port` (`?:0` for a script's commands, as Redis's Lua client).
    pub addr: &'a str,
    /// CLIENT SETNAME, empty when none.
    pub name: &'a [u8],
}

#[derive(Debug, Default)]
struct Inner {
    /// Newest first.
    entries: VecDeque<Entry>,
    next_id: u64,
}

/// The process's slow log.
#[derive(Debug, Default)]
pub struct SlowLog {
    inner: Mutex<Inner>,
}

impl SlowLog {
    /// Redis's `slowlogPushEntryIfNeeded`: logs the command if it ran for at least
    /// `slowlog-log-slower-than`, then trims the log to `slowlog-max-len`. Nothing happens
    /// while the threshold is negative. `redacted` lists argument positions that are logged as
    /// [`REDACTED`].
    pub fn push(
        &self,
        config: &Config,
        args: Args<'_>,
        redacted: &[u32],
        duration_us: u64,
        caller: Caller<'_>,
    ) {
        let threshold = config.slowlog_log_slower_than.load(Ordering::Relaxed);
        if threshold < 0 {
            return;
        }
        let max_len = config.slowlog_max_len.load(Ordering::Relaxed);
        // Built before the lock: other threads' commands only wait for the list update.
        let entry = (duration_us >= threshold as u64).then(|| Entry {
            id: 0,
            time: (crate::server::unix_ms() / 1000) as i64,
            duration_us,
            args: entry_args(args, redacted),
            addr: caller.addr.into(),
            name: caller.name.into(),
        });
        let mut inner = self.lock();
        if let Some(mut entry) = entry {
            entry.id = inner.next_id;
            inner.next_id += 1;
            inner.entries.push_front(entry);
        }
        let keep = usize::try_from(max_len).unwrap_or(usize::MAX);
        inner.entries.truncate(keep);
    }

    /// Trims the log to `slowlog-max-len` if the slow log is on: what Redis's next push does,
    /// done when CONFIG SET changes either parameter (the CONFIG SET itself is that push).
    pub fn config_changed(&self, config: &Config) {
        if config.slowlog_log_slower_than.load(Ordering::Relaxed) >= 0 {
            let max_len = config.slowlog_max_len.load(Ordering::Relaxed);
            let keep = usize::try_from(max_len).unwrap_or(usize::MAX);
            self.lock().entries.truncate(keep);
        }
    }

    /// Number of entries (SLOWLOG LEN).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every entry (SLOWLOG RESET); ids keep counting.
    pub fn reset(&self) {
        self.lock().entries.clear();
    }

    /// A copy of the newest `count` entries (all of them for `None`), newest first.
    pub fn newest(&self, count: Option<usize>) -> Vec<Entry> {
        let inner = self.lock();
        let n = count.unwrap_or(usize::MAX).min(inner.entries.len());
        inner.entries.iter().take(n).cloned().collect()
    }

    /// Writes the newest `count` entries (all for `None`) as SLOWLOG GET answers them.
    pub fn write(&self, reply: &mut Reply<'_>, count: Option<usize>) {
        let inner = self.lock();
        let n = count.unwrap_or(usize::MAX).min(inner.entries.len());
        reply.array_len(n);
        for e in inner.entries.iter().take(n) {
            reply.array_len(6);
            reply.int(i64::try_from(e.id).unwrap_or(i64::MAX));
            reply.int(e.time);
            reply.int(i64::try_from(e.duration_us).unwrap_or(i64::MAX));
            reply.array_len(e.args.len());
            for a in &e.args {
                reply.bulk(a);
            }
            reply.bulk(e.addr.as_bytes());
            reply.bulk(&e.name);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update leaves the list whole, so a poisoned lock still guards a valid log.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The arguments as Redis's `slowlogCreateEntry` keeps them: at most [`MAX_ARGC`], the last
/// of which then says how many were left out, each cut to [`MAX_STRING`] bytes with a note of
/// how many more there were.
fn entry_args(args: Args<'_>, redacted: &[u32]) -> Vec<Box<[u8]>> {
    let argc = args.len();
    let kept = argc.min(MAX_ARGC);
    (0..kept)
        .map(|j| {
            if kept != argc && j == kept - 1 {
                let more = argc - kept + 1;
                return format!("... ({more} more arguments)").into_bytes().into();
            }
            if u32::try_from(j).is_ok_and(|j| redacted.contains(&j)) {
                return REDACTED.into();
            }
            let a = args.get(j);
            if a.len() <= MAX_STRING {
                return a.into();
            }
            let mut cut = a[..MAX_STRING].to_vec();
            cut.extend_from_slice(format!("... ({} more bytes)", a.len() - MAX_STRING).as_bytes());
            cut.into()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args_of(list: &[&[u8]]) -> (Vec<u8>, Vec<(u32, u32)>) {
        let mut data = Vec::new();
        let mut spans = Vec::new();
        for a in list {
            spans.push((data.len() as u32, a.len() as u32));
            data.extend_from_slice(a);
        }
        (data, spans)
    }

    const ME: Caller<'static> = Caller {
        addr: "127.0.0.1:5000",
        name: b"me",
    };

    #[test]
    fn long_commands_are_cut_as_redis_cuts_them() {
        let long = vec![b'x'; 130];
        let many: Vec<Vec<u8>> = (0..40).map(|i| i.to_string().into_bytes()).collect();
        let mut list: Vec<&[u8]> = vec![b"rpush", &long];
        list.extend(many.iter().map(Vec::as_slice));
        let (data, spans) = args_of(&list);
        let got = entry_args(Args::new(&data, &spans), &[]);
        assert_eq!(got.len(), 32);
        assert_eq!(&*got[0], b"rpush");
        let mut want = vec![b'x'; 128];
        want.extend_from_slice(b"... (2 more bytes)");
        assert_eq!(&*got[1], &want[..]);
        assert_eq!(&*got[30], b"28");
        assert_eq!(&*got[31], b"... (11 more arguments)");
        // Exactly 32 arguments are kept whole; exactly 128 bytes are not cut.
        let exact = vec![b'y'; 128];
        let mut list: Vec<&[u8]> = vec![b"mset", &exact];
        list.extend(many[..30].iter().map(Vec::as_slice));
        let (data, spans) = args_of(&list);
        let got = entry_args(Args::new(&data, &spans), &[]);
        assert_eq!(got.len(), 32);
        assert_eq!(&*got[1], &exact[..]);
        assert_eq!(&*got[31], b"29");
    }

    #[test]
    fn push_follows_threshold_length_and_ids() {
        let config = Config::default();
        let log = SlowLog::default();
        let (data, spans) = args_of(&[b"auth", b"secret"]);
        let args = Args::new(&data, &spans);
        log.push(&config, args, &[1], 9_999, ME);
        assert!(log.is_empty(), "under the default 10000 µs");
        log.push(&config, args, &[1], 10_000, ME);
        let e = &log.newest(None)[0];
        assert_eq!((e.id, e.duration_us), (0, 10_000));
        assert_eq!(e.args, vec![b"auth"[..].into(), REDACTED.into()]);
        assert_eq!((&*e.addr, &*e.name), ("127.0.0.1:5000", &b"me"[..]));
        config.set("slowlog-log-slower-than", b"0").unwrap();
        config.set("slowlog-max-len", b"2").unwrap();
        for _ in 0..3 {
            log.push(&config, args, &[], 0, ME);
        }
        let ids: Vec<u64> = log.newest(None).iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![3, 2]);
        log.reset();
        log.push(&config, args, &[], 0, ME);
        assert_eq!(log.newest(Some(5))[0].id, 4, "RESET keeps counting");
        // Off: nothing is logged, nothing trimmed; on again, the change trims.
        config.set("slowlog-log-slower-than", b"-1").unwrap();
        log.push(&config, args, &[], 1 << 40, ME);
        assert_eq!(log.len(), 1);
        // A length of 0 keeps nothing, but ids are still handed out (Redis 7.0).
        config.set("slowlog-log-slower-than", b"0").unwrap();
        config.set("slowlog-max-len", b"0").unwrap();
        log.push(&config, args, &[], 0, ME);
        assert!(log.is_empty());
        config.set("slowlog-max-len", b"1").unwrap();
        log.push(&config, args, &[], 0, ME);
        assert_eq!(log.newest(None)[0].id, 6);
    }

    #[test]
    fn tick_filter_never_drops_a_slow_command() {
        assert!(may_be_slow(0, 0));
        assert!(!may_be_slow(0, 1));
        assert!(may_be_slow(10_000 * 1000, 10_000));
        assert!(may_be_slow(u64::MAX, i64::MAX));
        assert!(!may_be_slow(10_000 * MIN_TICKS_PER_US - 1, 10_000));
    }
}
