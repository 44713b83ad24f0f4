// recovery.test.mjs: the demo page's network blinks (a TCP proxy between the browser and the server cuts
// its connection and refuses new ones for 3 s) while someone writes to it and to its room. The page
// reconnects by itself and shows every message sent meanwhile, once each; when more was sent than the
// server keeps (--history-size 3), it says that messages could not be recovered.
//
// While the proxy refuses, Chromium logs each failed reconnect attempt as a console error; exactly that
// message, for the proxy's address, is tolerated.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { startProxy } from '../../clients/js/test/proxy.mjs';
import { startServer } from './server.mjs';
import {
  assertClean, connectAs, joinRoom, launchBrowser, logEntries, openPage, until, waitForEntry, waitForSystem,
  waitForStatus,
} from './browser.mjs';

async function peer(port, user) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?user=${user}`);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  return { send: (obj) => ws.send(JSON.stringify(obj)), close: () => ws.close() };
}

describe('recovering what was sent during a blink', () => {
  let server;
  let proxy;
  let browser;
  let alice;
  let bob;

  before(async () => {
    server = await startServer({ args: ['--history-size', '3'] });
    proxy = await startProxy(server.port);
    browser = await launchBrowser();
    alice = await openPage(browser, `http://127.0.0.1:${proxy.port}/`, { label: 'alice' });
    alice.tolerate.push(new RegExp(`^WebSocket connection to 'ws://127\\.0\\.0\\.1:${proxy.port}/ws\\?v=2&user=alice[^']*' failed: `));
    bob = await peer(server.port, 'bob');
  });

  after(async () => {
    bob?.close();
    await browser?.close();
    await proxy?.close();
    await server?.stop();
  });

  async function blink(during) {
    proxy.blink(3000);
    await until(alice, () => window.__statusHistory.lastIndexOf('CLOSED') > window.__statusHistory.lastIndexOf('OPEN'),
      null, 'the status to show CLOSED');
    await during();
    await waitForStatus(alice, 'OPEN');
  }

  it('alice is connected and in a room with bob', async () => {
    await connectAs(alice, 'alice');
    await joinRoom(alice, 'lobby');
    bob.send({ type: 'join', room: 'lobby' });
  });

  it('messages to alice and to the room during a blink appear after it, once each', async () => {
    await blink(async () => {
      bob.send({ type: 'send', to: 'alice', data: 'sent while you were away' });
      bob.send({ type: 'publish', room: 'lobby', data: 'said in the room meanwhile' });
    });
    await waitForEntry(alice, { kind: 'in', from: 'bob', to: 'you', text: 'sent while you were away' });
    await waitForEntry(alice, { kind: 'in', from: 'bob', to: '#lobby', text: 'said in the room meanwhile' });
    const texts = (await logEntries(alice)).map((e) => e.text);
    assert.equal(texts.filter((t) => t === 'sent while you were away').length, 1);
    assert.equal(texts.filter((t) => t === 'said in the room meanwhile').length, 1);
    const system = await alice.evaluate(() => [...document.querySelectorAll('#log > li[data-kind=system]')].map((li) => li.textContent));
    assert.ok(!system.some((t) => /could not be recovered/.test(t)), 'nothing was lost');
  });

  it('more than the server keeps: the page says messages are missing', async () => {
    await blink(async () => {
      for (let i = 1; i <= 5; i++) bob.send({ type: 'send', to: 'alice', data: `burst ${i}` });
    });
    await waitForSystem(alice, /Messages sent to you while you were away could not be recovered/);
    bob.send({ type: 'send', to: 'alice', data: 'after the gap' });
    await waitForEntry(alice, { kind: 'in', from: 'bob', to: 'you', text: 'after the gap' });
    assertClean([alice]);
  });
});
