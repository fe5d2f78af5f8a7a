//! The PostgreSQL backend of [`Store`].
//!
//! Several server processes may share one database. Transactions run at READ COMMITTED;
//! every rule the trait promises is checked inside the write transaction that acts on it,
//! after taking the row lock that serializes writers on the same thing: the conversation
//! row for anything appended to its stream, the two users' rows for friendship, block and
//! direct-conversation changes, the request row for answering a friend request. Locks are
//! always taken in ascending id order (`FOR NO KEY UPDATE`, which foreign-key checks do not
//! wait for), and a transaction that still loses a race (deadlock, or an insert that
//! another writer made first) is run again (`row::with_retries`).
//!
//! The stream (seq assignment, sends, recalls, paging) lives in [`stream`], groups in
//! [`group`]; row decoding is shared with MySQL in `crate::row`.

mod group;
mod stream;

use std::str::FromStr;

use async_trait::async_trait;
use banter_protocol::model::{
    ConversationDetail, ConversationSummary, FriendRequest, FriendRequestStatus, Member, Role,
    UserProfile,
};
use banter_protocol::{ConversationId, FriendRequestId, MessageId, UserId};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgConnection, PgPool, Postgres, Row, Transaction};

use crate::row::{
    batch_failure, clearable, count, direct_key, friend_request_at, friend_request_sql, message_at,
    now_ms, parse_kind, profile_at, role_at, status_str, username_key, with_retries, Retry,
};
use crate::{
    Appended, CreatedGroup, Credentials, Durability, GroupChange, NewMessage, NewSession, NewUser,
    OpenOptions, Page, ProfileUpdate, ReadMark, SendPolicy, Session, SessionId, Store, StoreError,
    StoreResult,
};

/// The store on one PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

type Tx = Transaction<'static, Postgres>;

impl PostgresStore {
    /// Connects to the database at `url`, e.g. `postgres://banter@localhost/banter`, and
    /// runs the migrations in `migrations/postgres`. Several processes may open the same
    /// database at once: the migrator holds an advisory lock while it runs.
    pub async fn open(url: &str, options: &OpenOptions) -> StoreResult<PostgresStore> {
        if options.connections_max == 0 {
            return Err(StoreError::Config(
                "connections_max must be at least 1".into(),
            ));
        }
        let mut connect = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("invalid PostgreSQL URL: {e}")))?
            .application_name("banter");
        if options.durability == Durability::Relaxed {
            // The commit returns before the WAL reaches the disk; a crash of the database
            // server (not of banter) can lose the last few hundred milliseconds of commits.
            connect = connect.options([("synchronous_commit", "off")]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.connections_max)
            .connect_with(connect)
            .await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(PostgresStore { pool })
    }

    async fn begin(&self) -> Result<Tx, sqlx::Error> {
        self.pool.begin().await
    }

    /// The user's conversation summaries, or the one with `only` when given.
    async fn summaries(
        conn: &mut PgConnection,
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
                sqlx::query(summary_sql!("WHERE m.user_id = $1"))
                    .bind(user.0)
                    .fetch_all(&mut *conn)
                    .await?
            }
            Some(id) => {
                sqlx::query(summary_sql!("WHERE m.user_id = $1 AND c.id = $2"))
                    .bind(user.0)
                    .bind(id.0)
                    .fetch_all(&mut *conn)
                    .await?
            }
        };
        rows.iter().map(summary_from_row).collect()
    }
}

fn summary_from_row(row: &PgRow) -> StoreResult<ConversationSummary> {
    let kind: String = row.try_get(1)?;
    let peer_id: Option<i64> = row.try_get(9)?;
    let last_id: Option<i64> = row.try_get(14)?;
    Ok(ConversationSummary {
        id: ConversationId(row.try_get(0)?),
        kind: parse_kind(&kind)?,
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

/// Locks the rows of users `a` and `b` (ascending id order, so two writers never deadlock
/// on them) for the rest of the transaction, which serializes every change to what is
/// between the two. Returns whether `b` exists.
///
/// `FOR NO KEY UPDATE`, like every row lock in this backend: it excludes the other lockers
/// but not the key-share locks of foreign-key checks, so inserting a message that names
/// one of these users as sender does not wait for it.
async fn lock_pair(conn: &mut PgConnection, a: UserId, b: UserId) -> StoreResult<bool> {
    let ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM users WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE")
            .bind(vec![a.0, b.0])
            .fetch_all(&mut *conn)
            .await?;
    Ok(ids.contains(&b.0))
}

/// Whether either user blocked the other.
async fn blocked_either(conn: &mut PgConnection, a: UserId, b: UserId) -> StoreResult<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM blocks \
         WHERE (user_id = $1 AND blocked_id = $2) OR (user_id = $2 AND blocked_id = $1))",
    )
    .bind(a.0)
    .bind(b.0)
    .fetch_one(&mut *conn)
    .await?)
}

