//! LATENCY DOCTOR: Redis's `createLatencyReport`, word for word, over Ferrite's events.

use std::fmt::Write;

use super::Series;

/// What the report looks at besides the events.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// `latency-monitor-threshold`, ms.
    pub threshold_ms: i64,
    /// `slowlog-log-slower-than`, µs.
    pub slowlog_us: i64,
    /// `hz`.
    pub hz: u64,
    /// `appendfsync always`.
    pub fsync_always: bool,
    /// Bytes of anonymous huge pages the process has (`AnonHugePages` in `/proc/self/smaps`).
    pub anon_huge_bytes: u64,
    /// Unix seconds.
    pub now: i64,
    /// GB/s of the latest fork (Redis's `stat_fork_rate`).
    pub fork_rate: f64,
}

/// Redis's `latencyStats` for one event.
#[derive(Debug, Default, PartialEq, Eq)]
struct Stats {
    samples: u64,
    avg: u64,
    mad: u64,
    period: i64,
}

/// Redis's `analyzeLatencyForEvent`.
fn analyze(series: &Series, now: i64) -> Stats {
    let mut st = Stats::default();
    let mut sum = 0u64;
    for s in series.samples() {
        st.samples += 1;
        sum += s.latency;
        if st.period == 0 || s.time < st.period {
            st.period = s.time;
        }
    }
    let Some(avg) = sum.checked_div(st.samples) else {
        return st;
    };
    st.avg = avg;
    st.period = (now - st.period).max(1);
    let dev: u64 = series
        .samples()
        .map(|s| (avg as i64 - s.latency as i64).unsigned_abs())
        .sum();
    st.mad = dev / st.samples;
    st
}

/// Which pieces of advice the events call for.
#[derive(Debug, Default)]
struct Advice {
    better_vm: bool,
    slowlog_enabled: bool,
    slowlog_tuning: bool,
    slowlog_inspect: bool,
    disk_contention: bool,
    scheduler: bool,
    data_writeback: bool,
    no_appendfsync: bool,
    local_disk: bool,
    ssd: bool,
    write_load_info: bool,
    hz: bool,
    large_objects: bool,
    mass_eviction: bool,
    relax_fsync_policy: bool,
    disable_thp: bool,
    count: u32,
}

impl Advice {
    /// The advice Redis attaches to an event class.
    fn for_event(&mut self, event: &str, set: &Settings) {
        let is = |name: &str| event.eq_ignore_ascii_case(name);
        if is("command") {
            if set.slowlog_us < 0 {
                self.slowlog_enabled = true;
                self.count += 1;
            } else if set.slowlog_us / 1000 > set.threshold_ms {
                self.slowlog_tuning = true;
                self.count += 1;
            }
            self.slowlog_inspect = true;
            self.large_objects = true;
            self.count += 2;
        }
        if is("fast-command") {
            self.scheduler = true;
            self.count += 1;
        }
        if is("aof-write-pending-fsync") {
            self.local_disk = true;
            self.disk_contention = true;
            self.ssd = true;
            self.data_writeback = true;
            self.count += 4;
        }
        if is("aof-write-active-child") {
            self.no_appendfsync = true;
            self.data_writeback = true;
            self.ssd = true;
            self.count += 3;
        }
        if is("aof-write-alone") {
            self.local_disk = true;
            self.data_writeback = true;
            self.ssd = true;
            self.count += 3;
        }
        if is("aof-fsync-always") {
            self.relax_fsync_policy = true;
            self.count += 1;
        }
        if is("aof-fstat") || is("rdb-unlink-temp-file") {
            self.disk_contention = true;
            self.local_disk = true;
            self.count += 2;
        }
        if is("aof-rewrite-diff-write") || is("aof-rename") {
            self.write_load_info = true;
            self.data_writeback = true;
            self.ssd = true;
            self.local_disk = true;
            self.count += 4;
        }
        if is("expire-cycle") {
            self.hz = true;
            self.large_objects = true;
            self.count += 2;
        }
        if is("eviction-del") {
            self.large_objects = true;
            self.count += 1;
        }
        if is("eviction-cycle") {
            self.mass_eviction = true;
            self.count += 1;
        }
    }
}

