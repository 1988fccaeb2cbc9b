//! Start-up: validate the configuration, pick the backend, bind the listeners on the calling
//! thread, create the wakers, and start one loop thread per listener.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use crate::stats::Counters;
use crate::{Backend, Config, ReactorError, Running, Service, Stats, Waker};

/// What every thread of one reactor shares.
pub(crate) struct Shared {
    pub(crate) shutdown: AtomicBool,
    pub(crate) wakers: Vec<Waker>,
    pub(crate) counters: Vec<Arc<Counters>>,
}

impl Shared {
    /// Sets the flag, then wakes every loop so it sees the flag without waiting for a tick.
    pub(crate) fn request_shutdown(&self) {
        self.shutdown.store(true, Ordering::Release);
        for waker in &self.wakers {
            waker.wake();
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        let mut total = Stats::default();
        for counters in &self.counters {
            counters.add_into(&mut total);
        }
        total
    }

    pub(crate) fn thread_stats(&self) -> Vec<Stats> {
        let mut all = Vec::with_capacity(self.counters.len());
        for counters in &self.counters {
            let mut one = Stats::default();
            counters.add_into(&mut one);
            all.push(one);
        }
        all
    }
}

fn invalid(what: &str) -> ReactorError {
    ReactorError::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        what.to_owned(),
    ))
}

fn validate(cfg: &Config) -> Result<(), ReactorError> {
    if cfg.threads == 0 {
        return Err(invalid("threads must be at least 1"));
    }
    if cfg.tick.is_zero() {
        return Err(invalid("tick must be longer than zero"));
    }
    if cfg.max_pending_output == 0 {
        return Err(invalid("max_pending_output must be at least 1"));
    }
    if cfg.bind.is_empty() || cfg.bind.len() > crate::MAX_BIND_ADDRS {
        return Err(invalid("bind must list 1 to 16 addresses"));
    }
    // Fixed-file slots above the connections hold the listeners.
    if cfg.max_connections_per_thread == 0
        || cfg.max_connections_per_thread + crate::MAX_BIND_ADDRS >= crate::user_data::MAX_SLOTS
    {
        return Err(invalid("max_connections_per_thread must be in 1..2^24-17"));
    }
    Ok(())
}

/// Resolves `Auto` and checks that `Uring` can run, logging which backend and why.
fn choose_backend(cfg: &Config) -> Result<Backend, ReactorError> {
    match cfg.backend {
        Backend::Epoll => {
            log::info!("reactor: epoll backend (requested), level-triggered");
            Ok(Backend::Epoll)
        }
        Backend::Uring => match crate::uring::probe(cfg) {
            Ok(features) => {
                log::info!("reactor: io_uring backend: {features}");
                Ok(Backend::Uring)
            }
            Err(err) => Err(ReactorError::UringUnavailable(err)),
        },
        Backend::Auto => match crate::uring::probe(cfg) {
            Ok(features) => {
                log::info!("reactor: io_uring backend: {features}");
                Ok(Backend::Uring)
            }
            Err(err) => {
                log::warn!("reactor: io_uring unavailable ({err}); falling back to epoll");
                Ok(Backend::Epoll)
            }
        },
    }
}

pub(crate) fn start<S, F>(cfg: Config, make: F) -> Result<Running, ReactorError>
where
    S: Service + 'static,
    F: Fn(usize, &[Waker]) -> S + Send + Sync + 'static,
{
    validate(&cfg)?;
    let backend = choose_backend(&cfg)?;
    let (listeners, local_addrs) = crate::listener::bind_all(&cfg.bind, cfg.threads)?;
    let wakers = (0..cfg.threads)
        .map(|_| crate::waker::new())
        .collect::<Result<Vec<_>, _>>()?;
    let shared = Arc::new(Shared {
        shutdown: AtomicBool::new(false),
        wakers,
        counters: (0..cfg.threads)
            .map(|_| Arc::new(Counters::default()))
            .collect(),
    });
    let make = Arc::new(make);
    let (ready_tx, ready_rx) = mpsc::channel();
    let mut threads = Vec::with_capacity(cfg.threads);
    for (index, listeners) in listeners.into_iter().enumerate() {
        let (thread_cfg, thread_shared, make, ready) = (
            cfg.clone(),
            Arc::clone(&shared),
            Arc::clone(&make),
            ready_tx.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name(format!("ferrite-io-{index}"))
            .spawn(move || {
                thread_main(
                    index,
                    backend,
                    thread_cfg,
                    listeners,
                    thread_shared,
                    &*make,
                    ready,
                )
            });
        match spawned {
            Ok(handle) => threads.push(handle),
            Err(err) => {
                stop_all(&shared, threads);
                return Err(ReactorError::Io(err));
            }
        }
    }
    drop(ready_tx);
    // Each thread reports whether its ring (or epoll) came up, so that a failure is a start-up
    // error rather than a dead thread.
    let mut failure = None;
    for _ in 0..threads.len() {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(err)) => failure = failure.or(Some(err)),
            Err(_) => {
                failure = failure.or(Some(std::io::Error::other("a reactor thread died")));
            }
        }
    }
    if let Some(err) = failure {
        stop_all(&shared, threads);
        return Err(match backend {
            Backend::Uring => ReactorError::UringUnavailable(err),
            _ => ReactorError::Io(err),
        });
    }
    Ok(Running {
        backend,
        local_addrs,
        shared,
        threads,
    })
}

fn stop_all(shared: &Shared, threads: Vec<std::thread::JoinHandle<()>>) {
    shared.request_shutdown();
    for handle in threads {
        let _ = handle.join();
    }
}

type Ready = mpsc::Sender<std::io::Result<()>>;

fn thread_main<S, F>(
    index: usize,
    backend: Backend,
    cfg: Config,
    listeners: Vec<TcpListener>,
    shared: Arc<Shared>,
    make: &F,
    ready: Ready,
) where
    S: Service,
    F: Fn(usize, &[Waker]) -> S,
{
    if cfg.pin_threads {
        pin(index);
    }
    let waker = shared.wakers[index].clone();
    match backend {
        Backend::Uring => {
            let prepared = match crate::uring::Prepared::new(&cfg, &listeners) {
                Ok(prepared) => prepared,
                Err(err) => {
                    let _ = ready.send(Err(err));
                    return;
                }
            };
            let _ = ready.send(Ok(()));
            let service = make(index, &shared.wakers);
            let machine = crate::machine::Machine::new(service, index, &cfg, shared);
            prepared.run(machine, listeners, waker, cfg.tick);
        }
        Backend::Epoll | Backend::Auto => {
            let prepared = match crate::epoll::Prepared::new(&listeners, &waker) {
                Ok(prepared) => prepared,
                Err(err) => {
                    let _ = ready.send(Err(err));
                    return;
                }
            };
            let _ = ready.send(Ok(()));
            let service = make(index, &shared.wakers);
            let machine = crate::machine::Machine::new(service, index, &cfg, shared);
            prepared.run(machine, listeners, waker, cfg.tick);
        }
    }
}

fn pin(index: usize) {
    let Some(cores) = core_affinity::get_core_ids() else {
        log::debug!("reactor: cannot list cores; thread {index} not pinned");
        return;
    };
    match cores.get(index) {
        Some(&core) if core_affinity::set_for_current(core) => {}
        _ => log::debug!("reactor: could not pin thread {index} to core {index}"),
    }
}
