// The kit's pure parts.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { apply, roleIn, backoff, issuerOf, createInstance } from '../src/index.js';
import { bearer } from '../src/verify.js';

const grant = (id, user, role) => ({ id, user_id: user, email: null, role, created_at: '', updated_at: '', bound_at: null });

test('deltas apply to snapshots, and roles are read from them', () => {
  const snap = { instance_id: 'acme', revision: 3, owner: 'auth0|o', grants: [grant('a', 'auth0|ann', 'admin'), grant('b', 'auth0|bob', 'member')] };
  const next = apply(snap, { instance_id: 'acme', from: 3, revision: 6, added: [grant('c', 'auth0|cy', 'member')], updated: [grant('a', 'auth0|ann', 'member')], removed: ['b'] });
  assert.equal(next.revision, 6);
  assert.equal(roleIn(next, 'auth0|ann'), 'member');
  assert.equal(roleIn(next, 'auth0|bob'), null);
  assert.equal(roleIn(next, 'auth0|cy'), 'member');
  assert.equal(roleIn(next, 'auth0|o'), 'owner');
  const moved = apply(next, { instance_id: 'acme', from: 6, revision: 7, owner: 'auth0|new', added: [], updated: [], removed: [] });
  assert.equal(roleIn(moved, 'auth0|o'), null);
  assert.equal(roleIn(moved, 'auth0|new'), 'owner');
  assert.equal(roleIn(null, 'auth0|o'), null);
});

test('backoff doubles with jitter up to a cap', () => {
  assert.equal(backoff(1, () => 0), 250);
  assert.equal(backoff(1, () => 1), 500);
  assert.equal(backoff(3, () => 1), 2000);
  assert.equal(backoff(50, () => 1), 30000);
  assert.ok(backoff(50, () => 0) >= 15000);
});

test('bearer tokens are read from Node, Express and Fetch requests', () => {
  assert.equal(bearer({ headers: { authorization: 'Bearer abc' } }), 'abc');
  assert.equal(bearer({ headers: new Headers({ authorization: 'bearer  abc ' }) }), 'abc');
  assert.equal(bearer({ headers: { authorization: 'Basic abc' } }), null);
  assert.equal(bearer({ headers: {} }), null);
  assert.equal(issuerOf('acme.eu.auth0.com'), 'https://acme.eu.auth0.com/');
  assert.equal(issuerOf('http://127.0.0.1:4010'), 'http://127.0.0.1:4010/');
});

/** A stand-in for fleetgate and the tenant: /config answers `configAnswers` in turn. */
function stubFetch(configAnswers) {
  const asked = [];
  const json = (status, body) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  const fetchImpl = async (url, init = {}) => {
    const u = new URL(url);
    asked.push(u.pathname);
    if (u.pathname.endsWith('/config')) {
      const [status, body] = configAnswers.shift();
      return json(status, body);
    }
    if (u.pathname === '/.well-known/openid-configuration') {
      return json(200, { issuer: 'https://tenant.example.com/', jwks_uri: 'https://tenant.example.com/.well-known/jwks.json' });
    }
    if (u.searchParams.has('since')) {
      // A long-poll: held until the kit stops.
      return new Promise((_, reject) => init.signal.addEventListener('abort', () => reject(new Error('aborted'))));
    }
    return json(200, { instance_id: 'acme', revision: 1, owner: 'auth0|o', grants: [] });
  };
  return { asked, fetchImpl };
}

const config = { instance_id: 'acme', auth0_domain: 'https://tenant.example.com', client_id: 'spa', audience: 'https://instances.example.com/api', instance_claim: 'https://fleetgate.dev/instance' };
const placing = [409, { detail: "instance 'acme' has no application yet" }];

