//! Stopping and restarting on the same data loses nothing: history, friendships, unread
//! counts and tokens survive, and every acked message is there.

use crate::common::*;
use banter_protocol::{ClientFrame, ServerEvent};

#[tokio::test]
async fn a_restart_keeps_history_friends_unread_counts_and_tokens() {
    let Some(mut server) = TestServer::start().await else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let (bob, bob_profile) = server.user("bob").await;
    befriend(&alice, &bob).await;
    let conversation = alice.open_direct(bob_profile.id).await.unwrap().id;
    let mut alice_ws = alice.connect().await.unwrap();
    for i in 0..5 {
        alice_ws
            .send_frame(&ClientFrame::SendMessage {
                id: format!("{i}"),
                conversation_id: conversation,
                client_msg_id: format!("m{i}"),
                text: format!("message {i}"),
                attachment: None,
            })
            .await
            .unwrap();
    }
    let mut acked = 0;
    while acked < 5 {
        expect_event(&mut alice_ws, |e| {
            matches!(e, ServerEvent::Ack { .. }).then_some(())
        })
        .await;
        acked += 1;
    }
    bob.mark_read_rest(conversation, 2).await.unwrap();

    server.restart().await;
    let closed = expect_closed(&mut alice_ws).await;
    assert_eq!(
        closed.close_code(),
        Some(1001),
        "a graceful stop says going away: {closed}"
    );

    // The same tokens still work: nobody has to log in again.
    assert_eq!(alice.friends().await.unwrap()[0].user.id, bob_profile.id);
    let history = bob
        .messages_after(conversation, 0, 50)
        .await
        .unwrap()
        .messages;
    let texts: Vec<_> = history.iter().map(|m| m.seq).collect();
    assert_eq!(texts, vec![1, 2, 3, 4, 5]);
    let summary = bob
        .conversations()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.id == conversation)
        .unwrap();
    assert_eq!((summary.read_seq, summary.unread_count), (2, 3));
    bob.connect().await.expect("websocket with the old token");
}

#[tokio::test]
async fn stopping_under_load_loses_no_acked_message() {
    let Some(mut server) = TestServer::start().await else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let (bob, bob_profile) = server.user("bob").await;
    befriend(&alice, &bob).await;
    let conversation = alice.open_direct(bob_profile.id).await.unwrap().id;
    let mut alice_ws = alice.connect().await.unwrap();
    // Keep many sends in flight, then stop the server in the middle of them.
    for i in 0..150 {
        alice_ws
            .send_frame(&ClientFrame::SendMessage {
                id: format!("{i}"),
                conversation_id: conversation,
                client_msg_id: format!("m{i}"),
                text: format!("message {i}"),
                attachment: None,
            })
            .await
            .unwrap();
    }
    let (first_ack_tx, first_ack) = tokio::sync::oneshot::channel();
    let reader = tokio::spawn(async move {
        let mut first_ack_tx = Some(first_ack_tx);
        let mut acked = Vec::new();
        loop {
            match alice_ws.next_event(WAIT).await {
                Ok(ServerEvent::Ack {
                    client_msg_id, seq, ..
                }) => {
                    acked.push((client_msg_id.unwrap(), seq));
                    if let Some(tx) = first_ack_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(_) => {}
                Err(_) => return acked,
            }
        }
    });
    first_ack.await.expect("the first send is acked");
    server.stop().await;
    let acked = reader.await.unwrap();
    server.restart().await;
    let mut stored = Vec::new();
    let mut after = 0;
    loop {
        let page = bob.messages_after(conversation, after, 200).await.unwrap();
        stored.extend(
            page.messages
                .iter()
                .map(|m| (m.client_msg_id.clone().unwrap(), m.seq)),
        );
        after = page.messages.last().map_or(after, |m| m.seq);
        if !page.has_more {
            break;
        }
    }
    for ack in &acked {
        assert!(
            stored.contains(ack),
            "acked message {ack:?} is stored with the acked seq"
        );
    }
    let seqs: Vec<i64> = stored.iter().map(|(_, s)| *s).collect();
    assert_eq!(
        seqs,
        (1..=stored.len() as i64).collect::<Vec<_>>(),
        "no gaps after the restart"
    );
}
