//! What the bench can read about the server process when it runs on this machine.

/// The resident set size of process `pid`, from `/proc/PID/status` (Linux).
pub fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("reading {path} (is --server-pid a local process?): {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| anyhow::anyhow!("{path} has no VmRSS line"))
}

/// The resident set sizes of the server processes, summed; `None` without any.
pub fn total_rss_bytes(pids: &[u32]) -> anyhow::Result<Option<u64>> {
    if pids.is_empty() {
        return Ok(None);
    }
    let mut total = 0;
    for &pid in pids {
        total += rss_bytes(pid)?;
    }
    Ok(Some(total))
}

/// CPU time (user + system) process `pid` has used so far, from `/proc/PID/stat`.
pub fn cpu_secs(pid: u32) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat =
        std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("reading {path}: {e}"))?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow::anyhow!("{path} is malformed"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    Ok(ticks as f64 / CLOCK_TICKS_PER_SEC)
}

/// `sysconf(_SC_CLK_TCK)`, which is 100 on every Linux architecture this runs on.
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// CPU seconds of the server (when local) and of this process, to say how a run shared
/// the machine's cores.
#[derive(Debug, Clone, Copy)]
pub struct CpuMark {
    server: Option<f64>,
    bench: f64,
}

impl CpuMark {
    /// The CPU used so far by the server processes (summed; `None` without any, or if
    /// one cannot be read) and by this one.
    pub fn now(server_pids: &[u32]) -> CpuMark {
        let server = if server_pids.is_empty() {
            None
        } else {
            server_pids
                .iter()
                .map(|&pid| cpu_secs(pid).ok())
                .sum::<Option<f64>>()
        };
        CpuMark {
            server,
            bench: cpu_secs(std::process::id()).unwrap_or(0.0),
        }
    }

    /// `(server, bench)` CPU seconds used since `self`.
    pub fn since(&self, server_pids: &[u32]) -> (Option<f64>, f64) {
        let now = CpuMark::now(server_pids);
        (
            now.server.zip(self.server).map(|(b, a)| b - a),
            now.bench - self.bench,
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process_rss() {
        let rss = super::rss_bytes(std::process::id()).unwrap();
        assert!(
            rss > 1024 * 1024,
            "a test process uses more than 1 MiB: {rss}"
        );
    }
}
