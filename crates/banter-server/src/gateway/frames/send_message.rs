//! `send_message` (§5.6.1): checked and queued by the stream service; the `ack` goes out
//! later, once the message is durable, through the connection's pending replies.

use super::{ack, error_event, Connection};
use crate::fanout::encode;
use crate::service::stream;
use banter_protocol::{RequestId, ServerEvent};

pub(super) async fn handle(
    conn: &mut Connection,
    id: RequestId,
    send: stream::Send,
) -> Option<ServerEvent> {
    let receipt = match stream::send(&conn.state, conn.user, send).await {
        Ok(receipt) => receipt,
        Err(error) => return Some(error_event(Some(id), error)),
    };
    conn.pending.push(Box::pin(async move {
        let event = match stream::settled(receipt).await {
            Ok(appended) => ack(id, &appended),
            Err(error) => error_event(Some(id), error),
        };
        encode(&event)
    }));
    None
}
