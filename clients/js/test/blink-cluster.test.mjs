// Blinks across nodes: blink.test.mjs's blinks, with three nodes on one Redis behind HAProxy
// (roundrobin), the library reaching HAProxy through the test's proxy (proxy.mjs) and the flooding
// peer connected to one node directly. History lives in Redis (docs/PROTOCOL.md, "Recovery
// (protocol 2)"), so a reconnect that lands on another node recovers the same: every message once and
// in order per stream after two blinks, after the library's node is SIGKILLed, and when Redis stalls
// while the library is away; a gap older than the history says recovered: false per stream, never a
// silent hole.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Switchboard } from '../index.js';
import { httpGet, nodeHolding, startCluster } from './cluster.mjs';
import { startProxy } from './proxy.mjs';
import {
  assertEveryMessageOnce, assertHoleAnnounced, blink, flood, peer, reconnect, record, sleep, BLINK_MS, RATE, WebSocket,
} from './helpers.mjs';

// The cluster, the library (user tgt, in room hall) through the proxy and HAProxy, and the flooding
// peer src (also in hall) on a node other than the library's (so that killing the library's node
// leaves the flood going). Runs fn with all of it, then ends everything; a failure carries the nodes'
// output and counters.
async function withCluster(historySize, fn) {
  const cluster = await startCluster({ args: ['--history-size', String(historySize)] });
  const proxy = await startProxy(cluster.haproxy.port);
  const sb = new Switchboard(`ws://127.0.0.1:${proxy.port}/ws`, { user: 'tgt', WebSocket, minDelay: 100, maxDelay: 500 });
  let src = null;
  let failed = true;
  try {
    const seen = record(sb);
    await sb.connect();
    await sb.join('hall');
    const first = await nodeHolding(cluster, -1);
    const srcNode = (first + 1) % cluster.nodes.length;
    src = await peer(cluster.nodes[srcNode].port, 'src');
    await src.request({ type: 'join', room: 'hall' }, 'j');
    await fn({ cluster, proxy, sb, src, srcNode, first, ...seen });
    failed = false;
  } catch (e) {
    e.message += `\n${await cluster.report()}`;
    throw e;
  } finally {
    sb.close();
    src?.close();
    await proxy.close();
    const stopped = cluster.stop();
    await (failed ? stopped.catch(() => {}) : stopped); // the first failure is the one to read
  }
}

test('two 3 s blinks through HAProxy, the reconnect on another node: every message once, in order, recovered', async () => {
  await withCluster(5000, async (s) => {
    const where = [s.first];
    const f = flood(s.src);
    await sleep(1000);
    await blink(s.proxy, s.sb);
    where.push(await nodeHolding(s.cluster, s.srcNode));
    await sleep(1000);
    await blink(s.proxy, s.sb);
    where.push(await nodeHolding(s.cluster, s.srcNode));
    await sleep(1000);
    f.stop();
    const total = f.sent.user;
    assert.ok(total >= RATE * 6, `sent ${total} per stream`);
    assert.ok(where[1] !== where[0] || where[2] !== where[1], `the library was on nodes ${where}: never moved`);
    await assertEveryMessageOnce(s.got, total);
    assert.equal(s.recoveries.length, 6, JSON.stringify(s.recoveries));
    assert.ok(s.recoveries.every((r) => r.recovered), JSON.stringify(s.recoveries));
  });
});

test("the library's node SIGKILLed under the flood: back on another node, every message once, in order", async () => {
  await withCluster(5000, async (s) => {
    const f = flood(s.src);
    await sleep(1000);
    await s.cluster.kill(s.first);
    await reconnect(s.sb);
    const now = await nodeHolding(s.cluster, s.srcNode);
    assert.notEqual(now, s.first);
    await sleep(1000);
    f.stop();
    const total = f.sent.user;
    await assertEveryMessageOnce(s.got, total);
    assert.equal(s.recoveries.length, 3, JSON.stringify(s.recoveries));
    assert.ok(s.recoveries.every((r) => r.recovered), JSON.stringify(s.recoveries));
  });
});

// While the library is away its user is listed on no node, so each send to it waits for Redis to say
// which nodes took it; past 32 waiting per connection, a send is answered not_found at once, but its
// message must still reach the user's stream.
test('Redis stalls 300 ms while the library is away: sends that could not wait for it are recovered too', async () => {
  await withCluster(5000, async (s) => {
    const f = flood(s.src);
    await sleep(1000);
    s.proxy.blink(BLINK_MS);
    await sleep(1000);
    s.cluster.redis.pause();
    await sleep(300);
    s.cluster.redis.resume();
    await reconnect(s.sb);
    await sleep(1000);
    f.stop();
    await assertEveryMessageOnce(s.got, f.sent.user);
    assert.ok(s.recoveries.length === 3 && s.recoveries.every((r) => r.recovered), JSON.stringify(s.recoveries));
    const m = await httpGet(s.cluster.nodes[s.srcNode].port, '/metrics');
    assert.match(m.body, /^switchboard_cluster_sends_refused_total [1-9]/m, 'no send was refused: the test tested nothing');
  });
});

test('a gap older than the history, across nodes: recovered false per stream, never a silent hole', async () => {
  await withCluster(5, async (s) => { // 3 s at 500/s is 1500 messages per stream
    await assertHoleAnnounced(s);
  });
});
