//! Uploads, downloads and avatars (docs/protocol.md §4.10). Bodies here are raw bytes,
//! streamed (never collected): see `is_streamed_body` for how their deadline differs.

use super::extract::{ApiPath, ApiQuery};
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::media::inspect::{self, AVATAR_SIZES_PX};
use crate::media::{keys, storage::ByteRange};
use crate::service::media;
use crate::state::AppState;
use crate::wire;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use banter_protocol::model::{Upload, UserProfile};
use banter_protocol::{ConversationId, ErrorBody, ErrorCode};
use serde::Deserialize;

/// Whether a request's body is a streamed upload: it may take longer than
/// `http_body_timeout` in all, as long as it keeps arriving (`listener::body_deadline`).
pub fn is_streamed_body(method: &axum::http::Method, path: &str) -> bool {
    (method == axum::http::Method::POST && path == "/api/v1/uploads")
        || (method == axum::http::Method::PUT
            && (path == "/api/v1/me/avatar"
                || (path.starts_with("/api/v1/groups/") && path.ends_with("/avatar"))))
}

/// Downloads: never sniffed, never run, never cached for another user.
const DOWNLOAD_CSP: &str = "default-src 'none'; sandbox";
/// Upload bytes never change behind an id.
const PRIVATE_CACHE: &str = "private, max-age=31536000, immutable";
/// Avatars are public and never change behind a key.
const PUBLIC_CACHE: &str = "public, max-age=31536000, immutable";

/// `POST /api/v1/uploads` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// The file's name, 1–255 characters, without control characters, `/` or `\`;
    /// default `file`. Display only.
    #[param(min_length = 1, max_length = 255)]
    pub name: Option<String>,
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

#[utoipa::path(post, path = "/uploads", tag = "media", security(("bearer" = [])),
    params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "the file's bytes, 1 byte to `file_bytes_max`; any Content-Type is accepted and ignored"),
    responses((status = 201, description = "stored; its type was detected from the bytes", body = Upload),
        (status = 400, description = "invalid_input: a bad `name`, an empty body, or the body stopped arriving", body = ErrorBody),
        (status = 413, description = "too_large: over `file_bytes_max`; quota_exceeded: over the user's `upload_quota_bytes`", body = ErrorBody),
        (status = 429, description = "rate_limited: over `uploads_per_user_per_hour_max`, or `uploads_per_user_at_once_max` in progress", body = ErrorBody),
        (status = 503, description = "shutting_down: the server is receiving `uploads_at_once_max` uploads; retry after `Retry-After`", body = ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiQuery(query): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Upload>)> {
    let record = media::upload(
        &state,
        auth.user_id,
        query.name,
        declared_length(&headers),
        body.into_data_stream(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(wire::upload(record))))
}

/// One `bytes=` range of a `Range` header, resolved against `size`. `Ok(None)`: serve
/// everything (no header, or one this server does not serve in parts, like several
/// ranges); `Err(())`: a range that does not fit (416).
fn requested_range(headers: &HeaderMap, size: u64) -> Result<Option<ByteRange>, ()> {
    let Some(value) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Err(());
    };
    let (first, last) = (first.trim(), last.trim());
    let range = if first.is_empty() {
        let suffix: u64 = last.parse().map_err(|_| ())?;
        if suffix == 0 {
            return Err(());
        }
        size.saturating_sub(suffix)..size
    } else {
        let start: u64 = first.parse().map_err(|_| ())?;
        let end = if last.is_empty() {
            size
        } else {
            let last: u64 = last.parse().map_err(|_| ())?;
            if last < start {
                return Err(());
            }
            (last + 1).min(size)
        };
        start..end
    };
    if range.start >= size || range.is_empty() {
        return Err(());
    }
    Ok(Some(range))
}

/// `filename*=UTF-8''…` (RFC 6266 / 5987): every byte outside the unreserved set
/// percent-encoded, so no name can break out of the header.
fn content_disposition(inline: bool, name: &str) -> String {
    let mut encoded = String::with_capacity(name.len() * 3);
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    let disposition = if inline { "inline" } else { "attachment" };
    format!("{disposition}; filename*=UTF-8''{encoded}")
}

