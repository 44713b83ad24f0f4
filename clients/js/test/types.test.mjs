// index.d.ts compiles under tsc --strict, and describes the API as test/types-check.ts uses it
// (including two uses it must refuse). typescript comes from the repository's dev dependencies.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const here = path.dirname(fileURLToPath(import.meta.url));

test('the declarations type-check the README\'s uses', async () => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const args = [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext',
    '--target', 'es2022', '--lib', 'es2022,dom', path.join(here, 'types-check.ts')];
  const { code, out } = await new Promise((resolve) => {
    execFile(process.execPath, args, { timeout: 120000 }, (err, stdout, stderr) =>
      resolve({ code: err ? err.code : 0, out: stdout + stderr }));
  });
  assert.equal(code, 0, out);
});
