// Contacts: find a user by exact username and send a friend request;
// incoming requests (accept / reject), outgoing ones (cancel), friends
// with presence, and blocked users. The selected friend's card shows in
// the main pane.

import { api, ApiError } from '../api.js';
import { h, mount } from '../dom.js';
import { t } from '../i18n.js';
import { store } from '../store.js';
import {
  avatar, errorText, listTime, presenceDot, presenceLabel, toast,
} from './common.js';
import { icon } from './icons.js';
import { blockButton, removeFriend, unblockUser } from './info.js';

export class ContactsSidebar {
  /** onSelect(userId) shows a friend's card; onOpenChat(conversationId) opens a chat. */
  constructor({ onSelect }) {
    this.onSelect = onSelect;
    this.selectedId = null;
    this.showBlocked = false;

    this.searchInput = h('input', {
      testid: 'contact-search', type: 'search', placeholder: t('contacts.searchPlaceholder'),
      'aria-label': t('contacts.searchPlaceholder'), autocapitalize: 'none', spellcheck: 'false',
    });
    this.result = h('div', { class: 'search-result', testid: 'search-result' });
    this.dynamic = h('div', { class: 'contacts-lists' });
    this.el = h('div', { class: 'sidebar-view contacts', testid: 'contacts-view' },
      h('div', { class: 'sidebar-header' }, h('h2', {}, t('nav.contacts'))),
      h('form', {
        class: 'search-form', testid: 'contact-search-form',
        onSubmit: (e) => {
          e.preventDefault();
          this.search();
        },
      }, this.searchInput, h('button', { type: 'submit', class: 'btn', testid: 'contact-search-submit' }, t('contacts.search'))),
      this.result,
      this.dynamic);
    this.render();
  }

  setSelected(userId) {
    this.selectedId = userId;
    this.render();
  }

  update(topics) {
    if (['all', 'friends', 'requests', 'presence', 'blocks', 'users'].some((x) => topics.has(x))) this.render();
  }

  async search() {
    const username = this.searchInput.value.trim();
    if (!username) return;
    mount(this.result, h('p', { class: 'muted' }, t('contacts.searching')));
    try {
      const user = await api.user(username);
      store.rememberUser(user);
      this.renderResult(user);
    } catch (err) {
      const text = err instanceof ApiError && err.code === 'not_found' ? t('contacts.notFound', { username }) : errorText(err);
      mount(this.result, h('p', { class: 'form-error', testid: 'search-error' }, text));
    }
  }

  renderResult(user) {
    const isMe = user.id === store.me?.id;
    const isFriend = store.friends.has(user.id);
    const outgoing = store.requests.outgoing.find((r) => r.to.id === user.id);
    const incoming = store.requests.incoming.find((r) => r.from.id === user.id);
    let action;
    if (isMe) action = h('p', { class: 'muted' }, t('contacts.thisIsYou'));
    else if (isFriend) action = h('p', { class: 'muted', testid: 'already-friends' }, t('contacts.alreadyFriends'));
    else if (outgoing) action = h('p', { class: 'muted' }, t('contacts.requestPending'));
    else if (incoming) action = h('p', { class: 'muted' }, t('contacts.theyAsked'));
    else {
      const greeting = h('input', {
        testid: 'friend-greeting', maxlength: '200', placeholder: t('contacts.greetingPlaceholder'),
        value: t('contacts.defaultGreeting', { name: store.me?.nickname ?? '' }),
      });
      action = h('form', {
        class: 'request-form',
        onSubmit: async (e) => {
          e.preventDefault();
          try {
            const request = await api.sendFriendRequest(user.id, greeting.value.trim());
            store.requestChanged(request);
            mount(this.result, h('p', { class: 'success', testid: 'request-sent' }, t('contacts.requestSent', { name: user.nickname })));
          } catch (err) {
            toast(errorText(err), 'error');
          }
        },
      }, greeting, h('button', { type: 'submit', class: 'btn btn-primary', testid: 'send-friend-request' }, t('contacts.addFriend')));
    }
    mount(this.result, h('div', { class: 'user-card', testid: 'search-result-card' },
      avatar(user, 'md'),
      h('div', { class: 'user-card-main' },
        h('div', { class: 'user-card-name' }, user.nickname),
        h('div', { class: 'muted' }, `@${user.username}`)),
      action));
  }

