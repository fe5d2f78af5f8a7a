// The WebSocket connection and everything that keeps the client's copy of
// the streams correct across drops: reconnect with exponential backoff,
// resync by seq from per-conversation cursors, gap filling, and pending
// sends that are resent with the same client_msg_id until acked (the
// server deduplicates them, so a resend never doubles a message).

import { api, ApiError, serverIsUp } from './api.js';
import { store } from './store.js';
import { uuid } from './util.js';

const SUBPROTOCOL = 'banter.v1';
// Browsers cannot set an Authorization header on the upgrade request, so the
// token travels as a second offered subprotocol (never in the URL, which
// would end up in logs).
const AUTH_SUBPROTOCOL_PREFIX = 'banter.auth.';

const BACKOFF_INITIAL_MS = 500;
const BACKOFF_MAX_MS = 15_000;
/**
 * While waiting out the backoff because the server did not answer, GET /healthz
 * is asked every HEALTH_POLL_MIN_MS plus up to HEALTH_POLL_JITTER_MS (the jitter
 * spreads the pages of a restarted server); the first answer ends the wait.
 */
const HEALTH_POLL_MIN_MS = 1_000;
const HEALTH_POLL_JITTER_MS = 1_000;
const HEALTH_POLL_TIMEOUT_MS = 2_000;
/** A send without an ack after this long is shown as failed, with a retry button. */
export const ACK_TIMEOUT_MS = 10_000;
/** Entries asked for per `sync` frame; we keep asking while has_more is true. */
const SYNC_PAGE_LIMIT = 200;
/** Send errors after which the same message may succeed later (protocol §7.3, step 5). */
const TRANSIENT_SEND_ERRORS = new Set(['rate_limited', 'internal', 'shutting_down']);
/** Pause before resending after a transient error, plus up to as much again at random. */
const TRANSIENT_RESEND_MS = 1_000;
/** Transient refusals of one message in a row after which it is shown as failed (with its
 *  retry button) instead of being resent again: a server failing for longer is broken. */
const TRANSIENT_RESENDS_MAX = 5;
/** The server drops typing frames sent more often than this per conversation; used
 *  until `hello` says (typing_interval_ms). */
const TYPING_SEND_INTERVAL_MS = 2_000;
/** The longest voice message the server takes, used until `hello` says
 *  (voice_duration_ms_max); the server's default. */
const VOICE_DURATION_MS_MAX_DEFAULT = 600_000;
/** Used until `hello` tells us the server's heartbeat interval. */
const DEFAULT_HEARTBEAT_SECS = 30;
/** Close code: the session was revoked or expired; reconnecting cannot help. */
const CLOSE_SESSION_ENDED = 4001;

