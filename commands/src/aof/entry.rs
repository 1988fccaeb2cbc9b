//! What a command hands the append-only file: its propagated commands, each with the database
//! it applies to, already encoded as RESP multibulk.

use ferrite_hybridlog::Db;

/// One command's (or one transaction's) propagated form.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The commands, RESP multibulk, back to back.
    bytes: Vec<u8>,
    /// Each command's database and end offset in `bytes`.
    cmds: Vec<(Db, usize)>,
    /// Only for the replication stream, not the AOF (Redis's `PROPAGATE_REPL`: PUBLISH).
    repl_only: bool,
}

impl Entry {
    /// Appends one command of `args`, to run in `db`.
    pub fn push<'a>(&mut self, db: Db, args: impl IntoIterator<Item = &'a [u8]>) {
        let args: Vec<&[u8]> = args.into_iter().collect();
        encode(&mut self.bytes, &args);
        self.cmds.push((db, self.bytes.len()));
    }

    /// Appends every command of `other`.
    pub fn extend(&mut self, other: &Entry) {
        let base = self.bytes.len();
        self.bytes.extend_from_slice(&other.bytes);
        self.cmds
            .extend(other.cmds.iter().map(|&(db, end)| (db, base + end)));
    }

    /// Marks the entry as one for replicas only (the AOF skips it).
    pub fn set_repl_only(&mut self) {
        self.repl_only = true;
    }

    /// Whether the AOF skips this entry.
    pub fn repl_only(&self) -> bool {
        self.repl_only
    }

    /// Whether nothing is to be propagated.
    pub fn is_empty(&self) -> bool {
        self.cmds.is_empty()
    }

    /// Number of commands.
    pub fn len(&self) -> usize {
        self.cmds.len()
    }

    /// The commands with their databases, in order.
    pub fn commands(&self) -> impl Iterator<Item = (Db, &[u8])> {
        let mut start = 0;
        self.cmds.iter().map(move |&(db, end)| {
            let cmd = &self.bytes[start..end];
            start = end;
            (db, cmd)
        })
    }

    /// Appends this entry to an AOF stream whose selected database is `*selected`: a `SELECT`
    /// wherever the database changes, and MULTI/EXEC around more than one command (Redis wraps
    /// a command's propagation that way when it has several).
    pub fn emit(&self, out: &mut Vec<u8>, selected: &mut Option<Db>) {
        let multi = self.cmds.len() > 1;
        for (i, (db, cmd)) in self.commands().enumerate() {
            if *selected != Some(db) {
                encode(out, &[b"SELECT", db.to_string().as_bytes()]);
                *selected = Some(db);
            }
            if i == 0 && multi {
                encode(out, &[b"MULTI"]);
            }
            out.extend_from_slice(cmd);
        }
        if multi {
            encode(out, &[b"EXEC"]);
        }
    }
}

/// EXEC's propagated transaction: its commands, and every commit number its commands took
/// (filed as "nothing": the transaction goes under EXEC's own number).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Txn {
    /// The queued commands' propagated forms, in order.
    pub entry: Entry,
    /// Commit numbers taken inside the transaction.
    pub seqs: Vec<u64>,
}

/// Appends `args` as a RESP multibulk (Redis's `catAppendOnlyGenericCommand`).
pub fn encode(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emits_select_and_wraps_several_commands() {
        let mut e = Entry::default();
        e.push(0, [&b"SET"[..], b"k", b"v"]);
        let mut out = Vec::new();
        let mut selected = None;
        e.emit(&mut out, &mut selected);
        assert_eq!(
            out,
            b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
        );
        let mut t = Entry::default();
        t.push(0, [&b"INCR"[..], b"a"]);
        t.push(3, [&b"INCR"[..], b"b"]);
        out.clear();
        t.emit(&mut out, &mut selected);
        let text = String::from_utf8(out).expect("ascii");
        assert!(text.starts_with("*1\r\n$5\r\nMULTI\r\n*2\r\n$4\r\nINCR"));
        assert!(text.contains("SELECT\r\n$1\r\n3\r\n*2\r\n$4\r\nINCR\r\n$1\r\nb"));
        assert!(text.ends_with("*1\r\n$4\r\nEXEC\r\n"));
        assert_eq!(selected, Some(3));
    }
}
