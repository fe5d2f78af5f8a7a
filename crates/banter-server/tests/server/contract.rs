//! The published contract matches the server: the OpenAPI document's structure (every
//! route documents the errors its shape can produce, parameters are where they are used),
//! what `hello` announces, and one rule for negative seqs and limits in frames and REST.

use crate::common::*;
use banter_client::Connection;
use banter_protocol::{ClientFrame, ConversationId, ErrorCode, ServerEvent, REQUEST_ID_BYTES_MAX};
use serde_json::Value;
use std::collections::BTreeSet;

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

async fn openapi(server: &TestServer) -> Value {
    let response = server
        .client()
        .raw_get("/api/v1/openapi.json")
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    serde_json::from_str(&response.body).unwrap()
}

/// Every operation as (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                all.push((method.to_uppercase(), path.clone(), op.clone()));
            }
        }
    }
    all
}

fn statuses(op: &Value) -> BTreeSet<String> {
    op["responses"]
        .as_object()
        .expect("responses")
        .keys()
        .cloned()
        .collect()
}

#[tokio::test]
async fn every_operation_documents_the_errors_its_shape_can_produce() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let doc = openapi(&server).await;
    let operations = operations(&doc);
    assert!(
        operations.len() >= 30,
        "only {} operations",
        operations.len()
    );
    for (method, path, op) in &operations {
        let name = format!("{method} {path}");
        let documented = statuses(op);
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        let has_body = op.get("requestBody").is_some();
        let authenticated = op["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
        let mut needed = vec!["500"];
        if has_body {
            needed.extend(["400", "413"]);
        }
        if !params.is_empty() {
            needed.push("400");
        }
        if authenticated {
            needed.push("401");
        }
        for status in needed {
            assert!(
                documented.contains(status),
                "{name} does not document {status}"
            );
        }
        assert!(
            documented.iter().any(|s| s.starts_with('2')),
            "{name} documents no success"
        );
        for (status, response) in op["responses"].as_object().unwrap() {
            assert!(
                !response["description"].as_str().unwrap_or("").is_empty(),
                "{name} {status} has no description"
            );
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{name} {status} does not carry the error body"
                );
            }
        }

        // Path parameters are exactly the path's placeholders; nothing else is `in: path`.
        let placeholders: BTreeSet<String> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(str::to_string)
            .collect();
        let in_path: BTreeSet<String> = params
            .iter()
            .filter(|p| p["in"] == "path")
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(in_path, placeholders, "{name}: path parameters");
        for param in &params {
            let place = param["in"].as_str().unwrap();
            assert!(
                matches!(place, "path" | "query"),
                "{name}: a parameter in {place}"
            );
            if place == "path" {
                assert_eq!(param["required"], true, "{name}: optional path parameter");
            }
        }
    }
}

#[tokio::test]
async fn history_paging_is_documented_as_optional_bounded_query_parameters() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let doc = openapi(&server).await;
    let op = &doc["paths"]["/api/v1/conversations/{id}/messages"]["get"];
    let param = |name: &str| {
        op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing"))
            .clone()
    };
    for name in ["after_seq", "before_seq", "limit"] {
        let p = param(name);
        assert_eq!(p["in"], "query", "{name}");
        assert_ne!(p["required"], true, "{name} is optional");
    }
    assert_eq!(param("after_seq")["schema"]["minimum"], 0);
    assert_eq!(param("before_seq")["schema"]["minimum"], 0);
    assert_eq!(param("limit")["schema"]["minimum"], 1);
    assert_eq!(param("limit")["schema"]["maximum"], 200);
}

