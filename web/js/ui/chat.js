// The chat pane: header, message list (bubbles, day separators, receipts,
// recall, pending/failed sends), typing line and composer.
//
// The message list is rendered by key: each item (message, pending send,
// day separator) keeps its DOM node while its content is unchanged, so
// re-rendering on every event neither flickers nor loses the scroll
// position, an open menu or a text selection.

import { api } from '../api.js';
import { loadDraft, saveDraft } from '../drafts.js';
import { h, linkify, mount } from '../dom.js';
import { EMOJI } from '../emoji.js';
import { language, t } from '../i18n.js';
import { store } from '../store.js';
import { formatClock, sameDay } from '../util.js';
import {
  avatar, conversationAvatar, conversationTitle, daySeparatorText, displayName, errorText,
  noticeText, presenceText, recallMinutes, recalledText, toast,
} from './common.js';
import { icon } from './icons.js';
import { InfoPanel } from './info.js';

const HISTORY_PAGE_SIZE = 50;
/** Within this many pixels of the end counts as "at the bottom". */
const NEAR_BOTTOM_PX = 48;
/** Older history is fetched when the user scrolls this close to the top. */
const LOAD_OLDER_THRESHOLD_PX = 120;

export class ChatView {
  constructor(conversationId, { connection, onBack, onOpenChat }) {
    this.id = conversationId;
    this.connection = connection;
    this.onOpenChat = onOpenChat;
    this.nodes = new Map(); // item key -> { sig, node }
    this.firstKey = null;
    this.lastKey = null;
    this.stickToBottom = true; // the first render lands at the newest message
    this.infoPanel = null;
    this.menu = null;
    this.menuButton = null; // the button that opened `menu`; focus returns there
    this.onMenuKey = (e) => {
      if (e.key !== 'Escape') return;
      e.preventDefault();
      e.stopPropagation();
      this.closeMenu({ restoreFocus: true });
    };
    this.loadingDetail = false;

    this.title = h('span', { class: 'chat-title', testid: 'chat-title' });
    this.subtitle = h('span', { class: 'chat-subtitle', testid: 'chat-subtitle' });
    this.headerAvatar = h('span', { class: 'chat-avatar' });
    this.list = h('div', { class: 'message-list', testid: 'message-list', role: 'log', 'aria-live': 'polite' });
    this.list.addEventListener('scroll', () => this.onScroll());
    this.jumpButton = h('button', {
      type: 'button', class: 'jump-latest', testid: 'jump-to-latest', hidden: true,
      onClick: () => this.scrollToBottom(),
    }, t('chat.jumpToLatest'));
    this.typingLine = h('div', { class: 'typing-line', testid: 'typing-indicator', 'aria-live': 'polite' });
    this.input = h('textarea', {
      class: 'composer-input', testid: 'composer-input', rows: '3', placeholder: t('chat.placeholder'),
      'aria-label': t('chat.placeholder'),
      onKeydown: (e) => this.onComposerKey(e),
      onInput: () => {
        this.saveDraft();
        if (this.input.value.trim()) this.connection.typing(this.id);
      },
    });
    this.input.value = loadDraft(store.me?.id, this.id);
    this.emojiPanel = h('div', { class: 'emoji-panel', testid: 'emoji-panel', hidden: true, role: 'listbox' },
      EMOJI.map((e) => h('button', {
        type: 'button', class: 'emoji', testid: 'emoji', 'aria-label': e,
        onClick: () => this.insertText(e),
      }, e)));
    this.infoHost = h('aside', { class: 'info-panel', testid: 'info-panel', hidden: true });

    this.el = h('section', { class: 'chat', testid: 'chat-pane', dataset: { conversationId: String(conversationId) } },
      h('header', { class: 'chat-header' },
        h('button', { type: 'button', class: 'icon-btn back-btn', testid: 'back', 'aria-label': t('back'), onClick: onBack }, icon('back', 24)),
        this.headerAvatar,
        h('div', { class: 'chat-heading' }, this.title, this.subtitle),
        h('button', {
          type: 'button', class: 'icon-btn', testid: 'chat-info-toggle', 'aria-label': t('chat.details'), title: t('chat.details'),
          onClick: () => this.toggleInfo(),
        }, icon('more'))),
      h('div', { class: 'chat-body' },
        h('div', { class: 'chat-column' },
          h('div', { class: 'message-viewport' }, this.list, this.jumpButton),
          this.typingLine,
          h('footer', { class: 'composer' },
            this.emojiPanel,
            h('div', { class: 'composer-tools' },
              h('button', {
                type: 'button', class: 'icon-btn', testid: 'emoji-toggle', 'aria-label': t('chat.emoji'), title: t('chat.emoji'),
                onClick: () => { this.emojiPanel.hidden = !this.emojiPanel.hidden; },
              }, icon('smile', 22))),
            this.input,
            h('div', { class: 'composer-actions' },
              h('span', { class: 'hint' }, t('chat.enterHint')),
              h('button', { type: 'button', class: 'btn btn-primary', testid: 'send-button', onClick: () => this.send() }, t('chat.send'))))),
        this.infoHost));

    this.onDocumentClick = (e) => {
      if (this.menu && !this.menu.contains(e.target)) this.closeMenu();
      if (!this.emojiPanel.hidden && !this.emojiPanel.contains(e.target) && !e.target.closest?.('[data-testid=emoji-toggle]')) {
        this.emojiPanel.hidden = true;
      }
    };
    document.addEventListener('click', this.onDocumentClick, true);

    this.renderHeader();
    this.renderTyping();
    this.renderMessages();
    this.ensureHistory();
    this.ensureMembers();
  }