/// Serves the object `key` of `size` bytes as `mime`, with the download headers of §4.10.
async fn serve(
    state: &AppState,
    headers: &HeaderMap,
    key: &str,
    size: u64,
    mime: &str,
    name: &str,
    etag: &str,
) -> ApiResult<Response> {
    let inline = inspect::is_inline(mime);
    let served_mime = if inline { mime } else { inspect::OPAQUE_MIME };
    let etag = format!("\"{etag}\"");
    let mut response = Response::builder()
        .header(header::CONTENT_TYPE, served_mime)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(
            header::CONTENT_DISPOSITION,
            content_disposition(inline, name),
        )
        .header(header::CONTENT_SECURITY_POLICY, DOWNLOAD_CSP)
        .header("cross-origin-resource-policy", "same-origin")
        .header(header::CACHE_CONTROL, PRIVATE_CACHE)
        .header(header::VARY, "Authorization")
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, &etag);
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return response
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .map_err(|_| ApiError::internal());
    }
    let range = match requested_range(headers, size) {
        Ok(range) => range,
        Err(()) => {
            let mut refusal = ApiError::new(
                ErrorCode::RangeNotSatisfiable,
                format!("the range does not fit the file of {size} bytes"),
            )
            .into_response();
            let content_range = HeaderValue::from_str(&format!("bytes */{size}"))
                .map_err(|_| ApiError::internal())?;
            refusal
                .headers_mut()
                .insert(header::CONTENT_RANGE, content_range);
            return Ok(refusal);
        }
    };
    let Some(stream) = state
        .media
        .storage
        .get(key, range.clone())
        .await
        .map_err(|err| {
            tracing::error!(error = %format!("{err:#}"), "could not read a stored file");
            ApiError::internal()
        })?
    else {
        // A record whose bytes are gone (deleted under it): as if there were none.
        return Err(ApiError::not_found());
    };
    response = match &range {
        Some(range) => response
            .status(StatusCode::PARTIAL_CONTENT)
            .header(
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{size}", range.start, range.end - 1),
            )
            .header(header::CONTENT_LENGTH, range.end - range.start),
        None => response
            .status(StatusCode::OK)
            .header(header::CONTENT_LENGTH, size),
    };
    response
        .body(Body::from_stream(stream))
        .map_err(|_| ApiError::internal())
}

#[utoipa::path(get, path = "/uploads/{id}", tag = "media", security(("bearer" = [])),
    params(("id" = String, Path, description = "the upload's id")),
    responses((status = 200, description = "the bytes; `Content-Disposition: inline` for raster pictures, audio and video, `attachment` otherwise", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 206, description = "the requested `Range`", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 304, description = "`If-None-Match` matched the ETag"),
        (status = 404, description = "not_found: no such upload, or the caller may not read it (the two look the same)", body = ErrorBody),
        (status = 416, description = "range_not_satisfiable: the `Range` does not fit the file; `Content-Range: bytes */<size>`", body = ErrorBody)))]
pub async fn download(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let upload = media::readable(&state, auth.user_id, &id).await?;
    let size = u64::try_from(upload.size).unwrap_or(0);
    serve(
        &state,
        &headers,
        &keys::blob(&upload.blob_key),
        size,
        &upload.mime,
        &upload.name,
        &upload.blob_key,
    )
    .await
}

#[utoipa::path(get, path = "/uploads/{id}/thumbnail", tag = "media", security(("bearer" = [])),
    params(("id" = String, Path, description = "the upload's id")),
    responses((status = 200, description = "a preview at most 320 px on its longer side: image/jpeg, or image/png for pictures that are not JPEGs", content_type = "image/jpeg", body = Vec<u8>),
        (status = 304, description = "`If-None-Match` matched the ETag"),
        (status = 404, description = "not_found: no such upload, the caller may not read it, or it has no thumbnail", body = ErrorBody)))]
pub async fn thumbnail(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let upload = media::readable(&state, auth.user_id, &id).await?;
    if !upload.thumbnail {
        return Err(ApiError::not_found());
    }
    let key = keys::thumbnail(&upload.blob_key);
    let mime = inspect::thumbnail_mime(&upload.mime);
    // A client that has it already is answered before storage is read.
    let etag = format!("\"{}-t\"", upload.blob_key);
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    // Thumbnails are small: read whole, so the size is known for Content-Length.
    let Some(stream) = state.media.storage.get(&key, None).await.map_err(|err| {
        tracing::error!(error = %format!("{err:#}"), "could not read a thumbnail");
        ApiError::internal()
    })?
    else {
        return Err(ApiError::not_found());
    };
    let bytes = collect(stream).await?;
    let name = format!(
        "thumbnail.{}",
        if mime == "image/jpeg" { "jpg" } else { "png" }
    );
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(mime)),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&content_disposition(true, &name))
                    .map_err(|_| ApiError::internal())?,
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(DOWNLOAD_CSP),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(PRIVATE_CACHE),
            ),
            (header::VARY, HeaderValue::from_static("Authorization")),
            (
                header::ETAG,
                HeaderValue::from_str(&etag).map_err(|_| ApiError::internal())?,
            ),
        ],
        bytes,
    )
        .into_response())
}

async fn collect(
    mut stream: futures_util::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>,
) -> ApiResult<Vec<u8>> {
    use futures_util::StreamExt;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk.map_err(|err| {
            tracing::error!(error = %err, "could not read a stored picture");
            ApiError::internal()
        })?);
    }
    Ok(bytes)
}

#[utoipa::path(put, path = "/me/avatar", tag = "media", security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "a PNG, JPEG, GIF or WebP picture of at most `image_bytes_max` bytes"),
    responses((status = 200, description = "the profile with its new `avatar_url`", body = UserProfile),
        (status = 400, description = "invalid_input: not a picture the server decodes, over the image limits, or the body stopped arriving", body = ErrorBody),
        (status = 413, description = "too_large: over `image_bytes_max`", body = ErrorBody),
        (status = 429, description = "rate_limited: over `uploads_per_user_per_hour_max`, or too many uploads in progress", body = ErrorBody),
        (status = 503, description = "shutting_down: the server is receiving `uploads_at_once_max` uploads", body = ErrorBody)))]
