//! Uploads, attachments and avatars: who may upload, attach and download what, the quota,
//! and the clean-up of uploads no message uses (docs/protocol.md §4.10). The mechanics
//! (spooling, sniffing, pictures, storage) are in `crate::media`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use banter_protocol::frame::AttachmentRequest;
use banter_protocol::model::{AttachmentKind, ConversationKind, UploadKind};
use banter_protocol::{ConversationId, ErrorCode, UploadId, UserId};
use banter_store::{AttachmentRecord, GroupChange, ProfileUpdate, UploadRecord, UserRecord};
use bytes::Bytes;
use futures_util::Stream;

use crate::error::{ApiError, ApiResult};
use crate::media::inspect::{self, OPAQUE_MIME};
use crate::media::{hex, keys, Busy, Media, SpoolError, Spooled, UploadTurn};
use crate::state::AppState;

/// The longest file name, in characters.
pub const UPLOAD_NAME_CHARS_MAX: usize = 255;
/// The name of an upload that was given none.
pub const UPLOAD_NAME_DEFAULT: &str = "file";
/// How many unused uploads one clean-up transaction deletes.
const CLEANUP_BATCH: u32 = 500;
/// The clean-up runs this often at most (and more often for a short time-to-live).
const CLEANUP_INTERVAL_MAX: Duration = Duration::from_secs(600);
/// The containers browsers record voice in (Chromium and Firefox WebM, Safari MP4), which
/// the bytes alone cannot tell from video; accepted for `voice` beside audio types.
const RECORDED_VOICE_MIMES: [&str; 2] = ["video/webm", "video/mp4"];

/// A file name as the client gave it: 1–255 characters, no control characters, no path
/// separators. The server never uses it as a path; the rule keeps downloads' names sane.
pub fn check_name(name: Option<String>) -> ApiResult<String> {
    let name = name.unwrap_or_else(|| UPLOAD_NAME_DEFAULT.to_owned());
    let chars = name.chars().count();
    if chars == 0 || chars > UPLOAD_NAME_CHARS_MAX {
        return Err(ApiError::invalid_input(format!(
            "name must be 1-{UPLOAD_NAME_CHARS_MAX} characters"
        )));
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == '/' || c == '\\')
    {
        return Err(ApiError::invalid_input(
            "name must not hold control characters, / or \\",
        ));
    }
    Ok(name)
}

/// Starts an upload or avatar change by `user`: spends their budget and takes a turn.
async fn start(media: &Media, user: UserId) -> ApiResult<UploadTurn> {
    media
        .budget
        .take(&user)
        .await
        .map_err(|refused| refused.error("too many uploads from this user"))?;
    media.turn(user).map_err(|busy| match busy {
        Busy::Server => ApiError::new(
            ErrorCode::ShuttingDown,
            "the server is receiving as many uploads as it can; try again shortly",
        )
        .with_retry_after(Duration::from_secs(1)),
        Busy::User => ApiError::new(
            ErrorCode::RateLimited,
            "too many uploads in progress for this user; wait for one to finish",
        )
        .with_retry_after(Duration::from_secs(1)),
    })
}

fn spool_error(error: SpoolError) -> ApiError {
    match error {
        SpoolError::TooLarge(max) => ApiError::new(
            ErrorCode::TooLarge,
            format!("the file is larger than {max} bytes"),
        ),
        SpoolError::Empty => ApiError::invalid_input("the file is empty"),
        SpoolError::Body(why) => ApiError::invalid_input(format!("the upload stopped: {why}")),
        SpoolError::Io(err) => {
            tracing::error!(error = %format!("{err:#}"), "could not spool an upload");
            ApiError::internal()
        }
    }
}

