//! Seeding in bulk, for the admin API and `banter-bench`: not part of the production seam.
//!
//! Each method takes any number of rows and splits them into multi-row statements as the
//! backend's limit on bound parameters requires (PostgreSQL binds whole columns as arrays
//! and needs one statement); an empty slice runs nothing.

use async_trait::async_trait;
use banter_protocol::{ConversationId, UserId};

use super::Dialect;
use crate::{NewSession, SeedUser, StoreResult};

/// The queries of seeding in bulk, each inside the seeding transaction.
#[async_trait]
pub trait SeedSql: Dialect {
    /// The users whose `username_key` is one of `keys`, as (key, id), in no order.
    async fn user_ids_by_keys(
        conn: &mut Self::Conn,
        keys: &[String],
    ) -> StoreResult<Vec<(String, UserId)>>;
    /// Inserts the users (no avatar or signature), all with `password_hash`.
    async fn insert_users(
        conn: &mut Self::Conn,
        users: &[SeedUser],
        password_hash: &str,
        now_ms: i64,
    ) -> StoreResult<()>;
    async fn insert_sessions(
        conn: &mut Self::Conn,
        sessions: &[NewSession],
        now_ms: i64,
    ) -> StoreResult<()>;
    /// Which of `ids` are users, in no order.
    async fn existing_user_ids(conn: &mut Self::Conn, ids: &[UserId]) -> StoreResult<Vec<UserId>>;
    /// Both rows of each friendship; rows that exist are left as they are.
    async fn insert_friendships(
        conn: &mut Self::Conn,
        pairs: &[(UserId, UserId)],
        now_ms: i64,
    ) -> StoreResult<()>;
    /// The direct conversations whose `direct_key` is one of `keys`, as (key, id), in no order.
    async fn direct_conversations_by_keys(
        conn: &mut Self::Conn,
        keys: &[String],
    ) -> StoreResult<Vec<(String, ConversationId)>>;
    /// One empty direct conversation (`last_seq` 0) per key.
    async fn insert_direct_conversations(
        conn: &mut Self::Conn,
        keys: &[String],
        now_ms: i64,
    ) -> StoreResult<()>;
}
