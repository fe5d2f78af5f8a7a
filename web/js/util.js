// Small pure helpers shared by the modules.

import { locale } from './i18n.js';

/** A random UUID v4, used as `client_msg_id` so resends can be deduplicated. */
export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // crypto.randomUUID needs a secure context; plain-http deployments on a LAN
  // are not one, so build the UUID from getRandomValues instead.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const MS_PER_DAY = 24 * 60 * 60 * 1000;

function startOfDay(ms) {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

/** Whole calendar days between two instants, in local time. */
export function dayDifference(aMs, bMs) {
  return Math.round((startOfDay(bMs) - startOfDay(aMs)) / MS_PER_DAY);
}

export function sameDay(aMs, bMs) {
  return startOfDay(aMs) === startOfDay(bMs);
}

export function formatClock(ms) {
  return new Intl.DateTimeFormat(locale(), { hour: '2-digit', minute: '2-digit' }).format(ms);
}

export function formatDate(ms) {
  const now = Date.now();
  const sameYear = new Date(ms).getFullYear() === new Date(now).getFullYear();
  return new Intl.DateTimeFormat(locale(), sameYear
    ? { month: 'short', day: 'numeric' }
    : { year: 'numeric', month: 'short', day: 'numeric' }).format(ms);
}

/** Debounces `fn` so that a burst of calls runs it once, `waitMs` after the last. */
export function debounce(fn, waitMs) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), waitMs);
  };
}

/** Stable hue for a user's placeholder avatar. */
export function hueFor(id) {
  return (Number(id) * 137) % 360;
}
