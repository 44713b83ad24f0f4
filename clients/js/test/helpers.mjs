// helpers.mjs: the real server for the library's tests (tests/e2e/server.mjs starts it), a plain
// WebSocket peer to talk to the library, and bounded waits.
import './env.mjs'; // before server.mjs
import WebSocket from 'ws';

export { startServer, SLOW } from '../../../tests/e2e/server.mjs';
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
