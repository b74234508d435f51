// End-to-end: hostile and malformed clients against `porthole serve` (raw sockets), and
// slowloris against the library listener with a short headers timeout. After each hostile
// case a normal request from another client must still get 200: nothing is lost.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createGateway, type Gateway } from '../../src/gateway/gateway.js';
import { type Listening, listenGateway } from '../../src/gateway/listen.js';
import { type Served, startCli, tempHome } from '../helpers/cli.js';
import { type EchoApp, startEchoApp } from '../helpers/echo-app.js';
import { errorCodeOf, type RawAnswer, rawExchange } from '../helpers/e2e.js';
import { fetchRaw } from '../helpers/servers.js';

let app: EchoApp;
let gw: Served;
let port: number;
let token: string;
const cleanups: (() => unknown)[] = [];

before(async () => {
  app = await startEchoApp();
  const h = tempHome();
  cleanups.push(h.cleanup);
  gw = await startCli(['serve', '--target', app.url, '--port', '0', '--json'], { PORTHOLE_HOME: h.home });
  port = gw.event.port;
  token = gw.event.generatedToken!;
});

after(async () => {
  await gw?.stop();
  await app?.close();
  for (const c of cleanups.reverse()) await c();
});

/** A normal request from a fresh client gets through to the app. */
async function assertServing(gatewayPort = port, path = '/still-serving'): Promise<void> {
  const r = await fetchRaw({ port: gatewayPort, path, headers: { authorization: `Bearer ${token}` } });
  assert.equal(r.status, 200, `a normal request after the hostile one failed: ${r.status} ${r.text}`);
  assert.equal((JSON.parse(r.text) as { url: string }).url, path);
}

function assertStatus(a: RawAnswer, status: number, code?: string): void {
  assert.equal(a.status, status, `expected ${status}, got: ${JSON.stringify(a.raw.slice(0, 300))}`);
  if (code !== undefined) assert.equal(errorCodeOf(a.body), code, a.raw.slice(0, 300));
}

const host = () => `127.0.0.1:${port}`;

describe('malformed Host', () => {
  for (const [name, value] of [
    ['a space inside', 'a b'],
    ['an unclosed IPv6 literal', '[::1'],
    ['a port that is not a number', '127.0.0.1:http'],
    ['userinfo', 'user@127.0.0.1'],
  ] as const) {
    it(`Host with ${name}: 400 BAD_REQUEST`, async () => {
      const a = await rawExchange(port, `GET / HTTP/1.1\r\nHost: ${value}\r\nConnection: close\r\n\r\n`);
      assertStatus(a, 400, 'BAD_REQUEST');
      await assertServing();
    });
  }

  it('empty Host on HTTP/1.1: 400', async () => {
    const a = await rawExchange(port, 'GET / HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n');
    assert.match(a.raw, /^HTTP\/1\.1 400 /);
    const code = errorCodeOf(a.body);
    if (code !== undefined) assert.equal(code, 'BAD_REQUEST');
    await assertServing();
  });

  it('no Host at all on HTTP/1.1: 400', async () => {
    const a = await rawExchange(port, 'GET / HTTP/1.1\r\nConnection: close\r\n\r\n');
    assert.match(a.raw, /^HTTP\/1\.1 400 /);
    const code = errorCodeOf(a.body);
    if (code !== undefined) assert.equal(code, 'BAD_REQUEST');
    await assertServing();
  });
});

