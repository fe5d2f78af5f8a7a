// The chat pane: header, message list (bubbles, day separators, receipts,
// recall, pending/failed sends, attachments), typing line and composer
// (text, emoji, files by picker, paste or drop, voice recording).
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
import { isMessage, store } from '../store.js';
import { cancelUpload, retryUpload, sendFile } from '../uploads.js';
import { formatClock, sameDay } from '../util.js';
import { attachmentView, closeImageViewer, stopVoice } from './attachments.js';
import {
  avatar, conversationAvatar, conversationTitle, daySeparatorText, displayName, errorText,
  noticeText, presenceText, recallMinutes, recalledText, toast,
} from './common.js';
import { icon } from './icons.js';
import { InfoPanel } from './info.js';
import { VoiceRecorder, recordingSupported } from './recorder.js';

const HISTORY_PAGE_SIZE = 50;
/** Within this many pixels of the end counts as "at the bottom". */
const NEAR_BOTTOM_PX = 48;
/** Older history is fetched when the user scrolls this close to the top. */
const LOAD_OLDER_THRESHOLD_PX = 120;

/** Upload refusals that no retry of the same file can change. */
const UNRETRYABLE_UPLOAD_ERRORS = new Set(['upload.too_large', 'upload.invalid_input']);

/** The bubble of a media message: the attachment's element, and the caption under it. */
function mediaBubble(node, attachment, caption) {
  return h('div', { class: `bubble bubble-media media-${attachment.kind}`, testid: 'message-bubble', dataset: { kind: attachment.kind } },
    node,
    caption ? h('span', { class: 'msg-text media-caption', testid: 'message-text' }, linkify(caption)) : null);
}

function percent(sent, total) {
  return `${total > 0 ? Math.min(100, Math.floor((sent / total) * 100)) : 0}%`;
}

/** The same bytes under another name. */
function renamed(file, name) {
  return new File([file], name, { type: file.type, lastModified: file.lastModified });
}

/** pasted-20260103-142501.png */
function pastedName(mime) {
  const d = new Date();
  const two = (n) => String(n).padStart(2, '0');
  const ext = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/gif': 'gif', 'image/webp': 'webp' }[mime] ?? 'png';
  return `pasted-${d.getFullYear()}${two(d.getMonth() + 1)}${two(d.getDate())}-${two(d.getHours())}${two(d.getMinutes())}${two(d.getSeconds())}.${ext}`;
}

