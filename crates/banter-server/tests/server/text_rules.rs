//! What text Banter accepts, the same on every backend (docs/protocol.md §"Text"):
//! U+0000 is refused in every string of every REST body and frame with `invalid_input`,
//! before anything is stored; usernames and `client_msg_id`s compare exactly, so `name `
//! is never `name` and `k ` is never `k`, whatever the database's collation would say.
//! And one user's refused sends never fail another user's.

use crate::common::*;
use banter_client::{Client, Method};
use banter_protocol::{ClientFrame, ConversationId, ErrorCode, ServerEvent};
use banter_server::auth::AdminToken;
use std::collections::HashMap;

const ADMIN_TOKEN: &str = "an admin token of at least thirty-two characters";
/// A JSON string holding U+0000 between two letters, as a client would escape it.
const NUL: &str = r#""a\u0000b""#;

/// Every text field of every REST body, one request each with U+0000 in that field and
/// valid values elsewhere: each is `400 invalid_input`, nothing is stored, and the valid
/// request afterwards still works (so the refusal was about the NUL alone).
#[tokio::test]
async fn nul_is_refused_in_every_rest_text_field() {
    let Some(server) = TestServer::start_with(|config| {
        config.admin_token = Some(AdminToken::new(ADMIN_TOKEN));
    })
    .await
    else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let (bob, bob_profile) = server.user("bob").await;
    let admin = server.client().with_token(ADMIN_TOKEN);
    let group = alice.create_group("g", &[]).await.unwrap().id;
    let anonymous = server.client();
    let bob_id = bob_profile.id.0;
    let password = format!("{PASSWORD:?}");

    // (field, who asks, method, path, body with the NUL in that field)
    let cases: Vec<(&str, &Client, Method, String, String)> = vec![
        (
            "register.username",
            &anonymous,
            Method::POST,
            "/api/v1/accounts".into(),
            format!(r#"{{"username":{NUL},"password":{password}}}"#),
        ),
        (
            "register.password",
            &anonymous,
            Method::POST,
            "/api/v1/accounts".into(),
            r#"{"username":"newname","password":"long enough \u0000"}"#.to_string(),
        ),
        (
            "register.nickname",
            &anonymous,
            Method::POST,
            "/api/v1/accounts".into(),
            format!(r#"{{"username":"newname","password":{password},"nickname":{NUL}}}"#),
        ),
        (
            "login.username",
            &anonymous,
            Method::POST,
            "/api/v1/sessions".into(),
            format!(r#"{{"username":"alice\u0000","password":{password}}}"#),
        ),
        (
            "login.password",
            &anonymous,
            Method::POST,
            "/api/v1/sessions".into(),
            format!(r#"{{"username":"alice","password":"{}\u0000"}}"#, PASSWORD),
        ),
        (
            "login.device_name",
            &anonymous,
            Method::POST,
            "/api/v1/sessions".into(),
            format!(r#"{{"username":"alice","password":{password},"device_name":{NUL}}}"#),
        ),
        (
            "update_me.nickname",
            &alice,
            Method::PATCH,
            "/api/v1/me".into(),
            format!(r#"{{"nickname":{NUL}}}"#),
        ),
        (
            "update_me.avatar_url",
            &alice,
            Method::PATCH,
            "/api/v1/me".into(),
            r#"{"avatar_url":"https://example.org/\u0000.png"}"#.into(),
        ),
        (
            "update_me.signature",
            &alice,
            Method::PATCH,
            "/api/v1/me".into(),
            format!(r#"{{"signature":{NUL}}}"#),
        ),
        (
            "change_password.old_password",
            &alice,
            Method::PUT,
            "/api/v1/me/password".into(),
            format!(r#"{{"old_password":"{PASSWORD}\u0000","new_password":"another long one"}}"#),
        ),
        (
            "change_password.new_password",
            &alice,
            Method::PUT,
            "/api/v1/me/password".into(),
            format!(r#"{{"old_password":{password},"new_password":"another \u0000 one"}}"#),
        ),
        (
            "friend_request.greeting",
            &alice,
            Method::POST,
            "/api/v1/friend-requests".into(),
            format!(r#"{{"user_id":{bob_id},"greeting":{NUL}}}"#),
        ),
        (
            "create_group.name",
            &alice,
            Method::POST,
            "/api/v1/groups".into(),
            format!(r#"{{"name":{NUL}}}"#),
        ),
        (
            "rename_group.name",
            &alice,
            Method::PATCH,
            format!("/api/v1/groups/{}", group.0),
            format!(r#"{{"name":{NUL}}}"#),
        ),
        (
            "admin_users.usernames",
            &admin,
            Method::POST,
            "/api/v1/admin/users".into(),
            format!(r#"{{"usernames":[{NUL}],"password":{password}}}"#),
        ),
        (
            "admin_users.password",
            &admin,
            Method::POST,
            "/api/v1/admin/users".into(),
            r#"{"usernames":["seeded"],"password":"long enough \u0000"}"#.into(),
        ),
        (
            "admin_users.device_name",
            &admin,
            Method::POST,
            "/api/v1/admin/users".into(),
            format!(r#"{{"usernames":["seeded"],"password":{password},"device_name":{NUL}}}"#),
        ),
        (
            "admin_group.name",
            &admin,
            Method::POST,
            "/api/v1/admin/groups".into(),
            format!(r#"{{"owner_id":{bob_id},"name":{NUL}}}"#),
        ),
    ];
    for (field, client, method, path, body) in &cases {
        let response = client
            .raw(method.clone(), path, Some(body))
            .await
            .expect("request");
        let code = response.error_body().map(|b| b.code);
        assert_eq!(
            (response.status, code),
            (400, Some(ErrorCode::InvalidInput)),
            "{field}: {}",
            response.body
        );
    }

    // Nothing of it was stored: the profile, the password, the group and the requests
    // are as they were, and no account or seeded user appeared.
    let me = alice.me().await.unwrap();
    assert_eq!(
        (me.nickname.as_str(), me.avatar_url, me.signature),
        ("alice", None, None)
    );
    server.device("alice").await;
    assert_eq!(
        alice
            .conversation(group)
            .await
            .unwrap()
            .summary
            .name
            .as_deref(),
        Some("g")
    );
    assert!(bob.friend_requests().await.unwrap().incoming.is_empty());
    for name in ["newname", "seeded"] {
        assert_eq!(
            alice.user_by_username(name).await.unwrap_err().code(),
            Some(ErrorCode::NotFound)
        );
    }
}

/// A frame with U+0000 in any string is `invalid_input` on that frame's id, and nothing
/// of it is stored or delivered.
#[tokio::test]
async fn nul_is_refused_in_frames() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let (bob, bob_profile) = server.user("bob").await;
    befriend(&alice, &bob).await;
    let conversation = alice.open_direct(bob_profile.id).await.unwrap().id.0;
    let mut conn = alice.connect().await.unwrap();
    for (id, frame) in [
        (
            "t1",
            format!(
                r#"{{"type":"send_message","id":"t1","conversation_id":{conversation},"client_msg_id":"c1","text":{NUL}}}"#
            ),
        ),
        (
            "t2",
            format!(
                r#"{{"type":"send_message","id":"t2","conversation_id":{conversation},"client_msg_id":{NUL},"text":"hi"}}"#
            ),
        ),
        ("p\u{0}", r#"{"type":"ping","id":"p\u0000"}"#.to_string()),
    ] {
        conn.send_raw_text(&frame).await.unwrap();
        let (got_id, code) = expect_event(&mut conn, |e| match e {
            ServerEvent::Error { id, code, .. } => Some((id.clone(), *code)),
            _ => None,
        })
        .await;
        assert_eq!(
            (got_id.as_deref(), code),
            (Some(id), ErrorCode::InvalidInput)
        );
    }
    let history = bob
        .messages_after(ConversationId(conversation), 0, 10)
        .await
        .unwrap();
    assert!(history.messages.is_empty(), "nothing was stored");
}

/// `alice ` is not `alice`: not at login (even with alice's password), not in a lookup,
/// and not as a new account; on MariaDB its padding collation would say otherwise.
#[tokio::test]
async fn usernames_compare_exactly() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    for spelling in ["alice ", "alice  ", " alice"] {
        let mut client = server.client();
        let refused = client
            .login(spelling, PASSWORD, "device")
            .await
            .expect_err("no such user");
        assert_eq!(
            refused.code(),
            Some(ErrorCode::InvalidCredentials),
            "{spelling:?}"
        );
        let path = format!("/api/v1/users/{}", spelling.replace(' ', "%20"));
        let lookup = alice.raw_get(&path).await.unwrap();
        assert_eq!(lookup.status, 404, "{spelling:?}: {}", lookup.body);
        let registered = server
            .client()
            .register(spelling, PASSWORD)
            .await
            .expect_err("not a valid username");
        assert_eq!(
            registered.code(),
            Some(ErrorCode::InvalidInput),
            "{spelling:?}"
        );
    }
}

/// A `client_msg_id` is compared byte for byte: `k ` is refused (whitespace at either end
/// is not allowed), and it never turns into a resend of `k`.
#[tokio::test]
async fn client_msg_ids_compare_exactly() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let (bob, bob_profile) = server.user("bob").await;
    befriend(&alice, &bob).await;
    let conversation = alice.open_direct(bob_profile.id).await.unwrap().id;
    let mut conn = alice.connect().await.unwrap();
    let send = |id: &str, client_msg_id: &str| ClientFrame::SendMessage {
        id: id.into(),
        conversation_id: conversation,
        client_msg_id: client_msg_id.into(),
        text: "hello".into(),
        attachment: None,
    };
    let mut answers = HashMap::new();
    let frames = [
        ("s1", "k"),
        ("s2", "k "),
        ("s3", " k"),
        ("s4", "k\t"),
        ("s5", "k\u{1}"),
        ("s6", "k"),
    ];
    for (id, client_msg_id) in frames {
        conn.send_frame(&send(id, client_msg_id)).await.unwrap();
    }
    while answers.len() < frames.len() {
        let (id, answer) = expect_event(&mut conn, |e| match e {
            ServerEvent::Ack { id, seq, .. } => Some((id.clone(), Ok(*seq))),
            ServerEvent::Error {
                id: Some(id), code, ..
            } => Some((id.clone(), Err(*code))),
            _ => None,
        })
        .await;
        answers.insert(id, answer);
    }
    assert_eq!(answers["s1"], Ok(1));
    for id in ["s2", "s3", "s4", "s5"] {
        assert_eq!(answers[id], Err(ErrorCode::InvalidInput), "{id}");
    }
    assert_eq!(answers["s6"], Ok(1), "the resend of k is k");
    let stored = bob.messages_after(conversation, 0, 10).await.unwrap();
    assert_eq!(stored.messages.len(), 1);
}

/// An attacker pipelines sends the databases disagree about (U+0000 in the text and the
/// id, an id that pads to an earlier one) beside a bystander's sends, so that they share
/// the writer's batches: every one of the bystander's sends is acked, with gapless seqs,
/// and every bad send is refused on its own id as `invalid_input`.
#[tokio::test]
async fn one_users_bad_sends_never_fail_anothers() {
    const SENDS: usize = 200;
    // Both pipeline faster than a person types; the frame rate limit is not under test.
    let Some(server) = TestServer::start_with(|config| {
        config.limits.frames_per_second_max = 100_000;
    })
    .await
    else {
        return;
    };
    let (attacker, _) = server.user("mallory").await;
    let (victim, _) = server.user("victim").await;
    let (friend, friend_profile) = server.user("friend").await;
    befriend(&victim, &friend).await;
    befriend(&attacker, &friend).await;
    let victim_chat = victim.open_direct(friend_profile.id).await.unwrap().id;
    let attacker_chat = attacker.open_direct(friend_profile.id).await.unwrap().id;

    let mut attacker_conn = attacker.connect().await.unwrap();
    let mut victim_conn = victim.connect().await.unwrap();
    attacker_conn
        .send_frame(&ClientFrame::SendMessage {
            id: "first".into(),
            conversation_id: attacker_chat,
            client_msg_id: "k".into(),
            text: "the key the padded ones collide with".into(),
            attachment: None,
        })
        .await
        .unwrap();
    let attack = async {
        let chat = attacker_chat.0;
        for i in 0..SENDS {
            let frame = match i % 3 {
                0 => format!(
                    r#"{{"type":"send_message","id":"a{i}","conversation_id":{chat},"client_msg_id":"n{i}","text":{NUL}}}"#
                ),
                1 => format!(
                    r#"{{"type":"send_message","id":"a{i}","conversation_id":{chat},"client_msg_id":"x\u0000{i}","text":"hi"}}"#
                ),
                _ => format!(
                    r#"{{"type":"send_message","id":"a{i}","conversation_id":{chat},"client_msg_id":"k ","text":"hi"}}"#
                ),
            };
            attacker_conn.send_raw_text(&frame).await.unwrap();
        }
        let mut refused = 0;
        while refused < SENDS {
            let code = expect_event(&mut attacker_conn, |e| match e {
                ServerEvent::Error {
                    id: Some(id), code, ..
                } if id.starts_with('a') => Some(*code),
                _ => None,
            })
            .await;
            assert_eq!(code, ErrorCode::InvalidInput);
            refused += 1;
        }
    };
    let victim_sends = async {
        for i in 0..SENDS {
            victim_conn
                .send_frame(&ClientFrame::SendMessage {
                    id: format!("v{i}"),
                    conversation_id: victim_chat,
                    client_msg_id: format!("v{i}"),
                    text: format!("message {i}"),
                    attachment: None,
                })
                .await
                .unwrap();
        }
        let mut seqs = Vec::new();
        while seqs.len() < SENDS {
            let answer = expect_event(&mut victim_conn, |e| match e {
                ServerEvent::Ack { seq, .. } => Some(Ok(*seq)),
                ServerEvent::Error { id, code, .. } => Some(Err((id.clone(), *code))),
                _ => None,
            })
            .await;
            seqs.push(answer.expect("the bystander's send is acked"));
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=SENDS as i64).collect::<Vec<_>>());
    };
    tokio::join!(attack, victim_sends);
    let stored = friend.messages_after(victim_chat, 0, 200).await.unwrap();
    assert_eq!(stored.messages.len(), SENDS);
}
