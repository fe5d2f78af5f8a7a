//! Banter's storage seam.
//!
//! The server talks to the database only through the [`Store`] trait, which one generic
//! engine implements for every backend. The queries are written once where the backends
//! agree (`sql`: one trait per area, whose default methods hold the shared SQL); each
//! backend ([`sqlite`], [`postgres`], [`mysql`]) is its dialect (placeholders, locks,
//! `RETURNING` or not, transactions), the queries it must write its own way, and its
//! `migrations/`. One conformance suite (`tests/conformance`) runs against every backend.
//!
//! Business rules that must hold atomically (membership, friendship, blocks, gapless
//! seqs, idempotent sends) are enforced once, in the engine, inside the transaction that
//! writes; the backends only answer its queries.
//!
//! The store returns its own records (`record.rs`), not wire types, and what it writes has
//! its own stable encoding (`stored.rs`): the protocol can change without touching a row.

mod engine;
mod error;
pub mod mysql;
pub mod postgres;
mod record;
mod row;
mod sql;
pub mod sqlite;
mod stored;

use async_trait::async_trait;
use banter_protocol::model::Role;
use banter_protocol::{ConversationId, FriendRequestId, MessageId, UploadId, UserId};

pub use error::{StoreError, StoreResult};
pub use record::*;
pub use row::username_key;

/// Opens the backend named by a database URL (`sqlite://…`, `postgres://…` or
/// `postgresql://…`, `mysql://…` or `mariadb://…`) and runs its migrations.
/// Opens the database at `url`. The answer is both the production seam ([`Store`]) and
/// bulk seeding ([`Seeding`]); a caller keeps only the part it needs (an
/// `Arc<dyn Database>` coerces to either).
pub async fn open(url: &str, options: &OpenOptions) -> StoreResult<std::sync::Arc<dyn Database>> {
    let scheme = url.split(':').next().unwrap_or("");
    match scheme {
        "sqlite" => Ok(std::sync::Arc::new(
            sqlite::SqliteStore::open(url, options).await?,
        )),
        "postgres" | "postgresql" => Ok(std::sync::Arc::new(
            postgres::PostgresStore::open(url, options).await?,
        )),
        "mysql" | "mariadb" => Ok(std::sync::Arc::new(
            mysql::MySqlStore::open(url, options).await?,
        )),
        _ => Err(StoreError::Config(format!(
            "unsupported database URL scheme {scheme:?}; use sqlite://, postgres:// or mysql://"
        ))),
    }
}

