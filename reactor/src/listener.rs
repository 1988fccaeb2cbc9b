//! Listening sockets: for each address of `bind`, one per reactor thread (SO_REUSEPORT), so
//! the kernel spreads incoming connections over the threads without any hand-off between them.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, bind, listen, setsockopt, sockopt,
};

use crate::{BindAddr, ReactorError};

/// Backlog of each listener (Redis's default `tcp-backlog`).
const BACKLOG: i32 = 511;

/// Binds `threads` listeners on each address, all on the calling thread so that "address in
/// use" is a synchronous start-up error; returns them by thread (`[thread][address]`), with the
/// addresses bound. As redis-server's `listenToPort`, an address the machine lacks is skipped
/// when marked optional, and one of an address family the kernel lacks (IPv6 turned off) always;
/// any other failure fails the whole. With port 0 the first socket picks the port and every
/// other one joins it.
pub(crate) fn bind_all(
    addrs: &[BindAddr],
    threads: usize,
) -> Result<(Vec<Vec<TcpListener>>, Vec<SocketAddr>), ReactorError> {
    assert!(threads > 0);
    let mut by_thread: Vec<Vec<TcpListener>> = (0..threads).map(|_| Vec::new()).collect();
    let mut bound = Vec::new();
    let mut port = None;
    for &BindAddr { addr, optional } in addrs {
        let addr = SocketAddr::new(addr.ip(), port.unwrap_or(addr.port()));
        let group = match bind_group(addr, threads) {
            Ok(group) => group,
            Err(err) => {
                // Redis's line (its `neterr` names the failing call; bind's is the usual one).
                let text = match err.raw_os_error() {
                    Some(errno) => Errno::from_raw(errno).desc().to_owned(),
                    None => err.to_string(),
                };
                log::warn!(
                    "Warning: Could not create server TCP listening socket {}:{}: bind: {text}",
                    addr.ip(),
                    addr.port()
                );
                if skipped(&err, optional) {
                    continue;
                }
                return Err(ReactorError::Listen { addr, source: err });
            }
        };
        let actual = group[0].local_addr()?;
        port.get_or_insert(actual.port());
        bound.push(actual);
        for (thread, listener) in by_thread.iter_mut().zip(group) {
            thread.push(listener);
        }
    }
    if bound.is_empty() {
        return Err(ReactorError::NowhereToListen);
    }
    Ok((by_thread, bound))
}

/// Whether redis-server goes on without this address.
fn skipped(err: &std::io::Error, optional: bool) -> bool {
    let errno = err.raw_os_error().map(Errno::from_raw);
    match errno {
        Some(Errno::EADDRNOTAVAIL) => optional,
        Some(
            Errno::ENOPROTOOPT
            | Errno::EPROTONOSUPPORT
            | Errno::ESOCKTNOSUPPORT
            | Errno::EPFNOSUPPORT
            | Errno::EAFNOSUPPORT,
        ) => true,
        _ => false,
    }
}

/// `threads` listeners on `addr`.
fn bind_group(addr: SocketAddr, threads: usize) -> std::io::Result<Vec<TcpListener>> {
    if addr.port() != 0 {
        // SO_REUSEPORT would let this group join another process's group on the same port
        // (same user) and split its traffic silently. A socket without it cannot share the port
        // with anyone, so binding one first turns a running server into "address in use", as
        // redis-server reports it.
        probe_free(addr)?;
    }
    let first = bind_one(addr)?;
    let actual = first.local_addr()?;
    assert!(actual.port() != 0);
    let mut all = Vec::with_capacity(threads);
    all.push(first);
    for _ in 1..threads {
        all.push(bind_one(actual)?);
    }
    Ok(all)
}

/// Binds (without SO_REUSEPORT) and closes a socket on `addr`.
fn probe_free(addr: SocketAddr) -> std::io::Result<()> {
    let fd = socket(addr, SockFlag::SOCK_CLOEXEC)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    Ok(())
}

fn bind_one(addr: SocketAddr) -> std::io::Result<TcpListener> {
    // Nonblocking: the epoll loop accepts until EAGAIN; io_uring's accept does not care.
    let fd = socket(addr, SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    setsockopt(&fd, sockopt::ReusePort, &true)?;
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    listen(&fd, Backlog::new(BACKLOG)?)?;
    Ok(TcpListener::from(fd))
}

/// A TCP socket for `addr`'s family; an IPv6 one takes IPv6 only (as redis-server's
/// `anetV6Only`), so that `::` and `0.0.0.0` on one port are two listeners, not a conflict.
fn socket(addr: SocketAddr, flags: SockFlag) -> std::io::Result<std::os::fd::OwnedFd> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = nix::sys::socket::socket(family, SockType::Stream, flags, None)?;
    if addr.is_ipv6() {
        setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(addr: &str, optional: bool) -> BindAddr {
        BindAddr {
            addr: addr.parse().unwrap(),
            optional,
        }
    }

    #[test]
    fn every_thread_gets_every_address_on_one_port() {
        let (by_thread, bound) =
            bind_all(&[at("127.0.0.1:0", false), at("127.0.0.2:0", false)], 3).unwrap();
        assert_eq!(by_thread.len(), 3);
        assert_eq!(bound.len(), 2);
        assert_eq!(bound[0].port(), bound[1].port());
        for listeners in &by_thread {
            let addrs: Vec<_> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
            assert_eq!(addrs, bound);
        }
    }

    #[test]
    fn an_optional_address_the_machine_lacks_is_skipped() {
        // 192.0.2.0/24 is TEST-NET-1: no machine has it.
        let (by_thread, bound) =
            bind_all(&[at("127.0.0.1:0", false), at("192.0.2.1:0", true)], 1).unwrap();
        assert_eq!(bound.len(), 1);
        assert_eq!(by_thread[0].len(), 1);
        let err = bind_all(&[at("127.0.0.1:0", false), at("192.0.2.1:0", false)], 1);
        assert!(matches!(err, Err(ReactorError::Listen { .. })), "{err:?}");
        let err = bind_all(&[at("192.0.2.1:0", true)], 1);
        assert!(matches!(err, Err(ReactorError::NowhereToListen)), "{err:?}");
    }

    #[test]
    fn a_port_in_use_fails_the_whole() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let err = bind_all(&[at(&format!("127.0.0.1:{port}"), true)], 1);
        assert!(matches!(err, Err(ReactorError::Listen { .. })), "{err:?}");
    }
}
