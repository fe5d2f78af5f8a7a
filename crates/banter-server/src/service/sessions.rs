//! Sessions: logging out and changing the password. A revoked session's live
//! connections are closed (code 4001) on every node, through the bus.

use crate::auth::{self, AuthUser};
use crate::error::ApiResult;
use crate::fanout::Broadcast;
use crate::ratelimit::ClientAddr;
use crate::state::AppState;
use banter_protocol::UserId;
use banter_store::SessionId;

/// Closes these sessions' live connections wherever they are.
async fn revoke(state: &AppState, user: UserId, sessions: Vec<SessionId>) {
    if !sessions.is_empty() {
        state
            .broadcast
            .publish(Broadcast::Revoke { user, sessions })
            .await;
    }
}

/// Revokes the caller's own session.
pub async fn logout(state: &AppState, caller: &AuthUser) -> ApiResult<()> {
    state.store.delete_session(caller.session_id).await?;
    revoke(state, caller.user_id, vec![caller.session_id]).await;
    Ok(())
}

/// Changes the caller's password if `old_password` is right, and revokes every other
/// session. A wrong old password is a guess like a failed login (a stolen token must not
/// give unthrottled guesses at the password), so it spends the same budgets.
pub async fn change_password(
    state: &AppState,
    caller: &AuthUser,
    client: ClientAddr,
    old_password: String,
    new_password: String,
) -> ApiResult<()> {
    let user = caller.user_id;
    let username = state.store.user(user).await?.username;
    let attempt = state.login_throttle.admit(&username, client).await?;
    let verified = match state.store.password_hash(user).await {
        Ok(stored) => state.passwords.verify(old_password, stored).await,
        Err(err) => Err(err.into()),
    };
    match verified {
        Ok(true) => state.login_throttle.succeeded(attempt).await,
        Ok(false) => return Err(auth::invalid_credentials()),
        Err(busy) => {
            state.login_throttle.withdrawn(attempt).await;
            return Err(busy);
        }
    }
    let hash = state.passwords.hash(new_password).await?;
    let revoked = state
        .store
        .change_password(user, hash, caller.session_id)
        .await?;
    tracing::info!(user_id = %user, revoked = revoked.len(), "password changed");
    revoke(state, user, revoked).await;
    Ok(())
}
