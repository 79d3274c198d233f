// Browser end-to-end: a person's path through every part, in headless Chromium (Debian's,
// driven by puppeteer-core): an instance's page on its own host, the emulator's login page,
// the callback fleetgate listed, the post-login Action, the instance claim, the instance's API.
// Started by scripts/e2e, which brings up the stack and sets the environment read below.
// Screenshots of every step go to $OUT_DIR; prints "N passed, M failed"; exits 1 on a failure.
import { readFile } from 'node:fs/promises';

import {
  EMULATOR, FLEETGATE, OUT, Steps, admin, at, callApi, check, clickLogIn, env, hook, launch, logIn, open, renew,
  text, until, visible,
} from './lib.mjs';

/** The events the platform's receiver (fleetgate events listen) printed: [id, type, data]. */
async function eventsReceived() {
  const log = await readFile(env('EVENTS_LOG'), 'utf8');
  return log.split('\n').filter((l) => l.startsWith('msg_')).map((l) => {
    const [id, type, ...data] = l.split(' ');
    return { id, type, data: JSON.parse(data.join(' ')) };
  });
}

async function untilEvent(type, match) {
  let found;
  await until(`a ${type} event received`, 10_000, async () => {
    found = (await eventsReceived()).find((e) => e.type === type && match(e.data));
    return Boolean(found);
  });
  return found;
}

const ALICE = env('ALICE_ID');
const BOB = env('BOB_ID');
const ACME = at('acme.apps.localhost');
const BETA = at('beta-shop.localhost');
const BETA_NEW = at('beta-new.localhost');
/** How long the reconciler may take to put a change on the lists (a burst settles in ≤ 3 s). */
const RECONCILE_BOUND_MS = 15_000;

const browser = await launch();
const alice = await browser.createBrowserContext();
const page = await alice.newPage();
const run = new Steps(page);
const step = (name, fn) => run.step(name, fn);

await step('acme-owner-logs-in-and-calls-its-api', async () => {
  await logIn(page, ACME, 'alice@example.com');
  check((await text(page, 'status')) === 'Logged in as alice@example.com', await text(page, 'status'));
  const { status, body } = await callApi(page);
  check(status === 200 && JSON.parse(body).role === 'owner', `${status} ${body}`);
});

await step('beta-refuses-alice-at-its-callback', async () => {
  await logIn(page, BETA, 'alice@example.com');
  const error = await text(page, 'error');
  check(error.includes('You do not have access to this application'), `the page shows: ${error}`);
  check(!(await visible(page, 'call')), 'not logged in');
});

await step('granted-on-beta-alice-logs-in-as-member', async () => {
  await admin('POST', '/v1/instances/beta/grants', { user_id: ALICE, role: 'member' });
  await logIn(page, BETA, 'alice@example.com');
  const { status, body } = await callApi(page);
  check(status === 200 && JSON.parse(body).role === 'member', `${status} ${body}`);
});

await step('beta-api-refuses-an-acme-token', async () => {
  const acme = await alice.newPage();
  await open(acme, ACME);
  const token = await acme.evaluate(() => {
    for (const key of Object.keys(localStorage)) {
      const entry = JSON.parse(localStorage.getItem(key));
      if (entry && entry.body && entry.body.access_token) return entry.body.access_token;
    }
    return null;
  });
  await acme.close();
  check(token, 'no token kept by acme');
  const status = await page.evaluate(async (t) => (await fetch('/api/me', { headers: { authorization: `Bearer ${t}` } })).status, token);
  check(status === 403, `beta's API answered ${status}`);
});

