//! The PostgreSQL backend of [`crate::Store`]: its dialect of the shared queries
//! (`crate::sql`) and the statements it writes its own way: every multi-row statement
//! (the send batch, `insert_members`, seeding) binds whole columns as arrays (`UNNEST`,
//! `= ANY`), one statement that stays prepared whatever the batch size, and
//! `lock_read_pointer` locks the member's row alone (`FOR NO KEY UPDATE OF m`).
//!
//! Several server processes may share one database. Transactions run at READ COMMITTED;
//! every rule the trait promises is checked inside the write transaction that acts on it,
//! after taking the row lock that serializes writers on the same thing: the conversation
//! row for anything appended to its stream, the two users' rows for friendship, block and
//! direct-conversation changes, the request row for answering a friend request. Locks are
//! always taken in ascending id order (`FOR NO KEY UPDATE`, which excludes the other
//! lockers but not the key-share locks of foreign-key checks, so inserting a message that
//! names a locked user as sender does not wait for it), and a transaction that still loses
//! a race (deadlock, or an insert that another writer made first) is run again.

use std::str::FromStr;

use async_trait::async_trait;
use banter_protocol::model::ConversationKind;
use banter_protocol::{ConversationId, MessageId, UserId};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::engine::Engine;
use crate::row::{entry_at, ids_in_order, message_sql, parse_kind, NewEntry, NewMember};
use crate::sql::{
    statements_on, AccountSql, ConversationSql, Dialect, Flavor, MediaSql, SeedSql, SocialSql,
    StreamSql,
};
use crate::{Durability, Entry, NewSession, OpenOptions, SeedUser, StoreError, StoreResult};

/// The store on one PostgreSQL database.
pub type PostgresStore = Engine<PostgresDialect>;

/// PostgreSQL's dialect of the store's queries.
#[derive(Debug, Clone)]
pub struct PostgresDialect {
    pool: PgPool,
}

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
        Ok(Engine::new(PostgresDialect { pool }))
    }
}

fn entries(rows: &[PgRow]) -> StoreResult<Vec<Entry>> {
    Ok(rows
        .iter()
        .map(|row| entry_at(row, 0))
        .collect::<Result<_, _>>()?)
}

/// Those of `pairs` that `select` keeps; it gets the pairs as two arrays, `$1` and `$2`.
async fn pairs_where(
    conn: &mut PgConnection,
    pairs: &[(UserId, UserId)],
    select: &'static str,
) -> StoreResult<Vec<(UserId, UserId)>> {
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let (firsts, seconds): (Vec<i64>, Vec<i64>) = pairs.iter().map(|(a, b)| (a.0, b.0)).unzip();
    let rows: Vec<(i64, i64)> = sqlx::query_as(select)
        .bind(&firsts)
        .bind(&seconds)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(a, b)| (UserId(a), UserId(b)))
        .collect())
}

statements_on!(PostgresDialect, Postgres, Flavor::Postgres);

#[async_trait]
impl Dialect for PostgresDialect {
    type Tx = Transaction<'static, Postgres>;
    type Pooled = PoolConnection<Postgres>;
    /// PostgreSQL's limit (the protocol counts parameters in 16 bits). Its own multi-row
    /// statements bind whole columns as arrays and never come near it.
    const BIND_PARAMS_MAX: usize = 65_535;
    /// Unused: PostgreSQL's lists are arrays bound as one parameter.
    const IN_LIST_MAX: usize = 65_535;

    async fn begin_write(&self) -> Result<Self::Tx, sqlx::Error> {
        self.pool.begin().await
    }

    /// Repeatable read: every query of the transaction sees one snapshot.
    async fn begin_read(&self) -> Result<Self::Tx, sqlx::Error> {
        self.pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
    }

    async fn commit(tx: Self::Tx) -> Result<(), sqlx::Error> {
        tx.commit().await
    }

    async fn acquire(&self) -> Result<Self::Pooled, sqlx::Error> {
        self.pool.acquire().await
    }
}

impl AccountSql for PostgresDialect {}

impl SocialSql for PostgresDialect {}