#[tokio::test]
async fn request_fields_carry_the_rules_the_handlers_enforce() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let doc = openapi(&server).await;
    let schemas = &doc["components"]["schemas"];
    let field = |schema: &str, field: &str| schemas[schema]["properties"][field].clone();
    let username = field("RegisterRequest", "username");
    assert_eq!(
        (&username["minLength"], &username["maxLength"]),
        (&Value::from(3), &Value::from(32))
    );
    assert_eq!(username["pattern"], "^[A-Za-z0-9_.-]*$");
    for (schema, name) in [
        ("RegisterRequest", "password"),
        ("ChangePasswordRequest", "new_password"),
    ] {
        let password = field(schema, name);
        assert_eq!(
            (&password["minLength"], &password["maxLength"]),
            (&Value::from(8), &Value::from(128)),
            "{schema}.{name}"
        );
    }
    for (schema, name, max) in [
        ("RegisterRequest", "nickname", 64),
        ("UpdateProfileRequest", "nickname", 64),
        ("UpdateProfileRequest", "avatar_url", 1024),
        ("UpdateProfileRequest", "signature", 200),
        ("LoginRequest", "device_name", 64),
        ("CreateFriendRequest", "greeting", 200),
        ("CreateGroupRequest", "name", 64),
        ("RenameGroupRequest", "name", 64),
    ] {
        assert_eq!(field(schema, name)["maxLength"], max, "{schema}.{name}");
    }
    assert_eq!(field("CreateGroupRequest", "member_ids")["maxItems"], 500);
    assert_eq!(field("AddMembersRequest", "user_ids")["minItems"], 1);
    assert_eq!(field("AddMembersRequest", "user_ids")["maxItems"], 500);
    assert_eq!(field("MarkReadRequest", "seq")["minimum"], 0);
    // Optional inputs are not required and accept null (doc §2.4).
    let register = &schemas["RegisterRequest"];
    assert!(!register["required"]
        .as_array()
        .unwrap()
        .contains(&Value::from("nickname")));
    assert!(field("RegisterRequest", "nickname")["type"]
        .as_array()
        .is_some_and(|t| t.contains(&Value::from("null"))));
}

/// The OpenAPI document's bounds are the server's: the largest value each allows is
/// accepted, one more is refused.
#[tokio::test]
async fn the_documented_bounds_are_the_enforced_ones() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let status = |r: banter_client::RawResponse| r.status;
    let nickname = |n: usize| format!(r#"{{"nickname":"{}"}}"#, "é".repeat(n));
    // Characters are code points: 64 two-byte characters are a valid nickname.
    let patch = |body: String| {
        let alice = alice.clone();
        async move {
            alice
                .raw(banter_client::Method::PATCH, "/api/v1/me", Some(&body))
                .await
                .unwrap()
        }
    };
    assert_eq!(status(patch(nickname(64)).await), 200);
    assert_eq!(status(patch(nickname(65)).await), 400);
    let page = |query: &str| {
        let alice = alice.clone();
        let path = format!("/api/v1/conversations/1/messages?{query}");
        async move { alice.raw_get(&path).await.unwrap() }
    };
    // Conversation 1 does not exist: a query that passes validation gets 404.
    assert_eq!(status(page("limit=200").await), 404);
    assert_eq!(status(page("limit=201").await), 400);
    assert_eq!(status(page("after_seq=0").await), 404);
    assert_eq!(status(page("before_seq=0").await), 404);
}

