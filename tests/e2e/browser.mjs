// browser.mjs: Debian's headless Chromium driven by playwright-core, plus the page actions the tests
// share. Every page records its problems (console errors and warnings, uncaught exceptions, dialogs,
// HTTP responses >= 400) so a test can assert at the end that there were none. Actions go through
// what a person sees: labels, button names and the visible status; every wait is bounded.
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { SLOW } from './server.mjs';

/** Bound for any single wait. */
export const TIMEOUT = 10_000 * SLOW;

export function launchBrowser() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--disable-quic', '--no-first-run'],
    timeout: 30_000 * SLOW,
  });
}

/**
 * A fresh page (own browser context, so own storage) on the demo, loaded and ready.
 * page.problems: what went wrong in it; page.dialogs: alert/confirm/prompt dialogs it opened.
 * page.tolerate: regexps of console messages that are expected at that moment (see reconnect test).
 */
export async function openPage(browser, url, { width = 1100, height = 700, label = 'page' } = {}) {
  const context = await browser.newContext({ viewport: { width, height } });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.label = label;
  page.problems = [];
  page.dialogs = [];
  page.tolerate = [];
  page.tolerated = [];
  page.on('console', (msg) => {
    if (msg.type() !== 'error' && msg.type() !== 'warning') return;
    const text = `console.${msg.type()}: ${msg.text()}`;
    if (page.tolerate.some((re) => re.test(msg.text()))) page.tolerated.push(text);
    else page.problems.push(text);
  });
  page.on('pageerror', (err) => page.problems.push(`uncaught: ${err.message}`));
  page.on('dialog', (dialog) => {
    page.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  page.on('response', (res) => { if (res.status() >= 400) page.problems.push(`HTTP ${res.status()} ${res.url()}`); });
  page.on('requestfailed', (req) => page.problems.push(`request failed: ${req.url()} ${req.failure()?.errorText}`));
  // Records every text the status line and its detail show, so a test can tell that a state was on
  // screen even if it lasted a moment (the page stays untouched: this only observes).
  await page.addInitScript(() => {
    window.__statusHistory = [];
    window.__detailHistory = [];
    document.addEventListener('DOMContentLoaded', () => {
      const watch = (el, list) => {
        list.push(el.textContent);
        new MutationObserver((records) => {
          for (const record of records) for (const node of record.addedNodes) list.push(node.textContent);
        }).observe(el, { childList: true });
      };
      watch(document.getElementById('status'), window.__statusHistory);
      watch(document.getElementById('status-detail'), window.__detailHistory);
    });
  });
  await page.goto(url);
  await page.waitForFunction(() => document.documentElement.dataset.ready === 'true', null, { timeout: TIMEOUT });
  return page;
}

/** Asserts no page logged an error or warning, threw, failed a request or opened a dialog. */
export function assertClean(pages) {
  for (const page of pages) {
    assert.deepEqual(page.problems, [], `${page.label}: console errors/warnings or failed requests`);
    assert.deepEqual(page.dialogs, [], `${page.label}: dialogs opened`);
  }
}

/** Waits, bounded, until fn(arg) is truthy in the page; returns its value. */
export async function until(page, fn, arg, what = 'condition') {
  try {
    const handle = await page.waitForFunction(fn, arg, { timeout: TIMEOUT, polling: 50 });
    return await handle.jsonValue();
  } catch (err) {
    throw new Error(`${page.label}: timed out waiting for ${what}\n${err.message.split('\n')[0]}`);
  }
}

// ---- what the page shows ----------------------------------------------------------------------

/** Every text the status line showed, oldest first, and the same for the detail beside it. */
export const statusHistory = (page) => page.evaluate(() => window.__statusHistory);
export const detailHistory = (page) => page.evaluate(() => window.__detailHistory);

export function waitForStatus(page, state) {
  return until(page, (s) => document.getElementById('status')?.textContent === s, state, `status ${state}`);
}

export function onlineUsers(page) {
  return page.$$eval('#users [data-user]', (items) => items.map((li) => li.dataset.user));
}

export function waitForUsers(page, users) {
  return until(page, (want) => JSON.stringify([...document.querySelectorAll('#users [data-user]')]
    .map((li) => li.dataset.user)) === JSON.stringify(want), users, `online users ${users.join(', ')}`);
}

/** The message log as plain objects. */
export function logEntries(page) {
  return page.$$eval('#log > li', (items) => items.map((li) => ({
    kind: li.dataset.kind,
    from: li.querySelector('[data-testid=from]')?.textContent,
    to: li.querySelector('[data-testid=to]')?.textContent,
    text: li.querySelector('[data-testid=text]')?.textContent ?? li.textContent,
    delivery: li.querySelector('[data-testid=delivery]')?.dataset.state,
    delivered: li.querySelector('[data-testid=delivery]')?.dataset.delivered,
    code: li.querySelector('[data-testid=error-code]')?.textContent,
    all: li.textContent,
  })));
}

/** Waits for a log entry whose given fields (see logEntries) all match exactly. */
export async function waitForEntry(page, want) {
  await until(page, (w) => [...document.querySelectorAll('#log > li')].some((li) => {
    const got = {
      kind: li.dataset.kind,
      from: li.querySelector('[data-testid=from]')?.textContent,
      to: li.querySelector('[data-testid=to]')?.textContent,
      text: li.querySelector('[data-testid=text]')?.textContent,
      delivery: li.querySelector('[data-testid=delivery]')?.dataset.state,
      delivered: li.querySelector('[data-testid=delivery]')?.dataset.delivered,
      code: li.querySelector('[data-testid=error-code]')?.textContent,
    };
    return Object.entries(w).every(([k, v]) => got[k] === v);
  }), want, `log entry ${JSON.stringify(want)}`);
}

/** Waits for a grey system line whose text matches `re`. */
export function waitForSystem(page, re) {
  return until(page, (src) => [...document.querySelectorAll('#log > li[data-kind=system]')]
    .some((li) => new RegExp(src).test(li.textContent)), re.source, `system line /${re.source}/`);
}

// ---- what a person does -----------------------------------------------------------------------

/** Types a name, presses Connect, waits for OPEN and for the page to say who we are. */
export async function connectAs(page, name) {
  await page.getByLabel('Your name', { exact: true }).fill(name);
  await page.getByRole('button', { name: 'Connect', exact: true }).click();
  await waitForStatus(page, 'OPEN');
  await until(page, (n) => document.querySelector('#whoami [data-testid=me]')?.textContent === n, name, `"You are ${name}"`);
}

/** Clicks a name in the online list. */
export async function pickUser(page, name) {
  await page.getByRole('button', { name: `Message ${name}`, exact: true }).click();
  assert.equal(await page.getByLabel('To', { exact: true }).inputValue(), `user:${name}`);
}

/** Chooses a target in the "To" list by its visible label, e.g. "Everyone (broadcast)" or "#lobby". */
export async function chooseTarget(page, label) {
  await page.getByLabel('To', { exact: true }).selectOption({ label });
}

/** Types a message and presses Enter; waits until the page shows it as ours. */
export async function say(page, text) {
  const box = page.getByLabel('Message', { exact: true });
  await box.fill(text);
  await box.press('Enter');
  await until(page, (t) => [...document.querySelectorAll('#log > li[data-kind=own] [data-testid=text]')]
    .some((el) => el.textContent === t), text, `own message "${text}" in the log`);
}

/** Joins a room through the Rooms form and waits for it to be listed. */
export async function joinRoom(page, room) {
  await page.getByLabel('Room name', { exact: true }).fill(room);
  await page.getByRole('button', { name: 'Join', exact: true }).click();
  await until(page, (r) => Boolean(document.querySelector(`#rooms [data-room="${r}"]`)), room, `room ${room} listed`);
}
