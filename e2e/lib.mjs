// What the browser runs share (e2e/run.mjs: logins at the tenant; e2e/relay.mjs: logins
// through fleetgate's relay): Chromium, steps with a screenshot each, and how a person uses an
// instance's page. Started by scripts/e2e, which sets the environment read here.
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { promisify } from 'node:util';

import puppeteer from 'puppeteer-core';

export const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set (run scripts/e2e)`);
  return value;
};
export const FLEETGATE = env('FLEETGATE_URL');
export const EMULATOR = env('EMULATOR_URL');
export const OUT = env('OUT_DIR');
export const at = (host) => `http://${host}:${env('ROUTER_PORT')}`;

/** Debian's Chromium, headless, every *.localhost host on this machine. */
export async function launch() {
  await mkdir(OUT, { recursive: true });
  return puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-sync',
      '--disable-background-networking', '--disable-component-update', '--disable-dev-shm-usage',
      // Every instance host is this machine (Chromium resolves *.localhost so already; be sure
      // it is IPv4, where the router listens).
      '--host-resolver-rules=MAP *.localhost 127.0.0.1',
    ],
  });
}

/** Named steps, each with a screenshot of the page it set as its focus (else `page`). */
export class Steps {
  constructor(page) {
    this.page = page;
    this.focus = page;
    this.shot = 0;
    this.results = [];
  }

  /** The file for an extra screenshot taken within the current step. */
  extra(name) {
    return `${OUT}/${String(this.shot + 1).padStart(2, '0')}-${name}.png`;
  }

  async step(name, fn) {
    this.focus = this.page;
    const started = Date.now();
    try {
      await fn();
      this.results.push({ name, ok: true });
      console.log(`ok   ${name} (${Date.now() - started} ms)`);
    } catch (e) {
      this.results.push({ name, ok: false });
      console.log(`FAIL ${name}: ${e.message}`);
    }
    this.shot += 1;
    const file = `${OUT}/${String(this.shot).padStart(2, '0')}-${name}.png`;
    await this.focus.screenshot({ path: file, fullPage: true }).catch(() => {});
  }

  /** Prints the tally and ends the process: 1 if a step failed. */
  async finish(browser) {
    await browser.close();
    const passed = this.results.filter((r) => r.ok).length;
    const failed = this.results.length - passed;
    console.log(`${passed} passed, ${failed} failed (screenshots in ${OUT})`);
    process.exit(failed === 0 ? 0 : 1);
  }
}

export function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** Sends a signed deploy hook with `fleetgate hook send`; answers its output. */
export async function hook(event) {
  const { stdout } = await promisify(execFile)(env('FLEETGATE_BIN'), ['hook', 'send', '--url', FLEETGATE, JSON.stringify(event)], {
    env: { ...process.env },
  });
  check(stdout.startsWith('200'), `deploy hook answered ${stdout.slice(0, 200)}`);
  return stdout;
}

export async function admin(method, path, body) {
  const res = await fetch(`${FLEETGATE}${path}`, {
    method,
    headers: { authorization: `Bearer ${env('ADMIN_TOKEN')}`, 'content-type': 'application/json' },
    body: body && JSON.stringify(body),
  });
  check(res.status < 300, `${method} ${path} answered ${res.status}`);
  return res.status === 204 ? null : res.json();
}

export async function until(what, ms, probe) {
  const started = Date.now();
  for (;;) {
    if (await probe()) return Date.now() - started;
    if (Date.now() - started > ms) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export const text = (page, id) => page.$eval(`#${id}`, (el) => el.textContent.trim()).catch(() => '');
export const visible = (page, id) => page.$eval(`#${id}`, (el) => !el.hidden).catch(() => false);

/** The instance's page at `origin`, settled (logged in, or showing why not). */
export async function open(page, origin) {
  await page.goto(`${origin}/`, { waitUntil: 'networkidle0' });
  await page.waitForFunction(() => document.getElementById('status').textContent !== 'Loading…');
}

/**
 * Clicks "Log in" on a page and, if the emulator shows its login form (no session yet), logs
 * in as `email`; ends wherever the login took the browser.
 */
export async function clickLogIn(page, email) {
  await Promise.all([page.waitForNavigation({ waitUntil: 'networkidle0' }), page.click('#login')]);
  if (page.url().startsWith(`${EMULATOR}/authorize`) && (await page.$('input[name="username"]'))) {
    await page.type('input[name="username"]', email);
    await page.type('input[name="password"]', 'password');
    await Promise.all([page.waitForNavigation({ waitUntil: 'networkidle0' }), page.click('button[type="submit"]')]);
  }
}

/**
 * Clicks "Log in" on the instance's page; fills the emulator's login form if it is shown (no
 * session yet); waits to be back on the instance's page.
 */
export async function logIn(page, origin, email) {
  await open(page, origin);
  await clickLogIn(page, email);
  check(page.url().startsWith(origin), `the login ended at ${page.url()}, not at ${origin}`);
  await page.waitForFunction(() => document.getElementById('status').textContent !== 'Loading…');
}

/** Clicks "Call my API": the status and the body the instance's API answered. */
export async function callApi(page) {
  await page.$eval('#api', (el) => { el.textContent = ''; });
  await page.click('#call');
  await page.waitForFunction(() => document.getElementById('api').textContent !== '');
  const answer = await text(page, 'api');
  const status = Number(answer.split(' ')[0]);
  return { status, body: answer.slice(answer.indexOf(' ') + 1) };
}

/** Clicks "Renew my token" (a refresh-token exchange): what the page then shows. */
export async function renew(page) {
  await page.$eval('#api', (el) => { el.textContent = ''; });
  await page.click('#renew');
  await page.waitForFunction(() => document.getElementById('api').textContent !== '');
  return text(page, 'api');
}
