//! Banter's wire protocol: every type that crosses the network, and nothing else.
//!
//! The WebSocket speaks JSON, one object per frame, tagged by `type`
//! ([`ClientFrame`] up, [`ServerEvent`] down). The REST API under `/api/v1`
//! uses the bodies in [`api`]. Both report failures with one [`ErrorCode`].
//! This crate changes together with `docs/protocol.md`.

pub mod api;
pub mod error;
pub mod event;
pub mod frame;
pub mod ids;
pub mod model;

pub use error::{ErrorBody, ErrorCode};
pub use event::ServerEvent;
pub use frame::ClientFrame;
pub use ids::{ConversationId, FriendRequestId, MessageId, RequestId, UploadId, UserId};

/// The protocol version this crate describes. Bumped on any breaking change.
pub const PROTOCOL_VERSION: u32 = 1;

/// The WebSocket subprotocol a client offers (and the server selects) for this version.
pub const SUBPROTOCOL: &str = "banter.v1";

/// Prefix of the second subprotocol a browser offers to carry its bearer token,
/// since browsers cannot set an `Authorization` header on a WebSocket upgrade.
pub const AUTH_SUBPROTOCOL_PREFIX: &str = "banter.auth.";

/// Longest client message id accepted, in bytes.
pub const CLIENT_MSG_ID_BYTES_MAX: usize = 64;

/// Longest request `id` of a client frame accepted, in bytes. A longer one is refused with
/// `invalid_input` and `"id": null`, so the server never echoes an oversized id.
pub const REQUEST_ID_BYTES_MAX: usize = 64;
