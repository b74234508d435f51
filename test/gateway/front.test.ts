// The front (src/gateway/front.ts, proxy-front.ts) end to end: a real sidecar gateway
// (listenGateway, an http:// target) on 127.0.0.1, raw sockets. What it serves itself it must
// serve exactly as node:http would (framing, keep-alive, errors, trailers, revocation); what
// it hands off must reach node:http intact, mid-connection and pipelined, with the pipeline's
// decision carried along (a wrong credential counted once, a one-time code consumed once).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import { createGateway, type Gateway } from '../../src/gateway/gateway.js';
import { type Listening, listenGateway } from '../../src/gateway/listen.js';
import { closeServer, listen, tempDir } from '../helpers/servers.js';
import { TOKEN } from '../control/helpers.js';
import { createCertificate } from '../../src/tls/x509.js';
import { createTunnelIngress } from '../../src/tunnel/ingress.js';

const BIG = Buffer.alloc(3 * 1024 * 1024 + 7, 0x61);
for (let i = 0; i < BIG.length; i += 4093) BIG[i] = i & 0xff;

/** A raw client: write, then read until `until(text)` or close, or `ms`. */
function talk(port: number, data: string, until: (s: string) => boolean = () => false, ms = 4000): Promise<{ text: string; closed: boolean; bytes: Buffer }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let closed = false;
    const finish = () => {
      clearTimeout(timer);
      s.destroy();
      const bytes = Buffer.concat(chunks);
      resolve({ text: bytes.toString('latin1'), closed, bytes });
    };
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      if (until(Buffer.concat(chunks).toString('latin1'))) finish();
    });
    s.on('error', () => {});
    s.on('close', () => {
      closed = true;
      finish();
    });
    const timer = setTimeout(finish, ms);
    s.write(data);
  });
}

/** Under the direct-write threshold (64 KiB): such answers are copied whole, not held. */
const HUNDRED = Buffer.alloc(60 * 1024, 0x62);
let hundredServed = 0;
/** Event streams whose connection from the gateway closed. */
const sseClosed: string[] = [];
const appSaw: string[] = [];

/** Connections the listening server holds (the front's included). */
function connections(l: Listening): Promise<number> {
  return new Promise((resolve, reject) => l.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
}

const statuses = (text: string) => [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));

