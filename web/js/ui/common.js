// Pieces shared by the views: avatars, names, previews, toasts, dialogs.

import { h, mount, safeHttpUrl } from '../dom.js';
import { t } from '../i18n.js';
import { formatDuration } from '../media.js';
import { store } from '../store.js';
import { dayDifference, formatClock, formatDate, hueFor } from '../util.js';

/** The name to show for a user id (nickname, else username, else a placeholder). */
export function displayName(userId, { you = false } = {}) {
  if (you && userId === store.me?.id) return t('you');
  const user = store.user(userId);
  if (!user) return t('unknownUser', { id: userId });
  return user.nickname || user.username;
}

export function conversationTitle(conv) {
  const s = conv.summary;
  if (s.kind === 'group') return s.name || t('unnamedGroup');
  return s.peer ? s.peer.nickname || s.peer.username : t('unknownUser', { id: '?' });
}

function firstGrapheme(text) {
  // Array.from splits by code point, so emoji and CJK initials stay whole.
  return (Array.from((text || '?').trim())[0] || '?').toUpperCase();
}

/** An avatar uploaded to this server (§4.10): `/api/v1/avatars/<key>`, served in three sizes. */
const SERVER_AVATAR_PATH = /^\/api\/v1\/avatars\/[0-9A-Za-z]+$/;
/** CSS pixels of each avatar size (app.css). */
const AVATAR_PX = { sm: 34, md: 40, lg: 64, xl: 88 };

/**
 * Where to load an avatar from: a server avatar in the smallest of its sizes
 * (64, 128, 256) that is sharp at this size and screen, or an http(s) URL;
 * null for anything else.
 */
export function avatarSrc(url, size = 'md') {
  if (typeof url !== 'string' || url === '') return null;
  if (SERVER_AVATAR_PATH.test(url)) {
    const needed = (AVATAR_PX[size] ?? 40) * (window.devicePixelRatio || 1);
    const px = needed <= 64 ? 64 : needed <= 128 ? 128 : 256;
    return `${url}?size=${px}`;
  }
  return safeHttpUrl(url);
}

/**
 * An avatar: the profile's (or group's) picture, else an initial on a colour
 * derived from the id (also when the picture fails to load). `subject` is a
 * UserProfile or { id, name, group: true, avatar_url }.
 */
export function avatar(subject, size = 'md') {
  const name = subject?.nickname || subject?.username || subject?.name || '?';
  const el = h('span', { class: `avatar avatar-${size}${subject?.group ? ' avatar-group' : ''}`, 'aria-hidden': 'true' });
  const initial = () => {
    el.replaceChildren(document.createTextNode(firstGrapheme(name)));
    el.classList.remove('has-picture');
    // CSSOM, not a style attribute: allowed by the CSP's style-src 'self'.
    // At 50% saturation and 30% lightness white stays above 4.5:1 on every hue.
    el.style.backgroundColor = `hsl(${hueFor(subject?.id ?? 0)} 50% 30%)`;
  };
  const src = avatarSrc(subject?.avatar_url, size);
  if (src) {
    const img = h('img', { src, alt: '', class: 'avatar-img', loading: 'lazy', referrerpolicy: 'no-referrer' });
    img.addEventListener('error', initial, { once: true });
    el.classList.add('has-picture');
    el.appendChild(img);
  } else {
    initial();
  }
  return el;
}

export function conversationAvatar(conv, size = 'md') {
  const s = conv.summary;
  if (s.kind === 'group') return avatar({ id: s.id, name: s.name, group: true, avatar_url: s.avatar_url ?? null }, size);
  return avatar(s.peer ?? { id: 0, nickname: '?' }, size);
}

/** Describes a system notice in words. */
export function noticeText(notice) {
  const name = (id) => displayName(id, { you: true });
  switch (notice.event) {
    case 'members_added': return t('notice.membersAdded', { by: name(notice.by), users: notice.user_ids.map(name).join(t('listSeparator')) });
    case 'member_removed': return t('notice.memberRemoved', { by: name(notice.by), user: name(notice.user_id) });
    case 'member_left': return t('notice.memberLeft', { user: name(notice.user_id) });
    case 'renamed': return t('notice.renamed', { by: name(notice.by), name: notice.name });
    case 'role_changed': return t('notice.roleChanged', { by: name(notice.by), user: name(notice.user_id), role: t(`notice.role.${notice.role}`) });
    case 'ownership_transferred': return t('notice.ownershipTransferred', { from: name(notice.from), to: name(notice.to) });
    case 'disbanded': return t('notice.disbanded', { by: name(notice.by) });
    case 'avatar_changed': return t('notice.avatarChanged', { by: name(notice.by) });
    default: return t('notice.unknown');
  }
}

/** A user's presence in words: online, offline, or unknown while we are disconnected. */
export function presenceText(presence) {
  return t(`presence.${presence}`);
}

/** The presence label shown by name and profile; `presence` as store.presence() gives it. */
export function presenceLabel(presence, { small = false, testid } = {}) {
  return h('span', {
    class: `presence-label ${presence}${small ? ' small' : ''}`, testid, dataset: { presence },
  }, presenceText(presence));
}

