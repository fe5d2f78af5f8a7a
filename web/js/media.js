// Attachments as the page shows them. Downloads need the Authorization
// header, which an <img src> or <a href> cannot send, so every picture, voice
// message, video and file is fetched with the token (api.fetchUpload) and
// shown through an object URL (blob:, allowed by the CSP's img-src and
// media-src). Object URLs are cached per upload id and variant, so a picture
// scrolled past twice is fetched once; the least recently used are revoked
// when the cache holds too many bytes, and all of them when the session ends.

import { fetchUpload } from './api.js';
import { locale } from './i18n.js';

/** Bytes of blobs kept behind object URLs before the least recently used go. */
const CACHE_BYTES_MAX = 256 * 1024 * 1024;

/** key `${uploadId}:${variant}` -> { promise, url, bytes }; Map order is recency. */
const cache = new Map();
let cachedBytes = 0;

function evict(keepKey) {
  for (const [key, entry] of cache) {
    if (cachedBytes <= CACHE_BYTES_MAX) break;
    if (key === keepKey || !entry.url) continue;
    cache.delete(key);
    cachedBytes -= entry.bytes;
    URL.revokeObjectURL(entry.url);
  }
}

function remember(key, blob) {
  const url = URL.createObjectURL(blob);
  const entry = { promise: Promise.resolve(url), url, bytes: blob.size };
  cache.set(key, entry);
  cachedBytes += blob.size;
  evict(key);
  return entry;
}

/**
 * An object URL for the upload's bytes (`variant` 'full' or 'thumbnail'),
 * fetched once and cached. Rejects with the api's errors; a failure is not
 * cached, so asking again tries again.
 */
export function mediaUrl(uploadId, variant = 'full') {
  const key = `${uploadId}:${variant}`;
  const known = cache.get(key);
  if (known) {
    // Most recently used goes last.
    cache.delete(key);
    cache.set(key, known);
    return known.promise;
  }
  const entry = { url: null, bytes: 0, promise: null };
  entry.promise = fetchUpload(uploadId, variant).then((blob) => {
    if (cache.get(key) !== entry) return URL.createObjectURL(blob); // cleared meanwhile
    cache.delete(key);
    return remember(key, blob).url;
  }, (err) => {
    if (cache.get(key) === entry) cache.delete(key);
    throw err;
  });
  cache.set(key, entry);
  return entry.promise;
}

/** The sender already holds the bytes it uploaded: no need to download them again. */
export function seedMedia(uploadId, variant, blob) {
  const key = `${uploadId}:${variant}`;
  if (cache.get(key)?.url) return;
  cache.delete(key);
  remember(key, blob);
}

/** Revokes every object URL (the session ended: the next user must not reach them). */
export function clearMediaCache() {
  for (const entry of cache.values()) if (entry.url) URL.revokeObjectURL(entry.url);
  cache.clear();
  cachedBytes = 0;
}

/** Fetches the upload and hands it to the browser as a download named `name`. */
export async function downloadUpload(uploadId, name) {
  const blob = await fetchUpload(uploadId, 'full');
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name || 'file';
  a.rel = 'noopener';
  document.body.appendChild(a);
  a.click();
  a.remove();
  // The download has taken its copy by then; the bytes need not stay in memory.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// ---- words and numbers ----

/** 1536 -> "1.5 KB" (1024-based, as file managers show them). */
export function humanSize(bytes) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = Math.max(0, Number(bytes) || 0);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(value)} ${units[unit]}`;
}

/** 7400 -> "0:07"; 3_725_000 -> "1:02:05". */
export function formatDuration(ms) {
  const total = Math.max(0, Math.round((Number(ms) || 0) / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** A short type label for a file card: the name's extension, else the mime's subtype. */
export function fileTypeLabel(name, mime) {
  const ext = /\.([A-Za-z0-9]{1,8})$/.exec(name || '')?.[1];
  if (ext) return ext.toUpperCase();
  if (!mime || mime === 'application/octet-stream') return '';
  return (mime.split('/')[1] || mime).split(/[;+]/)[0].toUpperCase();
}

/** Whether this browser says it can play a video of this type. */
export function canPlayVideo(mime) {
  if (!mime) return false;
  return document.createElement('video').canPlayType(mime) !== '';
}

/** The `send_message` attachment kind for what the server made of an upload (§5.6.1). */
export function attachmentKindFor(upload, { voice = false } = {}) {
  if (voice && (upload.kind === 'audio' || (upload.kind === 'video' && upload.mime === 'video/webm'))) return 'voice';
  if (upload.kind === 'image') return 'image';
  if (upload.kind === 'video') return 'video';
  return 'file';
}

/** How a message shows its upload: the `Attachment` of a media message (§6.8). */
export function attachmentFromUpload(upload, kind, durationMs) {
  return {
    upload_id: upload.id,
    kind,
    name: upload.name,
    size: upload.size,
    mime: upload.mime,
    width: upload.width ?? null,
    height: upload.height ?? null,
    duration_ms: kind === 'voice' ? durationMs : null,
    thumbnail: Boolean(upload.thumbnail),
  };
}

/** Reserved display size of a picture: fits in `box`×`box`, never below `min` on a side. */
export function fitSize(width, height, box = 240, min = 48) {
  if (!width || !height) return { width: box, height: Math.round(box * 0.75) };
  const scale = Math.min(1, box / width, box / height);
  return {
    width: Math.max(min, Math.round(width * scale)),
    height: Math.max(min, Math.round(height * scale)),
  };
}
