// `porthole serve --tailscale serve` through the real CLI, with the Tailscale emulator on
// PATH (test/tools/tailscale-emulator) and traffic sent through its Serve proxy daemon
// (X-Tailscale-Emulator-Peer says which tailnet node asks). DESIGN §2, class `tailscale`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { verifyIdentity } from '../../src/gateway/identity.js';
import { runCli, type Served, startCli, tempHome } from '../helpers/cli.js';
import { type EchoApp, startEchoApp } from '../helpers/echo-app.js';
import { connectWs, echoed, type Reply, send } from '../helpers/http.js';
import { findExecutable } from '../helpers/peers.js';
import { createEmulator, type Emulator } from '../tailscale/emulator.js';

const DNS = 'desk.tail1234.ts.net';
const ALICE = '100.64.0.2';
const BOB = '100.64.0.4';
const CI = '100.64.0.3';
const OWNER_IP = '100.101.102.103';

let emu: Emulator;
let app: EchoApp;
let served: Served;
let home: { home: string; cleanup(): void };
let token: string;
let daemon: number;
/** The dedicated listener's loopback URL, from the tailscale event. */
let listenerUrl: URL;

const via = (peer: string, path = '/', headers: Record<string, string> = {}, method = 'GET') =>
  send(daemon, path, { method, headers: { 'X-Tailscale-Emulator-Peer': peer, ...headers } });

function identity(r: Reply) {
  const key = Buffer.from(readFileSync(join(home.home, 'secrets', 'identity-key'), 'utf8').trim(), 'base64url');
  return verifyIdentity(echoed(r).headers['x-porthole-identity'] as string, key);
}

function assertError(r: Reply, status: number, code: string): void {
  assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status}: ${r.text}`);
  assert.equal(r.code, code, r.text);
}

before(async () => {
  emu = createEmulator();
  emu.admin('peer', 'add', ALICE, 'alice@example.com', 'Alice', 'Example');
  emu.admin('peer', 'add', CI, 'tag:ci');
  emu.admin('peer', 'add', BOB, 'bob@example.com', 'Bob');
  app = await startEchoApp();
  home = tempHome();
  // Alice may skip the credential; the owner is not listed, so needs one too.
  writeFileSync(join(home.home, 'porthole.toml'), 'version = 1\n[tailscale]\nallow_users = ["alice@example.com"]\n', { mode: 0o600 });
  served = await startCli(['serve', '--target', app.url, '--port', '0', '--json', '--tailscale', 'serve'], { PORTHOLE_HOME: home.home, ...emu.env });
  token = served.event.generatedToken!;
  const ev = await served.waitForEvent((e) => e['event'] === 'tailscale');
  assert.equal(ev['mode'], 'serve');
  assert.equal(ev['url'], `https://${DNS}/`);
  assert.equal(ev['listener'], 'tcp', 'the emulator refuses unix: targets to an operator, so porthole falls back to a loopback port');
  listenerUrl = new URL(ev['target'] as string);
  daemon = emu.daemonPort();
});

after(async () => {
  await served?.stop();
  await app?.close();
  emu?.cleanup();
  home?.cleanup();
});

describe('identity from Serve traffic', () => {
  test('an allowed tailnet user gets in without a token; the app sees the identity whois gave', async () => {
    const r = await via(ALICE, '/hello?x=1', { 'Tailscale-User-Login': 'mallory@example.com' });
    const seen = echoed(r);
    assert.equal(seen.url, '/hello?x=1');
    const id = identity(r);
    assert.deepEqual([id?.sub, id?.cred, id?.ingress, id?.scope], ['alice@example.com', 'tailscale', 'tailscale', 'admin']);
    assert.equal(seen.headers['x-porthole-ingress'], 'tailscale');
    assert.equal(seen.headers['x-forwarded-for'], ALICE);
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
    for (const h of Object.keys(seen.headers)) assert.ok(!h.startsWith('tailscale-'), `${h} reached the app`);
  });

  test('another tailnet user needs the token', async () => {
    assertError(await via(BOB), 401, 'AUTH_REQUIRED');
    const r = await via(BOB, '/', { Authorization: `Bearer ${token}` });
    assert.deepEqual([identity(r)?.sub, identity(r)?.cred, identity(r)?.ingress], ['owner', 'token', 'tailscale']);
  });

  test('the node owner is not let in when allow_users does not list it', async () => {
    assertError(await via(OWNER_IP), 401, 'AUTH_REQUIRED');
  });

  test('a tagged node has no identity, whatever it claims', async () => {
    assertError(await via(CI, '/', { 'Tailscale-User-Login': 'alice@example.com' }), 401, 'AUTH_REQUIRED');
  });

  test('the Origin rule applies to the ambient tailscale identity', async () => {
    assertError(await via(ALICE, '/do', { Origin: 'https://evil.example' }, 'POST'), 403, 'ORIGIN_NOT_ALLOWED');
    const r = await via(ALICE, '/do', { Origin: `https://${DNS}` }, 'POST');
    assert.equal(echoed(r).method, 'POST');
  });

  test("the tailscale identity does not cover porthole's API", async () => {
    assertError(await via(ALICE, '/_porthole/api/status'), 401, 'AUTH_REQUIRED');
  });

  test('a WebSocket from an allowed user carries the identity', async () => {
    const ws = await connectWs(`ws://127.0.0.1:${daemon}/ws`, { 'X-Tailscale-Emulator-Peer': ALICE });
    assert.equal(ws.kind, 'open');
    if (ws.kind !== 'open') return;
    assert.match(String(ws.hello.headers['x-porthole-identity']), /sub=alice%40example\.com; cred=tailscale/);
    ws.ws.close();
    await ws.closed;
  });
});

