//! [`Client`]: the REST API under `/api/v1`, one typed method per route, plus a raw
//! escape hatch for tests that need to see exactly what the server answered.
//!
//! A `Client` is a base URL, an HTTP connection pool and an optional bearer token. It
//! is cheap to clone; clones share the pool but each holds its own token, so logging
//! in on one clone does not change another.

use crate::connection::Connection;
use crate::error::{ClientError, Result};
use banter_protocol::api::{
    AddMembersRequest, ChangePasswordRequest, CreateFriendRequest, CreateGroupRequest,
    FriendRequestList, LoginRequest, LoginResponse, MarkReadRequest, MessagePage,
    OpenDirectRequest, ReadPointer, RegisterRequest, RenameGroupRequest, SetRoleRequest,
    TransferOwnershipRequest, UpdateProfileRequest,
};
use banter_protocol::model::{
    ConversationDetail, ConversationSummary, Friend, FriendRequest, Role, Upload, UserProfile,
};
use banter_protocol::{ConversationId, ErrorBody, FriendRequestId, UserId};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long one REST request, or a WebSocket handshake up to `hello`, may take unless
/// [`Client::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The REST API's path prefix.
const API: &str = "/api/v1";

/// A handle on one Banter server, optionally logged in as one user.
///
/// ```no_run
/// # async fn demo() -> banter_client::Result<()> {
/// use banter_client::Client;
/// let mut alice = Client::new("http://127.0.0.1:8080")?;
/// alice.register("alice", "correct horse").await?;
/// alice.login("alice", "correct horse", "laptop").await?;
/// let me = alice.me().await?;
/// assert_eq!(me.username, "alice");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// `http://host:port`, without a trailing slash.
    base_url: Arc<str>,
    token: Option<Arc<str>>,
    timeout: Duration,
}

impl fmt::Debug for Client {
    /// Never prints the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("logged_in", &self.token.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A download as the server answered it, whatever the status.
#[derive(Debug, Clone)]
pub struct Download {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub bytes: Vec<u8>,
}

impl Download {
    /// A header's value as text ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// What the server answered to a [`Client::raw`] request, whatever the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    pub status: u16,
    pub body: String,
}

impl RawResponse {
    /// Parses the body as JSON of type `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(&self.body)
            .map_err(|e| ClientError::Protocol(format!("body does not parse: {e}")))
    }

    /// The body as an [`ErrorBody`], if it is one.
    pub fn error_body(&self) -> Option<ErrorBody> {
        serde_json::from_str(&self.body).ok()
    }
}

impl Client {
    /// A client for the server at `base_url` (`http://host:port`, optionally with a
    /// path prefix), not logged in. Only `http://` is supported: the SDK is built
    /// without TLS, so put a TLS-terminating proxy's plain side or loopback here.
    pub fn new(base_url: &str) -> Result<Client> {
        Self::build(base_url, reqwest::Client::builder())
    }

    /// Like [`Client::new`], with every HTTP connection leaving from the local address
    /// `source` (e.g. one of 127.0.0.0/8), so that one process can act as clients at many
    /// addresses; WebSockets still choose theirs with [`Client::connect_from`].
    pub fn new_from(base_url: &str, source: IpAddr) -> Result<Client> {
        Self::build(base_url, reqwest::Client::builder().local_address(source))
    }

