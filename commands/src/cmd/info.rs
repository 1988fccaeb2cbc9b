//! info commands.

use crate::table::CommandSpec;

/// Table entries.
pub const COMMANDS: &[CommandSpec] = &[];
