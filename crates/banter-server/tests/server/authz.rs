//! Authorization, as a table: every REST route of the OpenAPI document and every client
//! frame, tried by every kind of caller, with the answer docs/protocol.md gives each.
//!
//! The callers ([`Who`]) stand in a small world ([`World`]) built fresh through the admin
//! API: a group with an owner, an admin, a plain member, a member the owner has blocked and
//! a member who left; a direct conversation of the owner and the member; one of the owner
//! and the blocked user; a stranger who is the recipient of the owner's pending friend
//! request; and another user, a friend of the owner and the admin, who is in none of them.
//!
//! What "no leak" means here:
//! - a caller who may not see a conversation, request or friendship gets a `not_found` that
//!   is byte for byte the one a nonexistent id gets, so ids cannot be probed ([`Expect::Hidden`]);
//! - a refusal (401, 403, 404) changes nothing, and only the listed callers get a 2xx;
//! - nobody's socket hears an event of a conversation they are not in, which is checked
//!   after a ping round trip on that socket, the barrier that the event would have come
//!   before ([`events_reach_members_only`]).
//!
//! Completeness is enforced, not hoped for: the test fails if the served OpenAPI document
//! has a route without a row for every caller, and `frame_rows` matches `ClientFrame`
//! without a `_` arm, so a new frame does not compile until it has rows here (and a frame
//! documented in §5.6 without a sample fails at run time).

use crate::common::*;
use banter_client::Method;
use banter_client::{AdminClient, Client, Connection};
use banter_protocol::{
    ClientFrame, ConversationId, ErrorCode, FriendRequestId, MessageId, ServerEvent, UserId,
};
use banter_server::auth::AdminToken;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};

const ADMIN_TOKEN: &str = "authz-admin-token-0123456789abcdef0123456789";
/// An id no fixture ever reaches: every "hidden" answer must equal the answer for it.
const NOWHERE: i64 = 987_654_321_987;
/// Used where a route takes a username instead of an id.
const NOBODY: &str = "no_such_user_xyz";

/// Who calls. The first four carry no user's session; the others are the world's users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    /// No `Authorization` header.
    Anonymous,
    /// A token the server never issued.
    BadToken,
    /// The token of a session that logged out.
    Revoked,
    /// The admin API's shared secret, presented as a bearer token.
    AdminSecret,
    /// A user with no friends, in no conversation of the world; the recipient of the
    /// owner's pending friend request.
    Stranger,
    /// A friend of the owner and of the admin, in no conversation of the world.
    Another,
    /// A plain member of the group; the owner's peer in the direct conversation.
    Member,
    /// An admin of the group.
    Admin,
    /// The group's owner; has blocked `Blocked`; sent the pending request to `Stranger`.
    Owner,
    /// Was a member of the group and left it.
    ExMember,
    /// Blocked by the owner; a plain member of the group, the owner's peer in a direct
    /// conversation that the block closes.
    Blocked,
}

const EVERYONE: [Who; 11] = [
    Who::Anonymous,
    Who::BadToken,
    Who::Revoked,
    Who::AdminSecret,
    Who::Stranger,
    Who::Another,
    Who::Member,
    Who::Admin,
    Who::Owner,
    Who::ExMember,
    Who::Blocked,
];
const NO_USER: [Who; 4] = [
    Who::Anonymous,
    Who::BadToken,
    Who::Revoked,
    Who::AdminSecret,
];
const USERS: [Who; 7] = [
    Who::Stranger,
    Who::Another,
    Who::Member,
    Who::Admin,
    Who::Owner,
    Who::ExMember,
    Who::Blocked,
];

/// What a caller gets.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// This success status.
    Ok(u16),
    /// `401 unauthorized`, the same whatever ids the request names.
    Unauthorized,
    /// `404 not_found`, byte-identical to the answer for a nonexistent id.
    Hidden,
    /// Refused with this status and code.
    Deny(u16, ErrorCode),
    /// The pair makes no sense; the reason says why.
    NotApplicable(&'static str),
}

/// Who may call a route at all.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Auth {
    /// No token needed; a token, good or bad, is ignored.
    Public,
    /// A user's session token: the four callers without one get [`Expect::Unauthorized`].
    User,
    /// The admin secret only: every other caller gets [`Expect::Unauthorized`].
    Admin,
}

/// What a placeholder of a route's path or body stands for in the world.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// The group.
    Group,
    /// The direct conversation of the owner and the member.
    Direct,
    /// The direct conversation of the owner and the user the owner blocked.
    BlockedDirect,
    /// The owner's pending friend request to the stranger.
    Request,
    /// A user's id.
    User(Who),
    /// A user's username.
    Username(Who),
    /// A username nobody has, new for each request.
    FreshUsername,
    /// The owner's picture, sent in the group.
    Upload,
    /// The owner's avatar key.
    Avatar,
}

/// One route, one target: the rows for the callers with a user's session (the others
/// follow from `auth`). A (method, path) may have several entries with other targets.
struct Route {
    method: &'static str,
    /// As in the OpenAPI document.
    path: &'static str,
    auth: Auth,
    body: Option<&'static str>,
    /// Placeholder → target. The first is the one whose existence [`Expect::Hidden`] probes.
    params: &'static [(&'static str, Target)],
    rows: &'static [(Who, Expect)],
    /// Whether the allowed rows change what the other allowed rows see (each then runs in
    /// a world of its own). Refusals never change anything, so they share one world.
    fresh: bool,
}

use Expect::{Deny, Hidden, NotApplicable, Ok as Allow};
use Target::{Direct, Group, Request, User, Username};
use Who::{Admin, Another, Blocked, ExMember, Member, Owner, Stranger};

/// A body standing for a picture's bytes (sent as such, not as this text).
const PICTURE: &str = "{picture}";

/// The bytes a [`PICTURE`] body stands for: an 8×8 PNG.
fn picture() -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(image::RgbImage::new(8, 8))
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("a PNG");
    out.into_inner()
}

const SAME_FOR_EVERY_USER: &str =
    "acts only on the caller's own account, the same for every user: see the other rows";