    fn build(base_url: &str, http: reqwest::ClientBuilder) -> Result<Client> {
        let base_url = base_url.trim_end_matches('/');
        if !base_url.starts_with("http://") && !base_url.starts_with("https://") {
            return Err(ClientError::Protocol(format!(
                "base URL must start with http:// or https://, got {base_url:?}"
            )));
        }
        let http = http.build()?;
        Ok(Client {
            http,
            base_url: base_url.into(),
            token: None,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The same client, authenticated with `token` (from an earlier [`Client::login`]).
    pub fn with_token(mut self, token: impl Into<String>) -> Client {
        self.token = Some(token.into().into());
        self
    }

    /// The same client, allowing each request (and each WebSocket handshake) `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// The bearer token, once logged in.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The WebSocket URL: the base URL with `ws`/`wss` for `http`/`https`, plus `/ws`.
    pub fn ws_url(&self) -> String {
        let rest = self.base_url.strip_prefix("http").unwrap_or(&self.base_url);
        format!("ws{rest}/ws")
    }

    // ----- WebSocket -----

    /// Opens a WebSocket with this client's token and waits for the server's `hello`.
    pub async fn connect(&self) -> Result<Connection> {
        Connection::open(self, &[], None).await
    }

    /// Like [`Client::connect`], with the TCP connection leaving from the local address
    /// `source` (e.g. one of 127.0.0.0/8), so that one process can open more connections
    /// to one server than a single source address has ephemeral ports.
    pub async fn connect_from(&self, source: IpAddr) -> Result<Connection> {
        Connection::open(self, &[], Some(source)).await
    }

    /// Like [`Client::connect`], with extra or replaced upgrade headers, e.g. `Origin`,
    /// or `Sec-WebSocket-Protocol: banter.v1, banter.auth.<token>` to authenticate the
    /// way a browser does.
    pub async fn connect_with_headers(&self, headers: &[(&str, &str)]) -> Result<Connection> {
        Connection::open(self, headers, None).await
    }

    // ----- accounts and sessions -----

    /// `GET /healthz`: succeeds when the server answers 200.
    pub async fn health(&self) -> Result<()> {
        let response = self.raw(Method::GET, "/healthz", None).await?;
        if response.status == 200 {
            Ok(())
        } else {
            Err(api_error(response.status, None, response.body.as_bytes()))
        }
    }

    /// Creates an account. Does not log in.
    pub async fn register(&self, username: &str, password: &str) -> Result<UserProfile> {
        let body = RegisterRequest {
            username: username.to_owned(),
            password: password.to_owned(),
            nickname: None,
        };
        self.json(self.request(Method::POST, "/accounts").json(&body))
            .await
    }

    /// Logs in and keeps the token in this client for every later call.
    pub async fn login(
        &mut self,
        username: &str,
        password: &str,
        device_name: &str,
    ) -> Result<LoginResponse> {
        let body = LoginRequest {
            username: username.to_owned(),
            password: password.to_owned(),
            device_name: Some(device_name.to_owned()),
        };
        let response: LoginResponse = self
            .json(self.request(Method::POST, "/sessions").json(&body))
            .await?;
        self.token = Some(response.token.as_str().into());
        Ok(response)
    }

    /// Revokes this client's token (closing its WebSockets) and forgets it.
    pub async fn logout(&mut self) -> Result<()> {
        self.empty(self.request(Method::DELETE, "/sessions/current"))
            .await?;
        self.token = None;
        Ok(())
    }

    /// The logged-in user's profile.
    pub async fn me(&self) -> Result<UserProfile> {
        self.json(self.request(Method::GET, "/me")).await
    }

    /// Changes the fields that are `Some`; an empty string clears an optional field.
    pub async fn update_profile(&self, update: &UpdateProfileRequest) -> Result<UserProfile> {
        self.json(self.request(Method::PATCH, "/me").json(update))
            .await
    }

    /// Changes the password; every other session of the user is revoked.
    pub async fn change_password(&self, old_password: &str, new_password: &str) -> Result<()> {
        let body = ChangePasswordRequest {
            old_password: old_password.to_owned(),
            new_password: new_password.to_owned(),
        };
        self.empty(self.request(Method::PUT, "/me/password").json(&body))
            .await
    }

    /// Looks a user up by exact username (case-insensitive).
    pub async fn user_by_username(&self, username: &str) -> Result<UserProfile> {
        let path = format!("/users/{}", encode_segment(username));
        self.json(self.request(Method::GET, &path)).await
    }

    // ----- friends and blocks -----

    /// The user's friends, with whether each is online.
    pub async fn friends(&self) -> Result<Vec<Friend>> {
        self.json(self.request(Method::GET, "/friends")).await
    }

    /// Ends a friendship (both sides).
    pub async fn remove_friend(&self, user_id: UserId) -> Result<()> {
        self.empty(self.request(Method::DELETE, &format!("/friends/{user_id}")))
            .await
    }

    /// Pending friend requests, incoming and outgoing.
    pub async fn friend_requests(&self) -> Result<FriendRequestList> {
        self.json(self.request(Method::GET, "/friend-requests"))
            .await
    }

    /// Asks `user_id` to be friends.
    pub async fn send_friend_request(
        &self,
        user_id: UserId,
        greeting: Option<&str>,
    ) -> Result<FriendRequest> {
        let body = CreateFriendRequest {
            user_id,
            greeting: greeting.map(str::to_owned),
        };
        self.json(self.request(Method::POST, "/friend-requests").json(&body))
            .await
    }

    /// Accepts a request sent to the user.
    pub async fn accept_friend_request(&self, id: FriendRequestId) -> Result<FriendRequest> {
        self.friend_request_action(id, "accept").await
    }

    /// Rejects a request sent to the user.
    pub async fn reject_friend_request(&self, id: FriendRequestId) -> Result<FriendRequest> {
        self.friend_request_action(id, "reject").await
    }

    /// Withdraws a request the user sent.
    pub async fn cancel_friend_request(&self, id: FriendRequestId) -> Result<FriendRequest> {
        self.friend_request_action(id, "cancel").await
    }

    async fn friend_request_action(
        &self,
        id: FriendRequestId,
        action: &str,
    ) -> Result<FriendRequest> {
        let path = format!("/friend-requests/{id}/{action}");
        self.json(self.request(Method::POST, &path)).await
    }

    /// The users this user has blocked.
    pub async fn blocks(&self) -> Result<Vec<UserProfile>> {
        self.json(self.request(Method::GET, "/blocks")).await
    }

    /// Blocks `user_id`.
    pub async fn block(&self, user_id: UserId) -> Result<()> {
        self.empty(self.request(Method::PUT, &format!("/blocks/{user_id}")))
            .await
    }

    /// Unblocks `user_id`.
    pub async fn unblock(&self, user_id: UserId) -> Result<()> {
        self.empty(self.request(Method::DELETE, &format!("/blocks/{user_id}")))
            .await
    }

    // ----- conversations and messages -----

    /// The user's conversations, newest activity first.
    pub async fn conversations(&self) -> Result<Vec<ConversationSummary>> {
        self.json(self.request(Method::GET, "/conversations")).await
    }

    /// The direct conversation with `user_id`, created if need be.
    pub async fn open_direct(&self, user_id: UserId) -> Result<ConversationSummary> {
        let body = OpenDirectRequest { user_id };
        self.json(
            self.request(Method::POST, "/conversations/direct")
                .json(&body),
        )
        .await
    }

    /// A conversation with its members.
    pub async fn conversation(&self, id: ConversationId) -> Result<ConversationDetail> {
        self.json(self.request(Method::GET, &format!("/conversations/{id}")))
            .await
    }

    /// Up to `limit` entries with seq greater than `after_seq`, oldest first.
    pub async fn messages_after(
        &self,
        id: ConversationId,
        after_seq: i64,
        limit: u32,
    ) -> Result<MessagePage> {
        let path = format!("/conversations/{id}/messages?after_seq={after_seq}&limit={limit}");
        self.json(self.request(Method::GET, &path)).await
    }

    /// Up to `limit` entries with seq less than `before_seq`, oldest first.
    pub async fn messages_before(
        &self,
        id: ConversationId,
        before_seq: i64,
        limit: u32,
    ) -> Result<MessagePage> {
        let path = format!("/conversations/{id}/messages?before_seq={before_seq}&limit={limit}");
        self.json(self.request(Method::GET, &path)).await
    }

    /// The newest `limit` entries, oldest first.
    pub async fn latest_messages(&self, id: ConversationId, limit: u32) -> Result<MessagePage> {
        let path = format!("/conversations/{id}/messages?limit={limit}");
        self.json(self.request(Method::GET, &path)).await
    }

    /// Moves the user's read pointer forward to `seq` over REST (it never moves back).
    pub async fn mark_read_rest(&self, id: ConversationId, seq: i64) -> Result<ReadPointer> {
        let body = MarkReadRequest { seq };
        let path = format!("/conversations/{id}/read");
        self.json(self.request(Method::POST, &path).json(&body))
            .await
    }

    // ----- groups -----

    /// Creates a group owned by the user, with `member_ids` (friends of the user) in it.
    pub async fn create_group(
        &self,
        name: &str,
        member_ids: &[UserId],
    ) -> Result<ConversationSummary> {
        let body = CreateGroupRequest {
            name: name.to_owned(),
            member_ids: member_ids.to_vec(),
        };
        self.json(self.request(Method::POST, "/groups").json(&body))
            .await
    }

    /// Renames a group (admins and the owner).
    pub async fn rename_group(&self, id: ConversationId, name: &str) -> Result<()> {
        let body = RenameGroupRequest {
            name: name.to_owned(),
        };
        self.empty(
            self.request(Method::PATCH, &format!("/groups/{id}"))
                .json(&body),
        )
        .await
    }

    /// Adds friends of the user to a group.
    pub async fn add_members(&self, id: ConversationId, user_ids: &[UserId]) -> Result<()> {
        let body = AddMembersRequest {
            user_ids: user_ids.to_vec(),
        };
        let path = format!("/groups/{id}/members");
        self.empty(self.request(Method::POST, &path).json(&body))
            .await
    }

    /// Removes a member from a group.
    pub async fn remove_member(&self, id: ConversationId, user_id: UserId) -> Result<()> {
        let path = format!("/groups/{id}/members/{user_id}");
        self.empty(self.request(Method::DELETE, &path)).await
    }

    /// Makes a member an admin or a plain member (ownership moves only by transfer).
    pub async fn set_role(&self, id: ConversationId, user_id: UserId, role: Role) -> Result<()> {
        let body = SetRoleRequest { role };
        let path = format!("/groups/{id}/members/{user_id}/role");
        self.empty(self.request(Method::PUT, &path).json(&body))
            .await
    }

    /// Hands the group to another member; the caller becomes an admin.
    pub async fn transfer_ownership(&self, id: ConversationId, user_id: UserId) -> Result<()> {
        let body = TransferOwnershipRequest { user_id };
        let path = format!("/groups/{id}/transfer");
        self.empty(self.request(Method::POST, &path).json(&body))
            .await
    }

    /// Leaves a group.
    pub async fn leave_group(&self, id: ConversationId) -> Result<()> {
        let path = format!("/groups/{id}/leave");
        self.empty(self.request(Method::POST, &path)).await
    }

    /// Disbands a group (owner only).
    pub async fn disband_group(&self, id: ConversationId) -> Result<()> {
        self.empty(self.request(Method::DELETE, &format!("/groups/{id}")))
            .await
    }

    // ----- uploads and avatars -----

    /// Uploads a file's bytes under `name` (§4.10); the answer says what the server found
    /// it to be.
    pub async fn upload(&self, name: &str, bytes: impl Into<reqwest::Body>) -> Result<Upload> {
        let request = self
            .request(Method::POST, "/uploads")
            .query(&[("name", name)])
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes);
        self.json(request).await
    }

    /// A download of upload `id` (its thumbnail with `thumbnail`), optionally one
    /// `Range`, with the status, headers and bytes as the server sent them, whatever
    /// they are.
    pub async fn download(
        &self,
        id: &str,
        thumbnail: bool,
        range: Option<&str>,
    ) -> Result<Download> {
        let path = if thumbnail {
            format!("/uploads/{id}/thumbnail")
        } else {
            format!("/uploads/{id}")
        };
        let mut request = self.request(Method::GET, &path);
        if let Some(range) = range {
            request = request.header(reqwest::header::RANGE, range);
        }
        let response = request.send().await?;
        Ok(Download {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            bytes: response.bytes().await?.to_vec(),
        })
    }

    /// Sets one's avatar from a picture's bytes.
    pub async fn set_avatar(&self, bytes: impl Into<reqwest::Body>) -> Result<UserProfile> {
        let request = self
            .request(Method::PUT, "/me/avatar")
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes);
        self.json(request).await
    }

    /// Removes one's avatar.
    pub async fn remove_avatar(&self) -> Result<UserProfile> {
        self.json(self.request(Method::DELETE, "/me/avatar")).await
    }

    /// Sets a group's avatar (owners and admins).
    pub async fn set_group_avatar(
        &self,
        id: ConversationId,
        bytes: impl Into<reqwest::Body>,
    ) -> Result<()> {
        let request = self
            .request(Method::PUT, &format!("/groups/{id}/avatar"))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes);
        self.empty(request).await
    }

