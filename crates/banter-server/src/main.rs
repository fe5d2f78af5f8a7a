//! `banter`: thin glue that reads the command line, builds the configuration, runs the
//! server and turns SIGINT/SIGTERM into a graceful shutdown.

use anyhow::Context;
use banter_server::config::{Config, Overrides};
use banter_server::Server;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the system allocator: a server holding tens of thousands of
/// connections makes many small, long-lived allocations, which it packs more tightly
/// (less memory per idle connection) and serves faster across threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "banter",
    version,
    about = "Banter: a self-hosted instant-messaging server with a built-in web client"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
}

#[derive(clap::Args, Clone, Default)]
struct ServeArgs {
    /// TOML configuration file (also BANTER_CONFIG).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080 (also BANTER_LISTEN).
    #[arg(long, global = true)]
    listen: Option<String>,
    /// Data folder (also BANTER_DATA_DIR).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Database URL: sqlite://…, postgres://… or mysql://… (also BANTER_DATABASE_URL).
    #[arg(long, global = true)]
    database_url: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_env("BANTER_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        None => cli.serve,
    };
    let config = Config::load(Overrides {
        config_file: args.config,
        listen: args.listen,
        data_dir: args.data_dir,
        database_url: args.database_url,
    })?;
    let server = Server::start(config).await?;
    // The one line on stdout: scripts and tests read the bound port from it.
    println!("listening on http://{}", server.local_addr());
    tracing::info!(addr = %server.local_addr(), "banter is up");
    let shutdown = server.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        shutdown.cancel();
    });
    server.wait().await.context("server stopped with an error")
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
