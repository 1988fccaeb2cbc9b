//! Stream commands (Redis's `t_stream.c`): the entry log (XADD, XRANGE, XREVRANGE, XLEN, XDEL,
//! XTRIM, XSETID, XREAD) and the consumer groups (XGROUP, XREADGROUP, XACK, XPENDING, XCLAIM,
//! XAUTOCLAIM, XINFO).

mod ack;
mod add;
mod block;
mod claim;
mod core_table;
mod edit;
mod group_table;
mod group_util;
mod id_arg;
mod info;
mod pending;
mod propagation;
mod range;
mod read;
mod readgroup;
mod trim_args;
mod write;
mod xgroup;

pub use core_table::COMMANDS as CORE_COMMANDS;
pub use group_table::COMMANDS as GROUP_COMMANDS;
pub(crate) use propagation::{note_created_consumers, take_created_consumers};
