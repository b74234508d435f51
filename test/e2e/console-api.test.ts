// The console-facing API end to end (docs/http.md "Console API"): the real CLI gateway over
// real sockets, the Tailscale emulator on PATH, a tunnel whose relay refuses connections.
// Settings round-trip through state.json and survive a restart, a key set in porthole.toml
// is refused, the registration secret is never shown, admin-only reads refuse read scope,
// and a control-plane client gets tunnel.state and exposure.changed as things change.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect, type ControlClient } from '../../src/client/index.js';
import { runCli, type Served, startCli, tempHome } from '../helpers/cli.js';
import { type EchoApp, startEchoApp } from '../helpers/echo-app.js';
import { type Reply, send, sessionCookie } from '../helpers/http.js';
import { fetchRaw } from '../helpers/servers.js';
import { makePki, type TunnelPki } from '../helpers/tunnel.js';
import { createEmulator, type Emulator } from '../tailscale/emulator.js';

const SECRET = 'Zq-registration-secret-0123456789-yX';

let emu: Emulator;
let app: EchoApp;
let pki: TunnelPki;
let served: Served | undefined;
const home = tempHome();
let token: string;
let toml: string;

async function serve(): Promise<Served> {
  const s = await startCli(['serve', '--target', app.url, '--port', '0', '--json'], { PORTHOLE_HOME: home.home, ...emu.env });
  served = s;
  return s;
}

function port(): number {
  return served!.event.port;
}

function api(path: string, options: { method?: string; body?: unknown; auth?: string; cookie?: string } = {}): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (options.cookie) headers['cookie'] = options.cookie;
  else headers['authorization'] = `Bearer ${options.auth ?? token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  return send(port(), path, {
    method: options.method ?? (options.body !== undefined ? 'POST' : 'GET'),
    headers,
    ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
  });
}

function expectError(r: Reply, status: number, code: string): void {
  assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status}: ${r.text}`);
  assert.equal(r.code, code, r.text);
}

/** The next event `name` whose payload passes `test`, within `timeoutMs`. */
function nextEvent(client: ControlClient, name: string, accept: (p: Record<string, unknown>) => boolean, timeoutMs = 10_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${name} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = client.on(name, (payload) => {
      const p = payload as Record<string, unknown>;
      if (!accept(p)) return;
      clearTimeout(timer);
      off();
      resolve(p);
    });
  });
}

before(async () => {
  emu = createEmulator();
  app = await startEchoApp();
  pki = makePki();
  const desk = pki.desk('mydesk');
  // A relay nobody listens on: the tunnel goes connecting → waiting, which is all the events need.
  toml = `version = 1\n[tunnel]\nrelay = "127.0.0.1:9"\nca = "${pki.caFile}"\ntls_cert = "${desk.cert}"\ntls_key = "${desk.key}"\n`;
  writeFileSync(join(home.home, 'porthole.toml'), toml, { mode: 0o600 });
  await serve();
  token = served!.event.generatedToken!;
  assert.match(token, /^ph_/);
});

after(async () => {
  await served?.stop();
  await app?.close();
  emu?.cleanup();
  pki?.cleanup();
  home.cleanup();
});

