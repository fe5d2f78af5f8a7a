//! Backend-neutral pieces that the queries and the engine share: turning rows into the
//! store's records, the column lists of the wide selects (`friend_request_sql!`,
//! `message_sql!`, `summary_sql!`, each followed by the query's own WHERE clause), the
//! encoding of stream entries, the ids of inserted entries, and the rules for retrying a
//! transaction that lost a race (every backend's transactions go through
//! [`with_retries`]; only PostgreSQL's and MySQL's errors ever match, since SQLite's single
//! writer cannot race).
//!
//! Column order is part of each decoder's contract: queries select the columns named in the
//! doc comment, in that order, starting at the offset they pass. The decoders take any
//! backend's row through [`Columns`], so a query written once decodes once too.

use std::collections::HashMap;
use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};

use banter_protocol::model::{ConversationKind, FriendRequestStatus, Role};
use banter_protocol::{ConversationId, FriendRequestId, MessageId, UserId};
use sqlx::error::BoxDynError;
use sqlx::mysql::{MySqlTypeInfo, MySqlValueRef};
use sqlx::{Decode, MySql, Row, Type};

use crate::stored::{
    decode_media, decode_notice, decode_recall, encode_media, encode_notice, encode_recall,
};
use crate::{
    AttachmentRecord, ConversationRecord, Entry, EntryBody, FriendRequestRecord, MemberRecord,
    Notice, StoreError, StoreResult, UserRecord,
};

/// How many times a transaction that hit a deadlock, a serialization failure or a lost
/// insert race is run in all. Each retry starts from scratch, so a later attempt sees the
/// winner's rows; when every attempt loses, the last error is returned.
pub(crate) const TRANSACTION_ATTEMPTS_MAX: u32 = 5;

/// The column types the decoders need, for the row types of the backends that share them.
pub trait Columns {
    fn int(&self, at: usize) -> Result<i64, sqlx::Error>;
    fn opt_int(&self, at: usize) -> Result<Option<i64>, sqlx::Error>;
    fn text(&self, at: usize) -> Result<String, sqlx::Error>;
    fn opt_text(&self, at: usize) -> Result<Option<String>, sqlx::Error>;
    fn flag(&self, at: usize) -> Result<bool, sqlx::Error>;
}

impl Columns for sqlx::sqlite::SqliteRow {
    fn int(&self, at: usize) -> Result<i64, sqlx::Error> {
        self.try_get(at)
    }
    fn opt_int(&self, at: usize) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(at)
    }
    fn text(&self, at: usize) -> Result<String, sqlx::Error> {
        self.try_get(at)
    }
    fn opt_text(&self, at: usize) -> Result<Option<String>, sqlx::Error> {
        self.try_get(at)
    }
    fn flag(&self, at: usize) -> Result<bool, sqlx::Error> {
        self.try_get(at)
    }
}

impl Columns for sqlx::postgres::PgRow {
    fn int(&self, at: usize) -> Result<i64, sqlx::Error> {
        self.try_get(at)
    }
    fn opt_int(&self, at: usize) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(at)
    }
    fn text(&self, at: usize) -> Result<String, sqlx::Error> {
        self.try_get(at)
    }
    fn opt_text(&self, at: usize) -> Result<Option<String>, sqlx::Error> {
        self.try_get(at)
    }
    fn flag(&self, at: usize) -> Result<bool, sqlx::Error> {
        self.try_get(at)
    }
}

impl Columns for sqlx::mysql::MySqlRow {
    fn int(&self, at: usize) -> Result<i64, sqlx::Error> {
        self.try_get(at)
    }
    fn opt_int(&self, at: usize) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(at)
    }
    fn text(&self, at: usize) -> Result<String, sqlx::Error> {
        Ok(self.try_get::<Text, _>(at)?.0)
    }
    fn opt_text(&self, at: usize) -> Result<Option<String>, sqlx::Error> {
        Ok(self.try_get::<Option<Text>, _>(at)?.map(|text| text.0))
    }
    fn flag(&self, at: usize) -> Result<bool, sqlx::Error> {
        self.try_get(at)
    }
}

/// A MySQL text column. Columns with a `_bin` collation (all of Banter's, so that text
/// compares exactly) carry the protocol's BINARY flag, which sqlx takes for VARBINARY and
/// refuses to decode into `String`; the bytes are UTF-8 all the same, and decoding still
/// fails on any that are not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Text(pub String);

impl Type<MySql> for Text {
    fn type_info() -> MySqlTypeInfo {
        <String as Type<MySql>>::type_info()
    }