/// Everything Banter keeps. Implementations are cheap to share (`Arc<dyn Store>`) and
/// safe to call from many tasks at once; no method blocks the async runtime.
///
/// Methods return the store's own records ([`Entry`], [`UserRecord`],
/// [`ConversationRecord`], ...), never wire types: the server maps them to the protocol's.
///
/// Methods that act on a conversation on behalf of a user return
/// [`StoreError::NotFound`] both when the conversation does not exist and when the user
/// is not a member, so ids cannot be probed.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ---- accounts and sessions ----

    /// Fails with [`StoreError::UsernameTaken`] if the username exists in any letter case.
    async fn create_user(&self, user: NewUser) -> StoreResult<UserRecord>;
    async fn user(&self, id: UserId) -> StoreResult<UserRecord>;
    /// Looks a user up by username, regardless of case.
    async fn user_by_username(&self, username: &str) -> StoreResult<UserRecord>;
    /// The stored password hash (a PHC string) and the user, by username regardless of case.
    async fn credentials(&self, username: &str) -> StoreResult<Credentials>;
    async fn password_hash(&self, id: UserId) -> StoreResult<String>;
    async fn update_profile(&self, id: UserId, update: ProfileUpdate) -> StoreResult<UserRecord>;
    /// Replaces the password hash and revokes every session of the user but `keep`.
    /// Returns the revoked sessions so that their live connections can be closed.
    async fn change_password(
        &self,
        id: UserId,
        password_hash: String,
        keep: SessionId,
    ) -> StoreResult<Vec<SessionId>>;

    async fn create_session(&self, session: NewSession) -> StoreResult<SessionId>;
    /// The live (unexpired) session whose token hashes to `token_hash`.
    async fn session_by_token_hash(&self, token_hash: &[u8], now_ms: i64) -> StoreResult<Session>;
    async fn delete_session(&self, id: SessionId) -> StoreResult<()>;

    // ---- friends and blocks ----

    /// Fails with `Blocked` if either user blocked the other, `Conflict` if they are
    /// already friends or a pending request exists between them, `InvalidInput` for oneself.
    async fn create_friend_request(
        &self,
        from: UserId,
        to: UserId,
        greeting: Option<String>,
    ) -> StoreResult<FriendRequestRecord>;
    /// Pending requests: (incoming, outgoing).
    async fn friend_requests(
        &self,
        user: UserId,
    ) -> StoreResult<(Vec<FriendRequestRecord>, Vec<FriendRequestRecord>)>;
    /// The recipient accepts or rejects a pending request. Accepting makes both friends.
    async fn answer_friend_request(
        &self,
        recipient: UserId,
        id: FriendRequestId,
        accept: bool,
    ) -> StoreResult<FriendRequestRecord>;
    /// The sender withdraws a pending request.
    async fn cancel_friend_request(
        &self,
        sender: UserId,
        id: FriendRequestId,
    ) -> StoreResult<FriendRequestRecord>;
    /// Friends with the time the friendship began, oldest first.
    async fn friends(&self, user: UserId) -> StoreResult<Vec<(UserRecord, i64)>>;
    async fn friend_ids(&self, user: UserId) -> StoreResult<Vec<UserId>>;
    async fn remove_friend(&self, user: UserId, friend: UserId) -> StoreResult<()>;
    /// Blocking also drops pending requests between the two. Blocking twice is a no-op.
    async fn block(&self, user: UserId, blocked: UserId) -> StoreResult<()>;
    async fn unblock(&self, user: UserId, blocked: UserId) -> StoreResult<()>;
    async fn blocked_users(&self, user: UserId) -> StoreResult<Vec<UserRecord>>;

    // ---- conversations ----

    /// The direct conversation between the two users, created on first use. Fails with
    /// `Blocked` if either blocked the other and, when `require_friendship`, `NotFriends`.
    async fn open_direct(
        &self,
        user: UserId,
        peer: UserId,
        require_friendship: bool,
    ) -> StoreResult<ConversationId>;
    /// Creates a group owned by `owner` with `members` (who must be the owner's friends;
    /// duplicates and the owner are ignored). Nothing is appended to the stream: the group
    /// starts at `last_seq` 0, so its first message gets seq 1.
    async fn create_group(
        &self,
        owner: UserId,
        name: String,
        members: Vec<UserId>,
    ) -> StoreResult<CreatedGroup>;
    /// The caller's conversations, newest activity first. Presence is not the store's to
    /// know: the server adds it.
    async fn conversations(&self, user: UserId) -> StoreResult<Vec<ConversationRecord>>;
    async fn conversation(
        &self,
        user: UserId,
        id: ConversationId,
    ) -> StoreResult<ConversationWithMembers>;
    /// The summary alone of [`Store::conversation`], without the member list: cheap enough
    /// to call once per member of a large group.
    async fn conversation_summary(
        &self,
        user: UserId,
        id: ConversationId,
    ) -> StoreResult<ConversationRecord>;
    /// Whether `user` is a member.
    async fn is_member(&self, user: UserId, id: ConversationId) -> StoreResult<bool>;
    /// The ids of the members of a conversation `user` is in, ascending; `NotFound` if
    /// `user` is not a member. Cheap enough for ephemeral frames such as typing.
    async fn member_ids(&self, user: UserId, id: ConversationId) -> StoreResult<Vec<UserId>>;

    /// Applies a group change made by `actor`, checks the actor's role, and appends the
    /// change's system notice to the stream. The returned recipients are the members
    /// after the change plus anyone it removed, so every affected device hears of it.
    async fn change_group(
        &self,
        actor: UserId,
        id: ConversationId,
        change: GroupChange,
    ) -> StoreResult<Appended>;

    // ---- the message stream ----

    /// Appends a batch of stream changes in ONE transaction (group commit), in the order
    /// given: runs of consecutive sends as [`Store::append_messages`] does, and a recall or
    /// group change in its place between them, as [`Store::recall_message`] and
    /// [`Store::change_group`] do. Each answers alone: a refused append (a rule it
    /// breaks, or a row the database refuses) yields its error and the others commit. A
    /// rule is always checked before its append writes anything, so a refusal leaves
    /// nothing of it behind.
    async fn append(
        &self,
        appends: &[StreamAppend],
        policy: SendPolicy,
    ) -> Vec<StoreResult<Appended>>;

    /// Appends a batch of sends in ONE transaction (group commit). Each send is checked on
    /// its own: a refused send yields its error without failing the others. A send whose
    /// `(conversation, sender, client_msg_id)` already exists yields the stored message
    /// with `duplicate = true` and writes nothing. Seqs are assigned per conversation
    /// under the conversation row's lock, so they are gapless even with several writers.
    /// If the transaction itself fails, every send gets the error and nothing is written.
    async fn append_messages(
        &self,
        sends: &[NewMessage],
        policy: SendPolicy,
    ) -> Vec<StoreResult<Appended>>;
    /// Recalls `target`: the sender within `window_ms` of sending, or a group admin at any
    /// time. Blanks the text and appends a `recall` entry to the stream.
    async fn recall_message(
        &self,
        actor: UserId,
        id: ConversationId,
        target: MessageId,
        window_ms: i64,
    ) -> StoreResult<Appended>;
    /// Up to `limit` entries with seq > `after_seq`, oldest first.
    async fn messages_after(
        &self,
        user: UserId,
        id: ConversationId,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Page>;
    /// Up to `limit` entries with seq < `before_seq`, returned oldest first.
    async fn messages_before(
        &self,
        user: UserId,
        id: ConversationId,
        before_seq: i64,
        limit: u32,
    ) -> StoreResult<Page>;
    /// Moves the user's read pointer forward to `seq`, clamped to the conversation's last
    /// seq; never backwards. Returns the pointer after the update and the members to tell.
    async fn mark_read(&self, user: UserId, id: ConversationId, seq: i64) -> StoreResult<ReadMark>;

    // ---- uploads ----

    /// Records an upload whose bytes are stored, unless its owner's uploads would then
    /// take more than `quota_bytes` (`QuotaExceeded`; checked under a lock on the owner,
    /// so two uploads at once cannot both slip under it).
    async fn create_upload(&self, upload: UploadRecord, quota_bytes: i64) -> StoreResult<()>;
    /// The bytes of every upload `owner` has that still exists.
    async fn upload_bytes_used(&self, owner: UserId) -> StoreResult<i64>;
    /// The upload `id` if `owner` made it; `NotFound` otherwise (someone else's upload and a
    /// missing one look the same).
    async fn own_upload(&self, owner: UserId, id: &UploadId) -> StoreResult<UploadRecord>;
    /// The upload `id` if `user` may download it: its owner, or a current member of a
    /// conversation in which a message that is not recalled carries it. `NotFound`
    /// otherwise, whatever the reason.
    async fn readable_upload(&self, user: UserId, id: &UploadId) -> StoreResult<UploadRecord>;
    /// Deletes up to `limit` uploads made before `cutoff_ms` that no message uses, oldest
    /// first, and returns (how many were deleted, the blob keys no upload uses any more,
    /// whose objects the caller may now delete).
    async fn delete_unused_uploads(
        &self,
        cutoff_ms: i64,
        limit: u32,
    ) -> StoreResult<(usize, Vec<String>)>;
}

