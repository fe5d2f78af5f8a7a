//! `banter-bench`: the command line. Parses arguments into a scenario and its options,
//! runs it against the server at `--url`, prints the table, writes the JSON report, and
//! exits non-zero when verification found anything lost, duplicated or reordered.

use banter_bench::disk;
use banter_bench::progress::{Counters, Ticker};
use banter_bench::report::Report;
use banter_bench::scenario::{self, Run};
use banter_bench::{Clock, Target};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "banter-bench",
    version,
    about = "Load generator for a running Banter server that verifies delivery while it measures",
    long_about = "Load generator for a running Banter server. It seeds users, friendships and \
groups through the admin API (the server needs BANTER_ADMIN_TOKEN), opens real WebSocket \
connections spread over 127.0.0.0/8 source addresses, runs one scenario, and checks per \
conversation and per device that nothing was lost, duplicated or reordered. It prints a \
table, writes a JSON report with --json, and exits with status 1 if any count is not zero.\n\n\
One process holds as many connections as its open-file limit allows (`ulimit -n`, minus \
about 100); beyond that, run several processes with different --prefix values."
)]
struct Cli {
    #[command(subcommand)]
    scenario: ScenarioArgs,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct Common {
    /// The server, e.g. http://127.0.0.1:8080; or the nodes of one cluster, separated by
    /// commas: connections are spread over them in turn, seeding goes to the first.
    #[arg(
        long,
        global = true,
        default_value = "http://127.0.0.1:8080",
        value_delimiter = ','
    )]
    url: Vec<String>,
    /// The server's admin token (its `admin_token` setting).
    #[arg(
        long,
        global = true,
        env = "BANTER_ADMIN_TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
    /// Seconds the measured phase lasts.
    #[arg(long, global = true, default_value_t = 10.0)]
    duration: f64,
    /// Seconds to wait after the measured phase for the last acks and deliveries; what
    /// is still missing then counts as lost.
    #[arg(long, global = true, default_value_t = 30.0)]
    drain: f64,
    /// Write the report as JSON to this file.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// The server's process id, to read its memory and CPU from /proc (local servers
    /// only); several, separated by commas, for the nodes of a cluster (summed).
    #[arg(long, global = true, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// Before the run, time 200 rounds of a 4 KiB write + fdatasync in this folder (put
    /// it on the server's disk) and report them beside the latencies.
    #[arg(long, global = true, default_value = ".")]
    fsync_probe_dir: PathBuf,
    /// Skip the fsync probe.
    #[arg(long, global = true)]
    no_fsync_probe: bool,
    /// Prefix of seeded usernames; random by default so runs never collide.
    #[arg(long, global = true)]
    prefix: Option<String>,
    /// Bytes of text per message.
    #[arg(long, global = true, default_value_t = 64)]
    text_bytes: usize,
    /// WebSocket handshakes in flight at once.
    #[arg(long, global = true, default_value_t = 256)]
    connect_concurrency: usize,
    /// Print no progress lines.
    #[arg(long, global = true)]
    quiet: bool,
}

