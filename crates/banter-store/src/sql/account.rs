//! Accounts and sessions: users, their profiles and passwords, and login sessions.

use async_trait::async_trait;
use banter_protocol::UserId;

use super::{args, ids, sql, Dialect};
use crate::row::{clearable, profile_at, username_key, Columns};
use crate::{
    Credentials, NewSession, NewUser, ProfileUpdate, Session, SessionId, StoreResult, UserRecord,
};

/// The queries of accounts and sessions.
#[async_trait]
pub trait AccountSql: Dialect {
    /// Inserts the user; a unique violation means the username is taken.
    async fn insert_user(&self, user: &NewUser, now_ms: i64) -> Result<UserRecord, sqlx::Error> {
        let key = username_key(&user.username);
        let mut conn = self.acquire().await?;
        let id = Self::insert(
            &mut conn,
            sql!(
                "INSERT INTO users \
                 (username, username_key, nickname, avatar_url, signature, password_hash, \
                 created_at_ms) \
                 VALUES (?, ?, ?, NULL, NULL, ?, ?) RETURNING id"
            ),
            args![
                &user.username,
                &key,
                &user.nickname,
                &user.password_hash,
                now_ms
            ],
        )
        .await?;
        Ok(UserRecord {
            id: UserId(id),
            username: user.username.clone(),
            nickname: user.nickname.clone(),
            avatar_url: None,
            signature: None,
        })
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        let mut conn = self.acquire().await?;
        Self::profile(&mut conn, id).await
    }

    /// [`AccountSql::user`] on a given connection.
    async fn profile(conn: &mut Self::Conn, id: UserId) -> StoreResult<Option<UserRecord>> {
        let row = Self::fetch_optional(
            conn,
            sql!("SELECT id, username, nickname, avatar_url, signature FROM users WHERE id = ?"),
            args![id],
        )
        .await?;
        Ok(row.map(|row| profile_at(&row, 0)).transpose()?)
    }

    async fn user_by_username_key(&self, key: &str) -> StoreResult<Option<UserRecord>> {
        let mut conn = self.acquire().await?;
        let row = Self::fetch_optional(
            &mut conn,
            sql!(
                "SELECT id, username, nickname, avatar_url, signature FROM users \
                 WHERE username_key = ?"
            ),
            args![key],
        )
        .await?;
        Ok(row.map(|row| profile_at(&row, 0)).transpose()?)
    }

    async fn credentials(&self, key: &str) -> StoreResult<Option<Credentials>> {
        let mut conn = self.acquire().await?;
        let row = Self::fetch_optional(
            &mut conn,
            sql!("SELECT id, password_hash FROM users WHERE username_key = ?"),
            args![key],
        )
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(Credentials {
            user_id: UserId(row.int(0)?),
            password_hash: row.text(1)?,
        }))
    }

    async fn password_hash(&self, id: UserId) -> StoreResult<Option<String>> {
        let mut conn = self.acquire().await?;
        let row = Self::fetch_optional(
            &mut conn,
            sql!("SELECT password_hash FROM users WHERE id = ?"),
            args![id],
        )
        .await?;
        Ok(row.map(|row| row.text(0)).transpose()?)
    }

    /// Applies the update (see [`ProfileUpdate`]); `None` if there is no such user.
    async fn update_profile(
        &self,
        id: UserId,
        update: ProfileUpdate,
    ) -> StoreResult<Option<UserRecord>> {
        let (set_avatar, avatar_url) = clearable(update.avatar_url);
        let (set_signature, signature) = clearable(update.signature);
        let mut conn = self.acquire().await?;
        let row = Self::fetch_optional(
            &mut conn,
            sql!(
                "UPDATE users SET nickname = COALESCE(?, nickname), \
                 avatar_url = CASE WHEN ? THEN ? ELSE avatar_url END, \
                 signature = CASE WHEN ? THEN ? ELSE signature END \
                 WHERE id = ? RETURNING id, username, nickname, avatar_url, signature"
            ),
            args![
                update.nickname.as_deref(),
                set_avatar,
                avatar_url.as_deref(),
                set_signature,
                signature.as_deref(),
                id,
            ],
        )
        .await?;
        Ok(row.map(|row| profile_at(&row, 0)).transpose()?)
    }

    async fn insert_session(&self, session: &NewSession, now_ms: i64) -> StoreResult<SessionId> {
        let mut conn = self.acquire().await?;
        let id = Self::insert(
            &mut conn,
            sql!(
                "INSERT INTO sessions \
                 (user_id, token_hash, device_name, created_at_ms, expires_at_ms) \
                 VALUES (?, ?, ?, ?, ?) RETURNING id"
            ),
            args![
                session.user_id,
                session.token_hash.as_slice(),
                &session.device_name,
                now_ms,
                session.expires_at_ms,
            ],
        )
        .await?;
        Ok(SessionId(id))
    }

    /// The live (unexpired) session whose token hashes to `token_hash`.
    async fn session_by_token_hash(
        &self,
        token_hash: &[u8],
        now_ms: i64,
    ) -> StoreResult<Option<Session>> {
        let mut conn = self.acquire().await?;
        let row = Self::fetch_optional(
            &mut conn,
            sql!(
                "SELECT id, user_id, expires_at_ms FROM sessions \
                 WHERE token_hash = ? AND expires_at_ms > ?"
            ),
            args![token_hash, now_ms],
        )
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(Session {
            id: SessionId(row.int(0)?),
            user_id: UserId(row.int(1)?),
            expires_at_ms: row.int(2)?,
        }))
    }

    async fn delete_session(&self, id: SessionId) -> StoreResult<()> {
        let mut conn = self.acquire().await?;
        Self::execute(
            &mut conn,
            sql!("DELETE FROM sessions WHERE id = ?"),
            args![id],
        )
        .await?;
        Ok(())
    }

    // ---- inside a transaction ----

    /// Replaces the hash; returns whether the user exists.
    async fn set_password(conn: &mut Self::Conn, id: UserId, hash: &str) -> StoreResult<bool> {
        let updated = Self::execute(
            conn,
            sql!("UPDATE users SET password_hash = ? WHERE id = ?"),
            args![hash, id],
        )
        .await?;
        Ok(updated > 0)
    }

    /// Deletes the user's sessions but `keep` and returns them.
    async fn revoke_sessions(
        conn: &mut Self::Conn,
        user: UserId,
        keep: SessionId,
    ) -> StoreResult<Vec<SessionId>> {
        let rows = Self::fetch_all(
            conn,
            sql!("DELETE FROM sessions WHERE user_id = ? AND id <> ? RETURNING id"),
            args![user, keep],
        )
        .await?;
        Ok(ids(&rows, SessionId)?)
    }
}
