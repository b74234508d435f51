// `porthole serve --tailscale funnel`, switching at run time, the Unix-socket listener, and
// what happens to the mapping when the gateway stops — through the real CLI and the
// Tailscale emulator's proxy daemon.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { verifyIdentity } from '../../src/gateway/identity.js';
import { runCli, type Served, startCli, tempHome } from '../helpers/cli.js';
import { type EchoApp, startEchoApp } from '../helpers/echo-app.js';
import { echoed, type Reply, send, sessionCookie } from '../helpers/http.js';
import { createEmulator, type Emulator } from '../tailscale/emulator.js';

const DNS = 'desk.tail1234.ts.net';
const OWNER_IP = '100.101.102.103';
const PUBLIC = '203.0.113.7';

let emu: Emulator;
let app: EchoApp;
const homes: { home: string; cleanup(): void }[] = [];
const running: Served[] = [];

before(async () => {
  emu = createEmulator();
  app = await startEchoApp();
});
after(async () => {
  await Promise.all(running.map((s) => s.stop()));
  await app?.close();
  emu?.cleanup();
  for (const h of homes) h.cleanup();
});

async function gateway(args: string[], env: Record<string, string> = {}) {
  const h = tempHome();
  homes.push(h);
  const served = await startCli(['serve', '--target', app.url, '--port', '0', '--json', ...args], { PORTHOLE_HOME: h.home, ...emu.env, ...env });
  running.push(served);
  const ev = await served.waitForEvent((e) => e['event'] === 'tailscale');
  return { served, home: h.home, ev, token: served.event.generatedToken! };
}

const serveConfig = () => JSON.parse(emu.tailscale(['serve', 'status', '--json']).stdout);
const via = (port: number, peer: string, path = '/', headers: Record<string, string> = {}) =>
  send(port, path, { headers: { 'X-Tailscale-Emulator-Peer': peer, ...headers } });

function identityOf(home: string, r: Reply) {
  const key = Buffer.from(readFileSync(join(home, 'secrets', 'identity-key'), 'utf8').trim(), 'base64url');
  return verifyIdentity(echoed(r).headers['x-porthole-identity'] as string, key);
}

describe('funnel, on a loopback-port listener', () => {
  let gw: Awaited<ReturnType<typeof gateway>>;
  let daemon: number;
  before(async () => {
    assert.equal(emu.tailscale(['serve', '--bg', '--https=8443', 'text:theirs']).code, 0);
    gw = await gateway(['--tailscale', 'funnel']);
    assert.deepEqual([gw.ev['mode'], gw.ev['listener'], gw.ev['allowUsers']], ['funnel', 'tcp', ['owner@example.com']]);
    daemon = emu.daemonPort();
  });

  test('Funnel traffic is public: it needs the token, whatever headers it sends', async () => {
    const r = await via(daemon, PUBLIC, '/', { 'Tailscale-User-Login': 'owner@example.com' });
    assert.equal(r.status, 401, r.text);
    assert.equal(r.code, 'AUTH_REQUIRED');
    const ok = await via(daemon, PUBLIC, '/', { Authorization: `Bearer ${gw.token}` });
    const id = identityOf(gw.home, ok);
    assert.deepEqual([id?.sub, id?.cred, id?.ingress], ['owner', 'token', 'tailscale']);
    const seen = echoed(ok).headers;
    assert.equal(seen['x-forwarded-for'], PUBLIC);
    assert.equal(seen['tailscale-funnel-request'], undefined);
  });

  test('a browser signs in over Funnel with ?token= and gets a Secure __Host- session cookie', async () => {
    const r = await via(daemon, PUBLIC, `/page?token=${encodeURIComponent(gw.token)}`);
    assert.equal(r.status, 303, r.text);
    const cookie = sessionCookie(r);
    assert.match(cookie.name, /^__Host-porthole_session_/);
    assert.ok(cookie.attributes.includes('Secure'));
    const again = await via(daemon, PUBLIC, '/page', { Cookie: cookie.pair });
    assert.equal(identityOf(gw.home, again)?.cred, 'session');
  });

  test('the node owner over the tailnet (default allow_users) needs no token', async () => {
    const r = await via(daemon, OWNER_IP);
    assert.equal(identityOf(gw.home, r)?.sub, 'owner@example.com');
  });

  test('`porthole tailscale serve` takes it off the internet', async () => {
    const r = await runCli(['tailscale', 'serve', '--json'], { PORTHOLE_HOME: gw.home, ...emu.env });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([JSON.parse(r.stdout).mode, JSON.parse(r.stdout).funnel], ['serve', false]);
    assert.equal(serveConfig().AllowFunnel, undefined);
    assert.equal((await via(daemon, PUBLIC, '/', { Authorization: `Bearer ${gw.token}` })).status, 403, 'the emulator refuses public traffic');
    const back = await runCli(['tailscale', 'funnel', '--json'], { PORTHOLE_HOME: gw.home, ...emu.env });
    assert.equal(back.code, 0, back.stderr);
    assert.equal(serveConfig().AllowFunnel[`${DNS}:443`], true);
  });

  test('stopping removes a loopback-port mapping (the port would be anyone\'s), and only it', async () => {
    assert.equal(await gw.served.stop(), 0);
    const sc = serveConfig();
    assert.equal(sc.Web[`${DNS}:443`], undefined);
    assert.equal(sc.AllowFunnel, undefined);
    assert.deepEqual(sc.Web[`${DNS}:8443`].Handlers, { '/': { Text: 'theirs' } });
    assert.equal(existsSync(join(gw.home, 'tailscale.json')), false);
  });
});

