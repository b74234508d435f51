// The control plane over real sockets (src/control/server.ts with the SDK in
// src/client/): handshake proofs and their failures, methods and events, limits before
// authentication, bans, rotation, heartbeats and the browser Origin rule.
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { ControlMethodError } from '../../src/control/methods.js';
import { proofMessage } from '../../src/control/wire.js';
import { connect, type ControlError } from '../../src/client/index.js';
import { challengeOf, rawPeer, startControlGateway, TOKEN, type ControlGateway } from './helpers.js';

function proof(token: string, nonce: string, ts: number, deviceName = ''): string {
  const key = createHash('sha256').update(token).digest();
  return createHmac('sha256', key).update(proofMessage({ nonce, ts, binding: 'none', exporter: '', deviceName })).digest('base64url');
}

function connectFrame(nonce: string, auth: unknown, id = 'c1') {
  return { type: 'req', id, method: 'connect', params: { nonce, minProtocol: 1, maxProtocol: 1, auth } };
}

/** Polls a condition every 20 ms, at most `ms`. */
async function until(cond: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await delay(20);
  }
}

describe('control plane: handshake, methods, events', () => {
  let g: ControlGateway;
  before(async () => {
    g = await startControlGateway({ control: { handshakeTimeoutMs: 300, maxPendingPerClient: 4 } });
    g.gateway.control.method('echo', (params, ctx) => ({ params, sub: ctx.sub, cred: ctx.cred, device: ctx.deviceName }));
    g.gateway.control.method('fail', () => {
      throw new ControlMethodError('APP_NOPE', 'nope', true);
    });
    g.gateway.control.method('boom', () => {
      throw new Error('secret internals');
    });
    g.gateway.control.event('tick');
  });
  after(() => g.close());

  test('the SDK proves the token by HMAC, calls methods and receives events', async () => {
    const c = await connect({ url: g.url, token: TOKEN, deviceName: 'laptop', env: {} });
    try {
      assert.equal(c.hello.protocol, 1);
      assert.ok(c.hello.methods.includes('echo') && c.hello.methods.includes('health') && c.hello.methods.includes('token.rotate'));
      assert.ok(c.hello.events.includes('tick'));
      assert.deepEqual(await c.request('health'), { status: 'ok' });
      assert.deepEqual(await c.request('echo', { a: 1 }), { params: { a: 1 }, sub: 'owner', cred: 'hmac', device: 'laptop' });
      const status = (await c.request('status')) as Record<string, unknown>;
      assert.equal(status['id'], g.gateway.id);
      assert.ok(!JSON.stringify(status).includes(TOKEN), 'status never carries the token');
      await assert.rejects(c.request('fail'), (e: ControlError) => e.code === 'APP_NOPE' && e.retryable === true);
      await assert.rejects(c.request('boom'), (e: ControlError) => e.code === 'INTERNAL' && !e.message.includes('secret'));
      await assert.rejects(c.request('nope'), (e: ControlError) => e.code === 'CONTROL_UNKNOWN_METHOD');
      const got = new Promise((resolve) => c.on('tick', (p) => resolve(p)));
      assert.equal(g.gateway.control.publish('tick', { n: 1 }), 1);
      assert.deepEqual(await got, { n: 1 });
      // A frame far over the pre-auth 64 KiB limit is fine once authenticated.
      const big = 'x'.repeat(300 * 1024);
      assert.equal(((await c.request('echo', big)) as { params: string }).params.length, big.length);
    } finally {
      await c.close();
    }
  });

  test('the token itself is accepted from simple clients', async () => {
    const p = await rawPeer(g.wsUrl);
    const ch = await challengeOf(p);
    p.send(connectFrame(ch.nonce, { scheme: 'token', token: TOKEN }));
    const res = await p.next();
    assert.equal(res['ok'], true);
    assert.equal((res['payload'] as { scope: string }).scope, 'admin');
    p.ws.close();
  });

  test('a nonce is single use: a replayed connect fails on another connection and on the same one', async () => {
    const a = await rawPeer(g.wsUrl);
    const ch = await challengeOf(a);
    const frame = connectFrame(ch.nonce, { scheme: 'hmac', proof: proof(TOKEN, ch.nonce, ch.ts), binding: 'none' });
    a.send(frame);
    assert.equal((await a.next())['ok'], true);
    a.send({ ...frame, id: 'c2' });
    assert.equal(((await a.next())['error'] as { code: string }).code, 'CONTROL_ALREADY_CONNECTED');
    a.ws.close();

    const b = await rawPeer(g.wsUrl);
    await challengeOf(b);
    b.send(frame);
    const res = await b.next();
    assert.equal((res['error'] as { code: string }).code, 'CONTROL_NONCE_INVALID');
    assert.equal((await b.closed).code, 4001);
  });

  test('a wrong HMAC closes 4001; the first frame must be connect; binary and junk are refused', async () => {
    const p = await rawPeer(g.wsUrl);
    const ch = await challengeOf(p);
    p.send(connectFrame(ch.nonce, { scheme: 'hmac', proof: proof(`ph_${'z'.repeat(43)}`, ch.nonce, ch.ts), binding: 'none' }));
    assert.equal(((await p.next())['error'] as { code: string }).code, 'AUTH_INVALID');
    assert.equal((await p.closed).code, 4001);

    const q = await rawPeer(g.wsUrl);
    await challengeOf(q);
    q.send({ type: 'req', id: '1', method: 'health' });
    assert.equal(((await q.next())['error'] as { code: string }).code, 'CONTROL_BAD_FRAME');
    assert.equal((await q.closed).code, 1002);

    const r = await rawPeer(g.wsUrl);
    await challengeOf(r);
    r.ws.send(Buffer.from([1, 2, 3]));
    assert.equal((await r.closed).code, 1003);

    const s = await rawPeer(g.wsUrl);
    await challengeOf(s);
    s.send('{not json');
    assert.equal((await s.closed).code, 1002);
  });

  test('no connect within the time limit: 4008', async () => {
    const p = await rawPeer(g.wsUrl);
    await challengeOf(p);
    const c = await p.closed;
    assert.equal(c.code, 4008);
    assert.match(c.reason, /CONTROL_HANDSHAKE_TIMEOUT/);
  });

  test('a frame over 64 KiB before authentication: 1009', async () => {
    const p = await rawPeer(g.wsUrl);
    await challengeOf(p);
    p.send('x'.repeat(64 * 1024 + 1));
    assert.equal((await p.closed).code, 1009);
  });

  test('unauthenticated sockets per client are capped (HTTP 429 on the upgrade)', async () => {
    const peers = [];
    for (let i = 0; i < 4; i++) peers.push(await rawPeer(g.wsUrl));
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(g.wsUrl);
      ws.on('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        res.resume();
      });
      ws.on('open', () => reject(new Error('opened past the cap')));
      ws.on('error', () => {});
    });
    assert.equal(status, 429);
    await Promise.all(peers.map(async (p) => {
      p.ws.close();
      await p.closed;
    }));
    // Released: a new one is accepted.
    const again = await rawPeer(g.wsUrl);
    again.ws.close();
  });

  test('the SDK refuses plain ws:// to a public host and needs https for a pin', async () => {
    await assert.rejects(connect({ url: 'http://203.0.113.7:7070', token: TOKEN, env: {} }), (e: ControlError) => e.code === 'CONTROL_INSECURE_URL');
    await assert.rejects(connect({ url: g.url, token: TOKEN, pin: `sha256/${'A'.repeat(43)}=`, env: {} }), (e: ControlError) => e.code === 'TLS_PIN_INVALID');
    await assert.rejects(connect({ env: {} }), (e: ControlError) => e.code === 'INVALID_ARGUMENT');
  });

  test('PORTHOLE_URL and PORTHOLE_TOKEN are the defaults', async () => {
    const c = await connect({ env: { PORTHOLE_URL: g.url, PORTHOLE_TOKEN: TOKEN } });
    assert.deepEqual(await c.request('health'), { status: 'ok' });
    await c.close();
  });
});

