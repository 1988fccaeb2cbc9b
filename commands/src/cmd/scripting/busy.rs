//! A script that runs too long (Redis's `scriptInterrupt`, `scriptKill` and the BUSY replies of
//! `processCommand`). A script runs with every other thread held out of the store, so the other
//! threads learn about it from [`Running`]: once it has run `busy-reply-threshold` ms, they stop
//! waiting for the store and answer their clients `-BUSY` instead, except for the few commands
//! Redis allows then (`allow_busy`): SCRIPT KILL and FUNCTION KILL stop a script that has not
//! written, SHUTDOWN NOSAVE stops the server.
//!
//! The run and its killers agree through one state word: a kill is accepted only while the
//! script has not written (`KILLED` is set unless `DIRTY` is), and a script writes only while it
//! has not been killed (`DIRTY` is set unless `KILLED` is), so an accepted SCRIPT KILL never
//! leaves half a script's writes behind, as in Redis, where the two cannot interleave.
//!
//! Unlike Redis, which serves its event loop from inside the script's hook, the connections
//! of the script's own reactor thread wait for the script to end: that thread's loop is the
//! one running the script.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mlua::{HookTriggers, Lua, VmState};

use crate::server::unix_ms;

/// Instructions between two looks at the clock and the kill flag (Redis's hook count).
const HOOK_INSTRUCTIONS: u32 = 100_000;

/// A script is running.
const RUNNING: u8 = 1;
/// It is an EVAL script (not a function).
const EVAL: u8 = 2;
/// It ran past `busy-reply-threshold`: other clients get BUSY.
const BUSY: u8 = 4;
/// It ran a write command (Redis's `SCRIPT_WRITE_DIRTY`): it can no longer be killed.
const DIRTY: u8 = 8;
/// SCRIPT KILL or FUNCTION KILL asked it to stop (Redis's `SCRIPT_KILLED`).
const KILLED: u8 = 16;

/// The error a killed script raises (and its caller is answered, with the script's line).
pub(super) const KILLED_ERROR: &str = "Script killed by user with SCRIPT KILL...";

/// The BUSY reply while an EVAL script runs too long (Redis's `shared.slowevalerr`).
pub const BUSY_EVAL: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
/// The BUSY reply while a function runs too long (Redis's `shared.slowscripterr`).
pub const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

/// What the running script is, for FUNCTION STATS: its name and the command that ran it.
pub(super) type Shown = (String, Vec<Vec<u8>>);

/// The running script as every thread sees it. Shared by the interpreters' hooks (hence the
/// `Arc`) and the commands of other threads.
#[derive(Clone, Default)]
pub struct Running(Arc<Inner>);

#[derive(Default)]
struct Inner {
    /// `RUNNING | EVAL | BUSY | DIRTY | KILLED`.
    state: AtomicU8,
    /// When the running script started, Unix ms.
    started_ms: AtomicU64,
    /// `busy-reply-threshold` as the running script started.
    threshold_ms: AtomicU64,
    /// Set by the hook when the script turns busy, cleared when it ends.
    shown: Mutex<Option<Shown>>,
}

/// What a kill request finds.
#[derive(Debug, PartialEq, Eq)]
pub enum Kill {
    /// The script will stop (+OK).
    Accepted,
    /// No script is busy (NOTBUSY).
    NotBusy,
    /// The script already wrote (UNKILLABLE).
    Unkillable,
    /// SCRIPT KILL of a function or FUNCTION KILL of an EVAL script: the BUSY reply to give.
    WrongKind(&'static str),
}

impl Running {
    /// A script starts running on this thread.
    #[inline]
    pub(super) fn begin(&self, eval: bool, now_ms: u64, threshold_ms: u64) {
        let i = &*self.0;
        i.started_ms.store(now_ms, Ordering::Relaxed);
        i.threshold_ms.store(threshold_ms, Ordering::Relaxed);
        i.state
            .store(RUNNING | if eval { EVAL } else { 0 }, Ordering::Release);
    }

