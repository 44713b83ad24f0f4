// server.mjs: starts and stops the real switchboard binary for the browser tests.
// startServer() runs $SWITCHBOARD_BIN (default: build/switchboard) on 127.0.0.1 (a free port, or the one given, so a test can
// restart the server on the same port) with --root $SWITCHBOARD_SRC/www and any extra `args`, and waits, bounded, for
// GET /healthz to answer 200. server.stop() sends SIGTERM and asserts the process exits 0 in time;
// server.kill() ends it with SIGKILL (a node dying), after which stop() has nothing left to do.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

export const SRC = process.env.SWITCHBOARD_SRC || process.cwd();
export const BIN = process.env.SWITCHBOARD_BIN || path.join(SRC, 'build', 'switchboard');
/** Sanitizer builds start and run slower: every bound is multiplied by this. */
export const SLOW = process.env.SB_SANITIZE === '1' ? 3 : 1;

const running = new Set();
process.on('exit', () => { for (const proc of running) proc.kill('SIGKILL'); });

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** Resolves with null after ms, without keeping the process alive. */
export const deadline = (ms) => new Promise((resolve) => setTimeout(resolve, ms, null).unref());

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** GET http://127.0.0.1:port/healthz: the status code, or null if nothing answered. */
function healthz(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/healthz', agent: false, timeout: 1000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
      res.on('error', () => resolve(null));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
  });
}

/**
 * Starts switchboard and resolves once /healthz says 200.
 * @returns {{port:number, url:string, output:()=>string, stop:()=>Promise<void>}}
 */
export async function startServer({ port, args: extra = [] } = {}) {
  assert.ok(existsSync(BIN), `no server binary at ${BIN}: build it, or set SWITCHBOARD_BIN (ctest does)`);
  port ??= await freePort();
  const args = ['--port', `127.0.0.1:${port}`, '--root', path.join(SRC, 'www'), ...extra];
  const proc = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  let output = '';
  const keep = (chunk) => { output = (output + chunk).slice(-65536); };
  proc.stdout.on('data', keep);
  proc.stderr.on('data', keep);
  let exit = null;
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => { exit = { code, signal }; running.delete(proc); resolve(exit); });
  });
  const spawnError = new Promise((resolve) => proc.on('error', resolve));

  const giveUpAt = Date.now() + 10_000 * SLOW;
  for (;;) {
    const failed = await Promise.race([spawnError, sleep(0).then(() => null)]);
    if (failed) throw new Error(`cannot run ${BIN}: ${failed.message}`);
    if (exit) throw new Error(`switchboard exited (code ${exit.code}, signal ${exit.signal}) before /healthz answered:\n${output}`);
    if (await healthz(port) === 200) break;
    if (Date.now() > giveUpAt) {
      proc.kill('SIGKILL');
      throw new Error(`switchboard on port ${port} did not answer /healthz with 200 in time:\n${output}`);
    }
    await sleep(50);
  }

  let killed = false;
  return {
    port,
    url: `http://127.0.0.1:${port}/`,
    output: () => output,
    /** SIGKILL, as a crash or the OOM killer would; resolves once the process is gone. */
    async kill() {
      killed = true;
      if (!exit) proc.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (killed) return;
      if (!exit) proc.kill('SIGTERM');
      const result = await Promise.race([exited, deadline(10_000 * SLOW)]);
      if (!result) {
        proc.kill('SIGKILL');
        assert.fail(`switchboard did not exit within ${10 * SLOW} s of SIGTERM:\n${output}`);
      }
      assert.equal(result.code, 0,
        `switchboard should exit 0 on SIGTERM, got code ${result.code} signal ${result.signal}:\n${output}`);
    },
  };
}
