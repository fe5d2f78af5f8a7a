// Translations. The language comes from the saved choice, else from
// navigator.language; English is the fallback for any missing key.

import en from './i18n/en.js';
import zhCN from './i18n/zh-CN.js';

const STORAGE_KEY = 'banter.language';
export const LANGUAGES = [
  { code: 'en', name: 'English' },
  { code: 'zh-CN', name: '简体中文' },
];
const DICTIONARIES = { en, 'zh-CN': zhCN };

function detect() {
  const saved = localStorage.getItem(STORAGE_KEY);
  if (saved && DICTIONARIES[saved]) return saved;
  const preferred = navigator.languages?.length ? navigator.languages : [navigator.language || 'en'];
  for (const tag of preferred) {
    if (/^zh\b/i.test(tag)) return 'zh-CN';
    if (/^en\b/i.test(tag)) return 'en';
  }
  return 'en';
}

let current = detect();
document.documentElement.lang = current;

export function language() {
  return current;
}

/** The BCP 47 tag for Intl formatters. */
export function locale() {
  return current;
}

export function setLanguage(code) {
  if (!DICTIONARIES[code]) return;
  current = code;
  localStorage.setItem(STORAGE_KEY, code);
  document.documentElement.lang = code;
}

/**
 * Looks up `key` and fills `{name}` placeholders from `params`. Values are
 * substituted as plain strings; callers put the result into textContent,
 * so user names with markup stay text.
 */
export function t(key, params = {}) {
  const template = DICTIONARIES[current][key] ?? en[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}
