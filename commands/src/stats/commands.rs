//! INFO commandstats: calls, time, rejected and failed calls per command (and per
//! subcommand), indexed by the command table's dense ids ([`crate::table::CmdId`]).
//!
//! Each thread has its own array, one cache line per command, written only by that thread
//! (relaxed load and store: plain moves, no locked instruction) and summed when INFO asks.
//!
//! Time is measured per *run* of consecutive executions of the same command on a connection
//! ([`RunTimer`]): the clock is read when the command id changes and when the batch ends, and
//! the run's ticks go to that command. A pipeline of 16 GETs reads the clock twice, not 32
//! times; alternating commands read it once per command. The sum per command is what per-call
//! timing would give, except that it also covers parsing and dispatching the calls (tens of
//! nanoseconds each), which Redis's `call()` leaves out.

use std::sync::atomic::{AtomicU64, Ordering};

use super::ThreadStats;
use super::clock::Clock;
use crate::table::CmdId;

/// One command's counters on one thread: a cache line of its own.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct CmdCounters {
    /// Executions (Redis's `calls`).
    pub calls: AtomicU64,
    /// Clock ticks spent (see [`Clock`]).
    pub ticks: AtomicU64,
    /// Refused before running: arity, NOAUTH, ... (`rejected_calls`).
    pub rejected: AtomicU64,
    /// Ran and replied with an error (`failed_calls`).
    pub failed: AtomicU64,
}

/// One thread's per-command counters.
#[derive(Debug)]
pub struct CommandStats {
    slots: Box<[CmdCounters]>,
}

impl Default for CommandStats {
    fn default() -> Self {
        Self {
            slots: (0..crate::table::command_count())
                .map(|_| CmdCounters::default())
                .collect(),
        }
    }
}

impl CommandStats {
    /// The counters of command `id`.
    #[inline]
    pub fn get(&self, id: CmdId) -> Option<&CmdCounters> {
        self.slots.get(usize::from(id))
    }

    /// Counts one execution of `id`, failed when it replied with an error.
    #[inline]
    pub fn call(&self, id: CmdId, failed: bool) {
        if let Some(c) = self.get(id) {
            ThreadStats::add(&c.calls, 1);
            if failed {
                ThreadStats::add(&c.failed, 1);
            }
        }
    }

    /// Counts one refused call of `id`.
    #[cold]
    pub fn reject(&self, id: CmdId) {
        if let Some(c) = self.get(id) {
            ThreadStats::add(&c.rejected, 1);
        }
    }

    /// Adds `ticks` of clock time to `id`.
    #[inline]
    pub fn add_ticks(&self, id: CmdId, ticks: u64) {
        if let Some(c) = self.get(id) {
            ThreadStats::add(&c.ticks, ticks);
        }
    }

    /// Every command's counters, by id.
    pub fn iter(&self) -> impl Iterator<Item = &CmdCounters> {
        self.slots.iter()
    }

    /// Zeroes every counter (CONFIG RESETSTAT).
    pub fn reset(&self) {
        for c in self.slots.iter() {
            for v in [&c.calls, &c.ticks, &c.rejected, &c.failed] {
                v.store(0, Ordering::Relaxed);
            }
        }
    }
}

/// Times runs of the same command (see the module docs). One per reactor thread.
///
/// While the slow log, the latency monitor or latency tracking is on, each command of a run is
/// also timed on its own with one more clock read, [`lap`](Self::lap), at its end: that read is
/// also where the next command of the run starts.
#[derive(Debug)]
pub struct RunTimer {
    clock: &'static Clock,
    /// The command whose run is open, if any.
    current: Option<CmdId>,
    start: u64,
    /// Where the running command's own time started, when known: the run's start or the
    /// previous command's lap.
    mark: Option<u64>,
}

impl Default for RunTimer {
    fn default() -> Self {
        Self {
            clock: Clock::get(),
            current: None,
            start: 0,
            mark: None,
        }
    }
}

impl RunTimer {
    /// A command `id` is about to run: closes the open run if it is another command's.
    #[inline]
    pub fn enter(&mut self, id: CmdId, stats: &CommandStats) {
        if self.current == Some(id) {
            return;
        }
        let now = self.clock.now();
        if let Some(prev) = self.current {
            stats.add_ticks(prev, now.saturating_sub(self.start));
        }
        self.current = Some(id);
        self.start = now;
        self.mark = Some(now);
    }

    /// Closes the open run (end of a batch, or before the thread waits for anything).
    #[inline]
    pub fn stop(&mut self, stats: &CommandStats) {
        self.mark = None;
        if let Some(prev) = self.current.take() {
            stats.add_ticks(prev, self.clock.now().saturating_sub(self.start));
        }
    }

    /// The running command has ended: the ticks since it started (`None` when that is not
    /// known, see [`unmark`](Self::unmark)); the next command of the run starts now.
    #[inline]
    pub fn lap(&mut self) -> Option<u64> {
        let now = self.clock.now();
        let ticks = self.mark.map(|m| now.saturating_sub(m));
        self.mark = Some(now);
        ticks
    }

    /// The running command ended without a [`lap`](Self::lap) (nothing times commands on
    /// their own): the start of the next one in the run is not known.
    #[inline]
    pub fn unmark(&mut self) {
        self.mark = None;
    }

    /// Starts the running command's own time now if it has none, for a command that may turn
    /// the slow log on and be logged by it (CONFIG SET).
    #[inline]
    pub fn mark_if_unknown(&mut self) {
        if self.mark.is_none() {
            self.mark = Some(self.clock.now());
        }
    }
}

/// Times one call on its own (the commands inside EXEC, whose runs are nested in EXEC's).
#[derive(Debug)]
pub struct CallTimer {
    clock: &'static Clock,
    start: u64,
}

impl CallTimer {
    /// Starts timing.
    #[inline]
    pub fn start() -> Self {
        let clock = Clock::get();
        Self {
            clock,
            start: clock.now(),
        }
    }

    /// Ticks since [`start`](Self::start).
    #[inline]
    pub fn ticks(&self) -> u64 {
        self.clock.now().saturating_sub(self.start)
    }
}

/// Converts ticks to whole microseconds.
pub fn ticks_to_us(ticks: u64) -> u64 {
    (ticks as f64 / Clock::get().ticks_per_us()) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laps_time_each_command_of_a_run() {
        let stats = CommandStats::default();
        let mut t = RunTimer::default();
        t.enter(1, &stats);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let first = t.lap().expect("the run's start is the first command's");
        t.enter(1, &stats);
        let second = t.lap().expect("the lap is where the next one started");
        assert!(first > second, "{first} vs {second}");
        // A command that did not lap leaves the next one of the run without a start...
        t.enter(1, &stats);
        t.unmark();
        t.enter(1, &stats);
        assert_eq!(t.lap(), None);
        // ...unless it asks for one (CONFIG SET turning the slow log on).
        t.unmark();
        t.enter(1, &stats);
        t.mark_if_unknown();
        assert!(t.lap().is_some());
        // A new run always starts timed.
        t.stop(&stats);
        t.enter(2, &stats);
        assert!(t.lap().is_some());
    }
}
