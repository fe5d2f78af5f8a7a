//! The WebSocket gateway: the upgrade (auth, Origin, connection caps), one task per
//! connection, frame decoding, and the hub of live connections.

pub mod codec;
pub mod connection;
mod frames;
pub mod hub;

use crate::auth::{self, AuthUser};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use banter_protocol::ErrorCode;

/// `GET /ws`: authenticates and checks the Origin *before* upgrading, so a refused
/// client gets a plain HTTP error and never a socket.
pub async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    check_origin(&state, &headers)?;
    let token = auth::upgrade_token(&headers).ok_or_else(ApiError::unauthorized)?;
    let auth = AuthUser::from_token(&state, &token).await?;
    // The connection checks the session again once it is registered with the hub, where
    // a revocation can reach it: a logout that lands in between would otherwise miss it.
    let token_hash = auth::token_hash(&token);
    if state.shutdown.is_cancelled() {
        return Err(ApiError::new(
            ErrorCode::ShuttingDown,
            "the server is shutting down",
        ));
    }
    let permit = state
        .connection_slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::new(
                ErrorCode::ShuttingDown,
                "the server is at its connection limit; retry later",
            )
        })?;
    let limits = &state.config.limits;
    // Frames up to frame_bytes_max are handled; bigger ones get `too_large` and the
    // connection stays up. Beyond this hard cap the socket layer drops the connection.
    let hard_frame_bytes_max = limits.frame_bytes_max.saturating_mul(HARD_FRAME_FACTOR);
    let ws = ws
        .protocols([banter_protocol::SUBPROTOCOL])
        .read_buffer_size(SOCKET_READ_BUFFER_BYTES)
        .write_buffer_size(SOCKET_WRITE_BUFFER_BYTES)
        .max_message_size(hard_frame_bytes_max)
        .max_frame_size(hard_frame_bytes_max);
    let tracker = state.connections.clone();
    Ok(ws.on_upgrade(move |socket| {
        tracker.track_future(connection::run(state, auth, token_hash, socket, permit))
    }))
}

/// Initial read buffer of a connection. The library's default (128 KiB, zero-filled on
/// first read) would make an idle connection cost over 128 KiB; chat frames are small,
/// and a larger frame grows the buffer as it needs.
pub const SOCKET_READ_BUFFER_BYTES: usize = 1024;
/// Bytes of outgoing frames collected before they are written out on their own; frames
/// are written at every flush anyway, which the connection does after each burst.
pub const SOCKET_WRITE_BUFFER_BYTES: usize = 16 * 1024;

/// How many times `frame_bytes_max` a frame may be before the socket layer drops the connection.
pub const HARD_FRAME_FACTOR: usize = 16;

/// Browsers always send `Origin` on a WebSocket upgrade; it must be this server's own
/// origin or one the operator allowed, so another site cannot ride a user's token.
/// Non-browser clients send no Origin and are judged by their token alone.
fn check_origin(state: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("");
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let same_origin = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|rest| !host.is_empty() && rest == host);
    if same_origin || state.config.allowed_origins.iter().any(|o| o == origin) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::Forbidden,
            "this Origin may not open a WebSocket here",
        ))
    }
}
