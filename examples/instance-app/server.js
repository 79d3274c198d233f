// The smallest real instance under fleetgate: one process serving its single-page app (which
// logs in with auth0-spa-js) and its API (which trusts only tokens issued for this instance,
// through @fleetgate/instance).
//
//   FLEETGATE_URL=… FLEETGATE_INSTANCE_ID=acme FLEETGATE_INSTANCE_KEY=fgi_… PORT=5081 node server.js
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import express from 'express';
import { createInstance } from '@fleetgate/instance';

const here = path.dirname(fileURLToPath(import.meta.url));
const fleet = await createInstance({
  onChange: (snapshot) => console.log(`grants at revision ${snapshot.revision}: ${snapshot.grants.length} grant(s)`),
});
const app = express();

// What the page logs in with: fleetgate's /config answer for this instance. `domain` is the
// tenant, or fleetgate's login relay (FLEETGATE_LOGIN_MODE=relay); the tokens' issuer is the
// tenant's either way.
app.get('/config.json', (_req, res) => {
  const domain = fleet.config.domain || fleet.config.auth0_domain;
  res.json({
    instanceId: fleet.instanceId,
    domain,
    // auth0-spa-js expects `${domain}/` unless told otherwise (and takes only https issuers).
    issuer: fleet.config.issuer && fleet.config.issuer !== `${domain}/` ? fleet.config.issuer : undefined,
    clientId: fleet.config.client_id,
    audience: fleet.config.audience,
    // Where its owner and admins decide who may log in to it: fleetgate's access page.
    accessPage: new URL(`/ui/#instance=${encodeURIComponent(fleet.instanceId)}`, process.env.FLEETGATE_URL).href,
  });
});

// The API: every route under /api needs a token for this instance from someone with access.
app.use('/api', fleet.middleware());
app.get('/api/me', (req, res) => res.json(req.fleetgate));

// The page, its script and the SDK, served as they are (no build step).
app.get('/auth0-spa-js.js', (_req, res) => {
  res.sendFile(path.join(here, 'node_modules/@auth0/auth0-spa-js/dist/auth0-spa-js.production.js'));
});
app.use(express.static(path.join(here, 'public')));
app.get('/callback', (_req, res) => res.sendFile(path.join(here, 'public/index.html')));

const port = Number(process.env.PORT || 5081);
const server = app.listen(port, process.env.HOST || '127.0.0.1', () => {
  console.log(`instance ${fleet.instanceId} serving on port ${port}`);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close();
    fleet.close().then(() => process.exit(0));
  });
}
