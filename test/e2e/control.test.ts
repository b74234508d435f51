// `porthole serve --tls self-signed` end to end: the banner and --json event carry the pins,
// `porthole call` works remotely (PORTHOLE_URL + PORTHOLE_TOKEN + --pin) and locally, and
// the two complete client examples (Node SDK, Python websockets) run against it.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { cleanEnv, runCli, type Served, startCli, tempHome } from '../helpers/cli.js';
import { type EchoApp, startEchoApp } from '../helpers/echo-app.js';
import { skipUnless } from '../helpers/peers.js';

const TOKEN = `ph_${'e2e'.repeat(15)}`;
const ROOT = new URL('../..', import.meta.url).pathname;
const PYTHON = '/usr/bin/python3';

function run(cmd: string, args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: ROOT, env: cleanEnv(env), timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

function pythonWebsockets(): string | undefined {
  if (!existsSync(PYTHON)) return 'no /usr/bin/python3';
  const r = spawnSync(PYTHON, ['-c', 'import websockets'], { timeout: 10_000 });
  return r.status === 0 ? undefined : 'the websockets module is not installed (apt install python3-websockets)';
}

describe('control plane e2e: serve --tls self-signed, porthole call, examples', () => {
  let app: EchoApp;
  let served: Served;
  const home = tempHome();
  let pin: string;
  let fingerprint: string;
  let url: string;

  before(async () => {
    app = await startEchoApp();
    served = await startCli(['serve', '--target', app.url, '--port', '0', '--json', '--tls', 'self-signed'], { PORTHOLE_HOME: home.home, PORTHOLE_AUTH_TOKEN: TOKEN });
    const tls = served.event['tls'] as { pin: string; fingerprint256: string; source: string };
    pin = tls.pin;
    fingerprint = tls.fingerprint256;
    url = served.event.url;
  });
  after(async () => {
    await served?.stop();
    await app?.close();
    home.cleanup();
  });

  test('the listening event and the banner carry the pins; the URL is https', async () => {
    assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.match(pin, /^sha256\/[A-Za-z0-9+/]{43}=$/);
    assert.match(fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    const banner = await served.waitForStderr(/certificate SHA-256 fingerprint/);
    assert.ok(banner.includes(pin) && banner.includes(fingerprint));
    assert.ok(!served.stderr().includes(TOKEN) && !served.lines.join('\n').includes(TOKEN));
  });

  test('porthole call: remote settings with a pin, errors as codes, and the local gateway', async (t) => {
    const elsewhere = tempHome();
    t.after(() => elsewhere.cleanup());
    const remote = { PORTHOLE_HOME: elsewhere.home, PORTHOLE_URL: url, PORTHOLE_TOKEN: TOKEN };
    const ok = await runCli(['call', 'health', '--pin', pin], remote);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(JSON.parse(ok.stdout), { status: 'ok' });
    const status = await runCli(['call', 'status', '--pin', fingerprint], remote);
    assert.equal(status.code, 0, status.stderr);
    assert.equal((JSON.parse(status.stdout) as { tls: { pin: string } }).tls.pin, pin);

    const unknown = await runCli(['call', 'nope', '--pin', pin], remote);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /\[CONTROL_UNKNOWN_METHOD\]/);
    const wrongPin = await runCli(['call', 'health', '--pin', `sha256/${'A'.repeat(43)}=`], remote);
    assert.equal(wrongPin.code, 1);
    assert.match(wrongPin.stderr, /\[TLS_PIN_MISMATCH\]/);
    const badJson = await runCli(['call', 'health', '{nope', '--pin', pin], remote);
    assert.equal(badJson.code, 2);
    const wrongToken = await runCli(['call', 'health', '--pin', pin], { ...remote, PORTHOLE_TOKEN: `ph_${'x'.repeat(43)}` });
    assert.equal(wrongToken.code, 1);
    assert.match(wrongToken.stderr, /\[AUTH_INVALID\]/);

    const local = await runCli(['call', 'health'], { PORTHOLE_HOME: home.home, PORTHOLE_AUTH_TOKEN: TOKEN });
    assert.equal(local.code, 0, local.stderr);
    assert.deepEqual(JSON.parse(local.stdout), { status: 'ok' });
  });

  test('examples/control-client.mjs (Node SDK) runs against the gateway', async () => {
    const r = await run(process.execPath, ['examples/control-client.mjs', '--pin', pin], { PORTHOLE_URL: url, PORTHOLE_TOKEN: TOKEN });
    assert.equal(r.code, 0, r.stderr);
    const steps = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { step: string; result?: unknown });
    assert.deepEqual(steps.map((s) => s.step), ['hello', 'health', 'status']);
    assert.deepEqual(steps[1]!.result, { status: 'ok' });
    const bad = await run(process.execPath, ['examples/control-client.mjs', '--pin', fingerprint], { PORTHOLE_URL: url, PORTHOLE_TOKEN: `ph_${'x'.repeat(43)}` });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /\[AUTH_INVALID\]/);
  });

  test('examples/control_client.py (Python websockets) runs against the gateway', { skip: skipUnless('python3-websockets', pythonWebsockets()) }, async () => {
    const r = await run(PYTHON, ['examples/control_client.py', '--fingerprint', fingerprint], { PORTHOLE_URL: url, PORTHOLE_TOKEN: TOKEN });
    assert.equal(r.code, 0, r.stderr);
    const steps = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { step: string; result?: unknown });
    assert.deepEqual(steps.map((s) => s.step), ['hello', 'health', 'status']);
    const mismatch = await run(PYTHON, ['examples/control_client.py', '--fingerprint', '00'.repeat(32)], { PORTHOLE_URL: url, PORTHOLE_TOKEN: TOKEN });
    assert.equal(mismatch.code, 1);
    assert.match(mismatch.stderr, /TLS_PIN_MISMATCH/);
  });
});
