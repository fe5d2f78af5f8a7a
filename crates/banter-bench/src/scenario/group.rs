//! `group`: one sender (or several) into one group whose members are all online. The
//! figure that matters is fan-out: deliveries per second, and how long the last member
//! waits for each message.

use super::device::{play, Rejoin, Wiring};
use super::{Pacing, Run};
use crate::fleet::ensure_room_for;
use crate::report::{latency_histogram, Report};
use crate::seed::Seeder;
use std::collections::HashMap;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct Options {
    pub members: usize,
    /// The first `senders` members send.
    pub senders: usize,
    pub devices: usize,
    pub window: usize,
    pub rate: Option<f64>,
    /// A device whose connection is lost reconnects to the next node and catches up,
    /// instead of ending (see [`device`](super::device)).
    pub failover: bool,
}

pub async fn run(run: &Run, options: &Options) -> anyhow::Result<Report> {
    anyhow::ensure!(options.members >= 2, "--members must be at least 2");
    anyhow::ensure!(
        (1..=options.members).contains(&options.senders),
        "--senders must be between 1 and --members"
    );
    anyhow::ensure!(options.devices > 0, "--devices must be at least 1");
    let connections = options.members * options.devices;
    ensure_room_for(connections)?;
    let pacing = Pacing::new(options.rate, options.senders, options.window)?;

    eprintln!("seeding a group of {} members", options.members);
    let seeding = Instant::now();
    let seeder = Seeder::new(&run.target)?;
    let users = seeder.users("g", options.members).await?;
    let ids: Vec<_> = users.iter().map(|u| u.id).collect();
    let group = seeder.group("banter-bench", &ids).await?;
    let seed_secs = seeding.elapsed().as_secs_f64();

    let fleet = run.fleet()?;
    let opened = run.open_devices(&fleet, &users, options.devices).await?;
    let wiring = opened
        .into_iter()
        .enumerate()
        .map(|(i, placed)| {
            let member = i / options.devices;
            let sends = member < options.senders && i % options.devices == 0;
            Wiring {
                connection: placed.connection,
                user: users[member].id,
                conversations: vec![group],
                sends: sends.then_some((member as u32, group)),
                rejoin: options.failover.then(|| Rejoin {
                    fleet: fleet.clone(),
                    token: users[member].token.clone(),
                    node: placed.node,
                }),
            }
        })
        .collect();

    eprintln!("sending for {:?} ({})", run.duration, pacing.describe());
    let played = play(run, wiring, pacing, None).await;

    // For each message, the latency of the member who got it last.
    let mut slowest: HashMap<i64, u32> = HashMap::new();
    for outcome in &played.outcomes {
        for received in outcome.log.conversations.values().flatten() {
            if let Some(us) = received.latency_us {
                let entry = slowest.entry(received.seq).or_default();
                *entry = (*entry).max(us);
            }
        }
    }
    let mut last_member = latency_histogram();
    for us in slowest.values() {
        let _ = last_member.record(u64::from(*us).max(1));
    }

    let mut report = Report::new("group");
    report.figure("members", options.members as u64);
    report.figure("senders", options.senders as u64);
    report.figure("devices_per_member", options.devices as u64);
    report.figure("connections", connections as u64);
    if let Some(rate) = options.rate {
        report.figure("offered_msgs_per_sec", rate);
    }
    // The top-level latency of a group run is the latency to the last member.
    report.latencies("", &last_member);
    report.latencies("last_member_", &last_member);
    played.figures(&mut report);
    report.figure("seed_secs", (seed_secs * 100.0).round() / 100.0);
    report.notes.push(format!(
        "{} members, {} sender(s), {}; p50_ms/p99_ms are the latency to the last member",
        options.members,
        options.senders,
        pacing.describe()
    ));
    report.notes.extend(played.notes);
    Ok(report)
}
