// Optional desktop notifications. Off until the user turns them on in
// settings (the browser then asks for permission); the choice is saved.

import { t } from '../i18n.js';
import { conversationTitle, previewText } from './common.js';

const STORAGE_KEY = 'banter.notifications';

export function notificationsSupported() {
  return 'Notification' in window;
}

export function notificationsEnabled() {
  return notificationsSupported() && localStorage.getItem(STORAGE_KEY) === 'on' && Notification.permission === 'granted';
}

/** Asks the browser for permission; returns 'granted', 'denied' or 'default'. */
export async function enableNotifications() {
  if (!notificationsSupported()) return 'denied';
  const permission = await Notification.requestPermission();
  if (permission === 'granted') localStorage.setItem(STORAGE_KEY, 'on');
  return permission;
}

export function disableNotifications() {
  localStorage.setItem(STORAGE_KEY, 'off');
}

/** Shows a notification for a message; the body is plain text by the API's design. */
export function notifyMessage(conv, message, onClick) {
  if (!notificationsEnabled()) return;
  const group = conv.summary.kind === 'group';
  try {
    const notification = new Notification(conversationTitle(conv) || t('appName'), {
      body: previewText(message, { group }),
      tag: `banter-conversation-${conv.id}`,
    });
    notification.onclick = () => {
      window.focus();
      onClick();
      notification.close();
    };
  } catch {
    // Some browsers only allow notifications from a service worker; skip.
  }
}
