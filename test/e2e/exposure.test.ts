// The remote-access overview and the exposure rules, through the real CLI: serve refuses
// to start with conflicting exposures (exit 2, EXPOSURE_CONFLICT, every rule with its fix),
// a run-time switch that would break a rule is refused before consent is recorded, and
// `porthole status` / GET /_porthole/api/status show each method.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { type Env, runCli, type Served, startCli, tempHome } from '../helpers/cli.js';
import { cliCode, defer } from '../helpers/e2e.js';
import { type EchoApp, startEchoApp } from '../helpers/echo-app.js';
import { fetchRaw } from '../helpers/servers.js';

let app: EchoApp;
before(async () => {
  app = await startEchoApp();
});
after(async () => {
  await app.close();
});

function home(t: TestContext): string {
  const h = tempHome();
  defer(t, () => h.cleanup());
  return h.home;
}

async function serve(t: TestContext, args: string[], env: Env): Promise<Served> {
  const g = await startCli(['serve', '--target', app.url, '--port', '0', ...args, '--json'], env);
  defer(t, () => g.stop());
  return g;
}

describe('exposure conflicts at start', () => {
  it('no auth on a LAN bind: exit 2, EXPOSURE_CONFLICT with the fix; nothing listens', async (t) => {
    const r = await runCli(['serve', '--target', app.url, '--port', '0', '--host', '0.0.0.0', '--insecure-no-auth', '--json'], { PORTHOLE_HOME: home(t) });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(cliCode(r.stderr), 'EXPOSURE_CONFLICT', r.stderr);
    assert.match(r.stderr, /Fix: drop --insecure-no-auth, or bind to 127\.0\.0\.1/);
    assert.equal(r.stdout, '', 'no listening event');
  });

  it('every broken rule at once: Funnel with the tunnel, on a LAN bind', async (t) => {
    const h = home(t);
    writeFileSync(join(h, 'porthole.toml'), '[tailscale]\nmode = "funnel"\n\n[tunnel]\nenabled = true\nrelay = "127.0.0.1:9"\n');
    const r = await runCli(['serve', '--target', app.url, '--port', '0', '--host', '0.0.0.0'], { PORTHOLE_HOME: h });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(cliCode(r.stderr), 'EXPOSURE_CONFLICT', r.stderr);
    assert.match(r.stderr, /2 exposure conflicts/);
    assert.match(r.stderr, /Funnel and the public tunnel/);
    assert.match(r.stderr, /needs the gateway bound to loopback/);
  });
});

describe('overview of a running gateway', () => {
  it('status --json, the HTTP API and the text view show all five methods', async (t) => {
    const h = home(t);
    const g = await serve(t, [], { PORTHOLE_HOME: h });
    const token = String(g.event['generatedToken']);
    const s = await runCli(['status', '--json'], { PORTHOLE_HOME: h });
    assert.equal(s.code, 0, s.stderr);
    const status = JSON.parse(s.stdout) as { exposure: { methods: Record<string, { on: boolean | null; health: string; urls: string[] }>; conflicts: unknown[] } };
    const m = status.exposure.methods;
    assert.deepEqual(Object.keys(m).sort(), ['lan', 'reverseProxy', 'ssh', 'tailscale', 'tunnel']);
    assert.equal(m['lan']!.on, false);
    assert.equal(m['tunnel']!.health, 'off');
    assert.deepEqual(status.exposure.conflicts, []);

    const api = await fetchRaw({ port: g.event.port, path: '/_porthole/api/status', headers: { authorization: `Bearer ${token}` } });
    assert.equal(api.status, 200, api.text);
    assert.deepEqual(Object.keys(JSON.parse(api.text).exposure.methods).sort(), Object.keys(m).sort());
    assert.ok(!api.text.includes(token), 'the status never carries the token');

    const text = await runCli(['status'], { PORTHOLE_HOME: h });
    assert.equal(text.code, 0, text.stderr);
    for (const label of ['local network', 'SSH tunnel', 'Tailscale', 'public tunnel', 'reverse proxy']) assert.match(text.stdout, new RegExp(label));
    assert.match(text.stdout, /conflicts: none/);
  });

  it('a run-time tunnel start that would break a rule is refused before consent is recorded', async (t) => {
    const h = home(t);
    await serve(t, ['--insecure-no-auth', '--relay', '127.0.0.1:9'], { PORTHOLE_HOME: h });
    const r = await runCli(['tunnel', 'start', '--accept-risk'], { PORTHOLE_HOME: h });
    assert.notEqual(r.code, 0, r.stderr);
    assert.equal(cliCode(r.stderr), 'EXPOSURE_CONFLICT', r.stderr);
    const state = join(h, 'state.json');
    assert.ok(!existsSync(state) || !readFileSync(state, 'utf8').includes('tunnelConsent'), 'no consent recorded');
    const s = JSON.parse((await runCli(['status', '--json'], { PORTHOLE_HOME: h })).stdout);
    assert.equal(s.exposure.methods.tunnel.health, 'off');
  });
});

describe('porthole lan addresses', () => {
  it('--json lists every non-internal address with a URL on the configured port, IPv4 first', async (t) => {
    const r = await runCli(['lan', 'addresses', '--json', '--port', '8123'], { PORTHOLE_HOME: home(t) });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { port: number; addresses: { address: string; family: number; url: string | null }[] };
    assert.equal(out.port, 8123);
    let seenV6 = false;
    for (const a of out.addresses) {
      assert.ok(!a.address.startsWith('127.') && a.address !== '::1', `loopback listed: ${a.address}`);
      if (a.family === 6) seenV6 = true;
      else assert.equal(seenV6, false, 'IPv4 comes first');
      if (a.url !== null) assert.equal(new URL(a.url).port, '8123');
    }
  });
});
