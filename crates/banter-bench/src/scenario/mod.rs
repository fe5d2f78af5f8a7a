//! One module per workload. Each seeds what it needs under the run's prefix, opens its
//! connections through the [`Fleet`](crate::fleet::Fleet), runs, verifies with the
//! [`ledger`](crate::ledger), and returns a [`Report`](crate::report::Report).

pub mod connections;
pub mod device;
pub mod direct;
pub mod group;
pub mod reconnect_storm;
pub mod uploads;

use crate::fleet::{Fleet, Placed};
use crate::progress::Counters;
use crate::seed::Seeded;
use crate::{Clock, Target};
use std::sync::Arc;
use std::time::Duration;

/// What every scenario gets.
#[derive(Clone)]
pub struct Run {
    pub target: Target,
    /// How long the measured phase lasts (sending, or holding connections).
    pub duration: Duration,
    /// After the measured phase, how long to wait for the last acks and deliveries before
    /// whatever is still missing counts as lost.
    pub drain: Duration,
    /// Bytes of text per message.
    pub text_bytes: usize,
    pub clock: Clock,
    pub counters: Arc<Counters>,
}

/// How a sender paces itself.
#[derive(Debug, Clone, Copy)]
pub enum Pacing {
    /// Closed loop: keep this many sends unacked at all times.
    Window(usize),
    /// Open loop: one send every `interval`, whatever the acks do, with at most
    /// `window_max` unacked (the server stops reading a connection beyond its own cap).
    Rate {
        interval: Duration,
        window_max: usize,
    },
}

impl Pacing {
    /// `rate` messages per second in total spread over `senders`, or a closed loop.
    pub fn new(rate: Option<f64>, senders: usize, window: usize) -> anyhow::Result<Pacing> {
        match rate {
            None => Ok(Pacing::Window(window.max(1))),
            Some(rate) if rate > 0.0 => Ok(Pacing::Rate {
                interval: Duration::from_secs_f64(senders as f64 / rate),
                window_max: RATE_WINDOW_MAX,
            }),
            Some(rate) => anyhow::bail!("--rate must be positive, got {rate}"),
        }
    }

    /// How long after the start sender `k` of `senders` sends first: in open loop the
    /// senders take turns through one interval, so that together they send one message
    /// every 1/R s instead of all at the same moment once an interval.
    pub fn first_send_after(&self, k: usize, senders: usize) -> Duration {
        match self {
            Pacing::Window(_) => Duration::ZERO,
            Pacing::Rate { interval, .. } => interval.mul_f64(k as f64 / senders.max(1) as f64),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Pacing::Window(w) => format!("closed loop, {w} unacked per sender"),
            Pacing::Rate { interval, .. } => format!(
                "open loop, one send every {:.3} ms per sender",
                interval.as_secs_f64() * 1000.0
            ),
        }
    }
}

/// Unacked sends one open-loop sender may have; the server's default
/// `inflight_sends_per_connection_max`.
const RATE_WINDOW_MAX: usize = 256;

impl Run {
    /// The fleet that opens this run's connections.
    pub fn fleet(&self) -> anyhow::Result<Arc<Fleet>> {
        Fleet::new(
            &self.target.nodes,
            self.target.connect_concurrency,
            self.counters.clone(),
        )
    }

    /// `devices` connections for each of `users`, user by user: the connection of user
    /// `u`, device `d` is at `u * devices + d`.
    pub async fn open_devices(
        &self,
        fleet: &Arc<Fleet>,
        users: &[Seeded],
        devices: usize,
    ) -> anyhow::Result<Vec<Placed>> {
        eprintln!("opening {} connections", users.len() * devices);
        let tokens = users
            .iter()
            .flat_map(|u| std::iter::repeat_n(u.token.clone(), devices))
            .collect();
        fleet.connect_all_placed(tokens).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_loop_senders_take_turns_through_one_interval() {
        // 200 senders at 10,000 msgs/s: each every 20 ms, one of them every 100 µs.
        let pacing = Pacing::new(Some(10_000.0), 200, 4).unwrap();
        let firsts: Vec<Duration> = (0..200).map(|k| pacing.first_send_after(k, 200)).collect();
        assert_eq!(firsts[0], Duration::ZERO);
        assert_eq!(firsts[1], Duration::from_micros(100));
        assert_eq!(firsts[199], Duration::from_micros(19_900));
        assert!(firsts
            .windows(2)
            .all(|w| w[1] - w[0] == Duration::from_micros(100)));
    }

    #[test]
    fn closed_loop_senders_all_start_at_once() {
        let pacing = Pacing::new(None, 200, 4).unwrap();
        assert_eq!(pacing.first_send_after(150, 200), Duration::ZERO);
    }
}
