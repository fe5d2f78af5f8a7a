//! The exact JSON of every wire type, pinned.
//!
//! The wire protocol is a public API: renaming a field, a tag or an enum value breaks
//! every deployed client, so such a change must show up here as a reviewed diff. Each
//! expected value is a `json!` literal copied from the example in `docs/protocol.md`
//! (cited as `doc L<line>`), so these tests also prove the document true. Where the
//! document has no example the literal is written from its field tables.
//!
//! Every check goes both ways: the value serializes to exactly the literal, and the
//! literal deserializes back to the same value.

use banter_protocol::api::{
    AddMembersRequest, ChangePasswordRequest, CreateFriendRequest, CreateGroupRequest,
    FriendRequestList, LoginRequest, LoginResponse, MarkReadRequest, MessagePage,
    OpenDirectRequest, ReadPointer, RegisterRequest, RenameGroupRequest, SetRoleRequest,
    TransferOwnershipRequest, UpdateProfileRequest,
};
use banter_protocol::model::{
    Attachment, AttachmentKind, ConversationDetail, ConversationKind, ConversationSummary, Friend,
    FriendRequest, FriendRequestStatus, Member, Message, MessageContent, Role, SystemNotice,
    UserProfile,
};
use banter_protocol::{
    ClientFrame, ConversationId, ErrorBody, ErrorCode, FriendRequestId, MessageId, ServerEvent,
    UploadId, UserId,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use std::fmt::Debug;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// `value` serializes to exactly `expected`, and `expected` (as JSON text, the way it
/// arrives off the wire) deserializes back to `value`.
#[track_caller]
fn assert_wire<T>(value: &T, expected: Value)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let actual = serde_json::to_value(value).expect("serializes");
    assert_eq!(actual, expected, "serialized JSON differs for {value:?}");
    let decoded: T = serde_json::from_str(&expected.to_string()).expect("expected JSON decodes");
    assert_eq!(
        &decoded, value,
        "expected JSON decodes to a different value"
    );
}

/// [`assert_wire`] for the REST bodies, which do not implement `PartialEq`: the decoded
/// value is compared by serializing it again.
#[track_caller]
fn assert_wire_body<T>(value: &T, expected: Value)
where
    T: Serialize + DeserializeOwned + Debug,
{
    let actual = serde_json::to_value(value).expect("serializes");
    assert_eq!(actual, expected, "serialized JSON differs for {value:?}");
    let decoded: T = serde_json::from_str(&expected.to_string()).expect("expected JSON decodes");
    let again = serde_json::to_value(&decoded).expect("serializes");
    assert_eq!(
        again, expected,
        "expected JSON decodes to a different value: {decoded:?}"
    );
}

/// `json` is valid client input that decodes to `value`, though `value` serializes
/// differently (an omitted optional field comes back as `null`).
#[track_caller]
fn assert_decodes_to<T>(json: Value, value: &T)
where
    T: DeserializeOwned + PartialEq + Debug,
{
    let decoded: T = serde_json::from_str(&json.to_string()).expect("JSON decodes");
    assert_eq!(&decoded, value);
}

/// `json` is refused. `why` says what is wrong with it, for the failure message.
#[track_caller]
fn assert_rejects<T>(json: Value, why: &str)
where
    T: DeserializeOwned + Debug,
{
    let text = json.to_string();
    if let Ok(decoded) = serde_json::from_str::<T>(&text) {
        panic!("{why}: {text} should not decode, but gave {decoded:?}");
    }
}

fn alice() -> UserProfile {
    UserProfile {
        id: UserId(1),
        username: "alice".into(),
        nickname: "Alice".into(),
        avatar_url: None,
        signature: Some("Rock climber".into()),
    }
}

fn bob() -> UserProfile {
    UserProfile {
        id: UserId(2),
        username: "bob".into(),
        nickname: "Bob".into(),
        avatar_url: Some("https://chat.example.com/avatars/bob.png".into()),
        signature: None,
    }
}

fn bob_json() -> Value {
    // doc L1744 (§6.1).
    json!({"id": 2, "username": "bob", "nickname": "Bob", "avatar_url": "https://chat.example.com/avatars/bob.png", "signature": null})
}

fn carol() -> UserProfile {
    UserProfile {
        id: UserId(3),
        username: "carol".into(),
        nickname: "Carol".into(),
        avatar_url: None,
        signature: None,
    }
}

fn text_message(
    id: i64,
    conversation: i64,
    seq: i64,
    sender: i64,
    client_msg_id: &str,
    created_at_ms: i64,
    text: &str,
) -> Message {
    Message {
        id: MessageId(id),
        conversation_id: ConversationId(conversation),
        seq,
        sender_id: UserId(sender),
        client_msg_id: Some(client_msg_id.into()),
        created_at_ms,
        content: MessageContent::Text {
            text: text.into(),
            recalled: false,
        },
    }
}

/// Bob's two messages that the phone syncs in the worked session (doc L2180–L2181).
fn synced_messages() -> (Vec<Message>, Value) {
    let messages = vec![
        text_message(
            1090,
            7,
            40,
            2,
            "d4a7e3b2-9c1f-4e6d-8b5a-0f2e1d3c4b5a",
            1767268700000,
            "Climbing tonight?",
        ),
        text_message(
            1091,
            7,
            41,
            2,
            "e5b8f4c3-0d2a-4f7e-9c6b-1a3f2e4d5c6b",
            1767268760000,
            "7pm at the gym",
        ),
    ];
    let json = json!([
        {
            "id": 1090,
            "conversation_id": 7,
            "seq": 40,
            "sender_id": 2,
            "client_msg_id": "d4a7e3b2-9c1f-4e6d-8b5a-0f2e1d3c4b5a",
            "created_at_ms": 1767268700000_i64,
            "content": {"kind": "text", "text": "Climbing tonight?", "recalled": false}
        },
        {
            "id": 1091,
            "conversation_id": 7,
            "seq": 41,
            "sender_id": 2,
            "client_msg_id": "e5b8f4c3-0d2a-4f7e-9c6b-1a3f2e4d5c6b",
            "created_at_ms": 1767268760000_i64,
            "content": {"kind": "text", "text": "7pm at the gym", "recalled": false}
        }
    ]);
    (messages, json)
}

/// Alice's "On my way!" from the worked session (doc L1481–L1487, L2209).
fn on_my_way() -> (Message, Value) {
    let message = text_message(
        1094,
        7,
        42,
        1,
        "9b2f6c1e-4d3a-4e8b-a7c5-1f0e9d8c7b6a",
        1767268812345,
        "On my way!",
    );
    let json = json!({
        "id": 1094,
        "conversation_id": 7,
        "seq": 42,
        "sender_id": 1,
        "client_msg_id": "9b2f6c1e-4d3a-4e8b-a7c5-1f0e9d8c7b6a",
        "created_at_ms": 1767268812345_i64,
        "content": {"kind": "text", "text": "On my way!", "recalled": false}
    });
    (message, json)
}

/// Carol's request to Alice (doc L1586–L1593, L1612–L1619), with the given status.
fn carols_request(status: FriendRequestStatus) -> FriendRequest {
    FriendRequest {
        id: FriendRequestId(12),
        from: carol(),
        to: alice(),
        greeting: Some("We met at the climbing gym!".into()),
        status,
        created_at_ms: 1767261600000,
    }
}

fn carols_request_json(status: &str) -> Value {
    json!({
        "id": 12,
        "from": {"id": 3, "username": "carol", "nickname": "Carol", "avatar_url": null, "signature": null},
        "to": {"id": 1, "username": "alice", "nickname": "Alice", "avatar_url": null, "signature": "Rock climber"},
        "greeting": "We met at the climbing gym!",
        "status": status,
        "created_at_ms": 1767261600000_i64
    })
}

/// The freshly created group "Climbing" as `viewer_role` sees it (doc L632–L645, L1680–L1693).
fn new_climbing_group(viewer_role: Role) -> ConversationSummary {
    ConversationSummary {
        avatar_url: None,
        id: ConversationId(9),
        kind: ConversationKind::Group,
        name: Some("Climbing".into()),
        peer: None,
        peer_online: None,
        my_role: viewer_role,
        member_count: 3,
        last_seq: 0,
        read_seq: 0,
        unread_count: 0,
        last_message: None,
        last_activity_ms: 1767265200000,
    }
}

fn new_climbing_group_json(viewer_role: &str) -> Value {
    json!({
        "id": 9,
        "kind": "group",
        "name": "Climbing",
        "avatar_url": null,
        "peer": null,
        "peer_online": null,
        "my_role": viewer_role,
        "member_count": 3,
        "last_seq": 0,
        "read_seq": 0,
        "unread_count": 0,
        "last_message": null,
        "last_activity_ms": 1767265200000_i64
    })
}

// ---------------------------------------------------------------------------------------
// Client frames (doc §5.6)
// ---------------------------------------------------------------------------------------

