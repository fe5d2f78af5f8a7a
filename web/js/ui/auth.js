// The login / register screen. Errors are shown inline, in words that say
// what to do: a taken username, a wrong password, or no server at all.

import { api, ApiError, NetworkError } from '../api.js';
import { h, mount } from '../dom.js';
import { LANGUAGES, language, setLanguage, t } from '../i18n.js';
import { errorText } from './common.js';

/**
 * Renders into `root`. `onSession({ token, user })` is called after a
 * successful login (registering logs in right after). `notice` is an
 * optional message, e.g. "your session ended".
 */
export function renderAuth(root, { onSession, notice = null, mode = 'login' }) {
  const rerender = (nextMode) => renderAuth(root, { onSession, notice: null, mode: nextMode });
  const registering = mode === 'register';

  const username = h('input', {
    id: 'auth-username', testid: 'auth-username', name: 'username', autocomplete: 'username',
    required: true, minlength: registering ? '3' : null, maxlength: '32', autocapitalize: 'none', spellcheck: 'false',
  });
  const nickname = registering
    ? h('input', { id: 'auth-nickname', testid: 'auth-nickname', name: 'nickname', autocomplete: 'nickname', maxlength: '64' })
    : null;
  const password = h('input', {
    id: 'auth-password', testid: 'auth-password', name: 'password', type: 'password', required: true,
    autocomplete: registering ? 'new-password' : 'current-password', minlength: registering ? '8' : null,
  });
  const error = h('p', { class: 'auth-error', testid: 'auth-error', role: 'alert', hidden: !notice }, notice ?? '');
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block', testid: 'auth-submit' },
    registering ? t('auth.register') : t('auth.login'));

  const showError = (text) => {
    error.textContent = text;
    error.hidden = false;
  };

  const form = h('form', {
    class: 'auth-form', testid: registering ? 'register-form' : 'login-form', novalidate: true,
    onSubmit: async (event) => {
      event.preventDefault();
      error.hidden = true;
      const name = username.value.trim();
      if (!name || !password.value) {
        showError(t('auth.fillBoth'));
        return;
      }
      if (registering && password.value.length < 8) {
        showError(t('auth.passwordTooShort'));
        return;
      }
      submit.disabled = true;
      try {
        if (registering) await api.register(name, password.value, nickname.value.trim());
        const session = await api.login(name, password.value);
        onSession({ token: session.token, user: session.user });
      } catch (err) {
        showError(authErrorText(err, registering));
        submit.disabled = false;
      }
    },
  },
  h('label', { for: 'auth-username' }, t('auth.username')), username,
  registering ? [h('label', { for: 'auth-nickname' }, t('auth.nicknameOptional')), nickname] : null,
  h('label', { for: 'auth-password' }, t('auth.password')), password,
  registering ? h('p', { class: 'hint' }, t('auth.rules')) : null,
  error,
  submit);

  const languageSelect = h('select', {
    class: 'auth-language', testid: 'auth-language', 'aria-label': t('settings.language'),
    onChange: (e) => {
      setLanguage(e.target.value);
      renderAuth(root, { onSession, notice, mode });
    },
  }, LANGUAGES.map((l) => h('option', { value: l.code, selected: l.code === language() }, l.name)));

  mount(root, h('div', { class: 'auth-screen', testid: 'auth-screen' },
    h('div', { class: 'auth-card' },
      h('div', { class: 'auth-brand' }, h('span', { class: 'logo' }, 'B'), h('h1', {}, 'Banter')),
      h('p', { class: 'auth-tagline' }, registering ? t('auth.registerTitle') : t('auth.loginTitle')),
      form,
      h('p', { class: 'auth-switch' },
        registering ? t('auth.haveAccount') : t('auth.noAccount'), ' ',
        h('button', { type: 'button', class: 'link', testid: 'auth-switch', onClick: () => rerender(registering ? 'login' : 'register') },
          registering ? t('auth.login') : t('auth.register'))),
      languageSelect)));
  username.focus();
}

function authErrorText(err, registering) {
  if (err instanceof NetworkError) return t('auth.unreachable');
  if (err instanceof ApiError) {
    switch (err.code) {
      case 'username_taken': return t('auth.usernameTaken');
      case 'invalid_credentials': return t('auth.invalidCredentials');
      case 'invalid_input': return registering ? t('auth.invalidInput') : t('auth.invalidCredentials');
      case 'rate_limited': return t('error.rate_limited');
      default: return errorText(err);
    }
  }
  return t('error.internal');
}