async fn are_friends(conn: &mut PgConnection, a: UserId, b: UserId) -> StoreResult<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM friendships WHERE user_id = $1 AND friend_id = $2)",
    )
    .bind(a.0)
    .bind(b.0)
    .fetch_one(&mut *conn)
    .await?)
}

async fn friend_request(
    conn: &mut PgConnection,
    id: FriendRequestId,
) -> StoreResult<FriendRequest> {
    let row = sqlx::query(friend_request_sql!("WHERE r.id = $1"))
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok(friend_request_at(&row)?)
}

/// Locks a pending request and returns its sender, checked to be pending and visible to
/// `party` on the given side. Requests of other users are `NotFound`, not `Forbidden`.
async fn pending_request(
    conn: &mut PgConnection,
    id: FriendRequestId,
    party: UserId,
    party_is_sender: bool,
) -> StoreResult<UserId> {
    let row: Option<(i64, i64, String)> = sqlx::query_as(
        "SELECT from_id, to_id, status FROM friend_requests WHERE id = $1 FOR NO KEY UPDATE",
    )
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
    Ok(UserId(from))
}

async fn set_request_status(
    conn: &mut PgConnection,
    id: FriendRequestId,
    status: FriendRequestStatus,
    now: i64,
) -> StoreResult<()> {
    sqlx::query("UPDATE friend_requests SET status = $1, updated_at_ms = $2 WHERE id = $3")
        .bind(status_str(status))
        .bind(now)
        .bind(id.0)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn profiles(rows: &[PgRow]) -> StoreResult<Vec<UserProfile>> {
    Ok(rows
        .iter()
        .map(|row| profile_at(row, 0))
        .collect::<Result<_, _>>()?)
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_user(&self, user: NewUser) -> StoreResult<UserProfile> {
        let row = sqlx::query(
            "INSERT INTO users \
             (username, username_key, nickname, avatar_url, signature, password_hash, created_at_ms) \
             VALUES ($1, $2, $3, NULL, NULL, $4, $5) \
             RETURNING id, username, nickname, avatar_url, signature",
        )
        .bind(&user.username)
        .bind(username_key(&user.username))
        .bind(&user.nickname)
        .bind(&user.password_hash)
        .bind(now_ms())
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
            "SELECT id, username, nickname, avatar_url, signature FROM users WHERE id = $1",
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
             WHERE username_key = $1",
        )
        .bind(username_key(username))
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        Ok(profile_at(&row, 0)?)
    }

    async fn credentials(&self, username: &str) -> StoreResult<Credentials> {
        let (id, password_hash): (i64, String) =
            sqlx::query_as("SELECT id, password_hash FROM users WHERE username_key = $1")
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
        sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn update_profile(&self, id: UserId, update: ProfileUpdate) -> StoreResult<UserProfile> {
        let (set_avatar, avatar_url) = clearable(update.avatar_url);
        let (set_signature, signature) = clearable(update.signature);
        let row = sqlx::query(
            "UPDATE users SET nickname = COALESCE($1, nickname), \
             avatar_url = CASE WHEN $2 THEN $3 ELSE avatar_url END, \
             signature = CASE WHEN $4 THEN $5 ELSE signature END \
             WHERE id = $6 RETURNING id, username, nickname, avatar_url, signature",
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
        with_retries(Retry::Conflicts, || async {
            let mut tx = self.begin().await?;
            let updated = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(&password_hash)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            let revoked: Vec<i64> = sqlx::query_scalar(
                "DELETE FROM sessions WHERE user_id = $1 AND id <> $2 RETURNING id",
            )
            .bind(id.0)
            .bind(keep.0)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(revoked.into_iter().map(SessionId).collect())
        })
        .await
    }

    async fn create_session(&self, session: NewSession) -> StoreResult<SessionId> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO sessions (user_id, token_hash, device_name, created_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
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
             WHERE token_hash = $1 AND expires_at_ms > $2",
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
        sqlx::query("DELETE FROM sessions WHERE id = $1")
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
                 AND ((from_id = $1 AND to_id = $2) OR (from_id = $2 AND to_id = $1)))",
            )
            .bind(from.0)
            .bind(to.0)
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
                 VALUES ($1, $2, $3, 'pending', $4, $4) RETURNING id",
            )
            .bind(from.0)
            .bind(to.0)
            .bind(greeting.as_deref())
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            let request = friend_request(&mut tx, FriendRequestId(id)).await?;
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
        // Repeatable read: both lists from one snapshot.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        let incoming = sqlx::query(friend_request_sql!(
            "WHERE r.to_id = $1 AND r.status = 'pending' ORDER BY r.id"
        ))
        .bind(user.0)
        .fetch_all(&mut *tx)
        .await?;
        let outgoing = sqlx::query(friend_request_sql!(
            "WHERE r.from_id = $1 AND r.status = 'pending' ORDER BY r.id"
        ))
        .bind(user.0)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let decode = |rows: Vec<PgRow>| {
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
                // Two rows, one from each side; DO NOTHING keeps an earlier `since`.
                sqlx::query(
                    "INSERT INTO friendships (user_id, friend_id, since_ms) \
                     VALUES ($1, $2, $3), ($2, $1, $3) ON CONFLICT DO NOTHING",
                )
                .bind(from.0)
                .bind(recipient.0)
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
             WHERE f.user_id = $1 ORDER BY f.since_ms, u.id",
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
            "SELECT friend_id FROM friendships WHERE user_id = $1 ORDER BY friend_id",
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
             WHERE (user_id = $1 AND friend_id = $2) OR (user_id = $2 AND friend_id = $1)",
        )
        .bind(user.0)
        .bind(friend.0)
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
        with_retries(Retry::Conflicts, || async {
            let mut tx = self.begin().await?;
            if !lock_pair(&mut tx, user, blocked).await? {
                return Err(StoreError::NotFound);
            }
            sqlx::query(
                "INSERT INTO blocks (user_id, blocked_id, created_at_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(user.0)
            .bind(blocked.0)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "DELETE FROM friend_requests WHERE status = 'pending' \
                 AND ((from_id = $1 AND to_id = $2) OR (from_id = $2 AND to_id = $1))",
            )
            .bind(user.0)
            .bind(blocked.0)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Unblocking someone who is not blocked is a no-op, like blocking twice.
    async fn unblock(&self, user: UserId, blocked: UserId) -> StoreResult<()> {
        sqlx::query("DELETE FROM blocks WHERE user_id = $1 AND blocked_id = $2")
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
             WHERE b.user_id = $1 ORDER BY b.created_at_ms, u.id",
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
                sqlx::query_scalar("SELECT id FROM conversations WHERE direct_key = $1")
                    .bind(&key)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(id) = existing {
                return Ok(ConversationId(id));
            }
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO conversations \
                 (kind, name, direct_key, last_seq, last_activity_ms, created_at_ms) \
                 VALUES ('direct', NULL, $1, 0, $2, $2) RETURNING id",
            )
            .bind(&key)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            let conversation = ConversationId(id);
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
        PostgresStore::summaries(&mut conn, user, None).await
    }

    /// Members in the order they joined.
    async fn conversation(
        &self,
        user: UserId,
        id: ConversationId,
    ) -> StoreResult<ConversationDetail> {
        // Repeatable read: the summary and the member list from one snapshot.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        let summary = PostgresStore::summaries(&mut tx, user, Some(id))
            .await?
            .pop()
            .ok_or(StoreError::NotFound)?;
        let rows = sqlx::query(
            "SELECT u.id, u.username, u.nickname, u.avatar_url, u.signature, \
             m.role, m.read_seq, m.joined_at_ms \
             FROM members m JOIN users u ON u.id = m.user_id \
             WHERE m.conversation_id = $1 ORDER BY m.joined_at_ms, u.id",
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
            "SELECT EXISTS (SELECT 1 FROM members WHERE conversation_id = $1 AND user_id = $2)",
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
            // pointer the other left.
            let (read_seq, last_seq): (i64, i64) = sqlx::query_as(
                "SELECT m.read_seq, c.last_seq FROM members m \
                 JOIN conversations c ON c.id = m.conversation_id \
                 WHERE m.conversation_id = $1 AND m.user_id = $2 FOR NO KEY UPDATE OF m",
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
                    "UPDATE members SET read_seq = $1 WHERE conversation_id = $2 AND user_id = $3",
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
