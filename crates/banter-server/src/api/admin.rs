//! The admin API under `/api/v1/admin`: seeding users (logged in), friendships (with their
//! direct conversations) and groups in bulk, for load generators and test setups that
//! would otherwise pay an Argon2id hash and a commit per user.
//!
//! The routes exist only when `admin_token` is configured; otherwise every admin path is
//! an unknown route (404 `not_found`). Callers present the token as
//! `Authorization: Bearer <admin_token>`; it is compared in constant time and never logged.
//! Each request is one store transaction: a refusal writes nothing.

use super::extract::ApiJson;
use super::groups::check_name;
use crate::auth;
use crate::error::{ApiError, ApiResult};
use crate::service::groups::announce_created;
use crate::state::AppState;
use crate::wire;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::Json;
use banter_protocol::api::{
    AdminCreateFriendshipsRequest, AdminCreateFriendshipsResponse, AdminCreateGroupRequest,
    AdminCreateUsersRequest, AdminCreateUsersResponse, AdminCreatedUser, ADMIN_BATCH_MAX,
};
use banter_protocol::model::ConversationSummary;
use banter_protocol::{ErrorBody, ErrorCode};
use banter_store::{SeedUser, Seeding};

use super::accounts::DEVICE_NAME_CHARS_MAX;

/// The body limit of admin routes, instead of `limits.request_body_bytes_max`: room for
/// [`ADMIN_BATCH_MAX`] entries (10,000 usernames of up to 32 characters, quoted, are about
/// 360 KiB; 10,000 pairs of ids less), with a wide margin. A larger body gets HTTP 413.
pub const ADMIN_REQUEST_BODY_BYTES_MAX: usize = 4 * 1024 * 1024;

/// A caller that presented the admin token.
pub struct AdminAuth;

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<AdminAuth> {
        // Unreachable while the routes are mounted only with a token; kept so that a
        // mistake in routing fails closed.
        let Some(expected) = &state.config.admin_token else {
            return Err(ApiError::not_found());
        };
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        match presented {
            Some(token) if expected.matches(token) => Ok(AdminAuth),
            _ => Err(ApiError::new(
                ErrorCode::Unauthorized,
                "missing or wrong admin token",
            )),
        }
    }
}

/// Refuses a list longer than [`ADMIN_BATCH_MAX`].
/// The seeding seam, present whenever the admin API is (both need `admin_token`).
fn seeding(state: &AppState) -> ApiResult<&dyn Seeding> {
    state.seeding.as_deref().ok_or_else(ApiError::internal)
}

fn check_batch(field: &str, len: usize) -> ApiResult<()> {
    if len > ADMIN_BATCH_MAX {
        return Err(ApiError::invalid_input(format!(
            "{field} has {len} entries; at most {ADMIN_BATCH_MAX} per request, so split it into several requests"
        )));
    }
    Ok(())
}

/// Creates users in bulk, each with a session. The password is hashed once for the whole
/// request (on the blocking pool), so every user of one request shares that hash and its
/// salt: this is for seeding test and benchmark accounts, whose users may change their
/// password later like anyone.
#[utoipa::path(post, path = "/admin/users", tag = "admin", security(("admin" = [])),
    request_body = AdminCreateUsersRequest,
    responses((status = 201, description = "the users, each with a session token", body = AdminCreateUsersResponse),
        (status = 400, description = "invalid_input: a bad username or password, or too many", body = ErrorBody),
        (status = 401, description = "unauthorized: missing or wrong admin token", body = ErrorBody),
        (status = 404, description = "not_found: the admin API is disabled", body = ErrorBody),
        (status = 409, description = "username_taken: named in the message; nothing was created", body = ErrorBody),
        (status = 503, description = "shutting_down: the password-hashing queue is full; retry after Retry-After seconds", body = ErrorBody)))]
