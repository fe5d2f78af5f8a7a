// The logged-in shell, laid out like QQ / WeChat desktop: a narrow rail
// (own avatar, chats, contacts, settings), a list column and a main pane.
// On phone-sized screens the list and the pane are separate views; the
// `pane-active` class on the layout says which one is showing (see app.css).

import { api } from '../api.js';
import { h, mount } from '../dom.js';
import { t } from '../i18n.js';
import { store } from '../store.js';
import { ChatView } from './chat.js';
import { avatar, setToastArea, toast } from './common.js';
import { ContactCard, ContactsSidebar } from './contacts.js';
import { ConversationList } from './conversations.js';
import { icon } from './icons.js';
import { SettingsPane } from './settings.js';

export class App {
  constructor(root, { connection, onLogout }) {
    this.root = root;
    this.connection = connection;
    this.onLogout = onLogout;
    this.view = 'chats'; // 'chats' | 'contacts' | 'settings'
    this.openId = null; // open conversation
    this.contactId = null; // selected friend
    this.pane = null; // ChatView | ContactCard | SettingsPane | null
    this.namesRequested = new Set(); // conversation ids whose members we fetched for names
    this.build();
    this.unsubscribe = store.subscribe((topics) => this.update(topics));
    this.onVisible = () => {
      if (this.pane instanceof ChatView) this.pane.maybeMarkRead();
    };
    document.addEventListener('visibilitychange', this.onVisible);
    window.addEventListener('focus', this.onVisible);
    // Ticks the "retrying in N s" countdown while offline.
    this.bannerTimer = setInterval(() => {
      if (store.connection.state === 'offline') this.renderBanner();
    }, 1000);
  }

  destroy() {
    this.unsubscribe();
    clearInterval(this.bannerTimer);
    document.removeEventListener('visibilitychange', this.onVisible);
    window.removeEventListener('focus', this.onVisible);
    this.pane?.destroy();
    this.pane = null;
    mount(this.root);
    document.title = t('appName');
  }

  /** Builds (or, after a language change, rebuilds) every region. */
  build() {
    this.pane?.destroy();
    this.pane = null;
    this.banner = h('div', { class: 'banner', testid: 'connection-banner', role: 'status', hidden: true });
    this.rail = h('nav', { class: 'rail', 'aria-label': t('nav.label') });
    this.sidebar = h('section', { class: 'sidebar' });
    this.paneHost = h('main', { class: 'pane' });
    this.layout = h('div', { class: 'layout' }, this.rail, this.sidebar, this.paneHost);
    const toastArea = h('div', { class: 'toast-area', 'aria-live': 'polite' });
    setToastArea(toastArea);
    mount(this.root, h('div', { class: 'shell', testid: 'app' }, this.banner, this.layout, toastArea));
    this.chatList = new ConversationList({ onOpen: (id) => this.openConversation(id) });
    this.chatList.setActive(this.openId);
    this.contacts = new ContactsSidebar({ onSelect: (id) => this.selectContact(id) });
    this.contacts.setSelected(this.contactId);
    this.renderRail();
    this.renderSidebar();
    this.renderPane();
    this.renderBanner();
    this.updateTitle();
  }

  update(topics) {
    if (topics.has('connection') || topics.has('all')) this.renderBanner();
    if (['all', 'conversations', 'requests', 'me', 'users'].some((x) => topics.has(x))) {
      this.renderRail();
      this.updateTitle();
      this.loadMissingNames();
    }
    if (this.openId !== null && !store.conversation(this.openId)) {
      // We left, were removed, or the group was disbanded.
      this.openId = null;
      this.chatList.setActive(null);
      if (this.view === 'chats') this.renderPane();
      toast(t('chat.gone'));
    }
    if (this.contactId !== null && this.view === 'contacts' && !store.friends.has(this.contactId) && topics.has('friends')) {
      this.contactId = null;
      this.contacts.setSelected(null);
      this.renderPane();
    }
    if (this.view === 'chats') this.chatList.update(topics);
    if (this.view === 'contacts') this.contacts.update(topics);
    this.pane?.update(topics);
  }

  /**
   * A group's last message may come from someone we know nothing about yet
   * (not a friend): fetch the member list once so the preview shows a name.
   */
  loadMissingNames() {
    for (const conv of store.conversations.values()) {
      const last = conv.summary.last_message;
      if (conv.summary.kind !== 'group' || !last || this.namesRequested.has(conv.id)) continue;
      if (referencedUserIds(last).every((id) => store.user(id))) continue;
      this.namesRequested.add(conv.id);
      api.conversation(conv.id).then((detail) => store.setDetail(detail)).catch(() => {});
    }
  }

  // ---- navigation ----

  showView(view) {
    this.view = view;
    this.renderRail();
    this.renderSidebar();
    this.renderPane();
  }

  openConversation(conversationId) {
    this.view = 'chats';
    this.openId = conversationId;
    this.chatList.setActive(conversationId);
    this.renderRail();
    this.renderSidebar();
    this.renderPane();
  }

  selectContact(userId) {
    this.view = 'contacts';
    this.contactId = userId;
    this.contacts.setSelected(userId);
    this.renderPane();
  }

