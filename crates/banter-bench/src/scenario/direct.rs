//! `direct`: pairs of friends exchange one-to-one messages. Each user sends from its
//! first device into the pair's conversation; every device of both users receives every
//! message (the sender's own devices too), and each must end with the whole history.

use super::device::{play, Rejoin, Wiring};
use super::{Pacing, Run};
use crate::fleet::ensure_room_for;
use crate::report::Report;
use crate::seed::Seeder;
use banter_protocol::UserId;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct Options {
    pub pairs: usize,
    /// Connections per user; the first one sends.
    pub devices: usize,
    /// Unacked sends per sender in closed loop.
    pub window: usize,
    /// Offered messages per second in total (open loop) instead of a closed loop.
    pub rate: Option<f64>,
    /// A device whose connection is lost reconnects to the next node and catches up,
    /// instead of ending (see [`device`](super::device)).
    pub failover: bool,
}

pub async fn run(run: &Run, options: &Options) -> anyhow::Result<Report> {
    anyhow::ensure!(options.pairs > 0, "--pairs must be at least 1");
    anyhow::ensure!(options.devices > 0, "--devices must be at least 1");
    let users_count = options.pairs * 2;
    let connections = users_count * options.devices;
    ensure_room_for(connections)?;
    let pacing = Pacing::new(options.rate, users_count, options.window)?;

    eprintln!(
        "seeding {users_count} users in {} friend pairs",
        options.pairs
    );
    let seeding = Instant::now();
    let seeder = Seeder::new(&run.target)?;
    let users = seeder.users("d", users_count).await?;
    let pairs: Vec<[UserId; 2]> = users.chunks(2).map(|p| [p[0].id, p[1].id]).collect();
    let conversations = seeder.friendships(&pairs).await?;
    let seed_secs = seeding.elapsed().as_secs_f64();

    let fleet = run.fleet()?;
    let opened = run.open_devices(&fleet, &users, options.devices).await?;
    let wiring = opened
        .into_iter()
        .enumerate()
        .map(|(i, placed)| {
            let user_index = i / options.devices;
            let conversation = conversations[user_index / 2];
            Wiring {
                connection: placed.connection,
                user: users[user_index].id,
                conversations: vec![conversation],
                sends: (i % options.devices == 0).then_some((user_index as u32, conversation)),
                rejoin: options.failover.then(|| Rejoin {
                    fleet: fleet.clone(),
                    token: users[user_index].token.clone(),
                    node: placed.node,
                }),
            }
        })
        .collect();

    eprintln!("sending for {:?} ({})", run.duration, pacing.describe());
    let played = play(run, wiring, pacing, None).await;

    let mut report = Report::new("direct");
    report.figure("pairs", options.pairs as u64);
    report.figure("devices_per_user", options.devices as u64);
    report.figure("connections", connections as u64);
    if let Some(rate) = options.rate {
        report.figure("offered_msgs_per_sec", rate);
    }
    // The top-level latency of a direct run is the ack latency.
    report.latencies("", &played.ack_latency);
    played.figures(&mut report);
    report.figure("seed_secs", (seed_secs * 100.0).round() / 100.0);
    report.notes.push(format!(
        "{} pairs, {} devices per user, {}; p50_ms/p99_ms are ack latency",
        options.pairs,
        options.devices,
        pacing.describe()
    ));
    report.notes.extend(played.notes);
    Ok(report)
}
