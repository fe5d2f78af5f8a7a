//! The backend-neutral store: every rule of [`Store`] and the control flow around it,
//! written once over [`Sql`], the store's queries by area (`crate::sql`).
//!
//! [`Engine`] implements [`Store`] for any backend. It opens transactions and runs them
//! again when they lose a race (all in `Engine::write` and `Engine::read`), checks
//! membership, friendship, blocks and roles, and calls the backend only for single
//! statements (or the few statements that one dialect needs for what another does in one).
//! The stream (seq assignment, batched sends, idempotent-send dedupe, recalls, paging, read
//! pointers) lives in [`stream`], direct conversations and groups in [`group`], friend
//! requests and blocks in [`friend`], seeding in bulk in [`seed`].
//!
//! Architecture invariant: no SQL text here. A rule that needs a new query gets a new
//! method in the area trait of `crate::sql` it belongs to, written once there unless a
//! backend must spell it differently.

mod friend;
mod group;
mod seed;
mod stream;

pub(crate) use stream::append_mixed;

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use async_trait::async_trait;
use banter_protocol::{ConversationId, FriendRequestId, MessageId, UploadId, UserId};

use crate::row::{batch_failure, is_row_refusal, now_ms, with_retries, Retry};
use crate::sql::{Seek, Sql, Statements};
use crate::{
    Appended, ConversationRecord, ConversationWithMembers, CreatedGroup, Credentials,
    FriendRequestRecord, GroupChange, NewMessage, NewSession, NewUser, Page, ProfileUpdate,
    ReadMark, SeedUser, Seeding, SendPolicy, Session, SessionId, Store, StoreError, StoreResult,
    StreamAppend, UploadRecord, UserRecord,
};