/// The report, as Redis writes it.
pub fn report(events: &[(String, Series)], set: &Settings) -> String {
    let mut r = String::new();
    if events.is_empty() && set.threshold_ms == 0 {
        r.push_str(
            "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis \
             instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in \
             order to enable it. If we weren't in a deep space mission I'd suggest to take a \
             look at https://redis.io/topics/latency-monitor.\n",
        );
        return r;
    }
    let mut advice = Advice::default();
    for (n, (event, series)) in events.iter().enumerate() {
        if n == 0 {
            r.push_str(
                "Dave, I have observed latency spikes in this Redis instance. You don't mind \
                 talking about it, do you Dave?\n\n",
            );
        }
        let st = analyze(series, set.now);
        let _ = write!(
            r,
            "{}. {}: {} latency spikes (average {}ms, mean deviation {}ms, period {:.2} sec). \
             Worst all time event {}ms.",
            n + 1,
            event,
            st.samples,
            st.avg,
            st.mad,
            st.period as f64 / st.samples.max(1) as f64,
            series.max
        );
        if event.eq_ignore_ascii_case("fork") {
            let quality = if set.fork_rate < 10.0 {
                advice.better_vm = true;
                advice.count += 1;
                "terrible"
            } else if set.fork_rate < 25.0 {
                advice.better_vm = true;
                advice.count += 1;
                "poor"
            } else if set.fork_rate < 100.0 {
                "good"
            } else {
                "excellent"
            };
            let _ = write!(r, " Fork rate is {:.2} GB/sec ({quality}).", set.fork_rate);
        }
        advice.for_event(event, set);
        r.push('\n');
    }
    if set.anon_huge_bytes > 0 {
        advice.disable_thp = true;
        advice.count += 1;
    }
    if events.is_empty() && advice.count == 0 {
        r.push_str(
            "Dave, no latency spike was observed during the lifetime of this Redis instance, \
             not in the slightest bit. I honestly think you ought to sit down calmly, take a \
             stress pill, and think things over.\n",
        );
    } else if !events.is_empty() && advice.count == 0 {
        r.push_str(
            "\nWhile there are latency events logged, I'm not able to suggest any easy fix. \
             Please use the Redis community to get some help, providing this report in your \
             help request.\n",
        );
    } else {
        write_advice(&mut r, &advice, set);
    }
    r
}

fn write_advice(r: &mut String, a: &Advice, set: &Settings) {
    r.push_str("\nI have a few advices for you:\n\n");
    let threshold_us = set.threshold_ms.saturating_mul(1000);
    if a.better_vm {
        r.push_str(
            "- If you are using a virtual machine, consider upgrading it with a faster one \
             using a hypervisior that provides less latency during fork() calls. Xen is known \
             to have poor fork() performance. Even in the context of the same VM provider, \
             certain kinds of instances can execute fork faster than others.\n",
        );
    }
    if a.slowlog_enabled {
        let _ = writeln!(
            r,
            "- There are latency issues with potentially slow commands you are using. Try to \
             enable the Slow Log Redis feature using the command 'CONFIG SET \
             slowlog-log-slower-than {threshold_us}'. If the Slow log is disabled Redis is not \
             able to log slow commands execution for you."
        );
    }
    if a.slowlog_tuning {
        let _ = writeln!(
            r,
            "- Your current Slow Log configuration only logs events that are slower than your \
             configured latency monitor threshold. Please use 'CONFIG SET \
             slowlog-log-slower-than {threshold_us}'."
        );
    }
    if a.slowlog_inspect {
        r.push_str(
            "- Check your Slow Log to understand what are the commands you are running which \
             are too slow to execute. Please check https://redis.io/commands/slowlog for more \
             information.\n",
        );
    }
    if a.scheduler {
        r.push_str(
            "- The system is slow to execute Redis code paths not containing system calls. \
             This usually means the system does not provide Redis CPU time to run for long \
             periods. You should try to:\n  1) Lower the system load.\n  2) Use a computer / \
             VM just for Redis if you are running other software in the same system.\n  3) \
             Check if you have a \"noisy neighbour\" problem.\n  4) Check with 'redis-cli \
             --intrinsic-latency 100' what is the intrinsic latency in your system.\n  5) \
             Check if the problem is allocator-related by recompiling Redis with MALLOC=libc, \
             if you are using Jemalloc. However this may create fragmentation problems.\n",
        );
    }
    if a.local_disk {
        r.push_str(
            "- It is strongly advised to use local disks for persistence, especially if you \
             are using AOF. Remote disks provided by platform-as-a-service providers are known \
             to be slow.\n",
        );
    }
    if a.ssd {
        r.push_str(
            "- SSD disks are able to reduce fsync latency, and total time needed for \
             snapshotting and AOF log rewriting (resulting in smaller memory usage and smaller \
             final AOF rewrite buffer flushes). With extremely high write load SSD disks can be \
             a good option. However Redis should perform reasonably with high load using normal \
             disks. Use this advice as a last resort.\n",
        );
    }
    if a.data_writeback {
        r.push_str(
            "- Mounting ext3/4 filesystems with data=writeback can provide a performance boost \
             compared to data=ordered, however this mode of operation provides less guarantees, \
             and sometimes it can happen that after a hard crash the AOF file will have a \
             half-written command at the end and will require to be repaired before Redis \
             restarts.\n",
        );
    }
    if a.disk_contention {
        r.push_str(
            "- Try to lower the disk contention. This is often caused by other disk intensive \
             processes running in the same computer (including other Redis instances).\n",
        );
    }
    if a.no_appendfsync {
        r.push_str(
            "- Assuming from the point of view of data safety this is viable in your \
             environment, you could try to enable the 'no-appendfsync-on-rewrite' option, so \
             that fsync will not be performed while there is a child rewriting the AOF file or \
             producing an RDB file (the moment where there is high disk contention).\n",
        );
    }
    if a.relax_fsync_policy && set.fsync_always {
        r.push_str(
            "- Your fsync policy is set to 'always'. It is very hard to get good performances \
             with such a setup, if possible try to relax the fsync policy to 'onesec'.\n",
        );
    }
    if a.write_load_info {
        r.push_str(
            "- Latency during the AOF atomic rename operation or when the final difference is \
             flushed to the AOF file at the end of the rewrite, sometimes is caused by very high \
             write load, causing the AOF buffer to get very large. If possible try to send less \
             commands to accomplish the same work, or use Lua scripts to group multiple \
             operations into a single EVALSHA call.\n",
        );
    }
    if a.hz && set.hz < 100 {
        r.push_str(
            "- In order to make the Redis keys expiring process more incremental, try to set \
             the 'hz' configuration parameter to 100 using 'CONFIG SET hz 100'.\n",
        );
    }
    if a.large_objects {
        r.push_str(
            "- Deleting, expiring or evicting (because of maxmemory policy) large objects is a \
             blocking operation. If you have very large objects that are often deleted, \
             expired, or evicted, try to fragment those objects into multiple smaller objects.\n",
        );
    }
    if a.mass_eviction {
        r.push_str(
            "- Sudden changes to the 'maxmemory' setting via 'CONFIG SET', or allocation of \
             large objects via sets or sorted sets intersections, STORE option of SORT, Redis \
             Cluster large keys migrations (RESTORE command), may create sudden memory pressure \
             forcing the server to block trying to evict keys. \n",
        );
    }
    if a.disable_thp {
        r.push_str(
            "- I detected a non zero amount of anonymous huge pages used by your process. This \
             creates very serious latency events in different conditions, especially when \
             Redis is persisting on disk. To disable THP support use the command 'echo never > \
             /sys/kernel/mm/transparent_hugepage/enabled', make sure to also add it into \
             /etc/rc.local so that the command will be executed again after a reboot. Note \
             that even if you have already disabled THP, you still need to restart the Redis \
             process to get rid of the huge pages already created.\n",
        );
    }
}

