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
            timestamp(),
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

/// `27 Nov 2026 13:29:40.123` in UTC.
fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = secs % 86_400;
    format!(
        "{d:02} {} {y} {:02}:{:02}:{:02}.{:03}",
        MONTHS[(m - 1) as usize],
        t / 3600,
        t / 60 % 60,
        t % 60,
        now.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_784), (2026, 11, 27));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn level_names() {
        assert!(set_level("warning").is_ok());
        assert!(set_level("loud").is_err());
        assert!(set_level("notice").is_ok());
    }
}