pub async fn create_users(
    State(state): State<AppState>,
    _admin: AdminAuth,
    ApiJson(req): ApiJson<AdminCreateUsersRequest>,
) -> ApiResult<(StatusCode, Json<AdminCreateUsersResponse>)> {
    check_batch("usernames", req.usernames.len())?;
    for (at, username) in req.usernames.iter().enumerate() {
        auth::validate_username(username).map_err(|err| {
            ApiError::invalid_input(format!("usernames[{at}] {username:?}: {}", err.message))
        })?;
    }
    auth::validate_password(&req.password)?;
    let device_name = req.device_name.unwrap_or_default();
    if device_name.chars().count() > DEVICE_NAME_CHARS_MAX {
        return Err(ApiError::invalid_input(format!(
            "device_name is longer than {DEVICE_NAME_CHARS_MAX} characters"
        )));
    }
    if req.usernames.is_empty() {
        return Ok((
            StatusCode::CREATED,
            Json(AdminCreateUsersResponse { users: Vec::new() }),
        ));
    }

    let password_hash = state.passwords.hash(req.password).await?;
    let expires_at_ms = auth::now_ms() + state.config.limits.session_ttl.as_millis() as i64;
    let mut tokens = Vec::with_capacity(req.usernames.len());
    let seeds: Vec<SeedUser> = req
        .usernames
        .into_iter()
        .map(|username| {
            let (token, token_hash) = auth::new_token();
            tokens.push(token);
            SeedUser {
                nickname: username.clone(),
                username,
                token_hash,
                device_name: device_name.clone(),
                session_expires_at_ms: expires_at_ms,
            }
        })
        .collect();
    let profiles = seeding(&state)?.seed_users(password_hash, seeds).await?;
    tracing::info!(users = profiles.len(), "admin API created users");
    let users = profiles
        .into_iter()
        .zip(tokens)
        .map(|(user, token)| AdminCreatedUser {
            user: wire::profile(user),
            token,
            expires_at_ms,
        })
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(AdminCreateUsersResponse { users }),
    ))
}

/// Makes each pair friends and opens their direct conversation. No events are sent: the
/// users find the friendship and the conversation in their lists.
#[utoipa::path(post, path = "/admin/friendships", tag = "admin", security(("admin" = [])),
    request_body = AdminCreateFriendshipsRequest,
    responses((status = 200, description = "friends, each pair with its direct conversation", body = AdminCreateFriendshipsResponse),
        (status = 400, description = "invalid_input: a pair of one user, an unknown id, or too many pairs", body = ErrorBody),
        (status = 401, description = "unauthorized: missing or wrong admin token", body = ErrorBody),
        (status = 404, description = "not_found: the admin API is disabled", body = ErrorBody)))]
pub async fn create_friendships(
    State(state): State<AppState>,
    _admin: AdminAuth,
    ApiJson(req): ApiJson<AdminCreateFriendshipsRequest>,
) -> ApiResult<Json<AdminCreateFriendshipsResponse>> {
    check_batch("pairs", req.pairs.len())?;
    let pairs = req.pairs.len();
    let direct_conversation_ids = seeding(&state)?.seed_friendships(req.pairs).await?;
    tracing::info!(pairs, "admin API created friendships");
    Ok(Json(AdminCreateFriendshipsResponse {
        direct_conversation_ids,
    }))
}

/// Creates a group owned by `owner_id` whose members need not be the owner's friends.
/// Every member hears of it with `conversation_joined`, as with `POST /groups`.
#[utoipa::path(post, path = "/admin/groups", tag = "admin", security(("admin" = [])),
    request_body = AdminCreateGroupRequest,
    responses((status = 201, description = "the group as its owner sees it", body = ConversationSummary),
        (status = 400, description = "invalid_input: a bad name, an unknown id, or too many members", body = ErrorBody),
        (status = 401, description = "unauthorized: missing or wrong admin token", body = ErrorBody),
        (status = 404, description = "not_found: the admin API is disabled", body = ErrorBody)))]
pub async fn create_group(
    State(state): State<AppState>,
    _admin: AdminAuth,
    ApiJson(req): ApiJson<AdminCreateGroupRequest>,
) -> ApiResult<(StatusCode, Json<ConversationSummary>)> {
    let name = check_name(&req.name)?;
    check_batch("member_ids", req.member_ids.len())?;
    let created = seeding(&state)?
        .seed_group(req.owner_id, name, req.member_ids)
        .await?;
    tracing::info!(members = created.members.len(), "admin API created a group");
    let summary = announce_created(&state, req.owner_id, &created).await?;
    Ok((StatusCode::CREATED, Json(summary)))
}
