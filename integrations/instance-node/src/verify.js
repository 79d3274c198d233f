// Verifying an access token for one instance: signature (RS256, the tenant's keys), issuer,
// audience, time, then the instance claim the post-login Action sets.

import { createRemoteJWKSet, jwtVerify, errors } from 'jose';

import { unauthorized, problem } from './problem.js';

/** Clock skew tolerated on exp and nbf, as fleetgate tolerates it. */
const LEEWAY_SECONDS = 30;
/** Unknown key ids refetch the key set at most this often. */
const REFETCH_MS = 30_000;
/** Fetched keys are used this long before being fetched again. */
const KEYS_MAX_AGE_MS = 600_000;

/** The bearer token of a request (Node, Express or Fetch), or null. */
export function bearer(request) {
  const headers = request && request.headers;
  const value = headers && (typeof headers.get === 'function' ? headers.get('authorization') : headers.authorization);
  if (typeof value !== 'string') return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(value);
  return match ? match[1] : null;
}

/**
 * The tenant's signing keys, found through its discovery document at `base` (the tenant's
 * URL, with its trailing slash), which must name `issuer` (the same, unless the tenant's
 * logins run on a custom domain).
 */
export async function discoverKeys(issuer, fetchImpl = fetch, base = issuer) {
  const res = await fetchImpl(new URL('.well-known/openid-configuration', base));
  if (!res.ok) throw new Error(`discovery at ${base} answered ${res.status}`);
  const doc = await res.json();
  if (doc.issuer !== issuer) throw new Error(`discovery names issuer ${doc.issuer}, not ${issuer}`);
  return createRemoteJWKSet(new URL(doc.jwks_uri), {
    cooldownDuration: REFETCH_MS,
    cacheMaxAge: KEYS_MAX_AGE_MS,
  });
}

/**
 * Checks `token` for this instance. Answers `{ ok: true, claims }` or a refusal (401 for a
 * token that is not valid; 403 for a valid one issued for another instance, or for none).
 */
export async function checkToken(token, { keys, issuer, audience, instanceClaim, instanceId, allowUnboundTokens }) {
  if (!token) return unauthorized('an Authorization: Bearer token is required');
  let claims;
  try {
    ({ payload: claims } = await jwtVerify(token, keys, {
      issuer,
      audience,
      algorithms: ['RS256'],
      clockTolerance: LEEWAY_SECONDS,
      requiredClaims: ['sub', 'exp'],
    }));
  } catch (e) {
    return unauthorized(reason(e), 'invalid_token');
  }
  const bound = claims[instanceClaim];
  if (bound === undefined && !allowUnboundTokens) {
    return problem(403, 'forbidden', 'the token is bound to no instance (its login did not go through the fleetgate Action)');
  }
  if (bound !== undefined && bound !== instanceId) {
    // Never name the other instance: a caller learns nothing about the fleet.
    return problem(403, 'forbidden', 'the token was issued for another instance');
  }
  return { ok: true, claims };
}

function reason(e) {
  if (e instanceof errors.JWTExpired) return 'the token has expired';
  if (e instanceof errors.JWTClaimValidationFailed) return `the token's ${e.claim} claim is not valid`;
  if (e instanceof errors.JWKSNoMatchingKey) return 'the token was not signed by a key of the tenant';
  if (e instanceof errors.JOSEAlgNotAllowed) return 'the token must be signed with RS256';
  if (e instanceof errors.JWSSignatureVerificationFailed) return 'the token has a bad signature';
  return 'the token is not a valid access token';
}