async fn error_for(conn: &mut Connection, frame: &str) -> (Option<String>, ErrorCode, String) {
    conn.send_raw_text(frame).await.expect("send");
    expect_event(conn, |e| match e {
        ServerEvent::Error { id, code, message } => Some((id.clone(), *code, message.clone())),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn a_negative_seq_or_limit_is_invalid_input_in_frames_and_rest_alike() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let (bob, _) = server.user("bob").await;
    befriend(&alice, &bob).await;
    let bob_id = bob.me().await.unwrap().id;
    let conversation = alice.open_direct(bob_id).await.unwrap().id;
    let mut conn = alice.connect().await.expect("connect");

    for (id, frame) in [
        (
            "n1",
            format!(
                r#"{{"type":"mark_read","id":"n1","conversation_id":{conversation},"seq":-1}}"#
            ),
        ),
        (
            "n2",
            format!(
                r#"{{"type":"sync","id":"n2","conversation_id":{conversation},"after_seq":-1}}"#
            ),
        ),
        (
            "n3",
            format!(
                r#"{{"type":"sync","id":"n3","conversation_id":{conversation},"after_seq":0,"limit":-1}}"#
            ),
        ),
    ] {
        let (got_id, code, message) = error_for(&mut conn, &frame).await;
        assert_eq!(
            (got_id.as_deref(), code),
            (Some(id), ErrorCode::InvalidInput),
            "{frame}"
        );
        assert!(message.contains("must not be negative"), "{message}");
    }

    let rest = |path: String, body: Option<&'static str>| {
        let alice = alice.clone();
        async move {
            let response = match body {
                Some(body) => alice.raw_post(&path, body).await,
                None => alice.raw_get(&path).await,
            }
            .unwrap();
            (response.status, response.error_body().map(|e| e.code))
        }
    };
    let refused = (400, Some(ErrorCode::InvalidInput));
    let base = format!("/api/v1/conversations/{conversation}");
    assert_eq!(
        rest(format!("{base}/read"), Some(r#"{"seq":-1}"#)).await,
        refused
    );
    for query in ["after_seq=-1", "before_seq=-1", "limit=-1"] {
        assert_eq!(
            rest(format!("{base}/messages?{query}"), None).await,
            refused,
            "{query}"
        );
    }
    // Zero is fine everywhere: nothing read, from the beginning; a sync limit of 0 is 1.
    assert_eq!(
        rest(format!("{base}/read"), Some(r#"{"seq":0}"#)).await.0,
        200
    );
    assert_eq!(
        rest(format!("{base}/messages?after_seq=0"), None).await.0,
        200
    );
    conn.send_frame(&ClientFrame::Sync {
        id: "z".into(),
        conversation_id: ConversationId(conversation.0),
        after_seq: 0,
        limit: Some(0),
    })
    .await
    .unwrap();
    let synced = expect_event(&mut conn, |e| match e {
        ServerEvent::Synced { id, .. } => Some(id.clone()),
        _ => None,
    })
    .await;
    assert_eq!(synced, "z");
}

#[tokio::test]
async fn a_request_id_over_the_limit_is_refused_without_being_echoed() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let mut conn = alice.connect().await.expect("connect");
    let longest = "i".repeat(REQUEST_ID_BYTES_MAX);
    conn.send_frame(&ClientFrame::Ping {
        id: longest.clone(),
    })
    .await
    .unwrap();
    let pong = expect_event(&mut conn, |e| match e {
        ServerEvent::Pong { id } => Some(id.clone()),
        _ => None,
    })
    .await;
    assert_eq!(pong, longest);
    let too_long = format!(r#"{{"type":"ping","id":"{longest}i"}}"#);
    let (id, code, _) = error_for(&mut conn, &too_long).await;
    assert_eq!((id, code), (None, ErrorCode::InvalidInput));
}

#[tokio::test]
async fn hello_announces_the_limits_a_client_must_respect() {
    let Some(server) = TestServer::start_with(|c| {
        c.limits.recall_window = std::time::Duration::from_secs(77);
        c.limits.typing_interval = std::time::Duration::from_millis(1500);
        c.limits.frames_per_second_max = 42;
    })
    .await
    else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    let conn = alice.connect().await.expect("connect");
    let hello = conn.hello();
    assert_eq!(hello.recall_window, std::time::Duration::from_secs(77));
    assert_eq!(
        hello.typing_interval,
        std::time::Duration::from_millis(1500)
    );
    assert_eq!(hello.frames_per_second_max, 42);
}

#[tokio::test]
async fn a_rest_body_must_be_a_json_object() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let (alice, _) = server.user("alice").await;
    // serde alone would read the group's fields from an array, in order.
    for body in [r#"["climbing", []]"#, r#""climbing""#, "[]"] {
        let response = alice.raw_post("/api/v1/groups", body).await.unwrap();
        assert_eq!(
            (response.status, response.error_body().map(|e| e.code)),
            (400, Some(ErrorCode::InvalidFrame)),
            "{body}"
        );
    }
    assert!(
        alice.conversations().await.unwrap().is_empty(),
        "no group was made"
    );
    // Nesting in a REST body deeper than json_depth_max is refused before it is parsed.
    let deep = format!(
        r#"{{"name":"x","member_ids":{}{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let response = alice.raw_post("/api/v1/groups", &deep).await.unwrap();
    assert_eq!(
        (response.status, response.error_body().map(|e| e.code)),
        (400, Some(ErrorCode::InvalidJson))
    );
}

/// Server output never omits a field (doc §2.4): every property of a response schema is
/// required, and an optional one is nullable instead.
#[tokio::test]
async fn response_schemas_require_every_field_and_null_marks_the_optional_ones() {
    let Some(server) = TestServer::start().await else {
        return;
    };
    let doc = openapi(&server).await;
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        if name.ends_with("Request") {
            continue;
        }
        let Some(properties) = schema["properties"].as_object() else {
            continue;
        };
        let required = schema["required"].as_array().cloned().unwrap_or_default();
        for property in properties.keys() {
            assert!(
                required.contains(&Value::from(property.as_str())),
                "{name}.{property} is not required"
            );
        }
    }
    let avatar = &doc["components"]["schemas"]["UserProfile"]["properties"]["avatar_url"];
    assert!(
        avatar.to_string().contains("null"),
        "avatar_url is nullable: {avatar}"
    );
}
