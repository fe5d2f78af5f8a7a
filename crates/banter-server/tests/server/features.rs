//! Blocks, recall, read receipts and unread counts, presence and typing, as users see them.

use crate::common::*;
use banter_client::Connection;
use banter_protocol::model::MessageContent;
use banter_protocol::{ClientFrame, ConversationId, ErrorCode, ServerEvent};
use std::time::Duration;

async fn send(
    conn: &mut Connection,
    conversation: ConversationId,
    id: &str,
    text: &str,
) -> Result<(i64, banter_protocol::MessageId), ErrorCode> {
    conn.send_frame(&ClientFrame::SendMessage {
        id: id.into(),
        conversation_id: conversation,
        client_msg_id: id.into(),
        text: text.into(),
        attachment: None,
    })
    .await
    .unwrap();
    expect_event(conn, |e| match e {
        ServerEvent::Ack {
            id: got,
            seq,
            message_id,
            ..
        } if got == id => Some(Ok((*seq, *message_id))),
        ServerEvent::Error {
            id: Some(got),
            code,
            ..
        } if got == id => Some(Err(*code)),
        _ => None,
    })
    .await
}

async fn reply_to(conn: &mut Connection, frame: ClientFrame, id: &str) -> Result<(), ErrorCode> {
    conn.send_frame(&frame).await.unwrap();
    expect_event(conn, |e| match e {
        ServerEvent::Done { id: got } | ServerEvent::Ack { id: got, .. } if got == id => {
            Some(Ok(()))
        }
        ServerEvent::Error {
            id: Some(got),
            code,
            ..
        } if got == id => Some(Err(*code)),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn a_blocked_user_can_neither_request_nor_message() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let (bob, bob_profile) = server.user("bob").await;
    let alice_id = alice.me().await.unwrap().id;
    befriend(&alice, &bob).await;
    let conversation = alice.open_direct(bob_profile.id).await.unwrap().id;
    let mut bob_ws = bob.connect().await.unwrap();
    assert!(send(&mut bob_ws, conversation, "before", "hi")
        .await
        .is_ok());

    alice.block(bob_profile.id).await.unwrap();
    assert_eq!(alice.blocks().await.unwrap()[0].id, bob_profile.id);
    assert_eq!(
        send(&mut bob_ws, conversation, "after", "hello?").await,
        Err(ErrorCode::Blocked)
    );
    alice.remove_friend(bob_profile.id).await.unwrap();
    let err = bob.send_friend_request(alice_id, None).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::Blocked));

    alice.unblock(bob_profile.id).await.unwrap();
    bob.send_friend_request(alice_id, Some("sorry"))
        .await
        .expect("after unblocking, requests work again");
}

#[tokio::test]
async fn recall_is_an_event_in_the_stream_and_bounded_by_the_window() {
    let Some(server) =
        TestServer::start_with(|c| c.limits.recall_window = Duration::from_millis(1500)).await
    else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let (bob, bob_profile) = server.user("bob").await;
    befriend(&alice, &bob).await;
    let conversation = alice.open_direct(bob_profile.id).await.unwrap().id;
    let mut alice_ws = alice.connect().await.unwrap();
    let mut bob_ws = bob.connect().await.unwrap();
    let (_, mine) = send(&mut alice_ws, conversation, "m1", "oops, wrong chat")
        .await
        .unwrap();
    let (_, theirs) = send(&mut bob_ws, conversation, "m2", "what?")
        .await
        .unwrap();

    assert_eq!(
        reply_to(
            &mut alice_ws,
            ClientFrame::RecallMessage {
                id: "r0".into(),
                conversation_id: conversation,
                message_id: theirs
            },
            "r0"
        )
        .await,
        Err(ErrorCode::Forbidden),
        "nobody recalls someone else's message in a direct chat"
    );
    reply_to(
        &mut alice_ws,
        ClientFrame::RecallMessage {
            id: "r1".into(),
            conversation_id: conversation,
            message_id: mine,
        },
        "r1",
    )
    .await
    .unwrap();
    let recall = expect_event(&mut bob_ws, |e| match e {
        ServerEvent::MessageCreated { message }
            if matches!(message.content, MessageContent::Recall { .. }) =>
        {
            Some(message.clone())
        }
        _ => None,
    })
    .await;
    assert_eq!(recall.content, MessageContent::Recall { target_id: mine });
    assert_eq!(recall.seq, 3, "the recall takes the next seq");
    // A device syncing later sees the text gone and the recall entry.
    let history = bob
        .messages_after(conversation, 0, 10)
        .await
        .unwrap()
        .messages;
    assert_eq!(
        history[0].content,
        MessageContent::Text {
            text: String::new(),
            recalled: true
        }
    );
    assert_eq!(
        history[2].content,
        MessageContent::Recall { target_id: mine }
    );

    // Past the window, the sender can no longer recall.
    let (_, late) = send(&mut alice_ws, conversation, "m3", "this one stays")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1600)).await; // waiting out a real-time window is the point here
    assert_eq!(
        reply_to(
            &mut alice_ws,
            ClientFrame::RecallMessage {
                id: "r2".into(),
                conversation_id: conversation,
                message_id: late
            },
            "r2"
        )
        .await,
        Err(ErrorCode::RecallWindowExpired)
    );
}

