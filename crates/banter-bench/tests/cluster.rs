//! The bench against a cluster: three in-process nodes on one PostgreSQL database with a
//! Redis (or NATS) bus between them, and the bench's connections spread over the three.
//! Every message still reaches every device exactly once and in seq order, although the
//! two users of a pair, and the two devices of a user, sit on different nodes, and each
//! node hears the others' entries over the bus after its own.
//!
//! And with failover (`--failover`): a node dies in the middle of a run, its devices
//! reconnect to the others, resend and sync, and every device still ends with every
//! acked message once, in seq order.
//!
//! Needs `BANTER_TEST_POSTGRES_URL` and `BANTER_TEST_REDIS_URL` / `BANTER_TEST_NATS_URL`
//! (CI sets them); unset, the test says so and passes, except in CI where it fails.

#[path = "../../banter-store/tests/scratch/mod.rs"]
mod scratch;

use banter_bench::progress::Counters;
use banter_bench::scenario::{self, Run};
use banter_bench::{Clock, Target};
use banter_server::config::{Config, Overrides};
use banter_server::Server;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

const ADMIN_TOKEN: &str = "cluster-test-admin-token-0123456789abcdef";
const NODES: usize = 3;
/// The tests of this file take turns: each runs three nodes, and three clusters at once on
/// a two-core machine starve the nodes' ordering hold (25 ms for the first entry a node
/// sees of a conversation) until live pushes arrive out of order, which a run without
/// failover counts as reordered.
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Messages acked before the failover test kills its node: traffic flows through every
/// node by then, and most of the sending phase is still ahead.
const KILL_AFTER_ACKS: u64 = 200;

fn bus_url(variable: &str) -> Option<String> {
    match std::env::var(variable) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let missing = format!("cluster bench test NOT RUN: set {variable}");
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{missing}");
            eprintln!("{missing}");
            None
        }
    }
}