fn internal(err: anyhow::Error) -> ApiError {
    tracing::error!(error = %format!("{err:#}"), "media storage failed");
    ApiError::internal()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn quota_exceeded() -> ApiError {
    ApiError::from(banter_store::StoreError::QuotaExceeded)
}

/// What an upload turned out to be, and the bytes to store for it.
struct Classified {
    stored: Spooled,
    mime: String,
    kind: UploadKind,
    /// A picture that decoded (its bytes already taken into `stored`).
    picture: Option<inspect::Picture>,
}

impl Classified {
    /// A picture that is not decoded: stored as it came, never shown inline, so a browser
    /// never decodes it either.
    fn opaque(stored: Spooled) -> Classified {
        Classified {
            stored,
            mime: OPAQUE_MIME.to_owned(),
            kind: UploadKind::File,
            picture: None,
        }
    }
}

/// Receives, inspects, stores and records an upload (`POST /api/v1/uploads`).
pub async fn upload<S, E>(
    state: &AppState,
    user: UserId,
    name: Option<String>,
    declared_bytes: Option<u64>,
    body: S,
) -> ApiResult<UploadRecord>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    let media = &state.media;
    let limits = &media.config;
    let name = check_name(name)?;
    let _turn = start(media, user).await?;
    let quota = i64::try_from(limits.upload_quota_bytes).unwrap_or(i64::MAX);
    let used = state.store.upload_bytes_used(user).await?;
    // Refused before a byte is read when the header already says it cannot fit.
    if let Some(declared) = declared_bytes {
        if declared > limits.file_bytes_max {
            return Err(spool_error(SpoolError::TooLarge(limits.file_bytes_max)));
        }
        if used.saturating_add(declared as i64) > quota {
            return Err(quota_exceeded());
        }
    }
    if used >= quota {
        return Err(quota_exceeded());
    }
    let spooled = media
        .spool(body, limits.file_bytes_max)
        .await
        .map_err(spool_error)?;
    let sniffed = inspect::sniff(&spooled.head);
    let Classified {
        stored,
        mime,
        kind,
        picture,
    } = match sniffed.kind {
        UploadKind::Image if spooled.size <= limits.image_bytes_max => {
            let path = spooled.file.path().to_owned();
            let processed = media
                .with_picture(move |limits| inspect::process_picture(&path, limits))
                .await
                .map_err(internal)?;
            match processed {
                Ok(mut picture) => Classified {
                    stored: match picture.bytes.take() {
                        Some(bytes) => media.spool_bytes(bytes).await.map_err(internal)?,
                        None => spooled,
                    },
                    mime: picture.mime.to_owned(),
                    kind: UploadKind::Image,
                    picture: Some(picture),
                },
                Err(refused) => {
                    tracing::debug!(%refused, "a picture is stored as a plain file");
                    Classified::opaque(spooled)
                }
            }
        }
        UploadKind::Image => Classified::opaque(spooled),
        kind => Classified {
            stored: spooled,
            mime: sniffed.mime,
            kind,
            picture: None,
        },
    };
    let (width, height) = match &picture {
        Some(picture) => (Some(picture.width), Some(picture.height)),
        None => (None, None),
    };
    let thumbnail = picture.map(|picture| picture.thumbnail);
    let size = stored.size as i64;
    if used.saturating_add(size) > quota {
        return Err(quota_exceeded());
    }
    let id = UploadId(hex(&rand::random::<[u8; 16]>()));
    // Equal bytes share one object on a single node; in a cluster each upload has its own
    // (see `Media::deduplicate`).
    let blob_key = if media.deduplicate {
        stored.sha256.clone()
    } else {
        format!("{}-{}", stored.sha256, id.0)
    };
    let record = UploadRecord {
        id,
        owner: user,
        blob_key,
        name,
        size,
        mime,
        kind,
        width,
        height,
        thumbnail: thumbnail.is_some(),
        created_at_ms: now_ms(),
    };
    store_and_record(state, stored, thumbnail, record, quota).await
}