/// The `type` tag of each client frame. The match has no `_` arm, so adding a variant
/// to `ClientFrame` fails to compile here until this file covers it.
fn client_frame_tag(frame: &ClientFrame) -> &'static str {
    match frame {
        ClientFrame::SendMessage { .. } => "send_message",
        ClientFrame::RecallMessage { .. } => "recall_message",
        ClientFrame::MarkRead { .. } => "mark_read",
        ClientFrame::Typing { .. } => "typing",
        ClientFrame::Sync { .. } => "sync",
        ClientFrame::Ping { .. } => "ping",
    }
}

#[test]
fn client_frames_send_and_recall() {
    let send = ClientFrame::SendMessage {
        id: "r2".into(),
        conversation_id: ConversationId(7),
        client_msg_id: "9b2f6c1e-4d3a-4e8b-a7c5-1f0e9d8c7b6a".into(),
        text: "On my way!".into(),
        attachment: None,
    };
    // doc L1154–L1162; the same frame again in the worked session, L2192.
    assert_wire(
        &send,
        json!({
            "type": "send_message",
            "id": "r2",
            "conversation_id": 7,
            "client_msg_id": "9b2f6c1e-4d3a-4e8b-a7c5-1f0e9d8c7b6a",
            "text": "On my way!"
        }),
    );

    // doc L1196–L1202.
    assert_wire(
        &ClientFrame::RecallMessage {
            id: "r3".into(),
            conversation_id: ConversationId(7),
            message_id: MessageId(1094),
        },
        json!({
            "type": "recall_message",
            "id": "r3",
            "conversation_id": 7,
            "message_id": 1094
        }),
    );
}

#[test]
fn client_frames_mark_read_and_typing() {
    // doc L1232–L1238; the same frame in the worked session, L2221.
    assert_wire(
        &ClientFrame::MarkRead {
            id: "b7".into(),
            conversation_id: ConversationId(7),
            seq: 42,
        },
        json!({
            "type": "mark_read",
            "id": "b7",
            "conversation_id": 7,
            "seq": 42
        }),
    );

    // doc L1258–L1263. `typing` has no request id.
    assert_wire(
        &ClientFrame::Typing {
            conversation_id: ConversationId(7),
        },
        json!({
            "type": "typing",
            "conversation_id": 7
        }),
    );
}

#[test]
fn client_frames_sync_and_ping() {
    // doc L1287–L1295.
    assert_wire(
        &ClientFrame::Sync {
            id: "r1".into(),
            conversation_id: ConversationId(7),
            after_seq: 39,
            limit: None,
        },
        json!({
            "type": "sync",
            "id": "r1",
            "conversation_id": 7,
            "after_seq": 39,
            "limit": null
        }),
    );
    assert_wire(
        &ClientFrame::Sync {
            id: "r9".into(),
            conversation_id: ConversationId(7),
            after_seq: 0,
            limit: Some(500),
        },
        json!({
            "type": "sync",
            "id": "r9",
            "conversation_id": 7,
            "after_seq": 0,
            "limit": 500
        }),
    );

    // doc L1314.
    assert_wire(
        &ClientFrame::Ping { id: "p1".into() },
        json!({"type": "ping", "id": "p1"}),
    );
}

/// Optional fields in client input may be omitted or sent as `null` (doc L134–L136).
#[test]
fn client_frame_optional_fields_may_be_omitted() {
    // The worked session's sync leaves `limit` out (doc L2173).
    assert_decodes_to(
        json!({"type": "sync", "id": "r1", "conversation_id": 7, "after_seq": 39}),
        &ClientFrame::Sync {
            id: "r1".into(),
            conversation_id: ConversationId(7),
            after_seq: 39,
            limit: None,
        },
    );
}

// ---------------------------------------------------------------------------------------
// Client frames that must be refused (doc §2.4, L142–L150; §5.6, L1131)
// ---------------------------------------------------------------------------------------

/// One valid example of every client frame, as JSON.
fn valid_client_frames() -> Vec<Value> {
    vec![
        json!({"type": "send_message", "id": "r2", "conversation_id": 7, "client_msg_id": "c1", "text": "hi"}),
        json!({"type": "recall_message", "id": "r3", "conversation_id": 7, "message_id": 1094}),
        json!({"type": "mark_read", "id": "b7", "conversation_id": 7, "seq": 42}),
        json!({"type": "typing", "conversation_id": 7}),
        json!({"type": "sync", "id": "r1", "conversation_id": 7, "after_seq": 39, "limit": 10}),
        json!({"type": "ping", "id": "p1"}),
    ]
}

#[test]
fn client_frame_with_unknown_type_is_refused() {
    // Guard: the fixtures themselves decode, so the failures below are for the stated reason.
    for frame in valid_client_frames() {
        let decoded: ClientFrame = serde_json::from_value(frame.clone()).expect("fixture decodes");
        assert_eq!(Some(client_frame_tag(&decoded)), frame["type"].as_str());
    }

    assert_rejects::<ClientFrame>(
        json!({"type": "delete_message", "id": "r1"}),
        "unknown type",
    );
    // Server frame names are not client frames.
    assert_rejects::<ClientFrame>(json!({"type": "pong", "id": "p1"}), "server frame type");
    // One casing forever: neither CamelCase nor a different case of the tag is accepted.
    assert_rejects::<ClientFrame>(json!({"type": "Ping", "id": "p1"}), "CamelCase type");
    assert_rejects::<ClientFrame>(json!({"type": "PING", "id": "p1"}), "upper-case type");
    assert_rejects::<ClientFrame>(
        json!({"type": "sendMessage", "id": "r2", "conversation_id": 7, "client_msg_id": "c1", "text": "hi"}),
        "camelCase type",
    );
    // No tag, a tag that is not a string, a frame that is not an object.
    assert_rejects::<ClientFrame>(json!({"id": "p1"}), "missing type");
    assert_rejects::<ClientFrame>(json!({"type": null, "id": "p1"}), "null type");
    assert_rejects::<ClientFrame>(json!({"type": 6, "id": "p1"}), "numeric type code");
    assert_rejects::<ClientFrame>(json!("ping"), "string frame");
    assert_rejects::<ClientFrame>(json!(null), "null frame");
}

/// serde alone accepts an internally tagged enum written as an array whose first element
/// is the tag, and plain structs as arrays of their fields. The protocol says a frame is
/// one JSON object, so the server's codec (`banter-server` `gateway/codec.rs`) refuses
/// anything that is not an object before decoding; this test pins the serde behaviour
/// that makes that check necessary.
#[test]
fn serde_alone_accepts_array_frames_so_the_server_codec_checks_for_an_object() {
    assert_decodes_to(
        json!(["ping", "p1"]),
        &ClientFrame::Ping { id: "p1".into() },
    );
    assert_decodes_to(
        json!(["send_message", "r2", 7, "c1", "hi"]),
        &ClientFrame::SendMessage {
            id: "r2".into(),
            conversation_id: ConversationId(7),
            client_msg_id: "c1".into(),
            text: "hi".into(),
            attachment: None,
        },
    );
    let register: RegisterRequest =
        serde_json::from_value(json!(["alice", "correct horse battery", null])).unwrap();
    assert_eq!(register.username, "alice");
}

#[test]
fn client_frame_with_unknown_field_is_refused() {
    for frame in valid_client_frames() {
        let mut extra = frame.clone();
        extra["priority"] = json!("high");
        assert_rejects::<ClientFrame>(extra, "unknown field `priority`");

        // A field of the right name for another frame is still unknown here.
        let mut null_extra = frame.clone();
        null_extra["client_msg_id_2"] = Value::Null;
        assert_rejects::<ClientFrame>(null_extra, "unknown field, even as null");
    }
    // `typing` has no request id, so an `id` on it is an unknown field (doc L1265).
    assert_rejects::<ClientFrame>(
        json!({"type": "typing", "id": "t1", "conversation_id": 7}),
        "`id` on typing",
    );
    // A server-only field on a client frame.
    assert_rejects::<ClientFrame>(
        json!({"type": "mark_read", "id": "b7", "conversation_id": 7, "seq": 42, "user_id": 2}),
        "`user_id` on mark_read",
    );
}