await step('beta-moves-to-a-new-domain-the-old-one-is-refused', async () => {
  await hook({ type: 'instance.deployed', data: { instance_id: 'beta', owner: BOB, domains: ['beta-new.localhost'] } });
  const probe = await browser.createBrowserContext();
  const fresh = await probe.newPage();
  const took = await until('the old domain refused', RECONCILE_BOUND_MS, async () => {
    await open(fresh, BETA);
    await Promise.all([fresh.waitForNavigation({ waitUntil: 'networkidle0' }), fresh.click('#login')]);
    return (await fresh.content()).includes('Callback URL mismatch');
  });
  await fresh.screenshot({ path: run.extra('old-domain-refused') });
  await probe.close();
  console.log(`     the old domain was refused ${took} ms after the redeploy`);
  await until('the new domain listed', RECONCILE_BOUND_MS, async () => {
    const sync = await admin('GET', '/v1/instances/beta/sync');
    return JSON.stringify(sync).includes('beta-new.localhost') && !JSON.stringify(sync).includes('pending');
  });
  await logIn(page, BETA_NEW, 'alice@example.com');
  const { status, body } = await callApi(page);
  check(status === 200 && JSON.parse(body).role === 'member', `${status} ${body}`);
});

await step('revoked-beta-refuses-at-once-and-the-refresh-is-denied', async () => {
  const { grants } = await admin('GET', '/v1/instances/beta/grants');
  const grant = grants.find((g) => g.user_id === ALICE);
  await admin('DELETE', `/v1/instances/beta/grants/${grant.id}`);
  const took = await until('the API refusing', 5000, async () => (await callApi(page)).status === 403);
  console.log(`     beta's API refused ${took} ms after the grant was removed`);
  const renewal = await renew(page);
  check(renewal.startsWith('renewal refused') && renewal.includes('access_denied'), renewal);
});

await step('acme-suspended-refuses-logins-and-resumed-lets-them-in', async () => {
  await hook({ type: 'instance.suspended', data: { instance_id: 'acme' } });
  const other = await browser.createBrowserContext();
  const fresh = await other.newPage();
  run.focus = fresh;
  // Refused by the Action (the instance is suspended) or, once the reconciler has taken the
  // suspended instance's URLs off the lists, by the login page itself.
  await open(fresh, ACME);
  await clickLogIn(fresh, 'alice@example.com');
  const shown = fresh.url().startsWith(ACME)
    ? (await fresh.waitForFunction(() => document.getElementById('error').textContent !== ''), await text(fresh, 'error'))
    : await fresh.content();
  await fresh.screenshot({ path: run.extra('acme-suspended') });
  check(shown.includes('You do not have access') || shown.includes('Callback URL mismatch'), `the suspended instance's login shows: ${shown.slice(0, 300)}`);
  if (fresh.url().startsWith(ACME)) check(await visible(fresh, 'another'), 'a refused login offers another account');
  await hook({ type: 'instance.resumed', data: { instance_id: 'acme' } });
  const took = await until('a login at the resumed instance', RECONCILE_BOUND_MS, async () => {
    await logIn(fresh, ACME, 'alice@example.com').catch(() => {});
    return fresh.url().startsWith(ACME) && (await visible(fresh, 'call'));
  });
  console.log(`     logins worked again ${took} ms after the resume`);
  const { status, body } = await callApi(fresh);
  check(status === 200 && JSON.parse(body).role === 'owner', `${status} ${body}`);
  await fresh.screenshot({ path: run.extra('acme-resumed') });
  run.focus = page;
  await other.close();
});

await step('logout-returns-to-the-instance-page', async () => {
  await open(page, ACME);
  check(await visible(page, 'logout'), 'logged in at acme');
  await Promise.all([page.waitForNavigation({ waitUntil: 'networkidle0' }), page.click('#logout')]);
  check(page.url() === `${ACME}/`, `the logout ended at ${page.url()}`);
  await page.waitForFunction(() => document.getElementById('status').textContent !== 'Loading…');
  check((await text(page, 'status')) === 'Not logged in', await text(page, 'status'));
  // The emulator's session ended too: the next login shows the form again.
  await Promise.all([page.waitForNavigation({ waitUntil: 'networkidle0' }), page.click('#login')]);
  check(Boolean(await page.$('input[name="username"]')), 'the login form is shown again');
});

