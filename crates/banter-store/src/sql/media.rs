//! Uploads: their records, who may read them, the per-user quota and the clean-up of
//! uploads no message uses. The bytes themselves are the server's (`media/`); the store
//! keeps only where they are (`blob_key`) and what they are.

use async_trait::async_trait;
use banter_protocol::model::UploadKind;
use banter_protocol::{UploadId, UserId};

use super::{args, sql, Dialect};
use crate::row::{decode_error, Columns};
use crate::{StoreResult, UploadRecord};

/// The columns [`upload_at`] decodes, in order.
macro_rules! upload_columns {
    () => {
        "u.id, u.owner_id, u.blob_key, u.name, u.size, u.mime, u.kind, u.width, u.height, \
         u.thumbnail, u.created_at_ms"
    };
}

fn upload_at(row: &impl Columns) -> Result<UploadRecord, sqlx::Error> {
    let kind = row.text(6)?;
    let dimension = |at| -> Result<Option<u32>, sqlx::Error> {
        Ok(row.opt_int(at)?.and_then(|v| u32::try_from(v).ok()))
    };
    Ok(UploadRecord {
        id: UploadId(row.text(0)?),
        owner: UserId(row.int(1)?),
        blob_key: row.text(2)?,
        name: row.text(3)?,
        size: row.int(4)?,
        mime: row.text(5)?,
        kind: UploadKind::parse(&kind)
            .ok_or_else(|| decode_error(format!("unknown upload kind {kind:?}")))?,
        width: dimension(7)?,
        height: dimension(8)?,
        thumbnail: row.flag(9)?,
        created_at_ms: row.int(10)?,
    })
}

/// The queries of uploads. All shared: the backends agree on every one.
#[async_trait]
pub trait MediaSql: Dialect {
    async fn insert_upload(conn: &mut Self::Conn, upload: &UploadRecord) -> StoreResult<()> {
        Self::execute(
            conn,
            sql!(
                "INSERT INTO uploads (id, owner_id, blob_key, name, size, mime, kind, width, \
                 height, thumbnail, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            args![
                upload.id.0.as_str(),
                upload.owner,
                upload.blob_key.as_str(),
                upload.name.as_str(),
                upload.size,
                upload.mime.as_str(),
                upload.kind.as_str(),
                upload.width.map(i64::from),
                upload.height.map(i64::from),
                upload.thumbnail,
                upload.created_at_ms,
            ],
        )
        .await?;
        Ok(())
    }

    /// Locks the user's row until the transaction ends, so that one user's quota checks
    /// run one at a time (SQLite's write transaction holds the database lock already).
    async fn lock_user(conn: &mut Self::Conn, user: UserId) -> StoreResult<bool> {
        let row = Self::fetch_optional(
            conn,
            sql!("SELECT id FROM users WHERE id = ? FOR UPDATE"),
            args![user],
        )
        .await?;
        Ok(row.is_some())
    }

    /// The bytes of every upload `owner` has that still exists. (A sum of BIGINTs is a
    /// decimal on PostgreSQL and MySQL, hence the cast, which MySQL spells its own way.)
    async fn upload_bytes_used(conn: &mut Self::Conn, owner: UserId) -> StoreResult<i64> {
        let row = Self::fetch_one(
            conn,
            sql!("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM uploads WHERE owner_id = ?"),
            args![owner],
        )
        .await?;
        Ok(row.int(0)?)
    }

    /// The upload `id` if `owner` made it.
    async fn own_upload(&self, owner: UserId, id: &UploadId) -> StoreResult<Option<UploadRecord>> {
        let mut conn = self.acquire().await?;
        let row = Self::fetch_optional(
            &mut conn,
            sql!(concat!(
                "SELECT ",
                upload_columns!(),
                " FROM uploads u WHERE u.id = ? AND u.owner_id = ?"
            )),
            args![id.0.as_str(), owner],
        )
        .await?;
        Ok(row.map(|row| upload_at(&row)).transpose()?)
    }

    /// The upload `id` if `user` may read it: they made it, or they are a member of a
    /// conversation in which a message (not recalled) carries it.
    async fn readable_upload(
        &self,
        user: UserId,
        id: &UploadId,
    ) -> StoreResult<Option<UploadRecord>> {
        let mut conn = self.acquire().await?;
        let row = Self::fetch_optional(
            &mut conn,
            sql!(concat!(
                "SELECT ",
                upload_columns!(),
                " FROM uploads u WHERE u.id = ? AND (u.owner_id = ? OR EXISTS (",
                "SELECT 1 FROM attachments a JOIN members m ",
                "ON m.conversation_id = a.conversation_id AND m.user_id = ? ",
                "WHERE a.upload_id = u.id))"
            )),
            args![id.0.as_str(), user, user],
        )
        .await?;
        Ok(row.map(|row| upload_at(&row)).transpose()?)
    }

    /// Up to `limit` uploads made before `cutoff_ms` that no message uses, oldest first:
    /// (id, blob_key).
    async fn unused_uploads(
        conn: &mut Self::Conn,
        cutoff_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<(UploadId, String)>> {
        let rows = Self::fetch_all(
            conn,
            sql!(
                "SELECT u.id, u.blob_key FROM uploads u WHERE u.created_at_ms < ? \
                 AND NOT EXISTS (SELECT 1 FROM attachments a WHERE a.upload_id = u.id) \
                 ORDER BY u.created_at_ms LIMIT ?"
            ),
            args![cutoff_ms, limit],
        )
        .await?;
        Ok(rows
            .iter()
            .map(|row| Ok::<_, sqlx::Error>((UploadId(row.text(0)?), row.text(1)?)))
            .collect::<Result<_, _>>()?)
    }

    async fn delete_upload(conn: &mut Self::Conn, id: &UploadId) -> StoreResult<()> {
        Self::execute(
            conn,
            sql!("DELETE FROM uploads WHERE id = ?"),
            args![id.0.as_str()],
        )
        .await?;
        Ok(())
    }

    /// Whether any upload still stores its bytes under `blob_key`.
    async fn blob_in_use(conn: &mut Self::Conn, blob_key: &str) -> StoreResult<bool> {
        let row = Self::fetch_one(
            conn,
            sql!("SELECT EXISTS (SELECT 1 FROM uploads WHERE blob_key = ?)"),
            args![blob_key],
        )
        .await?;
        Ok(row.flag(0)?)
    }
}
