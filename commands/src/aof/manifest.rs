//! Redis 7.0's AOF manifest (`aof.c`): one line per file, `file <name> seq <n> type <b|h|i>`,
//! base first, then history, then the incremental files in sequence order.

use std::io::Write;
use std::path::Path;

/// One file the manifest lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// File name inside the AOF directory (never a path).
    pub name: String,
    /// Its sequence number.
    pub seq: i64,
    /// `b` (base), `h` (history) or `i` (incremental).
    pub kind: u8,
}

/// The manifest: which files make up the AOF.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// The base (a snapshot), if any.
    pub base: Option<FileInfo>,
    /// Files a rewrite superseded (not loaded).
    pub history: Vec<FileInfo>,
    /// Incremental files, oldest first.
    pub incrs: Vec<FileInfo>,
}

/// Redis's `MANIFEST_MAX_LINE`.
const MAX_LINE: usize = 1024;

impl Manifest {
    /// Parses a manifest with `aofLoadManifestFromFile`'s rules and error texts.
    pub fn parse(text: &[u8]) -> Result<Manifest, String> {
        let mut m = Manifest::default();
        let mut maxseq = 0;
        let mut lines = 0;
        for raw in text.split_inclusive(|&b| b == b'\n') {
            lines += 1;
            if raw.first() == Some(&b'#') {
                continue;
            }
            if raw.len() > MAX_LINE || raw.last() != Some(&b'\n') {
                return Err("The AOF manifest file contains too long line".into());
            }
            let line = String::from_utf8_lossy(raw);
            let line = line.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
            let argv = crate::config::split_args(line).ok_or("Invalid AOF manifest file format")?;
            if line.is_empty() || argv.len() < 6 || argv.len() % 2 != 0 {
                return Err("Invalid AOF manifest file format".into());
            }
            let (mut name, mut seq, mut kind) = (None, 0i64, 0u8);
            for pair in argv.chunks(2) {
                let v = &pair[1];
                match pair[0].to_ascii_lowercase().as_str() {
                    "file" => {
                        if v.contains('/') {
                            return Err("File can't be a path, just a filename".into());
                        }
                        name = Some(v.clone());
                    }
                    "seq" => seq = atoll(v),
                    "type" => kind = v.bytes().next().unwrap_or(0),
                    _ => {}
                }
            }
            let (Some(name), true, true) = (name, seq != 0, kind != 0) else {
                return Err("Invalid AOF manifest file format".into());
            };
            let info = FileInfo { name, seq, kind };
            match kind {
                b'b' => {
                    if m.base.is_some() {
                        return Err("Found duplicate base file information".into());
                    }
                    m.base = Some(info);
                }
                b'h' => m.history.push(info),
                b'i' => {
                    if seq <= maxseq {
                        return Err("Found a non-monotonic sequence number".into());
                    }
                    maxseq = seq;
                    m.incrs.push(info);
                }
                _ => return Err("Unknown AOF file type".into()),
            }
        }
        if lines == 0 {
            return Err("Found an empty AOF manifest".into());
        }
        Ok(m)
    }

    /// The manifest's text (`getAofManifestAsString`).
    pub fn format(&self) -> String {
        let mut s = String::new();
        let all = self.base.iter().chain(&self.history).chain(&self.incrs);
        for f in all {
            s.push_str(&format!(
                "file {} seq {} type {}\n",
                f.name, f.seq, f.kind as char
            ));
        }
        s
    }

    /// Adds a new incremental file after the last one (`getNewIncrAofName`); returns its name.
    pub fn new_incr(&mut self, filename: &str) -> String {
        let seq = self.incrs.last().map_or(0, |f| f.seq) + 1;
        let name = format!("{filename}.{seq}.incr.aof");
        self.incrs.push(FileInfo {
            name: name.clone(),
            seq,
            kind: b'i',
        });
        name
    }

    /// Writes the manifest as Redis's `writeAofManifestFile`: a temporary file, fsync, rename
    /// over the manifest, fsync of the directory.
    pub fn persist(&self, dir: &Path, filename: &str) -> std::io::Result<()> {
        let tmp = dir.join(format!("temp-{filename}.manifest"));
        let path = dir.join(format!("{filename}.manifest"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(self.format().as_bytes())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(dir)?.sync_all()
    }
}

/// C's `atoll`: leading blanks, a sign, digits; 0 when there are none.
pub(crate) fn atoll(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        n = n.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if neg { -n } else { n }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_redis_manifest() {
        let text = b"file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n";
        let m = Manifest::parse(text).expect("valid");
        assert_eq!(
            m.base.as_ref().map(|b| b.name.as_str()),
            Some("appendonly.aof.1.base.rdb")
        );
        assert_eq!(m.incrs.len(), 1);
        assert_eq!(m.format().as_bytes(), text);
    }

    #[test]
    fn refuses_what_redis_refuses() {
        assert!(Manifest::parse(b"").is_err());
        assert!(Manifest::parse(b"file a seq 1\n").is_err());
        assert!(Manifest::parse(b"file a/b seq 1 type i\n").is_err());
        assert!(Manifest::parse(b"file a seq 2 type i\nfile b seq 1 type i\n").is_err());
        assert!(Manifest::parse(b"file a seq 1 type x\n").is_err());
        assert!(Manifest::parse(b"file a seq 1 type i").is_err());
        let m = Manifest::parse(b"# comment\nfile \"a b\" seq 3 type i\n").expect("quoted");
        assert_eq!(m.incrs[0].name, "a b");
    }

    #[test]
    fn new_incr_follows_the_last() {
        let mut m = Manifest::default();
        assert_eq!(m.new_incr("appendonly.aof"), "appendonly.aof.1.incr.aof");
        assert_eq!(m.new_incr("appendonly.aof"), "appendonly.aof.2.incr.aof");
    }
}
