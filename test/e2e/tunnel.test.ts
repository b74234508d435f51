// The relay tunnel end to end: `porthole relay` and `porthole serve` as real processes on
// loopback with a test CA. Visitors speak TLS to the desk's name; the relay only routes.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startEchoApp, type EchoApp } from '../helpers/echo-app.js';
import { runCli, type Served, startCli, tempHome } from '../helpers/cli.js';
import { DOMAIN, makePki, type TunnelPki, visit, writeDeskConfig } from '../helpers/tunnel.js';

let pki: TunnelPki;
let app: EchoApp;
const homes: { cleanup(): void }[] = [];

function home() {
  const h = tempHome();
  homes.push(h);
  return h.home;
}

async function startRelay(store: string, env: Record<string, string> = {}): Promise<Served> {
  return startCli(
    [
      'relay',
      '--domain',
      DOMAIN,
      '--listen',
      '127.0.0.1:0',
      '--http-listen',
      '127.0.0.1:0',
      '--cert',
      pki.relayCert,
      '--key',
      pki.relayKey,
      '--store',
      store,
      '--json',
    ],
    { PORTHOLE_HOME: home(), ...env },
  );
}

const deskConfig = (dir: string, relayPort: number, name: string) => writeDeskConfig(pki, dir, relayPort, name);

async function startDesk(dir: string, env: Record<string, string> = {}): Promise<Served> {
  return startCli(['serve', '--target', app.url, '--port', '0', '--json', '--no-loopback-exempt'], { PORTHOLE_HOME: dir, ...env });
}

const online = (e: Record<string, unknown>) => e['event'] === 'tunnel' && e['state'] === 'online';

before(async () => {
  pki = makePki();
  app = await startEchoApp();
});
after(async () => {
  await app.close();
  pki.cleanup();
  for (const h of homes) h.cleanup();
});

