//! The MySQL/MariaDB backend of [`Store`].
//!
//! The same design as [`crate::postgres`], in MySQL's dialect: several server processes may
//! share one database; connections run at READ COMMITTED (each statement sees what was
//! committed before it, as on PostgreSQL, and InnoDB takes no gap locks); every rule is
//! checked inside the write transaction that acts on it, after taking the row lock that
//! serializes writers on the same thing, always in ascending id order; and a transaction
//! that still loses a race is run again (`row::with_retries`). MySQL has no `RETURNING`, so
//! ids come from `LAST_INSERT_ID()` and bumped values are read back inside the transaction,
//! where the row lock taken by the `UPDATE` is held until commit.
//!
//! The stream (seq assignment, sends, recalls, paging) lives in [`stream`], groups in
//! [`group`]; row decoding is shared with PostgreSQL in `crate::row`.

mod group;
mod stream;

use std::str::FromStr;

use async_trait::async_trait;
use banter_protocol::model::{
    ConversationDetail, ConversationSummary, FriendRequest, FriendRequestStatus, Member, Role,
    UserProfile,
};
use banter_protocol::{ConversationId, FriendRequestId, MessageId, UserId};
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions, MySqlQueryResult, MySqlRow};
use sqlx::{Executor, MySql, MySqlConnection, MySqlPool, Row, Transaction};

use crate::row::{
    batch_failure, clearable, count, direct_key, friend_request_at, friend_request_sql, message_at,
    now_ms, parse_kind, profile_at, role_at, status_str, username_key, with_retries, Columns,
    Retry, Text,
};
use crate::{
    Appended, CreatedGroup, Credentials, GroupChange, NewMessage, NewSession, NewUser, OpenOptions,
    Page, ProfileUpdate, ReadMark, SendPolicy, Session, SessionId, Store, StoreError, StoreResult,
};

/// The store on one MySQL or MariaDB database.
#[derive(Debug, Clone)]
pub struct MySqlStore {
    pool: MySqlPool,
}

