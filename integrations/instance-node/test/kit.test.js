// The kit against a real fleetgate and the Auth0 emulator. Run by `cargo test`
// (tests/api/kit.rs), which seeds instances `acme` (owner auth0|owner-1) and `beta`, starts a
// fleetgate for its own writes (ADMIN_URL, ADMIN_TOKEN) and sets the environment a fleetgate
// process needs; this test starts the fleetgate the kit follows (FLEETGATE_BIN) and restarts it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';

import { createInstance } from '../src/index.js';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set (run through cargo test)`);
  return value;
};
const EMULATOR = env('EMULATOR_URL');
const ADMIN_URL = env('ADMIN_URL');
const NS = 'https://fleetgate.dev/';

async function freePort() {
  const server = net.createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

/** The fleetgate the kit follows, as its own process, restartable on the same port. */
const followed = {
  port: await freePort(),
  child: null,
  get url() { return `http://127.0.0.1:${this.port}`; },
  async start() {
    this.child = spawn(env('FLEETGATE_BIN'), ['serve', '--no-migrate'], {
      env: { ...process.env, FLEETGATE_LISTEN: `127.0.0.1:${this.port}`, RUST_LOG: 'warn' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    for (let i = 0; i < 200; i += 1) {
      try {
        if ((await fetch(`${this.url}/readyz`)).ok) return;
      } catch { /* not yet */ }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('fleetgate did not start');
  },
  async stop() {
    const child = this.child;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  },
};
await followed.start();
after(() => followed.child && followed.child.kill('SIGKILL'));

async function token(sub, { instance, audience = env('INSTANCE_AUDIENCE') } = {}) {
  const claims = instance === undefined ? {} : { [`${NS}instance`]: instance };
  const res = await fetch(`${EMULATOR}/emulator/users/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sub, audience, scope: 'openid', claims }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()).access_token;
}

async function admin(method, path, body) {
  const res = await fetch(`${ADMIN_URL}${path}`, {
    method,
    headers: { authorization: `Bearer ${env('ADMIN_TOKEN')}`, 'content-type': 'application/json' },
    body: body && JSON.stringify(body),
  });
  return { status: res.status, body: res.status === 204 ? null : await res.json() };
}

const asked = (t) => ({ headers: { authorization: `Bearer ${t}` } });

/** Resolves when `check()` holds, polling every 20 ms; fails after `ms`. */
async function until(check, ms, what) {
  const started = Date.now();
  while (!check()) {
    assert.ok(Date.now() - started < ms, `${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - started;
}

const changes = [];
// This process's environment is the spawned fleetgate's (its AUTH0_AUDIENCE is fleetgate's
// own): the kit is configured by options and fleetgate's /config only.
const fleet = await createInstance({
  env: {},
  fleetgateUrl: followed.url,
  instanceId: 'acme',
  instanceKey: env('ACME_KEY'),
  onChange: (snapshot, delta) => changes.push({ revision: snapshot.revision, delta }),
  onError: () => {},
  waitSeconds: 20,
});
after(() => fleet.close());

test('the configuration comes from fleetgate: the instances audience, the claim, the SPA client', () => {
  assert.equal(fleet.config.audience, env('INSTANCE_AUDIENCE'));
  assert.equal(fleet.config.instance_claim, `${NS}instance`);
  assert.ok(fleet.config.client_id);
});

test('a token for this instance gets in with its role; the middleware sets req.fleetgate', async () => {
  const r = await fleet.verify(asked(await token('auth0|owner-1', { instance: 'acme' })));
  assert.deepEqual([r.ok, r.userId, r.role, r.instanceId], [true, 'auth0|owner-1', 'owner', 'acme'], JSON.stringify(r));
  const server = http.createServer((req, res) => {
    fleet.middleware()(req, res, () => res.end(JSON.stringify(req.fleetgate)));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}/`;
  try {
    let res = await fetch(url, asked(await token('auth0|owner-1', { instance: 'acme' })));
    assert.deepEqual(await res.json(), { userId: 'auth0|owner-1', role: 'owner', instanceId: 'acme' });
    res = await fetch(url);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('content-type'), 'application/problem+json');
    assert.match(res.headers.get('www-authenticate'), /^Bearer/);
    res = await fetch(url, asked(await token('auth0|owner-2', { instance: 'beta' })));
    assert.equal(res.status, 403);
  } finally {
    server.close();
  }
});

test("another instance's token, an unbound token and fleetgate's own are refused", async () => {
  // beta's owner, with a token from a login at beta: 403, naming no other instance.
  const other = await fleet.verify(asked(await token('auth0|owner-2', { instance: 'beta' })));
  assert.equal(other.status, 403);
  assert.doesNotMatch(JSON.stringify(other.body), /beta/);
  // A token from a login the Action let through without the claim (FAIL_OPEN).
  const unbound = await token('auth0|owner-1');
  assert.equal((await fleet.verify(asked(unbound))).status, 403);
  const lenient = await createInstance({ env: {}, fleetgateUrl: followed.url, instanceId: 'acme', instanceKey: env('ACME_KEY'), allowUnboundTokens: true, onError: () => {} });
  assert.equal((await lenient.verify(asked(unbound))).role, 'owner');
  await lenient.close();
  // fleetgate's audience is not the instances'.
  const admins = await fleet.verify(asked(await token('auth0|owner-1', { instance: 'acme', audience: env('AUTH0_AUDIENCE') })));
  assert.equal(admins.status, 401);
  const forged = (await token('auth0|owner-1', { instance: 'acme' })).slice(0, -4) + 'AAAA';
  assert.equal((await fleet.verify(asked(forged))).status, 401);
  // A valid token for this instance from someone with no grant.
  assert.equal((await fleet.verify(asked(await token('auth0|eve', { instance: 'acme' })))).status, 403);
});

test('a grant is followed as it comes and goes: refused within one long-poll of its removal', async () => {
  const max = await token('auth0|max', { instance: 'acme' });
  const { status, body: g } = await admin('POST', '/v1/instances/acme/grants', { user_id: 'auth0|max', role: 'member' });
  assert.equal(status, 201);
  await until(() => fleet.role('auth0|max') === 'member', 5000, 'the grant arrives');
  assert.equal((await fleet.verify(asked(max))).role, 'member');
  const removed = await admin('DELETE', `/v1/instances/acme/grants/${g.id}`);
  assert.equal(removed.status, 204);
  const took = await until(() => fleet.role('auth0|max') === null, 2000, 'the removal arrives');
  assert.equal((await fleet.verify(asked(max))).status, 403, `refused ${took} ms after the removal`);
  assert.ok(changes.some((c) => c.delta && c.delta.removed.includes(g.id)), 'onChange saw the delta');
});

test('fleetgate restarts while the kit follows; changes no longer kept (410) come from a new snapshot', async () => {
  await followed.stop();
  // Meanwhile, more changes than fleetgate keeps (FLEETGATE_GRANT_CHANGES_KEPT=2).
  const users = ['auth0|p1', 'auth0|p2', 'auth0|p3', 'auth0|p4'];
  for (const u of users) {
    assert.equal((await admin('POST', '/v1/instances/acme/grants', { user_id: u, role: 'member' })).status, 201);
  }
  const before = changes.length;
  await followed.start();
  await until(() => users.every((u) => fleet.role(u) === 'member'), 15000, 'the kit caught up');
  assert.ok(changes.slice(before).some((c) => c.delta === null), 'caught up from a snapshot (410)');
  assert.equal((await fleet.verify(asked(await token('auth0|p4', { instance: 'acme' })))).role, 'member');
});

test("a revoked key fails closed at once: every request 503 until the grants are confirmed again", async () => {
  const rotated = await admin('POST', '/v1/instances/beta/keys/rotate', { revoke_previous: true });
  assert.equal(rotated.status, 201);
  // The followed fleetgate hears of the new key by notification, moments later.
  const key = rotated.body.instance_key;
  const known = async () => (await fetch(`${followed.url}/v1/instances/beta/grants`, asked(key))).status === 200;
  for (let i = 0; !(await known()); i += 1) {
    assert.ok(i < 100, 'the followed fleetgate knows the new key');
    await new Promise((r) => setTimeout(r, 20));
  }
  const errors = [];
  const beta = await createInstance({
    env: {}, fleetgateUrl: followed.url, instanceId: 'beta', instanceKey: key,
    onError: (e) => errors.push(e), waitSeconds: 1, maxStalenessMs: 60_000,
  });
  try {
    const owner = asked(await token('auth0|owner-2', { instance: 'beta' }));
    assert.equal((await beta.verify(owner)).role, 'owner');
    // Another rotation revokes the kit's key: fleetgate answers its next poll 401.
    assert.equal((await admin('POST', '/v1/instances/beta/keys/rotate', { revoke_previous: true })).status, 201);
    await until(() => !beta.freshness().ok, 5000, 'the refusal is seen');
    const refused = await beta.verify(owner);
    assert.equal(refused.status, 503, JSON.stringify(refused));
    assert.equal(refused.body.code, 'grants_unavailable');
    assert.equal(refused.headers['content-type'], 'application/problem+json');
    assert.ok(errors.some((e) => e.status === 401), 'onError heard of it');
  } finally {
    await beta.close();
  }
});

test('fleetgate unreachable past maxStalenessMs: every request 503, then served again once confirmed', async () => {
  const strict = await createInstance({
    env: {}, fleetgateUrl: followed.url, instanceId: 'acme', instanceKey: env('ACME_KEY'),
    onError: () => {}, waitSeconds: 1, maxStalenessMs: 2000,
  });
  try {
    const owner = asked(await token('auth0|owner-1', { instance: 'acme' }));
    assert.equal((await strict.verify(owner)).role, 'owner');
    await followed.stop();
    const stale = await until(() => !strict.freshness().ok, 6000, 'stale');
    assert.ok(stale >= 500, `stale only after maxStalenessMs, not at the first failure (${stale} ms)`);
    assert.equal((await strict.verify(owner)).status, 503);
    await followed.start();
    await until(() => strict.freshness().ok, 20000, 'confirmed again');
    assert.equal((await strict.verify(owner)).role, 'owner');
  } finally {
    await strict.close();
  }
});
