//! Offline catch-up, idempotent resends and several devices, through the SDK's `Session`
//! (which keeps cursors, resends unacked sends and syncs what it missed).

use crate::common::*;
use banter_client::{Session, SessionEvent, SessionOptions};
use banter_protocol::model::MessageContent;
use banter_protocol::{ClientFrame, ServerEvent};
use std::time::Duration;

fn text_of(content: &MessageContent) -> &str {
    match content {
        MessageContent::Text { text, .. } => text,
        other => panic!("expected text, got {other:?}"),
    }
}

#[tokio::test]
async fn a_user_offline_during_200_messages_gets_all_of_them_in_order_once() {
    // 201 sends back to back would exceed the default bursts of the frame and message
    // rate limits (twice frames_per_second_max, twice messages_per_user_per_second_max);
    // this test is about catching up, not rate limits.
    let Some(server) = TestServer::start_with(|c| {
        c.limits.frames_per_second_max = 1000;
        c.limits.messages_per_user = banter_server::ratelimit::Rate::per_second(1000);
    })
    .await
    else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let (bob, bob_profile) = server.user("bob").await;
    befriend(&alice, &bob).await;
    let conversation = alice.open_direct(bob_profile.id).await.unwrap().id;
    let mut alice_session = Session::start(alice).await.unwrap();
    let mut bob_session = Session::start(bob).await.unwrap();

    alice_session
        .send_text(conversation, "before you go")
        .await
        .unwrap();
    assert_eq!(bob_session.next_message(WAIT).await.unwrap().seq, 1);
    bob_session.disconnect();

    for i in 0..200 {
        alice_session
            .queue_text(conversation, &format!("while you were away {i}"))
            .await
            .unwrap();
    }
    let mut acked = 0;
    while acked < 200 {
        if let SessionEvent::Acked(_) = alice_session.next_event(WAIT).await.unwrap() {
            acked += 1;
        }
    }

    bob_session.reconnect().await.unwrap();
    for i in 0..200 {
        let message = bob_session.next_message(WAIT).await.unwrap();
        assert_eq!(message.seq, i + 2);
        assert_eq!(
            text_of(&message.content),
            format!("while you were away {i}")
        );
    }
    assert_eq!(bob_session.cursor(conversation), 201);
    // Nothing twice: the live copies that raced the sync were dropped.
    let extra = bob_session.next_message(Duration::from_millis(300)).await;
    assert!(extra.is_err(), "no message is delivered twice: {extra:?}");
}

#[tokio::test]
async fn a_resend_after_a_dropped_connection_yields_one_message_and_the_same_ack() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let (bob, bob_profile) = server.user("bob").await;
    befriend(&alice, &bob).await;
    let conversation = alice.open_direct(bob_profile.id).await.unwrap().id;

    // The connection drops right after the send, before the ack could be read.
    let mut first = alice.connect().await.unwrap();
    let frame = ClientFrame::SendMessage {
        id: "1".into(),
        conversation_id: conversation,
        client_msg_id: "0b9e3c1e-resend".into(),
        text: "did this arrive?".into(),
        attachment: None,
    };
    first.send_frame(&frame).await.unwrap();
    drop(first);

    let mut session = Session::start_with(
        alice,
        SessionOptions {
            skip_history: true,
            ..SessionOptions::default()
        },
    )
    .await
    .unwrap();
    let ack = session
        .send_text_with_id(conversation, "0b9e3c1e-resend", "did this arrive?")
        .await
        .unwrap();
    session.reconnect().await.unwrap();
    let again = session
        .send_text_with_id(conversation, "0b9e3c1e-resend", "did this arrive?")
        .await
        .unwrap();
    assert_eq!(
        (again.message_id, again.seq),
        (ack.message_id, ack.seq),
        "the same ack every time"
    );

    let history = bob
        .messages_after(conversation, 0, 50)
        .await
        .unwrap()
        .messages;
    assert_eq!(history.len(), 1, "one message, however often it was sent");
    assert_eq!(history[0].seq, ack.seq);
}

