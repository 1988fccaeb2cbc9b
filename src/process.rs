//! The process as redis-server sets it up from its configuration: `daemonize` (detach into the
//! background), `logfile` (where the log goes; stdout when empty, nowhere when daemonized) and
//! `pidfile` (written once running; `persist::remove_pidfile` removes it on a clean exit).

use std::os::fd::AsRawFd;

use anyhow::Context;

/// Redis's default pid file for a daemonized server without `pidfile`.
const DEFAULT_PIDFILE: &str = "/var/run/redis.pid";

/// Redis's `daemonize`: forks, the parent exits 0 at once, the child leaves the terminal's
/// session and points stdin, stdout and stderr at /dev/null (the log then goes to `logfile`,
/// if any). Must run before any thread is started: `fork` keeps only the calling thread.
pub fn daemonize() -> anyhow::Result<()> {
    // SAFETY: called while the process is single-threaded (see above); the child continues
    // with this thread as its only one, the parent only exits.
    match unsafe { libc::fork() } {
        -1 => return Err(std::io::Error::last_os_error()).context("cannot daemonize: fork"),
        0 => {}
        // SAFETY: the parent leaves without running destructors, as Redis's exit(0) there.
        _ => unsafe { libc::_exit(0) },
    }
    // SAFETY: setsid has no memory-safety preconditions.
    unsafe { libc::setsid() };
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .context("cannot daemonize: /dev/null")?;
    for fd in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors of an open file we own.
        unsafe { libc::dup2(null.as_raw_fd(), fd) };
    }
    Ok(())
}

/// `logfile`: from now on stdout (where the logger and fork children write their lines) is
/// that file, opened for appending. Empty: stdout stays.
pub fn redirect_log(logfile: &str) -> anyhow::Result<()> {
    if logfile.is_empty() {
        return Ok(());
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(logfile)
        .with_context(|| format!("Can't open the log file: {logfile}"))?;
    // SAFETY: dup2 of an open file we own onto stdout; the file's own descriptor closes when
    // `file` drops, stdout keeps the open description.
    if unsafe { libc::dup2(file.as_raw_fd(), 1) } < 0 {
        return Err(std::io::Error::last_os_error()).context("cannot redirect the log");
    }
    Ok(())
}

/// The pid file in use: `pidfile`, or Redis's default when daemonized without one.
pub fn pidfile_path(pidfile: &str, daemonized: bool) -> Option<String> {
    match (pidfile.is_empty(), daemonized) {
        (false, _) => Some(pidfile.to_owned()),
        (true, true) => Some(DEFAULT_PIDFILE.to_owned()),
        (true, false) => None,
    }
}

/// Redis's `createPidFile`: writes the pid and a newline; a failure is only logged.
pub fn write_pidfile(path: &str) {
    if let Err(e) = std::fs::write(path, format!("{}\n", std::process::id())) {
        log::warn!("Failed to write PID file: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pid_file_is_the_configured_one_or_redis_default_when_daemonized() {
        assert_eq!(
            pidfile_path("/tmp/x.pid", false).as_deref(),
            Some("/tmp/x.pid")
        );
        assert_eq!(pidfile_path("", true).as_deref(), Some(DEFAULT_PIDFILE));
        assert_eq!(pidfile_path("", false), None);
    }

    #[test]
    fn a_pid_file_is_written_and_removed() {
        let path = std::env::temp_dir().join(format!("ferrite-pid-{}", std::process::id()));
        let path = path.to_string_lossy().into_owned();
        write_pidfile(&path);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));
        std::fs::remove_file(&path).unwrap();
    }
}