/// A node as the binary would start from its environment: the shared database and bus,
/// a namespace of this test's own, local media declared shared (the nodes share this
/// machine's disk), and no rate limits (the bench's senders are machines).
async fn node(database_url: &str, bus_url: &str, namespace: &str, dir: &std::path::Path) -> Server {
    let env = [
        ("BANTER_ADMIN_TOKEN", ADMIN_TOKEN),
        ("BANTER_LISTEN", "127.0.0.1:0"),
        ("BANTER_DATABASE_URL", database_url),
        ("BANTER_BUS_URL", bus_url),
        ("BANTER_BUS_NAMESPACE", namespace),
        ("BANTER_MEDIA__LOCAL_FOLDER_IS_SHARED", "true"),
        ("BANTER_LIMITS__FRAMES_PER_SECOND_MAX", "1000000"),
        ("BANTER_LIMITS__MESSAGES_PER_USER_PER_SECOND_MAX", "1000000"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let overrides = Overrides {
        data_dir: Some(dir.to_path_buf()),
        ..Overrides::default()
    };
    let config = Config::load_from(overrides, env).expect("valid cluster configuration");
    Server::start(config).await.expect("node starts")
}

fn url_of(node: &Server) -> String {
    format!("http://{}", node.local_addr())
}

/// A run over `urls`, sending for `duration`, with 20 s to drain.
fn run_over(urls: Vec<String>, duration: Duration) -> Run {
    Run {
        target: Target {
            url: urls[0].clone(),
            nodes: urls,
            admin_token: ADMIN_TOKEN.to_owned(),
            server_pids: vec![std::process::id()],
            prefix: "cluster".to_owned(),
            connect_concurrency: 32,
        },
        duration,
        drain: Duration::from_secs(20),
        text_bytes: 64,
        clock: Clock::new(),
        counters: Arc::new(Counters::default()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_and_group_over_three_nodes_on_redis_lose_and_reorder_nothing() {
    direct_and_group_over_three_nodes("BANTER_TEST_REDIS_URL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_and_group_over_three_nodes_on_nats_lose_and_reorder_nothing() {
    direct_and_group_over_three_nodes("BANTER_TEST_NATS_URL").await;
}

async fn direct_and_group_over_three_nodes(bus_variable: &str) {
    let Some(bus) = bus_url(bus_variable) else {
        return;
    };
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().await;
    let Some(database) = scratch::create(scratch::Server::Postgres).await else {
        return;
    };
    let namespace = format!(
        "benchtest{}{}",
        std::process::id(),
        bus_variable.to_lowercase()
    );
    let dirs: Vec<_> = (0..NODES).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes = Vec::new();
    for dir in &dirs {
        nodes.push(node(&database.url, &bus, &namespace, dir.path()).await);
    }
    let urls: Vec<String> = nodes.iter().map(url_of).collect();
    let run = run_over(urls, Duration::from_millis(1500));

    let direct = scenario::direct::Options {
        pairs: 6,
        devices: 2,
        window: 4,
        rate: None,
        failover: false,
    };
    let report = scenario::direct::run(&run, &direct).await.unwrap();
    assert!(report.verdict.clean(), "{}", report.to_json());
    let acked = report.get("acked").and_then(|v| v.as_f64()).unwrap();
    assert!(acked > 0.0, "{}", report.to_json());
    // Both users of each pair, on both devices, whichever node each device is on.
    let delivered = report.get("delivered").and_then(|v| v.as_f64()).unwrap();
    assert_eq!(delivered, acked * 4.0, "{}", report.to_json());

    let group = scenario::group::Options {
        members: 9,
        senders: 3,
        devices: 1,
        window: 4,
        rate: None,
        failover: false,
    };
    let report = scenario::group::run(&run, &group).await.unwrap();
    assert!(report.verdict.clean(), "{}", report.to_json());
    assert_eq!(report.verdict.devices, 9);

    for node in nodes {
        node.stop().await.expect("node stops");
    }
    forget(bus, namespace).await;
    // The scratch database is dropped with `database`.
}

/// Removes the test cluster's keys or buckets from the shared Redis or NATS server.
async fn forget(url: String, namespace: String) {
    banter_server::bus::remove_namespace(&banter_server::config::BusConfig { url, namespace })
        .await
        .expect("remove the test's keys or buckets");
}

/// Direct messages over three nodes with failover; once 200 messages are acked, the third
/// node dies. Its devices' connections end without a close frame, its listener is gone
/// (reconnecting there is refused), and whatever it had stored but not yet acked or
/// announced is left to the resends and syncs. Every device must still end with every
/// acked message exactly once, in seq order, after at least one reconnect and resend.
///
/// The node runs in this process, on a runtime of its own, and "dies" by that runtime's
/// `shutdown_background`: every task of the node (connections, the stream writer with its
/// open transaction, the bus subscription) is dropped at its next await, and its sockets
/// are closed, as a SIGKILL would leave them. Unlike a SIGKILL, destructors run (a
/// connection's hub registration is removed, which a dead process does not need), and a
/// task busy between two awaits finishes that stretch first. The binary with a real
/// `kill -9` and a restart on the same port is `scripts/cluster-kill.sh`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_devices_lose_nothing_when_a_node_dies_mid_run() {
    let Some(bus) = bus_url("BANTER_TEST_REDIS_URL") else {
        return;
    };
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().await;
    let Some(database) = scratch::create(scratch::Server::Postgres).await else {
        return;
    };
    let namespace = format!("benchfailover{}", std::process::id());
    let dirs: Vec<_> = (0..NODES).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut survivors = Vec::new();
    for dir in &dirs[..NODES - 1] {
        survivors.push(node(&database.url, &bus, &namespace, dir.path()).await);
    }
    let doomed_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let doomed = {
        let (database, bus, namespace) = (database.url.clone(), bus.clone(), namespace.clone());
        let dir = dirs[NODES - 1].path().to_path_buf();
        doomed_runtime
            .spawn(async move { node(&database, &bus, &namespace, &dir).await })
            .await
            .unwrap()
    };
    let mut urls: Vec<String> = survivors.iter().map(url_of).collect();
    urls.push(url_of(&doomed));
    let run = run_over(urls, Duration::from_secs(4));

    let counters = run.counters.clone();
    let sending = run.duration;
    let killer = tokio::spawn(async move {
        // The bench's counters have no notification; a look every 10 ms is plenty. If
        // the run is slower than expected, the node dies half-way through sending anyway.
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        let patience = tokio::time::Instant::now() + sending / 2;
        while counters.acked.load(Ordering::Relaxed) < KILL_AFTER_ACKS
            && tokio::time::Instant::now() < patience
        {
            tick.tick().await;
        }
        let acked_before = counters.acked.load(Ordering::Relaxed);
        doomed_runtime.shutdown_background();
        drop(doomed);
        acked_before
    });

    let direct = scenario::direct::Options {
        pairs: 12,
        devices: 2,
        window: 4,
        rate: None,
        failover: true,
    };
    let report = scenario::direct::run(&run, &direct).await.unwrap();
    let acked_before_kill = killer.await.unwrap();
    let json = report.to_json();
    eprintln!("{json}");
    assert!(report.verdict.clean(), "{json}");
    assert_eq!(report.verdict.devices, 48, "{json}");
    let figure = |name: &str| report.get(name).and_then(|v| v.as_f64()).unwrap();
    // The node died while messages were flowing, and they went on flowing after.
    assert!(acked_before_kill > 0, "{json}");
    assert!(figure("acked") > acked_before_kill as f64, "{json}");
    // About a third of the 48 devices and 24 senders were on the dead node: they came
    // back, and senders resent what was in flight (4 unacked each, always).
    assert!(figure("reconnects") >= 1.0, "{json}");
    assert!(figure("resends") >= 1.0, "{json}");
    // Both users of each pair, on both devices, hold every message.
    assert_eq!(figure("delivered"), figure("acked") * 4.0, "{json}");

    for node in survivors {
        node.stop().await.expect("node stops");
    }
    forget(bus, namespace).await;
}
