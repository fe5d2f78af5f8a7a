//! Conversation list, direct conversations, detail with read pointers, history and read marks.

use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::auth::AuthUser;
use crate::error::{check_non_negative, ApiError, ApiResult};
use crate::service::presence::{detail_with_presence, with_presence, with_presence_all};
use crate::service::stream;
use crate::state::AppState;
use crate::wire;
use axum::extract::State;
use axum::Json;
use banter_protocol::api::{MarkReadRequest, MessagePage, OpenDirectRequest, ReadPointer};
use banter_protocol::model::{ConversationDetail, ConversationSummary};
use banter_protocol::{ConversationId, ErrorBody};
use serde::Deserialize;

pub const HISTORY_PAGE_DEFAULT: u32 = 50;
pub const HISTORY_PAGE_MAX: u32 = 200;

#[utoipa::path(get, path = "/conversations", tag = "conversations", security(("bearer" = [])),
    responses((status = 200, description = "the caller's conversations, newest activity first", body = [ConversationSummary])))]
pub async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
) -> ApiResult<Json<Vec<ConversationSummary>>> {
    let list = state.store.conversations(auth.user_id).await?;
    Ok(Json(with_presence_all(&state, list).await))
}

#[utoipa::path(post, path = "/conversations/direct", tag = "conversations", security(("bearer" = [])),
    request_body = OpenDirectRequest,
    responses((status = 200, description = "the direct conversation, created on first use", body = ConversationSummary),
        (status = 400, description = "invalid_input: `user_id` is the caller", body = ErrorBody),
        (status = 403, description = "blocked: either user has blocked the other; not_friends: the server requires friendship", body = ErrorBody),
        (status = 404, description = "not_found: no such user", body = ErrorBody)))]
pub async fn open_direct(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(req): ApiJson<OpenDirectRequest>,
) -> ApiResult<Json<ConversationSummary>> {
    if req.user_id == auth.user_id {
        return Err(ApiError::invalid_input(
            "a direct conversation needs another user",
        ));
    }
    let id = state
        .store
        .open_direct(
            auth.user_id,
            req.user_id,
            state.config.direct_requires_friendship,
        )
        .await?;
    let detail = state.store.conversation(auth.user_id, id).await?;
    Ok(Json(with_presence(&state, detail.conversation).await))
}

#[utoipa::path(get, path = "/conversations/{id}", tag = "conversations", security(("bearer" = [])),
    params(("id" = i64, Path, description = "the conversation")),
    responses((status = 200, description = "the conversation with its members", body = ConversationDetail),
        (status = 404, description = "not_found: no such conversation, or the caller is not a member", body = ErrorBody)))]
pub async fn detail(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ConversationDetail>> {
    let detail = state
        .store
        .conversation(auth.user_id, ConversationId(id))
        .await?;
    Ok(Json(detail_with_presence(&state, detail).await))
}

/// Which page of history: after a seq (catching up), before one (scrolling back), or the latest.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Entries with seq greater than this, oldest first. Not with `before_seq`.
    #[param(minimum = 0)]
    pub after_seq: Option<i64>,
    /// Entries with seq less than this (the page just before it), oldest first. Not with
    /// `after_seq`.
    #[param(minimum = 0)]
    pub before_seq: Option<i64>,
    /// Page size, 1–200; default 50. Signed so that a negative value gets the same
    /// `invalid_input` as every negative seq or limit.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/conversations/{id}/messages", tag = "conversations", security(("bearer" = [])),
    params(("id" = i64, Path, description = "the conversation"), HistoryQuery),
    responses((status = 200, description = "a page of the stream, oldest first", body = MessagePage),
        (status = 400, description = "invalid_input: a negative seq, `limit` outside 1–200, both `after_seq` and `before_seq`, an unknown or malformed query parameter", body = ErrorBody),
        (status = 404, description = "not_found: no such conversation, or the caller is not a member", body = ErrorBody)))]
pub async fn messages(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<MessagePage>> {
    for (field, value) in [
        ("after_seq", query.after_seq),
        ("before_seq", query.before_seq),
        ("limit", query.limit),
    ] {
        if let Some(value) = value {
            check_non_negative(field, value)?;
        }
    }
    let limit = query.limit.unwrap_or(i64::from(HISTORY_PAGE_DEFAULT));
    if !(1..=i64::from(HISTORY_PAGE_MAX)).contains(&limit) {
        return Err(ApiError::invalid_input(format!(
            "limit must be 1-{HISTORY_PAGE_MAX}"
        )));
    }
    let limit = limit as u32;
    let id = ConversationId(id);
    let page = match (query.after_seq, query.before_seq) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_input(
                "give after_seq or before_seq, not both",
            ))
        }
        (Some(after), None) => {
            state
                .store
                .messages_after(auth.user_id, id, after, limit)
                .await?
        }
        (None, Some(before)) => {
            state
                .store
                .messages_before(auth.user_id, id, before, limit)
                .await?
        }
        (None, None) => {
            state
                .store
                .messages_before(auth.user_id, id, i64::MAX, limit)
                .await?
        }
    };
    Ok(Json(MessagePage {
        messages: page.entries.into_iter().map(wire::message).collect(),
        has_more: page.has_more,
    }))
}

#[utoipa::path(post, path = "/conversations/{id}/read", tag = "conversations", security(("bearer" = [])),
    params(("id" = i64, Path, description = "the conversation")), request_body = MarkReadRequest,
    responses((status = 200, description = "where the read pointer is now", body = ReadPointer),
        (status = 400, description = "invalid_input: a negative `seq`", body = ErrorBody),
        (status = 404, description = "not_found: no such conversation, or the caller is not a member", body = ErrorBody)))]
pub async fn mark_read(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<MarkReadRequest>,
) -> ApiResult<Json<ReadPointer>> {
    check_non_negative("seq", req.seq)?;
    let conversation_id = ConversationId(id);
    let read_seq = stream::mark_read(&state, auth.user_id, conversation_id, req.seq).await?;
    Ok(Json(ReadPointer { read_seq }))
}
