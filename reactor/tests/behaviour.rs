//! Behaviour of both backends under the line service: concurrency, split input, large replies,
//! backpressure, park/resume, close-after-flush, disconnects and shutdown.

mod common;

use std::io::{Read, Write};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;

#[test]
fn many_clients_concurrently() {
    each_setup(|server| {
        let clients: Vec<_> = (0..40)
            .map(|c| {
                let mut stream = server.connect();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        round_trip(&mut stream, &format!("client {c} line {i}"));
                    }
                    // A pipelined burst: every reply, in order.
                    let mut burst = String::new();
                    let mut expected = String::new();
                    for i in 0..100 {
                        burst.push_str(&format!("b{c}-{i}\n"));
                        expected.push_str(&format!("B{c}-{i}\n"));
                    }
                    stream.write_all(burst.as_bytes()).unwrap();
                    assert_eq!(read_n(&mut stream, expected.len()), expected.as_bytes());
                })
            })
            .collect();
        for client in clients {
            client.join().unwrap();
        }
        let stats = server.running.stats();
        assert!(stats.accepts >= 40, "{stats:?}");
        eventually("closes", || server.obs.closed.load(Ordering::SeqCst) == 40);
    });
}

#[test]
fn pipelined_input_split_at_every_byte() {
    let script = b"hello\nworld\nPARK\nafter park\nBIG 5\nlast\n";
    let expected = b"HELLO\nWORLD\nPARKED\nAFTER PARK\nxxxxx\nLAST\n";
    each_setup(|server| {
        for split in 1..script.len() {
            let mut stream = server.connect();
            stream.write_all(&script[..split]).unwrap();
            // Give the first part time to arrive on its own.
            std::thread::sleep(Duration::from_millis(2));
            stream.write_all(&script[split..]).unwrap();
            assert_eq!(
                read_n(&mut stream, expected.len()),
                expected,
                "split at {split}"
            );
        }
        // And one byte per write.
        let mut stream = server.connect();
        for &byte in script.iter() {
            stream.write_all(&[byte]).unwrap();
        }
        assert_eq!(read_n(&mut stream, expected.len()), expected);
    });
}

#[test]
fn ten_megabyte_reply_reaches_a_slow_reader() {
    const SIZE: usize = 10_000_000;
    each_setup(|server| {
        let mut stream = server.connect();
        stream
            .write_all(format!("BIG {SIZE}\nafter\n").as_bytes())
            .unwrap();
        let mut got = 0;
        let mut buf = vec![0; 64 * 1024];
        let mut reads = 0;
        while got < SIZE + 1 {
            let want = (SIZE + 1 - got).min(buf.len());
            let n = stream.read(&mut buf[..want]).unwrap();
            assert!(n > 0, "EOF after {got} bytes");
            // Sampled: a per-byte check of 10 MB is slow in debug builds.
            assert!(buf[..n].iter().step_by(997).all(|&b| b == b'x') || got + n == SIZE + 1);
            got += n;
            reads += 1;
            if reads < 20 {
                std::thread::sleep(Duration::from_millis(5)); // slow at first
            }
        }
        assert_eq!(read_n(&mut stream, 6), b"AFTER\n");
        let stats = server.running.stats();
        assert!(
            stats.short_sends > 0,
            "a 10 MB reply cannot fit one send: {stats:?}"
        );
        round_trip(&mut stream, "still alive");
    });
}

