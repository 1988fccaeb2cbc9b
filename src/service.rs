//! The glue between the reactor (which moves bytes) and the command engine (which turns them
//! into replies): the one place that knows both.

use std::net::SocketAddr;
use std::sync::Arc;

use ferrite_commands::{Client, Flow, Server, Worker};
use ferrite_reactor::{After, Consumed, Ctl, Service, Token};

/// One reactor thread's service: its command engine.
pub struct Connections {
    worker: Worker,
}

impl Connections {
    /// The service of reactor thread `thread`.
    pub fn new(server: Arc<Server>, thread: usize) -> Self {
        Self {
            worker: Worker::new(server, thread),
        }
    }
}

fn after(flow: Flow) -> After {
    match flow {
        Flow::Continue => After::Continue,
        Flow::CloseAfterFlush => After::CloseAfterFlush,
        Flow::CloseNow => After::CloseNow,
    }
}

impl Service for Connections {
    type Conn = Client;

    fn accept(
        &mut self,
        _ctl: &mut dyn Ctl,
        _token: Token,
        peer: Option<SocketAddr>,
        local: Option<SocketAddr>,
        out: &mut Vec<u8>,
    ) -> Option<Client> {
        self.worker.accept(peer, local, out)
    }

    fn input(
        &mut self,
        _ctl: &mut dyn Ctl,
        _token: Token,
        conn: &mut Client,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Consumed {
        let (bytes, flow) = self.worker.input(conn, input, out);
        Consumed {
            bytes,
            after: after(flow),
        }
    }

    fn closed(&mut self, _token: Token, conn: Client) {
        self.worker.closed(conn);
    }

    fn tick(&mut self, _ctl: &mut dyn Ctl) {
        self.worker.tick();
    }

    fn poll(&mut self, _token: Token, conn: &mut Client, _out: &mut Vec<u8>) -> After {
        after(self.worker.poll(conn))
    }

    fn woken(&mut self, _ctl: &mut dyn Ctl) {}
}
