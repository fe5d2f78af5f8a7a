//! The end-to-end suite of `server/` again, on PostgreSQL: each test gets a database of its
//! own on the server named by `BANTER_TEST_POSTGRES_URL`.

/// The database server the suite runs on.
const BACKEND: Option<scratch::Server> = Some(scratch::Server::Postgres);
/// One node, not a cluster.
const CLUSTER: Option<cluster_support::Bus> = None;

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
#[path = "server/features.rs"]
mod features;
#[path = "server/group.rs"]
mod group;
#[path = "server/groups.rs"]
mod groups;
#[path = "server/hardening.rs"]
mod hardening;
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