/// Stores the bytes (unless equal bytes are stored already) and the thumbnail, then the
/// record, all under the clean-up's lock (see `Media::blobs`).
async fn store_and_record(
    state: &AppState,
    stored: Spooled,
    thumbnail: Option<Vec<u8>>,
    record: UploadRecord,
    quota: i64,
) -> ApiResult<UploadRecord> {
    let media = &state.media;
    let _blobs = media.blobs.read().await;
    let blob = keys::blob(&record.blob_key);
    if !media.storage.exists(&blob).await.map_err(internal)? {
        media
            .storage
            .put_file(&blob, stored.file.path())
            .await
            .map_err(internal)?;
    }
    if let Some(thumbnail) = thumbnail {
        let key = keys::thumbnail(&record.blob_key);
        if !media.storage.exists(&key).await.map_err(internal)? {
            media
                .storage
                .put_bytes(&key, thumbnail)
                .await
                .map_err(internal)?;
        }
    }
    state.store.create_upload(record.clone(), quota).await?;
    Ok(record)
}

/// The attachment a `send_message` asks for, from the sender's own upload: `not_found` for
/// anyone else's (or a missing one), `invalid_input` when the kind does not fit it.
pub async fn attachment_for(
    state: &AppState,
    sender: UserId,
    request: AttachmentRequest,
) -> ApiResult<AttachmentRecord> {
    if !UploadId::is_well_formed(&request.upload_id.0) {
        return Err(ApiError::not_found());
    }
    let upload = state.store.own_upload(sender, &request.upload_id).await?;
    let fits = match request.kind {
        AttachmentKind::Image => upload.kind == UploadKind::Image,
        AttachmentKind::Video => upload.kind == UploadKind::Video,
        AttachmentKind::Voice => {
            upload.kind == UploadKind::Audio || RECORDED_VOICE_MIMES.contains(&upload.mime.as_str())
        }
        AttachmentKind::File => true,
    };
    if !fits {
        return Err(ApiError::invalid_input(format!(
            "the upload is {} ({}), which cannot be sent as {}",
            upload.kind.as_str(),
            upload.mime,
            request.kind.as_str()
        )));
    }
    Ok(AttachmentRecord {
        upload_id: upload.id,
        kind: request.kind,
        name: upload.name,
        size: upload.size,
        mime: upload.mime,
        width: upload.width,
        height: upload.height,
        duration_ms: request.duration_ms,
        thumbnail: upload.thumbnail,
    })
}

/// The rules on `duration_ms` that need no upload: required for voice, 1 to
/// `voice_duration_ms_max`; refused on other kinds.
pub fn check_attachment_request(state: &AppState, request: &AttachmentRequest) -> ApiResult<()> {
    let max = state.media.config.voice_duration_ms_max;
    match (request.kind, request.duration_ms) {
        (AttachmentKind::Voice, Some(ms)) if ms >= 1 && ms as u64 <= max => Ok(()),
        (AttachmentKind::Voice, _) => Err(ApiError::invalid_input(format!(
            "a voice message needs duration_ms from 1 to {max}"
        ))),
        (_, Some(_)) => Err(ApiError::invalid_input(
            "duration_ms is only for voice messages",
        )),
        (_, None) => Ok(()),
    }
}

/// The upload `id` if `user` may download it; `not_found` otherwise, whatever the reason.
pub async fn readable(state: &AppState, user: UserId, id: &str) -> ApiResult<UploadRecord> {
    if !UploadId::is_well_formed(id) {
        return Err(ApiError::not_found());
    }
    Ok(state
        .store
        .readable_upload(user, &UploadId(id.to_owned()))
        .await?)
}