/** Logs in to the status page (the form if no session), back at /ui/. */
async function logInToStatusPage(p, email) {
  await p.goto(`${FLEETGATE}/ui/`, { waitUntil: 'networkidle0' });
  await p.waitForSelector('#login:not([hidden])');
  await clickLogIn(p, email);
  check(p.url().startsWith(`${FLEETGATE}/ui/`), `the login ended at ${p.url()}`);
}

await step('an-operator-sees-the-status-page', async () => {
  const ops = await browser.createBrowserContext();
  const p = await ops.newPage();
  await p.setViewport({ width: 1280, height: 900 });
  run.focus = p;
  await logInToStatusPage(p, 'ops@example.com');
  await p.waitForSelector('#status:not([hidden])', { timeout: 15000 });
  let shown = await p.$eval('#status', (el) => el.innerText);
  check(shown.includes('Reconciling: fleetgate@'), `no leader shown: ${shown.slice(0, 300)}`);
  check((await p.$$eval('#applications tbody tr', (trs) => trs.length)) >= 1, 'no application shown');
  check((await p.$$eval('#runs tbody tr', (trs) => trs.length)) >= 1, 'no pass shown');
  check(shown.includes('instance.deployed'), 'the audit tail shows the deploys');
  // Something to see: a person's entry on the callbacks (drift), then an instance whose pass
  // fails (the Management API answering 500s; the page, logged in, keeps its token).
  const spa = env('AUTH0_SPA_CLIENT_ID');
  const mgmt = (method, body) => fetch(`${EMULATOR}/api/v2/clients/${spa}`, {
    method,
    headers: { authorization: `Bearer ${env('MGMT_TOKEN')}`, 'content-type': 'application/json' },
    body: body && JSON.stringify(body),
  }).then((r) => r.json());
  const { callbacks } = await mgmt('GET');
  await mgmt('PATCH', { callbacks: [...callbacks, 'https://support.example.com/callback'] });
  await admin('POST', '/v1/reconcile');
  const faults = (body) => fetch(`${EMULATOR}/emulator/faults`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  await faults({ error_rate: 1 });
  try {
    await hook({ type: 'instance.deployed', data: { instance_id: 'gamma', owner: BOB, domains: ['www.gamma-shop.com'] } });
    await until('the page showing the drift and the failing instance', 30_000, async () => {
      shown = await p.$eval('#status', (el) => el.innerText);
      return shown.includes('https://support.example.com/callback') && /gamma \(active\): failed/.test(shown);
    });
    await p.screenshot({ path: `${OUT}/status-page.png`, fullPage: true });
  } finally {
    await faults({});
  }
});

/** The access page's row of `who` in the people table ('' when not there). */
const personRow = (p, who) => p.$$eval('#people-table tbody tr', (trs, w) => {
  const tr = trs.find((t) => t.cells[0].textContent.includes(w));
  return tr ? `${tr.cells[0].textContent} | ${tr.cells[1].querySelector('select')?.value || tr.cells[1].textContent}` : '';
}, who);

await step('an-owner-invites-changes-and-removes-people-on-the-access-page', async () => {
  // alice (her tenant session from the steps above) opens the access page from acme's page.
  const p = await alice.newPage();
  await p.setViewport({ width: 400, height: 900 });
  run.focus = p;
  p.on('dialog', (d) => d.accept());
  await open(p, ACME);
  const link = await p.$eval('#access-page', (a) => a.href);
  check(link === `${FLEETGATE}/ui/#instance=acme`, `acme's page links to ${link}`);
  await p.goto(link, { waitUntil: 'networkidle0' });
  await p.waitForSelector('#login:not([hidden])');
  await clickLogIn(p, 'alice@example.com');
  await p.waitForSelector('#people:not([hidden])', { timeout: 15000 });
  check((await text(p, 'people-title')) === 'People of acme', await text(p, 'people-title'));
  check(await p.$eval('#status', (el) => el.hidden), 'the fleet status is for operators only');
  const mine = await p.$eval('#mine', (el) => el.innerText);
  check(/acme[\s\S]*owner/.test(mine) && mine.includes('live'), `her instances: ${mine}`);
  check((await personRow(p, ALICE)).endsWith('owner'), 'alice is shown as the owner');

  // Invite bob by email as a member, with the keyboard.
  await p.select('#invite-role', 'member');
  await p.focus('#invite-email');
  await p.keyboard.type('bob@example.com');
  await p.keyboard.press('Enter');
  await until('bob invited', 10_000, async () => (await personRow(p, 'bob@example.com')).includes('member'));
  const invited = await untilEvent('grant.invited', (d) => d.email === 'bob@example.com');
  check(invited.data.instance_id === 'acme' && invited.data.hosts.includes('acme.apps.localhost') && invited.data.by === `owner:${ALICE}`,
    `the platform heard: ${JSON.stringify(invited.data)}`);
  await p.screenshot({ path: run.extra('access-page-invited'), fullPage: true });

  // bob logs in at acme with the invited email: let in, as a member.
  const bobs = await browser.createBrowserContext();
  const bobPage = await bobs.newPage();
  await logIn(bobPage, ACME, 'bob@example.com');
  let answer = await callApi(bobPage);
  check(answer.status === 200 && JSON.parse(answer.body).role === 'member', `${answer.status} ${answer.body}`);
  await untilEvent('invitation.accepted', (d) => d.user_id === BOB);

  // alice makes him an admin: he can invite people too.
  await p.click('button[aria-label="People of acme"]');
  await until('bob shown by his user id', 10_000, async () => (await personRow(p, BOB)).includes('member'));
  await p.select(`select[aria-label^="Role of bob@example.com"]`, 'admin');
  await until('bob made an admin', 10_000, async () => (await personRow(p, BOB)).endsWith('admin'));
  await untilEvent('grant.role_changed', (d) => d.user_id === BOB && d.role === 'admin');
  const bobUi = await bobs.newPage();
  await bobUi.goto(`${FLEETGATE}/ui/`, { waitUntil: 'networkidle0' });
  await bobUi.waitForSelector('#login:not([hidden])');
  await clickLogIn(bobUi, 'bob@example.com');
  await bobUi.waitForSelector('button[aria-label="People of acme"]', { timeout: 15000 });
  await bobUi.click('button[aria-label="People of acme"]');
  await bobUi.waitForFunction(() => document.getElementById('people-note').textContent.includes('administer'));
  await bobUi.type('#invite-email', 'dan@example.com');
  await bobUi.click('#invite-form button[type="submit"]');
  await until('dan invited by bob', 10_000, async () => (await personRow(bobUi, 'dan@example.com')) !== '');
  await untilEvent('grant.invited', (d) => d.email === 'dan@example.com' && d.by === `instance-admin:${BOB}`);
  // An error is shown as fleetgate states it (inviting dan twice).
  await bobUi.type('#invite-email', 'dan@example.com');
  await bobUi.click('#invite-form button[type="submit"]');
  await bobUi.waitForFunction(() => document.getElementById('people-error').textContent !== '');
  check((await text(bobUi, 'people-error')).includes('already invited'), await text(bobUi, 'people-error'));
  await bobUi.close();

  // alice removes him (confirmed); his next call at acme is refused within one long-poll.
  await p.click('button[aria-label="People of acme"]');
  await until('bob listed', 10_000, async () => (await personRow(p, BOB)) !== '');
  await p.click(`button[aria-label^="Remove bob@example.com"]`);
  await until('bob removed', 10_000, async () => (await personRow(p, BOB)) === '');
  await untilEvent('grant.removed', (d) => d.user_id === BOB);
  // (A page in the background is frozen by the browser: bring bob's to the front.)
  await bobPage.bringToFront();
  await until('bob refused at acme', 35_000, async () => (await callApi(bobPage)).status === 403);
  await p.bringToFront();
  await p.screenshot({ path: run.extra('access-page'), fullPage: true });
  await bobs.close();
});

await step('carol-invited-logs-in-with-the-social-connection', async () => {
  await admin('POST', '/v1/instances/acme/grants', { email: 'carol@example.com', role: 'member' });
  const ctx = await browser.createBrowserContext();
  const p = await ctx.newPage();
  run.focus = p;
  await open(p, ACME);
  await Promise.all([p.waitForNavigation({ waitUntil: 'networkidle0' }), p.click('#login')]);
  // On the tenant's login form she picks the social connection, whose (stand-in) page asks.
  await Promise.all([p.waitForNavigation({ waitUntil: 'networkidle0' }), p.click('#social')]);
  check((await p.content()).includes('Continue with Google (emulated)'), `the provider's page: ${p.url()}`);
  await p.type('input[name="email"]', 'carol@example.com');
  await p.type('input[name="name"]', 'Carol');
  await Promise.all([p.waitForNavigation({ waitUntil: 'networkidle0' }), p.click('button[type="submit"]')]);
  check(p.url().startsWith(ACME), `the login ended at ${p.url()}`);
  await p.waitForFunction(() => document.getElementById('status').textContent !== 'Loading…');
  const { status, body } = await callApi(p);
  check(status === 200 && JSON.parse(body).role === 'member', `${status} ${body}`);
  const { grants } = await admin('GET', '/v1/instances/acme/grants');
  const carol = grants.find((g) => g.email === 'carol@example.com');
  check(carol && carol.user_id.startsWith('google-oauth2|'), `her grant: ${JSON.stringify(carol)}`);
  await untilEvent('invitation.accepted', (d) => d.user_id === carol.user_id);
  await ctx.close();
});

await step('a-person-without-fleet-admin-sees-their-instances-not-the-status', async () => {
  const other = await browser.createBrowserContext();
  const p = await other.newPage();
  run.focus = p;
  // A link made elsewhere cannot put words on the page (no login of this page to answer).
  await p.goto(`${FLEETGATE}/ui/?error=access_denied&error_description=Your%20account%20is%20locked.%20Call%20us`, { waitUntil: 'networkidle0' });
  await p.waitForSelector('#login:not([hidden])');
  check((await text(p, 'refusal')) === '', `a stranger's words shown: ${await text(p, 'refusal')}`);
  check(p.url() === `${FLEETGATE}/ui/`, `the parameters stay: ${p.url()}`);
  const intro = await p.$eval('#intro', (el) => (el.hidden ? '' : el.innerText));
  check(intro.includes('operators') && intro.includes('fleet:admin'), `before login the page says what it is: ${intro}`);
  await logInToStatusPage(p, 'bob@example.com');
  await p.waitForSelector('#access:not([hidden])', { timeout: 15000 });
  const mine = await p.$eval('#mine', (el) => el.innerText);
  check(mine.includes('beta') && mine.includes('owner'), `bob's instances: ${mine}`);
  check(await p.$eval('#status', (el) => el.hidden), 'no fleet status');
  check((await text(p, 'refusal')) === '', `nothing refused: ${await text(p, 'refusal')}`);
  // "Use another account" ends the tenant's session and asks who.
  await Promise.all([p.waitForNavigation({ waitUntil: 'networkidle0' }), p.click('#another')]);
  await p.waitForSelector('input[name="username"]', { timeout: 15000 });
  check(p.url().includes('prompt=login'), `the login form, asked for: ${p.url()}`);
  await p.type('input[name="username"]', 'ops@example.com');
  await p.type('input[name="password"]', 'password');
  await Promise.all([p.waitForNavigation({ waitUntil: 'networkidle0' }), p.click('button[type="submit"]')]);
  await p.waitForSelector('#status:not([hidden])', { timeout: 15000 });
  check((await text(p, 'who')) === 'ops@example.com', await text(p, 'who'));
  check(!(await p.$eval('#open-form', (el) => el.hidden)), 'operators may open any instance');
});

await run.finish(browser);
