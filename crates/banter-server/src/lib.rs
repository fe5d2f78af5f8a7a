//! The Banter server as a library: [`Server::start`] builds the state from a [`Config`],
//! binds, and serves the REST API, the WebSocket gateway and the web client until shut down.
//! `main.rs` is thin glue around it, and tests start servers in-process the same way.

pub mod api;
pub mod auth;
pub mod bus;
pub mod config;
pub mod error;
pub mod fanout;
pub mod gateway;
pub mod json;
pub mod listener;
pub mod media;
pub mod presence;
pub mod ratelimit;
pub mod service;
pub mod state;
pub mod web;
pub mod wire;
pub mod writer;

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::routing::get;
use axum::Router;
use banter_store::{OpenOptions, SendPolicy};
pub use config::Config;
use gateway::hub::Hub;
use state::AppState;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::set_header::SetResponseHeaderLayer;

/// A running server.
pub struct Server {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    /// Opens the store (running migrations), binds the listen address and starts serving.
    pub async fn start(config: Config) -> anyhow::Result<Server> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data folder {}", config.data_dir.display()))?;
        let options = OpenOptions {
            durability: config.durability,
            connections_max: config.limits.database_connections_max,
        };
        let database = banter_store::open(&config.database_url, &options)
            .await
            .context("opening the database")?;
        let seeding: Option<Arc<dyn banter_store::Seeding>> =
            config.admin_token.is_some().then(|| database.clone() as _);
        let store: Arc<dyn banter_store::Store> = database;
        let hub = Arc::new(Hub::default());
        let shutdown = CancellationToken::new();
        let joined = bus::connect(
            config.bus.as_ref(),
            config.budget_period_max(),
            hub.clone(),
            shutdown.clone(),
        )
        .await
        .context("joining the cluster")?;
        let cluster_tasks = joined.tasks;
        let presence = joined.presence;
        let shared_budgets = joined.budgets;
        let broadcast = fanout::Broadcaster::new(joined.bus);
        let policy = SendPolicy {
            direct_requires_friendship: config.direct_requires_friendship,
        };
        let (writer, writer_task) = writer::Writer::spawn(
            store.clone(),
            broadcast.clone(),
            policy,
            config.limits.write_batch_max,
            config.limits.write_queue_max,
            config.bus.is_some(),
        );
        let connections = TaskTracker::new();
        let limits = &config.limits;
        // Every connection is a file descriptor, and the usual soft limit (1024) would cap
        // the server far below its connection limits. Raising it to the hard limit
        // concerns the whole process and is idempotent, so every start may do it.
        match listener::raise_open_files_limit() {
            Ok(limit) => tracing::info!(limit, "open-files limit raised to the hard limit"),
            Err(err) => tracing::warn!(error = %err, "could not raise the open-files limit"),
        }
        let capacity = listener::connection_capacity(limits.database_connections_max);
        let (websocket_max, http_max) = listener::fit_bounds(
            limits.connections_max,
            limits.http_connections_max,
            capacity,
        );
        match capacity {
            Some(capacity)
                if (websocket_max, http_max)
                    != (limits.connections_max, limits.http_connections_max) =>
            {
                tracing::warn!(
                    capacity,
                    connections_max = websocket_max,
                    http_connections_max = http_max,
                    "the open-files limit is too low for the configured connection limits; serving fewer"
                );
            }
            Some(capacity) => tracing::info!(
                capacity,
                connections_max = websocket_max,
                http_connections_max = http_max,
                "the open-files limit leaves room for this many connections"
            ),
            None => tracing::info!("no open-files limit"),
        }
        let bounds = listener::HttpBounds {
            connections_max: http_max,
            header_timeout: limits.http_header_timeout,
            header_bytes_max: limits.http_header_bytes_max,
        };
        let media = Arc::new(media::Media::open(
            config.media.clone(),
            config.durability == banter_store::Durability::Full,
            shared_budgets.clone(),
        )?);
        let state = AppState {
            media,
            connection_slots: Arc::new(Semaphore::new(websocket_max)),
            passwords: Arc::new(auth::PasswordHashing::new(
                limits.password_hashes_max,
                limits.password_hash_queue_max,
            )),
            login_throttle: Arc::new(auth::LoginThrottle::new(
                &config.limits,
                shared_budgets.clone(),
            )),
            rate_limits: Arc::new(ratelimit::RateLimits::new(&config.limits, shared_budgets)),
            config: Arc::new(config),
            store,
            seeding,
            hub,
            broadcast,
            presence,
            writer,
            shutdown: shutdown.clone(),
            connections: connections.clone(),
        };
        let tcp = tokio::net::TcpListener::bind(state.config.listen)
            .await
            .with_context(|| format!("binding {}", state.config.listen))?;
        let addr = tcp.local_addr()?;
        let cleanup_task = service::media::spawn_cleanup(state.clone());
        // Only a cluster's presence has departures (users of a node that died).
        let departures_task = state
            .config
            .bus
            .is_some()
            .then(|| service::presence::spawn_departures(state.clone(), bus::REAP_EVERY));
        let app = router(state);
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            listener::serve(tcp, app, bounds, stop).await;
            // HTTP has stopped; WebSocket connections are finishing their pending acks.
            connections.close();
            connections.wait().await;
            // Every holder of the writer is gone now, so its queue closes; it commits
            // what was accepted and stops.
            // The clean-up ends at the cancel (after a pass in progress), dropping its
            // handle on the writer too.
            cleanup_task.await.context("upload clean-up task")?;
            for task in cluster_tasks {
                task.await.context("a cluster task")?;
            }
            if let Some(task) = departures_task {
                task.await.context("the departures task")?;
            }
            writer_task.await.context("message writer task")?;
            tracing::info!("shut down cleanly");
            Ok(())
        });
        Ok(Server {
            addr,
            shutdown,
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A token that starts a graceful shutdown when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until the server has shut down (after the shutdown token was cancelled).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("server task")?
    }

    /// Shuts down gracefully: stops accepting, acks and persists what was accepted,
    /// closes sockets with 1001.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.wait().await
    }
}

/// All routes with their shared layers.
pub fn router(state: AppState) -> Router {
    let body_max = state.config.limits.request_body_bytes_max;
    let body_timeout = state.config.limits.http_body_timeout;
    Router::new()
        .merge(api::router(state.config.admin_token.is_some()))
        .route("/ws", get(gateway::upgrade))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(web::serve)
        .layer(DefaultBodyLimit::max(body_max))
        .layer(axum::middleware::map_request(listener::body_deadline(
            body_timeout,
        )))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(web::CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .with_state(state)
}