/// The rows of a route every user may call on their own behalf.
const ANY_USER: &[(Who, Expect)] = &[
    (Stranger, Allow(200)),
    (Another, Allow(200)),
    (Member, Allow(200)),
    (Admin, Allow(200)),
    (Owner, Allow(200)),
    (ExMember, Allow(200)),
    (Blocked, Allow(200)),
];
const ANY_USER_201: &[(Who, Expect)] = &[
    (Stranger, Allow(201)),
    (Another, Allow(201)),
    (Member, Allow(201)),
    (Admin, Allow(201)),
    (Owner, Allow(201)),
    (ExMember, Allow(201)),
    (Blocked, Allow(201)),
];
const ANY_USER_204: &[(Who, Expect)] = &[
    (Stranger, Allow(204)),
    (Another, Allow(204)),
    (Member, Allow(204)),
    (Admin, Allow(204)),
    (Owner, Allow(204)),
    (ExMember, Allow(204)),
    (Blocked, Allow(204)),
];
/// A conversation route on the group: its four members may, nobody else learns it exists.
const GROUP_MEMBERS_200: &[(Who, Expect)] = &[
    (Stranger, Hidden),
    (Another, Hidden),
    (Member, Allow(200)),
    (Admin, Allow(200)),
    (Owner, Allow(200)),
    (ExMember, Hidden),
    // Blocks do not touch groups (§4.5).
    (Blocked, Allow(200)),
];
/// A conversation route on the owner–member direct conversation.
const DIRECT_PEERS_200: &[(Who, Expect)] = &[
    (Stranger, Hidden),
    (Another, Hidden),
    (Member, Allow(200)),
    (Admin, Hidden),
    (Owner, Allow(200)),
    (ExMember, Hidden),
    (Blocked, Hidden),
];
/// A conversation route on the direct conversation closed by a block: reading it is still
/// allowed to both (§4.5 lists what a block refuses, and reading is not among it).
const BLOCKED_PEERS_200: &[(Who, Expect)] = &[
    (Stranger, Hidden),
    (Another, Hidden),
    (Member, Hidden),
    (Admin, Hidden),
    (Owner, Allow(200)),
    (ExMember, Hidden),
    (Blocked, Allow(200)),
];
/// A group change only the owner may make.
const OWNER_ONLY: &[(Who, Expect)] = &[
    (Stranger, Hidden),
    (Another, Hidden),
    (Member, Deny(403, ErrorCode::Forbidden)),
    (Admin, Deny(403, ErrorCode::Forbidden)),
    (Owner, Allow(204)),
    (ExMember, Hidden),
    (Blocked, Deny(403, ErrorCode::Forbidden)),
];
/// A group change the owner and admins may make.
const OWNER_OR_ADMIN: &[(Who, Expect)] = &[
    (Stranger, Hidden),
    (Another, Hidden),
    (Member, Deny(403, ErrorCode::Forbidden)),
    (Admin, Allow(204)),
    (Owner, Allow(204)),
    (ExMember, Hidden),
    (Blocked, Deny(403, ErrorCode::Forbidden)),
];
/// A group route called with a direct conversation's id: its peers are told it has no
/// group settings, everyone else that it does not exist.
const DIRECT_HAS_NO_GROUP_SETTINGS: &[(Who, Expect)] = &[
    (Stranger, Hidden),
    (Another, Hidden),
    (Member, Deny(403, ErrorCode::Forbidden)),
    (Admin, Hidden),
    (Owner, Deny(403, ErrorCode::Forbidden)),
    (ExMember, Hidden),
    (Blocked, Hidden),
];
/// Answering the owner's request to the stranger: only its recipient may.
const RECIPIENT_ONLY: &[(Who, Expect)] = &[
    (Stranger, Allow(200)),
    (Another, Hidden),
    (Member, Hidden),
    (Admin, Hidden),
    // The sender cannot answer their own request: to them it does not exist either.
    (Owner, Hidden),
    (ExMember, Hidden),
    (Blocked, Hidden),
];
const NOT_FOR_USERS: &[(Who, Expect)] = &[
    (Stranger, Deny(401, ErrorCode::Unauthorized)),
    (Another, Deny(401, ErrorCode::Unauthorized)),
    (Member, Deny(401, ErrorCode::Unauthorized)),
    (Admin, Deny(401, ErrorCode::Unauthorized)),
    (Owner, Deny(401, ErrorCode::Unauthorized)),
    (ExMember, Deny(401, ErrorCode::Unauthorized)),
    (Blocked, Deny(401, ErrorCode::Unauthorized)),
];

const GROUP_ID: &[(&str, Target)] = &[("{id}", Group)];
const DIRECT_ID: &[(&str, Target)] = &[("{id}", Direct)];
const BLOCKED_DIRECT_ID: &[(&str, Target)] = &[("{id}", Target::BlockedDirect)];
const OWNER_ID: &[(&str, Target)] = &[("{user_id}", User(Owner))];
const GROUP_AND_MEMBER: &[(&str, Target)] = &[("{id}", Group), ("{user_id}", User(Member))];