describe('control plane: bans', () => {
  let g: ControlGateway;
  before(async () => {
    g = await startControlGateway({ toml: '[auth.rate_limit]\nmax_failures = 2\nban = 1\n' });
  });
  after(() => g.close());

  test('wrong proofs ban the client (4029 with Retry-After) until the ban expires', async () => {
    await assert.rejects(connect({ url: g.url, token: `ph_${'w'.repeat(43)}`, env: {} }), (e: ControlError) => e.code === 'AUTH_INVALID');
    await assert.rejects(connect({ url: g.url, token: `ph_${'w'.repeat(43)}`, env: {} }), (e: ControlError) => e.code === 'RATE_LIMITED' && e.retryAfter === 1);
    // Banned: even the right token is told 4029 before any challenge.
    const p = await rawPeer(g.wsUrl);
    const c = await p.closed;
    assert.equal(c.code, 4029);
    assert.match(c.reason, /retry-after=1/);
    await assert.rejects(connect({ url: g.url, token: TOKEN, env: {} }), (e: ControlError) => e.code === 'RATE_LIMITED');
    // Expiry: within a few seconds the right token gets in again.
    const end = Date.now() + 5_000;
    for (;;) {
      try {
        const ok = await connect({ url: g.url, token: TOKEN, env: {} });
        await ok.close();
        break;
      } catch (err) {
        if ((err as ControlError).code !== 'RATE_LIMITED' || Date.now() > end) throw err;
        await delay(200);
      }
    }
  });
});

