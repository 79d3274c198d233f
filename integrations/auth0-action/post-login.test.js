// Tests of the post-login Action against a real running fleetgate, with stand-in `event` and
// `api` objects shaped as Auth0 documents them. Run by `cargo test` (tests/api/action.rs),
// which starts fleetgate, seeds it and sets:
//   FLEETGATE_URL, FLEETGATE_ACTION_SECRET
// Seeded: instance `acme` (hosts acme.apps.example.com, www.acme.com) owned by auth0|owner-1,
// with auth0|ann granted `admin` and bob@example.com invited; instance `paused` (host
// paused.apps.example.com) suspended.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');

const { onExecutePostLogin, DENIED, INSTANCE_METADATA, RELAY_PARAM } = require('./post-login.js');

const URL = process.env.FLEETGATE_URL;
const SECRET = process.env.FLEETGATE_ACTION_SECRET;
if (!URL || !SECRET) {
  throw new Error('FLEETGATE_URL and FLEETGATE_ACTION_SECRET must be set (run through cargo test)');
}

function event({ user, redirectUri, secrets = {} }) {
  return {
    user: { user_id: 'auth0|nobody', email: null, email_verified: false, ...user },
    client: { client_id: 'spa-client', name: 'Fleet SPA' },
    transaction: redirectUri === undefined ? {} : { redirect_uri: redirectUri, protocol: 'oidc-basic-profile' },
    request: { ip: '203.0.113.7', hostname: 'tenant.example.auth0.com', query: {} },
    secrets: { FLEETGATE_URL: URL, FLEETGATE_ACTION_SECRET: SECRET, ...secrets },
  };
}

/** A refresh-token exchange: no redirect URI in the transaction; what the token recorded. */
function refresh({ user, metadata, bodyRedirectUri, secrets = {} }) {
  const e = event({ user, secrets });
  e.transaction = { protocol: 'oauth2-refresh-token', requested_scopes: ['openid', 'offline_access'] };
  e.request.body = bodyRedirectUri === undefined ? { grant_type: 'refresh_token' } : { grant_type: 'refresh_token', redirect_uri: bodyRedirectUri };
  e.refresh_token = { id: 'rt_1', metadata: metadata || {} };
  return e;
}

function recorder({ metadata = true } = {}) {
  const seen = { denied: null, access: {}, id: {}, metadata: {} };
  const api = {
    access: { deny: (reason) => { seen.denied = reason; } },
    accessToken: { setCustomClaim: (k, v) => { seen.access[k] = v; } },
    idToken: { setCustomClaim: (k, v) => { seen.id[k] = v; } },
  };
  // Refresh token metadata is an Early Access feature: not every tenant's api has it.
  if (metadata) {
    api.refreshToken = { setMetadata: (k, v) => { seen.metadata[k] = v; } };
  }
  return { seen, api };
}

/** Runs the Action; `seen.log` holds what it logged (the operators' side of a denial). */
async function run(e, options) {
  const r = recorder(options);
  const log = console.log;
  r.seen.log = [];
  console.log = (...args) => r.seen.log.push(args.join(' '));
  try {
    await onExecutePostLogin(e, r.api);
  } finally {
    console.log = log;
  }
  return r.seen;
}

/** A denial the user sees as the one generic message, its reason only in the log. */
function deniedFor(seen, reason) {
  assert.equal(seen.denied, DENIED);
  assert.ok(seen.log.some((line) => line.includes(reason)), `${reason} in ${seen.log}`);
}

test('the owner gets the instance claim on both tokens', async () => {
  const seen = await run(event({ user: { user_id: 'auth0|owner-1' }, redirectUri: 'https://www.acme.com/callback' }));
  assert.equal(seen.denied, null);
  assert.deepEqual(seen.access, { 'https://fleetgate.dev/instance': 'acme', 'https://fleetgate.dev/role': 'owner' });
  assert.deepEqual(seen.id, seen.access);
});

test('a granted user gets their role, under a configured namespace', async () => {
  const seen = await run(event({
    user: { user_id: 'auth0|ann' },
    redirectUri: 'https://acme.apps.example.com/callback',
    secrets: { CLAIM_NAMESPACE: 'https://claims.example.com' },
  }));
  assert.equal(seen.denied, null);
  assert.equal(seen.access['https://claims.example.com/instance'], 'acme');
  assert.equal(seen.access['https://claims.example.com/role'], 'admin');
});