describe('the front', () => {
  const dir = tempDir();
  let gw: Gateway;
  let listening: Listening;
  let app: Server;
  let appPort = 0;
  let host = '';
  /** The gateway manages its own token (so it can rotate it). */
  let bearer = '';

  before(async () => {
    app = createServer((req, res) => {
      const url = req.url ?? '/';
      if (url === '/big') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(BIG.length) });
        res.end(BIG);
      } else if (url === '/chunked') {
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-sum' });
        res.write('one,');
        setTimeout(() => {
          res.addTrailers({ 'x-sum': '42' });
          res.end('two');
        }, 20);
      } else if (url.startsWith('/sse')) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: first\n\n');
        res.once('close', () => sseClosed.push(url));
      } else if (url === '/204') {
        res.writeHead(204, { 'x-a': 'b' });
        res.end();
      } else if (url.startsWith('/hundred')) {
        hundredServed++;
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(HUNDRED.length) });
        res.end(HUNDRED);
      } else if (url === '/slow') {
        setTimeout(() => res.end('late'), 3000);
      } else {
        appSaw.push(url);
        let n = 0;
        req.on('data', (d: Buffer) => (n += d.length));
        req.on('end', () => res.end(`${req.method} ${url} body=${n} id=${req.headers['x-porthole-identity'] ? 'yes' : 'no'} auth=${req.headers.authorization ?? '-'}`));
      }
    });
    appPort = await listen(app);
    writeFileSync(`${dir.dir}/porthole.toml`, 'version = 1\n[auth]\nloopback_exempt = false\n[auth.rate_limit]\nmax_failures = 5\n[gateway]\ntarget_timeout = 1\n');
    gw = createGateway({ stateDir: dir.dir, target: `http://127.0.0.1:${appPort}`, config: loadConfig({ home: dir.dir, env: {}, flags: {} }).config });
    bearer = `Authorization: Bearer ${gw.revealToken()}\r\n`;
    listening = await listenGateway(gw, { host: '127.0.0.1', port: 0, headersTimeoutMs: 600, keepAliveTimeoutMs: 800 });
    host = `Host: 127.0.0.1:${listening.port}\r\n`;
  });
  after(async () => {
    await listening.close();
    await gw.close();
    app.closeAllConnections();
    await closeServer(app);
    dir.cleanup();
  });

  test('keep-alive: several requests on one connection, each answered in order, announced as node:http does', async () => {
    const req = (p: string) => `GET ${p} HTTP/1.1\r\n${host}${bearer}\r\n`;
    const r = await talk(listening.port, req('/a') + req('/b') + req('/c'), (t) => (t.match(/GET \/c body/g) ?? []).length === 1);
    assert.deepEqual(statuses(r.text), [200, 200, 200]);
    assert.ok(r.text.indexOf('GET /a') < r.text.indexOf('GET /b') && r.text.indexOf('GET /b') < r.text.indexOf('GET /c'));
    assert.match(r.text, /\r\nKeep-Alive: timeout=0\r\n|\r\nKeep-Alive: timeout=\d+\r\n/);
    assert.match(r.text, /\r\nDate: /);
    assert.match(r.text, /id=yes auth=-/, 'the identity is set, the bearer is not forwarded');
  });

  test('a pipelined mix: what the front does not serve (a body, HTTP/1.0 rules, porthole routes) goes to node:http in order', async () => {
    const data =
      `GET /one HTTP/1.1\r\n${host}${bearer}\r\n` +
      `POST /two HTTP/1.1\r\n${host}${bearer}Content-Length: 5\r\n\r\nhello` +
      `GET /three HTTP/1.1\r\n${host}${bearer}\r\n` +
      `GET /_porthole/health HTTP/1.1\r\n${host}Connection: close\r\n\r\n`;
    const r = await talk(listening.port, data, () => false, 4000);
    assert.deepEqual(statuses(r.text), [200, 200, 200, 200], r.text);
    assert.ok(r.closed, 'Connection: close is honoured');
    const order = ['GET /one body=0', 'POST /two body=5', 'GET /three body=0', '"status"'].map((s) => r.text.indexOf(s));
    assert.ok(order.every((v, i) => v >= 0 && (i === 0 || v > order[i - 1]!)), r.text);
  });

  test('a wrong bearer handed off is counted once: 4 wrong ones are 401, not banned early', async () => {
    const wrong = `Authorization: Bearer ph_${'x'.repeat(43)}\r\n`;
    // From its own loopback address, so no other test shares the ban key.
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await talk(listening.port, `GET /x HTTP/1.1\r\n${host}${wrong}Connection: close\r\n\r\n`);
      codes.push(statuses(r.text)[0]!);
    }
    assert.deepEqual(codes, [401, 401, 401, 401]);
  });

  test('a one-time code handed off is consumed once: 303 with a session cookie', async () => {
    const { code } = gw.issueCode();
    const r = await talk(listening.port, `GET /page?code=${code}&x=1 HTTP/1.1\r\n${host}Accept: text/html\r\nConnection: close\r\n\r\n`);
    assert.equal(statuses(r.text)[0], 303, r.text);
    assert.match(r.text, /\r\nLocation: \/page\?x=1\r\n/i);
    assert.match(r.text, /\r\nSet-Cookie: porthole_session_/i);
  });

  test('framing: a large Content-Length body intact, a chunked one with trailers, HEAD and 204 without a body', async () => {
    const big = await talk(listening.port, `GET /big HTTP/1.1\r\n${host}${bearer}Connection: close\r\n\r\n`, () => false, 8000);
    const at = big.bytes.indexOf('\r\n\r\n') + 4;
    assert.equal(createHash('sha256').update(big.bytes.subarray(at)).digest('hex'), createHash('sha256').update(BIG).digest('hex'));
    const chunked = await talk(listening.port, `GET /chunked HTTP/1.1\r\n${host}${bearer}TE: trailers\r\nConnection: close\r\n\r\n`);
    assert.match(chunked.text, /\r\nTransfer-Encoding: chunked\r\n/i);
    assert.match(chunked.text, /\r\n\r\n4\r\none,\r\n3\r\ntwo\r\n0\r\nx-sum: 42\r\n\r\n$/i);
    const head = await talk(listening.port, `HEAD /big HTTP/1.1\r\n${host}${bearer}\r\nGET /204 HTTP/1.1\r\n${host}${bearer}Connection: close\r\n\r\n`);
    assert.deepEqual(statuses(head.text), [200, 204]);
    assert.match(head.text, new RegExp(`Content-Length: ${BIG.length}\\r\\n`, 'i'));
    assert.ok(head.text.endsWith('\r\n\r\n'), 'no body after HEAD or 204');
  });

  test('a target too slow is 504 JSON, an unreachable one 502 JSON', async () => {
    const slow = await talk(listening.port, `GET /slow HTTP/1.1\r\n${host}${bearer}\r\n`, (t) => t.includes('}'));
    assert.equal(statuses(slow.text)[0], 504);
    assert.match(slow.text, /TARGET_TIMEOUT/);
    const dir2 = tempDir();
    const gw2 = createGateway({ stateDir: dir2.dir, target: 'http://127.0.0.1:9', token: TOKEN, config: loadConfig({ home: dir2.dir, env: {}, flags: {} }).config });
    const l2 = await listenGateway(gw2, { host: '127.0.0.1', port: 0 });
    try {
      const r = await talk(l2.port, `GET / HTTP/1.1\r\nHost: 127.0.0.1:${l2.port}\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`, (t) => t.includes("}"));
      assert.equal(statuses(r.text)[0], 502);
      assert.match(r.text, /TARGET_UNAVAILABLE/);
      // The answer says Connection: close, and the server closes: a client keeping its side
      // open must not keep a descriptor (and l2.close() below must not wait for it).
      const s = net.connect({ port: l2.port, host: '127.0.0.1', allowHalfOpen: true });
      s.on('error', () => {});
      s.on('data', () => {});
      const ended = new Promise<void>((resolve) => s.once('end', () => resolve()));
      s.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${l2.port}\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);
      await ended;
      await new Promise((r) => setTimeout(r, 300));
      const held = await connections(l2);
      s.destroy();
      assert.equal(held, 0, 'the server still holds the connection after its 502');
    } finally {
      await l2.close();
      await gw2.close();
      dir2.cleanup();
    }
  });

  test('a token rotation cuts a streamed response the front is serving', async () => {
    const s = net.connect(listening.port, '127.0.0.1');
    s.on('error', () => {});
    let text = '';
    const first = new Promise<void>((resolve) =>
      s.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        if (text.includes('data: first')) resolve();
      }),
    );
    const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
    s.write(`GET /sse HTTP/1.1\r\n${host}${bearer}\r\n`);
    await first;
    const r = gw.rotateToken();
    assert.ok(r.connectionsClosed >= 1);
    await closed;
    bearer = `Authorization: Bearer ${gw.revealToken()}\r\n`;
  });

  test('slowloris: a head not complete within headersTimeout is 408 and closed; an idle keep-alive connection closes', async () => {
    const partial = await talk(listening.port, `GET / HTTP/1.1\r\n${host}`, () => false, 4000);
    assert.equal(statuses(partial.text)[0], 408);
    assert.ok(partial.closed);
    const idle = await talk(listening.port, '', () => false, 4000);
    assert.ok(idle.closed, 'an idle connection is closed');
    assert.equal(idle.text, '');
  });

  test('after a `Connection: close` answer nothing more is served, and the server closes the socket', async () => {
    const before = await connections(listening);
    // A client that keeps its own side open: only the server can end the connection.
    const s = net.connect({ port: listening.port, host: '127.0.0.1', allowHalfOpen: true });
    s.on('error', () => {});
    let text = '';
    s.on('data', (d: Buffer) => (text += d.toString('latin1')));
    const ended = new Promise<void>((resolve) => s.once('end', () => resolve()));
    s.write(`GET /first-close HTTP/1.1\r\n${host}${bearer}Connection: close\r\n\r\n`);
    await ended;
    s.write(`GET /after-close HTTP/1.1\r\n${host}${bearer}\r\n`);
    await new Promise((r) => setTimeout(r, 500));
    const after = await connections(listening);
    s.destroy();
    assert.deepEqual(statuses(text), [200]);
    assert.ok(appSaw.includes('/first-close'));
    assert.ok(!appSaw.includes('/after-close'), 'a request after Connection: close reached the app');
    assert.ok(after <= before, `the server still holds the connection (${before} → ${after})`);
  });

  test('a client that half-closes mid-stream: the answer is abandoned, its upstream connection and the socket released', async () => {
    const before = await connections(listening);
    const s = net.connect({ port: listening.port, host: '127.0.0.1', allowHalfOpen: true });
    s.on('error', () => {});
    let text = '';
    const first = new Promise<void>((resolve) =>
      s.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        if (text.includes('data: first')) resolve();
      }),
    );
    const ended = new Promise<void>((resolve) => s.once('end', () => resolve()));
    s.write(`GET /sse-halfclose HTTP/1.1\r\n${host}${bearer}\r\n`);
    await first;
    s.end(); // FIN; the client still reads
    const closedByServer = await Promise.race([ended.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 3000))]);
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(closedByServer, 'the server did not end a half-closed connection');
    assert.ok(sseClosed.includes('/sse-halfclose'), 'the upstream request of a half-closed client is still open');
    assert.ok((await connections(listening)) <= before, 'the server still holds the half-closed connection');
    s.destroy();
  });

  test('after a 408 nothing more is read as a request', async () => {
    const s = net.connect({ port: listening.port, host: '127.0.0.1', allowHalfOpen: true });
    s.on('error', () => {});
    let text = '';
    const got408 = new Promise<void>((resolve) =>
      s.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        if (text.includes('REQUEST_TIMEOUT')) resolve();
      }),
    );
    s.write(`GET /late-after-408 HTTP/1.1\r\n${host}${bearer}`);
    await got408;
    s.write('\r\n');
    await new Promise((r) => setTimeout(r, 300));
    s.destroy();
    assert.ok(!appSaw.includes('/late-after-408'), 'a head completed after its 408 reached the app');
  });

  // Bodiless requests are the front's; with a body they are node:http's (proxy-web.ts), which
  // hands over every request it parsed from one read at once.
  for (const [path, request] of [
    ['the front', (i: number) => `GET /hundred-${i} HTTP/1.1\r\n${host}${bearer}\r\n`],
    ['node:http', (i: number) => `POST /hundred-${i} HTTP/1.1\r\n${host}${bearer}Content-Length: 1\r\n\r\nx`],
  ] as const)
  test(`a client that pipelines and does not read is not served ahead (${path}): its answers cannot pile up`, async () => {
    hundredServed = 0;
    const s = net.connect(listening.port, '127.0.0.1');
    s.on('error', () => {});
    s.pause(); // never reads, for now
    const n = 200;
    let data = '';
    for (let i = 0; i < n; i++) data += request(i);
    s.write(data);
    await new Promise((r) => setTimeout(r, 1000));
    const whileStalled = hundredServed;
    assert.ok(whileStalled < n / 2, `${whileStalled} of ${n} answers produced for a client that reads nothing`);
    // Once it reads, every answer comes.
    let got = 0;
    const all = new Promise<void>((resolve) =>
      s.on('data', (d: Buffer) => {
        got += d.length;
        if (got >= n * HUNDRED.length) resolve();
      }),
    );
    s.resume();
    await all;
    s.destroy();
    assert.equal(hundredServed, n);
  });

  test('over HTTPS (--tls) too: keep-alive requests and a hand-off with a body on one TLS connection', async () => {
    const cert = createCertificate({ commonName: '127.0.0.1', ipAddresses: ['127.0.0.1'] });
    const dir3 = tempDir();
    const gw3 = createGateway({ stateDir: dir3.dir, target: `http://127.0.0.1:${appPort}`, token: TOKEN, config: loadConfig({ home: dir3.dir, env: {}, flags: {} }).config });
    const l3 = await listenGateway(gw3, { host: '127.0.0.1', port: 0, tls: { cert: cert.certPem, key: cert.keyPem } });
    try {
      const s = tls.connect({ host: '127.0.0.1', port: l3.port, rejectUnauthorized: false });
      s.on('error', () => {});
      let text = '';
      const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
      s.on('data', (d: Buffer) => (text += d.toString('latin1')));
      const h3 = `Host: 127.0.0.1:${l3.port}\r\nAuthorization: Bearer ${TOKEN}\r\n`;
      s.write(`GET /tls-a HTTP/1.1\r\n${h3}\r\nGET /tls-b HTTP/1.1\r\n${h3}\r\nPOST /tls-c HTTP/1.1\r\n${h3}Content-Length: 3\r\nConnection: close\r\n\r\nabc`);
      await closed;
      assert.deepEqual(statuses(text), [200, 200, 200], text);
      assert.ok(text.indexOf('GET /tls-a') < text.indexOf('GET /tls-b') && text.indexOf('GET /tls-b') < text.indexOf('POST /tls-c body=3'), text);
    } finally {
      await l3.close();
      await gw3.close();
      dir3.cleanup();
    }
  });

  test('a tunnel ingress closed leaves no timer behind (one is made per tunnel start)', async () => {
    // Intervals are unref'd (invisible to getActiveResourcesInfo): count them as they are made.
    const live = new Set<unknown>();
    const { setInterval: set, clearInterval: clear } = globalThis;
    globalThis.setInterval = ((...args: Parameters<typeof set>) => {
      const h = set(...args);
      live.add(h);
      return h;
    }) as typeof set;
    globalThis.clearInterval = ((h: Parameters<typeof clear>[0]) => {
      live.delete(h);
      clear(h);
    }) as typeof clear;
    try {
      for (let i = 0; i < 20; i++) createTunnelIngress(gw).close();
    } finally {
      globalThis.setInterval = set;
      globalThis.clearInterval = clear;
    }
    for (const h of live) clear(h as NodeJS.Timeout);
    assert.equal(live.size, 0, `${live.size} intervals left running by 20 closed ingresses`);
  });

  test('a head over the size limit goes to node:http: 431', async () => {
    const r = await talk(listening.port, `GET / HTTP/1.1\r\n${host}X-Big: ${'x'.repeat(17 * 1024)}\r\n\r\n`);
    assert.equal(statuses(r.text)[0], 431);
  });
});
