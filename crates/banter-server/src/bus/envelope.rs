//! How a [`Broadcast`] travels between nodes: a small binary envelope of its own, versioned,
//! so that the bus never carries a wire type or a storage record. The frame inside a
//! delivery is the already serialized server event, carried as it is.
//!
//! Version 2, big-endian:
//!
//! ```text
//! u8 version (2) · u64 origin node · u64 sequence · u8 kind
//! kind 1, deliver: u32 n · n × i64 user id · the frame's UTF-8 bytes (the rest)
//! kind 2, revoke:  i64 user id · u32 n · n × i64 session id
//! kind 3, deliver a stream entry: i64 conversation id · i64 seq · then as kind 1
//! ```
//!
//! The sequence counts one origin's broadcasts from 1, so a node that receives 7 after 5
//! from the same origin knows it missed one (dropped by a full publish queue or lost on
//! the bus) and can make its clients resync. Version 1 is the same without the sequence;
//! it is still read (from nodes of an older release, whose losses go unnoticed this way).
//! A node of that older release does not read version 2: during a rolling upgrade its
//! clients get the newer nodes' events by `sync` (on the next gap or reconnect), not live.

use axum::extract::ws::Utf8Bytes;
use banter_protocol::{ConversationId, UserId};
use banter_store::SessionId;

use crate::fanout::{Broadcast, Delivery};

const VERSION: u8 = 2;
/// The version before the sequence.
const VERSION_UNSEQUENCED: u8 = 1;
const DELIVER: u8 = 1;
const REVOKE: u8 = 2;
const DELIVER_ENTRY: u8 = 3;

/// The `sequence`-th broadcast from node `origin`.
pub fn encode(origin: u64, sequence: u64, broadcast: &Broadcast) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(VERSION);
    out.extend_from_slice(&origin.to_be_bytes());
    out.extend_from_slice(&sequence.to_be_bytes());
    match broadcast {
        Broadcast::Deliver(delivery) => {
            out.reserve(20 + delivery.recipients.len() * 8 + delivery.frame.len());
            match delivery.entry {
                Some((conversation, seq)) => {
                    out.push(DELIVER_ENTRY);
                    out.extend_from_slice(&conversation.0.to_be_bytes());
                    out.extend_from_slice(&seq.to_be_bytes());
                }
                None => out.push(DELIVER),
            }
            out.extend_from_slice(&(delivery.recipients.len() as u32).to_be_bytes());
            for user in &delivery.recipients {
                out.extend_from_slice(&user.0.to_be_bytes());
            }
            out.extend_from_slice(delivery.frame.as_str().as_bytes());
        }
        Broadcast::Revoke { user, sessions } => {
            out.push(REVOKE);
            out.extend_from_slice(&user.0.to_be_bytes());
            out.extend_from_slice(&(sessions.len() as u32).to_be_bytes());
            for session in sessions {
                out.extend_from_slice(&session.0.to_be_bytes());
            }
        }
    }
    out
}

/// Why an envelope could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("envelope version {0} is not one this node reads")]
    Version(u8),
    #[error("the envelope is cut short")]
    Short,
    #[error("unknown broadcast kind {0}")]
    Kind(u8),
    #[error("the frame is not UTF-8")]
    Frame,
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.0.len() < n {
            return Err(Malformed::Short);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, Malformed> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, Malformed> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn i64(&mut self) -> Result<i64, Malformed> {
        Ok(self.u64()? as i64)
    }
    /// A count of `item_bytes`-byte items, checked against what is left, so a corrupt
    /// count cannot make the reader allocate for items that are not there.
    fn count(&mut self, item_bytes: usize) -> Result<usize, Malformed> {
        let n = self.u32()? as usize;
        if self.0.len() < n.saturating_mul(item_bytes) {
            return Err(Malformed::Short);
        }
        Ok(n)
    }
}

/// What an envelope says: where it comes from, its place among that node's broadcasts
/// (`None` from a version-1 node), and the broadcast.
#[derive(Debug)]
pub struct Envelope {
    pub origin: u64,
    pub sequence: Option<u64>,
    pub broadcast: Broadcast,
}

