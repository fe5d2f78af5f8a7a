//! SQLite backend of [`Store`] (stub while the real implementation is written).

use async_trait::async_trait;
use banter_protocol::model::{ConversationDetail, ConversationSummary, FriendRequest, UserProfile};
use banter_protocol::{ConversationId, FriendRequestId, MessageId, UserId};

use crate::{
    Appended, Credentials, GroupChange, NewMessage, NewSession, NewUser, OpenOptions, Page,
    ProfileUpdate, ReadMark, SendPolicy, Session, SessionId, Store, StoreResult,
};

/// The SQLite store.
pub struct SqliteStore {
    _private: (),
}

impl SqliteStore {
    pub async fn open(_url: &str, _options: &OpenOptions) -> StoreResult<SqliteStore> {
        todo!()
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_user(&self, _user: NewUser) -> StoreResult<UserProfile> {
        todo!()
    }
    async fn user(&self, _id: UserId) -> StoreResult<UserProfile> {
        todo!()
    }
    async fn user_by_username(&self, _username: &str) -> StoreResult<UserProfile> {
        todo!()
    }
    async fn credentials(&self, _username: &str) -> StoreResult<Credentials> {
        todo!()
    }
    async fn password_hash(&self, _id: UserId) -> StoreResult<String> {
        todo!()
    }
    async fn update_profile(
        &self,
        _id: UserId,
        _update: ProfileUpdate,
    ) -> StoreResult<UserProfile> {
        todo!()
    }
    async fn change_password(
        &self,
        _id: UserId,
        _password_hash: String,
        _keep: SessionId,
    ) -> StoreResult<Vec<SessionId>> {
        todo!()
    }
    async fn create_session(&self, _session: NewSession) -> StoreResult<SessionId> {
        todo!()
    }
    async fn session_by_token_hash(
        &self,
        _token_hash: &[u8],
        _now_ms: i64,
    ) -> StoreResult<Session> {
        todo!()
    }
    async fn delete_session(&self, _id: SessionId) -> StoreResult<()> {
        todo!()
    }
    async fn create_friend_request(
        &self,
        _from: UserId,
        _to: UserId,
        _greeting: Option<String>,
    ) -> StoreResult<FriendRequest> {
        todo!()
    }
    async fn friend_requests(
        &self,
        _user: UserId,
    ) -> StoreResult<(Vec<FriendRequest>, Vec<FriendRequest>)> {
        todo!()
    }
    async fn answer_friend_request(
        &self,
        _recipient: UserId,
        _id: FriendRequestId,
        _accept: bool,
    ) -> StoreResult<FriendRequest> {
        todo!()
    }
    async fn cancel_friend_request(
        &self,
        _sender: UserId,
        _id: FriendRequestId,
    ) -> StoreResult<FriendRequest> {
        todo!()
    }
    async fn friends(&self, _user: UserId) -> StoreResult<Vec<(UserProfile, i64)>> {
        todo!()
    }
    async fn friend_ids(&self, _user: UserId) -> StoreResult<Vec<UserId>> {
        todo!()
    }
    async fn remove_friend(&self, _user: UserId, _friend: UserId) -> StoreResult<()> {
        todo!()
    }
    async fn block(&self, _user: UserId, _blocked: UserId) -> StoreResult<()> {
        todo!()
    }
    async fn unblock(&self, _user: UserId, _blocked: UserId) -> StoreResult<()> {
        todo!()
    }
    async fn blocked_users(&self, _user: UserId) -> StoreResult<Vec<UserProfile>> {
        todo!()
    }
    async fn open_direct(
        &self,
        _user: UserId,
        _peer: UserId,
        _require_friendship: bool,
    ) -> StoreResult<ConversationId> {
        todo!()
    }
    async fn create_group(
        &self,
        _owner: UserId,
        _name: String,
        _members: Vec<UserId>,
    ) -> StoreResult<Appended> {
        todo!()
    }
    async fn conversations(&self, _user: UserId) -> StoreResult<Vec<ConversationSummary>> {
        todo!()
    }
    async fn conversation(
        &self,
        _user: UserId,
        _id: ConversationId,
    ) -> StoreResult<ConversationDetail> {
        todo!()
    }
    async fn is_member(&self, _user: UserId, _id: ConversationId) -> StoreResult<bool> {
        todo!()
    }
    async fn change_group(
        &self,
        _actor: UserId,
        _id: ConversationId,
        _change: GroupChange,
    ) -> StoreResult<Appended> {
        todo!()
    }
    async fn append_messages(
        &self,
        _sends: &[NewMessage],
        _policy: SendPolicy,
    ) -> Vec<StoreResult<Appended>> {
        todo!()
    }
    async fn recall_message(
        &self,
        _actor: UserId,
        _id: ConversationId,
        _target: MessageId,
        _window_ms: i64,
    ) -> StoreResult<Appended> {
        todo!()
    }
    async fn messages_after(
        &self,
        _user: UserId,
        _id: ConversationId,
        _after_seq: i64,
        _limit: u32,
    ) -> StoreResult<Page> {
        todo!()
    }
    async fn messages_before(
        &self,
        _user: UserId,
        _id: ConversationId,
        _before_seq: i64,
        _limit: u32,
    ) -> StoreResult<Page> {
        todo!()
    }
    async fn mark_read(
        &self,
        _user: UserId,
        _id: ConversationId,
        _seq: i64,
    ) -> StoreResult<ReadMark> {
        todo!()
    }
}