/// The table. Rows for the callers without a session come from `auth`.
const ROUTES: &[Route] = &[
    // ----- accounts and sessions (§4.2) -----
    Route {
        method: "POST",
        path: "/api/v1/accounts",
        auth: Auth::Public,
        body: Some(r#"{"username":"{username}","password":"correct horse battery"}"#),
        params: &[("{username}", Target::FreshUsername)],
        rows: &[
            (Stranger, Allow(201)),
            (Another, NotApplicable(SAME_FOR_EVERY_USER)),
            (Member, NotApplicable(SAME_FOR_EVERY_USER)),
            (Admin, NotApplicable(SAME_FOR_EVERY_USER)),
            (Owner, NotApplicable(SAME_FOR_EVERY_USER)),
            (ExMember, NotApplicable(SAME_FOR_EVERY_USER)),
            (Blocked, NotApplicable(SAME_FOR_EVERY_USER)),
        ],
        fresh: false,
    },
    Route {
        method: "POST",
        path: "/api/v1/sessions",
        auth: Auth::Public,
        body: Some(r#"{"username":"{username}","password":"correct horse battery"}"#),
        params: &[("{username}", Username(Member))],
        rows: &[
            (Stranger, Allow(200)),
            (Another, NotApplicable(SAME_FOR_EVERY_USER)),
            (Member, NotApplicable(SAME_FOR_EVERY_USER)),
            (Admin, NotApplicable(SAME_FOR_EVERY_USER)),
            (Owner, NotApplicable(SAME_FOR_EVERY_USER)),
            (ExMember, NotApplicable(SAME_FOR_EVERY_USER)),
            (Blocked, NotApplicable(SAME_FOR_EVERY_USER)),
        ],
        fresh: false,
    },
    Route {
        method: "DELETE",
        path: "/api/v1/sessions/current",
        auth: Auth::User,
        body: None,
        params: &[],
        rows: ANY_USER_204,
        // Each logout ends the session the world's later rows would use.
        fresh: true,
    },
    Route {
        method: "GET",
        path: "/api/v1/me",
        auth: Auth::User,
        body: None,
        params: &[],
        rows: ANY_USER,
        fresh: false,
    },
    Route {
        method: "PATCH",
        path: "/api/v1/me",
        auth: Auth::User,
        body: Some(r#"{"signature":"probing"}"#),
        params: &[],
        rows: ANY_USER,
        fresh: false,
    },
    Route {
        method: "PUT",
        path: "/api/v1/me/password",
        auth: Auth::User,
        body: Some(
            r#"{"old_password":"correct horse battery","new_password":"correct horse battery"}"#,
        ),
        params: &[],
        rows: ANY_USER_204,
        fresh: false,
    },
    // ----- users (§4.3): public to every user by username -----
    Route {
        method: "GET",
        path: "/api/v1/users/{username}",
        auth: Auth::User,
        body: None,
        params: &[("{username}", Username(Owner))],
        // Including the user the owner blocked: a block is not told (§4.5).
        rows: ANY_USER,
        fresh: false,
    },
    // ----- friends (§4.4) -----
    Route {
        method: "GET",
        path: "/api/v1/friends",
        auth: Auth::User,
        body: None,
        params: &[],
        rows: ANY_USER,
        fresh: false,
    },
    Route {
        method: "DELETE",
        path: "/api/v1/friends/{user_id}",
        auth: Auth::User,
        body: None,
        params: OWNER_ID,
        rows: &[
            // Not the owner's friend: the same as no such user.
            (Stranger, Hidden),
            (Another, Allow(204)),
            (Member, Allow(204)),
            (Admin, Allow(204)),
            // Nobody is their own friend.
            (Owner, Hidden),
            (ExMember, Allow(204)),
            // A block keeps the friendship (§4.5), so it can still be ended.
            (Blocked, Allow(204)),
        ],
        fresh: false,
    },
    Route {
        method: "GET",
        path: "/api/v1/friend-requests",
        auth: Auth::User,
        body: None,
        params: &[],
        rows: ANY_USER,
        fresh: false,
    },
    Route {
        method: "POST",
        path: "/api/v1/friend-requests",
        auth: Auth::User,
        body: Some(r#"{"user_id":{user_id}}"#),
        params: OWNER_ID,
        rows: &[
            // The owner's request to the stranger is pending: one per pair, either way.
            (Stranger, Deny(409, ErrorCode::Conflict)),
            (Another, Deny(409, ErrorCode::Conflict)),
            (Member, Deny(409, ErrorCode::Conflict)),
            (Admin, Deny(409, ErrorCode::Conflict)),
            (Owner, Deny(400, ErrorCode::InvalidInput)),
            (ExMember, Deny(409, ErrorCode::Conflict)),
            (Blocked, Deny(403, ErrorCode::Blocked)),
        ],
        fresh: false,
    },
    Route {
        method: "POST",
        path: "/api/v1/friend-requests/{id}/accept",
        auth: Auth::User,
        body: None,
        params: &[("{id}", Request)],
        rows: RECIPIENT_ONLY,
        fresh: false,
    },
    Route {
        method: "POST",
        path: "/api/v1/friend-requests/{id}/reject",
        auth: Auth::User,
        body: None,
        params: &[("{id}", Request)],
        rows: RECIPIENT_ONLY,
        fresh: false,
    },
    Route {
        method: "POST",
        path: "/api/v1/friend-requests/{id}/cancel",
        auth: Auth::User,
        body: None,
        params: &[("{id}", Request)],
        rows: &[
            // The recipient cannot cancel someone else's request: to them it does not exist.
            (Stranger, Hidden),
            (Another, Hidden),
            (Member, Hidden),
            (Admin, Hidden),
            (Owner, Allow(200)),
            (ExMember, Hidden),
            (Blocked, Hidden),
        ],
        fresh: false,
    },
    // ----- blocks (§4.5) -----
    Route {
        method: "GET",
        path: "/api/v1/blocks",
        auth: Auth::User,
        body: None,
        params: &[],
        rows: ANY_USER,
        fresh: false,
    },
    Route {
        method: "PUT",
        path: "/api/v1/blocks/{user_id}",
        auth: Auth::User,
        body: None,
        params: OWNER_ID,
        rows: &[
            (Stranger, Allow(204)),
            (Another, Allow(204)),
            (Member, Allow(204)),
            (Admin, Allow(204)),
            (Owner, Deny(400, ErrorCode::InvalidInput)),
            (ExMember, Allow(204)),
            (Blocked, Allow(204)),
        ],
        fresh: false,
    },
    Route {
        method: "DELETE",
        path: "/api/v1/blocks/{user_id}",
        auth: Auth::User,
        body: None,
        params: OWNER_ID,
        // Unblocking someone not blocked does nothing, and is still 204 (§4.5).
        rows: ANY_USER_204,
        fresh: false,
    },
    // ----- conversations (§4.6) -----
    Route {
        method: "GET",
        path: "/api/v1/conversations",
        auth: Auth::User,
        body: None,
        params: &[],
        // What each list holds is checked in `lists_show_only_what_the_caller_is_in`.
        rows: ANY_USER,
        fresh: false,
    },
    Route {
        method: "POST",
        path: "/api/v1/conversations/direct",
        auth: Auth::User,
        body: Some(r#"{"user_id":{user_id}}"#),
        params: OWNER_ID,
        rows: &[
            (Stranger, Deny(403, ErrorCode::NotFriends)),
            (Another, Allow(200)),
            (Member, Allow(200)),
            (Admin, Allow(200)),
            (Owner, Deny(400, ErrorCode::InvalidInput)),
            (ExMember, Allow(200)),
            (Blocked, Deny(403, ErrorCode::Blocked)),
        ],
        fresh: false,
    },
    Route {
        method: "GET",
        path: "/api/v1/conversations/{id}",
        auth: Auth::User,
        body: None,
        params: GROUP_ID,
        rows: GROUP_MEMBERS_200,
        fresh: false,
    },
    Route {
        method: "GET",
        path: "/api/v1/conversations/{id}",
        auth: Auth::User,
        body: None,
        params: DIRECT_ID,
        rows: DIRECT_PEERS_200,
        fresh: false,
    },
    Route {
        method: "GET",
        path: "/api/v1/conversations/{id}",
        auth: Auth::User,
        body: None,
        params: BLOCKED_DIRECT_ID,
        rows: BLOCKED_PEERS_200,
        fresh: false,
    },
    Route {
        method: "GET",
        path: "/api/v1/conversations/{id}/messages",
        auth: Auth::User,
        body: None,
        params: GROUP_ID,
        rows: GROUP_MEMBERS_200,
        fresh: false,
    },
    Route {
        method: "GET",
        path: "/api/v1/conversations/{id}/messages",
        auth: Auth::User,
        body: None,
        params: DIRECT_ID,
        rows: DIRECT_PEERS_200,
        fresh: false,
    },
    Route {
        method: "GET",
        path: "/api/v1/conversations/{id}/messages",
        auth: Auth::User,
        body: None,
        params: BLOCKED_DIRECT_ID,
        rows: BLOCKED_PEERS_200,
        fresh: false,
    },
    Route {
        method: "POST",
        path: "/api/v1/conversations/{id}/read",
        auth: Auth::User,
        body: Some(r#"{"seq":1}"#),
        params: GROUP_ID,
        rows: GROUP_MEMBERS_200,
        fresh: false,
    },
    Route {
        method: "POST",
        path: "/api/v1/conversations/{id}/read",
        auth: Auth::User,
        body: Some(r#"{"seq":1}"#),
        params: DIRECT_ID,
        rows: DIRECT_PEERS_200,
        fresh: false,
    },
    Route {
        method: "POST",
        path: "/api/v1/conversations/{id}/read",
        auth: Auth::User,
        body: Some(r#"{"seq":1}"#),
        params: BLOCKED_DIRECT_ID,
        rows: BLOCKED_PEERS_200,
        fresh: false,
    },
    // ----- groups (§4.7) -----
    Route {
        method: "POST",
        path: "/api/v1/groups",
        auth: Auth::User,
        body: Some(r#"{"name":"probe","member_ids":[{user_id}]}"#),
        params: OWNER_ID,
        rows: &[
            (Stranger, Deny(403, ErrorCode::NotFriends)),
            (Another, Allow(201)),
            (Member, Allow(201)),
            (Admin, Allow(201)),
            // The caller's own id is ignored.
            (Owner, Allow(201)),
            (ExMember, Allow(201)),
            // Groups are not affected by blocks (§4.5).
            (Blocked, Allow(201)),
        ],
        fresh: false,
    },
    Route {
        method: "PATCH",
        path: "/api/v1/groups/{id}",
        auth: Auth::User,
        body: Some(r#"{"name":"renamed"}"#),
        params: GROUP_ID,
        rows: OWNER_OR_ADMIN,
        fresh: false,
    },
    Route {
        method: "PATCH",
        path: "/api/v1/groups/{id}",
        auth: Auth::User,
        body: Some(r#"{"name":"renamed"}"#),
        params: DIRECT_ID,
        rows: DIRECT_HAS_NO_GROUP_SETTINGS,
        fresh: false,
    },
    Route {
        method: "DELETE",
        path: "/api/v1/groups/{id}",
        auth: Auth::User,
        body: None,
        params: GROUP_ID,
        rows: OWNER_ONLY,
        fresh: false,
    },
    Route {
        method: "POST",
        path: "/api/v1/groups/{id}/members",
        auth: Auth::User,
        body: Some(r#"{"user_ids":[{user_id}]}"#),
        // The one added is a friend of the owner and of the admin, as adding requires.
        params: &[("{id}", Group), ("{user_id}", User(Another))],
        rows: OWNER_OR_ADMIN,
        // Once added, adding again is a conflict.
        fresh: true,
    },
    Route {
        method: "DELETE",
        path: "/api/v1/groups/{id}/members/{user_id}",
        auth: Auth::User,
        body: None,
        params: GROUP_AND_MEMBER,
        rows: OWNER_OR_ADMIN,
        fresh: true,
    },
    Route {
        method: "PUT",
        path: "/api/v1/groups/{id}/members/{user_id}/role",
        auth: Auth::User,
        body: Some(r#"{"role":"admin"}"#),
        params: GROUP_AND_MEMBER,
        rows: OWNER_ONLY,
        fresh: false,
    },
    Route {
        method: "POST",
        path: "/api/v1/groups/{id}/transfer",
        auth: Auth::User,
        body: Some(r#"{"user_id":{user_id}}"#),
        params: GROUP_AND_MEMBER,
        rows: OWNER_ONLY,
        fresh: false,
    },
    Route {
        method: "POST",
        path: "/api/v1/groups/{id}/leave",
        auth: Auth::User,
        body: None,
        params: GROUP_ID,
        rows: &[
            (Stranger, Hidden),
            (Another, Hidden),
            (Member, Allow(204)),
            (Admin, Allow(204)),
            (Owner, Deny(403, ErrorCode::Forbidden)),
            (ExMember, Hidden),
            (Blocked, Allow(204)),
        ],
        fresh: false,
    },
    Route {
        method: "POST",
        path: "/api/v1/groups/{id}/leave",
        auth: Auth::User,
        body: None,
        params: DIRECT_ID,
        rows: DIRECT_HAS_NO_GROUP_SETTINGS,
        fresh: false,
    },
    // ----- the admin API (§4.9): the shared secret only -----
    Route {
        method: "POST",
        path: "/api/v1/admin/users",
        auth: Auth::Admin,
        body: Some(r#"{"usernames":["{username}"],"password":"correct horse battery"}"#),
        params: &[("{username}", Target::FreshUsername)],
        rows: NOT_FOR_USERS,
        fresh: false,
    },
    Route {
        method: "POST",
        path: "/api/v1/admin/friendships",
        auth: Auth::Admin,
        body: Some(r#"{"pairs":[[{user_id},{other}]]}"#),
        params: &[("{user_id}", User(Owner)), ("{other}", User(Stranger))],
        rows: NOT_FOR_USERS,
        fresh: false,
    },
    Route {
        method: "POST",
        path: "/api/v1/admin/groups",
        auth: Auth::Admin,
        body: Some(r#"{"owner_id":{user_id},"name":"seeded","member_ids":[{other}]}"#),
        params: &[("{user_id}", User(Owner)), ("{other}", User(Stranger))],
        rows: NOT_FOR_USERS,
        fresh: false,
    },
    // ----- uploads and avatars (§4.10) -----
    Route {
        method: "POST",
        path: "/api/v1/uploads",
        auth: Auth::User,
        body: Some("any bytes at all"),
        params: &[],
        rows: ANY_USER_201,
        fresh: false,
    },
    // The owner's picture in the group: its members may fetch it, nobody else learns it
    // exists (an ex-member included).
    Route {
        method: "GET",
        path: "/api/v1/uploads/{id}",
        auth: Auth::User,
        body: None,
        params: &[("{id}", Target::Upload)],
        rows: GROUP_MEMBERS_200,
        fresh: false,
    },
    Route {
        method: "GET",
        path: "/api/v1/uploads/{id}/thumbnail",
        auth: Auth::User,
        body: None,
        params: &[("{id}", Target::Upload)],
        rows: GROUP_MEMBERS_200,
        fresh: false,
    },
    Route {
        method: "PUT",
        path: "/api/v1/me/avatar",
        auth: Auth::User,
        body: Some(PICTURE),
        params: &[],
        rows: ANY_USER,
        fresh: false,
    },
    Route {
        method: "DELETE",
        path: "/api/v1/me/avatar",
        auth: Auth::User,
        body: None,
        params: &[],
        rows: ANY_USER,
        fresh: false,
    },
    Route {
        method: "PUT",
        path: "/api/v1/groups/{id}/avatar",
        auth: Auth::User,
        body: Some(PICTURE),
        params: GROUP_ID,
        rows: OWNER_OR_ADMIN,
        fresh: false,
    },
    Route {
        method: "PUT",
        path: "/api/v1/groups/{id}/avatar",
        auth: Auth::User,
        body: Some(PICTURE),
        params: DIRECT_ID,
        rows: DIRECT_HAS_NO_GROUP_SETTINGS,
        fresh: false,
    },
    // Public: anyone with the URL.
    Route {
        method: "GET",
        path: "/api/v1/avatars/{key}",
        auth: Auth::Public,
        body: None,
        params: &[("{key}", Target::Avatar)],
        rows: ANY_USER,
        fresh: false,
    },
];

impl Route {
    /// Every row, the ones that follow from `auth` included.
    fn all_rows(&self) -> Vec<(Who, Expect)> {
        let no_user = NO_USER.iter().map(|&who| {
            let expect = match (self.auth, who) {
                (Auth::Public, _) => match self.rows.iter().find(|(w, _)| *w == Stranger) {
                    // A public route answers a caller with a token, good or bad, as one
                    // without: the same as the stranger's row.
                    Some((_, expect)) => *expect,
                    None => NotApplicable("public route without a user row"),
                },
                (Auth::Admin, Who::AdminSecret) => Allow(match self.path {
                    "/api/v1/admin/friendships" => 200,
                    _ => 201,
                }),
                _ => Expect::Unauthorized,
            };
            (who, expect)
        });
        no_user.chain(self.rows.iter().copied()).collect()
    }
}

/// Users, ids and tokens of one world.
struct World {
    base_url: String,
    tokens: BTreeMap<Who, String>,
    ids: BTreeMap<Who, UserId>,
    names: BTreeMap<Who, String>,
    group: ConversationId,
    direct: ConversationId,
    blocked_direct: ConversationId,
    request: FriendRequestId,
    upload: String,
    avatar_key: String,
}

static WORLDS: AtomicUsize = AtomicUsize::new(0);
static FRESH_NAMES: AtomicUsize = AtomicUsize::new(0);

impl World {
    async fn build(server: &TestServer) -> World {
        let n = WORLDS.fetch_add(1, Ordering::Relaxed);
        let admin = AdminClient::new(&server.base_url, ADMIN_TOKEN).expect("admin client");
        let mut names: BTreeMap<Who, String> = USERS
            .iter()
            .map(|who| (*who, format!("w{n}_{}", format!("{who:?}").to_lowercase())))
            .collect();
        let revoked_name = format!("w{n}_gone");
        let mut usernames: Vec<String> = names.values().cloned().collect();
        usernames.push(revoked_name.clone());
        let created = admin
            .create_users(&usernames, PASSWORD, Some("authz"))
            .await
            .expect("seed users");
        let mut ids = BTreeMap::new();
        let mut tokens = BTreeMap::new();
        for user in &created {
            if let Some((who, _)) = names.iter().find(|(_, name)| **name == user.user.username) {
                ids.insert(*who, user.user.id);
                tokens.insert(*who, user.token.clone());
            }
        }
        let gone = created
            .iter()
            .find(|u| u.user.username == revoked_name)
            .expect("the user whose session ends");
        let mut gone_client = server.client().with_token(gone.token.clone());
        gone_client.logout().await.expect("logout");
        tokens.insert(Who::Revoked, gone.token.clone());
        tokens.insert(Who::AdminSecret, ADMIN_TOKEN.to_owned());
        tokens.insert(Who::BadToken, "0".repeat(64));
        names.insert(Who::Revoked, revoked_name);

        let id = |who: Who| ids[&who];
        let directs = admin
            .create_friendships(&[
                [id(Owner), id(Member)],
                [id(Owner), id(Blocked)],
                [id(Owner), id(Admin)],
                [id(Owner), id(ExMember)],
                [id(Owner), id(Another)],
                [id(Admin), id(Another)],
            ])
            .await
            .expect("seed friendships");
        let group = admin
            .create_group(
                id(Owner),
                "authz",
                &[id(Admin), id(Member), id(ExMember), id(Blocked)],
            )
            .await
            .expect("seed group")
            .id;
        let as_user = |who: Who| server.client().with_token(tokens[&who].clone());
        let owner = as_user(Owner);
        owner
            .set_role(group, id(Admin), banter_protocol::model::Role::Admin)
            .await
            .expect("make admin");
        as_user(ExMember).leave_group(group).await.expect("leave");
        owner.block(id(Blocked)).await.expect("block");
        let request = owner
            .send_friend_request(id(Stranger), None)
            .await
            .expect("friend request")
            .id;
        let upload = owner.upload("p.png", picture()).await.expect("upload").id;
        let mut owner_ws = owner.connect().await.expect("connect");
        owner_ws
            .send_frame(&ClientFrame::SendMessage {
                id: "picture".into(),
                conversation_id: group,
                client_msg_id: "picture".into(),
                text: String::new(),
                attachment: Some(Box::new(banter_protocol::frame::AttachmentRequest {
                    upload_id: upload.clone(),
                    kind: banter_protocol::model::AttachmentKind::Image,
                    duration_ms: None,
                })),
            })
            .await
            .expect("send the picture");
        expect_event(&mut owner_ws, |e| {
            matches!(e, ServerEvent::Ack { id, .. } if id == "picture").then_some(())
        })
        .await;
        let avatar_url = owner
            .set_avatar(picture())
            .await
            .expect("avatar")
            .avatar_url
            .expect("avatar url");
        let avatar_key = avatar_url.trim_start_matches("/api/v1/avatars/").to_owned();
        World {
            base_url: server.base_url.clone(),
            tokens,
            ids,
            names,
            group,
            direct: directs[0],
            blocked_direct: directs[1],
            request,
            upload: upload.0,
            avatar_key,
        }
    }

    fn client(&self, who: Who) -> Client {
        let client = Client::new(&self.base_url).expect("client");
        match self.tokens.get(&who) {
            Some(token) => client.with_token(token.clone()),
            None => client,
        }
    }

    /// The text a target stands for in a path or body.
    fn value(&self, target: Target) -> String {
        match target {
            Group => self.group.to_string(),
            Direct => self.direct.to_string(),
            Target::BlockedDirect => self.blocked_direct.to_string(),
            Request => self.request.to_string(),
            User(who) => self.ids[&who].to_string(),
            Username(who) => self.names[&who].clone(),
            Target::FreshUsername => {
                format!("fresh{}", FRESH_NAMES.fetch_add(1, Ordering::Relaxed))
            }
            Target::Upload => self.upload.clone(),
            Target::Avatar => self.avatar_key.clone(),
        }
    }

    /// What stands for "does not exist" in place of `target`.
    fn nowhere(target: Target) -> String {
        match target {
            Username(_) | Target::FreshUsername => NOBODY.to_owned(),
            // Well-formed ids that nothing has.
            Target::Upload => "0123456789abcdef0123456789abcdef".to_owned(),
            Target::Avatar => "0".repeat(64),
            _ => NOWHERE.to_string(),
        }
    }

    /// The route's path and body, with its first placeholder given by `first` (or the
    /// world's value when `None`).
    fn fill(&self, route: &Route, first: Option<String>) -> (String, Option<String>) {
        let (mut path, mut body) = (route.path.to_owned(), route.body.map(str::to_owned));
        for (i, (placeholder, target)) in route.params.iter().enumerate() {
            let value = match (&first, i) {
                (Some(value), 0) => value.clone(),
                _ => self.value(*target),
            };
            path = path.replace(placeholder, &value);
            body = body.map(|b| b.replace(placeholder, &value));
        }
        (path, body)
    }
}

async fn call(client: &Client, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let response = match body {
        Some(PICTURE) => client.raw_bytes(method, path, picture()).await,
        _ => client.raw(method, path, body).await,
    }
    .expect("request");
    (response.status, response.body)
}

fn code_of(body: &str) -> Option<ErrorCode> {
    serde_json::from_str::<banter_protocol::ErrorBody>(body)
        .ok()
        .map(|b| b.code)
}

/// Probes one row; returns a description of what went wrong, if anything.
async fn probe(world: &World, route: &Route, who: Who, expect: Expect) -> Option<String> {
    let client = world.client(who);
    let (path, body) = world.fill(route, None);
    let (status, text) = call(&client, route.method, &path, body.as_deref()).await;
    let got = format!("{status} {text}");
    let wrong = |want: String| Some(format!("wanted {want}, got {got}"));
    match expect {
        Allow(want) if status != want => wrong(format!("{want}")),
        Allow(_) => None,
        Deny(want, code) if status != want || code_of(&text) != Some(code) => {
            wrong(format!("{want} {}", code.as_str()))
        }
        Deny(..) => None,
        Expect::Unauthorized | Hidden => {
            let (want_status, want_code) = match expect {
                Hidden => (404, ErrorCode::NotFound),
                _ => (401, ErrorCode::Unauthorized),
            };
            if status != want_status || code_of(&text) != Some(want_code) {
                return wrong(format!("{want_status} {}", want_code.as_str()));
            }
            // The same bytes for an id that does not exist: nothing tells the two apart.
            let (_, target) = route.params.first()?;
            if matches!(target, Target::FreshUsername) {
                return None;
            }
            let (path, body) = world.fill(route, Some(World::nowhere(*target)));
            let (status, nowhere) = call(&client, route.method, &path, body.as_deref()).await;
            (status != want_status || nowhere != text).then(|| {
                format!("an existence oracle: {got} for the real id, {status} {nowhere} for none")
            })
        }
        NotApplicable(_) => None,
    }
}

/// The (method, path) pairs of the served OpenAPI document.
async fn documented_routes(server: &TestServer) -> BTreeSet<(String, String)> {
    let response = server
        .client()
        .raw_get("/api/v1/openapi.json")
        .await
        .expect("openapi");
    assert_eq!(response.status, 200);
    let doc: serde_json::Value = serde_json::from_str(&response.body).expect("openapi is JSON");
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if ["get", "put", "post", "delete", "patch", "head", "options"]
                .contains(&method.as_str())
            {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    routes
}

/// The route summary table of docs/protocol.md §4.1: (method, path) → (auth, success status).
fn documented_summary() -> BTreeMap<(String, String), (String, u16)> {
    let doc = include_str!("../../../../docs/protocol.md");
    let mut routes = BTreeMap::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | METHOD | `path` | auth | body | status ... |
        if cells.len() < 7 || !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&cells[1]) {
            continue;
        }
        let path = cells[2].trim_matches('`');
        let status = cells[5]
            .split_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("§4.1: no status in {line:?}"));
        routes.insert(
            (cells[1].to_owned(), path.to_owned()),
            (cells[3].to_owned(), status),
        );
    }
    assert!(routes.len() > 30, "§4.1 parsed: {routes:?}");
    routes
}

async fn server() -> Option<TestServer> {
    TestServer::start_with(|config| config.admin_token = Some(AdminToken::new(ADMIN_TOKEN))).await
}

#[tokio::test]
async fn every_route_answers_every_caller_as_documented() {
    let Some(server) = server().await else {
        return;
    };

    // Completeness: every documented route has a row for every caller, and every row is a
    // documented route (a typo in the table would otherwise test nothing).
    let documented = documented_routes(&server).await;
    let mut covered: BTreeMap<(String, String), BTreeSet<Who>> = BTreeMap::new();
    for route in ROUTES {
        let key = (route.method.to_owned(), route.path.to_owned());
        assert!(
            documented.contains(&key),
            "{key:?} is in the table but not in openapi.json"
        );
        let whos = covered.entry(key).or_default();
        whos.extend(route.all_rows().iter().map(|(who, _)| *who));
    }
    for key in &documented {
        let whos = covered.get(key).cloned().unwrap_or_default();
        let missing: Vec<Who> = EVERYONE
            .iter()
            .filter(|who| !whos.contains(who))
            .copied()
            .collect();
        assert!(
            missing.is_empty(),
            "{key:?} has no row for {missing:?}: add rows for the new route to ROUTES"
        );
    }

    // The route summary of docs/protocol.md §4.1 names the same routes, with the auth and
    // the success status the table expects.
    let summary = documented_summary();
    let summarized: BTreeSet<(String, String)> = summary
        .keys()
        .filter(|(_, path)| path != "/api/v1/openapi.json" && path != "/healthz")
        .cloned()
        .collect();
    assert_eq!(
        summarized, documented,
        "§4.1 and openapi.json list other routes"
    );
    for route in ROUTES {
        let (auth, success) = &summary[&(route.method.to_owned(), route.path.to_owned())];
        let want_auth = match route.auth {
            Auth::Public => "no",
            Auth::User => "yes",
            Auth::Admin => "admin",
        };
        assert_eq!(
            auth, want_auth,
            "{} {}: auth in §4.1",
            route.method, route.path
        );
        for (who, expect) in route.all_rows() {
            if let Allow(status) = expect {
                assert_eq!(
                    status, *success,
                    "{} {} as {who:?}: §4.1 says {success}",
                    route.method, route.path
                );
            }
        }
    }

    let mut failures = String::new();
    let (mut rows, mut probes, mut not_applicable) = (0, 0, 0);
    for route in ROUTES {
        let all = route.all_rows();
        // Refusals first, in one world: they must change nothing the allowed rows rely on.
        let shared = World::build(&server).await;
        for (who, expect) in &all {
            if let NotApplicable(reason) = expect {
                assert!(
                    !reason.is_empty(),
                    "{} {} {who:?}: say why",
                    route.method,
                    route.path
                );
                not_applicable += 1;
            }
        }
        let (allowed, refused): (Vec<_>, Vec<_>) = all
            .iter()
            .filter(|(_, expect)| !matches!(expect, NotApplicable(_)))
            .partition(|(_, expect)| matches!(expect, Allow(_)));
        for &(who, expect) in refused.iter().chain(allowed.iter()) {
            let fresh_world;
            let world = if route.fresh && matches!(expect, Allow(_)) {
                fresh_world = World::build(&server).await;
                &fresh_world
            } else {
                &shared
            };
            rows += 1;
            probes += 1 + usize::from(matches!(expect, Hidden | Expect::Unauthorized));
            if let Some(failure) = probe(world, route, who, expect).await {
                let target = route.params.first().map(|(_, t)| *t);
                let _ = writeln!(
                    failures,
                    "{} {} ({target:?}) as {who:?}: {failure}",
                    route.method, route.path
                );
            }
        }
    }
    eprintln!(
        "authz: {} table entries, {rows} rows probed with {probes} requests, \
         {not_applicable} not applicable, {} documented routes",
        ROUTES.len(),
        documented.len()
    );
    assert!(failures.is_empty(), "authorization table:\n{failures}");
}

#[tokio::test]
async fn lists_show_only_what_the_caller_is_in() {
    let Some(server) = server().await else {
        return;
    };
    let world = World::build(&server).await;
    let secret = [world.group, world.direct, world.blocked_direct];
    let members = |conversation: ConversationId| -> &'static [Who] {
        match conversation {
            c if c == world.group => &[Member, Admin, Owner, Blocked],
            c if c == world.direct => &[Member, Owner],
            _ => &[Owner, Blocked],
        }
    };
    for who in USERS {
        let listed: BTreeSet<ConversationId> = world
            .client(who)
            .conversations()
            .await
            .expect("list")
            .iter()
            .map(|c| c.id)
            .collect();
        for conversation in secret {
            assert_eq!(
                listed.contains(&conversation),
                members(conversation).contains(&who),
                "{who:?} and conversation {conversation}"
            );
        }
        // The owner's pending request is seen by its two ends only.
        let requests = world.client(who).friend_requests().await.expect("requests");
        let sees_request = requests
            .incoming
            .iter()
            .chain(&requests.outgoing)
            .any(|r| r.id == world.request);
        assert_eq!(sees_request, matches!(who, Owner | Stranger), "{who:?}");
        // The owner's block is on the owner's list only.
        let blocks = world.client(who).blocks().await.expect("blocks");
        assert_eq!(
            blocks.iter().any(|u| u.id == world.ids[&Blocked]),
            who == Owner,
            "{who:?}"
        );
    }
}

// ----- WebSocket -----

/// What a frame gets.
#[derive(Debug, Clone, Copy)]
enum WsExpect {
    /// The success reply (`ack`, `done`, `synced`, `pong`).
    Reply,
    /// `error` `not_found`, identical to the one for a nonexistent conversation.
    Hidden,
    /// `error` with this code.
    Deny(ErrorCode),
    /// No reply at all, not even an error (`typing`).
    Silent,
}

/// Where a frame points.
#[derive(Debug, Clone, Copy)]
enum WsTarget {
    Group,
    Direct,
    BlockedDirect,
    /// No conversation (`ping`).
    None,
}

struct WsRows {
    target: WsTarget,
    /// For `recall_message`: whose fresh message in the target is recalled.
    author: Option<Who>,
    rows: &'static [(Who, WsExpect)],
}

const WS_GROUP_MEMBERS: &[(Who, WsExpect)] = &[
    (Stranger, WsExpect::Hidden),
    (Another, WsExpect::Hidden),
    (Member, WsExpect::Reply),
    (Admin, WsExpect::Reply),
    (Owner, WsExpect::Reply),
    (ExMember, WsExpect::Hidden),
    (Blocked, WsExpect::Reply),
];
const WS_DIRECT_PEERS: &[(Who, WsExpect)] = &[
    (Stranger, WsExpect::Hidden),
    (Another, WsExpect::Hidden),
    (Member, WsExpect::Reply),
    (Admin, WsExpect::Hidden),
    (Owner, WsExpect::Reply),
    (ExMember, WsExpect::Hidden),
    (Blocked, WsExpect::Hidden),
];
const WS_BLOCKED_PEERS: &[(Who, WsExpect)] = &[
    (Stranger, WsExpect::Hidden),
    (Another, WsExpect::Hidden),
    (Member, WsExpect::Hidden),
    (Admin, WsExpect::Hidden),
    (Owner, WsExpect::Reply),
    (ExMember, WsExpect::Hidden),
    (Blocked, WsExpect::Reply),
];

/// The rows of each client frame. The match has no `_` arm: a new `ClientFrame` variant
/// does not compile until it has rows here.
fn frame_rows(frame: &ClientFrame) -> Vec<WsRows> {
    let on = |target, rows| WsRows {
        target,
        author: None,
        rows,
    };
    match frame {
        ClientFrame::SendMessage { .. } => vec![
            on(WsTarget::Group, WS_GROUP_MEMBERS),
            on(WsTarget::Direct, WS_DIRECT_PEERS),
            on(
                WsTarget::BlockedDirect,
                &[
                    (Stranger, WsExpect::Hidden),
                    (Another, WsExpect::Hidden),
                    (Member, WsExpect::Hidden),
                    (Admin, WsExpect::Hidden),
                    // Refused both ways round (§4.5).
                    (Owner, WsExpect::Deny(ErrorCode::Blocked)),
                    (ExMember, WsExpect::Hidden),
                    (Blocked, WsExpect::Deny(ErrorCode::Blocked)),
                ],
            ),
        ],
        ClientFrame::RecallMessage { .. } => vec![
            WsRows {
                target: WsTarget::Group,
                author: Some(Member),
                rows: &[
                    (Stranger, WsExpect::Hidden),
                    (Another, WsExpect::Hidden),
                    // Their own, within the window.
                    (Member, WsExpect::Reply),
                    // A group's admins and owner may recall anyone's.
                    (Admin, WsExpect::Reply),
                    (Owner, WsExpect::Reply),
                    (ExMember, WsExpect::Hidden),
                    // Another user's message, as a plain member.
                    (Blocked, WsExpect::Deny(ErrorCode::Forbidden)),
                ],
            },
            WsRows {
                target: WsTarget::Direct,
                author: Some(Member),
                rows: &[
                    (Stranger, WsExpect::Hidden),
                    (Another, WsExpect::Hidden),
                    (Member, WsExpect::Reply),
                    // In a direct conversation only one's own (§5.6.2).
                    (Owner, WsExpect::Deny(ErrorCode::Forbidden)),
                    (Admin, WsExpect::Hidden),
                    (ExMember, WsExpect::Hidden),
                    (Blocked, WsExpect::Hidden),
                ],
            },
        ],
        ClientFrame::MarkRead { .. } => vec![
            on(WsTarget::Group, WS_GROUP_MEMBERS),
            on(WsTarget::Direct, WS_DIRECT_PEERS),
            on(WsTarget::BlockedDirect, WS_BLOCKED_PEERS),
        ],
        ClientFrame::Typing { .. } => {
            // No reply either way; that nobody outside hears it is checked by
            // `events_reach_members_only`.
            const SILENT: &[(Who, WsExpect)] = &[
                (Stranger, WsExpect::Silent),
                (Another, WsExpect::Silent),
                (Member, WsExpect::Silent),
                (Admin, WsExpect::Silent),
                (Owner, WsExpect::Silent),
                (ExMember, WsExpect::Silent),
                (Blocked, WsExpect::Silent),
            ];
            vec![on(WsTarget::Group, SILENT), on(WsTarget::Direct, SILENT)]
        }
        ClientFrame::Sync { .. } => vec![
            on(WsTarget::Group, WS_GROUP_MEMBERS),
            on(WsTarget::Direct, WS_DIRECT_PEERS),
            on(WsTarget::BlockedDirect, WS_BLOCKED_PEERS),
        ],
        ClientFrame::Ping { .. } => vec![on(
            WsTarget::None,
            &[
                (Stranger, WsExpect::Reply),
                (Another, WsExpect::Reply),
                (Member, WsExpect::Reply),
                (Admin, WsExpect::Reply),
                (Owner, WsExpect::Reply),
                (ExMember, WsExpect::Reply),
                (Blocked, WsExpect::Reply),
            ],
        )],
    }
}

/// The client frames §5.6 of docs/protocol.md documents, by `type`.
fn documented_frames() -> Vec<String> {
    let doc = include_str!("../../../../docs/protocol.md");
    let section = doc
        .split("### 5.6 Client frames")
        .nth(1)
        .and_then(|rest| rest.split("### 5.7").next())
        .expect("§5.6 of docs/protocol.md");
    section
        .lines()
        .filter_map(|line| line.strip_prefix("#### 5.6."))
        .filter_map(|rest| rest.split('`').nth(1).map(str::to_owned))
        .collect()
}

/// A frame of each documented type, aimed at `conversation` (and `message`).
fn sample(tag: &str, id: &str, conversation: ConversationId, message: MessageId) -> ClientFrame {
    let id = id.to_owned();
    match tag {
        "send_message" => ClientFrame::SendMessage {
            id: id.clone(),
            conversation_id: conversation,
            client_msg_id: id,
            text: "probe".into(),
            attachment: None,
        },
        "recall_message" => ClientFrame::RecallMessage {
            id,
            conversation_id: conversation,
            message_id: message,
        },
        "mark_read" => ClientFrame::MarkRead {
            id,
            conversation_id: conversation,
            seq: 1,
        },
        "typing" => ClientFrame::Typing {
            conversation_id: conversation,
        },
        "sync" => ClientFrame::Sync {
            id,
            conversation_id: conversation,
            after_seq: 0,
            limit: None,
        },
        "ping" => ClientFrame::Ping { id },
        other => panic!("§5.6 documents a `{other}` frame that this test has no sample of"),
    }
}

/// One user's socket, keeping every event it read.
struct Sock {
    conn: Connection,
    seen: Vec<ServerEvent>,
    pings: usize,
}

impl Sock {
    async fn open(world: &World, who: Who) -> Sock {
        let conn = world.client(who).connect().await.expect("connect");
        Sock {
            conn,
            seen: Vec::new(),
            pings: 0,
        }
    }

    async fn next(&mut self) -> ServerEvent {
        let event = self
            .conn
            .next_event(WAIT)
            .await
            .expect("the server answers");
        self.seen.push(event.clone());
        event
    }

    /// Sends a frame and returns its reply (the first frame carrying its request id).
    async fn request(&mut self, frame: &ClientFrame, id: &str) -> ServerEvent {
        self.conn.send_frame(frame).await.expect("send");
        loop {
            let event = self.next().await;
            if reply_id(&event) == Some(id) {
                return event;
            }
        }
    }

    /// A ping round trip: everything queued for this socket before it has been read.
    async fn barrier(&mut self) {
        self.pings += 1;
        let id = format!("barrier-{}", self.pings);
        let pong = self
            .request(&ClientFrame::Ping { id: id.clone() }, &id)
            .await;
        assert!(matches!(pong, ServerEvent::Pong { .. }), "{pong:?}");
    }
}

fn reply_id(event: &ServerEvent) -> Option<&str> {
    match event {
        ServerEvent::Ack { id, .. }
        | ServerEvent::Done { id }
        | ServerEvent::Synced { id, .. }
        | ServerEvent::Pong { id } => Some(id),
        ServerEvent::Error { id, .. } => id.as_deref(),
        _ => None,
    }
}

/// The conversation an event is about, if any.
fn conversation_of(event: &ServerEvent) -> Option<ConversationId> {
    match event {
        ServerEvent::MessageCreated { message } => Some(message.conversation_id),
        ServerEvent::ReadUpdated {
            conversation_id, ..
        }
        | ServerEvent::TypingStarted {
            conversation_id, ..
        }
        | ServerEvent::ConversationLeft { conversation_id }
        | ServerEvent::Ack {
            conversation_id, ..
        }
        | ServerEvent::Synced {
            conversation_id, ..
        } => Some(*conversation_id),
        ServerEvent::ConversationJoined { conversation } => Some(conversation.id),
        _ => None,
    }
}

struct Sockets {
    socks: BTreeMap<Who, Sock>,
    next_id: usize,
}

impl Sockets {
    async fn open(world: &World) -> Sockets {
        let mut socks = BTreeMap::new();
        for who in USERS {
            socks.insert(who, Sock::open(world, who).await);
        }
        Sockets { socks, next_id: 0 }
    }

    fn id(&mut self) -> String {
        self.next_id += 1;
        format!("r{}", self.next_id)
    }

    /// `who` sends a text to `conversation` and gets its ack; returns the message id.
    async fn send(&mut self, who: Who, conversation: ConversationId) -> MessageId {
        let id = self.id();
        let frame = sample("send_message", &id, conversation, MessageId(0));
        match self.socks.get_mut(&who).unwrap().request(&frame, &id).await {
            ServerEvent::Ack { message_id, .. } => message_id,
            other => panic!("{who:?} could not send: {other:?}"),
        }
    }
}

#[tokio::test]
async fn every_frame_answers_every_caller_as_documented() {
    let Some(server) = server().await else {
        return;
    };

    // The upgrade itself is the REST rule: no session, no socket.
    let world = World::build(&server).await;
    for who in NO_USER {
        let err = world
            .client(who)
            .connect()
            .await
            .expect_err("no socket without a session");
        assert_eq!(
            (err.status(), err.code()),
            (Some(401), Some(ErrorCode::Unauthorized)),
            "{who:?}: {err}"
        );
    }

    let mut sockets = Sockets::open(&world).await;
    let mut failures = String::new();
    let mut rows = 0;
    let documented = documented_frames();
    assert!(
        documented.len() >= 6,
        "§5.6 lists the frames: {documented:?}"
    );
    for tag in &documented {
        let template = sample(tag, "template", world.group, MessageId(0));
        for entry in frame_rows(&template) {
            let conversation = match entry.target {
                WsTarget::Group => world.group,
                WsTarget::Direct => world.direct,
                WsTarget::BlockedDirect => world.blocked_direct,
                WsTarget::None => ConversationId(NOWHERE),
            };
            for &(who, expect) in entry.rows {
                rows += 1;
                // A recall needs a message that is still there to recall.
                let message = match entry.author {
                    Some(author) => sockets.send(author, conversation).await,
                    None => MessageId(0),
                };
                let id = sockets.id();
                let frame = sample(tag, &id, conversation, message);
                let sock = sockets.socks.get_mut(&who).unwrap();
                let failure = match expect {
                    WsExpect::Silent => {
                        sock.conn.send_frame(&frame).await.expect("send");
                        let before = sock.seen.len();
                        sock.barrier().await;
                        sock.seen[before..]
                            .iter()
                            .find(|e| matches!(e, ServerEvent::Error { .. }))
                            .map(|e| format!("wanted no reply, got {e:?}"))
                    }
                    WsExpect::Reply => {
                        let reply = sock.request(&frame, &id).await;
                        matches!(reply, ServerEvent::Error { .. })
                            .then(|| format!("wanted success, got {reply:?}"))
                    }
                    WsExpect::Deny(code) => match sock.request(&frame, &id).await {
                        ServerEvent::Error { code: got, .. } if got == code => None,
                        other => Some(format!("wanted {}, got {other:?}", code.as_str())),
                    },
                    WsExpect::Hidden => {
                        let reply = sock.request(&frame, &id).await;
                        // The same request id at a conversation that does not exist.
                        let nowhere = sample(tag, &id, ConversationId(NOWHERE), message);
                        let none = sock.request(&nowhere, &id).await;
                        match &reply {
                            ServerEvent::Error {
                                code: ErrorCode::NotFound,
                                ..
                            } if reply == none => None,
                            _ => Some(format!(
                                "an existence oracle: {reply:?} for the real id, {none:?} for none"
                            )),
                        }
                    }
                };
                if let Some(failure) = failure {
                    let _ = writeln!(failures, "{tag} ({:?}) as {who:?}: {failure}", entry.target);
                }
            }
        }
    }

    // A message of one conversation named with another the caller is in: as if it did not
    // exist there.
    let foreign = sockets.send(Member, world.direct).await;
    let owner = sockets.socks.get_mut(&Owner).unwrap();
    let real = owner
        .request(
            &sample("recall_message", "foreign", world.group, foreign),
            "foreign",
        )
        .await;
    let none = owner
        .request(
            &sample("recall_message", "foreign", world.group, MessageId(NOWHERE)),
            "foreign",
        )
        .await;
    assert!(
        matches!(
            real,
            ServerEvent::Error {
                code: ErrorCode::NotFound,
                ..
            }
        ) && real == none,
        "recalling another conversation's message: {real:?} vs {none:?}"
    );

    eprintln!(
        "authz: {rows} frame rows for {} frame types",
        documented.len()
    );
    assert!(failures.is_empty(), "frame table:\n{failures}");

    // Nobody heard anything of a conversation they are not in, during all of the above.
    assert_members_only(&world, &mut sockets).await;
}

/// Reads every socket up to a ping round trip and checks that each heard only of the
/// conversations it is in.
async fn assert_members_only(world: &World, sockets: &mut Sockets) {
    let in_conversation = |who: Who, conversation: ConversationId| {
        let members: &[Who] = if conversation == world.group {
            &[Member, Admin, Owner, Blocked]
        } else if conversation == world.direct {
            &[Member, Owner]
        } else if conversation == world.blocked_direct {
            &[Owner, Blocked]
        } else {
            return true;
        };
        members.contains(&who)
    };
    // The friendships `World::build` seeds, and nothing changes them here.
    let friends = |a: Who, b: Who| {
        let pair = [a.min(b), a.max(b)];
        [
            [Member, Owner],
            [Owner, Blocked],
            [Admin, Owner],
            [Owner, ExMember],
            [Another, Owner],
            [Another, Admin],
        ]
        .contains(&pair)
    };
    let who_is = |id: UserId| {
        *world
            .ids
            .iter()
            .find(|(_, user)| **user == id)
            .expect("a user of the world")
            .0
    };
    for (who, sock) in sockets.socks.iter_mut() {
        sock.barrier().await;
        for event in &sock.seen {
            if let Some(conversation) = conversation_of(event) {
                assert!(
                    in_conversation(*who, conversation),
                    "a leak: {who:?} received {event:?}"
                );
            }
            // Presence goes to friends only, a friend request to its two ends only.
            match event {
                ServerEvent::PresenceChanged { user_id, .. } => assert!(
                    friends(*who, who_is(*user_id)),
                    "a leak: {who:?} received {event:?}"
                ),
                ServerEvent::FriendRequestReceived { request }
                | ServerEvent::FriendRequestUpdated { request } => assert!(
                    [request.from.id, request.to.id].contains(&world.ids[who]),
                    "a leak: {who:?} received {event:?}"
                ),
                _ => {}
            }
        }
    }
}

#[tokio::test]
async fn events_reach_members_only() {
    let Some(server) = server().await else {
        return;
    };
    let world = World::build(&server).await;
    let mut sockets = Sockets::open(&world).await;

    // In the group: a message, typing, a read receipt.
    sockets.send(Owner, world.group).await;
    for who in [Member, Stranger, Another, ExMember] {
        // Outsiders' typing is dropped; the member's reaches the others.
        let sock = sockets.socks.get_mut(&who).unwrap();
        sock.conn
            .send_frame(&ClientFrame::Typing {
                conversation_id: world.group,
            })
            .await
            .unwrap();
        sock.barrier().await;
    }
    sockets.send(Owner, world.group).await;
    let id = sockets.id();
    let read = ClientFrame::MarkRead {
        id: id.clone(),
        conversation_id: world.group,
        seq: i64::MAX,
    };
    let done = sockets
        .socks
        .get_mut(&Member)
        .unwrap()
        .request(&read, &id)
        .await;
    assert!(matches!(done, ServerEvent::Done { .. }), "{done:?}");
    // In the direct conversation: a message and a read receipt.
    sockets.send(Member, world.direct).await;
    let id = sockets.id();
    let read = ClientFrame::MarkRead {
        id: id.clone(),
        conversation_id: world.direct,
        seq: i64::MAX,
    };
    sockets
        .socks
        .get_mut(&Owner)
        .unwrap()
        .request(&read, &id)
        .await;

    assert_members_only(&world, &mut sockets).await;

    // The check above can fail: a member did hear each kind of event, before the same
    // barrier, and only from members.
    let admin = &sockets.socks[&Admin].seen;
    let typing_from: BTreeSet<UserId> = admin
        .iter()
        .filter_map(|e| match e {
            ServerEvent::TypingStarted {
                conversation_id,
                user_id,
            } if *conversation_id == world.group => Some(*user_id),
            _ => None,
        })
        .collect();
    assert_eq!(
        typing_from,
        BTreeSet::from([world.ids[&Member]]),
        "only the member's typing reaches the group"
    );
    assert!(admin.iter().any(|e| matches!(e,
        ServerEvent::MessageCreated { message } if message.conversation_id == world.group)));
    assert!(admin.iter().any(|e| matches!(e,
        ServerEvent::ReadUpdated { conversation_id, user_id, .. }
            if *conversation_id == world.group && *user_id == world.ids[&Member])));
    // Sockets open in the order of USERS, so the owner came online after the other user.
    let another = &sockets.socks[&Another].seen;
    assert!(another.iter().any(|e| matches!(e,
        ServerEvent::PresenceChanged { user_id, online: true } if *user_id == world.ids[&Owner])));
    let member = &sockets.socks[&Member].seen;
    assert!(member.iter().any(|e| matches!(e,
        ServerEvent::ReadUpdated { conversation_id, .. } if *conversation_id == world.direct)));
}
