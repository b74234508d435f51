// The exposure rules judged on the live state at every run-time switch (docs/exposure.md):
// a Funnel switched on at run time must stop a later `porthole tunnel start`, whatever
// porthole.toml said when the gateway started. Real CLI, Tailscale emulator.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli, type Served, startCli, tempHome } from '../helpers/cli.js';
import { cliCode } from '../helpers/e2e.js';
import { type EchoApp, startEchoApp } from '../helpers/echo-app.js';
import { send } from '../helpers/http.js';
import { createEmulator, type Emulator } from '../tailscale/emulator.js';

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

describe('--insecure-no-auth with Tailscale Serve: only allow_users get through the listener', () => {
  it('the owner passes; another tailnet user, a tagged node and Funnel traffic are refused', async () => {
    emu.admin('peer', 'add', '100.64.0.22', 'mallory@example.com', 'Mallory');
    emu.admin('peer', 'add', '100.64.0.23', 'tag:ci');
    const h = tempHome();
    homes.push(h);
    const env = { PORTHOLE_HOME: h.home, ...emu.env };
    const g = await startCli(['serve', '--target', app.url, '--port', '0', '--insecure-no-auth', '--tailscale', 'serve', '--json'], env);
    running.push(g);
    await g.waitForEvent((e) => e['event'] === 'tailscale');
    try {
      await probeNoAuthListener();
    } finally {
      emu.tailscale(['funnel', '--https=443', '--set-path=/other', 'off']);
      await g.stop(); // removes its loopback-port mapping: the next test maps 443 again
    }
  });
});

/** Requests through the emulated tailscaled to a gateway running with --insecure-no-auth. */
async function probeNoAuthListener(): Promise<void> {
  const DNS = 'desk.tail1234.ts.net';
  const OWNER_IP = '100.101.102.103';
  const via = (port: number, peer: string) => send(port, '/', { headers: { 'X-Tailscale-Emulator-Peer': peer } });
  const daemon = emu.daemonPort();
  assert.equal((await via(daemon, OWNER_IP)).status, 200, 'the node owner (default allow_users)');
  for (const peer of ['100.64.0.22', '100.64.0.23']) {
    const r = await via(daemon, peer);
    assert.equal(r.status, 403, `${peer}: ${r.text}`);
    assert.equal(r.code, 'TAILSCALE_PEER_UNVERIFIED');
  }
  // Someone publishes another path on port 443 with Funnel: Funnel is per port, so
  // porthole's "/" is on the internet now too, without porthole being asked.
  assert.equal(emu.tailscale(['funnel', '--bg', '--https=443', '--set-path=/other', 'text:theirs']).code, 0);
  assert.equal(JSON.parse(emu.tailscale(['serve', 'status', '--json']).stdout).AllowFunnel[`${DNS}:443`], true);
  const pub = await via(daemon, '203.0.113.9');
  assert.equal(pub.status, 403, pub.text);
  assert.equal(pub.code, 'TAILSCALE_PEER_UNVERIFIED');
}

describe('run-time switches are judged on the live state', () => {
  it('Funnel switched on at run time: `tunnel start` is refused (one-public-exposure), no consent recorded', async () => {
    const h = tempHome();
    homes.push(h);
    const env = { PORTHOLE_HOME: h.home, ...emu.env };
    const g = await startCli(['serve', '--target', app.url, '--port', '0', '--relay', '127.0.0.1:9', '--json'], env);
    running.push(g);
    const f = await runCli(['tailscale', 'funnel', '--json'], env);
    assert.equal(f.code, 0, f.stderr);
    assert.equal(JSON.parse(f.stdout).mode, 'funnel');

    const r = await runCli(['tunnel', 'start', '--accept-risk'], env);
    assert.notEqual(r.code, 0, r.stdout);
    assert.equal(cliCode(r.stderr), 'EXPOSURE_CONFLICT', r.stderr);
    assert.match(r.stderr, /Funnel and the public tunnel/);
    const state = join(h.home, 'state.json');
    assert.ok(!existsSync(state) || !readFileSync(state, 'utf8').includes('tunnelConsent'), 'no consent recorded');
  });
});
