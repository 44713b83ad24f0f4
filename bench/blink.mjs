// bench/blink.mjs: one blink, measured (bench/blink runs it on fresh nodes, rounds interleaved).
// A receiver (user `rcv`) on node B through a TCP proxy this script controls (clients/js/test/proxy.mjs),
// a sender (user `snd`) on node A sending RATE messages a second to `rcv`, numbered from 0. Once live
// messages arrive, the proxy cuts the receiver's connection and refuses new ones for BLINK ms plus a
// random 0 to DELAY ms (so that where t_open falls between two retries is left to chance for both
// clients: a fixed length would put it at the same place of Socket.IO's fixed retry period every
// time); the sender goes on. Measured from the moment the proxy accepts again (t_open):
//   back_ms     until the receiver holds every message sent while it was away (the figure), or
//               -1 if it never does within 10 s;
//   accept_ms   until the proxy lets its next attempt through: the client's backoff, nothing else;
//   replay_ms   back_ms - accept_ms: the handshake and the recovery, the servers' part.
// Then the sender stops; after everything has drained: sent, received, missing (in all, gap or not),
// doubled, misordered, and whether the server said the receiver's stream was recovered.
// Both clients get the same backoff bounds, DELAY:
//   switchboard  the client library (clients/js), minDelay = maxDelay = DELAY: it waits a random
//                DELAY/2 to DELAY after each failure, and recovers with its stream positions;
//   socketio     socket.io-client, reconnectionDelay = reconnectionDelayMax = DELAY: from its second
//                retry on it waits DELAY exactly (its jitter is cut off by the maximum), and recovers
//                with connectionStateRecovery (socketio-redis-server.js `streams`).
// usage: node bench/blink.mjs switchboard|socketio PORT_A PORT_B [--rate N] [--blink MS] [--delay MS]
// Prints one line: RESULT server=... back_ms=... (ms; -1: never).
import { io } from 'socket.io-client';
import WebSocket from 'ws';

import { Switchboard } from '../clients/js/index.js';
import { startProxy } from '../clients/js/test/proxy.mjs';

const USAGE = 'usage: node bench/blink.mjs switchboard|socketio PORT_A PORT_B [--rate N] [--blink MS] [--delay MS]';
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function parseArgs(argv) {
  const [kind, a, b, ...rest] = argv;
  const o = { kind, portA: Number(a), portB: Number(b), rate: 200, blink: 3000, delay: 100 };
  const bad = (why) => {
    console.error(`bench/blink.mjs: ${why}\n${USAGE}`);
    process.exit(2);
  };
  if (kind !== 'switchboard' && kind !== 'socketio') bad(`the server is switchboard or socketio, not ${kind}`);
  if (!(o.portA > 0 && o.portB > 0)) bad('PORT_A and PORT_B must be ports');
  for (let i = 0; i < rest.length; i += 2) {
    const key = { '--rate': 'rate', '--blink': 'blink', '--delay': 'delay' }[rest[i]];
    const v = Number(rest[i + 1]);
    if (!key) bad(`unknown argument ${rest[i]}`);
    if (!(v > 0)) bad(`${rest[i]} needs a positive number`);
    o[key] = v;
  }
  return o;
}

// The two servers behind one small interface: connect, send to a user, on each message and on each
// (re)connection, close. onConnect gets whether the server said the user's stream was recovered
// (null: it said nothing).
async function switchboardClient(port, user, delay, onData, onConnect) {
  const sb = new Switchboard(`ws://127.0.0.1:${port}/ws`, { user, WebSocket, minDelay: delay, maxDelay: delay });
  let recovered = null;
  sb.on('recovery', (r) => { if (r.stream === 'user') recovered = r.recovered; });
  sb.on('message', (m) => onData(m.data));
  sb.on('state', (s) => { if (s === 'connected') onConnect(recovered); });
  sb.on('error', () => {});
  await sb.connect();
  return {
    send: (to, data) => sb.send(to, data).catch(() => {}), // a send while `to` is away may be refused
    close: () => sb.close(),
  };
}