    fn compatible(ty: &MySqlTypeInfo) -> bool {
        <String as Type<MySql>>::compatible(ty) || <Vec<u8> as Type<MySql>>::compatible(ty)
    }
}

impl<'r> Decode<'r, MySql> for Text {
    fn decode(value: MySqlValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Text(<String as Decode<'r, MySql>>::decode(value)?))
    }
}

/// Wall-clock now in milliseconds since the Unix epoch. A clock set before 1970 reads as 0
/// rather than failing a send.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The key usernames are unique by: Unicode lowercase, done in Rust so that every backend
/// folds case the same way whatever its collation. Public so that the server's login
/// throttle counts every spelling that reaches the same account as one account.
pub fn username_key(username: &str) -> String {
    username.to_lowercase()
}

/// The unique key of the direct conversation between two users, the same either way round.
pub(crate) fn direct_key(a: UserId, b: UserId) -> String {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    format!("{}:{}", low.0, high.0)
}

pub(crate) fn decode_error(what: impl Into<String>) -> sqlx::Error {
    sqlx::Error::Decode(what.into().into())
}

/// `id, username, nickname, avatar_url, signature`
pub(crate) fn profile_at(row: &impl Columns, at: usize) -> Result<UserRecord, sqlx::Error> {
    Ok(UserRecord {
        id: UserId(row.int(at)?),
        username: row.text(at + 1)?,
        nickname: row.text(at + 2)?,
        avatar_url: row.opt_text(at + 3)?,
        signature: row.opt_text(at + 4)?,
    })
}

pub(crate) fn role_at(row: &impl Columns, at: usize) -> Result<Role, sqlx::Error> {
    parse_role(&row.text(at)?)
}

/// How a role is stored (the `members.role` column, and inside notices); [`parse_role`]
/// reads it back. The store's own spelling, whatever the protocol's is.
pub(crate) fn role_str(role: Role) -> &'static str {
    match role {
        Role::Member => "member",
        Role::Admin => "admin",
        Role::Owner => "owner",
    }
}

pub(crate) fn parse_role(text: &str) -> Result<Role, sqlx::Error> {
    match text {
        "member" => Ok(Role::Member),
        "admin" => Ok(Role::Admin),
        "owner" => Ok(Role::Owner),
        other => Err(decode_error(format!("unknown member role {other:?}"))),
    }
}

pub(crate) fn parse_kind(kind: &str) -> StoreResult<ConversationKind> {
    match kind {
        "direct" => Ok(ConversationKind::Direct),
        "group" => Ok(ConversationKind::Group),
        other => Err(StoreError::Database(decode_error(format!(
            "unknown conversation kind {other:?}"
        )))),
    }
}

/// How a conversation's kind is stored; [`parse_kind`] reads it back.
pub(crate) fn kind_str(kind: ConversationKind) -> &'static str {
    match kind {
        ConversationKind::Direct => "direct",
        ConversationKind::Group => "group",
    }
}

pub(crate) fn status_str(status: FriendRequestStatus) -> &'static str {
    match status {
        FriendRequestStatus::Pending => "pending",
        FriendRequestStatus::Accepted => "accepted",
        FriendRequestStatus::Rejected => "rejected",
        FriendRequestStatus::Cancelled => "cancelled",
    }
}

pub(crate) fn parse_status(text: &str) -> Result<FriendRequestStatus, sqlx::Error> {
    match text {
        "pending" => Ok(FriendRequestStatus::Pending),
        "accepted" => Ok(FriendRequestStatus::Accepted),
        "rejected" => Ok(FriendRequestStatus::Rejected),
        "cancelled" => Ok(FriendRequestStatus::Cancelled),
        other => Err(decode_error(format!(
            "unknown friend request status {other:?}"
        ))),
    }
}

/// SQL selecting friend requests `r` with both profiles, followed by `$tail` (a WHERE
/// clause in the backend's placeholder style); decode with [`friend_request_at`]. A macro
/// so the text stays a `&'static str`.
macro_rules! friend_request_sql {
    ($tail:literal) => {
        concat!(
            "SELECT r.id, r.greeting, r.status, r.created_at_ms, ",
            "f.id, f.username, f.nickname, f.avatar_url, f.signature, ",
            "t.id, t.username, t.nickname, t.avatar_url, t.signature ",
            "FROM friend_requests r ",
            "JOIN users f ON f.id = r.from_id ",
            "JOIN users t ON t.id = r.to_id ",
            $tail
        )
    };
}
pub(crate) use friend_request_sql;

/// SQL selecting whole `messages` rows (no alias), followed by `$tail`; decode with
/// [`entry_at`].
macro_rules! message_columns {
    () => {
        "id, conversation_id, seq, sender_id, client_msg_id, kind, body, recalled, created_at_ms"
    };
}
pub(crate) use message_columns;

