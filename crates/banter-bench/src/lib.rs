//! `banter-bench`: drives a running Banter server over the real protocol and proves, while
//! it measures, that nothing was lost, duplicated or reordered.
//!
//! The pieces, in the order a run uses them:
//! - [`seed`] creates users, friendships and groups through the admin API, in bulk;
//! - [`fleet`] opens many authenticated connections from one process, spread over
//!   127.0.0.0/8 source addresses, within the process's open-file limit;
//! - [`scenario`] holds one module per workload (`connections`, `direct`, `group`,
//!   `reconnect_storm`), each returning a [`report::Report`];
//! - [`ledger`] is the verification: what the server acked is the truth, and every
//!   device's log of received messages is checked against it;
//! - [`report`] turns figures and counts into a table and a JSON file; [`progress`]
//!   prints what is happening while it runs.

pub mod disk;
pub mod fleet;
pub mod ledger;
pub mod progress;
pub mod report;
pub mod scenario;
pub mod seed;
pub mod server;

use std::time::{Duration, Instant};

/// Where the server is and how the bench may act on it.
#[derive(Debug, Clone)]
pub struct Target {
    /// `http://host:port` of the server, or of the first node of a cluster: seeding and
    /// uploads go there.
    pub url: String,
    /// Every node's URL (`url` first); connections are spread over them in turn.
    pub nodes: Vec<String>,
    /// The server's `admin_token`, for seeding.
    pub admin_token: String,
    /// The server's process ids (one per node), when it runs on this machine: memory and
    /// CPU are read from `/proc/PID/…` and summed over them.
    pub server_pids: Vec<u32>,
    /// Prefix of seeded usernames, so several runs (or several bench processes) against
    /// one server do not collide.
    pub prefix: String,
    /// Handshakes in flight at once while opening connections.
    pub connect_concurrency: usize,
}

/// The time base shared by every task of a run: send times travel inside the message
/// text as microseconds since `start`, so end-to-end latency needs no shared map.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            start: Instant::now(),
        }
    }

    /// Microseconds since the run began.
    pub fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// Time since a stamp taken with [`Clock::now_us`].
    pub fn since_us(&self, stamp_us: u64) -> u64 {
        self.now_us().saturating_sub(stamp_us)
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}
