// Shared by several test binaries; each uses part of it.
#![allow(dead_code)]

//! What the cluster tests share: the Redis and NATS servers named in the environment, a
//! namespace of each test's own, and the clean-up of what a cluster left on them.

use banter_server::config::BusConfig;

/// The bus a cluster test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bus {
    Redis,
    Nats,
}

impl Bus {
    fn variable(self) -> &'static str {
        match self {
            Bus::Redis => "BANTER_TEST_REDIS_URL",
            Bus::Nats => "BANTER_TEST_NATS_URL",
        }
    }

    /// The server's URL from the environment; `None` (said on stderr) when it is unset
    /// outside CI, a failure in CI.
    pub fn url(self) -> Option<String> {
        match std::env::var(self.variable()) {
            Ok(url) if !url.is_empty() => Some(url),
            _ => {
                let missing = format!("cluster test NOT RUN: set {}", self.variable());
                assert!(std::env::var("CI").as_deref() != Ok("true"), "{missing}");
                eprintln!("{missing}");
                None
            }
        }
    }

    /// A bus of a namespace no other test or run uses, so tests sharing one server never
    /// hear each other.
    pub fn fresh(self) -> Option<BusConfig> {
        Some(BusConfig {
            url: self.url()?,
            namespace: fresh_namespace(),
        })
    }
}

pub fn fresh_namespace() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("test{}x{nanos}x{n}", std::process::id())
}

/// Removes what a cluster of `bus`'s namespace left on a shared Redis or NATS server.
pub async fn clean_bus(bus: &BusConfig) {
    banter_server::bus::remove_namespace(bus)
        .await
        .expect("remove the test's keys or buckets");
}

/// How long after a cluster test's end its nodes may still write to the bus's server: a
/// message budget recorded behind its send (up to 250 ms) or a presence change (up to 500
/// ms) already under way when the test dropped its nodes.
const LATE_WRITES: std::time::Duration = std::time::Duration::from_millis(600);

/// [`clean_bus`] from a destructor, where the nodes were dropped without being stopped: on
/// a thread of its own with its own runtime (the test's may be gone or busy), once at
/// once and once more after [`LATE_WRITES`].
pub fn clean_bus_blocking(bus: BusConfig) {
    let cleaned = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(clean_bus(&bus));
        std::thread::sleep(LATE_WRITES);
        runtime.block_on(clean_bus(&bus));
    })
    .join();
    if cleaned.is_err() {
        eprintln!("could not clean up a cluster test's bus");
    }
}
