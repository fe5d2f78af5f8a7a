// REST client for /api/v1. Every failure becomes either an ApiError (the
// server answered with an error body) or a NetworkError (it did not answer),
// so the UI can tell "wrong password" from "server unreachable".

const BASE = '/api/v1';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code);
    this.status = status;
    this.code = code;
  }
}

export class NetworkError extends Error {
  constructor(cause) {
    super('network error');
    this.code = 'network';
    this.cause = cause;
  }
}

/** The user cancelled an upload (xhr.abort()). */
export class AbortedError extends Error {
  constructor() {
    super('aborted');
    this.code = 'aborted';
  }
}

let token = null;
let onUnauthorized = () => {};

export function setToken(value) {
  token = value;
}

/** Called once when an authenticated request is refused: the session is gone. */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

async function request(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  return send(method, path, headers, body === undefined ? undefined : JSON.stringify(body));
}

/** A request whose body is a file's raw bytes (avatars): not JSON, not multipart. */
function rawRequest(method, path, blob) {
  return send(method, path, { Accept: 'application/json' }, blob);
}

async function send(method, path, headers, body) {
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(BASE + path, { method, headers, body, cache: 'no-store' });
  } catch (err) {
    throw new NetworkError(err);
  }
  const text = await response.text().catch(() => '');
  return answer(response.status, response.ok, text, headers.Authorization !== undefined);
}

/** The parsed body of a success, or the ApiError / NetworkError a failure means. */
function answer(status, ok, text, sentToken) {
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!ok) {
    // A proxy in front of a stopped server answers 502/504 without our body.
    if (!data?.code && status >= 502 && status <= 504) throw new NetworkError();
    const code = data?.code ?? (status === 401 ? 'unauthorized' : status === 413 ? 'too_large' : 'internal');
    if (code === 'unauthorized' && sentToken) onUnauthorized();
    throw new ApiError(status, code, data?.message);
  }
  return data;
}

/** At most this many characters of a file name go to the server (its limit is 255). */
const UPLOAD_NAME_MAX_CHARS = 255;

/**
 * The name the server accepts for `raw`: 1–255 characters, without control
 * characters, `/` or `\` (each becomes `_`); "file" when nothing is left.
 */
export function uploadName(raw) {
  const cleaned = Array.from(String(raw ?? '').replace(/[\u0000-\u001f\u007f-\u009f/\\]/g, '_').trim());
  return cleaned.slice(0, UPLOAD_NAME_MAX_CHARS).join('') || 'file';
}

/**
 * POST /api/v1/uploads with the file's raw bytes, over XMLHttpRequest so that
 * the upload reports progress and can be cancelled (fetch can do neither).
 * Returns { promise, abort }: the promise resolves to the server's Upload, or
 * rejects with ApiError, NetworkError or AbortedError (after abort()).
 * `onProgress(sentBytes, totalBytes)` is called as the body goes out.
 */
export function uploadFile(file, name, { onProgress = () => {} } = {}) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open('POST', `${BASE}/uploads?name=${encodeURIComponent(uploadName(name))}`);
    xhr.setRequestHeader('Accept', 'application/json');
    // Any Content-Type is accepted and ignored (the server looks at the bytes).
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    const sentToken = Boolean(token);
    if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    xhr.upload.onprogress = (event) => onProgress(event.loaded, event.lengthComputable ? event.total : file.size);
    xhr.onload = () => {
      try {
        resolve(answer(xhr.status, xhr.status >= 200 && xhr.status < 300, xhr.responseText, sentToken));
      } catch (err) {
        reject(err);
      }
    };
    xhr.onerror = () => reject(new NetworkError());
    xhr.ontimeout = () => reject(new NetworkError());
    xhr.onabort = () => reject(new AbortedError());
    xhr.send(file);
  });
  return { promise, abort: () => xhr.abort() };
}

/**
 * GET an upload's bytes (`variant` 'full' or 'thumbnail') with the bearer
 * token, as a Blob: the page cannot put an Authorization header on an <img>
 * or <a href>, so every attachment is fetched and shown through an object URL.
 */
export async function fetchUpload(uploadId, variant = 'full') {
  const path = `${BASE}/uploads/${encodeURIComponent(uploadId)}${variant === 'thumbnail' ? '/thumbnail' : ''}`;
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, { headers });
  } catch (err) {
    throw new NetworkError(err);
  }
  if (!response.ok) {
    const text = await response.text().catch(() => '');
    answer(response.status, false, text, headers.Authorization !== undefined);
  }
  try {
    return await response.blob();
  } catch (err) {
    throw new NetworkError(err);
  }
}

