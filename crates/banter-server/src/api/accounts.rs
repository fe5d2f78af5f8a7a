//! Accounts and sessions: register, log in and out, profile, password, user lookup.

use super::extract::{ApiJson, ApiPath};
use crate::auth::{self, AuthUser};
use crate::error::{ApiError, ApiResult};
use crate::ratelimit::ClientAddr;
use crate::service::sessions;
use crate::state::AppState;
use crate::wire;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use banter_protocol::api::{
    ChangePasswordRequest, LoginRequest, LoginResponse, RegisterRequest, UpdateProfileRequest,
};
use banter_protocol::model::UserProfile;
use banter_protocol::ErrorBody;
use banter_store::{NewSession, NewUser, ProfileUpdate, StoreError};

pub const NICKNAME_CHARS_MAX: usize = 64;
pub const SIGNATURE_CHARS_MAX: usize = 200;
pub const AVATAR_URL_BYTES_MAX: usize = 1024;
pub const DEVICE_NAME_CHARS_MAX: usize = 64;

fn check_len(field: &str, value: &str, max: usize) -> ApiResult<()> {
    if value.chars().count() > max {
        return Err(ApiError::invalid_input(format!(
            "{field} is longer than {max} characters"
        )));
    }
    Ok(())
}

fn check_nickname(nickname: &str) -> ApiResult<()> {
    if nickname.trim().is_empty() {
        return Err(ApiError::invalid_input("nickname must not be empty"));
    }
    check_len("nickname", nickname, NICKNAME_CHARS_MAX)
}

/// Only http(s) URLs: an avatar is rendered as an image source by clients.
fn check_avatar_url(url: &str) -> ApiResult<()> {
    if url.is_empty() {
        return Ok(());
    }
    check_len("avatar_url", url, AVATAR_URL_BYTES_MAX)?;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(ApiError::invalid_input(
            "avatar_url must be an http:// or https:// URL",
        ));
    }
    Ok(())
}

#[utoipa::path(post, path = "/accounts", tag = "accounts", request_body = RegisterRequest,
    responses((status = 201, description = "registered; log in next", body = UserProfile),
        (status = 400, description = "invalid_input: the username, password or nickname breaks a rule", body = ErrorBody),
        (status = 409, description = "username_taken: in some letter case", body = ErrorBody),
        (status = 429, description = "rate_limited: too many registrations from this address (`registrations_per_address_per_hour_max`); see Retry-After", body = ErrorBody, headers(("Retry-After" = u64, description = "whole seconds until the request would be allowed"))),
        (status = 503, description = "shutting_down: the password-hashing queue is full; retry after Retry-After seconds", body = ErrorBody)))]
pub async fn register(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<UserProfile>)> {
    auth::validate_username(&req.username)?;
    auth::validate_password(&req.password)?;
    let nickname = req.nickname.unwrap_or_else(|| req.username.clone());
    check_nickname(&nickname)?;
    // Every well-formed attempt counts, taken usernames included: each costs a password
    // hash, and probing for names is what the limit is for too.
    state
        .rate_limits
        .registrations
        .take(&client.key())
        .await
        .map_err(|r| r.error("too many registrations from this address"))?;
    let password_hash = match state.passwords.hash(req.password).await {
        Ok(hash) => hash,
        Err(busy) => {
            // Not hashed, so not a registration attempt: give the budget back.
            state.rate_limits.registrations.refund(&client.key()).await;
            return Err(busy);
        }
    };
    let user = state
        .store
        .create_user(NewUser {
            username: req.username,
            nickname,
            password_hash,
        })
        .await?;
    tracing::info!(user_id = %user.id, "account registered");
    Ok((StatusCode::CREATED, Json(wire::profile(user))))
}

