// env.mjs: where the repository is, for tests/e2e/server.mjs (which reads SWITCHBOARD_SRC when it
// loads): ctest sets it; `npm test` in clients/js does not, and runs from here.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

process.env.SWITCHBOARD_SRC ??= path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
