//! A logger in Redis's format (`pid:M 27 Nov 2026 13:29:40.123 * message`), so that operators
//! and tools that read Redis logs read Ferrite's the same way.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use log::{Level, LevelFilter, Log, Metadata, Record};

static LEVEL: AtomicUsize = AtomicUsize::new(LevelFilter::Info as usize);

struct RedisStyle;

static LOGGER: RedisStyle = RedisStyle;

/// Installs the logger with Redis's `loglevel` name (debug, verbose, notice, warning, nothing).
pub fn init(loglevel: &str) -> anyhow::Result<()> {
    set_level(loglevel)?;
    log::set_logger(&LOGGER).map_err(|e| anyhow::anyhow!("logger: {e}"))?;
    log::set_max_level(LevelFilter::Trace);
    Ok(())
}

/// Changes the level at runtime.
pub fn set_level(loglevel: &str) -> anyhow::Result<()> {
    let level = match loglevel.to_ascii_lowercase().as_str() {
        "debug" => LevelFilter::Trace,
        "verbose" => LevelFilter::Debug,
        "notice" => LevelFilter::Info,
        "warning" => LevelFilter::Warn,
        "nothing" => LevelFilter::Off,
        other => anyhow::bail!(
            "invalid loglevel '{other}': must be one of debug, verbose, notice, warning, nothing"
        ),
    };
    LEVEL.store(level as usize, Ordering::Relaxed);
    Ok(())
}

impl Log for RedisStyle {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        (metadata.level() as usize) <= LEVEL.load(Ordering::Relaxed)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mark = match record.level() {
            Level::Error | Level::Warn => '#',
            Level::Info => '*',
            Level::Debug => '-',
            Level::Trace => '.',
        };
        let line = format!(
            "{}:M {} {} {}\n",
            std::process::id(),
            ferrite_commands::server::log_timestamp(),
            mark,
            record.args()
        );
        // One write per line so lines from different threads do not interleave.
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stdout().flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_names() {
        assert!(set_level("warning").is_ok());
        assert!(set_level("loud").is_err());
        assert!(set_level("notice").is_ok());
    }
}