    /// Fetches an avatar picture by its `avatar_url` (a path on this server) and size.
    pub async fn avatar(&self, avatar_url: &str, size: u32) -> Result<Download> {
        let url = format!("{}{avatar_url}?size={size}", self.base_url);
        let response = self.http.get(url).timeout(self.timeout).send().await?;
        Ok(Download {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            bytes: response.bytes().await?.to_vec(),
        })
    }

    // ----- raw escape hatch -----

    /// Sends any request to `path` (from the server root, e.g. `/api/v1/me`) with this
    /// client's token, and returns the status and body whatever they are. A `body` is
    /// sent as `application/json` verbatim, valid or not. Only transport failures are
    /// errors.
    pub async fn raw(&self, method: Method, path: &str, body: Option<&str>) -> Result<RawResponse> {
        let mut request = self.request_url(method, format!("{}{path}", self.base_url));
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_owned());
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let body = response.text().await?;
        Ok(RawResponse { status, body })
    }

    /// [`Client::raw`] with a body of raw bytes (`application/octet-stream`), as the
    /// upload routes take.
    pub async fn raw_bytes(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<RawResponse> {
        let response = self
            .request_url(method, format!("{}{path}", self.base_url))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(body)
            .send()
            .await?;
        let status = response.status().as_u16();
        let body = response.text().await?;
        Ok(RawResponse { status, body })
    }

    /// [`Client::raw`] with `GET`.
    pub async fn raw_get(&self, path: &str) -> Result<RawResponse> {
        self.raw(Method::GET, path, None).await
    }

    /// [`Client::raw`] with `POST` and a JSON body (sent verbatim).
    pub async fn raw_post(&self, path: &str, body: &str) -> Result<RawResponse> {
        self.raw(Method::POST, path, Some(body)).await
    }

    // ----- plumbing -----

    /// A request to `/api/v1{path}` with the token and the timeout.
    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.request_url(method, format!("{}{API}{path}", self.base_url))
    }

    fn request_url(&self, method: Method, url: String) -> RequestBuilder {
        let request = self.http.request(method, url).timeout(self.timeout);
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends and parses a JSON success body, or turns the error body into [`ClientError::Api`].
    async fn json<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T> {
        let (status, retry_after, body) = send(request).await?;
        if !status.is_success() {
            return Err(api_error(status.as_u16(), retry_after, &body));
        }
        serde_json::from_slice(&body)
            .map_err(|e| ClientError::Protocol(format!("HTTP {status} body does not parse: {e}")))
    }

    /// Sends and expects a success status with nothing of interest in the body.
    async fn empty(&self, request: RequestBuilder) -> Result<()> {
        let (status, retry_after, body) = send(request).await?;
        if !status.is_success() {
            return Err(api_error(status.as_u16(), retry_after, &body));
        }
        Ok(())
    }
}

