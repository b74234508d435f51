// Each Tailscale error class, produced by a real emulator knob, through the real CLI:
// `porthole serve --tailscale …` refuses to start, names the problem and its code, exits 1,
// and leaves Tailscale's serve config as it found it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runCli, startCli, tempHome } from '../helpers/cli.js';
import { type EchoApp, startEchoApp } from '../helpers/echo-app.js';
import { createEmulator, type Emulator } from '../tailscale/emulator.js';

let emu: Emulator;
let app: EchoApp;
let home: { home: string; cleanup(): void };

before(async () => {
  emu = createEmulator();
  app = await startEchoApp();
  home = tempHome();
});
after(async () => {
  await app?.close();
  emu?.cleanup();
  home?.cleanup();
});

const serveConfig = () => emu.tailscale(['serve', 'status', '--json']).stdout;

async function refused(mode: 'serve' | 'funnel', env: Record<string, string>, code: string, message: RegExp): Promise<void> {
  const before = serveConfig();
  const r = await runCli(['serve', '--target', app.url, '--port', '0', '--json', '--tailscale', mode], { PORTHOLE_HOME: home.home, ...emu.env, ...env });
  assert.equal(r.timedOut, false, 'it must not wait for a person to click a link');
  assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, new RegExp(`\\[${code}\\]`));
  assert.match(r.stderr, message);
  assert.equal(serveConfig(), before, "tailscale's serve config is unchanged");
}

describe('porthole serve --tailscale refuses to start, and says why', () => {
  test('tailscale not installed', () =>
    refused('serve', { PATH: '/nonexistent' }, 'TAILSCALE_NOT_INSTALLED', /install Tailscale/));

  test('tailscaled not running', () =>
    refused('serve', { TS_EMU_BACKEND_STATE: 'NoDaemon' }, 'TAILSCALE_NOT_RUNNING', /tailscaled is not running/));

  test('Tailscale stopped', () => refused('serve', { TS_EMU_BACKEND_STATE: 'Stopped' }, 'TAILSCALE_NOT_RUNNING', /tailscale up/));

  test('not logged in', () => refused('funnel', { TS_EMU_BACKEND_STATE: 'NeedsLogin' }, 'TAILSCALE_NOT_LOGGED_IN', /tailscale up/));

  test('HTTPS not enabled for the tailnet (Serve waits for a person otherwise)', () =>
    refused('serve', { TS_EMU_HTTPS: 'false', TS_EMU_FEATURE_FLOW: 'wait' }, 'TAILSCALE_HTTPS_DISABLED', /HTTPS Certificates/));

  test('Funnel not enabled for the node', () =>
    refused('funnel', { TS_EMU_FUNNEL: 'false' }, 'TAILSCALE_FUNNEL_DISABLED', /"funnel" node attribute/));

  test('Funnel not allowed on 443', () =>
    refused('funnel', { TS_EMU_FUNNEL_PORTS: '8443' }, 'TAILSCALE_FUNNEL_DISABLED', /not on port 443/));

  test('permission denied: porthole names the fix and never runs sudo', () =>
    refused('serve', { TS_EMU_PERMISSION: 'user' }, 'TAILSCALE_PERMISSION_DENIED', /never runs sudo.*--operator=\$USER/));

  test('"/" on 443 is already someone else\'s route: left alone', async () => {
    assert.equal(emu.tailscale(['serve', '--bg', 'text:not porthole']).code, 0);
    try {
      await refused('serve', {}, 'TAILSCALE_ROUTE_CONFLICT', /did not make \(text\)/);
      assert.match(serveConfig(), /not porthole/);
    } finally {
      emu.tailscale(['serve', 'reset']);
    }
  });
});

describe('run-time switches are judged by the exposure rules', () => {
  test('`porthole tailscale funnel` on a gateway without authentication is refused; Serve stays', async () => {
    const h = tempHome();
    const env = { PORTHOLE_HOME: h.home, ...emu.env };
    const served = await startCli(['serve', '--target', app.url, '--port', '0', '--json', '--tailscale', 'serve', '--insecure-no-auth'], env);
    try {
      await served.waitForEvent((e) => e['event'] === 'tailscale');
      const r = await runCli(['tailscale', 'funnel'], env);
      assert.equal(r.code, 2, r.stderr); // a configuration conflict: exit 2
      assert.match(r.stderr, /\[EXPOSURE_CONFLICT\]/);
      const sc = JSON.parse(serveConfig());
      assert.equal(sc.AllowFunnel, undefined);
      assert.ok(sc.Web['desk.tail1234.ts.net:443'], 'the Serve mapping is untouched');
    } finally {
      await served.stop();
      h.cleanup();
    }
    assert.equal(JSON.parse(serveConfig()).Web, undefined, 'a loopback-port mapping ends with the gateway');
  });
});

describe('porthole tailscale … without a running gateway', () => {
  test('serve and funnel need the gateway (exit 3)', async () => {
    const r = await runCli(['tailscale', 'serve'], { PORTHOLE_HOME: home.home, ...emu.env });
    assert.equal(r.code, 3);
    assert.match(r.stderr, /\[GATEWAY_NOT_RUNNING\]/);
  });

  test('status reports what stands in the way, and exits 0', async () => {
    const r = await runCli(['tailscale', 'status', '--json'], { PORTHOLE_HOME: home.home, PATH: '/nonexistent' });
    assert.equal(r.code, 0, r.stderr);
    const o = JSON.parse(r.stdout);
    assert.deepEqual([o.installed, o.gateway, o.mapped], [false, false, false]);
    assert.deepEqual(o.problems.map((p: { code: string }) => p.code), ['TAILSCALE_NOT_INSTALLED']);
    const text = await runCli(['tailscale', 'status'], { PORTHOLE_HOME: home.home, ...emu.env, TS_EMU_BACKEND_STATE: 'NeedsLogin' });
    assert.match(text.stdout, /problem +not logged in to a tailnet .*\[TAILSCALE_NOT_LOGGED_IN\]/);
  });
});