#[test]
fn client_frame_with_wrong_field_type_is_refused() {
    // Ids are JSON integers, never strings (doc L121–L122).
    assert_rejects::<ClientFrame>(
        json!({"type": "typing", "conversation_id": "7"}),
        "conversation_id as a string",
    );
    assert_rejects::<ClientFrame>(
        json!({"type": "recall_message", "id": "r3", "conversation_id": 7, "message_id": "1094"}),
        "message_id as a string",
    );
    assert_rejects::<ClientFrame>(
        json!({"type": "typing", "conversation_id": {"id": 7}}),
        "conversation_id as an object",
    );
    assert_rejects::<ClientFrame>(
        json!({"type": "mark_read", "id": "b7", "conversation_id": 7, "seq": 42.5}),
        "fractional seq",
    );
    assert_rejects::<ClientFrame>(
        json!({"type": "mark_read", "id": "b7", "conversation_id": 7, "seq": 9_223_372_036_854_775_808_u64}),
        "seq above i64::MAX",
    );
    // Request ids are strings (doc L125).
    assert_rejects::<ClientFrame>(json!({"type": "ping", "id": 1}), "numeric request id");
    assert_rejects::<ClientFrame>(json!({"type": "ping", "id": null}), "null request id");
    assert_rejects::<ClientFrame>(
        json!({"type": "send_message", "id": "r2", "conversation_id": 7, "client_msg_id": 5, "text": "hi"}),
        "numeric client_msg_id",
    );
    assert_rejects::<ClientFrame>(
        json!({"type": "send_message", "id": "r2", "conversation_id": 7, "client_msg_id": "c1", "text": null}),
        "null text",
    );
    assert_rejects::<ClientFrame>(
        json!({"type": "send_message", "id": "r2", "conversation_id": 7, "client_msg_id": "c1", "text": ["hi"]}),
        "text as an array",
    );
    assert_rejects::<ClientFrame>(
        json!({"type": "sync", "id": "r1", "conversation_id": 7, "after_seq": 0, "limit": "10"}),
        "limit as a string",
    );
    // Seqs and limits are signed 64-bit on the wire: one beyond that fails to decode.
    assert_rejects::<ClientFrame>(
        json!({"type": "sync", "id": "r1", "conversation_id": 7, "after_seq": 0, "limit": 9_223_372_036_854_775_808_u64}),
        "limit beyond i64",
    );
}

/// A negative seq or limit decodes: the server refuses it afterwards with `invalid_input`
/// and the request id (doc §2.4), the same code the REST API gives, instead of a decoding
/// error whose code would differ between frames and query strings.
#[test]
fn negative_seqs_and_limits_decode_for_the_server_to_refuse() {
    assert_decodes_to(
        json!({"type": "sync", "id": "r1", "conversation_id": 7, "after_seq": -1, "limit": -1}),
        &ClientFrame::Sync {
            id: "r1".into(),
            conversation_id: ConversationId(7),
            after_seq: -1,
            limit: Some(-1),
        },
    );
    assert_decodes_to(
        json!({"type": "mark_read", "id": "b7", "conversation_id": 7, "seq": -5}),
        &ClientFrame::MarkRead {
            id: "b7".into(),
            conversation_id: ConversationId(7),
            seq: -5,
        },
    );
}

