// Colour contrast (WCAG 2.1 AA) of what the client actually shows: every visible
// text on a series of screens is measured from its computed styles against the
// colours behind it, so a low-contrast colour brought back into app.css (or an
// avatar colour in the scripts) fails here.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  launchBrowser, openChatByName, openDirectChat, sendMessage, twoFriends, waitForMessage, withServer,
} from './helpers.js';

/** Normal text needs 4.5:1; large text and the parts of controls that identify them need 3:1. */
const TEXT_RATIO_MIN = 4.5;
const LARGE_TEXT_RATIO_MIN = 3;
const COMPONENT_RATIO_MIN = 3;

/** Elements that a scan must have measured at least once over the whole test. */
const KEY_ELEMENTS = [
  '.btn-primary', '.badge', '.day-separator span', '.receipt', '.msg-meta time', '.presence-label',
  '.chat-subtitle', '.conv-preview', '.conv-time', '.hint', '.link', '.banner span', '.avatar',
  '.msg.mine .msg-text', '.msg.theirs .msg-text', '.msg.pending .msg-text', '.bubble a',
  '.section-title', '.role-badge', '.rail-label', 'input', '::placeholder', '.presence-dot',
  '.msg.mine .file-name', '.msg.theirs .file-meta', '.media-caption',
];

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/**
 * Runs in the page: measures every visible text (and input borders, placeholders and
 * presence dots) and returns what fell short, and which of `keys` were measured.
 */
function measureContrast({ keys, textMin, largeMin, componentMin }) {
  const parse = (css) => {
    const m = /^rgba?\(([^)]*)\)$/.exec(css);
    if (!m) throw new Error(`unexpected colour ${css}`);
    const [r, g, b, a = 1] = m[1].split(/[\s,/]+/).filter(Boolean).map(Number);
    return { r, g, b, a };
  };
  const over = (top, bottom) => ({
    r: top.r * top.a + bottom.r * (1 - top.a),
    g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a),
    a: 1,
  });
  const channel = (v) => {
    const c = v / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  const luminance = (c) => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  const ratio = (x, y) => {
    const [hi, lo] = [luminance(x), luminance(y)].sort((p, q) => q - p);
    return (hi + 0.05) / (lo + 0.05);
  };

  /**
   * The colour behind `el`'s content: backgrounds from the root down, composited;
   * `finish(colour)` applies the ancestors' opacity to a colour drawn inside `el`.
   */
  const behind = (el, { inside = true } = {}) => {
    const chain = [];
    for (let e = inside ? el : el.parentElement; e; e = e.parentElement) chain.unshift(e);
    let bg = { r: 255, g: 255, b: 255, a: 1 };
    let image = false;
    const fades = [];
    for (const e of chain) {
      const style = getComputedStyle(e);
      const opacity = Number(style.opacity);
      if (opacity < 1) fades.push({ opacity, backdrop: bg });
      const colour = parse(style.backgroundColor);
      if (colour.a > 0) bg = over(colour, bg);
      if (colour.a === 1) image = false;
      if (style.backgroundImage !== 'none') image = true;
    }
    const finish = (colour) => fades.reduceRight((c, f) => over({ ...c, a: f.opacity }, f.backdrop), colour);
    return { bg: finish(bg), image, finish };
  };

  const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility === 'visible';
  // Logotypes and inactive controls have no contrast requirement (WCAG 1.4.3).
  const exempt = (el) => el.closest('.logo, :disabled, [aria-disabled=true]');
  const describe = (el, text) => `${el.tagName.toLowerCase()}.${[...el.classList].join('.')} "${text.trim().slice(0, 30)}"`;

  const failures = [];
  const measured = new Set();
  const note = (el, extra = []) => {
    for (const key of keys) if (extra.includes(key) || (!key.startsWith('::') && el.matches(key))) measured.add(key);
  };
  const check = (el, what, fg, back, min) => {
    if (back.image) {
      failures.push(`${what}: drawn over a background image, cannot be measured`);
      return;
    }
    const value = ratio(back.finish(over(fg, back.bg)), back.bg);
    if (value < min) failures.push(`${what}: ${value.toFixed(2)}:1, needs ${min}:1`);
  };
  const textMinFor = (style) => {
    const px = parseFloat(style.fontSize);
    const large = px >= 24 || (px >= 18.66 && Number(style.fontWeight) >= 700);
    return large ? largeMin : textMin;
  };

  for (const el of document.body.querySelectorAll('*')) {
    if (!visible(el) || exempt(el)) continue;
    const style = getComputedStyle(el);
    const text = [...el.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE).map((n) => n.textContent).join('');
    if (text.trim()) {
      check(el, describe(el, text), parse(style.color), behind(el), textMinFor(style));
      note(el);
    }
    if (el.matches('input:not([type=checkbox]), textarea, select')) {
      if (el.value) {
        check(el, describe(el, el.value), parse(style.color), behind(el), textMinFor(style));
      } else if (el.placeholder) {
        const placeholder = getComputedStyle(el, '::placeholder');
        check(el, `${describe(el, el.placeholder)} placeholder`, parse(placeholder.color), behind(el), textMinFor(placeholder));
        note(el, ['::placeholder']);
      }
      if (style.borderTopStyle !== 'none' && parseFloat(style.borderTopWidth) > 0) {
        check(el, `${describe(el, '')} border`, parse(style.borderTopColor), behind(el, { inside: false }), componentMin);
      }
      note(el);
    }
    if (el.matches('.presence-dot')) {
      // The dot is ringed by its border: that ring is what it must stand out from.
      const dot = parse(style.backgroundColor);
      const ring = parse(style.borderTopColor);
      const fill = dot.a > 0 ? dot : behind(el).bg;
      if (ratio(fill, ring) < componentMin) failures.push(`${describe(el, el.title)}: ${ratio(fill, ring).toFixed(2)}:1, needs ${componentMin}:1`);
      note(el);
    }
  }
  return { failures, measured: [...measured] };
}