describe('oversized heads', () => {
  it('a 64 KiB header: HTTP/1.1 431 HEADERS_TOO_LARGE', async () => {
    const a = await rawExchange(port, `GET / HTTP/1.1\r\nHost: ${host()}\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
    assert.match(a.raw, /^HTTP\/1\.1 431 /, a.raw.slice(0, 200));
    assert.equal(errorCodeOf(a.body), 'HEADERS_TOO_LARGE');
    await assertServing();
  });

  it('a flood of 5000 small headers: 431 (or 400), and the gateway keeps serving', async () => {
    let head = `GET / HTTP/1.1\r\nHost: ${host()}\r\n`;
    for (let i = 0; i < 5000; i++) head += `X-H${i}: v\r\n`;
    const a = await rawExchange(port, `${head}\r\n`);
    assert.ok(a.status === 431 || a.status === 400, `expected 431 or 400: ${a.raw.slice(0, 200)}`);
    await assertServing();
  });
});

describe('request targets and framing', () => {
  it('absolute-form (GET http://evil.example/): 400', async () => {
    const a = await rawExchange(port, `GET http://evil.example/ HTTP/1.1\r\nHost: ${host()}\r\nConnection: close\r\n\r\n`);
    assertStatus(a, 400, 'BAD_REQUEST');
    const b = await rawExchange(port, 'GET http://evil.example/ HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n');
    assert.equal(b.status, 400, b.raw.slice(0, 200));
    await assertServing();
  });

  it('a path starting with // stays a path on the app (never a new authority)', async () => {
    const r = await fetchRaw({ port, path: '//evil.example/x?y=1', headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200, r.text);
    const e = JSON.parse(r.text) as { url: string; headers: Record<string, string> };
    assert.equal(e.url, '//evil.example/x?y=1');
    assert.equal(e.headers['host'], `127.0.0.1:${app.port}`);
  });

  it('asterisk-form (OPTIONS *): 400', async () => {
    const a = await rawExchange(port, `OPTIONS * HTTP/1.1\r\nHost: ${host()}\r\nConnection: close\r\n\r\n`);
    assertStatus(a, 400, 'BAD_REQUEST');
    await assertServing();
  });

  it('CONNECT: refused (4xx) or closed, never tunnelled', async () => {
    const a = await rawExchange(port, 'CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n', 5_000);
    assert.ok(a.status === undefined ? a.closed : a.status >= 400 && a.status < 500, `CONNECT got ${JSON.stringify(a.raw.slice(0, 200))}`);
    assert.doesNotMatch(a.raw, /^HTTP\/1\.1 200/);
    await assertServing();
  });

  it('Content-Length with Transfer-Encoding (smuggling): 400', async () => {
    const smuggled = 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n';
    const a = await rawExchange(
      port,
      `POST / HTTP/1.1\r\nHost: ${host()}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`,
    );
    assert.equal(a.status, 400, a.raw.slice(0, 200));
    await assertServing();
  });
});

describe('many hanging clients', () => {
  it('200 connections with half-sent requests do not stop a normal request', async () => {
    const sockets: net.Socket[] = [];
    try {
      await Promise.all(
        Array.from({ length: 200 }, async () => {
          const s = net.connect(port, '127.0.0.1');
          s.on('error', () => {});
          sockets.push(s);
          await once(s, 'connect');
          await new Promise<void>((resolve, reject) => s.write(`GET /hang HTTP/1.1\r\nHost: ${host()}\r\nX-Partial: `, (e) => (e ? reject(e) : resolve())));
        }),
      );
      await assertServing();
      const open = sockets.filter((s) => !s.destroyed).length;
      assert.equal(open, 200, 'the hanging connections should still be open (within the headers timeout)');
    } finally {
      for (const s of sockets) s.destroy();
    }
    await assertServing();
  });
});

describe('slowloris (library listener, headersTimeoutMs 1000)', () => {
  let gateway: Gateway;
  let listening: Listening;
  let home: { home: string; cleanup(): void };

  before(async () => {
    home = tempHome();
    gateway = createGateway({ stateDir: home.home, target: app.url });
    listening = await listenGateway(gateway, { host: '127.0.0.1', port: 0, headersTimeoutMs: 1000 });
  });

  after(async () => {
    await listening?.close();
    await gateway?.close();
    home?.cleanup();
  });

  it('a client dripping one header byte every 200 ms is cut off within 5 s; others are served meanwhile', async (t) => {
    const p = listening.port;
    const s = net.connect(p, '127.0.0.1');
    s.on('error', () => {});
    await once(s, 'connect');
    const started = Date.now();
    s.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\n`);
    let received = '';
    s.on('data', (d: Buffer) => (received += d.toString('latin1')));
    const drip = 'X-Slow-Header: ' + 'a'.repeat(100);
    let sent = 0;
    const MAX_DRIPS = 50; // 10 s at most, twice the bound asserted below
    const cutOff = new Promise<number>((resolve) => {
      const timer = setInterval(() => {
        if (s.destroyed || sent >= MAX_DRIPS) {
          clearInterval(timer);
          return;
        }
        s.write(drip[sent % drip.length]!);
        sent++;
      }, 200);
      s.once('close', () => {
        clearInterval(timer);
        resolve(Date.now() - started);
      });
      // Bounded in time too: give up (and fail below) after 10 s.
      setTimeout(() => {
        clearInterval(timer);
        resolve(Number.POSITIVE_INFINITY);
      }, 10_000).unref();
    });

    // Meanwhile another client is served, twice while the drip goes on.
    const other = async () => {
      const r = await fetchRaw({ port: p, path: '/meanwhile' });
      assert.equal(r.status, 200, r.text);
    };
    await other();
    await other();

    const elapsed = await cutOff;
    s.destroy();
    t.diagnostic(`cut off after ${elapsed} ms, ${sent} byte(s) dripped; answer: ${JSON.stringify(received.split('\r\n')[0] ?? '')}`);
    assert.ok(elapsed < 5_000, `the slow client was not cut off within 5 s (${elapsed} ms)`);
    if (received !== '') assert.match(received, /^HTTP\/1\.1 408 /);
    await other();
  });
});