type Tx = Transaction<'static, MySql>;

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
        Ok(MySqlStore { pool })
    }

    async fn begin(&self) -> Result<Tx, sqlx::Error> {
        self.pool.begin().await
    }

    /// A read-only transaction at REPEATABLE READ: one snapshot for queries that read twice.
    /// `SET TRANSACTION` applies to the next transaction only; the session stays at READ
    /// COMMITTED.
    async fn snapshot(&self) -> Result<Tx, sqlx::Error> {
        self.pool
            .begin_with(
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; START TRANSACTION READ ONLY",
            )
            .await
    }

    /// The user's conversation summaries, or the one with `only` when given.
    async fn summaries(
        conn: &mut MySqlConnection,
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
                    " AND x.seq > m.read_seq AND x.kind = 'text' AND NOT x.recalled ",
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

fn summary_from_row(row: &MySqlRow) -> StoreResult<ConversationSummary> {
    let kind = row.text(1)?;
    let peer_id: Option<i64> = row.try_get(9)?;
    let last_id: Option<i64> = row.try_get(14)?;
    Ok(ConversationSummary {
        id: ConversationId(row.try_get(0)?),
        kind: parse_kind(&kind)?,
        name: row.opt_text(2)?,
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

/// The id an INSERT generated, as the signed id the columns hold.
pub(super) fn inserted_id(result: &MySqlQueryResult) -> StoreResult<i64> {
    i64::try_from(result.last_insert_id())
        .map_err(|_| StoreError::Database(sqlx::Error::Protocol("insert id out of range".into())))
}

/// Locks the rows of users `a` and `b` (ascending id order, so two writers never deadlock
/// on them) for the rest of the transaction, which serializes every change to what is
/// between the two. Returns whether `b` exists.
async fn lock_pair(conn: &mut MySqlConnection, a: UserId, b: UserId) -> StoreResult<bool> {
    let ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM users WHERE id IN (?, ?) ORDER BY id FOR UPDATE")
            .bind(a.0)
            .bind(b.0)
            .fetch_all(&mut *conn)
            .await?;
    Ok(ids.contains(&b.0))
}

/// Whether either user blocked the other.
async fn blocked_either(conn: &mut MySqlConnection, a: UserId, b: UserId) -> StoreResult<bool> {
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

async fn are_friends(conn: &mut MySqlConnection, a: UserId, b: UserId) -> StoreResult<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM friendships WHERE user_id = ? AND friend_id = ?)",
    )
    .bind(a.0)
    .bind(b.0)
    .fetch_one(&mut *conn)
    .await?)
}

async fn friend_request(
    conn: &mut MySqlConnection,
    id: FriendRequestId,
) -> StoreResult<FriendRequest> {
    let row = sqlx::query(friend_request_sql!("WHERE r.id = ?"))
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok(friend_request_at(&row)?)
}

/// Locks a pending request and returns its sender, checked to be pending and visible to
/// `party` on the given side. Requests of other users are `NotFound`, not `Forbidden`.
async fn pending_request(
    conn: &mut MySqlConnection,
    id: FriendRequestId,
    party: UserId,
    party_is_sender: bool,
) -> StoreResult<UserId> {
    let row: Option<(i64, i64, Text)> = sqlx::query_as(
        "SELECT from_id, to_id, status FROM friend_requests WHERE id = ? FOR UPDATE",
    )
    .bind(id.0)
    .fetch_optional(&mut *conn)
    .await?;
    let (from, to, Text(status)) = row.ok_or(StoreError::NotFound)?;
    let side = if party_is_sender { from } else { to };
    if side != party.0 {
        return Err(StoreError::NotFound);
    }
    if status != status_str(FriendRequestStatus::Pending) {
        return Err(StoreError::Conflict(
            "the friend request is no longer pending".into(),
        ));
    }
    Ok(UserId(from))
}

async fn set_request_status(
    conn: &mut MySqlConnection,
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

async fn profile(conn: &mut MySqlConnection, id: UserId) -> StoreResult<UserProfile> {
    let row =
        sqlx::query("SELECT id, username, nickname, avatar_url, signature FROM users WHERE id = ?")
            .bind(id.0)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(StoreError::NotFound)?;
    Ok(profile_at(&row, 0)?)
}

fn profiles(rows: &[MySqlRow]) -> StoreResult<Vec<UserProfile>> {
    Ok(rows
        .iter()
        .map(|row| profile_at(row, 0))
        .collect::<Result<_, _>>()?)
}

#[async_trait]
impl Store for MySqlStore {
    async fn create_user(&self, user: NewUser) -> StoreResult<UserProfile> {
        let inserted = sqlx::query(
            "INSERT INTO users \
             (username, username_key, nickname, avatar_url, signature, password_hash, created_at_ms) \
             VALUES (?, ?, ?, NULL, NULL, ?, ?)",
        )
        .bind(&user.username)
        .bind(username_key(&user.username))
        .bind(&user.nickname)
        .bind(&user.password_hash)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(|e| match e {
            // username_key is the only unique column a new row can collide on.
            sqlx::Error::Database(ref db) if db.is_unique_violation() => StoreError::UsernameTaken,
            other => StoreError::Database(other),
        })?;
        Ok(UserProfile {
            id: UserId(inserted_id(&inserted)?),
            username: user.username,
            nickname: user.nickname,
            avatar_url: None,
            signature: None,
        })
    }

    async fn user(&self, id: UserId) -> StoreResult<UserProfile> {
        let mut conn = self.pool.acquire().await?;
        profile(&mut conn, id).await
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
        let (id, Text(password_hash)): (i64, Text) =
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
        let Text(hash) = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = ?")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(hash)
    }

    async fn update_profile(&self, id: UserId, update: ProfileUpdate) -> StoreResult<UserProfile> {
        let (set_avatar, avatar_url) = clearable(update.avatar_url);
        let (set_signature, signature) = clearable(update.signature);
        let nickname = update.nickname;
        with_retries(Retry::Conflicts, || async {
            let mut tx = self.begin().await?;
            sqlx::query(
                "UPDATE users SET nickname = COALESCE(?, nickname), \
                 avatar_url = CASE WHEN ? THEN ? ELSE avatar_url END, \
                 signature = CASE WHEN ? THEN ? ELSE signature END \
                 WHERE id = ?",
            )
            .bind(nickname.as_deref())
            .bind(set_avatar)
            .bind(avatar_url.as_deref())
            .bind(set_signature)
            .bind(signature.as_deref())
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
            let updated = profile(&mut tx, id).await?;
            tx.commit().await?;
            Ok(updated)
        })
        .await
    }

    async fn change_password(
        &self,
        id: UserId,
        password_hash: String,
        keep: SessionId,
    ) -> StoreResult<Vec<SessionId>> {
        with_retries(Retry::Conflicts, || async {
            let mut tx = self.begin().await?;
            // The user's row is locked first, so a concurrent login's new session either
            // commits before (and is revoked here) or waits and is not.
            let exists: Option<i64> =
                sqlx::query_scalar("SELECT id FROM users WHERE id = ? FOR UPDATE")
                    .bind(id.0)
                    .fetch_optional(&mut *tx)
                    .await?;
            if exists.is_none() {
                return Err(StoreError::NotFound);
            }
            sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
                .bind(&password_hash)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
            let revoked: Vec<i64> = sqlx::query_scalar(
                "SELECT id FROM sessions WHERE user_id = ? AND id <> ? ORDER BY id FOR UPDATE",
            )
            .bind(id.0)
            .bind(keep.0)
            .fetch_all(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM sessions WHERE user_id = ? AND id <> ?")
                .bind(id.0)
                .bind(keep.0)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(revoked.into_iter().map(SessionId).collect())
        })
        .await
    }

    async fn create_session(&self, session: NewSession) -> StoreResult<SessionId> {
        let inserted = sqlx::query(
            "INSERT INTO sessions (user_id, token_hash, device_name, created_at_ms, expires_at_ms) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(session.user_id.0)
        .bind(&session.token_hash)
        .bind(&session.device_name)
        .bind(now_ms())
        .bind(session.expires_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(SessionId(inserted_id(&inserted)?))
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
        with_retries(Retry::Conflicts, || async {
            let now = now_ms();
            let mut tx = self.begin().await?;
            if !lock_pair(&mut tx, from, to).await? {
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
            let inserted = sqlx::query(
                "INSERT INTO friend_requests \
                 (from_id, to_id, greeting, status, created_at_ms, updated_at_ms) \
                 VALUES (?, ?, ?, 'pending', ?, ?)",
            )
            .bind(from.0)
            .bind(to.0)
            .bind(greeting.as_deref())
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let id = FriendRequestId(inserted_id(&inserted)?);
            let request = friend_request(&mut tx, id).await?;
            tx.commit().await?;
            Ok(request)
        })
        .await
    }

    /// Both lists oldest first.
    async fn friend_requests(
        &self,
        user: UserId,
    ) -> StoreResult<(Vec<FriendRequest>, Vec<FriendRequest>)> {
        let mut tx = self.snapshot().await?;
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
        let decode = |rows: Vec<MySqlRow>| {
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
        with_retries(Retry::Conflicts, || async {
            let now = now_ms();
            let mut tx = self.begin().await?;
            let from = pending_request(&mut tx, id, recipient, false).await?;
            let status = if accept {
                // Two rows, one from each side; an existing row keeps its earlier `since`.
                sqlx::query(
                    "INSERT INTO friendships (user_id, friend_id, since_ms) \
                     VALUES (?, ?, ?), (?, ?, ?) ON DUPLICATE KEY UPDATE since_ms = since_ms",
                )
                .bind(from.0)
                .bind(recipient.0)
                .bind(now)
                .bind(recipient.0)
                .bind(from.0)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                FriendRequestStatus::Accepted
            } else {
                FriendRequestStatus::Rejected
            };
            set_request_status(&mut tx, id, status, now).await?;
            let request = friend_request(&mut tx, id).await?;
            tx.commit().await?;
            Ok(request)
        })
        .await
    }

    async fn cancel_friend_request(
        &self,
        sender: UserId,
        id: FriendRequestId,
    ) -> StoreResult<FriendRequest> {
        with_retries(Retry::Conflicts, || async {
            let mut tx = self.begin().await?;
            pending_request(&mut tx, id, sender, true).await?;
            set_request_status(&mut tx, id, FriendRequestStatus::Cancelled, now_ms()).await?;
            let request = friend_request(&mut tx, id).await?;
            tx.commit().await?;
            Ok(request)
        })
        .await
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
        with_retries(Retry::Conflicts, || async {
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
        })
        .await
    }

    /// A block leaves an existing friendship in place (unblocking restores things as they
    /// were); it stops messages and requests in both directions while it lasts.
    async fn block(&self, user: UserId, blocked: UserId) -> StoreResult<()> {
        if user == blocked {
            return Err(StoreError::InvalidInput("you cannot block yourself".into()));
        }
        with_retries(Retry::Conflicts, || async {
            let mut tx = self.begin().await?;
            if !lock_pair(&mut tx, user, blocked).await? {
                return Err(StoreError::NotFound);
            }
            sqlx::query(
                "INSERT INTO blocks (user_id, blocked_id, created_at_ms) VALUES (?, ?, ?) \
                 ON DUPLICATE KEY UPDATE created_at_ms = created_at_ms",
            )
            .bind(user.0)
            .bind(blocked.0)
            .bind(now_ms())
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
        })
        .await
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
        with_retries(Retry::Conflicts, || async {
            let now = now_ms();
            let mut tx = self.begin().await?;
            // The pair's lock also makes "find, else create" atomic across processes.
            if !lock_pair(&mut tx, user, peer).await? {
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
            let inserted = sqlx::query(
                "INSERT INTO conversations \
                 (kind, name, direct_key, last_seq, last_activity_ms, created_at_ms) \
                 VALUES ('direct', NULL, ?, 0, ?, ?)",
            )
            .bind(&key)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let conversation = ConversationId(inserted_id(&inserted)?);
            for member in [user, peer] {
                group::insert_member(&mut tx, conversation, member, Role::Member, 0, now).await?;
            }
            tx.commit().await?;
            Ok(conversation)
        })
        .await
    }

    async fn create_group(
        &self,
        owner: UserId,
        name: String,
        members: Vec<UserId>,
    ) -> StoreResult<CreatedGroup> {
        with_retries(Retry::Conflicts, || async {
            let mut tx = self.begin().await?;
            let created =
                group::create(&mut tx, owner, name.clone(), members.clone(), now_ms()).await?;
            tx.commit().await?;
            Ok(created)
        })
        .await
    }

    async fn conversations(&self, user: UserId) -> StoreResult<Vec<ConversationSummary>> {
        let mut conn = self.pool.acquire().await?;
        MySqlStore::summaries(&mut conn, user, None).await
    }

    /// Members in the order they joined.
    async fn conversation(
        &self,
        user: UserId,
        id: ConversationId,
    ) -> StoreResult<ConversationDetail> {
        let mut tx = self.snapshot().await?;
        let summary = MySqlStore::summaries(&mut tx, user, Some(id))
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
        with_retries(Retry::Conflicts, || async {
            let mut tx = self.begin().await?;
            let appended = group::change(&mut tx, actor, id, change.clone(), now_ms()).await?;
            tx.commit().await?;
            Ok(appended)
        })
        .await
    }

    async fn append_messages(
        &self,
        sends: &[NewMessage],
        policy: SendPolicy,
    ) -> Vec<StoreResult<Appended>> {
        if sends.is_empty() {
            return Vec::new();
        }
        // A unique violation means a resend raced its original from another connection;
        // the rerun finds the original and answers `duplicate`.
        let result = with_retries(Retry::ConflictsAndInsertRaces, || async {
            let mut tx = self.begin().await?;
            let answers = stream::append_batch(&mut tx, sends, policy, now_ms()).await?;
            tx.commit().await?;
            Ok(answers)
        })
        .await;
        // On failure the transaction was rolled back: nothing of the batch is written.
        result.unwrap_or_else(|error| batch_failure(error, sends.len()))
    }

    async fn recall_message(
        &self,
        actor: UserId,
        id: ConversationId,
        target: MessageId,
        window_ms: i64,
    ) -> StoreResult<Appended> {
        with_retries(Retry::Conflicts, || async {
            let mut tx = self.begin().await?;
            let appended = stream::recall(&mut tx, actor, id, target, window_ms, now_ms()).await?;
            tx.commit().await?;
            Ok(appended)
        })
        .await
    }

    async fn messages_after(
        &self,
        user: UserId,
        id: ConversationId,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Page> {
        let mut conn = self.pool.acquire().await?;
        if stream::membership(&mut conn, user, id).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        stream::page_after(&mut conn, id, after_seq, limit).await
    }

    async fn messages_before(
        &self,
        user: UserId,
        id: ConversationId,
        before_seq: i64,
        limit: u32,
    ) -> StoreResult<Page> {
        let mut conn = self.pool.acquire().await?;
        if stream::membership(&mut conn, user, id).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        stream::page_before(&mut conn, id, before_seq, limit).await
    }

    async fn mark_read(&self, user: UserId, id: ConversationId, seq: i64) -> StoreResult<ReadMark> {
        with_retries(Retry::Conflicts, || async {
            let mut tx = self.begin().await?;
            // The member row is locked so that two devices marking at once both see the
            // pointer the other left; the conversation row is only read.
            let read_seq: i64 = sqlx::query_scalar(
                "SELECT read_seq FROM members WHERE conversation_id = ? AND user_id = ? FOR UPDATE",
            )
            .bind(id.0)
            .bind(user.0)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
            let last_seq: i64 =
                sqlx::query_scalar("SELECT last_seq FROM conversations WHERE id = ?")
                    .bind(id.0)
                    .fetch_one(&mut *tx)
                    .await?;
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
        })
        .await
    }
}