/// Receives a picture and stores it as an avatar in every size; answers its URL.
async fn avatar<S, E>(state: &AppState, user: UserId, body: S) -> ApiResult<String>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    let media = &state.media;
    let _turn = start(media, user).await?;
    let spooled = media
        .spool(body, media.config.image_bytes_max)
        .await
        .map_err(spool_error)?;
    if inspect::sniff(&spooled.head).kind != UploadKind::Image {
        return Err(ApiError::invalid_input(
            "an avatar must be a PNG, JPEG, GIF or WebP picture",
        ));
    }
    let path = spooled.file.path().to_owned();
    let sizes = media
        .with_picture(move |limits| inspect::process_avatar(&path, limits))
        .await
        .map_err(internal)?
        .map_err(|refused| {
            ApiError::invalid_input(format!("not usable as an avatar: {refused}"))
        })?;
    let largest = sizes.last().expect("at least one avatar size");
    let key = hex(&<sha2::Sha256 as sha2::Digest>::digest(largest));
    for (bytes, size) in sizes.into_iter().zip(inspect::AVATAR_SIZES_PX) {
        media
            .storage
            .put_bytes(&keys::avatar(&key, size), bytes)
            .await
            .map_err(internal)?;
    }
    Ok(format!("/api/v1/avatars/{key}"))
}

/// `PUT /api/v1/me/avatar`.
pub async fn set_avatar<S, E>(state: &AppState, user: UserId, body: S) -> ApiResult<UserRecord>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    let url = avatar(state, user, body).await?;
    let update = ProfileUpdate {
        avatar_url: Some(url),
        ..ProfileUpdate::default()
    };
    Ok(state.store.update_profile(user, update).await?)
}

/// `DELETE /api/v1/me/avatar`.
pub async fn remove_avatar(state: &AppState, user: UserId) -> ApiResult<UserRecord> {
    let update = ProfileUpdate {
        avatar_url: Some(String::new()),
        ..ProfileUpdate::default()
    };
    Ok(state.store.update_profile(user, update).await?)
}

/// `PUT /api/v1/groups/{id}/avatar`: the picture first (so a refused one changes nothing),
/// then the change, which the group service checks and records as a notice.
pub async fn set_group_avatar<S, E>(
    state: &AppState,
    user: UserId,
    group: ConversationId,
    body: S,
) -> ApiResult<()>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    // Only the group's admins get as far as storing a picture (the change checks again,
    // under the group's lock).
    let group_record = state.store.conversation_summary(user, group).await?;
    if group_record.kind != ConversationKind::Group {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "direct conversations have no group settings",
        ));
    }
    if !group_record.my_role.is_admin() {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only the group's owner or admins may do this",
        ));
    }
    let url = avatar(state, user, body).await?;
    super::groups::change(state, user, group, GroupChange::SetAvatar(url)).await
}

/// Deletes, every so often, the uploads no message has used within
/// `unattached_upload_ttl`, and the stored objects no upload uses any more. The first pass
/// is one interval after start; the task ends at shutdown (between passes), and the
/// server waits for it, so no pass is cut off inside its transaction.
pub fn spawn_cleanup(state: AppState) -> tokio::task::JoinHandle<()> {
    let ttl = state.media.config.unattached_upload_ttl;
    let every = (ttl / 4).clamp(Duration::from_secs(1), CLEANUP_INTERVAL_MAX);
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            if let Err(err) = clean_up(&state, ttl).await {
                tracing::warn!(error = %format!("{err:#}"), "the clean-up of unused uploads failed; it runs again later");
            }
        }
    })
}

/// One clean-up pass; see [`spawn_cleanup`].
pub async fn clean_up(state: &AppState, ttl: Duration) -> anyhow::Result<usize> {
    let media = &state.media;
    let cutoff_ms = now_ms() - ttl.as_millis() as i64;
    let mut deleted = 0;
    loop {
        let _blobs = media.blobs.write().await;
        let (n, freed) = state
            .store
            .delete_unused_uploads(cutoff_ms, CLEANUP_BATCH)
            .await?;
        for blob_key in &freed {
            media.storage.delete(&keys::blob(blob_key)).await?;
            media.storage.delete(&keys::thumbnail(blob_key)).await?;
        }
        deleted += n;
        if n < CLEANUP_BATCH as usize {
            if deleted > 0 {
                tracing::info!(deleted, "deleted uploads no message used");
            }
            return Ok(deleted);
        }
    }
}
