//! Disk reads through the reactor (`Ctl::read_disk`): bytes, order, errors and concurrency on
//! both backends, with an `O_DIRECT` file where the filesystem allows one.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::{Observed, config, fnv1a, start_with};
use ferrite_reactor::{Backend, MAX_DISK_READ};

const FILE_LEN: usize = 1 << 20;

struct TestFile {
    path: std::path::PathBuf,
    data: Vec<u8>,
}

impl TestFile {
    fn new(name: &str) -> TestFile {
        // Under the build directory rather than /tmp, which may be a tmpfs without O_DIRECT.
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
        let path = dir.join(format!("{name}-{}", std::process::id()));
        let data: Vec<u8> = (0..FILE_LEN as u64)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();
        TestFile { path, data }
    }

    /// Opens it with O_DIRECT if the filesystem takes it, else buffered; says which.
    fn open(&self, direct: bool) -> (std::fs::File, bool) {
        if direct {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECT)
                .open(&self.path);
            if let Ok(f) = f {
                return (f, true);
            }
            eprintln!("O_DIRECT refused here; testing buffered reads only");
        }
        (std::fs::File::open(&self.path).unwrap(), false)
    }

    fn expect(&self, off: usize, len: usize) -> String {
        let end = (off + len).min(self.data.len());
        let bytes = &self.data[off.min(end)..end];
        format!("DISK {} {}", bytes.len(), fnv1a(bytes))
    }
}

impl Drop for TestFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn each(name: &str, mut test: impl FnMut(&common::Server, &TestFile)) {
    let file = TestFile::new(name);
    for direct in [true, false] {
        let (f, _) = file.open(direct);
        for backend in [Backend::Uring, Backend::Epoll] {
            for threads in [1, 2] {
                let obs = Arc::new(Observed::default());
                obs.disk_fd.store(f.as_raw_fd(), Ordering::SeqCst);
                if let Some(server) = start_with(config(backend, threads), obs) {
                    test(&server, &file);
                    server.stop();
                }
            }
        }
    }
}

fn lines(stream: &std::net::TcpStream, n: usize) -> Vec<String> {
    let mut reader = BufReader::new(stream);
    (0..n)
        .map(|_| {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            line.trim_end().to_owned()
        })
        .collect()
}

#[test]
fn pipelined_reads_keep_order_with_other_commands() {
    each("pipelined", |server, file| {
        let mut c = server.connect();
        let too_long = MAX_DISK_READ + 4096;
        c.write_all(
            format!(
                "ping\nDISK 4096 8192\npong\nDISK {} 8192\nDISK 0 {too_long}\nDISK 0 4096\n",
                FILE_LEN - 4096
            )
            .as_bytes(),
        )
        .unwrap();
        let got = lines(&c, 6);
        assert_eq!(
            got,
            [
                "PING".to_owned(),
                file.expect(4096, 8192),
                "PONG".to_owned(),
                // A short read at the end of the file.
                file.expect(FILE_LEN - 4096, 8192),
                format!("DISKERR {}", libc::EINVAL),
                file.expect(0, 4096),
            ]
        );
    });
}

#[test]
fn a_failed_read_reports_the_error() {
    let obs = Arc::new(Observed::default());
    obs.disk_fd.store(-1, Ordering::SeqCst);
    for backend in [Backend::Uring, Backend::Epoll] {
        let Some(server) = start_with(config(backend, 1), Arc::clone(&obs)) else {
            continue;
        };
        let mut c = server.connect();
        c.write_all(b"DISK 0 4096\nok\n").unwrap();
        assert_eq!(
            lines(&c, 2),
            [format!("DISKERR {}", libc::EBADF), "OK".to_owned()]
        );
        server.stop();
    }
}

#[test]
fn more_reads_than_buffers_all_complete() {
    each("many", |server, file| {
        const CLIENTS: usize = 48;
        const READS: usize = 20;
        let handles: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let mut c = server.connect();
                let reads: Vec<(usize, usize)> = (0..READS)
                    .map(|j| {
                        let block = (i * 7919 + j * 104729) % (FILE_LEN / 4096);
                        (block * 4096, 4096 * (1 + (i + j) % 16))
                    })
                    .collect();
                let expected: Vec<String> = reads.iter().map(|&(o, l)| file.expect(o, l)).collect();
                std::thread::spawn(move || {
                    let mut req = String::new();
                    for (o, l) in &reads {
                        req.push_str(&format!("DISK {o} {l}\n"));
                    }
                    c.write_all(req.as_bytes()).unwrap();
                    assert_eq!(lines(&c, READS), expected);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let stats = server.running.stats();
        assert!(stats.disk_reads >= (CLIENTS * READS) as u64, "{stats:?}");
    });
}