    /// The script ended: the other threads go back to waiting for the store.
    #[inline]
    pub(super) fn end(&self) {
        let i = &*self.0;
        if i.state.swap(0, Ordering::AcqRel) & BUSY != 0 {
            *i.shown.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    /// The BUSY reply other clients get now, if a script runs past its threshold.
    #[inline]
    pub fn busy_reply(&self) -> Option<&'static str> {
        let s = self.0.state.load(Ordering::Acquire);
        (s & BUSY != 0).then_some(if s & EVAL != 0 {
            BUSY_EVAL
        } else {
            BUSY_FUNCTION
        })
    }

    /// The running script wants to write: false if it was killed (it must stop instead).
    pub(super) fn mark_dirty(&self) -> bool {
        let r = self
            .0
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s & KILLED == 0).then_some(s | DIRTY)
            });
        r.is_ok()
    }

    /// SCRIPT KILL (`eval`) or FUNCTION KILL: asks the busy script to stop.
    pub fn kill(&self, eval: bool) -> Kill {
        let mut answer = Kill::Accepted;
        let _ = self
            .0
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                answer = if s & BUSY == 0 {
                    Kill::NotBusy
                } else if s & DIRTY != 0 {
                    Kill::Unkillable
                } else if eval && s & EVAL == 0 {
                    Kill::WrongKind(BUSY_FUNCTION)
                } else if !eval && s & EVAL != 0 {
                    Kill::WrongKind(BUSY_EVAL)
                } else {
                    return Some(s | KILLED);
                };
                None
            });
        answer
    }

    /// The busy script's name, command and how long it has run, for FUNCTION STATS.
    pub(super) fn shown(&self) -> Option<(Shown, u64)> {
        let i = &*self.0;
        if i.state.load(Ordering::Acquire) & BUSY == 0 {
            return None;
        }
        let shown = i.shown.lock().unwrap_or_else(|e| e.into_inner()).clone()?;
        let ms = unix_ms().saturating_sub(i.started_ms.load(Ordering::Relaxed));
        Some((shown, ms))
    }

    /// The hook's check: turns the script busy once past its threshold (`show` names it), and
    /// says whether it was killed.
    fn check(&self, show: impl FnOnce() -> Option<Shown>) -> bool {
        let i = &*self.0;
        let s = i.state.load(Ordering::Acquire);
        if s & RUNNING == 0 {
            return false;
        }
        if s & BUSY == 0 {
            let ran = unix_ms().saturating_sub(i.started_ms.load(Ordering::Relaxed));
            if ran < i.threshold_ms.load(Ordering::Relaxed) {
                return false;
            }
            let shown = show();
            log::warn!(
                "Slow script detected: still in execution after {ran} milliseconds. You can try \
                 killing the script using the {} command. Script name is: {}.",
                if s & EVAL != 0 {
                    "SCRIPT KILL"
                } else {
                    "FUNCTION KILL"
                },
                shown.as_ref().map_or("", |s| s.0.as_str())
            );
            *i.shown.lock().unwrap_or_else(|e| e.into_inner()) = shown;
            i.state.fetch_or(BUSY, Ordering::AcqRel);
            return false;
        }
        s & KILLED != 0
    }

    /// Installs the hook that watches every run of `lua`; `show` names the running script.
    pub(super) fn install_hook(&self, lua: &Lua, show: fn() -> Option<Shown>) -> mlua::Result<()> {
        let running = self.clone();
        lua.set_hook(
            HookTriggers::new().every_nth_instruction(HOOK_INSTRUCTIONS),
            move |_, _| {
                if running.check(show) {
                    log::warn!("Lua script killed by user with SCRIPT KILL.");
                    // Raised again at every later hook, so a script's pcall cannot keep it alive.
                    return Err(mlua::Error::runtime(KILLED_ERROR));
                }
                Ok(VmState::Continue)
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_busy_before_the_threshold_and_busy_after() {
        let r = Running::default();
        r.begin(true, unix_ms(), 60_000);
        assert!(!r.check(|| None));
        assert_eq!(r.busy_reply(), None);
        assert_eq!(r.kill(true), Kill::NotBusy);
        r.end();
        r.begin(true, unix_ms() - 10, 5);
        assert!(!r.check(|| Some(("sha".into(), vec![b"EVAL".to_vec()]))));
        assert_eq!(r.busy_reply(), Some(BUSY_EVAL));
        assert_eq!(r.shown().unwrap().0.0, "sha");
        r.end();
        assert_eq!(r.busy_reply(), None);
        assert!(r.shown().is_none());
    }

    #[test]
    fn a_kill_wins_over_a_later_write_and_loses_to_an_earlier_one() {
        let r = Running::default();
        r.begin(false, unix_ms() - 10, 0);
        r.check(|| None);
        assert_eq!(r.busy_reply(), Some(BUSY_FUNCTION));
        assert_eq!(r.kill(true), Kill::WrongKind(BUSY_FUNCTION));
        assert_eq!(r.kill(false), Kill::Accepted);
        assert!(!r.mark_dirty(), "a killed script may not write");
        assert!(r.check(|| None), "the hook stops a killed script");
        r.end();

        r.begin(true, unix_ms() - 10, 0);
        r.check(|| None);
        assert!(r.mark_dirty());
        assert_eq!(r.kill(true), Kill::Unkillable);
        assert_eq!(r.kill(false), Kill::Unkillable);
        assert!(!r.check(|| None));
        r.end();
    }
}
