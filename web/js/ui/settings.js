// Settings: profile (with the avatar picture), language, desktop
// notifications, password, log out.

import { api } from '../api.js';
import { h, mount, safeHttpUrl } from '../dom.js';
import { LANGUAGES, language, setLanguage, t } from '../i18n.js';
import { store } from '../store.js';
import { avatar, errorText, toast } from './common.js';
import { icon } from './icons.js';
import { AVATAR_TYPES } from './info.js';
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
    if (!topics.has('me')) return;
    if (!this.el.contains(document.activeElement)) this.render();
    else this.renderAvatar();
  }

  /** The picture and its buttons, which change while focus stays on them. */
  renderAvatar() {
    const me = store.me;
    mount(this.avatarHost, avatar(me, 'lg'));
    this.removeAvatarButton.hidden = !me?.avatar_url;
  }

  async changeAvatar(action) {
    this.avatarStatus.textContent = t('settings.avatarUploading');
    try {
      store.setMe(await action());
      this.avatarStatus.textContent = '';
      toast(t('settings.avatarSaved'));
    } catch (err) {
      this.avatarStatus.textContent = '';
      toast(errorText(`avatar.${err.code}`), 'error');
    }
  }

  render() {
    const me = store.me;
    const nickname = h('input', { testid: 'settings-nickname', maxlength: '64', value: me?.nickname ?? '' });
    const signature = h('input', { testid: 'settings-signature', maxlength: '200', value: me?.signature ?? '' });
    // Only an outside picture's address is shown for editing; an uploaded picture
    // (/api/v1/avatars/…) is changed with the buttons, and is left alone by Save.
    const shownAvatarUrl = safeHttpUrl(me?.avatar_url) ? me.avatar_url : '';
    const avatarUrl = h('input', { testid: 'settings-avatar-url', type: 'url', placeholder: 'https://…', value: shownAvatarUrl });
    const avatarInput = h('input', {
      type: 'file', accept: AVATAR_TYPES, hidden: true, testid: 'avatar-input',
      onChange: () => {
        const file = avatarInput.files[0];
        avatarInput.value = '';
        if (file) this.changeAvatar(() => api.setAvatar(file));
      },
    });
    this.avatarHost = h('span', { class: 'settings-avatar', testid: 'settings-avatar' });
    this.avatarStatus = h('span', { class: 'muted small', testid: 'avatar-status', 'aria-live': 'polite' });
    this.removeAvatarButton = h('button', {
      type: 'button', class: 'btn btn-small', testid: 'avatar-remove',
      onClick: () => this.changeAvatar(() => api.removeAvatar()),
    }, t('settings.avatarRemove'));
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
          h('div', { class: 'profile-row' }, this.avatarHost,
            h('div', {}, h('div', { class: 'profile-name', testid: 'settings-username' }, me?.nickname), h('div', { class: 'muted' }, `@${me?.username}`))),
          h('div', { class: 'avatar-controls row' },
            h('button', {
              type: 'button', class: 'btn btn-small', testid: 'avatar-upload', onClick: () => avatarInput.click(),
            }, t('settings.avatarUpload')),
            this.removeAvatarButton, avatarInput, this.avatarStatus),
          h('form', {
            class: 'settings-form',
            onSubmit: async (e) => {
              e.preventDefault();
              try {
                const changes = { nickname: nickname.value.trim(), signature: signature.value.trim() };
                if (avatarUrl.value.trim() !== shownAvatarUrl) changes.avatar_url = avatarUrl.value.trim();
                store.setMe(await api.updateMe(changes));
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
    this.renderAvatar();
  }
}
