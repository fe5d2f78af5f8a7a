//! The fsync probe: how long the disk under a folder takes to make a small write durable,
//! measured before the scenario runs, so that every latency figure stands next to the
//! disk it ran on (an ack waits for at least one such fsync under `durability = full`).

use crate::report::Report;
use hdrhistogram::Histogram;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Rounds of the probe: a 4 KiB write and an fdatasync each.
const ROUNDS: usize = 200;
const BLOCK: [u8; 4096] = [0x5a; 4096];

/// Fsync times in microseconds, and where they were measured.
pub struct Probe {
    pub folder: PathBuf,
    pub micros: Histogram<u64>,
}

/// Appends 4 KiB to a scratch file in `folder` and fdatasyncs it, [`ROUNDS`] times; the
/// file is removed afterwards. Blocking: run it off the async runtime.
pub fn probe(folder: &Path) -> std::io::Result<Probe> {
    let path = folder.join(format!(".banter-bench-fsync-{}", std::process::id()));
    let result = rounds(&path);
    let _ = std::fs::remove_file(&path);
    Ok(Probe {
        folder: folder.to_path_buf(),
        micros: result?,
    })
}

fn rounds(path: &Path) -> std::io::Result<Histogram<u64>> {
    let mut file = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(path)?;
    let mut micros =
        Histogram::new_with_bounds(1, 60_000_000, 3).expect("static histogram bounds are valid");
    for _ in 0..ROUNDS {
        let started = Instant::now();
        file.write_all(&BLOCK)?;
        file.sync_data()?;
        let _ = micros.record(started.elapsed().as_micros().max(1) as u64);
    }
    Ok(micros)
}

impl Probe {
    /// Adds `fsync_p50_ms` … `fsync_max_ms` and a note naming the folder to the report.
    pub fn add_to(&self, report: &mut Report) {
        report.latencies("fsync_", &self.micros);
        report.notes.push(format!(
            "disk: {ROUNDS} rounds of a 4 KiB write + fdatasync in {} before the run: \
             p50 {:.2} ms, p99 {:.2} ms",
            self.folder.display(),
            self.micros.value_at_quantile(0.5) as f64 / 1000.0,
            self.micros.value_at_quantile(0.99) as f64 / 1000.0,
        ));
    }
}
