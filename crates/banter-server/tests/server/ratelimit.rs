//! Rate limits where abuse is cheap, each driven to its bound with small configured
//! values: the login throttle (by account and address, by address, by account), wrong old
//! passwords, registrations per address, friend requests, groups and group invites per
//! user, and messages per user over all their connections.
//!
//! Clients at different addresses leave from different loopback addresses (Linux routes
//! all of 127.0.0.0/8 to the loopback interface); `server.user` registers and logs in
//! from 127.0.0.1, which makes 127.0.0.1 the owner's known address.

use crate::common::*;
use banter_client::{Client, ClientError, Connection};
use banter_protocol::api::LoginResponse;
use banter_protocol::{ClientFrame, ConversationId, ErrorCode, ServerEvent};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// A client whose HTTP requests come from 127.0.0.`last`.
fn client_at(server: &TestServer, last: u8) -> Client {
    Client::new_from(&server.base_url, loopback(last)).expect("client")
}

async fn login_at(
    server: &TestServer,
    last: u8,
    username: &str,
    password: &str,
) -> Result<LoginResponse, ClientError> {
    client_at(server, last)
        .login(username, password, "test device")
        .await
}

/// Asserts a `429 rate_limited` that says when to come back.
#[track_caller]
fn assert_rate_limited(result: Result<impl std::fmt::Debug, ClientError>, what: &str) {
    let err = result.expect_err(what);
    assert_eq!(
        (err.status(), err.code()),
        (Some(429), Some(ErrorCode::RateLimited)),
        "{what}: {err}"
    );
    assert!(
        err.retry_after()
            .is_some_and(|d| d >= Duration::from_secs(1)),
        "{what}: a Retry-After header: {err:?}"
    );
}

#[track_caller]
fn assert_wrong_password(result: Result<LoginResponse, ClientError>) {
    let err = result.expect_err("a wrong password is refused");
    assert_eq!(err.code(), Some(ErrorCode::InvalidCredentials), "{err}");
}

#[tokio::test]
async fn a_strangers_wrong_passwords_do_not_lock_the_owner_out() {
    let Some(server) = TestServer::start_with(|c| {
        c.limits.login_failures_per_account_address =
            banter_server::ratelimit::Rate::new(3, Duration::from_secs(900));
    })
    .await
    else {
        return;
    };
    server.user("alice").await;
    for _ in 0..3 {
        assert_wrong_password(login_at(&server, 2, "alice", "guess guess").await);
    }
    assert_rate_limited(
        login_at(&server, 2, "alice", PASSWORD).await,
        "the guesser's address waits, even with the right password",
    );
    login_at(&server, 1, "alice", PASSWORD)
        .await
        .expect("the owner logs in from their usual address");
    login_at(&server, 3, "alice", PASSWORD)
        .await
        .expect("and from a new one");
}

#[tokio::test]
async fn guesses_spread_over_spellings_of_a_username_count_as_one_account() {
    let Some(server) = TestServer::start_with(|c| {
        c.limits.login_failures_per_account_address =
            banter_server::ratelimit::Rate::new(4, Duration::from_secs(900));
    })
    .await
    else {
        return;
    };
    server.user("kate").await;
    server.user("bob").await;
    for spelling in ["kate", "KATE", "Kate", "kATE"] {
        assert_wrong_password(login_at(&server, 2, spelling, "guess guess").await);
    }
    // Spellings outside the username rules ("\u{212A}" is the Kelvin sign, which Unicode
    // lowercases to "k"; "kate " pads to "kate" on MariaDB) name nobody: refused without
    // a lookup, so they can never log in, even with the right password.
    for spelling in ["\u{212A}ate", "kate ", " kate"] {
        assert_wrong_password(login_at(&server, 2, spelling, PASSWORD).await);
    }
    assert_rate_limited(
        login_at(&server, 2, "kAtE", PASSWORD).await,
        "a fifth spelling from the same address",
    );
    login_at(&server, 2, "bob", PASSWORD)
        .await
        .expect("other accounts are not affected");
}

#[tokio::test]
async fn guesses_spread_over_many_addresses_are_stopped_but_the_owner_still_logs_in() {
    let Some(server) = TestServer::start_with(|c| {
        c.limits.login_failures_per_account =
            banter_server::ratelimit::Rate::new(5, Duration::from_secs(24 * 3600));
    })
    .await
    else {
        return;
    };
    server.user("alice").await;
    for last in 10..15 {
        assert_wrong_password(login_at(&server, last, "ALICE", "guess guess").await);
    }
    assert_rate_limited(
        login_at(&server, 15, "alice", PASSWORD).await,
        "a sixth address, even with the right password",
    );
    assert_rate_limited(
        login_at(&server, 10, "alice", "guess again").await,
        "an address that guessed before",
    );
    login_at(&server, 1, "alice", PASSWORD)
        .await
        .expect("the owner logs in from an address that logged in before");
}

