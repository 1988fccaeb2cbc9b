//! `docs/COMMANDS.md`: the coverage table generated from the command table, so the documented
//! command list cannot drift from what the server dispatches.
//!
//! Regenerate with `FERRITE_BLESS=1 cargo test -p ferrite-commands commands_md`.

use std::fmt::Write as _;

use crate::table::{self, CommandSpec, flags};

/// Flag names for the table, in `COMMAND INFO` order.
fn flag_names(spec: &CommandSpec) -> String {
    let mut names: Vec<&str> = flags::NAMES
        .iter()
        .filter(|(bit, _)| spec.has(*bit))
        .map(|(_, n)| *n)
        .collect();
    if spec.has(flags::EXCLUSIVE) {
        names.push("exclusive");
    }
    if spec.has(flags::EXCLUSIVE_MULTI_KEY) {
        names.push("exclusive with several keys");
    }
    names.join(", ")
}

/// Escapes text for a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The Markdown coverage table of every command, sorted by group then name, subcommands listed
/// under their container.
pub fn commands_markdown() -> String {
    let mut cmds: Vec<&CommandSpec> = table::all().to_vec();
    cmds.sort_by(|a, b| (a.group, a.name).cmp(&(b.group, b.name)));
    let subs: usize = cmds.iter().map(|c| c.subcommands.len()).sum();
    let mut out = String::new();
    out.push_str("# Commands\n\n");
    out.push_str(
        "Generated from the command table (`commands/src/table.rs` and `commands/src/cmd/`); do \
         not edit.\nRegenerate with `FERRITE_BLESS=1 cargo test -p ferrite-commands commands_md`.\n\n",
    );
    let _ = writeln!(out, "{} commands, {} subcommands.\n", cmds.len(), subs);
    out.push_str("| Command | Group | Arity | Flags | Since | Summary |\n");
    out.push_str("| --- | --- | --- | --- | --- | --- |\n");
    let mut row = |name: String, c: &CommandSpec| {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} |",
            name,
            c.group,
            c.arity,
            flag_names(c),
            c.since,
            cell(c.summary)
        );
    };
    for c in &cmds {
        row(c.name.to_ascii_uppercase(), c);
        let mut subs: Vec<&CommandSpec> = c.subcommands.iter().collect();
        subs.sort_by_key(|s| s.name);
        for s in subs {
            row(
                format!(
                    "{} {}",
                    c.name.to_ascii_uppercase(),
                    s.name.to_ascii_uppercase()
                ),
                s,
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_md_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/COMMANDS.md");
        let want = commands_markdown();
        if std::env::var_os("FERRITE_BLESS").is_some() {
            std::fs::write(&path, &want).expect("write docs/COMMANDS.md");
            return;
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "docs/COMMANDS.md is out of date with the command table; regenerate it with \
             `FERRITE_BLESS=1 cargo test -p ferrite-commands commands_md`"
        );
    }
}
