// DOM helpers. Every piece of user-provided text reaches the page through
// text nodes (document.createTextNode / textContent), never through HTML
// parsing, so a message such as `<img src=x onerror=...>` stays inert text.

/**
 * Creates an element. `attrs` keys:
 *   class     -> className
 *   testid    -> data-testid
 *   on<Event> -> addEventListener (e.g. onClick)
 *   dataset   -> object of data-* values
 *   anything else -> setAttribute (skipped when null/undefined/false)
 * Children may be nodes, strings (become text nodes), arrays, or null.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'testid') el.dataset.testid = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'value') el.value = value;
    else if (key === 'checked' || key === 'disabled' || key === 'hidden') el[key] = Boolean(value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Replaces all children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// Only these schemes ever become links; `javascript:`, `data:` and friends
// stay plain text.
const SAFE_LINK_PROTOCOLS = new Set(['http:', 'https:']);
const URL_PATTERN = /\bhttps?:\/\/[^\s<>"']+/gi;
// Punctuation that usually ends a sentence rather than a URL.
const TRAILING_PUNCTUATION = /[.,;:!?)\]}'"。，；：！？）]+$/;

/** Returns a safe http(s) URL string, or null. */
export function safeHttpUrl(raw) {
  if (typeof raw !== 'string' || raw === '') return null;
  try {
    const url = new URL(raw);
    return SAFE_LINK_PROTOCOLS.has(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}

/**
 * Turns message text into a list of text nodes and <a> elements. Only
 * http(s) URLs become links, and they open in a new tab without access to
 * this window (noopener) or our URL (noreferrer).
 */
export function linkify(text) {
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    let candidate = match[0];
    const trailing = candidate.match(TRAILING_PUNCTUATION);
    if (trailing) candidate = candidate.slice(0, -trailing[0].length);
    const href = safeHttpUrl(candidate);
    if (!href) continue;
    if (match.index > last) nodes.push(document.createTextNode(text.slice(last, match.index)));
    nodes.push(h('a', { href, target: '_blank', rel: 'noopener noreferrer' }, candidate));
    last = match.index + candidate.length;
  }
  if (last < text.length) nodes.push(document.createTextNode(text.slice(last)));
  return nodes;
}