test('every text on the main screens meets WCAG AA contrast', { timeout: 120_000 }, () => withServer(browser, async ({ server, open }) => {
  const measured = new Set();
  const failures = [];
  const scan = async (page, screen) => {
    const result = await page.evaluate(measureContrast, {
      keys: KEY_ELEMENTS, textMin: TEXT_RATIO_MIN, largeMin: LARGE_TEXT_RATIO_MIN, componentMin: COMPONENT_RATIO_MIN,
    });
    for (const f of result.failures) failures.push(`${screen}: ${f}`);
    for (const key of result.measured) measured.add(key);
  };

  // Logged out: the login and sign-up forms.
  const visitor = await open();
  await visitor.page.getByTestId('login-form').waitFor();
  await scan(visitor.page, 'login');
  await visitor.page.getByTestId('auth-switch').click();
  await visitor.page.getByTestId('register-form').waitFor();
  await scan(visitor.page, 'sign-up');

  const { alice, bob, bobName } = await twoFriends(open);
  await scan(alice.page, 'contacts');

  // A chat with both sides, a link, receipts and a day separator; Bob has it unread.
  await openDirectChat(alice.page, bobName);
  await sendMessage(alice.page, 'see https://example.com/contrast');
  // A file with a caption: its card (name, size and type) on both kinds of bubble.
  await alice.page.getByTestId('composer-input').fill('the notes');
  const [chooser] = await Promise.all([
    alice.page.waitForEvent('filechooser'),
    alice.page.getByTestId('attach-button').click(),
  ]);
  await chooser.setFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('contrast\n'.repeat(100)) });
  await waitForMessage(alice.page, 'the notes', { status: 'sent' });
  await bob.page.getByTestId('nav-chats').click();
  await bob.page.getByTestId('unread-badge').waitFor();
  await bob.page.getByTestId('nav-chats-badge').waitFor();
  await scan(bob.page, 'chat list with unread');
  await openChatByName(bob.page, 'Alice');
  await bob.page.getByTestId('file-card').waitFor();
  await scan(bob.page, 'chat with a file');
  await sendMessage(bob.page, 'got it');
  await waitForMessage(alice.page, 'got it');
  await alice.page.getByTestId('receipt').first().waitFor();
  await alice.page.getByTestId('day-separator').waitFor();
  await scan(alice.page, 'chat');

  await alice.page.getByTestId('nav-settings').click();
  await alice.page.getByTestId('settings-pane').waitFor();
  await scan(alice.page, 'settings');

  // A group: the dialog that creates it, then its member list with the owner's badge.
  await alice.page.getByTestId('nav-chats').click();
  await alice.page.getByTestId('new-group').click();
  await alice.page.getByTestId('group-name-input').fill('Contrast club');
  await alice.page.getByTestId('group-member-option').filter({ hasText: 'Bob' }).getByTestId('group-member-checkbox').check();
  await scan(alice.page, 'new group dialog');
  await alice.page.getByTestId('create-group-submit').click();
  await alice.page.locator('[data-testid=chat-title]', { hasText: 'Contrast club' }).waitFor();
  await alice.page.getByTestId('chat-info-toggle').click();
  await alice.page.getByTestId('member-role').waitFor();
  await scan(alice.page, 'group details');

  // Disconnected: the banner, presence unknown, and a message waiting to be sent.
  await server.stop();
  await alice.page.locator('[data-testid=connection-banner][data-state=offline]').waitFor();
  await openChatByName(alice.page, 'Bob');
  await alice.page.getByTestId('composer-input').fill('waiting for the server');
  await alice.page.getByTestId('composer-input').press('Enter');
  await waitForMessage(alice.page, 'waiting for the server', { status: 'pending' });
  await alice.page.locator('[data-testid=connection-banner][data-state=offline]').waitFor();
  await scan(alice.page, 'offline chat');
  await alice.page.getByTestId('nav-contacts').click();
  await alice.page.locator('[data-testid=connection-banner][data-state=offline]').waitFor();
  await scan(alice.page, 'offline contacts');

  assert.deepEqual(failures, []);
  assert.deepEqual(KEY_ELEMENTS.filter((key) => !measured.has(key)), [], 'key elements the scans never measured');
  for (const user of [alice, bob, visitor]) assert.deepEqual(user.errors, []);
}));