#[tokio::test]
async fn one_address_cannot_spray_guesses_over_many_accounts() {
    let Some(server) = TestServer::start_with(|c| {
        c.limits.login_failures_per_address =
            banter_server::ratelimit::Rate::new(3, Duration::from_secs(900));
    })
    .await
    else {
        return;
    };
    for name in ["alice", "bob", "carol", "dave"] {
        server.user(name).await;
    }
    for name in ["alice", "bob", "nobody"] {
        assert_wrong_password(login_at(&server, 2, name, "guess guess").await);
    }
    assert_rate_limited(
        login_at(&server, 2, "carol", "guess guess").await,
        "a fourth account from the same address",
    );
    login_at(&server, 3, "carol", PASSWORD)
        .await
        .expect("other addresses are not affected");
}

#[tokio::test]
async fn wrong_old_passwords_are_throttled_like_failed_logins() {
    let Some(server) = TestServer::start_with(|c| {
        c.limits.login_failures_per_account_address =
            banter_server::ratelimit::Rate::new(2, Duration::from_secs(900));
    })
    .await
    else {
        return;
    };
    server.user("alice").await;
    let stolen = client_at(&server, 2)
        .login("alice", PASSWORD, "phone")
        .await
        .map(|r| client_at(&server, 2).with_token(r.token))
        .expect("login");
    for _ in 0..2 {
        let err = stolen
            .change_password("guess guess", "new password 1")
            .await
            .expect_err("wrong old password");
        assert_eq!(err.code(), Some(ErrorCode::InvalidCredentials));
    }
    assert_rate_limited(
        stolen.change_password(PASSWORD, "new password 1").await,
        "a third old password",
    );
    assert_rate_limited(
        login_at(&server, 2, "alice", PASSWORD).await,
        "the same budget as logins",
    );
    login_at(&server, 1, "alice", PASSWORD)
        .await
        .expect("the password is unchanged and the owner logs in");
}

#[tokio::test]
async fn registrations_are_limited_per_address() {
    let Some(server) = TestServer::start_with(|c| {
        c.limits.registrations_per_address =
            banter_server::ratelimit::Rate::new(2, Duration::from_secs(3600));
    })
    .await
    else {
        return;
    };
    let at_2 = client_at(&server, 2);
    at_2.register("first", PASSWORD).await.expect("register");
    at_2.register("second", PASSWORD).await.expect("register");
    assert_rate_limited(at_2.register("third", PASSWORD).await, "a third account");
    client_at(&server, 3)
        .register("third", PASSWORD)
        .await
        .expect("another address registers");
}

#[tokio::test]
async fn friend_requests_are_limited_per_user() {
    let Some(server) = TestServer::start_with(|c| {
        c.limits.friend_requests_per_user =
            banter_server::ratelimit::Rate::new(2, Duration::from_secs(3600));
    })
    .await
    else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let mut ids = Vec::new();
    for name in ["bob", "carol", "dave"] {
        ids.push(server.user(name).await.1.id);
    }
    alice.send_friend_request(ids[0], None).await.unwrap();
    alice.send_friend_request(ids[1], None).await.unwrap();
    assert_rate_limited(
        alice.send_friend_request(ids[2], None).await,
        "a third request",
    );
    let bob = server.device("bob").await;
    bob.send_friend_request(ids[2], None)
        .await
        .expect("other users are not affected");
}

#[tokio::test]
async fn group_creation_and_invites_are_limited_per_user() {
    let Some(server) = TestServer::start_with(|c| {
        c.limits.groups_per_user =
            banter_server::ratelimit::Rate::new(2, Duration::from_secs(3600));
        c.limits.group_invites_per_user =
            banter_server::ratelimit::Rate::new(3, Duration::from_secs(3600));
    })
    .await
    else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let mut friends = Vec::new();
    for name in ["bob", "carol", "dave", "erin"] {
        let (friend, profile) = server.user(name).await;
        befriend(&alice, &friend).await;
        friends.push(profile.id);
    }
    let group = alice
        .create_group("one", &friends[..2])
        .await
        .expect("two invited");
    alice
        .add_members(group.id, &friends[2..3])
        .await
        .expect("a third");
    assert_rate_limited(
        alice.add_members(group.id, &friends[3..4]).await,
        "a fourth invitee",
    );
    assert_rate_limited(
        alice.create_group("two", &friends[3..4]).await,
        "a group whose member would be a fourth invitee",
    );
    alice
        .create_group("two", &[])
        .await
        .expect("the refused creation did not count");
    assert_rate_limited(alice.create_group("three", &[]).await, "a third group");
}

fn send(conversation_id: ConversationId, id: &str) -> ClientFrame {
    ClientFrame::SendMessage {
        id: id.into(),
        conversation_id,
        client_msg_id: format!("msg-{id}"),
        text: format!("text {id}"),
        attachment: None,
    }
}