  render() {
    const { incoming, outgoing } = store.requests;
    const friends = store.sortedFriends();
    const sections = [];

    sections.push(h('h3', { class: 'section-title' }, t('contacts.incoming'), incoming.length ? h('span', { class: 'badge' }, String(incoming.length)) : null));
    sections.push(h('ul', { class: 'plain-list', testid: 'incoming-requests' },
      incoming.length === 0 ? h('li', { class: 'empty' }, t('contacts.noIncoming')) : incoming.map((r) =>
        h('li', { class: 'request-row', testid: 'incoming-request', dataset: { requestId: String(r.id), username: r.from.username } },
          avatar(r.from, 'sm'),
          h('div', { class: 'request-main' },
            h('div', { class: 'request-name' }, r.from.nickname, h('span', { class: 'muted' }, ` @${r.from.username}`)),
            r.greeting ? h('div', { class: 'request-greeting', testid: 'request-greeting' }, r.greeting) : null,
            h('div', { class: 'muted small' }, listTime(r.created_at_ms))),
          h('div', { class: 'request-actions' },
            h('button', { type: 'button', class: 'btn btn-primary btn-small', testid: 'accept-request', onClick: () => this.respond(r, 'accept') }, t('contacts.accept')),
            h('button', { type: 'button', class: 'btn btn-small', testid: 'reject-request', onClick: () => this.respond(r, 'reject') }, t('contacts.reject')))))));

    if (outgoing.length) {
      sections.push(h('h3', { class: 'section-title' }, t('contacts.outgoing')));
      sections.push(h('ul', { class: 'plain-list', testid: 'outgoing-requests' }, outgoing.map((r) =>
        h('li', { class: 'request-row', testid: 'outgoing-request', dataset: { requestId: String(r.id), username: r.to.username } },
          avatar(r.to, 'sm'),
          h('div', { class: 'request-main' },
            h('div', { class: 'request-name' }, r.to.nickname, h('span', { class: 'muted' }, ` @${r.to.username}`)),
            h('div', { class: 'muted small' }, t('contacts.waiting'))),
          h('div', { class: 'request-actions' },
            h('button', { type: 'button', class: 'btn btn-small', testid: 'cancel-request', onClick: () => this.respond(r, 'cancel') }, t('cancel')))))));
    }

    sections.push(h('h3', { class: 'section-title' }, t('contacts.friendsCount', { n: friends.length })));
    sections.push(h('ul', { class: 'plain-list', testid: 'friend-list' },
      friends.length === 0 ? h('li', { class: 'empty' }, t('contacts.noFriends')) : friends.map((f) => {
        const presence = store.presence(f.user.id);
        return h('li', {
          class: `friend-row${f.user.id === this.selectedId ? ' active' : ''}`, testid: 'friend',
          dataset: { userId: String(f.user.id), username: f.user.username, presence },
          tabindex: '0', role: 'button',
          onClick: () => this.onSelect(f.user.id),
          onKeydown: (e) => { if (e.key === 'Enter') this.onSelect(f.user.id); },
        },
        h('div', { class: 'avatar-wrap' }, avatar(f.user, 'sm'), presenceDot(presence)),
        h('span', { class: 'friend-name', testid: 'friend-name' }, f.user.nickname),
        store.isBlocked(f.user.id)
          ? h('span', { class: 'presence-label small blocked', testid: 'blocked-label' }, t('contacts.blockedLabel'))
          : presenceLabel(presence, { small: true }));
      })));

    sections.push(h('button', {
      type: 'button', class: 'link section-toggle', testid: 'toggle-blocked',
      onClick: () => this.toggleBlocked(),
    }, this.showBlocked ? t('contacts.hideBlocked') : t('contacts.showBlocked')));
    if (this.showBlocked) {
      sections.push(h('ul', { class: 'plain-list', testid: 'blocked-list' },
        store.blocks.length === 0 ? h('li', { class: 'empty' }, t('contacts.noBlocked')) : store.blocks.map((u) =>
          h('li', { class: 'request-row', testid: 'blocked-user' },
            avatar(u, 'sm'),
            h('div', { class: 'request-main' }, u.nickname, h('span', { class: 'muted' }, ` @${u.username}`)),
            h('button', {
              type: 'button', class: 'btn btn-small', testid: 'unblock-user',
              onClick: () => unblockUser(u),
            }, t('contacts.unblock'))))));
    }
    mount(this.dynamic, sections);
  }

