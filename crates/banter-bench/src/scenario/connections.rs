//! `connections`: N authenticated connections held idle. Reports the server's memory
//! before and after (for a local server, from `/proc/PID/status`) and what each
//! connection costs it. At the end every connection must still answer a ping: one that
//! dropped or went silent counts as lost.

use super::Run;
use crate::fleet::ensure_room_for;
use crate::report::Report;
use crate::seed::Seeder;
use crate::server::{rss_bytes, total_rss_bytes};
use banter_client::{ClientError, Connection};
use banter_protocol::{ClientFrame, ServerEvent};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a held connection may take to answer the closing ping.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Options {
    pub connections: usize,
}

pub async fn run(run: &Run, options: &Options) -> anyhow::Result<Report> {
    anyhow::ensure!(options.connections > 0, "--connections must be at least 1");
    ensure_room_for(options.connections)?;
    eprintln!("seeding {} users", options.connections);
    let seeding = Instant::now();
    let users = Seeder::new(&run.target)?
        .users("c", options.connections)
        .await?;
    let seed_secs = seeding.elapsed().as_secs_f64();

    let rss_before = total_rss_bytes(&run.target.server_pids)?;
    eprintln!("opening {} connections", options.connections);
    let fleet = run.fleet()?;
    let opening = Instant::now();
    let opened = fleet
        .connect_all(users.iter().map(|u| u.token.clone()).collect())
        .await?;
    let connect_secs = opening.elapsed().as_secs_f64();

    let (stop_tx, stop_rx) = watch::channel(false);
    let holders: Vec<_> = opened
        .into_iter()
        .map(|connection| tokio::spawn(hold(connection, stop_rx.clone())))
        .collect();
    eprintln!(
        "holding {} connections for {:?}",
        options.connections, run.duration
    );
    tokio::time::sleep(run.duration).await;
    let rss_after = total_rss_bytes(&run.target.server_pids)?;
    let _ = stop_tx.send(true);
    let mut alive = 0u64;
    for holder in holders {
        if matches!(holder.await, Ok(true)) {
            alive += 1;
        }
    }

    let mut report = Report::new("connections");
    let held = options.connections as u64;
    report.verdict.lost = held - alive;
    report.verdict.devices = held;
    report.verdict.devices_converged = alive;
    report.figure("connections", held);
    report.figure("alive_at_end", alive);
    report.figure("connect_secs", round2(connect_secs));
    report.rate("connects_per_sec", held, connect_secs);
    report.figure("held_secs", run.duration.as_secs_f64());
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        report.figure("server_rss_bytes_before", before);
        report.figure("server_rss_bytes", after);
        report.figure(
            "server_bytes_per_connection",
            after.saturating_sub(before) / held,
        );
    } else {
        report
            .notes
            .push("server memory not measured: pass --server-pid for a local server".into());
    }
    if let Ok(own) = rss_bytes(std::process::id()) {
        report.figure("bench_rss_bytes", own);
    }
    report.figure("seed_secs", round2(seed_secs));
    Ok(report)
}

/// Keeps one connection open (answering the server's pings) until told to stop, then
/// checks it still works with an application-level ping. True if it answered.
async fn hold(mut connection: Connection, mut stop: watch::Receiver<bool>) -> bool {
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            event = connection.next_event(Duration::from_secs(3600)) => match event {
                Ok(_) | Err(ClientError::Timeout) => {}
                Err(_) => return false,
            },
        }
    }
    let probe = ClientFrame::Ping {
        id: "probe".to_owned(),
    };
    if connection.send_frame(&probe).await.is_err() {
        return false;
    }
    let deadline = tokio::time::Instant::now() + PROBE_TIMEOUT;
    loop {
        match connection.next_event_until(deadline).await {
            Ok(ServerEvent::Pong { id }) if id == "probe" => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
