//! The `ferrite-load` load generator: closed-loop clients over plain TCP (one connection each,
//! multiplexed over a few epoll threads), measuring every request's latency into an
//! HdrHistogram.
//!
//! Keys are `key:` and ten decimal digits (`key:0000000042`), so every key has the same length;
//! values are a pattern derived from the key's index ([`keys::write_value`]), so a GET reply can
//! be checked byte for byte against the value the preload (or a SET) wrote.

mod conns;
pub mod keys;
pub mod preload;
pub mod resp;
pub mod rng;
pub mod run;
pub mod zipf;