describe('a desk behind the relay', () => {
  let relay: Served;
  let desk: Served;
  let deskHome: string;
  let token: string;

  before(async () => {
    relay = await startRelay(home());
    deskHome = home();
    deskConfig(deskHome, relay.event.port, 'desk');
    desk = await startDesk(deskHome);
    token = desk.event.generatedToken as string;
  });
  after(async () => {
    await desk.stop();
    await relay.stop();
  });

  test('the first start needs consent; with it the desk comes online at its name', async () => {
    const refused = await runCli(['tunnel', 'start'], { PORTHOLE_HOME: deskHome });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /CONSENT_REQUIRED/);
    const from = desk.lines.length;
    const ok = await runCli(['tunnel', 'start', '--accept-risk', '--json'], { PORTHOLE_HOME: deskHome });
    assert.equal(ok.code, 0, ok.stderr);
    const e = await desk.waitForEvent(online, 20_000, from);
    assert.equal(e['name'], 'desk');
    assert.equal(e['url'], `https://desk.${DOMAIN}:${relay.event.port}`);
    const status = JSON.parse((await runCli(['tunnel', 'status', '--json'], { PORTHOLE_HOME: deskHome })).stdout);
    assert.equal(status.state.state, 'online');
    assert.equal(status.consent, true);
  });

  test('visitors need the token; the app sees ingress tunnel and the visitor address', async () => {
    const anonymous = await visit(relay.event.port, 'desk', pki.caPem, '/hello');
    assert.equal(anonymous.status, 401);
    const r = await visit(relay.event.port, 'desk', pki.caPem, '/hello?x=1', { authorization: `Bearer ${token}` }, '127.0.0.3');
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.body.toString());
    assert.equal(seen.url, '/hello?x=1');
    assert.equal(seen.headers['x-porthole-ingress'], 'tunnel');
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.3');
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
    assert.equal(seen.headers.authorization, undefined);
  });

  test('an unknown name gets a TLS alert, not another desk', async () => {
    await assert.rejects(visit(relay.event.port, 'nobody', pki.caPem, '/'), (err: NodeJS.ErrnoException) => {
      // OpenSSL reports the relay's alert as EPROTO with "unrecognized name" in the message.
      assert.equal(err.code, 'EPROTO');
      assert.match(err.message, /unrecognized name/i);
      return true;
    });
  });

  test('concurrent requests and a large download arrive intact', async () => {
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        visit(relay.event.port, 'desk', pki.caPem, `/n/${i}`, { authorization: `Bearer ${token}` }),
      ),
    );
    results.forEach((r, i) => {
      assert.equal(r.status, 200);
      assert.equal(JSON.parse(r.body.toString()).url, `/n/${i}`);
    });
    const big = await visit(relay.event.port, 'desk', pki.caPem, `/download?bytes=${32 * 1024 * 1024}`, {
      authorization: `Bearer ${token}`,
    });
    assert.equal(big.status, 200);
    assert.equal(big.body.length, 32 * 1024 * 1024);
  });

  test('another key asking for the same name is refused', async () => {
    const other = home();
    deskConfig(other, relay.event.port, 'desk');
    const thief = await startDesk(other);
    try {
      const from = thief.lines.length;
      const r = await runCli(['tunnel', 'start', '--accept-risk'], { PORTHOLE_HOME: other });
      assert.equal(r.code, 0, r.stderr);
      const e = await thief.waitForEvent((x) => x['event'] === 'tunnel' && x['state'] === 'waiting', 20_000, from);
      assert.equal((e['lastError'] as { code: string }).code, 'SUBDOMAIN_TAKEN');
    } finally {
      await thief.stop();
    }
  });

  test('the plain-HTTP listener redirects to https and passes ACME challenge paths to the desk', async () => {
    const httpPort = relay.event['httpPort'] as number;
    const get = (host: string, path: string) =>
      new Promise<{ status: number; location: string | undefined; body: string }>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: httpPort, path, headers: { host }, agent: false }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (d: string) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location, body }));
        });
        req.on('error', reject);
        req.end();
      });
    const redirect = await get(`desk.${DOMAIN}`, '/app?x=1');
    assert.equal(redirect.status, 308);
    assert.equal(redirect.location, `https://desk.${DOMAIN}:${relay.event.port}/app?x=1`);
    // The challenge reaches the desk; a token it is not being validated for is the gateway's, which asks for a credential.
    const acme = await get(`desk.${DOMAIN}`, '/.well-known/acme-challenge/abc');
    assert.equal(acme.status, 401);
    assert.equal(JSON.parse(acme.body).error.code, 'AUTH_REQUIRED');
    const offline = await get(`nobody.${DOMAIN}`, '/.well-known/acme-challenge/abc');
    assert.equal(offline.status, 404);
    assert.equal((await get('elsewhere.example', '/')).status, 400);
  });

  test('the local API keeps answering; stop takes the desk offline', async () => {
    const r = await runCli(['tunnel', 'stop', '--json'], { PORTHOLE_HOME: deskHome });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).state.state, 'stopped');
    const health = await fetch(`${desk.event.url}/_porthole/health`);
    assert.equal(health.status, 200);
  });
});

test('a bad registration secret is refused; the relay demands a secret off loopback', async () => {
  const relayHome = home();
  const relay = await startRelay(relayHome, { PORTHOLE_RELAY_REGISTRATION_SECRET: 'the-right-secret-0123456789' });
  const deskHome = home();
  deskConfig(deskHome, relay.event.port, 'secretive');
  const desk = await startDesk(deskHome, { PORTHOLE_TUNNEL_REGISTRATION_SECRET: 'a-wrong-secret-0123456789' });
  try {
    const from = desk.lines.length;
    assert.equal((await runCli(['tunnel', 'start', '--accept-risk'], { PORTHOLE_HOME: deskHome })).code, 0);
    const e = await desk.waitForEvent((x) => x['event'] === 'tunnel' && x['state'] === 'waiting', 20_000, from);
    assert.equal((e['lastError'] as { code: string }).code, 'REGISTRATION_DENIED');
  } finally {
    await desk.stop();
    await relay.stop();
  }
  const offLoopback = await runCli(
    ['relay', '--domain', DOMAIN, '--listen', '0.0.0.0:0', '--cert', pki.relayCert, '--key', pki.relayKey, '--store', home()],
    { PORTHOLE_HOME: home() },
  );
  assert.notEqual(offLoopback.code, 0);
  assert.match(offLoopback.stderr, /REGISTRATION_DENIED/);
});

