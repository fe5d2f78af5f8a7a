//! `uploads`: N users each upload one file of S MiB at the same moment, streamed from
//! memory-light generators (the bench never holds a whole file). Reports the upload
//! throughput and the server's memory: its resident size before and at its peak while the
//! bodies stream (sampled every 50 ms), which should stay far below N × S. Verification:
//! every upload is answered `201` with its size, and each file is downloaded again and
//! compared byte for byte with what was sent; a mismatch or a failed upload counts as lost.

use super::Run;
use crate::report::Report;
use crate::seed::Seeder;
use crate::server::{rss_bytes, CpuMark};
use banter_client::Client;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes per generated chunk of a body.
const CHUNK_BYTES: usize = 256 * 1024;
/// How often the server's memory is sampled while the uploads run.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
pub struct Options {
    pub uploads: usize,
    pub size_mib: u64,
}

/// Byte `at` of upload `n`'s file: distinct per file, so content addressing stores each.
fn byte(n: usize, at: u64) -> u8 {
    (at.wrapping_mul(31).wrapping_add(n as u64 * 7 + (at >> 20))) as u8
}

fn chunk(n: usize, from: u64, len: usize) -> Vec<u8> {
    (0..len as u64).map(|i| byte(n, from + i)).collect()
}

/// Upload `n`'s body, `size` bytes, generated chunk by chunk as it is sent.
fn body(n: usize, size: u64) -> reqwest::Body {
    let chunks = (0..size.div_ceil(CHUNK_BYTES as u64)).map(move |i| {
        let from = i * CHUNK_BYTES as u64;
        let len = (size - from).min(CHUNK_BYTES as u64) as usize;
        Ok::<_, std::io::Error>(chunk(n, from, len))
    });
    reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))
}

pub async fn run(run: &Run, options: &Options) -> anyhow::Result<Report> {
    anyhow::ensure!(options.uploads > 0, "--uploads must be at least 1");
    anyhow::ensure!(options.size_mib > 0, "--size-mib must be at least 1");
    let size = options.size_mib * 1024 * 1024;
    eprintln!("seeding {} users", options.uploads);
    let users = Seeder::new(&run.target)?
        .users("u", options.uploads)
        .await?;
    // Memory is sampled on the first node: uploads all go there.
    let pid = run.target.server_pids.first().copied();
    let rss_before = pid.map(rss_bytes).transpose()?;

    // The peak of the server's memory while the uploads run.
    let peak = Arc::new(AtomicU64::new(rss_before.unwrap_or(0)));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = pid.map(|pid| {
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                if let Ok(rss) = rss_bytes(pid) {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(RSS_SAMPLE_EVERY).await;
            }
        })
    });

    eprintln!(
        "uploading {} files of {} MiB at once",
        options.uploads, options.size_mib
    );
    let cpu = CpuMark::now(&run.target.server_pids);
    let started = Instant::now();
    let clients: Vec<Client> = users
        .iter()
        .map(|user| {
            Client::new(&run.target.url).map(|c| {
                c.with_token(user.token.clone())
                    .with_timeout(Duration::from_secs(3600))
            })
        })
        .collect::<Result<_, _>>()?;
    let tasks: Vec<_> = clients
        .iter()
        .cloned()
        .enumerate()
        .map(|(n, client)| {
            tokio::spawn(async move {
                let answer = client.upload(&format!("file{n}.bin"), body(n, size)).await;
                (answer, Instant::now())
            })
        })
        .collect();
    let mut uploaded = Vec::new();
    let mut failed = 0u64;
    let mut last_done = started;
    for task in tasks {
        match task.await? {
            (Ok(upload), at) if upload.size as u64 == size => {
                uploaded.push(upload);
                last_done = last_done.max(at);
            }
            (Ok(upload), _) => {
                eprintln!("an upload came back with {} bytes, not {size}", upload.size);
                failed += 1;
            }
            (Err(err), _) => {
                eprintln!("an upload failed: {err}");
                failed += 1;
            }
        }
    }
    let upload_secs = last_done.duration_since(started).as_secs_f64();
    let (server_cpu, _) = cpu.since(&run.target.server_pids);
    done.store(true, Ordering::Relaxed);
    if let Some(sampler) = sampler {
        sampler.await?;
    }

    eprintln!("downloading every file again to compare");
    let mut diverged = 0u64;
    for (n, upload) in uploaded.iter().enumerate() {
        let download = clients[n].download(&upload.id.0, false, None).await?;
        let same = download.status == 200
            && download.bytes.len() as u64 == size
            && download
                .bytes
                .chunks(CHUNK_BYTES)
                .enumerate()
                .all(|(i, part)| part == chunk(n, (i * CHUNK_BYTES) as u64, part.len()).as_slice());
        if !same {
            diverged += 1;
        }
    }

    let mut report = Report::new("uploads");
    report.verdict.lost = failed;
    report.verdict.diverged = diverged;
    report.verdict.devices = options.uploads as u64;
    report.verdict.devices_converged = uploaded.len() as u64 - diverged;
    let total_bytes = size * uploaded.len() as u64;
    report.figure("uploads", options.uploads as u64);
    report.figure("file_bytes", size);
    report.figure("upload_secs", (upload_secs * 100.0).round() / 100.0);
    report.figure(
        "upload_mib_per_sec",
        ((total_bytes as f64 / 1048576.0 / upload_secs) * 10.0).round() / 10.0,
    );
    if let Some(cpu) = server_cpu {
        report.figure("server_cpu_secs", (cpu * 100.0).round() / 100.0);
        report.figure(
            "server_cpu_ms_per_mib",
            ((cpu * 1000.0 / (total_bytes as f64 / 1048576.0)) * 100.0).round() / 100.0,
        );
    }
    match rss_before {
        Some(before) => {
            let peak = peak.load(Ordering::Relaxed);
            report.figure("server_rss_bytes_before", before);
            report.figure("server_rss_bytes_peak", peak);
            report.figure("server_rss_growth_bytes", peak.saturating_sub(before));
        }
        None => report
            .notes
            .push("server memory not measured: pass --server-pid for a local server".into()),
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_files_differ_and_chunks_line_up() {
        assert_ne!(chunk(0, 0, 64), chunk(1, 0, 64));
        let whole = chunk(3, 0, 1000);
        assert_eq!(&whole[600..], chunk(3, 600, 400).as_slice());
    }
}
