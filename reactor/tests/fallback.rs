//! `Backend::Auto` falls back to epoll when io_uring is unavailable (forced here with
//! `FERRITE_FORCE_NO_URING=1`), and `Backend::Uring` then refuses to start.
//!
//! Its own test binary (process): it changes the environment.

mod common;

use ferrite_reactor::{Backend, ReactorError};

use common::*;

#[test]
fn auto_falls_back_to_epoll_without_uring() {
    // SAFETY: the only test in this binary, and no other thread reads or writes the
    // environment while it runs (the reactor reads it during `start`, on this thread's watch).
    unsafe { std::env::set_var("FERRITE_FORCE_NO_URING", "1") };

    let server = start(Backend::Auto, 2).expect("auto never skips");
    assert_eq!(server.running.backend(), Backend::Epoll);
    let mut stream = server.connect();
    round_trip(&mut stream, "served by epoll");
    server.stop();

    match ferrite_reactor::start(config(Backend::Uring, 1), |_, _| -> LineService {
        unreachable!()
    }) {
        Err(ReactorError::UringUnavailable(err)) => {
            assert!(err.to_string().contains("FERRITE_FORCE_NO_URING"), "{err}");
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("io_uring started although forced off"),
    }
}
