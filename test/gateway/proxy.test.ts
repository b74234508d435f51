// The forwarding core (src/gateway/proxy.ts) against real servers: a front server that hands
// every request to the proxy (standing in for the gateway) and a target app behind it.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import http, { type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { Readable, type Duplex } from 'node:stream';
import { describe, it, type TestContext } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { createProxy, type ForwardInfo, type Proxy as GatewayProxy } from '../../src/gateway/proxy.js';
import { parseTarget, type Target } from '../../src/gateway/target.js';
import { closeServer, collectBody, fetchRaw, type HttpTestServer, listen, listenUnix, startHttpServer, tempDir } from '../helpers/servers.js';

/** What a gateway would pass for a request it lets through unchanged. */
function fwdFrom(req: IncomingMessage): ForwardInfo {
  return {
    headers: req.headers,
    path: req.url ?? '/',
    clientAddress: req.socket.remoteAddress ?? '',
    proto: 'http',
    host: req.headers.host,
  };
}

interface Harness {
  proxy: GatewayProxy;
  front: HttpTestServer;
  /** The last request/response/upgrade socket the front handed to the proxy (for revocation tests). */
  last: { req?: IncomingMessage; res?: ServerResponse; socket?: Duplex };
}

interface HarnessOptions {
  timeoutMs?: number;
  /** Install a 'checkContinue' listener, so the 100 must come from the target through the proxy. */
  checkContinue?: boolean;
  /** Response headers the "gateway" sets before handing over (as it does for CORS). */
  preset?: Record<string, string>;
}

async function harness(t: TestContext, target: Target, options: HarnessOptions = {}): Promise<Harness> {
  const proxy = createProxy({ target, ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}) });
  const last: Harness['last'] = {};
  const handler: RequestListener = (req, res) => {
    last.req = req;
    last.res = res;
    for (const [name, value] of Object.entries(options.preset ?? {})) res.setHeader(name, value);
    proxy.web(req, res, fwdFrom(req));
  };
  const front = await startHttpServer(handler, { highWaterMark: 64 * 1024, requestTimeout: 0 });
  if (options.checkContinue) front.server.on('checkContinue', handler);
  front.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    last.req = req;
    last.socket = socket;
    proxy.upgrade(req, socket, head, fwdFrom(req));
  });
  t.after(async () => {
    proxy.close();
    await front.close();
  });
  return { proxy, front, last };
}

async function app(t: TestContext, handler: RequestListener): Promise<HttpTestServer> {
  const server = await startHttpServer(handler);
  t.after(() => server.close());
  return server;
}

/** Echoes the request as JSON. */
const echo: RequestListener = async (req, res) => {
  const body = await collectBody(req);
  const payload = JSON.stringify({
    method: req.method,
    url: req.url,
    headers: req.headers,
    body: body.toString('utf8'),
    trailers: req.trailers,
  });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
  res.end(payload);
};

function targetOf(server: HttpTestServer, base = ''): Target {
  return parseTarget(`${server.origin}${base}`);
}

/**
 * A raw exchange on a fresh socket, read until the server side closes it. The request is
 * written, not ended: Node's server treats a client's FIN as an abort.
 */
async function rawExchange(port: number, request: string): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(request);
  return (await collectBody(socket)).toString('latin1');
}

function upgradeRequest(port: number, path = '/ws'): string {
  return (
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
    'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'
  );
}

function jsonBody(text: string): { error: { code: string; message: string } } {
  return JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4));
}

