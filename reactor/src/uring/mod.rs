//! The io_uring backend: one ring per thread, set up and probed here; the loop itself is in
//! `event_loop`.
//!
//! fd strategy: the listeners and every connection live in the ring's fixed-file table (sparse,
//! `max_connections_per_thread` + one slot per listener; the connection in slot `s` is fixed
//! file `s`, listener `i` is fixed file `max_connections_per_thread + i`). Accepted sockets arrive as *regular* fds (multishot accept without
//! direct-descriptor allocation) because the service wants the peer and local addresses
//! (CLIENT LIST) and `getpeername`/`getsockname`/`setsockopt(TCP_NODELAY)` need a regular fd;
//! we then install the fd at the slot's index with `register_files_update` and close the regular
//! fd at once. That costs a few syscalls per accept (rare next to recv/send) and buys: recv and
//! send on fixed files (no fd table lookups or refcounts per op), no process fd held per
//! connection, and a fixed index equal to the connection slot, so no second allocator.

mod bufring;
mod disk;
mod event_loop;

use std::net::TcpListener;
use std::os::fd::AsRawFd;

use io_uring::{IoUring, Probe, opcode};

pub(crate) use event_loop::Prepared;

/// Submission queue entries per ring.
const RING_ENTRIES: u32 = 1024;
/// Completion queue entries: multishot receives post many completions per submission.
const CQ_ENTRIES: u32 = RING_ENTRIES * 8;

const _: () = assert!(RING_ENTRIES.is_power_of_two());
const _: () = assert!(CQ_ENTRIES.is_power_of_two() && CQ_ENTRIES >= RING_ENTRIES);

/// Environment variable that makes io_uring count as unavailable (to exercise the fallback).
const FORCE_NO_URING: &str = "FERRITE_FORCE_NO_URING";

/// A ring with its buffer ring registered and a sparse fixed-file table.
struct Ring {
    ring: IoUring,
    bufs: bufring::BufRing,
    /// Single issuer + deferred task running (completions run when we wait, in batches).
    defer_taskrun: bool,
    /// The kernel honours a minimum wait in `io_uring_getevents_arg` (6.13).
    min_timeout: bool,
}

/// Checks that io_uring can run this loop; on success describes the features it will use.
pub(crate) fn probe(cfg: &crate::Config) -> std::io::Result<String> {
    if std::env::var_os(FORCE_NO_URING).is_some_and(|v| v == "1") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            format!("{FORCE_NO_URING}=1 is set"),
        ));
    }
    // Probe on a short-lived thread: a ring (even a dropped one) attaches io_uring task
    // context to the thread that created it, and its teardown can interrupt that thread's
    // blocking syscalls (EINTR). The caller's thread is not ours to disturb.
    let files = cfg.max_connections_per_thread + cfg.bind.len();
    let (defer_taskrun, min_timeout) = std::thread::Builder::new()
        .name("ferrite-probe".into())
        .spawn(move || Ring::new(files).map(|ring| (ring.defer_taskrun, ring.min_timeout)))?
        .join()
        .map_err(|_| std::io::Error::other("io_uring probe panicked"))??;
    Ok(format!(
        "kernel {}; multishot accept into fixed files ({} slots, installed with \
         register_files_update); multishot recv with a provided buffer ring ({} x {} KiB); \
         one send per connection on its fixed file; waits with submit_with_args timeouts; \
         single-issuer + defer-taskrun: {}; batched waits (min-wait {} us): {}",
        kernel_release(),
        cfg.max_connections_per_thread + cfg.bind.len(),
        bufring::BUF_COUNT,
        bufring::BUF_SIZE / 1024,
        if defer_taskrun { "yes" } else { "no" },
        event_loop::MIN_WAIT_USEC,
        if min_timeout { "yes" } else { "no" },
    ))
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// (major, minor) of the running kernel, if it can be read.
fn kernel_version() -> Option<(u32, u32)> {
    let release = kernel_release();
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn unsupported(what: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::Unsupported, what)
}

impl Ring {
    /// A ring with `files` fixed-file slots (connections, then listeners).
    fn new(files: usize) -> std::io::Result<Ring> {
        // Multishot recv (6.0) cannot be probed as an opcode; require the kernel that has it.
        match kernel_version() {
            Some(version) if version >= (6, 0) => {}
            other => {
                return Err(unsupported(format!(
                    "kernel {other:?} predates multishot recv"
                )));
            }
        }
        // Single issuer + defer taskrun (6.1): completions are produced when we wait, so a
        // wait returns a batch. Fall back to a plain ring where the kernel refuses the flags.
        let (ring, defer_taskrun) = match IoUring::builder()
            .setup_cqsize(CQ_ENTRIES)
            .setup_submit_all()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(RING_ENTRIES)
        {
            Ok(ring) => (ring, true),
            Err(_) => (
                IoUring::builder()
                    .setup_cqsize(CQ_ENTRIES)
                    .build(RING_ENTRIES)?,
                false,
            ),
        };
        let params = ring.params();
        if !params.is_feature_ext_arg() {
            return Err(unsupported(
                "no IORING_FEAT_EXT_ARG (timeouts on wait)".into(),
            ));
        }
        if !params.is_feature_nodrop() {
            return Err(unsupported("no IORING_FEAT_NODROP".into()));
        }
        if !params.is_feature_fast_poll() {
            return Err(unsupported("no IORING_FEAT_FAST_POLL".into()));
        }
        let mut probe = Probe::new();
        ring.submitter().register_probe(&mut probe)?;
        let needed = [
            ("accept", opcode::AcceptMulti::CODE),
            ("recv", opcode::RecvMulti::CODE),
            ("send", opcode::Send::CODE),
            ("close", opcode::Close::CODE),
            ("read", opcode::Read::CODE),
            ("async-cancel", opcode::AsyncCancel::CODE),
            ("shutdown", opcode::Shutdown::CODE),
        ];
        for (name, code) in needed {
            if !probe.is_supported(code) {
                return Err(unsupported(format!("io_uring opcode {name} unsupported")));
            }
        }
        let slots = u32::try_from(files).expect("bounded by MAX_SLOTS");
        ring.submitter()
            .register_files_sparse(slots)
            .map_err(|err| {
                std::io::Error::new(
                    err.kind(),
                    format!("registering {slots} fixed files failed ({err}); raise `ulimit -n`?"),
                )
            })?;
        let bufs = bufring::BufRing::new()?;
        bufs.register(&ring.submitter())?;
        let min_timeout = params.is_feature_min_timeout();
        Ok(Ring {
            ring,
            bufs,
            defer_taskrun,
            min_timeout,
        })
    }

    /// Installs the listeners as the fixed files after the connections'; returns the first's
    /// index.
    fn install_listeners(
        &self,
        listeners: &[TcpListener],
        max_conns: usize,
    ) -> std::io::Result<u32> {
        let index = u32::try_from(max_conns).expect("bounded by MAX_SLOTS");
        let fds: Vec<_> = listeners.iter().map(|l| l.as_raw_fd()).collect();
        let done = self.ring.submitter().register_files_update(index, &fds)?;
        assert_eq!(done, fds.len());
        Ok(index)
    }
}
