//! Group management routes: parse, call [`crate::service::groups`], render.

use super::extract::{ApiJson, ApiPath};
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::service::groups;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use banter_protocol::api::{
    AddMembersRequest, CreateGroupRequest, RenameGroupRequest, SetRoleRequest,
    TransferOwnershipRequest,
};
use banter_protocol::model::{ConversationSummary, Role};
use banter_protocol::{ConversationId, ErrorBody, UserId};
use banter_store::GroupChange;

pub const GROUP_NAME_CHARS_MAX: usize = 64;
pub const GROUP_MEMBERS_ADDED_MAX: usize = 500;

pub(crate) fn check_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > GROUP_NAME_CHARS_MAX {
        return Err(ApiError::invalid_input(format!(
            "group name must be 1-{GROUP_NAME_CHARS_MAX} characters"
        )));
    }
    Ok(name.to_string())
}

fn check_member_count(ids: &[UserId]) -> ApiResult<()> {
    if ids.len() > GROUP_MEMBERS_ADDED_MAX {
        return Err(ApiError::invalid_input(format!(
            "at most {GROUP_MEMBERS_ADDED_MAX} members at a time"
        )));
    }
    Ok(())
}

#[utoipa::path(post, path = "/groups", tag = "groups", security(("bearer" = [])), request_body = CreateGroupRequest,
    responses((status = 201, description = "the new group as its owner sees it", body = ConversationSummary),
        (status = 400, description = "invalid_input: the name is not 1–64 characters after trimming, or more than 500 `member_ids`", body = ErrorBody),
        (status = 403, description = "not_friends: a member id that is not a friend of the caller (or of no user)", body = ErrorBody),
        (status = 429, description = "rate_limited: too many groups created, or users added to groups, by this user (`groups_per_user_per_hour_max`, `group_invites_per_user_per_hour_max`); see Retry-After", body = ErrorBody, headers(("Retry-After" = u64, description = "whole seconds until the request would be allowed")))))]
pub async fn create(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(req): ApiJson<CreateGroupRequest>,
) -> ApiResult<(StatusCode, Json<ConversationSummary>)> {
    let name = check_name(&req.name)?;
    check_member_count(&req.member_ids)?;
    let summary = groups::create(&state, auth.user_id, name, req.member_ids).await?;
    Ok((StatusCode::CREATED, Json(summary)))
}

async fn apply(
    state: &AppState,
    actor: UserId,
    id: i64,
    change: GroupChange,
) -> ApiResult<StatusCode> {
    groups::change(state, actor, ConversationId(id), change).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(patch, path = "/groups/{id}", tag = "groups", security(("bearer" = [])), params(("id" = i64, Path, description = "the group's conversation id")),
    request_body = RenameGroupRequest,
    responses((status = 204, description = "renamed; a `renamed` notice was appended"),
        (status = 400, description = "invalid_input: the name is not 1–64 characters after trimming", body = ErrorBody),
        (status = 403, description = "forbidden: not an owner or admin, or a direct conversation", body = ErrorBody),
        (status = 404, description = "not_found: no such group, or the caller is not a member", body = ErrorBody)))]
pub async fn rename(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<RenameGroupRequest>,
) -> ApiResult<StatusCode> {
    let name = check_name(&req.name)?;
    apply(&state, auth.user_id, id, GroupChange::Rename(name)).await
}

#[utoipa::path(post, path = "/groups/{id}/members", tag = "groups", security(("bearer" = [])), params(("id" = i64, Path, description = "the group's conversation id")),
    request_body = AddMembersRequest,
    responses((status = 204, description = "added; a `members_added` notice was appended"),
        (status = 400, description = "invalid_input: `user_ids` is empty or has more than 500", body = ErrorBody),
        (status = 403, description = "forbidden: not an owner or admin, or a direct conversation; not_friends: an added user is not the caller's friend", body = ErrorBody),
        (status = 404, description = "not_found: no such group, or the caller is not a member", body = ErrorBody),
        (status = 409, description = "conflict: everyone named is already a member", body = ErrorBody),
        (status = 429, description = "rate_limited: too many users added to groups by this user (`group_invites_per_user_per_hour_max`); see Retry-After", body = ErrorBody, headers(("Retry-After" = u64, description = "whole seconds until the request would be allowed")))))]
