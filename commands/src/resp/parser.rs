//! Incremental request parser (Redis's `processMultibulkBuffer` / `processInlineBuffer`).

use crate::args::Args;

/// Limits the parser enforces, from the configuration and the client's state.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `proto-max-bulk-len`: the largest bulk argument accepted.
    pub max_bulk_len: u64,
    /// Whether the client is authenticated (unauthenticated clients get tighter limits, as in
    /// Redis).
    pub authenticated: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bulk_len: 512 * 1024 * 1024,
            authenticated: true,
        }
    }
}

/// The outcome of one `Parser::parse` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parse {
    /// A whole command is ready: `Parser::args` gives it; `consumed` bytes of input are done with.
    Command {
        /// Bytes of input the command occupied.
        consumed: usize,
    },
    /// Bytes that carry no command (an empty inline line, `*0`, `*-1`): consume them and go on.
    Skip {
        /// Bytes to consume.
        consumed: usize,
    },
    /// More bytes are needed; parsing resumes where it stopped when they arrive.
    Incomplete,
    /// A protocol error: the text after `ERR Protocol error: `. The connection is closed after the
    /// error reply, as Redis does.
    Error(&'static str),
}

/// Parser state that survives across reads, so a large request is not re-parsed from its start
/// every time more of it arrives.
#[derive(Debug, Default)]
pub struct Parser {
    _private: (),
}

impl Parser {
    /// A parser at the start of a request.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the request at the start of `input` (the unconsumed input; the same prefix is passed
    /// again, with more bytes after it, when the previous call returned `Incomplete`).
    pub fn parse(&mut self, input: &[u8], limits: &Limits) -> Parse {
        let _ = (input, limits);
        todo!("parser work")
    }

    /// The arguments of the command the last `parse` completed; `input` is the same buffer.
    pub fn args<'a>(&'a self, input: &'a [u8]) -> Args<'a> {
        let _ = input;
        todo!("parser work")
    }
}