  destroy() {
    this.closeMenu();
    document.removeEventListener('click', this.onDocumentClick, true);
    this.infoPanel?.destroy();
    this.el.remove();
  }

  /** Called once the pane is in the document, when sizes (and so scrolling) work. */
  attached() {
    this.stickToBottom = true;
    this.renderMessages();
    // Phones would pop up the keyboard over the messages; focus only on wide screens.
    if (window.matchMedia('(min-width: 721px)').matches) this.input.focus();
  }

  update(topics) {
    const conv = store.conversation(this.id);
    if (!conv) return;
    const any = (...names) => names.some((n) => topics.has(n)) || topics.has('all');
    if (any('conversations', 'presence', 'users', 'members')) this.renderHeader();
    if (any('typing', 'users')) this.renderTyping();
    if (any('messages', 'members', 'users', 'me', 'conversations')) this.renderMessages();
    if (any('members') && conv.membersStale) this.ensureMembers();
    if (this.infoPanel) this.infoPanel.update(topics);
  }

  // ---- header and typing ----

  renderHeader() {
    const conv = store.conversation(this.id);
    if (!conv) return;
    const s = conv.summary;
    this.title.textContent = conversationTitle(conv);
    mount(this.headerAvatar, conversationAvatar(conv, 'sm'));
    if (s.kind === 'group') {
      this.subtitle.textContent = t('chat.members', { n: s.member_count });
      delete this.subtitle.dataset.presence;
    } else {
      const presence = s.peer ? store.presence(s.peer.id) : 'unknown';
      this.subtitle.textContent = presenceText(presence);
      this.subtitle.dataset.presence = presence;
    }
  }

  renderTyping() {
    const names = store.typingUsers(this.id).map((id) => displayName(id));
    let text = '';
    if (names.length === 1) text = t('chat.typingOne', { name: names[0] });
    else if (names.length === 2) text = t('chat.typingTwo', { a: names[0], b: names[1] });
    else if (names.length > 2) text = t('chat.typingMany');
    this.typingLine.textContent = text;
    this.typingLine.classList.toggle('active', Boolean(text));
  }

  // ---- history and members ----

  async ensureHistory() {
    const conv = store.conversation(this.id);
    if (conv && !conv.historyLoaded) await this.loadOlder();
  }

  async ensureMembers() {
    const conv = store.conversation(this.id);
    if (!conv || !conv.membersStale || this.loadingDetail) return;
    this.loadingDetail = true;
    try {
      store.setDetail(await api.conversation(this.id));
    } catch (err) {
      if (err.code !== 'unauthorized' && err.code !== 'network') toast(errorText(err), 'error');
    } finally {
      this.loadingDetail = false;
    }
  }