#[test]
fn client_frame_missing_a_required_field_is_refused() {
    // Every frame except `typing` needs its request `id` (doc L1033–L1034).
    for frame in valid_client_frames() {
        if frame["type"] == "typing" {
            continue;
        }
        let mut without_id = frame.clone();
        without_id.as_object_mut().unwrap().remove("id");
        assert_rejects::<ClientFrame>(without_id, "missing request id");
    }
    // Every other required field too.
    for frame in valid_client_frames() {
        for field in frame.as_object().unwrap().keys() {
            if field == "type" || field == "limit" {
                continue; // The tag is covered above; `limit` is optional.
            }
            let mut missing = frame.clone();
            missing.as_object_mut().unwrap().remove(field);
            assert_rejects::<ClientFrame>(missing, &format!("missing `{field}`"));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Server events (doc §5.7)
// ---------------------------------------------------------------------------------------

/// The `type` tag of each server event. No `_` arm: a new variant fails to compile here.
fn server_event_tag(event: &ServerEvent) -> &'static str {
    match event {
        ServerEvent::Hello { .. } => "hello",
        ServerEvent::PresenceSnapshot { .. } => "presence_snapshot",
        ServerEvent::Ack { .. } => "ack",
        ServerEvent::Done { .. } => "done",
        ServerEvent::Synced { .. } => "synced",
        ServerEvent::Pong { .. } => "pong",
        ServerEvent::Error { .. } => "error",
        ServerEvent::MessageCreated { .. } => "message_created",
        ServerEvent::ReadUpdated { .. } => "read_updated",
        ServerEvent::TypingStarted { .. } => "typing_started",
        ServerEvent::PresenceChanged { .. } => "presence_changed",
        ServerEvent::FriendRequestReceived { .. } => "friend_request_received",
        ServerEvent::FriendRequestUpdated { .. } => "friend_request_updated",
        ServerEvent::FriendAdded { .. } => "friend_added",
        ServerEvent::FriendRemoved { .. } => "friend_removed",
        ServerEvent::ConversationJoined { .. } => "conversation_joined",
        ServerEvent::ConversationLeft { .. } => "conversation_left",
    }
}

#[test]
fn server_events_on_connect() {
    let hello = ServerEvent::Hello {
        protocol_version: banter_protocol::PROTOCOL_VERSION,
        user_id: UserId(1),
        heartbeat_interval_secs: 30,
        message_bytes_max: 16384,
        frame_bytes_max: 65536,
        recall_window_secs: 120,
        typing_interval_ms: 2000,
        frames_per_second_max: 100,
        file_bytes_max: 104857600,
        voice_duration_ms_max: 600000,
    };
    // doc §5.3.
    let hello_json = json!({
        "type": "hello",
        "protocol_version": 1,
        "user_id": 1,
        "heartbeat_interval_secs": 30,
        "message_bytes_max": 16384,
        "frame_bytes_max": 65536,
        "recall_window_secs": 120,
        "typing_interval_ms": 2000,
        "frames_per_second_max": 100,
        "file_bytes_max": 104857600,
        "voice_duration_ms_max": 600000
    });
    assert_wire(&hello, hello_json.clone());
    // The worked session's one-line hello (doc §9) is the same object.
    let worked: Value = serde_json::from_str(
        r#"{"type": "hello", "protocol_version": 1, "user_id": 1, "heartbeat_interval_secs": 30, "message_bytes_max": 16384, "frame_bytes_max": 65536, "recall_window_secs": 120, "typing_interval_ms": 2000, "frames_per_second_max": 100, "file_bytes_max": 104857600, "voice_duration_ms_max": 600000}"#,
    )
    .unwrap();
    assert_eq!(worked, hello_json);

    // doc L1060–L1065.
    assert_wire(
        &ServerEvent::PresenceSnapshot {
            online_user_ids: vec![UserId(2), UserId(5)],
        },
        json!({
            "type": "presence_snapshot",
            "online_user_ids": [2, 5]
        }),
    );
    // doc L2164.
    assert_wire(
        &ServerEvent::PresenceSnapshot {
            online_user_ids: vec![UserId(2)],
        },
        json!({"type": "presence_snapshot", "online_user_ids": [2]}),
    );
    assert_wire(
        &ServerEvent::PresenceSnapshot {
            online_user_ids: vec![],
        },
        json!({"type": "presence_snapshot", "online_user_ids": []}),
    );
}

#[test]
fn server_events_replies() {
    // doc L1358–L1368; the same frame in the worked session, L2198.
    assert_wire(
        &ServerEvent::Ack {
            id: "r2".into(),
            conversation_id: ConversationId(7),
            client_msg_id: Some("9b2f6c1e-4d3a-4e8b-a7c5-1f0e9d8c7b6a".into()),
            message_id: MessageId(1094),
            seq: 42,
            created_at_ms: 1767268812345,
        },
        json!({
            "type": "ack",
            "id": "r2",
            "conversation_id": 7,
            "client_msg_id": "9b2f6c1e-4d3a-4e8b-a7c5-1f0e9d8c7b6a",
            "message_id": 1094,
            "seq": 42,
            "created_at_ms": 1767268812345_i64
        }),
    );
    // The ack of a recall carries `"client_msg_id": null`, present, not omitted (doc L1205, L132).
    assert_wire(
        &ServerEvent::Ack {
            id: "r3".into(),
            conversation_id: ConversationId(7),
            client_msg_id: None,
            message_id: MessageId(1095),
            seq: 43,
            created_at_ms: 1767268900000,
        },
        json!({
            "type": "ack",
            "id": "r3",
            "conversation_id": 7,
            "client_msg_id": null,
            "message_id": 1095,
            "seq": 43,
            "created_at_ms": 1767268900000_i64
        }),
    );

    // doc L1382; the worked session, L2227.
    assert_wire(
        &ServerEvent::Done { id: "b7".into() },
        json!({"type": "done", "id": "b7"}),
    );

    // doc L1396–L1422; the worked session, L2179–L2182.
    let (messages, messages_json) = synced_messages();
    assert_wire(
        &ServerEvent::Synced {
            id: "r1".into(),
            conversation_id: ConversationId(7),
            messages,
            has_more: false,
        },
        json!({
            "type": "synced",
            "id": "r1",
            "conversation_id": 7,
            "messages": messages_json,
            "has_more": false
        }),
    );

    // doc L1434.
    assert_wire(
        &ServerEvent::Pong { id: "p1".into() },
        json!({"type": "pong", "id": "p1"}),
    );

    // doc L1447–L1454.
    assert_wire(
        &ServerEvent::Error {
            id: Some("r5".into()),
            code: ErrorCode::TooLarge,
            message: "message is 20000 bytes; the limit is 16384".into(),
        },
        json!({
            "type": "error",
            "id": "r5",
            "code": "too_large",
            "message": "message is 20000 bytes; the limit is 16384"
        }),
    );
    // doc L1456–L1463: an error whose request id could not be read has `"id": null`.
    assert_wire(
        &ServerEvent::Error {
            id: None,
            code: ErrorCode::RateLimited,
            message: "too many frames; slow down".into(),
        },
        json!({
            "type": "error",
            "id": null,
            "code": "rate_limited",
            "message": "too many frames; slow down"
        }),
    );
}

#[test]
fn server_events_in_conversations() {
    // doc L1477–L1490; the worked session, L2209.
    let (message, message_json) = on_my_way();
    assert_wire(
        &ServerEvent::MessageCreated { message },
        json!({"type": "message_created", "message": message_json}),
    );
    // A recall entry and a system notice travel in the same frame (doc L1471).
    assert_wire(
        &ServerEvent::MessageCreated {
            message: Message {
                id: MessageId(1095),
                conversation_id: ConversationId(7),
                seq: 43,
                sender_id: UserId(1),
                client_msg_id: None,
                created_at_ms: 1767268900000,
                content: MessageContent::Recall {
                    target_id: MessageId(1094),
                },
            },
        },
        json!({
            "type": "message_created",
            "message": {
                "id": 1095,
                "conversation_id": 7,
                "seq": 43,
                "sender_id": 1,
                "client_msg_id": null,
                "created_at_ms": 1767268900000_i64,
                "content": {"kind": "recall", "target_id": 1094}
            }
        }),
    );
    assert_wire(
        &ServerEvent::MessageCreated {
            message: Message {
                id: MessageId(1102),
                conversation_id: ConversationId(9),
                seq: 6,
                sender_id: UserId(2),
                client_msg_id: None,
                created_at_ms: 1767271000000,
                content: MessageContent::System {
                    notice: SystemNotice::Renamed {
                        by: UserId(2),
                        name: "Climbing crew".into(),
                    },
                },
            },
        },
        json!({
            "type": "message_created",
            "message": {
                "id": 1102,
                "conversation_id": 9,
                "seq": 6,
                "sender_id": 2,
                "client_msg_id": null,
                "created_at_ms": 1767271000000_i64,
                "content": {"kind": "system", "notice": {"event": "renamed", "by": 2, "name": "Climbing crew"}}
            }
        }),
    );

    // doc L1515–L1522; the worked session, L2234.
    assert_wire(
        &ServerEvent::ReadUpdated {
            conversation_id: ConversationId(7),
            user_id: UserId(2),
            seq: 42,
        },
        json!({
            "type": "read_updated",
            "conversation_id": 7,
            "user_id": 2,
            "seq": 42
        }),
    );

    // doc L1539–L1545.
    assert_wire(
        &ServerEvent::TypingStarted {
            conversation_id: ConversationId(9),
            user_id: UserId(3),
        },
        json!({
            "type": "typing_started",
            "conversation_id": 9,
            "user_id": 3
        }),
    );
}

#[test]
fn server_events_presence_and_friends() {
    // doc L1561–L1567.
    assert_wire(
        &ServerEvent::PresenceChanged {
            user_id: UserId(2),
            online: false,
        },
        json!({
            "type": "presence_changed",
            "user_id": 2,
            "online": false
        }),
    );
    assert_wire(
        &ServerEvent::PresenceChanged {
            user_id: UserId(2),
            online: true,
        },
        json!({"type": "presence_changed", "user_id": 2, "online": true}),
    );

    // doc L1583–L1595.
    assert_wire(
        &ServerEvent::FriendRequestReceived {
            request: carols_request(FriendRequestStatus::Pending),
        },
        json!({
            "type": "friend_request_received",
            "request": carols_request_json("pending")
        }),
    );

    // doc L1609–L1621.
    assert_wire(
        &ServerEvent::FriendRequestUpdated {
            request: carols_request(FriendRequestStatus::Accepted),
        },
        json!({
            "type": "friend_request_updated",
            "request": carols_request_json("accepted")
        }),
    );

    // doc L1640–L1645.
    assert_wire(
        &ServerEvent::FriendAdded { user: carol() },
        json!({
            "type": "friend_added",
            "user": {"id": 3, "username": "carol", "nickname": "Carol", "avatar_url": null, "signature": null}
        }),
    );

    // doc L1661.
    assert_wire(
        &ServerEvent::FriendRemoved { user_id: UserId(3) },
        json!({"type": "friend_removed", "user_id": 3}),
    );
}

#[test]
fn server_events_membership() {
    // doc L1677–L1695.
    assert_wire(
        &ServerEvent::ConversationJoined {
            conversation: new_climbing_group(Role::Member),
        },
        json!({
            "type": "conversation_joined",
            "conversation": {
                "id": 9,
                "kind": "group",
                "name": "Climbing",
                "avatar_url": null,
                "peer": null,
                "peer_online": null,
                "my_role": "member",
                "member_count": 3,
                "last_seq": 0,
                "read_seq": 0,
                "unread_count": 0,
                "last_message": null,
                "last_activity_ms": 1767265200000_i64
            }
        }),
    );

    // doc L1718.
    assert_wire(
        &ServerEvent::ConversationLeft {
            conversation_id: ConversationId(9),
        },
        json!({"type": "conversation_left", "conversation_id": 9}),
    );
}

/// Clients SHOULD ignore fields they do not know in server frames (doc L59): a newer
/// server may add one without breaking this SDK, so `ServerEvent` must not deny them.
#[test]
fn server_event_tolerates_unknown_fields() {
    assert_decodes_to(
        json!({"type": "done", "id": "b7", "added_in_v1_1": true}),
        &ServerEvent::Done { id: "b7".into() },
    );
    assert_decodes_to(
        json!({"type": "friend_added", "user": {"id": 3, "username": "carol", "nickname": "Carol", "avatar_url": null, "signature": null, "pronouns": "she/her"}}),
        &ServerEvent::FriendAdded { user: carol() },
    );
}

#[test]
fn server_event_decode_failures() {
    // The Rust type refuses an unknown `type`; skipping such frames (doc L60) is the
    // receiving client's job.
    assert_rejects::<ServerEvent>(json!({"type": "message_deleted", "id": 5}), "unknown type");
    // Client frame names are not server events.
    assert_rejects::<ServerEvent>(json!({"type": "ping", "id": "p1"}), "client frame type");
    // Replies need their request id; only `error` may carry `null`.
    assert_rejects::<ServerEvent>(json!({"type": "done"}), "done without id");
    assert_rejects::<ServerEvent>(json!({"type": "pong", "id": null}), "pong with null id");
    assert_rejects::<ServerEvent>(
        json!({"type": "error", "id": null, "code": "teapot", "message": "?"}),
        "unknown error code",
    );
    assert_rejects::<ServerEvent>(
        json!({"type": "presence_changed", "user_id": 2, "online": "yes"}),
        "online as a string",
    );
    // Server output always carries optional fields (doc L132–L133); a missing `id` on
    // `error` is still accepted, as `null`, which is harmless for a client.
    assert_decodes_to(
        json!({"type": "error", "code": "internal", "message": "x"}),
        &ServerEvent::Error {
            id: None,
            code: ErrorCode::Internal,
            message: "x".into(),
        },
    );
}

// ---------------------------------------------------------------------------------------
// Model types (doc §6)
// ---------------------------------------------------------------------------------------

#[test]
fn message_content_kinds() {
    // doc L1840.
    assert_wire(
        &MessageContent::Text {
            text: "On my way!".into(),
            recalled: false,
        },
        json!({"kind": "text", "text": "On my way!", "recalled": false}),
    );
    // doc L1844.
    assert_wire(
        &MessageContent::Text {
            text: String::new(),
            recalled: true,
        },
        json!({"kind": "text", "text": "", "recalled": true}),
    );
    // doc L1857.
    assert_wire(
        &MessageContent::Recall {
            target_id: MessageId(1085),
        },
        json!({"kind": "recall", "target_id": 1085}),
    );
    // doc L1868.
    assert_wire(
        &MessageContent::System {
            notice: SystemNotice::Renamed {
                by: UserId(1),
                name: "Climbing crew".into(),
            },
        },
        json!({"kind": "system", "notice": {"event": "renamed", "by": 1, "name": "Climbing crew"}}),
    );

    // §6.8, the media example and a recalled one.
    assert_wire(
        &MessageContent::Media {
            caption: "Top of the route".into(),
            recalled: false,
            attachment: Some(Box::new(Attachment {
                upload_id: UploadId("3f9a0c1b7e5d4a2f8c6b1d0e9f7a5c3b".into()),
                kind: AttachmentKind::Image,
                name: "summit.jpg".into(),
                size: 183422,
                mime: "image/jpeg".into(),
                width: Some(1600),
                height: Some(1200),
                duration_ms: None,
                thumbnail: true,
            })),
        },
        json!({"kind": "media", "caption": "Top of the route", "recalled": false,
            "attachment": {"upload_id": "3f9a0c1b7e5d4a2f8c6b1d0e9f7a5c3b", "kind": "image",
            "name": "summit.jpg", "size": 183422, "mime": "image/jpeg", "width": 1600,
            "height": 1200, "duration_ms": null, "thumbnail": true}}),
    );
    assert_wire(
        &MessageContent::Media {
            caption: String::new(),
            recalled: true,
            attachment: None,
        },
        json!({"kind": "media", "caption": "", "recalled": true, "attachment": null}),
    );

    // No `_` arm: a new kind fails to compile here until it is pinned above.
    fn covered(content: &MessageContent) {
        match content {
            MessageContent::Text { .. }
            | MessageContent::Media { .. }
            | MessageContent::Recall { .. }
            | MessageContent::System { .. } => {}
        }
    }
    covered(&MessageContent::Recall {
        target_id: MessageId(1),
    });

    assert_rejects::<MessageContent>(json!({"kind": "image", "url": "x"}), "unknown kind");
    assert_rejects::<MessageContent>(json!({"text": "hi", "recalled": false}), "missing kind");
    assert_rejects::<MessageContent>(json!({"kind": "text", "text": "hi"}), "missing recalled");
}

#[test]
fn system_notice_events() {
    // doc L1888–L1894, one line each.
    let cases = [
        (
            SystemNotice::MembersAdded {
                by: UserId(1),
                user_ids: vec![UserId(4), UserId(5)],
            },
            json!({"event": "members_added", "by": 1, "user_ids": [4, 5]}),
        ),
        (
            SystemNotice::MemberRemoved {
                by: UserId(2),
                user_id: UserId(5),
            },
            json!({"event": "member_removed", "by": 2, "user_id": 5}),
        ),
        (
            SystemNotice::MemberLeft { user_id: UserId(4) },
            json!({"event": "member_left", "user_id": 4}),
        ),
        (
            SystemNotice::Renamed {
                by: UserId(2),
                name: "Climbing crew".into(),
            },
            json!({"event": "renamed", "by": 2, "name": "Climbing crew"}),
        ),
        (
            SystemNotice::RoleChanged {
                by: UserId(1),
                user_id: UserId(3),
                role: Role::Admin,
            },
            json!({"event": "role_changed", "by": 1, "user_id": 3, "role": "admin"}),
        ),
        (
            SystemNotice::OwnershipTransferred {
                from: UserId(1),
                to: UserId(2),
            },
            json!({"event": "ownership_transferred", "from": 1, "to": 2}),
        ),
        (
            SystemNotice::Disbanded { by: UserId(2) },
            json!({"event": "disbanded", "by": 2}),
        ),
        (
            SystemNotice::AvatarChanged {
                by: UserId(2),
                avatar_url: "/api/v1/avatars/9c1e".into(),
            },
            json!({"event": "avatar_changed", "by": 2, "avatar_url": "/api/v1/avatars/9c1e"}),
        ),
    ];
    for (notice, expected) in &cases {
        assert_wire(notice, expected.clone());
    }

    // No `_` arm: a new notice fails to compile here until it is added to `cases`.
    fn covered(notice: &SystemNotice) {
        match notice {
            SystemNotice::MembersAdded { .. }
            | SystemNotice::MemberRemoved { .. }
            | SystemNotice::MemberLeft { .. }
            | SystemNotice::Renamed { .. }
            | SystemNotice::RoleChanged { .. }
            | SystemNotice::OwnershipTransferred { .. }
            | SystemNotice::Disbanded { .. }
            | SystemNotice::AvatarChanged { .. } => {}
        }
    }
    cases.iter().for_each(|(notice, _)| covered(notice));

    // A group is created with no notice (doc L1873–L1874).
    assert_rejects::<SystemNotice>(json!({"event": "created", "by": 1}), "no `created` notice");
}

#[test]
fn enum_values() {
    // doc L1797–L1801.
    for (role, name) in [
        (Role::Member, "member"),
        (Role::Admin, "admin"),
        (Role::Owner, "owner"),
    ] {
        assert_wire(&role, json!(name));
        assert_eq!(role.as_str(), name);
        assert_eq!(Role::parse(name), Some(role));
    }
    // doc L928–L929: a role string other than these is refused.
    assert_rejects::<Role>(json!("superuser"), "unknown role");
    assert_rejects::<Role>(json!("Admin"), "capitalised role");
    assert_eq!(Role::parse("superuser"), None);

    // doc L1763.
    for (status, name) in [
        (FriendRequestStatus::Pending, "pending"),
        (FriendRequestStatus::Accepted, "accepted"),
        (FriendRequestStatus::Rejected, "rejected"),
        (FriendRequestStatus::Cancelled, "cancelled"),
    ] {
        assert_wire(&status, json!(name));
    }
    assert_rejects::<FriendRequestStatus>(json!("canceled"), "US spelling");

    // doc L1774.
    assert_wire(&ConversationKind::Direct, json!("direct"));
    assert_wire(&ConversationKind::Group, json!("group"));

    // No `_` arms: a new value fails to compile here until it is pinned above.
    fn covered(role: Role, status: FriendRequestStatus, kind: ConversationKind) {
        match role {
            Role::Member | Role::Admin | Role::Owner => {}
        }
        match status {
            FriendRequestStatus::Pending
            | FriendRequestStatus::Accepted
            | FriendRequestStatus::Rejected
            | FriendRequestStatus::Cancelled => {}
        }
        match kind {
            ConversationKind::Direct | ConversationKind::Group => {}
        }
    }
    covered(
        Role::Owner,
        FriendRequestStatus::Pending,
        ConversationKind::Group,
    );
}

#[test]
fn user_profile_and_friend() {
    // doc L1744 (§6.1) and L453–L460.
    assert_wire(&bob(), bob_json());
    // doc L322–L330: a fresh account has null optional fields, present, not omitted.
    assert_wire(
        &UserProfile {
            signature: None,
            ..alice()
        },
        json!({
            "id": 1,
            "username": "alice",
            "nickname": "Alice",
            "avatar_url": null,
            "signature": null
        }),
    );
    // doc L408–L415.
    assert_wire(
        &alice(),
        json!({
            "id": 1,
            "username": "alice",
            "nickname": "Alice",
            "avatar_url": null,
            "signature": "Rock climber"
        }),
    );

    // doc L470–L483.
    assert_wire(
        &vec![Friend {
            user: bob(),
            online: true,
            since_ms: 1764590400000,
        }],
        json!([
            {
                "user": {
                    "id": 2,
                    "username": "bob",
                    "nickname": "Bob",
                    "avatar_url": "https://chat.example.com/avatars/bob.png",
                    "signature": null
                },
                "online": true,
                "since_ms": 1764590400000_i64
            }
        ]),
    );
}

#[test]
fn conversation_summary_and_detail() {
    // doc L602–L646.
    let direct = ConversationSummary {
        avatar_url: None,
        id: ConversationId(7),
        kind: ConversationKind::Direct,
        name: None,
        peer: Some(bob()),
        peer_online: Some(true),
        my_role: Role::Member,
        member_count: 2,
        last_seq: 41,
        read_seq: 40,
        unread_count: 1,
        last_message: Some(text_message(
            1091,
            7,
            41,
            2,
            "e5b8f4c3-0d2a-4f7e-9c6b-1a3f2e4d5c6b",
            1767268760000,
            "7pm at the gym",
        )),
        last_activity_ms: 1767268760000,
    };
    assert_wire(
        &vec![direct, new_climbing_group(Role::Owner)],
        json!([
            {
                "id": 7,
                "kind": "direct",
                "name": null,
                "avatar_url": null,
                "peer": {
                    "id": 2,
                    "username": "bob",
                    "nickname": "Bob",
                    "avatar_url": "https://chat.example.com/avatars/bob.png",
                    "signature": null
                },
                "peer_online": true,
                "my_role": "member",
                "member_count": 2,
                "last_seq": 41,
                "read_seq": 40,
                "unread_count": 1,
                "last_message": {
                    "id": 1091,
                    "conversation_id": 7,
                    "seq": 41,
                    "sender_id": 2,
                    "client_msg_id": "e5b8f4c3-0d2a-4f7e-9c6b-1a3f2e4d5c6b",
                    "created_at_ms": 1767268760000_i64,
                    "content": {"kind": "text", "text": "7pm at the gym", "recalled": false}
                },
                "last_activity_ms": 1767268760000_i64
            },
            new_climbing_group_json("owner")
        ]),
    );

    // doc L679–L724.
    let detail = ConversationDetail {
        summary: ConversationSummary {
            avatar_url: None,
            last_seq: 5,
            read_seq: 5,
            last_message: Some(text_message(
                1101,
                9,
                5,
                1,
                "0f8e2a57-3c1d-4b6a-8e9f-6d2c4a1b7e30",
                1767270000000,
                "Saturday 10:00 at the gym?",
            )),
            last_activity_ms: 1767270000000,
            ..new_climbing_group(Role::Owner)
        },
        members: vec![
            Member {
                user: alice(),
                role: Role::Owner,
                read_seq: 5,
                joined_at_ms: 1767265200000,
            },
            Member {
                user: bob(),
                role: Role::Admin,
                read_seq: 5,
                joined_at_ms: 1767265200000,
            },
            Member {
                user: carol(),
                role: Role::Member,
                read_seq: 3,
                joined_at_ms: 1767265200000,
            },
        ],
    };
    assert_wire(
        &detail,
        json!({
            "summary": {
                "id": 9,
                "kind": "group",
                "name": "Climbing",
                "avatar_url": null,
                "peer": null,
                "peer_online": null,
                "my_role": "owner",
                "member_count": 3,
                "last_seq": 5,
                "read_seq": 5,
                "unread_count": 0,
                "last_message": {
                    "id": 1101,
                    "conversation_id": 9,
                    "seq": 5,
                    "sender_id": 1,
                    "client_msg_id": "0f8e2a57-3c1d-4b6a-8e9f-6d2c4a1b7e30",
                    "created_at_ms": 1767270000000_i64,
                    "content": {"kind": "text", "text": "Saturday 10:00 at the gym?", "recalled": false}
                },
                "last_activity_ms": 1767270000000_i64
            },
            "members": [
                {
                    "user": {"id": 1, "username": "alice", "nickname": "Alice", "avatar_url": null, "signature": "Rock climber"},
                    "role": "owner",
                    "read_seq": 5,
                    "joined_at_ms": 1767265200000_i64
                },
                {
                    "user": {"id": 2, "username": "bob", "nickname": "Bob", "avatar_url": "https://chat.example.com/avatars/bob.png", "signature": null},
                    "role": "admin",
                    "read_seq": 5,
                    "joined_at_ms": 1767265200000_i64
                },
                {
                    "user": {"id": 3, "username": "carol", "nickname": "Carol", "avatar_url": null, "signature": null},
                    "role": "member",
                    "read_seq": 3,
                    "joined_at_ms": 1767265200000_i64
                }
            ]
        }),
    );
}

// ---------------------------------------------------------------------------------------
// Error codes (doc §2.2, §8)
// ---------------------------------------------------------------------------------------

/// Every error code with its wire name, from the table of doc §8 (L2114–L2129).
///
/// A NEW `ErrorCode` MUST BE ADDED HERE. `error_code_is_listed` below has an exhaustive
/// `match` that stops this file compiling until it is, but the name written next to it
/// here is what pins the wire value.
const ERROR_CODES: [(ErrorCode, &str); 18] = [
    (ErrorCode::InvalidJson, "invalid_json"),
    (ErrorCode::InvalidFrame, "invalid_frame"),
    (ErrorCode::InvalidInput, "invalid_input"),
    (ErrorCode::TooLarge, "too_large"),
    (ErrorCode::Unauthorized, "unauthorized"),
    (ErrorCode::Forbidden, "forbidden"),
    (ErrorCode::NotFound, "not_found"),
    (ErrorCode::UsernameTaken, "username_taken"),
    (ErrorCode::InvalidCredentials, "invalid_credentials"),
    (ErrorCode::Conflict, "conflict"),
    (ErrorCode::Blocked, "blocked"),
    (ErrorCode::NotFriends, "not_friends"),
    (ErrorCode::RecallWindowExpired, "recall_window_expired"),
    (ErrorCode::RateLimited, "rate_limited"),
    (ErrorCode::QuotaExceeded, "quota_exceeded"),
    (ErrorCode::RangeNotSatisfiable, "range_not_satisfiable"),
    (ErrorCode::ShuttingDown, "shutting_down"),
    (ErrorCode::Internal, "internal"),
];

/// The position of `code` in [`ERROR_CODES`]. No `_` arm, so a new variant is a compile
/// error here, which leads whoever adds it to the list above.
fn error_code_is_listed(code: ErrorCode) -> usize {
    match code {
        ErrorCode::InvalidJson => 0,
        ErrorCode::InvalidFrame => 1,
        ErrorCode::InvalidInput => 2,
        ErrorCode::TooLarge => 3,
        ErrorCode::Unauthorized => 4,
        ErrorCode::Forbidden => 5,
        ErrorCode::NotFound => 6,
        ErrorCode::UsernameTaken => 7,
        ErrorCode::InvalidCredentials => 8,
        ErrorCode::Conflict => 9,
        ErrorCode::Blocked => 10,
        ErrorCode::NotFriends => 11,
        ErrorCode::RecallWindowExpired => 12,
        ErrorCode::RateLimited => 13,
        ErrorCode::QuotaExceeded => 14,
        ErrorCode::RangeNotSatisfiable => 15,
        ErrorCode::ShuttingDown => 16,
        ErrorCode::Internal => 17,
    }
}

#[test]
fn error_codes_serialize_to_their_documented_names() {
    for (index, (code, name)) in ERROR_CODES.iter().enumerate() {
        assert_eq!(
            error_code_is_listed(*code),
            index,
            "{code:?} is listed out of place"
        );
        assert_wire(code, json!(name));
    }
    assert_rejects::<ErrorCode>(json!("NotFound"), "CamelCase code");
    assert_rejects::<ErrorCode>(json!(404), "numeric code");
}

#[test]
fn error_code_as_str_equals_its_serde_name() {
    // `as_str` is written by hand (for logs and the HTTP mapping), so it can drift from
    // the derived serde name; both must be the wire name.
    for (code, name) in ERROR_CODES {
        let serde_name = serde_json::to_value(code).unwrap();
        assert_eq!(serde_name, json!(code.as_str()), "{code:?}");
        assert_eq!(code.as_str(), name, "{code:?}");
    }
}

#[test]
fn error_codes_are_all_in_the_protocol_doc() {
    // Each code has a row in the table of doc §8, and every row there is a code.
    let doc = include_str!("../../../docs/protocol.md");
    let section = doc
        .split("\n## 8. Error codes\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/protocol.md has a section 8");
    let documented: Vec<&str> = section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .collect();
    let names: Vec<&str> = ERROR_CODES.iter().map(|(_, name)| *name).collect();
    assert_eq!(
        documented, names,
        "doc §8 table lists other codes, or in another order"
    );
}

#[test]
fn error_body() {
    // doc L87–L92.
    assert_wire(
        &ErrorBody {
            code: ErrorCode::NotFound,
            message: "conversation not found".into(),
        },
        json!({
            "code": "not_found",
            "message": "conversation not found"
        }),
    );
}

// ---------------------------------------------------------------------------------------
// REST bodies (doc §4)
// ---------------------------------------------------------------------------------------

#[test]
fn rest_accounts_and_sessions() {
    // doc L312–L318.
    assert_wire_body(
        &RegisterRequest {
            username: "alice".into(),
            password: "correct horse battery".into(),
            nickname: Some("Alice".into()),
        },
        json!({
            "username": "alice",
            "password": "correct horse battery",
            "nickname": "Alice"
        }),
    );

    // doc L345–L351; the worked session, L2145.
    assert_wire_body(
        &LoginRequest {
            username: "alice".into(),
            password: "correct horse battery".into(),
            device_name: Some("Pixel 8".into()),
        },
        json!({
            "username": "alice",
            "password": "correct horse battery",
            "device_name": "Pixel 8"
        }),
    );

    // doc L361–L373.
    assert_wire_body(
        &LoginResponse {
            token: "q3ZlP0mXb8Yc1vT7n2KdWfR4hJ6sA9eGxU5oLi0N".into(),
            expires_at_ms: 1769860800000,
            user: UserProfile {
                signature: None,
                ..alice()
            },
        },
        json!({
            "token": "q3ZlP0mXb8Yc1vT7n2KdWfR4hJ6sA9eGxU5oLi0N",
            "expires_at_ms": 1769860800000_i64,
            "user": {
                "id": 1,
                "username": "alice",
                "nickname": "Alice",
                "avatar_url": null,
                "signature": null
            }
        }),
    );

    // doc L399–L404 leaves `nickname` out, which means "unchanged" (doc L389); it
    // serializes as null.
    let update = UpdateProfileRequest {
        nickname: None,
        avatar_url: Some(String::new()),
        signature: Some("Rock climber".into()),
    };
    let doc_example = json!({
        "signature": "Rock climber",
        "avatar_url": ""
    });
    let decoded: UpdateProfileRequest = serde_json::from_value(doc_example).unwrap();
    assert_eq!(
        serde_json::to_value(&decoded).unwrap(),
        serde_json::to_value(&update).unwrap()
    );
    assert_wire_body(
        &update,
        json!({"nickname": null, "avatar_url": "", "signature": "Rock climber"}),
    );

    // doc L429–L434.
    assert_wire_body(
        &ChangePasswordRequest {
            old_password: "correct horse battery".into(),
            new_password: "battery staple horse correct".into(),
        },
        json!({
            "old_password": "correct horse battery",
            "new_password": "battery staple horse correct"
        }),
    );

    // Optional request fields may be omitted (doc L134).
    let register: RegisterRequest =
        serde_json::from_value(json!({"username": "alice", "password": "correct horse battery"}))
            .unwrap();
    assert_eq!(register.nickname, None);
    let login: LoginRequest = serde_json::from_value(
        json!({"username": "alice", "password": "correct horse battery", "device_name": null}),
    )
    .unwrap();
    assert_eq!(login.device_name, None);
}

#[test]
fn rest_friends() {
    // doc L505–L519.
    assert_wire_body(
        &FriendRequestList {
            incoming: vec![carols_request(FriendRequestStatus::Pending)],
            outgoing: vec![],
        },
        json!({
            "incoming": [carols_request_json("pending")],
            "outgoing": []
        }),
    );

    // doc L530–L535.
    assert_wire_body(
        &CreateFriendRequest {
            user_id: UserId(1),
            greeting: Some("We met at the climbing gym!".into()),
        },
        json!({
            "user_id": 1,
            "greeting": "We met at the climbing gym!"
        }),
    );
    let no_greeting: CreateFriendRequest = serde_json::from_value(json!({"user_id": 1})).unwrap();
    assert_eq!(no_greeting.greeting, None);
}

#[test]
fn rest_conversations() {
    // doc L663.
    assert_wire_body(
        &OpenDirectRequest { user_id: UserId(2) },
        json!({"user_id": 2}),
    );

    // doc L753–L777.
    assert_wire_body(
        &MessagePage {
            messages: vec![
                Message {
                    id: MessageId(1085),
                    conversation_id: ConversationId(7),
                    seq: 38,
                    sender_id: UserId(1),
                    client_msg_id: Some("b1d3f1a2-0c4e-4f57-9d8a-3e6b2c7a9f10".into()),
                    created_at_ms: 1767268000000,
                    content: MessageContent::Text {
                        text: String::new(),
                        recalled: true,
                    },
                },
                Message {
                    id: MessageId(1087),
                    conversation_id: ConversationId(7),
                    seq: 39,
                    sender_id: UserId(1),
                    client_msg_id: None,
                    created_at_ms: 1767268010000,
                    content: MessageContent::Recall {
                        target_id: MessageId(1085),
                    },
                },
            ],
            has_more: true,
        },
        json!({
            "messages": [
                {
                    "id": 1085,
                    "conversation_id": 7,
                    "seq": 38,
                    "sender_id": 1,
                    "client_msg_id": "b1d3f1a2-0c4e-4f57-9d8a-3e6b2c7a9f10",
                    "created_at_ms": 1767268000000_i64,
                    "content": {"kind": "text", "text": "", "recalled": true}
                },
                {
                    "id": 1087,
                    "conversation_id": 7,
                    "seq": 39,
                    "sender_id": 1,
                    "client_msg_id": null,
                    "created_at_ms": 1767268010000_i64,
                    "content": {"kind": "recall", "target_id": 1085}
                }
            ],
            "has_more": true
        }),
    );

    // doc L792.
    assert_wire_body(&MarkReadRequest { seq: 42 }, json!({"seq": 42}));
    // doc L802.
    assert_wire_body(&ReadPointer { read_seq: 42 }, json!({"read_seq": 42}));
}

#[test]
fn rest_groups() {
    // doc L851–L856.
    assert_wire_body(
        &CreateGroupRequest {
            name: "Climbing".into(),
            member_ids: vec![UserId(2), UserId(3)],
        },
        json!({
            "name": "Climbing",
            "member_ids": [2, 3]
        }),
    );
    // `member_ids` may be omitted, meaning none (doc L849) ...
    let alone: CreateGroupRequest = serde_json::from_value(json!({"name": "Solo"})).unwrap();
    assert!(alone.member_ids.is_empty());
    // ... but not sent as null (doc L135–L136, L849).
    assert_rejects::<CreateGroupRequest>(
        json!({"name": "Solo", "member_ids": null}),
        "null member_ids",
    );

    // doc L877.
    assert_wire_body(
        &RenameGroupRequest {
            name: "Climbing crew".into(),
        },
        json!({"name": "Climbing crew"}),
    );
    // doc L892.
    assert_wire_body(
        &AddMembersRequest {
            user_ids: vec![UserId(4), UserId(5)],
        },
        json!({"user_ids": [4, 5]}),
    );
    // doc L923.
    assert_wire_body(
        &SetRoleRequest { role: Role::Admin },
        json!({"role": "admin"}),
    );
    // doc L928–L929: a role that is not a Role at all is a decode failure (invalid_frame).
    assert_rejects::<SetRoleRequest>(json!({"role": "moderator"}), "unknown role");
    // doc L940.
    assert_wire_body(
        &TransferOwnershipRequest { user_id: UserId(2) },
        json!({"user_id": 2}),
    );
}

/// Every REST request body refuses fields it does not define (doc L142–L143).
#[test]
fn rest_request_bodies_refuse_unknown_fields() {
    fn refuses_extra<T: DeserializeOwned + Debug>(valid: Value) {
        serde_json::from_value::<T>(valid.clone()).expect("fixture decodes");
        let mut extra = valid;
        extra["is_admin"] = json!(true);
        assert_rejects::<T>(extra, "unknown field `is_admin`");
    }
    refuses_extra::<RegisterRequest>(
        json!({"username": "alice", "password": "correct horse battery"}),
    );
    refuses_extra::<LoginRequest>(
        json!({"username": "alice", "password": "correct horse battery"}),
    );
    refuses_extra::<UpdateProfileRequest>(json!({}));
    refuses_extra::<ChangePasswordRequest>(json!({"old_password": "a", "new_password": "b"}));
    refuses_extra::<CreateFriendRequest>(json!({"user_id": 1}));
    refuses_extra::<OpenDirectRequest>(json!({"user_id": 2}));
    refuses_extra::<CreateGroupRequest>(json!({"name": "Climbing"}));
    refuses_extra::<RenameGroupRequest>(json!({"name": "Climbing crew"}));
    refuses_extra::<AddMembersRequest>(json!({"user_ids": [4]}));
    refuses_extra::<TransferOwnershipRequest>(json!({"user_id": 2}));
    refuses_extra::<SetRoleRequest>(json!({"role": "admin"}));
    refuses_extra::<MarkReadRequest>(json!({"seq": 42}));

    // And the other failures of doc L144–L145: wrong type, missing field.
    assert_rejects::<OpenDirectRequest>(json!({"user_id": "2"}), "id as a string");
    assert_rejects::<MarkReadRequest>(json!({}), "missing seq");
    assert_rejects::<AddMembersRequest>(json!({"user_ids": [4, "5"]}), "id as a string in a list");
}

// ---------------------------------------------------------------------------------------
// Round-trip over many generated values
// ---------------------------------------------------------------------------------------

/// A tiny deterministic generator (xorshift64*), so failures reproduce exactly.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn bool(&mut self) -> bool {
        self.next() & 1 == 1
    }

    /// Ids and seqs, favouring the edges: i64 bounds, 2^53 (where JavaScript loses
    /// precision), zero and negatives.
    fn i64(&mut self) -> i64 {
        const EDGES: [i64; 12] = [
            i64::MIN,
            i64::MIN + 1,
            -(1 << 53) - 1,
            -1,
            0,
            1,
            42,
            (1 << 53) - 1,
            1 << 53,
            (1 << 53) + 1,
            i64::MAX - 1,
            i64::MAX,
        ];
        if self.bool() {
            self.pick(&EDGES)
        } else {
            self.next() as i64
        }
    }

    /// A string of up to eight pieces chosen to stress JSON string escaping.
    fn string(&mut self) -> String {
        const PIECES: [&str; 28] = [
            "",
            "a",
            "On my way!",
            " ",
            "\"",
            "\\",
            "\\\"",
            "\\u0000",
            "/",
            "</script>",
            "\n",
            "\r\n",
            "\t",
            "\u{0}",
            "\u{1}",
            "\u{1f}",
            "\u{7f}",
            "\u{80}",
            "é",
            "中文",
            "😀",
            "👩‍👩‍👧",
            "🏳️‍🌈",
            "\u{200b}",
            "\u{2028}\u{2029}",
            "\u{feff}",
            "\u{fffd}",
            "\u{10ffff}",
        ];
        let count = self.below(9);
        (0..count).map(|_| self.pick(&PIECES)).collect()
    }

    fn opt_string(&mut self) -> Option<String> {
        self.bool().then(|| self.string())
    }

    fn user(&mut self) -> UserProfile {
        UserProfile {
            id: UserId(self.i64()),
            username: self.string(),
            nickname: self.string(),
            avatar_url: self.opt_string(),
            signature: self.opt_string(),
        }
    }

    fn role(&mut self) -> Role {
        self.pick(&[Role::Member, Role::Admin, Role::Owner])
    }

    fn notice(&mut self) -> SystemNotice {
        let by = UserId(self.i64());
        match self.below(7) {
            0 => SystemNotice::MembersAdded {
                by,
                user_ids: (0..self.below(4)).map(|_| UserId(self.i64())).collect(),
            },
            1 => SystemNotice::MemberRemoved {
                by,
                user_id: UserId(self.i64()),
            },
            2 => SystemNotice::MemberLeft { user_id: by },
            3 => SystemNotice::Renamed {
                by,
                name: self.string(),
            },
            4 => SystemNotice::RoleChanged {
                by,
                user_id: UserId(self.i64()),
                role: self.role(),
            },
            5 => SystemNotice::OwnershipTransferred {
                from: by,
                to: UserId(self.i64()),
            },
            _ => SystemNotice::Disbanded { by },
        }
    }

    fn message(&mut self) -> Message {
        let content = match self.below(3) {
            0 => MessageContent::Text {
                text: self.string(),
                recalled: self.bool(),
            },
            1 => MessageContent::Recall {
                target_id: MessageId(self.i64()),
            },
            _ => MessageContent::System {
                notice: self.notice(),
            },
        };
        Message {
            id: MessageId(self.i64()),
            conversation_id: ConversationId(self.i64()),
            seq: self.i64(),
            sender_id: UserId(self.i64()),
            client_msg_id: self.opt_string(),
            created_at_ms: self.i64(),
            content,
        }
    }

    fn client_frame(&mut self) -> ClientFrame {
        let conversation_id = ConversationId(self.i64());
        match self.below(6) {
            0 => ClientFrame::SendMessage {
                id: self.string(),
                conversation_id,
                client_msg_id: self.string(),
                text: self.string(),
                attachment: None,
            },
            1 => ClientFrame::RecallMessage {
                id: self.string(),
                conversation_id,
                message_id: MessageId(self.i64()),
            },
            2 => ClientFrame::MarkRead {
                id: self.string(),
                conversation_id,
                seq: self.i64(),
            },
            3 => ClientFrame::Typing { conversation_id },
            4 => ClientFrame::Sync {
                id: self.string(),
                conversation_id,
                after_seq: self.i64(),
                limit: self
                    .bool()
                    .then(|| self.pick(&[0, 1, 100, 500, i64::from(u32::MAX), i64::MAX])),
            },
            _ => ClientFrame::Ping { id: self.string() },
        }
    }

    fn server_event(&mut self) -> ServerEvent {
        match self.below(17) {
            0 => ServerEvent::Hello {
                protocol_version: self.pick(&[0, 1, u32::MAX]),
                user_id: UserId(self.i64()),
                heartbeat_interval_secs: self.pick(&[0, 30, u64::MAX]),
                message_bytes_max: self.pick(&[0, 16384, usize::MAX]),
                frame_bytes_max: self.pick(&[0, 65536, usize::MAX]),
                recall_window_secs: self.pick(&[0, 120, u64::MAX]),
                typing_interval_ms: self.pick(&[0, 2000, u64::MAX]),
                frames_per_second_max: self.pick(&[1, 100, u32::MAX]),
                file_bytes_max: self.pick(&[1, 104857600, u64::MAX]),
                voice_duration_ms_max: self.pick(&[1, 600000, u64::MAX]),
            },
            1 => ServerEvent::PresenceSnapshot {
                online_user_ids: (0..self.below(5)).map(|_| UserId(self.i64())).collect(),
            },
            2 => ServerEvent::Ack {
                id: self.string(),
                conversation_id: ConversationId(self.i64()),
                client_msg_id: self.opt_string(),
                message_id: MessageId(self.i64()),
                seq: self.i64(),
                created_at_ms: self.i64(),
            },
            3 => ServerEvent::Done { id: self.string() },
            4 => ServerEvent::Synced {
                id: self.string(),
                conversation_id: ConversationId(self.i64()),
                messages: (0..self.below(4)).map(|_| self.message()).collect(),
                has_more: self.bool(),
            },
            5 => ServerEvent::Pong { id: self.string() },
            6 => ServerEvent::Error {
                id: self.opt_string(),
                code: ERROR_CODES[self.below(ERROR_CODES.len())].0,
                message: self.string(),
            },
            7 => ServerEvent::MessageCreated {
                message: self.message(),
            },
            8 => ServerEvent::ReadUpdated {
                conversation_id: ConversationId(self.i64()),
                user_id: UserId(self.i64()),
                seq: self.i64(),
            },
            9 => ServerEvent::TypingStarted {
                conversation_id: ConversationId(self.i64()),
                user_id: UserId(self.i64()),
            },
            10 => ServerEvent::PresenceChanged {
                user_id: UserId(self.i64()),
                online: self.bool(),
            },
            11 | 12 => {
                let request = FriendRequest {
                    id: FriendRequestId(self.i64()),
                    from: self.user(),
                    to: self.user(),
                    greeting: self.opt_string(),
                    status: self.pick(&[
                        FriendRequestStatus::Pending,
                        FriendRequestStatus::Accepted,
                        FriendRequestStatus::Rejected,
                        FriendRequestStatus::Cancelled,
                    ]),
                    created_at_ms: self.i64(),
                };
                if self.bool() {
                    ServerEvent::FriendRequestReceived { request }
                } else {
                    ServerEvent::FriendRequestUpdated { request }
                }
            }
            13 => ServerEvent::FriendAdded { user: self.user() },
            14 => ServerEvent::FriendRemoved {
                user_id: UserId(self.i64()),
            },
            15 => {
                let direct = self.bool();
                ServerEvent::ConversationJoined {
                    conversation: ConversationSummary {
                        avatar_url: None,
                        id: ConversationId(self.i64()),
                        kind: if direct {
                            ConversationKind::Direct
                        } else {
                            ConversationKind::Group
                        },
                        name: self.opt_string(),
                        peer: direct.then(|| self.user()),
                        peer_online: direct.then(|| self.bool()),
                        my_role: self.role(),
                        member_count: self.pick(&[0, 2, u32::MAX]),
                        last_seq: self.i64(),
                        read_seq: self.i64(),
                        unread_count: self.pick(&[0, 1, u32::MAX]),
                        last_message: self.bool().then(|| self.message()),
                        last_activity_ms: self.i64(),
                    },
                }
            }
            _ => ServerEvent::ConversationLeft {
                conversation_id: ConversationId(self.i64()),
            },
        }
    }
}

