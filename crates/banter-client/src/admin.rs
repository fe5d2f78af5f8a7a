//! [`AdminClient`]: the admin API under `/api/v1/admin`, for load generators and test
//! setups that seed users, friendships and groups in bulk.
//!
//! The server enables it only when configured with an `admin_token`; the client sends that
//! token as its bearer token. Each call is one request, and the server refuses lists longer
//! than [`ADMIN_BATCH_MAX`] with `invalid_input`: callers seeding more split their lists
//! (the client does not, so that one call is always one all-or-nothing transaction).

use crate::client::api_error;
use crate::error::{ClientError, Result};
use banter_protocol::api::{
    AdminCreateFriendshipsRequest, AdminCreateFriendshipsResponse, AdminCreateGroupRequest,
    AdminCreateUsersRequest, AdminCreateUsersResponse, AdminCreatedUser,
};
use banter_protocol::model::ConversationSummary;
use banter_protocol::{ConversationId, UserId};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use banter_protocol::api::ADMIN_BATCH_MAX;

/// How long one admin request may take unless [`AdminClient::with_timeout`] says
/// otherwise: a full batch is one large transaction, slower than an ordinary request.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(120);

/// A handle on one Banter server's admin API.
///
/// ```no_run
/// # async fn demo() -> banter_client::Result<()> {
/// use banter_client::AdminClient;
/// let admin = AdminClient::new("http://127.0.0.1:8080", "the server's admin_token")?;
/// let names: Vec<String> = (0..1000).map(|i| format!("user{i}")).collect();
/// let users = admin.create_users(&names, "correct horse", Some("bench")).await?;
/// let pairs = [[users[0].user.id, users[1].user.id]];
/// let direct = admin.create_friendships(&pairs).await?;
/// # let _ = direct; Ok(()) }
/// ```
#[derive(Clone)]
pub struct AdminClient {
    http: reqwest::Client,
    /// `http://host:port/api/v1/admin`.
    admin_url: Arc<str>,
    token: Arc<str>,
    timeout: Duration,
}

impl fmt::Debug for AdminClient {
    /// Never prints the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminClient")
            .field("admin_url", &self.admin_url)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl AdminClient {
    /// A client for the admin API of the server at `base_url` (`http://host:port`, as for
    /// [`crate::Client::new`]), authenticating with `admin_token`.
    pub fn new(base_url: &str, admin_token: &str) -> Result<AdminClient> {
        let base_url = base_url.trim_end_matches('/');
        if !base_url.starts_with("http://") && !base_url.starts_with("https://") {
            return Err(ClientError::Protocol(format!(
                "base URL must start with http:// or https://, got {base_url:?}"
            )));
        }
        let http = reqwest::Client::builder().build()?;
        Ok(AdminClient {
            http,
            admin_url: format!("{base_url}/api/v1/admin").into(),
            token: admin_token.into(),
            timeout: ADMIN_TIMEOUT,
        })
    }

    /// The same client, allowing each request `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> AdminClient {
        self.timeout = timeout;
        self
    }

    /// Creates the users (at most [`ADMIN_BATCH_MAX`]), all with `password`, each logged in
    /// once with a session named `device_name`. Returns them in order with their tokens
    /// (usable with [`crate::Client::with_token`]). All or nothing: a taken or repeated
    /// username fails the call with `username_taken` and creates no one.
    pub async fn create_users(
        &self,
        usernames: &[String],
        password: &str,
        device_name: Option<&str>,
    ) -> Result<Vec<AdminCreatedUser>> {
        let body = AdminCreateUsersRequest {
            usernames: usernames.to_vec(),
            password: password.to_owned(),
            device_name: device_name.map(str::to_owned),
        };
        let response: AdminCreateUsersResponse = self.post("/users", &body).await?;
        Ok(response.users)
    }

    /// Makes each pair (at most [`ADMIN_BATCH_MAX`]) friends and opens their direct
    /// conversation; returns the conversations in the order of `pairs`. Pairs that are
    /// already friends are fine.
    pub async fn create_friendships(&self, pairs: &[[UserId; 2]]) -> Result<Vec<ConversationId>> {
        let body = AdminCreateFriendshipsRequest {
            pairs: pairs.to_vec(),
        };
        let response: AdminCreateFriendshipsResponse = self.post("/friendships", &body).await?;
        Ok(response.direct_conversation_ids)
    }

    /// Creates a group owned by `owner_id` with `member_ids` (at most [`ADMIN_BATCH_MAX`],
    /// who need not be the owner's friends); returns it as the owner sees it.
    pub async fn create_group(
        &self,
        owner_id: UserId,
        name: &str,
        member_ids: &[UserId],
    ) -> Result<ConversationSummary> {
        let body = AdminCreateGroupRequest {
            owner_id,
            name: name.to_owned(),
            member_ids: member_ids.to_vec(),
        };
        self.post("/groups", &body).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let response = self
            .http
            .post(format!("{}{path}", self.admin_url))
            .timeout(self.timeout)
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        if !status.is_success() {
            return Err(api_error(status.as_u16(), None, &bytes));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Protocol(format!("HTTP {status} body does not parse: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_token() {
        let admin =
            AdminClient::new("http://127.0.0.1:1", "a-very-secret-admin-token-0123456789").unwrap();
        assert!(!format!("{admin:?}").contains("secret"));
    }

    #[test]
    fn rejects_a_base_url_without_scheme() {
        assert!(AdminClient::new("127.0.0.1:8080", "token").is_err());
    }
}
