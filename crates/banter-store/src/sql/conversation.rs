//! Conversations and their members: direct conversations, groups, roles and summaries.

use async_trait::async_trait;
use banter_protocol::model::{ConversationKind, Role};
use banter_protocol::{ConversationId, UserId};

use super::{args, ids, sql, values, Arg, Dialect};
use crate::row::{
    kind_str, member_at, parse_kind, parse_role, role_str, rows_per_statement, summary_at,
    summary_sql, Columns, NewMember,
};
use crate::{ConversationRecord, MemberRecord, StoreResult};

/// The queries of conversations and members.
#[async_trait]
pub trait ConversationSql: Dialect {
    async fn is_member(&self, user: UserId, conversation: ConversationId) -> StoreResult<bool> {
        let mut conn = self.acquire().await?;
        let row = Self::fetch_one(
            &mut conn,
            sql!("SELECT EXISTS (SELECT 1 FROM members WHERE conversation_id = ? AND user_id = ?)"),
            args![conversation, user],
        )
        .await?;
        Ok(row.flag(0)?)
    }

    /// The user's conversation summaries, newest activity first.
    async fn summaries(&self, user: UserId) -> StoreResult<Vec<ConversationRecord>> {
        let mut conn = self.acquire().await?;
        let rows = Self::fetch_all(
            &mut conn,
            sql!(summary_sql!("WHERE m.user_id = ?")),
            args![user],
        )
        .await?;
        rows.iter().map(summary_at).collect()
    }

    // ---- inside a transaction ----

    async fn direct_conversation(
        conn: &mut Self::Conn,
        direct_key: &str,
    ) -> StoreResult<Option<ConversationId>> {
        let row = Self::fetch_optional(
            conn,
            sql!("SELECT id FROM conversations WHERE direct_key = ?"),
            args![direct_key],
        )
        .await?;
        Ok(row.map(|row| row.int(0).map(ConversationId)).transpose()?)
    }

    /// Inserts a conversation with an empty stream (`last_seq` 0).
    async fn insert_conversation(
        conn: &mut Self::Conn,
        kind: ConversationKind,
        name: Option<&str>,
        direct_key: Option<&str>,
        now_ms: i64,
    ) -> StoreResult<ConversationId> {
        let id = Self::insert(
            conn,
            sql!(
                "INSERT INTO conversations \
                 (kind, name, direct_key, last_seq, last_activity_ms, created_at_ms) \
                 VALUES (?, ?, ?, 0, ?, ?) RETURNING id"
            ),
            args![kind_str(kind), name, direct_key, now_ms, now_ms],
        )
        .await?;
        Ok(ConversationId(id))
    }

    /// The summary of one conversation of the user's, if the user is a member.
    async fn summary(
        conn: &mut Self::Conn,
        user: UserId,
        conversation: ConversationId,
    ) -> StoreResult<Option<ConversationRecord>> {
        let row = Self::fetch_optional(
            conn,
            sql!(summary_sql!("WHERE m.user_id = ? AND c.id = ?")),
            args![user, conversation],
        )
        .await?;
        row.map(|row| summary_at(&row)).transpose()
    }

    /// Members in the order they joined.
    async fn members(
        conn: &mut Self::Conn,
        conversation: ConversationId,
    ) -> StoreResult<Vec<MemberRecord>> {
        let rows = Self::fetch_all(
            conn,
            sql!(
                "SELECT u.id, u.username, u.nickname, u.avatar_url, u.signature, \
                 m.role, m.read_seq, m.joined_at_ms \
                 FROM members m JOIN users u ON u.id = m.user_id \
                 WHERE m.conversation_id = ? ORDER BY m.joined_at_ms, u.id"
            ),
            args![conversation],
        )
        .await?;
        Ok(rows.iter().map(member_at).collect::<Result<_, _>>()?)
    }

    /// Locks the conversation's row until the transaction ends and returns its kind, or
    /// `None` if it does not exist.
    async fn lock_conversation(
        conn: &mut Self::Conn,
        conversation: ConversationId,
    ) -> StoreResult<Option<ConversationKind>> {
        let row = Self::fetch_optional(
            conn,
            sql!("SELECT kind FROM conversations WHERE id = ? FOR UPDATE"),
            args![conversation],
        )
        .await?;
        row.map(|row| parse_kind(&row.text(0)?)).transpose()
    }

    /// The ids of a conversation's members, ascending.
    async fn member_ids(
        conn: &mut Self::Conn,
        conversation: ConversationId,
    ) -> StoreResult<Vec<UserId>> {
        let rows = Self::fetch_all(
            conn,
            sql!("SELECT user_id FROM members WHERE conversation_id = ? ORDER BY user_id"),
            args![conversation],
        )
        .await?;
        Ok(ids(&rows, UserId)?)
    }