#[async_trait]
impl ConversationSql for PostgresDialect {
    async fn insert_members(
        conn: &mut PgConnection,
        members: &[NewMember],
        now_ms: i64,
    ) -> StoreResult<()> {
        if members.is_empty() {
            return Ok(());
        }
        let conversations: Vec<i64> = members.iter().map(|m| m.conversation.0).collect();
        let users: Vec<i64> = members.iter().map(|m| m.user.0).collect();
        let roles: Vec<&str> = members.iter().map(|m| m.role.as_str()).collect();
        let read_seqs: Vec<i64> = members.iter().map(|m| m.read_seq).collect();
        sqlx::query(
            "INSERT INTO members (conversation_id, user_id, role, read_seq, joined_at_ms) \
             SELECT m.conversation_id, m.user_id, m.role, m.read_seq, $1 \
             FROM UNNEST($2::BIGINT[], $3::BIGINT[], $4::TEXT[], $5::BIGINT[]) \
             AS m (conversation_id, user_id, role, read_seq)",
        )
        .bind(now_ms)
        .bind(&conversations)
        .bind(&users)
        .bind(&roles)
        .bind(&read_seqs)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl StreamSql for PostgresDialect {
    /// `ORDER BY id` under the lock clause: the rows are locked in ascending id order.
    async fn lock_conversations(
        conn: &mut PgConnection,
        conversations: &[ConversationId],
    ) -> StoreResult<Vec<(ConversationId, ConversationKind)>> {
        if conversations.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = conversations.iter().map(|id| id.0).collect();
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, kind FROM conversations WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        rows.into_iter()
            .map(|(id, kind)| Ok((ConversationId(id), parse_kind(&kind)?)))
            .collect()
    }

    async fn members_of(
        conn: &mut PgConnection,
        conversations: &[ConversationId],
    ) -> StoreResult<Vec<(ConversationId, UserId)>> {
        if conversations.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = conversations.iter().map(|id| id.0).collect();
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT conversation_id, user_id FROM members WHERE conversation_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(conversation, user)| (ConversationId(conversation), UserId(user)))
            .collect())
    }

    async fn blocks_among(
        conn: &mut PgConnection,
        pairs: &[(UserId, UserId)],
    ) -> StoreResult<Vec<(UserId, UserId)>> {
        pairs_where(
            conn,
            pairs,
            "SELECT p.user_id, p.blocked_id \
             FROM UNNEST($1::BIGINT[], $2::BIGINT[]) AS p (user_id, blocked_id) \
             WHERE EXISTS (SELECT 1 FROM blocks b \
             WHERE b.user_id = p.user_id AND b.blocked_id = p.blocked_id)",
        )
        .await
    }

    async fn strangers_among(
        conn: &mut PgConnection,
        pairs: &[(UserId, UserId)],
    ) -> StoreResult<Vec<(UserId, UserId)>> {
        pairs_where(
            conn,
            pairs,
            "SELECT p.user_id, p.friend_id \
             FROM UNNEST($1::BIGINT[], $2::BIGINT[]) AS p (user_id, friend_id) \
             WHERE NOT EXISTS (SELECT 1 FROM friendships f \
             WHERE f.user_id = p.user_id AND f.friend_id = p.friend_id)",
        )
        .await
    }

