// End-to-end: `porthole serve --target <echo app> --port 0 --json` in front of the echo app,
// driven with the bearer token from the listening event: what reaches the app, SSE in
// lock-step, WebSockets, big bodies both ways (integrity and the gateway's memory), target
// failures, and a unix: target.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it, type TestContext } from 'node:test';
import WebSocket from 'ws';
import { type Served, startCli, tempHome } from '../helpers/cli.js';
import { type EchoApp, patternChunk, startEchoApp } from '../helpers/echo-app.js';
import { defer, errorCodeOf, processMemory } from '../helpers/e2e.js';
import { closeServer, fetchRaw, listenUnix, tempDir } from '../helpers/servers.js';

const MiB = 1024 * 1024;

let app: EchoApp;
let gw: Served;
let token: string;
let port: number;
const cleanups: (() => unknown)[] = [];

before(async () => {
  app = await startEchoApp();
  const h = tempHome();
  cleanups.push(h.cleanup);
  // No loopback exemption: every request below must carry the bearer to get through.
  gw = await startCli(['serve', '--target', app.url, '--port', '0', '--no-loopback-exempt', '--json'], { PORTHOLE_HOME: h.home });
  token = gw.event.generatedToken!;
  port = gw.event.port;
  assert.match(token, /^ph_[A-Za-z0-9_-]{43}$/);
});

after(async () => {
  await gw?.stop();
  await app?.close();
  for (const c of cleanups.reverse()) await c();
});

const auth = () => ({ authorization: `Bearer ${token}` });

interface Echoed {
  method: string;
  url: string;
  headers: Record<string, string | undefined>;
  body: string;
}

/** A gateway of its own (own PORTHOLE_HOME), stopped after the test. */
async function ownGateway(t: TestContext, target: string, toml?: string): Promise<Served> {
  const h = tempHome();
  defer(t, () => h.cleanup());
  if (toml !== undefined) writeFileSync(join(h.home, 'porthole.toml'), toml);
  const g = await startCli(['serve', '--target', target, '--port', '0', '--json'], { PORTHOLE_HOME: h.home });
  defer(t, () => g.stop());
  return g;
}

/** Resolves once `res` has delivered text containing `needle` (everything so far is returned). */
function readUntil(res: IncomingMessage, state: { text: string }, needle: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (state.text.includes(needle)) {
        res.off('data', onData);
        res.off('end', onEnd);
        resolve(state.text);
      }
    };
    const onData = (d: Buffer) => {
      state.text += d.toString('utf8');
      check();
    };
    const onEnd = () => reject(new Error(`stream ended before ${JSON.stringify(needle)}; got ${JSON.stringify(state.text)}`));
    res.on('data', onData);
    res.on('end', onEnd);
    check();
  });
}

describe('requests through the gateway', () => {
  it('without the bearer: 401 AUTH_REQUIRED (the exemption is off)', async () => {
    const r = await fetchRaw({ port, path: '/x' });
    assert.equal(r.status, 401);
    assert.equal(errorCodeOf(r.text), 'AUTH_REQUIRED');
  });

  it('GET: method, path and query, custom headers arrive; hop-by-hop do not; X-Forwarded-* set; Host is the app own', async () => {
    const r = await fetchRaw({
      port,
      method: 'GET',
      path: '/some/path?q=1&r=two%20words',
      headers: {
        ...auth(),
        'x-custom': 'kept',
        'x-hop': '1',
        connection: 'x-hop, keep-alive',
        'keep-alive': 'timeout=5',
        'proxy-connection': 'keep-alive',
        'proxy-authorization': 'Basic Zm9vOmJhcg==',
        'x-forwarded-for': '203.0.113.9',
        'x-porthole-identity': 'forged',
      },
    });
    assert.equal(r.status, 200, r.text);
    const e = JSON.parse(r.text) as Echoed;
    assert.equal(e.method, 'GET');
    assert.equal(e.url, '/some/path?q=1&r=two%20words');
    assert.equal(e.headers['x-custom'], 'kept');
    assert.equal(e.headers['x-hop'], undefined, 'a header named in Connection is hop-by-hop');
    assert.equal(e.headers['keep-alive'], undefined);
    assert.equal(e.headers['proxy-connection'], undefined);
    assert.equal(e.headers['proxy-authorization'], undefined);
    assert.doesNotMatch(e.headers['connection'] ?? '', /x-hop/i);
    assert.equal(e.headers['authorization'], undefined, "porthole's bearer must not reach the app");
    assert.equal(e.headers['host'], `127.0.0.1:${app.port}`);
    assert.equal(e.headers['x-forwarded-for'], '127.0.0.1', 'a client-sent X-Forwarded-For is replaced');
    assert.equal(e.headers['x-forwarded-proto'], 'http');
    assert.equal(e.headers['x-forwarded-host'], `127.0.0.1:${port}`);
    assert.ok(e.headers['x-porthole-identity'] && e.headers['x-porthole-identity'] !== 'forged');
  });

  it('POST: the body arrives intact', async () => {
    const body = JSON.stringify({ hello: 'world', n: 42, text: 'ünïcödé' });
    const r = await fetchRaw({
      port,
      method: 'POST',
      path: '/submit?id=7',
      headers: { ...auth(), 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) },
      body,
    });
    assert.equal(r.status, 200, r.text);
    const e = JSON.parse(r.text) as Echoed;
    assert.equal(e.method, 'POST');
    assert.equal(e.url, '/submit?id=7');
    assert.equal(e.body, body);
    assert.equal(e.headers['content-type'], 'application/json');
  });
});

