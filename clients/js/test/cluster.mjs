// cluster.mjs: a real redis-server, switchboard nodes sharing it, and HAProxy in front, for the
// library's tests across nodes (the Node side of tests/integration/clusterkit.py, same settings).
// Everything listens on free 127.0.0.1 ports and is started and stopped by the test; every wait is bounded.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { freePort, sleep, startServer, SLOW, SRC } from './helpers.mjs';

const REDIS_BIN = '/usr/bin/redis-server';
const HAPROXY_BIN = '/usr/sbin/haproxy';
const NODE_TTL = 3; // seconds: --node-ttl of the test nodes, so a killed node's users leave soon

const running = new Set();
process.on('exit', () => { for (const proc of running) proc.kill('SIGKILL'); });

/** GET http://127.0.0.1:port/path: { status, body }, or null if nothing answered within 2 s. */
export function httpGet(port, urlPath) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
      res.on('error', () => resolve(null));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
  });
}

/** A node's /healthz, parsed; null if it does not answer 200. */
export async function healthz(port) {
  const r = await httpGet(port, '/healthz');
  return r && r.status === 200 ? JSON.parse(r.body) : null;
}

function listening(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

// Runs bin with args, its output kept (the last 64 KiB) for failure messages; waits for port to listen.
async function daemon(bin, args, port, what) {
  if (!existsSync(bin)) throw new Error(`${bin} is missing (apt-get install ${what})`);
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  let output = '';
  const keep = (chunk) => { output = (output + chunk).slice(-65536); };
  proc.stdout.on('data', keep);
  proc.stderr.on('data', keep);
  let failed = null;
  proc.on('error', (e) => { failed = e; });
  const exited = new Promise((resolve) => proc.on('close', () => { running.delete(proc); resolve(); }));
  try {
    const end = Date.now() + 10000 * SLOW;
    while (!(await listening(port))) {
      if (failed || proc.exitCode !== null || Date.now() > end)
        throw new Error(`${what} does not listen on ${port}: ${failed?.message ?? ''}\n${output}`);
      await sleep(50);
    }
  } catch (e) {
    proc.kill('SIGKILL');
    throw e;
  }
  return {
    output: () => output,
    signal: (sig) => proc.kill(sig),
    async stop() {
      proc.kill('SIGCONT');
      proc.kill('SIGTERM');
      if (!(await Promise.race([exited.then(() => true), sleep(10000 * SLOW)]))) {
        proc.kill('SIGKILL');
        await exited;
      }
    },
  };
}

/** redis-server on a free port, no persistence; pause() stops it (SIGSTOP) until resume(). */
export async function startRedis() {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-redis-'));
  const d = await daemon(REDIS_BIN, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', dir], port, 'redis-server');
  return {
    url: `redis://127.0.0.1:${port}`,
    pause: () => d.signal('SIGSTOP'),
    resume: () => d.signal('SIGCONT'),
    async stop() {
      await d.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** HAProxy 2.6 over ports, configured as clusterkit.py's (tests/integration/haproxy-cluster.cfg). */
export async function startHAProxy(ports) {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-haproxy-'));
  const servers = ports.map((p, i) => `    server n${i} 127.0.0.1:${p} check inter 500ms`).join('\n');
  const cfg = path.join(dir, 'haproxy.cfg');
  const template = readFileSync(path.join(SRC, 'tests', 'integration', 'haproxy-cluster.cfg'), 'utf8');
  writeFileSync(cfg, template.replaceAll('{port}', String(port)).replaceAll('{servers}', servers));
  const d = await daemon(HAPROXY_BIN, ['-f', cfg, '-db'], port, 'haproxy');
  const stop = async () => {
    await d.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  // Up once as many requests in a row as there are nodes went through: every health check has passed.
  let ok = 0;
  const end = Date.now() + 10000 * SLOW;
  while (ok < ports.length) {
    const r = await httpGet(port, '/healthz');
    ok = r && r.status === 200 ? ok + 1 : 0;
    if (Date.now() > end) {
      await stop();
      throw new Error(`haproxy on ${port} does not reach the nodes:\n${d.output()}`);
    }
    if (!ok) await sleep(100);
  }
  return { port, stop };
}

/**
 * n switchboard nodes (node0..) on one new redis-server, one prefix, each with args, and HAProxy in
 * front. nodes[i] is null once kill(i) has SIGKILLed it. stop() ends everything and throws if a node
 * left alive did not exit 0 on SIGTERM.
 */
export async function startCluster({ n = 3, args = [] } = {}) {
  const redis = await startRedis();
  const nodes = [];
  let haproxy = null;
  const stop = async () => {
    const errors = [];
    if (haproxy) await haproxy.stop();
    for (const node of nodes) {
      try {
        if (node) await node.stop();
      } catch (e) {
        errors.push(e.message);
      }
    }
    await redis.stop();
    if (errors.length) throw new Error(errors.join('\n'));
  };
  try {
    for (let i = 0; i < n; i++) {
      nodes.push(await startServer({
        args: ['--redis', redis.url, '--redis-prefix', `sbjs${process.pid}`, '--node-id', `node${i}`,
          '--node-ttl', String(NODE_TTL), '--threads', '2', ...args],
      }));
    }
    for (const node of nodes) {
      let h = null;
      const end = Date.now() + 10000 * SLOW;
      while ((h = await healthz(node.port))?.redis !== 'up') {
        if (Date.now() > end) throw new Error(`node on ${node.port} never said redis up: ${JSON.stringify(h)}\n${node.output()}`);
        await sleep(50);
      }
    }
    haproxy = await startHAProxy(nodes.map((node) => node.port));
  } catch (e) {
    await stop().catch(() => {});
    throw e;
  }
  return {
    redis,
    nodes,
    haproxy,
    stop,
    /** SIGKILLs node i. */
    async kill(i) {
      await nodes[i].kill();
      nodes[i] = null;
    },
    /** For a failure message: each node's output, and its cluster and history counters not at 0
     * (switchboard_cluster_sends_refused_total, say, is a send that never reached the user's stream). */
    async report() {
      const parts = await Promise.all(nodes.map(async (node, i) => {
        if (!node) return `--- node${i} (killed)`;
        const m = await httpGet(node.port, '/metrics');
        const counters = (m?.body ?? '').split('\n').filter((l) => /^switchboard_(cluster|history)_\S+ [1-9]/.test(l));
        return `--- node${i}: ${counters.join(', ')}\n${node.output().slice(-3000)}`;
      }));
      return parts.join('\n');
    },
  };
}

/**
 * Which node holds the one connection that came through HAProxy, when the only other WebSocket in
 * the cluster is one on node `direct` (the flooding peer): waits, bounded, until exactly one node has
 * that one more connection (/healthz's `connections`; a connection just cut may take a moment to go).
 */
export async function nodeHolding(cluster, direct) {
  let counts = [];
  const end = Date.now() + 10000 * SLOW;
  for (;;) {
    counts = await Promise.all(cluster.nodes.map(async (node, i) => {
      if (!node) return 0;
      const h = await healthz(node.port);
      return h ? h.connections - (i === direct ? 1 : 0) : NaN;
    }));
    const holding = counts.flatMap((c, i) => (c === 1 ? [i] : []));
    if (holding.length === 1 && counts.every((c) => c === 0 || c === 1)) return holding[0];
    if (Date.now() > end) throw new Error(`no single node holds the connection: ${JSON.stringify(counts)}`);
    await sleep(50);
  }
}
