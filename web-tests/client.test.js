// End-to-end tests of the web client in headless Chromium against a real
// Banter server. Run from the repository root:
//   BANTER_BIN=target/debug/banter node --test web-tests/

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  PASSWORD, befriend, conversationItem, expectMessages, launchBrowser, login, messageTexts, openChatByName,
  openDirectChat, openUser, register, sendMessage, startServer, twoFriends, uniqueName, waitConnected,
  waitForMessage, withServer as withServerIn,
} from './helpers.js';

// Each run saves the main chat view here (git-ignored); docs/screenshot.png in the README
// is a copy of one of these, so test runs never dirty the checkout.
const SCREENSHOT_PATH = path.join(path.dirname(fileURLToPath(import.meta.url)), 'test-results', 'chat-view.png');
const TEST_TIMEOUT_MS = 120_000;

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** Runs `body` with a fresh server; stops it and closes the contexts afterwards. */
function withServer(body, options) {
  return withServerIn(browser, body, options);
}

/** Recalls one of the open chat's own messages through its menu. */
async function recallMessage(page, text) {
  const message = page.getByTestId('message').filter({ hasText: text });
  await message.hover();
  await message.getByTestId('message-menu').click();
  await page.getByTestId('recall-message').click();
  await message.waitFor({ state: 'detached' });
}

