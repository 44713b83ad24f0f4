// token.test.mjs: the demo page on a server that wants tokens (--jwt-secret), end to end. Tokens are
// minted here with the npm `jose` library, an implementation independent of the server's. Covers: the
// page asks for a token instead of a name (it learns the mode from GET /auth), two people paste their
// tokens and chat, a token signed with the wrong secret is refused with the server's reason on the
// page, and a token that expires closes the connection with 4401, which the page explains.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { startServer } from './server.mjs';
import {
  TIMEOUT, assertClean, launchBrowser, openPage, pickUser, say, until, waitForEntry, waitForStatus, waitForUsers,
} from './browser.mjs';

const SECRET = 'e2e-secret-' + 'q'.repeat(32);

function mint(sub, { secret = SECRET, expiresIn = '5m' } = {}) {
  return new SignJWT({}).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject(sub).setIssuedAt()
    .setExpirationTime(expiresIn).sign(new TextEncoder().encode(secret));
}

/** Pastes a token, presses Connect. */
async function connectWithToken(page, token) {
  await page.getByLabel('Your token', { exact: true }).fill(token);
  await page.getByRole('button', { name: 'Connect', exact: true }).click();
}

async function connectedAs(page, name) {
  await waitForStatus(page, 'OPEN');
  await until(page, (n) => document.querySelector('#whoami [data-testid=me]')?.textContent === n, name, `"You are ${name}"`);
}

const nameError = (page) => page.locator('[data-testid=name-error]').textContent();

describe('demo page on a server that wants tokens', () => {
  let server;
  let browser;
  const pages = [];

  before(async () => {
    server = await startServer({ args: ['--jwt-secret', SECRET] });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('asks for a token, not a name', async () => {
    const page = await openPage(browser, server.url, { label: 'probe' });
    pages.push(page);
    assert.equal(await page.getByLabel('Your token', { exact: true }).isVisible(), true);
    assert.equal(await page.getByLabel('Your name', { exact: true }).isVisible(), false);
    await page.context().close();
  });

  it('alice and bob paste their tokens and chat', async () => {
    const alice = await openPage(browser, server.url, { label: 'alice' });
    const bob = await openPage(browser, server.url, { label: 'bob' });
    pages.push(alice, bob);
    await connectWithToken(alice, await mint('alice'));
    await connectedAs(alice, 'alice');
    await connectWithToken(bob, await mint('bob'));
    await connectedAs(bob, 'bob');
    for (const page of [alice, bob]) await waitForUsers(page, ['alice', 'bob']);
    await pickUser(alice, 'bob');
    await say(alice, 'hello bob, signed and sealed');
    await waitForEntry(bob, { kind: 'in', from: 'alice', to: 'you', text: 'hello bob, signed and sealed' });
    await pickUser(bob, 'alice');
    await say(bob, 'hi alice');
    await waitForEntry(alice, { kind: 'in', from: 'bob', to: 'you', text: 'hi alice' });
  });

  it('a token signed with another secret is refused, and the page says why', async () => {
    const mallory = await openPage(browser, server.url, { label: 'mallory' });
    pages.push(mallory);
    await connectWithToken(mallory, await mint('alice', { secret: 'not-the-secret-' + 'x'.repeat(32) }));
    await until(mallory, () => /Token refused: token signature is invalid/.test(
      document.querySelector('[data-testid=name-error]')?.textContent ?? ''), null, 'the refusal reason');
    await waitForStatus(mallory, 'CLOSED');
    assert.equal(await mallory.locator('#whoami').textContent(), '');
    assert.match(await nameError(mallory), /signature/);
  });

  it('a token that expires closes the connection with 4401, and the page says so', async () => {
    const dave = await openPage(browser, server.url, { label: 'dave' });
    pages.push(dave);
    await connectWithToken(dave, await mint('dave', { expiresIn: '1s' }));
    await connectedAs(dave, 'dave');
    // exp + 5 s leeway, checked once a second: a bounded wait well past it
    await dave.waitForFunction(() => /4401, token expired/.test(document.querySelector('[data-testid=name-error]')?.textContent ?? ''),
      null, { timeout: TIMEOUT + 15_000 });
    await waitForStatus(dave, 'CLOSED');
    const log = await dave.locator('#log').textContent();
    assert.match(log, /Disconnected \(4401, token expired\)/);
  });

  it('logged no console errors or warnings and opened no dialogs', () => {
    assertClean(pages.filter((p) => p.label !== 'probe'));
  });
});
