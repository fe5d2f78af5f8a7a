//! The backend-neutral store: every rule of [`Store`] and the control flow around it,
//! written once over [`Sql`], the primitive queries each backend writes in its own dialect.
//!
//! [`Engine`] implements [`Store`] for any backend. It opens transactions and runs them
//! again when they lose a race (all in `Engine::write` and `Engine::read`), checks
//! membership, friendship, blocks and roles, and calls the backend only for single statements (or the few statements that
//! one dialect needs for what another does in one). The stream (seq assignment, batched
//! sends, idempotent-send dedupe, recalls, paging, read pointers) lives in [`stream`],
//! direct conversations and groups in [`group`], friend requests and blocks in [`friend`].
//!
//! Architecture invariant: no SQL text here. A rule that needs a new query gets a new
//! [`Sql`] method, written in every backend.

mod friend;
mod group;
mod seed;
mod stream;

use std::future::Future;
use std::marker::PhantomData;
use std::ops::DerefMut;
use std::pin::Pin;

use async_trait::async_trait;
use banter_protocol::model::{
    ConversationDetail, ConversationKind, ConversationSummary, FriendRequest, FriendRequestStatus,
    Member, Message, Role, UserProfile,
};
use banter_protocol::{ConversationId, FriendRequestId, MessageId, UserId};

use crate::row::{batch_failure, is_row_refusal, now_ms, with_retries, NewEntry, NewMember, Retry};
use crate::{
    Appended, CreatedGroup, Credentials, GroupChange, NewMessage, NewSession, NewUser, Page,
    ProfileUpdate, ReadMark, SeedUser, SendPolicy, Session, SessionId, Store, StoreError,
    StoreResult,
};

