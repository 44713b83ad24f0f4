// chat.test.mjs: the demo page used by three people (alice, bob, carol), end to end: the real server on a
// free port, headless Chromium, each person in their own browser context. Covers: who-you-are and the
// live online list, a message to one person (and nobody else), a broadcast, rooms (join, publish,
// leave), the README screenshot, text that looks like HTML, a disconnect dropping the person from
// everyone's list, an error code shown inline, a phone-sized (360 px) page, labels on every control, and
// no console errors anywhere. The tests run in order and share the pages.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { SRC, deadline, startServer } from './server.mjs';
import {
  TIMEOUT, assertClean, chooseTarget, connectAs, joinRoom, launchBrowser, logEntries, openPage, pickUser,
  say, waitForEntry, waitForStatus, waitForSystem, waitForUsers,
} from './browser.mjs';

const XSS = '<img src=x onerror=alert(1)>';

/** Controls with no accessible name (label, aria-label, aria-labelledby or button text). */
function unlabelledControls(page) {
  return page.evaluate(() => {
    const nameOf = (el) => {
      const by = el.getAttribute('aria-labelledby');
      if (by) return by.split(/\s+/).map((id) => document.getElementById(id)?.textContent ?? '').join(' ').trim();
      if (el.getAttribute('aria-label')) return el.getAttribute('aria-label').trim();
      if (el.labels?.length) return [...el.labels].map((l) => l.textContent).join(' ').trim();
      if (el.tagName === 'BUTTON') return el.textContent.trim();
      return '';
    };
    return [...document.querySelectorAll('input, select, textarea, button, output')]
      .filter((el) => !nameOf(el)).map((el) => el.outerHTML.slice(0, 120));
  });
}

