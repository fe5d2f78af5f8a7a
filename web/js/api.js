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
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(BASE + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (err) {
    throw new NetworkError(err);
  }
  const text = await response.text().catch(() => '');
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    // A proxy in front of a stopped server answers 502/504 without our body.
    if (!data?.code && response.status >= 502 && response.status <= 504) throw new NetworkError();
    const code = data?.code ?? (response.status === 401 ? 'unauthorized' : 'internal');
    const sentToken = headers.Authorization !== undefined;
    if (code === 'unauthorized' && sentToken) onUnauthorized();
    throw new ApiError(response.status, code, data?.message);
  }
  return data;
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
};

function deviceName() {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? 'Edge' : /Firefox\//.test(ua) ? 'Firefox'
    : /Chrom(e|ium)\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : 'Browser';
  return `${browser} (web)`;
}
