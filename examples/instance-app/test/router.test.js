// The local stand-in for the platform's router (router.js), run as `node router.js` is: each
// request goes to the instance serving its Host, anything else is told no instance is there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const ROUTER = fileURLToPath(new URL('../router.js', import.meta.url));

/** An instance answering with its name, the path and the Host it was asked for. */
async function instance(name) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'x-instance': name });
    res.end(JSON.stringify({ name, path: req.url, host: req.headers.host, method: req.method }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

/** A free port, for the router and for an instance that is not running. */
async function freePort() {
  const probe = http.createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** `router.js` with these routes, once it listens. */
async function router(routes) {
  const port = await freePort();
  const child = spawn(process.execPath, [ROUTER], {
    env: { ...process.env, ROUTES: routes, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => { if (String(chunk).includes('router on port')) resolve(); });
    child.once('exit', (code) => reject(new Error(`router.js exited with ${code}`)));
  });
  return { port, child };
}

function ask(port, host, path = '/', method = 'GET') {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('requests go to the instance serving their Host, and nowhere else', async (t) => {
  const acme = await instance('acme');
  const beta = await instance('beta');
  const stopped = await freePort();
  const { port, child } = await router(
    `acme.apps.localhost=${acme.address().port},Beta-Shop.localhost=${beta.address().port},gone.localhost=${stopped}`,
  );
  t.after(() => { child.kill(); acme.close(); beta.close(); });

  let res = await ask(port, `acme.apps.localhost:${port}`, '/api/me?x=1');
  assert.equal(res.status, 200);
  assert.deepEqual(JSON.parse(res.body), { name: 'acme', path: '/api/me?x=1', host: `acme.apps.localhost:${port}`, method: 'GET' });
  // Hosts are matched without case; the method and the instance's headers pass through.
  res = await ask(port, 'BETA-shop.localhost', '/callback', 'POST');
  assert.equal(res.headers['x-instance'], 'beta');
  assert.equal(JSON.parse(res.body).method, 'POST');
  // A host nobody serves, and an instance that does not answer, are said so.
  res = await ask(port, 'evil.localhost');
  assert.equal(res.status, 404);
  assert.match(res.body, /no instance is deployed at evil\.localhost/);
  res = await ask(port, 'gone.localhost');
  assert.equal(res.status, 502);
  assert.match(res.body, /the instance at gone\.localhost does not answer/);
});
