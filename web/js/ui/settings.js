// Settings: profile, language, desktop notifications, password, log out.

import { api } from '../api.js';
import { h, mount } from '../dom.js';
import { LANGUAGES, language, setLanguage, t } from '../i18n.js';
import { store } from '../store.js';
import { avatar, errorText, toast } from './common.js';
import { icon } from './icons.js';
import {
  disableNotifications, enableNotifications, notificationsEnabled, notificationsSupported,
} from './notify.js';

export class SettingsPane {
  /** onLanguage() rebuilds the UI in the new language; onLogout() logs out. */
  constructor({ onLanguage, onLogout, onBack }) {
    this.onLanguage = onLanguage;
    this.onLogout = onLogout;
    this.onBack = onBack;
    this.el = h('section', { class: 'settings', testid: 'settings-pane' });
    this.render();
  }

  destroy() {
    this.el.remove();
  }

  update(topics) {
    if (topics.has('me') && !this.el.contains(document.activeElement)) this.render();
  }

  render() {
    const me = store.me;
    const nickname = h('input', { testid: 'settings-nickname', maxlength: '64', value: me?.nickname ?? '' });
    const signature = h('input', { testid: 'settings-signature', maxlength: '200', value: me?.signature ?? '' });
    const avatarUrl = h('input', { testid: 'settings-avatar-url', type: 'url', placeholder: 'https://…', value: me?.avatar_url ?? '' });
    const oldPassword = h('input', { type: 'password', testid: 'settings-old-password', autocomplete: 'current-password' });
    const newPassword = h('input', { type: 'password', testid: 'settings-new-password', autocomplete: 'new-password', minlength: '8' });
    const notifyStatus = h('span', { class: 'muted', testid: 'notification-status' });
    const notifyButton = h('button', { type: 'button', class: 'btn', testid: 'enable-notifications' });
    const renderNotify = () => {
      if (!notificationsSupported()) {
        notifyStatus.textContent = t('settings.notificationsUnsupported');
        notifyButton.hidden = true;
        return;
      }
      const on = notificationsEnabled();
      notifyStatus.textContent = on ? t('settings.notificationsOn')
        : Notification.permission === 'denied' ? t('settings.notificationsDenied') : t('settings.notificationsOff');
      notifyButton.textContent = on ? t('settings.disable') : t('settings.enable');
      notifyButton.hidden = !on && Notification.permission === 'denied';
    };
    notifyButton.addEventListener('click', async () => {
      if (notificationsEnabled()) disableNotifications();
      else await enableNotifications();
      renderNotify();
    });
    renderNotify();

    mount(this.el,
      h('header', { class: 'chat-header' },
        h('button', { type: 'button', class: 'icon-btn back-btn', testid: 'back', 'aria-label': t('back'), onClick: this.onBack }, icon('back', 24)),
        h('div', { class: 'chat-heading' }, h('span', { class: 'chat-title' }, t('nav.settings')))),
      h('div', { class: 'settings-body' },
        h('section', { class: 'settings-section' },
          h('h3', {}, t('settings.profile')),
          h('div', { class: 'profile-row' }, avatar(me, 'lg'),
            h('div', {}, h('div', { class: 'profile-name', testid: 'settings-username' }, me?.nickname), h('div', { class: 'muted' }, `@${me?.username}`))),
          h('form', {
            class: 'settings-form',
            onSubmit: async (e) => {
              e.preventDefault();
              try {
                store.setMe(await api.updateMe({ nickname: nickname.value.trim(), signature: signature.value.trim(), avatar_url: avatarUrl.value.trim() }));
                toast(t('settings.saved'));
              } catch (err) {
                toast(errorText(err), 'error');
              }
            },
          },
          h('label', {}, t('settings.nickname')), nickname,
          h('label', {}, t('settings.signature')), signature,
          h('label', {}, t('settings.avatarUrl')), avatarUrl,
          h('button', { type: 'submit', class: 'btn btn-primary', testid: 'settings-save-profile' }, t('save')))),
        h('section', { class: 'settings-section' },
          h('h3', {}, t('settings.language')),
          h('select', {
            testid: 'language-select', 'aria-label': t('settings.language'),
            onChange: (e) => {
              setLanguage(e.target.value);
              this.onLanguage();
            },
          }, LANGUAGES.map((l) => h('option', { value: l.code, selected: l.code === language() }, l.name)))),
        h('section', { class: 'settings-section' },
          h('h3', {}, t('settings.notifications')),
          h('div', { class: 'row' }, notifyStatus, notifyButton)),
        h('section', { class: 'settings-section' },
          h('h3', {}, t('settings.password')),
          h('form', {
            class: 'settings-form',
            onSubmit: async (e) => {
              e.preventDefault();
              try {
                await api.changePassword(oldPassword.value, newPassword.value);
                oldPassword.value = '';
                newPassword.value = '';
                toast(t('settings.passwordChanged'));
              } catch (err) {
                toast(err.code === 'invalid_credentials' ? t('auth.invalidCredentials') : errorText(err), 'error');
              }
            },
          },
          h('label', {}, t('settings.oldPassword')), oldPassword,
          h('label', {}, t('settings.newPassword')), newPassword,
          h('button', { type: 'submit', class: 'btn', testid: 'settings-change-password' }, t('settings.changePassword')))),
        h('section', { class: 'settings-section' },
          h('button', { type: 'button', class: 'btn btn-danger', testid: 'logout', onClick: this.onLogout }, t('settings.logout')))));
  }
}