test('a user without a grant is denied and gets no claim', async () => {
  const seen = await run(event({ user: { user_id: 'auth0|eve', email: 'eve@example.com', email_verified: true }, redirectUri: 'https://www.acme.com/callback' }));
  deniedFor(seen, 'not_granted');
  assert.deepEqual(seen.access, {});
});

test('an invitation needs a verified email, then binds', async () => {
  const unverified = await run(event({ user: { user_id: 'auth0|bob', email: 'bob@example.com', email_verified: false }, redirectUri: 'https://www.acme.com/callback' }));
  deniedFor(unverified, 'email_not_verified');
  const verified = await run(event({ user: { user_id: 'auth0|bob', email: 'bob@example.com', email_verified: true }, redirectUri: 'https://www.acme.com/callback' }));
  assert.equal(verified.denied, null);
  assert.equal(verified.access['https://fleetgate.dev/role'], 'member');
  const later = await run(event({ user: { user_id: 'auth0|bob' }, redirectUri: 'https://www.acme.com/callback' }));
  assert.equal(later.denied, null, 'bound to the user id: the email is no longer needed');
});

test('suspended instances and unknown hosts are denied', async () => {
  const paused = await run(event({ user: { user_id: 'auth0|owner-2' }, redirectUri: 'https://paused.apps.example.com/callback' }));
  deniedFor(paused, 'instance_suspended');
  const unknown = await run(event({ user: { user_id: 'auth0|owner-1' }, redirectUri: 'https://evil.example.org/callback' }));
  deniedFor(unknown, 'unknown_host');
});

test('the redirect URI falls back to the query; without one the login is denied', async () => {
  const e = event({ user: { user_id: 'auth0|owner-1' } });
  e.request.query.redirect_uri = 'https://www.acme.com/callback';
  assert.equal((await run(e)).denied, null);
  const none = await run(event({ user: { user_id: 'auth0|owner-1' } }));
  assert.match(none.denied, /cannot be determined/);
});

test('a wrong secret is refused by fleetgate, and the login denied', async () => {
  const seen = await run(event({
    user: { user_id: 'auth0|owner-1' },
    redirectUri: 'https://www.acme.com/callback',
    secrets: { FLEETGATE_ACTION_SECRET: 'not-the-secret-not-the-secret-not-the' },
  }));
  assert.ok(seen.denied);
  assert.deepEqual(seen.access, {});
});

test('an unreachable fleetgate fails closed by default, open when configured', async () => {
  // A port nothing listens on.
  const server = http.createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const dead = `http://127.0.0.1:${server.address().port}`;
  await new Promise((r) => server.close(r));
  const closed = await run(event({ user: { user_id: 'auth0|owner-1' }, redirectUri: 'https://www.acme.com/callback', secrets: { FLEETGATE_URL: dead } }));
  assert.match(closed.denied, /temporarily unavailable/);
  const failOpen = { FLEETGATE_URL: dead, FAIL_OPEN: 'true', INSTANCE_AUDIENCE: 'https://instances.example/api' };
  const forInstances = event({ user: { user_id: 'auth0|owner-1' }, redirectUri: 'https://www.acme.com/callback', secrets: failOpen });
  forInstances.resource_server = { identifier: 'https://instances.example/api' };
  const open = await run(forInstances);
  assert.equal(open.denied, null);
  assert.deepEqual(open.access, {}, 'no claim: instances still refuse the token');
  // The audience may come from the query alone.
  const byQuery = event({ user: { user_id: 'auth0|owner-1' }, redirectUri: 'https://www.acme.com/callback', secrets: failOpen });
  byQuery.request.query = { audience: 'https://instances.example/api' };
  assert.equal((await run(byQuery)).denied, null);
});

test("failing open never lets through a login for fleetgate's own API, or with no audience", async () => {
  const server = http.createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const dead = `http://127.0.0.1:${server.address().port}`;
  await new Promise((r) => server.close(r));
  const login = (audience, secrets) => {
    const e = event({ user: { user_id: 'auth0|operator' }, redirectUri: 'https://www.acme.com/callback', secrets: { FLEETGATE_URL: dead, FAIL_OPEN: 'true', ...secrets } });
    if (audience) e.resource_server = { identifier: audience };
    return e;
  };
  const instances = { INSTANCE_AUDIENCE: 'https://instances.example/api' };
  for (const e of [
    login('https://fleetgate.example/api', instances),
    login(undefined, instances),
    login('https://instances.example/api', {}), // FAIL_OPEN without INSTANCE_AUDIENCE: off
  ]) {
    const seen = await run(e);
    assert.match(seen.denied || '', /temporarily unavailable/, JSON.stringify(e.resource_server));
  }
});

