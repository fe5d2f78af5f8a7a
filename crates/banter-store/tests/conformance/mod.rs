//! The conformance suite: what every backend of [`Store`] must do, because the server
//! relies on it.
//!
//! Each test is an async function taking a fresh `Arc<dyn Database>` (one takes a [`Backend`],
//! to reopen the database). A backend's test file declares `#[macro_use] mod conformance;`
//! and calls `conformance_tests!(factory)` with an async fn returning its [`Backend`]; the
//! macro expands one `#[tokio::test]` per function, so a new test added here runs on every
//! backend. Tests make their own users with unique names, so they also pass on a database
//! that other tests share.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use banter_protocol::model::{
    AttachmentKind, ConversationKind, FriendRequestStatus, Role, UploadKind,
};
use banter_protocol::{ConversationId, MessageId, UploadId, UserId};
use banter_store::{
    Appended, AttachmentRecord, ConversationRecord, Database, Entry, EntryBody, GroupChange,
    NewMessage, NewSession, NewUser, Notice, ProfileUpdate, SeedUser, SendPolicy, StoreError,
    StreamAppend, UploadRecord, UserRecord,
};

/// Expands one `#[tokio::test]` per conformance test for the backend that `$factory` (an
/// async fn returning a [`Backend`], or `Option<Backend>` for a database server that may be
/// absent, see [`Available`]) creates afresh for each test.
macro_rules! conformance_tests {
    ($factory:path) => {
        conformance_tests!(@store $factory;
            usernames_are_unique_regardless_of_case,
            profiles_update_and_clear,
            sessions_expire_and_are_revoked,
            friend_request_lifecycle,
            blocks_stop_requests_and_drop_pending_ones,
            direct_conversations_need_friendship_and_no_block,
            group_roles_and_changes,
            appends_are_idempotent,
            refused_sends_do_not_fail_the_batch,
            a_row_the_database_refuses_fails_alone,
            mixed_batches_answer_each_send_in_order,
            large_batches_are_split_but_answered_whole,
            seqs_are_gapless_under_concurrency,
            unread_counts_and_read_pointers,
            recall_rules,
            sends_recalls_and_notices_share_one_batch_in_order,
            paging_after_and_before,
            utf8_round_trips,
            conversation_list_and_detail,
            seeded_users_are_logged_in_and_all_or_nothing,
            seeded_friendships_open_the_direct_conversation,
            seeded_groups_need_no_friendship,
            uploads_quota_and_readers,
            unused_uploads_are_cleaned_up,
        );
        conformance_tests!(@backend $factory;
            data_survives_reopen,
            seqs_are_gapless_across_stores,
            old_rows_still_read,
        );
    };
    (@store $factory:path; $($name:ident),+ $(,)?) => {
        $(
            // Two worker threads so the concurrency test really runs tasks in parallel.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(backend) = conformance::Available::available($factory().await) else {
                    return;
                };
                let store = conformance::Backend::open(&backend).await;
                conformance::$name(store).await;
            }
        )+
    };
    (@backend $factory:path; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(backend) = conformance::Available::available($factory().await) else {
                    return;
                };
                conformance::$name(&backend).await;
            }
        )+
    };
}

/// Asserts that a store call failed with the given error pattern.
macro_rules! assert_err {
    ($result:expr, $pattern:pat) => {
        match $result {
            Err($pattern) => {}
            other => panic!("expected Err({}), got {:?}", stringify!($pattern), other),
        }
    };
}

/// A database the suite can open, and open again to check what survived.
pub trait Backend: Send + Sync {
    fn open(&self) -> Pin<Box<dyn Future<Output = Arc<dyn Database>> + Send + '_>>;
    /// Runs one SQL statement on the database directly, past the store: how a test writes
    /// rows exactly as an earlier version of Banter wrote them.
    fn execute<'a>(&'a self, sql: &'a str) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
}

/// What a backend factory returns: a [`Backend`], or `None` when the backend's database
/// server is not configured on this machine. The factory says so plainly (or, in CI, fails),
/// and the test passes without running.
pub trait Available {
    type Backend: Backend;
    fn available(self) -> Option<Self::Backend>;
}

impl<B: Backend> Available for B {
    type Backend = B;
    fn available(self) -> Option<B> {
        Some(self)
    }
}

impl<B: Backend> Available for Option<B> {
    type Backend = B;
    fn available(self) -> Option<B> {
        self
    }
}

const FRIENDS_ONLY: SendPolicy = SendPolicy {
    direct_requires_friendship: true,
};
const ANYONE: SendPolicy = SendPolicy {
    direct_requires_friendship: false,
};
/// An id no test ever creates.
const MISSING: i64 = i64::MAX;
/// A recall window that closed before the message was sent, so "too late" needs no clock.
const WINDOW_CLOSED_MS: i64 = -1;
const WINDOW_OPEN_MS: i64 = 120_000;

/// A name no other test (or earlier run against a shared database) has used.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{nanos}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn new_user(username: &str) -> NewUser {
    NewUser {
        username: username.to_owned(),
        nickname: format!("nick of {username}"),
        password_hash: format!("$argon2id$v=19$fake${username}"),
    }
}

pub async fn user(store: &Arc<dyn Database>, prefix: &str) -> UserRecord {
    store
        .create_user(new_user(&unique(prefix)))
        .await
        .expect("create user")
}

pub async fn befriend(store: &Arc<dyn Database>, a: &UserRecord, b: &UserRecord) {
    let request = store
        .create_friend_request(a.id, b.id, None)
        .await
        .expect("friend request");
    store
        .answer_friend_request(b.id, request.id, true)
        .await
        .expect("accept");
}

pub fn text(
    sender: UserId,
    conversation: ConversationId,
    client_id: &str,
    text: &str,
) -> NewMessage {
    NewMessage {
        sender,
        conversation_id: conversation,
        client_msg_id: client_id.to_owned(),
        text: text.to_owned(),
        attachment: None,
    }
}

async fn send_with(
    store: &Arc<dyn Database>,
    sender: UserId,
    conversation: ConversationId,
    words: &str,
    policy: SendPolicy,
) -> Result<Appended, StoreError> {
    let message = text(sender, conversation, &unique("c"), words);
    let mut results = store.append_messages(&[message], policy).await;
    assert_eq!(results.len(), 1);
    results.remove(0)
}

async fn send(
    store: &Arc<dyn Database>,
    sender: UserId,
    conversation: ConversationId,
    words: &str,
) -> Entry {
    send_with(store, sender, conversation, words, FRIENDS_ONLY)
        .await
        .expect("send")
        .entry
}

async fn summary(
    store: &Arc<dyn Database>,
    user: UserId,
    conversation: ConversationId,
) -> ConversationRecord {
    store
        .conversation(user, conversation)
        .await
        .expect("conversation")
        .conversation
}

fn sorted(mut ids: Vec<UserId>) -> Vec<UserId> {
    ids.sort();
    ids
}

fn notice(appended: &Appended) -> &Notice {
    match &appended.entry.body {
        EntryBody::Notice(notice) => notice,
        other => panic!("expected a system notice, got {other:?}"),
    }
}

fn text_of(message: &Entry) -> (&str, bool) {
    match &message.body {
        EntryBody::Text { text, recalled } => (text, *recalled),
        other => panic!("expected a text message, got {other:?}"),
    }
}

fn seqs(messages: &[Entry]) -> Vec<i64> {
    messages.iter().map(|m| m.seq).collect()
}

pub async fn usernames_are_unique_regardless_of_case(store: Arc<dyn Database>) {
    let name = unique("Alice");
    let alice = store.create_user(new_user(&name)).await.expect("create");
    assert_eq!(alice.username, name, "case is preserved");
    assert_err!(
        store.create_user(new_user(&name.to_uppercase())).await,
        StoreError::UsernameTaken
    );
    assert_err!(
        store.create_user(new_user(&name.to_lowercase())).await,
        StoreError::UsernameTaken
    );

    assert_eq!(
        store.user_by_username(&name.to_lowercase()).await.unwrap(),
        alice
    );
    assert_eq!(store.user(alice.id).await.unwrap(), alice);
    let credentials = store.credentials(&name.to_uppercase()).await.unwrap();
    assert_eq!(credentials.user_id, alice.id);
    assert_eq!(credentials.password_hash, new_user(&name).password_hash);
    assert_eq!(
        store.password_hash(alice.id).await.unwrap(),
        credentials.password_hash
    );

    assert_err!(store.user(UserId(MISSING)).await, StoreError::NotFound);
    assert_err!(
        store.user_by_username(&unique("nobody")).await,
        StoreError::NotFound
    );
    assert_err!(
        store.credentials(&unique("nobody")).await,
        StoreError::NotFound
    );
    assert_err!(
        store.password_hash(UserId(MISSING)).await,
        StoreError::NotFound
    );
}

