// porthole's Tailscale pieces against the emulated `tailscale` CLI: status parsing, error
// classes by real emulator knobs, whois and its cache, the verdict on Serve requests, the
// overview, and the loopback peer-uid check.
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket, connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { isPortholeError } from '../../src/errors.js';
import { createTailscaleRunner, runOk, tailscaleFailure } from '../../src/tailscale/cli.js';
import { readServeConfig, requireCapabilities } from '../../src/tailscale/exposure.js';
import { tailscaleOverview } from '../../src/tailscale/index.js';
import { isTailnetAddress, verifyTailscaleRequest } from '../../src/tailscale/peer.js';
import { loopbackPeerUid } from '../../src/tailscale/peer-uid.js';
import { readStatus } from '../../src/tailscale/status.js';
import { createWhois } from '../../src/tailscale/whois.js';
import { statePaths } from '../../src/secrets/paths.js';
import { tempDir } from '../helpers/servers.js';
import { createEmulator, type Emulator } from './emulator.js';

let emu: Emulator;
const home = tempDir('porthole-ts-');

before(() => {
  emu = createEmulator();
  emu.admin('peer', 'add', '100.64.0.2', 'alice@example.com', 'Alice', 'Example');
  emu.admin('peer', 'add', '100.64.0.3', 'tag:ci');
  emu.admin('peer', 'add', '100.64.0.4', 'Bob@Example.com', 'Bob');
});
after(() => {
  emu.cleanup();
  home.cleanup();
});

/** The code a promise rejects with. */
async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(isPortholeError(err), String(err));
    return err.code;
  }
  assert.fail('expected a rejection');
}

describe('status', () => {
  test('parses the node: name, owner, capabilities', async () => {
    const st = await readStatus(emu.runner());
    assert.equal(st.backendState, 'Running');
    assert.equal(st.dnsName, 'desk.tail1234.ts.net');
    assert.equal(st.owner, 'owner@example.com');
    assert.deepEqual([st.https, st.funnel], [true, true]);
    assert.doesNotThrow(() => requireCapabilities(st, 'funnel'));
  });

  test('capabilities missing → HTTPS / Funnel disabled', async () => {
    const noHttps = await readStatus(emu.runner({ TS_EMU_HTTPS: 'false' }));
    assert.throws(() => requireCapabilities(noHttps, 'serve'), (e) => isPortholeError(e, 'TAILSCALE_HTTPS_DISABLED'));
    const noFunnel = await readStatus(emu.runner({ TS_EMU_FUNNEL: 'false' }));
    assert.doesNotThrow(() => requireCapabilities(noFunnel, 'serve'));
    assert.throws(() => requireCapabilities(noFunnel, 'funnel'), (e) => isPortholeError(e, 'TAILSCALE_FUNNEL_DISABLED'));
    const otherPorts = await readStatus(emu.runner({ TS_EMU_FUNNEL_PORTS: '8443,10000-10010' }));
    assert.throws(() => requireCapabilities(otherPorts, 'funnel'), /not on port 443 \(allowed: 8443,10000-10010\)/);
  });

  test('backend states → NOT_RUNNING / NOT_LOGGED_IN', async () => {
    assert.equal(await codeOf(readStatus(emu.runner({ TS_EMU_BACKEND_STATE: 'NoDaemon' }))), 'TAILSCALE_NOT_RUNNING');
    const stopped = await readStatus(emu.runner({ TS_EMU_BACKEND_STATE: 'Stopped' }));
    assert.throws(() => requireCapabilities(stopped, 'serve'), (e) => isPortholeError(e, 'TAILSCALE_NOT_RUNNING'));
    const out = await readStatus(emu.runner({ TS_EMU_BACKEND_STATE: 'NeedsLogin' }));
    assert.throws(() => requireCapabilities(out, 'serve'), (e) => isPortholeError(e, 'TAILSCALE_NOT_LOGGED_IN'));
  });

  test('not installed → TAILSCALE_NOT_INSTALLED', async () => {
    const run = createTailscaleRunner({ env: { PATH: '/nonexistent' } });
    assert.equal(await codeOf(readStatus(run)), 'TAILSCALE_NOT_INSTALLED');
  });

  test('a write as a non-operator → PERMISSION_DENIED, with the operator hint and no sudo', async () => {
    const run = emu.runner({ TS_EMU_PERMISSION: 'user' });
    const err = await runOk(run, ['serve', '--bg', '3000'], 'tailscale serve').catch((e: unknown) => e);
    assert.ok(isPortholeError(err, 'TAILSCALE_PERMISSION_DENIED'));
    assert.match(err.message, /never runs sudo.*tailscale set --operator=\$USER/);
    assert.deepEqual(await readServeConfig(emu.runner()), {});
  });

  test("tailscale's own refusals at serve time map to the same codes", async () => {
    const nowait = await emu.runner({ TS_EMU_HTTPS: 'false', TS_EMU_FEATURE_FLOW: 'nowait' })(['serve', '--bg', '3000']);
    assert.equal(nowait.code, 0, 'exits 0 having changed nothing');
    const https = tailscaleFailure(nowait, 'tailscale serve');
    assert.equal(https.code, 'TAILSCALE_HTTPS_DISABLED');
    assert.match(https.message, /https:\/\/login\.tailscale\.com\/f\/serve\?node=/);
    const funnel = await emu.runner({ TS_EMU_FUNNEL: 'false', TS_EMU_FEATURE_FLOW: 'error' })(['funnel', '--bg', '3000']);
    assert.equal(tailscaleFailure(funnel, 'tailscale funnel').code, 'TAILSCALE_FUNNEL_DISABLED');
    const unknown = await emu.runner()(['serve', '--bg', 'example.com:8080']);
    const other = tailscaleFailure(unknown, 'tailscale serve');
    assert.equal(other.code, 'TAILSCALE_FAILED');
    assert.equal(other.status, 424);
    assert.match(other.message, /non-localhost target/);
  });

  test('a runner that outlives its timeout is killed and reported', async () => {
    // featureFlow=wait with HTTPS off: serve blocks for a person to enable it.
    const run = createTailscaleRunner({ env: { ...process.env, ...emu.env, TS_EMU_HTTPS: 'false' }, timeoutMs: 500 });
    const r = await run(['serve', '--bg', '3000']);
    assert.equal(r.aborted, 'timeout');
    const matched = await run(['serve', '--bg', '3000'], { abortOn: /To enable, visit:/, timeoutMs: 10_000 });
    assert.equal(matched.aborted, 'matched');
  });
});

