//! The MySQL/MariaDB backend of [`crate::Store`]: its dialect of the shared queries
//! (`crate::sql`) and the statements it writes its own way: those that would need
//! `RETURNING` of more than an id (`update_profile`, `revoke_sessions`, the send batch's
//! seq bump and inserted ids), `set_password` (MySQL counts changed rows, not matched
//! ones), `lock_read_pointer`, and the send batch's row-value `IN` lists and `CASE`
//! updates (plans in `docs/storage.md`).
//!
//! The same design as [`crate::postgres`], in MySQL's dialect: several server processes may
//! share one database; connections run at READ COMMITTED (each statement sees what was
//! committed before it, as on PostgreSQL, and InnoDB takes no gap locks); the engine checks
//! every rule inside the write transaction that acts on it, after the row lock that
//! serializes writers on the same thing, always taken in ascending id order; and a
//! transaction that still loses a race is run again. MySQL has no `RETURNING`, so ids come
//! from `LAST_INSERT_ID()` and bumped values are read back inside the transaction, where
//! the row lock taken by the `UPDATE` is held until commit.

use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;

use async_trait::async_trait;
use banter_protocol::model::ConversationKind;
use banter_protocol::{ConversationId, MessageId, UserId};
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions, MySqlRow};
use sqlx::pool::PoolConnection;
use sqlx::{Executor, MySql, MySqlConnection, MySqlPool, QueryBuilder, Transaction};

use crate::engine::Engine;
use crate::row::{
    clearable, entry_at, ids_in_order, message_columns, parse_kind, rows_per_statement,
    with_retries, Columns, NewEntry, Retry, Text,
};
use crate::sql::{
    args, ids, sql, statements_on, AccountSql, Arg, ConversationSql, Dialect, Flavor, MediaSql,
    SeedSql, SocialSql, Statement, Statements, StreamSql,
};
use crate::{Entry, OpenOptions, ProfileUpdate, SessionId, StoreError, StoreResult, UserRecord};

/// The store on one MySQL or MariaDB database.
pub type MySqlStore = Engine<MySqlDialect>;

/// Most bound parameters one prepared statement may carry (the protocol counts them in 16
/// bits). Multi-row inserts are split to stay under it.
const BIND_PARAMS_MAX: usize = 65_535;

/// Most values in one `IN` list (rows, for a row-value `IN`), and most `WHEN`s in one
/// `CASE`. MariaDB rewrites an `IN` list of `in_predicate_conversion_threshold` (1000) or
/// more values into a join against a materialized subquery, which reads (and locks) rows in
/// no particular order instead of walking the index upwards; longer lists are split into
/// several statements, in order.
const IN_LIST_MAX: usize = 999;

/// MySQL's (and MariaDB's) dialect of the store's queries.
#[derive(Debug, Clone)]
pub struct MySqlDialect {
    pool: MySqlPool,
}

impl MySqlStore {
    /// Connects to the database at `url`, e.g. `mysql://banter@localhost/banter` (the
    /// `mariadb://` spelling is accepted too), and runs the migrations in `migrations/mysql`.
    /// Several processes may open the same database at once: the migrator holds a named
    /// lock while it runs.
    ///
    /// [`crate::Durability`] is not applied: how InnoDB flushes its log on commit
    /// (`innodb_flush_log_at_trx_commit`) is a setting of the database server, not of a
    /// session.
    pub async fn open(url: &str, options: &OpenOptions) -> StoreResult<MySqlStore> {
        if options.connections_max == 0 {
            return Err(StoreError::Config(
                "connections_max must be at least 1".into(),
            ));
        }
        let url = match url.strip_prefix("mariadb:") {
            Some(rest) => format!("mysql:{rest}"),
            None => url.to_owned(),
        };
        let connect = MySqlConnectOptions::from_str(&url)
            .map_err(|e| StoreError::Config(format!("invalid MySQL URL: {e}")))?
            .charset("utf8mb4")
            .collation("utf8mb4_bin");
        let pool = MySqlPoolOptions::new()
            .max_connections(options.connections_max)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                        .await?;
                    Ok(())
                })
            })
            .connect_with(connect)
            .await?;
        sqlx::migrate!("migrations/mysql").run(&pool).await?;
        Ok(Engine::new(MySqlDialect { pool }))
    }
}

