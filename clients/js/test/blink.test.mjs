// Blinks: the library's connection is cut and refused for 3 s by a proxy (proxy.mjs) while another
// client sends 500 messages a second to its user, to a room it is in and to everyone. With history
// enough for the gap, the library hands every message over exactly once and in order per stream, over
// two blinks in a row; with too little, each stream says recovered: false, and what follows is still
// in order with nothing twice.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Switchboard } from '../index.js';
import { startProxy } from './proxy.mjs';
import { peer, sleep, startServer, until, WebSocket, SLOW } from './helpers.mjs';

const RATE = 500; // messages per second, per stream
const BLINK_MS = 3000;

// Sends RATE messages a second to each stream, numbered from 0 per stream, until stop().
function flood(src) {
  const sent = { user: 0, room: 0, broadcast: 0 };
  const started = Date.now();
  const timer = setInterval(() => {
    const due = Math.floor(((Date.now() - started) * RATE) / 1000);
    for (; sent.user < due; sent.user++, sent.room++, sent.broadcast++) {
      src.send({ type: 'send', to: 'tgt', data: sent.user });
      src.send({ type: 'publish', room: 'hall', data: sent.room });
      src.send({ type: 'broadcast', data: sent.broadcast });
    }
  }, 10);
  return { sent, stop: () => clearInterval(timer) };
}

async function setup(historySize) {
  const server = await startServer({ args: ['--history-size', String(historySize)] });
  const proxy = await startProxy(server.port);
  const sb = new Switchboard(`ws://127.0.0.1:${proxy.port}/ws`, { user: 'tgt', WebSocket, minDelay: 100, maxDelay: 500 });
  const got = { user: [], room: [], broadcast: [] };
  const recoveries = [];
  sb.on('message', (m) => got[m.room ? 'room' : m.to ? 'user' : 'broadcast'].push(m.data));
  sb.on('recovery', (r) => recoveries.push(r));
  await sb.connect();
  await sb.join('hall');
  const src = await peer(server.port, 'src');
  await src.request({ type: 'join', room: 'hall' }, 'j');
  return { server, proxy, sb, got, recoveries, src };
}

async function blink(proxy, sb) {
  proxy.blink(BLINK_MS);
  await until(() => sb.state !== 'connected', 5000 * SLOW, 'the disconnect');
  await until(() => sb.state === 'connected', (BLINK_MS + 10000) * SLOW, 'the reconnect');
}

async function teardown({ server, proxy, sb, src }) {
  sb.close();
  src.close();
  await proxy.close();
  await server.stop();
}

const inOrderFrom = (list, first) => list.every((v, i) => v === first + i);

test('two 3 s blinks under 500 msg/s per stream: every message once, in order, each stream recovered', async () => {
  const s = await setup(5000);
  const f = flood(s.src);
  await sleep(1000);
  await blink(s.proxy, s.sb);
  await sleep(1000);
  await blink(s.proxy, s.sb);
  await sleep(1000);
  f.stop();
  const total = f.sent.user;
  assert.ok(total >= RATE * 6, `sent ${total} per stream`);
  for (const k of ['user', 'room', 'broadcast'])
    await until(() => s.got[k].length >= total, 20000 * SLOW, `${k}: ${s.got[k].length} of ${total}`);
  await sleep(200); // anything more would be a duplicate
  for (const k of ['user', 'room', 'broadcast']) {
    assert.equal(s.got[k].length, total, `${k}: ${s.got[k].length} received, ${total} sent`);
    assert.ok(inOrderFrom(s.got[k], 0), `${k} in order, no gap, no duplicate`);
  }
  assert.equal(s.recoveries.length, 6, JSON.stringify(s.recoveries));
  assert.ok(s.recoveries.every((r) => r.recovered), JSON.stringify(s.recoveries));
  await teardown(s);
});

test('a gap older than history: recovered false per stream, never a silent hole', async () => {
  const s = await setup(100); // 3 s at 500/s is 1500 messages per stream
  const f = flood(s.src);
  await sleep(500);
  await blink(s.proxy, s.sb);
  await sleep(500);
  f.stop();
  const total = f.sent.user;
  await until(() => s.got.user.at(-1) === total - 1 && s.got.room.at(-1) === total - 1 &&
                    s.got.broadcast.at(-1) === total - 1, 20000 * SLOW, 'the last messages');
  const streams = s.recoveries.map((r) => `${r.stream}=${r.recovered}`).sort();
  assert.deepEqual(streams, ['broadcast=false', 'room=false', 'user=false']);
  for (const k of ['user', 'room', 'broadcast']) {
    const list = s.got[k];
    assert.ok(list.every((v, i) => i === 0 || v > list[i - 1]), `${k}: increasing, nothing twice`);
    assert.ok(list.length < total, `${k}: the hole is there (${list.length} of ${total}), and was announced`);
  }
  await teardown(s);
});
