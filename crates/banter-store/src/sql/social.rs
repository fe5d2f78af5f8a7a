//! The social graph: friendships, friend requests and blocks.

use async_trait::async_trait;
use banter_protocol::model::FriendRequestStatus;
use banter_protocol::{FriendRequestId, UserId};

use super::{args, ids, sql, Dialect};
use crate::row::{
    friend_request_at, friend_request_sql, parse_status, profile_at, status_str, Columns,
};
use crate::{FriendRequestRecord, StoreResult, UserRecord};

/// The queries of the social graph.
#[async_trait]
pub trait SocialSql: Dialect {
    /// Friends with the time the friendship began, oldest first.
    async fn friends(&self, user: UserId) -> StoreResult<Vec<(UserRecord, i64)>> {
        let mut conn = self.acquire().await?;
        let rows = Self::fetch_all(
            &mut conn,
            sql!(
                "SELECT u.id, u.username, u.nickname, u.avatar_url, u.signature, f.since_ms \
                 FROM friendships f JOIN users u ON u.id = f.friend_id \
                 WHERE f.user_id = ? ORDER BY f.since_ms, u.id"
            ),
            args![user],
        )
        .await?;
        rows.iter()
            .map(|row| Ok((profile_at(row, 0)?, row.int(5)?)))
            .collect()
    }

    async fn friend_ids(&self, user: UserId) -> StoreResult<Vec<UserId>> {
        let mut conn = self.acquire().await?;
        let rows = Self::fetch_all(
            &mut conn,
            sql!("SELECT friend_id FROM friendships WHERE user_id = ? ORDER BY friend_id"),
            args![user],
        )
        .await?;
        Ok(ids(&rows, UserId)?)
    }

    /// Deletes both rows of the friendship; returns whether there was one.
    async fn delete_friendship(&self, a: UserId, b: UserId) -> StoreResult<bool> {
        let mut conn = self.acquire().await?;
        let removed = Self::execute(
            &mut conn,
            sql!(
                "DELETE FROM friendships \
                 WHERE (user_id = ? AND friend_id = ?) OR (user_id = ? AND friend_id = ?)"
            ),
            args![a, b, b, a],
        )
        .await?;
        Ok(removed > 0)
    }

    async fn delete_block(&self, user: UserId, blocked: UserId) -> StoreResult<()> {
        let mut conn = self.acquire().await?;
        Self::execute(
            &mut conn,
            sql!("DELETE FROM blocks WHERE user_id = ? AND blocked_id = ?"),
            args![user, blocked],
        )
        .await?;
        Ok(())
    }

    /// Oldest block first.
    async fn blocked_users(&self, user: UserId) -> StoreResult<Vec<UserRecord>> {
        let mut conn = self.acquire().await?;
        let rows = Self::fetch_all(
            &mut conn,
            sql!(
                "SELECT u.id, u.username, u.nickname, u.avatar_url, u.signature \
                 FROM blocks b JOIN users u ON u.id = b.blocked_id \
                 WHERE b.user_id = ? ORDER BY b.created_at_ms, u.id"
            ),
            args![user],
        )
        .await?;
        Ok(rows
            .iter()
            .map(|row| profile_at(row, 0))
            .collect::<Result<_, _>>()?)
    }

    // ---- inside a transaction ----

    /// Locks the rows of users `a` and `b` (ascending id order) until the transaction ends,
    /// which serializes every change to what is between the two. Returns whether `b` exists.
    async fn lock_users(conn: &mut Self::Conn, a: UserId, b: UserId) -> StoreResult<bool> {
        let rows = Self::fetch_all(
            conn,
            sql!("SELECT id FROM users WHERE id IN (?, ?) ORDER BY id FOR UPDATE"),
            args![a, b],
        )
        .await?;
        Ok(ids(&rows, UserId)?.contains(&b))
    }

    /// Whether either user blocked the other.
    async fn blocked_either(conn: &mut Self::Conn, a: UserId, b: UserId) -> StoreResult<bool> {
        let row = Self::fetch_one(
            conn,
            sql!(
                "SELECT EXISTS (SELECT 1 FROM blocks \
                 WHERE (user_id = ? AND blocked_id = ?) OR (user_id = ? AND blocked_id = ?))"
            ),
            args![a, b, b, a],
        )
        .await?;
        Ok(row.flag(0)?)
    }

    async fn are_friends(conn: &mut Self::Conn, a: UserId, b: UserId) -> StoreResult<bool> {
        let row = Self::fetch_one(
            conn,
            sql!("SELECT EXISTS (SELECT 1 FROM friendships WHERE user_id = ? AND friend_id = ?)"),
            args![a, b],
        )
        .await?;
        Ok(row.flag(0)?)
    }

