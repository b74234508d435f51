// The gateway's auth matrix through the real CLI (DESIGN §2–§3): loopback exemption,
// credentials and what the app sees of them, failure counting and bans, DNS rebinding,
// cross-site requests to loopback, spoofed forwarding and identity headers, WebSockets.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { verifyIdentity } from '../../src/gateway/identity.js';
import { runCli, type Served, startCli, tempHome } from '../helpers/cli.js';
import { type EchoApp, startEchoApp } from '../helpers/echo-app.js';
import { connectWs, echoed, login, type Reply, send, sessionCookie } from '../helpers/http.js';

interface Gw {
  served: Served;
  home: string;
  port: number;
  token: string;
  /** "http://127.0.0.1:PORT" */
  origin: string;
  bearer: string;
}

const cleanups: (() => void)[] = [];
const running: Served[] = [];
let app: EchoApp;
/** Loopback exemption on (the default). */
let exempt: Gw;
/** --no-loopback-exempt. */
let strict: Gw;
/** --allowed-origins https://app.example. */
let cors: Gw;
/** --no-loopback-exempt, default rate limit: gets banned. */
let banned: Gw;
/** porthole.toml: loopback_exempt = false, max_failures = 2, ban = 1 s. */
let shortBan: Gw;

async function gateway(args: string[], toml?: string): Promise<Gw> {
  const { home, cleanup } = tempHome();
  cleanups.push(cleanup);
  if (toml !== undefined) writeFileSync(join(home, 'porthole.toml'), toml, { mode: 0o600 });
  const served = await startCli(['serve', '--target', app.url, '--port', '0', '--json', ...args], { PORTHOLE_HOME: home });
  running.push(served);
  const token = served.event['generatedToken'];
  assert.equal(typeof token, 'string', 'first start reports the generated token');
  const port = served.event.port;
  return { served, home, port, token: token as string, origin: `http://127.0.0.1:${port}`, bearer: `Bearer ${token}` };
}

/** A well-formed porthole token that is not this gateway's. */
const wrongToken = () => `ph_${randomBytes(32).toString('base64url')}`;

function identityKey(home: string): Buffer {
  return Buffer.from(readFileSync(join(home, 'secrets', 'identity-key'), 'utf8').trim(), 'base64url');
}