  async toggleBlocked() {
    this.showBlocked = !this.showBlocked;
    this.render();
    if (this.showBlocked) {
      try {
        store.setBlocks(await api.blocks());
      } catch (err) {
        toast(errorText(err), 'error');
      }
    }
  }

  async respond(request, action) {
    try {
      const updated = action === 'accept' ? await api.acceptRequest(request.id)
        : action === 'reject' ? await api.rejectRequest(request.id)
          : await api.cancelRequest(request.id);
      store.requestChanged(updated);
      if (action === 'accept') {
        store.friendAdded(updated.from.id === store.me?.id ? updated.to : updated.from);
      }
    } catch (err) {
      toast(errorText(err), 'error');
      // The request may have changed elsewhere; show the server's view.
      api.friendRequests().then((list) => store.setRequests(list)).catch(() => {});
    }
  }
}

/** A friend's card in the main pane. */
export class ContactCard {
  constructor(userId, { onOpenChat, onBack, onGone }) {
    this.userId = userId;
    this.onOpenChat = onOpenChat;
    this.onBack = onBack;
    this.onGone = onGone;
    this.el = h('section', { class: 'contact-card', testid: 'contact-card' });
    this.render();
  }

  destroy() {
    this.el.remove();
  }

  update(topics) {
    if (['all', 'friends', 'presence', 'users', 'blocks'].some((x) => topics.has(x))) this.render();
  }

  render() {
    const friend = store.friends.get(this.userId);
    const user = friend?.user ?? store.user(this.userId);
    if (!user) return;
    const presence = store.presence(user.id);
    mount(this.el,
      h('header', { class: 'chat-header' },
        h('button', { type: 'button', class: 'icon-btn back-btn', testid: 'back', 'aria-label': t('back'), onClick: this.onBack }, icon('back', 24)),
        h('div', { class: 'chat-heading' }, h('span', { class: 'chat-title' }, user.nickname))),
      h('div', { class: 'profile-card large' },
        avatar(user, 'xl'),
        h('div', { class: 'profile-name', testid: 'contact-name' }, user.nickname),
        h('div', { class: 'muted' }, `@${user.username}`),
        presenceLabel(presence, { testid: 'contact-presence' }),
        user.signature ? h('p', { class: 'signature' }, user.signature) : null,
        friend ? h('p', { class: 'muted small' }, t('contacts.friendsSince', { date: new Date(friend.since_ms).toLocaleDateString() })) : null,
        h('div', { class: 'info-actions row' },
          friend ? h('button', { type: 'button', class: 'btn btn-primary', testid: 'open-chat', onClick: () => this.openChat(user) }, t('contacts.sendMessage')) : null,
          friend ? h('button', { type: 'button', class: 'btn', testid: 'remove-friend', onClick: async () => { if (await removeFriend(user)) this.onGone(); } }, t('contacts.remove')) : null,
          blockButton(user))));
  }

  async openChat(user) {
    try {
      const summary = await api.openDirect(user.id);
      store.upsertConversation(summary);
      this.onOpenChat(summary.id);
    } catch (err) {
      toast(errorText(err), 'error');
    }
  }
}