    /// Whether a pending request exists between the two, either way round.
    async fn pending_between(conn: &mut Self::Conn, a: UserId, b: UserId) -> StoreResult<bool> {
        let row = Self::fetch_one(
            conn,
            sql!(
                "SELECT EXISTS (SELECT 1 FROM friend_requests WHERE status = 'pending' \
                 AND ((from_id = ? AND to_id = ?) OR (from_id = ? AND to_id = ?)))"
            ),
            args![a, b, b, a],
        )
        .await?;
        Ok(row.flag(0)?)
    }

    async fn insert_friend_request(
        conn: &mut Self::Conn,
        from: UserId,
        to: UserId,
        greeting: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<FriendRequestId> {
        let id = Self::insert(
            conn,
            sql!(
                "INSERT INTO friend_requests \
                 (from_id, to_id, greeting, status, created_at_ms, updated_at_ms) \
                 VALUES (?, ?, ?, 'pending', ?, ?) RETURNING id"
            ),
            args![from, to, greeting, now_ms, now_ms],
        )
        .await?;
        Ok(FriendRequestId(id))
    }

    async fn friend_request(
        conn: &mut Self::Conn,
        id: FriendRequestId,
    ) -> StoreResult<Option<FriendRequestRecord>> {
        let row =
            Self::fetch_optional(conn, sql!(friend_request_sql!("WHERE r.id = ?")), args![id])
                .await?;
        Ok(row.map(|row| friend_request_at(&row)).transpose()?)
    }

    /// Both lists oldest first: (incoming, outgoing) pending requests.
    async fn pending_requests(
        conn: &mut Self::Conn,
        user: UserId,
    ) -> StoreResult<(Vec<FriendRequestRecord>, Vec<FriendRequestRecord>)> {
        let incoming = Self::fetch_all(
            conn,
            sql!(friend_request_sql!(
                "WHERE r.to_id = ? AND r.status = 'pending' ORDER BY r.id"
            )),
            args![user],
        )
        .await?;
        let outgoing = Self::fetch_all(
            conn,
            sql!(friend_request_sql!(
                "WHERE r.from_id = ? AND r.status = 'pending' ORDER BY r.id"
            )),
            args![user],
        )
        .await?;
        let requests = |rows: Vec<Self::Row>| -> Result<Vec<FriendRequestRecord>, sqlx::Error> {
            rows.iter().map(friend_request_at).collect()
        };
        Ok((requests(incoming)?, requests(outgoing)?))
    }

    /// Locks the request's row and returns its sender, recipient and status.
    async fn lock_request(
        conn: &mut Self::Conn,
        id: FriendRequestId,
    ) -> StoreResult<Option<(UserId, UserId, FriendRequestStatus)>> {
        let row = Self::fetch_optional(
            conn,
            sql!("SELECT from_id, to_id, status FROM friend_requests WHERE id = ? FOR UPDATE"),
            args![id],
        )
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some((
            UserId(row.int(0)?),
            UserId(row.int(1)?),
            parse_status(&row.text(2)?)?,
        )))
    }

    async fn set_request_status(
        conn: &mut Self::Conn,
        id: FriendRequestId,
        status: FriendRequestStatus,
        now_ms: i64,
    ) -> StoreResult<()> {
        Self::execute(
            conn,
            sql!("UPDATE friend_requests SET status = ?, updated_at_ms = ? WHERE id = ?"),
            args![status_str(status), now_ms, id],
        )
        .await?;
        Ok(())
    }

    /// Inserts both rows of a friendship; an existing row keeps its earlier `since`.
    async fn insert_friendship(
        conn: &mut Self::Conn,
        a: UserId,
        b: UserId,
        now_ms: i64,
    ) -> StoreResult<()> {
        Self::execute(
            conn,
            sql!(
                "INSERT INTO friendships (user_id, friend_id, since_ms) \
                 VALUES (?, ?, ?), (?, ?, ?) ON CONFLICT DO NOTHING"
            ),
            args![a, b, now_ms, b, a, now_ms],
        )
        .await?;
        Ok(())
    }

    /// Blocking twice keeps the first block.
    async fn insert_block(
        conn: &mut Self::Conn,
        user: UserId,
        blocked: UserId,
        now_ms: i64,
    ) -> StoreResult<()> {
        Self::execute(
            conn,
            sql!(
                "INSERT INTO blocks (user_id, blocked_id, created_at_ms) VALUES (?, ?, ?) \
                 ON CONFLICT DO NOTHING"
            ),
            args![user, blocked, now_ms],
        )
        .await?;
        Ok(())
    }

    /// Deletes pending requests between the two, either way round.
    async fn delete_pending_between(
        conn: &mut Self::Conn,
        a: UserId,
        b: UserId,
    ) -> StoreResult<()> {
        Self::execute(
            conn,
            sql!(
                "DELETE FROM friend_requests WHERE status = 'pending' \
                 AND ((from_id = ? AND to_id = ?) OR (from_id = ? AND to_id = ?))"
            ),
            args![a, b, b, a],
        )
        .await?;
        Ok(())
    }
}
