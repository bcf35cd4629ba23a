// The web client in a real browser: Debian's chromium driven by playwright-core, two users in
// two browser contexts on two edges, against the cluster `cluster/tests/browser.rs` started.
// Environment: CHAT_URL (HAProxy), CHAT_CONTROL_URL (drain, ready and kill edges),
// CHROMIUM (the browser binary), OUT_DIR (screenshots). Fails on any console error, page
// error or HTTP error response, on any page (but for the browser's line about a refused
// WebSocket handshake while an edge is down on purpose).

import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { Rest } from '../src/index.js';

const URL = process.env.CHAT_URL;
const CONTROL = process.env.CHAT_CONTROL_URL;
const OUT = process.env.OUT_DIR ?? 'out';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const WAIT = 15_000;
assert.ok(URL && CONTROL, 'CHAT_URL and CHAT_CONTROL_URL are required');
mkdirSync(OUT, { recursive: true });

const started = Date.now();
const log = (...args) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s]`, ...args);

/** Problems seen on any page: console errors, uncaught exceptions, HTTP errors. */
const problems = [];
/** While an edge is down on purpose, the browser's own line for a refused WebSocket handshake
 * (HAProxy's 503 when no edge is in rotation for a moment) is expected, and only logged. */
let outage = false;
const REFUSED_SOCKET = /^WebSocket connection to '[^']*\/ws\?token=[^']*' failed/;

async function control(path) {
  const r = await fetch(CONTROL + path, { method: 'POST' });
  const text = await r.text();
  if (!r.ok) throw new Error(`control ${path}: ${text}`);
  log(`control ${path}: ${text}`);
}

let shots = 0;
async function shot(page, name) {
  shots += 1;
  const file = join(OUT, `${String(shots).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file });
  log(`screenshot ${file}`);
}

