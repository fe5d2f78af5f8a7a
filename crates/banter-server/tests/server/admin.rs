//! The admin API: absent without an `admin_token`, refused with a wrong one, and with the
//! right one it seeds users who are logged in, friends who can chat, and groups whose
//! members all hear each other, all or nothing.

use crate::common::*;
use banter_client::{AdminClient, ClientError, Connection, ADMIN_BATCH_MAX};
use banter_protocol::model::{ConversationKind, MessageContent, Role};
use banter_protocol::{ClientFrame, ConversationId, ErrorCode, ServerEvent, UserId};
use banter_server::auth::AdminToken;

const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef0123456789";

async fn server_with_admin() -> Option<TestServer> {
    TestServer::start_with(|config| config.admin_token = Some(AdminToken::new(ADMIN_TOKEN))).await
}

fn admin(server: &TestServer) -> AdminClient {
    AdminClient::new(&server.base_url, ADMIN_TOKEN).expect("admin client")
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// Sends `text` on `conn` and returns the seq of its ack.
async fn send_text(conn: &mut Connection, conversation: ConversationId, text: &str) -> i64 {
    conn.send_frame(&ClientFrame::SendMessage {
        id: format!("send-{text}"),
        conversation_id: conversation,
        client_msg_id: format!("{text}-id"),
        text: text.into(),
        attachment: None,
    })
    .await
    .unwrap();
    expect_event(conn, |e| match e {
        ServerEvent::Ack { seq, .. } => Some(*seq),
        ServerEvent::Error { code, message, .. } => panic!("send refused: {code:?} {message}"),
        _ => None,
    })
    .await
}

/// Waits for the text message with `seq` in `conversation`.
async fn expect_text(conn: &mut Connection, conversation: ConversationId, seq: i64) -> String {
    expect_event(conn, |e| match e {
        ServerEvent::MessageCreated { message }
            if message.conversation_id == conversation && message.seq == seq =>
        {
            match &message.content {
                MessageContent::Text { text, .. } => Some(text.clone()),
                other => panic!("expected text, got {other:?}"),
            }
        }
        _ => None,
    })
    .await
}

#[tokio::test]
async fn without_a_token_the_admin_api_is_an_unknown_route() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let client = server.client().with_token(ADMIN_TOKEN);
    let unknown = client
        .raw_post("/api/v1/no-such-route", r#"{"usernames":[]}"#)
        .await
        .unwrap();
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.error_body().unwrap().code, ErrorCode::NotFound);
    for path in ["/admin/users", "/admin/friendships", "/admin/groups"] {
        let response = client
            .raw_post(&format!("/api/v1{path}"), r#"{"usernames":[]}"#)
            .await
            .unwrap();
        assert_eq!(response, unknown, "{path} answers like an unknown route");
    }
    let err = admin(&server)
        .create_users(&names("nobody", 1), PASSWORD, None)
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(404), Some(ErrorCode::NotFound))
    );
}

#[tokio::test]
async fn a_wrong_or_missing_admin_token_is_unauthorized() {
    let Some(server) = server_with_admin().await else {
        return;
    };
    let wrong =
        AdminClient::new(&server.base_url, "wrong-admin-token-0123456789abcdef0123").unwrap();
    let err = wrong
        .create_users(&names("intruder", 1), PASSWORD, None)
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(401), Some(ErrorCode::Unauthorized))
    );
    // A user's own session token is no admin token either.
    let (alice, _) = server.user("alice").await;
    let response = alice
        .raw_post(
            "/api/v1/admin/users",
            r#"{"usernames":["x_y_z"],"password":"long enough"}"#,
        )
        .await
        .unwrap();
    assert_eq!(response.status, 401);
    let response = server
        .client()
        .raw_post(
            "/api/v1/admin/users",
            r#"{"usernames":["x_y_z"],"password":"long enough"}"#,
        )
        .await
        .unwrap();
    assert_eq!(response.status, 401);
    // Nothing was created by any of them.
    let err = alice.user_by_username("intruder0").await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotFound));
    let err = alice.user_by_username("x_y_z").await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotFound));
}

