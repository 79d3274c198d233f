// fleetgate's status page: log in with auth0-spa-js (the operators' application,
// FLEETGATE_UI_CLIENT_ID), then show what the admin API says, refreshed every 10 s.
/* global auth0 */
const $ = (id) => document.getElementById(id);
const LISTS = ['callbacks', 'allowed_logout_urls', 'web_origins', 'allowed_origins'];
const WARN_AT = 0.9;

function cell(text, cls) {
  const td = document.createElement('td');
  td.textContent = text == null ? '' : String(text);
  if (cls) td.className = cls;
  return td;
}

function rows(table, items, render) {
  const body = $(table).querySelector('tbody');
  body.replaceChildren(...items.map((item) => {
    const tr = document.createElement('tr');
    tr.append(...render(item));
    return tr;
  }));
}

/** Who refused and why, once, with a way to log in as someone else. */
function refuse(text) {
  $('refusal').textContent = text;
  $('another').hidden = false;
}

/** What the applications table names a pool member by: its name and client id, and where it
 * came from when that says more than the name. */
function applicationName(a) {
  const from = a.origin && a.origin !== a.name ? ` (${a.origin})` : '';
  return `${a.name || ''} ${a.client_id}${from}`.trim();
}

function fill(list) {
  const td = document.createElement('td');
  const ratio = list.cap ? list.entries / list.cap : 0;
  if (ratio >= WARN_AT) td.className = 'warn';
  const bar = document.createElement('span');
  bar.className = 'bar';
  const inner = document.createElement('span');
  inner.style.width = `${Math.min(100, Math.round(ratio * 100))}%`;
  bar.append(inner);
  td.append(bar, document.createTextNode(`${list.entries}/${list.cap}`));
  return td;
}

async function main() {
  const res = await fetch('/ui/config.json');
  const config = await res.json();
  if (!res.ok) {
    $('refusal').textContent = config.detail || 'The status page is not configured.';
    return;
  }
  const client = await auth0.createAuth0Client({
    domain: config.domain,
    // auth0-spa-js expects `${domain}/` unless told otherwise (and takes only https issuers).
    issuer: config.issuer === `${config.domain}/` ? undefined : config.issuer,
    clientId: config.clientId,
    authorizationParams: { redirect_uri: `${window.location.origin}/ui/`, audience: config.audience },
  });
  const params = new URLSearchParams(window.location.search);
  // "Use another account": the tenant's session ended, now its login form whoever is asked.
  if (params.get('login') === 'another') {
    await client.loginWithRedirect({ authorizationParams: { prompt: 'login' } });
    return;
  }
  $('another').onclick = () => client.logout({ logoutParams: { returnTo: `${window.location.origin}/ui/?login=another` } });
  if (params.has('error')) {
    refuse(`Login refused: ${params.get('error_description') || params.get('error')}`);
    window.history.replaceState({}, '', '/ui/');
  } else if (params.has('code')) {
    await client.handleRedirectCallback();
    window.history.replaceState({}, '', '/ui/');
  }
  const user = (await client.isAuthenticated()) ? await client.getUser() : null;
  $('login').hidden = Boolean(user);
  $('logout').hidden = !user;
  $('intro').hidden = Boolean(user);
  $('who').textContent = user ? user.email : '';
  $('login').onclick = () => client.loginWithRedirect();
  $('logout').onclick = () => client.logout({ logoutParams: { returnTo: `${window.location.origin}/ui/` } });
  if (!user) return;

  /** A refusal by fleetgate: it will not change by asking again. */
  class Refused extends Error {}

  async function api(path) {
    const token = await client.getTokenSilently();
    const r = await fetch(path, { headers: { authorization: `Bearer ${token}` } });
    const body = await r.json();
    if (r.status === 401 || r.status === 403) throw new Refused(body.detail);
    if (!r.ok) throw new Error(`${path}: ${r.status} ${body.detail || ''}`);
    return body;
  }

  async function refresh() {
    try {
      const [apps, status, runs, audit] = await Promise.all([
        api('/v1/applications'), api('/v1/reconcile/status'), api('/v1/reconcile/runs?limit=10'), api('/v1/audit?limit=10'),
      ]);
      $('refusal').textContent = '';
      $('status').hidden = false;
      const login = status.login;
      $('login-mode').textContent = login.mode === 'direct'
        ? 'Logins: at the tenant, through the allow-lists below.'
        : `Logins: ${login.mode === 'relay' ? 'every instance' : 'instances not live in an application'} through the relay at ${login.relay_url} (application ${login.relay_client_id}); a pass that finds its application misconfigured fails, saying what to change.`;
      const leader = status.leader;
      $('leader').textContent = leader
        ? `Reconciling: ${leader.name || 'a replica'}${leader.address ? ` (${leader.address})` : ''}, since ${new Date(leader.since).toLocaleString()}.`
        : 'No replica holds the reconciler\'s lead.';
      rows('applications', apps.items, (a) => [
        cell(applicationName(a)), cell(a.instances), ...LISTS.map((f) => fill(a.lists[f])),
      ]);
      const drift = apps.items.flatMap((a) => LISTS.flatMap((f) => (a.lists[f].foreign || []).map((e) => `${a.client_id} ${f}: ${e}`)));
      $('drift').textContent = drift.length ? '' : 'None.';
      $('drift').append(...drift.map((d) => Object.assign(document.createElement('div'), { textContent: d })));
      $('unsynced').replaceChildren();
      if (status.unsynced.length === 0) $('unsynced').textContent = 'Every instance is in step.';
      for (const i of status.unsynced) {
        const div = document.createElement('div');
        const urls = i.urls.map((u) => `${u.state} ${u.url}${u.reason ? ` (${u.reason})` : ''}`).join('; ');
        div.textContent = `${i.instance_id} (${i.status}): ${urls}`;
        div.className = i.urls.some((u) => u.state === 'failed') ? 'failed' : '';
        $('unsynced').append(div);
      }
      if (status.unsynced_total > status.unsynced.length) {
        $('unsynced').append(`… and ${status.unsynced_total - status.unsynced.length} more.`);
      }
      rows('runs', runs.items, (r) => [
        cell(new Date(r.started_at).toLocaleTimeString()), cell(r.trigger),
        cell(r.outcome, r.outcome === 'failed' ? 'failed' : ''), cell(r.api_calls),
        cell(Array.isArray(r.changes) ? r.changes.length : ''), cell(r.error),
      ]);
      rows('audit', audit.items, (e) => [
        cell(new Date(e.at).toLocaleTimeString()), cell(e.actor), cell(e.action), cell(`${e.target_type} ${e.target_id}`),
      ]);
      $('refreshed').textContent = new Date().toLocaleTimeString();
    } catch (e) {
      if (e instanceof Refused) {
        clearInterval(timer);
        $('status').hidden = true;
        refuse(`${user.email} may not see the status page, which is for the platform's operators: ${e.message}.`);
        return;
      }
      $('refusal').textContent = e.message;
    }
  }
  const timer = setInterval(refresh, 10_000);
  await refresh();
}

main().catch((e) => { $('refusal').textContent = e.message; });