/// What [`Engine::write`] and [`Engine::read`] run inside their transaction: a closure
/// from the transaction's connection to the work done on it. The second argument only
/// tells the compiler that what the closure borrows (`'a`) outlives the connection's
/// borrow (`'c`); closures ignore it (`|conn, _|`).
type TxBody<'a, S, T> = &'a (dyn for<'c> Fn(&'c mut <S as Statements>::Conn, PhantomData<&'c &'a ()>) -> TxFuture<'c, T>
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
            let sends: Vec<&NewMessage> = sends.iter().collect();
            Box::pin(async move { stream::append_batch::<S>(conn, &sends, policy, now_ms()).await })
        })
        .await
    }

    /// [`Store::append`]'s transaction: on `Err` nothing of the batch is written.
    async fn append_mixed(
        &self,
        appends: &[StreamAppend],
        policy: SendPolicy,
    ) -> StoreResult<Vec<StoreResult<Appended>>> {
        if let Some(writer) = self.sql.stream_writer() {
            return with_retries(Retry::ConflictsAndInsertRaces, || {
                writer.append(appends, policy)
            })
            .await;
        }
        self.write(Retry::ConflictsAndInsertRaces, &move |conn, _| {
            Box::pin(stream::append_mixed::<S>(conn, appends, policy, now_ms()))
        })
        .await
    }

    pub(crate) fn new(sql: S) -> Engine<S> {
        Engine { sql }
    }

    /// [`Store::create_group`] and, without the friendship rule, [`Store::seed_group`].
    async fn new_group(
        &self,
        owner: UserId,
        name: &str,
        members: &[UserId],
        require_friends: bool,
    ) -> StoreResult<CreatedGroup> {
        self.write(Retry::Conflicts, &move |conn, _| {
            Box::pin(group::create::<S>(
                conn,
                owner,
                name,
                members,
                require_friends,
                now_ms(),
            ))
        })
        .await
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
    async fn create_user(&self, user: NewUser) -> StoreResult<UserRecord> {
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

    async fn user(&self, id: UserId) -> StoreResult<UserRecord> {
        self.sql.user(id).await?.ok_or(StoreError::NotFound)
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<UserRecord> {
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

    async fn update_profile(&self, id: UserId, update: ProfileUpdate) -> StoreResult<UserRecord> {
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
    ) -> StoreResult<FriendRequestRecord> {
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
    ) -> StoreResult<(Vec<FriendRequestRecord>, Vec<FriendRequestRecord>)> {
        self.read(&move |conn, _| Box::pin(S::pending_requests(conn, user)))
            .await
    }

    async fn answer_friend_request(
        &self,
        recipient: UserId,
        id: FriendRequestId,
        accept: bool,
    ) -> StoreResult<FriendRequestRecord> {
        self.write(Retry::Conflicts, &move |conn, _| {
            Box::pin(friend::answer::<S>(conn, recipient, id, accept))
        })
        .await
    }

    async fn cancel_friend_request(
        &self,
        sender: UserId,
        id: FriendRequestId,
    ) -> StoreResult<FriendRequestRecord> {
        self.write(Retry::Conflicts, &move |conn, _| {
            Box::pin(friend::cancel::<S>(conn, sender, id))
        })
        .await
    }

    async fn friends(&self, user: UserId) -> StoreResult<Vec<(UserRecord, i64)>> {
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

    async fn blocked_users(&self, user: UserId) -> StoreResult<Vec<UserRecord>> {
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
        self.new_group(owner, &name, &members, true).await
    }

    async fn conversations(&self, user: UserId) -> StoreResult<Vec<ConversationRecord>> {
        self.sql.summaries(user).await
    }

    /// Members in the order they joined; the summary and the member list from one snapshot.
    async fn conversation(
        &self,
        user: UserId,
        id: ConversationId,
    ) -> StoreResult<ConversationWithMembers> {
        self.read(&move |conn, _| {
            Box::pin(async move {
                let conversation = S::summary(conn, user, id)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                let members = S::members(conn, id).await?;
                Ok(ConversationWithMembers {
                    conversation,
                    members,
                })
            })
        })
        .await
    }

    async fn conversation_summary(
        &self,
        user: UserId,
        id: ConversationId,
    ) -> StoreResult<ConversationRecord> {
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

    async fn append(
        &self,
        appends: &[StreamAppend],
        policy: SendPolicy,
    ) -> Vec<StoreResult<Appended>> {
        if appends.is_empty() {
            return Vec::new();
        }
        isolate_refusals(appends, &|part: &[StreamAppend]| {
            self.append_mixed(part, policy)
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
        let seek = Seek::After(after_seq);
        self.read(&move |conn, _| Box::pin(stream::page::<S>(conn, user, id, seek, limit)))
            .await
    }

    async fn messages_before(
        &self,
        user: UserId,
        id: ConversationId,
        before_seq: i64,
        limit: u32,
    ) -> StoreResult<Page> {
        let seek = Seek::Before(before_seq);
        self.read(&move |conn, _| Box::pin(stream::page::<S>(conn, user, id, seek, limit)))
            .await
    }

    async fn mark_read(&self, user: UserId, id: ConversationId, seq: i64) -> StoreResult<ReadMark> {
        self.write(Retry::Conflicts, &move |conn, _| {
            Box::pin(stream::mark_read::<S>(conn, user, id, seq))
        })
        .await
    }

    async fn create_upload(&self, upload: UploadRecord, quota_bytes: i64) -> StoreResult<()> {
        let upload = &upload;
        self.write(Retry::Conflicts, &move |conn, _| {
            Box::pin(async move {
                if !S::lock_user(conn, upload.owner).await? {
                    return Err(StoreError::NotFound);
                }
                let used = S::upload_bytes_used(conn, upload.owner).await?;
                if used.saturating_add(upload.size) > quota_bytes {
                    return Err(StoreError::QuotaExceeded);
                }
                S::insert_upload(conn, upload).await
            })
        })
        .await
    }

    async fn upload_bytes_used(&self, owner: UserId) -> StoreResult<i64> {
        self.read(&move |conn, _| Box::pin(S::upload_bytes_used(conn, owner)))
            .await
    }

    async fn own_upload(&self, owner: UserId, id: &UploadId) -> StoreResult<UploadRecord> {
        self.sql
            .own_upload(owner, id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn readable_upload(&self, user: UserId, id: &UploadId) -> StoreResult<UploadRecord> {
        self.sql
            .readable_upload(user, id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn delete_unused_uploads(
        &self,
        cutoff_ms: i64,
        limit: u32,
    ) -> StoreResult<(usize, Vec<String>)> {
        self.write(Retry::Conflicts, &move |conn, _| {
            Box::pin(async move {
                let unused = S::unused_uploads(conn, cutoff_ms, i64::from(limit)).await?;
                let mut freed: Vec<String> = Vec::new();
                for (id, _) in &unused {
                    S::delete_upload(conn, id).await?;
                }
                for (_, blob_key) in &unused {
                    if !freed.contains(blob_key) && !S::blob_in_use(conn, blob_key).await? {
                        freed.push(blob_key.clone());
                    }
                }
                Ok((unused.len(), freed))
            })
        })
        .await
    }
}

#[async_trait]
impl<S: Sql> Seeding for Engine<S> {
    async fn seed_users(
        &self,
        password_hash: String,
        users: Vec<SeedUser>,
    ) -> StoreResult<Vec<UserRecord>> {
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
        self.new_group(owner, &name, &members, false).await
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
pub(crate) async fn isolate_refusals<'a, A, T, F, Fut>(
    sends: &'a [A],
    commit: &'a F,
) -> Vec<StoreResult<T>>
where
    A: Sync,
    F: Fn(&'a [A]) -> Fut + Sync,
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
                "the database refused this change; sending it again will not help".into(),
            ))]
        }
        Err(error) => batch_failure(error, sends.len()),
    }
}
