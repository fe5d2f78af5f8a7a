//! Group management as members see it: who hears about joins, renames, removals,
//! ownership and the end of a group, live and in the stream.

use crate::common::*;
use banter_client::Connection;
use banter_protocol::model::{MessageContent, Role, SystemNotice};
use banter_protocol::{ConversationId, ErrorCode, ServerEvent};

async fn next_notice(conn: &mut Connection, group: ConversationId) -> SystemNotice {
    expect_event(conn, |e| match e {
        ServerEvent::MessageCreated { message } if message.conversation_id == group => {
            match &message.content {
                MessageContent::System { notice } => Some(notice.clone()),
                _ => None,
            }
        }
        _ => None,
    })
    .await
}

async fn left(conn: &mut Connection) -> ConversationId {
    expect_event(conn, |e| match e {
        ServerEvent::ConversationLeft { conversation_id } => Some(*conversation_id),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn members_hear_of_every_change_and_roles_are_enforced() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let (owner, owner_p) = server.user("owner").await;
    let (ann, ann_p) = server.user("ann").await;
    let (ben, ben_p) = server.user("ben").await;
    befriend(&owner, &ann).await;
    befriend(&owner, &ben).await;
    let mut ann_ws = ann.connect().await.unwrap();
    let mut ben_ws = ben.connect().await.unwrap();

    let group = owner.create_group("book club", &[ann_p.id]).await.unwrap();
    assert_eq!(
        (group.last_seq, group.my_role, group.member_count),
        (0, Role::Owner, 2)
    );
    let joined = expect_event(&mut ann_ws, |e| match e {
        ServerEvent::ConversationJoined { conversation } => Some(conversation.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        (joined.id, joined.name.as_deref(), joined.my_role),
        (group.id, Some("book club"), Role::Member)
    );

    // A plain member cannot manage the group.
    assert_eq!(
        ann.rename_group(group.id, "mine now")
            .await
            .unwrap_err()
            .code(),
        Some(ErrorCode::Forbidden)
    );
    assert_eq!(
        ann.add_members(group.id, &[ben_p.id])
            .await
            .unwrap_err()
            .code(),
        Some(ErrorCode::Forbidden)
    );

    owner.add_members(group.id, &[ben_p.id]).await.unwrap();
    assert_eq!(
        next_notice(&mut ann_ws, group.id).await,
        SystemNotice::MembersAdded {
            by: owner_p.id,
            user_ids: vec![ben_p.id]
        }
    );
    expect_event(&mut ben_ws, |e| {
        matches!(e, ServerEvent::ConversationJoined { conversation } if conversation.id == group.id)
            .then_some(())
    })
    .await;

    owner.rename_group(group.id, "poetry club").await.unwrap();
    assert_eq!(
        next_notice(&mut ben_ws, group.id).await,
        SystemNotice::Renamed {
            by: owner_p.id,
            name: "poetry club".into()
        }
    );
    assert_eq!(
        ben.conversation(group.id)
            .await
            .unwrap()
            .summary
            .name
            .as_deref(),
        Some("poetry club")
    );

    owner
        .set_role(group.id, ann_p.id, Role::Admin)
        .await
        .unwrap();
    ann.remove_member(group.id, ben_p.id)
        .await
        .expect("admins remove members");
    assert_eq!(left(&mut ben_ws).await, group.id);
    assert_eq!(
        ben.messages_after(group.id, 0, 10)
            .await
            .unwrap_err()
            .code(),
        Some(ErrorCode::NotFound),
        "a removed member reads no more"
    );

    // The owner must hand over before leaving; then the new owner can disband.
    assert!(owner.leave_group(group.id).await.is_err());
    owner.transfer_ownership(group.id, ann_p.id).await.unwrap();
    owner.leave_group(group.id).await.unwrap();
    let detail = ann.conversation(group.id).await.unwrap();
    assert_eq!(detail.summary.my_role, Role::Owner);
    assert_eq!(detail.members.len(), 1);
    ann.disband_group(group.id).await.unwrap();
    assert_eq!(left(&mut ann_ws).await, group.id);
    assert!(ann
        .conversations()
        .await
        .unwrap()
        .iter()
        .all(|c| c.id != group.id));
}

#[tokio::test]
async fn the_conversation_list_shows_last_message_unread_and_peer_presence() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let (bob, bob_p) = server.user("bob").await;
    befriend(&alice, &bob).await;
    let direct = alice.open_direct(bob_p.id).await.unwrap();
    assert_eq!(direct.peer_online, Some(false));
    let mut bob_ws = bob.connect().await.unwrap();
    bob_ws
        .send_frame(&banter_protocol::ClientFrame::SendMessage {
            id: "1".into(),
            conversation_id: direct.id,
            client_msg_id: "hello-1".into(),
            text: "are you there?".into(),
            attachment: None,
        })
        .await
        .unwrap();
    expect_event(&mut bob_ws, |e| {
        matches!(e, ServerEvent::Ack { .. }).then_some(())
    })
    .await;
    let line = alice
        .conversations()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.id == direct.id)
        .unwrap();
    assert_eq!(line.peer_online, Some(true));
    assert_eq!(line.unread_count, 1);
    assert_eq!(line.peer.as_ref().map(|p| p.id), Some(bob_p.id));
    let last = line.last_message.expect("last message");
    assert_eq!(
        last.content,
        MessageContent::Text {
            text: "are you there?".into(),
            recalled: false
        }
    );
}
