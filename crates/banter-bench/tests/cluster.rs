//! The bench against a cluster: three in-process nodes on one PostgreSQL database with a
//! Redis (or NATS) bus between them, and the bench's connections spread over the three.
//! Every message still reaches every device exactly once and in seq order, although the
//! two users of a pair, and the two devices of a user, sit on different nodes, and each
//! node hears the others' entries over the bus after its own.
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
use std::sync::Arc;
use std::time::Duration;

const ADMIN_TOKEN: &str = "cluster-test-admin-token-0123456789abcdef";
const NODES: usize = 3;

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
    let urls: Vec<String> = nodes
        .iter()
        .map(|node| format!("http://{}", node.local_addr()))
        .collect();
    let run = Run {
        target: Target {
            url: urls[0].clone(),
            nodes: urls.clone(),
            admin_token: ADMIN_TOKEN.to_owned(),
            server_pids: vec![std::process::id()],
            prefix: "cluster".to_owned(),
            connect_concurrency: 32,
        },
        duration: Duration::from_millis(1500),
        drain: Duration::from_secs(20),
        text_bytes: 64,
        clock: Clock::new(),
        counters: Arc::new(Counters::default()),
    };

    let direct = scenario::direct::Options {
        pairs: 6,
        devices: 2,
        window: 4,
        rate: None,
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
    };
    let report = scenario::group::run(&run, &group).await.unwrap();
    assert!(report.verdict.clean(), "{}", report.to_json());
    assert_eq!(report.verdict.devices, 9);

    for node in nodes {
        node.stop().await.expect("node stops");
    }
    // The scratch database is dropped with `database`.
}
