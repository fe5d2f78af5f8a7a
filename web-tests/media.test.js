// Pictures, files, voice messages and avatars in the web client (protocol
// §4.10), end to end in headless Chromium against a real server: the sender
// pastes, picks or records; the receiver sees each message live and again
// after a reload. Every test file is made here (PNGs encoded in Node or drawn
// on a canvas in the page, bytes for the rest); the microphone is Chromium's
// fake device, which plays a beep.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { deflateSync } from 'node:zlib';
import {
  conversationItem, launchBrowser, openChatByName, openDirectChat, sendMessage, twoFriends,
  waitConnected, waitForMessage, withServer as withServerIn,
} from './helpers.js';

const TEST_TIMEOUT_MS = 180_000;
/** The fake microphone and no permission prompt. */
const MEDIA_ARGS = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'];

let browser;
before(async () => {
  browser = await launchBrowser({ args: MEDIA_ARGS });
});
after(async () => {
  await browser?.close();
});

function withServer(body, options) {
  return withServerIn(browser, body, options);
}

// ---- test files ----

function crc32(bytes) {
  let crc = ~0;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k += 1) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return ~crc >>> 0;
}

function pngChunk(type, data) {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** An RGB PNG of a colour gradient, `width`×`height`. */
function gradientPng(width, height, [r0, g0, b0] = [200, 40, 40]) {
  const rows = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y += 1) {
    const row = y * (width * 3 + 1);
    rows[row] = 0; // filter: none
    for (let x = 0; x < width; x += 1) {
      rows[row + 1 + x * 3] = (r0 + x) % 256;
      rows[row + 2 + x * 3] = (g0 + y) % 256;
      rows[row + 3 + x * 3] = b0;
    }
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // truecolour
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header), pngChunk('IDAT', deflateSync(rows)), pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** `size` bytes that start like a PDF and are otherwise arbitrary. */
function pdfLike(size) {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i += 1) bytes[i] = (i * 7919 + (i >> 8)) % 251;
  bytes.write('%PDF-1.4\n', 0, 'latin1');
  return bytes;
}

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

/** A thumbnail keeps the picture's shape, give or take its rounding to whole pixels. */
function assertAspect([width, height], ratio) {
  assert.ok(width > 0 && Math.abs(width / height - ratio) < 0.01, `${width}×${height} is not ${ratio}:1`);
}

// ---- steps ----

/** Picks files through the composer's attach button (the real file chooser). */
async function pickFiles(page, files) {
  const [chooser] = await Promise.all([
    page.waitForEvent('filechooser'),
    page.getByTestId('attach-button').click(),
  ]);
  await chooser.setFiles(files);
}

/** Draws a picture on a canvas, puts it on the clipboard and pastes it with Ctrl+V. */
async function pasteCanvasImage(page, width, height) {
  await page.evaluate(async ([w, h]) => {
    const canvas = document.createElement('canvas');
    canvas.width = w;
    canvas.height = h;
    const g = canvas.getContext('2d');
    g.fillStyle = '#2a6fb0';
    g.fillRect(0, 0, w, h);
    g.fillStyle = '#f3c623';
    g.beginPath();
    g.arc(w / 2, h / 2, Math.min(w, h) / 3, 0, Math.PI * 2);
    g.fill();
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
    await navigator.clipboard.write([new ClipboardItem({ 'image/png': blob })]);
  }, [width, height]);
  await page.getByTestId('composer-input').focus();
  await page.keyboard.press('Control+V');
}

/** The last message in the open chat whose bubble shows this kind of attachment. */
function lastMedia(page, kind) {
  return page.locator(`[data-testid=message]:has([data-testid=message-bubble][data-kind=${kind}])`).last();
}

/** Waits until the `index`th picture of the open chat has loaded; returns its natural and shown sizes. */
async function loadedImage(page, index = 0) {
  const handle = await page.waitForFunction((i) => {
    const img = document.querySelectorAll('[data-testid=message-image]')[i];
    return img && img.complete && img.naturalWidth > 0
      && { natural: [img.naturalWidth, img.naturalHeight], shown: [img.style.width, img.style.height], src: img.src };
  }, index);
  return handle.jsonValue();
}

