//! The glue between the reactor (which moves bytes) and the command engine (which turns them
//! into replies): the one place that knows both.

use std::net::SocketAddr;
use std::sync::Arc;

use ferrite_commands::disk_wait::DiskRead;
use ferrite_commands::{Client, Flow, Server, Worker};
use ferrite_reactor::{After, Consumed, Ctl, Service, Token};

/// One reactor thread's service: its command engine.
pub struct Connections {
    worker: Worker,
    /// Scratch: disk reads the worker asked for.
    reads: Vec<DiskRead>,
}

impl Connections {
    /// The service of reactor thread `thread`.
    pub fn new(server: Arc<Server>, thread: usize) -> Self {
        Self {
            worker: Worker::new(server, thread),
            reads: Vec::new(),
        }
    }

    /// Hands the disk reads the worker's parked commands wait for to the reactor.
    fn start_disk_reads(&mut self, ctl: &mut dyn Ctl) {
        self.worker.take_disk_reads(&mut self.reads);
        for r in self.reads.drain(..) {
            ctl.read_disk(ferrite_reactor::DiskRead {
                fd: r.read.fd,
                offset: r.read.offset,
                len: r.read.len,
                tag: r.tag,
            });
        }
    }
}

fn after(flow: Flow) -> After {
    match flow {
        Flow::Continue => After::Continue,
        Flow::CloseAfterFlush => After::CloseAfterFlush,
        Flow::CloseNow => After::CloseNow,
        Flow::Park => After::Park,
    }
}

/// The worker keeps a connection's token as an opaque `u64` (it knows no reactor).
fn pack(token: Token) -> u64 {
    (u64::from(token.slot) << 32) | u64::from(token.generation)
}

fn unpack(token: u64) -> Token {
    Token {
        slot: (token >> 32) as u32,
        generation: token as u32,
    }
}

impl Service for Connections {
    type Conn = Client;

    fn accept(
        &mut self,
        ctl: &mut dyn Ctl,
        token: Token,
        peer: Option<SocketAddr>,
        local: Option<SocketAddr>,
        out: &mut Vec<u8>,
    ) -> Option<Client> {
        let mut client = self.worker.accept(peer, local, out)?;
        client.token = pack(token);
        // CLIENT LIST `fd`: the socket on epoll; io_uring's live only in its fixed-file table.
        let fd = ctl.accepting_fd().unwrap_or(-1);
        client
            .shared
            .fd
            .store(fd, std::sync::atomic::Ordering::Relaxed);
        Some(client)
    }

    fn input(
        &mut self,
        ctl: &mut dyn Ctl,
        _token: Token,
        conn: &mut Client,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Consumed {
        let (bytes, flow) = self.worker.input(conn, input, out);
        self.start_disk_reads(ctl);
        Consumed {
            bytes,
            after: after(flow),
        }
    }

    fn closed(&mut self, _token: Token, conn: Client) {
        self.worker.closed(conn);
    }

    fn tick(&mut self, ctl: &mut dyn Ctl) {
        self.worker.tick(&mut |t| ctl.resume(unpack(t)));
    }

    fn poll(&mut self, _token: Token, conn: &mut Client, out: &mut Vec<u8>) -> After {
        after(self.worker.poll(conn, out))
    }

    fn woken(&mut self, ctl: &mut dyn Ctl) {
        self.worker.woken(&mut |t| ctl.resume(unpack(t)));
    }

    fn disk_read_done(&mut self, ctl: &mut dyn Ctl, tag: u64, result: std::io::Result<&[u8]>) {
        if let Some(token) = self.worker.disk_read_done(tag, result) {
            ctl.resume(unpack(token));
        }
        self.start_disk_reads(ctl);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trips() {
        let t = Token {
            slot: 0xdead_beef,
            generation: 0x1234_5678,
        };
        assert_eq!(unpack(pack(t)), t);
    }
}