describe('SSE', () => {
  it('each event is flushed as the app writes it (lock-step)', async () => {
    const appSide = app.nextSse();
    const req = http.request({ host: '127.0.0.1', port, path: '/sse', agent: false, headers: { ...auth(), accept: 'text/event-stream' } });
    req.end();
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /text\/event-stream/);
    const upstream = await appSide;
    const state = { text: '' };
    try {
      for (let i = 1; i <= 3; i++) {
        upstream.write(`id: ${i}\ndata: event-${i}\n\n`);
        const text = await readUntil(res, state, `data: event-${i}\n\n`);
        assert.ok(!text.includes(`event-${i + 1}`));
      }
    } finally {
      res.destroy();
      req.destroy();
    }
  });
});

describe('WebSocket', () => {
  it('hello, then echo of a text and a 1 MiB binary message', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: auth(), maxPayload: 4 * MiB });
    const messages: { data: Buffer; binary: boolean }[] = [];
    const waiters: (() => void)[] = [];
    ws.on('message', (data: Buffer, binary: boolean) => {
      messages.push({ data, binary });
      waiters.shift()?.();
    });
    const next = async () => {
      if (messages.length === 0) await new Promise<void>((r) => waiters.push(r));
      return messages.shift()!;
    };
    const closed = once(ws, 'close');
    try {
      await once(ws, 'open');
      const hello = JSON.parse((await next()).data.toString('utf8')) as { hello: boolean; headers: Record<string, string> };
      assert.equal(hello.hello, true);
      assert.equal(hello.headers['authorization'], undefined);

      ws.send('text round trip');
      const text = await next();
      assert.equal(text.binary, false);
      assert.equal(text.data.toString('utf8'), 'text round trip');

      const big = patternChunk(MiB);
      big.writeUInt32BE(0xdeadbeef, MiB / 2);
      ws.send(big, { binary: true });
      const back = await next();
      assert.equal(back.binary, true);
      assert.equal(back.data.length, MiB);
      assert.ok(back.data.equals(big), 'the binary message came back altered');
    } finally {
      ws.close();
      await closed;
    }
  });
});

