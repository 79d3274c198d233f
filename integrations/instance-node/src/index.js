// @fleetgate/instance: what an instance's API needs to trust fleetgate's logins.
//
//   const fleet = await createInstance();          // from the environment, or options
//   app.use('/api', fleet.middleware());            // req.fleetgate = { userId, role, instanceId }
//
// A request is let through only with a valid access token of the tenant, for the instances'
// audience, bound by the post-login Action to this instance, from a user who is the owner or
// holds a grant on it now (the grants are followed live, so a removed grant refuses at once).
// While the grants cannot be confirmed (fleetgate unreachable past `maxStalenessMs`, the key
// refused, the instance gone), every request is refused with 503: it fails closed.

import { checkToken, bearer, discoverKeys } from './verify.js';
import { GrantsFollower, backoff } from './grants.js';
import { detailOf, problem, send } from './problem.js';

export { apply, roleIn, backoff } from './grants.js';

const DEFAULT_NAMESPACE = 'https://fleetgate.dev/';

function required(name, value) {
  if (!value) throw new Error(`${name} is required (an option, or the environment variable)`);
  return value;
}

/** `acme.eu.auth0.com` → `https://acme.eu.auth0.com/`; a full URL keeps its scheme. */
export function issuerOf(domain) {
  const base = domain.includes('://') ? domain : `https://${domain}`;
  return base.endsWith('/') ? base : `${base}/`;
}

/**
 * The instance's `/config`. Right after a first deploy it may not be placed on an application
 * yet (409), and fleetgate may be restarting (5xx, no answer): those are retried with backoff
 * for up to `timeoutMs`; a refused key (401) or an unknown instance (404) fails at once.
 */
async function instanceConfig(fleetgateUrl, instanceId, instanceKey, fetchImpl, timeoutMs, onError) {
  const url = new URL(`v1/instances/${encodeURIComponent(instanceId)}/config`, fleetgateUrl.endsWith('/') ? fleetgateUrl : `${fleetgateUrl}/`);
  const until = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt += 1) {
    let res = null;
    let error;
    try {
      res = await fetchImpl(url, { headers: { authorization: `Bearer ${instanceKey}` } });
    } catch (e) {
      error = e; // no answer
    }
    if (res && res.ok) return res.json();
    if (res) {
      error = new Error(`GET ${url.pathname} answered ${res.status} ${await detailOf(res)}`.trim());
      if (res.status !== 409 && res.status < 500) throw error;
    }
    if (Date.now() >= until) throw error;
    onError(error);
    await new Promise((r) => setTimeout(r, Math.min(backoff(attempt), Math.max(0, until - Date.now()))));
  }
}

/**
 * Sets up the kit for one instance: reads its configuration from fleetgate, discovers the
 * tenant's keys and starts following its grants. Resolves once the grants are loaded.
 */
export async function createInstance(options = {}) {
  const env = options.env || process.env;
  const fetchImpl = options.fetch || fetch;
  const fleetgateUrl = required('FLEETGATE_URL', options.fleetgateUrl || env.FLEETGATE_URL);
  const instanceId = required('FLEETGATE_INSTANCE_ID', options.instanceId || env.FLEETGATE_INSTANCE_ID);
  const instanceKey = required('FLEETGATE_INSTANCE_KEY', options.instanceKey || env.FLEETGATE_INSTANCE_KEY);
  const onError = options.onError || ((e) => console.warn(`fleetgate: ${e.message}; retrying`));
  const config = await instanceConfig(fleetgateUrl, instanceId, instanceKey, fetchImpl, options.startTimeoutMs ?? 60_000, onError);
  const auth0Domain = options.auth0Domain || env.AUTH0_DOMAIN || config.auth0_domain;
  const audience = options.audience || env.AUTH0_AUDIENCE || config.audience;
  const namespace = options.claimNamespace || env.FLEETGATE_CLAIM_NAMESPACE;
  const instanceClaim = namespace
    ? `${namespace.endsWith('/') ? namespace : `${namespace}/`}instance`
    : config.instance_claim || `${DEFAULT_NAMESPACE}instance`;
  if (audience !== config.audience) {
    // Tokens from the SPA (which logs in for config.audience) would all be refused.
    console.warn(`fleetgate: the audience required (${audience}) is not the instances' audience fleetgate gives the SPA (${config.audience})`);
  }
  const base = issuerOf(required('AUTH0_DOMAIN', auth0Domain));
  // The tokens' issuer: the tenant's URL, unless its logins run on a custom domain.
  const issuer = options.issuer || env.AUTH0_ISSUER || config.issuer || base;
  const keys = await discoverKeys(issuer, fetchImpl, base);
  const grants = new GrantsFollower({
    fleetgateUrl,
    instanceId,
    instanceKey,
    onChange: options.onChange,
    onError,
    fetchImpl,
    waitSeconds: options.waitSeconds,
    maxStalenessMs: options.maxStalenessMs,
  });
  await grants.start();
  const checks = {
    keys,
    issuer,
    audience: required('AUTH0_AUDIENCE', audience),
    instanceClaim,
    instanceId,
    allowUnboundTokens: options.allowUnboundTokens === true,
  };

  /** Who is calling, or why not: `{ ok, userId, role, instanceId, claims }` or a refusal. */
  async function verify(request) {
    const fresh = grants.freshness();
    if (!fresh.ok) {
      // Who may use the instance is not known now: nobody does, until it is again.
      return problem(503, 'grants_unavailable', 'this instance cannot confirm who may use it right now; try again shortly', { 'retry-after': '5' });
    }
    const checked = await checkToken(bearer(request), checks);
    if (!checked.ok) return checked;
    const userId = checked.claims.sub;
    const role = grants.role(userId);
    if (!role) {
      return problem(403, 'forbidden', 'the user has no access to this instance (not its owner, no grant)');
    }
    return { ok: true, userId, role, instanceId, claims: checked.claims };
  }

  /** Express/Connect middleware: sets `req.fleetgate`, or answers the refusal. */
  function middleware() {
    return (req, res, next) => {
      verify(req).then(
        (r) => {
          if (!r.ok) return send(res, r);
          req.fleetgate = { userId: r.userId, role: r.role, instanceId: r.instanceId };
          return next();
        },
        (e) => next(e),
      );
    };
  }

  return {
    instanceId,
    /** fleetgate's `/config` answer: what the instance's SPA needs (`domain`, `issuer`, `client_id`, `audience`; `login` says whether through the relay). */
    config,
    verify,
    middleware,
    role: (userId) => grants.role(userId),
    /** The grants as held now: `{ instance_id, revision, owner, grants }`. */
    grants: () => grants.snapshot,
    /** `{ ok: true }` while the grants held are confirmed, else `{ ok: false, reason }` (every request is refused then). */
    freshness: () => grants.freshness(),
    close: () => grants.stop(),
  };
}
