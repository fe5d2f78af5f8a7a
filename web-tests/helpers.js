// Shared fixtures for the browser tests: a real Banter server (the binary in
// BANTER_BIN on a fresh data folder), a headless Chromium, and the few UI
// steps every scenario needs (register, befriend, open a chat, send).
//
// Synchronisation is always "wait until this is on the page" (selectors and
// page conditions with timeouts), never a fixed sleep.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { chromium } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
/** How long the server may take to print its "listening on" line. */
const SERVER_START_TIMEOUT_MS = 30_000;
/** How long the server may take to exit after SIGTERM before it is killed. */
const SERVER_STOP_TIMEOUT_MS = 10_000;
/** Default wait for anything to appear in the page. */
export const UI_TIMEOUT_MS = 15_000;
export const PASSWORD = 'correct-horse-battery';

/**
 * Starts the server. With `port` and `dataDir` it restarts on the same
 * address and data (so open pages reconnect to it).
 */
export async function startServer({ dataDir, port = 0, env = {} } = {}) {
  const bin = process.env.BANTER_BIN;
  if (!bin) throw new Error('set BANTER_BIN to the banter server binary');
  const ownsDataDir = !dataDir;
  const dir = dataDir ?? mkdtempSync(path.join(tmpdir(), 'banter-web-test-'));
  // The server treats every BANTER_* variable as configuration and rejects
  // unknown ones, so BANTER_BIN (ours, not its) must not reach it.
  const { BANTER_BIN: _ours, ...inherited } = process.env;
  const child = spawn(bin, [], {
    env: { ...inherited, ...env, BANTER_LISTEN: `127.0.0.1:${port}`, BANTER_DATA_DIR: dir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    // Keep the tail only: enough to explain a failure to start.
    stderr = (stderr + chunk).slice(-8000);
  });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in time:\n${stderr}`)), SERVER_START_TIMEOUT_MS);
    const lines = readline.createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const match = line.match(/listening on (http:\/\/\S+)/);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code ?? signal}) before listening:\n${stderr}`));
    });
  });
  const server = {
    url,
    port: Number(new URL(url).port),
    dataDir: dir,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), SERVER_STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    },
    /** Stops the server and removes its data folder (if this call made it). */
    async dispose() {
      await server.stop();
      if (ownsDataDir) rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/**
 * Runs `body` with a fresh server (with extra BANTER_* settings in `env`) and a
 * way to open users in `browser`;
 * stops the server and closes the users' contexts afterwards.
 */
export async function withServer(browser, body, { env } = {}) {
  const server = await startServer({ env });
  const contexts = [];
  const open = async (options) => {
    const user = await openUser(browser, server.url, options);
    contexts.push(user.context);
    return user;
  };
  try {
    await body({ server, open });
  } finally {
    await Promise.all(contexts.map((c) => c.close().catch(() => {})));
    await server.dispose();
  }
}

/** Headless Chromium; `args` are added to the usual flags (e.g. a fake microphone). */
export function launchBrowser({ args = [] } = {}) {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: [...CHROMIUM_ARGS, ...args] });
}

/**
 * A user in their own browser context (own cookies and localStorage).
 * `dialogs` collects every alert/confirm the page tries to open.
 */
export async function openUser(browser, baseURL, { storageState, viewport = { width: 1200, height: 760 } } = {}) {
  const context = await browser.newContext({ baseURL, storageState, viewport, locale: 'en-US' });
  const page = await context.newPage();
  const dialogs = [];
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    dialog.dismiss().catch(() => {});
  });
  const errors = [];
  page.on('pageerror', (err) => errors.push(err));
  // The server's CSP forbids inline scripts and styles; a violation means
  // the client broke it somewhere.
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy/i.test(message.text())) errors.push(message.text());
  });
  page.setDefaultTimeout(UI_TIMEOUT_MS);
  await page.goto('/');
  return { context, page, dialogs, errors };
}

/** A fresh, unique username (3–32 chars of [A-Za-z0-9_.-]). */
let counter = 0;
export function uniqueName(prefix) {
  counter += 1;
  return `${prefix}${Date.now().toString(36).slice(-5)}${counter}`;
}

export async function register(page, username, nickname = username) {
  await page.getByTestId('auth-switch').click();
  await page.getByTestId('register-form').waitFor();
  await page.getByTestId('auth-username').fill(username);
  await page.getByTestId('auth-nickname').fill(nickname);
  await page.getByTestId('auth-password').fill(PASSWORD);
  await page.getByTestId('auth-submit').click();
  await waitConnected(page);
}