function assertError(r: Reply, status: number, code: string): void {
  assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status}: ${r.text}`);
  assert.equal(r.code, code, r.text);
}

before(async () => {
  app = await startEchoApp();
  [exempt, strict, cors, banned, shortBan] = await Promise.all([
    gateway([]),
    gateway(['--no-loopback-exempt']),
    gateway(['--allowed-origins', 'https://app.example']),
    gateway(['--no-loopback-exempt']),
    gateway([], 'version = 1\n[auth]\nloopback_exempt = false\n[auth.rate_limit]\nban = 1\nmax_failures = 2\n'),
  ]);
});

after(async () => {
  await Promise.all(running.map((s) => s.stop()));
  await app?.close();
  for (const c of cleanups) c();
});

describe('loopback exemption (default on)', () => {
  test('a plain loopback request reaches the app as local, with a verifiable identity', async () => {
    const r = await send(exempt.port, '/hello?a=1');
    const seen = echoed(r);
    assert.equal(seen.url, '/hello?a=1');
    assert.equal(seen.headers['x-porthole-ingress'], 'local');
    const id = verifyIdentity(seen.headers['x-porthole-identity'] as string, identityKey(exempt.home));
    assert.ok(id, `identity header verifies: ${seen.headers['x-porthole-identity']}`);
    assert.equal(id.sub, 'local');
    assert.equal(id.cred, 'local');
    assert.equal(id.ingress, 'local');
  });

  test("porthole's API needs a credential even from loopback; its answer never holds the token", async () => {
    assertError(await send(exempt.port, '/_porthole/api/status'), 401, 'AUTH_REQUIRED');
    const r = await send(exempt.port, '/_porthole/api/status', { headers: { authorization: exempt.bearer } });
    assert.equal(r.status, 200, r.text);
    assert.ok(!r.text.includes(exempt.token), 'status must not contain the token');
    assert.ok(!r.text.includes(exempt.token.slice(3)), 'status must not contain the token body');
  });

  test('health and ping are public', async () => {
    for (const gw of [exempt, strict]) {
      const h = await send(gw.port, '/_porthole/health');
      assert.equal(h.status, 200, h.text);
      assert.deepEqual(h.json, { status: 'ok' });
      const p = await send(gw.port, '/_porthole/ping');
      assert.equal(p.status, 200, p.text);
      assert.equal((p.json as { service?: string }).service, 'porthole');
    }
  });
});

describe('credentials without the exemption', () => {
  test('a missing credential is 401 AUTH_REQUIRED; the bearer works and is not forwarded', async () => {
    const missing = await send(strict.port, '/x');
    assertError(missing, 401, 'AUTH_REQUIRED');
    const r = await send(strict.port, '/x', { headers: { authorization: strict.bearer } });
    const seen = echoed(r);
    assert.equal(seen.headers.authorization, undefined, 'the app must not receive porthole bearer');
    assert.ok(!JSON.stringify(seen).includes(strict.token), 'the token reaches the app nowhere');
    const id = verifyIdentity(seen.headers['x-porthole-identity'] as string, identityKey(strict.home));
    assert.ok(id);
    assert.equal(id.sub, 'owner');
    assert.equal(id.cred, 'token');
  });

  test('the exemption is also turned off by [auth] loopback_exempt = false in porthole.toml', async () => {
    assertError(await send(shortBan.port, '/x'), 401, 'AUTH_REQUIRED');
    echoed(await send(shortBan.port, '/x', { headers: { authorization: shortBan.bearer } }));
  });

  test('a wrong ph_ bearer is 401 AUTH_INVALID', async () => {
    assertError(await send(strict.port, '/x', { headers: { authorization: `Bearer ${wrongToken()}` } }), 401, 'AUTH_INVALID');
  });

  test("the app's own bearer passes through untouched next to a porthole session", async () => {
    const cookie = await login(strict.port, strict.token);
    // Alone, the app's bearer is not porthole's credential: missing, not invalid.
    assertError(await send(strict.port, '/api', { headers: { authorization: 'Bearer app-secret' } }), 401, 'AUTH_REQUIRED');
    const seen = echoed(await send(strict.port, '/api', { headers: { authorization: 'Bearer app-secret', cookie: cookie.pair } }));
    assert.equal(seen.headers.authorization, 'Bearer app-secret');
    assert.equal(seen.headers.cookie, undefined, "porthole's cookie is not forwarded");
  });

  test('?token= answers 303 to the clean URL with an HttpOnly SameSite=Lax session cookie', async () => {
    const status = await send(strict.port, '/_porthole/api/status', { headers: { authorization: strict.bearer } });
    const gatewayId = (status.json as { id: string }).id;
    const r = await send(strict.port, `/path?token=${strict.token}&x=1`);
    assert.equal(r.status, 303, r.text);
    assert.equal(r.headers.location, '/path?x=1');
    const c = sessionCookie(r);
    assert.equal(c.name, `porthole_session_${gatewayId}`);
    assert.ok(c.value.length >= 16, 'a random session id');
    assert.ok(!c.value.includes(strict.token) && !strict.token.includes(c.value), 'the cookie is not the token');
    const attrs = c.attributes.map((a) => a.toLowerCase());
    assert.ok(attrs.includes('httponly'), c.attributes.join('; '));
    assert.ok(attrs.includes('samesite=lax'), c.attributes.join('; '));
    assert.ok(!attrs.includes('secure'), 'no Secure on plain http');

    // The cookie works; the app sees its own cookies only, and none of porthole's parameters.
    const seen = echoed(await send(strict.port, '/path?x=1', { headers: { cookie: `app=1; ${c.pair}; other=2` } }));
    assert.equal(seen.url, '/path?x=1');
    assert.equal(seen.headers.cookie, 'app=1; other=2');
    const alone = echoed(await send(strict.port, '/path', { headers: { cookie: `${c.pair}; app=1` } }));
    assert.equal(alone.headers.cookie, 'app=1');
  });

  test("porthole's token/code parameters never reach the app; the app's own ones pass untouched", async () => {
    const c = await login(strict.port, strict.token);
    const own = echoed(await send(strict.port, '/cb?token=abc&code=xyz', { headers: { cookie: c.pair } }));
    assert.equal(own.url, '/cb?token=abc&code=xyz');
    // On a request that cannot be redirected (POST) porthole's parameters are ignored and stripped.
    const post = echoed(
      await send(strict.port, `/p?token=${strict.token}&code=phc_${randomBytes(32).toString('base64url')}&x=1`, {
        method: 'POST',
        headers: { authorization: strict.bearer, 'content-type': 'text/plain' },
        body: 'hi',
      }),
    );
    assert.equal(post.url, '/p?x=1');
    assert.equal(post.body, 'hi');
  });

  test('a percent-encoded parameter name (to%6Ben=ph_…) is stripped like token=ph_…', async () => {
    // Recognised as porthole's token (URLSearchParams decodes the name), so it must also be
    // removed: from the redirect target and from what the app receives.
    const get = await send(strict.port, `/p?to%6Ben=${strict.token}&x=1`);
    assert.equal(get.status, 303, get.text);
    assert.equal(get.headers.location, '/p?x=1');
    const post = echoed(
      await send(strict.port, `/p?to%6Ben=${strict.token}&x=1`, { method: 'POST', headers: { authorization: strict.bearer } }),
    );
    assert.equal(post.url, '/p?x=1');
  });

  test(
    'the 303 after ?token= stays on the gateway: no protocol-relative Location',
    async () => {
      for (const path of ['//evil.example/', '/\\evil.example/']) {
        const r = await send(strict.port, `${path}?token=${strict.token}`);
        assert.equal(r.status, 303, r.text);
        const location = String(r.headers.location);
        assert.equal(new URL(location, strict.origin).origin, strict.origin, `Location ${location} leaves the gateway`);
      }
    },
  );

  test('a read-only pairing code gives a session that may look but not change', async () => {
    const paired = await runCli(['pair', '--json', '--scope', 'read'], { PORTHOLE_HOME: strict.home });
    assert.equal(paired.code, 0, paired.stderr);
    const { code } = JSON.parse(paired.stdout) as { code: string };
    const c = sessionCookie(await send(strict.port, `/?code=${code}`));
    const seen = echoed(await send(strict.port, '/look', { headers: { cookie: c.pair } }));
    const id = verifyIdentity(seen.headers['x-porthole-identity'] as string, identityKey(strict.home));
    assert.equal(id?.scope, 'read');
    assert.equal(id?.cred, 'session');
    assertError(await send(strict.port, '/change', { method: 'POST', headers: { cookie: c.pair } }), 403, 'SCOPE_DENIED');
  });

  test('a one-time code from `porthole pair` signs in once; a second use is 401 CODE_INVALID', async () => {
    const paired = await runCli(['pair', '--json'], { PORTHOLE_HOME: strict.home });
    assert.equal(paired.code, 0, paired.stderr);
    const { link, code } = JSON.parse(paired.stdout) as { link: string; code: string };
    assert.match(code, /^phc_/);
    // The pairing link opens the console's pairing route (docs/pairing.md); the code also
    // works as a browser's first load, `?code=` on any page.
    assert.equal(link, `${strict.origin}/_porthole/ui/#/pair?code=${code}`);
    const u = new URL(`${strict.origin}/?code=${code}`);
    const first = await send(strict.port, u.pathname + u.search);
    assert.equal(first.status, 303, first.text);
    assert.equal(first.headers.location, u.pathname);
    const c = sessionCookie(first);
    echoed(await send(strict.port, '/after-pairing', { headers: { cookie: c.pair } }));
    assertError(await send(strict.port, u.pathname + u.search), 401, 'CODE_INVALID');
  });

  test('POST /_porthole/api/logout ends the session', async () => {
    const c = await login(strict.port, strict.token);
    echoed(await send(strict.port, '/in', { headers: { cookie: c.pair } }));
    const out = await send(strict.port, '/_porthole/api/logout', { method: 'POST', headers: { cookie: c.pair } });
    assert.equal(out.status, 200, out.text);
    const cleared = (out.headers['set-cookie'] ?? []).find((l) => l.startsWith(`${c.name}=`));
    assert.ok(cleared && /max-age=0/i.test(cleared), `clears the cookie: ${out.headers['set-cookie']}`);
    assertError(await send(strict.port, '/in', { headers: { cookie: c.pair } }), 401, 'AUTH_REQUIRED');
  });
});