fn entries(rows: &[MySqlRow]) -> StoreResult<Vec<Entry>> {
    Ok(rows
        .iter()
        .map(|row| entry_at(row, 0))
        .collect::<Result<_, _>>()?)
}

/// Rows of keys per derived table (see [`derived_rows`]).
const DERIVED_ROWS_MAX: usize = 500;

/// `rows` rows of placeholders named `columns`, as a derived table's body:
/// `SELECT ? AS a, ? AS b UNION ALL SELECT ?, ? …`. Joined to a table, each row is one probe
/// of its index. This replaces a row-value `IN ((?, ?), …)`, whose planning MariaDB does
/// range by range: 34 ms to plan 400 keys that take 0.5 ms to read, under a send batch
/// (docs/storage.md). The `VALUES` list the other backends join to is spelled differently
/// by MariaDB and MySQL (`VALUES ROW(…)`); `UNION ALL` reads the same on both.
fn derived_rows(columns: &[&str], rows: usize) -> String {
    let mut text = String::with_capacity(rows * (columns.len() * 3 + 18));
    for row in 0..rows {
        text.push_str(if row == 0 {
            "SELECT "
        } else {
            " UNION ALL SELECT "
        });
        for (at, column) in columns.iter().enumerate() {
            if at > 0 {
                text.push_str(", ");
            }
            text.push('?');
            if row == 0 {
                text.push_str(" AS ");
                text.push_str(column);
            }
        }
    }
    text
}

/// Those of `pairs` found in `table` (`user_id`, `other` being its primary key): the
/// pairs as a derived table `p` read first (`STRAIGHT_JOIN`, so that the planner never
/// scans the table instead), each probed in the table's primary key.
async fn pairs_in_table(
    conn: &mut MySqlConnection,
    pairs: &[(UserId, UserId)],
    table: &str,
    other: &str,
) -> StoreResult<Vec<(UserId, UserId)>> {
    let pairs: Vec<(UserId, UserId)> = pairs
        .iter()
        .copied()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut found = Vec::new();
    for chunk in pairs.chunks(DERIVED_ROWS_MAX) {
        let text = format!(
            "SELECT STRAIGHT_JOIN p.a, p.b FROM ({}) AS p JOIN {table} t \
             ON t.user_id = p.a AND t.{other} = p.b",
            derived_rows(&["a", "b"], chunk.len())
        );
        let mut query = sqlx::query_as::<_, (i64, i64)>(&text);
        for (a, b) in chunk {
            query = query.bind(a.0).bind(b.0);
        }
        let rows = query.persistent(false).fetch_all(&mut *conn).await?;
        found.extend(rows.into_iter().map(|(a, b)| (UserId(a), UserId(b))));
    }
    Ok(found)
}

statements_on!(MySqlDialect, MySql, Flavor::MySql);

#[async_trait]
impl Dialect for MySqlDialect {
    type Tx = Transaction<'static, MySql>;
    type Pooled = PoolConnection<MySql>;
    const BIND_PARAMS_MAX: usize = BIND_PARAMS_MAX;
    const IN_LIST_MAX: usize = IN_LIST_MAX;

    async fn begin_write(&self) -> Result<Self::Tx, sqlx::Error> {
        self.pool.begin().await
    }

    /// A read-only transaction at REPEATABLE READ: one snapshot for queries that read twice.
    /// `SET TRANSACTION` applies to the next transaction only; the session stays at READ
    /// COMMITTED.
    async fn begin_read(&self) -> Result<Self::Tx, sqlx::Error> {
        self.pool
            .begin_with(
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; START TRANSACTION READ ONLY",
            )
            .await
    }

    async fn commit(tx: Self::Tx) -> Result<(), sqlx::Error> {
        tx.commit().await
    }

    async fn acquire(&self) -> Result<Self::Pooled, sqlx::Error> {
        self.pool.acquire().await
    }

