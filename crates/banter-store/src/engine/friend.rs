//! Friend requests and blocks: who may ask whom, and what answering does.
//!
//! Each runs inside the caller's write transaction, after locking the two users' rows (or
//! the request's), so the checks and the change they guard cannot be separated by another
//! writer.

use banter_protocol::model::FriendRequestStatus;
use banter_protocol::{FriendRequestId, UserId};

use crate::row::now_ms;
use crate::sql::SocialSql;
use crate::{FriendRequestRecord, StoreError, StoreResult};
/// See [`crate::Store::create_friend_request`].
pub(super) async fn request<S: SocialSql>(
    conn: &mut S::Conn,
    from: UserId,
    to: UserId,
    greeting: Option<&str>,
) -> StoreResult<FriendRequestRecord> {
    lock_unblocked_pair::<S>(conn, from, to).await?;
    if S::are_friends(conn, from, to).await? {
        return Err(StoreError::Conflict("you are already friends".into()));
    }
    if S::pending_between(conn, from, to).await? {
        return Err(StoreError::Conflict(
            "a friend request between you is already pending".into(),
        ));
    }
    let id = S::insert_friend_request(conn, from, to, greeting, now_ms()).await?;
    S::friend_request(conn, id)
        .await?
        .ok_or(StoreError::NotFound)
}

/// See [`crate::Store::answer_friend_request`].
pub(super) async fn answer<S: SocialSql>(
    conn: &mut S::Conn,
    recipient: UserId,
    id: FriendRequestId,
    accept: bool,
) -> StoreResult<FriendRequestRecord> {
    let now = now_ms();
    let from = pending_request::<S>(conn, id, recipient, false).await?;
    let status = if accept {
        S::insert_friendship(conn, from, recipient, now).await?;
        FriendRequestStatus::Accepted
    } else {
        FriendRequestStatus::Rejected
    };
    S::set_request_status(conn, id, status, now).await?;
    S::friend_request(conn, id)
        .await?
        .ok_or(StoreError::NotFound)
}

/// See [`crate::Store::cancel_friend_request`].
pub(super) async fn cancel<S: SocialSql>(
    conn: &mut S::Conn,
    sender: UserId,
    id: FriendRequestId,
) -> StoreResult<FriendRequestRecord> {
    pending_request::<S>(conn, id, sender, true).await?;
    S::set_request_status(conn, id, FriendRequestStatus::Cancelled, now_ms()).await?;
    S::friend_request(conn, id)
        .await?
        .ok_or(StoreError::NotFound)
}

/// See [`crate::Store::block`].
pub(super) async fn block<S: SocialSql>(
    conn: &mut S::Conn,
    user: UserId,
    blocked: UserId,
) -> StoreResult<()> {
    if !S::lock_users(conn, user, blocked).await? {
        return Err(StoreError::NotFound);
    }
    S::insert_block(conn, user, blocked, now_ms()).await?;
    S::delete_pending_between(conn, user, blocked).await
}

/// Locks a pending request and returns its sender, checked to be pending and visible to
/// `party` on the given side. Requests of other users are `NotFound`, not `Forbidden`.
async fn pending_request<S: SocialSql>(
    conn: &mut S::Conn,
    id: FriendRequestId,
    party: UserId,
    party_is_sender: bool,
) -> StoreResult<UserId> {
    let (from, to, status) = S::lock_request(conn, id)
        .await?
        .ok_or(StoreError::NotFound)?;
    let side = if party_is_sender { from } else { to };
    if side != party {
        return Err(StoreError::NotFound);
    }
    if status != FriendRequestStatus::Pending {
        return Err(StoreError::Conflict(
            "the friend request is no longer pending".into(),
        ));
    }
    Ok(from)
}

/// Locks the rows of `user` and `other` for the rest of the transaction, which serializes
/// every change to what is between the two; fails with `NotFound` if `other` does not
/// exist and `Blocked` if either blocked the other.
pub(super) async fn lock_unblocked_pair<S: SocialSql>(
    conn: &mut S::Conn,
    user: UserId,
    other: UserId,
) -> StoreResult<()> {
    if !S::lock_users(conn, user, other).await? {
        return Err(StoreError::NotFound);
    }
    if S::blocked_either(conn, user, other).await? {
        return Err(StoreError::Blocked);
    }
    Ok(())
}
