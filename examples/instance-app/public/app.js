// The page: log in through the tenant (or fleetgate's login relay) with auth0-spa-js (code flow with PKCE, refresh tokens),
// then call this instance's API with the access token.
/* global auth0 */
const $ = (id) => document.getElementById(id);

async function main() {
  const config = await (await fetch('/config.json')).json();
  $('title').textContent = `Instance ${config.instanceId}`;
  const client = await auth0.createAuth0Client({
    domain: config.domain,
    // The tenant's issuer when it is not the domain's (through fleetgate's relay).
    issuer: config.issuer,
    clientId: config.clientId,
    authorizationParams: {
      redirect_uri: `${window.location.origin}/callback`,
      audience: config.audience,
      scope: 'openid profile email offline_access',
    },
    useRefreshTokens: true,
    cacheLocation: 'localstorage',
  });

  const params = new URLSearchParams(window.location.search);
  // "Use another account": the tenant's session has ended; its login form, whoever is asked.
  if (params.get('login') === 'another') {
    await client.loginWithRedirect({ authorizationParams: { prompt: 'login' } });
    return;
  }
  $('another').onclick = () => client.logout({ logoutParams: { returnTo: `${window.location.origin}/?login=another` } });
  if (window.location.pathname === '/callback') {
    if (params.has('error')) {
      // A login the tenant refused (fleetgate's Action: no access to this instance). The
      // tenant's session stays, so logging in again would be refused again: offer another.
      $('error').textContent = `Login refused: ${params.get('error_description') || params.get('error')}`;
      $('another').hidden = false;
    } else if (params.has('code')) {
      try {
        await client.handleRedirectCallback();
      } catch (e) {
        $('error').textContent = `Login failed: ${e.message}`;
      }
    }
    window.history.replaceState({}, '', '/');
  }

  const user = (await client.isAuthenticated()) ? await client.getUser() : null;
  $('status').textContent = user ? `Logged in as ${user.email}` : 'Not logged in';
  $('login').hidden = Boolean(user);
  $('logout').hidden = !user;
  $('call').hidden = !user;
  $('renew').hidden = !user;
  $('manage').hidden = !user;
  $('access-page').href = config.accessPage;
  $('login').onclick = () => client.loginWithRedirect();
  $('logout').onclick = () => client.logout({ logoutParams: { returnTo: `${window.location.origin}/` } });
  // A new access token through the refresh token (the post-login Action runs again).
  $('renew').onclick = async () => {
    $('api').hidden = false;
    try {
      await client.getTokenSilently({ cacheMode: 'off' });
      $('api').textContent = 'renewed';
    } catch (e) {
      $('api').textContent = `renewal refused: ${e.error || ''} ${e.error_description || e.message}`.trim();
    }
  };
  $('call').onclick = async () => {
    $('api').hidden = false;
    try {
      const token = await client.getTokenSilently();
      const res = await fetch('/api/me', { headers: { authorization: `Bearer ${token}` } });
      const body = await res.json();
      $('api').textContent = `${res.status} ${JSON.stringify(body, null, 2)}`;
    } catch (e) {
      $('api').textContent = `error: ${e.message}`;
    }
  };
}

main().catch((e) => { $('error').textContent = e.message; });