  /** The back button on phone-sized screens: from the pane to the list. */
  back() {
    if (this.view === 'chats') {
      this.openId = null;
      this.chatList.setActive(null);
    } else if (this.view === 'contacts') {
      this.contactId = null;
      this.contacts.setSelected(null);
    } else {
      this.view = 'chats';
      this.renderRail();
      this.renderSidebar();
    }
    this.renderPane();
  }

  // ---- regions ----

  renderRail() {
    const unread = store.totalUnread();
    const incoming = store.requests.incoming.length;
    const navButton = (view, iconName, label, badge, testid) => h('button', {
      type: 'button',
      class: `rail-btn${this.view === view ? ' active' : ''}`,
      testid,
      title: label,
      'aria-label': label,
      'aria-current': this.view === view ? 'page' : null,
      onClick: () => this.showView(view),
    },
    h('span', { class: 'rail-icon', 'aria-hidden': 'true' }, icon(iconName, 22)),
    h('span', { class: 'rail-label' }, label),
    badge > 0 ? h('span', { class: 'badge rail-badge', testid: `${testid}-badge` }, badge > 99 ? '99+' : String(badge)) : null);
    mount(this.rail,
      h('button', {
        type: 'button', class: 'rail-me', testid: 'my-avatar', title: store.me?.nickname ?? '',
        'aria-label': t('nav.settings'), onClick: () => this.showView('settings'),
      }, avatar(store.me, 'md')),
      navButton('chats', 'chat', t('nav.chats'), unread, 'nav-chats'),
      navButton('contacts', 'contacts', t('nav.contacts'), incoming, 'nav-contacts'),
      h('div', { class: 'rail-spacer' }),
      navButton('settings', 'settings', t('nav.settings'), 0, 'nav-settings'));
  }

  renderSidebar() {
    if (this.view === 'chats') {
      this.chatList.render();
      mount(this.sidebar, this.chatList.el);
    } else if (this.view === 'contacts') {
      this.contacts.render();
      mount(this.sidebar, this.contacts.el);
    } else {
      this.chatList.render();
      mount(this.sidebar, this.chatList.el);
    }
  }

  renderPane() {
    const callbacks = { onBack: () => this.back() };
    let next = null;
    if (this.view === 'chats' && this.openId !== null) {
      if (this.pane instanceof ChatView && this.pane.id === this.openId) return this.setPaneActive(true);
      next = new ChatView(this.openId, { ...callbacks, connection: this.connection, onOpenChat: (id) => this.openConversation(id) });
    } else if (this.view === 'contacts' && this.contactId !== null) {
      if (this.pane instanceof ContactCard && this.pane.userId === this.contactId) return this.setPaneActive(true);
      next = new ContactCard(this.contactId, {
        ...callbacks,
        onOpenChat: (id) => this.openConversation(id),
        onGone: () => this.back(),
      });
    } else if (this.view === 'settings') {
      if (this.pane instanceof SettingsPane) return this.setPaneActive(true);
      next = new SettingsPane({
        ...callbacks,
        onLogout: this.onLogout,
        onLanguage: () => this.build(),
      });
    }
    this.pane?.destroy();
    this.pane = next;
    if (next) {
      mount(this.paneHost, next.el);
      if (next instanceof ChatView) next.attached();
    } else {
      mount(this.paneHost, h('div', { class: 'pane-empty', testid: 'pane-empty' },
        h('span', { class: 'logo large' }, 'B'),
        h('p', {}, this.view === 'contacts' ? t('contacts.pick') : t('chats.pick'))));
    }
    return this.setPaneActive(next !== null);
  }

  setPaneActive(active) {
    this.layout.classList.toggle('pane-active', active);
  }

  renderBanner() {
    const { state, retryAtMs, everConnected } = store.connection;
    // The very first attempt is quick and silent; say something once it fails.
    const show = state === 'offline' || (state !== 'open' && everConnected);
    this.banner.hidden = !show;
    this.banner.dataset.state = state;
    this.banner.dataset.retryAtMs = String(retryAtMs);
    if (!show) return;
    if (state === 'offline') {
      const seconds = Math.max(1, Math.ceil((retryAtMs - Date.now()) / 1000));
      mount(this.banner,
        h('span', {}, t('banner.offline', { seconds })),
        h('button', { type: 'button', class: 'link', testid: 'banner-retry', onClick: () => this.connection.reconnectNow() }, t('banner.retryNow')));
    } else {
      mount(this.banner, h('span', {}, t('banner.reconnecting')));
    }
  }

  updateTitle() {
    const unread = store.totalUnread();
    document.title = unread > 0 ? `(${unread}) ${t('appName')}` : t('appName');
  }
}

/** Every user a message's preview may name. */
function referencedUserIds(message) {
  const ids = [message.sender_id];
  const notice = message.content.kind === 'system' ? message.content.notice : null;
  if (notice) {
    for (const key of ['by', 'user_id', 'from', 'to']) if (notice[key] !== undefined) ids.push(notice[key]);
    if (notice.user_ids) ids.push(...notice.user_ids);
  }
  return ids;
}
