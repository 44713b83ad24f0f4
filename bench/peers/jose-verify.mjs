// jose-verify: the peer of bench/jwtbench.c. Verifies the tokens jwtbench wrote into DIR with npm `jose`
// (jwtVerify: signature, then the JWT claims, exp included), with the algorithm pinned as switchboard
// pins it, repeatedly: a warm-up, then up to --iterations times or --seconds. Prints one line per
// algorithm in jwtbench's format: "RESULT impl=jose alg=HS256 n=... us_per_verify=...".
//
// usage: node bench/peers/jose-verify.mjs DIR [--iterations N] [--seconds S]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { importSPKI, jwtVerify } from 'jose';

const dir = process.argv[2];
const opt = (name, def) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const iterations = opt('--iterations', 200000);
const seconds = opt('--seconds', 3);
const read = (name) => readFileSync(join(dir, name), 'utf8');
const NOW = 1700000000;

async function bench(alg, key, token) {
  const options = { algorithms: [alg], currentDate: new Date(NOW * 1000), clockTolerance: 5 };
  for (let i = 0; i < 100; i++) {
    const { payload } = await jwtVerify(token, key, options);
    if (payload.sub !== 'alice') throw new Error(`${alg}: unexpected sub`);
  }
  let n = 0;
  const start = process.hrtime.bigint();
  const limit = start + BigInt(Math.round(seconds * 1e9));
  while (n < iterations && (n % 64 !== 0 || process.hrtime.bigint() < limit)) {
    await jwtVerify(token, key, options);
    n++;
  }
  const us = Number(process.hrtime.bigint() - start) / 1e3 / n;
  console.log(`RESULT impl=jose alg=${alg} n=${n} us_per_verify=${us.toFixed(2)}`);
}

await bench('HS256', new TextEncoder().encode(read('hs256.secret')), read('hs256.jwt'));
await bench('RS256', await importSPKI(read('rs256.pem'), 'RS256'), read('rs256.jwt'));
await bench('ES256', await importSPKI(read('es256.pem'), 'ES256'), read('es256.jwt'));
