//! Command ids for the ACL bitmaps (Redis's `ACLGetCommandID`): every command and subcommand of
//! the table gets one, in table order, and the last bit of a bitmap is Redis's reserved "future
//! commands" bit, set only by `+@all`.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::cmd::command::ACL_ORDER;
use crate::table::{self, CommandSpec};

/// One command of the ACL's view of the table.
pub(crate) struct Command {
    /// `get`, or `client|list` for a subcommand.
    pub(crate) full_name: String,
    /// Bit `i` set: in category `ACL_ORDER[i]`.
    pub(crate) categories: u32,
    /// The subcommands' ids (a container's), in table order.
    pub(crate) subs: Vec<usize>,
    /// The container's id (a subcommand's).
    pub(crate) parent: Option<usize>,
}

/// The commands by id, and the id of each table entry.
pub(crate) struct Ids {
    pub(crate) commands: Vec<Command>,
    by_spec: HashMap<usize, usize>,
}

/// The words of a command bitmap: every id plus the future-commands bit.
pub(crate) fn words() -> usize {
    (ids().commands.len() + 1).div_ceil(64)
}

/// The bit of "commands added later" (`+@all` sets it; any `-` rule on a command clears it
/// through the selector's `allcommands` flag, not this bit).
pub(crate) fn future_bit() -> usize {
    words() * 64 - 1
}

/// The ids, built once from the table.
pub(crate) fn ids() -> &'static Ids {
    static IDS: OnceLock<Ids> = OnceLock::new();
    IDS.get_or_init(|| {
        let mut commands = Vec::new();
        let mut by_spec = HashMap::new();
        let mut add = |spec: &'static CommandSpec, full_name: String, parent: Option<usize>| {
            let id = commands.len();
            by_spec.insert(std::ptr::from_ref(spec).addr(), id);
            commands.push(Command {
                full_name,
                categories: category_bits(spec.acl),
                subs: Vec::new(),
                parent,
            });
            id
        };
        let mut containers = Vec::new();
        for &top in table::all() {
            let id = add(top, top.name.to_owned(), None);
            let subs: Vec<usize> = top
                .subcommands
                .iter()
                .map(|sub| add(sub, format!("{}|{}", top.name, sub.name), Some(id)))
                .collect();
            containers.push((id, subs));
        }
        for (id, subs) in containers {
            commands[id].subs = subs;
        }
        Ids { commands, by_spec }
    })
}

impl Ids {
    /// The id of a table entry (every entry of [`table::all`] and its subcommands has one).
    pub(crate) fn of(&self, spec: &'static CommandSpec) -> Option<usize> {
        self.by_spec.get(&std::ptr::from_ref(spec).addr()).copied()
    }

    /// A command by name as ACL rules write it (`get`, `client|list`), any case.
    pub(crate) fn lookup(&self, name: &[u8]) -> Option<usize> {
        let name = std::str::from_utf8(name).ok()?.to_ascii_lowercase();
        let (top, sub) = match name.split_once('|') {
            Some((t, s)) => (t, Some(s)),
            None => (name.as_str(), None),
        };
        let top = table::lookup(top.as_bytes())?;
        let spec = match sub {
            Some(s) => top.subcommand(s.as_bytes())?,
            None => top,
        };
        self.of(spec)
    }
}

/// A category's bit, by name (any case).
pub(crate) fn category(name: &[u8]) -> Option<u32> {
    ACL_ORDER
        .iter()
        .position(|c| c.as_bytes().eq_ignore_ascii_case(name))
        .map(|i| 1 << i)
}

fn category_bits(names: &[&str]) -> u32 {
    names
        .iter()
        .filter_map(|n| category(n.as_bytes()))
        .fold(0, |a, b| a | b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_and_subcommand_has_an_id() {
        let ids = ids();
        let get = ids.lookup(b"GET").unwrap();
        assert_eq!(ids.commands[get].full_name, "get");
        let list = ids.lookup(b"client|list").unwrap();
        let client = ids.commands[list].parent.unwrap();
        assert_eq!(ids.commands[client].full_name, "client");
        assert!(ids.commands[client].subs.contains(&list));
        assert!(ids.lookup(b"client|nosuch").is_none());
        assert!(ids.lookup(b"nosuch").is_none());
        assert!(future_bit() >= ids.commands.len());
        assert_ne!(ids.commands[get].categories & category(b"read").unwrap(), 0);
    }
}
