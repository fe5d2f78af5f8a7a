//! Two users befriend and chat both ways over the real protocol; a stranger can neither
//! read nor write their conversation.

use crate::common::*;
use banter_client::Connection;
use banter_protocol::model::MessageContent;
use banter_protocol::{ClientFrame, ConversationId, ErrorCode, ServerEvent};

#[tokio::test]
async fn friends_chat_both_ways_and_a_stranger_is_refused() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let (alice, alice_profile) = server.user("alice").await;
    let (bob, bob_profile) = server.user("bob").await;
    let (eve, _) = server.user("eve").await;

    // Not friends yet: no direct chat.
    let err = alice.open_direct(bob_profile.id).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotFriends));

    let mut bob_ws = bob.connect().await.unwrap();
    let request = alice
        .send_friend_request(bob_profile.id, Some("hi, it's Alice"))
        .await
        .unwrap();
    let received = expect_event(&mut bob_ws, |e| match e {
        ServerEvent::FriendRequestReceived { request } => Some(request.clone()),
        _ => None,
    })
    .await;
    assert_eq!(received.greeting.as_deref(), Some("hi, it's Alice"));
    assert_eq!(bob.friend_requests().await.unwrap().incoming.len(), 1);
    bob.accept_friend_request(request.id).await.unwrap();
    assert_eq!(alice.friends().await.unwrap()[0].user.id, bob_profile.id);

    let conversation = alice.open_direct(bob_profile.id).await.unwrap().id;
    assert_eq!(
        bob.open_direct(alice_profile.id).await.unwrap().id,
        conversation,
        "one direct chat per pair"
    );
    let mut alice_ws = alice.connect().await.unwrap();

    exchange(&mut alice_ws, &mut bob_ws, conversation, "hello bob 👋").await;
    exchange(&mut bob_ws, &mut alice_ws, conversation, "hi alice").await;

    // Eve is no member: REST and WebSocket both refuse, and look as if nothing is there.
    let err = eve.messages_after(conversation, 0, 50).await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(404), Some(ErrorCode::NotFound))
    );
    assert_eq!(
        eve.conversation(conversation).await.unwrap_err().code(),
        Some(ErrorCode::NotFound)
    );
    let mut eve_ws = eve.connect().await.unwrap();
    eve_ws
        .send_frame(&ClientFrame::SendMessage {
            id: "sneak".into(),
            conversation_id: conversation,
            client_msg_id: "x".into(),
            text: "let me in".into(),
            attachment: None,
        })
        .await
        .unwrap();
    eve_ws
        .send_frame(&ClientFrame::Sync {
            id: "peek".into(),
            conversation_id: conversation,
            after_seq: 0,
            limit: None,
        })
        .await
        .unwrap();
    // Replies match requests by id, in whatever order they come (protocol.md): the sync
    // is answered at once, the send only after the writer has looked at it.
    let mut refused = Vec::new();
    while refused.len() < 2 {
        let (id, code) = expect_event(&mut eve_ws, |e| match e {
            ServerEvent::Error {
                id: Some(id), code, ..
            } => Some((id.clone(), *code)),
            _ => None,
        })
        .await;
        assert_eq!(code, ErrorCode::NotFound, "{id} refused as not found");
        refused.push(id);
    }
    refused.sort();
    assert_eq!(refused, ["peek", "sneak"]);
    let history = alice.messages_after(conversation, 0, 50).await.unwrap();
    assert_eq!(history.messages.len(), 2, "eve's attempt wrote nothing");
}

/// `sender` sends `text`; its ack and the receiver's copy agree on the seq and the text.
async fn exchange(
    sender: &mut Connection,
    receiver: &mut Connection,
    conversation: ConversationId,
    text: &str,
) {
    sender
        .send_frame(&ClientFrame::SendMessage {
            id: "r1".into(),
            conversation_id: conversation,
            client_msg_id: format!("{text}-id"),
            text: text.into(),
            attachment: None,
        })
        .await
        .unwrap();
    let acked_seq = expect_event(sender, |e| match e {
        ServerEvent::Ack { seq, .. } => Some(*seq),
        _ => None,
    })
    .await;
    let message = expect_event(receiver, |e| match e {
        ServerEvent::MessageCreated { message } => Some(message.clone()),
        _ => None,
    })
    .await;
    assert_eq!(message.seq, acked_seq);
    assert_eq!(
        message.content,
        MessageContent::Text {
            text: text.into(),
            recalled: false
        }
    );
}