describe('proxy: requests and responses', () => {
  it('round-trips GET and POST with headers, query, status text, repeated fields and a base path', async (t) => {
    const target = await app(t, async (req, res) => {
      if (req.url?.startsWith('/app/cookies')) {
        res.writeHead(201, 'Made It', [
          'Set-Cookie',
          'a=1',
          'Set-Cookie',
          'b=2',
          'X-Reply',
          'yes',
          'Content-Length',
          '2',
        ]);
        res.end('ok');
        return;
      }
      await echo(req, res);
    });
    const h = await harness(t, targetOf(target, '/app/'));

    const get = await fetchRaw({ port: h.front.port, path: '/x/y?q=1&r=a%20b', headers: { 'x-custom': 'v' } });
    assert.equal(get.status, 200);
    const seen = JSON.parse(get.text);
    assert.equal(seen.method, 'GET');
    assert.equal(seen.url, '/app/x/y?q=1&r=a%20b');
    assert.equal(seen.headers['x-custom'], 'v');

    const post = await fetchRaw({
      port: h.front.port,
      method: 'POST',
      path: '/submit',
      headers: { 'content-type': 'text/plain' },
      body: 'hello body',
    });
    const posted = JSON.parse(post.text);
    assert.equal(posted.url, '/app/submit');
    assert.equal(posted.body, 'hello body');
    assert.equal(posted.headers['content-length'], '10');

    const cookies = await fetchRaw({ port: h.front.port, path: '/cookies' });
    assert.equal(cookies.status, 201);
    assert.deepEqual(cookies.headers['set-cookie'], ['a=1', 'b=2']);
    assert.equal(cookies.headers['x-reply'], 'yes');
    assert.equal(cookies.text, 'ok');
  });

  it('keeps headers the gateway set and the target\'s repeated fields', async (t) => {
    const target = await app(t, (_req, res) => {
      res.writeHead(200, ['Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Content-Type', 'text/plain']);
      res.end('ok');
    });
    const h = await harness(t, targetOf(target), { preset: { 'access-control-allow-origin': 'https://ui.example', 'content-type': 'x/y' } });
    const r = await fetchRaw({ port: h.front.port, path: '/' });
    assert.deepEqual(r.headers['set-cookie'], ['a=1', 'b=2']);
    assert.equal(r.headers['access-control-allow-origin'], 'https://ui.example');
    assert.equal(r.headers['content-type'], 'text/plain');
  });

  it('forwards a chunked upload re-framed, with response trailers; request trailers stay at the gateway', async (t) => {
    const target = await app(t, async (req, res) => {
      const body = await collectBody(req);
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-digest' });
      res.write(`${req.headers['transfer-encoding']}|${body.toString()}|${req.trailers['x-sum'] ?? ''}`);
      res.addTrailers({ 'x-digest': 'abc' });
      res.end();
    });
    const h = await harness(t, targetOf(target));
    const req = http.request({
      agent: false,
      host: '127.0.0.1',
      port: h.front.port,
      method: 'PUT',
      path: '/up',
      headers: { te: 'trailers', trailer: 'x-sum' },
    });
    req.write('part1-');
    req.addTrailers({ 'x-sum': '42' });
    req.end('part2');
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    const body = await collectBody(res);
    // Request trailers would pass the gateway's stripping (docs/http.md): discarded.
    assert.equal(body.toString(), 'chunked|part1-part2|');
    assert.equal(res.trailers['x-digest'], 'abc');
  });

  it('a HEAD answer (or a Content-Length one) announcing trailers is relayed without them, not as 502', async (t) => {
    // A raw target: node:http would not let an app send this head itself.
    const target = net.createServer((s) => {
      s.on('error', () => {});
      s.once('data', (d: Buffer) => {
        const head = d.toString('latin1').startsWith('HEAD ');
        s.end(head ? 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n' : 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTrailer: X-T\r\n\r\nok');
      });
    });
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    t.after(() => target.close());
    const h = await harness(t, parseTarget(`http://127.0.0.1:${(target.address() as net.AddressInfo).port}`));
    for (const method of ['HEAD', 'GET']) {
      const r = await rawExchange(h.front.port, `${method} /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
      assert.match(r, /^HTTP\/1\.1 200 OK\r\n/, `${method}: ${r.slice(0, 200)}`);
      assert.doesNotMatch(r, /\r\ntrailer:/i);
    }
  });

  it('strips hop-by-hop fields in both directions, including those Connection lists', async (t) => {
    const target = await app(t, async (req, res) => {
      const body = JSON.stringify(req.headers);
      res.writeHead(200, {
        connection: 'x-bar',
        'x-bar': 'secret-hop',
        'proxy-authenticate': 'Basic realm="hop"',
        'x-ok': '1',
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
    });
    const h = await harness(t, targetOf(target));
    const r = await fetchRaw({
      port: h.front.port,
      path: '/',
      headers: {
        connection: 'keep-alive, X-Foo',
        'x-foo': 'listed',
        'keep-alive': 'timeout=30',
        'proxy-authorization': 'Basic aG9wOmhvcA==',
        'proxy-connection': 'keep-alive',
        te: 'trailers, deflate;q=0.5',
        'http2-settings': 'AAMAAABkAAQAoAAAAAIAAAAA',
        'x-keep': 'yes',
      },
    });
    const seen = JSON.parse(r.text);
    assert.equal(seen['x-keep'], 'yes');
    for (const gone of ['x-foo', 'keep-alive', 'proxy-authorization', 'proxy-connection', 'http2-settings', 'upgrade']) {
      assert.equal(seen[gone], undefined, `${gone} reached the target`);
    }
    assert.equal(seen.te, 'trailers');
    assert.notEqual(seen.connection, 'keep-alive, X-Foo');
    assert.equal(r.headers['x-ok'], '1');
    assert.equal(r.headers['x-bar'], undefined);
    assert.equal(r.headers['proxy-authenticate'], undefined);
    assert.notEqual(r.headers.connection, 'x-bar');
  });

  it('sends the target its own Host and sets X-Forwarded-For/-Proto/-Host', async (t) => {
    const target = await app(t, echo);
    const h = await harness(t, targetOf(target));
    const plain = JSON.parse((await fetchRaw({ port: h.front.port, path: '/' })).text);
    assert.equal(plain.headers.host, `127.0.0.1:${target.port}`);
    assert.equal(plain.headers['x-forwarded-host'], `127.0.0.1:${h.front.port}`);
    assert.equal(plain.headers['x-forwarded-proto'], 'http');
    assert.equal(plain.headers['x-forwarded-for'], '127.0.0.1');

    // The harness passes the client's X-Forwarded-For through (as the gateway does for a
    // trusted proxy): the proxy appends the peer. Proto is the gateway's, not the client's.
    const chained = JSON.parse(
      (
        await fetchRaw({
          port: h.front.port,
          path: '/',
          headers: { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https', host: 'desk.example' },
        })
      ).text,
    );
    assert.equal(chained.headers['x-forwarded-for'], '203.0.113.7, 127.0.0.1');
    assert.equal(chained.headers['x-forwarded-proto'], 'http');
    assert.equal(chained.headers['x-forwarded-host'], 'desk.example');
    assert.equal(chained.headers.host, `127.0.0.1:${target.port}`);

    // HTTP/1.0 without Host: no X-Forwarded-Host at all.
    const old = await rawExchange(h.front.port, 'GET /old HTTP/1.0\r\n\r\n');
    const seen = JSON.parse(old.slice(old.indexOf('\r\n\r\n') + 4));
    assert.equal(seen.headers['x-forwarded-host'], undefined);
    assert.equal(seen.headers.host, `127.0.0.1:${target.port}`);
  });

  it('reaches a unix socket target with Host: localhost', async (t) => {
    const tmp = tempDir();
    t.after(() => tmp.cleanup());
    const path = join(tmp.dir, 'app.sock');
    const server = http.createServer(echo);
    await listenUnix(server, path);
    t.after(() => closeServer(server));
    const h = await harness(t, parseTarget(`unix:${path}`));
    const r = await fetchRaw({ port: h.front.port, path: '/via/unix?x=1' });
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.text);
    assert.equal(seen.url, '/via/unix?x=1');
    assert.equal(seen.headers.host, 'localhost');
  });

  it('reuses one keep-alive connection to the target for sequential requests', async (t) => {
    let connections = 0;
    const target = await app(t, (_req, res) => res.end('x'));
    target.server.on('connection', () => connections++);
    const h = await harness(t, targetOf(target));
    for (let i = 0; i < 5; i++) assert.equal((await fetchRaw({ port: h.front.port, path: `/${i}` })).text, 'x');
    assert.equal(connections, 1);
  });

  it('relays 103 Early Hints', async (t) => {
    const target = await app(t, (_req, res) => {
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      res.end('page');
    });
    const h = await harness(t, targetOf(target));
    const req = http.request({ agent: false, host: '127.0.0.1', port: h.front.port, path: '/' });
    const hints: http.InformationEvent[] = [];
    req.on('information', (info) => hints.push(info));
    req.end();
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    assert.equal((await collectBody(res)).toString(), 'page');
    assert.equal(hints.length, 1);
    assert.equal(hints[0]!.statusCode, 103);
    assert.equal(hints[0]!.headers.link, '</style.css>; rel=preload; as=style');
  });
});

// Bodiless requests to http:// and unix: targets take porthole's own client (proxy-fast.ts); these
// pin what that path must keep on top of the shared tests above.
describe('proxy: bodiless requests (own HTTP/1.1 client)', () => {
  it('relays response trailers, minus hop-by-hop ones', async (t) => {
    const target = await app(t, (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-digest' });
      res.write('body');
      res.addTrailers([
        ['X-Digest', 'abc'],
        ['Keep-Alive', 'timeout=1'],
      ]);
      res.end();
    });
    const h = await harness(t, targetOf(target));
    const r = await fetchRaw({ port: h.front.port, path: '/t', headers: { te: 'trailers' } });
    assert.equal(r.text, 'body');
    assert.equal(r.trailers['x-digest'], 'abc');
    assert.equal(r.trailers['keep-alive'], undefined);
  });

  it('answers HEAD, 204 and 304 without a body and keeps the connections usable', async (t) => {
    let connections = 0;
    const target = await app(t, (req, res) => {
      if (req.url === '/204') res.writeHead(204).end();
      else if (req.url === '/304') res.writeHead(304, { etag: '"v1"' }).end();
      else res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' }).end(req.method === 'HEAD' ? undefined : 'hello');
    });
    target.server.on('connection', () => connections++);
    const h = await harness(t, targetOf(target));
    // One client connection for all, so a stray body byte would corrupt the next answer.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    t.after(() => agent.destroy());
    const noContent = await fetchRaw({ port: h.front.port, path: '/204', agent });
    assert.equal(noContent.status, 204);
    assert.equal(noContent.body.length, 0);
    const notModified = await fetchRaw({ port: h.front.port, path: '/304', agent, headers: { 'if-none-match': '"v1"' } });
    assert.equal(notModified.status, 304);
    assert.equal(notModified.headers.etag, '"v1"');
    assert.equal(notModified.body.length, 0);
    assert.equal((await fetchRaw({ port: h.front.port, path: '/after', agent })).text, 'hello');
    assert.equal(connections, 1);
    const head = await fetchRaw({ port: h.front.port, method: 'HEAD', path: '/h', agent });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], '5');
    assert.equal(head.body.length, 0);
    assert.equal((await fetchRaw({ port: h.front.port, path: '/after-head', agent })).text, 'hello');
    // The client closes a connection after HEAD (a target that wrongly sends a body cannot desync it).
    assert.equal(connections, 2);
  });

  it('relays a 40 KiB response head (large Set-Cookie sets)', async (t) => {
    const cookies = Array.from({ length: 10 }, (_, i) => `c${i}=${'v'.repeat(4000)}`);
    const target = await app(t, (_req, res) => {
      res.writeHead(200, cookies.flatMap((c) => ['Set-Cookie', c]));
      res.end('ok');
    });
    const h = await harness(t, targetOf(target));
    const r = await fetchRaw({ port: h.front.port, path: '/', maxHeaderSize: 128 * 1024 });
    assert.equal(r.status, 200);
    assert.deepEqual(r.headers['set-cookie'], cookies);
  });

  it('forwards a bodiless POST with Content-Length: 0 and an OPTIONS * request', async (t) => {
    const target = await app(t, echo);
    const h = await harness(t, targetOf(target));
    const post = await fetchRaw({ port: h.front.port, method: 'POST', path: '/p', headers: { 'content-length': '0' } });
    const seen = JSON.parse(post.text);
    assert.equal(seen.method, 'POST');
    assert.equal(seen.headers['content-length'], '0');
    assert.equal(seen.headers['transfer-encoding'], undefined);
    const star = await rawExchange(h.front.port, 'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(star, /^HTTP\/1\.1 200 /);
    const echoed = JSON.parse(star.slice(star.indexOf('\r\n\r\n') + 4)) as { method: string; url: string };
    assert.equal(echoed.method, 'OPTIONS');
    assert.equal(echoed.url, '*');
  });
});

describe('proxy: Expect: 100-continue', () => {
  for (const checkContinue of [false, true]) {
    const who = checkContinue ? 'the target (relayed)' : 'the front server';
    it(`completes when the 100 comes from ${who}`, async (t) => {
      const target = await app(t, echo);
      const h = await harness(t, targetOf(target), { checkContinue });
      const req = http.request({
        agent: false,
        host: '127.0.0.1',
        port: h.front.port,
        method: 'POST',
        path: '/upload',
        headers: { expect: '100-continue', 'content-length': '5' },
      });
      let continues = 0;
      req.on('continue', () => {
        if (++continues === 1) req.end('hello');
      });
      const [res] = (await once(req, 'response')) as [IncomingMessage];
      const seen = JSON.parse((await collectBody(res)).toString());
      assert.equal(res.statusCode, 200);
      assert.equal(seen.body, 'hello');
      assert.equal(seen.headers.expect, '100-continue');
      assert.equal(continues, 1, 'exactly one 100 Continue reached the client');
    });
  }
});

describe('proxy: failures', () => {
  it('answers 502 TARGET_UNAVAILABLE as JSON when nothing listens on the port', async (t) => {
    const gone = await startHttpServer();
    const target = targetOf(gone);
    await gone.close();
    const h = await harness(t, target);
    const r = await fetchRaw({ port: h.front.port, path: '/' });
    assert.equal(r.status, 502);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    const body = JSON.parse(r.text);
    assert.equal(body.error.code, 'TARGET_UNAVAILABLE');
    assert.ok(!r.text.includes(String(gone.port)), 'the error names no address');
  });

  it('answers 502 when the unix socket does not exist, also for a POST with a body', async (t) => {
    const tmp = tempDir();
    t.after(() => tmp.cleanup());
    const h = await harness(t, parseTarget(`unix:${join(tmp.dir, 'missing.sock')}`));
    const r = await fetchRaw({ port: h.front.port, method: 'POST', path: '/', body: 'x'.repeat(100_000) });
    assert.equal(r.status, 502);
    assert.equal(JSON.parse(r.text).error.code, 'TARGET_UNAVAILABLE');
  });

  it('answers 504 TARGET_TIMEOUT when no response head arrives in time, and drops the upstream', async (t) => {
    const upstreamClosed = new EventEmitter();
    const target = await app(t, (req) => {
      req.resume();
      req.socket.once('close', () => upstreamClosed.emit('closed'));
    });
    const h = await harness(t, targetOf(target), { timeoutMs: 200 });
    const closed = once(upstreamClosed, 'closed');
    const r = await fetchRaw({ port: h.front.port, path: '/slow' });
    assert.equal(r.status, 504);
    assert.equal(JSON.parse(r.text).error.code, 'TARGET_TIMEOUT');
    await closed;
  });

  it('truncates the client response when the target dies mid-body', async (t) => {
    const target = await app(t, (_req, res) => {
      res.writeHead(200, { 'content-length': '100000' });
      res.write('x'.repeat(1000), () => res.socket?.destroy());
    });
    const h = await harness(t, targetOf(target));
    const req = http.request({ agent: false, host: '127.0.0.1', port: h.front.port, path: '/' });
    req.end();
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    assert.equal(res.statusCode, 200);
    await assert.rejects(collectBody(res));
    assert.equal(res.complete, false);
  });

  it('replays a bodiless GET once when a pooled connection turns out closed, but not a POST', async (t) => {
    // A target that serves one request per connection and drops the connection on the next.
    let connections = 0;
    const target = net.createServer((sock) => {
      connections++;
      let buf = '';
      let served = 0;
      sock.on('error', () => {});
      sock.on('data', (d: Buffer) => {
        buf += d.toString('latin1');
        for (let i = buf.indexOf('\r\n\r\n'); i !== -1; i = buf.indexOf('\r\n\r\n')) {
          buf = buf.slice(i + 4);
          if (served++ === 0) sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
          else sock.destroy();
        }
      });
    });
    const port = await listen(target);
    t.after(() => closeServer(target));
    const h = await harness(t, parseTarget(String(port)));
    assert.equal((await fetchRaw({ port: h.front.port, path: '/1' })).text, 'ok');
    assert.equal((await fetchRaw({ port: h.front.port, path: '/2' })).text, 'ok');
    assert.equal(connections, 2);
    // Requests with a body use their own pool (node:http, proxy-web.ts): the first opens a
    // connection, the second finds it closed and is not replayed.
    const first = await fetchRaw({ port: h.front.port, method: 'POST', path: '/3', body: 'data' });
    assert.equal(first.text, 'ok');
    assert.equal(connections, 3);
    const post = await fetchRaw({ port: h.front.port, method: 'POST', path: '/4', body: 'data' });
    assert.equal(post.status, 502);
    assert.equal(connections, 3);
  });
});

describe('proxy: lifecycle', () => {
  /** A target that streams forever (with backpressure) and reports when its side closes. */
  function endless(events: EventEmitter): RequestListener {
    const chunk = Buffer.alloc(64 * 1024, 'z');
    return (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const pump = (): void => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      res.once('close', () => events.emit('closed'));
      pump();
    };
  }

  it('destroys the upstream when the client aborts mid-download', async (t) => {
    const events = new EventEmitter();
    const target = await app(t, endless(events));
    const h = await harness(t, targetOf(target));
    const closed = once(events, 'closed');
    const req = http.request({ agent: false, host: '127.0.0.1', port: h.front.port, path: '/stream' });
    req.on('error', () => {});
    req.end();
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    res.on('error', () => {});
    await once(res, 'data');
    req.destroy();
    await closed;
  });

  it('destroys the upstream when the client aborts mid-upload', async (t) => {
    const events = new EventEmitter();
    const target = await app(t, (req) => {
      req.once('data', () => events.emit('receiving'));
      req.resume();
      req.once('close', () => events.emit('closed', req.complete));
    });
    const h = await harness(t, targetOf(target));
    const receiving = once(events, 'receiving');
    const closed = once(events, 'closed');
    const req = http.request({ agent: false, host: '127.0.0.1', port: h.front.port, method: 'POST', path: '/up' });
    req.on('error', () => {});
    req.write(Buffer.alloc(1024, 'u'));
    await receiving;
    req.destroy();
    const [complete] = await closed;
    assert.equal(complete, false);
  });

  for (const how of ['res.destroy()', 'req.socket.destroy()'] as const) {
    it(`tears down the upstream when the gateway revokes a streaming response with ${how}`, async (t) => {
      const events = new EventEmitter();
      const target = await app(t, endless(events));
      const h = await harness(t, targetOf(target));
      const closed = once(events, 'closed');
      const req = http.request({ agent: false, host: '127.0.0.1', port: h.front.port, path: '/stream' });
      req.on('error', () => {});
      req.end();
      const [res] = (await once(req, 'response')) as [IncomingMessage];
      res.on('error', () => {}); // 'aborted': the expected outcome
      const ended = new Promise((resolve) => res.once('close', resolve));
      await once(res, 'data');
      if (how === 'res.destroy()') h.last.res!.destroy();
      else h.last.req!.socket.destroy();
      await closed;
      await ended;
      assert.equal(res.complete, false);
    });
  }

  it('delivers SSE events one by one, unbuffered (lock-step with the target)', { timeout: 10_000 }, async (t) => {
    const acks = new EventEmitter();
    const target = await app(t, async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.flushHeaders();
      await once(acks, 'ack'); // the client has the response head
      for (let i = 0; i < 5; i++) {
        res.write(`id: ${i}\ndata: event ${i}\n\n`);
        await once(acks, 'ack'); // the client has event i: only then is i+1 written
      }
      res.end();
    });
    const h = await harness(t, targetOf(target));
    const req = http.request({ agent: false, host: '127.0.0.1', port: h.front.port, path: '/events' });
    req.end();
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    assert.equal(res.headers['content-type'], 'text/event-stream');
    const received: string[] = [];
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (d: string) => {
      buf += d;
      for (let i = buf.indexOf('\n\n'); i !== -1; i = buf.indexOf('\n\n')) {
        received.push(buf.slice(0, i));
        buf = buf.slice(i + 2);
        acks.emit('ack');
      }
    });
    acks.emit('ack');
    await once(res, 'end');
    assert.deepEqual(
      received,
      [0, 1, 2, 3, 4].map((i) => `id: ${i}\ndata: event ${i}`),
    );
  });
});

describe('proxy: streaming integrity', () => {
  const MIB = 1024 * 1024;
  const TOTAL_MIB = 256;
  const block = randomBytes(MIB);
  const expected = (() => {
    const hash = createHash('sha256');
    for (let i = 0; i < TOTAL_MIB; i++) hash.update(block);
    return hash.digest('hex');
  })();
  const source = (): Readable =>
    Readable.from(
      (function* () {
        for (let i = 0; i < TOTAL_MIB; i++) yield block;
      })(),
      { objectMode: false },
    );

  it(`downloads and uploads ${TOTAL_MIB} MiB intact in bounded memory`, { timeout: 120_000 }, async (t) => {
    const target = await app(t, async (req, res) => {
      if (req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(TOTAL_MIB * MIB) });
        source().pipe(res);
        return;
      }
      const hash = createHash('sha256');
      let bytes = 0;
      for await (const chunk of req) {
        hash.update(chunk as Buffer);
        bytes += (chunk as Buffer).length;
      }
      res.end(JSON.stringify({ bytes, sha256: hash.digest('hex') }));
    });
    const h = await harness(t, targetOf(target));
    const baseline = process.memoryUsage.rss();
    let peak = baseline;
    let n = 0;
    const sample = (): void => {
      if (++n % 64 === 0) peak = Math.max(peak, process.memoryUsage.rss());
    };

    // Download
    const get = http.request({ agent: false, host: '127.0.0.1', port: h.front.port, path: '/big' });
    get.end();
    const [res] = (await once(get, 'response')) as [IncomingMessage];
    const down = createHash('sha256');
    let downBytes = 0;
    for await (const chunk of res) {
      down.update(chunk as Buffer);
      downBytes += (chunk as Buffer).length;
      sample();
    }
    assert.equal(downBytes, TOTAL_MIB * MIB);
    assert.equal(down.digest('hex'), expected);

    // Upload (chunked: no Content-Length)
    const put = http.request({ agent: false, host: '127.0.0.1', port: h.front.port, method: 'PUT', path: '/big' });
    const body = source();
    body.on('data', sample);
    body.pipe(put);
    const [upRes] = (await once(put, 'response')) as [IncomingMessage];
    const result = JSON.parse((await collectBody(upRes)).toString());
    assert.equal(result.bytes, TOTAL_MIB * MIB);
    assert.equal(result.sha256, expected);

    const growth = (peak - baseline) / MIB;
    t.diagnostic(`rss growth ${growth.toFixed(1)} MiB while moving ${2 * TOTAL_MIB} MiB`);
    assert.ok(growth < 128, `rss grew ${growth.toFixed(1)} MiB`);
  });
});

describe('proxy: upgrades', () => {
  interface WsApp {
    server: HttpTestServer;
    seen: IncomingMessage[];
    events: EventEmitter;
  }

  async function wsApp(t: TestContext): Promise<WsApp> {
    const wss = new WebSocketServer({ noServer: true });
    const seen: IncomingMessage[] = [];
    const events = new EventEmitter();
    const server = await startHttpServer((_req, res) => res.end('plain'));
    server.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      seen.push(req);
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
        ws.on('close', () => events.emit('closed'));
        events.emit('open');
      });
    });
    t.after(async () => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      await server.close();
    });
    return { server, seen, events };
  }

  it('carries a WebSocket (ws) both ways: text, a 1 MiB binary message, clean close', async (t) => {
    const target = await wsApp(t);
    const h = await harness(t, targetOf(target.server, '/base'));
    const ws = new WebSocket(`ws://127.0.0.1:${h.front.port}/ws?room=1`);
    await once(ws, 'open');
    ws.send('hello');
    const [text] = await once(ws, 'message');
    assert.equal(String(text), 'hello');
    const big = randomBytes(1024 * 1024);
    ws.send(big);
    const [echoed, isBinary] = await once(ws, 'message');
    assert.equal(isBinary, true);
    assert.ok(Buffer.compare(echoed as Buffer, big) === 0);

    const req = target.seen[0]!;
    assert.equal(req.url, '/base/ws?room=1');
    assert.equal(req.headers.host, `127.0.0.1:${target.server.port}`);
    assert.equal(req.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(req.headers['x-forwarded-host'], `127.0.0.1:${h.front.port}`);
    assert.equal(req.headers.upgrade, 'websocket');
    assert.match(String(req.headers.connection), /upgrade/i);

    const serverClosed = once(target.events, 'closed');
    ws.close(1000, 'bye');
    const [code] = await once(ws, 'close');
    assert.equal(code, 1000);
    await serverClosed;
  });

  it('closes the target side when the gateway destroys the client socket (revocation)', async (t) => {
    const target = await wsApp(t);
    const h = await harness(t, targetOf(target.server));
    const opened = once(target.events, 'open');
    const ws = new WebSocket(`ws://127.0.0.1:${h.front.port}/ws`);
    ws.on('error', () => {});
    await once(ws, 'open');
    await opened;
    const serverClosed = once(target.events, 'closed');
    h.last.socket!.destroy();
    await serverClosed;
    await once(ws, 'close');
  });

  it('closes the client side when the target drops the connection', async (t) => {
    const target = await wsApp(t);
    const h = await harness(t, targetOf(target.server));
    const ws = new WebSocket(`ws://127.0.0.1:${h.front.port}/ws`);
    ws.on('error', () => {});
    await once(ws, 'open');
    const closed = once(ws, 'close');
    for (const s of target.seen) s.socket.destroy();
    await closed;
  });

  it('relays a non-101 answer with its body, then closes', async (t) => {
    const target = await startHttpServer();
    t.after(() => target.close());
    target.server.on('upgrade', (_req: IncomingMessage, socket: Duplex) => {
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 6\r\nX-Why: policy\r\n\r\nnope!\n');
    });
    const h = await harness(t, targetOf(target));
    const answer = await rawExchange(h.front.port, upgradeRequest(h.front.port));
    assert.match(answer, /^HTTP\/1\.1 403 Forbidden\r\n/);
    assert.match(answer, /\r\nX-Why: policy\r\n/);
    assert.match(answer, /\r\nConnection: close\r\n/);
    assert.ok(answer.endsWith('\r\n\r\nnope!\n'));
  });

  it('answers a raw 502 with the JSON error when the target is down', async (t) => {
    const gone = await startHttpServer();
    const target = targetOf(gone);
    await gone.close();
    const h = await harness(t, target);
    const answer = await rawExchange(h.front.port, upgradeRequest(h.front.port));
    assert.match(answer, /^HTTP\/1\.1 502 Bad Gateway\r\n/);
    assert.match(answer, /\r\nConnection: close\r\n/);
    assert.equal(jsonBody(answer).error.code, 'TARGET_UNAVAILABLE');
  });

  it('answers a raw 504 when the target does not answer the upgrade in time', async (t) => {
    const target = await startHttpServer();
    const held: Duplex[] = [];
    target.server.on('upgrade', (_req: IncomingMessage, socket: Duplex) => {
      held.push(socket);
    });
    t.after(async () => {
      for (const s of held) s.destroy();
      await target.close();
    });
    const h = await harness(t, targetOf(target), { timeoutMs: 200 });
    const answer = await rawExchange(h.front.port, upgradeRequest(h.front.port));
    assert.match(answer, /^HTTP\/1\.1 504 Gateway Timeout\r\n/);
    assert.equal(jsonBody(answer).error.code, 'TARGET_TIMEOUT');
  });

  it('close() ends open tunnels and pooled connections', async (t) => {
    const target = await wsApp(t);
    const h = await harness(t, targetOf(target.server));
    const ws = new WebSocket(`ws://127.0.0.1:${h.front.port}/ws`);
    ws.on('error', () => {});
    await once(ws, 'open');
    const closed = once(ws, 'close');
    h.proxy.close();
    await closed;
  });
});

describe('createProxy options', () => {
  it('refuses a bad timeoutMs', () => {
    for (const timeoutMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31]) {
      assert.throws(() => createProxy({ target: parseTarget('3000'), timeoutMs }), { code: 'INVALID_ARGUMENT' });
    }
    createProxy({ target: parseTarget('3000'), timeoutMs: 0.5 }).close();
  });
});