#[tokio::test]
async fn group_admins_recall_any_message_at_any_time() {
    let Some(server) = TestServer::start_with(|c| c.limits.recall_window = Duration::ZERO).await
    else {
        return;
    };
    let (owner, _) = server.user("owner").await;
    let (member, member_profile) = server.user("member").await;
    befriend(&owner, &member).await;
    let group = owner
        .create_group("club", &[member_profile.id])
        .await
        .unwrap()
        .id;
    let mut member_ws = member.connect().await.unwrap();
    let mut owner_ws = owner.connect().await.unwrap();
    let (_, spam) = send(&mut member_ws, group, "s1", "buy cheap stuff")
        .await
        .unwrap();
    reply_to(
        &mut owner_ws,
        ClientFrame::RecallMessage {
            id: "r".into(),
            conversation_id: group,
            message_id: spam,
        },
        "r",
    )
    .await
    .expect("the owner recalls a member's message");
}

#[tokio::test]
async fn read_receipts_reach_the_peer_and_unread_counts_follow_read_pointers() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let (bob, bob_profile) = server.user("bob").await;
    befriend(&alice, &bob).await;
    let conversation = alice.open_direct(bob_profile.id).await.unwrap().id;
    let mut alice_ws = alice.connect().await.unwrap();
    let mut bob_ws = bob.connect().await.unwrap();
    for i in 0..3 {
        send(&mut alice_ws, conversation, &format!("m{i}"), "ping")
            .await
            .unwrap();
    }
    let unread = |list: Vec<banter_protocol::model::ConversationSummary>| {
        list.iter()
            .find(|c| c.id == conversation)
            .unwrap()
            .unread_count
    };
    assert_eq!(unread(bob.conversations().await.unwrap()), 3);
    assert_eq!(
        unread(alice.conversations().await.unwrap()),
        0,
        "own messages are never unread"
    );

    reply_to(
        &mut bob_ws,
        ClientFrame::MarkRead {
            id: "rd".into(),
            conversation_id: conversation,
            seq: 2,
        },
        "rd",
    )
    .await
    .unwrap();
    let (reader, seq) = expect_event(&mut alice_ws, |e| match e {
        ServerEvent::ReadUpdated { user_id, seq, .. } => Some((*user_id, *seq)),
        _ => None,
    })
    .await;
    assert_eq!(
        (reader, seq),
        (bob_profile.id, 2),
        "the peer sees how far bob read"
    );
    assert_eq!(unread(bob.conversations().await.unwrap()), 1);
    // Pointers never move backwards, and are clamped to what exists.
    assert_eq!(
        bob.mark_read_rest(conversation, 1).await.unwrap().read_seq,
        2
    );
    assert_eq!(
        bob.mark_read_rest(conversation, 99).await.unwrap().read_seq,
        3
    );
    assert_eq!(unread(bob.conversations().await.unwrap()), 0);
}