#[tokio::test]
async fn seeded_users_are_logged_in_and_can_log_in_with_the_password() {
    let Some(server) = server_with_admin().await else {
        return;
    };
    let usernames = names("Seed_", 3);
    let created = admin(&server)
        .create_users(&usernames, PASSWORD, Some("bench"))
        .await
        .expect("create users");
    assert_eq!(created.len(), 3);
    for (seeded, username) in created.iter().zip(&usernames) {
        assert_eq!(&seeded.user.username, username);
        assert_eq!(&seeded.user.nickname, username);
        // The token works at once: REST and WebSocket.
        let client = server.client().with_token(seeded.token.clone());
        assert_eq!(client.me().await.unwrap(), seeded.user);
        let conn = client
            .connect()
            .await
            .expect("the seeded token opens a socket");
        assert_eq!(conn.user_id(), seeded.user.id);
        // And the password logs in like any registered user's.
        let mut fresh = server.client();
        let login = fresh.login(username, PASSWORD, "laptop").await.unwrap();
        assert_eq!(login.user.id, seeded.user.id);
        let err = server
            .client()
            .login(username, "not the password", "laptop")
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::InvalidCredentials));
    }
}

#[tokio::test]
async fn seeded_friends_chat_directly() {
    let Some(server) = server_with_admin().await else {
        return;
    };
    let admin = admin(&server);
    let users = admin
        .create_users(&names("pal", 2), PASSWORD, None)
        .await
        .unwrap();
    let (alice, bob) = (&users[0], &users[1]);
    let direct = admin
        .create_friendships(&[[alice.user.id, bob.user.id]])
        .await
        .unwrap();
    assert_eq!(direct.len(), 1);

    let alice_client = server.client().with_token(alice.token.clone());
    let bob_client = server.client().with_token(bob.token.clone());
    assert_eq!(
        alice_client.friends().await.unwrap()[0].user.id,
        bob.user.id
    );
    // The conversation open_direct finds is the one the admin API returned.
    assert_eq!(
        bob_client.open_direct(alice.user.id).await.unwrap().id,
        direct[0]
    );

    let mut alice_ws = alice_client.connect().await.unwrap();
    let mut bob_ws = bob_client.connect().await.unwrap();
    let seq = send_text(&mut alice_ws, direct[0], "hello bob").await;
    assert_eq!(seq, 1);
    assert_eq!(expect_text(&mut bob_ws, direct[0], seq).await, "hello bob");
    let seq = send_text(&mut bob_ws, direct[0], "hi alice").await;
    assert_eq!(expect_text(&mut alice_ws, direct[0], seq).await, "hi alice");

    // Seeding the pair again, either way round, is no error and changes nothing.
    let again = admin
        .create_friendships(&[[bob.user.id, alice.user.id]])
        .await
        .unwrap();
    assert_eq!(again, direct);

    // A pair of one user, or an unknown id: invalid_input.
    for pairs in [
        [[alice.user.id, alice.user.id]],
        [[alice.user.id, UserId(i64::MAX)]],
    ] {
        let err = admin.create_friendships(&pairs).await.unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::InvalidInput), "{err}");
    }
}

