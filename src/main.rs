//! `ferrite`: a drop-in Redis replacement on an io_uring reactor and a HybridLog store.
//!
//! This binary is the one place that knows every crate: it reads the configuration, builds the
//! store, starts one reactor thread per core with a command engine on each, and waits for a
//! signal to shut down.

mod logger;
mod process;
mod redis_conf;
mod service;
mod settings;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ferrite_commands::config::Config;
use ferrite_commands::master::ShutdownWait;
use ferrite_commands::server::unix_ms;
use ferrite_commands::{Server, persist};
use ferrite_hybridlog::disk::{DiskConfig, SegmentedFile};
use ferrite_hybridlog::{CopyReads, Store, StoreConfig};
use ferrite_reactor::{Backend, BindAddr};
use nix::sys::signal::{SigSet, Signal};

use crate::settings::{Cli, number, value};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferrite: {e:#}");
            log::error!("Fatal: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse_args(std::env::args())?;
    let config = Config::default();
    cli.apply(&config)?;
    // Before any thread exists (fork keeps only the caller).
    let daemonized = value(&config, "daemonize") == "yes";
    if daemonized {
        process::daemonize()?;
    }
    let pidfile = process::pidfile_path(&value(&config, "pidfile"), daemonized);
    if let Some(path) = &pidfile {
        // Shown by CONFIG GET and removed at exit, as Redis's default one is.
        let _ = config.set_startup("pidfile", path.as_bytes());
    }
    logger::init(&value(&config, "loglevel"))?;

    let threads = match number(&config, "threads")? {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n as usize,
    };
    let bind = listen_addresses(&config)?;
    let backend = match value(&config, "io-backend").as_str() {
        "uring" => Backend::Uring,
        "epoll" => Backend::Epoll,
        _ => Backend::Auto,
    };
    // `value` would show the working directory (CONFIG GET dir answers getcwd()).
    let dir = config.stored("dir").unwrap_or_default();
    if !dir.is_empty() {
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create dir {dir}"))?;
        std::env::set_current_dir(&dir).with_context(|| format!("cannot chdir to {dir}"))?;
    }
    // After the move to `dir`: a relative `logfile` (or `pidfile`) is in it, as for
    // redis-server, which moves there while reading its configuration.
    process::redirect_log(&value(&config, "logfile"))?;
    if let Some(path) = &pidfile {
        process::write_pidfile(path);
    }

    let store = open_store(&config)?;
    let server = Arc::new(Server::new(store, config, threads));
    // `user` lines and the `aclfile`, after `requirepass` (a `user default` line wins).
    ferrite_commands::acl::file::load_at_startup(&server).map_err(anyhow::Error::msg)?;
    // `replicaof host port`: followed once the server listens (the master learns its port).
    let master = ferrite_commands::replica::configured_master(&server)
        .map_err(anyhow::Error::msg)
        .context("bad replicaof")?;
    // Before accepting connections: with `appendonly yes` the AOF is the dataset (and is
    // appended to from now on), otherwise the RDB dump is, as redis-server decides.
    let aof_on = ferrite_commands::aof::open_at_startup(&server)
        .context("cannot load the append only file")?;
    if !aof_on {
        load_dump(&server, master.is_some())?;
    }
    // `notify-keyspace-events` from the configuration: only now, so that loading does not
    // record a key event per key loaded.
    ferrite_commands::notify::sync(&server);

    // Signals are taken synchronously by this thread (sigwait), never by a handler that could
    // interrupt a reactor thread mid-operation: block them before any thread is spawned so
    // every thread inherits the mask.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    signals.thread_block().context("cannot block signals")?;

    let maxclients = number(&server.config, "maxclients")?;
    let per_thread = adjust_open_files_limit(maxclients);
    let reactor_config = ferrite_reactor::Config {
        threads,
        bind,
        backend,
        pin_threads: true,
        tick: Duration::from_millis(100),
        max_pending_output: 64 * 1024 * 1024,
        max_connections_per_thread: per_thread,
    };
    let for_threads = server.clone();
    let running = ferrite_reactor::start(reactor_config, move |thread, wakers| {
        let wakers = wakers.to_vec();
        for_threads.set_waker(Box::new(move |t| {
            if let Some(w) = wakers.get(t) {
                w.wake();
            }
        }));
        service::Connections::new(for_threads.clone(), thread)
    })
    .context("cannot start the server")?;
    let backend_name = match running.backend() {
        Backend::Uring => "io_uring",
        Backend::Epoll => "epoll",
        Backend::Auto => "auto",
    };
    let _ = server.io_backend.set(backend_name.to_string());
    let _ = server.port.set(running.local_addr().port());
    log::info!(
        "Ferrite {} (Redis 7.0.15 compatible), pid {}, {} thread(s), {} backend, port {}",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        threads,
        backend_name,
        running.local_addr().port()
    );
    log::info!("Ready to accept connections tcp");
    if let Some((host, port)) = master {
        let mut session = server.store.session();
        // A fresh session holds no gate: this waits for a cut rather than failing.
        let _ = server
            .replication
            .follow(&server, &mut session, &host, port);
    }

    loop {
        let signal = signals.wait().context("sigwait")?;
        let asked = server
            .shutdown_request
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some((flags, client)) = asked {
            // SHUTDOWN handed over to wait for lagging replicas while the reactors run.
            log::warn!("User requested shutdown...");
            let wait = server.master.wait_before_shutdown(&server);
            if wait != ShutdownWait::Aborted {
                let mut session = server.store.session();
                session.exclusive(|s| persist::finish_shutdown(&server, s, flags));
                if wait == ShutdownWait::Paused {
                    server.unpause_clients(
                        ferrite_commands::pause::Purpose::Shutdown,
                        ferrite_commands::server::unix_ms(),
                    );
                }
            }
            ferrite_commands::master::answer_failed_shutdown(&server, client);
            continue;
        }
        log::warn!("Received {signal} scheduling shutdown...");
        if ferrite_commands::aof::rewrite::blocks_shutdown(&server) {
            log::warn!(
                "{signal} received but errors trying to shut down the server, check the logs \
                 for more information"
            );
            continue;
        }
        let wait = server.master.wait_before_shutdown(&server);
        if wait == ShutdownWait::Aborted {
            continue;
        }
        let paused = wait == ShutdownWait::Paused;
        if persist::schedule::save_points(&server).is_empty() {
            if server.persist.child().is_some() {
                log::warn!("There is a child saving an .rdb. Killing it!");
                persist::kill_child(&server);
            }
            break;
        }
        // With save points, a signal saves first, as Redis does: `finish_shutdown` exits the
        // process once the file is on disk, and returns only when the save failed, in which case
        // Redis keeps serving.
        log::warn!("User requested shutdown...");
        let mut session = server.store.session();
        session
            .exclusive(|s| persist::finish_shutdown(&server, s, persist::ShutdownFlags::default()));
        log::warn!(
            "{signal} received but errors trying to shut down the server, check the logs for \
             more information"
        );
        if paused {
            server.unpause_clients(
                ferrite_commands::pause::Purpose::Shutdown,
                ferrite_commands::server::unix_ms(),
            );
        }
    }
    running.shutdown();
    running
        .join()
        .map_err(|_| anyhow::anyhow!("a reactor thread panicked"))?;
    // Every reactor thread filed its entries before it stopped: write and fsync them.
    server.aof.stop(&server);
    persist::remove_pidfile(&server);
    log::info!("Ferrite is now ready to exit, bye bye...");
    Ok(())
}

/// Loads `dir/dbfilename` into the store before any client can connect, as redis-server does
/// at start-up. A missing file is an empty dataset; a file that cannot be read or parsed stops
/// the start-up (Redis refuses to start on a bad dump rather than serve part of it).
/// A replica's dump cut from its master's stream gives back its place in that stream.
fn load_dump(server: &Server, replica: bool) -> anyhow::Result<()> {
    let name = value(&server.config, "dbfilename");
    let start = std::time::Instant::now();
    let mut session = server.store.session();
    match persist::rdb_read::load_file(Path::new(&name), &mut session, unix_ms()) {
        Ok(None) => Ok(()),
        Ok(Some(loaded)) => {
            if let Err(e) = server.scripts.load_libraries(&loaded.libraries) {
                log::warn!("Failed loading library: {e}");
                anyhow::bail!("cannot load {name}: a function library failed to load: {e}");
            }
            log::info!(
                "Done loading RDB, keys loaded: {}, keys expired: {}.",
                loaded.keys,
                loaded.expired
            );
            server.persist.loaded(loaded.keys, loaded.expired);
            if let (true, Some((replid, offset))) = (replica, &loaded.repl_position) {
                let db = loaded.repl_stream_db.unwrap_or(0);
                server.master.restore_history(server, replid, *offset, db);
            }
            log::info!(
                "DB loaded from disk: {:.3} seconds",
                start.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Err(e) => {
            for line in e.to_string().lines() {
                log::warn!("{line}");
            }
            let text = e.to_string();
            anyhow::bail!(
                "cannot load {name}: {}",
                text.lines().next().unwrap_or_default()
            )
        }
    }
}

/// The addresses of `bind` (a `-` prefix: optional, skipped if the machine lacks it), each
/// with `port`, as redis-server's `listenToPort` reads them.
fn listen_addresses(config: &Config) -> anyhow::Result<Vec<BindAddr>> {
    let port = u16::try_from(number(config, "port")?).context("port out of range")?;
    let bind = value(config, "bind");
    let mut addrs = Vec::new();
    for word in bind.split_whitespace() {
        let optional = word.starts_with('-');
        let ip: IpAddr = match word.trim_start_matches('-') {
            "*" => IpAddr::from([0, 0, 0, 0]),
            "::*" => IpAddr::from([0u16; 8]),
            "localhost" => IpAddr::from([127, 0, 0, 1]),
            other => other
                .parse()
                .with_context(|| format!("invalid bind address '{other}'"))?,
        };
        addrs.push(BindAddr {
            addr: SocketAddr::new(ip, port),
            optional,
        });
    }
    if addrs.len() > ferrite_reactor::MAX_BIND_ADDRS {
        anyhow::bail!("Too many bind addresses specified.");
    }
    if addrs.is_empty() {
        // `bind ""`: redis-server listens on no TCP socket, and with no Unix socket (Ferrite
        // has none) it stops so.
        anyhow::bail!("Configured to not listen anywhere, exiting.");
    }
    Ok(addrs)
}

/// Store sizing from `memory-size`, `index-size` and `databases`, and `copy-reads-to-tail`.
fn store_config(config: &Config) -> anyhow::Result<StoreConfig> {
    let defaults = StoreConfig::default();
    let index_bytes = number(config, "index-size")?.max(64);
    let index_buckets = (index_bytes / 64).next_power_of_two() as usize;
    let memory_size = number(config, "memory-size")? as usize;
    Ok(StoreConfig {
        index_buckets,
        memory_size,
        page_bits: page_bits(memory_size),
        databases: number(config, "databases")? as usize,
        copy_reads_to_tail: match value(config, "copy-reads-to-tail").as_str() {
            "yes" => CopyReads::Always,
            "repeated" => CopyReads::Repeated,
            _ => CopyReads::Never,
        },
        ..defaults
    })
}

/// Log pages of about 1/64 of the memory budget, between 64 KiB and 4 MiB: enough pages that
/// the read-only region (a tenth of the budget) spans several, so the flusher can keep ahead of
/// the head, and big enough that a page write is an efficient disk write.
fn page_bits(memory_size: usize) -> u32 {
    let page = (memory_size / 64).clamp(64 << 10, 4 << 20);
    page.ilog2()
}

/// The store, with its disk tier in `<dir>/hlog`. The disk tier holds what does not fit in
/// `memory-size`; it is not a recovery source (RDB and AOF are), so it starts empty.
fn open_store(config: &Config) -> anyhow::Result<Arc<Store>> {
    let cfg = store_config(config)?;
    let dir = std::path::Path::new("hlog");
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("cannot clear the old log in {}", dir.display()))?;
    }
    // A power of two, and at least a page: records never straddle a segment.
    let segment_bits = number(config, "log-segment-size")?
        .next_power_of_two()
        .ilog2()
        .max(cfg.page_bits);
    let device = SegmentedFile::open(&DiskConfig {
        segment_bits,
        ..DiskConfig::new(dir)
    })
    .with_context(|| format!("cannot open the log in {}", dir.display()))?;
    // The object log: payloads of records holding big keys and values (and collections) whose
    // page left memory.
    let objects_dir = dir.join("objects");
    let objects = SegmentedFile::open(&DiskConfig {
        segment_bits,
        ..DiskConfig::new(&objects_dir)
    })
    .with_context(|| format!("cannot open the object log in {}", objects_dir.display()))?;
    log::info!(
        "Disk tier: {} KiB pages, {} MiB in memory, the rest in {} ({:?} I/O)",
        (1u64 << cfg.page_bits) >> 10,
        cfg.memory_size >> 20,
        dir.display(),
        device.mode()
    );
    let store = Store::with_devices(cfg, Box::new(device), Box::new(objects))
        .context("cannot build the store")?;
    // Collections go to the object log too, and come back through the command layer's codec.
    store.set_object_reader(ferrite_commands::objects::Collection::read);
    Ok(store)
}

/// Descriptors kept aside for listeners, rings, eventfds and data files (Redis's
/// `CONFIG_MIN_RESERVED_FDS`).
const RESERVED_FDS: u64 = 32;

/// Raises the open-files limit so that `maxclients` connections fit, as redis-server does at
/// start-up, and returns how many connections one reactor thread may hold (every connection could
/// land on one thread; each thread's fixed-file table is sized to it).
fn adjust_open_files_limit(maxclients: u64) -> usize {
    let wanted = maxclients + RESERVED_FDS;
    let limit = match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < wanted => {
            let target = wanted.min(hard);
            match nix::sys::resource::setrlimit(
                nix::sys::resource::Resource::RLIMIT_NOFILE,
                target,
                hard,
            ) {
                Ok(()) => target,
                Err(e) => {
                    log::warn!("Could not raise the open files limit to {target}: {e}");
                    soft
                }
            }
        }
        Ok((soft, _)) => soft,
        Err(_) => wanted,
    };
    if limit < wanted {
        log::warn!(
            "You requested maxclients of {maxclients} requiring at least {wanted} max file \
             descriptors; the limit is {limit}: connections beyond {} will be refused",
            limit.saturating_sub(RESERVED_FDS)
        );
    }
    limit
        .saturating_sub(RESERVED_FDS)
        .clamp(16, maxclients.max(16)) as usize
}
