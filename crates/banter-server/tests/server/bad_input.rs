//! Hostile and broken input: each gets its documented error, and the connection and the
//! server stay healthy for everyone.

use crate::common::*;
use banter_protocol::{ClientFrame, ConversationId, ErrorCode, ServerEvent};

/// Sends raw text and returns the error frame it earns.
async fn error_for(
    conn: &mut banter_client::Connection,
    text: &str,
) -> (Option<String>, ErrorCode) {
    conn.send_raw_text(text).await.expect("send");
    expect_event(conn, |e| match e {
        ServerEvent::Error { id, code, .. } => Some((id.clone(), *code)),
        _ => None,
    })
    .await
}

async fn still_healthy(conn: &mut banter_client::Connection, id: &str) {
    conn.send_frame(&ClientFrame::Ping { id: id.into() })
        .await
        .expect("ping");
    let pong = expect_event(conn, |e| match e {
        ServerEvent::Pong { id } => Some(id.clone()),
        _ => None,
    })
    .await;
    assert_eq!(pong, id);
}

#[tokio::test]
async fn every_bad_frame_gets_its_error_and_the_connection_survives() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let mut conn = alice.connect().await.expect("connect");

    assert_eq!(
        error_for(&mut conn, "{this is not json").await.1,
        ErrorCode::InvalidJson
    );
    assert_eq!(
        error_for(&mut conn, r#"{"type":"teleport","id":"t1"}"#).await,
        (Some("t1".into()), ErrorCode::InvalidFrame)
    );
    assert_eq!(
        error_for(
            &mut conn,
            r#"{"type":"mark_read","id":"t2","conversation_id":"seven","seq":1}"#
        )
        .await,
        (Some("t2".into()), ErrorCode::InvalidFrame)
    );
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert_eq!(error_for(&mut conn, &deep).await.1, ErrorCode::InvalidJson);
    let limit = conn.hello().frame_bytes_max;
    let oversize = format!(
        r#"{{"type":"send_message","id":"t3","conversation_id":1,"client_msg_id":"c","text":"{}"}}"#,
        "x".repeat(limit + 1)
    );
    assert_eq!(error_for(&mut conn, &oversize).await.1, ErrorCode::TooLarge);
    let long_text = "y".repeat(conn.hello().message_bytes_max + 1);
    let frame = ClientFrame::SendMessage {
        id: "t4".into(),
        conversation_id: ConversationId(1),
        client_msg_id: "c4".into(),
        text: long_text,
        attachment: None,
    };
    conn.send_frame(&frame).await.expect("send");
    let code = expect_event(&mut conn, |e| match e {
        ServerEvent::Error {
            id: Some(id), code, ..
        } if id == "t4" => Some(*code),
        _ => None,
    })
    .await;
    assert_eq!(code, ErrorCode::TooLarge);

    let nowhere = ClientFrame::SendMessage {
        id: "t5".into(),
        conversation_id: ConversationId(999_999),
        client_msg_id: "c5".into(),
        text: "hello?".into(),
        attachment: None,
    };
    conn.send_frame(&nowhere).await.expect("send");
    let code = expect_event(&mut conn, |e| match e {
        ServerEvent::Error {
            id: Some(id), code, ..
        } if id == "t5" => Some(*code),
        _ => None,
    })
    .await;
    assert_eq!(code, ErrorCode::NotFound);

    still_healthy(&mut conn, "after-all-that").await;
    // And the server still serves everyone else.
    let (bob, _) = server.user("bob").await;
    let mut other = bob.connect().await.expect("another user connects");
    still_healthy(&mut other, "bob-ok").await;
}

#[tokio::test]
async fn rest_errors_are_structured_with_the_right_status() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let anonymous = server.client();
    let response = anonymous.raw_get("/api/v1/me").await.unwrap();
    assert_eq!(response.status, 401);
    assert_eq!(response.error_body().unwrap().code, ErrorCode::Unauthorized);

    let response = anonymous
        .raw_post("/api/v1/accounts", "{nope")
        .await
        .unwrap();
    assert_eq!(
        (response.status, response.error_body().unwrap().code),
        (400, ErrorCode::InvalidJson)
    );
    let response = anonymous
        .raw_post("/api/v1/accounts", r#"{"username": 5, "password": "x"}"#)
        .await
        .unwrap();
    assert_eq!(
        (response.status, response.error_body().unwrap().code),
        (400, ErrorCode::InvalidFrame)
    );
    let response = anonymous
        .raw_post(
            "/api/v1/accounts",
            r#"{"username": "a b", "password": "long enough"}"#,
        )
        .await
        .unwrap();
    assert_eq!(
        (response.status, response.error_body().unwrap().code),
        (400, ErrorCode::InvalidInput)
    );
    let response = anonymous
        .raw_post(
            "/api/v1/accounts",
            r#"{"username": "carol", "password": "short"}"#,
        )
        .await
        .unwrap();
    assert_eq!(
        (response.status, response.error_body().unwrap().code),
        (400, ErrorCode::InvalidInput)
    );
    let huge = format!(
        r#"{{"username":"dave","password":"{}"}}"#,
        "p".repeat(200_000)
    );
    let response = anonymous.raw_post("/api/v1/accounts", &huge).await.unwrap();
    assert_eq!(response.status, 413);

    let (alice, _) = server.user("alice").await;
    let taken = server
        .client()
        .register("ALICE", PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Some(ErrorCode::UsernameTaken));
    let mut wrong = server.client();
    let err = wrong
        .login("alice", "not the password", "x")
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(401), Some(ErrorCode::InvalidCredentials))
    );
    let err = alice.user_by_username("nobody-here").await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(404), Some(ErrorCode::NotFound))
    );
    let response = alice
        .raw_get("/api/v1/conversations/abc/messages")
        .await
        .unwrap();
    assert_eq!(response.status, 400);
}

#[tokio::test]
async fn websocket_upgrade_checks_token_and_origin() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let (alice, _) = server.user("alice").await;

    let err = server
        .client()
        .with_token("not-a-token")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    let err = alice
        .connect_with_headers(&[("Origin", "https://evil.example")])
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403), "{err}");
    // The origin of the node Alice's client talks to (in a cluster run, one of several).
    let own_origin = alice.base_url().trim_end_matches('/').to_owned();
    alice
        .connect_with_headers(&[("Origin", own_origin.as_str())])
        .await
        .expect("the server's own origin may connect");
}

#[tokio::test]
async fn the_openapi_document_is_generated_and_covers_the_api() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let response = server
        .client()
        .raw_get("/api/v1/openapi.json")
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    let doc: serde_json::Value = serde_json::from_str(&response.body).unwrap();
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/api/v1/accounts",
        "/api/v1/sessions",
        "/api/v1/conversations/{id}/messages",
        "/api/v1/groups/{id}/members",
    ] {
        assert!(paths.contains_key(path), "{path} missing from OpenAPI");
    }
}
