//! Seeding in bulk, for the admin API and `banter-bench`: not part of the production seam.
//!
//! Each method takes any number of rows and splits them into multi-row statements as the
//! backend's limit on bound parameters requires; an empty slice runs nothing. The defaults
//! are SQLite's and MySQL's: `VALUES` lists and `IN` lists in chunks. PostgreSQL overrides
//! them all with one statement each that binds whole columns as arrays (`UNNEST`,
//! `= ANY`), which never needs chunking.

use async_trait::async_trait;
use banter_protocol::{ConversationId, UserId};

use super::{args, in_list, values, Arg, Dialect};
use crate::row::{rows_per_statement, username_key, Columns};
use crate::{NewSession, SeedUser, StoreResult};

/// The queries of seeding in bulk, each inside the seeding transaction.
#[async_trait]
pub trait SeedSql: Dialect {
    /// The users whose `username_key` is one of `keys`, as (key, id), in no order.
    async fn user_ids_by_keys(
        conn: &mut Self::Conn,
        keys: &[String],
    ) -> StoreResult<Vec<(String, UserId)>> {
        let found = ids_by_keys::<Self>(
            conn,
            "SELECT username_key, id FROM users WHERE username_key IN ",
            keys,
        )
        .await?;
        Ok(found
            .into_iter()
            .map(|(key, id)| (key, UserId(id)))
            .collect())
    }

    /// Inserts the users (no avatar or signature), all with `password_hash`.
    async fn insert_users(
        conn: &mut Self::Conn,
        users: &[SeedUser],
        password_hash: &str,
        now_ms: i64,
    ) -> StoreResult<()> {
        let keys: Vec<String> = users.iter().map(|u| username_key(&u.username)).collect();
        let per_statement = rows_per_statement(5, Self::BIND_PARAMS_MAX);
        for (chunk, keys) in users.chunks(per_statement).zip(keys.chunks(per_statement)) {
            let mut bound: Vec<Arg<'_>> = Vec::with_capacity(5 * chunk.len());
            for (user, key) in chunk.iter().zip(keys) {
                bound.extend_from_slice(args![
                    &user.username,
                    key,
                    &user.nickname,
                    password_hash,
                    now_ms
                ]);
            }
            let insert = format!(
                "INSERT INTO users \
                 (username, username_key, nickname, avatar_url, signature, password_hash, \
                 created_at_ms) {}",
                values("(?, ?, ?, NULL, NULL, ?, ?)", chunk.len())
            );
            Self::execute_built(conn, &insert, &bound).await?;
        }
        Ok(())
    }

    async fn insert_sessions(
        conn: &mut Self::Conn,
        sessions: &[NewSession],
        now_ms: i64,
    ) -> StoreResult<()> {
        for chunk in sessions.chunks(rows_per_statement(5, Self::BIND_PARAMS_MAX)) {
            let mut bound: Vec<Arg<'_>> = Vec::with_capacity(5 * chunk.len());
            for session in chunk {
                bound.extend_from_slice(args![
                    session.user_id,
                    session.token_hash.as_slice(),
                    &session.device_name,
                    now_ms,
                    session.expires_at_ms
                ]);
            }
            let insert = format!(
                "INSERT INTO sessions \
                 (user_id, token_hash, device_name, created_at_ms, expires_at_ms) {}",
                values("(?, ?, ?, ?, ?)", chunk.len())
            );
            Self::execute_built(conn, &insert, &bound).await?;
        }
        Ok(())
    }

    /// Which of `ids` are users, in no order.
    async fn existing_user_ids(conn: &mut Self::Conn, ids: &[UserId]) -> StoreResult<Vec<UserId>> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(rows_per_statement(1, Self::BIND_PARAMS_MAX)) {
            let bound: Vec<Arg<'_>> = chunk.iter().map(|&id| Arg::from(id)).collect();
            let select = format!("SELECT id FROM users WHERE id IN {}", in_list(chunk.len()));
            let rows = Self::fetch_all_built(conn, &select, &bound).await?;
            found.extend(super::ids(&rows, UserId)?);
        }
        Ok(found)
    }

    /// Both rows of each friendship; rows that exist are left as they are.
    async fn insert_friendships(
        conn: &mut Self::Conn,
        pairs: &[(UserId, UserId)],
        now_ms: i64,
    ) -> StoreResult<()> {
        // Two rows of three parameters per pair.
        for chunk in pairs.chunks(rows_per_statement(6, Self::BIND_PARAMS_MAX)) {
            let mut bound: Vec<Arg<'_>> = Vec::with_capacity(6 * chunk.len());
            for &(a, b) in chunk {
                bound.extend_from_slice(args![a, b, now_ms, b, a, now_ms]);
            }
            let insert = format!(
                "INSERT INTO friendships (user_id, friend_id, since_ms) {} \
                 ON CONFLICT DO NOTHING",
                values("(?, ?, ?)", 2 * chunk.len())
            );
            Self::execute_built(conn, &insert, &bound).await?;
        }
        Ok(())
    }

    /// The direct conversations whose `direct_key` is one of `keys`, as (key, id), in no order.
    async fn direct_conversations_by_keys(
        conn: &mut Self::Conn,
        keys: &[String],
    ) -> StoreResult<Vec<(String, ConversationId)>> {
        let found = ids_by_keys::<Self>(
            conn,
            "SELECT direct_key, id FROM conversations WHERE direct_key IN ",
            keys,
        )
        .await?;
        Ok(found
            .into_iter()
            .map(|(key, id)| (key, ConversationId(id)))
            .collect())
    }

    /// One empty direct conversation (`last_seq` 0) per key.
    async fn insert_direct_conversations(
        conn: &mut Self::Conn,
        keys: &[String],
        now_ms: i64,
    ) -> StoreResult<()> {
        for chunk in keys.chunks(rows_per_statement(3, Self::BIND_PARAMS_MAX)) {
            let mut bound: Vec<Arg<'_>> = Vec::with_capacity(3 * chunk.len());
            for key in chunk {
                bound.extend_from_slice(args![key, now_ms, now_ms]);
            }
            let insert = format!(
                "INSERT INTO conversations \
                 (kind, name, direct_key, last_seq, last_activity_ms, created_at_ms) {}",
                values("('direct', NULL, ?, 0, ?, ?)", chunk.len())
            );
            Self::execute_built(conn, &insert, &bound).await?;
        }
        Ok(())
    }
}

/// `(key, id)` rows of `select` (a `SELECT key, id … IN ` prefix) for each of `keys`, in as
/// many statements as the bound-parameter limit needs.
async fn ids_by_keys<S: SeedSql + ?Sized>(
    conn: &mut S::Conn,
    select: &str,
    keys: &[String],
) -> StoreResult<Vec<(String, i64)>> {
    let mut found = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(rows_per_statement(1, S::BIND_PARAMS_MAX)) {
        let bound: Vec<Arg<'_>> = chunk.iter().map(Arg::from).collect();
        let text = format!("{select}{}", in_list(chunk.len()));
        for row in S::fetch_all_built(conn, &text, &bound).await? {
            found.push((row.text(0)?, row.int(1)?));
        }
    }
    Ok(found)
}
