//! The service layer: the rules about what changes and who is told, one module per
//! domain. REST handlers (`api/`) and WebSocket frame handlers (`gateway/frames/`) parse,
//! call a service, and render its answer; they never publish or touch the hub.
//!
//! - [`stream`]: sends, recalls, read marks, typing and sync: everything about a
//!   conversation's stream. Every append goes through the [`crate::writer`].
//! - [`groups`]: creating and changing groups, and telling who joined and who left.
//! - [`social`]: friends, friend requests and blocks.
//! - [`sessions`]: logout and password change, whose revocations travel on the bus.
//! - [`presence`]: a user's first device online and last offline, told to their friends.
//! - [`media`]: uploads, attachments and avatars: quota, who may attach and download what,
//!   and the clean-up of uploads no message uses.
//!
//! Plain reads (a profile, a page of history) go from the handler to the store: nobody
//! is told anything.

pub mod groups;
pub mod media;
pub mod presence;
pub mod sessions;
pub mod social;
pub mod stream;