    /// MySQL has no `RETURNING`: the id is the connection's `LAST_INSERT_ID()`.
    async fn insert(
        conn: &mut MySqlConnection,
        statement: &'static Statement,
        args: &[Arg<'_>],
    ) -> Result<i64, sqlx::Error> {
        let inserted = bind(sqlx::query(statement.text(Flavor::MySql)), args)
            .execute(conn)
            .await?;
        i64::try_from(inserted.last_insert_id())
            .map_err(|_| sqlx::Error::Protocol("insert id out of range".into()))
    }
}

#[async_trait]
impl AccountSql for MySqlDialect {
    /// The UPDATE and the read-back in one transaction, as there is no `RETURNING`.
    async fn update_profile(
        &self,
        id: UserId,
        update: ProfileUpdate,
    ) -> StoreResult<Option<UserRecord>> {
        let (set_avatar, avatar_url) = clearable(update.avatar_url);
        let (set_signature, signature) = clearable(update.signature);
        let nickname = update.nickname;
        with_retries(Retry::Conflicts, || async {
            let mut tx = self.begin_write().await?;
            Self::execute(
                &mut tx,
                sql!(
                    "UPDATE users SET nickname = COALESCE(?, nickname), \
                     avatar_url = CASE WHEN ? THEN ? ELSE avatar_url END, \
                     signature = CASE WHEN ? THEN ? ELSE signature END \
                     WHERE id = ?"
                ),
                args![
                    nickname.as_deref(),
                    set_avatar,
                    avatar_url.as_deref(),
                    set_signature,
                    signature.as_deref(),
                    id,
                ],
            )
            .await?;
            let updated = Self::profile(&mut tx, id).await?;
            Self::commit(tx).await?;
            Ok(updated)
        })
        .await
    }

    /// The user's row is locked first, so a concurrent login's new session either commits
    /// before (and is revoked) or waits and is not. (MySQL counts only the rows an UPDATE
    /// changed, so setting the same hash again would read as "no such user".)
    async fn set_password(conn: &mut MySqlConnection, id: UserId, hash: &str) -> StoreResult<bool> {
        let exists = Self::fetch_optional(
            conn,
            sql!("SELECT id FROM users WHERE id = ? FOR UPDATE"),
            args![id],
        )
        .await?;
        if exists.is_none() {
            return Ok(false);
        }
        Self::execute(
            conn,
            sql!("UPDATE users SET password_hash = ? WHERE id = ?"),
            args![hash, id],
        )
        .await?;
        Ok(true)
    }

    /// The sessions are locked and read, then deleted, as there is no `RETURNING`.
    async fn revoke_sessions(
        conn: &mut MySqlConnection,
        user: UserId,
        keep: SessionId,
    ) -> StoreResult<Vec<SessionId>> {
        let revoked = Self::fetch_all(
            conn,
            sql!("SELECT id FROM sessions WHERE user_id = ? AND id <> ? ORDER BY id FOR UPDATE"),
            args![user, keep],
        )
        .await?;
        Self::execute(
            conn,
            sql!("DELETE FROM sessions WHERE user_id = ? AND id <> ?"),
            args![user, keep],
        )
        .await?;
        Ok(ids(&revoked, SessionId)?)
    }
}

impl SocialSql for MySqlDialect {}

impl ConversationSql for MySqlDialect {}

#[async_trait]
impl StreamSql for MySqlDialect {
    /// `ORDER BY id … FOR UPDATE` walks the primary key upwards, locking as it goes.
    async fn lock_conversations(
        conn: &mut MySqlConnection,
        conversations: &[ConversationId],
    ) -> StoreResult<Vec<(ConversationId, ConversationKind)>> {
        let mut found = Vec::with_capacity(conversations.len());
        for chunk in conversations.chunks(IN_LIST_MAX) {
            let mut select =
                QueryBuilder::<MySql>::new("SELECT id, kind FROM conversations WHERE id IN (");
            let mut list = select.separated(", ");
            for id in chunk {
                list.push_bind(id.0);
            }
            list.push_unseparated(") ORDER BY id FOR UPDATE");
            let rows: Vec<(i64, Text)> = select
                .build_query_as()
                .persistent(false)
                .fetch_all(&mut *conn)
                .await?;
            for (id, Text(kind)) in rows {
                found.push((ConversationId(id), parse_kind(&kind)?));
            }
        }
        Ok(found)
    }

    /// The pairs as a derived table, each probed in `blocks`' primary key.
    async fn blocks_among(
        conn: &mut MySqlConnection,
        pairs: &[(UserId, UserId)],
    ) -> StoreResult<Vec<(UserId, UserId)>> {
        pairs_in_table(conn, pairs, "blocks", "blocked_id").await
    }

