//! Groups: every message reaches every member's every device exactly once, in seq order,
//! also when many clients send at once.

use crate::common::*;
use banter_client::{Client, Connection};
use banter_protocol::model::{Message, MessageContent};
use banter_protocol::{ClientFrame, ConversationId, ServerEvent, UserId};

/// Collects `count` message_created events for `conversation` from one device.
async fn receive(
    conn: &mut Connection,
    conversation: ConversationId,
    count: usize,
) -> Vec<Message> {
    let mut got = Vec::with_capacity(count);
    while got.len() < count {
        let message = expect_event(conn, |e| match e {
            ServerEvent::MessageCreated { message } if message.conversation_id == conversation => {
                Some(message.clone())
            }
            _ => None,
        })
        .await;
        got.push(message);
    }
    got
}

fn send_frame(conversation: ConversationId, client_msg_id: String, text: String) -> ClientFrame {
    ClientFrame::SendMessage {
        id: client_msg_id.clone(),
        conversation_id: conversation,
        client_msg_id,
        text,
        attachment: None,
    }
}

/// `owner` befriends every other user and creates a group with all of them.
async fn group_of(owner: &Client, others: &[&Client]) -> ConversationId {
    let mut ids: Vec<UserId> = Vec::new();
    for other in others {
        befriend(owner, other).await;
        ids.push(other.me().await.unwrap().id);
    }
    owner
        .create_group("the group", &ids)
        .await
        .expect("group created")
        .id
}

#[tokio::test]
async fn every_device_of_every_member_gets_each_message_once_in_order() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let names = ["ann", "ben", "cat"];
    let mut users = Vec::new();
    for name in names {
        users.push(server.user(name).await.0);
    }
    let group = group_of(&users[0], &[&users[1], &users[2]]).await;
    let mut devices = Vec::new();
    for name in names {
        for _ in 0..2 {
            devices.push(server.device(name).await.connect().await.unwrap());
        }
    }
    // Each user sends from their first device, interleaved.
    let rounds = 5;
    for round in 0..rounds {
        for (i, name) in names.iter().enumerate() {
            let frame = send_frame(
                group,
                format!("{name}-{round}"),
                format!("{name} says {round}"),
            );
            devices[i * 2].send_frame(&frame).await.unwrap();
        }
    }
    let total = rounds * names.len();
    for device in &mut devices {
        let got = receive(device, group, total).await;
        let seqs: Vec<i64> = got.iter().map(|m| m.seq).collect();
        assert_eq!(
            seqs,
            (1..=total as i64).collect::<Vec<_>>(),
            "gapless, in order, once"
        );
        // Each sender's own messages arrive in the order they were sent.
        for name in names {
            let texts: Vec<String> = got
                .iter()
                .filter_map(|m| match &m.content {
                    MessageContent::Text { text, .. } if text.starts_with(name) => {
                        Some(text.clone())
                    }
                    _ => None,
                })
                .collect();
            let expected: Vec<String> = (0..rounds).map(|r| format!("{name} says {r}")).collect();
            assert_eq!(texts, expected);
        }
        expect_no_event(device, std::time::Duration::from_millis(200), |e| {
            matches!(e, ServerEvent::MessageCreated { .. })
        })
        .await;
    }
}

#[tokio::test]
async fn ten_clients_sending_a_thousand_messages_at_once_get_seqs_one_to_a_thousand() {
    const CLIENTS: usize = 10;
    const PER_CLIENT: usize = 100;
    const TOTAL: usize = CLIENTS * PER_CLIENT;
    let Some(server) = TestServer::start().await else {
        return;
    };
    let mut users = Vec::new();
    for i in 0..CLIENTS {
        users.push(server.user(&format!("user{i}")).await.0);
    }
    let others: Vec<&Client> = users[1..].iter().collect();
    let group = group_of(&users[0], &others).await;
    let mut conns = Vec::new();
    for user in &users {
        conns.push(user.connect().await.unwrap());
    }

    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, mut conn)| {
            tokio::spawn(async move {
                for n in 0..PER_CLIENT {
                    let frame = send_frame(
                        group,
                        format!("c{i}-{n}"),
                        format!("client {i} message {n}"),
                    );
                    conn.send_frame(&frame).await.unwrap();
                }
                let mut acks = Vec::new();
                let mut received = Vec::new();
                while acks.len() < PER_CLIENT || received.len() < TOTAL {
                    match expect_event(&mut conn, |e| Some(e.clone())).await {
                        ServerEvent::Ack {
                            seq, client_msg_id, ..
                        } => acks.push((client_msg_id, seq)),
                        ServerEvent::MessageCreated { message } => received.push(message.seq),
                        ServerEvent::Error { code, message, .. } => {
                            panic!("send refused: {code:?} {message}")
                        }
                        _ => {}
                    }
                }
                (acks, received)
            })
        })
        .collect();

    let mut all_acked: Vec<i64> = Vec::new();
    for task in tasks {
        let (acks, received) = task.await.unwrap();
        assert_eq!(
            received,
            (1..=TOTAL as i64).collect::<Vec<_>>(),
            "every member gets every message once, in order"
        );
        // A client's own sends are sequenced in the order it sent them.
        let mut acks = acks;
        acks.sort_by_key(|(id, _)| {
            let id = id.as_deref().expect("acks carry the client id");
            id.rsplit('-').next().unwrap().parse::<usize>().unwrap()
        });
        let own: Vec<i64> = acks.iter().map(|(_, seq)| *seq).collect();
        assert!(
            own.windows(2).all(|w| w[0] < w[1]),
            "one client's sends keep their order"
        );
        all_acked.extend(own);
    }
    all_acked.sort_unstable();
    assert_eq!(
        all_acked,
        (1..=TOTAL as i64).collect::<Vec<_>>(),
        "seqs are exactly 1..=1000"
    );
    let history = users[3].messages_after(group, 0, 200).await.unwrap();
    assert_eq!(history.messages.first().map(|m| m.seq), Some(1));
    assert!(history.has_more);
}
