// Second hostile review of request handling: framing and method tricks that once got a
// request past the pipeline, or desynchronised the gateway's pooled connection to the app.
// Real gateway (sidecar mode) in front of a real node:http app on 127.0.0.1, raw sockets.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { createGateway, type Gateway } from '../../src/gateway/gateway.js';
import { type Listening, listenGateway } from '../../src/gateway/listen.js';
import { exchangeRaw } from '../helpers/http.js';
import { closeServer, listen, tempDir } from '../helpers/servers.js';
import { TOKEN } from '../control/helpers.js';

const exchange = (port: number, data: string, ms = 2000): Promise<string> => exchangeRaw(port, data, ms);

describe('request framing: an upgrade request with a body', () => {
  const dir = tempDir();
  let gw: Gateway;
  let gateway: Server;
  let app: Server;
  let port = 0;
  /** Paths the app answered, in order. */
  const served: string[] = [];

  before(async () => {
    // An app that answers without reading request bodies (common: a webhook that just says
    // 200), and serves a secret at /secret. Nothing but porthole guards /secret.
    app = createServer((req, res) => {
      served.push(req.url ?? '');
      res.end(req.url === '/secret' ? 'SECRET' : 'public');
    });
    const appPort = await listen(app);
    writeFileSync(
      `${dir.dir}/porthole.toml`,
      'version = 1\n[auth]\nloopback_exempt = false\npublic_paths = ["/hooks"]\n[gateway]\ntarget_timeout = 2\n',
    );
    gw = createGateway({ stateDir: dir.dir, target: `http://127.0.0.1:${appPort}`, token: TOKEN, config: loadConfig({ home: dir.dir, env: {}, flags: {} }).config });
    gateway = createServer(gw.handleRequest);
    gateway.on('upgrade', gw.handleUpgrade);
    port = await listen(gateway);
  });

  after(async () => {
    await gw.close();
    gateway.closeAllConnections();
    await closeServer(gateway);
    app.closeAllConnections();
    await closeServer(app);
    dir.cleanup();
  });

  test("is refused: an anonymous visitor cannot desynchronise the app connection another user's request travels on", async () => {
    const host = `Host: 127.0.0.1:${port}\r\n`;
    // A public path, as an upgrade announcing a 600-byte body it never sends. The gateway sent
    // the head to the app (Content-Length kept) and held the body back until a 101; the app
    // answered at once and read the next 600 bytes on that pooled connection as this body:
    // the head of the next user's request. A Node app then dropped that request (the user
    // got 504); an app server that goes on parsing (Go's net/http) would have read whatever
    // the attacker put in the next body as a request of its own, unauthenticated.
    const first = await exchange(port, `GET /hooks/a HTTP/1.1\r\n${host}Connection: Upgrade\r\nUpgrade: foo\r\nContent-Length: 600\r\n\r\n`);
    assert.match(first, /^HTTP\/1\.1 400 /, first);
    const honest = await exchange(port, `GET /secret HTTP/1.1\r\n${host}Authorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`, 4000);
    assert.match(honest, /^HTTP\/1\.1 200 [\s\S]*SECRET$/, honest);
    // The smuggling form of the same attack: nothing reaches /secret without a credential.
    const smuggled = `${'\r\n'.repeat(300)}GET /secret HTTP/1.1\r\nHost: x\r\n\r\n`;
    await exchange(port, `GET /hooks/a HTTP/1.1\r\n${host}Connection: Upgrade\r\nUpgrade: foo\r\nContent-Length: 600\r\n\r\n`);
    const second = await exchange(port, `POST /hooks/b HTTP/1.1\r\n${host}Content-Length: ${smuggled.length}\r\nConnection: close\r\n\r\n${smuggled}`, 4000);
    assert.match(second, /^HTTP\/1\.1 200 [\s\S]*public$/, second);
    assert.equal(served.filter((u) => u === '/secret').length, 1, `served: ${served.join(' ')}`);
  });

  test('a chunked upgrade request is refused too; a bodiless one still reaches the app', async () => {
    const host = `Host: 127.0.0.1:${port}\r\n`;
    const chunked = await exchange(port, `GET /hooks/a HTTP/1.1\r\n${host}Connection: Upgrade\r\nUpgrade: foo\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`);
    assert.match(chunked, /^HTTP\/1\.1 400 /, chunked);
    const before = served.length;
    const plain = await exchange(port, `GET /hooks/c HTTP/1.1\r\n${host}Connection: Upgrade\r\nUpgrade: foo\r\nContent-Length: 0\r\n\r\n`);
    // The app does not speak "foo": it answers 200, which the gateway relays and closes.
    assert.match(plain, /^HTTP\/1\.1 200 [\s\S]*public$/, plain);
    assert.equal(served.length, before + 1);
  });
});