#[tokio::test]
async fn group_members_see_how_many_have_read() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let (ann, _) = server.user("ann").await;
    let (ben, ben_profile) = server.user("ben").await;
    let (cat, cat_profile) = server.user("cat").await;
    befriend(&ann, &ben).await;
    befriend(&ann, &cat).await;
    let group = ann
        .create_group("trio", &[ben_profile.id, cat_profile.id])
        .await
        .unwrap()
        .id;
    let mut ann_ws = ann.connect().await.unwrap();
    let (seq, _) = send(&mut ann_ws, group, "hello", "hello all")
        .await
        .unwrap();
    ben.mark_read_rest(group, seq).await.unwrap();
    let detail = ann.conversation(group).await.unwrap();
    let read_by = detail.members.iter().filter(|m| m.read_seq >= seq).count();
    assert_eq!(
        read_by, 2,
        "ann (the sender) and ben have read it; cat has not"
    );
    assert!(detail
        .members
        .iter()
        .any(|m| m.user.id == cat_profile.id && m.read_seq < seq));
}

#[tokio::test]
async fn presence_follows_the_first_and_last_device_and_typing_is_forwarded() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let (alice, alice_profile) = server.user("alice").await;
    let (bob, bob_profile) = server.user("bob").await;
    befriend(&alice, &bob).await;
    let conversation = alice.open_direct(bob_profile.id).await.unwrap().id;
    let mut alice_ws = alice.connect().await.unwrap();
    let snapshot = expect_event(&mut alice_ws, |e| match e {
        ServerEvent::PresenceSnapshot { online_user_ids } => Some(online_user_ids.clone()),
        _ => None,
    })
    .await;
    assert!(snapshot.is_empty(), "bob is offline");

    let bob_phone = server.device("bob").await;
    let mut bob_ws1 = bob.connect().await.unwrap();
    let online = |want: bool| {
        move |e: &ServerEvent| match e {
            ServerEvent::PresenceChanged { user_id, online } if *online == want => Some(*user_id),
            _ => None,
        }
    };
    assert_eq!(
        expect_event(&mut alice_ws, online(true)).await,
        bob_profile.id
    );
    let mut bob_ws2 = bob_phone.connect().await.unwrap();
    let bob_snapshot = expect_event(&mut bob_ws2, |e| match e {
        ServerEvent::PresenceSnapshot { online_user_ids } => Some(online_user_ids.clone()),
        _ => None,
    })
    .await;
    assert_eq!(bob_snapshot, vec![alice_profile.id]);
    assert!(alice.friends().await.unwrap()[0].online);

    // Typing reaches the peer, is rate-limited, and is not stored.
    bob_ws1
        .send_frame(&ClientFrame::Typing {
            conversation_id: conversation,
        })
        .await
        .unwrap();
    bob_ws1
        .send_frame(&ClientFrame::Typing {
            conversation_id: conversation,
        })
        .await
        .unwrap();
    let typist = expect_event(&mut alice_ws, |e| match e {
        ServerEvent::TypingStarted { user_id, .. } => Some(*user_id),
        _ => None,
    })
    .await;
    assert_eq!(typist, bob_profile.id);
    expect_no_event(&mut alice_ws, Duration::from_millis(300), |e| {
        matches!(e, ServerEvent::TypingStarted { .. })
    })
    .await;
    assert!(alice
        .messages_after(conversation, 0, 10)
        .await
        .unwrap()
        .messages
        .is_empty());

    // One device leaving keeps bob online; the last one takes him offline.
    bob_ws1.close().await.unwrap();
    expect_no_event(&mut alice_ws, Duration::from_millis(300), |e| {
        matches!(e, ServerEvent::PresenceChanged { .. })
    })
    .await;
    bob_ws2.close().await.unwrap();
    assert_eq!(
        expect_event(&mut alice_ws, online(false)).await,
        bob_profile.id
    );
    assert!(!alice.friends().await.unwrap()[0].online);
}

#[tokio::test]
async fn logout_and_password_change_revoke_tokens_and_close_their_sockets() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let (mut laptop, _) = server.user("alice").await;
    let phone = server.device("alice").await;
    let mut phone_ws = phone.connect().await.unwrap();
    laptop
        .change_password(PASSWORD, "a brand new secret")
        .await
        .unwrap();
    let closed = expect_closed(&mut phone_ws).await;
    assert_eq!(closed.close_code(), Some(4001), "{closed}");
    assert_eq!(phone.me().await.unwrap_err().status(), Some(401));
    laptop
        .me()
        .await
        .expect("the device that changed the password stays logged in");
    let token = laptop.token().expect("logged in").to_string();
    laptop.logout().await.unwrap();
    let stale = server.client().with_token(token);
    assert_eq!(stale.me().await.unwrap_err().status(), Some(401));
}