describe('whois and the Serve verdict', () => {
  test('whois: a user, a tagged node, an unknown address; answers are cached', async () => {
    let calls = 0;
    const base = emu.runner();
    const whois = createWhois({
      run: (a, o) => {
        calls++;
        return base(a, o);
      },
    });
    assert.equal((await whois('100.64.0.2'))?.login, 'alice@example.com');
    assert.equal((await whois('100.64.0.2'))?.login, 'alice@example.com');
    assert.equal(calls, 1, 'the second lookup is served from the cache');
    const ci = await whois('100.64.0.3');
    assert.deepEqual([ci?.login, ci?.tags], [undefined, ['tag:ci']]);
    assert.equal(await whois('100.64.9.9'), undefined);
  });

  test('whois with tailscaled down fails (not cached as "unknown")', async () => {
    const whois = createWhois({ run: emu.runner({ TS_EMU_BACKEND_STATE: 'NoDaemon' }) });
    assert.equal(await codeOf(whois('100.64.0.2')), 'TAILSCALE_NOT_RUNNING');
  });

  const ctx = () => ({ whois: createWhois({ run: emu.runner() }), allowUsers: new Set(['alice@example.com', 'bob@example.com']) });
  const verdict = async (headers: Record<string, string | string[]>) => verifyTailscaleRequest(headers, ctx());

  test('an allowed tailnet user: identity from whois, not from the headers', async () => {
    const v = await verdict({ 'x-forwarded-for': '100.64.0.2', 'x-forwarded-proto': 'https', 'tailscale-user-login': 'mallory@example.com' });
    assert.ok(v.ok);
    assert.deepEqual(v.peer, { address: '100.64.0.2', funnel: false, login: 'alice@example.com', allowed: true, secure: true });
  });

  test('logins compare case-insensitively; a tagged node has no identity', async () => {
    const bob = await verdict({ 'x-forwarded-for': '100.64.0.4' });
    assert.ok(bob.ok && bob.peer.allowed && bob.peer.login === 'Bob@Example.com');
    const ci = await verdict({ 'x-forwarded-for': '100.64.0.3', 'tailscale-user-login': 'alice@example.com' });
    assert.ok(ci.ok);
    assert.deepEqual([ci.peer.login, ci.peer.allowed], [undefined, false]);
  });

  test('Funnel traffic: an address, never an identity', async () => {
    const v = await verdict({ 'x-forwarded-for': '203.0.113.7', 'tailscale-funnel-request': '?1', 'tailscale-user-login': 'alice@example.com' });
    assert.ok(v.ok);
    assert.deepEqual(v.peer, { address: '203.0.113.7', funnel: true, login: undefined, allowed: false, secure: false });
  });

  const refused: [string, Record<string, string | string[]>][] = [
    ['no X-Forwarded-For', {}],
    ['two addresses', { 'x-forwarded-for': '6.6.6.6, 100.64.0.2' }],
    ['a junk address', { 'x-forwarded-for': '100.64.0.2:1234' }],
    ['not a tailnet address', { 'x-forwarded-for': '192.168.1.5' }],
    ['a tailnet address of no node', { 'x-forwarded-for': '100.64.9.9' }],
  ];
  for (const [name, headers] of refused) {
    test(`refused (fail closed): ${name}`, async () => {
      const v = await verdict(headers);
      assert.ok(!v.ok);
      assert.equal(v.err.code, 'TAILSCALE_PEER_UNVERIFIED');
      assert.equal(v.err.status, 403);
    });
  }

  test('tailnet ranges', () => {
    for (const a of ['100.64.0.1', '100.127.255.254', 'fd7a:115c:a1e0::1']) assert.ok(isTailnetAddress(a), a);
    for (const a of ['100.63.255.255', '100.128.0.0', '10.0.0.1', 'fd7a:115c:a1e1::1', '127.0.0.1']) assert.ok(!isTailnetAddress(a), a);
  });
});