#[test]
fn backpressure_stops_reading() {
    const LINES: usize = 24_000;
    const LINE: usize = 1000; // bytes per line, newline included; the reply is as long
    each_setup(|server| {
        let mut stream = server.connect();
        let mut writer = stream.try_clone().unwrap();
        let before = server.running.stats();
        let sender = std::thread::spawn(move || {
            let mut line = "a".repeat(LINE - 1);
            line.push('\n');
            for _ in 0..LINES {
                writer.write_all(line.as_bytes()).unwrap();
            }
        });
        // Never read: the server must stop reading rather than buffer 24 MB. Its reads stop
        // once the kernel's socket buffers (both ways) and the output limit are full.
        let mut last = server.running.stats();
        loop {
            std::thread::sleep(Duration::from_millis(250));
            let now = server.running.stats();
            if now.bytes_in == last.bytes_in {
                break;
            }
            last = now;
        }
        let second = server.running.stats();
        assert!(second.backpressure > before.backpressure, "{second:?}");
        let read = second.bytes_in - before.bytes_in;
        assert!(
            read < (LINES * LINE * 3 / 4) as u64,
            "read {read} bytes: {second:?}"
        );
        let max_out = server.obs.max_out.load(Ordering::SeqCst);
        assert!(
            max_out <= MAX_PENDING + BATCH * LINE,
            "pending grew to {max_out}"
        );
        // Now drain: everything arrives, and the server reads again.
        let total = LINES * LINE;
        let mut got = 0;
        let mut buf = vec![0; 256 * 1024];
        while got < total {
            let n = stream.read(&mut buf).unwrap();
            assert!(n > 0);
            // Spot-check the framing: every LINE-th byte is a newline.
            let first = (LINE - 1 + LINE - got % LINE) % LINE;
            for i in (first..n).step_by(LINE) {
                assert_eq!(buf[i], b'\n');
            }
            got += n;
        }
        assert_eq!(got, total);
        sender.join().unwrap();
        round_trip(&mut stream, "unblocked");
        assert!(
            server.running.stats().rearms > second.rearms,
            "reading never resumed"
        );
    });
}

#[test]
fn park_and_resume_keep_order() {
    each_setup(|server| {
        let resumes_before = server.running.stats().resumes;
        let mut stream = server.connect();
        stream
            .write_all(b"one\nPARK\ntwo\nPARK\nthree\nfour\n")
            .unwrap();
        let expected = b"ONE\nPARKED\nTWO\nPARKED\nTHREE\nFOUR\n";
        assert_eq!(read_n(&mut stream, expected.len()), expected);
        let stats = server.running.stats();
        assert!(
            stats.parks >= 2 && stats.resumes >= resumes_before + 2,
            "{stats:?}"
        );
        // Input that arrives while parked (no new bytes after it) is still handled on resume.
        stream.write_all(b"PARK\n").unwrap();
        assert_eq!(read_n(&mut stream, 7), b"PARKED\n");
        stream.write_all(b"queued\n").unwrap();
        assert_eq!(read_n(&mut stream, 7), b"QUEUED\n");
    });
}

#[test]
fn close_after_flush_delivers_the_last_reply() {
    each_setup(|server| {
        let mut stream = server.connect();
        stream.write_all(b"hi\nBIG 100000\nCLOSE\nnever\n").unwrap();
        let got = read_to_eof(&mut stream);
        let mut expected = b"HI\n".to_vec();
        expected.resize(expected.len() + 100_000, b'x');
        expected.extend_from_slice(b"\nBYE\n");
        assert_eq!(got.len(), expected.len());
        assert!(got == expected);
        // QUIT closes at once.
        let mut stream = server.connect();
        stream.write_all(b"QUIT\n").unwrap();
        assert!(read_to_eof(&mut stream).is_empty());
    });
}

#[test]
fn poll_and_ctl_close_end_connections() {
    each_setup(|server| {
        // `poll` (after a tick) writes a last reply and asks to close after flush.
        let mut stream = server.connect();
        stream.write_all(b"a\nKILL\n").unwrap();
        assert_eq!(read_to_eof(&mut stream), b"A\nKILLED\n");
        // `Ctl::close` from the next tick closes after flushing what is pending.
        let mut stream = server.connect();
        stream.write_all(b"LATER\nb\n").unwrap();
        assert_eq!(read_to_eof(&mut stream), b"B\n");
    });
}

#[test]
fn peer_disconnecting_mid_send_does_not_hurt_the_loop() {
    each_setup(|server| {
        let closed_before = server.obs.closed.load(Ordering::SeqCst);
        for _ in 0..5 {
            let mut stream = server.connect();
            stream.write_all(b"BIG 20000000\n").unwrap();
            let _ = read_n(&mut stream, 1000);
            drop(stream); // with unread data: the server sees a reset
        }
        // Half-close after a request: EOF closes the connection.
        let stream = server.connect();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        eventually("closed callbacks", || {
            server.obs.closed.load(Ordering::SeqCst) >= closed_before + 6
        });
        let mut stream = server.connect();
        round_trip(&mut stream, "still serving");
    });
}

