//! Start-up errors and limits: address in use, a full connection table, refused connections.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::*;
use ferrite_reactor::{Backend, ReactorError};

#[test]
fn port_in_use_is_a_listen_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    for backend in [Backend::Uring, Backend::Epoll, Backend::Auto] {
        let mut cfg = config(backend, 2);
        cfg.bind = vec![taken.local_addr().unwrap().into()];
        match ferrite_reactor::start(cfg, |_, _| -> LineService { unreachable!() }) {
            Err(ReactorError::Listen { addr, source }) => {
                assert_eq!(addr, taken.local_addr().unwrap());
                assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse);
            }
            Err(ReactorError::UringUnavailable(err)) if backend == Backend::Uring => {
                eprintln!("skipping io_uring: {err}");
            }
            Err(other) => panic!("{backend:?}: unexpected error {other}"),
            Ok(_) => panic!("{backend:?}: started on a port in use"),
        }
    }
}

#[test]
fn invalid_config_is_refused() {
    let mut cfg = config(Backend::Epoll, 0);
    assert!(matches!(
        ferrite_reactor::start(cfg.clone(), |_, _| -> LineService { unreachable!() }),
        Err(ReactorError::Io(_))
    ));
    cfg.threads = 1;
    cfg.max_connections_per_thread = 0;
    assert!(ferrite_reactor::start(cfg, |_, _| -> LineService { unreachable!() }).is_err());
}

#[test]
fn full_table_closes_new_connections() {
    for backend in [Backend::Uring, Backend::Epoll] {
        let mut cfg = config(backend, 1);
        cfg.max_connections_per_thread = 3;
        let Some(server) = start_with(cfg, Arc::default()) else {
            continue;
        };
        let mut kept: Vec<_> = (0..3).map(|_| server.connect()).collect();
        for client in &mut kept {
            round_trip(client, "in");
        }
        let mut extra = server.connect();
        let _ = extra.write_all(b"hello\n");
        // Closed without a reply (EOF, or a reset if our bytes were still unread).
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut extra, &mut buf);
        assert!(buf.is_empty(), "{backend:?}");
        assert!(server.running.stats().refused >= 1);
        // Freeing a slot makes room again.
        drop(kept.pop());
        eventually("a free slot", || {
            server.obs.closed.load(Ordering::SeqCst) == 1
        });
        let mut again = server.connect();
        round_trip(&mut again, "room again");
        server.stop();
    }
}

#[test]
fn refused_connection_gets_its_error_then_eof() {
    for backend in [Backend::Uring, Backend::Epoll] {
        let obs = Arc::new(Observed::default());
        obs.refuse_after.store(1, Ordering::SeqCst);
        let Some(server) = start_with(config(backend, 1), obs) else {
            continue;
        };
        let mut first = server.connect();
        round_trip(&mut first, "accepted");
        let mut second = server.connect();
        assert_eq!(
            read_to_eof(&mut second),
            b"-ERR max number of clients reached\n"
        );
        round_trip(&mut first, "unaffected");
        assert_eq!(server.running.stats().refused, 1);
        // `closed` is for connections the service accepted only.
        assert_eq!(server.obs.closed.load(Ordering::SeqCst), 0);
        server.stop();
    }
}

#[test]
fn auto_prefers_io_uring_where_it_works() {
    let server = start(Backend::Auto, 1).expect("auto always starts");
    let uring_works = start(Backend::Uring, 1).map(Server::stop).is_some();
    let expected = if uring_works {
        Backend::Uring
    } else {
        Backend::Epoll
    };
    assert_eq!(server.running.backend(), expected);
    let mut stream = server.connect();
    round_trip(&mut stream, "auto");
    server.stop();
}
