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