test('createInstance waits while the instance is not placed yet, and fails at once on a refused key', async () => {
  const { asked, fetchImpl } = stubFetch([placing, placing, [200, config]]);
  const errors = [];
  const fleet = await createInstance({ env: {}, fleetgateUrl: 'http://fleetgate.test', instanceId: 'acme', instanceKey: 'fgi_x', fetch: fetchImpl, onError: (e) => errors.push(e.message) });
  assert.deepEqual(fleet.config, config);
  assert.equal(asked.filter((p) => p.endsWith('/config')).length, 3);
  assert.match(errors[0], /409 instance 'acme' has no application yet/);
  assert.equal(fleet.role('auth0|o'), 'owner');
  await fleet.close();

  const refused = stubFetch([[401, { detail: 'the instance key is not valid' }], [200, config]]);
  await assert.rejects(
    createInstance({ env: {}, fleetgateUrl: 'http://fleetgate.test', instanceId: 'acme', instanceKey: 'fgi_x', fetch: refused.fetchImpl, onError: () => {} }),
    /401 the instance key is not valid/,
  );
  assert.equal(refused.asked.length, 1, 'not retried');
});

/** A fetch answering from a script of statuses (200 answers carry a snapshot), then hanging. */
function scripted(statuses) {
  const snapshot = { instance_id: 'acme', revision: 1, owner: 'auth0|o', grants: [] };
  return async (url, { signal }) => {
    const status = statuses.shift();
    if (status === undefined) {
      return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
    }
    if (status === 'down') throw new TypeError('fetch failed');
    const body = status === 200 ? JSON.stringify(snapshot) : status === 304 ? null : JSON.stringify({ detail: 'refused' });
    return new Response(body, { status });
  };
}

test('the grants are trusted only while fleetgate confirms them', async () => {
  const { GrantsFollower } = await import('../src/grants.js');
  let clock = 1_000_000;
  const errors = [];
  const follower = new GrantsFollower({
    fleetgateUrl: 'http://fleetgate.invalid',
    instanceId: 'acme',
    instanceKey: 'fgi_x',
    fetchImpl: scripted([200, 304, 401, 304, 404, 'down']),
    onError: (e) => errors.push(e),
    waitSeconds: 1,
    maxStalenessMs: 2000,
    now: () => clock,
  });
  assert.equal(follower.freshness().ok, false, 'nothing loaded yet');
  await follower.step(); // 200
  assert.deepEqual(follower.freshness(), { ok: true });
  clock += 1500;
  await follower.step(); // 304 confirms
  clock += 1500;
  assert.deepEqual(follower.freshness(), { ok: true }, '1.5 s after the last confirmation');
  await assert.rejects(follower.step(), (e) => e.status === 401); // refused at once
  assert.match(follower.freshness().reason, /401/);
  await follower.step(); // a confirmation clears it
  assert.deepEqual(follower.freshness(), { ok: true });
  await assert.rejects(follower.step(), (e) => e.status === 404);
  assert.match(follower.freshness().reason, /404/);
  clock += 1;
  await assert.rejects(follower.step(), /fetch failed/);
  assert.equal(follower.freshness().ok, false, 'still refused while unreachable');
  await follower.stop();
});

test('unreachable past maxStalenessMs is stale; a lost long-poll is given up', async () => {
  const { GrantsFollower } = await import('../src/grants.js');
  let clock = 0;
  const follower = new GrantsFollower({
    fleetgateUrl: 'http://fleetgate.invalid', instanceId: 'acme', instanceKey: 'fgi_x',
    fetchImpl: scripted([200]), waitSeconds: 0, maxStalenessMs: 0, now: () => clock, pollTimeoutMs: 10,
  });
  await follower.step();
  assert.deepEqual(follower.freshness(), { ok: true });
  clock += 1;
  assert.match(follower.freshness().reason, /not confirmed the grants for/);
  // The next poll never answers: it is given up (after wait + 10 s by default) instead of hanging.
  await assert.rejects(follower.step(), /took too long/);
  assert.throws(() => new GrantsFollower({ fleetgateUrl: 'http://x', instanceId: 'a', instanceKey: 'k', waitSeconds: 30, maxStalenessMs: 59_999 }), /at least twice/);
});