#[test]
fn shutdown_closes_connections_and_joins() {
    for backend in [
        ferrite_reactor::Backend::Uring,
        ferrite_reactor::Backend::Epoll,
    ] {
        let Some(server) = start(backend, 2) else {
            continue;
        };
        let mut clients: Vec<_> = (0..6).map(|_| server.connect()).collect();
        for client in &mut clients {
            round_trip(client, "hello");
        }
        // A client with a send stuck in flight (never reads) must not block shutdown.
        let mut stuck = server.connect();
        stuck.write_all(b"BIG 50000000\n").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let obs = std::sync::Arc::clone(&server.obs);
        server.stop();
        for client in &mut clients {
            assert!(read_to_eof(client).is_empty());
        }
        assert_eq!(obs.closed.load(Ordering::SeqCst), 7, "{backend:?}");
    }
}

#[test]
fn service_can_shut_the_reactor_down() {
    for backend in [
        ferrite_reactor::Backend::Uring,
        ferrite_reactor::Backend::Epoll,
    ] {
        let Some(server) = start(backend, 2) else {
            continue;
        };
        let mut stream = server.connect();
        stream.write_all(b"SHUTDOWN\n").unwrap();
        join_within(server.running, Duration::from_secs(10));
    }
}

#[test]
fn wakers_reach_the_service() {
    each_setup(|server| {
        let before = server.obs.woken.load(Ordering::SeqCst);
        for waker in server.running.wakers() {
            waker.wake();
        }
        let threads = server.running.wakers().len();
        eventually("woken", || {
            server.obs.woken.load(Ordering::SeqCst) >= before + threads
        });
        assert!(server.running.stats().wakes >= threads as u64);
    });
}

#[test]
fn lone_request_among_idle_connections_is_not_held_back() {
    // With many receives armed the io_uring loop waits for several completions, bounded by a
    // short minimum wait; one active client must still get each reply long before the tick.
    for backend in [
        ferrite_reactor::Backend::Uring,
        ferrite_reactor::Backend::Epoll,
    ] {
        let mut cfg = config(backend, 1);
        cfg.tick = Duration::from_secs(1);
        let Some(server) = start_with(cfg, Default::default()) else {
            continue;
        };
        let idle: Vec<_> = (0..100).map(|_| server.connect()).collect();
        let mut active = server.connect();
        eventually("accepts", || server.running.stats().accepts >= 101);
        round_trip(&mut active, "warm up");
        let started = std::time::Instant::now();
        for i in 0..200 {
            round_trip(&mut active, &format!("line {i}"));
        }
        let elapsed = started.elapsed();
        // A wait that slept until the tick would take 200 s; 50 us waits take milliseconds.
        assert!(elapsed < Duration::from_secs(5), "{backend:?}: {elapsed:?}");
        drop(idle);
        server.stop();
    }
}

#[test]
fn every_thread_accepts_on_every_address() {
    // 127.0.0.2 is loopback too; ::1 only where IPv6 is on (skipped otherwise, as optional).
    let addrs = ["127.0.0.1:0", "127.0.0.2:0", "[::1]:0"];
    for backend in [
        ferrite_reactor::Backend::Uring,
        ferrite_reactor::Backend::Epoll,
    ] {
        let mut cfg = config(backend, 2);
        cfg.bind = addrs
            .iter()
            .map(|a| ferrite_reactor::BindAddr {
                addr: a.parse().unwrap(),
                optional: a.starts_with('['),
            })
            .collect();
        let Some(server) = start_with(cfg, Default::default()) else {
            continue;
        };
        let bound = server.running.local_addrs().to_vec();
        assert!(bound.len() >= 2, "{bound:?}");
        assert!(bound.iter().all(|a| a.port() == bound[0].port()));
        let clients: Vec<_> = (0..8)
            .flat_map(|_| bound.iter())
            .map(|addr| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        for (i, mut stream) in clients.into_iter().enumerate() {
            round_trip(&mut stream, &format!("client {i}"));
        }
        server.stop();
    }
}
