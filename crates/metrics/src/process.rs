//! The standard process metrics, under the names every Prometheus client library gives them
//! (`process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_open_fds`, `process_max_fds`,
//! `process_start_time_seconds`), read from `/proc` at each scrape. Linux only: elsewhere they are left out.
//!
//! A handful of small text files is all it takes, so they are parsed here rather than through a crate (`procfs`
//! would add several crates to the build for five numbers). A file that cannot be read or parsed leaves its
//! metrics out of that scrape rather than failing it.

use std::fs;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Clock ticks per second in `/proc`'s times (`USER_HZ`): 100 on every architecture Linux supports today, part
/// of its user-space ABI. Prometheus' own Go client (procfs) uses the same constant instead of asking `sysconf`,
/// which would take unsafe code or another crate here.
const USER_HZ: f64 = 100.0;

/// Reads `/proc/self` when a scrape encodes it.
#[derive(Debug)]
pub(crate) struct ProcessCollector;

/// What one scrape read; `None` for what could not be read.
#[derive(Debug, Default, PartialEq)]
struct Sample {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<u64>,
    open_fds: Option<u64>,
    max_fds: Option<u64>,
    start_time_seconds: Option<f64>,
}

impl Sample {
    fn read() -> Self {
        let stat = fs::read_to_string("/proc/self/stat").ok();
        let times = stat.as_deref().and_then(parse_stat);
        let boot_time = fs::read_to_string("/proc/stat").ok().as_deref().and_then(parse_boot_time);
        Self {
            cpu_seconds: times.map(|times| times.cpu_ticks as f64 / USER_HZ),
            resident_bytes: fs::read_to_string("/proc/self/status").ok().as_deref().and_then(parse_resident_bytes),
            // The directory's own descriptor is among those counted, as in the other client libraries.
            open_fds: fs::read_dir("/proc/self/fd").ok().map(|entries| entries.count() as u64),
            max_fds: fs::read_to_string("/proc/self/limits").ok().as_deref().and_then(parse_max_fds),
            start_time_seconds: times
                .zip(boot_time)
                .map(|(times, boot)| boot as f64 + times.start_ticks as f64 / USER_HZ),
        }
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let sample = Sample::read();
        if let Some(seconds) = sample.cpu_seconds {
            let counter = ConstCounter::new(seconds);
            counter.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                counter.metric_type(),
            )?)?;
        }
        if let Some(bytes) = sample.resident_bytes {
            gauge(&mut encoder, "process_resident_memory_bytes", "Resident memory size in bytes", bytes)?;
        }
        if let Some(open) = sample.open_fds {
            gauge(&mut encoder, "process_open_fds", "Number of open file descriptors", open)?;
        }
        if let Some(max) = sample.max_fds {
            gauge(&mut encoder, "process_max_fds", "Maximum number of open file descriptors (the soft limit)", max)?;
        }
        if let Some(start) = sample.start_time_seconds {
            gauge(
                &mut encoder,
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                start,
            )?;
        }
        Ok(())
    }
}

/// Encodes one gauge whose value was read just now.
fn gauge<N: EncodeGaugeValue + std::fmt::Debug + Send + Sync + 'static>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: N,
) -> Result<(), std::fmt::Error> {
    let gauge = ConstGauge::new(value);
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

/// CPU time and start time from `/proc/self/stat`, in clock ticks.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Times {
    /// User plus system time.
    cpu_ticks: u64,
    /// When the process started, after boot.
    start_ticks: u64,
}

/// `/proc/<pid>/stat`: `pid (comm) state ppid …`. The command name may hold spaces and parentheses, so the fields
/// are counted from the last `)`: `utime` and `stime` are fields 14 and 15, `starttime` field 22 (proc(5)).
fn parse_stat(text: &str) -> Option<Times> {
    let (_, after_name) = text.rsplit_once(')')?;
    // Field 3 (the state) is the first after the name.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |number: usize| fields.get(number - 3)?.parse::<u64>().ok();
    Some(Times { cpu_ticks: field(14)?.checked_add(field(15)?)?, start_ticks: field(22)? })
}

/// The `btime` line of `/proc/stat`: when the system booted, in seconds since the epoch.
fn parse_boot_time(text: &str) -> Option<u64> {
    text.lines().find_map(|line| line.strip_prefix("btime ")?.trim().parse().ok())
}

/// The `VmRSS:` line of `/proc/self/status`, in kB (kibibytes).
fn parse_resident_bytes(text: &str) -> Option<u64> {
    let line = text.lines().find_map(|line| line.strip_prefix("VmRSS:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

/// The soft limit on the `Max open files` line of `/proc/self/limits`; `None` when unlimited.
fn parse_max_fds(text: &str) -> Option<u64> {
    let line = text.lines().find_map(|line| line.strip_prefix("Max open files"))?;
    line.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_are_read_by_field() {
        // A command name with a space and a parenthesis, as a process may give itself.
        let stat = "4242 (hook relay) x) S 1 4242 4242 0 -1 4194560 2000 0 0 0 \
                    250 75 0 0 20 0 9 0 123456 100000000 3000 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1";
        assert_eq!(parse_stat(stat), Some(Times { cpu_ticks: 325, start_ticks: 123456 }));
        assert_eq!(parse_stat("4242 (truncated) S 1"), None);
        assert_eq!(parse_boot_time("cpu  1 2 3\nbtime 1765000000\nprocesses 9\n"), Some(1_765_000_000));
        assert_eq!(parse_resident_bytes("Name:\thookrelay\nVmRSS:\t   20480 kB\nThreads:\t9\n"), Some(20480 * 1024));
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             63459                63459                processes \n\
                      Max open files            65536                524288               files     \n";
        assert_eq!(parse_max_fds(limits), Some(65536));
        assert_eq!(parse_max_fds("Max open files            unlimited            unlimited            files\n"), None);
    }

    #[test]
    fn this_process_is_read_from_proc() {
        let sample = Sample::read();
        assert!(sample.cpu_seconds.is_some_and(|cpu| cpu >= 0.0), "{sample:?}");
        assert!(sample.resident_bytes.is_some_and(|rss| rss > 1024 * 1024), "{sample:?}");
        let (open, max) = (sample.open_fds.expect("open fds"), sample.max_fds.expect("max fds"));
        assert!(open >= 3 && open <= max, "{sample:?}");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs_f64();
        // Started within the last day, and not in the future (give or take a tick and a rounded boot time).
        assert!(
            sample.start_time_seconds.is_some_and(|start| start > now - 86_400.0 && start <= now + 1.0),
            "{sample:?}"
        );
    }
}
