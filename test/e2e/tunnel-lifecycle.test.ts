// Hostile review of the desk's tunnel lifecycle (2026-11-24), with `porthole relay` and
// `porthole serve` as real processes: a new secret reaches a waiting desk; `tunnel stop`
// aborts an attempt in flight (nothing registers after it, and SIGTERM exits promptly); a
// failing audit log costs neither the tunnel nor the gateway; a start during a release is
// refused; the retry countdown counts down; consent is not recorded for a start that fails.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli, type Served, startCli } from '../helpers/cli.js';
import { DOMAIN, tunnelFixture, writeDeskConfig } from '../helpers/tunnel.js';

const fx = tunnelFixture();
const home = (): string => fx.home();
const SECRET = 'the-right-secret-0123456789';

function startRelay(env: Record<string, string> = {}): Promise<Served> {
  return startCli(
    ['relay', '--domain', DOMAIN, '--listen', '127.0.0.1:0', '--cert', fx.pki.relayCert, '--key', fx.pki.relayKey, '--store', home(), '--json'],
    { PORTHOLE_HOME: home(), PORTHOLE_RELAY_REGISTRATION_SECRET: SECRET, ...env },
  );
}

async function startDesk(relayPort: number, name: string, env: Record<string, string> = {}): Promise<{ desk: Served; dir: string }> {
  const dir = home();
  writeDeskConfig(fx.pki, dir, relayPort, name);
  const desk = await startCli(['serve', '--target', fx.app.url, '--port', '0', '--json', '--no-loopback-exempt'], { PORTHOLE_HOME: dir, ...env });
  return { desk, dir };
}

const tunnelState = (state: string) => (e: Record<string, unknown>) => e['event'] === 'tunnel' && e['state'] === state;
const status = async (dir: string) => JSON.parse((await runCli(['tunnel', 'status', '--json'], { PORTHOLE_HOME: dir })).stdout);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a secret set on the desk reaches a desk waiting after REGISTRATION_DENIED, at once', { timeout: 60_000 }, async () => {
  const relay = await startRelay();
  const { desk, dir } = await startDesk(relay.event.port, 'renewed');
  try {
    assert.equal((await runCli(['tunnel', 'start', '--accept-risk'], { PORTHOLE_HOME: dir })).code, 0);
    const waiting = await desk.waitForEvent(tunnelState('waiting'), 20_000);
    assert.equal((waiting['lastError'] as { code: string }).code, 'REGISTRATION_DENIED');
    // Permanent: at least half the 30 s cap before the next attempt.
    assert.ok((waiting['retryInMs'] as number) >= 15_000, `retried after ${String(waiting['retryInMs'])} ms`);
    // The countdown counts down.
    const first = (await status(dir)).state.retryInMs as number;
    await sleep(1_100);
    const second = (await status(dir)).state.retryInMs as number;
    assert.ok(second <= first - 900, `retryInMs ${first} → ${second}`);

    const from = desk.lines.length;
    const set = await runCli(['tunnel', 'secret', 'set'], { PORTHOLE_HOME: dir }, 20_000, `${SECRET}\n`);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stderr, /next connection attempt/);
    // Well before the 15 s the back-off had left: the new secret woke the desk.
    const online = await desk.waitForEvent(tunnelState('online'), 10_000, from);
    assert.equal(online['name'], 'renewed');
  } finally {
    await desk.stop();
    await relay.stop();
  }
});

test('tunnel stop aborts an attempt in flight: nothing registers after it; SIGTERM exits promptly', { timeout: 60_000 }, async () => {
  const relay = await startRelay();
  const { desk, dir } = await startDesk(relay.event.port, 'stopped', { PORTHOLE_TUNNEL_REGISTRATION_SECRET: SECRET });
  let frozen = false;
  try {
    // A frozen relay: the desk's TLS handshake waits on it.
    process.kill(relay.pid, 'SIGSTOP');
    frozen = true;
    assert.equal((await runCli(['tunnel', 'start', '--accept-risk'], { PORTHOLE_HOME: dir })).code, 0);
    await desk.waitForEvent(tunnelState('connecting'), 10_000);
    const stop = await runCli(['tunnel', 'stop', '--json'], { PORTHOLE_HOME: dir });
    assert.equal(stop.code, 0, stop.stderr);
    const fromRelay = relay.lines.length;
    process.kill(relay.pid, 'SIGCONT');
    frozen = false;
    await sleep(2_000);
    const late = relay.lines.slice(fromRelay).filter((l) => l.includes('desk-online'));
    assert.deepEqual(late, [], 'the stopped desk registered at the relay');
    assert.equal((await status(dir)).state.state, 'stopped');
    const audit = readFileSync(join(dir, 'audit.log'), 'utf8');
    assert.doesNotMatch(audit, /"event":"online"/);
    assert.doesNotMatch(audit.slice(audit.lastIndexOf('"event":"stop"')), /registration failed/, 'an event of the stopped attempt was logged after stop');

    // Connecting again to a frozen relay, then SIGTERM: the attempt does not hold the process.
    process.kill(relay.pid, 'SIGSTOP');
    frozen = true;
    assert.equal((await runCli(['tunnel', 'start'], { PORTHOLE_HOME: dir })).code, 0);
    await sleep(500);
    const t0 = Date.now();
    await desk.stop();
    assert.ok(Date.now() - t0 < 5_000, `serve took ${Date.now() - t0} ms to exit`);
  } finally {
    if (frozen) process.kill(relay.pid, 'SIGCONT');
    await desk.stop();
    await relay.stop();
  }
});

