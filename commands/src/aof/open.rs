//! Opening the AOF: at start-up (load, then append), and at runtime (`CONFIG SET appendonly`).

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{AofError, Files, Fsync, Manifest, State, load, manifest, rewrite};
use crate::server::Server;

/// Opens the AOF at start-up, as Redis's `loadDataFromDisk` + `aofOpenIfNeededOnServerStart`:
/// with `appendonly yes`, loads the files the manifest lists (the dataset must be empty), then
/// opens the last incremental file (creating one, and the directory and manifest, if needed)
/// and starts appending. Call before serving. Returns whether the AOF is on.
pub fn open_at_startup(server: &Arc<Server>) -> Result<bool, AofError> {
    server.install_self();
    let cfg = &server.config;
    let aof = &server.aof;
    aof.set_policy(Fsync::parse(&cfg.value("appendfsync").unwrap_or_default()));
    if cfg.value("appendonly").as_deref() != Some("yes") {
        return Ok(false);
    }
    let dir = PathBuf::from(cfg.value("appenddirname").unwrap_or_default());
    let filename = cfg.value("appendfilename").unwrap_or_default();
    let manifest_path = dir.join(format!("{filename}.manifest"));
    let mut manifest = if manifest_path.exists() {
        let text = std::fs::read(&manifest_path).map_err(AofError::io(format!(
            "Fatal error: can't open the AOF manifest file {} for reading",
            manifest_path.display()
        )))?;
        Manifest::parse(&text).map_err(|reason| AofError::Manifest {
            path: manifest_path.display().to_string(),
            reason,
        })?
    } else {
        Manifest::default()
    };
    if std::path::Path::new(&filename).exists()
        && manifest.base.is_none()
        && manifest.incrs.is_empty()
    {
        upgrade_old_style(&dir, &filename, &mut manifest)?;
    }
    let truncated_ok = cfg.value("aof-load-truncated").as_deref() != Some("no");
    load::load_all(server, &dir, &manifest, truncated_ok)?;
    std::fs::create_dir_all(&dir).map_err(AofError::io(format!(
        "Can't open or create append-only dir {}",
        dir.display()
    )))?;
    if manifest.base.is_none() && manifest.incrs.is_empty() {
        // An empty dataset gets a base at once, as Redis 7.0 does on start-up.
        let name = empty_base(server, &dir, &filename)?;
        log::info!("Creating AOF base file {name} on server start");
        manifest.base = Some(manifest::FileInfo {
            name,
            seq: 1,
            kind: b'b',
        });
    }
    // History left by a crash between a rewrite's manifest and its deletions (Redis's
    // `aofDelHistoryFiles` after loading).
    if !manifest.history.is_empty() {
        for f in manifest.history.drain(..) {
            log::info!("Removing the history file {} in the background", f.name);
            let _ = std::fs::remove_file(dir.join(&f.name));
        }
        manifest
            .persist(&dir, &filename)
            .map_err(AofError::io("Can't persist the AOF manifest"))?;
    }
    let (name, created) = match manifest.incrs.last() {
        Some(f) => (f.name.clone(), false),
        None => (manifest.new_incr(&filename), true),
    };
    if created {
        manifest
            .persist(&dir, &filename)
            .map_err(AofError::io("Can't persist the AOF manifest"))?;
        log::info!("Creating AOF incr file {name} on server start");
    } else {
        log::info!("Opening AOF incr file {name} on server start");
    }
    let files = Files {
        dir,
        filename,
        manifest,
    };
    // The loaded files count as written (INFO aof_current_size); the writer adds the size of
    // the file it appends to.
    let listed = |n: &str| std::fs::metadata(files.dir.join(n)).map_or(0, |m| m.len());
    let all: u64 = files
        .manifest
        .base
        .iter()
        .chain(&files.manifest.incrs)
        .map(|f| listed(&f.name))
        .sum();
    aof.older_size
        .store(all.saturating_sub(listed(&name)), Ordering::Relaxed);
    aof.base_size.store(all, Ordering::Relaxed);
    aof.set_state(super::State::On);
    aof.start(server, files, &name)?;
    Ok(true)
}

/// Writes the base of an empty dataset (`appendonly.aof.1.base.rdb`, or `.aof` with
/// `aof-use-rdb-preamble no`) into `dir`; returns its name.
fn empty_base(server: &Server, dir: &std::path::Path, filename: &str) -> Result<String, AofError> {
    let preamble = server.config.value("aof-use-rdb-preamble").as_deref() != Some("no");
    let name = format!("{filename}.1.base.{}", if preamble { "rdb" } else { "aof" });
    let mut bytes = Vec::new();
    if preamble {
        let mut session = server.store.session();
        let aux = crate::persist::rdb_write::Aux {
            ctime: crate::persist::unix_secs(),
            used_mem: 0,
            aof_base: true,
            key_delay: 0,
            libraries: server.scripts.functions.codes(),
            repl: None,
        };
        bytes = crate::persist::rdb_write::write_snapshot(
            &mut session,
            crate::server::unix_ms(),
            aux,
            bytes,
        )
        .map_err(AofError::io("Can't write the AOF base"))?
        .0;
    }
    let path = dir.join(&name);
    let mut f = File::create(&path)
        .map_err(AofError::io(format!("Can't open the AOF base file {name}")))?;
    std::io::Write::write_all(&mut f, &bytes)
        .and_then(|()| f.sync_all())
        .map_err(AofError::io(format!(
            "Can't write the AOF base file {name}"
        )))?;
    Ok(name)
}

/// Redis's `aofUpgradePrepare`: an old single-file AOF (`appendonly.aof` in the working
/// directory, Redis < 7) becomes the base of a new manifest and moves into the directory.
fn upgrade_old_style(
    dir: &std::path::Path,
    filename: &str,
    manifest: &mut Manifest,
) -> Result<(), AofError> {
    std::fs::create_dir_all(dir).map_err(AofError::io(format!(
        "Can't open or create append-only dir {}",
        dir.display()
    )))?;
    manifest.base = Some(manifest::FileInfo {
        name: filename.to_owned(),
        seq: 1,
        kind: b'b',
    });
    manifest
        .persist(dir, filename)
        .map_err(AofError::io("Can't persist the AOF manifest"))?;
    std::fs::rename(filename, dir.join(filename)).map_err(AofError::io(format!(
        "Error trying to move the old AOF file {filename} into dir {}",
        dir.display()
    )))?;
    log::info!(
        "Successfully migrated an old-style AOF file ({filename}) into the AOF directory ({}).",
        dir.display()
    );
    Ok(())
}

/// `CONFIG SET appendonly yes|no` and `appendfsync` at runtime. Turning the AOF on is Redis's
/// `startAppendOnly`: a rewrite writes the base of the dataset while commands go to a
/// temporary incremental file, and the AOF is on (listed in the manifest) once it succeeds.
/// `in_exec`: inside EXEC, where the rewrite is scheduled rather than forked mid-transaction
/// (the transaction's writes would straddle the cut).
pub fn apply_config(
    server: &Arc<Server>,
    session: &mut ferrite_hybridlog::Session,
    in_exec: bool,
) -> Result<(), String> {
    let cfg = &server.config;
    let aof = &server.aof;
    aof.set_policy(Fsync::parse(&cfg.value("appendfsync").unwrap_or_default()));
    let want = cfg.value("appendonly").as_deref() == Some("yes");
    if want == (aof.state() != State::Off) {
        return Ok(());
    }
    session.exclusive(|s| {
        if !want {
            aof.stop(server);
            log::info!("AOF switched off");
            return Ok(());
        }
        rewrite::start_append(server, s, in_exec)
    })
}
