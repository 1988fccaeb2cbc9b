//! Listening sockets: one per reactor thread on the same address (SO_REUSEPORT), so the kernel
//! spreads incoming connections over the threads without any hand-off between them.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, bind, listen, setsockopt, sockopt,
};

use crate::ReactorError;

/// Backlog of each listener (Redis's default `tcp-backlog`).
const BACKLOG: i32 = 511;

/// Binds `count` listeners on `addr`, all on the calling thread so that "address in use" is a
/// synchronous start-up error. With port 0 the first socket picks the port and the rest join it.
pub(crate) fn bind_all(addr: SocketAddr, count: usize) -> Result<Vec<TcpListener>, ReactorError> {
    assert!(count > 0);
    let listen_error = |source| ReactorError::Listen { addr, source };
    if addr.port() != 0 {
        // SO_REUSEPORT would let this group join another process's group on the same port
        // (same user) and split its traffic silently. A socket without it cannot share the port
        // with anyone, so binding one first turns a running server into "address in use", as
        // redis-server reports it.
        probe_free(addr).map_err(listen_error)?;
    }
    let first = bind_one(addr).map_err(listen_error)?;
    let actual = first.local_addr().map_err(listen_error)?;
    assert!(actual.port() != 0);
    let mut all = Vec::with_capacity(count);
    all.push(first);
    for _ in 1..count {
        all.push(bind_one(actual).map_err(listen_error)?);
    }
    assert_eq!(all.len(), count);
    Ok(all)
}

/// Binds (without SO_REUSEPORT) and closes a socket on `addr`.
fn probe_free(addr: SocketAddr) -> std::io::Result<()> {
    let fd =
        nix::sys::socket::socket(family(addr), SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    Ok(())
}

fn family(addr: SocketAddr) -> AddressFamily {
    match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn bind_one(addr: SocketAddr) -> std::io::Result<TcpListener> {
    // Nonblocking: the epoll loop accepts until EAGAIN; io_uring's accept does not care.
    let fd = nix::sys::socket::socket(
        family(addr),
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    setsockopt(&fd, sockopt::ReusePort, &true)?;
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    listen(&fd, Backlog::new(BACKLOG)?)?;
    Ok(TcpListener::from(fd))
}
