// Pairing and devices end to end (docs/pairing.md), through the real CLI and real sockets:
// `porthole pair` → exchange → a device credential with its scope; replays and concurrent
// exchanges; short codes burnt by wrong attempts; the exchange rate-limited per client;
// --require-approval; revocation ending sessions, streams and control sessions (4003) at
// once; restarts keep devices; no answer ever carries the master token.
import assert from 'node:assert/strict';
import { createHash, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { loadOrCreateIdentity } from '../../src/tunnel/identity.js';
import { runCli, type Served, startCli, tempHome } from '../helpers/cli.js';
import { type EchoApp, startEchoApp } from '../helpers/echo-app.js';
import { echoed, nextChunk, openStream, type Reply, send, sessionCookie } from '../helpers/http.js';

const TOKEN = `ph_${'pair'.repeat(11)}`;

interface PairJson {
  link: string;
  code: string;
  shortCode: string;
  scope: string;
  expiresAt: string;
  deviceExpiresAt: string | null;
  requireApproval: boolean;
}

function assertError(r: Reply, status: number, code: string): void {
  assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status}: ${r.text}`);
  assert.equal(r.code, code, r.text);
}

/** A control-plane client speaking the raw protocol (docs/control-plane.md). */
async function controlConnect(
  port: number,
  auth: (challenge: { nonce: string; ts: number }) => Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<{ ws: WebSocket; hello: Record<string, unknown> | undefined; error: { code: string } | undefined; events: { event: string; payload: unknown }[]; closed: Promise<number>; nextEvent(name: string, timeoutMs?: number): Promise<unknown> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/_porthole/ws`, { headers });
  const closed = new Promise<number>((r) => ws.once('close', (code: number) => r(code)));
  const events: { event: string; payload: unknown }[] = [];
  const waiters: { name: string; resolve: (p: unknown) => void }[] = [];
  let onRes: ((f: Record<string, unknown>) => void) | undefined;
  ws.on('message', (data) => {
    const f = JSON.parse(String(data)) as Record<string, unknown>;
    if (f['type'] === 'event') {
      const e = { event: f['event'] as string, payload: f['payload'] };
      if (e.event === 'connect.challenge') {
        const c = e.payload as { nonce: string; ts: number };
        ws.send(JSON.stringify({ type: 'req', id: 'c1', method: 'connect', params: { nonce: c.nonce, minProtocol: 1, maxProtocol: 1, auth: auth(c) } }));
        return;
      }
      // An event goes to the first waiter for it, or is kept for a later nextEvent — not both
      // (kept after being handed out, it was returned again: a flaky "paired" for "approved").
      const w = waiters.find((x) => x.name === e.event);
      if (w === undefined) events.push(e);
      else {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(e.payload);
      }
    } else if (f['type'] === 'res') onRes?.(f);
  });
  const res = await Promise.race([
    new Promise<Record<string, unknown>>((r) => (onRes = r)),
    closed.then((code) => ({ ok: false, error: { code: `closed ${code}` } }) as Record<string, unknown>),
  ]);
  return {
    ws,
    hello: res['ok'] ? (res['payload'] as Record<string, unknown>) : undefined,
    error: res['ok'] ? undefined : (res['error'] as { code: string }),
    events,
    closed,
    nextEvent(name, timeoutMs = 10_000) {
      const seen = events.find((e) => e.event === name);
      if (seen) {
        events.splice(events.indexOf(seen), 1);
        return Promise.resolve(seen.payload);
      }
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no ${name} event within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({
          name,
          resolve: (p) => {
            clearTimeout(t);
            resolve(p);
          },
        });
      });
    },
  };
}