describe('large bodies', () => {
  it('512 MiB up and 1 GiB down arrive intact, and the gateway RSS grows < 200 MiB', async (t) => {
    const before = processMemory(gw.pid);

    // Upload: generated chunk by chunk (each numbered, so reordering would show), never whole.
    const UP_CHUNK = MiB;
    const UP_CHUNKS = 512;
    const sent = createHash('sha256');
    const base = patternChunk(UP_CHUNK);
    async function* generate() {
      for (let i = 0; i < UP_CHUNKS; i++) {
        const c = Buffer.from(base);
        c.writeUInt32BE(i, 0);
        sent.update(c);
        yield c;
      }
    }
    const up = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/upload', agent: false, headers: { ...auth(), 'content-type': 'application/octet-stream' } });
    const upResponse = once(up, 'response') as Promise<[IncomingMessage]>;
    await pipeline(Readable.from(generate()), up);
    const [upRes] = await upResponse;
    let upText = '';
    for await (const c of upRes) upText += (c as Buffer).toString('utf8');
    assert.equal(upRes.statusCode, 200, upText);
    const got = JSON.parse(upText) as { bytes: number; sha256: string };
    assert.equal(got.bytes, UP_CHUNK * UP_CHUNKS);
    assert.equal(got.sha256, sent.digest('hex'));

    // Download: 1 GiB of the app's 256 KiB pattern; the expected hash is computed from the same chunk.
    const TOTAL = 1024 * MiB;
    const chunk = patternChunk(256 * 1024);
    const expected = createHash('sha256');
    for (let n = 0; n < TOTAL; n += chunk.length) expected.update(chunk);
    const down = http.request({ host: '127.0.0.1', port, path: `/download?bytes=${TOTAL}`, agent: false, headers: auth() });
    down.end();
    const [downRes] = (await once(down, 'response')) as [IncomingMessage];
    assert.equal(downRes.statusCode, 200);
    const received = createHash('sha256');
    let bytes = 0;
    for await (const c of downRes) {
      bytes += (c as Buffer).length;
      received.update(c as Buffer);
    }
    assert.equal(bytes, TOTAL);
    assert.equal(received.digest('hex'), expected.digest('hex'));

    const afterMem = processMemory(gw.pid);
    const growth = afterMem.rss - before.rss;
    const peak = afterMem.hwm - before.rss;
    t.diagnostic(`gateway RSS ${(before.rss / MiB).toFixed(1)} → ${(afterMem.rss / MiB).toFixed(1)} MiB, peak ${(afterMem.hwm / MiB).toFixed(1)} MiB`);
    assert.ok(growth < 200 * MiB, `gateway RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
    // The peak catches buffering that was freed again before the final reading.
    assert.ok(peak < 200 * MiB, `gateway peak RSS rose by ${(peak / MiB).toFixed(1)} MiB`);
  });
});

describe('target failures', () => {
  it('target down: 502 TARGET_UNAVAILABLE', async (t) => {
    const dir = tempDir();
    defer(t, () => dir.cleanup());
    const g = await ownGateway(t, `unix:${join(dir.dir, 'nobody-listens.sock')}`);
    const r = await fetchRaw({ port: g.event.port, path: '/x', headers: { authorization: `Bearer ${g.event.generatedToken}` } });
    assert.equal(r.status, 502);
    assert.equal(errorCodeOf(r.text), 'TARGET_UNAVAILABLE');
  });

  it('slow target with [gateway] target_timeout = 0.5: 504 TARGET_TIMEOUT', async (t) => {
    const g = await ownGateway(t, app.url, '[gateway]\ntarget_timeout = 0.5\n');
    const started = Date.now();
    const r = await fetchRaw({ port: g.event.port, path: '/slow', headers: { authorization: `Bearer ${g.event.generatedToken}` } });
    assert.equal(r.status, 504, r.text);
    assert.equal(errorCodeOf(r.text), 'TARGET_TIMEOUT');
    assert.ok(Date.now() - started < 10_000);
    // The gateway still answers fast requests to the same app.
    const ok = await fetchRaw({ port: g.event.port, path: '/fast', headers: { authorization: `Bearer ${g.event.generatedToken}` } });
    assert.equal(ok.status, 200);
  });
});

describe('unix: target', () => {
  it('an app listening on a unix socket works, and 502 once it stops', async (t) => {
    const dir = tempDir();
    defer(t, () => dir.cleanup());
    const path = join(dir.dir, 'app.sock');
    // The echo app's own handlers, on a unix socket.
    const server = http.createServer();
    for (const l of app.server.listeners('request')) server.on('request', l as http.RequestListener);
    for (const l of app.server.listeners('upgrade')) server.on('upgrade', l as (...a: unknown[]) => void);
    await listenUnix(server, path);
    defer(t, () => closeServer(server));

    const g = await ownGateway(t, `unix:${path}`);
    const headers = { authorization: `Bearer ${g.event.generatedToken}` };
    const r = await fetchRaw({ port: g.event.port, method: 'POST', path: '/via-unix?z=1', headers, body: 'over a unix socket' });
    assert.equal(r.status, 200, r.text);
    const e = JSON.parse(r.text) as Echoed;
    assert.equal(e.url, '/via-unix?z=1');
    assert.equal(e.body, 'over a unix socket');

    await closeServer(server);
    const down = await fetchRaw({ port: g.event.port, path: '/gone', headers });
    assert.equal(down.status, 502);
    assert.equal(errorCodeOf(down.text), 'TARGET_UNAVAILABLE');
  });
});
