//! Loading the AOF at start-up: Redis 7.0's `loadAppendOnlyFiles` and
//! `loadSingleAppendOnlyFile`, replaying each file's commands through a [`Worker`] with an
//! internal client, with Redis's rules for what is a truncated tail (loaded up to the last
//! complete command, and the file truncated there, with `aof-load-truncated yes`) and what is a
//! corrupt file (refused: the server does not start).

use std::path::Path;
use std::sync::Arc;

use super::entry::encode;
use super::{AofError, Manifest};
use crate::persist::rdb_read;
use crate::server::Server;
use crate::table;
use crate::worker::Worker;

/// What loading found.
#[derive(Debug, Default, Clone, Copy)]
pub struct Loaded {
    /// Bytes of every loaded file (INFO `aof_current_size`).
    pub total_size: u64,
    /// Bytes of the base file.
    pub base_size: u64,
    /// Commands replayed.
    pub commands: u64,
    /// Keys loaded from RDB data (a base in RDB format or an RDB preamble).
    pub keys: u64,
}

/// How one file ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    Empty,
    /// Loaded up to a truncated tail, which was cut off.
    Truncated,
}

/// Loads every file `manifest` lists in `dir` (base first, then the incremental files).
pub fn load_all(
    server: &Arc<Server>,
    dir: &Path,
    manifest: &Manifest,
    truncated_ok: bool,
) -> Result<Loaded, AofError> {
    let mut loaded = Loaded::default();
    let files: Vec<_> = manifest.base.iter().chain(&manifest.incrs).collect();
    if files.is_empty() {
        return Ok(loaded);
    }
    let mut sizes = Vec::new();
    for f in &files {
        let meta = std::fs::metadata(dir.join(&f.name)).map_err(|e| {
            AofError::Load(format!(
                "The append log file {} doesn't exist or can't be read: {e}",
                f.name
            ))
        })?;
        sizes.push(meta.len());
    }
    if sizes.iter().all(|&s| s == 0) {
        return Ok(loaded);
    }
    let started = std::time::Instant::now();
    let mut worker = Worker::without_reactor(Arc::clone(server));
    let last = files.len() - 1;
    for (i, f) in files.iter().enumerate() {
        let is_base = manifest.base.as_ref().is_some_and(|b| b.name == f.name) && i == 0;
        let path = dir.join(&f.name);
        let outcome = load_file(
            server,
            &mut worker,
            &path,
            &f.name,
            truncated_ok,
            &mut loaded,
        )?;
        if outcome == Outcome::Truncated && i != last {
            return Err(AofError::Load(
                "Fatal error: the truncated file is not the last file".into(),
            ));
        }
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        loaded.total_size += size;
        if is_base {
            loaded.base_size = size;
        }
        if outcome != Outcome::Empty {
            log::info!(
                "DB loaded from {} file {}: {:.3} seconds",
                if is_base { "base" } else { "incr" },
                f.name,
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(loaded)
}

/// Replays one file. Errors are Redis's messages; the caller exits.
fn load_file(
    server: &Server,
    worker: &mut Worker,
    path: &Path,
    name: &str,
    truncated_ok: bool,
    loaded: &mut Loaded,
) -> Result<Outcome, AofError> {
    let open_error = |e: std::io::Error| {
        AofError::Load(format!(
            "Fatal error: can't open the append log file {name} for reading: {e}"
        ))
    };
    let file = std::fs::File::open(path).map_err(open_error)?;
    if file.metadata().map_err(open_error)?.len() == 0 {
        return Ok(Outcome::Empty);
    }
    // Mapped, not read: an AOF can be larger than the memory it describes.
    // SAFETY: the file is ours while the server starts (nothing else of this process touches
    // it, and the map is dropped before the file is truncated); another process changing it
    // meanwhile could only make the bytes read here wrong, which the reader handles like any
    // corrupt file (it never trusts them).
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(open_error)?;
    let data: &[u8] = &map;
    // An RDB base (`aof-use-rdb-preamble yes`), or an old-style file with an RDB preamble
    // and an AOF tail: the RDB part goes straight into the store, commands follow it.
    let mut start = 0;
    if data.starts_with(b"REDIS") {
        let old_style = server.config.value("appendfilename").as_deref() == Some(name);
        if old_style {
            log::info!("Reading RDB preamble from AOF file...");
        } else {
            log::info!("Reading RDB base file on AOF loading...");
        }
        let mut session = server.store.session();
        match rdb_read::load_bytes(data, &mut session, crate::server::unix_ms()) {
            Ok((rdb, end)) => {
                if let Err(e) = server.scripts.load_libraries(&rdb.libraries) {
                    log::warn!("Failed loading library: {e}");
                    return Err(AofError::Load(format!(
                        "Error reading the RDB base file {name}, AOF loading aborted"
                    )));
                }
                loaded.keys += rdb.keys;
                start = end;
                if old_style {
                    log::info!("Reading the remaining AOF tail...");
                }
            }
            Err(e) => {
                for line in e.to_string().lines() {
                    log::warn!("{line}");
                }
                return Err(AofError::Load(if old_style {
                    format!(
                        "Error reading the RDB preamble of the AOF file {name}, AOF loading \
                         aborted"
                    )
                } else {
                    format!("Error reading the RDB base file {name}, AOF loading aborted")
                }));
            }
        }
    }
    let mut client = worker.internal_client();
    let mut out = Vec::new();
    let mut reader = Reader { data, pos: start };
    let mut valid_up_to = start;
    let mut valid_before_multi = start;
    let mut cmd = Vec::new();
    let result = loop {
        let argv = match reader.command() {
            Step::Eof => {
                if client.multi.is_some() {
                    log::warn!("Revert incomplete MULTI/EXEC transaction in AOF file {name}");
                    valid_up_to = valid_before_multi;
                    break Step::Truncated;
                }
                break Step::Eof;
            }
            Step::Command(argv) => argv,
            other => break other,
        };
        let Some(spec) = table::lookup(argv[0]) else {
            worker.closed(client);
            return Err(AofError::Load(format!(
                "Unknown command '{}' reading the append only file {name}",
                String::from_utf8_lossy(argv[0])
            )));
        };
        if spec.name == "multi" {
            valid_before_multi = valid_up_to;
        }
        cmd.clear();
        encode(&mut cmd, &argv);
        let mut fed = 0;
        while fed < cmd.len() {
            let (n, _) = worker.input(&mut client, &cmd[fed..], &mut out);
            if n == 0 {
                break;
            }
            fed += n;
        }
        out.clear();
        loaded.commands += 1;
        if truncated_ok {
            valid_up_to = reader.pos;
        }
    };
    worker.closed(client);
    let result = match result {
        Step::Eof => Step::Eof,
        Step::Truncated => Step::Truncated,
        _ => Step::Format,
    };
    drop(map);
    match result {
        Step::Eof => Ok(Outcome::Ok),
        Step::Truncated if truncated_ok => {
            log::warn!("!!! Warning: short read while loading the AOF file {name}!!!");
            log::warn!("!!! Truncating the AOF {name} at offset {valid_up_to} !!!");
            let file = std::fs::OpenOptions::new().write(true).open(path);
            match file.and_then(|f| f.set_len(valid_up_to as u64)) {
                Ok(()) => {
                    log::warn!("AOF {name} loaded anyway because aof-load-truncated is enabled");
                    Ok(Outcome::Truncated)
                }
                Err(e) => Err(AofError::Load(format!(
                    "Error truncating the AOF file {name}: {e}"
                ))),
            }
        }
        Step::Truncated => Err(AofError::Load(format!(
            "Unexpected end of file reading the append only file {name}. You can: 1) Make a \
             backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. \
             2) Alternatively you can set the 'aof-load-truncated' configuration option to yes \
             and restart the server."
        ))),
        _ => Err(AofError::Load(format!(
            "Bad file format reading the append only file {name}: make a backup of your AOF \
             file, then use ./redis-check-aof --fix <filename.manifest>"
        ))),
    }
}

/// One step of reading an AOF.
#[derive(Debug, PartialEq)]
enum Step<'a> {
    Command(Vec<&'a [u8]>),
    /// Clean end of file.
    Eof,
    /// The file ends inside a command.
    Truncated,
    /// Not the AOF format.
    Format,
}

/// Redis's reading loop over a file held in memory: `fgets` lines of at most 1023 bytes,
/// `#` annotation lines skipped, `*<argc>` then `$<len>` + bytes + 2 bytes per argument.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

/// Redis's `AOF_ANNOTATION_LINE_MAX_LEN` (the `fgets` buffer).
const LINE_MAX: usize = 1024;

impl<'a> Reader<'a> {
    /// `fgets`: up to and including a newline, at most `LINE_MAX - 1` bytes; `None` at EOF.
    fn line(&mut self) -> Option<&'a [u8]> {
        let rest = &self.data[self.pos..];
        if rest.is_empty() {
            return None;
        }
        let max = rest.len().min(LINE_MAX - 1);
        let n = rest[..max]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(max, |i| i + 1);
        self.pos += n;
        Some(&rest[..n])
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let v = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(v)
    }

    fn command(&mut self) -> Step<'a> {
        let line = loop {
            match self.line() {
                None => return Step::Eof,
                Some(l) if l.first() == Some(&b'#') => continue,
                Some(l) => break l,
            }
        };
        if line.first() != Some(&b'*') {
            return Step::Format;
        }
        // `buf[1] == '\0'`: a lone `*` at the very end is a short read.
        if line.len() == 1 {
            return Step::Truncated;
        }
        let argc = atoi(&line[1..]);
        if argc < 1 {
            return Step::Format;
        }
        let mut argv = Vec::with_capacity((argc as usize).min(1024));
        for _ in 0..argc {
            let Some(l) = self.line() else {
                return Step::Truncated;
            };
            if l.first() != Some(&b'$') {
                return Step::Format;
            }
            let len = atoi(&l[1..]).max(0) as usize;
            let Some(arg) = self.take(len) else {
                return Step::Truncated;
            };
            if self.take(2).is_none() {
                return Step::Truncated;
            }
            argv.push(arg);
        }
        Step::Command(argv)
    }
}

/// C's `atoi`/`strtol` prefix parse (saturating).
fn atoi(s: &[u8]) -> i64 {
    super::manifest::atoll(&String::from_utf8_lossy(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(data: &[u8]) -> Vec<String> {
        let mut r = Reader { data, pos: 0 };
        let mut out = Vec::new();
        loop {
            match r.command() {
                Step::Command(argv) => out.push(
                    argv.iter()
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
                other => {
                    out.push(format!("{other:?}"));
                    return out;
                }
            }
        }
    }

    #[test]
    fn reads_commands_and_annotations() {
        let data =
            b"#TS:123\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nset\r\n$1\r\nk\r\n$0\r\n\r\n";
        assert_eq!(steps(data), ["SELECT 0", "set k ", "Eof"]);
    }

    #[test]
    fn tells_a_truncated_tail_from_a_bad_format() {
        let full = b"*3\r\n$3\r\nset\r\n$1\r\nk\r\n$1\r\nv\r\n";
        for cut in 1..full.len() {
            let s = steps(&full[..cut]);
            assert_eq!(
                s.last().map(String::as_str),
                Some("Truncated"),
                "cut at {cut}"
            );
        }
        assert_eq!(steps(b"+3\r\n"), ["Format"]);
        assert_eq!(steps(b"*3\r\n$3\r\nset\r\nx1\r\n"), ["Format"]);
        assert_eq!(steps(b"*0\r\n"), ["Format"]);
        // A length past the end is a short read, as in Redis.
        assert_eq!(steps(b"*1\r\n$99\r\nab\r\n"), ["Truncated"]);
    }
}
