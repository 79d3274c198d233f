// Browser end-to-end through fleetgate's login relay (FLEETGATE_LOGIN_MODE=relay): the example
// instance's unmodified page (auth0-spa-js, configured from fleetgate's /config) logs in at
// the relay, which hands the login to the tenant and back; no allow-list holds any instance.
// Started by `scripts/e2e --relay`; screenshots to $OUT_DIR; exits 1 on a failure.
import { spawn } from 'node:child_process';

import {
  EMULATOR, FLEETGATE, Steps, at, callApi, check, env, hook, launch, logIn, open, renew, text, until, visible,
} from './lib.mjs';

const ALICE = env('ALICE_ID');
const ACME = at('acme.apps.localhost');
const GAMMA = at('gamma-shop.localhost');
const DENIED = 'You do not have access to this application';

/** An application's four lists, as the Management API answers them. */
async function lists(clientId) {
  const res = await fetch(`${EMULATOR}/api/v2/clients/${clientId}?fields=callbacks,allowed_logout_urls,web_origins,allowed_origins`, {
    headers: { authorization: `Bearer ${env('MGMT_TOKEN')}` },
  });
  return JSON.stringify(await res.json());
}

/** Starts the example app as instance `id` on `port`, with only what an instance is given. */
async function startInstance(id, key, port) {
  const child = spawn('node', ['server.js'], {
    cwd: 'examples/instance-app',
    env: { PATH: process.env.PATH, HOME: process.env.HOME || '/tmp', FLEETGATE_URL: FLEETGATE, FLEETGATE_INSTANCE_ID: id, FLEETGATE_INSTANCE_KEY: key, PORT: String(port) },
    stdio: 'ignore',
  });
  await until(`instance ${id} serving`, 20_000, async () => (await fetch(`http://127.0.0.1:${port}/config.json`).catch(() => null))?.ok);
  return child;
}

const browser = await launch();
const alice = await browser.createBrowserContext();
const page = await alice.newPage();
const run = new Steps(page);
let gamma;

await run.step('a-new-custom-domain-logs-in-the-moment-its-hook-answers', async () => {
  const before = [await lists(env('AUTH0_SPA_CLIENT_ID')), await lists(env('RELAY_CLIENT_ID'))];
  const answer = await hook({ type: 'instance.deployed', data: { instance_id: 'gamma', owner: ALICE, domains: ['gamma-shop.localhost'] } });
  const key = /"instance_key":\s*"([^"]+)"/.exec(answer)?.[1];
  check(key, `no instance key in ${answer.slice(0, 200)}`);
  gamma = await startInstance('gamma', key, Number(env('GAMMA_PORT')));
  const config = await (await fetch(`http://127.0.0.1:${env('GAMMA_PORT')}/config.json`)).json();
  check(config.domain === FLEETGATE && config.clientId === env('RELAY_CLIENT_ID'), `gamma logs in with ${JSON.stringify(config)}`);
  await logIn(page, GAMMA, 'alice@example.com');
  check((await text(page, 'status')) === 'Logged in as alice@example.com', await text(page, 'status'));
  const { status, body } = await callApi(page);
  check(status === 200 && JSON.parse(body).role === 'owner', `${status} ${body}`);
  const after = [await lists(env('AUTH0_SPA_CLIENT_ID')), await lists(env('RELAY_CLIENT_ID'))];
  check(after[0] === before[0] && after[1] === before[1], `an Auth0 list changed: ${before} → ${after}`);
  check(!after.join('').includes('gamma'), 'no list names gamma');
});

await run.step('a-refresh-and-a-reload-keep-it-logged-in-and-bound', async () => {
  const renewal = await renew(page);
  check(renewal === 'renewed', renewal);
  await open(page, GAMMA);
  check((await text(page, 'status')) === 'Logged in as alice@example.com', await text(page, 'status'));
  const { status, body } = await callApi(page);
  check(status === 200 && JSON.parse(body).role === 'owner', `${status} ${body}`);
});

await run.step('a-platform-subdomain-logs-in-through-the-relay-too', async () => {
  await logIn(page, ACME, 'alice@example.com');
  const { status, body } = await callApi(page);
  check(status === 200 && JSON.parse(body).role === 'owner', `${status} ${body}`);
});

await run.step('someone-without-access-is-refused-with-the-one-message', async () => {
  const bob = await browser.createBrowserContext();
  const p = await bob.newPage();
  run.focus = p;
  await logIn(p, GAMMA, 'bob@example.com');
  await p.waitForFunction(() => document.getElementById('error').textContent !== '');
  const error = await text(p, 'error');
  check(error.includes(DENIED), `the page shows: ${error}`);
  check(!(await visible(p, 'call')), 'not logged in');
  await p.screenshot({ path: run.extra('bob-refused') });
  await bob.close();
  run.focus = page;
});

await run.step('logout-returns-to-the-instance-page', async () => {
  await open(page, GAMMA);
  check(await visible(page, 'logout'), 'logged in at gamma');
  await Promise.all([page.waitForNavigation({ waitUntil: 'networkidle0' }), page.click('#logout')]);
  check(page.url() === `${GAMMA}/`, `the logout ended at ${page.url()}`);
  await page.waitForFunction(() => document.getElementById('status').textContent !== 'Loading…');
  check((await text(page, 'status')) === 'Not logged in', await text(page, 'status'));
  await Promise.all([page.waitForNavigation({ waitUntil: 'networkidle0' }), page.click('#login')]);
  check(Boolean(await page.$('input[name="username"]')), 'the tenant session ended: the login form again');
});

gamma?.kill();
await run.finish(browser);