describe('demo chat with alice, bob and carol', () => {
  let server;
  let browser;
  let alice;
  let bob;
  let carol;
  const pages = [];

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    alice = await openPage(browser, server.url, { label: 'alice' });
    bob = await openPage(browser, server.url, { label: 'bob' });
    carol = await openPage(browser, server.url, { label: 'carol' });
    pages.push(alice, bob, carol);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('starts CLOSED with a random name filled in', async () => {
    assert.equal(await alice.locator('#status').textContent(), 'CLOSED');
    const [a, b] = await Promise.all([alice, bob].map((p) => p.getByLabel('Your name', { exact: true }).inputValue()));
    assert.match(a, /^[A-Za-z0-9_.-]{1,64}$/);
    assert.notEqual(a, b, 'two pages should not get the same random name');
  });

  it('each person connects, sees OPEN, who they are, and who is online', async () => {
    await connectAs(alice, 'alice');
    await connectAs(bob, 'bob');
    await connectAs(carol, 'carol');
    for (const page of pages) await waitForUsers(page, ['alice', 'bob', 'carol']);
    assert.equal(await alice.locator('#whoami').textContent(), 'You are alice');
    await waitForSystem(alice, /bob joined/);
    await waitForSystem(alice, /carol joined/);
  });

  it('alice messages bob: bob sees it, carol does not', async () => {
    const secret = 'Hi bob, only you should see this';
    await pickUser(alice, 'bob');
    await say(alice, secret);
    await waitForEntry(bob, { kind: 'in', from: 'alice', to: 'you', text: secret });
    await waitForEntry(alice, { kind: 'own', from: 'you', to: 'bob', text: secret, delivery: 'delivered', delivered: '1' });
    // Had carol been sent the secret, it would reach her before alice's next message to her.
    await pickUser(alice, 'carol');
    await say(alice, 'Hi carol');
    await waitForEntry(carol, { kind: 'in', from: 'alice', to: 'you', text: 'Hi carol' });
    assert.ok(!(await logEntries(carol)).some((e) => e.all.includes(secret)), 'carol must not see alice → bob');
    await pickUser(bob, 'alice');
    await say(bob, 'Hey alice! Got it.');
    await waitForEntry(alice, { kind: 'in', from: 'bob', to: 'you', text: 'Hey alice! Got it.' });
  });

  it('alice broadcasts: bob and carol see it, with delivered counts on alice\'s side', async () => {
    await chooseTarget(alice, 'Everyone (broadcast)');
    await say(alice, 'Hello everyone!');
    for (const page of [bob, carol]) await waitForEntry(page, { kind: 'in', from: 'alice', to: 'everyone', text: 'Hello everyone!' });
    await waitForEntry(alice, { kind: 'own', to: 'everyone', text: 'Hello everyone!', delivery: 'delivered', delivered: '2' });
    assert.match(await alice.locator('#log > li[data-kind=own]').last().textContent(), /delivered to 2 connections/);
    assert.ok(!(await logEntries(alice)).some((e) => e.kind === 'in' && e.text === 'Hello everyone!'), 'no echo to the sender');
    await chooseTarget(carol, 'Everyone (broadcast)');
    await say(carol, 'Hi all, carol here');
    for (const page of [alice, bob]) await waitForEntry(page, { kind: 'in', from: 'carol', to: 'everyone', text: 'Hi all, carol here' });
  });

  it('own messages, incoming messages and system lines look different; system lines are grey', async () => {
    const looks = await alice.evaluate(() => {
      const style = (sel) => {
        const s = getComputedStyle(document.querySelector(sel));
        return { color: s.color, background: s.backgroundColor, align: s.alignSelf };
      };
      return { own: style('#log > li[data-kind=own]'), in: style('#log > li[data-kind=in]'), system: style('#log > li[data-kind=system]') };
    });
    assert.notDeepEqual(looks.own, looks.in, 'own and incoming messages must differ');
    const [r, g, b] = looks.system.color.match(/\d+/g).map(Number);
    assert.ok(Math.max(r, g, b) - Math.min(r, g, b) < 40 && r > 60 && r < 200, `system lines grey, got ${looks.system.color}`);
  });

  it('a room: bob and carol join, alice publishes, both see it; after bob leaves he does not', async () => {
    await joinRoom(bob, 'lobby');
    await joinRoom(carol, 'lobby');
    await joinRoom(alice, 'lobby');
    await waitForSystem(alice, /You joined #lobby/);
    await chooseTarget(alice, '#lobby');
    await say(alice, 'Welcome to the lobby');
    for (const page of [bob, carol]) await waitForEntry(page, { kind: 'in', from: 'alice', to: '#lobby', text: 'Welcome to the lobby' });
    await waitForEntry(alice, { kind: 'own', to: '#lobby', text: 'Welcome to the lobby', delivery: 'delivered', delivered: '2' });

    await bob.getByRole('button', { name: 'Leave room lobby', exact: true }).click();
    await waitForSystem(bob, /You left #lobby/);
    assert.equal(await bob.locator('#rooms [data-room]').count(), 0);
    await carol.getByRole('button', { name: 'Send to room lobby', exact: true }).click();
    await say(carol, 'Just the two of us now');
    await waitForEntry(alice, { kind: 'in', from: 'carol', to: '#lobby', text: 'Just the two of us now' });
    await waitForEntry(carol, { kind: 'own', to: '#lobby', delivery: 'delivered', delivered: '1', text: 'Just the two of us now' });
    await pickUser(carol, 'bob');
    await say(carol, 'psst, bob');
    await waitForEntry(bob, { kind: 'in', from: 'carol', to: 'you', text: 'psst, bob' });
    assert.ok(!(await logEntries(bob)).some((e) => e.text === 'Just the two of us now'), 'bob left the room');
  });

  it('takes the README screenshot, docs/demo.png, at 1100x700', async () => {
    await pickUser(alice, 'bob');
    await alice.getByLabel('Message', { exact: true }).fill('See you at the standup');
    const file = path.join(SRC, 'docs', 'demo.png');
    await alice.screenshot({ path: file });
    const png = readFileSync(file);
    assert.equal(png.subarray(1, 4).toString(), 'PNG');
    assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [1100, 700], 'PNG width x height');
    await alice.getByLabel('Message', { exact: true }).fill('');
  });

  it(`shows ${XSS} as text and runs nothing, from the page or from any client`, async () => {
    await pickUser(alice, 'bob');
    await say(alice, XSS);
    await waitForEntry(bob, { kind: 'in', from: 'alice', to: 'you', text: XSS });

    // A non-browser client sending HTML in other shapes of data.
    const mallory = new WebSocket(`ws://127.0.0.1:${server.port}/ws?user=mallory`);
    const welcome = once(mallory, 'message');
    assert.ok(await Promise.race([welcome, deadline(TIMEOUT)]), 'mallory (a plain ws client) got no welcome');
    // --presence rooms (the default): the pages list who is in their lobby room, so mallory joins it
    mallory.send(JSON.stringify({ type: 'join', room: 'demo.lobby' }));
    await waitForUsers(bob, ['alice', 'bob', 'carol', 'mallory']);
    mallory.send(JSON.stringify({ type: 'send', to: 'bob', data: { text: '<script>alert(2)</script><b>bold</b>' } }));
    mallory.send(JSON.stringify({ type: 'broadcast', data: { html: '<img src=y onerror=alert(3)>' } }));
    await waitForEntry(bob, { kind: 'in', from: 'mallory', to: 'you', text: '<script>alert(2)</script><b>bold</b>' });
    await waitForEntry(bob, { kind: 'in', from: 'mallory', to: 'everyone', text: '{"html":"<img src=y onerror=alert(3)>"}' });
    mallory.close();
    await once(mallory, 'close');
    for (const page of pages) await waitForUsers(page, ['alice', 'bob', 'carol']);

    for (const page of pages) {
      const injected = await page.locator('#log img, #log script, #log b').count();
      assert.equal(injected, 0, `${page.label}: message text became HTML`);
      assert.deepEqual(page.dialogs, [], `${page.label}: a dialog opened`);
    }
    assert.equal(await bob.locator('#log > li[data-kind=in] [data-testid=text]', { hasText: XSS }).first().textContent(), XSS);
  });

  it('carol disconnects: alice\'s and bob\'s lists drop her; sending to her shows not_found on the page', async () => {
    await pickUser(alice, 'carol');
    await carol.getByRole('button', { name: 'Disconnect', exact: true }).click();
    await waitForStatus(carol, 'CLOSED');
    await waitForSystem(carol, /Disconnected/);
    await waitForUsers(alice, ['alice', 'bob']);
    await waitForUsers(bob, ['alice', 'bob']);
    await waitForSystem(alice, /carol left/);
    assert.equal(await alice.locator('#to option:checked').textContent(), 'carol (offline)');
    await say(alice, 'Are you still there, carol?');
    await waitForEntry(alice, { kind: 'own', to: 'carol', text: 'Are you still there, carol?', delivery: 'error', code: 'not_found' });
    assert.match(await alice.locator('#log > li[data-kind=own]').last().textContent(), /not_found/);
    // Disconnect means disconnect: no reconnecting by itself.
    assert.equal(await carol.locator('#status').textContent(), 'CLOSED');
    assert.equal(await carol.locator('#status-detail').textContent(), 'not connected');
    assert.equal(await carol.getByRole('button', { name: 'Connect', exact: true }).isEnabled(), true);
  });

  it('is usable at 360 px wide: nothing overflows and the controls are visible', async () => {
    const dave = await openPage(browser, server.url, { width: 360, height: 740, label: 'dave (360 px)' });
    pages.push(dave);
    await connectAs(dave, 'dave');
    await waitForUsers(dave, ['alice', 'bob', 'dave']);
    await joinRoom(dave, 'a-rather-long-room-name-for-a-small-screen');
    const long = `${'x'.repeat(200)} https://example.invalid/${'very-long-path/'.repeat(10)}`;
    await chooseTarget(alice, 'Everyone (broadcast)');
    await say(alice, long);
    await waitForEntry(dave, { kind: 'in', from: 'alice', to: 'everyone', text: long });
    await pickUser(dave, 'alice');
    await say(dave, 'Hello from a phone');
    await waitForEntry(alice, { kind: 'in', from: 'dave', to: 'you', text: 'Hello from a phone' });

    assert.ok(await dave.evaluate(() => document.documentElement.scrollWidth) <= 360, 'page scrolls sideways at 360 px');
    const overflowing = await dave.evaluate(() => [
      ...[...document.querySelectorAll('.panel, #log, #users, #rooms, #echo-log, .statusbar, .topbar')]
        .filter((el) => el.scrollWidth > el.clientWidth + 1),
      ...[...document.querySelectorAll('#log > li, #users li, #rooms li')].filter((el) => el.getBoundingClientRect().right > 360),
    ].map((el) => el.id || el.className));
    assert.deepEqual(overflowing, [], 'boxes wider than the screen, or scrolling sideways inside');
    const controls = [
      dave.getByLabel('Your name', { exact: true }), dave.getByRole('button', { name: 'Connect', exact: true }),
      dave.getByRole('button', { name: 'Disconnect', exact: true }), dave.locator('#status'),
      dave.getByLabel('To', { exact: true }), dave.getByLabel('Message', { exact: true }),
      dave.getByRole('button', { name: 'Send', exact: true }), dave.getByLabel('Room name', { exact: true }),
      dave.getByRole('button', { name: 'Join', exact: true }), dave.getByRole('button', { name: 'Start echo', exact: true }),
      dave.getByRole('button', { name: 'Message alice', exact: true }),
    ];
    for (const control of controls) {
      assert.ok(await control.isVisible(), `${control} not visible`);
      const box = await control.boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= 360 && box.width > 0, `${control} outside 0..360: ${JSON.stringify(box)}`);
    }
    // The status stays in view when the page is scrolled to the bottom.
    await dave.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
    const status = await dave.locator('#status').boundingBox();
    assert.ok(status.y >= 0 && status.y + status.height <= 740, `status scrolled out of view: ${JSON.stringify(status)}`);
  });

  it('has a label or accessible name on every control', async () => {
    for (const page of pages) assert.deepEqual(await unlabelledControls(page), [], `${page.label}: unlabelled controls`);
  });

  it('logged no console errors or warnings and opened no dialogs on any page', () => {
    assertClean(pages);
  });
});
