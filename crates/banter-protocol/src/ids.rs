//! Id newtypes, so that a user id can never be passed where a conversation id is meant.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A registered account.
    UserId
);
id_type!(
    /// A direct (1:1) or group conversation.
    ConversationId
);
id_type!(
    /// One entry of a conversation's stream (a text, a recall or a system notice).
    MessageId
);
id_type!(
    /// A pending, accepted, rejected or cancelled friend request.
    FriendRequestId
);

/// An uploaded file (a picture, file, voice message or video): 32 lowercase hexadecimal
/// characters, random, so that it cannot be guessed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct UploadId(pub String);

impl UploadId {
    /// The length of every upload id.
    pub const LEN: usize = 32;

    /// Whether `text` has the shape of an upload id (so a malformed one is never looked up).
    pub fn is_well_formed(text: &str) -> bool {
        text.len() == Self::LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The id a client puts on a frame so that the reply (ack, result or error) can be matched.
/// Chosen by the client; echoed verbatim; never interpreted by the server.
pub type RequestId = String;
