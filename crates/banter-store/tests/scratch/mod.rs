//! A throwaway database on a real PostgreSQL or MySQL/MariaDB server, one per test.
//!
//! The server is named by an environment variable holding an admin URL (the database in it
//! is only used to connect). Each test creates `banter_test_<pid>_<nanos>_<n>`, runs in it,
//! and drops it when the test ends, passed or panicked, so parallel and repeated runs never
//! see each other's rows. With the variable unset the backend is not tested: in CI
//! (`CI=true`) that is a failure, elsewhere it is said plainly once and the tests pass.

// Each test binary uses one server's half of this module.
#![allow(dead_code)]

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{Connection, Executor, MySqlConnection, PgConnection};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Postgres,
    MySql,
}

impl Server {
    fn env_var(self) -> &'static str {
        match self {
            Server::Postgres => "BANTER_TEST_POSTGRES_URL",
            Server::MySql => "BANTER_TEST_MYSQL_URL",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Server::Postgres => "PostgreSQL",
            Server::MySql => "MySQL/MariaDB",
        }
    }

    fn told(self) -> &'static AtomicBool {
        static POSTGRES: AtomicBool = AtomicBool::new(false);
        static MYSQL: AtomicBool = AtomicBool::new(false);
        match self {
            Server::Postgres => &POSTGRES,
            Server::MySql => &MYSQL,
        }
    }
}

/// A database that exists until this value is dropped.
pub struct ScratchDatabase {
    server: Server,
    admin_url: String,
    pub name: String,
    /// The URL of the scratch database itself, for `banter_store::open`.
    pub url: String,
}

/// The server's admin URL, or `None` (after saying so) when it is not configured.
pub fn admin_url(server: Server) -> Option<String> {
    match std::env::var(server.env_var()) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!(
                    "{} is unset in CI: the {} backend must be tested there",
                    server.env_var(),
                    server.name()
                );
            }
            if !server.told().swap(true, Ordering::Relaxed) {
                // Straight to stderr, past the test harness's capture, so that a passing run
                // does not hide that nothing was tested.
                // One write, so the line is not interleaved with the harness's own.
                let line = format!(
                    "\n{} backend NOT tested: {} unset\n",
                    server.name(),
                    server.env_var()
                );
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
            None
        }
    }
}

/// Creates a fresh, empty database on `server`, or `None` when the server is not configured.
pub async fn create(server: Server) -> Option<ScratchDatabase> {
    let admin_url = admin_url(server)?;
    let name = unique_name();
    match server {
        Server::Postgres => {
            let mut admin = PgConnection::connect(&admin_url)
                .await
                .expect("connect to the PostgreSQL server");
            admin
                .execute(format!("CREATE DATABASE {name} ENCODING 'UTF8'").as_str())
                .await
                .expect("create the scratch database");
            admin.close().await.expect("disconnect");
        }
        Server::MySql => {
            let mut admin = MySqlConnection::connect(&admin_url)
                .await
                .expect("connect to the MySQL server");
            admin
                .execute(
                    format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
                        .as_str(),
                )
                .await
                .expect("create the scratch database");
            admin.close().await.expect("disconnect");
        }
    }
    let url = with_database(&admin_url, &name);
    Some(ScratchDatabase {
        server,
        admin_url,
        name,
        url,
    })
}

impl ScratchDatabase {
    /// Runs one SQL statement in this database, past the store.
    pub async fn execute(&self, sql: &str) {
        let done = match self.server {
            Server::Postgres => {
                let mut conn = PgConnection::connect(&self.url).await.expect("connect");
                conn.execute(sql).await.map(drop)
            }
            Server::MySql => {
                let mut conn = MySqlConnection::connect(&self.url).await.expect("connect");
                conn.execute(sql).await.map(drop)
            }
        };
        done.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let (server, admin_url, name) = (self.server, self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread with a
        // runtime of its own does the async work and is waited for.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                match server {
                    Server::Postgres => {
                        let mut admin = PgConnection::connect(&admin_url).await?;
                        // FORCE closes the store's pooled connections that are still open.
                        admin
                            .execute(
                                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
                            )
                            .await?;
                        admin.close().await
                    }
                    Server::MySql => {
                        let mut admin = MySqlConnection::connect(&admin_url).await?;
                        // As PostgreSQL's FORCE: a store still running (its test ended
                        // without stopping it) may hold a connection inside a transaction,
                        // whose metadata locks would make the DROP wait for ever.
                        let holders: Vec<(u64,)> = sqlx::query_as(
                            "SELECT CAST(id AS UNSIGNED) FROM information_schema.processlist WHERE db = ?",
                        )
                        .bind(&name)
                        .fetch_all(&mut admin)
                        .await?;
                        for (id,) in holders {
                            // Gone already is fine.
                            let _ = admin.execute(format!("KILL {id}").as_str()).await;
                        }
                        admin
                            .execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
                            .await?;
                        admin.close().await
                    }
                }
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("could not drop scratch database {}: {error}", self.name),
            Err(_) => eprintln!("dropping scratch database {} panicked", self.name),
        }
    }
}

/// A database name no other test, run or process uses.
fn unique_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "banter_test_{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000_000,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `url` with its database (the path) replaced by `name`; the query string is kept.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority = base.find("://").map_or(0, |at| at + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |at| at + authority);
    match query {
        Some(query) => format!("{}/{name}?{query}", &base[..path]),
        None => format!("{}/{name}", &base[..path]),
    }
}