pub async fn add_members(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<AddMembersRequest>,
) -> ApiResult<StatusCode> {
    check_member_count(&req.user_ids)?;
    if req.user_ids.is_empty() {
        return Err(ApiError::invalid_input("user_ids is empty"));
    }
    apply(
        &state,
        auth.user_id,
        id,
        GroupChange::AddMembers(req.user_ids),
    )
    .await
}

#[utoipa::path(delete, path = "/groups/{id}/members/{user_id}", tag = "groups", security(("bearer" = [])),
    params(("id" = i64, Path, description = "the group's conversation id"), ("user_id" = i64, Path, description = "the member")),
    responses((status = 204, description = "removed; a `member_removed` notice was appended"),
        (status = 400, description = "invalid_input: removing oneself (leave instead)", body = ErrorBody),
        (status = 403, description = "forbidden: not an owner or admin, the target is the owner, an admin removing an admin, or a direct conversation", body = ErrorBody),
        (status = 404, description = "not_found: no such group, the caller is not a member, or `user_id` is not a member", body = ErrorBody)))]
pub async fn remove_member(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath((id, user)): ApiPath<(i64, i64)>,
) -> ApiResult<StatusCode> {
    apply(
        &state,
        auth.user_id,
        id,
        GroupChange::RemoveMember(UserId(user)),
    )
    .await
}

#[utoipa::path(put, path = "/groups/{id}/members/{user_id}/role", tag = "groups", security(("bearer" = [])),
    params(("id" = i64, Path, description = "the group's conversation id"), ("user_id" = i64, Path, description = "the member")),
    request_body = SetRoleRequest,
    responses((status = 204, description = "changed; a `role_changed` notice was appended"),
        (status = 400, description = "invalid_input: `owner` (ownership moves only by transfer), or the caller's own role", body = ErrorBody),
        (status = 403, description = "forbidden: not the owner, or a direct conversation", body = ErrorBody),
        (status = 404, description = "not_found: no such group, the caller is not a member, or `user_id` is not a member", body = ErrorBody),
        (status = 409, description = "conflict: the member already has that role", body = ErrorBody)))]
pub async fn set_role(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath((id, user)): ApiPath<(i64, i64)>,
    ApiJson(req): ApiJson<SetRoleRequest>,
) -> ApiResult<StatusCode> {
    if req.role == Role::Owner {
        return Err(ApiError::invalid_input("ownership moves only by transfer"));
    }
    apply(
        &state,
        auth.user_id,
        id,
        GroupChange::SetRole(UserId(user), req.role),
    )
    .await
}

#[utoipa::path(post, path = "/groups/{id}/transfer", tag = "groups", security(("bearer" = [])), params(("id" = i64, Path, description = "the group's conversation id")),
    request_body = TransferOwnershipRequest,
    responses((status = 204, description = "transferred; the caller is an admin now"),
        (status = 400, description = "invalid_input: `user_id` is the caller", body = ErrorBody),
        (status = 403, description = "forbidden: not the owner, or a direct conversation", body = ErrorBody),
        (status = 404, description = "not_found: no such group, the caller is not a member, or `user_id` is not a member", body = ErrorBody)))]
pub async fn transfer(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<TransferOwnershipRequest>,
) -> ApiResult<StatusCode> {
    apply(
        &state,
        auth.user_id,
        id,
        GroupChange::TransferOwnership(req.user_id),
    )
    .await
}

#[utoipa::path(post, path = "/groups/{id}/leave", tag = "groups", security(("bearer" = [])), params(("id" = i64, Path, description = "the group's conversation id")),
    responses((status = 204, description = "left; a `member_left` notice was appended"),
        (status = 403, description = "forbidden: the owner must transfer or disband first, or a direct conversation", body = ErrorBody),
        (status = 404, description = "not_found: no such group, or the caller is not a member", body = ErrorBody)))]
pub async fn leave(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    apply(&state, auth.user_id, id, GroupChange::Leave).await
}

#[utoipa::path(delete, path = "/groups/{id}", tag = "groups", security(("bearer" = [])), params(("id" = i64, Path, description = "the group's conversation id")),
    responses((status = 204, description = "disbanded; every member was removed"),
        (status = 403, description = "forbidden: not the owner, or a direct conversation", body = ErrorBody),
        (status = 404, description = "not_found: no such group, or the caller is not a member", body = ErrorBody)))]
pub async fn disband(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    apply(&state, auth.user_id, id, GroupChange::Disband).await
}