macro_rules! message_sql {
    ($tail:literal) => {
        concat!(
            "SELECT ",
            $crate::row::message_columns!(),
            " FROM messages ",
            $tail
        )
    };
}
pub(crate) use message_sql;

/// The columns of [`friend_request_sql`].
pub(crate) fn friend_request_at(row: &impl Columns) -> Result<FriendRequestRecord, sqlx::Error> {
    Ok(FriendRequestRecord {
        id: FriendRequestId(row.int(0)?),
        greeting: row.opt_text(1)?,
        status: parse_status(&row.text(2)?)?,
        created_at_ms: row.int(3)?,
        from: profile_at(row, 4)?,
        to: profile_at(row, 9)?,
    })
}

/// A stream entry's body about to be stored: its `kind` column and its `body` column, the
/// latter in the stored encoding of `stored.rs` for recalls and notices.
pub enum Body {
    Text(String),
    Media {
        caption: String,
        attachment: Box<AttachmentRecord>,
    },
    Recall(MessageId),
    System(Notice),
}

impl Body {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Body::Text(_) => "text",
            Body::Media { .. } => "media",
            Body::Recall(_) => "recall",
            Body::System(_) => "system",
        }
    }

    pub(crate) fn encode(&self) -> Result<String, sqlx::Error> {
        match self {
            Body::Text(text) => Ok(text.clone()),
            Body::Media {
                caption,
                attachment,
            } => encode_media(caption, attachment),
            Body::Recall(target) => encode_recall(*target),
            Body::System(notice) => encode_notice(notice),
        }
    }

    /// The body a freshly appended entry shows (never recalled yet).
    pub(crate) fn into_entry_body(self) -> EntryBody {
        match self {
            Body::Text(text) => EntryBody::Text {
                text,
                recalled: false,
            },
            Body::Media {
                caption,
                attachment,
            } => EntryBody::Media {
                caption,
                attachment: Some(attachment),
                recalled: false,
            },
            Body::Recall(target) => EntryBody::Recall { target },
            Body::System(notice) => EntryBody::Notice(notice),
        }
    }
}

/// An entry about to be appended.
pub struct Draft {
    pub sender: UserId,
    pub client_msg_id: Option<String>,
    pub body: Body,
}

impl Draft {
    /// A system notice made by `by`.
    pub(crate) fn notice(by: UserId, notice: Notice) -> Draft {
        Draft {
            sender: by,
            client_msg_id: None,
            body: Body::System(notice),
        }
    }
}

/// `id, conversation_id, seq, sender_id, client_msg_id, kind, body, recalled, created_at_ms`
pub(crate) fn entry_at(row: &impl Columns, at: usize) -> Result<Entry, sqlx::Error> {
    let kind = row.text(at + 5)?;
    let body = row.text(at + 6)?;
    let body = match kind.as_str() {
        "text" => EntryBody::Text {
            text: body,
            recalled: row.flag(at + 7)?,
        },
        "media" => {
            let recalled = row.flag(at + 7)?;
            match decode_media(&body)? {
                Some((caption, attachment)) if !recalled => EntryBody::Media {
                    caption,
                    attachment: Some(Box::new(attachment)),
                    recalled,
                },
                _ => EntryBody::Media {
                    caption: String::new(),
                    attachment: None,
                    recalled: true,
                },
            }
        }
        "recall" => EntryBody::Recall {
            target: decode_recall(&body)?,
        },
        "system" => EntryBody::Notice(decode_notice(&body)?),
        other => return Err(decode_error(format!("unknown message kind {other:?}"))),
    };
    Ok(Entry {
        id: MessageId(row.int(at)?),
        conversation_id: ConversationId(row.int(at + 1)?),
        seq: row.int(at + 2)?,
        sender: UserId(row.int(at + 3)?),
        client_msg_id: row.opt_text(at + 4)?,
        created_at_ms: row.int(at + 8)?,
        body,
    })
}

