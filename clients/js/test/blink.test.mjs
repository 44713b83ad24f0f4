// Blinks: the library's connection is cut and refused for 3 s by a proxy (proxy.mjs) while another
// client sends 500 messages a second to its user, to a room it is in and to everyone. With history
// enough for the gap, the library hands every message over exactly once and in order per stream, over
// two blinks in a row; with too little, each stream says recovered: false, and what follows is still
// in order with nothing twice. blink-cluster.test.mjs does the same through HAProxy over three nodes.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Switchboard } from '../index.js';
import { startProxy } from './proxy.mjs';
import {
  assertEveryMessageOnce, assertHoleAnnounced, blink, flood, peer, record, sleep, startServer, RATE, WebSocket,
} from './helpers.mjs';

async function setup(historySize) {
  const server = await startServer({ args: ['--history-size', String(historySize)] });
  const proxy = await startProxy(server.port);
  const sb = new Switchboard(`ws://127.0.0.1:${proxy.port}/ws`, { user: 'tgt', WebSocket, minDelay: 100, maxDelay: 500 });
  const seen = record(sb);
  await sb.connect();
  await sb.join('hall');
  const src = await peer(server.port, 'src');
  await src.request({ type: 'join', room: 'hall' }, 'j');
  return { server, proxy, sb, src, ...seen };
}

async function teardown({ server, proxy, sb, src }) {
  sb.close();
  src.close();
  await proxy.close();
  await server.stop();
}

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
  await assertEveryMessageOnce(s.got, total);
  assert.equal(s.recoveries.length, 6, JSON.stringify(s.recoveries));
  assert.ok(s.recoveries.every((r) => r.recovered), JSON.stringify(s.recoveries));
  await teardown(s);
});

test('a gap older than history: recovered false per stream, never a silent hole', async () => {
  const s = await setup(100); // 3 s at 500/s is 1500 messages per stream
  await assertHoleAnnounced(s);
  await teardown(s);
});
