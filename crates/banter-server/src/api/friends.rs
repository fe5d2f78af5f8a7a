//! Friends, friend requests and blocks routes: parse, call [`crate::service::social`],
//! render.

use super::extract::{ApiJson, ApiPath};
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::service::social;
use crate::state::AppState;
use crate::wire;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use banter_protocol::api::{CreateFriendRequest, FriendRequestList};
use banter_protocol::model::{Friend, FriendRequest, UserProfile};
use banter_protocol::{ErrorBody, FriendRequestId, UserId};

pub const GREETING_CHARS_MAX: usize = 200;

#[utoipa::path(get, path = "/friends", tag = "friends", security(("bearer" = [])),
    responses((status = 200, description = "the caller's friends", body = [Friend])))]
pub async fn list(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<Vec<Friend>>> {
    Ok(Json(social::friends(&state, auth.user_id).await?))
}

#[utoipa::path(delete, path = "/friends/{user_id}", tag = "friends", security(("bearer" = [])),
    params(("user_id" = i64, Path, description = "the friend")),
    responses((status = 204, description = "no longer friends"),
        (status = 404, description = "not_found: the two are not friends", body = ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(friend): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    social::unfriend(&state, auth.user_id, UserId(friend)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/friend-requests", tag = "friends", security(("bearer" = [])),
    responses((status = 200, description = "the caller's pending requests", body = FriendRequestList)))]
pub async fn requests(
    State(state): State<AppState>,
    auth: AuthUser,
) -> ApiResult<Json<FriendRequestList>> {
    let (incoming, outgoing) = state.store.friend_requests(auth.user_id).await?;
    Ok(Json(FriendRequestList {
        incoming: wire::friend_requests(incoming),
        outgoing: wire::friend_requests(outgoing),
    }))
}

#[utoipa::path(post, path = "/friend-requests", tag = "friends", security(("bearer" = [])), request_body = CreateFriendRequest,
    responses((status = 201, description = "the pending request", body = FriendRequest),
        (status = 400, description = "invalid_input: befriending oneself, or a greeting over 200 characters", body = ErrorBody),
        (status = 403, description = "blocked: either user has blocked the other", body = ErrorBody),
        (status = 404, description = "not_found: no such user", body = ErrorBody),
        (status = 409, description = "conflict: already friends, or a pending request exists between the two", body = ErrorBody),
        (status = 429, description = "rate_limited: too many friend requests by this user (`friend_requests_per_user_per_hour_max`); see Retry-After", body = ErrorBody, headers(("Retry-After" = u64, description = "whole seconds until the request would be allowed")))))]
pub async fn create_request(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(req): ApiJson<CreateFriendRequest>,
) -> ApiResult<(StatusCode, Json<FriendRequest>)> {
    let greeting = req.greeting.filter(|g| !g.trim().is_empty());
    if greeting
        .as_ref()
        .is_some_and(|g| g.chars().count() > GREETING_CHARS_MAX)
    {
        return Err(ApiError::invalid_input(format!(
            "greeting is longer than {GREETING_CHARS_MAX} characters"
        )));
    }
    let request = social::request(&state, auth.user_id, req.user_id, greeting).await?;
    Ok((StatusCode::CREATED, Json(request)))
}

#[utoipa::path(post, path = "/friend-requests/{id}/accept", tag = "friends", security(("bearer" = [])),
    params(("id" = i64, Path, description = "the friend request")),
    responses((status = 200, description = "the request, now accepted", body = FriendRequest),
        (status = 404, description = "not_found: no such request, or the caller is not its recipient", body = ErrorBody),
        (status = 409, description = "conflict: the request is no longer pending", body = ErrorBody)))]
pub async fn accept(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<FriendRequest>> {
    let id = FriendRequestId(id);
    Ok(Json(social::answer(&state, auth.user_id, id, true).await?))
}

#[utoipa::path(post, path = "/friend-requests/{id}/reject", tag = "friends", security(("bearer" = [])),
    params(("id" = i64, Path, description = "the friend request")),
    responses((status = 200, description = "the request, now rejected", body = FriendRequest),
        (status = 404, description = "not_found: no such request, or the caller is not its recipient", body = ErrorBody),
        (status = 409, description = "conflict: the request is no longer pending", body = ErrorBody)))]
pub async fn reject(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<FriendRequest>> {
    let id = FriendRequestId(id);
    Ok(Json(social::answer(&state, auth.user_id, id, false).await?))
}

#[utoipa::path(post, path = "/friend-requests/{id}/cancel", tag = "friends", security(("bearer" = [])),
    params(("id" = i64, Path, description = "the friend request")),
    responses((status = 200, description = "the request, now cancelled", body = FriendRequest),
        (status = 404, description = "not_found: no such request, or the caller is not its sender", body = ErrorBody),
        (status = 409, description = "conflict: the request is no longer pending", body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<FriendRequest>> {
    let id = FriendRequestId(id);
    Ok(Json(social::cancel(&state, auth.user_id, id).await?))
}

#[utoipa::path(get, path = "/blocks", tag = "friends", security(("bearer" = [])),
    responses((status = 200, description = "the users the caller has blocked", body = [UserProfile])))]
pub async fn blocks(
    State(state): State<AppState>,
    auth: AuthUser,
) -> ApiResult<Json<Vec<UserProfile>>> {
    Ok(Json(wire::profiles(
        state.store.blocked_users(auth.user_id).await?,
    )))
}

/// The blocked user is not told.
#[utoipa::path(put, path = "/blocks/{user_id}", tag = "friends", security(("bearer" = [])),
    params(("user_id" = i64, Path, description = "the user to block")),
    responses((status = 204, description = "blocked (also when already blocked)"),
        (status = 400, description = "invalid_input: blocking oneself", body = ErrorBody),
        (status = 404, description = "not_found: no such user", body = ErrorBody)))]
pub async fn block(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(user): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    social::block(&state, auth.user_id, UserId(user)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/blocks/{user_id}", tag = "friends", security(("bearer" = [])),
    params(("user_id" = i64, Path, description = "the user to unblock")),
    responses((status = 204, description = "not blocked (also when it was not)")))]
pub async fn unblock(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(user): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    social::unblock(&state, auth.user_id, UserId(user)).await?;
    Ok(StatusCode::NO_CONTENT)
}