/// SQL selecting conversation summaries `c` of member `m`, followed by `$where` (a WHERE
/// clause in the backend's placeholder style); decode with [`summary_at`]. The last message
/// is the entry at `last_seq`; the peer is the other member of a direct conversation.
macro_rules! summary_sql {
    ($where:literal) => {
        concat!(
            "SELECT c.id, c.kind, c.name, c.last_seq, c.last_activity_ms, m.role, m.read_seq, ",
            "(SELECT COUNT(*) FROM members mc WHERE mc.conversation_id = c.id), ",
            "(SELECT COUNT(*) FROM messages x WHERE x.conversation_id = c.id ",
            " AND x.seq > m.read_seq AND x.kind IN ('text', 'media') AND NOT x.recalled ",
            " AND x.sender_id <> m.user_id), ",
            "p.id, p.username, p.nickname, p.avatar_url, p.signature, ",
            "l.id, l.conversation_id, l.seq, l.sender_id, l.client_msg_id, l.kind, l.body, ",
            "l.recalled, l.created_at_ms, c.avatar_url ",
            "FROM members m ",
            "JOIN conversations c ON c.id = m.conversation_id ",
            "LEFT JOIN members pm ON c.kind = 'direct' AND pm.conversation_id = c.id ",
            " AND pm.user_id <> m.user_id ",
            "LEFT JOIN users p ON p.id = pm.user_id ",
            "LEFT JOIN messages l ON l.conversation_id = c.id AND l.seq = c.last_seq ",
            $where,
            " ORDER BY c.last_activity_ms DESC, c.id DESC"
        )
    };
}
pub(crate) use summary_sql;

/// The columns of the backends' summary query: `c.id, c.kind, c.name, c.last_seq,
/// c.last_activity_ms, m.role, m.read_seq`, the member count, the unread count, the peer's
/// profile (9.., NULL unless direct), the last message (14.., NULL if none) and the
/// group's avatar (23).
pub(crate) fn summary_at(row: &impl Columns) -> StoreResult<ConversationRecord> {
    let peer_id = row.opt_int(9)?;
    let last_id = row.opt_int(14)?;
    Ok(ConversationRecord {
        id: ConversationId(row.int(0)?),
        kind: parse_kind(&row.text(1)?)?,
        name: row.opt_text(2)?,
        avatar_url: row.opt_text(23)?,
        last_seq: row.int(3)?,
        last_activity_ms: row.int(4)?,
        my_role: role_at(row, 5)?,
        read_seq: row.int(6)?,
        member_count: count(row.int(7)?),
        unread_count: count(row.int(8)?),
        peer: peer_id.map(|_| profile_at(row, 9)).transpose()?,
        last_entry: last_id.map(|_| entry_at(row, 14)).transpose()?,
    })
}

/// `id, username, nickname, avatar_url, signature, role, read_seq, joined_at_ms`
pub(crate) fn member_at(row: &impl Columns) -> Result<MemberRecord, sqlx::Error> {
    Ok(MemberRecord {
        user: profile_at(row, 0)?,
        role: role_at(row, 5)?,
        read_seq: row.int(6)?,
        joined_at_ms: row.int(7)?,
    })
}

/// A count from SQL as a `u32`, saturating rather than wrapping.
pub(crate) fn count(value: i64) -> u32 {
    u32::try_from(value.max(0)).unwrap_or(u32::MAX)
}

/// `None` keeps a field, `Some("")` clears it: (whether to write, the value to write).
pub(crate) fn clearable(value: Option<String>) -> (bool, Option<String>) {
    match value {
        None => (false, None),
        Some(text) if text.is_empty() => (true, None),
        Some(text) => (true, Some(text)),
    }
}

/// Gives each of `n` sends its own copy of a failure that sank the whole batch, since
/// driver errors cannot be cloned. The first send gets the original error.
pub(crate) fn batch_failure<T>(error: StoreError, n: usize) -> Vec<StoreResult<T>> {
    let text = error.to_string();
    let mut results = Vec::with_capacity(n);
    results.push(Err(error));
    while results.len() < n {
        results.push(Err(StoreError::Database(sqlx::Error::Protocol(format!(
            "the batch failed: {text}"
        )))));
    }
    results
}

/// An entry about to be inserted at the seq the engine gave it.
pub struct NewEntry {
    pub conversation: ConversationId,
    pub seq: i64,
    pub draft: Draft,
}

/// The ids of `entries`, in their order, from the `(conversation_id, seq, id)` rows an
/// insert reported in any order (`RETURNING` promises none). An entry without a row is an
/// error: the insert must have written every one.
pub(crate) fn ids_in_order(
    entries: &[NewEntry],
    rows: impl IntoIterator<Item = (i64, i64, i64)>,
) -> StoreResult<Vec<MessageId>> {
    let ids: HashMap<(i64, i64), i64> = rows
        .into_iter()
        .map(|(conversation, seq, id)| ((conversation, seq), id))
        .collect();
    entries
        .iter()
        .map(|entry| {
            ids.get(&(entry.conversation.0, entry.seq))
                .map(|&id| MessageId(id))
                .ok_or_else(|| {
                    StoreError::Database(decode_error(format!(
                        "no id for the entry at seq {} of conversation {}",
                        entry.seq, entry.conversation.0
                    )))
                })
        })
        .collect()
}

