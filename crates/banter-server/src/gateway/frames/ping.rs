//! `ping` (§5.6.6): answered with `pong` at once.

use banter_protocol::{RequestId, ServerEvent};

pub(super) fn handle(id: RequestId) -> ServerEvent {
    ServerEvent::Pong { id }
}