  async loadOlder() {
    const conv = store.conversation(this.id);
    if (!conv || conv.loadingOlder) return;
    if (conv.historyLoaded && !conv.hasMoreBefore) return;
    const entries = store.sortedEntries(this.id);
    const beforeSeq = entries.length ? entries[0].seq : conv.cursor + 1;
    if (beforeSeq <= 1) {
      conv.historyLoaded = true;
      conv.hasMoreBefore = false;
      this.renderMessages();
      return;
    }
    conv.loadingOlder = true;
    this.renderMessages();
    try {
      const page = await api.messages(this.id, { beforeSeq, limit: HISTORY_PAGE_SIZE });
      store.addHistory(this.id, page);
    } catch (err) {
      if (err.code !== 'unauthorized') toast(errorText(err), 'error');
    } finally {
      conv.loadingOlder = false;
      store.emit('messages');
    }
  }

  // ---- message list ----

  /** The list's items in display order, each with a key and a content signature. */
  items() {
    const conv = store.conversation(this.id);
    const group = conv.summary.kind === 'group';
    const items = [];
    if (conv.loadingOlder) items.push({ key: 'top', sig: 'loading', build: () => h('div', { class: 'list-status', testid: 'history-loading' }, t('chat.loadingOlder')) });
    else if (conv.historyLoaded && !conv.hasMoreBefore) items.push({ key: 'top', sig: `start:${language()}`, build: () => h('div', { class: 'list-status' }, t('chat.beginning')) });
    let previousMs = null;
    const addDay = (ms) => {
      if (previousMs === null || !sameDay(previousMs, ms)) {
        const label = daySeparatorText(ms);
        items.push({ key: `day:${new Date(ms).toDateString()}`, sig: label, build: () => h('div', { class: 'day-separator', testid: 'day-separator' }, h('span', {}, label)) });
      }
      previousMs = ms;
    };
    for (const message of store.sortedEntries(this.id)) {
      if (message.content.kind === 'recall') continue; // shown through its (blanked) target
      addDay(message.created_at_ms);
      const receipt = this.receiptFor(conv, message);
      const sig = JSON.stringify([message.content, receipt, displayName(message.sender_id), store.user(message.sender_id)?.avatar_url, conv.summary.my_role, group, language()]);
      items.push({ key: `m:${message.seq}`, sig, build: () => this.buildMessage(conv, message, receipt) });
    }
    for (const pending of store.pendingFor(this.id)) {
      addDay(pending.createdAtMs);
      const sig = JSON.stringify([pending.status, pending.error, pending.text, language()]);
      items.push({ key: `p:${pending.clientMsgId}`, sig, build: () => this.buildPending(pending) });
    }
    return items;
  }

  receiptFor(conv, message) {
    if (message.sender_id !== store.me?.id || message.content.kind !== 'text' || message.content.recalled) return null;
    if (!conv.members) return null; // read pointers not loaded yet
    if (conv.summary.kind === 'direct') {
      const peerId = conv.summary.peer?.id;
      return (conv.readSeqs.get(peerId) ?? 0) >= message.seq ? t('receipt.read') : t('receipt.unread');
    }
    let count = 0;
    for (const [userId, seq] of conv.readSeqs) {
      if (userId !== store.me.id && seq >= message.seq && conv.members.some((m) => m.user.id === userId)) count += 1;
    }
    return t('receipt.readCount', { n: count });
  }

