// Entry point: restores the saved session (so a reload stays logged in),
// or shows the login screen; wires the connection to the UI.
//
// Module map (plain ES modules, no build step; served as-is by the server):
//   api.js      REST client; ApiError (server said no) vs NetworkError (no answer)
//   socket.js   WebSocket: backoff, hello, resync by seq, gap fill, pending sends
//   store.js    all client state; emits topics the UI re-renders from
//   drafts.js   unsent composer text per conversation, in localStorage
//   uploads.js  sending files: upload (progress, cancel), then send_message with the attachment
//   media.js    attachments fetched with the token and shown through cached object URLs
//   i18n.js     t() and the language choice; strings in i18n/{en,zh-CN}.js
//   dom.js      h() element builder and linkify(): user text only via text nodes
//   ui/app.js   the shell (rail, list column, pane, banner, title); ui/* the views

import { api, setToken, setUnauthorizedHandler } from './api.js';
import { clearDrafts } from './drafts.js';
import { t } from './i18n.js';
import { clearMediaCache } from './media.js';
import { Connection, clearOutbox, restoreOutbox, saveOutbox } from './socket.js';
import { isMessage, store } from './store.js';
import { App } from './ui/app.js';
import { renderAuth } from './ui/auth.js';
import { errorText, toast } from './ui/common.js';
import { notifyMessage } from './ui/notify.js';

/** Saved as { token, user }; the user lets the shell render before the server answers. */
const SESSION_KEY = 'banter.session';

const root = document.getElementById('app');
let connection = null;
let app = null;
let unsubscribeOutbox = null;

function loadSession() {
  try {
    const session = JSON.parse(localStorage.getItem(SESSION_KEY));
    return session?.token && session?.user ? session : null;
  } catch {
    return null;
  }
}

function showAuth(notice = null) {
  document.title = t('appName');
  renderAuth(root, {
    notice,
    onSession: (session) => {
      localStorage.setItem(SESSION_KEY, JSON.stringify(session));
      startApp(session);
    },
  });
}

function startApp(session) {
  setToken(session.token);
  store.reset();
  store.setMe(session.user);
  // Left behind by a session that ended without this page seeing it (expired while closed).
  clearDrafts({ keepUserId: session.user.id });
  connection = new Connection({
    token: session.token,
    onSessionEnded: () => endSession(t('auth.sessionEnded')),
    onLiveMessage,
    onRequestError: (kind, code) => toast(errorText(code), 'error'),
  });
  app = new App(root, { connection, onLogout: logout });
  restoreOutbox(session.user.id);
  unsubscribeOutbox = store.subscribe((topics) => {
    if (topics.has('messages') || topics.has('all')) saveOutbox(session.user.id);
  });
  connection.start();
  // The saved profile may be stale (edited on another device).
  api.me().then((user) => {
    store.setMe(user);
    localStorage.setItem(SESSION_KEY, JSON.stringify({ ...session, user }));
  }).catch(() => {});
}

function onLiveMessage(message) {
  if (message.sender_id === store.me?.id || !isMessage(message)) return;
  const conv = store.conversation(message.conversation_id);
  if (!conv) return;
  const looking = document.visibilityState === 'visible' && app?.openId === conv.id;
  if (!looking) notifyMessage(conv, message, () => app?.openConversation(conv.id));
}

function endSession(notice) {
  unsubscribeOutbox?.();
  unsubscribeOutbox = null;
  // Unsent messages belong to the session that wrote them; they are dropped with it.
  if (store.me) clearOutbox(store.me.id);
  // So are drafts: the next user of this browser must not see them.
  clearDrafts();
  connection?.stop();
  connection = null;
  app?.destroy();
  app = null;
  // Attachments fetched with this session's token stay out of reach of the next one.
  clearMediaCache();
  localStorage.removeItem(SESSION_KEY);
  setToken(null);
  store.reset();
  showAuth(notice);
}

async function logout() {
  // Stop first: the server closes this session's sockets with 4001, which
  // would otherwise read as "your session has ended".
  connection?.stop();
  try {
    await api.logout();
  } catch {
    // Offline or already revoked: forgetting the token locally is what matters.
  }
  endSession();
}

setUnauthorizedHandler(() => {
  if (connection) endSession(t('auth.sessionEnded'));
});

// Logging out in another tab removes the saved session: follow it.
window.addEventListener('storage', (event) => {
  if (event.key === SESSION_KEY && !event.newValue && connection) endSession();
});

const saved = loadSession();
if (saved) startApp(saved);
else showAuth();
