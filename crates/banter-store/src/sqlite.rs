//! The SQLite backend of [`Store`].
//!
//! One database file in WAL mode: readers never wait for the writer, and writers take the
//! database lock at `BEGIN IMMEDIATE`, so two writers queue on `busy_timeout` instead of
//! deadlocking when a read transaction tries to upgrade. Every rule the trait promises is
//! checked inside the write transaction that acts on it.
//!
//! The stream (seq assignment, sends, recalls, paging) lives in [`stream`], groups in
//! [`group`], and row decoding in [`row`].

mod group;
mod row;
mod stream;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use banter_protocol::model::{
    ConversationDetail, ConversationSummary, FriendRequest, FriendRequestStatus, Member, Role,
    UserProfile,
};
use banter_protocol::{ConversationId, FriendRequestId, MessageId, UserId};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqliteConnection, SqlitePool, Transaction};

use crate::{
    Appended, CreatedGroup, Credentials, Durability, GroupChange, NewMessage, NewSession, NewUser,
    OpenOptions, Page, ProfileUpdate, ReadMark, SendPolicy, Session, SessionId, Store, StoreError,
    StoreResult,
};
use row::{
    count, direct_key, friend_request_at, friend_request_sql, message_at, now_ms, profile_at,
    role_at, status_str, username_key,
};

/// How long a statement waits for another connection's write lock before failing with
/// `SQLITE_BUSY`. Write transactions are short, so hitting this means the disk has stalled.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The store on one SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

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
            .synchronous(match options.durability {
                Durability::Full => SqliteSynchronous::Full,
                Durability::Relaxed => SqliteSynchronous::Normal,
            });
        if options.connections_max == 0 {
            return Err(StoreError::Config(
                "connections_max must be at least 1".into(),
            ));
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
        Ok(SqliteStore { pool })
    }

    /// Starts a write transaction holding the database's write lock from the start.
    async fn write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// Starts a read transaction: one consistent snapshot for queries that read twice.
    async fn read(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.pool.begin().await
    }

    /// The user's conversation summaries, or the one with `only` when given.
    async fn summaries(
        conn: &mut SqliteConnection,
        user: UserId,
        only: Option<ConversationId>,
    ) -> StoreResult<Vec<ConversationSummary>> {
        // `last_message` is the entry at `last_seq`; the peer is the other member of a
        // direct conversation. Columns 9.. and 14.. are decoded by `profile_at` and
        // `message_at`.
        macro_rules! summary_sql {
            ($where:literal) => {
                concat!(
                    "SELECT c.id, c.kind, c.name, c.last_seq, c.last_activity_ms, m.role, m.read_seq, ",
                    "(SELECT COUNT(*) FROM members mc WHERE mc.conversation_id = c.id), ",
                    "(SELECT COUNT(*) FROM messages x WHERE x.conversation_id = c.id ",
                    " AND x.seq > m.read_seq AND x.kind = 'text' AND x.recalled = 0 ",
                    " AND x.sender_id <> m.user_id), ",
                    "p.id, p.username, p.nickname, p.avatar_url, p.signature, ",
                    "l.id, l.conversation_id, l.seq, l.sender_id, l.client_msg_id, l.kind, l.body, ",
                    "l.recalled, l.created_at_ms ",
                    "FROM members m ",
                    "JOIN conversations c ON c.id = m.conversation_id ",
                    "LEFT JOIN members pm ON c.kind = 'direct' AND pm.conversation_id = c.id ",
                    " AND pm.user_id <> m.user_id ",
                    "LEFT JOIN users p ON p.id = pm.user_id ",
                    "LEFT JOIN messages l ON l.conversation_id = c.id AND l.seq = c.last_seq ",
                    $where,
                    " ORDER BY c.last_activity_ms DESC, c.id DESC"
                )
            };
        }
        let rows = match only {
            None => {
                sqlx::query(summary_sql!("WHERE m.user_id = ?"))
                    .bind(user.0)
                    .fetch_all(&mut *conn)
                    .await?
            }
            Some(id) => {
                sqlx::query(summary_sql!("WHERE m.user_id = ? AND c.id = ?"))
                    .bind(user.0)
                    .bind(id.0)
                    .fetch_all(&mut *conn)
                    .await?
            }
        };
        rows.iter().map(summary_from_row).collect()
    }
}

