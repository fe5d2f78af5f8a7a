//! End-to-end tests: a real server on an ephemeral port, driven only through the client
//! SDK over real HTTP and WebSocket connections. This binary runs the suite on a temporary
//! SQLite database; `server_postgres.rs` and `server_mysql.rs` run the same modules on
//! PostgreSQL and MySQL/MariaDB.

/// The database server the suite runs on; `None` is SQLite.
const BACKEND: Option<scratch::Server> = None;
/// One node, not a cluster.
const CLUSTER: Option<cluster_support::Bus> = None;

#[path = "../cluster_support/mod.rs"]
mod cluster_support;

#[path = "../../../banter-store/tests/scratch/mod.rs"]
mod scratch;

mod common;

mod admin;
mod authz;
mod bad_input;
mod chat;
mod contract;
mod features;
mod group;
mod groups;
mod hardening;
mod media;
// SQLite only: the storage backend does not depend on the database.
mod media_s3;
mod ratelimit;
mod restart;
mod sync;
mod text_rules;
