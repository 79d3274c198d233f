// The kit's pure parts.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { apply, roleIn, backoff, issuerOf } from '../src/index.js';
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
