/**
 * fleetgate post-login Action for Auth0.
 *
 * Asks fleetgate whether this user may log in to the instance the login is for (the host of
 * the redirect URI), then denies the login or binds the tokens to that instance with a
 * namespaced claim. Each instance's API must accept a token only if that claim names it.
 *
 * A login or refresh through fleetgate's relay (FLEETGATE_LOGIN_MODE=relay) carries the
 * relay's one-time transaction handle: for a login, event.request.query.state (the value the
 * tenant gives back to the relay, which sends the code where that transaction says), marked by
 * fleetgate_login, which must be the same; for a refresh, event.request.body.fleetgate_login
 * (written by the relay, which alone holds its application's secret). fleetgate takes the
 * instance from that transaction, never from the request, and refuses a handle that is
 * missing, unknown or used, or one that came through another application.
 *
 * Refresh-token exchanges (event.transaction.protocol "oauth2-refresh-token") carry no
 * redirect URI. The instance is then the one recorded in the refresh token's metadata at
 * login (api.refreshToken.setMetadata; an Early Access feature of Enterprise tenants), else
 * the host of event.request.body.redirect_uri, which auth0-spa-js sends on every refresh but
 * which any holder of the refresh token can set (see REFRESH_FROM_BODY). fleetgate is asked
 * again, so a revoked grant or a suspended or deleted instance stops the refresh.
 *
 * Secrets (Actions > this Action > Secrets):
 *   FLEETGATE_URL            fleetgate's base URL, e.g. https://fleetgate.example.com
 *   FLEETGATE_ACTION_SECRET  the same value as fleetgate's FLEETGATE_ACTION_SECRET
 *   CLAIM_NAMESPACE          optional; default https://fleetgate.dev/ (must be a URL you
 *                            control, never an Auth0 domain)
 *   FAIL_OPEN                optional; "true" lets logins for the instances' API (and only
 *                            those: INSTANCE_AUDIENCE) through, without the claim, when
 *                            fleetgate cannot be reached. Default: fail closed (deny).
 *   INSTANCE_AUDIENCE        the instances' API identifier (fleetgate's
 *                            FLEETGATE_INSTANCE_AUDIENCE); FAIL_OPEN applies only to logins
 *                            asking for it, so a login for fleetgate's own API (or any other)
 *                            is never let through unchecked. Without it FAIL_OPEN is off.
 *   TIMEOUT_MS               optional; default 3000. The whole Action must finish in 20 s.
 *   REFRESH_FROM_BODY        optional; "false" refuses refresh-token exchanges whose token has
 *                            no recorded instance instead of taking the instance from the
 *                            request body's redirect_uri. Default: take it (docs/logins.md: the risk).
 */

const DEFAULT_NAMESPACE = 'https://fleetgate.dev/';
/**
 * What every user who is not let in is told, whatever the reason: a reason such as
 * "email_not_verified" would tell a stranger that their email was invited. The reason goes
 * to the Action's log (and fleetgate's), for operators.
 */
const DENIED = 'You do not have access to this application.';
const DEFAULT_TIMEOUT_MS = 3000;
/** The refresh token's metadata key that names the instance it was issued at. */
const INSTANCE_METADATA = 'fleetgate_instance';
/** The parameter in which fleetgate's relay names its transaction. */
const RELAY_PARAM = 'fleetgate_login';

function settings(secrets) {
  const namespace = secrets.CLAIM_NAMESPACE || DEFAULT_NAMESPACE;
  return {
    url: (secrets.FLEETGATE_URL || '').replace(/\/+$/, ''),
    secret: secrets.FLEETGATE_ACTION_SECRET || '',
    namespace: namespace.endsWith('/') ? namespace : `${namespace}/`,
    failOpen: secrets.FAIL_OPEN === 'true',
    instanceAudience: secrets.INSTANCE_AUDIENCE || '',
    timeoutMs: Number(secrets.TIMEOUT_MS) > 0 ? Number(secrets.TIMEOUT_MS) : DEFAULT_TIMEOUT_MS,
    refreshFromBody: secrets.REFRESH_FROM_BODY !== 'false',
  };
}

/** Asks fleetgate; answers the decision, or throws when no decision could be had. */
async function askFleetgate(config, body) {
  const res = await fetch(`${config.url}/v1/login-decisions`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${config.secret}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(config.timeoutMs),
  });
  if (res.status === 200) {
    return res.json();
  }
  let detail = '';
  try {
    detail = (await res.json()).detail || '';
  } catch (_) {
    // not a problem+json body
  }
  const error = new Error(`fleetgate answered ${res.status} ${detail}`.trim());
  // A 4xx means this login cannot be decided as asked (e.g. no usable redirect URI): deny.
  // 5xx and network failures mean fleetgate is unavailable.
  error.unavailable = res.status >= 500;
  throw error;
}

