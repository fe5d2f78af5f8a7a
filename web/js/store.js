// The client's state, in one place. Other modules change it only through
// the methods below; each change names the topics it touched, and the UI
// re-renders only what depends on them (batched once per task). Nothing
// here touches the DOM or the network.

/** How long "X is typing…" stays up after a typing_started event. */
export const TYPING_SHOW_MS = 4000;

/**
 * Per-conversation state.
 *   entries: seq -> Message. Holds a contiguous run of the stream ending at
 *            `cursor`, plus (briefly) live entries beyond a gap until sync
 *            fills it.
 *   cursor:  the highest seq seen contiguously. Starts at the summary's
 *            last_seq the first time we hear of a conversation: history
 *            older than that is fetched lazily when the chat is opened.
 */
function newConversation(summary) {
  return {
    id: summary.id,
    summary,
    entries: new Map(),
    cursor: summary.last_seq,
    // The server's unread_count covers the stream up to this seq; entries
    // above it are counted here as they arrive (each seq arrives once).
    unreadCountedThrough: summary.last_seq,
    // A recall whose target we do not hold may have made unread_count too
    // high: the caller should fetch the server's count (takeUnreadUnsure).
    unreadUnsure: false,
    historyLoaded: false,
    hasMoreBefore: summary.last_seq > 0,
    loadingOlder: false,
    members: null, // [Member] from GET /conversations/{id}
    membersStale: true,
    readSeqs: new Map(), // userId -> read_seq, from members + read_updated
    typing: new Map(), // userId -> expiry (ms since epoch)
  };
}

/** A message someone wrote (text or media), as opposed to a recall or a notice. */
export function isMessage(message) {
  const kind = message?.content?.kind;
  return kind === 'text' || kind === 'media';
}

/** What a recall leaves of a message: blanked, in its own kind (protocol §6.8). */
function recalledContent(content) {
  return content.kind === 'media'
    ? { kind: 'media', caption: '', attachment: null, recalled: true }
    : { kind: 'text', text: '', recalled: true };
}

class Store {
  constructor() {
    this.listeners = new Set();
    this.dirty = new Set();
    this.flushScheduled = false;
    this.reset();
  }

  reset() {
    this.me = null;
    /** How long one may recall one's own message; `hello` says (recall_window_secs). */
    this.recallWindowMs = 2 * 60 * 1000;
    this.conversations = new Map();
    this.friends = new Map(); // userId -> Friend
    this.requests = { incoming: [], outgoing: [] };
    this.blocks = [];
    this.users = new Map(); // userId -> UserProfile, everyone we have seen
    this.online = new Set();
    // Presence is only known while connected: from the snapshot after hello
    // until the socket is lost. Before and in between, nobody is "online" or
    // "offline", and the UI says so.
    this.presenceKnown = false;
    this.pending = new Map(); // clientMsgId -> pending send (see socket.js)
    this.connection = { state: 'connecting', retryAtMs: 0, everConnected: false };
    this.emit('all');
  }

  // ---- change notification ----

  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(...topics) {
    for (const topic of topics) this.dirty.add(topic);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // setTimeout rather than requestAnimationFrame: rAF does not run in
    // background tabs, and messages must still be processed (and read
    // pointers, titles and notifications updated) there.
    setTimeout(() => {
      this.flushScheduled = false;
      const topics = this.dirty;
      this.dirty = new Set();
      for (const fn of this.listeners) fn(topics);
    }, 0);
  }

  // ---- users ----

  setMe(profile) {
    this.me = profile;
    this.rememberUser(profile);
    this.emit('me');
  }

  rememberUser(profile) {
    if (!profile) return;
    const known = this.users.get(profile.id);
    this.users.set(profile.id, profile);
    if (!known || known.nickname !== profile.nickname || known.avatar_url !== profile.avatar_url) {
      this.emit('users');
    }
  }

  user(userId) {
    return this.users.get(userId) ?? null;
  }

  isOnline(userId) {
    return this.presenceKnown && this.online.has(userId);
  }

  /** 'online', 'offline', or 'unknown' while we are not connected. */
  presence(userId) {
    if (!this.presenceKnown) return 'unknown';
    return this.online.has(userId) ? 'online' : 'offline';
  }

  /** The presence snapshot that follows every hello: who is online now. */
  setOnline(userIds) {
    this.online = new Set(userIds);
    this.presenceKnown = true;
    this.emit('presence');
  }

  /** The connection is gone: presence events can no longer reach us. */
  presenceLost() {
    if (!this.presenceKnown) return;
    this.presenceKnown = false;
    this.emit('presence');
  }