/// The reply to request `id`: `Ok(seq)` for an ack, `Err(code)` for an error.
async fn reply_to(conn: &mut Connection, id: &str) -> Result<i64, ErrorCode> {
    expect_event(conn, |e| match e {
        ServerEvent::Ack { id: got, seq, .. } if got == id => Some(Ok(*seq)),
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
async fn messages_are_limited_per_user_over_all_connections_and_a_retry_is_sent_once() {
    // One message per second with a burst of two, over all of alice's connections.
    let Some(server) = TestServer::start_with(|c| {
        c.limits.messages_per_user = banter_server::ratelimit::Rate::new(2, Duration::from_secs(2));
    })
    .await
    else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let (bob, bob_profile) = server.user("bob").await;
    befriend(&alice, &bob).await;
    let conversation = alice.open_direct(bob_profile.id).await.unwrap().id;
    let mut phone = alice.connect().await.unwrap();
    let mut laptop = server.device("alice").await.connect().await.unwrap();
    let mut bob_ws = bob.connect().await.unwrap();

    phone.send_frame(&send(conversation, "a")).await.unwrap();
    assert_eq!(reply_to(&mut phone, "a").await, Ok(1));
    laptop.send_frame(&send(conversation, "b")).await.unwrap();
    assert_eq!(reply_to(&mut laptop, "b").await, Ok(2));
    phone.send_frame(&send(conversation, "c")).await.unwrap();
    assert_eq!(
        reply_to(&mut phone, "c").await,
        Err(ErrorCode::RateLimited),
        "a third send within the second, on either connection, is refused on its id"
    );
    bob_ws.send_frame(&send(conversation, "bob")).await.unwrap();
    assert_eq!(
        reply_to(&mut bob_ws, "bob").await,
        Ok(3),
        "other users are not affected"
    );

    // The client retries the refused send, same client_msg_id, until its budget is back.
    let deadline = tokio::time::Instant::now() + WAIT;
    let seq = loop {
        laptop.send_frame(&send(conversation, "c")).await.unwrap();
        match reply_to(&mut laptop, "c").await {
            Ok(seq) => break seq,
            Err(ErrorCode::RateLimited) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(code) => panic!("the retry failed with {code:?}"),
        }
    };
    assert_eq!(seq, 4);
    let stored: Vec<Option<String>> = alice
        .messages_after(conversation, 0, 50)
        .await
        .unwrap()
        .messages
        .into_iter()
        .map(|m| m.client_msg_id)
        .collect();
    let expected = ["msg-a", "msg-b", "msg-bob", "msg-c"].map(|c| Some(c.to_owned()));
    assert_eq!(stored, expected, "the refused send was stored once");
}

#[tokio::test]
async fn the_sdk_session_resends_sends_refused_for_the_message_rate_until_acked() {
    let Some(server) = TestServer::start_with(|c| {
        c.limits.messages_per_user = banter_server::ratelimit::Rate::new(2, Duration::from_secs(2));
    })
    .await
    else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let (bob, bob_profile) = server.user("bob").await;
    befriend(&alice, &bob).await;
    let conversation = alice.open_direct(bob_profile.id).await.unwrap().id;
    let mut session = banter_client::Session::start(alice.clone()).await.unwrap();
    const SENDS: usize = 5;
    let mut ids = Vec::new();
    for i in 0..SENDS {
        ids.push(
            session
                .queue_text(conversation, &format!("burst {i}"))
                .await
                .unwrap(),
        );
    }
    let mut acked = Vec::new();
    while acked.len() < SENDS {
        match session.next_event(WAIT).await.expect("every send is acked") {
            banter_client::SessionEvent::Acked(ack) => acked.extend(ack.client_msg_id),
            banter_client::SessionEvent::SendFailed { code, .. } => {
                panic!("a send failed with {code:?}")
            }
            _ => {}
        }
    }
    acked.sort();
    ids.sort();
    assert_eq!(acked, ids);
    let mut stored: Vec<String> = alice
        .messages_after(conversation, 0, 50)
        .await
        .unwrap()
        .messages
        .into_iter()
        .filter_map(|m| m.client_msg_id)
        .collect();
    stored.sort();
    assert_eq!(stored, ids, "each stored once");
}

#[tokio::test]
async fn the_openapi_document_lists_429_with_retry_after_on_every_limited_route() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let doc: serde_json::Value = server
        .client()
        .raw_get("/api/v1/openapi.json")
        .await
        .unwrap()
        .json()
        .unwrap();
    for (path, method) in [
        ("/api/v1/accounts", "post"),
        ("/api/v1/sessions", "post"),
        ("/api/v1/me/password", "put"),
        ("/api/v1/friend-requests", "post"),
        ("/api/v1/groups", "post"),
        ("/api/v1/groups/{id}/members", "post"),
    ] {
        let limited = &doc["paths"][path][method]["responses"]["429"];
        assert!(
            limited["headers"]["Retry-After"].is_object(),
            "{method} {path}: {limited}"
        );
    }
}