test('terminate mode: the relay decrypts, routes to the desk, and answers unknown names with a 404 page', async () => {
  const needsWildcard = await runCli(
    ['relay', '--domain', DOMAIN, '--listen', '127.0.0.1:0', '--mode', 'terminate', '--cert', pki.relayCert, '--key', pki.relayKey, '--store', home()],
    { PORTHOLE_HOME: home() },
  );
  assert.equal(needsWildcard.code, 2, needsWildcard.stderr);
  assert.match(needsWildcard.stderr, /INVALID_ARGUMENT/);

  const relay = await startCli(
    ['relay', '--domain', DOMAIN, '--listen', '127.0.0.1:0', '--mode', 'terminate', '--cert', pki.wildcardCert, '--key', pki.wildcardKey, '--store', home(), '--json'],
    { PORTHOLE_HOME: home() },
  );
  const dir = home();
  deskConfig(dir, relay.event.port, 'opencard');
  const desk = await startDesk(dir);
  try {
    const from = desk.lines.length;
    assert.equal((await runCli(['tunnel', 'start', '--accept-risk'], { PORTHOLE_HOME: dir })).code, 0);
    const e = await desk.waitForEvent(online, 20_000, from);
    assert.equal(e['mode'], 'terminate');
    const token = desk.event.generatedToken as string;
    const r = await visit(relay.event.port, 'opencard', pki.caPem, '/t', { authorization: `Bearer ${token}` }, '127.0.0.4');
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.body.toString());
    assert.equal(seen.headers['x-porthole-ingress'], 'tunnel');
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.4');
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
    const missing = await visit(relay.event.port, 'nobody', pki.caPem, '/');
    assert.equal(missing.status, 404);
    assert.match(missing.body.toString(), /No desk is online/);
    // Another name's Host on this desk's connection is refused by the desk's Host allowlist.
    const crossed = await visit(relay.event.port, 'opencard', pki.caPem, '/', {
      authorization: `Bearer ${token}`,
      host: `other.${DOMAIN}`,
    });
    assert.equal(crossed.status, 403);
  } finally {
    await desk.stop();
    await relay.stop();
  }
});

test('relay limit flags: bad values exit 2 naming the flag; --client-hello-timeout cuts a silent visitor off', async () => {
  const base = ['relay', '--domain', DOMAIN, '--listen', '127.0.0.1:0', '--cert', pki.relayCert, '--key', pki.relayKey, '--store', home()];
  for (const [flag, value] of [
    ['--max-desks', '0'],
    ['--max-streams-per-desk', '1.5'],
    ['--visitor-idle-timeout', 'soon'],
    ['--client-hello-timeout', '-1'],
  ] as const) {
    const r = await runCli([...base, flag, value], { PORTHOLE_HOME: home() });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /\[INVALID_ARGUMENT\]/);
    assert.ok(r.stderr.includes(flag), r.stderr);
  }
  const relay = await startCli([...base, '--client-hello-timeout', '0.3', '--json'], { PORTHOLE_HOME: home() });
  try {
    const started = Date.now();
    const sock = net.connect(relay.event.port, '127.0.0.1');
    sock.on('error', () => undefined);
    await once(sock, 'close');
    const took = Date.now() - started;
    assert.ok(took >= 250, `closed after ${took} ms, before the timeout`);
    assert.ok(took < 5_000, `a silent visitor must be cut off by the 0.3 s limit, not the 10 s default (${took} ms)`);
  } finally {
    await relay.stop();
  }
});