export class ChatView {
  constructor(conversationId, { connection, onBack, onOpenChat }) {
    this.id = conversationId;
    this.connection = connection;
    this.onOpenChat = onOpenChat;
    this.nodes = new Map(); // item key -> { sig, node }
    // Attachments outlive their message's node (a receipt or a name changing rebuilds
    // it): a playing video or voice message goes on, a loaded picture is not refetched.
    this.attachments = new Map(); // `${item key}|${upload id}` -> element
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
      onPaste: (e) => this.onPaste(e),
    });
    this.fileInput = h('input', {
      type: 'file', multiple: true, testid: 'attach-input', hidden: true, tabindex: '-1',
      onChange: () => {
        const files = [...this.fileInput.files];
        this.fileInput.value = '';
        this.sendFiles(files);
      },
    });
    this.recorder = null;
    this.recorderHost = h('div', { class: 'recorder-host', hidden: true });
    this.dropOverlay = h('div', { class: 'drop-overlay', testid: 'drop-overlay', hidden: true },
      h('div', { class: 'drop-hint' }, icon('paperclip', 28), h('span', {}, t('media.dropHere'))));
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
          h('div', { class: 'message-viewport' }, this.list, this.jumpButton, this.dropOverlay),
          this.typingLine,
          h('footer', { class: 'composer' },
            this.emojiPanel,
            h('div', { class: 'composer-tools' },
              h('button', {
                type: 'button', class: 'icon-btn', testid: 'emoji-toggle', 'aria-label': t('chat.emoji'), title: t('chat.emoji'),
                onClick: () => { this.emojiPanel.hidden = !this.emojiPanel.hidden; },
              }, icon('smile', 22)),
              h('button', {
                type: 'button', class: 'icon-btn', testid: 'attach-button', 'aria-label': t('media.attach'), title: t('media.attach'),
                onClick: () => this.fileInput.click(),
              }, icon('paperclip', 21)),
              h('button', {
                type: 'button', class: 'icon-btn', testid: 'voice-button', 'aria-label': t('voice.record'), title: t('voice.record'),
                onClick: () => this.startRecording(),
              }, icon('mic', 21)),
              this.fileInput),
            this.recorderHost,
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
    this.listenForDrops();

    this.renderHeader();
    this.renderTyping();
    this.renderMessages();
    this.ensureHistory();
    this.ensureMembers();
  }

  destroy() {
    this.closeMenu();
    this.recorder?.cancel();
    stopVoice();
    closeImageViewer();
    document.removeEventListener('click', this.onDocumentClick, true);
    document.removeEventListener('dragover', this.onStrayDrop);
    document.removeEventListener('drop', this.onStrayDrop);
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
    if (topics.has('progress')) this.renderProgress();
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
      const sig = JSON.stringify([pending.status, pending.stage, pending.error, pending.text, pending.media, pending.previewUrl, language()]);
      items.push({ key: `p:${pending.clientMsgId}`, sig, build: () => this.buildPending(pending) });
    }
    return items;
  }

  receiptFor(conv, message) {
    if (message.sender_id !== store.me?.id || !isMessage(message) || message.content.recalled) return null;
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
    for (const key of [...this.attachments.keys()]) if (!keep.has(key.split('|')[0])) this.attachments.delete(key);
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
      this.dropAttachments(`m:${message.seq}`);
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
        c.kind === 'media' && c.attachment
          ? mediaBubble(this.attachmentNode(`m:${message.seq}`, c.attachment), c.attachment, c.caption)
          : h('div', { class: 'bubble', testid: 'message-bubble' },
            h('span', { class: 'msg-text', testid: 'message-text' }, linkify((c.kind === 'media' ? c.caption : c.text) ?? ''))),
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
    const uploading = pending.stage === 'upload';
    const media = pending.media;
    const retry = () => (uploading ? retryUpload(this.connection, pending) : this.connection.retry(pending.clientMsgId));
    const discard = () => (uploading ? cancelUpload(pending) : this.connection.discard(pending.clientMsgId));
    let status;
    if (failed) {
      status = [
        h('span', { class: 'status failed', testid: 'message-status' }, pending.error && pending.error !== 'timeout' ? errorText(pending.error) : t('message.failed')),
        // The same file would be refused the same way again.
        UNRETRYABLE_UPLOAD_ERRORS.has(pending.error) ? null
          : h('button', { type: 'button', class: 'link', testid: 'retry-send', onClick: retry }, t('message.retry')),
        h('button', { type: 'button', class: 'link muted', testid: 'discard-send', onClick: discard }, t('message.discard')),
      ];
    } else if (uploading) {
      const { sent, total } = pending.progress ?? { sent: 0, total: 0 };
      status = [
        h('span', { class: 'status', testid: 'message-status' }, pending.status === 'queued' ? t('media.queued') : t('media.uploading')),
        h('progress', {
          class: 'upload-bar', testid: 'upload-progress', max: String(Math.max(1, total)), value: String(sent),
          'aria-label': t('media.uploadProgress'),
        }),
        h('span', { class: 'upload-percent', testid: 'upload-percent' }, percent(sent, total)),
        h('button', { type: 'button', class: 'link', testid: 'cancel-upload', onClick: discard }, t('media.cancelUpload')),
      ];
    } else {
      status = h('span', { class: 'status', testid: 'message-status' }, t('message.sending'));
    }
    return h('div', {
      class: `msg mine ${failed ? 'failed' : 'pending'}`,
      testid: 'message',
      dataset: { status: pending.status, clientMsgId: pending.clientMsgId, stage: pending.stage ?? 'send' },
    },
    avatar(store.me, 'sm'),
    h('div', { class: 'msg-main' },
      h('div', { class: 'bubble-row' },
        media
          ? mediaBubble(this.attachmentNode(`p:${pending.clientMsgId}`, media, { previewUrl: pending.previewUrl }), media, pending.text)
          : h('div', { class: 'bubble', testid: 'message-bubble' },
            h('span', { class: 'msg-text', testid: 'message-text' }, linkify(pending.text)))),
      h('div', { class: 'msg-meta' }, status)));
  }

  /** The element showing an item's attachment: the one built before, while it is the same upload. */
  attachmentNode(itemKey, attachment, options = {}) {
    const key = `${itemKey}|${attachment.upload_id ?? `local:${options.previewUrl ?? ''}`}`;
    let node = this.attachments.get(key);
    if (!node) {
      node = attachmentView(attachment, options);
      this.attachments.set(key, node);
    }
    return node;
  }

  /** A recalled message's attachment goes (and stops, if it was playing). */
  dropAttachments(itemKey) {
    for (const key of [...this.attachments.keys()]) {
      const [item, uploadId] = key.split('|');
      if (item !== itemKey) continue;
      this.attachments.delete(key);
      stopVoice(uploadId);
    }
  }

  /** Moves the progress bars of this chat's uploads (without rebuilding their messages). */
  renderProgress() {
    for (const pending of store.pendingFor(this.id)) {
      if (pending.status !== 'uploading') continue;
      const node = this.nodes.get(`p:${pending.clientMsgId}`)?.node;
      const bar = node?.querySelector('[data-testid=upload-progress]');
      if (!bar) continue;
      const { sent, total } = pending.progress;
      bar.max = Math.max(1, total);
      bar.value = sent;
      const label = node.querySelector('[data-testid=upload-percent]');
      if (label) label.textContent = percent(sent, total);
    }
  }

  openMenu(button, message, { admin }) {
    this.closeMenu();
    const ownWithinWindow = message.sender_id === store.me?.id && Date.now() - message.created_at_ms < store.recallWindowMs;
    const canRecall = ownWithinWindow || admin;
    const copyText = message.content.kind === 'media' ? message.content.caption : message.content.text;
    this.menu = h('div', { class: 'msg-menu', testid: 'message-menu-popup', role: 'menu' },
      h('button', {
        type: 'button', role: 'menuitem', testid: 'recall-message', disabled: !canRecall,
        title: canRecall ? null : t('message.recallExpired', { minutes: recallMinutes() }),
        onClick: () => {
          this.closeMenu();
          this.connection.recall(this.id, message.id);
        },
      }, canRecall ? t('message.recall') : t('message.recallExpired', { minutes: recallMinutes() })),
      copyText ? h('button', {
        type: 'button', role: 'menuitem', testid: 'copy-message',
        onClick: () => {
          this.closeMenu();
          navigator.clipboard?.writeText(copyText).catch(() => {});
        },
      }, t('message.copy')) : null);
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

  // ---- attachments ----

  /**
   * Sends each file as a message of its own; the composer's text (if any) is the
   * first one's caption.
   */
  sendFiles(files) {
    let refusedTooLarge = false;
    const usable = files.filter((f) => {
      if (f.size === 0) {
        toast(t('media.emptyFile', { name: f.name }), 'error');
        return false;
      }
      if (this.tooLarge(f)) {
        refusedTooLarge = true;
        return false;
      }
      return true;
    });
    if (refusedTooLarge) toast(t('error.upload.too_large'), 'error');
    if (usable.length === 0) return;
    let caption = this.input.value.trim() ? this.input.value : '';
    if (caption && new TextEncoder().encode(caption).length > this.connection.messageBytesMax) {
      toast(t('error.too_large'), 'error');
      return;
    }
    if (caption) {
      this.input.value = '';
      this.saveDraft();
    }
    this.emojiPanel.hidden = true;
    this.stickToBottom = true;
    for (const file of usable) {
      sendFile(this.connection, this.id, file, { caption });
      caption = '';
    }
  }

  /**
   * Over the server's file_bytes_max (from `hello`): refused here rather than after
   * uploading it all. Before `hello` the limit is not known, and the server decides.
   */
  tooLarge(file) {
    const max = this.connection.fileBytesMax;
    return max !== null && file.size > max;
  }

  /** Ctrl+V of a picture (or any file) from the clipboard sends it. */
  onPaste(event) {
    const files = [...(event.clipboardData?.files ?? [])];
    if (files.length === 0) {
      // Some sources only list their files among the items.
      for (const item of event.clipboardData?.items ?? []) {
        if (item.kind === 'file') {
          const file = item.getAsFile();
          if (file) files.push(file);
        }
      }
    }
    if (files.length === 0) return; // plain text: the textarea takes it
    event.preventDefault();
    // A pasted screenshot is "image.png" everywhere; give it a telling name.
    this.sendFiles(files.map((f) => (f.name && f.name !== 'image.png' ? f : renamed(f, pastedName(f.type)))));
  }

  /** Files dragged from the desktop onto the chat are sent. */
  listenForDrops() {
    let depth = 0;
    const hasFiles = (e) => [...(e.dataTransfer?.types ?? [])].includes('Files');
    const hide = () => {
      depth = 0;
      this.dropOverlay.hidden = true;
    };
    const column = this.el.querySelector('.chat-column');
    column.addEventListener('dragenter', (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      depth += 1;
      this.dropOverlay.hidden = false;
    });
    column.addEventListener('dragover', (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = 'copy';
    });
    column.addEventListener('dragleave', (e) => {
      if (!hasFiles(e)) return;
      depth -= 1;
      if (depth <= 0) hide();
    });
    column.addEventListener('drop', (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      hide();
      this.sendFiles([...e.dataTransfer.files]);
    });
    // A file dropped beside the chat would make the browser leave the app to open it.
    this.onStrayDrop = (e) => {
      if (hasFiles(e) && !column.contains(e.target)) e.preventDefault();
    };
    document.addEventListener('dragover', this.onStrayDrop);
    document.addEventListener('drop', this.onStrayDrop);
  }

  async startRecording() {
    if (this.recorder) return;
    if (!recordingSupported()) {
      toast(t('voice.unsupported'), 'error');
      return;
    }
    const recorder = new VoiceRecorder({
      maxDurationMs: this.connection.voiceDurationMsMax,
      onDone: ({ file, durationMs }) => {
        if (this.tooLarge(file)) {
          toast(t('error.upload.too_large'), 'error');
          return;
        }
        this.stickToBottom = true;
        sendFile(this.connection, this.id, file, { voiceDurationMs: durationMs });
      },
      onEnd: () => {
        if (this.recorder !== recorder) return;
        this.recorder = null;
        this.recorderHost.hidden = true;
        this.recorderHost.replaceChildren();
        this.el.classList.remove('recording');
      },
      onError: (key) => toast(t(key), 'error'),
    });
    this.recorder = recorder;
    mount(this.recorderHost, recorder.el);
    this.recorderHost.hidden = false;
    this.el.classList.add('recording');
    await recorder.start();
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
