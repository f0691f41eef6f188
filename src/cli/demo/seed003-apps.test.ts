// Seed 003's apps over real sockets: the color apps, and front asking a stand-in for its sidecar's egress with
// the service's name in Host and the caller's color_header passed on.
import assert from 'node:assert/strict';
import { createServer, request, type IncomingHttpHeaders, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { colorApp, frontApp } from './seed003-apps.ts';

const servers: Server[] = [];

after(() => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
});

async function serve(handler: RequestListener): Promise<number> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return (server.address() as AddressInfo).port;
}

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => { body += d; }).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('no answer in 10 s')));
    req.on('error', reject);
    req.end();
  });
}

test('a color app answers its color, and pong on /ping', async () => {
  const port = await serve(colorApp('blue'));
  assert.deepEqual(await get(port, '/'), { status: 200, body: 'blue' });
  assert.deepEqual(await get(port, '/ping'), { status: 200, body: 'pong' });
});

test('front asks its egress for the color service with the caller\'s color_header, and answers what it got', async () => {
  const seen: IncomingHttpHeaders[] = [];
  const egress = await serve((req, res) => {
    seen.push(req.headers);
    res.statusCode = req.headers.color_header === 'green' ? 200 : 404;
    res.end(req.headers.color_header === 'green' ? 'green' : 'no route');
  });
  const front = await serve(frontApp({ egressHost: '127.0.0.1', egressPort: egress, serviceAuthority: 'color.ns.svc.cluster.local:8080', header: 'color_header' }));
  assert.deepEqual(await get(front, '/', { color_header: 'green' }), { status: 200, body: 'green' });
  assert.equal(seen[0]?.host, 'color.ns.svc.cluster.local:8080');
  assert.equal(seen[0]?.color_header, 'green');
  assert.deepEqual(await get(front, '/'), { status: 404, body: 'no route' });
  assert.equal(seen[1]?.color_header, undefined);
});

test('front without a reachable egress: 502 saying which service failed', async () => {
  const closed = await serve(() => {});
  const server = servers.pop()!;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const front = await serve(frontApp({ egressHost: '127.0.0.1', egressPort: closed, serviceAuthority: 'color.ns.svc.cluster.local:8080', header: 'color_header' }));
  const r = await get(front, '/', { color_header: 'blue' });
  assert.equal(r.status, 502);
  assert.match(r.body, /the color service at color\.ns\.svc\.cluster\.local:8080 \(via 127\.0\.0\.1:\d+\) failed: connect ECONNREFUSED/);
});
