//! The SQLite backend of [`crate::Store`]: its SQL, as the `Sql` primitives that
//! the store's engine (`crate::engine`) runs.
//!
//! One database file in WAL mode: readers never wait for the writer, and writers take the
//! database lock at `BEGIN IMMEDIATE`, so two writers queue on `busy_timeout` instead of
//! deadlocking when a read transaction tries to upgrade. With one writer at a time there
//! are no row locks to take: the `lock_*` primitives only read.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use banter_protocol::model::{
    ConversationKind, ConversationSummary, FriendRequest, FriendRequestStatus, Member, Message,
    Role, UserProfile,
};
use banter_protocol::{ConversationId, FriendRequestId, MessageId, UserId};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool, Transaction};

use crate::engine::{Engine, Sql};
use crate::row::{
    clearable, friend_request_at, friend_request_sql, ids_in_order, kind_str, member_at,
    message_at, message_sql, parse_kind, parse_role, parse_status, profile_at, rows_per_statement,
    status_str, summary_at, summary_sql, NewEntry, NewMember,
};
use crate::{
    Credentials, Durability, NewSession, NewUser, OpenOptions, ProfileUpdate, SeedUser, Session,
    SessionId, StoreError, StoreResult,
};

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
    pool: SqlitePool,
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
        if !url.contains(":memory:") && !url.contains("mode=memory") {
            let lone = <SqliteConnection as sqlx::Connection>::connect_with(&connect).await?;
            sqlx::Connection::close(lone).await?;
        }
        // One connection stays open for the store's lifetime: an in-memory database lives
        // only as long as some connection to it does, and a file database is spared
        // reconnecting after idle periods.
        let pool = SqlitePoolOptions::new()
            .max_connections(options.connections_max)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(connect)
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        Ok(Engine::new(SqliteDialect { pool }))
    }
}

fn messages(rows: &[SqliteRow]) -> StoreResult<Vec<Message>> {
    Ok(rows
        .iter()
        .map(|row| message_at(row, 0))
        .collect::<Result<_, _>>()?)
}

fn friend_requests(rows: &[SqliteRow]) -> StoreResult<Vec<FriendRequest>> {
    Ok(rows
        .iter()
        .map(friend_request_at)
        .collect::<Result<_, _>>()?)
}

