//! Extractors that turn axum's rejections into our structured errors, so a bad body,
//! path or query gets `{code, message}` like every other failure.

use crate::error::ApiError;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use banter_protocol::ErrorCode;

/// A JSON request body: one JSON object, sent with `Content-Type: application/json`.
/// serde would also read a struct from a JSON array of its fields in order
/// (`["name", []]`); the protocol says a body is an object, so anything else is refused
/// with `invalid_frame`, as the WebSocket codec refuses such frames.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|rejection| ApiError::from(JsonRejection::from(rejection)))?;
        let is_object = bytes
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'{');
        // axum's own extractor, on the same bytes, checks the content type and parses,
        // with the path of the field at fault in its message.
        let rebuilt = Request::from_parts(parts, Body::from(bytes));
        let axum::Json(value) = axum::Json::<T>::from_request(rebuilt, state).await?;
        if !is_object {
            return Err(ApiError::new(
                ErrorCode::InvalidFrame,
                "the body must be one JSON object",
            ));
        }
        Ok(ApiJson(value))
    }
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let code = match &rejection {
            JsonRejection::JsonDataError(_) => ErrorCode::InvalidFrame,
            JsonRejection::JsonSyntaxError(_) => ErrorCode::InvalidJson,
            JsonRejection::MissingJsonContentType(_) => ErrorCode::InvalidInput,
            JsonRejection::BytesRejection(_) => ErrorCode::TooLarge,
            _ => ErrorCode::InvalidInput,
        };
        ApiError::new(code, rejection.body_text())
    }
}

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
