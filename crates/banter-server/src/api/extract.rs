//! Extractors that turn axum's rejections into our structured errors, so a bad body,
//! path or query gets `{code, message}` like every other failure.

use crate::error::ApiError;
use crate::json;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use banter_protocol::ErrorCode;
use serde::de::DeserializeOwned;

/// A JSON request body. It passes the same checks as a WebSocket frame before serde
/// ([`json::precheck`]: nesting depth `json_depth_max`, no U+0000), so a rule about text
/// holds alike on both transports and on every database.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
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
        let depth_max = state.config.limits.json_depth_max;
        json::precheck(&body, depth_max).map_err(|refusal| {
            let code = match refusal {
                json::Refusal::TooDeep => ErrorCode::InvalidJson,
                json::Refusal::NulCharacter => ErrorCode::InvalidInput,
            };
            ApiError::new(code, json::explain(refusal, depth_max))
        })?;
        serde_json::from_slice(&body).map(ApiJson).map_err(|err| {
            let code = match err.classify() {
                serde_json::error::Category::Data => ErrorCode::InvalidFrame,
                _ => ErrorCode::InvalidJson,
            };
            ApiError::new(code, err.to_string())
        })
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