async function socketioClient(port, user, delay, onData, onConnect) {
  const s = io(`http://127.0.0.1:${port}`, {
    transports: ['websocket'], query: { user }, reconnectionDelay: delay, reconnectionDelayMax: delay,
  });
  s.on('msg', (m) => { if (m.type === 'message') onData(m.data); });
  s.on('connect', () => onConnect(s.recovered));
  await new Promise((resolve, reject) => { s.once('connect', resolve); s.once('connect_error', reject); });
  return { send: (to, data) => s.emit('msg', { type: 'send', to, data }), close: () => s.close() };
}

async function until(pred, ms) {
  const end = Date.now() + ms;
  while (!pred() && Date.now() < end) await sleep(5);
  return pred();
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const client = o.kind === 'switchboard' ? switchboardClient : socketioClient;
  const proxy = await startProxy(o.portB);
  const seen = new Map(); // seq -> times received
  let misordered = 0, last = -1, gapLeft = Infinity, tBack = 0, recovered = null, cut = false;
  const sentAt = []; // seq -> Date.now() when sent
  let gap = null; // [first, last] seq sent while the receiver was refused
  const rcv = await client(proxy.port, 'rcv', o.delay, (seq) => {
    seen.set(seq, (seen.get(seq) || 0) + 1);
    if (seq < last) misordered++;
    last = Math.max(last, seq);
    if (gap && seq >= gap[0] && seq <= gap[1] && seen.get(seq) === 1 && --gapLeft === 0) tBack = Date.now();
  }, (rec) => {
    if (cut) recovered = rec;
  });
  const snd = await client(o.portA, 'snd', o.delay, () => {}, () => {});

  const started = Date.now();
  const timer = setInterval(() => {
    const due = Math.floor(((Date.now() - started) * o.rate) / 1000);
    while (sentAt.length < due) {
      sentAt.push(Date.now());
      snd.send('rcv', sentAt.length - 1);
    }
  }, 2);
  if (!(await until(() => seen.size > 0, 10000))) throw new Error('no live message reached the receiver in 10 s');
  await sleep(1000);

  const length = o.blink + Math.floor(Math.random() * o.delay);
  const tCut = Date.now();
  proxy.blink(length);
  cut = true;
  const tOpen = tCut + length; // proxy.mjs refuses while Date.now() < this
  await sleep(length);
  gap = [sentAt.findIndex((t) => t >= tCut), sentAt.findLastIndex((t) => t < tOpen)];
  gapLeft = 0;
  for (let s = gap[0]; s <= gap[1]; s++) if (!seen.has(s)) gapLeft++;
  if (gapLeft === 0) tBack = Date.now(); // nothing to wait for (cannot happen through a cut link)
  await until(() => tBack > 0, 10000);
  const accepted = proxy.lastAccepted; // the receiver's way back in
  await sleep(Math.max(0, tOpen + 1000 - Date.now())); // live traffic after the return, then stop
  clearInterval(timer);
  const sent = sentAt.length;
  await until(() => seen.has(sent - 1), 5000);
  await sleep(500); // anything more would be a double
  rcv.close();
  snd.close();
  await proxy.close();

  let missing = 0, doubled = 0;
  for (let s = 0; s < sent; s++) {
    const n = seen.get(s) || 0;
    if (n === 0) missing++;
    else doubled += n - 1;
  }
  const back = tBack ? tBack - tOpen : -1;
  const accept = accepted >= tOpen ? accepted - tOpen : -1;
  console.log(`RESULT server=${o.kind} rate=${o.rate} blink_ms=${o.blink} delay_ms=${o.delay} ` +
    `gap_msgs=${gap[1] - gap[0] + 1} sent=${sent} received=${[...seen.values()].reduce((a, n) => a + n, 0)} ` +
    `missing=${missing} doubled=${doubled} misordered=${misordered} recovered=${recovered} ` +
    `accept_ms=${accept} replay_ms=${back >= 0 && accept >= 0 ? back - accept : -1} back_ms=${back}`);
  process.exit(0); // the clients' timers are gone; nothing else to wait for
}

main().catch((e) => {
  console.error(`bench/blink.mjs: ${e.message}`);
  process.exit(1);
});