/// The status, the `Retry-After` seconds if any, and the body.
async fn send(request: RequestBuilder) -> Result<(StatusCode, Option<u64>, Vec<u8>)> {
    let response = request.send().await?;
    let status = response.status();
    let retry_after = retry_after_secs(response.headers());
    let body = response.bytes().await?;
    Ok((status, retry_after, body.to_vec()))
}

/// `Retry-After` in its delay-seconds form, the only one the server sends.
pub(crate) fn retry_after_secs(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A failed response as [`ClientError::Api`]. A body that is not an [`ErrorBody`] is a
/// protocol violation: every API error is supposed to carry one.
pub(crate) fn api_error(status: u16, retry_after_secs: Option<u64>, body: &[u8]) -> ClientError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { code, message }) => ClientError::Api {
            status,
            code,
            message,
            retry_after_secs,
        },
        Err(_) => ClientError::Protocol(format!(
            "HTTP {status} without an error body: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )),
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, for one path segment.
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_url_follows_the_scheme() {
        let client = Client::new("http://127.0.0.1:8080/").expect("valid URL");
        assert_eq!(client.base_url(), "http://127.0.0.1:8080");
        assert_eq!(client.ws_url(), "ws://127.0.0.1:8080/ws");
        let client = Client::new("https://chat.example/banter").expect("valid URL");
        assert_eq!(client.ws_url(), "wss://chat.example/banter/ws");
    }

    #[test]
    fn rejects_a_base_url_without_scheme() {
        let err = Client::new("127.0.0.1:8080").expect_err("no scheme");
        assert!(matches!(err, ClientError::Protocol(_)));
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode_segment("a.b-c_d~9"), "a.b-c_d~9");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
        assert_eq!(encode_segment("é"), "%C3%A9");
    }

    #[test]
    fn error_bodies_become_api_errors() {
        let err = api_error(
            404,
            None,
            br#"{"code":"not_found","message":"no such user"}"#,
        );
        assert_eq!(err.code(), Some(banter_protocol::ErrorCode::NotFound));
        assert_eq!(err.status(), Some(404));
        let err = api_error(500, None, b"oops");
        assert!(matches!(err, ClientError::Protocol(_)));
    }

    #[test]
    fn debug_hides_the_token() {
        let client = Client::new("http://localhost:1")
            .expect("valid URL")
            .with_token("secret-token");
        assert!(!format!("{client:?}").contains("secret-token"));
    }
}
