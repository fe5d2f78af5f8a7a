//! The fuzz target of what clients send: WebSocket frame decoding (`gateway::codec::decode`)
//! and the REST body extractor (`api::extract::ApiJson`) of every request body type of
//! `banter_protocol::api`, fed arbitrary text and near-valid JSON (valid examples with one
//! mutation: a field dropped, retyped, negated, lengthened or added, the nesting deepened).
//!
//! Properties: nothing panics; every refusal carries one of the codes documented for
//! malformed input (`invalid_json`, `invalid_frame`, `invalid_input`, `too_large`) and, on
//! REST, its documented status; an echoed request id is never longer than
//! `REQUEST_ID_BYTES_MAX`; and whatever is accepted, and every valid frame, survives a
//! round trip through its encoding unchanged.
//!
//! Bounded by `CASES` per property so that it runs in seconds inside `cargo test`;
//! `PROPTEST_CASES=100000 cargo test -p banter-server --test fuzz` runs it longer. Failing
//! inputs are kept in `tests/fuzz.proptest-regressions` (committed): they are replayed first
//! on every later run.

use axum::extract::FromRequest;
use banter_protocol::api::*;
use banter_protocol::{ClientFrame, ConversationId, ErrorCode, MessageId, REQUEST_ID_BYTES_MAX};
use banter_server::api::extract::ApiJson;
use banter_server::error::ApiError;
use banter_server::gateway::codec;
use futures_util::FutureExt;
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

/// Cases per property unless `PROPTEST_CASES` says otherwise.
const CASES: u32 = 512;
/// The server's defaults (config.rs).
const FRAME_BYTES_MAX: usize = 64 * 1024;
const JSON_DEPTH_MAX: usize = 64;

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(CASES);
    Config {
        cases,
        ..Config::default()
    }
}

/// The codes documented for input that is malformed or breaks a rule by itself.
fn documented_for_bad_input(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::InvalidJson
            | ErrorCode::InvalidFrame
            | ErrorCode::InvalidInput
            | ErrorCode::TooLarge
    )
}

// ---- strategies ----

/// Text without U+0000 (which the server refuses in every string), up to `max` chars.
fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>().prop_filter("no NUL", |c| *c != '\0'), 0..=max)
        .prop_map(|chars| chars.into_iter().collect())
}

fn request_id() -> impl Strategy<Value = String> {
    "[ -~]{0,64}"
}

fn conversation_id() -> impl Strategy<Value = ConversationId> {
    any::<i64>().prop_map(ConversationId)
}