const id = (value) => encodeURIComponent(String(value));

/** Whether the server answers GET /healthz (no auth, a few bytes) within `timeoutMs`. */
export async function serverIsUp(timeoutMs) {
  try {
    const response = await fetch('/healthz', { cache: 'no-store', signal: AbortSignal.timeout(timeoutMs) });
    return response.ok;
  } catch {
    return false;
  }
}

export const api = {
  register: (username, password, nickname) =>
    request('POST', '/accounts', { username, password, nickname: nickname || null }),
  login: (username, password) =>
    request('POST', '/sessions', { username, password, device_name: deviceName() }),
  logout: () => request('DELETE', '/sessions/current'),
  me: () => request('GET', '/me'),
  updateMe: (changes) => request('PATCH', '/me', changes),
  changePassword: (oldPassword, newPassword) =>
    request('PUT', '/me/password', { old_password: oldPassword, new_password: newPassword }),
  /** The picture's raw bytes; answers the caller's UserProfile with the new avatar_url. */
  setAvatar: (file) => rawRequest('PUT', '/me/avatar', file),
  removeAvatar: () => request('DELETE', '/me/avatar'),
  user: (username) => request('GET', `/users/${id(username)}`),

  friends: () => request('GET', '/friends'),
  removeFriend: (userId) => request('DELETE', `/friends/${id(userId)}`),
  friendRequests: () => request('GET', '/friend-requests'),
  sendFriendRequest: (userId, greeting) =>
    request('POST', '/friend-requests', { user_id: userId, greeting: greeting || null }),
  acceptRequest: (requestId) => request('POST', `/friend-requests/${id(requestId)}/accept`),
  rejectRequest: (requestId) => request('POST', `/friend-requests/${id(requestId)}/reject`),
  cancelRequest: (requestId) => request('POST', `/friend-requests/${id(requestId)}/cancel`),
  blocks: () => request('GET', '/blocks'),
  block: (userId) => request('PUT', `/blocks/${id(userId)}`),
  unblock: (userId) => request('DELETE', `/blocks/${id(userId)}`),

  conversations: () => request('GET', '/conversations'),
  openDirect: (userId) => request('POST', '/conversations/direct', { user_id: userId }),
  conversation: (conversationId) => request('GET', `/conversations/${id(conversationId)}`),
  messages: (conversationId, { beforeSeq, afterSeq, limit } = {}) => {
    const query = new URLSearchParams();
    if (beforeSeq !== undefined) query.set('before_seq', String(beforeSeq));
    if (afterSeq !== undefined) query.set('after_seq', String(afterSeq));
    if (limit !== undefined) query.set('limit', String(limit));
    const qs = query.toString();
    return request('GET', `/conversations/${id(conversationId)}/messages${qs ? `?${qs}` : ''}`);
  },
  markRead: (conversationId, seq) => request('POST', `/conversations/${id(conversationId)}/read`, { seq }),

  createGroup: (name, memberIds) => request('POST', '/groups', { name, member_ids: memberIds }),
  renameGroup: (groupId, name) => request('PATCH', `/groups/${id(groupId)}`, { name }),
  addMembers: (groupId, userIds) => request('POST', `/groups/${id(groupId)}/members`, { user_ids: userIds }),
  removeMember: (groupId, userId) => request('DELETE', `/groups/${id(groupId)}/members/${id(userId)}`),
  setRole: (groupId, userId, role) => request('PUT', `/groups/${id(groupId)}/members/${id(userId)}/role`, { role }),
  transferOwnership: (groupId, userId) => request('POST', `/groups/${id(groupId)}/transfer`, { user_id: userId }),
  leaveGroup: (groupId) => request('POST', `/groups/${id(groupId)}/leave`),
  disbandGroup: (groupId) => request('DELETE', `/groups/${id(groupId)}`),
  /** 204; members learn the new picture from the `avatar_changed` notice. */
  setGroupAvatar: (groupId, file) => rawRequest('PUT', `/groups/${id(groupId)}/avatar`, file),
};

function deviceName() {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? 'Edge' : /Firefox\//.test(ua) ? 'Firefox'
    : /Chrom(e|ium)\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : 'Browser';
  return `${browser} (web)`;
}
