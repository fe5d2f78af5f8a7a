//! The smoke run CI does of every scenario: a second or two each against an in-process
//! server on a fresh SQLite database, checking what the bench verifies (nothing lost,
//! duplicated or reordered, and the delivery counts that follow from the workload),
//! never speed. The figures in docs/benchmarks.md come from full runs of the binary.

use banter_bench::progress::Counters;
use banter_bench::scenario::{self, Run};
use banter_bench::{Clock, Target};
use banter_server::config::{Config, Overrides};
use banter_server::Server;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

const ADMIN_TOKEN: &str = "smoke-test-admin-token-0123456789abcdef";

struct Bench {
    server: Server,
    _dir: TempDir,
}

impl Bench {
    /// A server with the default configuration except what a load generator needs: the
    /// admin API, an ephemeral port, and no frame or message rate limits (the bench's
    /// closed-loop senders are machines, not people).
    async fn start() -> Bench {
        let dir = tempfile::tempdir().expect("temp dir");
        let env = [
            ("BANTER_ADMIN_TOKEN", ADMIN_TOKEN),
            ("BANTER_LISTEN", "127.0.0.1:0"),
            ("BANTER_LIMITS__FRAMES_PER_SECOND_MAX", "1000000"),
            ("BANTER_LIMITS__MESSAGES_PER_USER_PER_SECOND_MAX", "1000000"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let overrides = Overrides {
            data_dir: Some(dir.path().to_path_buf()),
            ..Overrides::default()
        };
        let config: Config = Config::load_from(overrides, env).expect("valid config");
        let server = Server::start(config).await.expect("server starts");
        Bench { server, _dir: dir }
    }

    fn url(&self) -> String {
        format!("http://{}", self.server.local_addr())
    }

    fn run(&self, duration_ms: u64) -> Run {
        Run {
            target: Target {
                url: self.url(),
                nodes: vec![self.url()],
                admin_token: ADMIN_TOKEN.to_owned(),
                // The server runs in this process.
                server_pids: vec![std::process::id()],
                prefix: "smoke".to_owned(),
                connect_concurrency: 32,
            },
            duration: Duration::from_millis(duration_ms),
            drain: Duration::from_secs(20),
            text_bytes: 64,
            clock: Clock::new(),
            counters: Arc::new(Counters::default()),
        }
    }
}

fn figure(report: &banter_bench::report::Report, name: &str) -> f64 {
    report
        .get(name)
        .and_then(|v| v.as_f64())
        .unwrap_or_else(|| panic!("{name} missing from {}", report.to_json()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_delivers_every_message_to_every_device_of_both_friends() {
    let bench = Bench::start().await;
    let options = scenario::direct::Options {
        pairs: 5,
        devices: 2,
        window: 4,
        rate: None,
        failover: false,
    };
    let report = scenario::direct::run(&bench.run(1500), &options)
        .await
        .unwrap();
    assert!(report.verdict.clean(), "{}", report.to_json());
    let acked = figure(&report, "acked");
    assert!(acked > 0.0, "{}", report.to_json());
    // Each message reaches both users of the pair, on both of their devices.
    assert_eq!(figure(&report, "delivered"), acked * 4.0);
    assert_eq!(report.verdict.devices, 20);
    assert!(figure(&report, "msgs_per_sec") > 0.0);
    assert!(figure(&report, "p99_ms") >= figure(&report, "p50_ms"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_at_an_offered_rate_is_verified_the_same_way() {
    let bench = Bench::start().await;
    let options = scenario::direct::Options {
        pairs: 3,
        devices: 1,
        window: 1,
        rate: Some(300.0),
        failover: false,
    };
    let report = scenario::direct::run(&bench.run(1000), &options)
        .await
        .unwrap();
    assert!(report.verdict.clean(), "{}", report.to_json());
    assert!(figure(&report, "acked") > 0.0);
    assert_eq!(figure(&report, "delivered"), figure(&report, "acked") * 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_fans_every_message_out_to_every_member() {
    let bench = Bench::start().await;
    let options = scenario::group::Options {
        members: 25,
        senders: 2,
        devices: 1,
        window: 8,
        rate: None,
        failover: false,
    };
    let report = scenario::group::run(&bench.run(1500), &options)
        .await
        .unwrap();
    assert!(report.verdict.clean(), "{}", report.to_json());
    let acked = figure(&report, "acked");
    assert!(acked > 0.0);
    assert_eq!(figure(&report, "delivered"), acked * 25.0);
    assert!(figure(&report, "deliveries_per_sec") > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_storm_resyncs_exactly_what_each_client_missed() {
    let bench = Bench::start().await;
    let options = scenario::reconnect_storm::Options {
        clients: 40,
        missed: 7,
        group_size: 10,
    };
    let report = scenario::reconnect_storm::run(&bench.run(0), &options)
        .await
        .unwrap();
    assert!(report.verdict.clean(), "{}", report.to_json());
    assert_eq!(figure(&report, "resynced_messages"), 40.0 * 7.0);
    assert_eq!(figure(&report, "groups"), 5.0);
    assert!(figure(&report, "caught_up_secs") > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_held_and_all_still_answer_at_the_end() {
    let bench = Bench::start().await;
    let options = scenario::connections::Options { connections: 60 };
    let report = scenario::connections::run(&bench.run(500), &options)
        .await
        .unwrap();
    assert!(report.verdict.clean(), "{}", report.to_json());
    assert_eq!(figure(&report, "alive_at_end"), 60.0);
    assert!(figure(&report, "server_rss_bytes") > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_writes_a_json_report_and_exits_zero_when_clean() {
    let bench = Bench::start().await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let url = bench.url();
    let json_arg = json.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_banter-bench"))
            .args(["direct", "--pairs", "2", "--duration", "1", "--quiet"])
            .args(["--url", &url, "--json"])
            .arg(&json_arg)
            .env("BANTER_ADMIN_TOKEN", ADMIN_TOKEN)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["scenario"], "direct");
    for field in ["lost", "duplicated", "reordered"] {
        assert_eq!(report[field], 0, "{report}");
    }
    for field in ["msgs_per_sec", "p50_ms", "p99_ms", "connections"] {
        assert!(report[field].is_number(), "{field} missing: {report}");
    }
    assert!(String::from_utf8_lossy(&output.stdout).contains("PASS"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_explains_a_wrong_admin_token() {
    let bench = Bench::start().await;
    let url = bench.url();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_banter-bench"))
            .args([
                "connections",
                "--connections",
                "3",
                "--quiet",
                "--url",
                &url,
            ])
            .env(
                "BANTER_ADMIN_TOKEN",
                "not-the-servers-admin-token-at-all-000",
            )
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("admin API"), "{stderr}");
}
