//! Decoding client frames into [`ClientFrame`], with the checks that come before serde
//! (size, then nesting depth and U+0000: [`crate::json::precheck`]) and the field rules
//! that need no state after it (request id length, no negative seq or limit). Every
//! failure names its documented error code.

use crate::error::{check_non_negative, ApiError};
use crate::json::{self, Refusal};
use banter_protocol::{ClientFrame, ErrorCode, RequestId, REQUEST_ID_BYTES_MAX};

/// A frame that could not be decoded, with the request id if one could be read.
#[derive(Debug)]
pub struct DecodeError {
    pub id: Option<RequestId>,
    pub error: ApiError,
}

pub fn decode(
    text: &str,
    frame_bytes_max: usize,
    depth_max: usize,
) -> Result<ClientFrame, DecodeError> {
    if text.len() > frame_bytes_max {
        return Err(DecodeError {
            id: None,
            error: ApiError::new(
                ErrorCode::TooLarge,
                format!(
                    "frame is {} bytes; the limit is {frame_bytes_max}",
                    text.len()
                ),
            ),
        });
    }
    if let Err(refusal) = json::precheck(text.as_bytes(), depth_max) {
        let (id, code) = match refusal {
            Refusal::TooDeep => (None, ErrorCode::InvalidJson),
            // Well-formed but refused by rule: the request id, if readable, lets the client
            // match the error to its send.
            Refusal::NulCharacter => (request_id(text), ErrorCode::InvalidInput),
        };
        return Err(DecodeError {
            id,
            error: ApiError::new(code, json::explain(refusal, depth_max)),
        });
    }
    // serde also accepts an internally tagged enum written as an array (`["ping","1"]`);
    // the protocol says a frame is one JSON object, so anything else is refused here.
    if !text.trim_start().starts_with('{') {
        let code = match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Ok(_) => ErrorCode::InvalidFrame,
            Err(_) => ErrorCode::InvalidJson,
        };
        return Err(DecodeError {
            id: None,
            error: ApiError::new(code, "a frame must be one JSON object"),
        });
    }
    let frame = serde_json::from_str::<ClientFrame>(text).map_err(|err| {
        let code = match err.classify() {
            serde_json::error::Category::Data => ErrorCode::InvalidFrame,
            _ => ErrorCode::InvalidJson,
        };
        DecodeError {
            id: request_id(text),
            error: ApiError::new(code, err.to_string()),
        }
    })?;
    check_fields(&frame)?;
    Ok(frame)
}

/// The rules every frame of a kind obeys whatever the server's state: the request id's
/// length, and no negative seq or limit (refused like the REST API refuses them).
fn check_fields(frame: &ClientFrame) -> Result<(), DecodeError> {
    let id = match frame {
        ClientFrame::SendMessage { id, .. }
        | ClientFrame::RecallMessage { id, .. }
        | ClientFrame::MarkRead { id, .. }
        | ClientFrame::Sync { id, .. }
        | ClientFrame::Ping { id } => Some(id),
        ClientFrame::Typing { .. } => None,
    };
    if let Some(id) = id {
        if id.len() > REQUEST_ID_BYTES_MAX {
            // Not echoed: the point of the limit is that replies carry short ids.
            return Err(DecodeError {
                id: None,
                error: ApiError::invalid_input(format!(
                    "id is {} bytes; the limit is {REQUEST_ID_BYTES_MAX}",
                    id.len()
                )),
            });
        }
    }
    let checked = match frame {
        ClientFrame::MarkRead { seq, .. } => check_non_negative("seq", *seq),
        ClientFrame::Sync {
            after_seq, limit, ..
        } => check_non_negative("after_seq", *after_seq)
            .and_then(|()| limit.map_or(Ok(()), |l| check_non_negative("limit", l))),
        _ => Ok(()),
    };
    checked.map_err(|error| DecodeError {
        id: id.cloned(),
        error,
    })
}

/// Reads `id` from a frame that failed to decode, so the error can still be matched; not
/// one over [`REQUEST_ID_BYTES_MAX`], which is never echoed. Only on the error path: a
/// valid frame is parsed once.
fn request_id(text: &str) -> Option<RequestId> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let id = value.get("id")?.as_str()?;
    (id.len() <= REQUEST_ID_BYTES_MAX).then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> ErrorCode {
        decode(text, 1024, 8).unwrap_err().error.code
    }

    #[test]
    fn each_kind_of_bad_frame_gets_its_code() {
        assert_eq!(code("{not json"), ErrorCode::InvalidJson);
        assert_eq!(code(r#"{"type":"fly","id":"1"}"#), ErrorCode::InvalidFrame);
        assert_eq!(code(r#"{"type":"ping","id":7}"#), ErrorCode::InvalidFrame);
        assert_eq!(
            code(r#"{"type":"ping","id":"1","extra":true}"#),
            ErrorCode::InvalidFrame
        );
        let deep = "[".repeat(10_000);
        assert_eq!(
            decode(&deep, 65_536, 8).unwrap_err().error.code,
            ErrorCode::InvalidJson
        );
        assert_eq!(
            code(&format!("\"{}\"", "x".repeat(2000))),
            ErrorCode::TooLarge
        );
    }

    #[test]
    fn a_nul_character_is_invalid_input_with_the_request_id() {
        let err = decode(
            r#"{"type":"send_message","id":"s1","conversation_id":1,"client_msg_id":"c","text":"a\u0000"}"#,
            1024,
            8,
        )
        .unwrap_err();
        assert_eq!(err.error.code, ErrorCode::InvalidInput);
        assert_eq!(err.id.as_deref(), Some("s1"));
    }

    #[test]
    fn the_request_id_survives_a_bad_field() {
        let err = decode(
            r#"{"type":"mark_read","id":"r9","conversation_id":"x","seq":1}"#,
            1024,
            8,
        )
        .unwrap_err();
        assert_eq!(err.id.as_deref(), Some("r9"));
    }

    #[test]
    fn an_oversized_request_id_is_never_echoed() {
        let long = "i".repeat(REQUEST_ID_BYTES_MAX + 1);
        // Refused for its length, and refused for another reason: no echo either way.
        let err = decode(&format!(r#"{{"type":"ping","id":"{long}"}}"#), 1024, 8).unwrap_err();
        assert_eq!((err.id, err.error.code), (None, ErrorCode::InvalidInput));
        let err = decode(
            &format!(r#"{{"type":"ping","id":"{long}","x":1}}"#),
            1024,
            8,
        )
        .unwrap_err();
        assert_eq!((err.id, err.error.code), (None, ErrorCode::InvalidFrame));
    }

    #[test]
    fn a_negative_seq_or_limit_is_invalid_input_with_the_request_id() {
        for frame in [
            r#"{"type":"mark_read","id":"m","conversation_id":1,"seq":-1}"#,
            r#"{"type":"sync","id":"m","conversation_id":1,"after_seq":-1}"#,
            r#"{"type":"sync","id":"m","conversation_id":1,"after_seq":0,"limit":-1}"#,
        ] {
            let err = decode(frame, 1024, 8).unwrap_err();
            assert_eq!(
                (err.id.as_deref(), err.error.code),
                (Some("m"), ErrorCode::InvalidInput),
                "{frame}"
            );
        }
    }

    #[test]
    fn brackets_inside_strings_do_not_count_as_nesting() {
        let text = format!(
            r#"{{"type":"ping","id":"{}"}}"#,
            "[".repeat(REQUEST_ID_BYTES_MAX)
        );
        assert!(matches!(
            decode(&text, 1024, 8),
            Ok(ClientFrame::Ping { .. })
        ));
    }
}