describe('pairing e2e', () => {
  let app: EchoApp;
  let served: Served;
  const home = tempHome();
  let port: number;
  const env = () => ({ PORTHOLE_HOME: home.home, PORTHOLE_AUTH_TOKEN: TOKEN });
  let nextLocal = 10;
  /** A fresh loopback source address: its own ban key. */
  const fresh = () => `127.0.3.${nextLocal++}`;

  async function serve(): Promise<void> {
    served = await startCli(['serve', '--target', app.url, '--port', String(port || 0), '--json', '--no-loopback-exempt'], env());
    port = served.event.port;
  }

  async function pair(...args: string[]): Promise<PairJson> {
    const r = await runCli(['pair', '--json', ...args], env());
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stdout.includes(TOKEN) && !r.stderr.includes(TOKEN), 'the master token never appears');
    return JSON.parse(r.stdout) as PairJson;
  }

  function exchange(body: Record<string, unknown>, localAddress = fresh(), headers: Record<string, string> = {}): Promise<Reply> {
    return send(port, '/_porthole/api/pair/exchange', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
      localAddress,
    });
  }

  before(async () => {
    app = await startEchoApp();
    port = 0;
    await serve();
  });

  after(async () => {
    await served?.stop();
    await app?.close();
    home.cleanup();
  });

  test('pair → exchange (sdk): a phd_ token, pins and connect URLs; a replay a moment later fails', async () => {
    const p = await pair('--scope', 'read', '--expires', '30d');
    assert.match(p.code, /^phc_[A-Za-z0-9_-]{43}$/);
    assert.match(p.shortCode, /^[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$/);
    assert.ok(p.link.endsWith(`/_porthole/ui/#/pair?code=${p.code}`), p.link);
    assert.equal(p.scope, 'read');
    const days = (Date.parse(p.deviceExpiresAt!) - Date.now()) / 86_400_000;
    assert.ok(days > 29.9 && days <= 30, `device expiry in 30 days, got ${days}`);
    assert.ok(Date.parse(p.expiresAt) - Date.now() <= 5 * 60_000);

    const r = await exchange({ code: p.code, name: "Alice's phone", kind: 'sdk' });
    assert.equal(r.status, 201, r.text);
    const body = r.json as { device: Record<string, unknown>; token: string; pins: Record<string, unknown>; connectUrls: string[] };
    assert.match(body.token, /^phd_[A-Za-z0-9_-]{43}$/);
    assert.equal(body.device['name'], "Alice's phone");
    assert.equal(body.device['scope'], 'read');
    assert.equal(body.device['status'], 'active');
    assert.deepEqual(body.pins, { tls: null, tunnel: null });
    assert.deepEqual(body.connectUrls, [], 'bound to loopback: nothing a phone could use');
    assert.ok(!r.text.includes(TOKEN));

    const replay = await exchange({ code: p.code, name: 'thief', kind: 'sdk' });
    assertError(replay, 401, 'CODE_INVALID');

    // The token on disk is a digest only.
    const file = readFileSync(join(home.home, 'devices.json'), 'utf8');
    assert.ok(!file.includes(body.token.slice(4)));

    // Scope read: GET/HEAD to the app, identity in X-Porthole-Identity; nothing else.
    const auth = { authorization: `Bearer ${body.token}` };
    const seen = echoed(await send(port, '/hello', { headers: auth }));
    const identity = String(seen.headers['x-porthole-identity']);
    assert.match(identity, new RegExp(`sub=device%3A${body.device['id']}; cred=device; scope=read;`));
    assert.equal(seen.headers.authorization, undefined, 'the device token is never forwarded');
    assertError(await send(port, '/hello', { method: 'POST', headers: auth, body: 'x' }), 403, 'SCOPE_DENIED');
    assertError(await send(port, '/_porthole/api/devices', { headers: auth }), 403, 'SCOPE_DENIED');
    assertError(await send(port, '/_porthole/api/pair', { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{}' }), 403, 'SCOPE_DENIED');
    const urls = await send(port, '/_porthole/api/connect-urls', { headers: auth });
    assert.equal(urls.status, 200, urls.text);
    assert.deepEqual(urls.json, { connectUrls: [] });

    // On the control plane too: the read methods only.
    const c = await controlConnect(port, () => ({ scheme: 'token', token: body.token }));
    assert.equal(c.hello?.['scope'], 'read', JSON.stringify(c.error));
    assert.ok(!(c.hello!['methods'] as string[]).includes('token.rotate'));
    c.ws.close();
  });

  test('two concurrent exchanges of one code: exactly one wins', async () => {
    for (let round = 0; round < 3; round++) {
      const p = await pair();
      const replies = await Promise.all(Array.from({ length: 4 }, (_, i) => exchange({ code: p.code, name: `racer ${i}`, kind: 'sdk' })));
      const statuses = replies.map((r) => r.status).sort();
      assert.deepEqual(statuses, [201, 401, 401, 401], replies.map((r) => r.text).join('\n'));
    }
  });

  test('short code: with or without the dash, any case; burnt after 5 wrong attempts', async () => {
    const a = await pair();
    const r = await exchange({ shortCode: a.shortCode.toLowerCase().replace('-', ''), name: 'typed', kind: 'sdk' });
    assert.equal(r.status, 201, r.text);

    const b = await pair();
    const wrong = b.shortCode.startsWith('0') ? '11111-11111' : '00000-00000';
    for (let i = 0; i < 5; i++) assertError(await exchange({ shortCode: wrong, name: 'guess', kind: 'sdk' }), 401, 'CODE_INVALID');
    assertError(await exchange({ shortCode: b.shortCode, name: 'late', kind: 'sdk' }), 401, 'CODE_INVALID');
    // The QR's long code cannot be guessed: wrong short codes from anyone must not stop it.
    assert.equal((await exchange({ code: b.code, name: 'scanned', kind: 'sdk' })).status, 201);
  });

  test('the exchange is rate-limited per client (the ban table)', async () => {
    const me = fresh();
    let banned: Reply | undefined;
    for (let i = 0; i < 10 && !banned; i++) {
      const r = await exchange({ code: `phc_${'x'.repeat(43)}`, name: 'guess', kind: 'sdk' }, me);
      if (r.status === 429) banned = r;
      else assertError(r, 401, 'CODE_INVALID');
    }
    assert.ok(banned, 'banned within 10 wrong codes');
    assertError(banned, 429, 'RATE_LIMITED');
    // Even a good code is refused while banned; another client is unaffected.
    const p = await pair();
    assertError(await exchange({ code: p.code, name: 'x', kind: 'sdk' }, me), 429, 'RATE_LIMITED');
    assert.equal((await exchange({ code: p.code, name: 'x', kind: 'sdk' })).status, 201);
  });

  test('a bad expiry or scope is the caller\'s error: 400 with its message over HTTP, exit 2 from the CLI', async () => {
    const owner = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    for (const body of [{ expires: '5x' }, { scope: 'god' }, { expires: '0h' }]) {
      const r = await send(port, '/_porthole/api/pair', { method: 'POST', headers: owner, body: JSON.stringify(body) });
      assertError(r, 400, 'INVALID_ARGUMENT');
      assert.notEqual((r.json as { error: { message: string } }).error.message, 'internal error', r.text);
    }
    const cli = await runCli(['pair', '--expires', '5x'], env());
    assert.equal(cli.code, 2, cli.stderr);
    assert.match(cli.stderr, /\[INVALID_ARGUMENT\]/);
  });

  test('bad bodies are refused before the code is spent', async () => {
    const p = await pair();
    assertError(await exchange({ code: p.code, kind: 'sdk' }), 400, 'BAD_REQUEST');
    assertError(await exchange({ code: p.code, shortCode: p.shortCode, name: 'x', kind: 'sdk' }), 400, 'BAD_REQUEST');
    assertError(await exchange({ code: p.code, name: 'x', kind: 'sdk', publicKey: 'AAAA' }), 400, 'BAD_REQUEST');
    assertError(await exchange({ code: p.code, name: 'x', kind: 'sdk' }, fresh(), { origin: 'https://evil.example' }), 403, 'ORIGIN_NOT_ALLOWED');
    assert.equal((await exchange({ code: p.code, name: 'x', kind: 'sdk' })).status, 201);
  });

  test('--require-approval: pending (403 DEVICE_PENDING) until approved; events on the control plane; audit log', async () => {
    const watcher = await controlConnect(port, () => ({ scheme: 'token', token: TOKEN }));
    assert.ok(watcher.hello, JSON.stringify(watcher.error));
    assert.ok((watcher.hello!['events'] as string[]).includes('devices.changed'));

    const p = await pair('--require-approval', '--scope', 'admin');
    assert.equal(p.requireApproval, true);
    const r = await exchange({ code: p.code, name: 'waiting', kind: 'sdk' });
    assert.equal(r.status, 201, r.text);
    const { device, token } = r.json as { device: { id: string; status: string }; token: string };
    assert.equal(device.status, 'pending');
    // The person at the desk sees it at once: a JSON line under --json and a notice on stderr.
    await served.waitForEvent((e) => e['event'] === 'device' && (e['device'] as { id: string }).id === device.id);
    await served.waitForStderr(new RegExp(`Device paired: "waiting" \\(${device.id}, admin\\) — pending: approve with`));
    const completed = (await watcher.nextEvent('pair.completed')) as { device: { id: string } };
    assert.equal(completed.device.id, device.id);
    const changed = (await watcher.nextEvent('devices.changed')) as { reason: string; device: { id: string } };
    assert.deepEqual([changed.reason, changed.device.id], ['paired', device.id]);

    assertError(await send(port, '/', { headers: { authorization: `Bearer ${token}` } }), 403, 'DEVICE_PENDING');
    const early = await controlConnect(port, () => ({ scheme: 'token', token }));
    assert.equal(early.error?.code, 'DEVICE_PENDING');
    assert.equal(await early.closed, 4001);
    const list = await runCli(['devices', 'list', '--json'], env());
    assert.equal(list.code, 0, list.stderr);
    const listed = (JSON.parse(list.stdout) as { devices: { id: string; status: string }[] }).devices.find((d) => d.id === device.id);
    assert.equal(listed?.status, 'pending');
    assert.ok(!list.stdout.includes('tokenDigest'));

    const approve = await runCli(['devices', 'approve', device.id], env());
    assert.equal(approve.code, 0, approve.stderr);
    const approved = (await watcher.nextEvent('devices.changed')) as { reason: string; device: { id: string; status: string } };
    assert.deepEqual([approved.reason, approved.device.status], ['approved', 'active']);
    assert.equal((await send(port, '/', { headers: { authorization: `Bearer ${token}` } })).status, 200);

    const audit = readFileSync(join(home.home, 'audit.log'), 'utf8');
    assert.match(audit, new RegExp(`"event":"device.paired","id":"${device.id}"`));
    assert.match(audit, new RegExp(`"event":"device.approved","id":"${device.id}"`));
    assert.ok(!audit.includes(token.slice(4)) && !audit.includes(p.code.slice(4)), 'no secret in the audit log');
    watcher.ws.close();
  });

  test('browser devices: a session cookie instead of a token, and ?code= first loads', async () => {
    const p = await pair('--scope', 'read');
    const r = await exchange({ code: p.code, name: 'laptop browser', kind: 'browser' });
    assert.equal(r.status, 201, r.text);
    assert.equal((r.json as { token?: string }).token, undefined, 'no token in the body');
    const cookie = sessionCookie(r);
    const seen = echoed(await send(port, '/x', { headers: { cookie: cookie.pair } }));
    assert.match(String(seen.headers['x-porthole-identity']), /sub=device%3A[0-9a-f]{16}; cred=session; scope=read;/);

    const q = await pair();
    const first = await send(port, `/start?code=${q.code}`, { headers: { 'user-agent': 'Mozilla/5.0 (Android 14) Firefox/130.0' } });
    assert.equal(first.status, 303, first.text);
    assert.equal(first.headers.location, '/start');
    const list = (await runCli(['devices', 'list', '--json'], env())).stdout;
    const devices = (JSON.parse(list) as { devices: { name: string; kind: string }[] }).devices;
    assert.ok(devices.some((d) => d.kind === 'browser' && d.name === 'Browser (Firefox on Android)'), list);
    assert.equal((await send(port, `/start?code=${q.code}`)).status, 401, 'the link is single use');
  });

  test('revoke: sessions end, streams and control sessions close (4003) at once; the token is AUTH_REVOKED', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const spki = publicKey.export({ format: 'der', type: 'spki' }).toString('base64url');
    const p = await pair();
    const r = await exchange({ code: p.code, name: 'keyed', kind: 'sdk', publicKey: spki });
    assert.equal(r.status, 201, r.text);
    const { device, token } = r.json as { device: { id: string }; token: string };
    const auth = { authorization: `Bearer ${token}` };

    // A control session by signature (docs/pairing.md), and a wrong signature for contrast.
    const signed = (key: typeof privateKey) => (c: { nonce: string; ts: number }) => ({
      scheme: 'device',
      deviceId: device.id,
      signature: sign(null, Buffer.from(`porthole-control-device-v1\n${c.nonce}\n${c.ts}\n\n${device.id}`), key).toString('base64url'),
    });
    const bad = await controlConnect(port, signed(generateKeyPairSync('ed25519').privateKey), {}).catch((e) => e);
    assert.equal(bad.error?.code, 'AUTH_INVALID');
    const control = await controlConnect(port, signed(privateKey));
    assert.ok(control.hello, JSON.stringify(control.error));
    assert.equal(control.hello!['scope'], 'admin');

    // An SSE stream through the gateway, and a browser session of the same device (via ?code= would be another device).
    const connected = app.nextSse();
    const stream = await openStream(port, '/sse', { ...auth, accept: 'text/event-stream' });
    const upstream = await connected;
    const got = nextChunk(stream.res);
    upstream.write('data: one\n\n');
    assert.match(await got, /data: one/);

    const revoke = await runCli(['devices', 'revoke', device.id, '--json'], env());
    assert.equal(revoke.code, 0, revoke.stderr);
    const answer = JSON.parse(revoke.stdout) as { revoked: boolean; connectionsClosed: number };
    assert.equal(answer.revoked, true);
    assert.ok(answer.connectionsClosed >= 2, revoke.stdout);
    const bound = (p: Promise<unknown>, what: string) =>
      Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error(`${what} still open`)), 10_000))]);
    await bound(stream.closed, 'the SSE stream');
    assert.equal(await bound(control.closed, 'the control session'), 4003);

    assertError(await send(port, '/', { headers: auth }), 401, 'AUTH_REVOKED');
    const again = await controlConnect(port, signed(privateKey));
    assert.equal(again.error?.code, 'AUTH_INVALID', 'a revoked key no longer verifies');
    const gone = await runCli(['devices', 'revoke', device.id], env());
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /DEVICE_NOT_FOUND/);
  });

  test('a restart keeps devices and their sessions; the master token appears in no answer', async () => {
    const p = await pair();
    const sdk = await exchange({ code: p.code, name: 'survivor', kind: 'sdk' });
    const q = await pair();
    const browser = await exchange({ code: q.code, name: 'survivor browser', kind: 'browser' });
    const cookie = sessionCookie(browser);
    const token = (sdk.json as { token: string }).token;
    await served.stop();
    await serve();
    assert.equal((await send(port, '/', { headers: { authorization: `Bearer ${token}` } })).status, 200);
    assert.equal((await send(port, '/', { headers: { cookie: cookie.pair } })).status, 200);
    const list = await send(port, '/_porthole/api/devices', { headers: { authorization: `Bearer ${token}` } });
    assert.equal(list.status, 200, list.text);
    for (const r of [sdk, browser, list]) assert.ok(!r.text.includes(TOKEN));
    const text = await runCli(['devices', 'list'], env());
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^ID\s+NAME\s+KIND\s+SCOPE\s+STATUS/);
    assert.match(text.stdout, /survivor browser\s+browser\s+admin\s+active/);
  });
});