/// `(key, id)` rows of `select` (a `SELECT key, id … IN (` prefix) for each of `keys`, in
/// as many statements as the bound-parameter limit needs.
async fn ids_by_keys(
    conn: &mut SqliteConnection,
    select: &'static str,
    keys: &[String],
) -> StoreResult<Vec<(String, i64)>> {
    let mut found = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(rows_per_statement(1, BIND_PARAMS_MAX)) {
        let mut query = QueryBuilder::<Sqlite>::new(select);
        let mut list = query.separated(", ");
        for key in chunk {
            list.push_bind(key.as_str());
        }
        list.push_unseparated(")");
        let rows: Vec<(String, i64)> = query
            .build_query_as()
            .persistent(false)
            .fetch_all(&mut *conn)
            .await?;
        found.extend(rows);
    }
    Ok(found)
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

#[async_trait]
impl Sql for SqliteDialect {
    type Conn = SqliteConnection;
    type Tx = Transaction<'static, Sqlite>;

    /// `BEGIN IMMEDIATE` takes the database's write lock at the start, so two writers queue
    /// on `busy_timeout` instead of deadlocking when a read transaction tries to upgrade.
    async fn begin_write(&self) -> Result<Self::Tx, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// A deferred transaction: in WAL mode, one snapshot that never waits for the writer.
    async fn begin_read(&self) -> Result<Self::Tx, sqlx::Error> {
        self.pool.begin().await
    }

    async fn commit(tx: Self::Tx) -> Result<(), sqlx::Error> {
        tx.commit().await
    }

    async fn insert_user(&self, user: &NewUser, now_ms: i64) -> Result<UserProfile, sqlx::Error> {
        let row = sqlx::query(
            "INSERT INTO users \
             (username, username_key, nickname, avatar_url, signature, password_hash, created_at_ms) \
             VALUES (?, ?, ?, NULL, NULL, ?, ?) \
             RETURNING id, username, nickname, avatar_url, signature",
        )
        .bind(&user.username)
        .bind(crate::row::username_key(&user.username))
        .bind(&user.nickname)
        .bind(&user.password_hash)
        .bind(now_ms)
        .fetch_one(&self.pool)
        .await?;
        profile_at(&row, 0)
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<UserProfile>> {
        let row = sqlx::query(
            "SELECT id, username, nickname, avatar_url, signature FROM users WHERE id = ?",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| profile_at(&row, 0)).transpose()?)
    }

    async fn user_by_username_key(&self, key: &str) -> StoreResult<Option<UserProfile>> {
        let row = sqlx::query(
            "SELECT id, username, nickname, avatar_url, signature FROM users \
             WHERE username_key = ?",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| profile_at(&row, 0)).transpose()?)
    }

    async fn credentials(&self, key: &str) -> StoreResult<Option<Credentials>> {
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT id, password_hash FROM users WHERE username_key = ?")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(id, password_hash)| Credentials {
            user_id: UserId(id),
            password_hash,
        }))
    }

    async fn password_hash(&self, id: UserId) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT password_hash FROM users WHERE id = ?")
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn update_profile(
        &self,
        id: UserId,
        update: ProfileUpdate,
    ) -> StoreResult<Option<UserProfile>> {
        let (set_avatar, avatar_url) = clearable(update.avatar_url);
        let (set_signature, signature) = clearable(update.signature);
        let row = sqlx::query(
            "UPDATE users SET nickname = COALESCE(?, nickname), \
             avatar_url = CASE WHEN ? THEN ? ELSE avatar_url END, \
             signature = CASE WHEN ? THEN ? ELSE signature END \
             WHERE id = ? RETURNING id, username, nickname, avatar_url, signature",
        )
        .bind(update.nickname)
        .bind(set_avatar)
        .bind(avatar_url)
        .bind(set_signature)
        .bind(signature)
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| profile_at(&row, 0)).transpose()?)
    }

    async fn insert_session(&self, session: &NewSession, now_ms: i64) -> StoreResult<SessionId> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO sessions (user_id, token_hash, device_name, created_at_ms, expires_at_ms) \
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(session.user_id.0)
        .bind(&session.token_hash)
        .bind(&session.device_name)
        .bind(now_ms)
        .bind(session.expires_at_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(SessionId(id))
    }

    async fn session_by_token_hash(
        &self,
        token_hash: &[u8],
        now_ms: i64,
    ) -> StoreResult<Option<Session>> {
        let row: Option<(i64, i64, i64)> = sqlx::query_as(
            "SELECT id, user_id, expires_at_ms FROM sessions \
             WHERE token_hash = ? AND expires_at_ms > ?",
        )
        .bind(token_hash)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(id, user_id, expires_at_ms)| Session {
            id: SessionId(id),
            user_id: UserId(user_id),
            expires_at_ms,
        }))
    }

    async fn delete_session(&self, id: SessionId) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id = ?")
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn friends(&self, user: UserId) -> StoreResult<Vec<(UserProfile, i64)>> {
        let rows = sqlx::query(
            "SELECT u.id, u.username, u.nickname, u.avatar_url, u.signature, f.since_ms \
             FROM friendships f JOIN users u ON u.id = f.friend_id \
             WHERE f.user_id = ? ORDER BY f.since_ms, u.id",
        )
        .bind(user.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((profile_at(row, 0)?, row.try_get(5)?)))
            .collect()
    }

    async fn friend_ids(&self, user: UserId) -> StoreResult<Vec<UserId>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT friend_id FROM friendships WHERE user_id = ? ORDER BY friend_id",
        )
        .bind(user.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().map(UserId).collect())
    }

    async fn delete_friendship(&self, a: UserId, b: UserId) -> StoreResult<bool> {
        let removed = sqlx::query(
            "DELETE FROM friendships \
             WHERE (user_id = ? AND friend_id = ?) OR (user_id = ? AND friend_id = ?)",
        )
        .bind(a.0)
        .bind(b.0)
        .bind(b.0)
        .bind(a.0)
        .execute(&self.pool)
        .await?;
        Ok(removed.rows_affected() > 0)
    }

    async fn delete_block(&self, user: UserId, blocked: UserId) -> StoreResult<()> {
        sqlx::query("DELETE FROM blocks WHERE user_id = ? AND blocked_id = ?")
            .bind(user.0)
            .bind(blocked.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn blocked_users(&self, user: UserId) -> StoreResult<Vec<UserProfile>> {
        let rows = sqlx::query(
            "SELECT u.id, u.username, u.nickname, u.avatar_url, u.signature \
             FROM blocks b JOIN users u ON u.id = b.blocked_id \
             WHERE b.user_id = ? ORDER BY b.created_at_ms, u.id",
        )
        .bind(user.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| profile_at(row, 0))
            .collect::<Result<_, _>>()?)
    }

    async fn is_member(&self, user: UserId, conversation: ConversationId) -> StoreResult<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM members WHERE conversation_id = ? AND user_id = ?)",
        )
        .bind(conversation.0)
        .bind(user.0)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn summaries(&self, user: UserId) -> StoreResult<Vec<ConversationSummary>> {
        let rows = sqlx::query(summary_sql!("WHERE m.user_id = ?"))
            .bind(user.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(summary_at).collect()
    }

    async fn set_password(
        conn: &mut SqliteConnection,
        id: UserId,
        hash: &str,
    ) -> StoreResult<bool> {
        let updated = sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
            .bind(hash)
            .bind(id.0)
            .execute(&mut *conn)
            .await?;
        Ok(updated.rows_affected() > 0)
    }

    async fn revoke_sessions(
        conn: &mut SqliteConnection,
        user: UserId,
        keep: SessionId,
    ) -> StoreResult<Vec<SessionId>> {
        let revoked: Vec<i64> =
            sqlx::query_scalar("DELETE FROM sessions WHERE user_id = ? AND id <> ? RETURNING id")
                .bind(user.0)
                .bind(keep.0)
                .fetch_all(&mut *conn)
                .await?;
        Ok(revoked.into_iter().map(SessionId).collect())
    }

    /// The write transaction holds the database lock already: only whether `b` exists.
    async fn lock_users(conn: &mut SqliteConnection, _a: UserId, b: UserId) -> StoreResult<bool> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = ?)")
                .bind(b.0)
                .fetch_one(&mut *conn)
                .await?,
        )
    }

    async fn blocked_either(
        conn: &mut SqliteConnection,
        a: UserId,
        b: UserId,
    ) -> StoreResult<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM blocks \
             WHERE (user_id = ? AND blocked_id = ?) OR (user_id = ? AND blocked_id = ?))",
        )
        .bind(a.0)
        .bind(b.0)
        .bind(b.0)
        .bind(a.0)
        .fetch_one(&mut *conn)
        .await?)
    }

    async fn are_friends(conn: &mut SqliteConnection, a: UserId, b: UserId) -> StoreResult<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM friendships WHERE user_id = ? AND friend_id = ?)",
        )
        .bind(a.0)
        .bind(b.0)
        .fetch_one(&mut *conn)
        .await?)
    }

    async fn pending_between(
        conn: &mut SqliteConnection,
        a: UserId,
        b: UserId,
    ) -> StoreResult<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM friend_requests WHERE status = 'pending' \
             AND ((from_id = ? AND to_id = ?) OR (from_id = ? AND to_id = ?)))",
        )
        .bind(a.0)
        .bind(b.0)
        .bind(b.0)
        .bind(a.0)
        .fetch_one(&mut *conn)
        .await?)
    }

    async fn insert_friend_request(
        conn: &mut SqliteConnection,
        from: UserId,
        to: UserId,
        greeting: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<FriendRequestId> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO friend_requests \
             (from_id, to_id, greeting, status, created_at_ms, updated_at_ms) \
             VALUES (?, ?, ?, 'pending', ?, ?) RETURNING id",
        )
        .bind(from.0)
        .bind(to.0)
        .bind(greeting)
        .bind(now_ms)
        .bind(now_ms)
        .fetch_one(&mut *conn)
        .await?;
        Ok(FriendRequestId(id))
    }

    async fn friend_request(
        conn: &mut SqliteConnection,
        id: FriendRequestId,
    ) -> StoreResult<Option<FriendRequest>> {
        let row = sqlx::query(friend_request_sql!("WHERE r.id = ?"))
            .bind(id.0)
            .fetch_optional(&mut *conn)
            .await?;
        Ok(row.map(|row| friend_request_at(&row)).transpose()?)
    }

    async fn pending_requests(
        conn: &mut SqliteConnection,
        user: UserId,
    ) -> StoreResult<(Vec<FriendRequest>, Vec<FriendRequest>)> {
        let incoming = sqlx::query(friend_request_sql!(
            "WHERE r.to_id = ? AND r.status = 'pending' ORDER BY r.id"
        ))
        .bind(user.0)
        .fetch_all(&mut *conn)
        .await?;
        let outgoing = sqlx::query(friend_request_sql!(
            "WHERE r.from_id = ? AND r.status = 'pending' ORDER BY r.id"
        ))
        .bind(user.0)
        .fetch_all(&mut *conn)
        .await?;
        Ok((friend_requests(&incoming)?, friend_requests(&outgoing)?))
    }

    async fn lock_request(
        conn: &mut SqliteConnection,
        id: FriendRequestId,
    ) -> StoreResult<Option<(UserId, UserId, FriendRequestStatus)>> {
        let row: Option<(i64, i64, String)> =
            sqlx::query_as("SELECT from_id, to_id, status FROM friend_requests WHERE id = ?")
                .bind(id.0)
                .fetch_optional(&mut *conn)
                .await?;
        row.map(|(from, to, status)| Ok((UserId(from), UserId(to), parse_status(&status)?)))
            .transpose()
    }

    async fn set_request_status(
        conn: &mut SqliteConnection,
        id: FriendRequestId,
        status: FriendRequestStatus,
        now_ms: i64,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE friend_requests SET status = ?, updated_at_ms = ? WHERE id = ?")
            .bind(status_str(status))
            .bind(now_ms)
            .bind(id.0)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn insert_friendship(
        conn: &mut SqliteConnection,
        a: UserId,
        b: UserId,
        now_ms: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO friendships (user_id, friend_id, since_ms) \
             VALUES (?, ?, ?), (?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(a.0)
        .bind(b.0)
        .bind(now_ms)
        .bind(b.0)
        .bind(a.0)
        .bind(now_ms)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn insert_block(
        conn: &mut SqliteConnection,
        user: UserId,
        blocked: UserId,
        now_ms: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO blocks (user_id, blocked_id, created_at_ms) VALUES (?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(user.0)
        .bind(blocked.0)
        .bind(now_ms)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn delete_pending_between(
        conn: &mut SqliteConnection,
        a: UserId,
        b: UserId,
    ) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM friend_requests WHERE status = 'pending' \
             AND ((from_id = ? AND to_id = ?) OR (from_id = ? AND to_id = ?))",
        )
        .bind(a.0)
        .bind(b.0)
        .bind(b.0)
        .bind(a.0)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn direct_conversation(
        conn: &mut SqliteConnection,
        direct_key: &str,
    ) -> StoreResult<Option<ConversationId>> {
        let id: Option<i64> =
            sqlx::query_scalar("SELECT id FROM conversations WHERE direct_key = ?")
                .bind(direct_key)
                .fetch_optional(&mut *conn)
                .await?;
        Ok(id.map(ConversationId))
    }

    async fn insert_conversation(
        conn: &mut SqliteConnection,
        kind: ConversationKind,
        name: Option<&str>,
        direct_key: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<ConversationId> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO conversations \
             (kind, name, direct_key, last_seq, last_activity_ms, created_at_ms) \
             VALUES (?, ?, ?, 0, ?, ?) RETURNING id",
        )
        .bind(kind_str(kind))
        .bind(name)
        .bind(direct_key)
        .bind(now_ms)
        .bind(now_ms)
        .fetch_one(&mut *conn)
        .await?;
        Ok(ConversationId(id))
    }

    async fn summary(
        conn: &mut SqliteConnection,
        user: UserId,
        conversation: ConversationId,
    ) -> StoreResult<Option<ConversationSummary>> {
        let row = sqlx::query(summary_sql!("WHERE m.user_id = ? AND c.id = ?"))
            .bind(user.0)
            .bind(conversation.0)
            .fetch_optional(&mut *conn)
            .await?;
        row.map(|row| summary_at(&row)).transpose()
    }

    async fn members(
        conn: &mut SqliteConnection,
        conversation: ConversationId,
    ) -> StoreResult<Vec<Member>> {
        let rows = sqlx::query(
            "SELECT u.id, u.username, u.nickname, u.avatar_url, u.signature, \
             m.role, m.read_seq, m.joined_at_ms \
             FROM members m JOIN users u ON u.id = m.user_id \
             WHERE m.conversation_id = ? ORDER BY m.joined_at_ms, u.id",
        )
        .bind(conversation.0)
        .fetch_all(&mut *conn)
        .await?;
        Ok(rows.iter().map(member_at).collect::<Result<_, _>>()?)
    }

    async fn lock_conversation(
        conn: &mut SqliteConnection,
        conversation: ConversationId,
    ) -> StoreResult<Option<ConversationKind>> {
        let kind: Option<String> =
            sqlx::query_scalar("SELECT kind FROM conversations WHERE id = ?")
                .bind(conversation.0)
                .fetch_optional(&mut *conn)
                .await?;
        kind.map(|kind| parse_kind(&kind)).transpose()
    }

    async fn member_ids(
        conn: &mut SqliteConnection,
        conversation: ConversationId,
    ) -> StoreResult<Vec<UserId>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT user_id FROM members WHERE conversation_id = ? ORDER BY user_id",
        )
        .bind(conversation.0)
        .fetch_all(&mut *conn)
        .await?;
        Ok(ids.into_iter().map(UserId).collect())
    }

    async fn membership(
        conn: &mut SqliteConnection,
        user: UserId,
        conversation: ConversationId,
    ) -> StoreResult<Option<(ConversationKind, Role)>> {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT c.kind, m.role FROM members m \
             JOIN conversations c ON c.id = m.conversation_id \
             WHERE m.conversation_id = ? AND m.user_id = ?",
        )
        .bind(conversation.0)
        .bind(user.0)
        .fetch_optional(&mut *conn)
        .await?;
        let Some((kind, role)) = row else {
            return Ok(None);
        };
        Ok(Some((parse_kind(&kind)?, parse_role(&role)?)))
    }

    async fn insert_member(
        conn: &mut SqliteConnection,
        conversation: ConversationId,
        user: UserId,
        role: Role,
        read_seq: i64,
        now_ms: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO members (conversation_id, user_id, role, read_seq, joined_at_ms) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(conversation.0)
        .bind(user.0)
        .bind(role.as_str())
        .bind(read_seq)
        .bind(now_ms)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn delete_member(
        conn: &mut SqliteConnection,
        conversation: ConversationId,
        user: UserId,
    ) -> StoreResult<()> {
        sqlx::query("DELETE FROM members WHERE conversation_id = ? AND user_id = ?")
            .bind(conversation.0)
            .bind(user.0)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn delete_members(
        conn: &mut SqliteConnection,
        conversation: ConversationId,
    ) -> StoreResult<()> {
        sqlx::query("DELETE FROM members WHERE conversation_id = ?")
            .bind(conversation.0)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn set_role(
        conn: &mut SqliteConnection,
        conversation: ConversationId,
        user: UserId,
        role: Role,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE members SET role = ? WHERE conversation_id = ? AND user_id = ?")
            .bind(role.as_str())
            .bind(conversation.0)
            .bind(user.0)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn rename(
        conn: &mut SqliteConnection,
        conversation: ConversationId,
        name: &str,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE conversations SET name = ? WHERE id = ?")
            .bind(name)
            .bind(conversation.0)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn last_seq(
        conn: &mut SqliteConnection,
        conversation: ConversationId,
    ) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT last_seq FROM conversations WHERE id = ?")
                .bind(conversation.0)
                .fetch_one(&mut *conn)
                .await?,
        )
    }

    async fn user_ids_by_keys(
        conn: &mut SqliteConnection,
        keys: &[String],
    ) -> StoreResult<Vec<(String, UserId)>> {
        let found = ids_by_keys(
            conn,
            "SELECT username_key, id FROM users WHERE username_key IN (",
            keys,
        )
        .await?;
        Ok(found
            .into_iter()
            .map(|(key, id)| (key, UserId(id)))
            .collect())
    }

    async fn insert_users(
        conn: &mut SqliteConnection,
        users: &[SeedUser],
        password_hash: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        for chunk in users.chunks(rows_per_statement(5, BIND_PARAMS_MAX)) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO users \
                 (username, username_key, nickname, avatar_url, signature, password_hash, created_at_ms) ",
            );
            insert.push_values(chunk, |mut row, user| {
                row.push_bind(user.username.as_str())
                    .push_bind(crate::row::username_key(&user.username))
                    .push_bind(user.nickname.as_str())
                    .push("NULL")
                    .push("NULL")
                    .push_bind(password_hash)
                    .push_bind(now_ms);
            });
            insert.build().persistent(false).execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn insert_sessions(
        conn: &mut SqliteConnection,
        sessions: &[NewSession],
        now_ms: i64,
    ) -> StoreResult<()> {
        for chunk in sessions.chunks(rows_per_statement(5, BIND_PARAMS_MAX)) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO sessions \
                 (user_id, token_hash, device_name, created_at_ms, expires_at_ms) ",
            );
            insert.push_values(chunk, |mut row, session| {
                row.push_bind(session.user_id.0)
                    .push_bind(session.token_hash.as_slice())
                    .push_bind(session.device_name.as_str())
                    .push_bind(now_ms)
                    .push_bind(session.expires_at_ms);
            });
            insert.build().persistent(false).execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn existing_user_ids(
        conn: &mut SqliteConnection,
        ids: &[UserId],
    ) -> StoreResult<Vec<UserId>> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(rows_per_statement(1, BIND_PARAMS_MAX)) {
            let mut select = QueryBuilder::<Sqlite>::new("SELECT id FROM users WHERE id IN (");
            let mut list = select.separated(", ");
            for id in chunk {
                list.push_bind(id.0);
            }
            list.push_unseparated(")");
            let rows: Vec<i64> = select
                .build_query_scalar()
                .persistent(false)
                .fetch_all(&mut *conn)
                .await?;
            found.extend(rows.into_iter().map(UserId));
        }
        Ok(found)
    }

    async fn insert_friendships(
        conn: &mut SqliteConnection,
        pairs: &[(UserId, UserId)],
        now_ms: i64,
    ) -> StoreResult<()> {
        // Two rows of three parameters per pair.
        for chunk in pairs.chunks(rows_per_statement(6, BIND_PARAMS_MAX)) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO friendships (user_id, friend_id, since_ms) ",
            );
            let rows = chunk.iter().flat_map(|&(a, b)| [(a, b), (b, a)]);
            insert.push_values(rows, |mut row, (user, friend)| {
                row.push_bind(user.0).push_bind(friend.0).push_bind(now_ms);
            });
            insert.push(" ON CONFLICT DO NOTHING");
            insert.build().persistent(false).execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn direct_conversations_by_keys(
        conn: &mut SqliteConnection,
        keys: &[String],
    ) -> StoreResult<Vec<(String, ConversationId)>> {
        let found = ids_by_keys(
            conn,
            "SELECT direct_key, id FROM conversations WHERE direct_key IN (",
            keys,
        )
        .await?;
        Ok(found
            .into_iter()
            .map(|(key, id)| (key, ConversationId(id)))
            .collect())
    }

    async fn insert_direct_conversations(
        conn: &mut SqliteConnection,
        keys: &[String],
        now_ms: i64,
    ) -> StoreResult<()> {
        for chunk in keys.chunks(rows_per_statement(3, BIND_PARAMS_MAX)) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO conversations \
                 (kind, name, direct_key, last_seq, last_activity_ms, created_at_ms) ",
            );
            insert.push_values(chunk, |mut row, key| {
                row.push("'direct'")
                    .push("NULL")
                    .push_bind(key.as_str())
                    .push("0")
                    .push_bind(now_ms)
                    .push_bind(now_ms);
            });
            insert.build().persistent(false).execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn insert_members(
        conn: &mut SqliteConnection,
        members: &[NewMember],
        now_ms: i64,
    ) -> StoreResult<()> {
        for chunk in members.chunks(rows_per_statement(5, BIND_PARAMS_MAX)) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO members (conversation_id, user_id, role, read_seq, joined_at_ms) ",
            );
            insert.push_values(chunk, |mut row, member| {
                row.push_bind(member.conversation.0)
                    .push_bind(member.user.0)
                    .push_bind(member.role.as_str())
                    .push_bind(member.read_seq)
                    .push_bind(now_ms);
            });
            insert.build().persistent(false).execute(&mut *conn).await?;
        }
        Ok(())
    }

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

    async fn members_of(
        conn: &mut SqliteConnection,
        conversations: &[ConversationId],
    ) -> StoreResult<Vec<(ConversationId, UserId)>> {
        let mut found = Vec::new();
        for chunk in conversations.chunks(rows_per_statement(1, BIND_PARAMS_MAX)) {
            let mut select = QueryBuilder::<Sqlite>::new(
                "SELECT conversation_id, user_id FROM members WHERE conversation_id IN (",
            );
            let mut list = select.separated(", ");
            for id in chunk {
                list.push_bind(id.0);
            }
            list.push_unseparated(")");
            let rows: Vec<(i64, i64)> = select
                .build_query_as()
                .persistent(false)
                .fetch_all(&mut *conn)
                .await?;
            found.extend(
                rows.into_iter()
                    .map(|(conversation, user)| (ConversationId(conversation), UserId(user))),
            );
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
    ) -> StoreResult<Vec<Message>> {
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
            found.extend(messages(&rows)?);
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

    async fn recall_target(
        conn: &mut SqliteConnection,
        conversation: ConversationId,
        target: MessageId,
    ) -> StoreResult<Option<(UserId, String, bool, i64)>> {
        let row: Option<(i64, String, bool, i64)> = sqlx::query_as(
            "SELECT sender_id, kind, recalled, created_at_ms FROM messages \
             WHERE id = ? AND conversation_id = ?",
        )
        .bind(target.0)
        .bind(conversation.0)
        .fetch_optional(&mut *conn)
        .await?;
        Ok(row.map(|(sender, kind, recalled, at)| (UserId(sender), kind, recalled, at)))
    }

    async fn blank_message(conn: &mut SqliteConnection, target: MessageId) -> StoreResult<()> {
        sqlx::query("UPDATE messages SET body = '', recalled = 1 WHERE id = ?")
            .bind(target.0)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn entries_after(
        conn: &mut SqliteConnection,
        conversation: ConversationId,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        let rows = sqlx::query(message_sql!(
            "WHERE conversation_id = ? AND seq > ? ORDER BY seq ASC LIMIT ?"
        ))
        .bind(conversation.0)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
        messages(&rows)
    }

    async fn entries_before(
        conn: &mut SqliteConnection,
        conversation: ConversationId,
        before_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        let rows = sqlx::query(message_sql!(
            "WHERE conversation_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?"
        ))
        .bind(conversation.0)
        .bind(before_seq)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
        messages(&rows)
    }

    async fn lock_read_pointer(
        conn: &mut SqliteConnection,
        conversation: ConversationId,
        user: UserId,
    ) -> StoreResult<Option<(i64, i64)>> {
        Ok(sqlx::query_as(
            "SELECT m.read_seq, c.last_seq FROM members m \
             JOIN conversations c ON c.id = m.conversation_id \
             WHERE m.conversation_id = ? AND m.user_id = ?",
        )
        .bind(conversation.0)
        .bind(user.0)
        .fetch_optional(&mut *conn)
        .await?)
    }

    async fn set_read_seq(
        conn: &mut SqliteConnection,
        conversation: ConversationId,
        user: UserId,
        seq: i64,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE members SET read_seq = ? WHERE conversation_id = ? AND user_id = ?")
            .bind(seq)
            .bind(conversation.0)
            .bind(user.0)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}
