//! Ferrite's command layer: the Redis protocol (RESP2/RESP3 parsing and encoding), the command
//! table, and the handlers that turn commands into replies over the HybridLog store.
//!
//! A request flows: bytes → [`resp::Parser`] → [`args::Args`] → [`worker::Worker`] resolves the
//! [`table::CommandSpec`] and checks arity and auth → the handler in [`cmd`] reads and writes the
//! store through its [`ctx::Ctx`] → [`resp::Reply`] encodes the answer.

pub mod acl;
mod ahead;
pub mod aof;
pub mod args;
pub mod blocking;
pub mod client;
pub mod cmd;
pub mod config;
pub mod ctx;
pub mod disk_wait;
pub mod docs;
pub mod eviction;
pub mod latency;
pub mod master;
pub mod monitor;
mod nested;
pub mod notify;
pub mod objects;
pub mod pause;
pub mod persist;
pub mod pubsub;
pub mod replica;
mod resolve;
pub mod resp;
pub mod server;
pub mod slowlog;
pub mod stats;
pub mod table;
pub mod tracking;
pub mod worker;

pub use client::Client;
pub use server::Server;
pub use worker::{Flow, Worker};
