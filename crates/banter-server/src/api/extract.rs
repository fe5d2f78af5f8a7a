//! Extractors that turn axum's rejections into our structured errors, so a bad body,
//! path or query gets `{code, message}` like every other failure.

use crate::error::ApiError;
use crate::json;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::header;
use banter_protocol::ErrorCode;
use serde::de::DeserializeOwned;

/// A JSON request body: one JSON object, sent with `Content-Type: application/json`. It
/// passes the same checks as a WebSocket frame before serde ([`json::precheck`]: nesting
/// depth `json_depth_max`, no U+0000), so a rule about text holds alike on both transports
/// and on every database. serde would also read a struct from a JSON array of its fields
/// in order (`["name", []]`); the protocol says a body is an object, so anything else is
/// refused with `invalid_frame`, as the WebSocket codec refuses such frames.
pub struct ApiJson<T>(pub T);

/// The nesting limit a body is checked against: `json_depth_max` from the server's
/// configuration, or its default where there is no server (the extractor's own tests).
#[derive(Clone, Copy)]
pub struct JsonDepthMax(pub usize);

impl FromRef<AppState> for JsonDepthMax {
    fn from_ref(state: &AppState) -> Self {
        JsonDepthMax(state.config.limits.json_depth_max)
    }
}

impl FromRef<()> for JsonDepthMax {
    fn from_ref(_: &()) -> Self {
        JsonDepthMax(crate::config::Config::default_json_depth_max())
    }
}

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
    JsonDepthMax: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json_content_type(&req) {
            return Err(ApiError::invalid_input(
                "expected a request with `Content-Type: application/json`",
            ));
        }
        // Honours the body limit (`request_body_bytes_max`) like every other extractor.
        let body = Bytes::from_request(req, state).await.map_err(|rejection| {
            let code = if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ErrorCode::TooLarge
            } else {
                ErrorCode::InvalidInput
            };
            ApiError::new(code, rejection.body_text())
        })?;
        let JsonDepthMax(depth_max) = JsonDepthMax::from_ref(state);
        json::precheck(&body, depth_max).map_err(|refusal| {
            let code = match refusal {
                json::Refusal::TooDeep => ErrorCode::InvalidJson,
                json::Refusal::NulCharacter => ErrorCode::InvalidInput,
            };
            ApiError::new(code, json::explain(refusal, depth_max))
        })?;
        let value = serde_json::from_slice(&body).map_err(|err| {
            let code = match err.classify() {
                serde_json::error::Category::Data => ErrorCode::InvalidFrame,
                _ => ErrorCode::InvalidJson,
            };
            ApiError::new(code, err.to_string())
        })?;
        let is_object = body
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'{');
        if !is_object {
            return Err(ApiError::new(
                ErrorCode::InvalidFrame,
                "the body must be one JSON object",
            ));
        }
        Ok(ApiJson(value))
    }
}

/// `application/json`, or any `application/*+json`, with or without parameters.
fn is_json_content_type(req: &Request) -> bool {
    let Some(value) = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let Some(subtype) = essence
        .get(..12)
        .filter(|prefix| prefix.eq_ignore_ascii_case("application/"))
        .map(|_| &essence[12..])
    else {
        return false;
    };
    subtype.eq_ignore_ascii_case("json")
        || subtype
            .get(subtype.len().saturating_sub(5)..)
            .is_some_and(|suffix| suffix.eq_ignore_ascii_case("+json"))
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::invalid_input(rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::invalid_input(rejection.body_text())
    }
}