describe('overview', () => {
  test('Tailscale missing: every field filled, the problem named', async () => {
    const o = await tailscaleOverview({ paths: statePaths(home.dir), run: createTailscaleRunner({ env: { PATH: '/nonexistent' } }) });
    assert.equal(o.installed, false);
    assert.equal(o.mode, 'off');
    assert.deepEqual(o.problems.map((p) => p.code), ['TAILSCALE_NOT_INSTALLED']);
  });

  test('logged out', async () => {
    const o = await tailscaleOverview({ paths: statePaths(home.dir), run: emu.runner({ TS_EMU_BACKEND_STATE: 'NeedsLogin' }) });
    assert.deepEqual([o.installed, o.running, o.loggedIn, o.dnsName], [true, false, false, null]);
    assert.deepEqual(o.problems.map((p) => p.code), ['TAILSCALE_NOT_LOGGED_IN']);
  });

  test('running, nothing of porthole mapped (someone else\'s route is not "mapped")', async () => {
    assert.equal(emu.tailscale(['serve', '--bg', 'text:theirs']).code, 0);
    try {
      const o = await tailscaleOverview({ paths: statePaths(home.dir), run: emu.runner() });
      assert.deepEqual([o.running, o.dnsName, o.httpsEnabled, o.funnelEnabled, o.mapped, o.mode], [true, 'desk.tail1234.ts.net', true, true, false, 'off']);
      assert.deepEqual(o.problems, []);
    } finally {
      emu.tailscale(['serve', 'reset']);
    }
  });
});

describe('loopback peer uid', () => {
  let server: Server;
  let accepted: Promise<Socket>;
  before(async () => {
    server = createServer();
    accepted = new Promise((resolve) => server.once('connection', resolve));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  test('names our own uid for our own connection', { skip: process.platform !== 'linux' && 'needs /proc/net/tcp' }, async () => {
    const port = (server.address() as { port: number }).port;
    const client = connect(port, '127.0.0.1');
    const s = await accepted;
    try {
      const who = loopbackPeerUid({ address: s.remoteAddress!, port: s.remotePort! }, { address: s.localAddress!, port: s.localPort! });
      assert.deepEqual(who, { kind: 'uid', uid: process.getuid!() });
      assert.deepEqual(loopbackPeerUid({ address: '127.0.0.1', port: 1 }, { address: '127.0.0.1', port: 2 }), { kind: 'unknown' });
    } finally {
      client.destroy();
      s.destroy();
    }
  });
});