describe('request framing: a refused upgrade never leaves its app connection in the pool', () => {
  const dir = tempDir();
  let gw: Gateway;
  let gateway: Server;
  let app: Server;
  let port = 0;
  /** The app-side client port of every request: one connection per port. */
  const conns: { url: string; port: number }[] = [];

  before(async () => {
    app = createServer((req, res) => {
      conns.push({ url: req.url ?? '', port: req.socket.remotePort ?? 0 });
      res.end('no upgrade here');
    });
    // The app refuses upgrades: it answers the request as plain HTTP (no 101).
    const appPort = await listen(app);
    writeFileSync(`${dir.dir}/porthole.toml`, 'version = 1\n[auth]\nloopback_exempt = false\npublic_paths = ["/hooks"]\n');
    gw = createGateway({ stateDir: dir.dir, target: `http://127.0.0.1:${appPort}`, token: TOKEN, config: loadConfig({ home: dir.dir, env: {}, flags: {} }).config });
    gateway = createServer(gw.handleRequest);
    gateway.on('upgrade', gw.handleUpgrade);
    port = await listen(gateway);
  });
  after(async () => {
    await gw.close();
    await closeServer(gateway);
    await closeServer(app);
    dir.cleanup();
  });

  test('the next request reaches the app on a different connection', async () => {
    const refused = await exchange(port, `GET /hooks/ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
    assert.match(refused, /^HTTP\/1\.1 200/);
    // A request with a body: it takes the same keep-alive pool the upgrade went through.
    const next = await exchange(port, `POST /hooks/next HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi`);
    assert.match(next, /^HTTP\/1\.1 200/);
    const a = conns.find((c) => c.url === '/hooks/ws');
    const b = conns.find((c) => c.url === '/hooks/next');
    assert.ok(a && b, JSON.stringify(conns));
    assert.notEqual(a.port, b.port, 'the connection that carried the upgrade was reused');
  });
});

describe('request framing: transfer codings', () => {
  const dir = tempDir();
  let gw: Gateway;
  let gateway: Server;
  let app: Server;
  let port = 0;
  const bodies: string[] = [];

  before(async () => {
    app = createServer((req, res) => {
      let b = '';
      req.setEncoding('latin1');
      req.on('data', (d: string) => (b += d));
      req.on('end', () => {
        bodies.push(b);
        res.end('ok');
      });
    });
    const appPort = await listen(app);
    writeFileSync(`${dir.dir}/porthole.toml`, 'version = 1\n[auth]\nloopback_exempt = false\npublic_paths = ["/hooks"]\n');
    gw = createGateway({ stateDir: dir.dir, target: `http://127.0.0.1:${appPort}`, token: TOKEN, config: loadConfig({ home: dir.dir, env: {}, flags: {} }).config });
    gateway = createServer(gw.handleRequest);
    port = await listen(gateway);
  });
  after(async () => {
    await gw.close();
    await closeServer(gateway);
    await closeServer(app);
    dir.cleanup();
  });

  test('`gzip, chunked` is 501 TRANSFER_CODING_UNSUPPORTED and never reaches the app; plain chunked does', async () => {
    const coded = await exchange(port, `POST /hooks/a HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n2\r\nhi\r\n0\r\n\r\n`);
    assert.match(coded, /^HTTP\/1\.1 501/);
    assert.match(coded, /TRANSFER_CODING_UNSUPPORTED/);
    assert.deepEqual(bodies, []);
    const plain = await exchange(port, `POST /hooks/b HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nhi\r\n0\r\n\r\n`);
    assert.match(plain, /^HTTP\/1\.1 200/);
    assert.deepEqual(bodies, ['hi']);
  });
});

describe('Expect: 100-continue', () => {
  const dir = tempDir();
  let gw: Gateway;
  let listening: Listening;
  let app: Server;

  before(async () => {
    app = createServer((req, res) => {
      let n = 0;
      req.on('data', (d: Buffer) => (n += d.length));
      req.on('end', () => res.end(`got ${n}`));
    });
    const appPort = await listen(app);
    writeFileSync(`${dir.dir}/porthole.toml`, 'version = 1\n[auth]\nloopback_exempt = false\n');
    gw = createGateway({ stateDir: dir.dir, target: `http://127.0.0.1:${appPort}`, token: TOKEN, config: loadConfig({ home: dir.dir, env: {}, flags: {} }).config });
    listening = await listenGateway(gw, { host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await listening.close();
    await gw.close();
    await closeServer(app);
    dir.cleanup();
  });

  /** Sends the head, waits for the first answer, then (if it was 100) the body. */
  function expectContinue(headers: string): Promise<{ first: string; all: string }> {
    return new Promise((resolve) => {
      const s = net.connect(listening.port, '127.0.0.1');
      let all = '';
      let first = '';
      s.setEncoding('latin1');
      s.on('data', (d: string) => {
        all += d;
        if (!first && all.includes('\r\n\r\n')) {
          first = all.slice(0, all.indexOf('\r\n'));
          if (first.includes(' 100 ')) s.write('hello');
        }
      });
      s.on('error', () => {});
      const timer = setTimeout(() => s.destroy(), 3000);
      s.on('close', () => {
        clearTimeout(timer);
        resolve({ first, all });
      });
      s.write(`POST /upload HTTP/1.1\r\nHost: 127.0.0.1:${listening.port}\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n${headers}\r\n`);
    });
  }

  test('no 100 Continue before authentication: an anonymous upload gets 401 straight away', async () => {
    const r = await expectContinue('');
    assert.match(r.first, /^HTTP\/1\.1 401/);
    assert.doesNotMatch(r.all, / 100 Continue/);
  });

  test('an authorised request gets its 100, then the app reads the body', async () => {
    const r = await expectContinue(`Authorization: Bearer ${TOKEN}\r\n`);
    assert.match(r.first, /^HTTP\/1\.1 100/);
    assert.match(r.all, /HTTP\/1\.1 200[\s\S]*got 5$/);
  });
});
