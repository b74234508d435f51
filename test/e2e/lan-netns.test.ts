// The LAN case end to end: `porthole serve --host <LAN address>` in one network namespace,
// its app on that namespace's 127.0.0.1, and a client in a second namespace across a veth
// pair (10.x.y.1 ↔ 10.x.y.2). The client is `direct` ingress: no loopback exemption, bans
// keyed on its address. Needs root and iproute2; skipped otherwise (failed when
// PORTHOLE_TEST_REQUIRE_ALL=1).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Served, tempHome } from '../helpers/cli.js';
import {
  createPair,
  type NetnsApp,
  type NetnsPair,
  netnsUnavailable,
  type NsResponse,
  requestFrom,
  startCliIn,
  startEchoAppIn,
} from '../helpers/netns.js';

const unavailable = await netnsUnavailable();
const required = process.env.PORTHOLE_TEST_REQUIRE_ALL === '1';
const skip = unavailable !== undefined && !required ? `network namespaces unavailable: ${unavailable}` : false;

interface Echo {
  method: string;
  url: string;
  headers: Record<string, string | undefined>;
  peer: string;
}

function errorCode(r: NsResponse): string | undefined {
  try {
    return (JSON.parse(r.body) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

function echoOf(r: NsResponse): Echo {
  assert.equal(r.status, 200, `expected the app's answer, got ${r.status} ${r.body}`);
  return JSON.parse(r.body) as Echo;
}

/** The banner's QR block: at least `min` consecutive lines of only █ ▀ ▄ and spaces. */
function hasQrBlock(text: string, min = 10): boolean {
  let run = 0;
  for (const line of text.split('\n')) {
    if (/^[█▀▄ ]+$/.test(line) && /[█▀▄]/.test(line)) {
      run++;
      if (run >= min) return true;
    } else run = 0;
  }
  return false;
}

const BANNER_DONE = /porthole token show/;

describe('LAN access across two network namespaces', { skip }, () => {
  let pair: NetnsPair | undefined;
  let app: NetnsApp | undefined;
  let gw: Served | undefined;
  let wild: Served | undefined;
  const homes: { cleanup(): void }[] = [];
  let base = '';
  let token = '';

  function net(): NetnsPair {
    assert.ok(pair, 'namespaces not created');
    return pair;
  }

  function bearer(t: string): Record<string, string> {
    return { authorization: `Bearer ${t}` };
  }

  before(async () => {
    if (unavailable !== undefined) {
      throw new Error(`PORTHOLE_TEST_REQUIRE_ALL=1 but network namespaces are unavailable: ${unavailable}`);
    }
    pair = await createPair();
    app = await startEchoAppIn(pair, pair.gw);
    const home = tempHome();
    homes.push(home);
    gw = await startCliIn(
      pair,
      pair.gw,
      ['serve', '--target', app.url, '--host', pair.gwAddress, '--port', '0', '--json'],
      { PORTHOLE_HOME: home.home },
    );
    base = `http://${pair.gwAddress}:${gw.event.port}`;
    token = String(gw.event['generatedToken'] ?? '');
  });

  after(async () => {
    // Each step on its own: a failure in one must not leave the namespaces behind.
    for (const p of [wild, gw, app]) await p?.stop().catch(() => undefined);
    await pair?.destroy();
    for (const h of homes) h.cleanup();
  });

  test('the listening event and the banner announce remote access at the LAN address', async () => {
    const p = net();
    const ev = gw!.event;
    assert.equal(ev['event'], 'listening');
    assert.equal(ev.host, p.gwAddress);
    assert.equal(ev['remoteAccess'], true);
    assert.equal(ev['connectUrl'], base);
    assert.match(String(ev['link']), new RegExp(`^${base.replaceAll('.', '\\.')}/\\?code=phc_[A-Za-z0-9_-]{43}$`));
    assert.match(token, /^ph_[A-Za-z0-9_-]{43}$/, 'a fresh home generates a token and reports it once');
    const banner = await gw!.waitForStderr(BANNER_DONE);
    assert.match(banner, /Remote access is ON/);
    assert.ok(banner.includes(`Connect: ${base}`), banner);
    assert.ok(banner.includes(String(ev['link'])), 'the banner shows the one-time link');
    assert.ok(hasQrBlock(banner), `no QR block in the banner:\n${banner}`);
  });

  test('a LAN client without a credential gets 401 AUTH_REQUIRED (no loopback exemption)', async () => {
    const p = net();
    const r = await requestFrom(p, p.cl, { url: `${base}/hello` });
    assert.equal(r.status, 401, r.body);
    assert.equal(errorCode(r), 'AUTH_REQUIRED');
    assert.equal(r.headers['www-authenticate'], 'Bearer realm="porthole"');
  });

  test('a LAN client with the bearer token reaches the app as direct ingress', async () => {
    const p = net();
    const r = await requestFrom(p, p.cl, { url: `${base}/hello?x=1`, headers: bearer(token) });
    const echo = echoOf(r);
    assert.equal(echo.url, '/hello?x=1');
    assert.equal(echo.headers['x-porthole-ingress'], 'direct');
    assert.equal(echo.headers['x-forwarded-for'], p.clAddress);
    assert.equal(echo.headers.authorization, undefined, "porthole's bearer is not forwarded");
    assert.ok(echo.headers['x-porthole-identity'], 'the app is told who is calling');
    assert.equal(echo.peer, '127.0.0.1', 'the app is reached on its own loopback');
  });

  test('the one-time link signs a LAN browser in once', async () => {
    const p = net();
    const link = String(gw!.event['link']);
    const first = await requestFrom(p, p.cl, { url: link });
    assert.equal(first.status, 303, first.body);
    assert.equal(first.headers['location'], '/');
    const setCookie = first.headers['set-cookie'];
    assert.ok(Array.isArray(setCookie) && setCookie.length === 1, `one cookie expected: ${String(setCookie)}`);
    const cookie = setCookie[0]!;
    assert.match(cookie, /^porthole_session_[^=]+=[^;]+; /);
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Lax/);
    assert.doesNotMatch(cookie, /Secure/, 'plain http: no Secure attribute');

    const withCookie = await requestFrom(p, p.cl, { url: `${base}/after-login`, headers: { cookie: cookie.split(';')[0]! } });
    const echo = echoOf(withCookie);
    assert.equal(echo.headers['x-porthole-ingress'], 'direct');
    assert.equal(echo.headers.cookie, undefined, "porthole's cookie is not forwarded");

    const again = await requestFrom(p, p.cl, { url: link });
    assert.equal(again.status, 401, again.body);
    assert.equal(errorCode(again), 'CODE_INVALID');
  });

  test("five wrong tokens ban the LAN client's address; the gateway namespace is still served", async () => {
    const p = net();
    for (let i = 1; i <= 4; i++) {
      const r = await requestFrom(p, p.cl, { url: `${base}/guess`, headers: bearer(`ph_wrong${i}${'x'.repeat(40)}`) });
      assert.equal(r.status, 401, `attempt ${i}: ${r.body}`);
      assert.equal(errorCode(r), 'AUTH_INVALID');
    }
    const fifth = await requestFrom(p, p.cl, { url: `${base}/guess`, headers: bearer(`ph_wrong5${'x'.repeat(40)}`) });
    assert.equal(fifth.status, 429, fifth.body);
    assert.equal(errorCode(fifth), 'RATE_LIMITED');
    const retryAfter = Number(fifth.headers['retry-after']);
    assert.ok(Number.isInteger(retryAfter) && retryAfter > 0, `Retry-After: ${String(fifth.headers['retry-after'])}`);

    // The ban is checked before authentication: even the right token is refused now.
    const banned = await requestFrom(p, p.cl, { url: `${base}/hello`, headers: bearer(token) });
    assert.equal(banned.status, 429, banned.body);
    assert.ok(Number(banned.headers['retry-after']) > 0);

    // Other client keys are not affected: the gateway namespace's loopback (local ingress,
    // exempt) and the gateway namespace's own LAN address (direct, with the token).
    const local = await requestFrom(p, p.gw, { url: `${base}/from-loopback`, localAddress: '127.0.0.1' });
    assert.equal(echoOf(local).headers['x-porthole-ingress'], 'local');
    const self = await requestFrom(p, p.gw, { url: `${base}/from-self`, headers: bearer(token) });
    const selfEcho = echoOf(self);
    assert.equal(selfEcho.headers['x-porthole-ingress'], 'direct');
    assert.equal(selfEcho.headers['x-forwarded-for'], p.gwAddress);
  });

  test("a gateway bound to 0.0.0.0 shows the namespace's LAN address and is reachable there", async () => {
    const p = net();
    const home = tempHome();
    homes.push(home);
    wild = await startCliIn(p, p.gw, ['serve', '--target', app!.url, '--host', '0.0.0.0', '--port', '0', '--json'], {
      PORTHOLE_HOME: home.home,
    });
    const ev = wild.event;
    const url = `http://${p.gwAddress}:${ev.port}`;
    assert.equal(ev['remoteAccess'], true);
    assert.equal(ev['connectUrl'], url, "the namespace's only non-internal IPv4");
    assert.ok(String(ev['link']).startsWith(`${url}/?code=phc_`), String(ev['link']));
    const banner = await wild.waitForStderr(BANNER_DONE);
    assert.match(banner, /Remote access is ON/);
    assert.ok(banner.includes(`Connect: ${url}`), banner);
    assert.ok(hasQrBlock(banner), `no QR block in the banner:\n${banner}`);

    const wildToken = String(ev['generatedToken'] ?? '');
    const denied = await requestFrom(p, p.cl, { url: `${url}/x` });
    assert.equal(denied.status, 401, denied.body);
    assert.equal(errorCode(denied), 'AUTH_REQUIRED');
    const echo = echoOf(await requestFrom(p, p.cl, { url: `${url}/x`, headers: bearer(wildToken) }));
    assert.equal(echo.headers['x-porthole-ingress'], 'direct');
    assert.equal(echo.headers['x-forwarded-for'], p.clAddress);

    assert.equal(await wild.stop(), 0, `porthole exits cleanly on SIGTERM:\n${wild.stderr()}`);
  });

  test('[gateway] allow_cidrs: a peer outside the list is dropped on accept; inside it is served', async () => {
    const p = net();
    const start = async (cidrs: string[]): Promise<{ g: Served; url: string; token: string }> => {
      const home = tempHome();
      homes.push(home);
      writeFileSync(join(home.home, 'porthole.toml'), `[gateway]\nallow_cidrs = ${JSON.stringify(cidrs)}\n`);
      const g = await startCliIn(p, p.gw, ['serve', '--target', app!.url, '--host', '0.0.0.0', '--port', '0', '--json'], {
        PORTHOLE_HOME: home.home,
      });
      return { g, url: `http://${p.gwAddress}:${g.event.port}`, token: String(g.event['generatedToken'] ?? '') };
    };

    const closed = await start(['10.250.0.0/16']);
    try {
      // No HTTP answer at all, not even a 401: the socket is closed before a byte is read.
      await assert.rejects(requestFrom(p, p.cl, { url: `${closed.url}/x`, headers: bearer(closed.token) }), /ECONNRESET|socket hang up|EPIPE/);
      // Loopback is never restricted.
      const local = await requestFrom(p, p.gw, { url: `http://127.0.0.1:${closed.g.event.port}/x`, localAddress: '127.0.0.1' });
      assert.equal(echoOf(local).headers['x-porthole-ingress'], 'local');
    } finally {
      await closed.g.stop();
    }

    const open = await start([`${p.clAddress}/32`]);
    try {
      const echo = echoOf(await requestFrom(p, p.cl, { url: `${open.url}/x`, headers: bearer(open.token) }));
      assert.equal(echo.headers['x-porthole-ingress'], 'direct');
    } finally {
      await open.g.stop();
    }
  });
});