describe('spoofing', () => {
  test('Tailscale-User-Login on the normal listener gives nothing', async () => {
    // Loopback and exempt: in as "local", never as alice, and the header does not reach the app.
    const local = await send(served.event.port, '/', { headers: { 'Tailscale-User-Login': 'alice@example.com', 'Tailscale-User-Name': 'Alice' } });
    const seen = echoed(local);
    assert.equal(identity(local)?.sub, 'local');
    assert.equal(seen.headers['tailscale-user-login'], undefined);
    assert.equal(seen.headers['tailscale-user-name'], undefined);
    // Dressed up as Serve traffic (forwarding headers from loopback): remote, needs a credential.
    const dressed = await send(served.event.port, '/', {
      headers: { 'Tailscale-User-Login': 'alice@example.com', 'X-Forwarded-For': ALICE, Host: DNS },
    });
    assertError(dressed, 401, 'AUTH_REQUIRED');
  });

  test('on the dedicated listener, anything but one tailnet address of a known node is refused', async () => {
    const port = Number(listenerUrl.port);
    const host = { Host: DNS };
    for (const xff of [undefined, `6.6.6.6, ${ALICE}`, '192.168.1.9', '100.64.9.9']) {
      const headers: Record<string, string> = { ...host, 'Tailscale-User-Login': 'alice@example.com' };
      if (xff) headers['X-Forwarded-For'] = xff;
      assertError(await send(port, '/', { headers }), 403, 'TAILSCALE_PEER_UNVERIFIED');
    }
  });

  test(
    'another local user cannot connect to the dedicated loopback port',
    { skip: process.getuid?.() !== 0 || !findExecutable('setpriv') || !findExecutable('curl') ? 'needs root, setpriv and curl' : false },
    () => {
      const r = spawnSync(
        'setpriv',
        ['--reuid=65534', '--regid=65534', '--clear-groups', 'curl', '-s', '-m', '5', '-o', '/dev/null', '-w', '%{http_code}',
          '-H', `X-Forwarded-For: ${ALICE}`, '-H', `Host: ${DNS}`, `${listenerUrl.origin}/`],
        { encoding: 'utf8', timeout: 15_000 },
      );
      assert.equal(r.stdout, '000', 'no HTTP answer: the connection is dropped on accept');
      assert.notEqual(r.status, 0);
    },
  );
});

describe('porthole tailscale …', () => {
  const env = () => ({ PORTHOLE_HOME: home.home, ...emu.env });

  test('status shows the mapping of the running gateway', async () => {
    const r = await runCli(['tailscale', 'status', '--json'], env());
    assert.equal(r.code, 0, r.stderr);
    const o = JSON.parse(r.stdout);
    assert.deepEqual([o.mapped, o.mode, o.url, o.listener, o.gateway], [true, 'serve', `https://${DNS}/`, 'tcp', true]);
    assert.deepEqual(o.allowUsers, ['alice@example.com']);
  });

  test('the remote-access overview shows Serve on, healthy, at the node URL, with no conflict', async () => {
    const r = await runCli(['status', '--json'], env());
    assert.equal(r.code, 0, r.stderr);
    const { exposure } = JSON.parse(r.stdout);
    const t = exposure.methods.tailscale;
    assert.deepEqual([t.on, t.health, t.urls, t.mode], [true, 'ok', [`https://${DNS}/`], 'serve']);
    assert.deepEqual(exposure.conflicts, []);
    const text = await runCli(['status'], env());
    assert.match(text.stdout, new RegExp(`Tailscale\\s+ON\\s+ok\\b.*\\n\\s+https://${DNS.replaceAll('.', '\\.')}/`));
  });

  test('reset removes only porthole\'s mapping: routes it did not make stay', async () => {
    assert.equal(emu.tailscale(['serve', '--bg', '--set-path=/docs', 'text:their docs']).code, 0);
    assert.equal(emu.tailscale(['serve', '--bg', '--https=8443', 'text:theirs']).code, 0);
    const r = await runCli(['tailscale', 'reset', '--json'], env());
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).removed, true);
    const sc = JSON.parse(emu.tailscale(['serve', 'status', '--json']).stdout);
    assert.deepEqual(sc.Web[`${DNS}:443`].Handlers, { '/docs': { Text: 'their docs' } });
    assert.deepEqual(sc.Web[`${DNS}:8443`].Handlers, { '/': { Text: 'theirs' } });
    assert.equal((await via(ALICE, '/')).status, 404, 'nothing serves "/" any more');
    // … and serve maps it again, beside their /docs.
    const again = await runCli(['tailscale', 'serve', '--json'], env());
    assert.equal(again.code, 0, again.stderr);
    assert.equal(identity(await via(ALICE, '/'))?.sub, 'alice@example.com');
    assert.equal((await via(ALICE, '/docs')).text, 'their docs');
  });

  test('funnel refuses to publish their /docs with it', async () => {
    const r = await runCli(['tailscale', 'funnel'], env());
    assert.equal(r.code, 1);
    assert.match(r.stderr, /also publish \/docs.*\[TAILSCALE_ROUTE_CONFLICT\]/);
    assert.equal(JSON.parse(emu.tailscale(['serve', 'status', '--json']).stdout).AllowFunnel, undefined);
  });
});
