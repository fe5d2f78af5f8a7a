//! The end-to-end suite of `server/` on a cluster: every test gets three nodes on a
//! PostgreSQL database of its own (`BANTER_TEST_POSTGRES_URL`) joined by NATS (with JetStream)
//! (`BANTER_TEST_NATS_URL`), and its clients take the nodes in turn, so users of one test
//! sit on different nodes. Left out: `hardening` (its bounds are each node's by design)
//! and `media_s3` (object storage does not depend on the nodes).
//! `server_cluster.rs` runs the same on Redis.

/// The database server the suite runs on.
const BACKEND: Option<scratch::Server> = Some(scratch::Server::Postgres);
/// Three nodes on NATS.
const CLUSTER: Option<cluster_support::Bus> = Some(cluster_support::Bus::Nats);

#[path = "cluster_support/mod.rs"]
mod cluster_support;
#[path = "../../banter-store/tests/scratch/mod.rs"]
mod scratch;

#[path = "server/admin.rs"]
mod admin;
#[path = "server/authz.rs"]
mod authz;
#[path = "server/bad_input.rs"]
mod bad_input;
#[path = "server/chat.rs"]
mod chat;
#[path = "server/common.rs"]
mod common;
#[path = "server/contract.rs"]
mod contract;
#[path = "server/features.rs"]
mod features;
#[path = "server/group.rs"]
mod group;
#[path = "server/groups.rs"]
mod groups;
#[path = "server/media.rs"]
mod media;
#[path = "server/ratelimit.rs"]
mod ratelimit;
#[path = "server/restart.rs"]
mod restart;
#[path = "server/sync.rs"]
mod sync;
#[path = "server/text_rules.rs"]
mod text_rules;