#[tokio::test]
async fn a_taken_username_fails_the_whole_batch() {
    let Some(server) = server_with_admin().await else {
        return;
    };
    let admin = admin(&server);
    let first = admin
        .create_users(&["Taken".to_string()], PASSWORD, None)
        .await
        .unwrap();
    let looker = server.client().with_token(first[0].token.clone());

    for batch in [
        vec!["fresh1".to_string(), "TAKEN".to_string()],
        vec![
            "fresh1".to_string(),
            "Twice".to_string(),
            "twice".to_string(),
        ],
    ] {
        let err = admin
            .create_users(&batch, PASSWORD, None)
            .await
            .unwrap_err();
        assert_eq!(
            (err.status(), err.code()),
            (Some(409), Some(ErrorCode::UsernameTaken))
        );
        let ClientError::Api { message, .. } = &err else {
            panic!("expected an API error, got {err}");
        };
        assert!(
            message.contains(batch.last().unwrap()),
            "names the username: {message}"
        );
        // Nobody of the batch exists: not fresh1, not the repeated name.
        for name in &batch[..batch.len() - 1] {
            if name.eq_ignore_ascii_case("taken") {
                continue;
            }
            let err = looker.user_by_username(name).await.unwrap_err();
            assert_eq!(
                err.code(),
                Some(ErrorCode::NotFound),
                "{name} was not created"
            );
        }
        let err = server
            .client()
            .login("fresh1", PASSWORD, "laptop")
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::InvalidCredentials));
    }

    // Bad usernames and passwords get the registration rules' errors.
    let err = admin
        .create_users(
            &["ok_name".to_string(), "no spaces".to_string()],
            PASSWORD,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidInput));
    let err = admin
        .create_users(&["ok_name".to_string()], "short", None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidInput));
}

#[tokio::test]
async fn every_member_of_an_admin_group_hears_a_message() {
    let Some(server) = server_with_admin().await else {
        return;
    };
    let admin = admin(&server);
    let users = admin
        .create_users(&names("member", 12), PASSWORD, None)
        .await
        .unwrap();
    let mut sockets = Vec::new();
    for user in &users {
        let client = server.client().with_token(user.token.clone());
        sockets.push(client.connect().await.unwrap());
    }
    // Nobody is anybody's friend.
    let owner = users[0].user.id;
    let members: Vec<UserId> = users[1..].iter().map(|u| u.user.id).collect();
    let group = admin
        .create_group(owner, "load test", &members)
        .await
        .unwrap();
    assert_eq!(group.kind, ConversationKind::Group);
    assert_eq!(group.my_role, Role::Owner);
    assert_eq!(group.member_count, 12);
    assert_eq!(group.name.as_deref(), Some("load test"));

    // Everyone hears of the group as with POST /groups, then hears a member's message.
    for conn in &mut sockets {
        let joined = expect_event(conn, |e| match e {
            ServerEvent::ConversationJoined { conversation } => Some(conversation.id),
            _ => None,
        })
        .await;
        assert_eq!(joined, group.id);
    }
    let mut sender = sockets.remove(5);
    let seq = send_text(&mut sender, group.id, "hello everyone").await;
    // (The sender's own copy may come before its ack, which `send_text` skipped past.)
    for conn in &mut sockets {
        assert_eq!(expect_text(conn, group.id, seq).await, "hello everyone");
    }

    // An unknown member: invalid_input, and no group.
    let err = admin
        .create_group(owner, "ghosts", &[UserId(i64::MAX)])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidInput));
    let owner_client = server.client().with_token(users[0].token.clone());
    assert_eq!(owner_client.conversations().await.unwrap().len(), 1);
}

#[tokio::test]
async fn lists_over_the_batch_limit_are_invalid_input() {
    let Some(server) = server_with_admin().await else {
        return;
    };
    let admin = admin(&server);
    // Far larger than the ordinary 64 KiB body limit, and still answered with the rule.
    let too_many = names("user", ADMIN_BATCH_MAX + 1);
    let err = admin
        .create_users(&too_many, PASSWORD, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidInput), "{err}");
    let ClientError::Api { message, .. } = &err else {
        panic!("expected an API error, got {err}");
    };
    assert!(message.contains("10000"), "says the limit: {message}");

    let pairs = vec![[UserId(1), UserId(2)]; ADMIN_BATCH_MAX + 1];
    let err = admin.create_friendships(&pairs).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidInput));
    let members = vec![UserId(2); ADMIN_BATCH_MAX + 1];
    let err = admin
        .create_group(UserId(1), "big", &members)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::InvalidInput));

    // A full batch is fine.
    let created = admin
        .create_users(&names("user", ADMIN_BATCH_MAX), PASSWORD, None)
        .await
        .unwrap();
    assert_eq!(created.len(), ADMIN_BATCH_MAX);
}
