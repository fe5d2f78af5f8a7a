//! The Banter client SDK, built on the wire types of [`banter_protocol`] alone.
//!
//! Three layers, each usable on its own:
//! - [`Client`]: the REST API, one typed method per route, plus [`Client::raw`] for
//!   tests that need the exact status and body.
//! - [`Connection`]: one raw WebSocket. Frames up, events down, nothing remembered.
//! - [`Session`]: what an application wants. It reconnects, resends unacknowledged
//!   messages with their original client id, catches up by seq, and delivers each
//!   message exactly once, in order per conversation. Its bookkeeping is the pure
//!   [`Cursors`].
//!
//! Every network wait has a deadline; every queue has a bound. Failures are one
//! [`ClientError`], whose [`code`](ClientError::code) is the server's [`ErrorCode`].
//!
//! ```no_run
//! # async fn demo() -> banter_client::Result<()> {
//! use banter_client::{Client, Session};
//! let mut bob = Client::new("http://127.0.0.1:8080")?;
//! bob.login("bob", "correct horse", "cli").await?;
//! let alice = bob.user_by_username("alice").await?;
//! let direct = bob.open_direct(alice.id).await?;
//! let mut session = Session::start(bob).await?;
//! session.send_text(direct.id, "hello").await?;
//! # Ok(()) }
//! ```

pub mod admin;
pub mod client;
pub mod connection;
pub mod cursor;
pub mod error;
pub mod session;

pub use admin::{AdminClient, ADMIN_BATCH_MAX};
pub use banter_protocol::{self as protocol, ErrorCode};
pub use client::{Client, Download, RawResponse, DEFAULT_TIMEOUT};
pub use connection::{Connection, Hello};
pub use cursor::{Cursors, Offered};
pub use error::{ClientError, Result};
pub use reqwest::Method;
pub use session::{new_client_msg_id, Ack, Session, SessionEvent, SessionOptions};
