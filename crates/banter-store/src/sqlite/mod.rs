//! The SQLite backend of [`crate::Store`]: its dialect of the shared queries (`crate::sql`)
//! and the statements it writes its own way: those of the send batch, a `VALUES` list
//! joined to the table so that each row is one index probe (plans in `docs/storage.md`).
//!
//! One database file in WAL mode: readers never wait for the writer, and writers take the
//! database lock at `BEGIN IMMEDIATE`, so two writers queue on `busy_timeout` instead of
//! deadlocking when a read transaction tries to upgrade. With one writer at a time there
//! are no row locks to take: the `lock_*` primitives only read.

mod batch;
mod checkpoint;
mod writer;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqliteConnection, SqlitePool, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::engine::Engine;
use crate::sql::{
    statements_on, AccountSql, ConversationSql, Dialect, Flavor, MediaSql, SeedSql, SocialSql,
    StreamWriter,
};
use crate::{Durability, OpenOptions, StoreError, StoreResult};
use writer::StreamThread;
pub(crate) use writer::WriterError;

/// How long a statement waits for another connection's write lock before failing with
/// `SQLITE_BUSY`. Write transactions are short, so hitting this means the disk has stalled.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Most bound parameters one statement may carry: `SQLITE_MAX_VARIABLE_NUMBER`, 32766 since
/// SQLite 3.32 (sqlx bundles a newer one). Multi-row inserts are split to stay under it.
const BIND_PARAMS_MAX: usize = 32_766;

/// The store on one SQLite database.
pub type SqliteStore = Engine<SqliteDialect>;

/// SQLite's dialect of the store's queries.
#[derive(Debug, Clone)]
pub struct SqliteDialect {
    /// Reads, and writes outside a transaction.
    pool: SqlitePool,
    /// Write transactions: one connection, because SQLite has one writer at a time anyway.
    /// Writers then queue in the pool instead of polling the file lock on `busy_timeout`,
    /// and every write runs on the same connection, whose page cache stays warm.
    writer: SqlitePool,
    /// The stream's appends: a thread with a connection of its own (none for an in-memory
    /// database, which exists once per pool: there the pool's writer appends).
    stream: Option<Arc<StreamThread>>,
    /// Whose turn it is to write: the stream writer's or the pool writer's.
    turn: WriteTurn,
}

/// The queue of SQLite's two writers, the stream writer thread and the pool's write
/// transactions: each takes the turn before `BEGIN IMMEDIATE` and keeps it until its
/// transaction ends, so neither polls the file lock behind the other.
pub(crate) type WriteTurn = Arc<Mutex<()>>;

/// A transaction of the pool's, holding the write turn if it writes.
pub struct SqliteTx {
    tx: Transaction<'static, Sqlite>,
    /// Released after the transaction ends (fields drop in order).
    _turn: Option<OwnedMutexGuard<()>>,
}

impl std::ops::Deref for SqliteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for SqliteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}

/// Rows the connection's worker thread may hand over before the reader takes them. sqlx's
/// default (50) makes the worker stop and wait for the async side every 50 rows: a
/// 1,000-member group's recipient list took 20 handoffs between threads per batch.
const ROW_BUFFER_ROWS: usize = 4096;

impl SqliteStore {
    /// Opens (creating if missing) the database at `url`, e.g. `sqlite://banter.db`, and
    /// runs the migrations in `migrations/sqlite`.
    pub async fn open(url: &str, options: &OpenOptions) -> StoreResult<SqliteStore> {
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("invalid SQLite URL {url:?}: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            .row_buffer_size(ROW_BUFFER_ROWS)
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory")
            .pragma("wal_autocheckpoint", "10000")
            .synchronous(match options.durability {
                Durability::Full => SqliteSynchronous::Full,
                Durability::Relaxed => SqliteSynchronous::Normal,
            });
        if options.connections_max == 0 {
            return Err(StoreError::Config(
                "connections_max must be at least 1".into(),
            ));
        }
        // Switching a new database to WAL takes an exclusive lock that `busy_timeout` does
        // not wait for, and sqlx's pool opens its first connection twice at once when
        // `min_connections` is set (its maintenance task races `connect_with`): seen once
        // in CI as "database is locked" at start-up. One lone connection makes the switch
        // first; for the pool's connections WAL is then already set.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if !in_memory {
            let lone = <SqliteConnection as sqlx::Connection>::connect_with(&connect).await?;
            sqlx::Connection::close(lone).await?;
        }
        // One connection stays open for the store's lifetime: an in-memory database lives
        // only as long as some connection to it does, and a file database is spared
        // reconnecting after idle periods.
        let pool_of = |connections| {
            SqlitePoolOptions::new()
                .max_connections(connections)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        };
        let pool = pool_of(options.connections_max)
            .connect_with(connect.clone())
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        let turn = WriteTurn::default();
        // An in-memory database exists once per pool: there the writer must share it.
        let (writer, stream) = if in_memory {
            (pool.clone(), None)
        } else {
            let path = connect.get_filename().to_path_buf();
            let stream = StreamThread::start(path, options.durability, turn.clone()).await?;
            (
                pool_of(1).connect_with(connect).await?,
                Some(Arc::new(stream)),
            )
        };
        Ok(Engine::new(SqliteDialect {
            pool,
            writer,
            stream,
            turn,
        }))
    }
}

statements_on!(SqliteDialect, Sqlite, Flavor::Sqlite);

#[async_trait]
impl Dialect for SqliteDialect {
    type Tx = SqliteTx;
    type Pooled = PoolConnection<Sqlite>;
    const BIND_PARAMS_MAX: usize = BIND_PARAMS_MAX;
    /// SQLite has no limit of its own on `IN` lists but the one on bound parameters.
    const IN_LIST_MAX: usize = BIND_PARAMS_MAX;

    /// `BEGIN IMMEDIATE` takes the database's write lock at the start, so two writers queue
    /// on `busy_timeout` instead of deadlocking when a read transaction tries to upgrade.
    async fn begin_write(&self) -> Result<Self::Tx, sqlx::Error> {
        let turn = self.turn.clone().lock_owned().await;
        Ok(SqliteTx {
            tx: self.writer.begin_with("BEGIN IMMEDIATE").await?,
            _turn: Some(turn),
        })
    }

    /// A deferred transaction: in WAL mode, one snapshot that never waits for the writer.
    async fn begin_read(&self) -> Result<Self::Tx, sqlx::Error> {
        Ok(SqliteTx {
            tx: self.pool.begin().await?,
            _turn: None,
        })
    }

    async fn commit(tx: Self::Tx) -> Result<(), sqlx::Error> {
        tx.tx.commit().await
    }

    async fn acquire(&self) -> Result<Self::Pooled, sqlx::Error> {
        self.pool.acquire().await
    }

    fn stream_writer(&self) -> Option<&dyn StreamWriter> {
        self.stream
            .as_deref()
            .map(|stream| stream as &dyn StreamWriter)
    }
}

impl AccountSql for SqliteDialect {}

impl SocialSql for SqliteDialect {}

impl ConversationSql for SqliteDialect {}

batch::stream_sql_on!(SqliteDialect, SqliteConnection);

impl MediaSql for SqliteDialect {}

impl SeedSql for SqliteDialect {}