/// Seeding in bulk, for the admin API (test and benchmark accounts): not part of the
/// production seam, and reachable only where the admin API is enabled.
///
/// Each runs as ONE transaction with multi-row inserts, so seeding thousands of rows costs
/// one commit (one fsync) instead of one per row, and a refusal writes nothing at all.
#[async_trait]
pub trait Seeding: Send + Sync + 'static {
    /// Creates every user, each with one session, all sharing `password_hash`. Returns the
    /// profiles in the order given. Fails with [`StoreError::UsernamesTaken`], naming them,
    /// if any username exists in any letter case or appears twice in `users`.
    async fn seed_users(
        &self,
        password_hash: String,
        users: Vec<SeedUser>,
    ) -> StoreResult<Vec<UserRecord>>;
    /// Makes each pair friends (a pair that already is stays so) and opens their direct
    /// conversation, the one [`Store::open_direct`] returns. Returns the direct conversation
    /// of each pair, in order. Fails with `InvalidInput` for a pair of one user or an
    /// unknown id. Blocks are not consulted: a block in place still stops messages.
    async fn seed_friendships(&self, pairs: Vec<[UserId; 2]>) -> StoreResult<Vec<ConversationId>>;
    /// [`Store::create_group`] without the friendship rule: the members need only exist
    /// (`InvalidInput` names unknown ids).
    async fn seed_group(
        &self,
        owner: UserId,
        name: String,
        members: Vec<UserId>,
    ) -> StoreResult<CreatedGroup>;
}

/// A whole database: the production seam and seeding, as [`open`] returns it.
pub trait Database: Store + Seeding {}

impl<T: Store + Seeding> Database for T {}

/// Convenience checks shared by backends.
pub fn ensure_admin(role: Role) -> StoreResult<()> {
    if role.is_admin() {
        Ok(())
    } else {
        Err(StoreError::Forbidden(
            "only the group's owner or admins may do this".into(),
        ))
    }
}
