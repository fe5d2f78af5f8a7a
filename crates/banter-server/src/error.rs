//! The server's one error type, used by REST handlers and the WebSocket gateway alike.
//! Client-facing text is sanitized: a backend failure is logged once, here, with its
//! cause, and the client sees only `internal`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use banter_protocol::{ErrorBody, ErrorCode};
use banter_store::StoreError;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// For `rate_limited`: how long until the request would be allowed, sent to REST
    /// clients as `Retry-After` (whole seconds, rounded up).
    pub retry_after: Option<Duration>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(ErrorCode::Unauthorized, "missing, expired or revoked token")
    }

    pub fn not_found() -> Self {
        Self::new(ErrorCode::NotFound, "not found")
    }

    pub fn internal() -> Self {
        Self::new(
            ErrorCode::Internal,
            "internal error; the server logged the cause",
        )
    }

    pub fn status(&self) -> StatusCode {
        status_of(self.code)
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code,
            message: self.message.clone(),
        }
    }
}

/// Refuses a negative seq or limit with `invalid_input`: the one rule, and the one code,
/// for every such field of a frame, a request body or a query string.
pub fn check_non_negative(field: &str, value: i64) -> ApiResult<()> {
    if value < 0 {
        return Err(ApiError::invalid_input(format!(
            "{field} must not be negative"
        )));
    }
    Ok(())
}

/// The HTTP status for each error code. Exhaustive on purpose: a new code must pick one.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidJson | ErrorCode::InvalidFrame | ErrorCode::InvalidInput => {
            StatusCode::BAD_REQUEST
        }
        ErrorCode::TooLarge | ErrorCode::QuotaExceeded => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::Unauthorized | ErrorCode::InvalidCredentials => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden
        | ErrorCode::Blocked
        | ErrorCode::NotFriends
        | ErrorCode::RecallWindowExpired => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
        ErrorCode::UsernameTaken | ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// How many taken usernames an error message names before it says "and N more".
const USERNAMES_LISTED_MAX: usize = 10;

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => ApiError::not_found(),
            StoreError::UsernameTaken => {
                ApiError::new(ErrorCode::UsernameTaken, "that username is taken")
            }
            StoreError::UsernamesTaken(names) => {
                let mut listed = names
                    .iter()
                    .take(USERNAMES_LISTED_MAX)
                    .map(|n| format!("{n:?}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                if names.len() > USERNAMES_LISTED_MAX {
                    listed.push_str(&format!(" and {} more", names.len() - USERNAMES_LISTED_MAX));
                }
                ApiError::new(
                    ErrorCode::UsernameTaken,
                    format!("these usernames are taken (in some letter case) or repeated in the request: {listed}"),
                )
            }
            StoreError::Conflict(why) => ApiError::new(ErrorCode::Conflict, why),
            StoreError::Forbidden(why) => ApiError::new(ErrorCode::Forbidden, why),
            StoreError::InvalidInput(why) => ApiError::new(ErrorCode::InvalidInput, why),
            StoreError::Blocked => {
                ApiError::new(ErrorCode::Blocked, "one of you has blocked the other")
            }
            StoreError::NotFriends => {
                ApiError::new(ErrorCode::NotFriends, "you can only do this with friends")
            }
            StoreError::QuotaExceeded => ApiError::new(
                ErrorCode::QuotaExceeded,
                "the upload would take you past your storage quota",
            ),
            StoreError::RecallWindowExpired => ApiError::new(
                ErrorCode::RecallWindowExpired,
                "the time to recall this message has passed",
            ),
            StoreError::Config(_) | StoreError::Migrate(_) | StoreError::Database(_) => {
                tracing::error!(error = %err, "store failure");
                ApiError::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), Json(self.body())).into_response();
        if let Some(wait) = self.retry_after {
            let secs = crate::ratelimit::retry_after_secs(wait);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
