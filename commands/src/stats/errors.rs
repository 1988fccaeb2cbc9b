//! INFO errorstats: error replies counted by their code, the first word of the message, as
//! Redis's `afterErrorReply` counts them. Errors are the cold path, so each thread keeps its
//! counts in a map behind its own mutex, which only INFO and RESETSTAT ever contend for.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// One thread's error counts by code.
#[derive(Debug, Default)]
pub struct ErrorStats {
    codes: Mutex<BTreeMap<Box<[u8]>, u64>>,
}

/// The code Redis files an error under: the message's first word when a space ends it within
/// Redis's 32-byte window (which includes the `-` of the reply), `ERR` otherwise.
pub fn error_code(msg: &[u8]) -> &[u8] {
    let window = &msg[..msg.len().min(31)];
    match window.iter().position(|&b| b == b' ') {
        Some(end) => &msg[..end],
        None => b"ERR",
    }
}

impl ErrorStats {
    /// Counts one error reply whose message (without the `-`) is `msg`.
    #[cold]
    pub fn count(&self, msg: &[u8]) {
        let code = error_code(msg);
        let mut codes = self.lock();
        match codes.get_mut(code) {
            Some(n) => *n += 1,
            None => {
                codes.insert(code.into(), 1);
            }
        }
    }

    /// Adds this thread's counts into `into`.
    pub fn sum_into(&self, into: &mut BTreeMap<Box<[u8]>, u64>) {
        for (code, n) in self.lock().iter() {
            *into.entry(code.clone()).or_default() += n;
        }
    }

    /// Forgets every count (CONFIG RESETSTAT).
    pub fn reset(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Box<[u8]>, u64>> {
        // Every update is one insert or increment: a poisoned map is still consistent.
        self.codes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_as_redis_files_them() {
        assert_eq!(error_code(b"ERR syntax error"), b"ERR");
        assert_eq!(
            error_code(b"WRONGTYPE Operation against a key"),
            b"WRONGTYPE"
        );
        assert_eq!(error_code(b"NOSPACE"), b"ERR");
        assert_eq!(error_code(b""), b"ERR");
        // A space at message byte 30 is byte 31 of `-...`: inside Redis's window.
        let mut long = vec![b'A'; 30];
        long.extend_from_slice(b" x");
        assert_eq!(error_code(&long), &long[..30]);
        let mut longer = vec![b'A'; 31];
        longer.extend_from_slice(b" x");
        assert_eq!(error_code(&longer), b"ERR");
    }

    #[test]
    fn counts_sum_and_reset() {
        let s = ErrorStats::default();
        s.count(b"ERR a");
        s.count(b"ERR b");
        s.count(b"WRONGTYPE c");
        let mut m = BTreeMap::new();
        s.sum_into(&mut m);
        s.sum_into(&mut m);
        assert_eq!(m.get(&b"ERR"[..]), Some(&4));
        assert_eq!(m.get(&b"WRONGTYPE"[..]), Some(&2));
        s.reset();
        let mut m = BTreeMap::new();
        s.sum_into(&mut m);
        assert!(m.is_empty());
    }
}