test('a failing audit log costs neither the tunnel nor the gateway', { timeout: 60_000 }, async () => {
  const relay = await startRelay();
  const { desk, dir } = await startDesk(relay.event.port, 'diskfull', { PORTHOLE_TUNNEL_REGISTRATION_SECRET: SECRET });
  try {
    // Consent first (it is recorded in state and the audit log), then the log becomes unwritable.
    assert.equal((await runCli(['tunnel', 'start', '--accept-risk'], { PORTHOLE_HOME: dir })).code, 0);
    await desk.waitForEvent(tunnelState('online'), 20_000);
    assert.equal((await runCli(['tunnel', 'stop'], { PORTHOLE_HOME: dir })).code, 0);
    rmSync(join(dir, 'audit.log'));
    mkdirSync(join(dir, 'audit.log'));
    const from = desk.lines.length;
    const start = await runCli(['tunnel', 'start', '--json'], { PORTHOLE_HOME: dir });
    assert.equal(start.code, 0, start.stderr);
    await desk.waitForEvent(tunnelState('online'), 20_000, from);
    // The relay goes away: offline, failed attempts — each an audit write that fails.
    await relay.stop();
    await desk.waitForEvent(tunnelState('waiting'), 20_000, from);
    await sleep(1_500);
    const health = await fetch(`${desk.event.url}/_porthole/health`);
    assert.equal(health.status, 200, 'the gateway went down with its audit log');
    assert.equal(desk.proc.exitCode, null);
  } finally {
    await desk.stop();
    await relay.stop();
  }
});

test('a start while a release runs is refused TUNNEL_BUSY; the name stays released', { timeout: 60_000 }, async () => {
  const relay = await startRelay();
  const { desk, dir } = await startDesk(relay.event.port, 'gamma', { PORTHOLE_TUNNEL_REGISTRATION_SECRET: SECRET });
  let frozen = false;
  try {
    assert.equal((await runCli(['tunnel', 'start', '--accept-risk'], { PORTHOLE_HOME: dir })).code, 0);
    await desk.waitForEvent(tunnelState('online'), 20_000);
    // Freeze the relay so that the release waits on it, and start meanwhile.
    process.kill(relay.pid, 'SIGSTOP');
    frozen = true;
    const release = runCli(['tunnel', 'release', '--json'], { PORTHOLE_HOME: dir }, 30_000);
    await desk.waitForEvent(tunnelState('stopped'), 10_000);
    const start = await runCli(['tunnel', 'start', '--json'], { PORTHOLE_HOME: dir });
    assert.notEqual(start.code, 0);
    assert.match(start.stderr, /TUNNEL_BUSY/);
    process.kill(relay.pid, 'SIGCONT');
    frozen = false;
    const released = await release;
    assert.equal(released.code, 0, released.stderr);
    assert.equal((await status(dir)).state.state, 'stopped');
  } finally {
    if (frozen) process.kill(relay.pid, 'SIGCONT');
    await desk.stop();
    await relay.stop();
  }
});

test('consent is not recorded for a start that cannot happen (no relay configured)', { timeout: 30_000 }, async () => {
  const dir = home();
  const desk = await startCli(['serve', '--target', fx.app.url, '--port', '0', '--json'], { PORTHOLE_HOME: dir });
  try {
    const r = await runCli(['tunnel', 'start', '--accept-risk'], { PORTHOLE_HOME: dir });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /no relay configured/);
    assert.equal((await status(dir)).consent, false);
  } finally {
    await desk.stop();
  }
});