  presenceChanged(userId, online) {
    if (online) this.online.add(userId);
    else this.online.delete(userId);
    const friend = this.friends.get(userId);
    if (friend) friend.online = online;
    for (const conv of this.conversations.values()) {
      if (conv.summary.peer?.id === userId) conv.summary.peer_online = online;
    }
    this.emit('presence');
  }

  // ---- conversations ----

  /** Applies GET /api/v1/conversations: the server's list is the truth. */
  setConversations(list) {
    const seen = new Set();
    for (const summary of list) {
      seen.add(summary.id);
      this.rememberUser(summary.peer);
      const conv = this.conversations.get(summary.id);
      if (!conv) {
        this.conversations.set(summary.id, newConversation(summary));
      } else if (conv.summary.last_seq > summary.last_seq) {
        // A live event overtook this (older) list; keep what we already know.
        Object.assign(conv.summary, { ...summary, last_seq: conv.summary.last_seq,
          last_message: conv.summary.last_message, last_activity_ms: conv.summary.last_activity_ms,
          unread_count: conv.summary.unread_count, read_seq: Math.max(conv.summary.read_seq, summary.read_seq) });
      } else {
        conv.summary = summary;
        conv.unreadCountedThrough = Math.max(conv.unreadCountedThrough, summary.last_seq);
      }
      // Others' read pointers moved while we were away, with no replay (only
      // read_updated, live): refetch the members when the chat is shown.
      if (conv) conv.membersStale = true;
      if (summary.peer && summary.peer_online !== null && summary.peer_online !== undefined) {
        if (summary.peer_online) this.online.add(summary.peer.id);
        else this.online.delete(summary.peer.id);
      }
    }
    for (const id of [...this.conversations.keys()]) {
      if (!seen.has(id)) this.conversations.delete(id);
    }
    this.emit('conversations', 'messages', 'presence', 'members');
  }

  /** A conversation we just joined, created or opened. */
  upsertConversation(summary) {
    this.rememberUser(summary.peer);
    const conv = this.conversations.get(summary.id);
    if (conv) {
      if (summary.last_seq >= conv.summary.last_seq) {
        conv.summary = summary;
        conv.unreadCountedThrough = Math.max(conv.unreadCountedThrough, summary.last_seq);
      }
    } else {
      this.conversations.set(summary.id, newConversation(summary));
    }
    this.emit('conversations');
    return this.conversations.get(summary.id);
  }

  removeConversation(conversationId) {
    if (!this.conversations.delete(conversationId)) return;
    for (const [clientMsgId, pending] of this.pending) {
      if (pending.conversationId === conversationId) {
        clearTimeout(pending.timer);
        pending.abort?.(); // an upload in flight for it
        this.pending.delete(clientMsgId);
      }
    }
    this.emit('conversations', 'messages', 'left:' + conversationId);
  }

  conversation(conversationId) {
    return this.conversations.get(conversationId) ?? null;
  }

  /** Conversations by latest activity, newest first. */
  sortedConversations() {
    return [...this.conversations.values()].sort((a, b) =>
      b.summary.last_activity_ms - a.summary.last_activity_ms || b.id - a.id);
  }

  totalUnread() {
    let total = 0;
    for (const conv of this.conversations.values()) total += conv.summary.unread_count;
    return total;
  }

  directConversationWith(userId) {
    for (const conv of this.conversations.values()) {
      if (conv.summary.kind === 'direct' && conv.summary.peer?.id === userId) return conv;
    }
    return null;
  }

  // ---- messages ----

  /**
   * A new stream entry, live (message_created) or from sync. Returns
   *   'unknown' the conversation is not in our list (caller refreshes it),
   *   'duplicate' seq <= cursor or already held: dropped,
   *   'gap'     stored, but entries between cursor and it are missing,
   *   'ok'      stored and the cursor moved.
   */
  receiveMessage(message) {
    const conv = this.conversations.get(message.conversation_id);
    if (!conv) return 'unknown';
    if (message.seq <= conv.cursor || conv.entries.has(message.seq)) return 'duplicate';
    conv.entries.set(message.seq, message);
    this.#applyEffects(conv, message);
    this.#advanceCursor(conv);
    this.emit('messages', 'conversations');
    return message.seq > conv.cursor ? 'gap' : 'ok';
  }

  /** Older entries fetched over REST (scrolling up, or the first open). */
  addHistory(conversationId, page) {
    const conv = this.conversations.get(conversationId);
    if (!conv) return;
    for (const message of page.messages) {
      if (conv.entries.has(message.seq)) continue;
      conv.entries.set(message.seq, message);
      this.#dropPendingFor(message);
      // The server reports recalled targets already blanked; a recall entry
      // in the page still blanks a target we held from before.
      if (message.content.kind === 'recall') this.#applyRecall(conv, message);
    }
    conv.historyLoaded = true;
    conv.hasMoreBefore = page.has_more;
    this.#advanceCursor(conv);
    this.emit('messages');
  }