/// Sends `value` through JSON text, as the socket does, and checks it comes back equal,
/// tagged with `tag`, and with every control character below U+0020 escaped.
#[track_caller]
fn assert_round_trip<T>(value: &T, tag: &str)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let text = serde_json::to_string(value).expect("serializes");
    // JSON forbids raw U+0000–U+001F inside strings (RFC 8259 §7); they must be escaped.
    // (DEL, C1 controls and U+2028 may legally appear raw.)
    assert!(
        !text.chars().any(|c| c < '\u{20}'),
        "raw control character in {text:?}"
    );
    let decoded: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(
        &decoded, value,
        "round trip changed the value; JSON was {text}"
    );
    let object: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(object["type"], json!(tag), "{text}");
    // The same JSON as a `Value` (how the server's hub and tests inspect it) agrees.
    assert_eq!(object, serde_json::to_value(value).unwrap());
}

#[test]
fn generated_frames_and_events_round_trip() {
    const CASES: usize = 3000;
    let mut gen = Gen(0x5EED_BA17_E2C0_FFEE);
    let mut client_tags = std::collections::BTreeSet::new();
    let mut server_tags = std::collections::BTreeSet::new();
    for _ in 0..CASES {
        let frame = gen.client_frame();
        let tag = client_frame_tag(&frame);
        assert_round_trip(&frame, tag);
        client_tags.insert(tag);

        let event = gen.server_event();
        let tag = server_event_tag(&event);
        assert_round_trip(&event, tag);
        server_tags.insert(tag);
    }
    // The generator reached every variant, so the loop tested them all.
    assert_eq!(client_tags.len(), 6, "{client_tags:?}");
    assert_eq!(server_tags.len(), 17, "{server_tags:?}");
}

/// Ids are plain JSON integers over the whole i64 range (doc L121–L124), not strings,
/// and not floats that would round near the bounds.
#[test]
fn ids_at_i64_bounds_are_exact_integers() {
    for id in [i64::MIN, -1, 0, (1 << 53) + 1, i64::MAX] {
        let frame = ClientFrame::MarkRead {
            id: "r".into(),
            conversation_id: ConversationId(id),
            seq: id,
        };
        let text = serde_json::to_string(&frame).unwrap();
        assert_eq!(
            text,
            format!(r#"{{"type":"mark_read","id":"r","conversation_id":{id},"seq":{id}}}"#)
        );
        assert_eq!(serde_json::from_str::<ClientFrame>(&text).unwrap(), frame);
    }
    // A float, even a whole one, is not an id.
    assert_rejects::<ClientFrame>(
        json!({"type": "typing", "conversation_id": 7.0}),
        "float id",
    );
}
