//! `mark_read` (§5.6.3): moves the read pointer; the reply is `done`.

use super::{error_event, Connection};
use crate::service::stream;
use banter_protocol::{ConversationId, RequestId, ServerEvent};

pub(super) async fn handle(
    conn: &mut Connection,
    id: RequestId,
    conversation_id: ConversationId,
    seq: i64,
) -> ServerEvent {
    match stream::mark_read(&conn.state, conn.user, conversation_id, seq).await {
        Ok(_) => ServerEvent::Done { id },
        Err(error) => error_event(Some(id), error),
    }
}
