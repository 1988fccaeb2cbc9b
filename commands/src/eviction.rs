//! `maxmemory`: Redis's eviction before a command runs, over the store's dataset size (live
//! records wherever they are, plus big values' heap blocks).
//!
//! As in Redis's `processCommand`: with a limit set, every command first evicts keys by the
//! configured policy until the dataset is under the limit; if it cannot (`noeviction`, or no
//! candidate, such as `volatile-*` with no key that has a TTL), commands that may grow memory
//! (DENYOOM, and everything but EXEC/DISCARD/QUIT/RESET inside MULTI) get Redis's `-OOM` error.
//! The policy also decides what the store tracks per record: LFU counters for the `*-lfu`
//! policies, the LRU clock otherwise (OBJECT IDLETIME and FREQ read them).

use ferrite_hybridlog::{EvictionPolicy, Session};

use crate::config::Config;

/// Most keys one command evicts before giving up (Redis bounds the time instead).
const MAX_EVICTIONS_PER_COMMAND: usize = 4096;

/// The policy named by `maxmemory-policy`; `None` for `noeviction`.
pub fn policy(config: &Config) -> Option<EvictionPolicy> {
    Some(match config.value("maxmemory-policy").as_deref() {
        Some("allkeys-lru") => EvictionPolicy::AllKeysLru,
        Some("allkeys-lfu") => EvictionPolicy::AllKeysLfu,
        Some("allkeys-random") => EvictionPolicy::AllKeysRandom,
        Some("volatile-lru") => EvictionPolicy::VolatileLru,
        Some("volatile-lfu") => EvictionPolicy::VolatileLfu,
        Some("volatile-random") => EvictionPolicy::VolatileRandom,
        Some("volatile-ttl") => EvictionPolicy::VolatileTtl,
        _ => return None,
    })
}

/// Whether the configured policy tracks access frequency (`*-lfu`) rather than recency.
pub fn tracks_lfu(config: &Config) -> bool {
    matches!(
        policy(config),
        Some(EvictionPolicy::AllKeysLfu | EvictionPolicy::VolatileLfu)
    )
}

/// Tells the store what to track for the configured policy (LFU for `*-lfu`).
pub fn sync_tracking(config: &Config, session: &Session) {
    let tracking = tracks_lfu(config).then(|| {
        (
            config.value_u64("lfu-log-factor") as u32,
            config.value_u64("lfu-decay-time") as u32,
        )
    });
    session.store().access().set_policy(tracking);
}

/// Whether `maxmemory` is set and the dataset is over it (Redis's OOM condition).
pub fn over_maxmemory(config: &Config, session: &Session) -> bool {
    let limit = Config::load(&config.maxmemory);
    limit != 0 && session.store().dataset_bytes() > limit
}

/// Evicts until the dataset is under `maxmemory`; false if it is still over (out of memory).
pub fn make_room(config: &Config, session: &mut Session, now_ms: u64, seed: &mut u64) -> bool {
    if !over_maxmemory(config, session) {
        return true;
    }
    let limit = Config::load(&config.maxmemory);
    let Some(policy) = policy(config) else {
        return false;
    };
    let samples = config.value_u64("maxmemory-samples") as usize;
    for _ in 0..MAX_EVICTIONS_PER_COMMAND {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        if !session.evict_one(policy, samples, now_ms, *seed) {
            return false;
        }
        session.store().count_evicted();
        if session.store().dataset_bytes() <= limit {
            return true;
        }
    }
    session.store().dataset_bytes() <= limit
}
