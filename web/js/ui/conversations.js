// The conversation list: newest activity first, with preview, time, unread
// badge and (for direct chats) whether the peer is online.

import { api } from '../api.js';
import { h, mount } from '../dom.js';
import { t } from '../i18n.js';
import { store } from '../store.js';
import { icon } from './icons.js';
import {
  conversationAvatar, conversationTitle, errorText, listTime, openModal, presenceDot, previewText,
} from './common.js';

export class ConversationList {
  /** onOpen(conversationId) opens a chat. */
  constructor({ onOpen }) {
    this.onOpen = onOpen;
    this.activeId = null;
    this.list = h('ul', { class: 'conv-list', testid: 'conversation-list' });
    this.el = h('div', { class: 'sidebar-view' },
      h('div', { class: 'sidebar-header' },
        h('h2', {}, t('nav.chats')),
        h('button', {
          type: 'button', class: 'icon-btn', testid: 'new-group', title: t('group.new'), 'aria-label': t('group.new'),
          onClick: () => createGroupDialog(this.onOpen),
        }, icon('plus'))),
      this.list);
    this.render();
  }

  setActive(conversationId) {
    this.activeId = conversationId;
    this.render();
  }

  update(topics) {
    if (['all', 'conversations', 'presence', 'users', 'me', 'messages'].some((x) => topics.has(x))) this.render();
  }

  render() {
    const conversations = store.sortedConversations();
    if (conversations.length === 0) {
      mount(this.list, h('li', { class: 'empty' }, t('chats.empty')));
      return;
    }
    mount(this.list, conversations.map((conv) => this.item(conv)));
  }

  item(conv) {
    const s = conv.summary;
    const group = s.kind === 'group';
    const title = conversationTitle(conv);
    const unread = s.unread_count;
    return h('li', {
      class: `conv-item${conv.id === this.activeId ? ' active' : ''}`,
      testid: 'conversation-item',
      dataset: { conversationId: String(conv.id), kind: s.kind },
      tabindex: '0',
      role: 'button',
      onClick: () => this.onOpen(conv.id),
      onKeydown: (e) => { if (e.key === 'Enter') this.onOpen(conv.id); },
    },
    h('div', { class: 'avatar-wrap' },
      conversationAvatar(conv),
      group || !s.peer ? null : presenceDot(store.presence(s.peer.id))),
    h('div', { class: 'conv-main' },
      h('div', { class: 'conv-top' },
        h('span', { class: 'conv-name', testid: 'conversation-name' }, title),
        group ? h('span', { class: 'conv-count' }, `(${s.member_count})`) : null,
        h('time', { class: 'conv-time' }, listTime(s.last_message?.created_at_ms ?? s.last_activity_ms))),
      h('div', { class: 'conv-bottom' },
        h('span', { class: 'conv-preview', testid: 'conversation-preview' }, previewText(s.last_message, { group })),
        unread > 0 ? h('span', { class: 'badge', testid: 'unread-badge' }, unread > 99 ? '99+' : String(unread)) : null)));
  }
}

/** Asks for a name and friends to add, creates the group and opens it. */
export async function createGroupDialog(onCreated) {
  const name = h('input', { testid: 'group-name-input', maxlength: '64', placeholder: t('group.namePlaceholder') });
  const friends = store.sortedFriends();
  const checks = friends.map((f) => {
    const box = h('input', { type: 'checkbox', value: String(f.user.id), testid: 'group-member-checkbox' });
    return { box, row: h('label', { class: 'check-row', testid: 'group-member-option' }, box, ' ', f.user.nickname, h('span', { class: 'muted' }, ` @${f.user.username}`)) };
  });
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  await openModal({
    title: t('group.new'),
    testid: 'create-group-dialog',
    content: [
      h('label', {}, t('group.name')), name,
      h('p', { class: 'label' }, t('group.pickMembers')),
      friends.length ? h('div', { class: 'check-list' }, checks.map((c) => c.row)) : h('p', { class: 'muted' }, t('group.noFriends')),
      error,
    ],
    actions: [
      { label: t('cancel'), testid: 'create-group-cancel' },
      {
        label: t('group.create'), kind: 'primary', testid: 'create-group-submit',
        run: async () => {
          const groupName = name.value.trim();
          if (!groupName) {
            error.textContent = t('group.nameRequired');
            error.hidden = false;
            return false;
          }
          const memberIds = checks.filter((c) => c.box.checked).map((c) => Number(c.box.value));
          try {
            const summary = await api.createGroup(groupName, memberIds);
            store.upsertConversation(summary);
            onCreated(summary.id);
            return true;
          } catch (err) {
            error.textContent = errorText(err);
            error.hidden = false;
            return false;
          }
        },
      },
    ],
  });
}