/// `AnonHugePages` summed over `/proc/self/smaps`, in bytes (Redis's
/// `THPGetAnonHugePagesSize`); 0 where the file cannot be read.
pub fn anon_huge_pages_bytes() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    text.lines()
        .filter_map(|l| l.strip_prefix("AnonHugePages:"))
        .filter_map(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .sum::<u64>()
        * 1024
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::LatencyMonitor;

    fn settings(threshold_ms: i64) -> Settings {
        Settings {
            threshold_ms,
            slowlog_us: 10_000,
            hz: 10,
            fsync_always: false,
            anon_huge_bytes: 0,
            now: 1000,
            fork_rate: 0.5,
        }
    }

    #[test]
    fn nothing_to_report() {
        assert!(report(&[], &settings(0)).starts_with("I'm sorry, Dave, I can't do that."));
        assert!(
            report(&[], &settings(5)).starts_with("Dave, no latency spike was observed during")
        );
        let mut thp = settings(5);
        thp.anon_huge_bytes = 4096;
        assert!(report(&[], &thp).contains("\nI have a few advices for you:\n\n- I detected"));
    }

    #[test]
    fn a_slow_fork() {
        let m = LatencyMonitor::default();
        m.add_sample_at("fork", 12, 999);
        let r = report(&m.events(), &settings(5));
        assert!(r.contains(
            "1. fork: 1 latency spikes (average 12ms, mean deviation 0ms, period 1.00 sec). \
             Worst all time event 12ms. Fork rate is 0.50 GB/sec (terrible).\n\nI have a few \
             advices for you:\n\n- If you are using a virtual machine"
        ));
    }

    #[test]
    fn command_spikes_and_their_advice() {
        let m = LatencyMonitor::default();
        m.add_sample_at("command", 10, 990);
        m.add_sample_at("command", 20, 995);
        let r = report(&m.events(), &settings(5));
        assert_eq!(
            r,
            "Dave, I have observed latency spikes in this Redis instance. You don't mind \
             talking about it, do you Dave?\n\n1. command: 2 latency spikes (average 15ms, mean \
             deviation 5ms, period 5.00 sec). Worst all time event 20ms.\n\nI have a few \
             advices for you:\n\n- Your current Slow Log configuration only logs events that \
             are slower than your configured latency monitor threshold. Please use 'CONFIG SET \
             slowlog-log-slower-than 5000'.\n- Check your Slow Log to understand what are the \
             commands you are running which are too slow to execute. Please check \
             https://redis.io/commands/slowlog for more information.\n- Deleting, expiring or \
             evicting (because of maxmemory policy) large objects is a blocking operation. If \
             you have very large objects that are often deleted, expired, or evicted, try to \
             fragment those objects into multiple smaller objects.\n"
        );
    }
}