#[derive(Subcommand)]
enum ScenarioArgs {
    /// Hold N authenticated idle connections; report server memory per connection.
    Connections {
        #[arg(long, default_value_t = 1000)]
        connections: usize,
    },
    /// Pairs of friends exchange 1:1 messages; report msgs/s, ack and end-to-end latency.
    Direct {
        #[arg(long, default_value_t = 100)]
        pairs: usize,
        /// Connections per user; the first one sends, all receive.
        #[arg(long, default_value_t = 2)]
        devices: usize,
        /// Unacked sends per sender (closed loop).
        #[arg(long, default_value_t = 4)]
        window: usize,
        /// Offered messages per second in total (open loop) instead of the closed loop.
        #[arg(long)]
        rate: Option<f64>,
        /// When a connection is lost (node killed, reset, close code 4009, …), reconnect
        /// to the next --url (round robin, short backoff, until the drain deadline),
        /// resend unacked sends with their original client_msg_id and sync from the last
        /// seq held; the report adds reconnects, resends and recovered_by_sync.
        #[arg(long)]
        failover: bool,
    },
    /// Senders into one group with every member online; report deliveries/s and the
    /// latency to the last member.
    Group {
        #[arg(long, default_value_t = 1000)]
        members: usize,
        #[arg(long, default_value_t = 1)]
        senders: usize,
        #[arg(long, default_value_t = 1)]
        devices: usize,
        #[arg(long, default_value_t = 16)]
        window: usize,
        #[arg(long)]
        rate: Option<f64>,
        /// When a connection is lost (node killed, reset, close code 4009, …), reconnect
        /// to the next --url (round robin, short backoff, until the drain deadline),
        /// resend unacked sends with their original client_msg_id and sync from the last
        /// seq held; the report adds reconnects, resends and recovered_by_sync.
        #[arg(long)]
        failover: bool,
    },
    /// N users each upload one file at the same moment; report the upload throughput and
    /// the server's peak memory meanwhile, then download every file to compare.
    Uploads {
        #[arg(long, default_value_t = 20)]
        uploads: usize,
        /// Size of each file, in MiB.
        #[arg(long, default_value_t = 100)]
        size_mib: u64,
    },
    /// N clients drop at once, miss M messages each, reconnect and resync; report the
    /// time until all have caught up.
    ReconnectStorm {
        #[arg(long, default_value_t = 1000)]
        clients: usize,
        /// Messages each client misses while away.
        #[arg(long, default_value_t = 20)]
        missed: usize,
        /// Members per group, its writer included.
        #[arg(long, default_value_t = 100)]
        group_size: usize,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(report) if report.verdict.clean() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(err) => {
            eprintln!("banter-bench: {err:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<Report> {
    let c = cli.common;
    let admin_token = c.admin_token.ok_or_else(|| {
        anyhow::anyhow!(
            "the admin token is needed for seeding: pass --admin-token or set BANTER_ADMIN_TOKEN \
             (the same value the server runs with)"
        )
    })?;
    anyhow::ensure!(
        c.duration >= 0.0 && c.drain >= 0.0,
        "--duration and --drain are seconds, not negative"
    );
    let nodes: Vec<String> = c
        .url
        .iter()
        .map(|url| url.trim().trim_end_matches('/').to_owned())
        .filter(|url| !url.is_empty())
        .collect();
    anyhow::ensure!(!nodes.is_empty(), "--url names no server");
    let probe = if c.no_fsync_probe {
        None
    } else {
        let folder = c.fsync_probe_dir.clone();
        let probed = tokio::task::spawn_blocking(move || disk::probe(&folder)).await?;
        Some(probed.map_err(|e| {
            anyhow::anyhow!(
                "the fsync probe failed in {} (choose another --fsync-probe-dir, or pass \
                 --no-fsync-probe): {e}",
                c.fsync_probe_dir.display()
            )
        })?)
    };
    let run = Run {
        target: Target {
            url: nodes[0].clone(),
            nodes,
            admin_token,
            server_pids: c.server_pid,
            prefix: c.prefix.unwrap_or_else(random_prefix),
            connect_concurrency: c.connect_concurrency,
        },
        duration: Duration::from_secs_f64(c.duration),
        drain: Duration::from_secs_f64(c.drain),
        text_bytes: c.text_bytes,
        clock: Clock::new(),
        counters: Arc::new(Counters::default()),
    };
    let label = match cli.scenario {
        ScenarioArgs::Connections { .. } => "connections",
        ScenarioArgs::Direct { .. } => "direct",
        ScenarioArgs::Group { .. } => "group",
        ScenarioArgs::ReconnectStorm { .. } => "reconnect-storm",
        ScenarioArgs::Uploads { .. } => "uploads",
    };
    let ticker = (!c.quiet).then(|| Ticker::start(label, run.counters.clone(), run.clock));
    let mut report = match cli.scenario {
        ScenarioArgs::Connections { connections } => {
            let options = scenario::connections::Options { connections };
            scenario::connections::run(&run, &options).await?
        }
        ScenarioArgs::Uploads { uploads, size_mib } => {
            let options = scenario::uploads::Options { uploads, size_mib };
            scenario::uploads::run(&run, &options).await?
        }
        ScenarioArgs::Direct {
            pairs,
            devices,
            window,
            rate,
            failover,
        } => {
            let options = scenario::direct::Options {
                pairs,
                devices,
                window,
                rate,
                failover,
            };
            scenario::direct::run(&run, &options).await?
        }
        ScenarioArgs::Group {
            members,
            senders,
            devices,
            window,
            rate,
            failover,
        } => {
            let options = scenario::group::Options {
                members,
                senders,
                devices,
                window,
                rate,
                failover,
            };
            scenario::group::run(&run, &options).await?
        }
        ScenarioArgs::ReconnectStorm {
            clients,
            missed,
            group_size,
        } => {
            let options = scenario::reconnect_storm::Options {
                clients,
                missed,
                group_size,
            };
            scenario::reconnect_storm::run(&run, &options).await?
        }
    };
    drop(ticker);
    if let Some(probe) = &probe {
        probe.add_to(&mut report);
    }
    report.print_table();
    if let Some(path) = &c.json {
        report.write_json(path)?;
    }
    Ok(report)
}

/// A short random username prefix (letters only, so it stays a valid username part).
fn random_prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or(0)
        ^ std::process::id().rotate_left(16);
    let mut x = nanos.max(1);
    (0..6)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (b'a' + (x % 26) as u8) as char
        })
        .collect()
}