describe('failures count only for wrong porthole credentials', () => {
  test("the app's own bearer and missing credentials never ban; wrong ph_ tokens do, and the ban holds the right token too", async () => {
    for (let i = 0; i < 20; i++) {
      const r = await send(banned.port, '/api', { headers: { authorization: `Bearer app-token-${i}` } });
      assertError(r, 401, 'AUTH_REQUIRED');
    }
    for (let i = 0; i < 10; i++) assertError(await send(banned.port, '/api'), 401, 'AUTH_REQUIRED');
    echoed(await send(banned.port, '/api', { headers: { authorization: banned.bearer } }));

    const answers: Reply[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await send(banned.port, '/api', { headers: { authorization: `Bearer ${wrongToken()}` } });
      answers.push(r);
      if (r.status === 429) break;
    }
    const at = answers.findIndex((r) => r.status === 429);
    assert.ok(at === 4 || at === 5, `the 5th or 6th wrong token is refused with 429: ${answers.map((r) => r.status)}`);
    for (const r of answers.slice(0, at)) assertError(r, 401, 'AUTH_INVALID');
    const limited = answers[at]!;
    assertError(limited, 429, 'RATE_LIMITED');
    assert.match(String(limited.headers['retry-after']), /^[1-9]\d*$/);

    const right = await send(banned.port, '/api', { headers: { authorization: banned.bearer } });
    assertError(right, 429, 'RATE_LIMITED');
    assert.match(String(right.headers['retry-after']), /^[1-9]\d*$/);
  });

  test('wrong ?token= and unknown ?code= count; a used code does not; bans are per client', async () => {
    const from = (localAddress: string, path: string, headers: Record<string, string> = {}) =>
      send(banned.port, path, { localAddress, headers });
    const untilBanned = async (localAddress: string, path: () => string): Promise<string[]> => {
      const seen: string[] = [];
      for (let i = 0; i < 6 && !seen.includes('RATE_LIMITED'); i++) seen.push(String((await from(localAddress, path())).code));
      return seen;
    };
    const code = () => `phc_${randomBytes(32).toString('base64url')}`;
    assert.deepEqual(await untilBanned('127.0.0.2', () => `/?token=${wrongToken()}`), [
      ...Array(4).fill('AUTH_INVALID'),
      'RATE_LIMITED',
    ]);
    assert.deepEqual(await untilBanned('127.0.0.3', () => `/?code=${code()}`), [...Array(4).fill('CODE_INVALID'), 'RATE_LIMITED']);

    // A code that was valid and is now used up is stale, not a guess.
    const paired = await runCli(['pair', '--json'], { PORTHOLE_HOME: banned.home });
    assert.equal(paired.code, 0, paired.stderr);
    const used = (JSON.parse(paired.stdout) as { code: string }).code;
    assert.equal((await from('127.0.0.4', `/?code=${used}`)).status, 303);
    for (let i = 0; i < 10; i++) assertError(await from('127.0.0.4', `/?code=${used}`), 401, 'CODE_INVALID');
    // Another loopback client, and 127.0.0.4 itself, are not banned by anyone else's guesses.
    echoed(await from('127.0.0.4', '/', { authorization: banned.bearer }));
    echoed(await from('127.0.0.5', '/', { authorization: banned.bearer }));
  });

  test('a web page guessing tokens is banned by its Origin, not the local user', async () => {
    const attacker = 'https://attacker.example';
    const statuses: number[] = [];
    for (let i = 0; i < 6 && !statuses.includes(429); i++) {
      const r = await send(exempt.port, '/', { headers: { authorization: `Bearer ${wrongToken()}`, origin: attacker } });
      statuses.push(r.status);
    }
    assert.deepEqual(statuses, [401, 401, 401, 401, 429]);
    assertError(await send(exempt.port, '/', { headers: { authorization: exempt.bearer, origin: attacker } }), 429, 'RATE_LIMITED');
    // The same loopback peer without that Origin is not locked out.
    echoed(await send(exempt.port, '/', { headers: { authorization: exempt.bearer } }));
    echoed(await send(exempt.port, '/'));
  });

  test('a ban ends after [auth.rate_limit] ban seconds', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 3 && !statuses.includes(429); i++) {
      statuses.push((await send(shortBan.port, '/x', { headers: { authorization: `Bearer ${wrongToken()}` } })).status);
    }
    assert.deepEqual(statuses, [401, 429], 'max_failures = 2: the second wrong token bans');
    assertError(await send(shortBan.port, '/x', { headers: { authorization: shortBan.bearer } }), 429, 'RATE_LIMITED');
    let last: Reply | undefined;
    for (let i = 0; i < 50; i++) {
      last = await send(shortBan.port, '/x', { headers: { authorization: shortBan.bearer } });
      if (last.status !== 429) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(last?.status, 200, `the right token works again once the 1 s ban is over: ${last?.text}`);
  });
});

