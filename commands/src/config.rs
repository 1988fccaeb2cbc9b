//! Runtime configuration: every parameter CONFIG GET/SET knows, with Redis's names, defaults,
//! validation and error strings. The binary applies `ferrite.toml` and command-line settings
//! through [`Config::set_startup`], so a value is validated the same way wherever it comes from.
//!
//! Values read on the hot path (per command or per read) are atomics; the rest are strings
//! behind a lock that only CONFIG and INFO take.

mod parse;
mod rewrite;

pub use parse::split_args;

use parse::{OUTPUT_CLASSES, memtoull, parse_output_limits, parse_save};

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Why a configuration value was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// No such parameter.
    #[error("Unknown option or number of arguments for CONFIG SET - '{0}'")]
    Unknown(String),
    /// The value is not valid for the parameter (the text is Redis's reason).
    #[error("{0}")]
    Invalid(String),
    /// The parameter can only be set at start-up.
    #[error("can't set immutable config")]
    Immutable,
}

/// How a parameter's value is parsed and shown.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// An integer within `min..=max` (Redis's numeric configs; i128 covers both its signed and
    /// unsigned ranges). `memory` accepts unit suffixes as Redis's `memtoull`.
    Num { min: i128, max: i128, memory: bool },
    /// `yes` or `no`.
    Bool,
    /// One of a fixed set of names (case-insensitive, shown in canonical case).
    Enum(&'static [&'static str]),
    /// Any string.
    Str,
    /// `save`: pairs of `seconds changes`.
    Save,
    /// `notify-keyspace-events`: event class characters.
    Events,
    /// `latency-tracking-info-percentiles`: space-separated numbers within 0..=100.
    Percentiles,
    /// `client-output-buffer-limit`: `class hard soft seconds` groups, merged into the value.
    OutputLimits,
}

/// Parameter may only be set at start-up.
const IMMUTABLE: u8 = 1;
/// Redis's `enable-protected-configs no`: refused by CONFIG SET.
const PROTECTED: u8 = 2;
/// Changing it at runtime would need a re-listen Ferrite does not do: only the current value is
/// accepted (Redis re-binds; setting the same value is the portable case).
const LISTENER: u8 = 4;

/// Left out of CONFIG GET patterns (Redis's `HIDDEN_CONFIG`); an exact name still shows it.
const HIDDEN: u8 = 8;

/// One parameter.
#[derive(Debug)]
struct Param {
    name: &'static str,
    kind: Kind,
    default: &'static str,
    flags: u8,
}

const INT_MAX: i128 = i32::MAX as i128;
const LLONG_MAX: i128 = i64::MAX as i128;
const ULLONG_MAX: i128 = u64::MAX as i128;

const fn num(name: &'static str, min: i128, max: i128, default: &'static str, flags: u8) -> Param {
    Param {
        name,
        kind: Kind::Num {
            min,
            max,
            memory: false,
        },
        default,
        flags,
    }
}

const fn mem(name: &'static str, min: i128, max: i128, default: &'static str, flags: u8) -> Param {
    Param {
        name,
        kind: Kind::Num {
            min,
            max,
            memory: true,
        },
        default,
        flags,
    }
}

const fn param(name: &'static str, kind: Kind, default: &'static str, flags: u8) -> Param {
    Param {
        name,
        kind,
        default,
        flags,
    }
}

const LOGLEVELS: &[&str] = &["debug", "verbose", "notice", "warning"];
const POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];
/// A configuration file's `user` line: the name, then the rules (selectors merged).
pub type ConfiguredUser = (Vec<u8>, Vec<Vec<u8>>);

/// `acl-pubsub-default`: the channels a new ACL user may use.
const PUBSUB_DEFAULT: &[&str] = &["allchannels", "resetchannels"];
const FSYNC: &[&str] = &["everysec", "always", "no"];
/// `copy-reads-to-tail`: never, after every disk read, after a repeated one.
const COPY_READS: &[&str] = &["no", "yes", "repeated"];
/// `oom-score-adj`.
const OOM_SCORE_ADJ: &[&str] = &["no", "yes", "relative", "absolute"];
/// `repl-diskless-load`: how a replica loads a full resync's payload.
const DISKLESS_LOAD: &[&str] = &["disabled", "on-empty-db", "swapdb"];
const IO_BACKENDS: &[&str] = &["auto", "uring", "epoll"];
/// Who may run a protected command (DEBUG, MODULE LOAD): nobody, everybody, loopback clients.
const PROTECTED_ACTION: &[&str] = &["no", "yes", "local"];