    /// A join against the keys as arrays: a nested loop that probes the unique
    /// `(conversation_id, sender_id, client_msg_id)` index once per key.
    async fn messages_by_client_ids(
        conn: &mut PgConnection,
        keys: &[(ConversationId, UserId, &str)],
    ) -> StoreResult<Vec<Entry>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let conversations: Vec<i64> = keys.iter().map(|key| key.0 .0).collect();
        let senders: Vec<i64> = keys.iter().map(|key| key.1 .0).collect();
        let client_ids: Vec<&str> = keys.iter().map(|key| key.2).collect();
        let rows = sqlx::query(message_sql!(
            "JOIN UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[]) AS k (conversation, sender, client_id) \
             ON conversation_id = k.conversation AND sender_id = k.sender \
             AND client_msg_id = k.client_id"
        ))
        .bind(&conversations)
        .bind(&senders)
        .bind(&client_ids)
        .fetch_all(&mut *conn)
        .await?;
        entries(&rows)
    }

    /// One `UPDATE … FROM UNNEST … RETURNING`. The `= ANY` repeats the join condition so
    /// that the planner reaches the rows through the primary key whatever the table's size.
    async fn bump_last_seqs(
        conn: &mut PgConnection,
        bumps: &[(ConversationId, i64)],
        now_ms: i64,
    ) -> StoreResult<Vec<(ConversationId, i64)>> {
        if bumps.is_empty() {
            return Ok(Vec::new());
        }
        let (ids, counts): (Vec<i64>, Vec<i64>) =
            bumps.iter().map(|(id, count)| (id.0, *count)).unzip();
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "UPDATE conversations c \
             SET last_seq = c.last_seq + b.added, \
             last_activity_ms = GREATEST(c.last_activity_ms, $1) \
             FROM UNNEST($2::BIGINT[], $3::BIGINT[]) AS b (id, added) \
             WHERE c.id = b.id AND c.id = ANY($2) \
             RETURNING c.id, c.last_seq",
        )
        .bind(now_ms)
        .bind(&ids)
        .bind(&counts)
        .fetch_all(&mut *conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, last_seq)| (ConversationId(id), last_seq))
            .collect())
    }

    /// One statement whatever the batch size, so it stays prepared on the connection.
    async fn insert_entries(
        conn: &mut PgConnection,
        entries: &[NewEntry],
        now_ms: i64,
    ) -> StoreResult<Vec<MessageId>> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut conversations = Vec::with_capacity(entries.len());
        let mut seqs = Vec::with_capacity(entries.len());
        let mut senders = Vec::with_capacity(entries.len());
        let mut client_ids = Vec::with_capacity(entries.len());
        let mut kinds = Vec::with_capacity(entries.len());
        let mut bodies = Vec::with_capacity(entries.len());
        for entry in entries {
            conversations.push(entry.conversation.0);
            seqs.push(entry.seq);
            senders.push(entry.draft.sender.0);
            client_ids.push(entry.draft.client_msg_id.as_deref());
            kinds.push(entry.draft.body.kind());
            bodies.push(entry.draft.body.encode()?);
        }
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "INSERT INTO messages \
             (conversation_id, seq, sender_id, client_msg_id, kind, body, recalled, created_at_ms) \
             SELECT e.conversation_id, e.seq, e.sender_id, e.client_msg_id, e.kind, e.body, FALSE, $1 \
             FROM UNNEST($2::BIGINT[], $3::BIGINT[], $4::BIGINT[], $5::TEXT[], $6::TEXT[], $7::TEXT[]) \
             AS e (conversation_id, seq, sender_id, client_msg_id, kind, body) \
             RETURNING conversation_id, seq, id",
        )
        .bind(now_ms)
        .bind(&conversations)
        .bind(&seqs)
        .bind(&senders)
        .bind(&client_ids)
        .bind(&kinds)
        .bind(&bodies)
        .fetch_all(&mut *conn)
        .await?;
        ids_in_order(entries, rows)
    }

    async fn advance_read_seqs(
        conn: &mut PgConnection,
        pointers: &[(ConversationId, UserId, i64)],
    ) -> StoreResult<()> {
        if pointers.is_empty() {
            return Ok(());
        }
        let conversations: Vec<i64> = pointers.iter().map(|p| p.0 .0).collect();
        let users: Vec<i64> = pointers.iter().map(|p| p.1 .0).collect();
        let seqs: Vec<i64> = pointers.iter().map(|p| p.2).collect();
        sqlx::query(
            "UPDATE members m SET read_seq = GREATEST(m.read_seq, p.seq) \
             FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[]) AS p (conversation_id, user_id, seq) \
             WHERE m.conversation_id = p.conversation_id AND m.user_id = p.user_id",
        )
        .bind(&conversations)
        .bind(&users)
        .bind(&seqs)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn lock_read_pointer(
        conn: &mut PgConnection,
        conversation: ConversationId,
        user: UserId,
    ) -> StoreResult<Option<(i64, i64)>> {
        Ok(sqlx::query_as(
            "SELECT m.read_seq, c.last_seq FROM members m \
             JOIN conversations c ON c.id = m.conversation_id \
             WHERE m.conversation_id = $1 AND m.user_id = $2 FOR NO KEY UPDATE OF m",
        )
        .bind(conversation.0)
        .bind(user.0)
        .fetch_optional(&mut *conn)
        .await?)
    }
}

impl MediaSql for PostgresDialect {}

