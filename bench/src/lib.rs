//! Benchmark support for Ferrite. The Criterion benchmarks live in `benches/`; the building
//! blocks of the `ferrite-load` load generator (key choice, values, the RESP reply reader and the
//! client threads) live in [`load`], where they can be unit-tested.

pub mod load;
