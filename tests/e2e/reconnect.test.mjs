// reconnect.test.mjs: the server is restarted (SIGTERM, then started again on the same port) while two
// pages are connected. Each page must show CLOSED and say it is reconnecting, then get back to OPEN by
// itself: same name, live user list, rooms joined again, messages flowing.
//
// While the server is down, Chromium itself logs each refused reconnect attempt as a console error
// ("WebSocket connection to 'ws://…' failed: …"); no page code can prevent or catch that. Exactly that
// message, for this server's address, is tolerated during the outage and nowhere else.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SLOW, startServer } from './server.mjs';
import {
  assertClean, chooseTarget, connectAs, detailHistory, joinRoom, launchBrowser, openPage, pickUser, say,
  statusHistory, until, waitForEntry, waitForSystem, waitForUsers,
} from './browser.mjs';

describe('reconnecting when the server restarts', () => {
  let server;
  let browser;
  let alice;
  let bob;
  let port;

  before(async () => {
    server = await startServer();
    port = server.port;
    browser = await launchBrowser();
    alice = await openPage(browser, server.url, { label: 'alice' });
    bob = await openPage(browser, server.url, { label: 'bob' });
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('two people are connected and in a room', async () => {
    await connectAs(alice, 'alice');
    await connectAs(bob, 'bob');
    await waitForUsers(alice, ['alice', 'bob']);
    await joinRoom(alice, 'lobby');
    await joinRoom(bob, 'lobby');
  });

  it('when the server stops, each page shows CLOSED and says it is reconnecting', async () => {
    const refused = new RegExp(`^WebSocket connection to 'ws://127\\.0\\.0\\.1:${port}/ws\\?v=2&user=(alice|bob)[^']*' failed: `);
    for (const page of [alice, bob]) page.tolerate.push(refused);
    await server.stop();   // asserts exit status 0
    server = null;
    for (const page of [alice, bob]) {
      await until(page, () => window.__statusHistory.lastIndexOf('CLOSED') > window.__statusHistory.lastIndexOf('OPEN'),
        null, 'the status to show CLOSED');
      await waitForSystem(page, /Connection lost .*Reconnecting/);
      await until(page, () => window.__detailHistory.some((t) => /^reconnecting in \d/.test(t)), null,
        'the status detail to say "reconnecting in …"');
      assert.equal(await page.getByRole('button', { name: 'Disconnect', exact: true }).isEnabled(), true,
        'Disconnect stays available to stop retrying');
    }
  });

  it('the server closed the sockets with 1001 (going away), and the page shows that code', async () => {
    await waitForSystem(alice, /Connection lost \(1001/);
  });

  it('after the server is back on the same port, each page is OPEN again by itself', async () => {
    server = await startServer({ port });
    for (const page of [alice, bob]) {
      // Backoff: the first retry comes after about 1 s, the next ones 2, 4… s later.
      await page.waitForFunction(() => document.getElementById('status').textContent === 'OPEN', null,
        { timeout: 20_000 * SLOW, polling: 50 });
      await waitForSystem(page, /Reconnected as (alice|bob)/);
      const history = await statusHistory(page);
      const open = history.indexOf('OPEN');
      const closed = history.indexOf('CLOSED', open);
      assert.ok(open >= 0 && closed > open && history.indexOf('OPEN', closed) > closed,
        `status went OPEN → CLOSED → OPEN: ${history.join(' ')}`);
      assert.ok((await detailHistory(page)).length > 0);
    }
    for (const page of [alice, bob]) page.tolerate.length = 0;
    await waitForUsers(alice, ['alice', 'bob']);
    await waitForUsers(bob, ['alice', 'bob']);
    assert.equal(await alice.locator('#whoami [data-testid=me]').textContent(), 'alice');
  });

  it('rooms are joined again and messages flow', async () => {
    await waitForSystem(alice, /Joined #lobby again/);
    await waitForSystem(bob, /Joined #lobby again/);
    await chooseTarget(alice, '#lobby');
    await say(alice, 'back in the lobby');
    await waitForEntry(bob, { kind: 'in', from: 'alice', to: '#lobby', text: 'back in the lobby' });
    await waitForEntry(alice, { kind: 'own', text: 'back in the lobby', delivery: 'delivered', delivered: '1' });
    await pickUser(bob, 'alice');
    await say(bob, 'welcome back');
    await waitForEntry(alice, { kind: 'in', from: 'bob', to: 'you', text: 'welcome back' });
  });

  it('logged no console errors or warnings (beyond refused reconnects while the server was down)', (t) => {
    for (const page of [alice, bob]) {
      if (page.tolerated.length) t.diagnostic(`${page.label}: ${page.tolerated.length} refused reconnect(s) logged by Chromium`);
    }
    assertClean([alice, bob]);
  });
});