#[async_trait]
impl SeedSql for PostgresDialect {
    /// One `= ANY($1)` over an array: a single bound parameter however many keys.
    async fn user_ids_by_keys(
        conn: &mut PgConnection,
        keys: &[String],
    ) -> StoreResult<Vec<(String, UserId)>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT username_key, id FROM users WHERE username_key = ANY($1)")
                .bind(keys)
                .fetch_all(&mut *conn)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(key, id)| (key, UserId(id)))
            .collect())
    }

    /// One INSERT from `UNNEST` of arrays, like `insert_entries`: each column is one bound
    /// parameter, so PostgreSQL's limit of 65535 parameters never needs chunking here.
    async fn insert_users(
        conn: &mut PgConnection,
        users: &[SeedUser],
        password_hash: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        if users.is_empty() {
            return Ok(());
        }
        let usernames: Vec<&str> = users.iter().map(|u| u.username.as_str()).collect();
        let keys: Vec<String> = users
            .iter()
            .map(|u| crate::row::username_key(&u.username))
            .collect();
        let nicknames: Vec<&str> = users.iter().map(|u| u.nickname.as_str()).collect();
        sqlx::query(
            "INSERT INTO users \
             (username, username_key, nickname, avatar_url, signature, password_hash, created_at_ms) \
             SELECT u.username, u.username_key, u.nickname, NULL, NULL, $1, $2 \
             FROM UNNEST($3::TEXT[], $4::TEXT[], $5::TEXT[]) AS u (username, username_key, nickname)",
        )
        .bind(password_hash)
        .bind(now_ms)
        .bind(&usernames)
        .bind(&keys)
        .bind(&nicknames)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn insert_sessions(
        conn: &mut PgConnection,
        sessions: &[NewSession],
        now_ms: i64,
    ) -> StoreResult<()> {
        if sessions.is_empty() {
            return Ok(());
        }
        let users: Vec<i64> = sessions.iter().map(|s| s.user_id.0).collect();
        let hashes: Vec<&[u8]> = sessions.iter().map(|s| s.token_hash.as_slice()).collect();
        let devices: Vec<&str> = sessions.iter().map(|s| s.device_name.as_str()).collect();
        let expiries: Vec<i64> = sessions.iter().map(|s| s.expires_at_ms).collect();
        sqlx::query(
            "INSERT INTO sessions (user_id, token_hash, device_name, created_at_ms, expires_at_ms) \
             SELECT s.user_id, s.token_hash, s.device_name, $1, s.expires_at_ms \
             FROM UNNEST($2::BIGINT[], $3::BYTEA[], $4::TEXT[], $5::BIGINT[]) \
             AS s (user_id, token_hash, device_name, expires_at_ms)",
        )
        .bind(now_ms)
        .bind(&users)
        .bind(&hashes)
        .bind(&devices)
        .bind(&expiries)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn existing_user_ids(
        conn: &mut PgConnection,
        ids: &[UserId],
    ) -> StoreResult<Vec<UserId>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = ids.iter().map(|id| id.0).collect();
        let found: Vec<i64> = sqlx::query_scalar("SELECT id FROM users WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await?;
        Ok(found.into_iter().map(UserId).collect())
    }

    async fn insert_friendships(
        conn: &mut PgConnection,
        pairs: &[(UserId, UserId)],
        now_ms: i64,
    ) -> StoreResult<()> {
        if pairs.is_empty() {
            return Ok(());
        }
        let (users, friends): (Vec<i64>, Vec<i64>) = pairs
            .iter()
            .flat_map(|&(a, b)| [(a.0, b.0), (b.0, a.0)])
            .unzip();
        sqlx::query(
            "INSERT INTO friendships (user_id, friend_id, since_ms) \
             SELECT f.user_id, f.friend_id, $1 FROM UNNEST($2::BIGINT[], $3::BIGINT[]) \
             AS f (user_id, friend_id) ON CONFLICT DO NOTHING",
        )
        .bind(now_ms)
        .bind(&users)
        .bind(&friends)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn direct_conversations_by_keys(
        conn: &mut PgConnection,
        keys: &[String],
    ) -> StoreResult<Vec<(String, ConversationId)>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT direct_key, id FROM conversations WHERE direct_key = ANY($1)")
                .bind(keys)
                .fetch_all(&mut *conn)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(key, id)| (key, ConversationId(id)))
            .collect())
    }

    async fn insert_direct_conversations(
        conn: &mut PgConnection,
        keys: &[String],
        now_ms: i64,
    ) -> StoreResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO conversations \
             (kind, name, direct_key, last_seq, last_activity_ms, created_at_ms) \
             SELECT 'direct', NULL, k.direct_key, 0, $1, $1 FROM UNNEST($2::TEXT[]) AS k (direct_key)",
        )
        .bind(now_ms)
        .bind(keys)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}
