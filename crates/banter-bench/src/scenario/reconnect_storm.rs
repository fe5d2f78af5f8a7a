//! `reconnect-storm`: N connected clients all drop at once; while they are away each of
//! their groups gets M new messages; then all reconnect, authenticate and resync from
//! their cursor with `sync`. Reports the time until every client has caught up and the
//! per-client time, and checks each client ends with exactly the acked history.
//!
//! Clients sit in groups of `group_size` members, one of whom is a writer that stays
//! online and sends the messages the others miss.

use super::device::{play, Wiring};
use super::{Pacing, Run};
use crate::fleet::{self, ensure_room_for, Fleet};
use crate::ledger::{DeviceLog, DeviceUnderTest, Received, SendKey};
use crate::progress::Counters;
use crate::report::{latency_histogram, Report};
use crate::seed::{Seeded, Seeder};
use banter_client::Connection;
use banter_protocol::{ClientFrame, ConversationId, ServerEvent};
use std::time::{Duration, Instant};

/// Entries asked for per `sync` page (the server's maximum).
const SYNC_PAGE: u32 = 500;
/// Unacked sends per writer while writing the missed messages.
const WRITE_WINDOW: usize = 64;
/// Longest the writing phase may take before the run gives up.
const WRITE_PHASE_MAX: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
pub struct Options {
    pub clients: usize,
    /// Messages each client misses while away.
    pub missed: usize,
    /// Members per group, the writer included.
    pub group_size: usize,
}

