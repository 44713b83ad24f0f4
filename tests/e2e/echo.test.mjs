// echo.test.mjs: the page's echo mode, end to end: a second WebSocket with the echo-protocol subprotocol
// whose messages come back unchanged (docs/PROTOCOL.md, "Connecting"), shown as text, independent of
// the chat connection and invisible to other users. Also: no console errors.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startServer } from './server.mjs';
import { assertClean, connectAs, launchBrowser, openPage, until, waitForUsers } from './browser.mjs';

const XSS = '<img src=x onerror=alert(1)>';

function waitForEcho(page, text) {
  return until(page, (t) => [...document.querySelectorAll('#echo-log > li[data-kind=back] [data-testid=text]')]
    .some((el) => el.textContent === t), text, `"${text}" to come back on the echo socket`);
}

function waitForEchoState(page, state) {
  return until(page, (s) => document.getElementById('echo-status').textContent === s, state, `echo socket ${state}`);
}

describe('echo mode', () => {
  let server;
  let browser;
  let page;
  let other;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    page = await openPage(browser, server.url, { label: 'echo page' });
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('opens a second socket with the echo-protocol subprotocol, without connecting to the chat', async () => {
    assert.equal(await page.locator('#echo-status').textContent(), 'CLOSED');
    await page.getByRole('button', { name: 'Start echo', exact: true }).click();
    await waitForEchoState(page, 'OPEN');
    assert.equal(await page.locator('#echo-detail').textContent(), 'subprotocol: echo-protocol');
    assert.equal(await page.locator('#status').textContent(), 'CLOSED', 'the chat connection is a different socket');
  });

  it('returns what was sent, shown as text', async () => {
    const box = page.getByLabel('Echo text', { exact: true });
    await box.fill('hello, echo');
    await box.press('Enter');
    await waitForEcho(page, 'hello, echo');
    await box.fill(XSS);
    await page.getByRole('button', { name: 'Echo', exact: true }).click();
    await waitForEcho(page, XSS);
    assert.equal(await page.locator('#echo-log img').count(), 0, 'echoed text became HTML');
    assert.deepEqual(page.dialogs, []);
    const sent = await page.locator('#echo-log > li[data-kind=sent] [data-testid=text]').allTextContents();
    assert.deepEqual(sent, ['hello, echo', XSS]);
  });

  it('is not a chat user: others do not see it online', async () => {
    await connectAs(page, 'alice');
    other = await openPage(browser, server.url, { label: 'bob' });
    await connectAs(other, 'bob');
    // bob's welcome lists everyone the server knows: an echo socket must not be among them.
    await waitForUsers(other, ['alice', 'bob']);
    await waitForUsers(page, ['alice', 'bob']);
    assert.equal(await page.locator('#echo-status').textContent(), 'OPEN');
  });

  it('stops when asked', async () => {
    await page.getByRole('button', { name: 'Stop echo', exact: true }).click();
    await waitForEchoState(page, 'CLOSED');
    assert.equal(await page.getByLabel('Echo text', { exact: true }).isDisabled(), true);
    assert.equal(await page.locator('#status').textContent(), 'OPEN', 'the chat connection stays open');
  });

  it('logged no console errors or warnings', () => {
    assertClean([page, other].filter(Boolean));
  });
});