#[utoipa::path(post, path = "/sessions", tag = "accounts", request_body = LoginRequest,
    responses((status = 200, description = "a new session and its bearer token", body = LoginResponse),
        (status = 400, description = "invalid_input: `device_name` longer than 64 characters", body = ErrorBody),
        (status = 401, description = "invalid_credentials: unknown username or wrong password (not distinguished)", body = ErrorBody),
        (status = 429, description = "rate_limited: too many failed password checks for this account from this address, from this address, or for this account (docs/protocol.md §2.6); see Retry-After", body = ErrorBody, headers(("Retry-After" = u64, description = "whole seconds until the request would be allowed"))),
        (status = 503, description = "shutting_down: the password-hashing queue is full; retry after Retry-After seconds", body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    let device_name = req.device_name.unwrap_or_default();
    check_len("device_name", &device_name, DEVICE_NAME_CHARS_MAX)?;
    // A name that breaks the username rules belongs to nobody. Looking it up anyway would
    // let MariaDB's space-padding collation find `name` for `name `, past the throttle.
    if auth::validate_username(&req.username).is_err() {
        return Err(auth::invalid_credentials());
    }
    // Counted as a failure unless it succeeds, whatever happens in between.
    let attempt = state.login_throttle.admit(&req.username, client).await?;
    let credentials = match state.store.credentials(&req.username).await {
        Ok(c) => c,
        Err(StoreError::NotFound) => {
            // Spend the same time as a real check so response time does not reveal
            // which usernames exist. A busy refusal says nothing about the name either.
            if let Err(busy) = state.passwords.hash(req.password).await {
                state.login_throttle.withdrawn(attempt).await;
                return Err(busy);
            }
            return Err(auth::invalid_credentials());
        }
        Err(err) => {
            state.login_throttle.withdrawn(attempt).await;
            return Err(err.into());
        }
    };
    match state
        .passwords
        .verify(req.password, credentials.password_hash)
        .await
    {
        Ok(true) => state.login_throttle.succeeded(attempt).await,
        Ok(false) => return Err(auth::invalid_credentials()),
        Err(busy) => {
            state.login_throttle.withdrawn(attempt).await;
            return Err(busy);
        }
    }
    let (token, token_hash) = auth::new_token();
    let expires_at_ms = auth::now_ms() + state.config.limits.session_ttl.as_millis() as i64;
    state
        .store
        .create_session(NewSession {
            user_id: credentials.user_id,
            token_hash,
            device_name,
            expires_at_ms,
        })
        .await?;
    let user = wire::profile(state.store.user(credentials.user_id).await?);
    tracing::info!(user_id = %user.id, "logged in");
    Ok(Json(LoginResponse {
        token,
        expires_at_ms,
        user,
    }))
}

#[utoipa::path(delete, path = "/sessions/current", tag = "accounts", security(("bearer" = [])),
    responses((status = 204, description = "token revoked")))]
pub async fn logout(State(state): State<AppState>, auth: AuthUser) -> ApiResult<StatusCode> {
    sessions::logout(&state, &auth).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/me", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, description = "the caller's profile", body = UserProfile)))]
pub async fn me(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<UserProfile>> {
    Ok(Json(wire::profile(state.store.user(auth.user_id).await?)))
}

#[utoipa::path(patch, path = "/me", tag = "accounts", security(("bearer" = [])), request_body = UpdateProfileRequest,
    responses((status = 200, description = "the updated profile", body = UserProfile),
        (status = 400, description = "invalid_input: a field breaks its rule", body = ErrorBody)))]
pub async fn update_me(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(req): ApiJson<UpdateProfileRequest>,
) -> ApiResult<Json<UserProfile>> {
    if let Some(nickname) = &req.nickname {
        check_nickname(nickname)?;
    }
    if let Some(url) = &req.avatar_url {
        check_avatar_url(url)?;
    }
    if let Some(signature) = &req.signature {
        check_len("signature", signature, SIGNATURE_CHARS_MAX)?;
    }
    let update = ProfileUpdate {
        nickname: req.nickname,
        avatar_url: req.avatar_url,
        signature: req.signature,
    };
    Ok(Json(wire::profile(
        state.store.update_profile(auth.user_id, update).await?,
    )))
}

#[utoipa::path(put, path = "/me/password", tag = "accounts", security(("bearer" = [])), request_body = ChangePasswordRequest,
    responses((status = 204, description = "changed; every other session revoked"),
        (status = 400, description = "invalid_input: `new_password` is not 8–128 characters", body = ErrorBody),
        (status = 401, description = "invalid_credentials: `old_password` is wrong", body = ErrorBody),
        (status = 429, description = "rate_limited: too many wrong old passwords, counted with failed logins (docs/protocol.md §2.6); see Retry-After", body = ErrorBody, headers(("Retry-After" = u64, description = "whole seconds until the request would be allowed"))),
        (status = 503, description = "shutting_down: the password-hashing queue is full; retry after Retry-After seconds", body = ErrorBody)))]
pub async fn change_password(
    State(state): State<AppState>,
    auth: AuthUser,
    client: ClientAddr,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> ApiResult<StatusCode> {
    auth::validate_password(&req.new_password)?;
    sessions::change_password(&state, &auth, client, req.old_password, req.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/users/{username}", tag = "accounts", security(("bearer" = [])),
    params(("username" = String, Path, description = "exact username, any letter case")),
    responses((status = 200, description = "the user", body = UserProfile),
        (status = 404, description = "not_found: no user has that username", body = ErrorBody)))]
pub async fn user_by_username(
    State(state): State<AppState>,
    _auth: AuthUser,
    ApiPath(username): ApiPath<String>,
) -> ApiResult<Json<UserProfile>> {
    // Exact names only: see `login`.
    if auth::validate_username(&username).is_err() {
        return Err(ApiError::not_found());
    }
    Ok(Json(wire::profile(
        state.store.user_by_username(&username).await?,
    )))
}