pub async fn run(run: &Run, options: &Options) -> anyhow::Result<Report> {
    anyhow::ensure!(options.clients > 0, "--clients must be at least 1");
    anyhow::ensure!(options.missed > 0, "--missed must be at least 1");
    anyhow::ensure!(options.group_size >= 2, "--group-size must be at least 2");
    let per_group = options.group_size - 1;
    let groups_count = options.clients.div_ceil(per_group);
    ensure_room_for(options.clients + groups_count)?;

    eprintln!(
        "seeding {} clients and {groups_count} writers in groups of {}",
        options.clients, options.group_size
    );
    let seeding = Instant::now();
    let seeder = Seeder::new(&run.target)?;
    let clients = seeder.users("r", options.clients).await?;
    let writers = seeder.users("w", groups_count).await?;
    let mut groups = Vec::with_capacity(groups_count);
    for (writer, members) in writers.iter().zip(clients.chunks(per_group)) {
        let mut ids = vec![writer.id];
        ids.extend(members.iter().map(|m| m.id));
        groups.push(seeder.group("storm", &ids).await?);
    }
    let seed_secs = seeding.elapsed().as_secs_f64();
    let group_of = |client: usize| groups[client / per_group];

    let fleet = run.fleet()?;
    eprintln!("connecting {} clients", options.clients);
    let online = fleet
        .connect_all(clients.iter().map(|c| c.token.clone()).collect())
        .await?;
    let writer_connections = fleet
        .connect_all(writers.iter().map(|w| w.token.clone()).collect())
        .await?;
    // Every client is up to date (the groups are new: cursor 0). Now all drop at once,
    // without a close handshake, like a network failure.
    drop(online);

    eprintln!(
        "writing {} messages into each of {groups_count} groups while the clients are away",
        options.missed
    );
    // The writers send until their quota is out; the duration only bounds a stuck run.
    let writing = Run {
        duration: WRITE_PHASE_MAX,
        ..run.clone()
    };
    let wiring = writer_connections
        .into_iter()
        .enumerate()
        .map(|(i, connection)| Wiring {
            connection,
            user: writers[i].id,
            conversations: vec![groups[i]],
            sends: Some((i as u32, groups[i])),
            rejoin: None,
        })
        .collect();
    anyhow::ensure!(options.missed <= u32::MAX as usize, "--missed is too large");
    let written = play(
        &writing,
        wiring,
        Pacing::Window(WRITE_WINDOW),
        Some(options.missed as u32),
    )
    .await;
    if !written.notes.is_empty() {
        anyhow::bail!(
            "writing the missed messages failed: {}",
            written.notes.join("; ")
        );
    }

    eprintln!("reconnect storm: {} clients", options.clients);
    let mut verdict = written.verdict;
    let history = written.history;
    let targets = history.targets();
    let cpu = crate::server::CpuMark::now(&run.target.server_pids);
    let storm = Instant::now();
    let tasks: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(i, client)| {
            let fleet = fleet.clone();
            let client: Seeded = client.clone();
            let group = group_of(i);
            let target = targets.get(&group).copied().unwrap_or(0);
            let counters = run.counters.clone();
            let drain = run.drain;
            tokio::spawn(async move {
                let began = Instant::now();
                let result = tokio::time::timeout(
                    drain + fleet::HANDSHAKE_TIMEOUT,
                    resync(&fleet, &client.token, group, 0, target),
                )
                .await;
                let took = began.elapsed();
                Counters::add(&counters.caught_up, 1);
                match result {
                    Ok(Ok(log)) => (log, took, None, Instant::now()),
                    Ok(Err(err)) => (
                        DeviceLog::default(),
                        took,
                        Some(err.to_string()),
                        Instant::now(),
                    ),
                    Err(_) => (
                        DeviceLog::default(),
                        took,
                        Some("did not catch up in time".to_owned()),
                        Instant::now(),
                    ),
                }
            })
        })
        .collect();
    let mut per_client = latency_histogram();
    let mut last_done = storm;
    let mut failures = 0;
    let mut first_failure = None;
    let mut resynced = 0u64;
    for (i, task) in tasks.into_iter().enumerate() {
        let (log, took, failure, done_at) = task.await?;
        let group = [group_of(i)];
        history.check(
            &DeviceUnderTest {
                log: &log,
                conversations: &group,
            },
            &mut verdict,
        );
        resynced += log
            .conversations
            .values()
            .map(|l| l.len() as u64)
            .sum::<u64>();
        let _ = per_client.record((took.as_micros() as u64).max(1));
        last_done = last_done.max(done_at);
        if let Some(failure) = failure {
            failures += 1;
            first_failure.get_or_insert(failure);
        }
    }
    let storm_secs = last_done.duration_since(storm).as_secs_f64();
    let (server_cpu_secs, bench_cpu_secs) = cpu.since(&run.target.server_pids);

    let mut report = Report::new("reconnect-storm");
    report.verdict = verdict;
    report.figure("clients", options.clients as u64);
    report.figure("connections", options.clients as u64);
    report.figure("missed_per_client", options.missed as u64);
    report.figure("groups", groups_count as u64);
    report.figure("resynced_messages", resynced);
    report.figure("caught_up_secs", (storm_secs * 1000.0).round() / 1000.0);
    report.rate("clients_per_sec", options.clients as u64, storm_secs);
    report.latencies("", &per_client);
    report.latencies("client_", &per_client);
    if let Some(server) = server_cpu_secs {
        report.figure("server_cpu_secs", (server * 100.0).round() / 100.0);
    }
    report.figure("bench_cpu_secs", (bench_cpu_secs * 100.0).round() / 100.0);
    report.figure("seed_secs", (seed_secs * 100.0).round() / 100.0);
    report.notes.push(format!(
        "{} clients in groups of {} (one writer each), {} missed messages each; p50_ms/p99_ms are per client, from the storm's start (all reconnect at once, at most --connect-concurrency handshakes in flight) to caught up",
        options.clients, options.group_size, options.missed
    ));
    if failures > 0 {
        report.notes.push(format!(
            "{failures} clients failed to resync, first: {}",
            first_failure.unwrap_or_default()
        ));
    }
    Ok(report)
}

/// Reconnects with `token` and pages through `sync` from `cursor` until `target`.
async fn resync(
    fleet: &Fleet,
    token: &str,
    group: ConversationId,
    cursor: i64,
    target: i64,
) -> anyhow::Result<DeviceLog> {
    let mut connection: Connection = fleet.connect(token).await?;
    let mut log = DeviceLog::default();
    let mut after = cursor;
    while after < target {
        connection
            .send_frame(&ClientFrame::Sync {
                id: "resync".to_owned(),
                conversation_id: group,
                after_seq: after,
                limit: Some(i64::from(SYNC_PAGE)),
            })
            .await?;
        loop {
            match connection.next_event(fleet::HANDSHAKE_TIMEOUT).await? {
                ServerEvent::Synced { messages, .. } => {
                    for message in messages {
                        after = after.max(message.seq);
                        log.push(
                            group,
                            Received {
                                seq: message.seq,
                                send: message.client_msg_id.as_deref().and_then(SendKey::parse),
                                latency_us: None,
                            },
                        );
                    }
                    break;
                }
                ServerEvent::Error { code, message, .. } => {
                    anyhow::bail!("sync refused: {}: {message}", code.as_str())
                }
                _ => {}
            }
        }
    }
    // A client that caught up goes on living; this one has shown what it needed to.
    drop(connection);
    Ok(log)
}