async function user(browser, name) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on('console', (m) => {
    if (m.type() !== 'error' && m.type() !== 'warning') return;
    if (outage && REFUSED_SOCKET.test(m.text())) log(`${name}, expected during the outage: a refused WebSocket handshake (${m.text().split('failed: ')[1]})`);
    else problems.push(`${name} console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${name} page error: ${e.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`${name} HTTP ${r.status()} ${r.request().method()} ${r.url()}`);
  });
  page.on('requestfailed', (r) => problems.push(`${name} request failed: ${r.url()} ${r.failure()?.errorText}`));
  return { name, context, page };
}

async function register({ page, name }, edge) {
  await page.goto(URL);
  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Password').fill('correct-horse-9');
  await page.getByRole('button', { name: 'Register' }).click();
  await page.locator('#conn[data-state=ready]').waitFor();
  assert.ok(await page.locator('#auth').isHidden(), 'the sign-in form is gone once logged in');
  const conn = await page.locator('#conn').textContent();
  assert.ok(conn.includes(edge), `${name} should be on ${edge}: ${conn}`);
  log(`${name}: ${conn}`);
}

/** The main list's message texts, in page order. */
const bodies = (page) => page.locator('#messages .msg .body').allTextContents();
/** The main list's message whose text is exactly `text`. */
const message = (page, text) =>
  page.locator('#messages .msg', { has: page.locator('.body', { hasText: new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) }) });

/** Every control has an accessible name (a label, aria-label or text). */
async function assertNamed(page, who) {
  const unnamed = await page.evaluate(() =>
    [...document.querySelectorAll('button, input, textarea')]
      .filter((e) => e.offsetParent !== null)
      .filter((e) => !(e.getAttribute('aria-label') || e.textContent.trim() || e.labels?.length))
      .map((e) => e.outerHTML.slice(0, 80)),
  );
  assert.deepEqual(unnamed, [], `${who}: controls without an accessible name`);
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  // playwright-core gives the browser a fresh temporary --user-data-dir of its own.
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
log(`chromium ${browser.version()}`);

try {
  const alice = await user(browser, 'alice');
  const bob = await user(browser, 'bob');

  // 1. Alice signs up on edge-1 (edge-2 out of rotation), creates #general and says hello.
  await control('/haproxy/edge-2/drain');
  await alice.page.goto(URL);
  await alice.page.getByLabel('Username').waitFor();
  await shot(alice.page, 'sign-in');
  await register(alice, 'edge-1');
  await alice.page.getByLabel('New channel name').fill('general');
  await alice.page.getByLabel('New channel name').press('Enter');
  await alice.page.locator('#title', { hasText: '# general' }).waitFor();
  await alice.page.getByLabel('Message', { exact: true }).fill('hello from alice');
  await alice.page.getByLabel('Message', { exact: true }).press('Enter');
  await message(alice.page, 'hello from alice').waitFor();

  // History: 60 messages sent over REST; the page shows the newest 50 and loads the rest when
  // scrolled to the top.
  const rest = new Rest(URL);
  await rest.login('alice', 'correct-horse-9');
  const archive = await rest.createChannel('archive');
  for (let i = 1; i <= 60; i += 1) {
    for (;;) {
      try {
        await rest.sendMessage(archive.id, `archived ${i}`);
        break;
      } catch (e) {
        if (e.code !== 'rate_limited') throw e;
        await new Promise((r) => setTimeout(r, e.retryAfterMs ?? 100));
      }
    }
  }
  await alice.page.locator('#channels button', { hasText: 'archive' }).click();
  await message(alice.page, 'archived 60').waitFor();
  assert.equal((await bodies(alice.page)).length, 50, 'the newest 50 first');
  await alice.page.locator('#log').evaluate((e) => e.scrollTo(0, 0));
  await message(alice.page, 'archived 1').waitFor();
  assert.deepEqual(await bodies(alice.page), Array.from({ length: 60 }, (_, i) => `archived ${i + 1}`));
  await alice.page.locator('#channels button', { hasText: 'general' }).click();
  await message(alice.page, 'hello from alice').waitFor();

  // 2. Bob signs up on edge-2 (edge-1 out of rotation), joins #general and sees the history.
  await control('/haproxy/edge-2/ready');
  await control('/haproxy/edge-1/drain');
  await register(bob, 'edge-2');
  await control('/haproxy/edge-1/ready');
  await bob.page.getByRole('button', { name: 'Join general' }).click();
  await message(bob.page, 'hello from alice').waitFor();
  await shot(bob.page, 'joined');

  // 3. Bob types (Alice sees it), then sends with Enter.
  await bob.page.getByLabel('Message', { exact: true }).pressSequentially('hi alice');
  await alice.page.locator('#typing', { hasText: 'bob is typing' }).waitFor();
  await shot(alice.page, 'typing');
  await bob.page.getByLabel('Message', { exact: true }).press('Enter');
  await message(alice.page, 'hi alice').waitFor();

  // 4. Alice edits her message, Bob reacts to it; each sees the other's change.
  const mine = message(alice.page, 'hello from alice');
  await mine.hover();
  await mine.getByRole('button', { name: 'Edit message' }).click();
  await alice.page.getByLabel('Message text').fill('hello from alice, edited');
  await alice.page.getByLabel('Message text').press('Enter');
  const edited = message(bob.page, 'hello from alice, edited');
  await edited.locator('.edited').waitFor();
  await edited.hover();
  await edited.getByRole('button', { name: 'React 👍' }).click();
  await message(alice.page, 'hello from alice, edited').locator('.reactions button', { hasText: '👍 1' }).waitFor();
  await edited.locator('.reactions button[aria-pressed=true]', { hasText: '👍 1' }).waitFor();
  await shot(alice.page, 'edited-and-reacted');
  await shot(bob.page, 'edited-and-reacted');
  await alice.page.getByLabel('Message', { exact: true }).fill('oops');
  await alice.page.getByLabel('Message', { exact: true }).press('Enter');
  await message(bob.page, 'oops').waitFor();
  await message(alice.page, 'oops').hover();
  await message(alice.page, 'oops').getByRole('button', { name: 'Delete message' }).click();
  await message(bob.page, 'This message was deleted.').waitFor();

  // 5. Bob replies in a thread; Alice sees the reply count.
  await edited.hover();
  await edited.getByRole('button', { name: 'Reply in thread' }).click();
  await bob.page.getByLabel('Thread reply').fill('a reply in the thread');
  await bob.page.getByLabel('Thread reply').press('Enter');
  await bob.page.locator('#threadMessages .msg .body', { hasText: 'a reply in the thread' }).waitFor();
  await message(alice.page, 'hello from alice, edited').locator('.replies', { hasText: '1 reply' }).waitFor();
  await shot(bob.page, 'thread');
  await bob.page.getByRole('button', { name: 'Close thread' }).click();

  // 6. A direct message from the user list (online dot), then a mention: Bob's badges.
  await alice.page.getByRole('button', { name: 'Message bob (online)' }).click();
  await alice.page.locator('#title', { hasText: '@ bob' }).waitFor();
  await alice.page.getByLabel('Message', { exact: true }).fill('psst, bob');
  await alice.page.getByLabel('Message', { exact: true }).press('Enter');
  const dm = bob.page.locator('#dms button', { hasText: 'alice' });
  await dm.locator('.unread-count', { hasText: '1' }).waitFor();
  await dm.click();
  await message(bob.page, 'psst, bob').waitFor();
  await alice.page.locator('#channels button', { hasText: 'general' }).click();
  await alice.page.getByLabel('Message', { exact: true }).fill('@bob look at this');
  await alice.page.getByLabel('Message', { exact: true }).press('Enter');
  await bob.page.locator('#channels button', { hasText: 'general' }).locator('.badge.mention', { hasText: '@1' }).waitFor();
  await shot(bob.page, 'dm-and-mention');
  await bob.page.locator('#channels button', { hasText: 'general' }).click();
  await message(bob.page, '@bob look at this').waitFor();
  await assertNamed(alice.page, 'alice');
  await assertNamed(bob.page, 'bob');

  // 7. Alice's edge is killed (-9): her page shows the reconnecting state while Bob goes on
  // talking, then comes back (through HAProxy, on edge-2) with every message once, in order.
  // With edge-2 out of rotation at the kill, her first reconnects go to the dead edge-1 (which
  // HAProxy retries) or get HAProxy's 503 until edge-2 is back in: long enough to see.
  await alice.page.evaluate(() => {
    // Every state the page shows, with whether the reconnecting banner was up with it.
    window.seenStates = [];
    const conn = document.getElementById('conn');
    const banner = document.getElementById('banner');
    const note = () => {
      const seen = `${conn.dataset.state}${banner.hidden ? '' : '+banner'}`;
      if (window.seenStates.at(-1) !== seen) window.seenStates.push(seen);
    };
    new MutationObserver(note).observe(conn, { attributes: true });
    new MutationObserver(note).observe(banner, { attributes: true });
  });
  outage = true;
  await control('/haproxy/edge-2/drain');
  await control('/edges/edge-1/kill');
  await alice.page.locator('#banner', { hasText: 'Reconnecting' }).waitFor();
  const during = ['while you were away 1', 'while you were away 2', 'while you were away 3'];
  for (const text of during) {
    await bob.page.getByLabel('Message', { exact: true }).fill(text);
    await bob.page.getByLabel('Message', { exact: true }).press('Enter');
  }
  await message(bob.page, during[2]).waitFor();
  assert.equal(await alice.page.locator('#conn').getAttribute('data-state'), 'reconnecting');
  await shot(alice.page, 'reconnecting');
  await control('/haproxy/edge-2/ready');
  await alice.page.locator('#conn[data-state=ready]').waitFor({ timeout: 30_000 });
  outage = false;
  await message(alice.page, during[2]).waitFor();
  assert.ok(await alice.page.locator('#banner').isHidden(), 'the banner goes once back');
  const states = await alice.page.evaluate(() => window.seenStates);
  log(`alice's states: ${states.join(' -> ')}; ${await alice.page.locator('#conn').textContent()}`);
  assert.ok(states.includes('reconnecting+banner'), `the page showed the reconnecting state: ${states}`);
  assert.equal(states.at(-1), 'ready', 'the page is back, without the banner');
  assert.ok((await alice.page.locator('#conn').textContent()).includes('edge-2'), 'alice is back on edge-2');
  const expected = ['hello from alice, edited', 'hi alice', 'This message was deleted.', '@bob look at this', ...during];
  for (const page of [alice.page, bob.page]) await message(page, during[2]).waitFor();
  assert.deepEqual(await bodies(alice.page), expected, 'alice: every message once and in order');
  assert.deepEqual(await bodies(bob.page), expected, 'bob: every message once and in order');
  await shot(alice.page, 'back');

  // 8. Alice attaches a picture and a text file (the paperclip button, the browser's file
  // chooser); Bob sees both on the message, the picture as a preview, and downloads the file.
  const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
  const [chooser] = await Promise.all([
    alice.page.waitForEvent('filechooser'),
    alice.page.getByRole('button', { name: 'Attach files' }).click(),
  ]);
  await chooser.setFiles([
    { name: 'dot.png', mimeType: 'image/png', buffer: png },
    { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('the notes') },
  ]);
  await alice.page.locator('#picked li', { hasText: 'notes.txt' }).waitFor();
  await alice.page.getByLabel('Message', { exact: true }).fill('two files');
  await alice.page.getByLabel('Message', { exact: true }).press('Enter');
  assert.ok(await alice.page.locator('#picked').isHidden(), 'the picked files go with the send');
  const withFiles = message(bob.page, 'two files');
  await withFiles.getByRole('button', { name: 'Download dot.png (70 B)' }).waitFor();
  await bob.page.waitForFunction(() => {
    const img = document.querySelector('#messages .files img[alt="dot.png"]');
    return img?.complete && img.naturalWidth === 1;
  });
  const [saved] = await Promise.all([
    bob.page.waitForEvent('download'),
    withFiles.getByRole('button', { name: 'Download notes.txt (9 B)' }).click(),
  ]);
  assert.equal(saved.suggestedFilename(), 'notes.txt');
  assert.equal(readFileSync(await saved.path(), 'utf8'), 'the notes');
  await message(alice.page, 'two files').locator('.files img[alt="dot.png"]').waitFor();
  await shot(bob.page, 'attachments');

  // 9. A narrow window: the sidebar folds behind the menu button.
  await alice.page.setViewportSize({ width: 420, height: 700 });
  assert.ok(await alice.page.locator('#side').isHidden(), 'the sidebar folds in a narrow window');
  await shot(alice.page, 'narrow');
  await alice.page.getByRole('button', { name: 'Show channels' }).click();
  await alice.page.locator('#side').waitFor();
  await shot(alice.page, 'narrow-menu');

  // 10. A page load with a saved session (sessionStorage) and no console error either.
  await bob.page.reload();
  await bob.page.locator('#conn[data-state=ready]').waitFor();
  await message(bob.page, during[2]).waitFor();

  assert.deepEqual(problems, [], 'no console error, page error or HTTP error on any page');
  log(`passed: ${shots} screenshots in ${OUT}`);
} catch (e) {
  console.error(`FAILED: ${e.stack ?? e}`);
  if (problems.length) console.error(`problems seen:\n  ${problems.join('\n  ')}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
