// The library against the real server: commands and their acks or errors, the events, a reconnect
// that recovers what was sent meanwhile, a gap too old for history, tokens fetched per connection and
// refreshed before they expire.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Switchboard, SwitchboardError } from '../index.js';
import { startProxy } from './proxy.mjs';
import { peer, sleep, startServer, until, WebSocket, SLOW } from './helpers.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server.stop(); });

const url = () => `ws://127.0.0.1:${server.port}/ws`;

test('commands resolve with their ack or reject with the error code; events carry messages and presence', async () => {
  const sb = new Switchboard(url(), { user: 'ann', WebSocket });
  const states = [];
  sb.on('state', (s) => states.push(s));
  const welcome = await sb.connect();
  assert.equal(welcome.user, 'ann');
  assert.equal(welcome.users, undefined); // --presence rooms, the default: the welcome lists nobody
  assert.equal(sb.state, 'connected');
  const messages = [];
  const presence = [];
  const members = [];
  sb.on('message', (m) => messages.push(m));
  sb.on('presence', (p) => presence.push(p));
  sb.on('members', (m) => members.push(m));
  await assert.rejects(sb.publish('lobby', 1), (e) => e.code === 'unauthorized');
  assert.deepEqual((await sb.join('lobby')).members, ['ann']);
  assert.deepEqual(members, [{ room: 'lobby', members: ['ann'] }]);
  const bo = await peer(server.port, 'bo');
  assert.deepEqual((await bo.request({ type: 'join', room: 'lobby' }, 1)).members, ['ann', 'bo']);
  await until(() => presence.length === 1, 5000 * SLOW, 'presence');
  assert.deepEqual(presence[0], { event: 'join', user: 'bo', room: 'lobby' });
  assert.deepEqual(await sb.users(), ['ann', 'bo']);
  assert.equal((await sb.send('bo', { hi: 1 })).delivered, 1);
  const got = await bo.next();
  assert.deepEqual(got, { type: 'message', from: 'ann', to: 'bo', data: { hi: 1 } });
  await assert.rejects(sb.send('nobody', 1), (e) => e instanceof SwitchboardError && e.code === 'not_found');
  bo.send({ type: 'publish', room: 'lobby', data: 'r' });
  bo.send({ type: 'send', to: 'ann', data: 'u' });
  bo.send({ type: 'broadcast', data: 'b' });
  await until(() => messages.length === 3, 5000 * SLOW, 'three messages');
  assert.deepEqual(messages, [
    { from: 'bo', room: 'lobby', data: 'r' },
    { from: 'bo', to: 'ann', data: 'u' },
    { from: 'bo', data: 'b' },
  ]);
  assert.equal((await sb.broadcast('all')).delivered, 1);
  assert.equal((await sb.publish('lobby', 'x')).delivered, 1);
  await sb.leave('lobby');
  // watching a user: presence without a room when it comes and goes
  assert.deepEqual((await sb.watch(['dee', 'bo'])).online, ['bo']);
  const dee = await peer(server.port, 'dee');
  await until(() => presence.length === 2, 5000 * SLOW, 'a watched user coming online');
  assert.deepEqual(presence[1], { event: 'join', user: 'dee' });
  await sb.unwatch(['dee']);
  sb.close();
  assert.equal(sb.state, 'closed');
  await assert.rejects(sb.send('bo', 1), (e) => e.code === 'closed');
  assert.deepEqual(states, ['connecting', 'connected', 'closed']);
  bo.close();
  dee.close();
});

test('a blink: the library reconnects, rejoins and recovers each stream, every message once and in order', async () => {
  const proxy = await startProxy(server.port);
  const sb = new Switchboard(`ws://127.0.0.1:${proxy.port}/ws`, { user: 'cy', WebSocket, minDelay: 100, maxDelay: 400 });
  const messages = [];
  const recoveries = [];
  sb.on('message', (m) => messages.push(m));
  sb.on('recovery', (r) => recoveries.push(r));
  const members = [];
  sb.on('members', (m) => members.push(m));
  await sb.connect();
  await sb.join('den');
  const dee = await peer(server.port, 'dee');
  await dee.request({ type: 'join', room: 'den' }, 'j');
  dee.send({ type: 'send', to: 'cy', data: 0 });
  await until(() => messages.length === 1, 5000 * SLOW, 'the first message');
  proxy.blink(1000);
  await until(() => sb.state !== 'connected', 5000 * SLOW, 'the disconnect');
  for (let i = 1; i <= 5; i++) {
    dee.send({ type: 'send', to: 'cy', data: i });
    dee.send({ type: 'publish', room: 'den', data: i });
    dee.send({ type: 'broadcast', data: i });
  }
  await until(() => messages.length === 16, 10000 * SLOW, 'the recovered messages');
  const of = (pred) => messages.filter(pred).map((m) => m.data);
  assert.deepEqual(of((m) => m.to === 'cy'), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(of((m) => m.room === 'den'), [1, 2, 3, 4, 5]);
  assert.deepEqual(of((m) => !m.to && !m.room), [1, 2, 3, 4, 5]);
  const seen = recoveries.map((r) => `${r.stream}${r.room ? ':' + r.room : ''}=${r.recovered}`).sort();
  assert.deepEqual(seen, ['broadcast=true', 'room:den=true', 'user=true']);
  // the rejoin's ack gave the room's members again (--presence rooms), for a people list to redraw
  await until(() => members.length === 2, 5000 * SLOW, "the rejoin's members");
  assert.deepEqual(members, [{ room: 'den', members: ['cy'] }, { room: 'den', members: ['cy', 'dee'] }]);
  sb.close();
  dee.close();
  await proxy.close();
});

test('tokens: fetched for each connection, sent in hello, refreshed before exp', async () => {
  const secret = 's'.repeat(40);
  const tokenServer = await startServer({ args: ['--jwt-secret', secret] });
  const { SignJWT } = await import('jose');
  let fetched = 0;
  const token = async () => {
    fetched++;
    return new SignJWT({ sub: 'eve' }).setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime(Math.floor(Date.now() / 1000) + 3).sign(new TextEncoder().encode(secret));
  };
  const sb = new Switchboard(`ws://127.0.0.1:${tokenServer.port}/ws`, { token, WebSocket });
  const states = [];
  sb.on('state', (s) => states.push(s));
  const welcome = await sb.connect();
  assert.equal(welcome.user, 'eve');
  assert.equal(fetched, 1);
  // exp + the server's 5 s leeway is past: without a refresh the server would have closed it (4401)
  await sleep(9500);
  assert.ok(fetched >= 2, `refreshed: ${fetched} tokens fetched`);
  assert.deepEqual(states, ['connecting', 'connected']);
  assert.deepEqual(await sb.users(), ['eve']);
  sb.close();
  await tokenServer.stop();
});