function wsUrl() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/ws`;
}

export class Connection {
  /**
   * onSessionEnded: the token is no longer valid (log out).
   * onLiveMessage(message): a new entry arrived live (for notifications).
   * onRequestError(kind, code): a recall or similar request failed.
   * onResynced(): lists and cursors are current again after (re)connecting.
   */
  constructor({ token, onSessionEnded, onLiveMessage, onRequestError, onResynced }) {
    this.token = token;
    this.typingIntervalMs = TYPING_SEND_INTERVAL_MS;
    this.onSessionEnded = onSessionEnded;
    this.onLiveMessage = onLiveMessage ?? (() => {});
    this.onRequestError = onRequestError ?? (() => {});
    this.onResynced = onResynced ?? (() => {});
    this.ws = null;
    this.ready = false; // hello received on the current socket
    this.stopped = false;
    this.generation = 0; // bumps per socket, so late callbacks of old ones are ignored
    this.attempt = 0; // consecutive failed attempts, for the backoff
    this.retryTimer = null;
    this.healthTimer = null;
    this.heartbeatTimer = null;
    this.heartbeatMs = DEFAULT_HEARTBEAT_SECS * 1000;
    this.lastFrameAtMs = 0;
    this.nextRequestId = 0;
    this.requests = new Map(); // request id -> { kind, ... } awaiting a reply
    this.syncInFlight = new Set(); // conversation ids with a sync outstanding
    this.syncAgain = new Set(); // conversation ids that found a new gap meanwhile
    this.lastTypingSentMs = new Map();
    this.messageBytesMax = 16 * 1024;
    // The largest upload the server takes (file_bytes_max); null until `hello` says,
    // and meanwhile the server alone decides (a refused upload is shown as failed).
    this.fileBytesMax = null;
    this.voiceDurationMsMax = VOICE_DURATION_MS_MAX_DEFAULT;
    this.refreshTimer = null;
    this.onBrowserOnline = () => this.reconnectNow();
    window.addEventListener('online', this.onBrowserOnline);
  }

  start() {
    this.#open();
  }

  /** Logging out: close for good and forget unsent messages. */
  stop() {
    this.stopped = true;
    window.removeEventListener('online', this.onBrowserOnline);
    clearTimeout(this.retryTimer);
    clearTimeout(this.healthTimer);
    this.healthTimer = null;
    clearTimeout(this.refreshTimer);
    clearInterval(this.heartbeatTimer);
    for (const pending of store.pending.values()) {
      clearTimeout(pending.timer);
      pending.abort?.(); // uploads in flight belong to the session too
    }
    clearTimeout(this.transientTimer);
    this.transientTimer = null;
    const ws = this.ws;
    this.ws = null;
    this.ready = false;
    if (ws) ws.close(1000);
  }

  /** Skip the rest of the backoff wait (the banner's "Retry now", the browser going online). */
  reconnectNow() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.retryTimer);
    clearTimeout(this.healthTimer);
    this.healthTimer = null;
    this.attempt = 0;
    this.#probeThenOpen();
  }

  // ---- socket lifecycle ----

  #open() {
    if (this.stopped) return;
    this.generation += 1;
    this.ready = false;
    store.setConnection({ state: store.connection.everConnected ? 'reconnecting' : 'connecting' });
    let ws;
    try {
      ws = new WebSocket(wsUrl(), [SUBPROTOCOL, AUTH_SUBPROTOCOL_PREFIX + this.token]);
    } catch {
      this.#scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.lastFrameAtMs = Date.now();
    ws.onmessage = (event) => {
      if (this.ws !== ws) return;
      this.lastFrameAtMs = Date.now();
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return; // not ours to fix; the server only sends JSON
      }
      this.#onFrame(frame);
    };
    ws.onclose = (event) => {
      if (this.ws === ws) this.#lost(event.code);
    };
  }

  /** The current socket is gone, whoever noticed first. */
  #lost(code) {
    this.ws = null;
    this.ready = false;
    clearInterval(this.heartbeatTimer);
    store.presenceLost();
    // Replies to requests on the dead socket will never come. Pending sends
    // stay in the store and are resent after the next hello.
    this.requests.clear();
    this.syncInFlight.clear();
    this.syncAgain.clear();
    if (this.stopped) return;
    if (code === CLOSE_SESSION_ENDED) {
      this.onSessionEnded();
      return;
    }
    this.#scheduleReconnect();
  }

  /** Closes a socket that looks dead (no frames for too long) and reconnects. */
  #drop() {
    const ws = this.ws;
    if (!ws) return;
    this.#lost(1006);
    try {
      ws.close(1000);
    } catch {
      // already closing
    }
  }

  /**
   * `unreachable`: the server did not answer at all, so it is down (or the
   * network is): poll /healthz meanwhile and go at once when it answers.
   * Otherwise it answered but the socket failed (e.g. it is at its connection
   * cap), and only the backoff keeps us from hammering it.
   */
  #scheduleReconnect({ unreachable = false } = {}) {
    // Full backoff doubles per failed attempt; jitter spreads out the
    // reconnect storm after a server restart.
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_INITIAL_MS * 2 ** this.attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.attempt += 1;
    store.setConnection({ state: 'offline', retryAtMs: Date.now() + delay });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.#probeThenOpen(), delay);
    clearTimeout(this.healthTimer);
    this.healthTimer = unreachable ? this.#scheduleHealthPoll() : null;
  }

  #scheduleHealthPoll() {
    const wait = HEALTH_POLL_MIN_MS + Math.random() * HEALTH_POLL_JITTER_MS;
    const timer = setTimeout(async () => {
      const up = await serverIsUp(HEALTH_POLL_TIMEOUT_MS);
      // Still this poll's wait? (Not stopped, retried or rescheduled meanwhile.)
      if (this.healthTimer !== timer || this.stopped || this.ws) return;
      if (up) this.reconnectNow();
      else this.healthTimer = this.#scheduleHealthPoll();
    }, wait);
    return timer;
  }

  /**
   * A failed WebSocket upgrade tells the page nothing (no status), so ask
   * over HTTP first: 401 means the session is over (the API's handler logs
   * out), a network error means the server is still down.
   */
  async #probeThenOpen() {
    this.retryTimer = null;
    clearTimeout(this.healthTimer);
    this.healthTimer = null;
    if (this.stopped || this.ws) return;
    store.setConnection({ state: 'reconnecting' });
    try {
      await api.me();
    } catch (err) {
      if (this.stopped) return;
      if (err instanceof ApiError && err.code === 'unauthorized') return;
      this.#scheduleReconnect({ unreachable: !(err instanceof ApiError) });
      return;
    }
    if (!this.stopped && !this.ws) this.#open();
  }

  #startHeartbeat() {
    clearInterval(this.heartbeatTimer);
    // The server pings at the protocol level too, but the page cannot see
    // those; our own ping/pong notices a silently dead network path.
    this.heartbeatTimer = setInterval(() => {
      if (Date.now() - this.lastFrameAtMs > 2 * this.heartbeatMs + 1000) {
        this.#drop();
        return;
      }
      this.#request({ type: 'ping' }, { kind: 'ping' });
    }, this.heartbeatMs);
  }

  // ---- frames ----

  #send(frame) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  #request(frame, meta) {
    this.nextRequestId += 1;
    const id = `r${this.nextRequestId}`;
    this.requests.set(id, meta);
    const { type, ...rest } = frame;
    if (!this.#send({ type, id, ...rest })) this.requests.delete(id);
    return id;
  }

  #onFrame(frame) {
    switch (frame.type) {
      case 'hello':
        this.ready = true;
        this.attempt = 0;
        this.heartbeatMs = (frame.heartbeat_interval_secs || DEFAULT_HEARTBEAT_SECS) * 1000;
        if (frame.message_bytes_max) this.messageBytesMax = frame.message_bytes_max;
        if (Number.isFinite(frame.typing_interval_ms)) this.typingIntervalMs = frame.typing_interval_ms;
        if (Number.isFinite(frame.recall_window_secs)) store.recallWindowMs = frame.recall_window_secs * 1000;
        if (Number.isFinite(frame.file_bytes_max) && frame.file_bytes_max > 0) this.fileBytesMax = frame.file_bytes_max;
        if (Number.isFinite(frame.voice_duration_ms_max) && frame.voice_duration_ms_max > 0) {
          this.voiceDurationMsMax = frame.voice_duration_ms_max;
        }
        this.#startHeartbeat();
        store.setConnection({ state: 'open', everConnected: true });
        this.#resync(this.generation);
        break;
      case 'presence_snapshot':
        store.setOnline(frame.online_user_ids);
        break;
      case 'ack':
        this.#onAck(frame);
        break;
      case 'done':
      case 'pong':
        this.requests.delete(frame.id);
        break;
      case 'synced':
        this.#onSynced(frame);
        break;
      case 'error':
        this.#onError(frame);
        break;
      case 'message_created':
        this.#onMessage(frame.message);
        break;
      case 'read_updated':
        store.readUpdated(frame.conversation_id, frame.user_id, frame.seq);
        break;
      case 'typing_started':
        store.typingStarted(frame.conversation_id, frame.user_id);
        break;
      case 'presence_changed':
        store.presenceChanged(frame.user_id, frame.online);
        break;
      case 'friend_request_received':
      case 'friend_request_updated':
        store.requestChanged(frame.request);
        break;
      case 'friend_added':
        store.friendAdded(frame.user);
        break;
      case 'friend_removed':
        store.friendRemoved(frame.user_id);
        break;
      case 'conversation_joined': {
        const conv = store.upsertConversation(frame.conversation);
        if (conv.summary.last_seq > conv.cursor) this.syncConversation(conv.id);
        break;
      }
      case 'conversation_left':
        store.removeConversation(frame.conversation_id);
        break;
      default:
        // A newer server may send events this client does not know; ignore them.
        break;
    }
  }

  #onMessage(message) {
    const result = store.receiveMessage(message);
    if (result === 'unknown') {
      // A conversation we have not heard of (e.g. a direct chat the peer
      // just opened): fetch the list; its summary covers this message.
      this.#refreshConversationsSoon();
      return;
    }
    if (result === 'gap') this.syncConversation(message.conversation_id);
    if (result === 'ok' || result === 'gap') this.onLiveMessage(message);
    // A recall of a message we never loaded: the server's unread count is the truth.
    if (store.takeUnreadUnsure(message.conversation_id)) this.#refreshConversationsSoon();
  }

  #onAck(frame) {
    const meta = this.requests.get(frame.id);
    this.requests.delete(frame.id);
    if (meta?.kind !== 'send' && !frame.client_msg_id) return;
    const pending = store.pending.get(frame.client_msg_id ?? meta.clientMsgId);
    if (!pending) return; // message_created got here first
    clearTimeout(pending.timer);
    store.pending.delete(pending.clientMsgId);
    const result = store.receiveMessage({
      id: frame.message_id,
      conversation_id: frame.conversation_id,
      seq: frame.seq,
      sender_id: store.me.id,
      client_msg_id: pending.clientMsgId,
      created_at_ms: frame.created_at_ms,
      content: pending.attachment
        ? { kind: 'media', caption: pending.text, attachment: pending.media, recalled: false }
        : { kind: 'text', text: pending.text, recalled: false },
    });
    if (result === 'gap') this.syncConversation(frame.conversation_id);
    store.emit('messages');
  }

  #onError(frame) {
    const meta = frame.id ? this.requests.get(frame.id) : null;
    if (frame.id) this.requests.delete(frame.id);
    switch (meta?.kind) {
      case 'send': {
        const pending = store.pending.get(meta.clientMsgId);
        if (pending) pending.transientRefusals = (pending.transientRefusals ?? 0) + 1;
        if (pending && TRANSIENT_SEND_ERRORS.has(frame.code) && pending.transientRefusals <= TRANSIENT_RESENDS_MAX) {
          // The server could not take it now (its message rate, a failure not about this
          // message); the same client_msg_id later is safe (protocol §7.3), so it stays
          // "sending" and goes again after a pause, with every other such message, oldest
          // first, so that they keep the order they were written in.
          pending.waiting = true;
          if (!this.transientTimer) {
            this.transientTimer = setTimeout(() => {
              this.transientTimer = null;
              this.#resendWaiting();
            }, TRANSIENT_RESEND_MS + Math.random() * TRANSIENT_RESEND_MS);
          }
        } else if (pending) {
          clearTimeout(pending.timer);
          pending.status = 'failed';
          // With an attachment, not_found is (almost always) its upload: deleted after a
          // day without a message, or never ours.
          pending.error = pending.attachment && frame.code === 'not_found' ? 'upload.expired' : frame.code;
          store.emit('messages');
        }
        break;
      }
      case 'sync':
        this.syncInFlight.delete(meta.conversationId);
        // not_found: we were removed meanwhile; the refreshed list drops it.
        if (frame.code === 'not_found') this.#refreshConversationsSoon();
        break;
      case 'recall':
        this.onRequestError('recall', frame.code);
        break;
      default:
        console.warn('banter: server error', frame.code, frame.message);
        break;
    }
  }

  // ---- resync ----

  /**
   * After every hello: fetch the lists (they may have changed while we were
   * away), then sync each conversation whose last_seq is past our cursor,
   * then resend what was never acked.
   */
  async #resync(generation) {
    let lists;
    try {
      lists = await Promise.all([api.conversations(), api.friends(), api.friendRequests(), api.blocks()]);
    } catch (err) {
      if (generation === this.generation && !(err instanceof ApiError && err.code === 'unauthorized')) this.#drop();
      return;
    }
    if (generation !== this.generation || !this.ready) return;
    const [conversations, friends, requests, blocks] = lists;
    store.setConversations(conversations);
    store.setFriends(friends);
    store.setRequests(requests);
    store.setBlocks(blocks);
    for (const conv of store.conversations.values()) {
      if (conv.summary.last_seq > conv.cursor) this.syncConversation(conv.id);
    }
    this.#resendPending();
    this.onResynced();
  }

  #refreshConversationsSoon() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(async () => {
      const generation = this.generation;
      try {
        const list = await api.conversations();
        if (generation !== this.generation) return;
        store.setConversations(list);
        for (const conv of store.conversations.values()) {
          if (conv.summary.last_seq > conv.cursor) this.syncConversation(conv.id);
        }
      } catch {
        // The next reconnect resyncs everything anyway.
      }
    }, 200);
  }

  /** Fetches entries after the cursor until the server says there are no more. */
  syncConversation(conversationId) {
    if (!this.ready) return; // the resync after the next hello covers it
    if (this.syncInFlight.has(conversationId)) {
      this.syncAgain.add(conversationId);
      return;
    }
    const conv = store.conversation(conversationId);
    if (!conv) return;
    this.syncInFlight.add(conversationId);
    this.#request(
      { type: 'sync', conversation_id: conversationId, after_seq: conv.cursor, limit: SYNC_PAGE_LIMIT },
      { kind: 'sync', conversationId, afterSeq: conv.cursor },
    );
  }

  #onSynced(frame) {
    const meta = this.requests.get(frame.id);
    this.requests.delete(frame.id);
    const conversationId = frame.conversation_id;
    this.syncInFlight.delete(conversationId);
    for (const message of frame.messages) store.receiveMessage(message);
    if (store.takeUnreadUnsure(conversationId)) this.#refreshConversationsSoon();
    const conv = store.conversation(conversationId);
    if (!conv) return;
    const progressed = conv.cursor > (meta?.afterSeq ?? -1);
    // Stop if a page did not move the cursor: asking again would loop.
    if (frame.has_more && progressed) {
      this.syncConversation(conversationId);
    } else if (this.syncAgain.delete(conversationId)) {
      const gapRemains = [...conv.entries.keys()].some((seq) => seq > conv.cursor);
      if (gapRemains || conv.summary.last_seq > conv.cursor) this.syncConversation(conversationId);
    }
  }

  // ---- user actions ----

  sendMessage(conversationId, text) {
    const pending = {
      stage: 'send',
      clientMsgId: uuid(),
      conversationId,
      text,
      status: 'pending',
      error: null,
      createdAtMs: Date.now(),
      timer: null,
    };
    store.pending.set(pending.clientMsgId, pending);
    this.#transmit(pending);
  }

  /**
   * Sends a pending message whose attachment has just been uploaded (uploads.js):
   * from here on it is an ordinary pending send.
   */
  transmitPending(pending) {
    if (store.pending.get(pending.clientMsgId) !== pending) return;
    this.#transmit(pending);
  }

  /** Resends a failed message with its original client_msg_id. */
  retry(clientMsgId) {
    const pending = store.pending.get(clientMsgId);
    if (!pending || pending.stage === 'upload') return;
    pending.transientRefusals = 0;
    this.#transmit(pending);
  }

  /** Drops a failed message the user no longer wants to send. */
  discard(clientMsgId) {
    const pending = store.pending.get(clientMsgId);
    if (!pending) return;
    clearTimeout(pending.timer);
    pending.abort?.();
    store.pending.delete(clientMsgId);
    store.emit('messages');
  }

  #transmit(pending) {
    pending.status = 'pending';
    pending.error = null;
    pending.waiting = false;
    clearTimeout(pending.timer);
    pending.timer = setTimeout(() => {
      if (store.pending.get(pending.clientMsgId) !== pending || pending.status !== 'pending') return;
      pending.status = 'failed';
      pending.error = 'timeout';
      store.emit('messages');
    }, ACK_TIMEOUT_MS);
    if (this.ready) {
      const frame = { type: 'send_message', conversation_id: pending.conversationId, client_msg_id: pending.clientMsgId, text: pending.text };
      if (pending.attachment) frame.attachment = pending.attachment;
      this.#request(frame, { kind: 'send', clientMsgId: pending.clientMsgId });
    }
    store.emit('messages');
  }

  /** Resends, oldest first, the messages refused for a transient reason. */
  #resendWaiting() {
    const waiting = [...store.pending.values()]
      .filter((p) => p.waiting && p.status === 'pending' && p.stage !== 'upload')
      .sort((a, b) => a.createdAtMs - b.createdAtMs);
    for (const pending of waiting) this.#transmit(pending);
  }

  #resendPending() {
    const all = [...store.pending.values()].sort((a, b) => a.createdAtMs - b.createdAtMs);
    for (const pending of all) {
      // Still uploading (or its upload failed): the upload sends it when it is done.
      if (pending.stage === 'upload' && store.conversation(pending.conversationId)) continue;
      if (store.conversation(pending.conversationId)) {
        this.#transmit(pending);
      } else {
        // We are no longer in that conversation: the message can never be delivered.
        store.pending.delete(pending.clientMsgId);
        store.emit('messages');
      }
    }
  }

  recall(conversationId, messageId) {
    if (!this.ready) {
      this.onRequestError('recall', 'offline');
      return;
    }
    this.#request({ type: 'recall_message', conversation_id: conversationId, message_id: messageId }, { kind: 'recall' });
  }

  /** Moves our read pointer; the badge clears at once, the server is told if connected. */
  markRead(conversationId, seq) {
    store.markedRead(conversationId, seq);
    if (this.ready) {
      this.#request({ type: 'mark_read', conversation_id: conversationId, seq }, { kind: 'mark_read' });
    }
  }

  typing(conversationId) {
    if (!this.ready) return;
    const now = Date.now();
    if (now - (this.lastTypingSentMs.get(conversationId) ?? 0) < this.typingIntervalMs) return;
    this.lastTypingSentMs.set(conversationId, now);
    this.#send({ type: 'typing', conversation_id: conversationId });
  }
}

// ---- unsent messages survive a reload ----

const OUTBOX_KEY_PREFIX = 'banter.outbox.';

/**
 * Puts back the messages that were still unacked when the page was closed;
 * the resync after the next hello sends them with their original
 * client_msg_id, so one that did reach the server is not stored twice.
 */
export function restoreOutbox(userId) {
  let saved = [];
  try {
    saved = JSON.parse(localStorage.getItem(OUTBOX_KEY_PREFIX + userId)) ?? [];
  } catch {
    saved = [];
  }
  for (const p of Array.isArray(saved) ? saved : []) {
    if (typeof p?.clientMsgId !== 'string' || typeof p.text !== 'string') continue;
    const attached = typeof p.attachment?.upload_id === 'string' && typeof p.media?.upload_id === 'string';
    store.pending.set(p.clientMsgId, {
      clientMsgId: p.clientMsgId, conversationId: p.conversationId, text: p.text,
      createdAtMs: p.createdAtMs, status: 'pending', stage: 'send', error: null, timer: null,
      attachment: attached ? p.attachment : null, media: attached ? p.media : null,
    });
  }
  if (store.pending.size) store.emit('messages');
}

export function saveOutbox(userId) {
  const key = OUTBOX_KEY_PREFIX + userId;
  // A message still uploading cannot be saved (its file is only in this page's memory);
  // one whose upload is done goes with its attachment.
  const list = [...store.pending.values()].filter((p) => p.stage !== 'upload')
    .map(({ clientMsgId, conversationId, text, createdAtMs, attachment, media }) =>
      (attachment ? { clientMsgId, conversationId, text, createdAtMs, attachment, media } : { clientMsgId, conversationId, text, createdAtMs }));
  try {
    if (list.length) localStorage.setItem(key, JSON.stringify(list));
    else localStorage.removeItem(key);
  } catch {
    // Storage full or disabled: the messages still go out while the page stays open.
  }
}

export function clearOutbox(userId) {
  localStorage.removeItem(OUTBOX_KEY_PREFIX + userId);
}
