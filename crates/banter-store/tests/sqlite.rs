//! Runs the conformance suite against SQLite, each test on its own temporary database
//! file, plus the few checks that only make sense for SQLite.

#[macro_use]
mod conformance;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use banter_store::sqlite::SqliteStore;
use banter_store::{Database, Durability, OpenOptions, SendPolicy, StoreError, StreamAppend};
use sqlx::{Connection, SqliteConnection};
use tempfile::TempDir;

/// A database file in a directory that is deleted when the test ends.
struct SqliteBackend {
    dir: TempDir,
    url: String,
    options: OpenOptions,
}

impl conformance::Backend for SqliteBackend {
    fn open(&self) -> Pin<Box<dyn Future<Output = Arc<dyn Database>> + Send + '_>> {
        Box::pin(async move {
            banter_store::open(&self.url, &self.options)
                .await
                .expect("open the SQLite store")
        })
    }

    fn execute<'a>(&'a self, sql: &'a str) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            let mut conn = SqliteConnection::connect(&self.url).await.expect("connect");
            sqlx::Executor::execute(&mut conn, sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        })
    }
}

fn backend_with(options: OpenOptions) -> SqliteBackend {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("banter.db").display());
    SqliteBackend { dir, url, options }
}

async fn sqlite_backend() -> SqliteBackend {
    backend_with(OpenOptions::default())
}

conformance_tests!(sqlite_backend);

#[tokio::test]
async fn relaxed_durability_and_one_connection_still_conform() {
    let backend = backend_with(OpenOptions {
        durability: Durability::Relaxed,
        connections_max: 1,
    });
    let store = conformance::Backend::open(&backend).await;
    conformance::appends_are_idempotent(store.clone()).await;
    conformance::seqs_are_gapless_under_concurrency(store).await;
}

#[tokio::test]
async fn in_memory_database_is_shared_by_the_pool() {
    let store = banter_store::open("sqlite::memory:", &OpenOptions::default())
        .await
        .expect("open in memory");
    conformance::conversation_list_and_detail(store).await;
}

#[tokio::test]
async fn unusable_options_are_config_errors() {
    let result = SqliteStore::open("sqlite://x.db?mode=bogus", &OpenOptions::default()).await;
    assert!(matches!(result, Err(StoreError::Config(_))), "{result:?}");
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("b.db").display());
    let none = OpenOptions {
        connections_max: 0,
        ..OpenOptions::default()
    };
    let result = SqliteStore::open(&url, &none).await;
    assert!(matches!(result, Err(StoreError::Config(_))), "{result:?}");
    let result = banter_store::open("redis://localhost", &OpenOptions::default()).await;
    assert!(
        matches!(result, Err(StoreError::Config(_))),
        "{:?}",
        result.err()
    );
}

/// A stored message reaches the database file itself within moments of its commit: the
/// checkpoint thread copies the WAL's frames back while the writer goes on. Without it the
/// frames stay in the WAL until the writer's own checkpoint, after 10,000 of them, which
/// holds that commit for the whole copy.
#[tokio::test]
async fn committed_sends_reach_the_database_file_without_the_writers_checkpoint() {
    let backend = sqlite_backend().await;
    let store = conformance::Backend::open(&backend).await;
    let ann = conformance::user(&store, "ann").await;
    let bob = conformance::user(&store, "bob").await;
    conformance::befriend(&store, &ann, &bob).await;
    let direct = store.open_direct(ann.id, bob.id, true).await.unwrap();
    let words = "a message that should be checkpointed 7f3a";
    let send = StreamAppend::Send(conformance::text(ann.id, direct, "c1", words));
    let policy = SendPolicy {
        direct_requires_friendship: true,
    };
    let mut answers = store.append(&[send], policy).await;
    answers.remove(0).expect("send");

    let file = backend.dir.path().join("banter.db");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let bytes = std::fs::read(&file).expect("read the database file");
        if bytes.windows(words.len()).any(|w| w == words.as_bytes()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the message is still only in the WAL after 5 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