  renderMessages() {
    const conv = store.conversation(this.id);
    if (!conv) return;
    const list = this.list;
    const wasAtBottom = list.scrollHeight - list.scrollTop - list.clientHeight < NEAR_BOTTOM_PX;
    const oldScrollTop = list.scrollTop;
    const oldDistanceFromEnd = list.scrollHeight - list.scrollTop;
    const oldFirstKey = this.firstKey;
    const oldLastKey = this.lastKey;

    const items = this.items();
    const keep = new Set();
    const nodes = items.map((item) => {
      keep.add(item.key);
      const cached = this.nodes.get(item.key);
      if (cached && cached.sig === item.sig) return cached.node;
      const node = item.build();
      this.nodes.set(item.key, { sig: item.sig, node });
      return node;
    });
    for (const key of [...this.nodes.keys()]) if (!keep.has(key)) this.nodes.delete(key);
    // Move nodes into order, touching only those out of place.
    let cursor = list.firstChild;
    for (const node of nodes) {
      if (node === cursor) {
        cursor = cursor.nextSibling;
        continue;
      }
      list.insertBefore(node, cursor);
    }
    while (cursor) {
      const next = cursor.nextSibling;
      cursor.remove();
      cursor = next;
    }

    const contentKeys = items.filter((i) => i.key.startsWith('m:') || i.key.startsWith('p:')).map((i) => i.key);
    this.firstKey = contentKeys[0] ?? null;
    this.lastKey = contentKeys[contentKeys.length - 1] ?? null;

    if (this.stickToBottom || wasAtBottom) {
      this.stickToBottom = false;
      list.scrollTop = list.scrollHeight;
      this.jumpButton.hidden = true;
    } else if (oldFirstKey && this.firstKey !== oldFirstKey && this.lastKey === oldLastKey) {
      // Older history was prepended: keep the same messages in view.
      list.scrollTop = list.scrollHeight - oldDistanceFromEnd;
    } else {
      list.scrollTop = oldScrollTop;
      if (this.lastKey !== oldLastKey && this.lastKey !== null) this.jumpButton.hidden = false;
    }

    // Not enough history to scroll yet: fetch more so scrolling up can work.
    if (list.scrollHeight <= list.clientHeight && conv.historyLoaded && conv.hasMoreBefore && !conv.loadingOlder) {
      this.loadOlder();
    }
    this.maybeMarkRead();
  }

  buildMessage(conv, message, receipt) {
    const c = message.content;
    if (c.kind === 'system') {
      return h('div', { class: 'notice', testid: 'system-notice', dataset: { seq: String(message.seq) } }, noticeText(c.notice));
    }
    if (c.recalled) {
      return h('div', { class: 'notice', testid: 'recalled-notice', dataset: { seq: String(message.seq) } }, recalledText(message));
    }
    const mine = message.sender_id === store.me?.id;
    const group = conv.summary.kind === 'group';
    const admin = group && (conv.summary.my_role === 'admin' || conv.summary.my_role === 'owner');
    const sender = store.user(message.sender_id) ?? { id: message.sender_id, nickname: displayName(message.sender_id) };
    const time = new Date(message.created_at_ms);
    return h('div', {
      class: `msg ${mine ? 'mine' : 'theirs'}`,
      testid: 'message',
      dataset: { seq: String(message.seq), messageId: String(message.id), senderId: String(message.sender_id), status: 'sent' },
    },
    avatar(sender, 'sm'),
    h('div', { class: 'msg-main' },
      group && !mine ? h('div', { class: 'msg-sender', testid: 'message-sender' }, displayName(message.sender_id)) : null,
      h('div', { class: 'bubble-row' },
        h('div', { class: 'bubble', testid: 'message-bubble' },
          h('span', { class: 'msg-text', testid: 'message-text' }, linkify(c.text))),
        mine || admin ? h('button', {
          type: 'button', class: 'msg-menu-btn', testid: 'message-menu', 'aria-label': t('message.actions'),
          onClick: (e) => this.openMenu(e.currentTarget, message, { admin }),
        }, icon('more', 16)) : null),
      h('div', { class: 'msg-meta' },
        h('time', { datetime: time.toISOString(), title: time.toLocaleString(language()) }, formatClock(message.created_at_ms)),
        receipt ? h('span', { class: `receipt${receipt === t('receipt.unread') ? ' unread' : ''}`, testid: 'receipt' }, receipt) : null)));
  }

  buildPending(pending) {
    const failed = pending.status === 'failed';
    return h('div', {
      class: `msg mine ${failed ? 'failed' : 'pending'}`,
      testid: 'message',
      dataset: { status: pending.status, clientMsgId: pending.clientMsgId },
    },
    avatar(store.me, 'sm'),
    h('div', { class: 'msg-main' },
      h('div', { class: 'bubble-row' },
        h('div', { class: 'bubble', testid: 'message-bubble' },
          h('span', { class: 'msg-text', testid: 'message-text' }, linkify(pending.text)))),
      h('div', { class: 'msg-meta' },
        failed
          ? [
            h('span', { class: 'status failed', testid: 'message-status' }, pending.error && pending.error !== 'timeout' ? errorText(pending.error) : t('message.failed')),
            h('button', { type: 'button', class: 'link', testid: 'retry-send', onClick: () => this.connection.retry(pending.clientMsgId) }, t('message.retry')),
            h('button', { type: 'button', class: 'link muted', testid: 'discard-send', onClick: () => this.connection.discard(pending.clientMsgId) }, t('message.discard')),
          ]
          : h('span', { class: 'status', testid: 'message-status' }, t('message.sending')))));
  }