fn summary_from_row(row: &SqliteRow) -> StoreResult<ConversationSummary> {
    let kind: String = row.try_get(1)?;
    let peer_id: Option<i64> = row.try_get(9)?;
    let last_id: Option<i64> = row.try_get(14)?;
    Ok(ConversationSummary {
        id: ConversationId(row.try_get(0)?),
        kind: stream::parse_kind(&kind)?,
        name: row.try_get(2)?,
        last_seq: row.try_get(3)?,
        last_activity_ms: row.try_get(4)?,
        my_role: role_at(row, 5)?,
        read_seq: row.try_get(6)?,
        member_count: count(row.try_get(7)?),
        unread_count: count(row.try_get(8)?),
        peer: peer_id.map(|_| profile_at(row, 9)).transpose()?,
        peer_online: None,
        last_message: last_id.map(|_| message_at(row, 14)).transpose()?,
    })
}

/// Whether either user blocked the other.
async fn blocked_either(conn: &mut SqliteConnection, a: UserId, b: UserId) -> StoreResult<bool> {
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

async fn user_exists(conn: &mut SqliteConnection, id: UserId) -> StoreResult<bool> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = ?)")
            .bind(id.0)
            .fetch_one(&mut *conn)
            .await?,
    )
}

async fn friend_request(
    conn: &mut SqliteConnection,
    id: FriendRequestId,
) -> StoreResult<FriendRequest> {
    let row = sqlx::query(friend_request_sql!("WHERE r.id = ?"))
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok(friend_request_at(&row)?)
}

/// A pending request's sender and recipient, checked to be pending and visible to `party`
/// on the given side. Requests of other users are `NotFound`, not `Forbidden`.
async fn pending_request(
    conn: &mut SqliteConnection,
    id: FriendRequestId,
    party: UserId,
    party_is_sender: bool,
) -> StoreResult<()> {
    let row: Option<(i64, i64, String)> =
        sqlx::query_as("SELECT from_id, to_id, status FROM friend_requests WHERE id = ?")
            .bind(id.0)
            .fetch_optional(&mut *conn)
            .await?;
    let (from, to, status) = row.ok_or(StoreError::NotFound)?;
    let side = if party_is_sender { from } else { to };
    if side != party.0 {
        return Err(StoreError::NotFound);
    }
    if status != status_str(FriendRequestStatus::Pending) {
        return Err(StoreError::Conflict(
            "the friend request is no longer pending".into(),
        ));
    }
    Ok(())
}

