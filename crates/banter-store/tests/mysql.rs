//! Runs the conformance suite against a real MySQL or MariaDB server named by
//! `BANTER_TEST_MYSQL_URL` (e.g. `mysql://root@127.0.0.1:3306/test`), each test in a
//! database of its own, plus MySQL's migration checks.

#[macro_use]
mod conformance;
mod scratch;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use banter_store::{Database, Durability, OpenOptions, StoreError};
use scratch::{ScratchDatabase, Server};
use sqlx::{Connection, MySqlConnection};

struct MySqlBackend {
    database: ScratchDatabase,
    options: OpenOptions,
}

impl conformance::Backend for MySqlBackend {
    fn open(&self) -> Pin<Box<dyn Future<Output = Arc<dyn Database>> + Send + '_>> {
        Box::pin(async move {
            banter_store::open(&self.database.url, &self.options)
                .await
                .expect("open the MySQL store")
        })
    }

    fn execute<'a>(&'a self, sql: &'a str) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(self.database.execute(sql))
    }
}

async fn mysql_backend() -> Option<MySqlBackend> {
    Some(MySqlBackend {
        database: scratch::create(Server::MySql).await?,
        options: OpenOptions::default(),
    })
}

conformance_tests!(mysql_backend);

/// The applied migrations, as (version, description, success).
async fn applied(url: &str) -> Vec<(i64, String, bool)> {
    let mut conn = MySqlConnection::connect(url).await.expect("connect");
    // CAST: the scratch database's binary collation makes text columns look like VARBINARY
    // to sqlx.
    sqlx::query_as(
        "SELECT version, CAST(description AS CHAR), success FROM _sqlx_migrations \
         ORDER BY version",
    )
    .fetch_all(&mut conn)
    .await
    .expect("read the migrations table")
}

#[tokio::test]
async fn migrations_apply_to_an_empty_database_and_rerun_as_no_op() {
    let Some(database) = scratch::create(Server::MySql).await else {
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
    // The `mariadb://` spelling reaches the same backend.
    let url = database.url.replacen("mysql://", "mariadb://", 1);
    banter_store::open(&url, &OpenOptions::default())
        .await
        .expect("second open is a no-op");
    assert_eq!(applied(&database.url).await, first);
}

#[tokio::test]
async fn tables_are_innodb_utf8mb4_bin() {
    let Some(database) = scratch::create(Server::MySql).await else {
        return;
    };
    let _store = banter_store::open(&database.url, &OpenOptions::default())
        .await
        .expect("open");
    let mut conn = MySqlConnection::connect(&database.url)
        .await
        .expect("connect");
    let tables: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT CAST(table_name AS CHAR), CAST(engine AS CHAR), CAST(table_collation AS CHAR) \
         FROM information_schema.tables \
         WHERE table_schema = DATABASE() AND table_name <> '_sqlx_migrations' \
         ORDER BY table_name",
    )
    .fetch_all(&mut conn)
    .await
    .expect("list tables");
    assert_eq!(tables.len(), 10, "{tables:?}");
    for (table, engine, collation) in tables {
        assert_eq!(
            (engine.as_str(), collation.as_str()),
            ("InnoDB", "utf8mb4_bin"),
            "{table}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relaxed_durability_and_one_connection_still_conform() {
    let Some(database) = scratch::create(Server::MySql).await else {
        return;
    };
    let backend = MySqlBackend {
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
    let Some(admin_url) = scratch::admin_url(Server::MySql) else {
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