describe('control plane: rotation, heartbeat, Origin', () => {
  let g: ControlGateway;
  before(async () => {
    g = await startControlGateway({ token: null, control: { heartbeatMs: 150 }, settings: { allowedOrigins: ['https://console.example.test'] } });
  });
  after(() => g.close());

  test('rotating the token closes its sessions with 4003; the old token is then stale, not counted', async () => {
    const old = g.gateway.revealToken();
    const a = await connect({ url: g.url, token: old, env: {} });
    const b = await connect({ url: g.url, token: old, env: {} });
    const r = (await a.request('token.rotate')) as { connectionsClosed: number };
    assert.ok(r.connectionsClosed >= 2);
    const [ea, eb] = await Promise.all([a.closed, b.closed]);
    assert.equal(ea?.code, 'AUTH_REVOKED');
    assert.equal(eb?.closeCode, 4003);
    assert.equal(a.state, 'closed', 'never reconnects after 4003');
    await assert.rejects(connect({ url: g.url, token: old, env: {} }), (e: ControlError) => e.code === 'AUTH_REVOKED');
    const fresh = await connect({ url: g.url, token: g.gateway.revealToken(), env: {} });
    await fresh.close();
  });

  test('a frozen peer is dropped by the heartbeat', async () => {
    const token = g.gateway.revealToken();
    const p = await rawPeer(g.wsUrl);
    const ch = await challengeOf(p);
    p.send(connectFrame(ch.nonce, { scheme: 'token', token }));
    assert.equal((await p.next())['ok'], true);
    assert.equal(g.gateway.control.size, 1);
    // Freeze: stop reading, so pings go unanswered.
    (p.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    await until(() => g.gateway.control.size === 0, 5_000);
    p.ws.terminate();
  });

  test('browser Origin: a foreign one is refused at the upgrade; own and allowed ones pass', async () => {
    const status = (origin: string) =>
      new Promise<number>((resolve) => {
        const req = request(`${g.url}/_porthole/ws`, {
          headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', origin },
        });
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('upgrade', (_res, socket) => {
          socket.destroy();
          resolve(101);
        });
        req.end();
      });
    assert.equal(await status('https://evil.example'), 403);
    assert.equal(await status('null'), 403);
    assert.equal(await status(g.url), 101);
    assert.equal(await status('https://console.example.test'), 101);
  });

  test('the console: a session cookie with an allowed Origin authenticates', async () => {
    const { code } = g.gateway.issueCode();
    const cookie = await new Promise<string>((resolve) => {
      request(`${g.url}/?code=${code}`, (res) => {
        res.resume();
        resolve(String(res.headers['set-cookie']?.[0]).split(';')[0]!);
      }).end();
    });
    const p = await rawPeer(g.wsUrl, { headers: { cookie }, origin: g.url });
    const ch = await challengeOf(p);
    p.send(connectFrame(ch.nonce, { scheme: 'session' }));
    const res = await p.next();
    assert.equal(res['ok'], true, JSON.stringify(res));
    p.ws.close();
    // Without the cookie, "session" is not a credential.
    const q = await rawPeer(g.wsUrl, { origin: g.url });
    const ch2 = await challengeOf(q);
    q.send(connectFrame(ch2.nonce, { scheme: 'session' }));
    assert.equal(((await q.next())['error'] as { code: string }).code, 'AUTH_REQUIRED');
    assert.equal((await q.closed).code, 4001);
  });
});

describe('a browser session used only over the control WebSocket', () => {
  // session_idle is 2 s here; requests come every 400 ms, five times inside the idle window.
  let g: ControlGateway;
  before(async () => {
    g = await startControlGateway({ toml: '[auth]\nsession_idle = 2\n' });
  });
  after(() => g.close());

  const signIn = async (): Promise<string> => {
    const { code } = g.gateway.issueCode();
    return new Promise<string>((resolve) => {
      request(`${g.url}/?code=${code}`, (res) => {
        res.resume();
        resolve(String(res.headers['set-cookie']?.[0]).split(';')[0]!);
      }).end();
    });
  };
  const cookieWorks = (cookie: string) =>
    new Promise<number>((resolve) => {
      request(`${g.url}/_porthole/api/status`, { headers: { cookie } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).end();
    });

  test('its requests count as use: the session outlives session_idle while they come', async () => {
    const cookie = await signIn();
    const p = await rawPeer(g.wsUrl, { headers: { cookie }, origin: g.url });
    const ch = await challengeOf(p);
    p.send(connectFrame(ch.nonce, { scheme: 'session' }));
    assert.equal((await p.next())['ok'], true);
    for (let i = 0; i < 8; i++) {
      await delay(400);
      p.send(JSON.stringify({ type: 'req', id: `h${i}`, method: 'health', params: {} }));
      const res = await p.next();
      assert.equal(res['ok'], true, `request ${i} after ${(i + 1) * 400} ms: ${JSON.stringify(res)}`);
    }
    // 3.2 s since the cookie was last sent over HTTP, longer than session_idle.
    assert.equal(await cookieWorks(cookie), 200);
    p.ws.close();
  });

  test('without use it still ends after session_idle (control)', async () => {
    const cookie = await signIn();
    assert.equal(await cookieWorks(cookie), 200);
    await delay(2_300);
    assert.equal(await cookieWorks(cookie), 401);
  });
});