pub fn decode(bytes: &[u8]) -> Result<Envelope, Malformed> {
    let mut reader = Reader(bytes);
    let version = reader.u8()?;
    if version != VERSION && version != VERSION_UNSEQUENCED {
        return Err(Malformed::Version(version));
    }
    let origin = reader.u64()?;
    let sequence = if version == VERSION {
        Some(reader.u64()?)
    } else {
        None
    };
    let broadcast = match reader.u8()? {
        kind @ (DELIVER | DELIVER_ENTRY) => {
            let entry = if kind == DELIVER_ENTRY {
                Some((ConversationId(reader.i64()?), reader.i64()?))
            } else {
                None
            };
            let n = reader.count(8)?;
            let recipients = (0..n)
                .map(|_| reader.i64().map(UserId))
                .collect::<Result<Vec<_>, _>>()?;
            let frame = std::str::from_utf8(reader.0).map_err(|_| Malformed::Frame)?;
            Broadcast::Deliver(Delivery {
                recipients,
                frame: Utf8Bytes::from(frame),
                entry,
            })
        }
        REVOKE => {
            let user = UserId(reader.i64()?);
            let n = reader.count(8)?;
            let sessions = (0..n)
                .map(|_| reader.i64().map(SessionId))
                .collect::<Result<Vec<_>, _>>()?;
            Broadcast::Revoke { user, sessions }
        }
        other => return Err(Malformed::Kind(other)),
    };
    Ok(Envelope {
        origin,
        sequence,
        broadcast,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasts_round_trip_with_their_origin() {
        for entry in [None, Some((ConversationId(5), i64::MAX))] {
            let deliver = Broadcast::Deliver(Delivery {
                recipients: vec![UserId(1), UserId(i64::MAX)],
                frame: Utf8Bytes::from(r#"{"type":"pong","id":"猫"}"#),
                entry,
            });
            let back = decode(&encode(7, 12, &deliver)).expect("decodes");
            assert_eq!((back.origin, back.sequence), (7, Some(12)));
            match back.broadcast {
                Broadcast::Deliver(d) => {
                    assert_eq!(d.recipients, vec![UserId(1), UserId(i64::MAX)]);
                    assert_eq!(d.frame.as_str(), r#"{"type":"pong","id":"猫"}"#);
                    assert_eq!(d.entry, entry);
                }
                other => panic!("{other:?}"),
            }
        }
        let revoke = Broadcast::Revoke {
            user: UserId(3),
            sessions: vec![SessionId(9), SessionId(10)],
        };
        let back = decode(&encode(u64::MAX, 1, &revoke)).expect("decodes");
        match (back.origin, back.broadcast) {
            (u64::MAX, Broadcast::Revoke { user, sessions }) => {
                assert_eq!(
                    (user, sessions),
                    (UserId(3), vec![SessionId(9), SessionId(10)])
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn version_1_envelopes_are_read_without_a_sequence() {
        let v2 = encode(
            3,
            9,
            &Broadcast::Revoke {
                user: UserId(1),
                sessions: vec![SessionId(2)],
            },
        );
        // Version 1: the same without the sequence's 8 bytes.
        let mut v1 = vec![1];
        v1.extend_from_slice(&v2[1..9]);
        v1.extend_from_slice(&v2[17..]);
        let back = decode(&v1).expect("decodes");
        assert_eq!((back.origin, back.sequence), (3, None));
        assert!(matches!(
            back.broadcast,
            Broadcast::Revoke {
                user: UserId(1),
                ..
            }
        ));
    }

    #[test]
    fn malformed_envelopes_are_refused_not_trusted() {
        let good = encode(
            1,
            1,
            &Broadcast::Revoke {
                user: UserId(1),
                sessions: vec![SessionId(2)],
            },
        );
        assert_eq!(
            decode(&good[..good.len() - 1]).unwrap_err(),
            Malformed::Short
        );
        let mut other_version = good.clone();
        other_version[0] = 3;
        assert_eq!(decode(&other_version).unwrap_err(), Malformed::Version(3));
        let mut huge_count = encode(
            1,
            1,
            &Broadcast::Deliver(Delivery {
                recipients: vec![],
                frame: Utf8Bytes::from("x"),
                entry: None,
            }),
        );
        huge_count[18..22].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(decode(&huge_count).unwrap_err(), Malformed::Short);
        assert_eq!(decode(&[]).unwrap_err(), Malformed::Short);
    }
}