pub async fn set_avatar(
    State(state): State<AppState>,
    auth: AuthUser,
    body: Body,
) -> ApiResult<Json<UserProfile>> {
    let user = media::set_avatar(&state, auth.user_id, body.into_data_stream()).await?;
    Ok(Json(wire::profile(user)))
}

#[utoipa::path(delete, path = "/me/avatar", tag = "media", security(("bearer" = [])),
    responses((status = 200, description = "the profile, `avatar_url` null", body = UserProfile)))]
pub async fn remove_avatar(
    State(state): State<AppState>,
    auth: AuthUser,
) -> ApiResult<Json<UserProfile>> {
    let user = media::remove_avatar(&state, auth.user_id).await?;
    Ok(Json(wire::profile(user)))
}

#[utoipa::path(put, path = "/groups/{id}/avatar", tag = "media", security(("bearer" = [])),
    params(("id" = i64, Path, description = "the group")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "a PNG, JPEG, GIF or WebP picture of at most `image_bytes_max` bytes"),
    responses((status = 204, description = "set; an `avatar_changed` notice was appended to the group's stream"),
        (status = 400, description = "invalid_input: not a picture the server decodes, over the image limits, or the body stopped arriving", body = ErrorBody),
        (status = 403, description = "forbidden: the caller is not an owner or admin, or the conversation is a direct one", body = ErrorBody),
        (status = 404, description = "not_found: no such group, or the caller is not a member", body = ErrorBody),
        (status = 413, description = "too_large: over `image_bytes_max`", body = ErrorBody),
        (status = 429, description = "rate_limited: over `uploads_per_user_per_hour_max`, or too many uploads in progress", body = ErrorBody),
        (status = 503, description = "shutting_down: the server is receiving `uploads_at_once_max` uploads", body = ErrorBody)))]
pub async fn set_group_avatar(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiPath(id): ApiPath<i64>,
    body: Body,
) -> ApiResult<StatusCode> {
    media::set_group_avatar(
        &state,
        auth.user_id,
        ConversationId(id),
        body.into_data_stream(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/avatars/{key}` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AvatarQuery {
    /// 64, 128 or 256 (the default).
    pub size: Option<u32>,
}

#[utoipa::path(get, path = "/avatars/{key}", tag = "media",
    params(("key" = String, Path, description = "the avatar's key, from an `avatar_url`"), AvatarQuery),
    responses((status = 200, description = "the avatar, square, PNG; public and immutable", content_type = "image/png", body = Vec<u8>),
        (status = 404, description = "not_found: no such avatar or size", body = ErrorBody)))]
pub async fn avatar(
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
    ApiQuery(query): ApiQuery<AvatarQuery>,
) -> ApiResult<Response> {
    let size = query
        .size
        .unwrap_or(AVATAR_SIZES_PX[AVATAR_SIZES_PX.len() - 1]);
    let well_formed =
        key.len() == 64 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !well_formed || !AVATAR_SIZES_PX.contains(&size) {
        return Err(ApiError::not_found());
    }
    let Some(stream) = state
        .media
        .storage
        .get(&keys::avatar(&key, size), None)
        .await
        .map_err(|err| {
            tracing::error!(error = %format!("{err:#}"), "could not read an avatar");
            ApiError::internal()
        })?
    else {
        return Err(ApiError::not_found());
    };
    let bytes = collect(stream).await?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/png")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(DOWNLOAD_CSP),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(PUBLIC_CACHE),
            ),
        ],
        bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(value: &str, size: u64) -> Result<Option<ByteRange>, ()> {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_str(value).unwrap());
        requested_range(&headers, size)
    }

    #[test]
    fn ranges_resolve_against_the_size() {
        assert_eq!(range("bytes=0-9", 100), Ok(Some(0..10)));
        assert_eq!(range("bytes=90-", 100), Ok(Some(90..100)));
        assert_eq!(range("bytes=-10", 100), Ok(Some(90..100)));
        assert_eq!(range("bytes=-1000", 100), Ok(Some(0..100)));
        assert_eq!(range("bytes=50-1000", 100), Ok(Some(50..100)));
        assert_eq!(range("bytes=100-", 100), Err(()));
        assert_eq!(range("bytes=9-2", 100), Err(()));
        assert_eq!(range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(range("items=0-1", 100), Ok(None));
    }

    #[test]
    fn file_names_cannot_break_out_of_the_header() {
        assert_eq!(
            content_disposition(false, "a\"; b.html"),
            "attachment; filename*=UTF-8''a%22%3B%20b.html"
        );
        assert_eq!(
            content_disposition(true, "猫.png"),
            "inline; filename*=UTF-8''%E7%8C%AB.png"
        );
    }
}
