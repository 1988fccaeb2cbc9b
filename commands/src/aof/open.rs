//! Opening the AOF: at start-up (load, then append), and at runtime (`CONFIG SET appendonly`).

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use ferrite_hybridlog::Db;

use super::{AofError, Files, Fsync, Manifest, load, manifest};
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
    let loaded = load::load_all(server, &dir, &manifest, truncated_ok)?;
    aof.base_size.store(loaded.base_size, Ordering::Relaxed);
    std::fs::create_dir_all(&dir).map_err(AofError::io(format!(
        "Can't open or create append-only dir {}",
        dir.display()
    )))?;
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
    // The loaded files' sizes count as written (INFO aof_current_size).
    aof.current_size.store(loaded.total_size, Ordering::Relaxed);
    aof.start(server, files, &name)?;
    Ok(true)
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
/// AOF rewrite (a base with the whole dataset), which Ferrite does not build yet: it is only
/// possible while the dataset is empty (a new incremental file then describes it exactly);
/// otherwise it fails with Redis's error for a failed start. Runs under the exclusive gate.
pub fn apply_config(
    server: &Arc<Server>,
    session: &mut ferrite_hybridlog::Session,
) -> Result<(), String> {
    let cfg = &server.config;
    let aof = &server.aof;
    aof.set_policy(Fsync::parse(&cfg.value("appendfsync").unwrap_or_default()));
    let want = cfg.value("appendonly").as_deref() == Some("yes");
    if want == aof.is_on() {
        return Ok(());
    }
    session.exclusive(|_| {
        if !want {
            aof.stop(server);
            log::info!("AOF switched off");
            return Ok(());
        }
        let store = &server.store;
        let empty = (0..store.databases()).all(|db| store.db_size(db as Db) == 0);
        if !empty {
            log::warn!(
                "Can't turn the AOF on at runtime: that needs an AOF rewrite of the dataset \
                 (BGREWRITEAOF), which Ferrite does not implement yet; restart with \
                 appendonly yes instead"
            );
            return Err("Unable to turn on AOF. Check server logs.".to_owned());
        }
        start_empty(server).map_err(|e| {
            log::warn!("Can't turn the AOF on: {e}");
            "Unable to turn on AOF. Check server logs.".to_owned()
        })
    })
}

/// Starts appending to a new incremental file for an empty dataset.
fn start_empty(server: &Arc<Server>) -> Result<(), AofError> {
    let cfg = &server.config;
    let previous = server
        .aof
        .files
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let (dir, filename, mut manifest) = match previous {
        Some(f) => (f.dir, f.filename, f.manifest),
        None => {
            let dir = PathBuf::from(cfg.value("appenddirname").unwrap_or_default());
            let filename = cfg.value("appendfilename").unwrap_or_default();
            let path = dir.join(format!("{filename}.manifest"));
            let manifest = match std::fs::read(&path) {
                Ok(text) => Manifest::parse(&text).map_err(|reason| AofError::Manifest {
                    path: path.display().to_string(),
                    reason,
                })?,
                Err(_) => Manifest::default(),
            };
            (dir, filename, manifest)
        }
    };
    std::fs::create_dir_all(&dir).map_err(AofError::io("Can't open or create append-only dir"))?;
    // The dataset is empty: whatever the old files held is gone, so they become history.
    let old: Vec<_> = manifest
        .base
        .take()
        .into_iter()
        .chain(manifest.incrs.drain(..))
        .collect();
    let last_seq = old
        .iter()
        .filter(|f| f.kind == b'i')
        .map(|f| f.seq)
        .max()
        .unwrap_or(0);
    manifest.history.extend(
        old.into_iter()
            .map(|f| manifest::FileInfo { kind: b'h', ..f }),
    );
    manifest.incrs.push(manifest::FileInfo {
        name: format!("{filename}.{}.incr.aof", last_seq + 1),
        seq: last_seq + 1,
        kind: b'i',
    });
    let name = manifest.incrs[0].name.clone();
    // A fresh file: truncate anything left under that name.
    File::create(dir.join(&name)).map_err(AofError::io(format!(
        "Can't open the append-only file {name}"
    )))?;
    manifest
        .persist(&dir, &filename)
        .map_err(AofError::io("Can't persist the AOF manifest"))?;
    log::info!("Creating AOF incr file {name} (AOF turned on with an empty dataset)");
    server.aof.current_size.store(0, Ordering::Relaxed);
    server.aof.base_size.store(0, Ordering::Relaxed);
    server.aof.start(
        server,
        Files {
            dir,
            filename,
            manifest,
        },
        &name,
    )
}