/// The queries a backend provides, each in its own dialect: placeholders, upserts,
/// `RETURNING` or not, and which row locks it takes.
///
/// Methods taking `&self` run one statement on the pool. Associated functions taking a
/// connection run inside a transaction the engine opened with [`Sql::begin_write`] or
/// [`Sql::begin_read`]; the `lock_*` ones take the row locks that serialize writers on
/// PostgreSQL and MySQL (SQLite's write transaction holds the database lock already, so
/// there they only read).
#[async_trait]
pub trait Sql: Send + Sync + 'static {
    /// The connection primitives run on.
    type Conn: Send;
    /// A transaction, which derefs to its connection.
    type Tx: DerefMut<Target = Self::Conn> + Send;

    // ---- transactions ----

    /// Starts a transaction that will write: `BEGIN IMMEDIATE` on SQLite, a plain READ
    /// COMMITTED transaction (whose writers lock rows) on the others.
    async fn begin_write(&self) -> Result<Self::Tx, sqlx::Error>;
    /// Starts a read-only transaction: one consistent snapshot for queries that read twice.
    async fn begin_read(&self) -> Result<Self::Tx, sqlx::Error>;
    async fn commit(tx: Self::Tx) -> Result<(), sqlx::Error>;

    // ---- one statement on the pool ----

    /// Inserts the user; a unique violation means the username is taken.
    async fn insert_user(&self, user: &NewUser, now_ms: i64) -> Result<UserProfile, sqlx::Error>;
    async fn user(&self, id: UserId) -> StoreResult<Option<UserProfile>>;
    async fn user_by_username_key(&self, key: &str) -> StoreResult<Option<UserProfile>>;
    async fn credentials(&self, key: &str) -> StoreResult<Option<Credentials>>;
    async fn password_hash(&self, id: UserId) -> StoreResult<Option<String>>;
    /// Applies the update (see [`ProfileUpdate`]); `None` if there is no such user.
    async fn update_profile(
        &self,
        id: UserId,
        update: ProfileUpdate,
    ) -> StoreResult<Option<UserProfile>>;
    async fn insert_session(&self, session: &NewSession, now_ms: i64) -> StoreResult<SessionId>;
    async fn session_by_token_hash(
        &self,
        token_hash: &[u8],
        now_ms: i64,
    ) -> StoreResult<Option<Session>>;
    async fn delete_session(&self, id: SessionId) -> StoreResult<()>;
    /// Friends with the time the friendship began, oldest first.
    async fn friends(&self, user: UserId) -> StoreResult<Vec<(UserProfile, i64)>>;
    async fn friend_ids(&self, user: UserId) -> StoreResult<Vec<UserId>>;
    /// Deletes both rows of the friendship; returns whether there was one.
    async fn delete_friendship(&self, a: UserId, b: UserId) -> StoreResult<bool>;
    async fn delete_block(&self, user: UserId, blocked: UserId) -> StoreResult<()>;
    /// Oldest block first.
    async fn blocked_users(&self, user: UserId) -> StoreResult<Vec<UserProfile>>;
    async fn is_member(&self, user: UserId, conversation: ConversationId) -> StoreResult<bool>;
    /// The user's conversation summaries, newest activity first.
    async fn summaries(&self, user: UserId) -> StoreResult<Vec<ConversationSummary>>;

    // ---- accounts, inside a transaction ----

    /// Replaces the hash; returns whether the user exists.
    async fn set_password(conn: &mut Self::Conn, id: UserId, hash: &str) -> StoreResult<bool>;
    /// Deletes the user's sessions but `keep` and returns them.
    async fn revoke_sessions(
        conn: &mut Self::Conn,
        user: UserId,
        keep: SessionId,
    ) -> StoreResult<Vec<SessionId>>;

    // ---- friends and blocks, inside a transaction ----

    /// Locks the rows of users `a` and `b` (ascending id order) until the transaction ends,
    /// which serializes every change to what is between the two. Returns whether `b` exists.
    async fn lock_users(conn: &mut Self::Conn, a: UserId, b: UserId) -> StoreResult<bool>;
    /// Whether either user blocked the other.
    async fn blocked_either(conn: &mut Self::Conn, a: UserId, b: UserId) -> StoreResult<bool>;
    async fn are_friends(conn: &mut Self::Conn, a: UserId, b: UserId) -> StoreResult<bool>;
    /// Whether a pending request exists between the two, either way round.
    async fn pending_between(conn: &mut Self::Conn, a: UserId, b: UserId) -> StoreResult<bool>;
    async fn insert_friend_request(
        conn: &mut Self::Conn,
        from: UserId,
        to: UserId,
        greeting: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<FriendRequestId>;
    async fn friend_request(
        conn: &mut Self::Conn,
        id: FriendRequestId,
    ) -> StoreResult<Option<FriendRequest>>;
    /// Both lists oldest first: (incoming, outgoing) pending requests.
    async fn pending_requests(
        conn: &mut Self::Conn,
        user: UserId,
    ) -> StoreResult<(Vec<FriendRequest>, Vec<FriendRequest>)>;
    /// Locks the request's row and returns its sender, recipient and status.
    async fn lock_request(
        conn: &mut Self::Conn,
        id: FriendRequestId,
    ) -> StoreResult<Option<(UserId, UserId, FriendRequestStatus)>>;
    async fn set_request_status(
        conn: &mut Self::Conn,
        id: FriendRequestId,
        status: FriendRequestStatus,
        now_ms: i64,
    ) -> StoreResult<()>;
    /// Inserts both rows of a friendship; an existing row keeps its earlier `since`.
    async fn insert_friendship(
        conn: &mut Self::Conn,
        a: UserId,
        b: UserId,
        now_ms: i64,
    ) -> StoreResult<()>;
    /// Blocking twice keeps the first block.
    async fn insert_block(
        conn: &mut Self::Conn,
        user: UserId,
        blocked: UserId,
        now_ms: i64,
    ) -> StoreResult<()>;
    /// Deletes pending requests between the two, either way round.
    async fn delete_pending_between(conn: &mut Self::Conn, a: UserId, b: UserId)
        -> StoreResult<()>;

    // ---- conversations and members, inside a transaction ----

    async fn direct_conversation(
        conn: &mut Self::Conn,
        direct_key: &str,
    ) -> StoreResult<Option<ConversationId>>;
    /// Inserts a conversation with an empty stream (`last_seq` 0).
    async fn insert_conversation(
        conn: &mut Self::Conn,
        kind: ConversationKind,
        name: Option<&str>,
        direct_key: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<ConversationId>;
    /// The summary of one conversation of the user's, if the user is a member.
    async fn summary(
        conn: &mut Self::Conn,
        user: UserId,
        conversation: ConversationId,
    ) -> StoreResult<Option<ConversationSummary>>;
    /// Members in the order they joined.
    async fn members(
        conn: &mut Self::Conn,
        conversation: ConversationId,
    ) -> StoreResult<Vec<Member>>;
    /// Locks the conversation's row until the transaction ends and returns its kind, or
    /// `None` if it does not exist.
    async fn lock_conversation(
        conn: &mut Self::Conn,
        conversation: ConversationId,
    ) -> StoreResult<Option<ConversationKind>>;
    /// The ids of a conversation's members, ascending.
    async fn member_ids(
        conn: &mut Self::Conn,
        conversation: ConversationId,
    ) -> StoreResult<Vec<UserId>>;
    /// The conversation's kind and the user's role in it, or `None` if the conversation
    /// does not exist or the user is not a member.
    async fn membership(
        conn: &mut Self::Conn,
        user: UserId,
        conversation: ConversationId,
    ) -> StoreResult<Option<(ConversationKind, Role)>>;
    async fn insert_member(
        conn: &mut Self::Conn,
        conversation: ConversationId,
        user: UserId,
        role: Role,
        read_seq: i64,
        now_ms: i64,
    ) -> StoreResult<()>;
    async fn delete_member(
        conn: &mut Self::Conn,
        conversation: ConversationId,
        user: UserId,
    ) -> StoreResult<()>;
    async fn delete_members(conn: &mut Self::Conn, conversation: ConversationId)
        -> StoreResult<()>;
    async fn set_role(
        conn: &mut Self::Conn,
        conversation: ConversationId,
        user: UserId,
        role: Role,
    ) -> StoreResult<()>;
    async fn rename(
        conn: &mut Self::Conn,
        conversation: ConversationId,
        name: &str,
    ) -> StoreResult<()>;
    async fn last_seq(conn: &mut Self::Conn, conversation: ConversationId) -> StoreResult<i64>;

    // ---- seeding in bulk, inside a transaction ----
    //
    // Each takes any number of rows and splits them into multi-row statements as the
    // backend's limit on bound parameters requires; an empty slice runs nothing.

    /// The users whose `username_key` is one of `keys`, as (key, id), in no order.
    async fn user_ids_by_keys(
        conn: &mut Self::Conn,
        keys: &[String],
    ) -> StoreResult<Vec<(String, UserId)>>;
    /// Inserts the users (no avatar or signature), all with `password_hash`.
    async fn insert_users(
        conn: &mut Self::Conn,
        users: &[SeedUser],
        password_hash: &str,
        now_ms: i64,
    ) -> StoreResult<()>;
    async fn insert_sessions(
        conn: &mut Self::Conn,
        sessions: &[NewSession],
        now_ms: i64,
    ) -> StoreResult<()>;
    /// Which of `ids` are users, in no order.
    async fn existing_user_ids(conn: &mut Self::Conn, ids: &[UserId]) -> StoreResult<Vec<UserId>>;
    /// Both rows of each friendship; rows that exist are left as they are.
    async fn insert_friendships(
        conn: &mut Self::Conn,
        pairs: &[(UserId, UserId)],
        now_ms: i64,
    ) -> StoreResult<()>;
    /// The direct conversations whose `direct_key` is one of `keys`, as (key, id), in no order.
    async fn direct_conversations_by_keys(
        conn: &mut Self::Conn,
        keys: &[String],
    ) -> StoreResult<Vec<(String, ConversationId)>>;
    /// One empty direct conversation (`last_seq` 0) per key.
    async fn insert_direct_conversations(
        conn: &mut Self::Conn,
        keys: &[String],
        now_ms: i64,
    ) -> StoreResult<()>;
    async fn insert_members(
        conn: &mut Self::Conn,
        members: &[NewMember],
        now_ms: i64,
    ) -> StoreResult<()>;

    // ---- the stream, inside a transaction ----
    //
    // The primitives of a send batch and of `stream::append_entries` take the whole batch
    // at once, so a batch costs the same few statements however many sends and
    // conversations it holds. Each splits its rows into as many statements as the
    // backend's limits on bound parameters (or on IN lists) require; an empty slice runs
    // nothing and returns nothing.

    /// Locks the rows of those of `conversations` (ascending, no repeats) that exist, in
    /// ascending id order, until the transaction ends, and returns their kinds, in no order.
    /// Taking the locks in one order keeps two batches that share conversations from
    /// deadlocking.
    async fn lock_conversations(
        conn: &mut Self::Conn,
        conversations: &[ConversationId],
    ) -> StoreResult<Vec<(ConversationId, ConversationKind)>>;
    /// The members of `conversations`, as (conversation, user), in no order.
    async fn members_of(
        conn: &mut Self::Conn,
        conversations: &[ConversationId],
    ) -> StoreResult<Vec<(ConversationId, UserId)>>;
    /// Those of the (user, blocked) `pairs` in which the first blocked the second.
    async fn blocks_among(
        conn: &mut Self::Conn,
        pairs: &[(UserId, UserId)],
    ) -> StoreResult<Vec<(UserId, UserId)>>;
    /// Those of the (user, friend) `pairs` who are not friends: asked this way round
    /// because the answer is usually empty.
    async fn strangers_among(
        conn: &mut Self::Conn,
        pairs: &[(UserId, UserId)],
    ) -> StoreResult<Vec<(UserId, UserId)>>;
    /// The messages whose (conversation, sender, client_msg_id) is one of `keys`, in no
    /// order; looked up through the unique index on those columns.
    async fn messages_by_client_ids(
        conn: &mut Self::Conn,
        keys: &[(ConversationId, UserId, &str)],
    ) -> StoreResult<Vec<Message>>;
    /// Adds each count to its conversation's `last_seq` (taking the row's lock), moves its
    /// activity time forward to `now_ms`, and returns the new `last_seq` of each, in no
    /// order; a conversation that does not exist is left out. `bumps` are ascending by
    /// conversation, without repeats.
    async fn bump_last_seqs(
        conn: &mut Self::Conn,
        bumps: &[(ConversationId, i64)],
        now_ms: i64,
    ) -> StoreResult<Vec<(ConversationId, i64)>>;
    /// Inserts the entries, of any number of conversations, and returns their ids in the
    /// same order.
    async fn insert_entries(
        conn: &mut Self::Conn,
        entries: &[NewEntry],
        now_ms: i64,
    ) -> StoreResult<Vec<MessageId>>;
    /// Moves each (conversation, user) read pointer forward to its seq, never backwards; a
    /// non-member matches no row. No (conversation, user) appears twice.
    async fn advance_read_seqs(
        conn: &mut Self::Conn,
        pointers: &[(ConversationId, UserId, i64)],
    ) -> StoreResult<()>;
    /// The entry `target` of the conversation: (sender, kind, recalled, created_at_ms).
    async fn recall_target(
        conn: &mut Self::Conn,
        conversation: ConversationId,
        target: MessageId,
    ) -> StoreResult<Option<(UserId, String, bool, i64)>>;
    /// Blanks the text and marks the entry recalled.
    async fn blank_message(conn: &mut Self::Conn, target: MessageId) -> StoreResult<()>;
    /// Up to `limit` entries with seq > `after_seq`, oldest first.
    async fn entries_after(
        conn: &mut Self::Conn,
        conversation: ConversationId,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<Message>>;
    /// Up to `limit` entries with seq < `before_seq`, newest first.
    async fn entries_before(
        conn: &mut Self::Conn,
        conversation: ConversationId,
        before_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<Message>>;
    /// Locks the member's row (so that two devices marking at once both see the pointer
    /// the other left) and returns (read_seq, the conversation's last_seq).
    async fn lock_read_pointer(
        conn: &mut Self::Conn,
        conversation: ConversationId,
        user: UserId,
    ) -> StoreResult<Option<(i64, i64)>>;
    async fn set_read_seq(
        conn: &mut Self::Conn,
        conversation: ConversationId,
        user: UserId,
        seq: i64,
    ) -> StoreResult<()>;
}

/// What [`Engine::write`] and [`Engine::read`] run inside their transaction: a closure
/// from the transaction's connection to the work done on it. The second argument only
/// tells the compiler that what the closure borrows (`'a`) outlives the connection's
/// borrow (`'c`); closures ignore it (`|conn, _|`).
type TxBody<'a, S, T> = &'a (dyn for<'c> Fn(&'c mut <S as Sql>::Conn, PhantomData<&'c &'a ()>) -> TxFuture<'c, T>
         + Send
         + Sync);

/// The work of one transaction, boxed so that [`TxBody`] can name its type.
type TxFuture<'c, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'c>>;

/// The store over one backend's [`Sql`].
#[derive(Debug, Clone)]
pub struct Engine<S> {
    sql: S,
}

impl<S: Sql> Engine<S> {
    /// One attempt at a batch of sends as one transaction (rerun when it loses a race).
    /// A unique violation means a resend raced its original from another connection; the
    /// rerun finds the original and answers `duplicate`. On `Err` the transaction was
    /// rolled back: nothing of the batch is written.
    async fn append_batch(
        &self,
        sends: &[NewMessage],
        policy: SendPolicy,
    ) -> StoreResult<Vec<StoreResult<Appended>>> {
        self.write(Retry::ConflictsAndInsertRaces, &move |conn, _| {
            Box::pin(stream::append_batch::<S>(conn, sends, policy, now_ms()))
        })
        .await
    }

    pub(crate) fn new(sql: S) -> Engine<S> {
        Engine { sql }
    }

    /// Runs `body` inside a write transaction and commits it: the one place that opens,
    /// reruns and commits the store's writes. The whole transaction runs again (up to
    /// `row::TRANSACTION_ATTEMPTS_MAX` attempts) when it loses a race that `retry` names;
    /// an error from `body` rolls it back, as dropping an uncommitted transaction does.
    async fn write<'a, T: Send + 'a>(
        &'a self,
        retry: Retry,
        body: TxBody<'a, S, T>,
    ) -> StoreResult<T> {
        with_retries(retry, || async {
            let mut tx = self.sql.begin_write().await?;
            let value = body(&mut *tx, PhantomData).await?;
            S::commit(tx).await?;
            Ok(value)
        })
        .await
    }

    /// Runs `body` inside a read-only transaction, so that queries that read twice see one
    /// snapshot. Never rerun: a reader does not lose races.
    async fn read<'a, T: Send + 'a>(&'a self, body: TxBody<'a, S, T>) -> StoreResult<T> {
        let mut tx = self.sql.begin_read().await?;
        let value = body(&mut *tx, PhantomData).await?;
        S::commit(tx).await?;
        Ok(value)
    }
}

#[async_trait]
impl<S: Sql> Store for Engine<S> {
    async fn create_user(&self, user: NewUser) -> StoreResult<UserProfile> {
        self.sql
            .insert_user(&user, now_ms())
            .await
            .map_err(|e| match e {
                // username_key is the only unique column a new row can collide on.
                sqlx::Error::Database(ref db) if db.is_unique_violation() => {
                    StoreError::UsernameTaken
                }
                other => StoreError::Database(other),
            })
    }

    async fn user(&self, id: UserId) -> StoreResult<UserProfile> {
        self.sql.user(id).await?.ok_or(StoreError::NotFound)
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<UserProfile> {
        let key = crate::row::username_key(username);
        self.sql
            .user_by_username_key(&key)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn credentials(&self, username: &str) -> StoreResult<Credentials> {
        let key = crate::row::username_key(username);
        self.sql
            .credentials(&key)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn password_hash(&self, id: UserId) -> StoreResult<String> {
        self.sql
            .password_hash(id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn update_profile(&self, id: UserId, update: ProfileUpdate) -> StoreResult<UserProfile> {
        self.sql
            .update_profile(id, update)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn change_password(
        &self,
        id: UserId,
        password_hash: String,
        keep: SessionId,
    ) -> StoreResult<Vec<SessionId>> {
        let hash = password_hash.as_str();
        self.write(Retry::Conflicts, &move |conn, _| {
            Box::pin(change_password::<S>(conn, id, hash, keep))
        })
        .await
    }

    async fn create_session(&self, session: NewSession) -> StoreResult<SessionId> {
        self.sql.insert_session(&session, now_ms()).await
    }

    async fn session_by_token_hash(&self, token_hash: &[u8], now_ms: i64) -> StoreResult<Session> {
        self.sql
            .session_by_token_hash(token_hash, now_ms)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Deleting a session that is already gone succeeds: logging out twice is not an error.
    async fn delete_session(&self, id: SessionId) -> StoreResult<()> {
        self.sql.delete_session(id).await
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
        let greeting = greeting.as_deref();
        self.write(Retry::Conflicts, &move |conn, _| {
            Box::pin(friend::request::<S>(conn, from, to, greeting))
        })
        .await
    }

    /// Both lists oldest first, from one snapshot.
    async fn friend_requests(
        &self,
        user: UserId,
    ) -> StoreResult<(Vec<FriendRequest>, Vec<FriendRequest>)> {
        self.read(&move |conn, _| Box::pin(S::pending_requests(conn, user)))
            .await
    }

    async fn answer_friend_request(
        &self,
        recipient: UserId,
        id: FriendRequestId,
        accept: bool,
    ) -> StoreResult<FriendRequest> {
        self.write(Retry::Conflicts, &move |conn, _| {
            Box::pin(friend::answer::<S>(conn, recipient, id, accept))
        })
        .await
    }

    async fn cancel_friend_request(
        &self,
        sender: UserId,
        id: FriendRequestId,
    ) -> StoreResult<FriendRequest> {
        self.write(Retry::Conflicts, &move |conn, _| {
            Box::pin(friend::cancel::<S>(conn, sender, id))
        })
        .await
    }

    async fn friends(&self, user: UserId) -> StoreResult<Vec<(UserProfile, i64)>> {
        self.sql.friends(user).await
    }

    async fn friend_ids(&self, user: UserId) -> StoreResult<Vec<UserId>> {
        self.sql.friend_ids(user).await
    }

    /// Fails with `NotFound` if they are not friends.
    async fn remove_friend(&self, user: UserId, friend: UserId) -> StoreResult<()> {
        with_retries(Retry::Conflicts, || async {
            if self.sql.delete_friendship(user, friend).await? {
                Ok(())
            } else {
                Err(StoreError::NotFound)
            }
        })
        .await
    }

    /// A block leaves an existing friendship in place (unblocking restores things as they
    /// were); it stops messages and requests in both directions while it lasts.
    async fn block(&self, user: UserId, blocked: UserId) -> StoreResult<()> {
        if user == blocked {
            return Err(StoreError::InvalidInput("you cannot block yourself".into()));
        }
        self.write(Retry::Conflicts, &move |conn, _| {
            Box::pin(friend::block::<S>(conn, user, blocked))
        })
        .await
    }

    /// Unblocking someone who is not blocked is a no-op, like blocking twice.
    async fn unblock(&self, user: UserId, blocked: UserId) -> StoreResult<()> {
        self.sql.delete_block(user, blocked).await
    }

    async fn blocked_users(&self, user: UserId) -> StoreResult<Vec<UserProfile>> {
        self.sql.blocked_users(user).await
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
        self.write(Retry::Conflicts, &move |conn, _| {
            Box::pin(group::open_direct::<S>(
                conn,
                user,
                peer,
                require_friendship,
            ))
        })
        .await
    }

    async fn create_group(
        &self,
        owner: UserId,
        name: String,
        members: Vec<UserId>,
    ) -> StoreResult<CreatedGroup> {
        let (name, members) = (name.as_str(), members.as_slice());
        self.write(Retry::Conflicts, &move |conn, _| {
            Box::pin(group::create::<S>(
                conn,
                owner,
                name,
                members,
                true,
                now_ms(),
            ))
        })
        .await
    }

    async fn conversations(&self, user: UserId) -> StoreResult<Vec<ConversationSummary>> {
        self.sql.summaries(user).await
    }

    /// Members in the order they joined; the summary and the member list from one snapshot.
    async fn conversation(
        &self,
        user: UserId,
        id: ConversationId,
    ) -> StoreResult<ConversationDetail> {
        self.read(&move |conn, _| {
            Box::pin(async move {
                let summary = S::summary(conn, user, id)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                let members = S::members(conn, id).await?;
                Ok(ConversationDetail { summary, members })
            })
        })
        .await
    }

    async fn conversation_summary(
        &self,
        user: UserId,
        id: ConversationId,
    ) -> StoreResult<ConversationSummary> {
        self.read(&move |conn, _| {
            Box::pin(async move {
                S::summary(conn, user, id)
                    .await?
                    .ok_or(StoreError::NotFound)
            })
        })
        .await
    }

    async fn is_member(&self, user: UserId, id: ConversationId) -> StoreResult<bool> {
        self.sql.is_member(user, id).await
    }

    async fn member_ids(&self, user: UserId, id: ConversationId) -> StoreResult<Vec<UserId>> {
        self.read(&move |conn, _| {
            Box::pin(async move {
                if S::membership(conn, user, id).await?.is_none() {
                    return Err(StoreError::NotFound);
                }
                S::member_ids(conn, id).await
            })
        })
        .await
    }

    async fn change_group(
        &self,
        actor: UserId,
        id: ConversationId,
        change: GroupChange,
    ) -> StoreResult<Appended> {
        let change = &change;
        self.write(Retry::Conflicts, &move |conn, _| {
            Box::pin(group::change::<S>(
                conn,
                actor,
                id,
                change.clone(),
                now_ms(),
            ))
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
        isolate_refusals(sends, &|part: &[NewMessage]| {
            self.append_batch(part, policy)
        })
        .await
    }

    async fn recall_message(
        &self,
        actor: UserId,
        id: ConversationId,
        target: MessageId,
        window_ms: i64,
    ) -> StoreResult<Appended> {
        self.write(Retry::Conflicts, &move |conn, _| {
            Box::pin(stream::recall::<S>(
                conn,
                actor,
                id,
                target,
                window_ms,
                now_ms(),
            ))
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
        self.read(&move |conn, _| {
            Box::pin(async move {
                if S::membership(conn, user, id).await?.is_none() {
                    return Err(StoreError::NotFound);
                }
                stream::page_after::<S>(conn, id, after_seq, limit).await
            })
        })
        .await
    }

    async fn messages_before(
        &self,
        user: UserId,
        id: ConversationId,
        before_seq: i64,
        limit: u32,
    ) -> StoreResult<Page> {
        self.read(&move |conn, _| {
            Box::pin(async move {
                if S::membership(conn, user, id).await?.is_none() {
                    return Err(StoreError::NotFound);
                }
                stream::page_before::<S>(conn, id, before_seq, limit).await
            })
        })
        .await
    }

    async fn mark_read(&self, user: UserId, id: ConversationId, seq: i64) -> StoreResult<ReadMark> {
        self.write(Retry::Conflicts, &move |conn, _| {
            Box::pin(stream::mark_read::<S>(conn, user, id, seq))
        })
        .await
    }

    async fn seed_users(
        &self,
        password_hash: String,
        users: Vec<SeedUser>,
    ) -> StoreResult<Vec<UserProfile>> {
        let keys = seed::check_usernames(&users)?;
        let (hash, users, keys) = (password_hash.as_str(), users.as_slice(), keys.as_slice());
        // A unique violation means another writer took a name between the check and the
        // insert; the rerun's check then names it.
        self.write(Retry::ConflictsAndInsertRaces, &move |conn, _| {
            Box::pin(seed::users::<S>(conn, hash, users, keys, now_ms()))
        })
        .await
    }

    async fn seed_friendships(&self, pairs: Vec<[UserId; 2]>) -> StoreResult<Vec<ConversationId>> {
        seed::check_pairs(&pairs)?;
        let pairs = pairs.as_slice();
        // A unique violation means an `open_direct` created one of the conversations after
        // the lookup; the rerun finds it.
        self.write(Retry::ConflictsAndInsertRaces, &move |conn, _| {
            Box::pin(seed::friendships::<S>(conn, pairs, now_ms()))
        })
        .await
    }

    async fn seed_group(
        &self,
        owner: UserId,
        name: String,
        members: Vec<UserId>,
    ) -> StoreResult<CreatedGroup> {
        let (name, members) = (name.as_str(), members.as_slice());
        self.write(Retry::Conflicts, &move |conn, _| {
            Box::pin(group::create::<S>(
                conn,
                owner,
                name,
                members,
                false,
                now_ms(),
            ))
        })
        .await
    }
}

async fn change_password<S: Sql>(
    conn: &mut S::Conn,
    id: UserId,
    hash: &str,
    keep: SessionId,
) -> StoreResult<Vec<SessionId>> {
    if !S::set_password(conn, id, hash).await? {
        return Err(StoreError::NotFound);
    }
    S::revoke_sessions(conn, id, keep).await
}

/// Commits `sends` so that one send the database refuses fails alone.
///
/// Sends are committed in batches for group commit, and a row the database refuses (text
/// a backend cannot store, a key its collation calls a duplicate) rolls the whole
/// transaction back. Answering every send of the batch with that error would let one
/// user's bad frame fail everyone else's sends, again at every retry. So a refused batch is
/// split in halves and each half committed on its own, down to the one send that is
/// refused: that send gets `InvalidInput` (sending it again cannot help), the others are
/// committed in their original order. k refused sends cost about k·log2(n) extra
/// transactions. Failures that are not about a row (the database is unreachable, a lock
/// wait timed out) fail the batch as before, since splitting would only repeat them.
pub(crate) async fn isolate_refusals<'a, T, F, Fut>(
    sends: &'a [NewMessage],
    commit: &'a F,
) -> Vec<StoreResult<T>>
where
    F: Fn(&'a [NewMessage]) -> Fut + Sync,
    Fut: std::future::Future<Output = StoreResult<Vec<StoreResult<T>>>> + Send + 'a,
    T: Send + 'a,
{
    match commit(sends).await {
        Ok(results) => results,
        Err(error) if is_row_refusal(&error) && sends.len() > 1 => {
            let (first, second) = sends.split_at(sends.len() / 2);
            let mut results = Box::pin(isolate_refusals(first, commit)).await;
            results.extend(Box::pin(isolate_refusals(second, commit)).await);
            results
        }
        Err(error) if is_row_refusal(&error) => {
            tracing::warn!(%error, "the database refused a send; answering it alone");
            vec![Err(StoreError::InvalidInput(
                "the database refused this message; sending it again will not help".into(),
            ))]
        }
        Err(error) => batch_failure(error, sends.len()),
    }
}
