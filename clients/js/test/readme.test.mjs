// Every ```js block of README.md runs as written against the real server (a ```js fragment block is
// not a program, and is skipped), and prints what its comments say it prints.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';

import { startServer, SLOW } from './helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const readme = readFileSync(path.join(here, '..', 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1]);

let server;
before(async () => { server = await startServer(); });
after(async () => { await server.stop(); });

function run(code) {
  const file = path.join(here, `.readme-${process.pid}.mjs`); // inside the package: it imports itself by name
  writeFileSync(file, code);
  return new Promise((resolve) => {
    execFile(process.execPath, [file], {
      env: { ...process.env, SWITCHBOARD_URL: `ws://127.0.0.1:${server.port}/ws` },
      timeout: 20000 * SLOW,
    }, (err, stdout, stderr) => {
      rmSync(file, { force: true });
      resolve({ err, stdout, stderr });
    });
  });
}

test('README has runnable examples', () => assert.equal(blocks.length, 2));

test('the first example: a send, its ack, the message, an error code', async () => {
  const { err, stdout, stderr } = await run(blocks[0]);
  assert.equal(err, null, stderr);
  assert.match(stdout, /delivered to 1 connection\(s\)/);
  assert.match(stdout, /from: 'alice', to: 'bob', data: \{ text: 'hi bob' \}/);
  assert.match(stdout, /^not_found$/m);
});

test('the second example: rooms, everyone, users, states', async () => {
  const { err, stdout, stderr } = await run(blocks[1]);
  assert.equal(err, null, stderr);
  assert.match(stdout, /^state: connecting\nstate: connected$/m);
  assert.match(stdout, /^online: \[ 'carol' \]$/m);
  assert.match(stdout, /^state: closed$/m);
});