describe('DNS rebinding', () => {
  test('a foreign Host is 403 HOST_NOT_ALLOWED, loopback peer or not, app path or health', async () => {
    const host = `evil.example:${exempt.port}`;
    assertError(await send(exempt.port, '/', { headers: { host } }), 403, 'HOST_NOT_ALLOWED');
    assertError(await send(exempt.port, '/_porthole/health', { headers: { host } }), 403, 'HOST_NOT_ALLOWED');
    const withToken = await send(strict.port, '/', { headers: { host: `evil.example:${strict.port}`, authorization: strict.bearer } });
    assertError(withToken, 403, 'HOST_NOT_ALLOWED');
  });

  test('Host localhost:PORT is served', async () => {
    const seen = echoed(await send(exempt.port, '/', { headers: { host: `localhost:${exempt.port}` } }));
    assert.equal(seen.headers['x-porthole-ingress'], 'local');
  });
});

describe('cross-site requests to loopback', () => {
  test('a cross-site GET is not local: 401', async () => {
    assertError(await send(exempt.port, '/', { headers: { origin: 'https://evil.example' } }), 401, 'AUTH_REQUIRED');
    assertError(await send(exempt.port, '/', { headers: { origin: 'null' } }), 401, 'AUTH_REQUIRED');
    assertError(await send(exempt.port, '/', { headers: { 'sec-fetch-site': 'cross-site' } }), 401, 'AUTH_REQUIRED');
    assertError(await send(exempt.port, '/', { method: 'POST', headers: { origin: 'https://evil.example' }, body: 'x' }), 401, 'AUTH_REQUIRED');
    // Control: the gateway's own pages are same-origin.
    echoed(await send(exempt.port, '/', { headers: { origin: exempt.origin, 'sec-fetch-site': 'same-origin' } }));
    echoed(await send(exempt.port, '/', { headers: { 'sec-fetch-site': 'none' } }));
  });

  test('an unsafe request with a session cookie needs an allowed Origin', async () => {
    const c = await login(exempt.port, exempt.token);
    const post = (origin: string) =>
      send(exempt.port, '/submit', {
        method: 'POST',
        headers: { cookie: c.pair, origin, 'content-type': 'application/json' },
        body: '{"a":1}',
      });
    assertError(await post('https://evil.example'), 403, 'ORIGIN_NOT_ALLOWED');
    const ok = echoed(await post(exempt.origin));
    assert.equal(ok.method, 'POST');
    assert.equal(ok.body, '{"a":1}');
  });

  test('a CORS preflight from an allowed origin gets 204, from another 403', async () => {
    const preflight = (origin: string) =>
      send(cors.port, '/api/items', {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
      });
    const ok = await preflight('https://app.example');
    assert.equal(ok.status, 204, ok.text);
    assert.equal(ok.headers['access-control-allow-origin'], 'https://app.example');
    const no = await preflight('https://evil.example');
    assertError(no, 403, 'ORIGIN_NOT_ALLOWED');
    assert.equal(no.headers['access-control-allow-origin'], undefined);
  });
});