/** Waits for a whole upload, noting every percentage the progress label showed on the way. */
async function watchProgress(page) {
  return page.evaluate(() => new Promise((resolve) => {
    const seen = new Set();
    const look = () => {
      for (const label of document.querySelectorAll('[data-testid=upload-percent]')) seen.add(label.textContent);
    };
    const observer = new MutationObserver(look);
    observer.observe(document.body, { subtree: true, childList: true, characterData: true });
    look();
    window.__stopWatching = () => {
      observer.disconnect();
      resolve([...seen]);
    };
  }));
}

describe('attachments and avatars', { timeout: TEST_TIMEOUT_MS }, () => {
  test('pictures (pasted and picked), a file with upload progress and a voice message reach the other side, live and after a reload', () => withServer(async ({ server, open }) => {
    const { alice, bob, aliceName, bobName } = await twoFriends(open);
    await alice.context.grantPermissions(['microphone', 'clipboard-read', 'clipboard-write'], { origin: server.url });
    await openDirectChat(alice.page, bobName);
    await openDirectChat(bob.page, aliceName);

    // 1. A picture pasted with Ctrl+V; what was typed becomes its caption.
    await alice.page.getByTestId('composer-input').fill('look at this');
    await pasteCanvasImage(alice.page, 180, 120);
    await lastMedia(alice.page, 'image').and(alice.page.locator('[data-status=sent]')).waitFor();
    assert.equal(await alice.page.getByTestId('composer-input').inputValue(), '');
    await waitForMessage(bob.page, 'look at this');
    const pasted = await loadedImage(bob.page, 0);
    assertAspect(pasted.natural, 1.5); // the server's thumbnail
    assert.deepEqual(pasted.shown, ['180px', '120px']); // reserved at the picture's own size
    assert.match(pasted.src, /^blob:/);

    // 2. A picture through the attach button (a PNG made here), reserved at its shape.
    const photo = gradientPng(480, 320);
    await pickFiles(alice.page, { name: 'gradient.png', mimeType: 'image/png', buffer: photo });
    await alice.page.locator('[data-testid=message][data-status=sent]:has([data-kind=image])').nth(1).waitFor();
    const picked = await loadedImage(bob.page, 1);
    assert.deepEqual(picked.shown, ['240px', '160px']);
    assertAspect(picked.natural, 1.5);
    await conversationItem(bob.page, 'Alice').getByTestId('conversation-preview').filter({ hasText: '[Picture]' }).waitFor();

    // The viewer shows the full picture, zooms, and closes with Escape.
    await bob.page.getByTestId('open-image').nth(1).click();
    await bob.page.getByTestId('image-viewer').waitFor();
    await bob.page.waitForFunction(() => {
      const img = document.querySelector('[data-testid=viewer-image]');
      return img?.dataset.variant === 'full' && img.complete && img.naturalWidth === 480;
    });
    const zoomBefore = await bob.page.getByTestId('viewer-zoom').textContent();
    await bob.page.getByTestId('viewer-zoom-in').click();
    assert.notEqual(await bob.page.getByTestId('viewer-zoom').textContent(), zoomBefore);
    await bob.page.getByTestId('viewer-stage').hover();
    await bob.page.mouse.wheel(0, 300);
    await bob.page.keyboard.press('Escape');
    await bob.page.getByTestId('image-viewer').waitFor({ state: 'detached' });

    // 3. A file, uploaded slowly enough (throttled) that its progress shows; then a
    //    second one cancelled while it uploads.
    const cdp = await alice.context.newCDPSession(alice.page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 600 * 1024,
    });
    const report = pdfLike(1_800_000);
    const progress = watchProgress(alice.page);
    await pickFiles(alice.page, { name: 'report.pdf', mimeType: 'application/pdf', buffer: report });
    await alice.page.getByTestId('upload-progress').waitFor();
    await lastMedia(alice.page, 'file').and(alice.page.locator('[data-status=sent]')).waitFor({ timeout: 30_000 });
    await alice.page.evaluate(() => window.__stopWatching());
    const percents = await progress;
    assert.ok(percents.some((p) => p !== '0%' && p !== '100%'), `progress shown: ${JSON.stringify(percents)}`);

    await pickFiles(alice.page, { name: 'never-sent.bin', mimeType: 'application/octet-stream', buffer: pdfLike(3_000_000) });
    const cancelled = alice.page.getByTestId('message').filter({ hasText: 'never-sent.bin' });
    await cancelled.getByTestId('upload-progress').waitFor();
    await cancelled.getByTestId('cancel-upload').click();
    await cancelled.waitFor({ state: 'detached' });
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });

    const card = lastMedia(bob.page, 'file').getByTestId('file-card');
    await card.getByTestId('file-name').filter({ hasText: 'report.pdf' }).waitFor();
    assert.match(await card.getByTestId('file-meta').textContent(), /^1\.7 MB · PDF$/);
    const [download] = await Promise.all([
      bob.page.waitForEvent('download'),
      card.getByTestId('file-download').click(),
    ]);
    assert.equal(download.suggestedFilename(), 'report.pdf');
    assert.equal(sha256(readFileSync(await download.path())), sha256(report));
    await conversationItem(bob.page, 'Alice').getByTestId('conversation-preview').filter({ hasText: '[File] report.pdf' }).waitFor();

    // 4. A voice message: record about two seconds, stop = send.
    await alice.page.getByTestId('voice-button').click();
    await alice.page.getByTestId('voice-recorder').waitFor();
    await alice.page.getByTestId('voice-elapsed').filter({ hasText: '0:02' }).waitFor();
    await alice.page.getByTestId('voice-send').click();
    await alice.page.getByTestId('voice-recorder').waitFor({ state: 'detached' });
    const ownVoice = lastMedia(alice.page, 'voice').and(alice.page.locator('[data-status=sent]'));
    await ownVoice.waitFor();
    const duration = await ownVoice.getByTestId('voice-duration').textContent();
    assert.match(duration, /^0:0[23]$/);
    const bobVoice = lastMedia(bob.page, 'voice');
    await bobVoice.getByTestId('voice-duration').filter({ hasText: duration }).waitFor();
    await conversationItem(bob.page, 'Alice').getByTestId('conversation-preview').filter({ hasText: `[Voice] ${duration}` }).waitFor();
    // It plays (the fake microphone's beep), and pauses.
    await bobVoice.getByTestId('voice-play').click();
    await bobVoice.locator('.voice.playing').waitFor();
    await bobVoice.getByTestId('voice-play').click();
    await bobVoice.locator('.voice:not(.playing)').waitFor();

    // 5. After a reload, Bob's history shows the same: pictures, caption, file, voice;
    //    nothing of the cancelled upload.
    await bob.page.reload();
    await waitConnected(bob.page);
    await openChatByName(bob.page, 'Alice');
    await waitForMessage(bob.page, 'look at this');
    assertAspect((await loadedImage(bob.page, 0)).natural, 1.5);
    assertAspect((await loadedImage(bob.page, 1)).natural, 1.5);
    await lastMedia(bob.page, 'file').getByTestId('file-name').filter({ hasText: 'report.pdf' }).waitFor();
    await lastMedia(bob.page, 'voice').getByTestId('voice-duration').filter({ hasText: duration }).waitFor();
    assert.equal(await bob.page.getByText('never-sent.bin').count(), 0);
    assert.equal(await bob.page.getByTestId('message').count(), 4);

    // Alice's own reloaded history now comes from the server too.
    await alice.page.reload();
    await waitConnected(alice.page);
    await openChatByName(alice.page, 'Bob');
    await loadedImage(alice.page, 1);
    await lastMedia(alice.page, 'voice').getByTestId('voice-duration').filter({ hasText: duration }).waitFor();

    // A recalled picture is a "recalled" notice on both sides.
    const first = alice.page.getByTestId('message').filter({ hasText: 'look at this' });
    await first.hover();
    await first.getByTestId('message-menu').click();
    await alice.page.getByTestId('recall-message').click();
    await bob.page.getByTestId('recalled-notice').filter({ hasText: 'Alice recalled a message' }).waitFor();
    assert.equal(await bob.page.getByText('look at this').count(), 0);

    for (const user of [alice, bob]) assert.deepEqual(user.errors, []);
  }));

  test('a picture dropped on the chat and a video are sent; upload errors are explained and the message can be deleted', () => withServer(async ({ open }) => {
    const { alice, bob, aliceName, bobName } = await twoFriends(open);
    await openDirectChat(alice.page, bobName);
    await openDirectChat(bob.page, aliceName);

    // Drag and drop: a file dropped on the message list.
    const dropped = gradientPng(64, 64, [10, 120, 60]);
    const transfer = await alice.page.evaluateHandle((bytes) => {
      const data = new DataTransfer();
      data.items.add(new File([new Uint8Array(bytes)], 'dropped.png', { type: 'image/png' }));
      return data;
    }, [...dropped]);
    const list = alice.page.getByTestId('message-list');
    await list.dispatchEvent('dragenter', { dataTransfer: transfer });
    await alice.page.getByTestId('drop-overlay').waitFor();
    await list.dispatchEvent('drop', { dataTransfer: transfer });
    await alice.page.getByTestId('drop-overlay').waitFor({ state: 'hidden' });
    const droppedShown = await loadedImage(bob.page, 0);
    assertAspect(droppedShown.natural, 1);
    assert.deepEqual(droppedShown.shown, ['64px', '64px']);

    // A video (a few frames of a canvas, recorded in the page) plays inline.
    const clip = await alice.page.evaluate(async () => {
      const canvas = document.createElement('canvas');
      canvas.width = 320;
      canvas.height = 180;
      const g = canvas.getContext('2d');
      const recorder = new MediaRecorder(canvas.captureStream(15), { mimeType: 'video/webm;codecs=vp8' });
      const chunks = [];
      recorder.ondataavailable = (e) => chunks.push(e.data);
      recorder.start(100);
      for (let i = 0; i < 12; i += 1) {
        g.fillStyle = `hsl(${i * 30} 70% 45%)`;
        g.fillRect(0, 0, 320, 180);
        await new Promise((resolve) => setTimeout(resolve, 70));
      }
      await new Promise((resolve) => {
        recorder.onstop = resolve;
        recorder.stop();
      });
      return [...new Uint8Array(await new Blob(chunks).arrayBuffer())];
    });
    await pickFiles(alice.page, { name: 'clip.webm', mimeType: 'video/webm', buffer: Buffer.from(clip) });
    const frame = await bob.page.waitForFunction(() => {
      const video = document.querySelector('[data-testid=message-video]');
      return video && video.readyState >= 1 && video.videoWidth > 0 && [video.videoWidth, video.videoHeight];
    });
    assert.deepEqual(await frame.jsonValue(), [320, 180]);
    await conversationItem(bob.page, 'Alice').getByTestId('conversation-preview').filter({ hasText: '[Video]' }).waitFor();

    // Over the user's upload_quota_bytes: refused by the server, explained, deletable.
    await pickFiles(alice.page, { name: 'huge.bin', mimeType: 'application/octet-stream', buffer: pdfLike(300_000) });
    const failed = alice.page.locator('[data-testid=message][data-status=failed]').filter({ hasText: 'huge.bin' });
    await failed.getByTestId('message-status').filter({ hasText: 'Not sent: your storage space for files is full.' }).waitFor();
    await failed.getByTestId('discard-send').click();
    await failed.waitFor({ state: 'detached' });

    // An empty file is not sent at all.
    await pickFiles(alice.page, { name: 'empty.txt', mimeType: 'text/plain', buffer: Buffer.alloc(0) });
    await alice.page.getByTestId('toast').filter({ hasText: 'empty.txt' }).waitFor();

    // Text still works beside it all.
    await sendMessage(alice.page, 'still here');
    await waitForMessage(bob.page, 'still here');
    assert.equal(await bob.page.getByText('huge.bin').count(), 0);
    for (const user of [alice, bob]) assert.deepEqual(user.errors, []);
  }, { env: { BANTER_MEDIA__UPLOAD_QUOTA_BYTES: '200000' } }));

  test('the limits in hello: a file over file_bytes_max is refused before any upload, a recording stops at voice_duration_ms_max', () => withServer(async ({ server, open }) => {
    const { alice, bob, aliceName, bobName } = await twoFriends(open);
    await alice.context.grantPermissions(['microphone'], { origin: server.url });
    await openDirectChat(alice.page, bobName);
    await openDirectChat(bob.page, aliceName);
    // The name of every upload the pages start (POST /api/v1/uploads?name=…).
    const uploads = [];
    for (const user of [alice, bob]) {
      user.page.on('request', (request) => {
        const url = new URL(request.url());
        if (request.method() === 'POST' && url.pathname === '/api/v1/uploads') uploads.push(url.searchParams.get('name'));
      });
    }

    // One byte over: a toast, no message, no request; the typed caption stays.
    await alice.page.getByTestId('composer-input').fill('for the record');
    await pickFiles(alice.page, { name: 'huge.bin', mimeType: 'application/octet-stream', buffer: pdfLike(200_001) });
    await alice.page.getByTestId('toast').filter({ hasText: 'This file is too large to send.' }).waitFor();
    assert.equal(await alice.page.getByTestId('message').filter({ hasText: 'huge.bin' }).count(), 0);
    assert.equal(await alice.page.getByTestId('composer-input').inputValue(), 'for the record');

    // Picked together with one of exactly the limit: only that one is sent, with the caption.
    await pickFiles(alice.page, [
      { name: 'at-limit.pdf', mimeType: 'application/pdf', buffer: pdfLike(200_000) },
      { name: 'huge-too.bin', mimeType: 'application/octet-stream', buffer: pdfLike(250_000) },
    ]);
    await lastMedia(alice.page, 'file').and(alice.page.locator('[data-status=sent]')).getByTestId('file-name').filter({ hasText: 'at-limit.pdf' }).waitFor();
    await waitForMessage(bob.page, 'for the record');
    await lastMedia(bob.page, 'file').getByTestId('file-name').filter({ hasText: 'at-limit.pdf' }).waitFor();

    // The same refusal in Chinese.
    await bob.page.getByTestId('nav-settings').click();
    await bob.page.getByTestId('language-select').selectOption('zh-CN');
    await bob.page.getByTestId('logout').filter({ hasText: '退出登录' }).waitFor();
    await openChatByName(bob.page, 'Alice');
    await pickFiles(bob.page, { name: '大文件.bin', mimeType: 'application/octet-stream', buffer: pdfLike(300_000) });
    await bob.page.getByTestId('toast').filter({ hasText: '文件太大，无法发送。' }).waitFor();
    assert.equal(await bob.page.getByTestId('message').filter({ hasText: '大文件.bin' }).count(), 0);

    // A recording nobody stops is sent by itself at the server's limit (1.5 s here),
    // and the server takes its duration.
    await alice.page.getByTestId('voice-button').click();
    await alice.page.getByTestId('voice-recorder').waitFor();
    await alice.page.getByTestId('voice-recorder').waitFor({ state: 'detached', timeout: 10_000 });
    const voice = lastMedia(alice.page, 'voice').and(alice.page.locator('[data-status=sent]'));
    await voice.waitFor();
    assert.match(await voice.getByTestId('voice-duration').textContent(), /^0:0[12]$/);
    await lastMedia(bob.page, 'voice').waitFor();

    assert.deepEqual(uploads, ['at-limit.pdf', uploads[1]]);
    assert.match(uploads[1], /^voice-\d{8}-\d{6}\.(webm|ogg)$/);
    for (const user of [alice, bob]) assert.deepEqual(user.errors, []);
  }, { env: { BANTER_MEDIA__FILE_BYTES_MAX: '200000', BANTER_MEDIA__VOICE_DURATION_MS_MAX: '1500' } }));

  test('avatars: one\'s own picture and a group\'s, seen by the others live and after a reload', () => withServer(async ({ open }) => {
    const { alice, bob, aliceName, bobName } = await twoFriends(open);

    // Alice uploads her picture in settings.
    await alice.page.getByTestId('nav-settings').click();
    const [chooser] = await Promise.all([
      alice.page.waitForEvent('filechooser'),
      alice.page.getByTestId('avatar-upload').click(),
    ]);
    await chooser.setFiles({ name: 'me.png', mimeType: 'image/png', buffer: gradientPng(200, 150, [30, 90, 200]) });
    const avatarLoaded = (page, selector) => page.waitForFunction((sel) => {
      const img = document.querySelector(sel);
      return img && img.complete && img.naturalWidth > 0 && img.getAttribute('src');
    }, selector);
    const src = await (await avatarLoaded(alice.page, '[data-testid=settings-avatar] img')).jsonValue();
    assert.match(src, /^\/api\/v1\/avatars\/[0-9a-f]{64}\?size=(64|128|256)$/);
    await avatarLoaded(alice.page, '[data-testid=my-avatar] img');
    await alice.page.getByTestId('avatar-remove').waitFor();

    // Alice writes to Bob; after a reload Bob sees her picture in his friend list,
    // his chat list, the chat's header and beside her message.
    await openDirectChat(alice.page, bobName);
    await sendMessage(alice.page, 'new picture!');
    await bob.page.reload();
    await waitConnected(bob.page);
    await bob.page.getByTestId('nav-contacts').click();
    await avatarLoaded(bob.page, `[data-testid=friend][data-username="${aliceName}"] .avatar img`);
    await openChatByName(bob.page, 'Alice');
    await waitForMessage(bob.page, 'new picture!');
    await avatarLoaded(bob.page, '[data-testid=conversation-item] .avatar img');
    await avatarLoaded(bob.page, '.chat-header .avatar img');
    await avatarLoaded(bob.page, '[data-testid=message].theirs .avatar img');

    // A group picture, set by its owner: the notice and the picture reach Bob live.
    await alice.page.getByTestId('nav-chats').click();
    await alice.page.getByTestId('new-group').click();
    await alice.page.getByTestId('group-name-input').fill('Picture club');
    await alice.page.getByTestId('group-member-option').filter({ hasText: 'Bob' }).getByTestId('group-member-checkbox').check();
    await alice.page.getByTestId('create-group-submit').click();
    await alice.page.locator('[data-testid=chat-title]', { hasText: 'Picture club' }).waitFor();
    await sendMessage(alice.page, 'welcome');
    await bob.page.getByTestId('nav-chats').click();
    await conversationItem(bob.page, 'Picture club').waitFor();
    assert.equal(await conversationItem(bob.page, 'Picture club').locator('.avatar img').count(), 0);

    await alice.page.getByTestId('chat-info-toggle').click();
    const [groupChooser] = await Promise.all([
      alice.page.waitForEvent('filechooser'),
      alice.page.getByTestId('group-avatar-change').click(),
    ]);
    await groupChooser.setFiles({ name: 'club.png', mimeType: 'image/png', buffer: gradientPng(120, 120, [250, 160, 0]) });
    await alice.page.getByTestId('system-notice').filter({ hasText: 'You changed the group picture' }).waitFor();
    await avatarLoaded(alice.page, '[data-testid=group-avatar] img');
    await avatarLoaded(bob.page, '[data-testid=conversation-item][data-kind=group] .avatar img');
    await openChatByName(bob.page, 'Picture club');
    await bob.page.getByTestId('system-notice').filter({ hasText: 'Alice changed the group picture' }).waitFor();

    await bob.page.reload();
    await waitConnected(bob.page);
    await avatarLoaded(bob.page, '[data-testid=conversation-item][data-kind=group] .avatar img');

    // Removing her picture brings back Alice's initial.
    await alice.page.getByTestId('nav-settings').click();
    await alice.page.getByTestId('avatar-remove').click();
    await alice.page.locator('[data-testid=settings-avatar] .avatar:not(:has(img))').waitFor();
    await alice.page.getByTestId('avatar-remove').waitFor({ state: 'hidden' });
    for (const user of [alice, bob]) assert.deepEqual(user.errors, []);
  }));
});