    /// The friendships among the pairs; the rest are the strangers.
    async fn strangers_among(
        conn: &mut MySqlConnection,
        pairs: &[(UserId, UserId)],
    ) -> StoreResult<Vec<(UserId, UserId)>> {
        let friends: HashSet<(UserId, UserId)> =
            pairs_in_table(conn, pairs, "friendships", "friend_id")
                .await?
                .into_iter()
                .collect();
        Ok(pairs
            .iter()
            .copied()
            .filter(|pair| !friends.contains(pair))
            .collect())
    }

    /// The keys as a derived table joined to the unique
    /// `(conversation_id, sender_id, client_msg_id)` index: one probe per key.
    async fn messages_by_client_ids(
        conn: &mut MySqlConnection,
        keys: &[(ConversationId, UserId, &str)],
    ) -> StoreResult<Vec<Entry>> {
        // Each key once: a key twice in the derived table would read its row twice.
        let keys: Vec<(ConversationId, UserId, &str)> = keys
            .iter()
            .copied()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut found = Vec::new();
        for chunk in keys.chunks(DERIVED_ROWS_MAX) {
            // The keys first (`STRAIGHT_JOIN`), each probing the unique index.
            let text = format!(
                "SELECT STRAIGHT_JOIN {} FROM ({}) AS k JOIN messages \
                 ON conversation_id = k.c AND sender_id = k.s AND client_msg_id = k.m",
                message_columns!(),
                derived_rows(&["c", "s", "m"], chunk.len())
            );
            let mut select = sqlx::query(&text);
            for &(conversation, sender, client_id) in chunk {
                select = select.bind(conversation.0).bind(sender.0).bind(client_id);
            }
            let rows = select.persistent(false).fetch_all(&mut *conn).await?;
            found.extend(entries(&rows)?);
        }
        Ok(found)
    }