describe('spoofed forwarding headers from loopback', () => {
  test('X-Forwarded-For, Forwarded or X-Real-IP make a loopback request remote: 401', async () => {
    for (const headers of [
      { 'x-forwarded-for': '203.0.113.9' },
      { forwarded: 'for=203.0.113.9' },
      { 'x-real-ip': '203.0.113.9' },
    ]) {
      assertError(await send(exempt.port, '/', { headers }), 401, 'AUTH_REQUIRED');
    }
  });

  test('the app gets the X-Forwarded-For porthole sets, never the client-supplied one', async () => {
    const seen = echoed(
      await send(exempt.port, '/', {
        headers: {
          authorization: exempt.bearer,
          'x-forwarded-for': '203.0.113.9',
          forwarded: 'for=203.0.113.9',
          'x-real-ip': '203.0.113.9',
        },
      }),
    );
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.headers.forwarded, undefined);
    assert.equal(seen.headers['x-real-ip'], undefined);
    assert.ok(!JSON.stringify(seen.headers).includes('203.0.113.9'));
  });
});

describe('identity headers', () => {
  test('inbound identity headers never reach the app; porthole’s own verifies', async () => {
    const forged = {
      'x-porthole-identity': 'forged',
      'x-porthole-ingress': 'tailscale',
      'tailscale-user-login': 'eve@example.com',
      'tailscale-user-name': 'Eve',
    };
    for (const [gw, extra, sub] of [
      [exempt, {}, 'local'],
      [strict, { authorization: strict.bearer }, 'owner'],
    ] as const) {
      const seen = echoed(await send(gw.port, '/', { headers: { ...forged, ...extra } }));
      assert.equal(seen.headers['tailscale-user-login'], undefined);
      assert.equal(seen.headers['tailscale-user-name'], undefined);
      assert.equal(seen.headers['x-porthole-ingress'], 'local');
      const value = seen.headers['x-porthole-identity'];
      assert.equal(typeof value, 'string', 'one identity header');
      assert.notEqual(value, 'forged');
      const id = verifyIdentity(value as string, identityKey(gw.home));
      assert.ok(id, `verifies: ${value}`);
      assert.equal(id.sub, sub);
      // Signed by this gateway's key only.
      assert.equal(verifyIdentity(value as string, randomBytes(32)), undefined);
    }
  });
});

