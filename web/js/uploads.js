// Sending pictures, files, voice messages and videos (protocol §4.10, §5.6.1):
// first the file is uploaded over REST (XMLHttpRequest, for progress and
// cancel), then a `send_message` names the upload in its `attachment`. Both
// steps live in one pending send of the store, shown in the chat from the
// moment the file is picked:
//
//   stage 'upload': status 'queued' -> 'uploading' -> (failed, with retry)
//   stage 'send':   the ordinary pending send of socket.js, with its
//                   client_msg_id reused on every retry and kept in the outbox
//
// A file over the server's file_bytes_max (from `hello`) never gets here: the
// chat refuses it before uploading (ui/chat.js).
//
// A few uploads run at once (the server allows uploads_per_user_at_once_max,
// 4 by default); the rest wait in a queue, oldest first.

import { AbortedError, ApiError, uploadFile, uploadName } from './api.js';
import { attachmentFromUpload, attachmentKindFor, seedMedia } from './media.js';
import { store } from './store.js';
import { uuid } from './util.js';

/** Uploads of this page in flight at once; below the server's per-user limit. */
const UPLOADS_AT_ONCE = 3;
/** A server busy with other uploads answers 503 with Retry-After: 1; try this often. */
const BUSY_RETRIES_MAX = 5;
const BUSY_RETRY_MS = 1_000;

const queue = [];
let running = 0;

/**
 * Starts sending `file` (a File or Blob) to a conversation, with `caption` as the
 * message text. `voiceDurationMs`: a recorded voice message of that length.
 * Returns the pending send.
 */
export function sendFile(connection, conversationId, file, { caption = '', name = file.name, voiceDurationMs = null } = {}) {
  const voice = voiceDurationMs !== null;
  const mime = file.type || '';
  const guessedKind = voice ? 'voice' : mime.startsWith('image/') ? 'image' : mime.startsWith('video/') ? 'video' : 'file';
  const pending = {
    clientMsgId: uuid(),
    conversationId,
    text: caption,
    status: 'queued',
    stage: 'upload',
    error: null,
    createdAtMs: Date.now(),
    timer: null,
    file,
    fileName: uploadName(name),
    voiceDurationMs: voice ? Math.max(1, Math.round(voiceDurationMs)) : null,
    progress: { sent: 0, total: file.size },
    busyRetries: 0,
    abort: null,
    attachment: null, // what send_message carries, once uploaded
    // What the chat shows meanwhile; replaced by the server's view after the upload.
    media: {
      upload_id: null, kind: guessedKind, name: uploadName(name), size: file.size, mime,
      width: null, height: null, duration_ms: voice ? Math.round(voiceDurationMs) : null, thumbnail: false,
    },
    // The picture itself, shown before it is uploaded.
    previewUrl: guessedKind === 'image' ? URL.createObjectURL(file) : null,
  };
  store.pending.set(pending.clientMsgId, pending);
  store.emit('messages');
  enqueue(connection, pending);
  return pending;
}

/** Uploads a failed upload again (same pending send, same client_msg_id). */
export function retryUpload(connection, pending) {
  if (store.pending.get(pending.clientMsgId) !== pending || pending.stage !== 'upload') return;
  pending.busyRetries = 0;
  pending.status = 'queued';
  pending.error = null;
  store.emit('messages');
  enqueue(connection, pending);
}

/** Cancels an upload (queued or in flight) and forgets its message. */
export function cancelUpload(pending) {
  const index = queue.findIndex((q) => q.pending === pending);
  if (index >= 0) queue.splice(index, 1);
  pending.abort?.();
  releasePending(pending);
  if (store.pending.get(pending.clientMsgId) === pending) {
    store.pending.delete(pending.clientMsgId);
    store.emit('messages');
  }
}

/** Frees what a pending send holds beyond its data: the preview's object URL. */
export function releasePending(pending) {
  if (pending.previewUrl && pending.stage === 'upload') {
    URL.revokeObjectURL(pending.previewUrl);
    pending.previewUrl = null;
  }
}

function enqueue(connection, pending) {
  queue.push({ connection, pending });
  pump();
}

function pump() {
  while (running < UPLOADS_AT_ONCE && queue.length) {
    const { connection, pending } = queue.shift();
    if (store.pending.get(pending.clientMsgId) !== pending) continue; // discarded meanwhile
    running += 1;
    upload(connection, pending).finally(() => {
      running -= 1;
      pump();
    });
  }
}

async function upload(connection, pending) {
  pending.status = 'uploading';
  pending.progress = { sent: 0, total: pending.file.size };
  store.emit('messages');
  const { promise, abort } = uploadFile(pending.file, pending.fileName, {
    onProgress: (sent, total) => {
      pending.progress = { sent, total };
      // Its own topic: the chat moves the bar without rebuilding the message.
      store.emit('progress');
    },
  });
  pending.abort = abort;
  let result;
  try {
    result = await promise;
  } catch (err) {
    pending.abort = null;
    if (err instanceof AbortedError || store.pending.get(pending.clientMsgId) !== pending) return;
    if (err instanceof ApiError && err.code === 'shutting_down' && pending.busyRetries < BUSY_RETRIES_MAX) {
      // The server is taking all the uploads it can (uploads_at_once_max): wait, go again.
      pending.busyRetries += 1;
      pending.status = 'queued';
      store.emit('messages');
      setTimeout(() => enqueue(connection, pending), BUSY_RETRY_MS + Math.random() * BUSY_RETRY_MS);
      return;
    }
    pending.status = 'failed';
    pending.error = `upload.${err.code ?? 'internal'}`;
    store.emit('messages');
    return;
  }
  pending.abort = null;
  if (store.pending.get(pending.clientMsgId) !== pending) return; // discarded at the last moment
  const kind = attachmentKindFor(result, { voice: pending.voiceDurationMs !== null });
  pending.media = attachmentFromUpload(result, kind, pending.voiceDurationMs);
  pending.attachment = {
    upload_id: result.id,
    kind,
    duration_ms: kind === 'voice' ? pending.voiceDurationMs : null,
  };
  // The sender has the bytes already: the chat shows them without downloading.
  seedMedia(result.id, 'full', pending.file);
  if (kind === 'image') seedMedia(result.id, 'thumbnail', pending.file);
  if (pending.previewUrl) {
    URL.revokeObjectURL(pending.previewUrl);
    pending.previewUrl = null;
  }
  pending.file = null;
  pending.stage = 'send';
  connection.transmitPending(pending);
}