/// Every parameter, in the order `CONFIG GET *` lists them. Limits and texts are Redis 7.0.15's.
const PARAMS: &[Param] = &[
    // Redis listens everywhere without a config file; Ferrite keeps to loopback unless told
    // otherwise, as Redis's shipped redis.conf does.
    param("bind", Kind::Str, "127.0.0.1", LISTENER),
    num("port", 0, 65535, "6379", LISTENER),
    num("databases", 1, INT_MAX, "16", IMMUTABLE),
    param("requirepass", Kind::Str, "", 0),
    param("aclfile", Kind::Str, "", IMMUTABLE),
    num("timeout", 0, INT_MAX, "0", 0),
    num("tcp-keepalive", 0, INT_MAX, "300", 0),
    num("tcp-backlog", 0, INT_MAX, "511", IMMUTABLE),
    num("maxclients", 1, u32::MAX as i128, "10000", 0),
    mem("proto-max-bulk-len", 1024 * 1024, LLONG_MAX, "536870912", 0),
    mem(
        "client-query-buffer-limit",
        1024 * 1024,
        LLONG_MAX,
        "1073741824",
        0,
    ),
    num("hz", 0, INT_MAX, "10", 0),
    param("loglevel", Kind::Enum(LOGLEVELS), "notice", 0),
    param("logfile", Kind::Str, "", IMMUTABLE),
    param("daemonize", Kind::Bool, "no", IMMUTABLE),
    param("pidfile", Kind::Str, "", IMMUTABLE),
    param("protected-mode", Kind::Bool, "yes", 0),
    param(
        "enable-debug-command",
        Kind::Enum(PROTECTED_ACTION),
        "no",
        IMMUTABLE,
    ),
    param(
        "enable-module-command",
        Kind::Enum(PROTECTED_ACTION),
        "no",
        IMMUTABLE,
    ),
    param("dir", Kind::Str, "", PROTECTED),
    param("dbfilename", Kind::Str, "dump.rdb", PROTECTED),
    // Redis's built-in save points (redis-server without a config file).
    param("save", Kind::Save, "3600 1 300 100 60 10000", 0),
    param("stop-writes-on-bgsave-error", Kind::Bool, "yes", 0),
    param("appendonly", Kind::Bool, "no", 0),
    param("appendfsync", Kind::Enum(FSYNC), "everysec", 0),
    param("appendfilename", Kind::Str, "appendonly.aof", IMMUTABLE),
    param("appenddirname", Kind::Str, "appendonlydir", IMMUTABLE),
    param("aof-load-truncated", Kind::Bool, "yes", 0),
    // The AOF rewrite's base: RDB (`yes`) or commands.
    param("aof-use-rdb-preamble", Kind::Bool, "yes", 0),
    num("auto-aof-rewrite-percentage", 0, INT_MAX, "100", 0),
    mem("auto-aof-rewrite-min-size", 0, LLONG_MAX, "67108864", 0),
    // Redis's testing knob (hidden from CONFIG GET patterns): sleep per key while saving.
    num("rdb-key-save-delay", i32::MIN as i128, INT_MAX, "0", HIDDEN),
    param("no-appendfsync-on-rewrite", Kind::Bool, "no", 0),
    param("aof-timestamp-enabled", Kind::Bool, "no", 0),
    mem("maxmemory", 0, ULLONG_MAX, "0", 0),
    param("maxmemory-policy", Kind::Enum(POLICIES), "noeviction", 0),
    num("maxmemory-samples", 1, INT_MAX, "5", 0),
    num("lfu-log-factor", 0, INT_MAX, "10", 0),
    num("lfu-decay-time", 0, INT_MAX, "1", 0),
    param("notify-keyspace-events", Kind::Events, "", 0),
    // Commands that ran at least this many microseconds are logged (SLOWLOG); -1 logs nothing.
    num("slowlog-log-slower-than", -1, LLONG_MAX, "10000", 0),
    num("slowlog-max-len", 0, LLONG_MAX, "128", 0),
    // ACL LOG keeps at most this many entries.
    num("acllog-max-len", 0, LLONG_MAX, "128", 0),
    param(
        "acl-pubsub-default",
        Kind::Enum(PUBSUB_DEFAULT),
        "resetchannels",
        0,
    ),
    // Client-side caching's table holds at most this many keys (0: no limit).
    num("tracking-table-max-keys", 0, LLONG_MAX, "1000000", 0),
    // A script running this many milliseconds is busy: other clients are answered BUSY and
    // SCRIPT KILL / FUNCTION KILL may stop it (`lua-time-limit` is its old name).
    num("busy-reply-threshold", 0, LLONG_MAX, "5000", 0),
    // The sizes up to which collections keep Redis's compact encodings: what OBJECT ENCODING
    // reports, how HSCAN/SSCAN/ZSCAN page, how DUMP and RDB files encode them. Lists are
    // quicklists whatever the two list parameters say, as in Redis 7.0.
    num("hash-max-listpack-entries", 0, LLONG_MAX, "512", 0),
    mem("hash-max-listpack-value", 0, LLONG_MAX, "64", 0),
    num("set-max-intset-entries", 0, LLONG_MAX, "512", 0),
    num("zset-max-listpack-entries", 0, LLONG_MAX, "128", 0),
    mem("zset-max-listpack-value", 0, LLONG_MAX, "64", 0),
    num("list-max-listpack-size", i32::MIN as i128, INT_MAX, "-2", 0),
    num("list-compress-depth", 0, INT_MAX, "0", 0),
    // A sparse HyperLogLog turns dense past this size; a stream's nodes take at most this many
    // bytes and entries (0: no limit), which sets what `~` trimming removes.
    mem("hll-sparse-max-bytes", 0, LLONG_MAX, "3000", 0),
    mem("stream-node-max-bytes", 0, LLONG_MAX, "4096", 0),
    num("stream-node-max-entries", 0, LLONG_MAX, "100", 0),
    // RDB files and DUMP payloads: LZF-compressed strings; the file's CRC-64 trailer.
    param("rdbcompression", Kind::Bool, "yes", 0),
    param("rdbchecksum", Kind::Bool, "yes", IMMUTABLE),
    // Accepted (and shown) so that redis.conf files load, with no effect: they tune parts of
    // redis-server Ferrite does not have. Its index never rehashes; it frees large values
    // through epochs off the command path whatever the lazyfree settings; it has no jemalloc,
    // no transparent-huge-page or OOM-score handling, no process title or logo; `hz` is fixed;
    // its snapshots fsync once at the end; its replication sockets are always TCP_NODELAY.
    param("activerehashing", Kind::Bool, "yes", 0),
    param("always-show-logo", Kind::Bool, "no", IMMUTABLE),
    param("aof-rewrite-incremental-fsync", Kind::Bool, "yes", 0),
    param("rdb-save-incremental-fsync", Kind::Bool, "yes", 0),
    param("rdb-del-sync-files", Kind::Bool, "no", 0),
    param("disable-thp", Kind::Bool, "yes", IMMUTABLE),
    param("dynamic-hz", Kind::Bool, "yes", 0),
    param("jemalloc-bg-thread", Kind::Bool, "yes", 0),
    param("lazyfree-lazy-eviction", Kind::Bool, "no", 0),
    param("lazyfree-lazy-expire", Kind::Bool, "no", 0),
    param("lazyfree-lazy-server-del", Kind::Bool, "no", 0),
    param("lazyfree-lazy-user-del", Kind::Bool, "no", 0),
    param("lazyfree-lazy-user-flush", Kind::Bool, "no", 0),
    param("replica-lazy-flush", Kind::Bool, "no", 0),
    param("oom-score-adj", Kind::Enum(OOM_SCORE_ADJ), "no", 0),
    param("oom-score-adj-values", Kind::Str, "0 200 800", 0),
    param("set-proc-title", Kind::Bool, "yes", IMMUTABLE),
    param(
        "proc-title-template",
        Kind::Str,
        "{title} {listen-addr} {server-mode}",
        0,
    ),
    param("repl-disable-tcp-nodelay", Kind::Bool, "no", 0),
    // Replication (REPLICAOF): the master's credentials, whether a replica refuses clients'
    // writes, how long the master may stay silent before the link is dropped, and what a
    // replica shows in INFO.
    // `host port` of the master followed (REPLICAOF keeps it current; empty: a master).
    param("replicaof", Kind::Str, "", IMMUTABLE),
    param("masterauth", Kind::Str, "", 0),
    param("masteruser", Kind::Str, "", 0),
    param("replica-read-only", Kind::Bool, "yes", 0),
    param("replica-serve-stale-data", Kind::Bool, "yes", 0),
    num("repl-timeout", 1, INT_MAX, "60", 0),
    num("replica-priority", 0, INT_MAX, "100", 0),
    param("replica-announced", Kind::Bool, "yes", 0),
    // Serving replicas: the backlog a reconnecting replica resumes from (PSYNC), how often the
    // master pings its replicas through the stream, and how long a backlog outlives the last
    // replica.
    mem("repl-backlog-size", 1, LLONG_MAX, "1048576", 0),
    num("repl-ping-replica-period", 1, INT_MAX, "10", 0),
    num("repl-backlog-ttl", 0, LLONG_MAX, "3600", 0),
    // Full resyncs stream the snapshot to replicas that take it (`capa eof`) instead of
    // writing the dump first; the fork waits this many seconds for more replicas to share it,
    // or until this many wait (0: no such limit).
    param("repl-diskless-sync", Kind::Bool, "yes", 0),
    num("repl-diskless-sync-delay", 0, INT_MAX, "5", 0),
    num("repl-diskless-sync-max-replicas", 0, INT_MAX, "0", 0),
    // Accepted for redis.conf files; a Ferrite replica always stores the payload in the dump
    // file and loads it from there (Redis's `disabled`), whatever the mode.
    param(
        "repl-diskless-load",
        Kind::Enum(DISKLESS_LOAD),
        "disabled",
        0,
    ),
    // Output buffer limits per client class (normal, replica, pubsub): a client with more than
    // `hard` bytes of unsent output, or more than `soft` for `seconds`, is closed (0: none).
    // Ferrite counts monitors as pubsub clients.
    param(
        "client-output-buffer-limit",
        Kind::OutputLimits,
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        0,
    ),
    // How long a shutdown waits for lagging replicas to catch up (writes paused meanwhile).
    num("shutdown-timeout", 0, INT_MAX, "10", 0),
    // A master refuses writes (NOREPLICAS) while fewer replicas than this acknowledged within
    // `min-replicas-max-lag` seconds.
    num("min-replicas-to-write", 0, INT_MAX, "0", 0),
    num("min-replicas-max-lag", 0, INT_MAX, "10", 0),
    // Latency spikes of at least this many milliseconds are recorded (LATENCY); 0 = off.
    num("latency-monitor-threshold", 0, LLONG_MAX, "0", 0),
    // Every command's time is counted into its LATENCY HISTOGRAM.
    param("latency-tracking", Kind::Bool, "yes", 0),
    // The percentiles INFO latencystats shows.
    param(
        "latency-tracking-info-percentiles",
        Kind::Percentiles,
        "50 99 99.9",
        0,
    ),
    num("io-threads", 1, 128, "1", IMMUTABLE),
    // Ferrite's own: the reactor and the index are sized once at start-up.
    num("threads", 0, 1024, "0", IMMUTABLE),
    param("io-backend", Kind::Enum(IO_BACKENDS), "auto", IMMUTABLE),
    // The log's memory budget; at runtime in whole pages of the size chosen at start-up.
    mem("memory-size", 1024 * 1024, LLONG_MAX, "1073741824", 0),
    mem("index-size", 64 * 1024, LLONG_MAX, "67108864", IMMUTABLE),
    // A record a read finds on disk is copied back into memory (FASTER's CopyReadsToTail).
    param(
        "copy-reads-to-tail",
        Kind::Enum(COPY_READS),
        "repeated",
        IMMUTABLE,
    ),
    // The disk tier's segment files: compaction deletes the log a segment at a time.
    mem(
        "log-segment-size",
        1024 * 1024,
        1 << 40,
        "1073741824",
        IMMUTABLE,
    ),
];

