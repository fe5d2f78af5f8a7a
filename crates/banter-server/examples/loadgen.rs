//! Load generator: starts in-process servers with different write-path settings on fresh
//! databases and drives each with the same workload through the SDK over real sockets, so
//! the figures are ratios measured in the same run. SQLite always; PostgreSQL and
//! MySQL/MariaDB too when `BANTER_TEST_POSTGRES_URL` / `BANTER_TEST_MYSQL_URL` name a
//! server (each scenario gets a scratch database there, dropped afterwards).
//!
//! Workload: `clients` users in one group; each pipelines `per_client` sends (at most
//! `window` unacked at a time) and reads every fan-out frame. Reported: sends per second
//! (acked, i.e. durable) and ack latency percentiles.
//!
//! ```sh
//! cargo run --release -p banter-server --example loadgen -- [clients] [per_client] [window]
//! ```

#[path = "../../banter-store/tests/scratch/mod.rs"]
mod scratch;

use banter_client::{Client, Connection};
use banter_protocol::model::ConversationSummary;
use banter_protocol::{ClientFrame, ConversationId, ServerEvent, UserId};
use banter_server::{Config, Server};
use banter_store::Durability;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const PASSWORD: &str = "load generator pw";
const WAIT: Duration = Duration::from_secs(60);

struct Scenario {
    name: &'static str,
    /// `None` is SQLite.
    database: Option<scratch::Server>,
    durability: Durability,
    write_batch_max: usize,
}

struct Figures {
    sends_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    frames_delivered: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let clients = args.first().copied().unwrap_or(10);
    let per_client = args.get(1).copied().unwrap_or(500);
    let window = args.get(2).copied().unwrap_or(32);
    let mut scenarios = vec![
        Scenario {
            name: "SQLite, group commit, fsync (default)",
            database: None,
            durability: Durability::Full,
            write_batch_max: 512,
        },
        Scenario {
            name: "SQLite, one commit per message, fsync",
            database: None,
            durability: Durability::Full,
            write_batch_max: 1,
        },
        Scenario {
            name: "SQLite, group commit, relaxed",
            database: None,
            durability: Durability::Relaxed,
            write_batch_max: 512,
        },
    ];
    for (server, env, names) in [
        (
            scratch::Server::Postgres,
            "BANTER_TEST_POSTGRES_URL",
            [
                "PostgreSQL, group commit",
                "PostgreSQL, one commit per message",
            ],
        ),
        (
            scratch::Server::MySql,
            "BANTER_TEST_MYSQL_URL",
            ["MariaDB, group commit", "MariaDB, one commit per message"],
        ),
    ] {
        if std::env::var_os(env).is_some() {
            for (name, write_batch_max) in names.into_iter().zip([512, 1]) {
                scenarios.push(Scenario {
                    name,
                    database: Some(server),
                    durability: Durability::Full,
                    write_batch_max,
                });
            }
        }
    }
    println!("workload: {clients} clients in one group, {per_client} sends each, window {window}");
    println!(
        "{:<36} {:>12} {:>10} {:>10} {:>14}",
        "scenario", "sends/s", "p50 ms", "p99 ms", "frames out"
    );
    let mut baseline = None;
    for scenario in &scenarios {
        let figures = run(scenario, clients, per_client, window).await?;
        let base = *baseline.get_or_insert(figures.sends_per_sec);
        println!(
            "{:<40} {:>12.0} {:>10.2} {:>10.2} {:>14}   ({:.2}x default)",
            scenario.name,
            figures.sends_per_sec,
            figures.p50_ms,
            figures.p99_ms,
            figures.frames_delivered,
            figures.sends_per_sec / base
        );
    }
    Ok(())
}

async fn run(
    scenario: &Scenario,
    clients: usize,
    per_client: usize,
    window: usize,
) -> anyhow::Result<Figures> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::for_tests(dir.path());
    let database = match scenario.database {
        Some(server) => Some(
            scratch::create(server)
                .await
                .expect("the database server is configured"),
        ),
        None => None,
    };
    if let Some(database) = &database {
        config.database_url = database.url.clone();
    }
    config.durability = scenario.durability;
    config.limits.write_batch_max = scenario.write_batch_max;
    config.limits.frames_per_second_max = u32::MAX / 4;
    config.limits.outbound_queue_frames_max = 1 << 16;
    let server = Server::start(config).await?;
    let base = format!("http://{}", server.local_addr());

    let mut users = Vec::new();
    for i in 0..clients {
        let client = Client::new(&base)?;
        client.register(&format!("load{i}"), PASSWORD).await?;
        let mut client = client;
        client
            .login(&format!("load{i}"), PASSWORD, "loadgen")
            .await?;
        users.push(client);
    }
    let mut ids: Vec<UserId> = Vec::new();
    for other in &users[1..] {
        let id = other.me().await?.id;
        let request = users[0].send_friend_request(id, None).await?;
        other.accept_friend_request(request.id).await?;
        ids.push(id);
    }
    let group: ConversationSummary = users[0].create_group("load", &ids).await?;
    let mut conns = Vec::new();
    for user in &users {
        conns.push(user.connect().await?);
    }
    let total = clients * per_client;
    let started = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, conn)| tokio::spawn(drive(conn, group.id, i, per_client, window, total)))
        .collect();
    let mut latencies = Vec::with_capacity(total);
    let mut frames_delivered = 0;
    for task in tasks {
        let (mut l, delivered) = task.await??;
        latencies.append(&mut l);
        frames_delivered += delivered;
    }
    let elapsed = started.elapsed();
    server.stop().await?;
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)].as_secs_f64()
            * 1000.0
    };
    Ok(Figures {
        sends_per_sec: total as f64 / elapsed.as_secs_f64(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        frames_delivered,
    })
}

/// One client: keeps `window` sends in flight until all are acked and every member's
/// message has arrived. Returns ack latencies and the number of messages received.
async fn drive(
    mut conn: Connection,
    group: ConversationId,
    index: usize,
    per_client: usize,
    window: usize,
    total: usize,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let mut sent_at: HashMap<String, Instant> = HashMap::new();
    let mut latencies = Vec::with_capacity(per_client);
    let mut next = 0;
    let mut received = 0;
    while latencies.len() < per_client || received < total {
        while next < per_client && sent_at.len() < window {
            let id = format!("{index}-{next}");
            conn.send_frame(&ClientFrame::SendMessage {
                id: id.clone(),
                conversation_id: group,
                client_msg_id: id.clone(),
                text: format!("load message {next} from client {index}"),
            })
            .await?;
            sent_at.insert(id, Instant::now());
            next += 1;
        }
        match conn.next_event(WAIT).await? {
            ServerEvent::Ack { id, .. } => {
                if let Some(at) = sent_at.remove(&id) {
                    latencies.push(at.elapsed());
                }
            }
            ServerEvent::MessageCreated { .. } => received += 1,
            ServerEvent::Error { code, message, .. } => {
                anyhow::bail!("send refused: {code:?} {message}")
            }
            _ => {}
        }
    }
    Ok((latencies, received))
}