/// Why every send into a direct conversation is refused.
#[derive(Clone, Copy)]
pub(crate) enum Refusal {
    Blocked,
    NotFriends,
}

impl From<Refusal> for StoreError {
    fn from(refusal: Refusal) -> StoreError {
        match refusal {
            Refusal::Blocked => StoreError::Blocked,
            Refusal::NotFriends => StoreError::NotFriends,
        }
    }
}

/// Which lost races are worth running the transaction again for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Deadlocks and serialization failures only.
    Conflicts,
    /// Also unique violations: the transaction checks for the row before inserting it, so
    /// a violation means another writer inserted it in between, and a rerun finds it.
    ConflictsAndInsertRaces,
}

/// Whether `error` is a deadlock or serialization failure (PostgreSQL `40001`, `40P01`;
/// MySQL/MariaDB 1213 deadlock, 1205 lock wait timeout) or, with
/// [`Retry::ConflictsAndInsertRaces`], a unique violation.
fn should_retry(error: &StoreError, retry: Retry) -> bool {
    let StoreError::Database(sqlx::Error::Database(db)) = error else {
        return false;
    };
    if retry == Retry::ConflictsAndInsertRaces && db.is_unique_violation() {
        return true;
    }
    if let Some(mysql) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return matches!(mysql.number(), MYSQL_DEADLOCK | MYSQL_LOCK_WAIT_TIMEOUT);
    }
    matches!(db.code().as_deref(), Some("40001" | "40P01"))
}

/// Whether the database refused a statement because of the data in it (PostgreSQL and
/// SQLite SQLSTATE-style classes 22 "data exception" and 23 "integrity constraint
/// violation", MySQL's errors about values and duplicate keys) rather than because it was
/// unreachable, busy or lost a race. Rerunning the same rows gives the same refusal.
pub(crate) fn is_row_refusal(error: &StoreError) -> bool {
    let StoreError::Database(sqlx::Error::Database(db)) = error else {
        return false;
    };
    if should_retry(error, Retry::Conflicts) {
        return false;
    }
    if let Some(mysql) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        // 1062 duplicate key, 1366 incorrect string value, 1406 data too long,
        // 1264 out of range, 1292 truncated value, 1452 foreign key. (A NULL where none
        // is allowed, 1048, is a bug in our SQL, not something a row can bring.)
        return matches!(mysql.number(), 1062 | 1366 | 1406 | 1264 | 1292 | 1452);
    }
    if let Some(writer) = db.try_downcast_ref::<crate::sqlite::WriterError>() {
        return writer.is_refusal();
    }
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // SQLite reports constraint failures (19), too long or too big values (18) and
        // type mismatches (20). (A bind index out of range, 25, is a bug in our SQL.)
        return db.is_unique_violation()
            || db.is_foreign_key_violation()
            || db.is_check_violation()
            || matches!(db.code().as_deref(), Some("18" | "19" | "20"));
    }
    db.code()
        .is_some_and(|code| code.starts_with("22") || code.starts_with("23"))
}

/// `ER_LOCK_DEADLOCK`: InnoDB rolled the transaction back to break a deadlock.
const MYSQL_DEADLOCK: u16 = 1213;
/// `ER_LOCK_WAIT_TIMEOUT`: a row lock was not granted within `innodb_lock_wait_timeout`.
const MYSQL_LOCK_WAIT_TIMEOUT: u16 = 1205;

/// Runs `attempt` (one whole transaction) until it succeeds, fails for a reason a rerun
/// cannot fix, or has run [`TRANSACTION_ATTEMPTS_MAX`] times.
pub(crate) async fn with_retries<T, F, Fut>(retry: Retry, mut attempt: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = StoreResult<T>>,
{
    let mut attempts = 1;
    loop {
        match attempt().await {
            Err(error) if attempts < TRANSACTION_ATTEMPTS_MAX && should_retry(&error, retry) => {
                tracing::debug!(%error, attempts, "transaction lost a race; running it again");
                attempts += 1;
            }
            other => return other,
        }
    }
}

/// A `members` row to insert: (conversation, user, role, read_seq).
#[derive(Debug, Clone, Copy)]
pub struct NewMember {
    pub conversation: ConversationId,
    pub user: UserId,
    pub role: Role,
    pub read_seq: i64,
}

/// Rows per multi-row statement when each row binds `columns` parameters and the backend
/// allows `params_max` bound parameters in one statement.
pub(crate) fn rows_per_statement(columns: usize, params_max: usize) -> usize {
    (params_max / columns.max(1)).max(1)
}