/**
 * What names the instance: for a login, its redirect URI; for a refresh-token exchange, the
 * instance recorded in the refresh token's metadata, else (if allowed) the redirect URI the
 * token request's body carries. Null when nothing does.
 */
function instanceOf(event, config) {
  const transaction = event.transaction || {};
  const request = event.request || {};
  const query = request.query || {};
  if (query[RELAY_PARAM]) {
    // The login is decided on the very value the relay will deliver the code by: a link whose
    // state names another transaction than its handle is refused, not bound to either.
    return query.state === query[RELAY_PARAM] ? { relay_login: String(query.state) } : null;
  }
  const relayedRefresh = request.body && request.body[RELAY_PARAM];
  if (relayedRefresh) {
    return { relay_login: String(relayedRefresh) };
  }
  if (transaction.protocol === 'oauth2-refresh-token') {
    const metadata = (event.refresh_token && event.refresh_token.metadata) || {};
    if (metadata[INSTANCE_METADATA]) {
      return { instance_id: metadata[INSTANCE_METADATA] };
    }
    const fromBody = request.body && request.body.redirect_uri;
    return config.refreshFromBody && fromBody ? { redirect_uri: fromBody } : null;
  }
  const redirectUri = transaction.redirect_uri || (request.query && request.query.redirect_uri);
  return redirectUri ? { redirect_uri: redirectUri } : null;
}

/** The API the login asks for a token to (its audience), or '' for none. */
function audienceOf(event) {
  const server = event.resource_server && event.resource_server.identifier;
  const query = event.request && event.request.query && event.request.query.audience;
  return server || query || '';
}

/**
 * Whether a login may go on without fleetgate's decision (FAIL_OPEN): only one asking for
 * the instances' API, whose tokens instances refuse without the claim anyway. A login for
 * fleetgate's own API (or with no audience: the tenant's default may be fleetgate's) would
 * otherwise give whoever runs an instance's page an operator's unbound token.
 */
function failsOpen(event, config) {
  if (!config.failOpen) return false;
  if (!config.instanceAudience) {
    console.log('fleetgate: FAIL_OPEN is set without INSTANCE_AUDIENCE: failing closed');
    return false;
  }
  return audienceOf(event) === config.instanceAudience;
}

exports.onExecutePostLogin = async (event, api) => {
  const config = settings(event.secrets || {});
  if (!config.url || !config.secret) {
    api.access.deny('Login is unavailable: the fleetgate Action is not configured.');
    return;
  }
  const target = instanceOf(event, config);
  if (!target) {
    api.access.deny('Login is not allowed: the instance of this login cannot be determined.');
    return;
  }
  const user = event.user || {};
  let decision;
  try {
    decision = await askFleetgate(config, {
      user_id: user.user_id,
      email: user.email || null,
      email_verified: user.email_verified === true,
      ...target,
      client_id: (event.client && event.client.client_id) || null,
      // Which identity logged in (a database's, or a social provider's such as google-oauth2):
      // one person with two identities is two users unless linked, and grants follow user_id.
      connection: (event.connection && event.connection.name) || null,
      identities: (user.identities || []).slice(0, 10).map((i) => ({
        provider: String(i.provider), user_id: String(i.user_id), connection: String(i.connection),
      })),
    });
  } catch (err) {
    const unavailable = err.unavailable !== false;
    console.log(`fleetgate: no decision (${err.message})`);
    if (unavailable && failsOpen(event, config)) {
      return;
    }
    api.access.deny(
      unavailable
        ? 'Login is temporarily unavailable. Please try again.'
        : 'Login is not allowed for this application.',
    );
    return;
  }
  if (decision.allow && !decision.instance_id) {
    // A login to fleetgate's own status page: bound to no instance, nothing to add.
    return;
  }
  if (!decision.allow) {
    const where = target.instance_id || target.redirect_uri || 'the relay';
    console.log(`fleetgate: denied (${decision.reason}) for ${user.user_id} at ${where}`);
    api.access.deny(DENIED);
    return;
  }
  // Remembered with the refresh token (if the tenant has refresh token metadata), so that its
  // exchanges stay bound to this instance whatever their request says.
  if (api.refreshToken && typeof api.refreshToken.setMetadata === 'function') {
    api.refreshToken.setMetadata(INSTANCE_METADATA, decision.instance_id);
  }
  for (const token of [api.accessToken, api.idToken]) {
    token.setCustomClaim(`${config.namespace}instance`, decision.instance_id);
    token.setCustomClaim(`${config.namespace}role`, decision.role);
  }
};

exports.DENIED = DENIED;
exports.INSTANCE_METADATA = INSTANCE_METADATA;
exports.RELAY_PARAM = RELAY_PARAM;