describe('web client', { timeout: TEST_TIMEOUT_MS }, () => {
  test('two users register, become friends and chat both ways without reloading', () => withServer(async ({ open }) => {
    const alice = await open();
    const bob = await open();
    const aliceName = uniqueName('alice');
    const bobName = uniqueName('bob');
    await register(alice.page, aliceName, 'Alice');
    await register(bob.page, bobName, 'Bob');

    await befriend(alice.page, bob.page, aliceName, bobName, 'Hello from Alice');

    await openDirectChat(alice.page, bobName);
    await sendMessage(alice.page, 'Hi Bob, how are you?');

    // Bob sees the chat appear in his list with an unread badge, live.
    await bob.page.getByTestId('nav-chats').click();
    const item = conversationItem(bob.page, 'Alice');
    await item.getByTestId('unread-badge').filter({ hasText: '1' }).waitFor();
    await bob.page.waitForFunction(() => document.title === '(1) Banter');
    await item.click();
    await waitForMessage(bob.page, 'Hi Bob, how are you?');
    await item.getByTestId('unread-badge').waitFor({ state: 'detached' });
    await bob.page.waitForFunction(() => document.title === 'Banter');

    // Alice's message turns "Read" once Bob has it on screen.
    await alice.page.locator('[data-testid=message][data-status=sent] [data-testid=receipt]', { hasText: 'Read' }).waitFor();

    // Typing indicator reaches the other side (Bob's first keystrokes in this chat: the
    // server takes one typing frame per conversation every 2 s).
    await bob.page.getByTestId('composer-input').pressSequentially('typ');
    await alice.page.getByTestId('typing-indicator').filter({ hasText: 'Bob is typing' }).waitFor();

    await sendMessage(bob.page, 'Great, thanks!\nAnd you?');
    await waitForMessage(alice.page, 'Great, thanks!\nAnd you?');
    await sendMessage(alice.page, 'Doing well 😀');
    await waitForMessage(bob.page, 'Doing well 😀');

    // Own messages on the right, the peer's on the left.
    await expectMessages(alice.page, ['Hi Bob, how are you?', 'Great, thanks!\nAnd you?', 'Doing well 😀']);
    const sides = await alice.page.$$eval('[data-testid=message]', (els) => els.map((e) => e.classList.contains('mine')));
    assert.deepEqual(sides, [true, false, true]);

    // Recall (within two minutes) from the message's menu; both sides show the notice.
    await sendMessage(alice.page, 'sent to the wrong chat');
    const wrong = alice.page.getByTestId('message').filter({ hasText: 'sent to the wrong chat' });
    await wrong.hover();
    await wrong.getByTestId('message-menu').click();
    await alice.page.getByTestId('recall-message').click();
    await alice.page.getByTestId('recalled-notice').filter({ hasText: 'You recalled a message' }).waitFor();
    await bob.page.getByTestId('recalled-notice').filter({ hasText: 'Alice recalled a message' }).waitFor();
    assert.equal(await bob.page.getByText('sent to the wrong chat').count(), 0);

    mkdirSync(path.dirname(SCREENSHOT_PATH), { recursive: true });
    await alice.page.screenshot({ path: SCREENSHOT_PATH });
    assert.deepEqual(alice.errors, []);
    assert.deepEqual(bob.errors, []);
  }));

  test('a group of three: unread badges appear and clear; the sender sees read counts', () => withServer(async ({ open }) => {
    const [alice, bob, carol] = [await open(), await open(), await open()];
    const names = { alice: uniqueName('alice'), bob: uniqueName('bob'), carol: uniqueName('carol') };
    await register(alice.page, names.alice, 'Alice');
    await register(bob.page, names.bob, 'Bob');
    await register(carol.page, names.carol, 'Carol');
    await befriend(alice.page, bob.page, names.alice, names.bob);
    await befriend(alice.page, carol.page, names.alice, names.carol);

    // Alice creates the group with both friends.
    await alice.page.getByTestId('nav-chats').click();
    await alice.page.getByTestId('new-group').click();
    await alice.page.getByTestId('group-name-input').fill('Study group');
    await alice.page.getByTestId('group-member-option').filter({ hasText: 'Bob' }).getByTestId('group-member-checkbox').check();
    await alice.page.getByTestId('group-member-option').filter({ hasText: 'Carol' }).getByTestId('group-member-checkbox').check();
    await alice.page.getByTestId('create-group-submit').click();
    await alice.page.locator('[data-testid=chat-title]', { hasText: 'Study group' }).waitFor();
    // A new group's stream starts empty: no notice, just the start of the conversation.
    await alice.page.getByTestId('chat-pane').getByText('This is the beginning of the conversation.').waitFor();
    assert.equal(await alice.page.getByTestId('system-notice').count(), 0);
    assert.equal(await alice.page.getByTestId('message').count(), 0);
    await sendMessage(alice.page, 'Welcome to the group!');
    await alice.page.locator('[data-testid=receipt]', { hasText: '0 read' }).waitFor();

    // Bob and Carol get the group live, with one unread message each.
    for (const member of [bob, carol]) {
      await member.page.getByTestId('nav-chats').click();
      await conversationItem(member.page, 'Study group').getByTestId('unread-badge').filter({ hasText: '1' }).waitFor();
      await member.page.getByTestId('nav-chats-badge').filter({ hasText: '1' }).waitFor();
    }

    await openChatByName(bob.page, 'Study group');
    await waitForMessage(bob.page, 'Welcome to the group!');
    // In a group, others' messages carry the sender's name.
    await bob.page.getByTestId('message-sender').filter({ hasText: 'Alice' }).waitFor();
    await conversationItem(bob.page, 'Study group').getByTestId('unread-badge').waitFor({ state: 'detached' });
    await alice.page.locator('[data-testid=receipt]', { hasText: '1 read' }).waitFor();
    // Carol has not read yet: her badge is still there.
    assert.equal(await conversationItem(carol.page, 'Study group').getByTestId('unread-badge').textContent(), '1');

    // Recalled texts are not unread: a recall takes its message off Carol's badge,
    // when her page holds the message (it arrived live)...
    const carolBadge = conversationItem(carol.page, 'Study group').getByTestId('unread-badge');
    await sendMessage(alice.page, 'Wrong group, sorry');
    await carolBadge.filter({ hasText: '2' }).waitFor();
    await recallMessage(alice.page, 'Wrong group, sorry');
    await carolBadge.filter({ hasText: '1' }).waitFor();
    // ...and when it only knows them through the server's count (sent before a reload).
    await sendMessage(alice.page, 'Also wrong');
    await sendMessage(alice.page, 'Wrong again');
    await carolBadge.filter({ hasText: '3' }).waitFor();
    await carol.page.reload();
    await waitConnected(carol.page);
    await carol.page.getByTestId('nav-chats').click();
    await carolBadge.filter({ hasText: '3' }).waitFor();
    await recallMessage(alice.page, 'Also wrong');
    await carolBadge.filter({ hasText: '2' }).waitFor();
    await recallMessage(alice.page, 'Wrong again');
    await carolBadge.filter({ hasText: '1' }).waitFor();
    await carol.page.getByTestId('nav-chats-badge').filter({ hasText: '1' }).waitFor();

    await openChatByName(carol.page, 'Study group');
    await waitForMessage(carol.page, 'Welcome to the group!');
    await conversationItem(carol.page, 'Study group').getByTestId('unread-badge').waitFor({ state: 'detached' });
    await alice.page.locator('[data-testid=receipt]', { hasText: '2 read' }).waitFor();

    // Bob answers; Carol (chat open) sees it, Alice too.
    await sendMessage(bob.page, 'Thanks Alice!');
    await waitForMessage(carol.page, 'Thanks Alice!');
    await waitForMessage(alice.page, 'Thanks Alice!');

    // The member list shows roles.
    await alice.page.getByTestId('chat-info-toggle').click();
    await alice.page.getByTestId('member-row').nth(2).waitFor();
    assert.equal(await alice.page.locator('[data-testid=member-row][data-role=owner] [data-testid=member-name]').textContent(), 'Alice (You)');
  }));

  test('messages sent while a user is offline arrive in order, once, when they return', () => withServer(async ({ open }) => {
    let { alice, bob, aliceName, bobName } = await twoFriends(open);
    await openDirectChat(alice.page, bobName);
    await sendMessage(alice.page, 'before you left');
    await openChatByName(bob.page, 'Alice');
    await waitForMessage(bob.page, 'before you left');

    // Bob closes his browser; his login stays saved in its storage.
    const saved = await bob.context.storageState();
    await bob.context.close();

    const missed = ['while away 1', 'while away 2', 'while away 3'];
    for (const text of missed) await sendMessage(alice.page, text);

    // Bob comes back: still logged in; three unread, each message exactly once and in order.
    bob = await open({ storageState: saved });
    await waitConnected(bob.page);
    await conversationItem(bob.page, 'Alice').getByTestId('unread-badge').filter({ hasText: '3' }).waitFor();
    await openChatByName(bob.page, 'Alice');
    await waitForMessage(bob.page, 'while away 3');
    await expectMessages(bob.page, ['before you left', ...missed]);

    // A network drop on a live page: messages sent meanwhile show up after it returns.
    await bob.context.setOffline(true);
    await sendMessage(alice.page, 'during the drop');
    await bob.context.setOffline(false);
    await waitForMessage(bob.page, 'during the drop');
    await expectMessages(bob.page, ['before you left', ...missed, 'during the drop']);
  }));

  test('sends over the message rate wait and go out by themselves, each once and in order', () => withServer(async ({ open }) => {
    const { alice, bob, bobName } = await twoFriends(open);
    await openDirectChat(alice.page, bobName);
    // One message a second with a burst of two: most of these are refused at first with
    // rate_limited on their ids, which is no reason to show them as failed.
    const texts = ['r1', 'r2', 'r3', 'r4', 'r5'];
    const input = alice.page.getByTestId('composer-input');
    for (const text of texts) {
      await input.fill(text);
      await input.press('Enter');
    }
    for (const text of texts) await waitForMessage(alice.page, text, { status: 'sent' });
    assert.equal(await alice.page.locator('[data-testid=message][data-status=failed]').count(), 0);
    // Each exactly once, and both screens in the same (seq) order.
    const shown = await messageTexts(alice.page);
    assert.deepEqual([...shown].sort(), texts);
    await openChatByName(bob.page, 'Alice');
    await expectMessages(bob.page, shown);
  }, { env: { BANTER_LIMITS__MESSAGES_PER_USER_PER_SECOND_MAX: '1' } }));

  test('the recall option follows the recall window the server announces in hello', () => withServer(async ({ open }) => {
    const { alice, bobName } = await twoFriends(open);
    await openDirectChat(alice.page, bobName);
    const input = alice.page.getByTestId('composer-input');
    await input.fill('short-lived');
    await input.press('Enter');
    await waitForMessage(alice.page, 'short-lived', { status: 'sent' });
    const message = alice.page.getByTestId('message').filter({ hasText: 'short-lived' });
    await message.hover();
    await message.getByTestId('message-menu').click();
    assert.equal(await alice.page.getByTestId('recall-message').isEnabled(), true);
    await alice.page.keyboard.press('Escape');
    // The server's window is 2 s, not the usual 2 minutes: past it, recall is not offered.
    await alice.page.waitForTimeout(2_500);
    await message.hover();
    await message.getByTestId('message-menu').click();
    assert.equal(await alice.page.getByTestId('recall-message').isDisabled(), true);
  }, { env: { BANTER_LIMITS__RECALL_WINDOW_SECS: '2' } }));

  test('friends see each other come online and go offline', () => withServer(async ({ open }) => {
    let { alice, bob, aliceName, bobName } = await twoFriends(open);
    const bobRow = alice.page.locator(`[data-testid=friend][data-username="${bobName}"]`);
    await bobRow.and(alice.page.locator('[data-presence=online]')).waitFor();

    const saved = await bob.context.storageState();
    await bob.context.close();
    await bobRow.and(alice.page.locator('[data-presence=offline]')).waitFor();

    bob = await open({ storageState: saved });
    await waitConnected(bob.page);
    await bobRow.and(alice.page.locator('[data-presence=online]')).waitFor();
    await openDirectChat(alice.page, bobName);
    await alice.page.getByTestId('chat-subtitle').filter({ hasText: 'Online' }).waitFor();
  }));

  test('the page survives a server restart without losing or doubling messages', () => withServer(async ({ server, open }) => {
    const { alice, bob, aliceName, bobName } = await twoFriends(open);
    await openDirectChat(alice.page, bobName);
    await sendMessage(alice.page, 'one');
    await openChatByName(bob.page, 'Alice');
    await waitForMessage(bob.page, 'one');
    await sendMessage(bob.page, 'two');
    await waitForMessage(alice.page, 'two');

    await server.stop();
    for (const user of [alice, bob]) {
      await user.page.locator('[data-testid=connection-banner]:not([hidden])').waitFor();
    }
    // Written during the outage: stays pending, then goes out after reconnecting.
    const input = alice.page.getByTestId('composer-input');
    await input.fill('three (sent during the outage)');
    await input.press('Enter');
    await waitForMessage(alice.page, 'three (sent during the outage)', { status: 'pending' });

    const restarted = await startServer({ dataDir: server.dataDir, port: server.port });
    try {
      for (const user of [alice, bob]) {
        // The pages poll /healthz while they wait, so they reconnect without sitting out the backoff.
        await user.page.locator('[data-testid=connection-banner][hidden]').waitFor({ state: 'attached' });
      }
      await waitForMessage(alice.page, 'three (sent during the outage)', { status: 'sent' });
      await waitForMessage(bob.page, 'three (sent during the outage)');
      await sendMessage(bob.page, 'four');
      await waitForMessage(alice.page, 'four');
      const expected = ['one', 'two', 'three (sent during the outage)', 'four'];
      await expectMessages(alice.page, expected);
      await expectMessages(bob.page, expected);

      // A reload shows the same history: nothing was stored twice.
      await bob.page.reload();
      await waitConnected(bob.page);
      await openChatByName(bob.page, 'Alice');
      await waitForMessage(bob.page, 'four');
      await expectMessages(bob.page, expected);
    } finally {
      await restarted.stop();
    }
  }));

  test('messages written while the server is down survive closing the browser', () => withServer(async ({ server, open }) => {
    let { alice, bob, aliceName, bobName } = await twoFriends(open);
    await openDirectChat(bob.page, aliceName);
    await sendMessage(bob.page, 'first');

    await server.stop();
    await bob.page.locator('[data-testid=connection-banner]:not([hidden])').waitFor();
    const input = bob.page.getByTestId('composer-input');
    await input.fill('written offline');
    await input.press('Enter');
    await waitForMessage(bob.page, 'written offline', { status: 'pending' });
    const saved = await bob.context.storageState();
    await bob.context.close();

    const restarted = await startServer({ dataDir: server.dataDir, port: server.port });
    try {
      bob = await open({ storageState: saved });
      await waitConnected(bob.page);
      await openChatByName(alice.page, 'Bob');
      await waitForMessage(alice.page, 'written offline');
      await expectMessages(alice.page, ['first', 'written offline']);
      await openChatByName(bob.page, 'Alice');
      await waitForMessage(bob.page, 'written offline', { status: 'sent' });
      await expectMessages(bob.page, ['first', 'written offline']);
    } finally {
      await restarted.stop();
    }
  }));

  test('the typing line goes with the message; Escape closes the message menu; drafts survive a reload, not a logout', () => withServer(async ({ open }) => {
    const { alice, bob, aliceName, bobName } = await twoFriends(open);
    await openDirectChat(alice.page, bobName);
    await openDirectChat(bob.page, aliceName);

    // Bob types, Alice sees it; when his message arrives, the line is gone in the same
    // moment (it would only expire by itself seconds later).
    await bob.page.getByTestId('composer-input').pressSequentially('on my way');
    await alice.page.getByTestId('typing-indicator').filter({ hasText: 'Bob is typing' }).waitFor();
    await bob.page.getByTestId('composer-input').press('Enter');
    const typingWhenShown = await alice.page.waitForFunction(() => {
      const arrived = [...document.querySelectorAll('[data-testid=message-text]')].some((m) => m.textContent === 'on my way');
      return arrived && { typing: document.querySelector('[data-testid=typing-indicator]').textContent };
    });
    assert.deepEqual(await typingWhenShown.jsonValue(), { typing: '' });

    // The message menu closes on Escape, and focus goes back to its button.
    await sendMessage(alice.page, 'menu test');
    const message = alice.page.getByTestId('message').filter({ hasText: 'menu test' });
    await message.hover();
    await message.getByTestId('message-menu').click();
    await alice.page.getByTestId('message-menu-popup').waitFor();
    await alice.page.keyboard.press('Escape');
    await alice.page.getByTestId('message-menu-popup').waitFor({ state: 'detached' });
    assert.equal(await message.getByTestId('message-menu').evaluate((b) => b === document.activeElement), true);

    // A draft survives a reload; sending clears it.
    const input = alice.page.getByTestId('composer-input');
    await input.fill('a half-written thought');
    await alice.page.reload();
    await waitConnected(alice.page);
    await openChatByName(alice.page, 'Bob');
    assert.equal(await input.inputValue(), 'a half-written thought');
    await input.press('Enter');
    await waitForMessage(alice.page, 'a half-written thought', { status: 'sent' });
    await alice.page.reload();
    await waitConnected(alice.page);
    await openChatByName(alice.page, 'Bob');
    assert.equal(await input.inputValue(), '');

    // Another user logging in on the same browser sees nothing of it, even in the
    // very same conversation, and nothing of it stays in the browser's storage.
    await input.fill('not for Bob to see');
    await alice.page.getByTestId('nav-settings').click();
    await alice.page.getByTestId('logout').click();
    await login(alice.page, bobName);
    await waitConnected(alice.page);
    await openChatByName(alice.page, 'Alice');
    assert.equal(await input.inputValue(), '');
    const stored = await alice.page.evaluate(() => Object.values(localStorage).join('\n'));
    assert.ok(!stored.includes('not for Bob to see'), 'the draft stayed in localStorage after logout');
    assert.deepEqual(alice.errors, []);
  }));

  test('while disconnected presence shows as unknown; the page reconnects as soon as the server is back', () => withServer(async ({ server, open }) => {
    const { alice, bob, bobName } = await twoFriends(open);
    // befriend() leaves Alice on her contacts.
    const bobRow = alice.page.locator(`[data-testid=friend][data-username="${bobName}"]`);
    await bobRow.and(alice.page.locator('[data-presence=online]')).waitFor();

    await server.stop();
    await bobRow.and(alice.page.locator('[data-presence=unknown]')).waitFor();
    await bobRow.getByText('Status unknown').waitFor();
    // Bob leaves during the outage: only a refresh after reconnecting can tell Alice.
    await bob.context.close();

    // Let the backoff grow until its next attempt is seconds away.
    const retryAt = await alice.page.waitForFunction(() => {
      const banner = document.querySelector('[data-testid=connection-banner]');
      const retryAtMs = Number(banner.dataset.retryAtMs);
      return banner.dataset.state === 'offline' && retryAtMs - Date.now() > 4500 && retryAtMs;
    }, null, { timeout: 30_000 });
    const retryAtMs = await retryAt.jsonValue();

    const restarted = await startServer({ dataDir: server.dataDir, port: server.port });
    try {
      // The page must not sit out the rest of its backoff.
      const remaining = retryAtMs - await alice.page.evaluate(() => Date.now());
      assert.ok(remaining > 1000, `the server took too long to restart for this test (${remaining} ms left)`);
      await alice.page.locator('[data-testid=connection-banner][data-state=open]').waitFor({ state: 'attached', timeout: remaining });
      await bobRow.and(alice.page.locator('[data-presence=offline]')).waitFor();
    } finally {
      await restarted.stop();
    }
  }));

  test('phone-sized screens show the list and the chat as separate views; Chinese UI', () => withServer(async ({ open }) => {
    const phone = { width: 390, height: 780 };
    const alice = await open({ viewport: phone });
    const bob = await open();
    const aliceName = uniqueName('alice');
    const bobName = uniqueName('bob');
    await register(alice.page, aliceName, 'Alice');
    await register(bob.page, bobName, 'Bob');
    await befriend(bob.page, alice.page, bobName, aliceName);
    await openDirectChat(bob.page, aliceName);
    await sendMessage(bob.page, 'hello phone');

    await openChatByName(alice.page, 'Bob');
    await waitForMessage(alice.page, 'hello phone');
    assert.equal(await alice.page.getByTestId('conversation-list').isVisible(), false);
    await alice.page.getByTestId('chat-pane').getByTestId('back').click();
    await alice.page.getByTestId('conversation-list').waitFor();
    assert.equal(await alice.page.getByTestId('chat-pane').isVisible(), false);

    // Switch to Simplified Chinese; the choice survives a reload.
    await alice.page.getByTestId('nav-settings').click();
    await alice.page.getByTestId('language-select').selectOption('zh-CN');
    await alice.page.getByTestId('logout').filter({ hasText: '退出登录' }).waitFor();
    await alice.page.getByTestId('settings-pane').getByTestId('back').click();
    await alice.page.getByTestId('nav-chats').filter({ hasText: '消息' }).waitFor();
    await alice.page.reload();
    await waitConnected(alice.page);
    await alice.page.getByTestId('nav-chats').filter({ hasText: '消息' }).waitFor();
    assert.equal(await alice.page.evaluate(() => document.documentElement.lang), 'zh-CN');
    await openChatByName(alice.page, 'Bob');
    await alice.page.getByTestId('send-button').filter({ hasText: '发送' }).waitFor();
  }));

  test('message text is never interpreted as HTML; only http(s) URLs become links', () => withServer(async ({ open }) => {
    const { alice, bob, aliceName, bobName } = await twoFriends(open, { aliceNickname: '<b>Alice</b>' });
    await openDirectChat(alice.page, bobName);

    const attack = '<img src=x onerror=alert(1)>';
    await sendMessage(alice.page, attack);
    await sendMessage(alice.page, 'see https://example.com/a?b=1 and javascript:alert(2)');
    await openChatByName(bob.page, '<b>Alice</b>');
    for (const page of [alice.page, bob.page]) {
      await waitForMessage(page, attack);
      const bubble = page.getByTestId('message-bubble').filter({ hasText: attack });
      assert.equal(await bubble.locator('img').count(), 0);
      assert.equal(await bubble.innerText(), attack);
      assert.equal(await page.locator('[data-testid=message-list] img[src="x"]').count(), 0);
      const links = await page.$$eval('[data-testid=message-bubble] a', (as) => as.map((a) => [a.getAttribute('href'), a.target, a.rel]));
      assert.deepEqual(links, [['https://example.com/a?b=1', '_blank', 'noopener noreferrer']]);
    }
    // The nickname with markup is shown as text too.
    assert.equal(await bob.page.getByTestId('chat-title').textContent(), '<b>Alice</b>');
    assert.equal(await bob.page.locator('[data-testid=chat-title] b').count(), 0);
    assert.deepEqual(alice.dialogs, []);
    assert.deepEqual(bob.dialogs, []);
    assert.deepEqual(alice.errors, []);
    assert.deepEqual(bob.errors, []);
  }));

  test('login and registration errors are shown inline', () => withServer(async ({ server, open }) => {
    const first = await open();
    const name = uniqueName('dana');
    await register(first.page, name, 'Dana');
    // Log out, then try the wrong password.
    await first.page.getByTestId('nav-settings').click();
    await first.page.getByTestId('logout').click();
    await login(first.page, name, 'not-the-password');
    await first.page.getByTestId('auth-error').filter({ hasText: 'Wrong username or password' }).waitFor();

    // The same username again (case-insensitively) is taken.
    const second = await open();
    await second.page.getByTestId('auth-switch').click();
    await second.page.getByTestId('auth-username').fill(name.toUpperCase());
    await second.page.getByTestId('auth-password').fill(PASSWORD);
    await second.page.getByTestId('auth-submit').click();
    await second.page.getByTestId('auth-error').filter({ hasText: 'username is taken' }).waitFor();

    // The right password works; a reload keeps the session.
    await login(first.page, name);
    await waitConnected(first.page);
    await first.page.reload();
    await waitConnected(first.page);

    // With the server gone, logging in says so.
    await server.stop();
    await second.page.getByTestId('auth-switch').click();
    await login(second.page, name);
    await second.page.getByTestId('auth-error').filter({ hasText: 'Cannot reach the server' }).waitFor();
  }));
});
