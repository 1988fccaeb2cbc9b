//! State shared by every reactor thread: the store, the configuration, the client registry and
//! the statistics.

use std::sync::{Arc, OnceLock, Weak};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use ferrite_hybridlog::Store;

use crate::aof::Aof;
use crate::client::ClientRegistry;
use crate::config::Config;
use crate::stats::Stats;

/// Wakes reactor thread `i` (installed by the binary, which knows the reactor).
pub type WakeFn = Box<dyn Fn(usize) + Send + Sync>;

/// The server: one per process, shared by all threads.
pub struct Server {
    /// The keyspace.
    pub store: Arc<Store>,
    /// Runtime configuration (CONFIG GET/SET).
    pub config: Config,
    /// Connected clients.
    pub clients: ClientRegistry,
    /// Counters for INFO.
    pub stats: Stats,
    /// Number of reactor threads.
    pub threads: usize,
    /// When the server started.
    pub started: Instant,
    /// Unix ms at start.
    pub started_unix_ms: u64,
    /// INFO's `run_id`: 40 hex characters, random per process.
    pub run_id: String,
    /// Name of the I/O backend in use (for INFO and logs).
    pub io_backend: OnceLock<String>,
    /// Actual TCP port (INFO `tcp_port`).
    pub port: OnceLock<u16>,
    /// The append-only file.
    pub aof: Aof,
    /// This server's own handle, for work that outlives a command (the AOF writer thread).
    me: OnceLock<Weak<Server>>,
    waker: OnceLock<WakeFn>,
}

impl Server {
    /// A server over `store` with `config`, for `threads` reactor threads.
    pub fn new(store: Arc<Store>, config: Config, threads: usize) -> Self {
        let started_unix_ms = unix_ms();
        Self {
            store,
            config,
            clients: ClientRegistry::default(),
            stats: Stats::new(threads),
            threads,
            started: Instant::now(),
            started_unix_ms,
            run_id: random_hex(40),
            io_backend: OnceLock::new(),
            port: OnceLock::new(),
            aof: Aof::default(),
            me: OnceLock::new(),
            waker: OnceLock::new(),
        }
    }

    /// Lets the server hand out its own `Arc` ([`arc`](Self::arc)); the binary calls it once.
    pub fn install_self(self: &Arc<Self>) {
        let _ = self.me.set(Arc::downgrade(self));
    }

    /// The server's own `Arc`, once [`install_self`](Self::install_self) ran.
    pub fn arc(&self) -> Option<Arc<Server>> {
        self.me.get().and_then(Weak::upgrade)
    }

    /// Installs the function that wakes a reactor thread.
    pub fn set_waker(&self, f: WakeFn) {
        let _ = self.waker.set(f);
    }

    /// Wakes reactor thread `i` so it polls its connections (e.g. after CLIENT KILL).
    pub fn wake(&self, thread: usize) {
        if let Some(w) = self.waker.get() {
            w(thread);
        }
    }
}

/// Wall-clock time in Unix milliseconds.
#[inline]
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Wall-clock time in Unix microseconds.
#[inline]
pub fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// `n` random lowercase hex characters from the OS's random source.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n.div_ceil(2)];
    fill_random(&mut bytes);
    let mut s: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    s.truncate(n);
    s
}

/// Fills `buf` from the OS's random source (getrandom(2)); falls back to a time-seeded mix where
/// that fails, which is enough for ids and sampling, never for secrets.
pub fn fill_random(buf: &mut [u8]) {
    // SAFETY: getrandom writes at most buf.len() bytes into the valid, exclusively borrowed buffer.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n != buf.len() as isize {
        let mut x = unix_us() ^ 0x9e37_79b9_7f4a_7c15;
        for b in buf.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_id_is_hex() {
        let id = random_hex(40);
        assert_eq!(id.len(), 40);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(id, random_hex(40));
    }
}
