//! [`ClientError`], the one error type of the SDK, and the [`Result`] alias.
//!
//! Callers branch on [`ClientError::code`] (the server's [`ErrorCode`]) or on
//! [`ClientError::close_code`] (how a WebSocket ended), never on message text.

use banter_protocol::ErrorCode;
use tokio_tungstenite::tungstenite;

/// `Result` with [`ClientError`].
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Everything that can go wrong talking to a Banter server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered an HTTP request (REST, or the WebSocket upgrade) with an
    /// error status and an [`ErrorBody`](banter_protocol::ErrorBody).
    #[error("HTTP {status} {}: {message}", code.as_str())]
    Api {
        status: u16,
        code: ErrorCode,
        message: String,
        /// The `Retry-After` header (whole seconds), which comes with `rate_limited`.
        retry_after_secs: Option<u64>,
    },
    /// The server answered a WebSocket request with an `error` frame.
    #[error("request rejected, {}: {message}", code.as_str())]
    Rejected { code: ErrorCode, message: String },
    /// The HTTP request failed below the API: connection refused, reset, bad URL.
    #[error("HTTP transport: {0}")]
    Http(#[source] reqwest::Error),
    /// The WebSocket failed below the protocol: handshake, I/O, framing.
    #[error("WebSocket: {0}")]
    WebSocket(#[from] Box<tungstenite::Error>),
    /// The WebSocket is closed. `code` is the close code the server sent (1000 normal,
    /// 1001 shutting down, 4001 session revoked, 4008 too slow, …), `None` when the
    /// connection ended without a close frame or went silent.
    #[error("connection closed (code {code:?}): {reason}")]
    Closed { code: Option<u16>, reason: String },
    /// No answer within the time the caller (or the SDK's default) allowed.
    #[error("timed out")]
    Timeout,
    /// The server said something this SDK cannot understand: a body or frame that does
    /// not parse, or a reply that does not fit the request.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// A [`Session`](crate::Session) already holds its maximum of unacknowledged sends.
    #[error("{max} sends are already waiting for their ack")]
    TooManyPending { max: usize },
    /// A [`Session`](crate::Session) holds `events` events the application has not
    /// taken with `next_event`; it stops reading the socket until some are taken.
    #[error("{events} events are waiting for the application; take some with next_event")]
    Backlog { events: usize },
}

impl ClientError {
    /// The server's error code, for [`ClientError::Api`] and [`ClientError::Rejected`].
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api { code, .. } | ClientError::Rejected { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The HTTP status, for [`ClientError::Api`].
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// How long the server asked to wait before retrying (`Retry-After`, sent with
    /// `rate_limited`), for [`ClientError::Api`].
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            ClientError::Api {
                retry_after_secs: Some(secs),
                ..
            } => Some(std::time::Duration::from_secs(*secs)),
            _ => None,
        }
    }

    /// The WebSocket close code, for [`ClientError::Closed`] with a close frame.
    pub fn close_code(&self) -> Option<u16> {
        match self {
            ClientError::Closed { code, .. } => *code,
            _ => None,
        }
    }

    /// Whether the error means the WebSocket is gone (so a session should reconnect),
    /// as opposed to a refused request or an expired deadline.
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, ClientError::Closed { .. } | ClientError::WebSocket(_))
    }
}

impl From<tungstenite::Error> for ClientError {
    fn from(err: tungstenite::Error) -> Self {
        ClientError::WebSocket(Box::new(err))
    }
}

/// Socket errors while connecting (refused, unreachable, no local port left) are WebSocket
/// transport errors, as they were when the library opened the socket itself.
impl From<std::io::Error> for ClientError {
    fn from(err: std::io::Error) -> Self {
        ClientError::WebSocket(Box::new(tungstenite::Error::Io(err)))
    }
}

impl From<reqwest::Error> for ClientError {
    /// A request that ran out of time is [`ClientError::Timeout`], like every other deadline.
    fn from(err: reqwest::Error) -> Self {
        if err.is_timeout() {
            ClientError::Timeout
        } else {
            ClientError::Http(err)
        }
    }
}

impl From<tokio::time::error::Elapsed> for ClientError {
    fn from(_: tokio::time::error::Elapsed) -> Self {
        ClientError::Timeout
    }
}
