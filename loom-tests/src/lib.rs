//! loom models of the HybridLog's lock-free protocols. The models live in `tests/`; run them with
//! `RUSTFLAGS="--cfg loom" cargo test -p ferrite-loom-tests --release`.
//!
//! - `index_tentative`: FASTER's tentative-bit protocol for creating index entries.
//! - `rcu_epoch`: a reader pinned in an epoch against a writer that replaces a record by
//!   read-copy-update and retires the old one.
//! - `seqlock`: in-place updates of a record's value against lock-free readers.
//! - `gate`: the shared/exclusive gate behind multi-key commands.