describe('console API', () => {
  test('settings: sources, a porthole.toml key refused, bad values listed, saved to state.json, kept across a restart', async () => {
    const got = await api('/_porthole/api/settings');
    assert.equal(got.status, 200, got.text);
    const settings = (got.json as { settings: Record<string, { value: unknown; source: string }> }).settings;
    assert.deepEqual(settings['tunnel.relay'], { value: '127.0.0.1:9', source: 'file' });
    assert.deepEqual(settings['gateway.public_url'], { value: null, source: 'default' });

    const locked = await api('/_porthole/api/settings', { body: { 'tunnel.relay': 'relay.example.com:443' } });
    expectError(locked, 409, 'SETTING_LOCKED');
    assert.ok(locked.text.includes('porthole.toml'), locked.text);

    const bad = await api('/_porthole/api/settings', { body: { 'gateway.public_url': 'ftp://x', 'tunnel.auto_start': 'yes' } });
    expectError(bad, 400, 'CONFIG_INVALID');
    assert.equal((bad.json as { error: { details: string[] } }).error.details.length, 2);

    const saved = await api('/_porthole/api/settings', { body: { 'gateway.public_url': 'https://desk.example.com', 'tunnel.subdomain': 'mydesk' } });
    assert.equal(saved.status, 200, saved.text);
    const body = saved.json as { settings: Record<string, { value: unknown; source: string }>; restartRequired: string[] };
    assert.deepEqual(body.restartRequired.sort(), ['gateway.public_url', 'tunnel.subdomain']);
    assert.equal(body.settings['gateway.public_url']!.source, 'state');
    const state = JSON.parse(readFileSync(join(home.home, 'state.json'), 'utf8')) as { settings: Record<string, unknown> };
    assert.deepEqual(state.settings, { 'gateway.public_url': 'https://desk.example.com', 'tunnel.subdomain': 'mydesk' });
    assert.equal(readFileSync(join(home.home, 'porthole.toml'), 'utf8'), toml, 'porthole.toml is never written');

    // Restart: the saved values are now the running ones.
    await served!.stop();
    await serve();
    const after = await api('/_porthole/api/settings');
    assert.equal(after.status, 200, after.text);
    const now = after.json as { settings: Record<string, { value: unknown; source: string }>; restartRequired: string[] };
    assert.deepEqual(now.settings['gateway.public_url'], { value: 'https://desk.example.com', source: 'state' });
    assert.deepEqual(now.settings['tunnel.subdomain'], { value: 'mydesk', source: 'state' });
    assert.deepEqual(now.restartRequired, []);
    const status = await api('/_porthole/api/status');
    assert.equal((status.json as { exposure: { methods: { reverseProxy: { urls: string[] } } } }).exposure.methods.reverseProxy.urls[0], 'https://desk.example.com');
  });

  test('events: tunnel.state on start and stop, exposure.changed on tunnel, Tailscale and settings changes', async (t) => {
    const client = await connect({ url: served!.event.url, token, reconnect: false });
    t.after(() => client.close());
    assert.ok(client.hello.events.includes('tunnel.state') && client.hello.events.includes('exposure.changed'), JSON.stringify(client.hello.events));

    const connecting = nextEvent(client, 'tunnel.state', (p) => (p['state'] as { state: string }).state !== 'stopped');
    const tunnelOn = (on: boolean) => (p: Record<string, unknown>) => (p as { methods: { tunnel: { on: boolean } } }).methods.tunnel.on === on;
    const exposureOn = nextEvent(client, 'exposure.changed', tunnelOn(true));
    const started = await api('/_porthole/api/tunnel/start', { body: { acceptRisk: true } });
    assert.equal(started.status, 200, started.text);
    const st = await connecting;
    assert.equal(st['relay'], '127.0.0.1:9');
    assert.ok(['connecting', 'waiting'].includes((st['state'] as { state: string }).state));
    assert.equal(JSON.stringify(st).includes(SECRET), false);
    await exposureOn;

    const stopped = nextEvent(client, 'tunnel.state', (p) => (p['state'] as { state: string }).state === 'stopped');
    const exposureOff = nextEvent(client, 'exposure.changed', tunnelOn(false));
    assert.equal((await api('/_porthole/api/tunnel/stop', { body: {} })).status, 200);
    await stopped;
    await exposureOff;

    const mapped = nextEvent(client, 'exposure.changed', (p) => (p as { methods: { tailscale: { on: boolean } } }).methods.tailscale.on === true);
    const ts = await api('/_porthole/api/tailscale/serve', { body: {} });
    assert.equal(ts.status, 200, ts.text);
    assert.equal((ts.json as { mode: string }).mode, 'serve');
    await mapped;
    const unmapped = nextEvent(client, 'exposure.changed', (p) => (p as { methods: { tailscale: { on: boolean } } }).methods.tailscale.on === false);
    assert.equal((await api('/_porthole/api/tailscale/reset', { body: {} })).status, 200);
    await unmapped;

    // A settings save is announced even though the running overview is the same.
    const afterSave = nextEvent(client, 'exposure.changed', () => true);
    assert.equal((await api('/_porthole/api/settings', { body: { 'tunnel.auto_start': true } })).status, 200);
    await afterSave;
  });

  test('tunnel secret: stored, shown only masked, bad ones refused', async () => {
    const before = (await api('/_porthole/api/tunnel')).json as { secret: unknown };
    assert.deepEqual(before.secret, { set: false, source: 'dev-default', masked: null });
    expectError(await api('/_porthole/api/tunnel/secret', { body: { secret: 'too short' } }), 400, 'INVALID_ARGUMENT');
    const set = await api('/_porthole/api/tunnel/secret', { body: { secret: SECRET } });
    assert.equal(set.status, 200, set.text);
    assert.deepEqual(set.json, { secret: { set: true, source: 'store', masked: 'Zq…yX' } });
    const got = await api('/_porthole/api/tunnel');
    assert.deepEqual((got.json as { secret: unknown }).secret, { set: true, source: 'store', masked: 'Zq…yX' });
    for (const r of [set, got]) assert.equal(r.text.includes(SECRET.slice(2, -2)), false);
  });

  test('`porthole tunnel secret set` hands the secret to the running gateway: its status shows it at once', async () => {
    const next = 'Ab-second-registration-secret-9876543210-cD';
    const r = await runCli(['tunnel', 'secret', 'set'], { PORTHOLE_HOME: home.home, ...emu.env }, 20_000, `${next}\n`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /stored by the running gateway/);
    const got = await api('/_porthole/api/tunnel');
    assert.deepEqual((got.json as { secret: unknown }).secret, { set: true, source: 'store', masked: 'Ab…cD' });
    assert.equal(readFileSync(join(home.home, 'secrets', 'tunnel-registration-secret'), 'utf8').trim(), next);
    // Back to the first one through the console, as the tests below expect.
    assert.equal((await api('/_porthole/api/tunnel/secret', { body: { secret: SECRET } })).status, 200);
  });

  test('audit: newest first, limited, the secret never in it', async () => {
    const r = await api('/_porthole/api/audit?limit=3');
    assert.equal(r.status, 200, r.text);
    const entries = (r.json as { entries: { event: string; ts: string }[] }).entries;
    assert.equal(entries.length, 3);
    assert.equal(entries[0]!.event, 'tunnel secret set');
    assert.ok(entries[0]!.ts >= entries[1]!.ts && entries[1]!.ts >= entries[2]!.ts);
    const all = await api('/_porthole/api/audit');
    assert.ok((all.json as { entries: { event: string }[] }).entries.some((e) => e.event === 'settings saved'));
    assert.equal(all.text.includes(SECRET), false);
    expectError(await api('/_porthole/api/audit?limit=501'), 400, 'BAD_REQUEST');
  });

  test('proxy test and snippets, LAN addresses', async () => {
    const probe = await api('/_porthole/api/proxy/test', { body: { url: served!.event.url } });
    assert.equal(probe.status, 200, probe.text);
    assert.deepEqual([(probe.json as { ok: boolean }).ok, (probe.json as { service: string }).service], [true, 'porthole']);
    const refused = await api('/_porthole/api/proxy/test', { body: { url: 'http://127.0.0.1:9' } });
    assert.deepEqual([(refused.json as { ok: boolean }).ok, (refused.json as { code: string }).code], [false, 'DNS_OR_CONN_REFUSED']);
    expectError(await api('/_porthole/api/proxy/test', { body: { url: 'ftp://x' } }), 400, 'INVALID_ARGUMENT');

    const caddy = await api('/_porthole/api/proxy/config?kind=caddy&publicUrl=https://desk.example.com');
    assert.equal(caddy.status, 200, caddy.text);
    assert.match(String(caddy.headers['content-type']), /^text\/plain/);
    assert.ok(caddy.text.includes('desk.example.com') && caddy.text.includes(`127.0.0.1:${port()}`), caddy.text);
    // Without publicUrl: the saved gateway.public_url.
    const nginx = await api('/_porthole/api/proxy/config?kind=nginx');
    assert.equal(nginx.status, 200, nginx.text);
    assert.ok(nginx.text.includes('server_name desk.example.com'), nginx.text);
    expectError(await api('/_porthole/api/proxy/config?kind=apache'), 400, 'INVALID_ARGUMENT');

    const lan = await api('/_porthole/api/lan');
    assert.equal(lan.status, 200, lan.text);
    const l = lan.json as { bind: string; port: number; addresses: unknown[] };
    assert.deepEqual([l.bind, l.port, Array.isArray(l.addresses)], ['127.0.0.1', port(), true]);
  });

  test('read scope: reads the public parts, never admin-only ones or the masked secret', async () => {
    const code = await fetchRaw({
      socketPath: served!.event['socket'] as string,
      path: '/_porthole/api/codes',
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ scope: 'read' }),
    });
    assert.equal(code.status, 201, code.text);
    const first = await send(port(), `/?code=${(JSON.parse(code.text) as { code: string }).code}`);
    assert.equal(first.status, 303, first.text);
    const cookie = sessionCookie(first).pair;
    for (const path of ['/_porthole/api/settings', '/_porthole/api/audit', '/_porthole/api/proxy/config?kind=caddy']) {
      expectError(await api(path, { cookie }), 403, 'SCOPE_DENIED');
    }
    assert.equal((await api('/_porthole/api/lan', { cookie })).status, 200);
    assert.equal((await api('/_porthole/api/tailscale', { cookie })).status, 200);
    const tunnel = await api('/_porthole/api/tunnel', { cookie });
    assert.deepEqual((tunnel.json as { secret: unknown }).secret, { set: true, source: 'store', masked: null });
    const origin = `http://127.0.0.1:${port()}`;
    const post = await send(port(), '/_porthole/api/token/rotate', { method: 'POST', headers: { cookie, origin }, body: '{}' });
    expectError(post, 403, 'SCOPE_DENIED');
  });

  test('token rotation over HTTP: counts only, the old token revoked at once', async (t) => {
    const client = await connect({ url: served!.event.url, token, reconnect: false });
    t.after(() => client.close());
    const r = await api('/_porthole/api/token/rotate', { body: {} });
    assert.equal(r.status, 200, r.text);
    const body = r.json as { sessionsEnded: number; connectionsClosed: number };
    assert.deepEqual(Object.keys(body).sort(), ['connectionsClosed', 'sessionsEnded']);
    assert.equal(/ph_/.test(r.text), false);
    const closed = await client.closed;
    assert.ok(closed, 'the control session of the old token ends');
    expectError(await api('/_porthole/api/status'), 401, 'AUTH_REVOKED');
  });
});