/** The dot on an avatar's corner. */
export function presenceDot(presence) {
  return h('span', { class: `presence-dot ${presence}`, testid: `${presence}-dot`, title: presenceText(presence) });
}

export function recalledText(message) {
  return t('recalledBy', { user: displayName(message.sender_id, { you: true }) });
}

/** One-line preview of a message for the conversation list and notifications. */
export function previewText(message, { group = false } = {}) {
  if (!message) return '';
  const c = message.content;
  if (c.kind === 'system') return noticeText(c.notice);
  if (c.kind === 'recall') return t('recalledBy', { user: displayName(message.sender_id, { you: true }) });
  if (c.recalled) return recalledText(message);
  const text = (c.kind === 'media' ? mediaPreview(c) : c.text).replace(/\s+/g, ' ');
  if (group && message.sender_id !== store.me?.id) return `${displayName(message.sender_id)}: ${text}`;
  return text;
}

/** "[Picture]", "[File] name", "[Voice] 0:07", "[Video]", then the caption if any. */
export function mediaPreview(content) {
  const a = content.attachment;
  let label;
  switch (a?.kind) {
    case 'image': label = t('preview.image'); break;
    case 'voice': label = t('preview.voice', { duration: formatDuration(a.duration_ms) }); break;
    case 'video': label = t('preview.video'); break;
    default: label = t('preview.file', { name: a?.name ?? '' }); break;
  }
  return content.caption ? `${label} ${content.caption}` : label;
}

/** A compact time for lists: clock today, "Yesterday", else a date. */
export function listTime(ms) {
  if (!ms) return '';
  const days = dayDifference(ms, Date.now());
  if (days === 0) return formatClock(ms);
  if (days === 1) return t('yesterday');
  return formatDate(ms);
}

export function daySeparatorText(ms) {
  const days = dayDifference(ms, Date.now());
  if (days === 0) return t('today');
  if (days === 1) return t('yesterday');
  return formatDate(ms);
}

/** The server's recall window in whole minutes (at least 1), for the messages that name it. */
export function recallMinutes() {
  return Math.max(1, Math.round(store.recallWindowMs / 60_000));
}

/** Human words for an error code from the API or a WebSocket error frame. */
export function errorText(err) {
  const code = typeof err === 'string' ? err : err?.code;
  const key = `error.${code}`;
  const text = t(key, { minutes: recallMinutes() });
  if (text !== key) return text;
  // "upload.too_large", "avatar.invalid_input": the general words when there are no special ones.
  const general = /^(upload|avatar)\.(.+)$/.exec(code ?? '');
  return general ? errorText(general[2]) : t('error.internal');
}

// ---- toasts ----

let toastArea = null;
const TOAST_SHOW_MS = 4000;

export function setToastArea(el) {
  toastArea = el;
}

export function toast(text, kind = 'info') {
  if (!toastArea) return;
  const el = h('div', { class: `toast toast-${kind}`, testid: 'toast', role: 'status' }, text);
  toastArea.appendChild(el);
  setTimeout(() => el.remove(), TOAST_SHOW_MS);
}

// ---- dialogs ----

/**
 * A modal built from `content` (nodes). Resolves when closed. Not
 * window.confirm(): native dialogs block the page and its socket handling.
 */
export function openModal({ title, content, actions, testid = 'modal' }) {
  return new Promise((resolve) => {
    const close = (value) => {
      overlay.remove();
      document.removeEventListener('keydown', onKey);
      resolve(value);
    };
    const onKey = (e) => {
      if (e.key === 'Escape') close(null);
    };
    const buttons = actions.map((a) => h('button', {
      type: 'button',
      class: `btn ${a.kind ? `btn-${a.kind}` : ''}`,
      testid: a.testid,
      onClick: async () => {
        if (!a.run) return close(a.value ?? null);
        const result = await a.run();
        if (result !== false) close(a.value ?? result ?? null);
      },
    }, a.label));
    const dialog = h('div', { class: 'modal', role: 'dialog', 'aria-modal': 'true', testid },
      h('h2', { class: 'modal-title' }, title),
      h('div', { class: 'modal-body' }, content),
      h('div', { class: 'modal-actions' }, buttons));
    const overlay = h('div', { class: 'modal-overlay', onClick: (e) => { if (e.target === overlay) close(null); } }, dialog);
    document.body.appendChild(overlay);
    document.addEventListener('keydown', onKey);
    const focusable = dialog.querySelector('input, textarea, select') ?? buttons[buttons.length - 1];
    focusable?.focus();
  });
}

export function confirmDialog(message, confirmLabel, { danger = false } = {}) {
  return openModal({
    title: t('confirm.title'),
    content: [h('p', {}, message)],
    testid: 'confirm-dialog',
    actions: [
      { label: t('cancel'), value: false, testid: 'confirm-cancel' },
      { label: confirmLabel, value: true, kind: danger ? 'danger' : 'primary', testid: 'confirm-ok' },
    ],
  }).then((v) => v === true);
}

export { h, mount };
