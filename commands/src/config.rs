//! Runtime configuration: every parameter CONFIG GET/SET knows, with Redis's names, defaults,
//! validation and error strings. The binary applies `ferrite.toml` and command-line settings
//! through [`Config::set`] too, so a value is validated the same way wherever it comes from.
//!
//! Values read on the hot path (per command or per read) are atomics; the rest are strings
//! behind a lock that only CONFIG and INFO take.

use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

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
}