    /// One `UPDATE` with a `CASE` per chunk, then the values read back in one `SELECT`: the
    /// `UPDATE` holds the rows' locks until the transaction ends, so what is read back is
    /// this transaction's own.
    async fn bump_last_seqs(
        conn: &mut MySqlConnection,
        bumps: &[(ConversationId, i64)],
        now_ms: i64,
    ) -> StoreResult<Vec<(ConversationId, i64)>> {
        let mut bumped = Vec::with_capacity(bumps.len());
        for chunk in bumps.chunks(IN_LIST_MAX) {
            let mut update = QueryBuilder::<MySql>::new(
                "UPDATE conversations SET last_seq = last_seq + CASE id",
            );
            for (conversation, count) in chunk {
                update.push(" WHEN ");
                update.push_bind(conversation.0);
                update.push(" THEN ");
                update.push_bind(*count);
            }
            update.push(" ELSE 0 END, last_activity_ms = GREATEST(last_activity_ms, ");
            update.push_bind(now_ms);
            update.push(") WHERE id IN (");
            let mut list = update.separated(", ");
            for (conversation, _) in chunk {
                list.push_bind(conversation.0);
            }
            list.push_unseparated(")");
            update.build().persistent(false).execute(&mut *conn).await?;

            let mut select =
                QueryBuilder::<MySql>::new("SELECT id, last_seq FROM conversations WHERE id IN (");
            let mut list = select.separated(", ");
            for (conversation, _) in chunk {
                list.push_bind(conversation.0);
            }
            list.push_unseparated(")");
            let rows: Vec<(i64, i64)> = select
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

    /// Multi-row INSERTs, then the ids read back by seq in one `SELECT`: each conversation's
    /// new entries hold a range of seqs that only this transaction can have written, since
    /// it holds the conversation's lock. (Counting up from `LAST_INSERT_ID()` would rely on
    /// InnoDB handing one statement consecutive ids, which only some
    /// `innodb_autoinc_lock_mode`s promise.)
    async fn insert_entries(
        conn: &mut MySqlConnection,
        entries: &[NewEntry],
        now_ms: i64,
    ) -> StoreResult<Vec<MessageId>> {
        let bodies = entries
            .iter()
            .map(|entry| entry.draft.body.encode())
            .collect::<Result<Vec<_>, _>>()?;
        let per_statement = rows_per_statement(7, BIND_PARAMS_MAX);
        for (chunk, bodies) in entries
            .chunks(per_statement)
            .zip(bodies.chunks(per_statement))
        {
            let mut insert = QueryBuilder::<MySql>::new(
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
                    .push("FALSE")
                    .push_bind(now_ms);
            });
            insert.build().persistent(false).execute(&mut *conn).await?;
        }

        // Each conversation's (first, last) seq.
        let mut ranges: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
        for entry in entries {
            let range = ranges
                .entry(entry.conversation.0)
                .or_insert((entry.seq, entry.seq));
            range.0 = range.0.min(entry.seq);
            range.1 = range.1.max(entry.seq);
        }
        let ranges: Vec<(i64, (i64, i64))> = ranges.into_iter().collect();
        let mut rows: Vec<(i64, i64, i64)> = Vec::with_capacity(entries.len());
        for chunk in ranges.chunks(IN_LIST_MAX) {
            let mut select =
                QueryBuilder::<MySql>::new("SELECT conversation_id, seq, id FROM messages WHERE ");
            let mut ors = select.separated(" OR ");
            for (conversation, (first, last)) in chunk {
                ors.push("(conversation_id = ");
                ors.push_bind_unseparated(*conversation);
                ors.push_unseparated(" AND seq BETWEEN ");
                ors.push_bind_unseparated(*first);
                ors.push_unseparated(" AND ");
                ors.push_bind_unseparated(*last);
                ors.push_unseparated(")");
            }
            let found: Vec<(i64, i64, i64)> = select
                .build_query_as()
                .persistent(false)
                .fetch_all(&mut *conn)
                .await?;
            rows.extend(found);
        }
        ids_in_order(entries, rows)
    }

    /// One `UPDATE` with a `CASE` per chunk; the row-value `IN` finds the rows by the
    /// `(user_id, conversation_id)` index.
    async fn advance_read_seqs(
        conn: &mut MySqlConnection,
        pointers: &[(ConversationId, UserId, i64)],
    ) -> StoreResult<()> {
        for chunk in pointers.chunks(IN_LIST_MAX) {
            let mut update =
                QueryBuilder::<MySql>::new("UPDATE members SET read_seq = GREATEST(read_seq, CASE");
            for (conversation, user, seq) in chunk {
                update.push(" WHEN conversation_id = ");
                update.push_bind(conversation.0);
                update.push(" AND user_id = ");
                update.push_bind(user.0);
                update.push(" THEN ");
                update.push_bind(*seq);
            }
            update.push(" ELSE read_seq END) WHERE (conversation_id, user_id) IN");
            update.push_tuples(chunk, |mut row, (conversation, user, _)| {
                row.push_bind(conversation.0).push_bind(user.0);
            });
            update.build().persistent(false).execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Locks the member's row; the conversation row is only read.
    async fn lock_read_pointer(
        conn: &mut MySqlConnection,
        conversation: ConversationId,
        user: UserId,
    ) -> StoreResult<Option<(i64, i64)>> {
        let read_seq: Option<i64> = sqlx::query_scalar(
            "SELECT read_seq FROM members WHERE conversation_id = ? AND user_id = ? FOR UPDATE",
        )
        .bind(conversation.0)
        .bind(user.0)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(read_seq) = read_seq else {
            return Ok(None);
        };
        let last_seq: i64 = sqlx::query_scalar("SELECT last_seq FROM conversations WHERE id = ?")
            .bind(conversation.0)
            .fetch_one(&mut *conn)
            .await?;
        Ok(Some((read_seq, last_seq)))
    }
}

#[async_trait]
impl MediaSql for MySqlDialect {
    /// MySQL casts to `SIGNED`, not `BIGINT`.
    async fn upload_bytes_used(conn: &mut Self::Conn, owner: UserId) -> StoreResult<i64> {
        let row = Self::fetch_one(
            conn,
            sql!("SELECT CAST(COALESCE(SUM(size), 0) AS SIGNED) FROM uploads WHERE owner_id = ?"),
            args![owner],
        )
        .await?;
        Ok(row.int(0)?)
    }
}

impl SeedSql for MySqlDialect {}