describe('on a Unix socket (tailscale may proxy to one: root)', () => {
  const root = { TS_EMU_PERMISSION: 'root' };

  test('serve maps unix:…/tailscale.sock; the mapping outlives the gateway; reset with no gateway removes it', async () => {
    const gw = await gateway(['--tailscale', 'serve'], root);
    assert.equal(gw.ev['listener'], 'unix');
    assert.equal(gw.ev['target'], `unix:${join(gw.home, 'run', 'tailscale.sock')}`);
    const daemon = emu.daemonPort();
    assert.equal(identityOf(gw.home, await via(daemon, OWNER_IP))?.sub, 'owner@example.com');

    assert.equal(await gw.served.stop(), 0);
    assert.equal(serveConfig().Web[`${DNS}:443`].Handlers['/'].Proxy, gw.ev['target'], 'kept: reset_on_exit is off');
    assert.equal((await via(daemon, OWNER_IP)).status, 502, 'nothing listens on the socket now');

    const env = { PORTHOLE_HOME: gw.home, ...emu.env, ...root };
    const st = JSON.parse((await runCli(['tailscale', 'status', '--json'], env)).stdout);
    assert.deepEqual([st.gateway, st.mapped, st.mode], [false, true, 'serve']);
    const r = await runCli(['tailscale', 'reset', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).removed, true);
    assert.equal(serveConfig().Web?.[`${DNS}:443`], undefined);
    const twice = await runCli(['tailscale', 'reset'], env);
    assert.equal(twice.code, 0);
    assert.match(twice.stdout, /Nothing removed: porthole has no Tailscale mapping on record/);
  });

  test('--tailscale-reset-on-exit removes it when the gateway stops', async () => {
    const gw = await gateway(['--tailscale', 'serve', '--tailscale-reset-on-exit'], root);
    assert.equal(gw.ev['listener'], 'unix');
    assert.ok(serveConfig().Web[`${DNS}:443`]);
    assert.equal(await gw.served.stop(), 0);
    assert.equal(serveConfig().Web?.[`${DNS}:443`], undefined);
    assert.deepEqual(serveConfig().Web[`${DNS}:8443`].Handlers, { '/': { Text: 'theirs' } });
  });
});