export async function login(page, username, password = PASSWORD) {
  await page.getByTestId('login-form').waitFor();
  await page.getByTestId('auth-username').fill(username);
  await page.getByTestId('auth-password').fill(password);
  await page.getByTestId('auth-submit').click();
}

/** The app shell is up and the WebSocket has said hello (no outage banner). */
export async function waitConnected(page) {
  await page.getByTestId('app').waitFor();
  await page.waitForFunction(() => {
    const banner = document.querySelector('[data-testid=connection-banner]');
    return banner && banner.dataset.state === 'open';
  });
}

/** `a` asks `b` (username) to be friends; `bPage` accepts; both see each other as friends. */
export async function befriend(aPage, bPage, aUsername, bUsername, greeting = 'Hi there!') {
  await aPage.getByTestId('nav-contacts').click();
  await aPage.getByTestId('contact-search').fill(bUsername);
  await aPage.getByTestId('contact-search-submit').click();
  await aPage.getByTestId('friend-greeting').fill(greeting);
  await aPage.getByTestId('send-friend-request').click();
  await aPage.getByTestId('request-sent').waitFor();
  await aPage.locator(`[data-testid=outgoing-request][data-username="${bUsername}"]`).waitFor();

  await bPage.getByTestId('nav-contacts').click();
  const request = bPage.locator(`[data-testid=incoming-request][data-username="${aUsername}"]`);
  await request.waitFor();
  await request.getByTestId('accept-request').click();
  await bPage.locator(`[data-testid=friend][data-username="${aUsername}"]`).waitFor();
  await aPage.locator(`[data-testid=friend][data-username="${bUsername}"]`).waitFor();
}

/** Opens (or creates) the direct chat with a friend through their contact card. */
/**
 * Two new users, Alice and Bob, each in a page of their own, registered and befriended:
 * the starting point of most tests. `open` is the one `withServer` hands to a test.
 */
export async function twoFriends(open, { aliceNickname = 'Alice' } = {}) {
  const alice = await open();
  const bob = await open();
  const aliceName = uniqueName('alice');
  const bobName = uniqueName('bob');
  await register(alice.page, aliceName, aliceNickname);
  await register(bob.page, bobName, 'Bob');
  await befriend(alice.page, bob.page, aliceName, bobName);
  return { alice, bob, aliceName, bobName };
}

export async function openDirectChat(page, friendUsername) {
  await page.getByTestId('nav-contacts').click();
  await page.locator(`[data-testid=friend][data-username="${friendUsername}"]`).click();
  await page.getByTestId('open-chat').click();
  await page.getByTestId('chat-pane').waitFor();
}

/** Opens a chat from the conversation list by its shown name. */
export async function openChatByName(page, name) {
  await page.getByTestId('nav-chats').click();
  await conversationItem(page, name).click();
  await page.locator('[data-testid=chat-title]', { hasText: name }).waitFor();
}

export function conversationItem(page, name) {
  return page.getByTestId('conversation-item').filter({
    has: page.getByTestId('conversation-name').getByText(name, { exact: true }),
  });
}

/** Types and sends a message with Enter, then waits until the server acked it. */
export async function sendMessage(page, text) {
  const input = page.getByTestId('composer-input');
  await input.fill(text);
  await input.press('Enter');
  await waitForMessage(page, text, { status: 'sent' });
}

/** Waits for a message bubble with exactly this text (optionally in this state). */
export async function waitForMessage(page, text, { status } = {}) {
  await page.waitForFunction(([wanted, wantedStatus]) => [...document.querySelectorAll('[data-testid=message]')]
    .some((m) => m.querySelector('[data-testid=message-text]')?.textContent === wanted
      && (!wantedStatus || m.dataset.status === wantedStatus)), [text, status]);
}

/** The texts of all message bubbles in the open chat, top to bottom. */
export function messageTexts(page) {
  return page.$$eval('[data-testid=message-text]', (els) => els.map((e) => e.textContent));
}

/**
 * Waits until the open chat shows exactly these texts, in this order (history
 * pages and syncs arrive asynchronously); on timeout, fails with what it shows.
 */
export async function expectMessages(page, expected, timeout = UI_TIMEOUT_MS) {
  try {
    await page.waitForFunction((wanted) => {
      const texts = [...document.querySelectorAll('[data-testid=message-text]')].map((e) => e.textContent);
      return JSON.stringify(texts) === JSON.stringify(wanted);
    }, expected, { timeout });
  } catch (err) {
    const actual = await messageTexts(page);
    throw new Error(`chat shows ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`, { cause: err });
  }
}