#[tokio::test]
async fn two_devices_both_receive_and_reading_on_one_clears_the_other() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let (bob_laptop, bob_profile) = server.user("bob").await;
    let bob_phone = server.device("bob").await;
    befriend(&alice, &bob_laptop).await;
    let conversation = alice.open_direct(bob_profile.id).await.unwrap().id;
    let mut alice_session = Session::start(alice).await.unwrap();
    let mut laptop = Session::start(bob_laptop.clone()).await.unwrap();
    let mut phone = Session::start(bob_phone).await.unwrap();

    for i in 0..3 {
        alice_session
            .send_text(conversation, &format!("m{i}"))
            .await
            .unwrap();
    }
    for device in [&mut laptop, &mut phone] {
        let seqs: Vec<i64> = [
            device.next_message(WAIT).await.unwrap().seq,
            device.next_message(WAIT).await.unwrap().seq,
            device.next_message(WAIT).await.unwrap().seq,
        ]
        .to_vec();
        assert_eq!(seqs, vec![1, 2, 3]);
    }
    let summary = |list: Vec<banter_protocol::model::ConversationSummary>| {
        list.into_iter().find(|c| c.id == conversation).unwrap()
    };
    assert_eq!(
        summary(bob_laptop.conversations().await.unwrap()).unread_count,
        3
    );

    laptop.mark_read(conversation, 3).await.unwrap();
    // The phone hears that bob read up to 3, so it clears its badge...
    loop {
        if let SessionEvent::Server(ServerEvent::ReadUpdated { user_id, seq, .. }) =
            phone.next_event(WAIT).await.unwrap()
        {
            assert_eq!((user_id, seq), (bob_profile.id, 3));
            break;
        }
    }
    // ...and the server's count agrees for every device.
    assert_eq!(
        summary(bob_laptop.conversations().await.unwrap()).unread_count,
        0
    );
    // A sender's own message reaches their other devices too.
    phone
        .send_text(conversation, "sent from the phone")
        .await
        .unwrap();
    let echoed = laptop.next_message(WAIT).await.unwrap();
    assert_eq!(text_of(&echoed.content), "sent from the phone");
}

#[tokio::test]
async fn a_new_device_pages_history_backwards() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let (bob, bob_profile) = server.user("bob").await;
    befriend(&alice, &bob).await;
    let conversation = alice.open_direct(bob_profile.id).await.unwrap().id;
    let mut session = Session::start(alice).await.unwrap();
    for i in 0..25 {
        session
            .queue_text(conversation, &format!("m{i}"))
            .await
            .unwrap();
    }
    let mut acked = 0;
    while acked < 25 {
        if let SessionEvent::Acked(_) = session.next_event(WAIT).await.unwrap() {
            acked += 1;
        }
    }
    let new_device = server.device("bob").await;
    let latest = new_device.latest_messages(conversation, 10).await.unwrap();
    assert_eq!(
        latest.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (16..=25).collect::<Vec<_>>()
    );
    assert!(latest.has_more);
    let mut before = 16;
    let mut seen = latest.messages.len();
    loop {
        let page = new_device
            .messages_before(conversation, before, 10)
            .await
            .unwrap();
        seen += page.messages.len();
        before = page.messages.first().map_or(before, |m| m.seq);
        if !page.has_more {
            break;
        }
    }
    assert_eq!((seen, before), (25, 1));
}

#[tokio::test]
async fn a_client_too_slow_for_its_queue_is_closed_and_resyncs_without_loss() {
    // A queue of two frames overflows as soon as the writer fans out a batch of sends.
    let Some(server) = TestServer::start_with(|c| c.limits.outbound_queue_frames_max = 2).await
    else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let (bob, bob_profile) = server.user("bob").await;
    befriend(&alice, &bob).await;
    let conversation = alice.open_direct(bob_profile.id).await.unwrap().id;
    let mut alice_session = Session::start(alice).await.unwrap();
    let mut bob_session = Session::start(bob).await.unwrap();

    const SENDS: usize = 60;
    for i in 0..SENDS {
        alice_session
            .queue_text(conversation, &format!("burst {i}"))
            .await
            .unwrap();
    }
    // Alice is kicked too (her own copies fill her queue); her session resends unacked
    // sends under the same ids, so each is stored once.
    let mut acked = 0;
    while acked < SENDS {
        if let SessionEvent::Acked(_) = alice_session.next_event(WAIT).await.unwrap() {
            acked += 1;
        }
    }
    let mut seqs = Vec::new();
    let mut reconnected = false;
    while seqs.len() < SENDS {
        match bob_session.next_event(WAIT).await.unwrap() {
            SessionEvent::Message(message) => seqs.push(message.seq),
            SessionEvent::Reconnected => reconnected = true,
            _ => {}
        }
    }
    // On one node the writer fans a batch out at once and Bob's queue of two overflows.
    // In a cluster run Bob may sit on another node, which gets Alice's sends one bus
    // message at a time: whether his queue overflows there depends on timing, and what
    // must hold either way is checked below.
    if crate::CLUSTER.is_none() {
        assert!(
            reconnected,
            "the slow connection was closed (4008) and the session reconnected"
        );
    }
    assert_eq!(
        seqs,
        (1..=SENDS as i64).collect::<Vec<_>>(),
        "everything arrives once, in order"
    );
    let stored = bob_session
        .client()
        .messages_after(conversation, 0, 200)
        .await
        .unwrap()
        .messages;
    assert_eq!(stored.len(), SENDS, "no send was stored twice");
}
