// The reverse-proxy probe (`porthole proxy test`, and POST /_porthole/api/proxy/test, which
// an admin may call remotely — through the tunnel, say) follows redirects for http → https
// and path fixes. A redirect to another host must not be followed: the answering server
// would choose where the desk sends a GET (any path and query, any address on the desk's
// network) and learn the status, server and certificate that came back. Real HTTP servers.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { probeProxy } from '../../src/proxy/probe.js';
import { type HttpTestServer, startHttpServer } from '../helpers/servers.js';

describe('probe redirects', () => {
  let inner: HttpTestServer;
  let outer: HttpTestServer;
  const innerHits: string[] = [];
  before(async () => {
    inner = await startHttpServer((req, res) => {
      innerHits.push(req.url ?? '');
      if (req.url === '/_porthole/ping') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ service: 'porthole', version: 'x' }));
        return;
      }
      res.writeHead(200, { server: 'internal-router' });
      res.end('rebooting');
    });
    outer = await startHttpServer((req, res) => {
      if (req.url === '/same/_porthole/ping') {
        // A path fix on the same host: followed.
        res.writeHead(308, { location: `http://127.0.0.1:${inner.port}/_porthole/ping` });
        res.end();
        return;
      }
      res.writeHead(302, { location: `http://localhost:${inner.port}/cgi-bin/reboot?now=1` });
      res.end();
    });
  });
  after(async () => {
    await outer.close();
    await inner.close();
  });

  test('a redirect to another host is reported, never followed', async () => {
    const r = await probeProxy(`http://127.0.0.1:${outer.port}`, { timeoutMs: 5_000 });
    assert.equal(r.ok, false);
    assert.deepEqual(innerHits, [], 'the probe sent a request where the redirect pointed');
    assert.ok(!r.ok && r.code === 'NOT_PORTHOLE', JSON.stringify(r));
    assert.match(r.message, /redirect/i);
    assert.match(r.message, new RegExp(`localhost:${inner.port}`));
  });

  test('a redirect on the same host (another port or path) is still followed', async () => {
    innerHits.length = 0;
    const r = await probeProxy(`http://127.0.0.1:${outer.port}/same`, { timeoutMs: 5_000 });
    assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual(innerHits, ['/_porthole/ping']);
  });
});