async fn set_request_status(
    conn: &mut SqliteConnection,
    id: FriendRequestId,
    status: FriendRequestStatus,
    now: i64,
) -> StoreResult<()> {
    sqlx::query("UPDATE friend_requests SET status = ?, updated_at_ms = ? WHERE id = ?")
        .bind(status_str(status))
        .bind(now)
        .bind(id.0)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn profiles(rows: &[SqliteRow]) -> StoreResult<Vec<UserProfile>> {
    Ok(rows
        .iter()
        .map(|row| profile_at(row, 0))
        .collect::<Result<_, _>>()?)
}

/// `None` keeps a field, `Some("")` clears it: (whether to write, the value to write).
fn clearable(value: Option<String>) -> (bool, Option<String>) {
    match value {
        None => (false, None),
        Some(text) if text.is_empty() => (true, None),
        Some(text) => (true, Some(text)),
    }
}

/// Gives each of `n` sends its own copy of a failure that sank the whole batch, since
/// driver errors cannot be cloned. The first send gets the original error.
fn batch_failure<T>(error: StoreError, n: usize) -> Vec<StoreResult<T>> {
    let text = error.to_string();
    let mut results = Vec::with_capacity(n);
    results.push(Err(error));
    while results.len() < n {
        results.push(Err(StoreError::Database(sqlx::Error::Protocol(format!(
            "the batch failed: {text}"
        )))));
    }
    results
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_user(&self, user: NewUser) -> StoreResult<UserProfile> {
        let now = now_ms();
        let row = sqlx::query(
            "INSERT INTO users \
             (username, username_key, nickname, avatar_url, signature, password_hash, created_at_ms) \
             VALUES (?, ?, ?, NULL, NULL, ?, ?) \
             RETURNING id, username, nickname, avatar_url, signature",
        )
        .bind(&user.username)
        .bind(username_key(&user.username))
        .bind(&user.nickname)
        .bind(&user.password_hash)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| match e {
            // username_key is the only unique column a new row can collide on.
            sqlx::Error::Database(ref db) if db.is_unique_violation() => StoreError::UsernameTaken,
            other => StoreError::Database(other),
        })?;
        Ok(profile_at(&row, 0)?)
    }

    async fn user(&self, id: UserId) -> StoreResult<UserProfile> {
        let row = sqlx::query(
            "SELECT id, username, nickname, avatar_url, signature FROM users WHERE id = ?",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        Ok(profile_at(&row, 0)?)
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<UserProfile> {
        let row = sqlx::query(
            "SELECT id, username, nickname, avatar_url, signature FROM users \
             WHERE username_key = ?",
        )
        .bind(username_key(username))
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        Ok(profile_at(&row, 0)?)
    }

    async fn credentials(&self, username: &str) -> StoreResult<Credentials> {
        let (id, password_hash): (i64, String) =
            sqlx::query_as("SELECT id, password_hash FROM users WHERE username_key = ?")
                .bind(username_key(username))
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::NotFound)?;
        Ok(Credentials {
            user_id: UserId(id),
            password_hash,
        })
    }

    async fn password_hash(&self, id: UserId) -> StoreResult<String> {
        sqlx::query_scalar("SELECT password_hash FROM users WHERE id = ?")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn update_profile(&self, id: UserId, update: ProfileUpdate) -> StoreResult<UserProfile> {
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
        .await?
        .ok_or(StoreError::NotFound)?;
        Ok(profile_at(&row, 0)?)
    }

    async fn change_password(
        &self,
        id: UserId,
        password_hash: String,
        keep: SessionId,
    ) -> StoreResult<Vec<SessionId>> {
        let mut tx = self.write().await?;
        let updated = sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
            .bind(&password_hash)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let revoked: Vec<i64> =
            sqlx::query_scalar("DELETE FROM sessions WHERE user_id = ? AND id <> ? RETURNING id")
                .bind(id.0)
                .bind(keep.0)
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(revoked.into_iter().map(SessionId).collect())
    }

    async fn create_session(&self, session: NewSession) -> StoreResult<SessionId> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO sessions (user_id, token_hash, device_name, created_at_ms, expires_at_ms) \
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(session.user_id.0)
        .bind(&session.token_hash)
        .bind(&session.device_name)
        .bind(now_ms())
        .bind(session.expires_at_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(SessionId(id))
    }

    async fn session_by_token_hash(&self, token_hash: &[u8], now_ms: i64) -> StoreResult<Session> {
        let (id, user_id, expires_at_ms): (i64, i64, i64) = sqlx::query_as(
            "SELECT id, user_id, expires_at_ms FROM sessions \
             WHERE token_hash = ? AND expires_at_ms > ?",
        )
        .bind(token_hash)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        Ok(Session {
            id: SessionId(id),
            user_id: UserId(user_id),
            expires_at_ms,
        })
    }

    /// Deleting a session that is already gone succeeds: logging out twice is not an error.
    async fn delete_session(&self, id: SessionId) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id = ?")
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_friend_request(
        &self,
        from: UserId,
        to: UserId,
        greeting: Option<String>,
    ) -> StoreResult<FriendRequest> {
        if from == to {
            return Err(StoreError::InvalidInput(
                "you cannot send a friend request to yourself".into(),
            ));
        }
        let now = now_ms();
        let mut tx = self.write().await?;
        if !user_exists(&mut tx, to).await? {
            return Err(StoreError::NotFound);
        }
        if blocked_either(&mut tx, from, to).await? {
            return Err(StoreError::Blocked);
        }
        if are_friends(&mut tx, from, to).await? {
            return Err(StoreError::Conflict("you are already friends".into()));
        }
        let pending: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM friend_requests WHERE status = 'pending' \
             AND ((from_id = ? AND to_id = ?) OR (from_id = ? AND to_id = ?)))",
        )
        .bind(from.0)
        .bind(to.0)
        .bind(to.0)
        .bind(from.0)
        .fetch_one(&mut *tx)
        .await?;
        if pending {
            return Err(StoreError::Conflict(
                "a friend request between you is already pending".into(),
            ));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO friend_requests \
             (from_id, to_id, greeting, status, created_at_ms, updated_at_ms) \
             VALUES (?, ?, ?, 'pending', ?, ?) RETURNING id",
        )
        .bind(from.0)
        .bind(to.0)
        .bind(greeting)
        .bind(now)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let request = friend_request(&mut tx, FriendRequestId(id)).await?;
        tx.commit().await?;
        Ok(request)
    }

    /// Both lists oldest first.
    async fn friend_requests(
        &self,
        user: UserId,
    ) -> StoreResult<(Vec<FriendRequest>, Vec<FriendRequest>)> {
        let mut tx = self.read().await?;
        let incoming = sqlx::query(friend_request_sql!(
            "WHERE r.to_id = ? AND r.status = 'pending' ORDER BY r.id"
        ))
        .bind(user.0)
        .fetch_all(&mut *tx)
        .await?;
        let outgoing = sqlx::query(friend_request_sql!(
            "WHERE r.from_id = ? AND r.status = 'pending' ORDER BY r.id"
        ))
        .bind(user.0)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let decode = |rows: Vec<SqliteRow>| {
            rows.iter()
                .map(friend_request_at)
                .collect::<Result<Vec<_>, _>>()
        };
        Ok((decode(incoming)?, decode(outgoing)?))
    }

    async fn answer_friend_request(
        &self,
        recipient: UserId,
        id: FriendRequestId,
        accept: bool,
    ) -> StoreResult<FriendRequest> {
        let now = now_ms();
        let mut tx = self.write().await?;
        pending_request(&mut tx, id, recipient, false).await?;
        let status = if accept {
            let (from,): (i64,) =
                sqlx::query_as("SELECT from_id FROM friend_requests WHERE id = ?")
                    .bind(id.0)
                    .fetch_one(&mut *tx)
                    .await?;
            // Two rows, one from each side; DO NOTHING keeps an earlier `since`.
            for (a, b) in [(from, recipient.0), (recipient.0, from)] {
                sqlx::query(
                    "INSERT INTO friendships (user_id, friend_id, since_ms) VALUES (?, ?, ?) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(a)
                .bind(b)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            FriendRequestStatus::Accepted
        } else {
            FriendRequestStatus::Rejected
        };
        set_request_status(&mut tx, id, status, now).await?;
        let request = friend_request(&mut tx, id).await?;
        tx.commit().await?;
        Ok(request)
    }

    async fn cancel_friend_request(
        &self,
        sender: UserId,
        id: FriendRequestId,
    ) -> StoreResult<FriendRequest> {
        let now = now_ms();
        let mut tx = self.write().await?;
        pending_request(&mut tx, id, sender, true).await?;
        set_request_status(&mut tx, id, FriendRequestStatus::Cancelled, now).await?;
        let request = friend_request(&mut tx, id).await?;
        tx.commit().await?;
        Ok(request)
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

    /// Fails with `NotFound` if they are not friends.
    async fn remove_friend(&self, user: UserId, friend: UserId) -> StoreResult<()> {
        let removed = sqlx::query(
            "DELETE FROM friendships \
             WHERE (user_id = ? AND friend_id = ?) OR (user_id = ? AND friend_id = ?)",
        )
        .bind(user.0)
        .bind(friend.0)
        .bind(friend.0)
        .bind(user.0)
        .execute(&self.pool)
        .await?;
        if removed.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// A block leaves an existing friendship in place (unblocking restores things as they
    /// were); it stops messages and requests in both directions while it lasts.
    async fn block(&self, user: UserId, blocked: UserId) -> StoreResult<()> {
        if user == blocked {
            return Err(StoreError::InvalidInput("you cannot block yourself".into()));
        }
        let now = now_ms();
        let mut tx = self.write().await?;
        if !user_exists(&mut tx, blocked).await? {
            return Err(StoreError::NotFound);
        }
        sqlx::query(
            "INSERT INTO blocks (user_id, blocked_id, created_at_ms) VALUES (?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(user.0)
        .bind(blocked.0)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM friend_requests WHERE status = 'pending' \
             AND ((from_id = ? AND to_id = ?) OR (from_id = ? AND to_id = ?))",
        )
        .bind(user.0)
        .bind(blocked.0)
        .bind(blocked.0)
        .bind(user.0)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Unblocking someone who is not blocked is a no-op, like blocking twice.
    async fn unblock(&self, user: UserId, blocked: UserId) -> StoreResult<()> {
        sqlx::query("DELETE FROM blocks WHERE user_id = ? AND blocked_id = ?")
            .bind(user.0)
            .bind(blocked.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Oldest block first.
    async fn blocked_users(&self, user: UserId) -> StoreResult<Vec<UserProfile>> {
        let rows = sqlx::query(
            "SELECT u.id, u.username, u.nickname, u.avatar_url, u.signature \
             FROM blocks b JOIN users u ON u.id = b.blocked_id \
             WHERE b.user_id = ? ORDER BY b.created_at_ms, u.id",
        )
        .bind(user.0)
        .fetch_all(&self.pool)
        .await?;
        profiles(&rows)
    }

    async fn open_direct(
        &self,
        user: UserId,
        peer: UserId,
        require_friendship: bool,
    ) -> StoreResult<ConversationId> {
        if user == peer {
            return Err(StoreError::InvalidInput(
                "a direct conversation needs two people".into(),
            ));
        }
        let now = now_ms();
        let mut tx = self.write().await?;
        if !user_exists(&mut tx, peer).await? {
            return Err(StoreError::NotFound);
        }
        if blocked_either(&mut tx, user, peer).await? {
            return Err(StoreError::Blocked);
        }
        if require_friendship && !are_friends(&mut tx, user, peer).await? {
            return Err(StoreError::NotFriends);
        }
        let key = direct_key(user, peer);
        let existing: Option<i64> =
            sqlx::query_scalar("SELECT id FROM conversations WHERE direct_key = ?")
                .bind(&key)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(id) = existing {
            return Ok(ConversationId(id));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO conversations (kind, name, direct_key, last_seq, last_activity_ms, created_at_ms) \
             VALUES ('direct', NULL, ?, 0, ?, ?) RETURNING id",
        )
        .bind(&key)
        .bind(now)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let conversation = ConversationId(id);
        for member in [user, peer] {
            group::insert_member(&mut tx, conversation, member, Role::Member, 0, now).await?;
        }
        tx.commit().await?;
        Ok(conversation)
    }

    async fn create_group(
        &self,
        owner: UserId,
        name: String,
        members: Vec<UserId>,
    ) -> StoreResult<CreatedGroup> {
        let now = now_ms();
        let mut tx = self.write().await?;
        let created = group::create(&mut tx, owner, name, members, now).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn conversations(&self, user: UserId) -> StoreResult<Vec<ConversationSummary>> {
        let mut conn = self.pool.acquire().await?;
        SqliteStore::summaries(&mut conn, user, None).await
    }

    /// Members in the order they joined.
    async fn conversation(
        &self,
        user: UserId,
        id: ConversationId,
    ) -> StoreResult<ConversationDetail> {
        let mut tx = self.read().await?;
        let summary = SqliteStore::summaries(&mut tx, user, Some(id))
            .await?
            .pop()
            .ok_or(StoreError::NotFound)?;
        let rows = sqlx::query(
            "SELECT u.id, u.username, u.nickname, u.avatar_url, u.signature, \
             m.role, m.read_seq, m.joined_at_ms \
             FROM members m JOIN users u ON u.id = m.user_id \
             WHERE m.conversation_id = ? ORDER BY m.joined_at_ms, u.id",
        )
        .bind(id.0)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let members = rows
            .iter()
            .map(|row| {
                Ok(Member {
                    user: profile_at(row, 0)?,
                    role: role_at(row, 5)?,
                    read_seq: row.try_get(6)?,
                    joined_at_ms: row.try_get(7)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(ConversationDetail { summary, members })
    }

    async fn is_member(&self, user: UserId, id: ConversationId) -> StoreResult<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM members WHERE conversation_id = ? AND user_id = ?)",
        )
        .bind(id.0)
        .bind(user.0)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn change_group(
        &self,
        actor: UserId,
        id: ConversationId,
        change: GroupChange,
    ) -> StoreResult<Appended> {
        let now = now_ms();
        let mut tx = self.write().await?;
        let appended = group::change(&mut tx, actor, id, change, now).await?;
        tx.commit().await?;
        Ok(appended)
    }

    async fn append_messages(
        &self,
        sends: &[NewMessage],
        policy: SendPolicy,
    ) -> Vec<StoreResult<Appended>> {
        if sends.is_empty() {
            return Vec::new();
        }
        let now = now_ms();
        let mut tx = match self.write().await {
            Ok(tx) => tx,
            Err(error) => return batch_failure(error.into(), sends.len()),
        };
        let answers = match stream::append_batch(&mut tx, sends, policy, now).await {
            Ok(answers) => answers,
            // Dropping the transaction rolls it back: nothing of the batch is written.
            Err(error) => return batch_failure(error, sends.len()),
        };
        match tx.commit().await {
            Ok(()) => answers,
            Err(error) => batch_failure(error.into(), sends.len()),
        }
    }

    async fn recall_message(
        &self,
        actor: UserId,
        id: ConversationId,
        target: MessageId,
        window_ms: i64,
    ) -> StoreResult<Appended> {
        let now = now_ms();
        let mut tx = self.write().await?;
        let appended = stream::recall(&mut tx, actor, id, target, window_ms, now).await?;
        tx.commit().await?;
        Ok(appended)
    }

    async fn messages_after(
        &self,
        user: UserId,
        id: ConversationId,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Page> {
        let mut tx = self.read().await?;
        if stream::membership(&mut tx, user, id).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        let page = stream::page_after(&mut tx, id, after_seq, limit).await?;
        tx.commit().await?;
        Ok(page)
    }

    async fn messages_before(
        &self,
        user: UserId,
        id: ConversationId,
        before_seq: i64,
        limit: u32,
    ) -> StoreResult<Page> {
        let mut tx = self.read().await?;
        if stream::membership(&mut tx, user, id).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        let page = stream::page_before(&mut tx, id, before_seq, limit).await?;
        tx.commit().await?;
        Ok(page)
    }

    async fn mark_read(&self, user: UserId, id: ConversationId, seq: i64) -> StoreResult<ReadMark> {
        let mut tx = self.write().await?;
        let (read_seq, last_seq): (i64, i64) = sqlx::query_as(
            "SELECT m.read_seq, c.last_seq FROM members m \
             JOIN conversations c ON c.id = m.conversation_id \
             WHERE m.conversation_id = ? AND m.user_id = ?",
        )
        .bind(id.0)
        .bind(user.0)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let target = seq.min(last_seq);
        let advanced = target > read_seq;
        if advanced {
            sqlx::query(
                "UPDATE members SET read_seq = ? WHERE conversation_id = ? AND user_id = ?",
            )
            .bind(target)
            .bind(id.0)
            .bind(user.0)
            .execute(&mut *tx)
            .await?;
        }
        let recipients = stream::member_ids(&mut tx, id).await?;
        tx.commit().await?;
        Ok(ReadMark {
            read_seq: read_seq.max(target),
            advanced,
            recipients,
        })
    }
}
