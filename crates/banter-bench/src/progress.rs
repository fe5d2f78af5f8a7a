//! Live counters that every task bumps, and a ticker that prints them once a second on
//! stderr, so a long run shows where it is (the table and JSON come at the end).

use crate::Clock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Counters {
    pub connected: AtomicU64,
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub delivered: AtomicU64,
    pub caught_up: AtomicU64,
    /// The slowest ack since the ticker last printed, in µs: when in a run the stalls were.
    pub slowest_ack_us: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn ack_took(&self, us: u64) {
        self.slowest_ack_us.fetch_max(us, Ordering::Relaxed);
    }

    fn snapshot(&self) -> [u64; 5] {
        [
            self.connected.load(Ordering::Relaxed),
            self.sent.load(Ordering::Relaxed),
            self.acked.load(Ordering::Relaxed),
            self.delivered.load(Ordering::Relaxed),
            self.caught_up.load(Ordering::Relaxed),
        ]
    }
}

/// Prints the counters every second until dropped.
pub struct Ticker {
    task: tokio::task::JoinHandle<()>,
}

impl Ticker {
    pub fn start(label: &'static str, counters: Arc<Counters>, clock: Clock) -> Ticker {
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            let mut previous = counters.snapshot();
            loop {
                tick.tick().await;
                let now = counters.snapshot();
                let [connected, sent, acked, delivered, caught_up] = now;
                let slowest_ms = counters.slowest_ack_us.swap(0, Ordering::Relaxed) as f64 / 1000.0;
                eprintln!(
                    "[{:6.1}s] {label}: connected {connected} · sent {sent} · acked {acked} (+{}/s, slowest {slowest_ms:.1} ms) · delivered {delivered} (+{}/s) · caught up {caught_up}",
                    clock.elapsed().as_secs_f64(),
                    acked - previous[2],
                    delivered - previous[3],
                );
                previous = now;
            }
        });
        Ticker { task }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.task.abort();
    }
}