pub async fn profiles_update_and_clear(store: Arc<dyn Database>) {
    let pat = user(&store, "pat").await;
    let updated = store
        .update_profile(
            pat.id,
            ProfileUpdate {
                nickname: Some("Pat 🦀".into()),
                avatar_url: Some("https://example.com/pat.png".into()),
                signature: Some("hello".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.nickname, "Pat 🦀");
    assert_eq!(
        updated.avatar_url.as_deref(),
        Some("https://example.com/pat.png")
    );
    assert_eq!(updated.signature.as_deref(), Some("hello"));

    // None keeps a field; an empty string clears an optional one.
    let cleared = store
        .update_profile(
            pat.id,
            ProfileUpdate {
                signature: Some(String::new()),
                ..ProfileUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(cleared.nickname, "Pat 🦀");
    assert_eq!(cleared.avatar_url, updated.avatar_url);
    assert_eq!(cleared.signature, None);
    assert_eq!(store.user(pat.id).await.unwrap(), cleared);

    assert_err!(
        store
            .update_profile(UserId(MISSING), ProfileUpdate::default())
            .await,
        StoreError::NotFound
    );
}

pub async fn sessions_expire_and_are_revoked(store: Arc<dyn Database>) {
    let sam = user(&store, "sam").await;
    let now_ms = 1_700_000_000_000;
    let token = |name: &str| unique(name).into_bytes();
    let new_session = |token_hash: &Vec<u8>, expires_at_ms| NewSession {
        user_id: sam.id,
        token_hash: token_hash.clone(),
        device_name: "laptop".into(),
        expires_at_ms,
    };

    let short_token = token("short");
    let short = store
        .create_session(new_session(&short_token, now_ms + 1_000))
        .await
        .unwrap();
    let found = store
        .session_by_token_hash(&short_token, now_ms)
        .await
        .unwrap();
    assert_eq!(found.id, short);
    assert_eq!(found.user_id, sam.id);
    assert_eq!(found.expires_at_ms, now_ms + 1_000);
    // A session is dead from its expiry instant on.
    assert_err!(
        store
            .session_by_token_hash(&short_token, now_ms + 1_000)
            .await,
        StoreError::NotFound
    );
    assert_err!(
        store.session_by_token_hash(&token("unknown"), now_ms).await,
        StoreError::NotFound
    );

    let kept_token = token("kept");
    let other_token = token("other");
    let far = now_ms + 86_400_000;
    let kept = store
        .create_session(new_session(&kept_token, far))
        .await
        .unwrap();
    let other = store
        .create_session(new_session(&other_token, far))
        .await
        .unwrap();

    let mut revoked = store
        .change_password(sam.id, "new hash".into(), kept)
        .await
        .unwrap();
    revoked.sort();
    assert_eq!(revoked, vec![short, other]);
    assert_eq!(store.password_hash(sam.id).await.unwrap(), "new hash");
    assert_eq!(
        store
            .session_by_token_hash(&kept_token, now_ms)
            .await
            .unwrap()
            .id,
        kept
    );
    assert_err!(
        store.session_by_token_hash(&other_token, now_ms).await,
        StoreError::NotFound
    );

    store.delete_session(kept).await.unwrap();
    assert_err!(
        store.session_by_token_hash(&kept_token, now_ms).await,
        StoreError::NotFound
    );
}

pub async fn friend_request_lifecycle(store: Arc<dyn Database>) {
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;

    assert_err!(
        store.create_friend_request(ann.id, ann.id, None).await,
        StoreError::InvalidInput(_)
    );
    assert_err!(
        store
            .create_friend_request(ann.id, UserId(MISSING), None)
            .await,
        StoreError::NotFound
    );

    let request = store
        .create_friend_request(ann.id, bob.id, Some("hi, it's Ann".into()))
        .await
        .unwrap();
    assert_eq!(request.from, ann);
    assert_eq!(request.to, bob);
    assert_eq!(request.status, FriendRequestStatus::Pending);
    assert_eq!(request.greeting.as_deref(), Some("hi, it's Ann"));
    // One pending request per pair, whichever way round.
    assert_err!(
        store.create_friend_request(ann.id, bob.id, None).await,
        StoreError::Conflict(_)
    );
    assert_err!(
        store.create_friend_request(bob.id, ann.id, None).await,
        StoreError::Conflict(_)
    );

    let (incoming, outgoing) = store.friend_requests(bob.id).await.unwrap();
    assert_eq!(incoming, vec![request.clone()]);
    assert!(outgoing.is_empty());
    let (incoming, outgoing) = store.friend_requests(ann.id).await.unwrap();
    assert!(incoming.is_empty());
    assert_eq!(outgoing, vec![request.clone()]);

    // Only the recipient answers and only the sender cancels; others cannot even see it.
    assert_err!(
        store.answer_friend_request(ann.id, request.id, true).await,
        StoreError::NotFound
    );
    assert_err!(
        store.cancel_friend_request(bob.id, request.id).await,
        StoreError::NotFound
    );

    let rejected = store
        .answer_friend_request(bob.id, request.id, false)
        .await
        .unwrap();
    assert_eq!(rejected.status, FriendRequestStatus::Rejected);
    assert_err!(
        store.answer_friend_request(bob.id, request.id, true).await,
        StoreError::Conflict(_)
    );
    assert!(store.friend_ids(ann.id).await.unwrap().is_empty());
    assert!(store.friend_requests(bob.id).await.unwrap().0.is_empty());

    let second = store
        .create_friend_request(ann.id, bob.id, None)
        .await
        .unwrap();
    let cancelled = store
        .cancel_friend_request(ann.id, second.id)
        .await
        .unwrap();
    assert_eq!(cancelled.status, FriendRequestStatus::Cancelled);
    assert_err!(
        store.cancel_friend_request(ann.id, second.id).await,
        StoreError::Conflict(_)
    );

    let third = store
        .create_friend_request(bob.id, ann.id, None)
        .await
        .unwrap();
    let accepted = store
        .answer_friend_request(ann.id, third.id, true)
        .await
        .unwrap();
    assert_eq!(accepted.status, FriendRequestStatus::Accepted);
    assert_eq!(store.friend_ids(ann.id).await.unwrap(), vec![bob.id]);
    assert_eq!(store.friend_ids(bob.id).await.unwrap(), vec![ann.id]);
    let friends = store.friends(ann.id).await.unwrap();
    assert_eq!(friends.len(), 1);
    assert_eq!(friends[0].0, bob);
    assert!(store.friend_requests(ann.id).await.unwrap().0.is_empty());
    assert_err!(
        store.create_friend_request(ann.id, bob.id, None).await,
        StoreError::Conflict(_)
    );

    store.remove_friend(ann.id, bob.id).await.unwrap();
    assert!(store.friend_ids(ann.id).await.unwrap().is_empty());
    assert!(store.friend_ids(bob.id).await.unwrap().is_empty());
    assert_err!(
        store.remove_friend(bob.id, ann.id).await,
        StoreError::NotFound
    );
}

pub async fn blocks_stop_requests_and_drop_pending_ones(store: Arc<dyn Database>) {
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    store
        .create_friend_request(bob.id, ann.id, None)
        .await
        .unwrap();

    store.block(ann.id, bob.id).await.unwrap();
    store.block(ann.id, bob.id).await.unwrap(); // twice is a no-op
    assert!(store.friend_requests(ann.id).await.unwrap().0.is_empty());
    assert!(store.friend_requests(bob.id).await.unwrap().1.is_empty());
    assert_eq!(
        store.blocked_users(ann.id).await.unwrap(),
        vec![bob.clone()]
    );
    assert!(store.blocked_users(bob.id).await.unwrap().is_empty());

    // Blocked either way stops requests both ways.
    assert_err!(
        store.create_friend_request(bob.id, ann.id, None).await,
        StoreError::Blocked
    );
    assert_err!(
        store.create_friend_request(ann.id, bob.id, None).await,
        StoreError::Blocked
    );
    assert_err!(
        store.block(ann.id, ann.id).await,
        StoreError::InvalidInput(_)
    );
    assert_err!(
        store.block(ann.id, UserId(MISSING)).await,
        StoreError::NotFound
    );

    store.unblock(ann.id, bob.id).await.unwrap();
    store.unblock(ann.id, bob.id).await.unwrap();
    assert!(store.blocked_users(ann.id).await.unwrap().is_empty());
    store
        .create_friend_request(bob.id, ann.id, None)
        .await
        .unwrap();
}

pub async fn direct_conversations_need_friendship_and_no_block(store: Arc<dyn Database>) {
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;

    assert_err!(
        store.open_direct(ann.id, bob.id, true).await,
        StoreError::NotFriends
    );
    assert_err!(
        store.open_direct(ann.id, ann.id, false).await,
        StoreError::InvalidInput(_)
    );
    assert_err!(
        store.open_direct(ann.id, UserId(MISSING), false).await,
        StoreError::NotFound
    );
    // Strangers may talk when the server allows it.
    let direct = store.open_direct(ann.id, bob.id, false).await.unwrap();
    assert_eq!(
        store.open_direct(bob.id, ann.id, false).await.unwrap(),
        direct
    );
    assert_err!(
        send_with(&store, ann.id, direct, "hi", FRIENDS_ONLY).await,
        StoreError::NotFriends
    );
    send_with(&store, ann.id, direct, "hi", ANYONE)
        .await
        .unwrap();

    befriend(&store, &ann, &bob).await;
    assert_eq!(
        store.open_direct(ann.id, bob.id, true).await.unwrap(),
        direct
    );
    let sent = send(&store, bob.id, direct, "hello friend").await;
    assert_eq!(sent.seq, 2);

    // A block in either direction stops both users, whatever the policy.
    store.block(bob.id, ann.id).await.unwrap();
    assert_err!(
        store.open_direct(ann.id, bob.id, false).await,
        StoreError::Blocked
    );
    for sender in [ann.id, bob.id] {
        assert_err!(
            send_with(&store, sender, direct, "blocked?", ANYONE).await,
            StoreError::Blocked
        );
    }
    store.unblock(bob.id, ann.id).await.unwrap();
    assert_eq!(send(&store, ann.id, direct, "back").await.seq, 3);

    let detail = store.conversation(ann.id, direct).await.unwrap();
    assert_eq!(detail.conversation.kind, ConversationKind::Direct);
    assert_eq!(detail.members.len(), 2);
    assert!(detail.members.iter().all(|m| m.role == Role::Member));

    // Direct conversations have no group settings.
    let refused = store
        .change_group(ann.id, direct, GroupChange::Rename("x".into()))
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Forbidden(_)) | Err(StoreError::NotFound)
        ),
        "{refused:?}"
    );
}

pub async fn group_roles_and_changes(store: Arc<dyn Database>) {
    let owner = user(&store, "owner").await;
    let admin = user(&store, "admin").await;
    let mia = user(&store, "mia").await;
    let max = user(&store, "max").await;
    let xia = user(&store, "xia").await;
    for friend in [&admin, &mia, &max] {
        befriend(&store, &owner, friend).await;
    }

    assert_err!(
        store.create_group(owner.id, "g".into(), vec![xia.id]).await,
        StoreError::NotFriends
    );
    let created = store
        .create_group(
            owner.id,
            "Team".into(),
            vec![admin.id, mia.id, admin.id, owner.id],
        )
        .await
        .unwrap();
    let group = created.conversation_id;
    // Duplicates and the owner named among the members count once; the owner is a member.
    assert_eq!(
        sorted(created.members.clone()),
        sorted(vec![owner.id, admin.id, mia.id])
    );
    // Creating writes nothing to the stream, so the first message will be seq 1.
    let page = store.messages_after(owner.id, group, 0, 10).await.unwrap();
    assert!(page.entries.is_empty(), "{:?}", page.entries);
    assert!(!page.has_more);
    let detail = store.conversation(owner.id, group).await.unwrap();
    assert_eq!(detail.conversation.my_role, Role::Owner);
    assert_eq!(detail.conversation.member_count, 3);
    assert_eq!(detail.conversation.name.as_deref(), Some("Team"));
    assert_eq!(
        (
            detail.conversation.last_seq,
            detail.conversation.unread_count
        ),
        (0, 0)
    );
    assert_eq!(detail.conversation.last_entry, None);
    let mut listed: Vec<UserId> = detail.members.iter().map(|m| m.user.id).collect();
    listed.sort();
    assert_eq!(listed, created.members);
    assert_eq!(summary(&store, mia.id, group).await.my_role, Role::Member);

    let change = |actor: &UserRecord, change: GroupChange| {
        let store = store.clone();
        let actor = actor.id;
        async move { store.change_group(actor, group, change).await }
    };

    // Plain members manage nothing.
    assert_err!(
        change(&mia, GroupChange::AddMembers(vec![max.id])).await,
        StoreError::Forbidden(_)
    );
    assert_err!(
        change(&mia, GroupChange::Rename("mine".into())).await,
        StoreError::Forbidden(_)
    );

    let promoted = change(&owner, GroupChange::SetRole(admin.id, Role::Admin))
        .await
        .unwrap();
    assert_eq!(
        notice(&promoted),
        &Notice::RoleChanged {
            by: owner.id,
            user_id: admin.id,
            role: Role::Admin
        }
    );
    assert_err!(
        change(&owner, GroupChange::SetRole(admin.id, Role::Admin)).await,
        StoreError::Conflict(_)
    );
    assert_err!(
        change(&owner, GroupChange::SetRole(admin.id, Role::Owner)).await,
        StoreError::InvalidInput(_)
    );
    // Only the owner changes roles.
    assert_err!(
        change(&admin, GroupChange::SetRole(mia.id, Role::Admin)).await,
        StoreError::Forbidden(_)
    );

    // Admins add friends of their own.
    assert_err!(
        change(&admin, GroupChange::AddMembers(vec![xia.id])).await,
        StoreError::NotFriends
    );
    befriend(&store, &admin, &xia).await;
    let added = change(&admin, GroupChange::AddMembers(vec![xia.id]))
        .await
        .unwrap();
    assert_eq!(
        notice(&added),
        &Notice::MembersAdded {
            by: admin.id,
            user_ids: vec![xia.id]
        }
    );
    assert!(added.recipients.contains(&xia.id));
    assert_err!(
        change(&admin, GroupChange::AddMembers(vec![xia.id])).await,
        StoreError::Conflict(_)
    );
    // A newcomer has nothing unread from before they joined.
    assert_eq!(summary(&store, xia.id, group).await.unread_count, 0);
    change(&owner, GroupChange::AddMembers(vec![max.id]))
        .await
        .unwrap();

    let removed = change(&admin, GroupChange::RemoveMember(mia.id))
        .await
        .unwrap();
    assert_eq!(
        notice(&removed),
        &Notice::MemberRemoved {
            by: admin.id,
            user_id: mia.id
        }
    );
    assert!(
        removed.recipients.contains(&mia.id),
        "the removed hear of it"
    );
    assert!(!store.is_member(mia.id, group).await.unwrap());
    assert_err!(
        store.messages_after(mia.id, group, 0, 10).await,
        StoreError::NotFound
    );
    assert_err!(
        change(&mia, GroupChange::Rename("gone".into())).await,
        StoreError::NotFound
    );
    assert_err!(
        change(&admin, GroupChange::RemoveMember(mia.id)).await,
        StoreError::NotFound
    );
    assert_err!(
        change(&admin, GroupChange::RemoveMember(owner.id)).await,
        StoreError::Forbidden(_)
    );
    // Admins cannot remove admins.
    change(&owner, GroupChange::SetRole(max.id, Role::Admin))
        .await
        .unwrap();
    assert_err!(
        change(&admin, GroupChange::RemoveMember(max.id)).await,
        StoreError::Forbidden(_)
    );
    change(&owner, GroupChange::SetRole(max.id, Role::Member))
        .await
        .unwrap();

    let renamed = change(&admin, GroupChange::Rename("Renamed".into()))
        .await
        .unwrap();
    assert_eq!(
        notice(&renamed),
        &Notice::Renamed {
            by: admin.id,
            name: "Renamed".into()
        }
    );
    assert_eq!(
        summary(&store, owner.id, group).await.name.as_deref(),
        Some("Renamed")
    );

    assert_err!(
        change(&owner, GroupChange::Leave).await,
        StoreError::Forbidden(_)
    );
    let left = change(&max, GroupChange::Leave).await.unwrap();
    assert_eq!(notice(&left), &Notice::MemberLeft { user_id: max.id });
    assert!(left.recipients.contains(&max.id));
    assert!(!store.is_member(max.id, group).await.unwrap());

    assert_err!(
        change(&admin, GroupChange::TransferOwnership(admin.id)).await,
        StoreError::Forbidden(_)
    );
    assert_err!(
        change(&owner, GroupChange::TransferOwnership(max.id)).await,
        StoreError::NotFound
    );
    let transferred = change(&owner, GroupChange::TransferOwnership(admin.id))
        .await
        .unwrap();
    assert_eq!(
        notice(&transferred),
        &Notice::OwnershipTransferred {
            from: owner.id,
            to: admin.id
        }
    );
    assert_eq!(summary(&store, admin.id, group).await.my_role, Role::Owner);
    assert_eq!(summary(&store, owner.id, group).await.my_role, Role::Admin);

    assert_err!(
        change(&owner, GroupChange::Disband).await,
        StoreError::Forbidden(_)
    );
    let disbanded = change(&admin, GroupChange::Disband).await.unwrap();
    assert_eq!(notice(&disbanded), &Notice::Disbanded { by: admin.id });
    assert_eq!(
        sorted(disbanded.recipients.clone()),
        sorted(vec![owner.id, admin.id, xia.id])
    );
    for member in [&owner, &admin, &xia] {
        let listed = store.conversations(member.id).await.unwrap();
        assert!(listed.iter().all(|c| c.id != group));
        assert_err!(
            store.conversation(member.id, group).await,
            StoreError::NotFound
        );
    }

    // Every notice took the next seq: promoted, added x2, removed, role x2, renamed, left,
    // transferred, disbanded.
    let notices = [
        &promoted,
        &added,
        &removed,
        &renamed,
        &left,
        &transferred,
        &disbanded,
    ]
    .map(|a| a.entry.seq);
    assert_eq!(notices, [1, 2, 4, 7, 8, 9, 10]);
}

pub async fn appends_are_idempotent(store: Arc<dyn Database>) {
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    befriend(&store, &ann, &bob).await;
    let direct = store.open_direct(ann.id, bob.id, true).await.unwrap();

    let batch = [
        text(ann.id, direct, "c1", "hello"),
        text(ann.id, direct, "c1", "hello (resent)"),
        text(ann.id, direct, "c2", "second"),
    ];
    let results: Vec<Appended> = store
        .append_messages(&batch, FRIENDS_ONLY)
        .await
        .into_iter()
        .map(|r| r.expect("send"))
        .collect();
    assert!(!results[0].duplicate);
    assert_eq!(results[0].entry.seq, 1);
    assert_eq!(text_of(&results[0].entry), ("hello", false));
    assert_eq!(results[0].entry.client_msg_id.as_deref(), Some("c1"));
    assert!(results[1].duplicate, "same client id later in the batch");
    assert_eq!(results[1].entry, results[0].entry);
    assert!(!results[2].duplicate);
    assert_eq!(results[2].entry.seq, 2);

    let again = store
        .append_messages(&[text(ann.id, direct, "c1", "retry")], FRIENDS_ONLY)
        .await
        .remove(0)
        .unwrap();
    assert!(again.duplicate, "same client id in a later batch");
    assert_eq!(again.entry, results[0].entry);

    // Client ids are per sender.
    let bobs = store
        .append_messages(&[text(bob.id, direct, "c1", "bob's c1")], FRIENDS_ONLY)
        .await
        .remove(0)
        .unwrap();
    assert!(!bobs.duplicate);
    assert_eq!(bobs.entry.seq, 3);

    let page = store.messages_after(ann.id, direct, 0, 100).await.unwrap();
    assert_eq!(seqs(&page.entries), vec![1, 2, 3]);
}

pub async fn refused_sends_do_not_fail_the_batch(store: Arc<dyn Database>) {
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    let eve = user(&store, "eve").await;
    befriend(&store, &ann, &bob).await;
    let direct = store.open_direct(ann.id, bob.id, true).await.unwrap();
    let group = store
        .create_group(ann.id, "g".into(), vec![bob.id])
        .await
        .unwrap()
        .conversation_id;

    let batch = [
        text(ann.id, direct, "a1", "one"),
        text(eve.id, direct, "e1", "not a member"),
        text(ann.id, ConversationId(MISSING), "a2", "nowhere"),
        text(bob.id, group, "b1", "group"),
        text(ann.id, direct, "a3", "two"),
    ];
    let results = store.append_messages(&batch, FRIENDS_ONLY).await;
    assert_eq!(results.len(), batch.len());
    let ok = |i: usize| results[i].as_ref().expect("accepted send");
    assert_eq!(ok(0).entry.seq, 1);
    assert_eq!(
        sorted(ok(0).recipients.clone()),
        sorted(vec![ann.id, bob.id])
    );
    assert_err!(&results[1], StoreError::NotFound);
    assert_err!(&results[2], StoreError::NotFound);
    assert_eq!(ok(3).entry.seq, 1, "a new group's stream starts empty");
    assert_eq!(ok(4).entry.seq, 2);

    assert!(store.append_messages(&[], FRIENDS_ONLY).await.is_empty());
}

/// A send whose row the database itself refuses fails alone: the others of its batch are
/// committed, in order, with gapless seqs. The server refuses such text before it reaches
/// the store; this is what keeps one user's send from failing everyone's should a value
/// slip through. PostgreSQL cannot store U+0000 in text; MariaDB's `_bin` collation calls
/// `k ` a duplicate of `k`. SQLite stores both, and so may the others: then the send is
/// simply accepted. Either way it is never an error that fails its neighbours.
pub async fn a_row_the_database_refuses_fails_alone(store: Arc<dyn Database>) {
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    befriend(&store, &ann, &bob).await;
    let direct = store.open_direct(ann.id, bob.id, true).await.unwrap();
    let first = store
        .append_messages(&[text(ann.id, direct, "k", "first")], FRIENDS_ONLY)
        .await;
    assert_eq!(first[0].as_ref().expect("stored").entry.seq, 1);

    let batch = [
        text(ann.id, direct, "a1", "one"),
        text(ann.id, direct, "n1", "nul \u{0} inside"),
        text(bob.id, direct, "b1", "two"),
        text(ann.id, direct, "k ", "a key that pads to an earlier one"),
        text(ann.id, direct, "a3", "three"),
        text(bob.id, direct, "b\u{0}", "a nul in the key"),
        text(bob.id, direct, "b2", "four"),
    ];
    let innocent = [0, 2, 4, 6];
    let results = store.append_messages(&batch, FRIENDS_ONLY).await;
    assert_eq!(results.len(), batch.len());
    let mut next_seq = 2;
    for (index, result) in results.iter().enumerate() {
        match result {
            Ok(appended) => {
                assert_eq!(appended.entry.seq, next_seq, "send {index} in batch order");
                assert_eq!(
                    appended.entry.client_msg_id.as_deref(),
                    Some(batch[index].client_msg_id.as_str())
                );
                next_seq += 1;
            }
            Err(StoreError::InvalidInput(_)) if !innocent.contains(&index) => {}
            Err(other) => panic!("send {index} failed with {other:?}"),
        }
    }
    let history = store
        .messages_after(ann.id, direct, 0, 100)
        .await
        .unwrap()
        .entries;
    assert_eq!(seqs(&history), (1..next_seq).collect::<Vec<_>>());
    for index in innocent {
        assert!(
            history
                .iter()
                .any(|m| m.client_msg_id.as_deref() == Some(batch[index].client_msg_id.as_str())),
            "send {index} is stored"
        );
    }
}

/// One batch over several direct and group conversations, with refused sends (blocked, not
/// friends, not a member, no such conversation), resends of stored messages and repeats
/// inside the batch scattered through it: every answer belongs to its own send, and each
/// conversation's new seqs follow on from its last one, without gaps, in batch order.
pub async fn mixed_batches_answer_each_send_in_order(store: Arc<dyn Database>) {
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    let cat = user(&store, "cat").await;
    let dan = user(&store, "dan").await;
    let eve = user(&store, "eve").await;
    befriend(&store, &ann, &bob).await;
    befriend(&store, &ann, &cat).await;
    befriend(&store, &ann, &dan).await;
    let ann_bob = store.open_direct(ann.id, bob.id, true).await.unwrap();
    let ann_cat = store.open_direct(ann.id, cat.id, true).await.unwrap();
    let ann_dan = store.open_direct(ann.id, dan.id, true).await.unwrap();
    // Strangers, talking because the server once allowed it.
    let bob_cat = store.open_direct(bob.id, cat.id, false).await.unwrap();
    let trio = store
        .create_group(ann.id, "trio".into(), vec![bob.id, cat.id])
        .await
        .unwrap()
        .conversation_id;
    let pair = store
        .create_group(ann.id, "pair".into(), vec![bob.id])
        .await
        .unwrap()
        .conversation_id;

    // Earlier history: stored messages to resend, and streams that do not start at 0.
    let stored_direct = store
        .append_messages(&[text(ann.id, ann_bob, "s1", "stored")], FRIENDS_ONLY)
        .await
        .remove(0)
        .unwrap()
        .entry;
    let stored_group = store
        .append_messages(&[text(bob.id, trio, "s2", "stored too")], FRIENDS_ONLY)
        .await
        .remove(0)
        .unwrap()
        .entry;
    send(&store, cat.id, trio, "more history").await;
    send_with(&store, bob.id, bob_cat, "from before", ANYONE)
        .await
        .unwrap();
    let sent_before = send(&store, dan.id, ann_dan, "before the block").await;
    store.block(dan.id, ann.id).await.unwrap();
    let last_before = |conversation: ConversationId| -> i64 {
        if conversation == trio {
            2
        } else if [ann_bob, bob_cat, ann_dan].contains(&conversation) {
            1
        } else {
            0
        }
    };

    #[derive(Debug)]
    enum Want {
        New,
        Stored(Entry),
        RepeatOf(usize),
        Refused(&'static str),
    }
    let missing = ConversationId(MISSING);
    let cases = [
        (text(ann.id, ann_bob, "a1", "one"), Want::New),
        (text(bob.id, trio, "b1", "hello trio"), Want::New),
        (
            text(ann.id, ann_dan, "x1", "blocked"),
            Want::Refused("blocked"),
        ),
        (
            text(eve.id, trio, "e1", "let me in"),
            Want::Refused("not_found"),
        ),
        (
            text(ann.id, missing, "m1", "nowhere"),
            Want::Refused("not_found"),
        ),
        (
            text(bob.id, bob_cat, "n1", "stranger"),
            Want::Refused("not_friends"),
        ),
        (
            text(ann.id, ann_bob, "s1", "stored (resent)"),
            Want::Stored(stored_direct.clone()),
        ),
        (
            text(ann.id, ann_bob, "a1", "one (repeated)"),
            Want::RepeatOf(0),
        ),
        (text(cat.id, trio, "c1", "hi both"), Want::New),
        (text(ann.id, ann_cat, "a2", "hello cat"), Want::New),
        // The same client id from another sender is another message.
        (text(bob.id, ann_bob, "a1", "bob's a1"), Want::New),
        (text(ann.id, ann_bob, "a3", "three"), Want::New),
        (
            text(bob.id, trio, "b1", "hello (repeated)"),
            Want::RepeatOf(1),
        ),
        // Blocked either way round.
        (
            text(dan.id, ann_dan, "x2", "blocked too"),
            Want::Refused("blocked"),
        ),
        (
            text(bob.id, trio, "s2", "stored too (resent)"),
            Want::Stored(stored_group.clone()),
        ),
        (
            text(eve.id, pair, "e2", "not mine"),
            Want::Refused("not_found"),
        ),
        (text(ann.id, pair, "p1", "pair"), Want::New),
        // A resend of a message stored before the block is still answered.
        (
            text(
                dan.id,
                ann_dan,
                sent_before.client_msg_id.as_deref().unwrap(),
                "again",
            ),
            Want::Stored(sent_before.clone()),
        ),
        (text(cat.id, trio, "c2", "last"), Want::New),
    ];
    let sends: Vec<NewMessage> = cases.iter().map(|(send, _)| send.clone()).collect();
    let results = store.append_messages(&sends, FRIENDS_ONLY).await;
    assert_eq!(results.len(), sends.len());

    let members = |conversation: ConversationId| -> Vec<UserId> {
        if conversation == ann_bob || conversation == pair {
            sorted(vec![ann.id, bob.id])
        } else if conversation == ann_cat {
            sorted(vec![ann.id, cat.id])
        } else if conversation == ann_dan {
            sorted(vec![ann.id, dan.id])
        } else if conversation == bob_cat {
            sorted(vec![bob.id, cat.id])
        } else {
            sorted(vec![ann.id, bob.id, cat.id])
        }
    };
    let mut next_seq: std::collections::HashMap<ConversationId, i64> =
        std::collections::HashMap::new();
    let mut new_messages: Vec<Entry> = Vec::new();
    for (index, ((send, want), result)) in cases.iter().zip(&results).enumerate() {
        match want {
            Want::Refused(code) => {
                let matches = matches!(
                    (code, result),
                    (&"blocked", Err(StoreError::Blocked))
                        | (&"not_friends", Err(StoreError::NotFriends))
                        | (&"not_found", Err(StoreError::NotFound))
                );
                assert!(matches, "send {index}: expected {code}, got {result:?}");
            }
            Want::New => {
                let appended = result.as_ref().expect("accepted send");
                assert!(!appended.duplicate, "send {index}");
                let message = &appended.entry;
                assert_eq!(
                    message.conversation_id, send.conversation_id,
                    "send {index}"
                );
                assert_eq!(message.sender, send.sender, "send {index}");
                assert_eq!(
                    message.client_msg_id.as_deref(),
                    Some(send.client_msg_id.as_str())
                );
                assert_eq!(text_of(message), (send.text.as_str(), false));
                let seq = next_seq
                    .entry(send.conversation_id)
                    .or_insert_with(|| last_before(send.conversation_id) + 1);
                assert_eq!(message.seq, *seq, "send {index}: gapless, in batch order");
                *seq += 1;
                assert_eq!(
                    sorted(appended.recipients.clone()),
                    members(send.conversation_id)
                );
                new_messages.push(message.clone());
            }
            Want::Stored(original) => {
                let appended = result.as_ref().expect("resend");
                assert!(appended.duplicate, "send {index}");
                assert_eq!(&appended.entry, original, "send {index}");
                assert_eq!(
                    sorted(appended.recipients.clone()),
                    members(send.conversation_id)
                );
            }
            Want::RepeatOf(first) => {
                let appended = result.as_ref().expect("repeat");
                let original = results[*first].as_ref().expect("the first send");
                assert!(appended.duplicate, "send {index}");
                assert!(!original.duplicate);
                assert_eq!(appended.entry, original.entry, "send {index}");
                assert_eq!(appended.recipients, original.recipients);
            }
        }
    }

    // The streams hold exactly the new messages after the history: nothing for refused
    // sends, resends or repeats.
    for conversation in [ann_bob, ann_cat, ann_dan, bob_cat, trio, pair] {
        let reader = members(conversation)[0];
        let page = store
            .messages_after(reader, conversation, 0, 100)
            .await
            .unwrap();
        let after_history: Vec<&Entry> = page
            .entries
            .iter()
            .filter(|m| m.seq > last_before(conversation))
            .collect();
        let expected: Vec<&Entry> = new_messages
            .iter()
            .filter(|m| m.conversation_id == conversation)
            .collect();
        assert_eq!(after_history, expected, "stream of {conversation:?}");
        assert_eq!(
            seqs(&page.entries),
            (1..=last_before(conversation) + expected.len() as i64).collect::<Vec<_>>()
        );
        let summary = summary(&store, reader, conversation).await;
        assert_eq!(summary.last_seq, page.entries.len() as i64);
    }
    // The senders' own messages count as read.
    assert_eq!(summary(&store, ann.id, ann_bob).await.read_seq, 4);
    assert_eq!(summary(&store, bob.id, ann_bob).await.read_seq, 3);
    assert_eq!(summary(&store, cat.id, trio).await.read_seq, 5);

    // The refused sends were not stored: the same ids go through once the rules allow.
    let retried = store
        .append_messages(
            &[
                text(bob.id, bob_cat, "n1", "stranger"),
                text(ann.id, ann_dan, "x1", "blocked"),
            ],
            ANYONE,
        )
        .await;
    let accepted = retried[0].as_ref().expect("strangers may talk now");
    assert!(!accepted.duplicate);
    assert_eq!(accepted.entry.seq, 2);
    assert_err!(&retried[1], StoreError::Blocked);
}

/// A batch bigger than one statement carries on any backend (SQLite allows 32766 bound
/// parameters, MySQL 65535 and IN lists are kept under 1000 values there), over more
/// conversations than one IN list holds: the set-based path splits it and still answers
/// every send, in order, and finds all of it again when the whole batch is resent.
pub async fn large_batches_are_split_but_answered_whole(store: Arc<dyn Database>) {
    const CONVERSATIONS: usize = 1_100;
    const ROUNDS: usize = 5;
    let users = seed_users(&store, "big", CONVERSATIONS * 2).await;
    let pairs: Vec<[UserId; 2]> = users
        .chunks(2)
        .map(|pair| [pair[0].id, pair[1].id])
        .collect();
    let conversations = store.seed_friendships(pairs.clone()).await.unwrap();

    // Round by round, so each conversation's sends are spread across the batch.
    let mut sends = Vec::with_capacity(CONVERSATIONS * ROUNDS);
    for round in 0..ROUNDS {
        for (pair, &conversation) in pairs.iter().zip(&conversations) {
            let sender = pair[round % 2];
            let client_id = format!("r{round}");
            sends.push(text(
                sender,
                conversation,
                &client_id,
                &format!("round {round}"),
            ));
        }
    }
    let results = store.append_messages(&sends, FRIENDS_ONLY).await;
    assert_eq!(results.len(), sends.len());
    let mut first = Vec::with_capacity(results.len());
    for (index, (send, result)) in sends.iter().zip(results).enumerate() {
        let appended = result.unwrap_or_else(|e| panic!("send {index}: {e:?}"));
        assert!(!appended.duplicate);
        assert_eq!(appended.entry.conversation_id, send.conversation_id);
        assert_eq!(appended.entry.sender, send.sender);
        assert_eq!(text_of(&appended.entry).0, send.text);
        let round = index / CONVERSATIONS;
        assert_eq!(appended.entry.seq, round as i64 + 1, "send {index}");
        first.push(appended.entry);
    }

    let again = store.append_messages(&sends, FRIENDS_ONLY).await;
    for (index, (result, original)) in again.into_iter().zip(&first).enumerate() {
        let appended = result.unwrap_or_else(|e| panic!("resend {index}: {e:?}"));
        assert!(appended.duplicate, "resend {index}");
        assert_eq!(&appended.entry, original);
    }
    let last = conversations[CONVERSATIONS - 1];
    let page = store
        .messages_after(pairs[CONVERSATIONS - 1][0], last, 0, 100)
        .await
        .unwrap();
    assert_eq!(seqs(&page.entries), (1..=ROUNDS as i64).collect::<Vec<_>>());
}

pub async fn seqs_are_gapless_under_concurrency(store: Arc<dyn Database>) {
    const TASKS: usize = 20;
    const SENDS_PER_TASK: usize = 50;
    let owner = user(&store, "owner").await;
    let mut members = vec![owner.id];
    for _ in 0..4 {
        let friend = user(&store, "member").await;
        befriend(&store, &owner, &friend).await;
        members.push(friend.id);
    }
    let group = store
        .create_group(owner.id, "busy".into(), members[1..].to_vec())
        .await
        .unwrap()
        .conversation_id;

    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = store.clone();
        let sender = members[task % members.len()];
        // Batch sizes 1..=5, so single sends and group commits race each other.
        let batch_size = task % 5 + 1;
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            let mut sent = 0;
            while sent < SENDS_PER_TASK {
                let n = batch_size.min(SENDS_PER_TASK - sent);
                let batch: Vec<NewMessage> = (sent..sent + n)
                    .map(|i| {
                        text(
                            sender,
                            group,
                            &format!("task{task}-{i}"),
                            &format!("task {task} says {i}"),
                        )
                    })
                    .collect();
                for result in store.append_messages(&batch, FRIENDS_ONLY).await {
                    let appended = result.expect("concurrent send");
                    assert!(!appended.duplicate);
                    seqs.push(appended.entry.seq);
                }
                sent += n;
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("task"));
    }
    all.sort_unstable();
    let total = (TASKS * SENDS_PER_TASK) as i64;
    // A new group's stream starts empty, so the sends took exactly 1..=total.
    assert_eq!(all, (1..=total).collect::<Vec<_>>());

    // The stream agrees: every seq exactly once, in order.
    let mut stream = Vec::new();
    let mut after = 0;
    loop {
        let page = store
            .messages_after(owner.id, group, after, 200)
            .await
            .unwrap();
        stream.extend(seqs(&page.entries));
        after = *stream.last().unwrap_or(&after);
        if !page.has_more {
            break;
        }
    }
    assert_eq!(stream, (1..=total).collect::<Vec<_>>());
    assert_eq!(summary(&store, owner.id, group).await.last_seq, total);
}

pub async fn unread_counts_and_read_pointers(store: Arc<dyn Database>) {
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    let eve = user(&store, "eve").await;
    befriend(&store, &ann, &bob).await;
    let direct = store.open_direct(ann.id, bob.id, true).await.unwrap();
    for words in ["one", "two", "three"] {
        send(&store, ann.id, direct, words).await;
    }

    let bobs = summary(&store, bob.id, direct).await;
    assert_eq!((bobs.unread_count, bobs.read_seq, bobs.last_seq), (3, 0, 3));
    // One's own messages count as read.
    let anns = summary(&store, ann.id, direct).await;
    assert_eq!((anns.unread_count, anns.read_seq), (0, 3));

    let mark = store.mark_read(bob.id, direct, 2).await.unwrap();
    assert_eq!((mark.read_seq, mark.advanced), (2, true));
    assert_eq!(sorted(mark.recipients), sorted(vec![ann.id, bob.id]));
    assert_eq!(summary(&store, bob.id, direct).await.unread_count, 1);

    let backwards = store.mark_read(bob.id, direct, 1).await.unwrap();
    assert_eq!((backwards.read_seq, backwards.advanced), (2, false));
    let beyond = store.mark_read(bob.id, direct, 99).await.unwrap();
    assert_eq!((beyond.read_seq, beyond.advanced), (3, true), "clamped");
    let again = store.mark_read(bob.id, direct, 3).await.unwrap();
    assert_eq!((again.read_seq, again.advanced), (3, false));
    assert_eq!(summary(&store, bob.id, direct).await.unread_count, 0);

    send(&store, bob.id, direct, "reply").await;
    assert_eq!(summary(&store, ann.id, direct).await.unread_count, 1);
    assert_eq!(summary(&store, bob.id, direct).await.read_seq, 4);
    assert_err!(
        store.mark_read(eve.id, direct, 1).await,
        StoreError::NotFound
    );

    // System notices, recall entries and recalled texts are not unread messages.
    let group = store
        .create_group(ann.id, "g".into(), vec![bob.id])
        .await
        .unwrap()
        .conversation_id;
    assert_eq!(summary(&store, bob.id, group).await.unread_count, 0);
    let kept = send(&store, ann.id, group, "stays").await;
    let sent = send(&store, ann.id, group, "soon gone").await;
    assert_eq!(summary(&store, bob.id, group).await.unread_count, 2);
    // Recalled while still unread: the text is gone, so it no longer counts.
    store
        .recall_message(ann.id, group, sent.id, WINDOW_OPEN_MS)
        .await
        .unwrap();
    store
        .change_group(ann.id, group, GroupChange::Rename("h".into()))
        .await
        .unwrap();
    let bobs = summary(&store, bob.id, group).await;
    assert_eq!((bobs.unread_count, bobs.read_seq), (1, 0));
    store.mark_read(bob.id, group, kept.seq).await.unwrap();
    assert_eq!(summary(&store, bob.id, group).await.unread_count, 0);
}

/// One transaction holds sends, a recall and a group notice in the order given, with
/// consecutive seqs; a refused recall answers alone and leaves nothing behind.
pub async fn sends_recalls_and_notices_share_one_batch_in_order(store: Arc<dyn Database>) {
    let owner = user(&store, "owner").await;
    let bob = user(&store, "bob").await;
    befriend(&store, &owner, &bob).await;
    let group = store
        .create_group(owner.id, "g".into(), vec![bob.id])
        .await
        .unwrap()
        .conversation_id;
    let first = send(&store, bob.id, group, "first").await;
    let batch = [
        StreamAppend::Send(text(owner.id, group, "m2", "second")),
        StreamAppend::Recall {
            actor: bob.id,
            conversation_id: group,
            target: first.id,
            window_ms: WINDOW_OPEN_MS,
        },
        StreamAppend::Group {
            actor: owner.id,
            conversation_id: group,
            change: GroupChange::Rename("renamed".into()),
        },
        // Already recalled two entries earlier in this very batch.
        StreamAppend::Recall {
            actor: bob.id,
            conversation_id: group,
            target: first.id,
            window_ms: WINDOW_OPEN_MS,
        },
        StreamAppend::Send(text(bob.id, group, "m5", "third")),
    ];
    let results = store.append(&batch, FRIENDS_ONLY).await;
    assert_eq!(results.len(), batch.len());
    assert_err!(&results[3], StoreError::Conflict(_));
    let seqs: Vec<i64> = [0, 1, 2, 4]
        .iter()
        .map(|&i| results[i].as_ref().expect("accepted").entry.seq)
        .collect();
    let s = first.seq;
    assert_eq!(
        seqs,
        vec![s + 1, s + 2, s + 3, s + 4],
        "gapless, in batch order"
    );
    let page = store
        .messages_after(owner.id, group, s - 1, 10)
        .await
        .unwrap();
    assert_eq!(
        page.entries.len(),
        5,
        "nothing of the refused recall was written"
    );
    assert_eq!(
        text_of(&page.entries[0]),
        ("", true),
        "recalled in the batch"
    );
    assert_eq!(page.entries[2].body, EntryBody::Recall { target: first.id });
    assert!(matches!(
        page.entries[3].body,
        EntryBody::Notice(Notice::Renamed { .. })
    ));
    assert_eq!(text_of(&page.entries[4]), ("third", false));
}

pub async fn recall_rules(store: Arc<dyn Database>) {
    let owner = user(&store, "owner").await;
    let admin = user(&store, "admin").await;
    let cat = user(&store, "cat").await;
    let dan = user(&store, "dan").await;
    let eve = user(&store, "eve").await;
    for friend in [&admin, &cat, &dan] {
        befriend(&store, &owner, friend).await;
    }
    let group = store
        .create_group(owner.id, "g".into(), vec![admin.id, cat.id, dan.id])
        .await
        .unwrap()
        .conversation_id;
    let promoted = store
        .change_group(owner.id, group, GroupChange::SetRole(admin.id, Role::Admin))
        .await
        .unwrap();

    // The sender, within the window.
    let oops = send(&store, cat.id, group, "oops").await;
    let recall = store
        .recall_message(cat.id, group, oops.id, WINDOW_OPEN_MS)
        .await
        .unwrap();
    assert_eq!(recall.entry.sender, cat.id);
    assert_eq!(recall.entry.seq, oops.seq + 1);
    assert_eq!(recall.entry.body, EntryBody::Recall { target: oops.id });
    assert_eq!(recall.recipients.len(), 4);
    let page = store
        .messages_after(dan.id, group, oops.seq - 1, 10)
        .await
        .unwrap();
    assert_eq!(text_of(&page.entries[0]), ("", true), "blanked");
    assert_eq!(page.entries[1], recall.entry);
    assert_err!(
        store
            .recall_message(cat.id, group, oops.id, WINDOW_OPEN_MS)
            .await,
        StoreError::Conflict(_)
    );

    // Too late for the sender; never for someone else's plain member.
    let late = send(&store, cat.id, group, "too late").await;
    assert_err!(
        store
            .recall_message(cat.id, group, late.id, WINDOW_CLOSED_MS)
            .await,
        StoreError::RecallWindowExpired
    );
    assert_err!(
        store
            .recall_message(dan.id, group, late.id, WINDOW_OPEN_MS)
            .await,
        StoreError::Forbidden(_)
    );
    // Admins and the owner recall anyone's message at any time.
    store
        .recall_message(admin.id, group, late.id, WINDOW_CLOSED_MS)
        .await
        .unwrap();
    let owners = send(&store, owner.id, group, "owner's").await;
    store
        .recall_message(admin.id, group, owners.id, WINDOW_CLOSED_MS)
        .await
        .unwrap();
    let own_late = send(&store, owner.id, group, "mine").await;
    store
        .recall_message(owner.id, group, own_late.id, WINDOW_CLOSED_MS)
        .await
        .unwrap();

    assert_err!(
        store
            .recall_message(owner.id, group, promoted.entry.id, WINDOW_OPEN_MS)
            .await,
        StoreError::InvalidInput(_)
    );
    assert_err!(
        store
            .recall_message(owner.id, group, MessageId(MISSING), WINDOW_OPEN_MS)
            .await,
        StoreError::NotFound
    );
    let fresh = send(&store, cat.id, group, "fresh").await;
    assert_err!(
        store
            .recall_message(eve.id, group, fresh.id, WINDOW_OPEN_MS)
            .await,
        StoreError::NotFound
    );

    // In a direct conversation nobody is an admin.
    let direct = store.open_direct(owner.id, cat.id, true).await.unwrap();
    let hello = send(&store, cat.id, direct, "hello").await;
    assert_err!(
        store
            .recall_message(owner.id, direct, hello.id, WINDOW_OPEN_MS)
            .await,
        StoreError::Forbidden(_)
    );
    assert_err!(
        store
            .recall_message(cat.id, direct, hello.id, WINDOW_CLOSED_MS)
            .await,
        StoreError::RecallWindowExpired
    );
    // A message is recalled in its own conversation only.
    assert_err!(
        store
            .recall_message(cat.id, direct, fresh.id, WINDOW_OPEN_MS)
            .await,
        StoreError::NotFound
    );
}

pub async fn paging_after_and_before(store: Arc<dyn Database>) {
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    let eve = user(&store, "eve").await;
    befriend(&store, &ann, &bob).await;
    let direct = store.open_direct(ann.id, bob.id, true).await.unwrap();
    for i in 1..=25 {
        send(&store, ann.id, direct, &format!("m{i}")).await;
    }

    let after = |seq, limit| {
        let store = store.clone();
        async move {
            let page = store
                .messages_after(bob.id, direct, seq, limit)
                .await
                .unwrap();
            (seqs(&page.entries), page.has_more)
        }
    };
    let before = |seq, limit| {
        let store = store.clone();
        async move {
            let page = store
                .messages_before(bob.id, direct, seq, limit)
                .await
                .unwrap();
            (seqs(&page.entries), page.has_more)
        }
    };
    let range = |from: i64, to: i64| (from..=to).collect::<Vec<_>>();

    assert_eq!(after(0, 10).await, (range(1, 10), true));
    assert_eq!(after(10, 10).await, (range(11, 20), true));
    assert_eq!(after(20, 10).await, (range(21, 25), false));
    assert_eq!(after(25, 10).await, (vec![], false));
    assert_eq!(after(0, 25).await, (range(1, 25), false));
    assert_eq!(before(26, 10).await, (range(16, 25), true), "oldest first");
    assert_eq!(before(16, 10).await, (range(6, 15), true));
    assert_eq!(before(6, 10).await, (range(1, 5), false));
    assert_eq!(before(1, 10).await, (vec![], false));

    let page = store.messages_after(bob.id, direct, 0, 1).await.unwrap();
    assert_eq!(text_of(&page.entries[0]), ("m1", false));

    assert_err!(
        store.messages_after(eve.id, direct, 0, 10).await,
        StoreError::NotFound
    );
    assert_err!(
        store.messages_before(eve.id, direct, 26, 10).await,
        StoreError::NotFound
    );
    assert_err!(
        store
            .messages_after(ann.id, ConversationId(MISSING), 0, 10)
            .await,
        StoreError::NotFound
    );
}

pub async fn utf8_round_trips(store: Arc<dyn Database>) {
    // Unicode case folding decides username uniqueness, not just ASCII.
    let name = unique("Émile");
    let emile = store.create_user(new_user(&name)).await.unwrap();
    assert_err!(
        store.create_user(new_user(&name.to_lowercase())).await,
        StoreError::UsernameTaken
    );
    assert_eq!(
        store.user_by_username(&name.to_lowercase()).await.unwrap(),
        emile
    );

    let zoe = user(&store, "zoë").await;
    let request = store
        .create_friend_request(emile.id, zoe.id, Some("salut 👋 ça va?".into()))
        .await
        .unwrap();
    assert_eq!(request.greeting.as_deref(), Some("salut 👋 ça va?"));
    store
        .answer_friend_request(zoe.id, request.id, true)
        .await
        .unwrap();
    store
        .update_profile(
            zoe.id,
            ProfileUpdate {
                nickname: Some("Zoë 🌸".into()),
                ..ProfileUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(store.user(zoe.id).await.unwrap().nickname, "Zoë 🌸");

    let texts = [
        "héllo wörld",
        "你好，世界",
        "👨‍👩‍👧‍👦 family, 🏳️‍🌈 flag",
        "🦀🚀✨",
        "مرحبا بالعالم",
        "e\u{301} combining",
        "tab\tnew\nline \"quotes\" 'single' \\backslash",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 outside the BMP",
    ];
    let group = store
        .create_group(emile.id, "Équipe 🎉".into(), vec![zoe.id])
        .await
        .unwrap()
        .conversation_id;
    for words in texts {
        send(&store, zoe.id, group, words).await;
    }
    let page = store.messages_after(emile.id, group, 0, 100).await.unwrap();
    let stored: Vec<&str> = page.entries.iter().map(|m| text_of(m).0).collect();
    assert_eq!(stored, texts);
    let listed = summary(&store, emile.id, group).await;
    assert_eq!(listed.name.as_deref(), Some("Équipe 🎉"));
    let last = listed.last_entry.expect("last message");
    assert_eq!(text_of(&last).0, texts[texts.len() - 1]);
}

pub async fn conversation_list_and_detail(store: Arc<dyn Database>) {
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    let cal = user(&store, "cal").await;
    let eve = user(&store, "eve").await;
    befriend(&store, &ann, &bob).await;
    befriend(&store, &ann, &cal).await;

    let direct = store.open_direct(ann.id, bob.id, true).await.unwrap();
    let empty = summary(&store, ann.id, direct).await;
    assert_eq!(empty.kind, ConversationKind::Direct);
    assert_eq!(empty.name, None);
    assert_eq!(empty.peer.as_ref(), Some(&bob));
    assert_eq!(empty.my_role, Role::Member);
    assert_eq!(empty.member_count, 2);
    assert_eq!(
        (empty.last_seq, empty.read_seq, empty.unread_count),
        (0, 0, 0)
    );
    assert_eq!(empty.last_entry, None);

    let group = store
        .create_group(ann.id, "trio".into(), vec![bob.id, cal.id])
        .await
        .unwrap()
        .conversation_id;
    let hi = send(&store, bob.id, direct, "hi ann").await;

    let listed = store.conversations(ann.id).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .windows(2)
            .all(|w| w[0].last_activity_ms >= w[1].last_activity_ms),
        "newest activity first"
    );
    let direct_line = listed.iter().find(|c| c.id == direct).expect("direct");
    assert_eq!(direct_line.last_entry.as_ref(), Some(&hi));
    assert_eq!(direct_line.unread_count, 1);
    assert_eq!(direct_line.peer.as_ref(), Some(&bob));
    let group_line = listed.iter().find(|c| c.id == group).expect("group");
    assert_eq!(group_line.kind, ConversationKind::Group);
    assert_eq!(group_line.name.as_deref(), Some("trio"));
    assert_eq!(group_line.peer, None);
    assert_eq!(group_line.my_role, Role::Owner);
    assert_eq!(group_line.member_count, 3);
    assert_eq!(
        group_line.last_entry, None,
        "nothing is written on creation"
    );
    assert_eq!((group_line.last_seq, group_line.read_seq), (0, 0));
    assert!(direct_line.last_activity_ms >= group_line.last_activity_ms);

    let cals: Vec<ConversationId> = store
        .conversations(cal.id)
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(cals, vec![group]);
    assert!(store.conversations(eve.id).await.unwrap().is_empty());

    let detail = store.conversation(bob.id, group).await.unwrap();
    assert_eq!(detail.conversation.my_role, Role::Member);
    let mut roles: Vec<(UserId, Role, i64)> = detail
        .members
        .iter()
        .map(|m| (m.user.id, m.role, m.read_seq))
        .collect();
    roles.sort();
    let mut expected = vec![
        (ann.id, Role::Owner, 0),
        (bob.id, Role::Member, 0),
        (cal.id, Role::Member, 0),
    ];
    expected.sort();
    assert_eq!(roles, expected);

    assert!(store.is_member(cal.id, group).await.unwrap());
    let mut members = vec![ann.id, bob.id, cal.id];
    members.sort();
    assert_eq!(store.member_ids(cal.id, group).await.unwrap(), members);
    assert_err!(store.member_ids(eve.id, group).await, StoreError::NotFound);
    assert!(!store.is_member(cal.id, direct).await.unwrap());
    assert!(!store
        .is_member(ann.id, ConversationId(MISSING))
        .await
        .unwrap());
    assert_err!(
        store.conversation(eve.id, group).await,
        StoreError::NotFound
    );
    assert_err!(
        store.conversation(ann.id, ConversationId(MISSING)).await,
        StoreError::NotFound
    );
}

pub async fn data_survives_reopen(backend: &dyn Backend) {
    let store = backend.open().await;
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    befriend(&store, &ann, &bob).await;
    let direct = store.open_direct(ann.id, bob.id, true).await.unwrap();
    let mut sent = Vec::new();
    for words in ["one", "two 🦀", "three"] {
        sent.push(send(&store, ann.id, direct, words).await);
    }
    store.mark_read(bob.id, direct, 2).await.unwrap();
    let token = unique("token").into_bytes();
    let session = store
        .create_session(NewSession {
            user_id: ann.id,
            token_hash: token.clone(),
            device_name: "phone".into(),
            expires_at_ms: i64::MAX,
        })
        .await
        .unwrap();
    drop(store);

    let store = backend.open().await;
    assert_eq!(store.user_by_username(&ann.username).await.unwrap(), ann);
    assert_eq!(store.friend_ids(ann.id).await.unwrap(), vec![bob.id]);
    assert_eq!(
        store.session_by_token_hash(&token, 0).await.unwrap().id,
        session
    );
    let page = store.messages_after(bob.id, direct, 0, 10).await.unwrap();
    assert_eq!(page.entries, sent);
    let bobs = summary(&store, bob.id, direct).await;
    assert_eq!((bobs.read_seq, bobs.unread_count, bobs.last_seq), (2, 1, 3));
    // The seq counter survived too.
    assert_eq!(send(&store, bob.id, direct, "four").await.seq, 4);
}

/// Rows written before the store had an encoding of its own (when a notice was the
/// protocol's `SystemNotice` serialized) still read, on every backend: each statement below
/// writes a row byte for byte as that code did. `stored.rs` pins the same bytes for
/// writing; this pins them for reading, through each backend's column types.
pub async fn old_rows_still_read(backend: &dyn Backend) {
    let store = backend.open().await;
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    let cat = user(&store, "cat").await;
    befriend(&store, &ann, &bob).await;
    befriend(&store, &ann, &cat).await;
    let group = store
        .create_group(ann.id, "Old".into(), vec![bob.id, cat.id])
        .await
        .expect("group")
        .conversation_id;
    let (a, b, c) = (ann.id.0, bob.id.0, cat.id.0);
    let insert = |seq: i64, sender: i64, client: &str, kind: &str, body: &str, recalled: bool| {
        format!(
            "INSERT INTO messages \
             (conversation_id, seq, sender_id, client_msg_id, kind, body, recalled, created_at_ms) \
             VALUES ({}, {seq}, {sender}, {client}, '{kind}', '{body}', {}, {})",
            group.0,
            if recalled { "TRUE" } else { "FALSE" },
            1_000 + seq
        )
    };
    backend
        .execute(&insert(1, b, "'old-1'", "text", "hello from before", false))
        .await;
    backend
        .execute(&insert(2, b, "'old-2'", "text", "", true))
        .await;
    let oops = store
        .messages_after(ann.id, group, 1, 1)
        .await
        .expect("the recalled row")
        .entries[0]
        .id;
    let recall = format!(r#"{{"target_id":{}}}"#, oops.0);
    let notices = [
        (
            a,
            format!(r#"{{"event":"members_added","by":{a},"user_ids":[{b},{c}]}}"#),
        ),
        (
            a,
            format!(r#"{{"event":"member_removed","by":{a},"user_id":{c}}}"#),
        ),
        (b, format!(r#"{{"event":"member_left","user_id":{b}}}"#)),
        (
            a,
            format!(r#"{{"event":"renamed","by":{a},"name":"Old times"}}"#),
        ),
        (
            a,
            format!(r#"{{"event":"role_changed","by":{a},"user_id":{b},"role":"admin"}}"#),
        ),
        (
            a,
            format!(r#"{{"event":"ownership_transferred","from":{a},"to":{b}}}"#),
        ),
        (a, format!(r#"{{"event":"disbanded","by":{a}}}"#)),
    ];
    backend
        .execute(&insert(3, b, "NULL", "recall", &recall, false))
        .await;
    for (at, (sender, body)) in notices.iter().enumerate() {
        let seq = 4 + at as i64;
        backend
            .execute(&insert(seq, *sender, "NULL", "system", body, false))
            .await;
    }
    let last_seq = 3 + notices.len() as i64;
    backend
        .execute(&format!(
            "UPDATE conversations SET last_seq = {last_seq} WHERE id = {}",
            group.0
        ))
        .await;

    let page = store
        .messages_after(ann.id, group, 0, 50)
        .await
        .expect("old rows read");
    let bodies: Vec<EntryBody> = page.entries.iter().map(|e| e.body.clone()).collect();
    assert_eq!(
        bodies,
        vec![
            EntryBody::Text {
                text: "hello from before".into(),
                recalled: false
            },
            EntryBody::Text {
                text: String::new(),
                recalled: true
            },
            EntryBody::Recall { target: oops },
            EntryBody::Notice(Notice::MembersAdded {
                by: ann.id,
                user_ids: vec![bob.id, cat.id]
            }),
            EntryBody::Notice(Notice::MemberRemoved {
                by: ann.id,
                user_id: cat.id
            }),
            EntryBody::Notice(Notice::MemberLeft { user_id: bob.id }),
            EntryBody::Notice(Notice::Renamed {
                by: ann.id,
                name: "Old times".into()
            }),
            EntryBody::Notice(Notice::RoleChanged {
                by: ann.id,
                user_id: bob.id,
                role: Role::Admin
            }),
            EntryBody::Notice(Notice::OwnershipTransferred {
                from: ann.id,
                to: bob.id
            }),
            EntryBody::Notice(Notice::Disbanded { by: ann.id }),
        ]
    );
    let first = &page.entries[0];
    assert_eq!(
        (first.seq, first.sender, first.client_msg_id.as_deref()),
        (1, bob.id, Some("old-1"))
    );
    assert_eq!(first.created_at_ms, 1_001);
    let recall_entry = &page.entries[2];
    assert_eq!(
        (recall_entry.sender, recall_entry.client_msg_id.as_deref()),
        (bob.id, None)
    );
    assert_eq!(seqs(&page.entries), (1..=last_seq).collect::<Vec<_>>());
    // The conversation list decodes its last entry from the same rows.
    assert_eq!(
        summary(&store, ann.id, group).await.last_entry.as_ref(),
        page.entries.last()
    );
    // New entries follow the old ones.
    assert_eq!(
        send(&store, ann.id, group, "and now").await.seq,
        last_seq + 1
    );
}

/// Two stores on one database, as two server processes would have: batches that span two
/// groups, sent through both stores at once and naming the groups in either order, still
/// get gapless seqs in each group, and a resend through the other store is a duplicate.
pub async fn seqs_are_gapless_across_stores(backend: &dyn Backend) {
    const TASKS: usize = 8;
    const BATCHES_PER_TASK: usize = 15;
    let stores = [backend.open().await, backend.open().await];
    let owner = user(&stores[0], "owner").await;
    let friend = user(&stores[0], "friend").await;
    befriend(&stores[0], &owner, &friend).await;
    let mut groups = Vec::new();
    for name in ["left", "right"] {
        let created = stores[0]
            .create_group(owner.id, name.into(), vec![friend.id])
            .await
            .unwrap();
        groups.push(created.conversation_id);
    }

    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = stores[task % 2].clone();
        let sender = [owner.id, friend.id][task / 2 % 2];
        // Half the tasks name the groups in the opposite order.
        let order = if task % 4 < 2 {
            [groups[0], groups[1]]
        } else {
            [groups[1], groups[0]]
        };
        tasks.push(tokio::spawn(async move {
            let mut sent: Vec<Entry> = Vec::new();
            for batch in 0..BATCHES_PER_TASK {
                let sends: Vec<NewMessage> = order
                    .iter()
                    .enumerate()
                    .map(|(i, &group)| {
                        text(sender, group, &format!("t{task}-b{batch}-{i}"), "hello")
                    })
                    .collect();
                for result in store.append_messages(&sends, FRIENDS_ONLY).await {
                    let appended = result.expect("concurrent send");
                    assert!(!appended.duplicate);
                    sent.push(appended.entry);
                }
            }
            sent
        }));
    }
    let mut sent = Vec::new();
    for task in tasks {
        sent.extend(task.await.expect("task"));
    }

    let per_group = (TASKS * BATCHES_PER_TASK) as i64;
    for &group in &groups {
        let mut seqs: Vec<i64> = sent
            .iter()
            .filter(|m| m.conversation_id == group)
            .map(|m| m.seq)
            .collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=per_group).collect::<Vec<_>>());
        let page = stores[1]
            .messages_after(owner.id, group, 0, per_group as u32 + 1)
            .await
            .unwrap();
        assert_eq!(
            self::seqs(&page.entries),
            (1..=per_group).collect::<Vec<_>>()
        );
    }

    // A resend through the other store finds the original.
    let original = &sent[0];
    let resend = text(
        original.sender,
        original.conversation_id,
        original.client_msg_id.as_deref().unwrap(),
        "hello",
    );
    for store in &stores {
        let appended = store
            .append_messages(std::slice::from_ref(&resend), FRIENDS_ONLY)
            .await
            .remove(0)
            .unwrap();
        assert!(appended.duplicate);
        assert_eq!(&appended.entry, original);
    }
}

// ---- seeding in bulk (the admin API) ----

/// More rows than one SQLite statement can carry (32766 parameters / 5 per row), so the
/// seeding inserts must be split there.
const SEED_USERS_MANY: usize = 7_000;

/// A 32-byte token hash (the width of the column) no other test uses.
fn token_hash() -> Vec<u8> {
    let mut hash = unique("t").into_bytes();
    assert!(hash.len() <= 32, "token too long: {hash:?}");
    hash.resize(32, b'.');
    hash
}

fn seed(username: &str, expires_at_ms: i64) -> SeedUser {
    SeedUser {
        username: username.to_owned(),
        nickname: username.to_owned(),
        token_hash: token_hash(),
        device_name: "bench".into(),
        session_expires_at_ms: expires_at_ms,
    }
}

async fn seed_users(store: &Arc<dyn Database>, prefix: &str, n: usize) -> Vec<UserRecord> {
    let seeds = (0..n).map(|_| seed(&unique(prefix), i64::MAX)).collect();
    store
        .seed_users("$argon2id$v=19$shared".into(), seeds)
        .await
        .expect("seed users")
}

pub async fn seeded_users_are_logged_in_and_all_or_nothing(store: Arc<dyn Database>) {
    let now_ms = 1_700_000_000_000;
    let hash = "$argon2id$v=19$shared-by-the-batch";
    let seeds: Vec<SeedUser> = (0..SEED_USERS_MANY)
        .map(|_| seed(&unique("Seeded"), now_ms + 1_000))
        .collect();
    let profiles = store
        .seed_users(hash.into(), seeds.clone())
        .await
        .expect("seed users");

    // In the order given, each with its own id, and each logged in with its own token.
    assert_eq!(profiles.len(), SEED_USERS_MANY);
    let mut ids: Vec<UserId> = profiles.iter().map(|p| p.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), SEED_USERS_MANY);
    for at in [0, 1, SEED_USERS_MANY / 2, SEED_USERS_MANY - 1] {
        let (seed, profile) = (&seeds[at], &profiles[at]);
        assert_eq!(profile.username, seed.username);
        assert_eq!(&store.user(profile.id).await.unwrap(), profile);
        let session = store
            .session_by_token_hash(&seed.token_hash, now_ms)
            .await
            .expect("the seeded session is live");
        assert_eq!(session.user_id, profile.id);
        assert_eq!(session.expires_at_ms, now_ms + 1_000);
        let credentials = store
            .credentials(&seed.username.to_uppercase())
            .await
            .unwrap();
        assert_eq!(credentials.user_id, profile.id);
        assert_eq!(credentials.password_hash, hash);
    }

    // One name taken in another letter case: nobody of the batch is created.
    let fresh = seed(&unique("fresh"), now_ms + 1_000);
    let taken = seed(&seeds[3].username.to_lowercase(), now_ms + 1_000);
    let result = store
        .seed_users(hash.into(), vec![fresh.clone(), taken.clone()])
        .await;
    match result {
        Err(StoreError::UsernamesTaken(names)) => assert_eq!(names, vec![taken.username]),
        other => panic!("expected UsernamesTaken, got {other:?}"),
    }
    assert_err!(
        store.user_by_username(&fresh.username).await,
        StoreError::NotFound
    );
    assert_err!(
        store.session_by_token_hash(&fresh.token_hash, now_ms).await,
        StoreError::NotFound
    );

    // A name repeated within the batch, in another case: refused, nothing created.
    let name = unique("twice");
    let result = store
        .seed_users(
            hash.into(),
            vec![seed(&name, i64::MAX), seed(&name.to_uppercase(), i64::MAX)],
        )
        .await;
    match result {
        Err(StoreError::UsernamesTaken(names)) => assert_eq!(names, vec![name.to_uppercase()]),
        other => panic!("expected UsernamesTaken, got {other:?}"),
    }
    assert_err!(store.user_by_username(&name).await, StoreError::NotFound);

    // An empty batch is no error.
    assert!(store
        .seed_users(hash.into(), vec![])
        .await
        .unwrap()
        .is_empty());
}

pub async fn seeded_friendships_open_the_direct_conversation(store: Arc<dyn Database>) {
    let users = seed_users(&store, "pal", 5).await;
    let [a, b, c, d, e] = [0, 1, 2, 3, 4].map(|i| users[i].id);
    // a and c are friends already, with a direct conversation holding a message.
    befriend(&store, &users[0], &users[2]).await;
    let existing = store.open_direct(a, c, true).await.unwrap();
    send(&store, a, existing, "before").await;

    let direct = store
        .seed_friendships(vec![[a, b], [c, a], [b, a], [d, c]])
        .await
        .expect("seed friendships");
    assert_eq!(direct.len(), 4);
    assert_eq!(direct[0], direct[2], "either order is the same friendship");
    assert_eq!(direct[1], existing, "the existing conversation is reused");
    assert_ne!(direct[0], direct[3]);
    // The same conversations open_direct finds, and friends may chat in them.
    assert_eq!(store.open_direct(b, a, true).await.unwrap(), direct[0]);
    assert_eq!(store.open_direct(c, d, true).await.unwrap(), direct[3]);
    assert_eq!(
        sorted(store.friend_ids(a).await.unwrap()),
        sorted(vec![b, c])
    );
    assert_eq!(store.friend_ids(d).await.unwrap(), vec![c]);
    let hello = send(&store, d, direct[3], "hello").await;
    assert_eq!(hello.seq, 1);
    assert_eq!(summary(&store, c, direct[3]).await.member_count, 2);
    assert_eq!(summary(&store, c, existing).await.last_seq, 1);

    // Seeding again changes nothing.
    let again = store.seed_friendships(vec![[a, b]]).await.unwrap();
    assert_eq!(again, vec![direct[0]]);

    // A pair of one user, or an unknown id anywhere in the batch: nothing is written.
    assert_err!(
        store.seed_friendships(vec![[d, e], [e, e]]).await,
        StoreError::InvalidInput(_)
    );
    assert_err!(
        store
            .seed_friendships(vec![[d, e], [e, UserId(MISSING)]])
            .await,
        StoreError::InvalidInput(_)
    );
    assert!(store.friend_ids(e).await.unwrap().is_empty());
    assert!(store.conversations(e).await.unwrap().is_empty());

    // Many pairs in one call: every pair of 111 users, 6105 pairs, more than one SQLite
    // statement carries.
    let crowd = seed_users(&store, "crowd", 111).await;
    let mut pairs = Vec::new();
    for (i, x) in crowd.iter().enumerate() {
        for y in &crowd[i + 1..] {
            pairs.push([x.id, y.id]);
        }
    }
    let direct = store.seed_friendships(pairs.clone()).await.unwrap();
    assert_eq!(direct.len(), pairs.len());
    let mut distinct = direct.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), pairs.len());
    assert_eq!(store.friend_ids(crowd[0].id).await.unwrap().len(), 110);
    let last = pairs.len() - 1;
    let [x, y] = pairs[last];
    assert_eq!(store.open_direct(y, x, true).await.unwrap(), direct[last]);
}

pub async fn seeded_groups_need_no_friendship(store: Arc<dyn Database>) {
    let users = seed_users(&store, "crew", 4).await;
    let owner = users[0].id;
    let members = vec![users[1].id, users[2].id, users[3].id, users[1].id, owner];
    let created = store
        .seed_group(owner, "strangers".into(), members)
        .await
        .expect("seed group");
    assert_eq!(
        created.members,
        sorted(users.iter().map(|u| u.id).collect())
    );
    let owner_view = summary(&store, owner, created.conversation_id).await;
    assert_eq!(owner_view.kind, ConversationKind::Group);
    assert_eq!(owner_view.my_role, Role::Owner);
    assert_eq!(owner_view.last_seq, 0);
    assert_eq!(
        summary(&store, users[3].id, created.conversation_id)
            .await
            .my_role,
        Role::Member
    );
    // The summary alone is the conversation's summary; outsiders see nothing.
    assert_eq!(
        store
            .conversation_summary(users[3].id, created.conversation_id)
            .await
            .unwrap(),
        summary(&store, users[3].id, created.conversation_id).await
    );
    let outsider = seed_users(&store, "outsider", 1).await[0].id;
    assert_err!(
        store
            .conversation_summary(outsider, created.conversation_id)
            .await,
        StoreError::NotFound
    );
    // A member who is nobody's friend may write, and everyone hears it.
    let appended = send_with(
        &store,
        users[3].id,
        created.conversation_id,
        "hi",
        FRIENDS_ONLY,
    )
    .await
    .expect("send");
    assert_eq!(appended.entry.seq, 1);
    assert_eq!(appended.recipients, created.members);

    // An unknown member: no group is created.
    let lonely = seed_users(&store, "lonely", 1).await[0].id;
    assert_err!(
        store
            .seed_group(lonely, "ghosts".into(), vec![UserId(MISSING)])
            .await,
        StoreError::InvalidInput(_)
    );
    assert!(store.conversations(lonely).await.unwrap().is_empty());
}

/// An upload record of `size` bytes made by `owner` at `created_at_ms`, with a fresh id.
fn upload_of(owner: UserId, blob_key: &str, size: i64, created_at_ms: i64) -> UploadRecord {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let salt = unique("u");
    let half = |n: u8| {
        let mut hasher = DefaultHasher::new();
        (&salt, n).hash(&mut hasher);
        hasher.finish()
    };
    let id = format!("{:016x}{:016x}", half(0), half(1));
    UploadRecord {
        id: UploadId(id),
        owner,
        blob_key: blob_key.to_owned(),
        name: "photo.png".into(),
        size,
        mime: "image/png".into(),
        kind: UploadKind::Image,
        width: Some(4),
        height: Some(3),
        thumbnail: true,
        created_at_ms,
    }
}

fn attachment_of(upload: &UploadRecord) -> AttachmentRecord {
    AttachmentRecord {
        upload_id: upload.id.clone(),
        kind: AttachmentKind::Image,
        name: upload.name.clone(),
        size: upload.size,
        mime: upload.mime.clone(),
        width: upload.width,
        height: upload.height,
        duration_ms: None,
        thumbnail: upload.thumbnail,
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Uploads count against their owner's quota; a media message reads back with its
/// attachment through the stream; members may read the upload, strangers and ex-members
/// may not; a recall takes it away from everyone but the uploader.
pub async fn uploads_quota_and_readers(store: Arc<dyn Database>) {
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    let cal = user(&store, "cal").await;
    let key = unique("blob");
    let first = upload_of(ann.id, &key, 600, now());
    store
        .create_upload(first.clone(), 1000)
        .await
        .expect("first upload");
    assert_eq!(store.upload_bytes_used(ann.id).await.expect("used"), 600);
    // The same bytes again (same blob) still count: 1200 > 1000.
    let over = upload_of(ann.id, &key, 600, now());
    assert!(matches!(
        store.create_upload(over.clone(), 1000).await,
        Err(StoreError::QuotaExceeded)
    ));
    assert!(matches!(
        store.own_upload(ann.id, &over.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store.own_upload(ann.id, &first.id).await.expect("own"),
        first
    );
    assert!(matches!(
        store.own_upload(bob.id, &first.id).await,
        Err(StoreError::NotFound)
    ));

    let group = store
        .seed_group(ann.id, "g".into(), vec![bob.id])
        .await
        .expect("group")
        .conversation_id;
    // Before any message carries it, only the owner reads it.
    assert!(store.readable_upload(ann.id, &first.id).await.is_ok());
    assert!(matches!(
        store.readable_upload(bob.id, &first.id).await,
        Err(StoreError::NotFound)
    ));

    let mut send = text(ann.id, group, &unique("c"), "look");
    send.attachment = Some(Box::new(attachment_of(&first)));
    let mut results = store.append_messages(&[send.clone()], FRIENDS_ONLY).await;
    let appended = results.remove(0).expect("media send");
    let expected = EntryBody::Media {
        caption: "look".into(),
        attachment: Some(Box::new(attachment_of(&first))),
        recalled: false,
    };
    assert_eq!(appended.entry.body, expected);
    let page = store
        .messages_after(bob.id, group, 0, 10)
        .await
        .expect("page");
    assert_eq!(page.entries.last().expect("entry").body, expected);
    // An idempotent resend returns the same entry and writes nothing more.
    let again = store
        .append_messages(&[send], FRIENDS_ONLY)
        .await
        .remove(0)
        .expect("resend");
    assert!(again.duplicate);
    assert_eq!(again.entry.seq, appended.entry.seq);
    // Media counts as unread like text.
    assert_eq!(summary(&store, bob.id, group).await.unread_count, 1);

    assert_eq!(
        store
            .readable_upload(bob.id, &first.id)
            .await
            .expect("member"),
        first
    );
    assert!(matches!(
        store.readable_upload(cal.id, &first.id).await,
        Err(StoreError::NotFound)
    ));
    let missing = upload_of(ann.id, &key, 1, now());
    assert!(matches!(
        store.readable_upload(ann.id, &missing.id).await,
        Err(StoreError::NotFound)
    ));

    // Bob leaves: he can no longer read it.
    store
        .change_group(bob.id, group, GroupChange::Leave)
        .await
        .expect("leave");
    assert!(matches!(
        store.readable_upload(bob.id, &first.id).await,
        Err(StoreError::NotFound)
    ));

    // A recall blanks the entry and takes the upload from the members.
    befriend(&store, &ann, &cal).await;
    store
        .change_group(ann.id, group, GroupChange::AddMembers(vec![cal.id]))
        .await
        .expect("add cal");
    assert!(store.readable_upload(cal.id, &first.id).await.is_ok());
    store
        .recall_message(ann.id, group, appended.entry.id, 60_000)
        .await
        .expect("recall media");
    assert!(matches!(
        store.readable_upload(cal.id, &first.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(store.readable_upload(ann.id, &first.id).await.is_ok());
    let page = store
        .messages_after(ann.id, group, 0, 10)
        .await
        .expect("page");
    let recalled = page
        .entries
        .iter()
        .find(|entry| entry.id == appended.entry.id)
        .expect("the recalled entry");
    assert_eq!(
        recalled.body,
        EntryBody::Media {
            caption: String::new(),
            attachment: None,
            recalled: true
        }
    );
    // The group avatar is a notice and a column.
    let notice = store
        .change_group(
            ann.id,
            group,
            GroupChange::SetAvatar("/api/v1/avatars/ab".into()),
        )
        .await
        .expect("avatar");
    assert!(matches!(
        notice.entry.body,
        EntryBody::Notice(Notice::AvatarChanged { .. })
    ));
    assert_eq!(
        summary(&store, ann.id, group).await.avatar_url.as_deref(),
        Some("/api/v1/avatars/ab")
    );
}

/// Uploads older than the cut-off that no message uses are deleted; the blob keys no
/// upload uses any more are returned; an upload a message uses stays.
pub async fn unused_uploads_are_cleaned_up(store: Arc<dyn Database>) {
    let ann = user(&store, "ann").await;
    let bob = user(&store, "bob").await;
    befriend(&store, &ann, &bob).await;
    let direct = store
        .open_direct(ann.id, bob.id, true)
        .await
        .expect("direct");
    // Ten days ago: older than anything another test running beside this one makes.
    let old = now() - 10 * 86_400_000;
    let shared_key = unique("shared");
    let lone_key = unique("lone");
    let used = upload_of(ann.id, &shared_key, 10, old);
    let unused_same_bytes = upload_of(ann.id, &shared_key, 10, old);
    let unused_alone = upload_of(bob.id, &lone_key, 10, old);
    let fresh = upload_of(bob.id, &lone_key, 10, old + 1);
    for upload in [&used, &unused_same_bytes, &unused_alone, &fresh] {
        store
            .create_upload(upload.clone(), i64::MAX)
            .await
            .expect("upload");
    }
    let mut send = text(ann.id, direct, &unique("c"), "");
    send.attachment = Some(Box::new(attachment_of(&used)));
    store
        .append_messages(&[send], FRIENDS_ONLY)
        .await
        .remove(0)
        .expect("send");

    // In rounds, as the server does, until nothing is left.
    let mut deleted = 0;
    let mut freed: Vec<String> = Vec::new();
    loop {
        let (n, keys) = store
            .delete_unused_uploads(old + 1, 1000)
            .await
            .expect("clean up");
        deleted += n;
        freed.extend(keys);
        if n == 0 {
            break;
        }
    }
    assert_eq!(deleted, 2);
    assert!(store.own_upload(ann.id, &used.id).await.is_ok());
    assert!(store.own_upload(bob.id, &fresh.id).await.is_ok());
    for gone in [&unused_same_bytes, &unused_alone] {
        assert!(matches!(
            store.own_upload(gone.owner, &gone.id).await,
            Err(StoreError::NotFound)
        ));
    }
    // The shared blob is still used by `used`, the lone one by `fresh`.
    assert!(!freed.contains(&shared_key), "{freed:?}");
    assert!(!freed.contains(&lone_key), "{freed:?}");
    assert_eq!(store.upload_bytes_used(bob.id).await.expect("used"), 10);
}
