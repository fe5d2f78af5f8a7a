//! `recall_message` (§5.6.2): the recall notice is appended through the writer; the
//! reply is its `ack`.

use super::{ack, error_event, Connection};
use crate::service::stream;
use banter_protocol::{ConversationId, MessageId, RequestId, ServerEvent};

pub(super) async fn handle(
    conn: &mut Connection,
    id: RequestId,
    conversation_id: ConversationId,
    message_id: MessageId,
) -> ServerEvent {
    match stream::recall(&conn.state, conn.user, conversation_id, message_id).await {
        Ok(appended) => ack(id, &appended),
        Err(error) => error_event(Some(id), error),
    }
}
