//! CPU time and resident memory of a process, from `/proc/<pid>/stat` (through `procfs`).

use procfs::WithCurrentSystemInfo as _;

/// What a process has used so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// User plus system CPU time, in seconds.
    pub cpu_seconds: f64,
    /// Resident set size, in bytes.
    pub resident_bytes: u64,
}

impl Usage {
    /// The usage of process `pid`; an error once it has exited and been reaped.
    pub fn of(pid: u32) -> anyhow::Result<Self> {
        let stat = procfs::process::Process::new(i32::try_from(pid)?)?.stat()?;
        let ticks = (stat.utime + stat.stime) as f64;
        Ok(Self { cpu_seconds: ticks / procfs::ticks_per_second() as f64, resident_bytes: stat.rss_bytes().get() })
    }
}

/// CPU seconds (user + system) process `pid` has used.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    Ok(Usage::of(pid)?.cpu_seconds)
}

/// Resident set size of process `pid`, in bytes.
pub fn resident_bytes(pid: u32) -> anyhow::Result<u64> {
    Ok(Usage::of(pid)?.resident_bytes)
}

#[cfg(test)]
mod tests {
    use std::hint::black_box;
    use std::time::{Duration, Instant};

    use super::*;

    fn process_cpu_clock() -> Duration {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
        Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
    }

    #[test]
    fn cpu_seconds_follow_the_process_cpu_clock() {
        let before = cpu_seconds(std::process::id()).expect("own stat");
        let (clock, started) = (process_cpu_clock(), Instant::now());
        let mut x = 0u64;
        // Bounded: until the kernel's CPU clock counts 200 ms, for at most 10 s on a busy machine.
        while process_cpu_clock() - clock < Duration::from_millis(200) && started.elapsed() < Duration::from_secs(10) {
            x = black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
        let used = (process_cpu_clock() - clock).as_secs_f64();
        let after = cpu_seconds(std::process::id()).expect("own stat");
        // /proc counts in 10 ms ticks: allow two of them.
        assert!(after - before >= used - 0.02, "{before} → {after}, the CPU clock counted {used}");
    }

    #[test]
    fn resident_bytes_count_memory_the_process_touches() {
        let before = resident_bytes(std::process::id()).expect("own stat");
        let touched = black_box(vec![1u8; 64 << 20]);
        let after = resident_bytes(std::process::id()).expect("own stat");
        assert!(after >= before + (48 << 20), "{before} → {after} after touching 64 MiB");
        drop(touched);
    }

    #[test]
    fn a_process_that_does_not_exist_is_an_error() {
        assert!(Usage::of(u32::MAX >> 1).is_err());
    }
}