/// Redis clamps `hz` to this range when applying it.
const HZ_MIN: u64 = 1;
const HZ_MAX: u64 = 500;

/// The client classes of `client-output-buffer-limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputClass {
    /// Ordinary clients.
    Normal = 0,
    /// Replicas of this server.
    Replica = 1,
    /// Pub/Sub subscribers (and, in Ferrite, monitors).
    Pubsub = 2,
}

/// The runtime configuration.
#[derive(Debug)]
pub struct Config {
    /// `requirepass` (None: no password).
    pub requirepass: RwLock<Option<Vec<u8>>>,
    /// `timeout`: idle seconds before a client is closed, 0 = never.
    pub timeout: AtomicU64,
    /// `maxclients`.
    pub maxclients: AtomicU64,
    /// `proto-max-bulk-len`.
    pub proto_max_bulk_len: AtomicU64,
    /// `client-query-buffer-limit`.
    pub client_query_buffer_limit: AtomicU64,
    /// `databases` (fixed at start-up).
    pub databases: AtomicU64,
    /// `hz` as applied (clamped to 1..=500, as Redis does).
    pub hz: AtomicU64,
    /// `maxmemory` in bytes, 0 = no limit.
    pub maxmemory: AtomicU64,
    /// `no-appendfsync-on-rewrite` (read by the AOF writer before each fsync).
    pub no_appendfsync_on_rewrite: AtomicBool,
    /// `replica-read-only` (read per write command while following a master).
    pub replica_read_only: AtomicBool,
    /// `replica-serve-stale-data` (read per command while following a master).
    pub replica_serve_stale_data: AtomicBool,
    /// `min-replicas-to-write` (read per write command; 0 = off).
    pub min_replicas_to_write: AtomicU64,
    /// `min-replicas-max-lag` in seconds (0 = off).
    pub min_replicas_max_lag: AtomicU64,
    /// `notify-keyspace-events` as class bits (`crate::notify::flags`); read on every write.
    pub notify_keyspace_events: AtomicU32,
    /// `slowlog-log-slower-than` in microseconds, -1 = off; read after every command.
    pub slowlog_log_slower_than: AtomicI64,
    /// `slowlog-max-len`.
    pub slowlog_max_len: AtomicU64,
    /// `tracking-table-max-keys`, 0 = no limit.
    pub tracking_table_max_keys: AtomicU64,
    /// `latency-monitor-threshold` in milliseconds, 0 = off; read after every command.
    pub latency_monitor_threshold: AtomicI64,
    /// `latency-tracking`; read after every command.
    pub latency_tracking: AtomicBool,
    /// `busy-reply-threshold` in milliseconds; read as a script starts.
    pub busy_reply_threshold: AtomicU64,
    /// `acllog-max-len`.
    pub acllog_max_len: AtomicU64,
    /// `client-output-buffer-limit`: per class ([`OutputClass`]), hard bytes, soft bytes and
    /// soft seconds.
    output_limits: [[AtomicU64; 3]; 3],
    /// Whether the normal class has a limit (one load per poll of a normal client).
    normal_output_limited: AtomicBool,
    /// Absolute path of the configuration file the server was started with (INFO `config_file`,
    /// CONFIG REWRITE); set once by the binary.
    pub config_file: OnceLock<String>,
    /// The `user` lines of the configuration file (name, then its rules with `(...)` selectors
    /// merged), loaded into the ACL at start-up as Redis's `ACLLoadConfiguredUsers`.
    pub acl_users: std::sync::Mutex<Vec<ConfiguredUser>>,
    /// Current values as CONFIG GET shows them, indexed like `PARAMS` (`requirepass` lives in its
    /// own field so that binary passwords survive).
    values: RwLock<Vec<String>>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            requirepass: RwLock::new(None),
            timeout: AtomicU64::new(0),
            maxclients: AtomicU64::new(10_000),
            proto_max_bulk_len: AtomicU64::new(512 * 1024 * 1024),
            client_query_buffer_limit: AtomicU64::new(1024 * 1024 * 1024),
            databases: AtomicU64::new(16),
            hz: AtomicU64::new(10),
            maxmemory: AtomicU64::new(0),
            no_appendfsync_on_rewrite: AtomicBool::new(false),
            replica_read_only: AtomicBool::new(true),
            replica_serve_stale_data: AtomicBool::new(true),
            min_replicas_to_write: AtomicU64::new(0),
            min_replicas_max_lag: AtomicU64::new(10),
            notify_keyspace_events: AtomicU32::new(0),
            slowlog_log_slower_than: AtomicI64::new(10_000),
            slowlog_max_len: AtomicU64::new(128),
            tracking_table_max_keys: AtomicU64::new(1_000_000),
            latency_monitor_threshold: AtomicI64::new(0),
            latency_tracking: AtomicBool::new(true),
            busy_reply_threshold: AtomicU64::new(5000),
            acllog_max_len: AtomicU64::new(128),
            output_limits: [
                [0, 0, 0],
                [256 << 20, 64 << 20, 60],
                [32 << 20, 8 << 20, 60],
            ]
            .map(|class| class.map(AtomicU64::new)),
            normal_output_limited: AtomicBool::new(false),
            config_file: OnceLock::new(),
            acl_users: Default::default(),
            values: RwLock::new(PARAMS.iter().map(|p| p.default.to_owned()).collect()),
        }
    }
}