/// A frame the server must accept as it is.
fn valid_frame() -> impl Strategy<Value = ClientFrame> {
    prop_oneof![
        (request_id(), conversation_id(), "[!-~]{1,64}", text(40)).prop_map(
            |(id, conversation_id, client_msg_id, text)| ClientFrame::SendMessage {
                id,
                conversation_id,
                client_msg_id,
                text,
                attachment: None,
            }
        ),
        (request_id(), conversation_id(), any::<i64>()).prop_map(|(id, conversation_id, m)| {
            ClientFrame::RecallMessage {
                id,
                conversation_id,
                message_id: MessageId(m),
            }
        }),
        (request_id(), conversation_id(), 0..=i64::MAX).prop_map(|(id, conversation_id, seq)| {
            ClientFrame::MarkRead {
                id,
                conversation_id,
                seq,
            }
        }),
        conversation_id().prop_map(|conversation_id| ClientFrame::Typing { conversation_id }),
        (
            request_id(),
            conversation_id(),
            0..=i64::MAX,
            proptest::option::of(0..=i64::MAX)
        )
            .prop_map(
                |(id, conversation_id, after_seq, limit)| ClientFrame::Sync {
                    id,
                    conversation_id,
                    after_seq,
                    limit,
                }
            ),
        request_id().prop_map(|id| ClientFrame::Ping { id }),
    ]
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        Just(json!(-1)),
        Just(json!(1.5)),
        text(80).prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// One change that may make a valid object invalid.
#[derive(Debug, Clone)]
enum Mutation {
    Drop(usize),
    Replace(usize, Value),
    Negate(usize),
    Lengthen(usize, usize),
    Add(String, Value),
    Nest(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Drop),
        (any::<usize>(), any_json()).prop_map(|(k, v)| Mutation::Replace(k, v)),
        any::<usize>().prop_map(Mutation::Negate),
        (any::<usize>(), 1..5000usize).prop_map(|(k, n)| Mutation::Lengthen(k, n)),
        ("[a-z_]{1,12}", any_json()).prop_map(|(k, v)| Mutation::Add(k, v)),
        (1..200usize).prop_map(Mutation::Nest),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

/// One to three mutations, applied in order.
fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    proptest::collection::vec(mutation(), 1..=3)
}

/// Applies `mutations` to the JSON object `value` and returns the text to send.
fn mutate(value: Value, mutations: &[Mutation]) -> String {
    let mut value = value;
    for mutation in mutations {
        if !value.is_object() {
            break;
        }
        match apply(value, mutation) {
            Ok(changed) => value = changed,
            Err(truncated) => return truncated,
        }
    }
    value.to_string()
}

/// One mutation; a truncation ends the JSON, so it returns the text instead (`Err`).
fn apply(mut value: Value, mutation: &Mutation) -> Result<Value, String> {
    let object = value.as_object_mut().expect("an object");
    let keys: Vec<String> = object.keys().cloned().collect();
    if keys.is_empty() {
        return Ok(value);
    }
    let key = |i: usize| keys[i % keys.len()].clone();
    match mutation {
        Mutation::Drop(i) => {
            object.remove(&key(*i));
        }
        Mutation::Replace(i, v) => {
            object.insert(key(*i), v.clone());
        }
        Mutation::Negate(i) => {
            let k = key(*i);
            if let Some(n) = object[&k].as_i64() {
                object.insert(k, json!(-(n.max(1))));
            }
        }
        Mutation::Lengthen(i, n) => {
            let k = key(*i);
            if let Some(s) = object[&k].as_str() {
                object.insert(k, Value::from(format!("{s}{}", "é".repeat(*n))));
            }
        }
        Mutation::Add(k, v) => {
            object.insert(k.clone(), v.clone());
        }
        Mutation::Nest(depth) => {
            let k = key(0);
            let mut nested = object[&k].clone();
            for _ in 0..*depth {
                nested = json!([nested]);
            }
            object.insert(k, nested);
        }
        Mutation::Truncate(at) => {
            let text = value.to_string();
            let mut cut = at % (text.len() + 1);
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            return Err(text[..cut].to_string());
        }
    }
    Ok(value)
}

// ---- frames ----

/// Decodes `text` and checks the properties every outcome must have.
fn check_frame(text: &str) -> Result<(), TestCaseError> {
    match codec::decode(text, FRAME_BYTES_MAX, JSON_DEPTH_MAX) {
        Ok(frame) => {
            let again = serde_json::to_string(&frame).unwrap();
            let decoded = codec::decode(&again, usize::MAX, JSON_DEPTH_MAX);
            prop_assert_eq!(
                decoded.ok(),
                Some(frame),
                "accepted frame does not round-trip"
            );
        }
        Err(bad) => {
            prop_assert!(
                documented_for_bad_input(bad.error.code),
                "undocumented code {:?}",
                bad.error.code
            );
            if let Some(id) = &bad.id {
                prop_assert!(
                    id.len() <= REQUEST_ID_BYTES_MAX,
                    "echoed a {}-byte id",
                    id.len()
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn valid_frames_round_trip(frame in valid_frame()) {
        let text = serde_json::to_string(&frame).unwrap();
        let decoded = codec::decode(&text, FRAME_BYTES_MAX, JSON_DEPTH_MAX);
        prop_assert_eq!(decoded.map_err(|e| e.error.message).ok(), Some(frame));
    }

    #[test]
    fn arbitrary_text_never_panics_and_gets_a_documented_code(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_frame(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn json_like_text_never_panics_and_gets_a_documented_code(text in r#"[\[\]{}":,0-9a-z_\\. -]{0,300}"#) {
        check_frame(&text)?;
    }

    #[test]
    fn near_valid_frames_never_panic_and_get_a_documented_code(frame in valid_frame(), mutations in mutations()) {
        let value = serde_json::to_value(&frame).unwrap();
        check_frame(&mutate(value, &mutations))?;
    }
}

// ---- REST bodies ----

/// Runs `body` through the REST body extractor of `T`, checks the outcome, and says
/// whether the body was accepted.
fn check_body<T: DeserializeOwned + Serialize>(body: &str) -> Result<bool, TestCaseError> {
    let request = axum::http::Request::builder()
        .method("POST")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    // The body is all in memory, so extraction never waits.
    let outcome = ApiJson::<T>::from_request(request, &())
        .now_or_never()
        .expect("extraction from an in-memory body is immediate");
    match outcome {
        Ok(ApiJson(value)) => {
            let again = serde_json::to_value(&value).unwrap();
            let decoded: T = serde_json::from_value(again.clone()).map_err(|e| {
                TestCaseError::fail(format!("accepted body does not round-trip: {e}"))
            })?;
            prop_assert_eq!(serde_json::to_value(&decoded).unwrap(), again);
            Ok(true)
        }
        Err(error) => {
            let error: ApiError = error;
            prop_assert!(
                documented_for_bad_input(error.code),
                "undocumented code {:?}",
                error.code
            );
            let status = error.status().as_u16();
            prop_assert!(status == 400 || status == 413, "status {}", status);
            Ok(false)
        }
    }
}

/// A valid example of every REST request body, with the extractor check of its type.
type BodyCheck = fn(&str) -> Result<bool, TestCaseError>;

fn bodies() -> Vec<(Value, BodyCheck)> {
    vec![
        (
            json!({"username": "alice", "password": "correct horse battery", "nickname": "Alice"}),
            check_body::<RegisterRequest>,
        ),
        (
            json!({"username": "alice", "password": "correct horse battery", "device_name": "Pixel 8"}),
            check_body::<LoginRequest>,
        ),
        (
            json!({"nickname": "Al", "avatar_url": "https://x.example/a.png", "signature": "hi"}),
            check_body::<UpdateProfileRequest>,
        ),
        (
            json!({"old_password": "correct horse battery", "new_password": "battery staple"}),
            check_body::<ChangePasswordRequest>,
        ),
        (
            json!({"user_id": 1, "greeting": "We met at the gym"}),
            check_body::<CreateFriendRequest>,
        ),
        (json!({"user_id": 2}), check_body::<OpenDirectRequest>),
        (
            json!({"name": "Climbing", "member_ids": [2, 3]}),
            check_body::<CreateGroupRequest>,
        ),
        (
            json!({"name": "Climbing crew"}),
            check_body::<RenameGroupRequest>,
        ),
        (json!({"user_ids": [4, 5]}), check_body::<AddMembersRequest>),
        (
            json!({"user_id": 2}),
            check_body::<TransferOwnershipRequest>,
        ),
        (json!({"role": "admin"}), check_body::<SetRoleRequest>),
        (json!({"seq": 42}), check_body::<MarkReadRequest>),
        (
            json!({"usernames": ["u1", "u2"], "password": "correct horse battery", "device_name": "bench"}),
            check_body::<AdminCreateUsersRequest>,
        ),
        (
            json!({"pairs": [[1, 2], [1, 3]]}),
            check_body::<AdminCreateFriendshipsRequest>,
        ),
        (
            json!({"owner_id": 1, "name": "Climbing", "member_ids": [2, 3]}),
            check_body::<AdminCreateGroupRequest>,
        ),
    ]
}

#[test]
fn every_example_body_is_accepted() {
    for (example, check) in bodies() {
        let accepted = check(&example.to_string());
        assert!(matches!(accepted, Ok(true)), "{example}: {accepted:?}");
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn near_valid_bodies_never_panic_and_get_a_documented_code(index in any::<usize>(), mutations in mutations()) {
        let all = bodies();
        let (example, check) = &all[index % all.len()];
        check(&mutate(example.clone(), &mutations))?;
    }

    #[test]
    fn arbitrary_bodies_never_panic_and_get_a_documented_code(index in any::<usize>(), bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let all = bodies();
        let (_, check) = &all[index % all.len()];
        check(&String::from_utf8_lossy(&bytes))?;
    }
}
