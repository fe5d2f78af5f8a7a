//! The SQLite backend of [`crate::Store`]: its dialect of the shared queries (`crate::sql`)
//! and the statements it writes its own way: those of the send batch, a `VALUES` list
//! joined to the table so that each row is one index probe (plans in `docs/storage.md`).
//!
//! One database file in WAL mode: readers never wait for the writer, and writers take the
//! database lock at `BEGIN IMMEDIATE`, so two writers queue on `busy_timeout` instead of
//! deadlocking when a read transaction tries to upgrade. With one writer at a time there
//! are no row locks to take: the `lock_*` primitives only read.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use banter_protocol::model::ConversationKind;
use banter_protocol::{ConversationId, MessageId, UserId};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool, Transaction};

use crate::engine::Engine;
use crate::row::{entry_at, ids_in_order, message_sql, parse_kind, rows_per_statement, NewEntry};
use crate::sql::{
    statements_on, AccountSql, ConversationSql, Dialect, Flavor, MediaSql, SeedSql, SocialSql,
    StreamSql,
};
use crate::{Durability, Entry, OpenOptions, StoreError, StoreResult};

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
        // An in-memory database exists once per pool: there the writer must share it.
        let writer = if in_memory {
            pool.clone()
        } else {
            pool_of(1).connect_with(connect).await?
        };
        Ok(Engine::new(SqliteDialect { pool, writer }))
    }
}

fn entries(rows: &[SqliteRow]) -> StoreResult<Vec<Entry>> {
    Ok(rows
        .iter()
        .map(|row| entry_at(row, 0))
        .collect::<Result<_, _>>()?)
}

/// Those of `pairs` that `select` keeps: the pairs go in as a `VALUES` list between `head`
/// (which names it `p`) and `select`, each then probed in the table's primary key (a
/// row-value `IN` over `VALUES` would scan the table instead).
async fn pairs_where(
    conn: &mut SqliteConnection,
    pairs: &[(UserId, UserId)],
    head: &'static str,
    select: &'static str,
) -> StoreResult<Vec<(UserId, UserId)>> {
    let mut found = Vec::new();
    for chunk in pairs.chunks(rows_per_statement(2, BIND_PARAMS_MAX)) {
        let mut query = QueryBuilder::<Sqlite>::new(head);
        query.push_values(chunk, |mut row, (a, b)| {
            row.push_bind(a.0).push_bind(b.0);
        });
        query.push(select);
        let rows: Vec<(i64, i64)> = query
            .build_query_as()
            .persistent(false)
            .fetch_all(&mut *conn)
            .await?;
        found.extend(rows.into_iter().map(|(a, b)| (UserId(a), UserId(b))));
    }
    Ok(found)
}

statements_on!(SqliteDialect, Sqlite, Flavor::Sqlite);

#[async_trait]
impl Dialect for SqliteDialect {
    type Tx = Transaction<'static, Sqlite>;
    type Pooled = PoolConnection<Sqlite>;
    const BIND_PARAMS_MAX: usize = BIND_PARAMS_MAX;
    /// SQLite has no limit of its own on `IN` lists but the one on bound parameters.
    const IN_LIST_MAX: usize = BIND_PARAMS_MAX;

    /// `BEGIN IMMEDIATE` takes the database's write lock at the start, so two writers queue
    /// on `busy_timeout` instead of deadlocking when a read transaction tries to upgrade.
    async fn begin_write(&self) -> Result<Self::Tx, sqlx::Error> {
        self.writer.begin_with("BEGIN IMMEDIATE").await
    }

    /// A deferred transaction: in WAL mode, one snapshot that never waits for the writer.
    async fn begin_read(&self) -> Result<Self::Tx, sqlx::Error> {
        self.pool.begin().await
    }

    async fn commit(tx: Self::Tx) -> Result<(), sqlx::Error> {
        tx.commit().await
    }

    async fn acquire(&self) -> Result<Self::Pooled, sqlx::Error> {
        self.pool.acquire().await
    }
}

impl AccountSql for SqliteDialect {}

impl SocialSql for SqliteDialect {}

impl ConversationSql for SqliteDialect {}

#[async_trait]
impl StreamSql for SqliteDialect {
    async fn lock_conversations(
        conn: &mut SqliteConnection,
        conversations: &[ConversationId],
    ) -> StoreResult<Vec<(ConversationId, ConversationKind)>> {
        let mut found = Vec::with_capacity(conversations.len());
        for chunk in conversations.chunks(rows_per_statement(1, BIND_PARAMS_MAX)) {
            let mut select =
                QueryBuilder::<Sqlite>::new("SELECT id, kind FROM conversations WHERE id IN (");
            let mut list = select.separated(", ");
            for id in chunk {
                list.push_bind(id.0);
            }
            list.push_unseparated(")");
            let rows: Vec<(i64, String)> = select
                .build_query_as()
                .persistent(false)
                .fetch_all(&mut *conn)
                .await?;
            for (id, kind) in rows {
                found.push((ConversationId(id), parse_kind(&kind)?));
            }
        }
        Ok(found)
    }

    async fn blocks_among(
        conn: &mut SqliteConnection,
        pairs: &[(UserId, UserId)],
    ) -> StoreResult<Vec<(UserId, UserId)>> {
        pairs_where(
            conn,
            pairs,
            "WITH p (user_id, blocked_id) AS (",
            ") SELECT p.user_id, p.blocked_id FROM p WHERE EXISTS \
             (SELECT 1 FROM blocks b WHERE b.user_id = p.user_id AND b.blocked_id = p.blocked_id)",
        )
        .await
    }