impl Config {
    /// The password, if one is required.
    pub fn password(&self) -> Option<Vec<u8>> {
        self.requirepass
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether clients must authenticate.
    pub fn auth_required(&self) -> bool {
        self.requirepass
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// A hot value.
    #[inline]
    pub fn load(v: &AtomicU64) -> u64 {
        v.load(Ordering::Relaxed)
    }

    /// A hot 32-bit value.
    #[inline]
    pub fn load32(v: &AtomicU32) -> u32 {
        v.load(Ordering::Relaxed)
    }

    /// `client-output-buffer-limit` for one class: (hard bytes, soft bytes, soft seconds), 0
    /// for no limit.
    pub fn output_limit(&self, class: OutputClass) -> (u64, u64, u64) {
        let [h, s, t] = &self.output_limits[class as usize];
        (
            h.load(Ordering::Relaxed),
            s.load(Ordering::Relaxed),
            t.load(Ordering::Relaxed),
        )
    }

    /// Whether normal clients have an output limit (`client-output-buffer-limit normal ...`).
    #[inline]
    pub fn normal_output_limited(&self) -> bool {
        self.normal_output_limited.load(Ordering::Relaxed)
    }

    /// The default user's password as ACL shows it (and redis.conf's `user default on #...`):
    /// the SHA-256 of `requirepass`, in hex; None without a password.
    pub fn password_hash(&self) -> Option<String> {
        use sha2::Digest;
        self.password().map(|p| {
            sha2::Sha256::digest(&p)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        })
    }

    /// CONFIG REWRITE: rewrites the redis.conf file the server was started with (see
    /// `rewrite.rs`), with `users` as its `user` lines (none while an `aclfile` holds them). The error is Redis's reason (`strerror`), or that the file is TOML,
    /// which Ferrite does not rewrite.
    pub fn rewrite(&self, users: &[String]) -> Result<(), String> {
        let Some(path) = self.config_file() else {
            return Err("The server is running without a config file".to_owned());
        };
        if path.ends_with(".toml") {
            return Err("Rewriting config file: Operation not supported".to_owned());
        }
        rewrite::rewrite_file(self, path, users).map_err(|e| format!("Rewriting config file: {e}"))
    }

    /// The configuration file, if the server was started with one.
    pub fn config_file(&self) -> Option<&str> {
        self.config_file.get().map(String::as_str)
    }

    /// Every parameter name, in `CONFIG GET *` order.
    pub fn names() -> impl Iterator<Item = &'static str> {
        PARAMS.iter().map(|p| p.name)
    }

    /// `CONFIG SET name value` at runtime: immutable and protected parameters are refused.
    pub fn set(&self, name: &str, value: &[u8]) -> Result<(), ConfigError> {
        self.set_many(&[(name.as_bytes(), value)])
            .map_err(|(_, e)| e)
    }

    /// Sets a parameter at start-up (config file, command line): immutable ones are accepted.
    pub fn set_startup(&self, name: &str, value: &[u8]) -> Result<(), ConfigError> {
        self.set_pairs(&[(name.as_bytes(), value)], true)
            .map_err(|(_, e)| e)
    }

    /// `CONFIG SET name value [name value ...]`: all or nothing, as Redis 7. On failure returns
    /// the name Redis blames (as the client spelled it for lookup errors, canonical for value
    /// errors) with the reason.
    pub fn set_many(&self, pairs: &[(&[u8], &[u8])]) -> Result<(), (String, ConfigError)> {
        self.set_pairs(pairs, false)
    }

    fn set_pairs(
        &self,
        pairs: &[(&[u8], &[u8])],
        startup: bool,
    ) -> Result<(), (String, ConfigError)> {
        // Pass 1, as configSetCommand: resolve names; the first lookup error wins.
        let mut idx = Vec::with_capacity(pairs.len());
        for (i, (name, _)) in pairs.iter().enumerate() {
            let shown = || String::from_utf8_lossy(name).into_owned();
            let Some(p) = lookup(name) else {
                return Err((shown(), ConfigError::Unknown(shown())));
            };
            let flags = PARAMS[p].flags;
            if !startup && flags & IMMUTABLE != 0 {
                return Err((shown(), ConfigError::Immutable));
            }
            if !startup && flags & PROTECTED != 0 {
                let why = "can't set protected config".to_owned();
                return Err((shown(), ConfigError::Invalid(why)));
            }
            if idx[..i].contains(&p) {
                let why = "duplicate parameter".to_owned();
                return Err((shown(), ConfigError::Invalid(why)));
            }
            idx.push(p);
        }
        // Pass 2: validate every value against a staged copy; nothing changes on failure.
        let mut values = self.values_mut();
        let mut staged = values.clone();
        let mut password: Option<Option<Vec<u8>>> = None;
        // The bits, not the shown string: `A` hides `n` (see `notify::flags::format`).
        let mut events: Option<u32> = None;
        for (&p, (_, value)) in idx.iter().zip(pairs) {
            let param = &PARAMS[p];
            let blame = |e: String| (param.name.to_owned(), ConfigError::Invalid(e));
            let mut v = match param.kind {
                Kind::OutputLimits => parse_output_limits(value, &staged[p]).map_err(blame)?,
                _ => parse_value(param, value).map_err(blame)?,
            };
            if param.name == "hz" {
                // Redis accepts any hz but stores it clamped (updateHZ), so CONFIG GET shows that.
                v = v
                    .parse::<u64>()
                    .map_or(v, |hz| hz.clamp(HZ_MIN, HZ_MAX).to_string());
            }
            if !startup && param.flags & LISTENER != 0 && v != values[p] {
                let why = if param.name == "port" {
                    "Unable to listen on this port. Check server logs."
                } else {
                    "Failed to bind to specified addresses."
                };
                return Err(blame(why.to_owned()));
            }
            if param.name == "requirepass" {
                password = Some((!value.is_empty()).then(|| value.to_vec()));
            }
            if let Kind::Events = param.kind {
                events = crate::notify::flags::parse(value);
            }
            staged[p] = v;
        }
        // Apply: publish the hot values.
        for &p in &idx {
            self.apply(PARAMS[p].name, &staged[p]);
        }
        *values = staged;
        drop(values);
        if let Some(pw) = password {
            *self.requirepass.write().unwrap_or_else(|e| e.into_inner()) = pw;
        }
        if let Some(bits) = events {
            self.notify_keyspace_events.store(bits, Ordering::Relaxed);
        }
        Ok(())
    }

    fn apply(&self, name: &str, v: &str) {
        let n = || v.parse::<u64>().unwrap_or(0);
        match name {
            "timeout" => self.timeout.store(n(), Ordering::Relaxed),
            "maxclients" => self.maxclients.store(n(), Ordering::Relaxed),
            "proto-max-bulk-len" => self.proto_max_bulk_len.store(n(), Ordering::Relaxed),
            "client-query-buffer-limit" => {
                self.client_query_buffer_limit.store(n(), Ordering::Relaxed);
            }
            "databases" => self.databases.store(n(), Ordering::Relaxed),
            "hz" => self.hz.store(n().clamp(HZ_MIN, HZ_MAX), Ordering::Relaxed),
            "maxmemory" => self.maxmemory.store(n(), Ordering::Relaxed),
            "slowlog-log-slower-than" => self
                .slowlog_log_slower_than
                .store(v.parse::<i64>().unwrap_or(-1), Ordering::Relaxed),
            "slowlog-max-len" => self.slowlog_max_len.store(n(), Ordering::Relaxed),
            "tracking-table-max-keys" => {
                self.tracking_table_max_keys.store(n(), Ordering::Relaxed);
            }
            "latency-monitor-threshold" => self
                .latency_monitor_threshold
                .store(v.parse::<i64>().unwrap_or(0), Ordering::Relaxed),
            "latency-tracking" => self.latency_tracking.store(v == "yes", Ordering::Relaxed),
            "busy-reply-threshold" => self.busy_reply_threshold.store(n(), Ordering::Relaxed),
            "acllog-max-len" => self.acllog_max_len.store(n(), Ordering::Relaxed),
            "client-output-buffer-limit" => {
                let words: Vec<&str> = v.split_ascii_whitespace().collect();
                for (c, group) in words.chunks_exact(4).enumerate().take(OUTPUT_CLASSES.len()) {
                    for (slot, w) in self.output_limits[c].iter().zip(&group[1..]) {
                        slot.store(w.parse().unwrap_or(0), Ordering::Relaxed);
                    }
                }
                crate::pubsub::set_hard_limit(self.output_limits[2][0].load(Ordering::Relaxed));
                let normal = &self.output_limits[0];
                let limited = normal[0].load(Ordering::Relaxed) != 0
                    || normal[1].load(Ordering::Relaxed) != 0;
                self.normal_output_limited.store(limited, Ordering::Relaxed);
            }
            "rdbcompression" => crate::cmd::dump::rdb::set_compression(v == "yes"),
            "rdbchecksum" => crate::persist::rdb_write::set_checksum(v == "yes"),
            _ if let Some(limit) = ferrite_collections::Limit::of_param(name) => {
                ferrite_collections::Limits::set(limit, usize::try_from(n()).unwrap_or(usize::MAX));
            }
            "no-appendfsync-on-rewrite" => {
                self.no_appendfsync_on_rewrite
                    .store(v == "yes", Ordering::Relaxed);
            }
            "replica-read-only" => self.replica_read_only.store(v == "yes", Ordering::Relaxed),
            "replica-serve-stale-data" => self
                .replica_serve_stale_data
                .store(v == "yes", Ordering::Relaxed),
            "min-replicas-to-write" => self.min_replicas_to_write.store(n(), Ordering::Relaxed),
            "min-replicas-max-lag" => self.min_replicas_max_lag.store(n(), Ordering::Relaxed),
            _ => {}
        }
    }

    /// `CONFIG GET pattern`: `(name, value)` for every parameter the glob matches.
    pub fn get(&self, pattern: &[u8]) -> Vec<(String, String)> {
        self.get_many(&[pattern])
    }

    /// `CONFIG GET pattern [pattern ...]` with Redis 7's rules: a name without glob characters is
    /// looked up directly (and answered under the spelling given), a pattern matches
    /// case-insensitively; each parameter appears once.
    pub fn get_many(&self, patterns: &[&[u8]]) -> Vec<(String, String)> {
        let values = self.values_ref();
        let mut seen: Vec<usize> = Vec::new();
        let mut out = Vec::new();
        for pat in patterns {
            if !pat.iter().any(|b| matches!(b, b'[' | b'*' | b'?')) {
                if let Some(p) = lookup(pat)
                    && !seen.contains(&p)
                {
                    seen.push(p);
                    let name = String::from_utf8_lossy(pat).into_owned();
                    out.push((name, self.shown(p, &values)));
                }
                continue;
            }
            for (p, param) in PARAMS.iter().enumerate() {
                if seen.contains(&p) || param.flags & HIDDEN != 0 {
                    continue;
                }
                // A pattern that misses the name may still match an old name (`lua*`).
                let alias = ALIASES.iter().find(|(_, to)| *to == param.name);
                let name = if glob_nocase(pat, param.name.as_bytes()) {
                    param.name
                } else if let Some((alias, _)) =
                    alias.filter(|(alias, _)| glob_nocase(pat, alias.as_bytes()))
                {
                    alias
                } else {
                    continue;
                };
                seen.push(p);
                out.push((name.to_owned(), self.shown(p, &values)));
            }
        }
        out
    }

    /// The current value of one parameter as CONFIG GET shows it.
    pub fn value(&self, name: &str) -> Option<String> {
        let p = lookup(name.as_bytes())?;
        Some(self.shown(p, &self.values_ref()))
    }

    /// The value as it was set, where CONFIG GET shows something derived (`dir` shows the
    /// working directory; this is the directory asked for, which start-up changes into).
    pub fn stored(&self, name: &str) -> Option<String> {
        let p = lookup(name.as_bytes())?;
        Some(self.values_ref()[p].clone())
    }

    fn shown(&self, p: usize, values: &[String]) -> String {
        match PARAMS[p].name {
            // Redis answers getcwd(), wherever the process is.
            "dir" => std::env::current_dir()
                .map(|d| d.to_string_lossy().into_owned())
                .unwrap_or_default(),
            "requirepass" => self
                .password()
                .map(|p| String::from_utf8_lossy(&p).into_owned())
                .unwrap_or_default(),
            _ => values[p].clone(),
        }
    }

    /// The value a parameter was set to, before any display rule (`dir` shows the working
    /// directory, which is only the configured one once the binary has moved there).
    pub fn configured(&self, name: &str) -> Option<String> {
        let p = lookup(name.as_bytes())?;
        Some(self.values_ref()[p].clone())
    }

    /// A numeric parameter's value (0 when unknown or not numeric).
    pub fn value_u64(&self, name: &str) -> u64 {
        self.value(name).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    /// `port`.
    pub fn port(&self) -> u16 {
        u16::try_from(self.value_u64("port")).unwrap_or(6379)
    }

    /// `bind`: the addresses to listen on.
    pub fn bind(&self) -> Vec<String> {
        let v = self.value("bind").unwrap_or_default();
        v.split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// `threads`: reactor threads, 0 = one per core.
    pub fn threads(&self) -> usize {
        usize::try_from(self.value_u64("threads")).unwrap_or(0)
    }

    /// `io-backend`: `auto`, `uring` or `epoll`.
    pub fn io_backend(&self) -> String {
        self.value("io-backend")
            .unwrap_or_else(|| "auto".to_owned())
    }

    /// `memory-size`: the store's in-memory log budget in bytes.
    pub fn memory_size(&self) -> u64 {
        self.value_u64("memory-size")
    }

    /// `index-size`: the store's hash index size in bytes.
    pub fn index_size(&self) -> u64 {
        self.value_u64("index-size")
    }

    /// `loglevel`.
    pub fn loglevel(&self) -> String {
        self.value("loglevel")
            .unwrap_or_else(|| "notice".to_owned())
    }

    fn values_ref(&self) -> RwLockReadGuard<'_, Vec<String>> {
        // Values are replaced whole under the lock: a poisoned lock still holds a valid table.
        self.values.read().unwrap_or_else(|e| e.into_inner())
    }

    fn values_mut(&self) -> RwLockWriteGuard<'_, Vec<String>> {
        self.values.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Redis's `stringmatchlen(..., nocase=1)`: the KEYS matcher over lowercased inputs, which is
/// what Redis's nocase mode amounts to (it lowers both sides, range bounds included).
pub fn glob_nocase(pattern: &[u8], name: &[u8]) -> bool {
    crate::cmd::keys::glob::matches(&pattern.to_ascii_lowercase(), &name.to_ascii_lowercase())
}

/// Index of the parameter called `name`, case-insensitively.
/// Old names Redis still accepts, and the parameter each names.
const ALIASES: &[(&str, &str)] = &[
    ("lua-time-limit", "busy-reply-threshold"),
    ("slave-read-only", "replica-read-only"),
    ("slave-serve-stale-data", "replica-serve-stale-data"),
    ("slaveof", "replicaof"),
    ("repl-ping-slave-period", "repl-ping-replica-period"),
    ("min-slaves-to-write", "min-replicas-to-write"),
    ("min-slaves-max-lag", "min-replicas-max-lag"),
    ("hash-max-ziplist-entries", "hash-max-listpack-entries"),
    ("hash-max-ziplist-value", "hash-max-listpack-value"),
    ("zset-max-ziplist-entries", "zset-max-listpack-entries"),
    ("zset-max-ziplist-value", "zset-max-listpack-value"),
    ("list-max-ziplist-size", "list-max-listpack-size"),
    ("slave-priority", "replica-priority"),
];

fn lookup(name: &[u8]) -> Option<usize> {
    let by_name = |name: &[u8]| {
        PARAMS
            .iter()
            .position(|p| p.name.as_bytes().eq_ignore_ascii_case(name))
    };
    by_name(name).or_else(|| {
        let (_, to) = ALIASES
            .iter()
            .find(|(alias, _)| alias.as_bytes().eq_ignore_ascii_case(name))?;
        by_name(to.as_bytes())
    })
}

/// Validates `value` for `p` and returns it as CONFIG GET will show it, or Redis's reason.
fn parse_value(p: &Param, value: &[u8]) -> Result<String, String> {
    match p.kind {
        Kind::Num { min, max, memory } => {
            let v: i128 = if memory {
                memtoull(value).ok_or("argument must be a memory value")? as i128
            } else {
                crate::args::parse_i64(value)
                    .ok_or("argument couldn't be parsed into an integer")? as i128
            };
            if v < min || v > max {
                return Err(format!(
                    "argument must be between {min} and {max} inclusive"
                ));
            }
            Ok(v.to_string())
        }
        Kind::Bool => {
            if value.eq_ignore_ascii_case(b"yes") {
                Ok("yes".to_owned())
            } else if value.eq_ignore_ascii_case(b"no") {
                Ok("no".to_owned())
            } else {
                Err("argument must be 'yes' or 'no'".to_owned())
            }
        }
        Kind::Enum(names) => names
            .iter()
            .find(|n| n.as_bytes().eq_ignore_ascii_case(value))
            .map(|n| (*n).to_owned())
            .ok_or_else(|| {
                format!(
                    "argument(s) must be one of the following: {}",
                    names.join(", ")
                )
            }),
        Kind::Str => Ok(String::from_utf8_lossy(value).into_owned()),
        Kind::Save => parse_save(value).ok_or_else(|| "Invalid save parameters".to_owned()),
        Kind::Percentiles => parse_percentiles(value),
        // Merged with the current value by `set_pairs`.
        Kind::OutputLimits => parse_output_limits(value, p.default),
        Kind::Events => crate::notify::flags::parse(value)
            .map(crate::notify::flags::format)
            .ok_or_else(|| crate::notify::flags::INVALID.to_owned()),
    }
}

/// Redis's `latency-tracking-info-percentiles`: numbers separated by single spaces (`""` is
/// none), each within 0..=100, shown as `%f` without trailing zeros.
fn parse_percentiles(value: &[u8]) -> Result<String, String> {
    if value.is_empty() {
        return Ok(String::new());
    }
    let mut shown = Vec::new();
    for p in value.split(|&b| b == b' ') {
        let v = crate::args::parse_f64(p)
            .ok_or("Invalid latency-tracking-info-percentiles parameters")?;
        if !(0.0..=100.0).contains(&v) {
            return Err(
                "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
                    .to_owned(),
            );
        }
        let text = format!("{v:.6}");
        shown.push(text.trim_end_matches('0').trim_end_matches('.').to_owned());
    }
    Ok(shown.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_as_redis_reads_and_shows_them() {
        assert_eq!(parse_percentiles(b"50 99 99.9").unwrap(), "50 99 99.9");
        assert_eq!(parse_percentiles(b"0.0000001 100").unwrap(), "0 100");
        assert_eq!(parse_percentiles(b"1e1 99.90").unwrap(), "10 99.9");
        assert_eq!(parse_percentiles(b"").unwrap(), "");
        for bad in [&b"50  99"[..], b" 50", b"nan", b"x"] {
            assert_eq!(
                parse_percentiles(bad).unwrap_err(),
                "Invalid latency-tracking-info-percentiles parameters"
            );
        }
        assert!(
            parse_percentiles(b"1 200")
                .unwrap_err()
                .contains("[0.0,100.0]")
        );
    }

    #[test]
    fn set_errors_match_redis() {
        let c = Config::default();
        let err = |pairs: &[(&[u8], &[u8])]| c.set_many(pairs).unwrap_err();
        assert_eq!(
            err(&[(b"foo", b"1")]),
            ("foo".into(), ConfigError::Unknown("foo".into()))
        );
        assert_eq!(
            err(&[(b"MAXCLIENTS", b"x")]).0,
            "maxclients",
            "value errors name the canonical parameter"
        );
        assert_eq!(
            err(&[(b"DATABASES", b"1")]),
            ("DATABASES".into(), ConfigError::Immutable)
        );
        assert_eq!(
            err(&[(b"databases", b"1"), (b"foo", b"1")]).1,
            ConfigError::Immutable
        );
        assert_eq!(
            err(&[(b"timeout", b"1"), (b"Timeout", b"2")]),
            (
                "Timeout".into(),
                ConfigError::Invalid("duplicate parameter".into())
            )
        );
        assert_eq!(
            err(&[(b"timeout", b"-1")]).1,
            ConfigError::Invalid("argument must be between 0 and 2147483647 inclusive".into())
        );
        // All or nothing: the valid first pair is not applied.
        err(&[(b"timeout", b"5"), (b"loglevel", b"x")]);
        assert_eq!(c.value("timeout").as_deref(), Some("0"));
        assert_eq!(Config::load(&c.timeout), 0);
    }

    #[test]
    fn set_applies_hot_values() {
        let c = Config::default();
        c.set_many(&[(b"timeout", b"5"), (b"hz", b"1000"), (b"maxmemory", b"1mb")])
            .unwrap();
        assert_eq!(Config::load(&c.timeout), 5);
        assert_eq!(Config::load(&c.hz), 500);
        assert_eq!(c.value("hz").as_deref(), Some("500"));
        assert_eq!(c.value("maxmemory").as_deref(), Some("1048576"));
        c.set("requirepass", b"secret").unwrap();
        assert!(c.auth_required());
        c.set("requirepass", b"").unwrap();
        assert!(!c.auth_required());
        assert_eq!(c.set("io-threads", b"2"), Err(ConfigError::Immutable));
        c.set_startup("io-threads", b"2").unwrap();
        assert_eq!(c.value("io-threads").as_deref(), Some("2"));
        assert_eq!(c.set("LogLevel", b"WARNING"), Ok(()));
        assert_eq!(c.loglevel(), "warning");
        c.set("notify-keyspace-events", b"AKEn").unwrap();
        assert_eq!(c.value("notify-keyspace-events").as_deref(), Some("AKE"));
        let bits = Config::load32(&c.notify_keyspace_events);
        assert_ne!(
            bits & crate::notify::flags::NEW,
            0,
            "n is kept though A hides it"
        );
        assert_eq!(
            c.set("notify-keyspace-events", b"Kq"),
            Err(ConfigError::Invalid(crate::notify::flags::INVALID.into()))
        );
        assert_eq!(Config::load32(&c.notify_keyspace_events), bits);
    }

    #[test]
    fn get_rules() {
        let c = Config::default();
        assert_eq!(c.get(b"PORT"), vec![("PORT".into(), "6379".into())]);
        assert_eq!(c.get(b"P*RT"), vec![("port".into(), "6379".into())]);
        assert_eq!(
            c.get_many(&[b"port", b"Port", b"p?rt"]),
            vec![("port".into(), "6379".into())]
        );
        assert!(c.get(b"nonexistent").is_empty());
        let shown = PARAMS.iter().filter(|p| p.flags & HIDDEN == 0).count();
        assert_eq!(c.get(b"*").len(), shown);
        assert_eq!(c.get(b"rdb-key-save-delay").len(), 1, "hidden, not gone");
        assert!(glob_nocase(b"MAX*", b"maxmemory"));
        assert!(glob_nocase(b"[L-M]axmemory", b"maxmemory"));
        assert!(!glob_nocase(b"max?", b"maxmemory"));
    }
}