describe('pairing e2e: pins and connect URLs (--tls self-signed, --public-url, a tunnel identity)', () => {
  let app: EchoApp;
  let served: Served;
  const home = tempHome();

  before(async () => {
    app = await startEchoApp();
    // The desk's tunnel identity, as the tunnel makes it on first use (src/tunnel/identity.ts).
    loadOrCreateIdentity(join(home.home, 'identity'));
    served = await startCli(
      ['serve', '--target', app.url, '--port', '0', '--json', '--tls', 'self-signed', '--public-url', 'https://desk.example.com'],
      { PORTHOLE_HOME: home.home, PORTHOLE_AUTH_TOKEN: TOKEN },
    );
  });

  after(async () => {
    await served?.stop();
    await app?.close();
    home.cleanup();
  });

  test('the answer pins the TLS key and the tunnel identity; the link uses the best connect URL', async () => {
    const paired = await runCli(['pair', '--json'], { PORTHOLE_HOME: home.home, PORTHOLE_AUTH_TOKEN: TOKEN });
    assert.equal(paired.code, 0, paired.stderr);
    const p = JSON.parse(paired.stdout) as PairJson;
    assert.equal(p.link, `https://desk.example.com/_porthole/ui/#/pair?code=${p.code}`);
    const status = JSON.parse((await runCli(['status', '--json'], { PORTHOLE_HOME: home.home })).stdout) as { tls: { pin: string; fingerprint256: string } };
    const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpsRequest(
        { host: '127.0.0.1', port: served.event.port, path: '/_porthole/api/pair/exchange', method: 'POST', rejectUnauthorized: false, headers: { 'content-type': 'application/json' } },
        (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (d: string) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify({ code: p.code, name: 'pinned', kind: 'sdk' }));
    });
    assert.equal(r.status, 201, r.body);
    const body = JSON.parse(r.body) as { pins: { tls: { spki: string; cert: string }; tunnel: { spki: string; publicKey: string } }; connectUrls: string[] };
    assert.deepEqual(body.pins.tls, { spki: status.tls.pin, cert: status.tls.fingerprint256 });
    const pem = readFileSync(join(home.home, 'identity', 'desk-ed25519.pem'), 'utf8');
    const spki = createPublicKey(pem).export({ format: 'der', type: 'spki' });
    assert.equal(body.pins.tunnel.spki, `sha256/${createHash('sha256').update(spki).digest('base64')}`);
    assert.equal(body.pins.tunnel.publicKey, loadOrCreateIdentity(join(home.home, 'identity')).publicKey);
    assert.equal(body.connectUrls[0], 'https://desk.example.com');
    assert.ok(!r.body.includes(TOKEN));
  });
});
