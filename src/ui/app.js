// fleetgate's page: log in with auth0-spa-js (fleetgate's own application,
// FLEETGATE_UI_CLIENT_ID); then, for everyone, the instances they own or administer and each
// one's people (invite, change a role, remove: the grants API with the person's own token, its
// errors shown as it states them), and for operators (fleet:admin) the fleet's status,
// refreshed every 10 s.
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
  // Each cell names its column, for narrow screens where the header is not shown.
  const labels = [...$(table).querySelectorAll('thead th')].map((th) => th.textContent);
  body.replaceChildren(...items.map((item) => {
    const tr = document.createElement('tr');
    const cells = render(item);
    cells.forEach((td, i) => { if (labels[i]) td.dataset.label = labels[i]; });
    tr.append(...cells);
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
  if (params.has('error') || params.has('code')) {
    // The tenant's answer to a login this page started (auth0-spa-js holds its transaction;
    // a link someone else made finds none, and its words are never shown).
    try {
      // Back where the login began (an instance's people, `#instance=…`, kept through it).
      const { appState } = await client.handleRedirectCallback();
      window.history.replaceState({}, '', `/ui/${(appState && appState.hash) || ''}`);
    } catch (e) {
      window.history.replaceState({}, '', '/ui/');
      if (e.error && e.error !== 'missing_transaction') refuse(`Login refused: ${e.error_description || e.error}`);
    }
  }
  const user = (await client.isAuthenticated()) ? await client.getUser() : null;
  $('login').hidden = Boolean(user);
  $('logout').hidden = !user;
  $('intro').hidden = Boolean(user);
  $('who').textContent = user ? user.email : '';
  $('login').onclick = () => client.loginWithRedirect({ appState: { hash: window.location.hash } });
  $('logout').onclick = () => client.logout({ logoutParams: { returnTo: `${window.location.origin}/ui/` } });
  if (!user) return;
  $('another').hidden = false;

  /** A refusal by fleetgate: it will not change by asking again. */
  class Refused extends Error {}

  /** One call to fleetgate's API with the person's token: its status and body. */
  async function call(method, path, body) {
    const token = await client.getTokenSilently();
    const headers = { authorization: `Bearer ${token}` };
    if (body) headers['content-type'] = 'application/json';
    const r = await fetch(path, { method, headers, body: body && JSON.stringify(body) });
    const answer = r.status === 204 ? null : await r.json().catch(() => null);
    return { ok: r.ok, status: r.status, body: answer };
  }

  async function api(path) {
    const { ok, status, body } = await call('GET', path);
    if (status === 401 || status === 403) throw new Refused(body && body.detail);
    if (!ok) throw new Error(`${path}: ${status} ${(body && body.detail) || ''}`);
    return body;
  }

  const when = (at) => (at ? new Date(at).toLocaleString() : 'never');
  /** When a person last logged in, and with which connection when it was not a password. */
  const lastLogin = (p) => {
    const social = p.last_login_connection && p.last_login_connection !== 'Username-Password-Authentication';
    return `${when(p.last_login_at)}${social ? ` (${p.last_login_connection})` : ''}`;
  };

  function loginCell(instance) {
    const { login } = instance;
    if (instance.status !== 'active') return cell(`off (${instance.status})`);
    if (!login) return cell('unknown');
    if (!login.live) return cell('not yet (a reconcile pass writes it)', 'warn');
    return cell(login.via === 'relay' ? 'live, through the relay' : `live, in application ${login.client_id}`, 'live');
  }

  function button(label, name, onclick) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = label;
    b.setAttribute('aria-label', name);
    b.onclick = onclick;
    return b;
  }

  async function showMine() {
    const me = await api('/v1/me/instances');
    $('access').hidden = false;
    $('open-form').hidden = !me.operator;
    $('mine-none').hidden = me.items.length > 0;
    $('mine').hidden = me.items.length === 0;
    rows('mine', me.items, (i) => {
      const td = document.createElement('td');
      td.append(button('People', `People of ${i.instance_id}`, () => openPeople(i.instance_id)));
      return [cell(i.instance_id), cell(i.hosts.join(', ')), cell(i.status), loginCell(i), cell(i.role), td];
    });
    return me;
  }

  // The people of one instance.
  let current = null;
  const NOTES = {
    owner: 'You own this instance: you decide who may log in to it.',
    admin: 'You administer this instance: you may invite, change and remove people (not its owner, and not its keys).',
    operator: 'You are one of the platform\'s operators: you may manage any instance.',
  };

  function personName(p) {
    if (!p.user_id) return p.email;
    const email = p.email || p.seen_email;
    return email ? `${email} (${p.user_id})` : p.user_id;
  }

  function roleCell(g) {
    const td = document.createElement('td');
    const select = document.createElement('select');
    select.setAttribute('aria-label', `Role of ${personName(g)}`);
    for (const role of new Set([...config.roles, g.role])) {
      select.append(Object.assign(document.createElement('option'), { value: role, textContent: role, selected: role === g.role }));
    }
    select.onchange = () => change('PATCH', `/grants/${g.id}`, { role: select.value });
    td.append(select);
    if (!g.user_id) td.append(' (invited, not yet logged in)');
    return td;
  }

  function removeCell(g) {
    const td = document.createElement('td');
    const name = personName(g);
    td.append(button('Remove', `Remove ${name}`, () => {
      if (window.confirm(`Remove ${name} from ${current}? They will no longer be able to log in to it.`)) {
        change('DELETE', `/grants/${g.id}`);
      }
    }));
    return td;
  }

  async function loadPeople() {
    const { ok, body } = await call('GET', `/v1/instances/${encodeURIComponent(current)}/people`);
    if (!ok) {
      $('people-error').textContent = (body && body.detail) || 'fleetgate did not answer';
      rows('people-table', [], () => []);
      return;
    }
    $('people-note').textContent = NOTES[body.you] || '';
    const owner = { ...body.owner, is_owner: true };
    rows('people-table', [owner, ...body.grants], (p) => (p.is_owner
      ? [cell(personName(p)), cell('owner'), cell(lastLogin(p)), cell('')]
      : [cell(personName(p)), roleCell(p), cell(lastLogin(p)), removeCell(p)]));
  }

  /** A change to the current instance's grants; fleetgate's refusal is shown as it says it. */
  async function change(method, path, body) {
    $('people-error').textContent = '';
    const answer = await call(method, `/v1/instances/${encodeURIComponent(current)}${path}`, body);
    if (!answer.ok) $('people-error').textContent = (answer.body && answer.body.detail) || `fleetgate answered ${answer.status}`;
    await loadPeople();
    return answer.ok;
  }

  async function openPeople(id) {
    current = id;
    $('people').hidden = false;
    $('people-title').textContent = `People of ${id}`;
    $('people-error').textContent = '';
    window.history.replaceState({}, '', `/ui/#instance=${encodeURIComponent(id)}`);
    await loadPeople();
    $('people-title').focus();
  }

  $('invite-role').replaceChildren(...config.roles.map((role) => Object.assign(document.createElement('option'), { value: role, textContent: role })));
  $('invite-form').onsubmit = async (event) => {
    event.preventDefault();
    const email = $('invite-email').value.trim();
    if (await change('POST', '/grants', { email, role: $('invite-role').value })) {
      $('invite-email').value = '';
    }
    $('invite-email').focus();
  };
  $('people-close').onclick = () => {
    $('people').hidden = true;
    current = null;
    window.history.replaceState({}, '', '/ui/');
    showMine();
  };
  $('open-form').onsubmit = (event) => {
    event.preventDefault();
    openPeople($('open-id').value.trim());
  };

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
  const me = await showMine();
  const asked = window.location.hash.match(/^#instance=([^&]+)/);
  if (asked) await openPeople(decodeURIComponent(asked[1]));
  if (!me.operator) {
    if (me.items.length === 0 && !asked) {
      refuse(`${user.email} owns or administers no instance, and is not one of the platform's operators (who have fleet:admin on fleetgate's API).`);
    }
    return;
  }
  const timer = setInterval(refresh, 10_000);
  await refresh();
}

main().catch((e) => { $('refusal').textContent = e.message; });
