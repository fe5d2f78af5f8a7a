//! `typing` (§5.6.4): forwarded to the other members at most once per
//! `typing_interval` per conversation and connection. No reply; refusals are silent.

use super::Connection;
use crate::service::stream;
use banter_protocol::ConversationId;
use tokio::time::Instant;

pub(super) async fn handle(conn: &mut Connection, conversation_id: ConversationId) {
    let interval = conn.state.config.limits.typing_interval;
    let now = Instant::now();
    if let Some(last) = conn.typing_last.get(&conversation_id) {
        if now.duration_since(*last) < interval {
            return;
        }
    }
    if stream::typing(&conn.state, conn.user, conversation_id).await {
        conn.typing_last.insert(conversation_id, now);
    }
}
