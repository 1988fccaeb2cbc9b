//! The Redis protocol: request parsing (RESP multibulk and inline) and reply encoding.

pub mod parser;
pub mod reply;

pub use parser::{Limits, Parse, Parser};
pub use reply::Reply;
