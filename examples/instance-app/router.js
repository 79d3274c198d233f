// The platform's router, for local runs: one port for every instance, each request passed to
// the instance that serves its Host. Routes come as ROUTES="host=port,host=port".
//
//   ROUTES=acme.apps.localhost=5081,beta-shop.localhost=5082 PORT=5080 node router.js
import http from 'node:http';

const routes = new Map(
  (process.env.ROUTES || '').split(',').filter(Boolean).map((r) => {
    const [host, port] = r.split('=');
    return [host.toLowerCase(), Number(port)];
  }),
);
const port = Number(process.env.PORT || 5080);

http
  .createServer((req, res) => {
    const host = (req.headers.host || '').split(':')[0].toLowerCase();
    const target = routes.get(host);
    if (!target) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end(`no instance is deployed at ${host}\n`);
      return;
    }
    const upstream = http.request(
      { host: '127.0.0.1', port: target, path: req.url, method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`the instance at ${host} does not answer\n`);
    });
    req.pipe(upstream);
  })
  .listen(port, '127.0.0.1', () => console.log(`router on port ${port}: ${[...routes.keys()].join(', ')}`));