    async fn strangers_among(
        conn: &mut SqliteConnection,
        pairs: &[(UserId, UserId)],
    ) -> StoreResult<Vec<(UserId, UserId)>> {
        pairs_where(
            conn,
            pairs,
            "WITH p (user_id, friend_id) AS (",
            ") SELECT p.user_id, p.friend_id FROM p WHERE NOT EXISTS \
             (SELECT 1 FROM friendships f WHERE f.user_id = p.user_id AND f.friend_id = p.friend_id)",
        )
        .await
    }

    /// A join against the keys as a `VALUES` list: one probe of the unique
    /// `(conversation_id, sender_id, client_msg_id)` index per key. (A row-value `IN` over
    /// `VALUES` would scan the whole index instead.)
    async fn messages_by_client_ids(
        conn: &mut SqliteConnection,
        keys: &[(ConversationId, UserId, &str)],
    ) -> StoreResult<Vec<Entry>> {
        let mut found = Vec::new();
        for chunk in keys.chunks(rows_per_statement(3, BIND_PARAMS_MAX)) {
            let mut select =
                QueryBuilder::<Sqlite>::new("WITH k (conversation, sender, client_id) AS (");
            select.push_values(chunk, |mut row, &(conversation, sender, client_id)| {
                row.push_bind(conversation.0)
                    .push_bind(sender.0)
                    .push_bind(client_id);
            });
            select.push(") ");
            select.push(message_sql!(
                "JOIN k ON conversation_id = k.conversation AND sender_id = k.sender \
                 AND client_msg_id = k.client_id"
            ));
            let rows = select
                .build()
                .persistent(false)
                .fetch_all(&mut *conn)
                .await?;
            found.extend(entries(&rows)?);
        }
        Ok(found)
    }

    async fn bump_last_seqs(
        conn: &mut SqliteConnection,
        bumps: &[(ConversationId, i64)],
        now_ms: i64,
    ) -> StoreResult<Vec<(ConversationId, i64)>> {
        let mut bumped = Vec::with_capacity(bumps.len());
        // Two parameters per conversation, and `now_ms`.
        for chunk in bumps.chunks(rows_per_statement(2, BIND_PARAMS_MAX - 1)) {
            let mut update = QueryBuilder::<Sqlite>::new("WITH b (id, added) AS (");
            update.push_values(chunk, |mut row, (conversation, count)| {
                row.push_bind(conversation.0).push_bind(*count);
            });
            update.push(
                ") UPDATE conversations SET last_seq = last_seq + b.added, \
                 last_activity_ms = MAX(last_activity_ms, ",
            );
            update.push_bind(now_ms);
            update.push(
                ") FROM b WHERE conversations.id = b.id \
                 RETURNING conversations.id, conversations.last_seq",
            );
            let rows: Vec<(i64, i64)> = update
                .build_query_as()
                .persistent(false)
                .fetch_all(&mut *conn)
                .await?;
            bumped.extend(
                rows.into_iter()
                    .map(|(id, last_seq)| (ConversationId(id), last_seq)),
            );
        }
        Ok(bumped)
    }

    /// Multi-row INSERTs, each reporting `(conversation_id, seq, id)` for every row.
    async fn insert_entries(
        conn: &mut SqliteConnection,
        entries: &[NewEntry],
        now_ms: i64,
    ) -> StoreResult<Vec<MessageId>> {
        let bodies = entries
            .iter()
            .map(|entry| entry.draft.body.encode())
            .collect::<Result<Vec<_>, _>>()?;
        let mut rows: Vec<(i64, i64, i64)> = Vec::with_capacity(entries.len());
        let per_statement = rows_per_statement(7, BIND_PARAMS_MAX);
        for (chunk, bodies) in entries
            .chunks(per_statement)
            .zip(bodies.chunks(per_statement))
        {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO messages \
                 (conversation_id, seq, sender_id, client_msg_id, kind, body, recalled, created_at_ms) ",
            );
            insert.push_values(chunk.iter().zip(bodies), |mut row, (entry, body)| {
                row.push_bind(entry.conversation.0)
                    .push_bind(entry.seq)
                    .push_bind(entry.draft.sender.0)
                    .push_bind(entry.draft.client_msg_id.as_deref())
                    .push_bind(entry.draft.body.kind())
                    .push_bind(body.as_str())
                    .push("0")
                    .push_bind(now_ms);
            });
            insert.push(" RETURNING conversation_id, seq, id");
            let inserted: Vec<(i64, i64, i64)> = insert
                .build_query_as()
                .persistent(false)
                .fetch_all(&mut *conn)
                .await?;
            rows.extend(inserted);
        }
        ids_in_order(entries, rows)
    }

    async fn advance_read_seqs(
        conn: &mut SqliteConnection,
        pointers: &[(ConversationId, UserId, i64)],
    ) -> StoreResult<()> {
        for chunk in pointers.chunks(rows_per_statement(3, BIND_PARAMS_MAX)) {
            let mut update = QueryBuilder::<Sqlite>::new("WITH p (conversation, member, seq) AS (");
            update.push_values(chunk, |mut row, (conversation, user, seq)| {
                row.push_bind(conversation.0)
                    .push_bind(user.0)
                    .push_bind(*seq);
            });
            update.push(
                ") UPDATE members SET read_seq = MAX(read_seq, p.seq) FROM p \
                 WHERE members.conversation_id = p.conversation AND members.user_id = p.member",
            );
            update.build().persistent(false).execute(&mut *conn).await?;
        }
        Ok(())
    }
}

impl MediaSql for SqliteDialect {}

impl SeedSql for SqliteDialect {}
