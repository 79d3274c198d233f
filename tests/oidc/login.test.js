// Maintained OIDC libraries against the Auth0 emulator's login side, as an instance's SPA
// and API would use them. Run by `cargo test` (emulator/tests/oidc_clients.rs), which starts
// the emulator, lists the callback, creates the user and sets:
//   EMULATOR_URL, CLIENT_ID, CALLBACK, API_AUDIENCE, USER_EMAIL, USER_PASSWORD
import { test } from 'node:test';
import assert from 'node:assert/strict';

import express from 'express';
import { auth } from 'express-oauth2-jwt-bearer';
import * as jose from 'jose';
import * as client from 'openid-client';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set (run through cargo test)`);
  return value;
};
const EMULATOR = env('EMULATOR_URL');
const CLIENT_ID = env('CLIENT_ID');
const CALLBACK = env('CALLBACK');
const AUDIENCE = env('API_AUDIENCE');

const discovered = () =>
  client.discovery(new URL(EMULATOR), CLIENT_ID, undefined, client.None(), {
    execute: [client.allowInsecureRequests],
  });

/** Logs in through the login page, as a person would, and answers the callback URL. */
async function logIn(authorizationUrl) {
  let res = await fetch(authorizationUrl, { redirect: 'manual' });
  assert.equal(res.status, 200, 'the login page');
  const page = await res.text();
  const txn = /name="txn" value="([^"]+)"/.exec(page)[1];
  // The form is bound to the browser it was shown to, by its CSRF cookie.
  const csrf = res.headers.getSetCookie().map((c) => c.split(';')[0]).find((c) => c.startsWith('_csrf='));
  res = await fetch(new URL('/u/login', EMULATOR), {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: csrf },
    body: new URLSearchParams({ txn, username: env('USER_EMAIL'), password: env('USER_PASSWORD') }),
  });
  assert.equal(res.status, 302, 'back to the application');
  return new URL(res.headers.get('location'));
}

/** A whole login with openid-client: discovery, authorize, login form, callback, tokens. */
async function login(extra = {}, checks = {}) {
  const config = await discovered();
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: CALLBACK,
    scope: 'openid profile email offline_access',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  });
  const callback = await logIn(url);
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
    ...checks,
  });
  return { config, tokens };
}

test('openid-client logs in: discovery, authorize, login form, callback, code exchange', async () => {
  const { config, tokens } = await login();
  const server = config.serverMetadata();
  assert.equal(server.issuer, `${EMULATOR}/`);
  const claims = tokens.claims();
  assert.equal(claims.email, env('USER_EMAIL'));
  assert.equal(claims.aud, CLIENT_ID);
  // The ID token's signature, against the tenant's published keys.
  const jwks = jose.createRemoteJWKSet(new URL(server.jwks_uri));
  const { payload, protectedHeader } = await jose.jwtVerify(tokens.id_token, jwks, {
    issuer: server.issuer,
    audience: CLIENT_ID,
    algorithms: ['RS256'],
  });
  assert.equal(protectedHeader.alg, 'RS256');
  assert.equal(payload.sub, claims.sub);
  // userinfo with the access token; a refresh rotates the refresh token.
  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  assert.equal(info.email, env('USER_EMAIL'));
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert.ok(refreshed.access_token);
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
});

test('openid-client checks auth_time when it asks for max_age', async () => {
  // The login form is shown (a fetch has no session), and the ID token says when.
  const { tokens } = await login({ max_age: '300' }, { maxAge: 300 });
  const claims = tokens.claims();
  assert.equal(typeof claims.auth_time, 'number');
  assert.ok(Math.abs(Date.now() / 1000 - claims.auth_time) < 60);
  assert.equal(claims.nickname, env('USER_EMAIL').split('@')[0]);
  assert.equal(typeof claims.sid, 'string');
});

test("express-oauth2-jwt-bearer, set up from the issuer URL, accepts the emulator's tokens", async () => {
  const app = express();
  app.use(auth({ issuerBaseURL: EMULATOR, audience: AUDIENCE }));
  app.get('/me', (req, res) => res.json({ sub: req.auth.payload.sub }));
  app.use((err, _req, res, _next) => res.status(err.status || 500).json({ error: err.code || err.message }));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const api = `http://127.0.0.1:${server.address().port}/me`;
  try {
    const { tokens } = await login({ audience: AUDIENCE });
    let res = await fetch(api, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal((await res.json()).sub, tokens.claims().sub);
    res = await fetch(api);
    assert.equal(res.status, 401, 'no token');
    const { tokens: userinfoOnly } = await login();
    res = await fetch(api, { headers: { authorization: `Bearer ${userinfoOnly.access_token}` } });
    assert.equal(res.status, 401, 'a token for another audience');
  } finally {
    server.close();
  }
});
