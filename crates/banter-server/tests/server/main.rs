//! End-to-end tests: a real server on an ephemeral port with a temporary SQLite database,
//! driven only through the client SDK over real HTTP and WebSocket connections.

mod common;

mod bad_input;
mod chat;
mod features;
mod group;
mod groups;
mod restart;
mod sync;
