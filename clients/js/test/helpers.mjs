// helpers.mjs: the real server for the library's tests (tests/e2e/server.mjs starts it), a plain
// WebSocket peer to talk to the library, bounded waits, and the blink tests' flood and checks.
import assert from 'node:assert/strict';

import './env.mjs'; // before server.mjs
import WebSocket from 'ws';

import { SLOW } from '../../../tests/e2e/server.mjs';

export { startServer, freePort, SLOW, SRC } from '../../../tests/e2e/server.mjs';
export { WebSocket };

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until pred() is true, checking every 20 ms; throws after ms. */
export async function until(pred, ms, what) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A protocol 1 peer (the ws package), its welcome read; next() gives the following JSON messages. */
export async function peer(port, user) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?user=${user}`);
  const inbox = [];
  const waiters = [];
  ws.on('message', (data) => {
    const m = JSON.parse(String(data));
    const w = waiters.shift();
    if (w) w(m);
    else inbox.push(m);
  });
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  const next = () => (inbox.length ? Promise.resolve(inbox.shift()) : new Promise((resolve) => waiters.push(resolve)));
  const welcome = await next();
  return {
    ws,
    welcome,
    next,
    /** Sends obj with an id and resolves with its ack (messages before it are dropped). */
    async request(obj, id) {
      ws.send(JSON.stringify({ ...obj, id }));
      for (;;) {
        const m = await next();
        if (m.id === id && (m.type === 'ack' || m.type === 'error')) return m;
      }
    },
    send(obj) { ws.send(JSON.stringify(obj)); },
    close() { ws.close(); },
  };
}

// Blinks (blink.test.mjs on one node, blink-cluster.test.mjs through HAProxy on three): a flood to the
// library's user, a room it is in and everyone, and what the library handed over, per stream.

export const RATE = 500; // messages per second, per stream
export const BLINK_MS = 3000;
const STREAMS = ['user', 'room', 'broadcast'];

/** src (a peer, member of 'hall') sends RATE messages a second to each stream, numbered from 0 per
 * stream, until stop(); sent.user is how many each stream got so far. */
export function flood(src, to = 'tgt', room = 'hall') {
  const sent = { user: 0, room: 0, broadcast: 0 };
  const started = Date.now();
  const timer = setInterval(() => {
    const due = Math.floor(((Date.now() - started) * RATE) / 1000);
    for (; sent.user < due; sent.user++, sent.room++, sent.broadcast++) {
      src.send({ type: 'send', to, data: sent.user });
      src.send({ type: 'publish', room, data: sent.room });
      src.send({ type: 'broadcast', data: sent.broadcast });
    }
  }, 10);
  return { sent, stop: () => clearInterval(timer) };
}

/** What sb hands over: got[stream] the data of its messages in arrival order, and its recovery events. */
export function record(sb) {
  const got = { user: [], room: [], broadcast: [] };
  const recoveries = [];
  sb.on('message', (m) => got[m.room ? 'room' : m.to ? 'user' : 'broadcast'].push(m.data));
  sb.on('recovery', (r) => recoveries.push(r));
  return { got, recoveries };
}

/** Waits, bounded, for sb to lose its connection, then to be connected again. */
export async function reconnect(sb) {
  await until(() => sb.state !== 'connected', 5000 * SLOW, 'the disconnect');
  await until(() => sb.state === 'connected', (BLINK_MS + 10000) * SLOW, 'the reconnect');
}

/** A 3 s blink of every connection through proxy (proxy.mjs), and sb back. */
export async function blink(proxy, sb) {
  proxy.blink(BLINK_MS);
  await reconnect(sb);
}

/** Every stream got exactly 0..total-1, in order, nothing twice (after waiting, bounded, for the last);
 * a failure names what is missing, doubled or out of place. */
export async function assertEveryMessageOnce(got, total) {
  const complete = () => STREAMS.every((k) => got[k].length >= total);
  const end = Date.now() + 20000 * SLOW;
  while (!complete() && Date.now() < end) await sleep(20);
  await sleep(200); // anything more would be a duplicate
  for (const k of STREAMS) {
    const list = got[k];
    if (list.length === total && list.every((v, i) => v === i)) continue;
    const counts = new Map();
    for (const v of list) counts.set(v, (counts.get(v) || 0) + 1);
    const missing = [];
    for (let v = 0; v < total; v++) if (!counts.has(v)) missing.push(v);
    const twice = [...counts].filter(([, c]) => c > 1).map(([v]) => v);
    const misplaced = list.findIndex((v, i) => v !== i);
    assert.fail(`${k}: ${list.length} received, ${total} sent; missing ${missing.slice(0, 20)}` +
      `${missing.length > 20 ? ` (${missing.length})` : ''}; twice ${twice.slice(0, 20)}; first out of place at ` +
      `${misplaced}: ${JSON.stringify(list.slice(Math.max(0, misplaced - 3), misplaced + 3))}`);
  }
}

/** A blink under the flood from s.src, too long for the history: each stream says recovered: false,
 * and what it got (up to the last message) is increasing with the hole in it. */
export async function assertHoleAnnounced({ proxy, sb, src, got, recoveries }) {
  const f = flood(src);
  await sleep(500);
  await blink(proxy, sb);
  await sleep(500);
  f.stop();
  const total = f.sent.user;
  await until(() => STREAMS.every((k) => got[k].at(-1) === total - 1), 20000 * SLOW, 'the last messages');
  const streams = recoveries.map((r) => `${r.stream}=${r.recovered}`).sort();
  assert.deepEqual(streams, ['broadcast=false', 'room=false', 'user=false']);
  for (const k of STREAMS) {
    const list = got[k];
    assert.ok(list.every((v, i) => i === 0 || v > list[i - 1]), `${k}: increasing, nothing twice`);
    assert.ok(list.length < total, `${k}: the hole is there (${list.length} of ${total}), and was announced`);
  }
}
