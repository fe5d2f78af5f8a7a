//! Runs the conformance suite against a real PostgreSQL server named by
//! `BANTER_TEST_POSTGRES_URL` (e.g. `postgres://root@127.0.0.1:5432/test`), each test in a
//! database of its own, plus PostgreSQL's migration checks.

#[macro_use]
mod conformance;
mod scratch;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use banter_store::{Database, Durability, OpenOptions, StoreError};
use scratch::{ScratchDatabase, Server};
use sqlx::{Connection, PgConnection};

struct PostgresBackend {
    database: ScratchDatabase,
    options: OpenOptions,
}

impl conformance::Backend for PostgresBackend {
    fn open(&self) -> Pin<Box<dyn Future<Output = Arc<dyn Database>> + Send + '_>> {
        Box::pin(async move {
            banter_store::open(&self.database.url, &self.options)
                .await
                .expect("open the PostgreSQL store")
        })
    }

    fn execute<'a>(&'a self, sql: &'a str) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(self.database.execute(sql))
    }
}

async fn postgres_backend() -> Option<PostgresBackend> {
    Some(PostgresBackend {
        database: scratch::create(Server::Postgres).await?,
        options: OpenOptions::default(),
    })
}

conformance_tests!(postgres_backend);

/// The applied migrations, as (version, description, success).
async fn applied(url: &str) -> Vec<(i64, String, bool)> {
    let mut conn = PgConnection::connect(url).await.expect("connect");
    sqlx::query_as("SELECT version, description, success FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&mut conn)
        .await
        .expect("read the migrations table")
}

#[tokio::test]
async fn migrations_apply_to_an_empty_database_and_rerun_as_no_op() {
    let Some(database) = scratch::create(Server::Postgres).await else {
        return;
    };
    let store = banter_store::open(&database.url, &OpenOptions::default())
        .await
        .expect("first open migrates");
    let first = applied(&database.url).await;
    assert_eq!(
        first,
        vec![
            (1, "initial".to_owned(), true),
            (2, "media".to_owned(), true)
        ]
    );
    drop(store);
    // The URL scheme's other spelling reaches the same backend.
    let url = database.url.replacen("postgres://", "postgresql://", 1);
    banter_store::open(&url, &OpenOptions::default())
        .await
        .expect("second open is a no-op");
    assert_eq!(applied(&database.url).await, first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relaxed_durability_and_one_connection_still_conform() {
    let Some(database) = scratch::create(Server::Postgres).await else {
        return;
    };
    let backend = PostgresBackend {
        database,
        options: OpenOptions {
            durability: Durability::Relaxed,
            connections_max: 1,
        },
    };
    let store = conformance::Backend::open(&backend).await;
    conformance::appends_are_idempotent(store.clone()).await;
    conformance::seqs_are_gapless_under_concurrency(store).await;
}

#[tokio::test]
async fn unusable_options_are_config_errors() {
    let Some(admin_url) = scratch::admin_url(Server::Postgres) else {
        return;
    };
    let none = OpenOptions {
        connections_max: 0,
        ..OpenOptions::default()
    };
    let result = banter_store::open(&admin_url, &none).await;
    assert!(
        matches!(result, Err(StoreError::Config(_))),
        "{:?}",
        result.err()
    );
}
