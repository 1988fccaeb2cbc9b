//! State shared by every reactor thread: the store, the configuration, the client registry and
//! the statistics.

use std::sync::{Arc, OnceLock, Weak};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use ferrite_hybridlog::Store;

use crate::aof::Aof;
use crate::client::ClientRegistry;
use crate::config::Config;
use crate::pause::Purpose;
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
    /// Unique in the process, unlike the server's address, which a later server (a later
    /// test's) may reuse while process-wide tables still hold the earlier one's entries.
    pub id: usize,
    /// RDB persistence state (LASTSAVE, the dirty baseline, the BGSAVE child).
    pub persist: crate::persist::State,
    /// The append-only file.
    pub aof: Aof,
    /// The Lua interpreter and the script cache.
    pub scripts: crate::cmd::scripting::Scripts,
    /// CLIENT PAUSE.
    pub pause: crate::pause::Pause,
    /// A SHUTDOWN handed to the main thread to wait for lagging replicas there: its options
    /// and the client that asked (answered with the error if the shutdown fails).
    pub shutdown_request: std::sync::Mutex<Option<(crate::persist::ShutdownFlags, u64)>>,
    /// MIGRATE's connections to its targets.
    pub migrate_sockets: crate::cmd::SocketCache,
    /// ACL LOG: failed authentications.
    pub acl_log: crate::cmd::AclLog,
    /// The ACL users (the default user's password is `requirepass`).
    pub acl: crate::acl::Acl,
    /// Whether the active expiry cycle runs (DEBUG SET-ACTIVE-EXPIRE).
    pub active_expire: std::sync::atomic::AtomicBool,
    /// Client-side caching: which clients track which keys.
    pub tracking: crate::tracking::Tracking,
    /// SLOWLOG's entries, from every thread.
    pub slowlog: crate::slowlog::SlowLog,
    /// LATENCY's events, from every thread.
    pub latency: crate::latency::LatencyMonitor,
    /// The clients in MONITOR mode.
    pub monitors: crate::monitor::Monitors,
    /// Master or replica (REPLICAOF).
    pub replication: crate::replica::Replication,
    /// Serving replicas (PSYNC, SYNC, WAIT).
    pub master: crate::master::Master,
    /// This server's own handle, for work that outlives a command (the AOF writer thread).
    me: OnceLock<Weak<Server>>,
    waker: OnceLock<WakeFn>,
}

impl Server {
    /// A server over `store` with `config`, for `threads` reactor threads.
    pub fn new(store: Arc<Store>, config: Config, threads: usize) -> Self {
        let started_unix_ms = unix_ms();
        let acl = crate::acl::Acl::default();
        acl.set_default_password(config.password().as_deref());
        Self {
            acl,
            store,
            config,
            clients: ClientRegistry::default(),
            // One slot more than the reactor threads: the replication link's worker.
            stats: Stats::new(threads + 1),
            threads,
            started: Instant::now(),
            started_unix_ms,
            run_id: random_hex(40),
            io_backend: OnceLock::new(),
            port: OnceLock::new(),
            id: {
                static NEXT: std::sync::atomic::AtomicUsize =
                    std::sync::atomic::AtomicUsize::new(1);
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            },
            persist: crate::persist::State::new(started_unix_ms / 1000),
            aof: Aof::default(),
            scripts: Default::default(),
            pause: Default::default(),
            shutdown_request: Default::default(),
            acl_log: Default::default(),
            migrate_sockets: Default::default(),
            active_expire: std::sync::atomic::AtomicBool::new(true),
            tracking: Default::default(),
            slowlog: Default::default(),
            latency: Default::default(),
            monitors: Default::default(),
            replication: Default::default(),
            master: Default::default(),
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

    /// Pauses clients for `purpose` (see [`crate::pause`]).
    pub fn pause_clients(&self, purpose: Purpose, end_ms: u64, all: bool, now_ms: u64) {
        self.pause.pause(purpose, end_ms, all, now_ms);
        self.sync_lazy_expiry(now_ms);
    }

    /// Ends `purpose`'s pause; every thread resumes the clients it postponed, if no other
    /// pause holds them.
    pub fn unpause_clients(&self, purpose: Purpose, now_ms: u64) {
        self.pause.unpause(purpose, now_ms);
        self.sync_lazy_expiry(now_ms);
        for thread in 0..self.threads {
            self.wake(thread);
        }
    }

    /// Whether reads delete the expired keys they find (the store's `reap_on_read`): not on a
    /// replica (its master's DELs come down the stream), and not while clients are paused
    /// (Redis's `expireIfNeeded` leaves keys alone then, so that the dataset stands still
    /// under a failover); such reads answer the key as missing either way. Called where either
    /// changes, and from the tick for pauses that end by their deadline.
    pub fn sync_lazy_expiry(&self, now_ms: u64) {
        let reap = !self.replication.is_replica() && !self.pause.holds(now_ms);
        if self.store.reaps_on_read() != reap {
            self.store.set_reap_on_read(reap);
        }
    }

    /// Wakes every thread marked in `marked` (one flag per reactor thread): the deliveries of
    /// one publication wake each receiving thread once.
    pub fn wake_marked(&self, marked: &[bool]) {
        for (thread, _) in marked.iter().enumerate().filter(|(_, m)| **m) {
            self.wake(thread);
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

/// The time as Redis's log lines show it (`27 Nov 2026 13:29:40.123`, UTC).
pub fn log_timestamp() -> String {
    let now = unix_ms();
    let secs = now / 1000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = secs % 86_400;
    format!(
        "{d:02} {} {y} {:02}:{:02}:{:02}.{:03}",
        MONTHS[(m - 1) as usize],
        t / 3600,
        t / 60 % 60,
        t % 60,
        now % 1000
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
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
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_784), (2026, 11, 27));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(log_timestamp().len(), "27 Nov 2026 13:29:40.123".len());
    }

    #[test]
    fn run_id_is_hex() {
        let id = random_hex(40);
        assert_eq!(id.len(), 40);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(id, random_hex(40));
    }
}