test('a fleetgate that does not answer in time fails closed', { timeout: 10000 }, async () => {
  const server = http.createServer(() => { /* never answers */ });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const slow = `http://127.0.0.1:${server.address().port}`;
  const seen = await run(event({ user: { user_id: 'auth0|owner-1' }, redirectUri: 'https://www.acme.com/callback', secrets: { FLEETGATE_URL: slow, TIMEOUT_MS: '300' } }));
  server.closeAllConnections();
  server.close();
  assert.match(seen.denied, /temporarily unavailable/);
});

test('missing configuration denies', async () => {
  const seen = await run(event({ user: { user_id: 'auth0|owner-1' }, redirectUri: 'https://www.acme.com/callback', secrets: { FLEETGATE_URL: '' } }));
  assert.match(seen.denied, /not configured/);
});

test('a login records its instance in the refresh token, where the tenant allows it', async () => {
  const seen = await run(event({ user: { user_id: 'auth0|owner-1' }, redirectUri: 'https://www.acme.com/callback' }));
  assert.deepEqual(seen.metadata, { [INSTANCE_METADATA]: 'acme' });
  const without = await run(event({ user: { user_id: 'auth0|owner-1' }, redirectUri: 'https://www.acme.com/callback' }), { metadata: false });
  assert.equal(without.denied, null, 'tenants without refresh token metadata still log in');
});

test('a refresh keeps the instance recorded at login, whatever its request says', async () => {
  const seen = await run(refresh({ user: { user_id: 'auth0|ann' }, metadata: { [INSTANCE_METADATA]: 'acme' }, bodyRedirectUri: 'https://paused.apps.example.com/callback' }));
  assert.equal(seen.denied, null);
  assert.equal(seen.access['https://fleetgate.dev/instance'], 'acme');
  assert.equal(seen.access['https://fleetgate.dev/role'], 'admin');
  // fleetgate is asked again: no grant, a suspended instance or an unknown one stop it.
  deniedFor(await run(refresh({ user: { user_id: 'auth0|eve' }, metadata: { [INSTANCE_METADATA]: 'acme' } })), 'not_granted');
  deniedFor(await run(refresh({ user: { user_id: 'auth0|owner-2' }, metadata: { [INSTANCE_METADATA]: 'paused' } })), 'instance_suspended');
  deniedFor(await run(refresh({ user: { user_id: 'auth0|owner-1' }, metadata: { [INSTANCE_METADATA]: 'gone' } })), 'unknown_instance');
});

test('without recorded metadata a refresh falls back to the body, unless that is turned off', async () => {
  const body = 'https://www.acme.com/callback';
  const seen = await run(refresh({ user: { user_id: 'auth0|owner-1' }, bodyRedirectUri: body }));
  assert.equal(seen.denied, null);
  assert.equal(seen.access['https://fleetgate.dev/instance'], 'acme');
  const off = await run(refresh({ user: { user_id: 'auth0|owner-1' }, bodyRedirectUri: body, secrets: { REFRESH_FROM_BODY: 'false' } }));
  assert.match(off.denied, /cannot be determined/);
  const nothing = await run(refresh({ user: { user_id: 'auth0|owner-1' } }));
  assert.match(nothing.denied, /cannot be determined/);
});

test("a relayed login whose state is not its handle is refused, not bound", async () => {
  const login = event({ user: { user_id: 'auth0|owner-1' }, redirectUri: 'https://www.acme.com/callback' });
  login.request.query = { state: 'y'.repeat(43), [RELAY_PARAM]: 'x'.repeat(43) };
  const seen = await run(login);
  assert.match(seen.denied, /cannot be determined/);
  assert.deepEqual(seen.access, {});
});

test("a relay's transaction handle is what names the instance, never the redirect URI beside it", async () => {
  // This fleetgate runs in direct mode: a handle means nothing here, and the login is denied
  // although its redirect URI names an instance the user owns.
  const login = event({ user: { user_id: 'auth0|owner-1' }, redirectUri: 'https://www.acme.com/callback' });
  login.request.query = { state: 'x'.repeat(43), [RELAY_PARAM]: 'x'.repeat(43) };
  deniedFor(await run(login), 'relay_off');
  const again = refresh({ user: { user_id: 'auth0|owner-1' }, metadata: { [INSTANCE_METADATA]: 'acme' } });
  again.request.body[RELAY_PARAM] = 'x'.repeat(43);
  deniedFor(await run(again), 'relay_off');
});