    /// The conversation's kind and the user's role in it, or `None` if the conversation
    /// does not exist or the user is not a member.
    async fn membership(
        conn: &mut Self::Conn,
        user: UserId,
        conversation: ConversationId,
    ) -> StoreResult<Option<(ConversationKind, Role)>> {
        let row = Self::fetch_optional(
            conn,
            sql!(
                "SELECT c.kind, m.role FROM members m \
                 JOIN conversations c ON c.id = m.conversation_id \
                 WHERE m.conversation_id = ? AND m.user_id = ?"
            ),
            args![conversation, user],
        )
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some((
            parse_kind(&row.text(0)?)?,
            parse_role(&row.text(1)?)?,
        )))
    }

    async fn insert_member(
        conn: &mut Self::Conn,
        conversation: ConversationId,
        user: UserId,
        role: Role,
        read_seq: i64,
        now_ms: i64,
    ) -> StoreResult<()> {
        Self::execute(
            conn,
            sql!(
                "INSERT INTO members (conversation_id, user_id, role, read_seq, joined_at_ms) \
                 VALUES (?, ?, ?, ?, ?)"
            ),
            args![conversation, user, role_str(role), read_seq, now_ms],
        )
        .await?;
        Ok(())
    }

    /// Inserts any number of members (of any conversations) in multi-row statements, as
    /// many as the backend's limit on bound parameters needs; an empty slice runs nothing.
    /// (PostgreSQL binds the columns as arrays instead, in one statement.)
    async fn insert_members(
        conn: &mut Self::Conn,
        members: &[NewMember],
        now_ms: i64,
    ) -> StoreResult<()> {
        for chunk in members.chunks(rows_per_statement(5, Self::BIND_PARAMS_MAX)) {
            let mut bound: Vec<Arg<'_>> = Vec::with_capacity(5 * chunk.len());
            for member in chunk {
                bound.extend_from_slice(args![
                    member.conversation,
                    member.user,
                    role_str(member.role),
                    member.read_seq,
                    now_ms
                ]);
            }
            let insert = format!(
                "INSERT INTO members (conversation_id, user_id, role, read_seq, joined_at_ms) {}",
                values("(?, ?, ?, ?, ?)", chunk.len())
            );
            Self::execute_built(conn, &insert, &bound).await?;
        }
        Ok(())
    }

    async fn delete_member(
        conn: &mut Self::Conn,
        conversation: ConversationId,
        user: UserId,
    ) -> StoreResult<()> {
        Self::execute(
            conn,
            sql!("DELETE FROM members WHERE conversation_id = ? AND user_id = ?"),
            args![conversation, user],
        )
        .await?;
        Ok(())
    }

    async fn delete_members(
        conn: &mut Self::Conn,
        conversation: ConversationId,
    ) -> StoreResult<()> {
        Self::execute(
            conn,
            sql!("DELETE FROM members WHERE conversation_id = ?"),
            args![conversation],
        )
        .await?;
        Ok(())
    }

    async fn set_role(
        conn: &mut Self::Conn,
        conversation: ConversationId,
        user: UserId,
        role: Role,
    ) -> StoreResult<()> {
        Self::execute(
            conn,
            sql!("UPDATE members SET role = ? WHERE conversation_id = ? AND user_id = ?"),
            args![role_str(role), conversation, user],
        )
        .await?;
        Ok(())
    }

    async fn rename(
        conn: &mut Self::Conn,
        conversation: ConversationId,
        name: &str,
    ) -> StoreResult<()> {
        Self::execute(
            conn,
            sql!("UPDATE conversations SET name = ? WHERE id = ?"),
            args![name, conversation],
        )
        .await?;
        Ok(())
    }

    async fn set_group_avatar(
        conn: &mut Self::Conn,
        conversation: ConversationId,
        avatar_url: &str,
    ) -> StoreResult<()> {
        Self::execute(
            conn,
            sql!("UPDATE conversations SET avatar_url = ? WHERE id = ?"),
            args![avatar_url, conversation],
        )
        .await?;
        Ok(())
    }

    async fn last_seq(conn: &mut Self::Conn, conversation: ConversationId) -> StoreResult<i64> {
        let row = Self::fetch_one(
            conn,
            sql!("SELECT last_seq FROM conversations WHERE id = ?"),
            args![conversation],
        )
        .await?;
        Ok(row.int(0)?)
    }
}