  #advanceCursor(conv) {
    while (conv.entries.has(conv.cursor + 1)) conv.cursor += 1;
  }

  #applyEffects(conv, message) {
    const s = conv.summary;
    this.#dropPendingFor(message);
    // Their message is what they were typing: the line goes in the same render.
    if (conv.typing.delete(message.sender_id)) this.emit('typing');
    if (message.seq >= s.last_seq) {
      s.last_seq = message.seq;
      if (message.content.kind !== 'recall') s.last_message = message;
    }
    s.last_activity_ms = Math.max(s.last_activity_ms, message.created_at_ms);
    const mine = message.sender_id === this.me?.id;
    // Not yet in the server's count. Entries filling a gap below a later
    // live entry count too: receiveMessage lets each seq through only once.
    const uncounted = message.seq > conv.unreadCountedThrough;
    if (uncounted && this.#countsAsUnread(message, s.read_seq)) s.unread_count += 1;
    // Sending implies having read everything before it (on this or another device).
    if (mine && message.seq > s.read_seq) {
      s.read_seq = message.seq;
      s.unread_count = 0;
    }
    switch (message.content.kind) {
      case 'recall':
        this.#applyRecall(conv, message, { uncounted });
        break;
      case 'system':
        this.#applyNotice(conv, message.content.notice);
        break;
      default:
        break;
    }
  }

  /**
   * Whether the server counts `message` as unread for us: a text or media message
   * from someone else, not recalled, after read_seq.
   */
  #countsAsUnread(message, readSeq) {
    return message.sender_id !== this.me?.id && isMessage(message)
      && !message.content.recalled && message.seq > readSeq;
  }

  /**
   * Blanks the recall's target. `uncounted`: the recall is newer than the
   * server's unread count, so that count (or ours) still includes the target
   * if it was unread; recalled texts are not unread, so take it off.
   */
  #applyRecall(conv, recall, { uncounted = false } = {}) {
    const s = conv.summary;
    const targetId = recall.content.target_id;
    let target = null;
    for (const entry of conv.entries.values()) {
      if (entry.id === targetId && isMessage(entry)) {
        target = entry;
        break;
      }
    }
    const last = s.last_message;
    const lastIsTarget = last && last.id === targetId && isMessage(last);
    if (uncounted) {
      const known = target ?? (lastIsTarget ? last : null);
      if (known) {
        if (this.#countsAsUnread(known, s.read_seq)) s.unread_count = Math.max(0, s.unread_count - 1);
      } else if (s.unread_count > 0) {
        // An older target we never loaded: only the server knows whether it was unread.
        conv.unreadUnsure = true;
      }
    }
    if (target) target.content = recalledContent(target.content);
    if (lastIsTarget) s.last_message = { ...last, content: recalledContent(last.content) };
  }

  /** True (once) if a recall left this conversation's unread count in doubt; refetch the list then. */
  takeUnreadUnsure(conversationId) {
    const conv = this.conversations.get(conversationId);
    if (!conv?.unreadUnsure) return false;
    conv.unreadUnsure = false;
    return true;
  }

  #applyNotice(conv, notice) {
    const s = conv.summary;
    switch (notice.event) {
      case 'renamed':
        s.name = notice.name;
        break;
      case 'avatar_changed':
        s.avatar_url = notice.avatar_url;
        break;
      case 'members_added':
        s.member_count += notice.user_ids.length;
        break;
      case 'member_removed':
      case 'member_left':
        s.member_count = Math.max(0, s.member_count - 1);
        break;
      default:
        break;
    }
    // Membership or roles changed: the member list must be fetched again.
    conv.membersStale = true;
    this.emit('members');
  }

  #dropPendingFor(message) {
    if (!message.client_msg_id || message.sender_id !== this.me?.id) return;
    const pending = this.pending.get(message.client_msg_id);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.pending.delete(message.client_msg_id);
    this.emit('messages');
  }

  /** Entries of a conversation in seq order. */
  sortedEntries(conversationId) {
    const conv = this.conversations.get(conversationId);
    if (!conv) return [];
    return [...conv.entries.values()].sort((a, b) => a.seq - b.seq);
  }

  pendingFor(conversationId) {
    return [...this.pending.values()]
      .filter((p) => p.conversationId === conversationId)
      .sort((a, b) => a.createdAtMs - b.createdAtMs);
  }

  // ---- members and read pointers ----

  setDetail(detail) {
    const conv = this.conversations.get(detail.summary.id);
    if (!conv) return;
    conv.members = detail.members;
    conv.membersStale = false;
    for (const member of detail.members) {
      this.rememberUser(member.user);
      const known = conv.readSeqs.get(member.user.id) ?? 0;
      conv.readSeqs.set(member.user.id, Math.max(known, member.read_seq));
    }
    // The detail's summary carries name, role and count; keep our live counters.
    const s = conv.summary;
    Object.assign(s, { name: detail.summary.name, my_role: detail.summary.my_role,
      member_count: detail.summary.member_count, peer: detail.summary.peer ?? s.peer,
      avatar_url: detail.summary.avatar_url ?? null });
    this.emit('members', 'conversations', 'messages');
  }

  readUpdated(conversationId, userId, seq) {
    const conv = this.conversations.get(conversationId);
    if (!conv) return;
    const known = conv.readSeqs.get(userId) ?? 0;
    if (seq > known) conv.readSeqs.set(userId, seq);
    if (userId === this.me?.id) this.markedRead(conversationId, seq);
    this.emit('messages');
  }

  /** Our own read pointer moved (this device or another). */
  markedRead(conversationId, seq) {
    const conv = this.conversations.get(conversationId);
    if (!conv || seq <= conv.summary.read_seq) return;
    conv.summary.read_seq = seq;
    if (seq >= conv.summary.last_seq) {
      conv.summary.unread_count = 0;
    } else {
      // Count what is still unread among the entries we hold.
      let unread = 0;
      for (const entry of conv.entries.values()) {
        if (this.#countsAsUnread(entry, seq)) unread += 1;
      }
      conv.summary.unread_count = Math.min(conv.summary.unread_count, unread);
    }
    this.emit('conversations');
  }

  // ---- typing ----

  typingStarted(conversationId, userId) {
    const conv = this.conversations.get(conversationId);
    if (!conv || userId === this.me?.id) return;
    conv.typing.set(userId, Date.now() + TYPING_SHOW_MS);
    this.emit('typing');
    setTimeout(() => {
      const expiry = conv.typing.get(userId);
      if (expiry !== undefined && expiry <= Date.now()) {
        conv.typing.delete(userId);
        this.emit('typing');
      }
    }, TYPING_SHOW_MS + 50);
  }

  typingUsers(conversationId) {
    const conv = this.conversations.get(conversationId);
    if (!conv) return [];
    const now = Date.now();
    return [...conv.typing].filter(([, expiry]) => expiry > now).map(([userId]) => userId);
  }

  // ---- friends, requests, blocks ----

  setFriends(list) {
    this.friends = new Map(list.map((f) => [f.user.id, f]));
    for (const f of list) {
      this.rememberUser(f.user);
      if (f.online) this.online.add(f.user.id);
      else this.online.delete(f.user.id);
    }
    this.emit('friends', 'presence');
  }

  friendAdded(profile) {
    this.rememberUser(profile);
    if (!this.friends.has(profile.id)) {
      this.friends.set(profile.id, { user: profile, online: this.online.has(profile.id), since_ms: Date.now() });
    }
    this.emit('friends');
  }

  friendRemoved(userId) {
    this.friends.delete(userId);
    this.emit('friends');
  }

  sortedFriends() {
    const online = (f) => (this.online.has(f.user.id) ? 1 : 0);
    return [...this.friends.values()].sort((a, b) =>
      online(b) - online(a) || a.user.nickname.localeCompare(b.user.nickname));
  }

  setRequests(list) {
    this.requests = { incoming: list.incoming, outgoing: list.outgoing };
    for (const r of [...list.incoming, ...list.outgoing]) {
      this.rememberUser(r.from);
      this.rememberUser(r.to);
    }
    this.emit('requests');
  }

  /** A request was received, sent, or changed status: pending ones stay listed. */
  requestChanged(request) {
    this.rememberUser(request.from);
    this.rememberUser(request.to);
    const incoming = request.to.id === this.me?.id;
    const key = incoming ? 'incoming' : 'outgoing';
    const list = this.requests[key].filter((r) => r.id !== request.id);
    if (request.status === 'pending') list.unshift(request);
    this.requests = { ...this.requests, [key]: list };
    this.emit('requests');
  }

  isBlocked(userId) {
    return this.blocks.some((b) => b.id === userId);
  }

  setBlocks(list) {
    this.blocks = list;
    for (const p of list) this.rememberUser(p);
    this.emit('blocks');
  }

  // ---- connection ----

  setConnection(changes) {
    Object.assign(this.connection, changes);
    this.emit('connection');
  }
}

export const store = new Store();