  openMenu(button, message, { admin }) {
    this.closeMenu();
    const ownWithinWindow = message.sender_id === store.me?.id && Date.now() - message.created_at_ms < store.recallWindowMs;
    const canRecall = ownWithinWindow || admin;
    this.menu = h('div', { class: 'msg-menu', testid: 'message-menu-popup', role: 'menu' },
      h('button', {
        type: 'button', role: 'menuitem', testid: 'recall-message', disabled: !canRecall,
        title: canRecall ? null : t('message.recallExpired', { minutes: recallMinutes() }),
        onClick: () => {
          this.closeMenu();
          this.connection.recall(this.id, message.id);
        },
      }, canRecall ? t('message.recall') : t('message.recallExpired', { minutes: recallMinutes() })),
      h('button', {
        type: 'button', role: 'menuitem', testid: 'copy-message',
        onClick: () => {
          this.closeMenu();
          navigator.clipboard?.writeText(message.content.text).catch(() => {});
        },
      }, t('message.copy')));
    button.parentElement.appendChild(this.menu);
    this.menuButton = button;
    document.addEventListener('keydown', this.onMenuKey, true);
  }

  closeMenu({ restoreFocus = false } = {}) {
    if (!this.menu) return;
    document.removeEventListener('keydown', this.onMenuKey, true);
    this.menu.remove();
    this.menu = null;
    if (restoreFocus && this.menuButton?.isConnected) this.menuButton.focus();
    this.menuButton = null;
  }

  onScroll() {
    const list = this.list;
    if (list.scrollHeight - list.scrollTop - list.clientHeight < NEAR_BOTTOM_PX) this.jumpButton.hidden = true;
    if (list.scrollTop < LOAD_OLDER_THRESHOLD_PX) {
      const conv = store.conversation(this.id);
      if (conv && conv.hasMoreBefore && !conv.loadingOlder) this.loadOlder();
    }
  }

  scrollToBottom() {
    this.list.scrollTop = this.list.scrollHeight;
    this.jumpButton.hidden = true;
    this.maybeMarkRead();
  }

  /** Moves the read pointer when this chat is on screen in a visible tab. */
  maybeMarkRead() {
    const conv = store.conversation(this.id);
    if (!conv || document.visibilityState !== 'visible') return;
    if (!this.el.isConnected || this.el.getClientRects().length === 0) return;
    if (conv.cursor > conv.summary.read_seq) this.connection.markRead(this.id, conv.cursor);
  }

  // ---- composer ----

  onComposerKey(event) {
    // Enter sends, Shift+Enter is a newline; never while an IME is composing
    // (Chinese input confirms candidates with Enter).
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      this.send();
    }
  }

  /** Unsent text survives switching chats and reloading (drafts.js). */
  saveDraft() {
    if (store.me) saveDraft(store.me.id, this.id, this.input.value);
  }

  insertText(text) {
    const input = this.input;
    const start = input.selectionStart ?? input.value.length;
    const end = input.selectionEnd ?? input.value.length;
    input.setRangeText(text, start, end, 'end');
    this.saveDraft();
    input.focus();
  }

  send() {
    const text = this.input.value;
    if (!text.trim()) return;
    const bytes = new TextEncoder().encode(text).length;
    if (bytes > this.connection.messageBytesMax) {
      toast(t('error.too_large'), 'error');
      return;
    }
    this.input.value = '';
    this.saveDraft();
    this.emojiPanel.hidden = true;
    this.stickToBottom = true;
    this.connection.sendMessage(this.id, text);
    this.input.focus();
  }

  // ---- details panel ----

  toggleInfo() {
    if (this.infoPanel) {
      this.infoPanel.destroy();
      this.infoPanel = null;
      this.infoHost.hidden = true;
      return;
    }
    this.infoPanel = new InfoPanel(this.id, {
      onClose: () => this.toggleInfo(),
      onOpenChat: this.onOpenChat,
    });
    mount(this.infoHost, this.infoPanel.el);
    this.infoHost.hidden = false;
    this.ensureMembers();
  }
}