describe('identity headers and Connection', () => {
  test(
    "a client's Connection header cannot remove the identity headers porthole sets",
    async () => {
      const seen = echoed(
        await send(strict.port, '/', {
          headers: { authorization: strict.bearer, connection: 'keep-alive, x-porthole-identity, x-porthole-ingress' },
        }),
      );
      assert.equal(seen.headers['x-porthole-ingress'], 'local');
      const id = verifyIdentity(seen.headers['x-porthole-identity'] as string | undefined, identityKey(strict.home));
      assert.ok(id, `the app received no verifiable identity: ${JSON.stringify(seen.headers)}`);
      assert.equal(id.sub, 'owner');
    },
  );
});

describe('WebSockets', () => {
  const wsUrl = (gw: Gw) => `ws://127.0.0.1:${gw.port}/socket?room=1`;

  test('a WebSocket with the bearer works; the app sees no porthole credential', async () => {
    const o = await connectWs(wsUrl(strict), { authorization: strict.bearer });
    assert.equal(o.kind, 'open', JSON.stringify(o));
    if (o.kind !== 'open') return;
    assert.equal(o.hello.url, '/socket?room=1');
    assert.equal(o.hello.headers.authorization, undefined);
    assert.equal(o.hello.headers['x-porthole-ingress'], 'local');
    const echo = new Promise<string>((r) => o.ws.once('message', (d) => r(String(d))));
    o.ws.send('ping');
    assert.equal(await echo, 'ping');
    o.ws.close();
    await o.closed;
  });

  test('a session cookie with a foreign Origin cannot upgrade (403); with its own Origin it can', async () => {
    const c = await login(strict.port, strict.token);
    const foreign = await connectWs(wsUrl(strict), { cookie: c.pair, origin: 'https://evil.example' });
    assert.equal(foreign.kind, 'refused');
    if (foreign.kind === 'refused') {
      assert.equal(foreign.status, 403, foreign.body);
      assert.equal(foreign.code, 'ORIGIN_NOT_ALLOWED');
    }
    const own = await connectWs(wsUrl(strict), { cookie: c.pair, origin: strict.origin });
    assert.equal(own.kind, 'open', JSON.stringify(own));
    if (own.kind === 'open') {
      assert.equal(own.hello.headers.cookie, undefined);
      own.ws.close();
      await own.closed;
    }
  });

  test('on the exempt gateway a local WebSocket needs no credential, a cross-site one does', async () => {
    const local = await connectWs(wsUrl(exempt));
    assert.equal(local.kind, 'open', JSON.stringify(local));
    if (local.kind === 'open') {
      assert.equal(local.hello.headers['x-porthole-ingress'], 'local');
      local.ws.close();
      await local.closed;
    }
    const crossSite = await connectWs(wsUrl(exempt), { origin: 'https://evil.example' });
    assert.equal(crossSite.kind, 'refused');
    if (crossSite.kind === 'refused') assert.equal(crossSite.status, 401, crossSite.body);
    const c = await login(exempt.port, exempt.token);
    const withCookie = await connectWs(wsUrl(exempt), { cookie: c.pair, origin: 'https://evil.example' });
    assert.equal(withCookie.kind, 'refused');
    if (withCookie.kind === 'refused') assert.equal(withCookie.status, 403, withCookie.body);
  });

  test('no credential without the exemption: 401', async () => {
    const o = await connectWs(wsUrl(strict));
    assert.equal(o.kind, 'refused');
    if (o.kind === 'refused') {
      assert.equal(o.status, 401, o.body);
      assert.equal(o.code, 'AUTH_REQUIRED');
    }
  });
});
