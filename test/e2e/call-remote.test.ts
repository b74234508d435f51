// End-to-end: remote mode with the control plane and TLS pinning. A desk runs `porthole
// serve` with `[gateway] tls = "self-signed"` (from its porthole.toml) and another without
// TLS; client homes reach them with `[remote] url/token_file/tls_pin`, PORTHOLE_URL +
// PORTHOLE_TOKEN, or `transport = "ssh"` through a real sshd on loopback. `porthole call`,
// `status` and `tunnel status` honour the pin (match → answers; mismatch → TLS_PIN_MISMATCH
// before the token leaves: an impostor TLS server records every byte it receives).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { createCertificate } from '../../src/tls/x509.js';
import { type Env, runCli, type Served, startCli, tempHome } from '../helpers/cli.js';
import { cliCode, defer } from '../helpers/e2e.js';
import { type EchoApp, startEchoApp } from '../helpers/echo-app.js';
import { skipUnless } from '../helpers/peers.js';
import { type Sshd, sshdProblem, startSshd } from '../helpers/sshd.js';

const TOKEN = `ph_${randomBytes(32).toString('base64url')}`;
const OTHER_PIN = `sha256/${Buffer.alloc(32, 7).toString('base64')}`;

let app: EchoApp;
let tlsDesk: { home: string; cleanup(): void };
let plainDesk: { home: string; cleanup(): void };
let tlsGateway: Served;
let plainGateway: Served;
/** The TLS desk's pins, as its listening event printed them. */
let spkiPin: string;
let fingerprint: string;

before(async () => {
  app = await startEchoApp();
  tlsDesk = tempHome();
  plainDesk = tempHome();
  // The TLS mode comes from the config file (gateway.tls), not a flag.
  writeFileSync(join(tlsDesk.home, 'porthole.toml'), 'version = 1\n[gateway]\ntls = "self-signed"\n');
  [tlsGateway, plainGateway] = await Promise.all([
    startCli(['serve', '--target', String(app.port), '--port', '0', '--json'], { PORTHOLE_HOME: tlsDesk.home, PORTHOLE_AUTH_TOKEN: TOKEN }),
    startCli(['serve', '--target', String(app.port), '--port', '0', '--json'], { PORTHOLE_HOME: plainDesk.home, PORTHOLE_AUTH_TOKEN: TOKEN }),
  ]);
  const tls = tlsGateway.event['tls'] as { pin: string; fingerprint256: string };
  spkiPin = tls.pin;
  fingerprint = tls.fingerprint256;
});
after(async () => {
  await Promise.all([tlsGateway?.stop(), plainGateway?.stop()]);
  tlsDesk?.cleanup();
  plainDesk?.cleanup();
  await app?.close();
});

/** A client home whose porthole.toml holds `remote` (the token goes in a 0600 file). */
function clientHome(t: TestContext, remote: string): { home: string; env: Env } {
  const h = tempHome();
  defer(t, () => h.cleanup());
  const tokenFile = join(h.home, 'desk-token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  writeFileSync(join(h.home, 'porthole.toml'), `version = 1\n[remote]\ntoken_file = "${tokenFile}"\n${remote}`);
  return { home: h.home, env: { PORTHOLE_HOME: h.home } };
}

function json(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout) as Record<string, unknown>;
}

describe('gateway TLS from the config file', () => {
  it('`[gateway] tls = "self-signed"` serves https and prints pins; `config check` shows the keys', async () => {
    assert.match(tlsGateway.event.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.match(spkiPin, /^sha256\/[A-Za-z0-9+/]{43}=$/);
    assert.equal(plainGateway.event['tls'], null);
    const check = await runCli(['config', 'check', '--json'], { PORTHOLE_HOME: tlsDesk.home });
    assert.equal(check.code, 0, check.stderr);
    const keys = json(check.stdout)['values'] as Record<string, { value: unknown; source: string }>;
    assert.deepEqual(keys['gateway.tls'], { value: 'self-signed', source: 'file' });
    assert.equal(keys['gateway.tls_cert']?.source, 'default');
  });
});

describe('remote mode with [remote] tls_pin (https)', () => {
  it('call, status and tunnel status work with a matching pin (SPKI or certificate fingerprint)', async (t) => {
    for (const pin of [spkiPin, fingerprint]) {
      const { env } = clientHome(t, `url = "${tlsGateway.event.url}"\ntls_pin = "${pin}"\n`);
      const call = await runCli(['call', 'health'], env);
      assert.equal(call.code, 0, call.stderr);
      assert.deepEqual(JSON.parse(call.stdout), { status: 'ok' });
      const status = await runCli(['status', '--json'], env);
      assert.equal(status.code, 0, status.stderr);
      assert.equal((json(status.stdout)['tls'] as { pin: string }).pin, spkiPin);
      const tunnel = await runCli(['tunnel', 'status', '--json'], env);
      assert.equal(tunnel.code, 0, tunnel.stderr);
    }
  });

  it('PORTHOLE_URL + PORTHOLE_TOKEN also use the configured pin; --pin overrides it', async (t) => {
    const { env } = clientHome(t, `tls_pin = "${OTHER_PIN}"\n`);
    const remote = { ...env, PORTHOLE_URL: tlsGateway.event.url, PORTHOLE_TOKEN: TOKEN };
    const refused = await runCli(['call', 'health'], remote);
    assert.equal(cliCode(refused.stderr), 'TLS_PIN_MISMATCH', refused.stderr);
    const ok = await runCli(['call', 'status', '--pin', spkiPin], remote);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(json(ok.stdout)['id'], json((await runCli(['status', '--json'], { PORTHOLE_HOME: tlsDesk.home })).stdout)['id']);
  });

  it('a mismatching pin fails with TLS_PIN_MISMATCH before the token is sent', async (t) => {
    // An impostor on loopback with its own self-signed certificate for 127.0.0.1.
    const cert = createCertificate({ commonName: 'impostor', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    const received: Buffer[] = [];
    const impostor: TlsServer = createTlsServer({ cert: cert.certPem, key: cert.keyPem }, (s) => {
      s.on('data', (d: Buffer) => received.push(d));
      s.on('error', () => {});
    });
    await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
    defer(t, () => new Promise<void>((resolve) => impostor.close(() => resolve())));
    const port = (impostor.address() as { port: number }).port;
    const { env } = clientHome(t, `url = "https://127.0.0.1:${port}"\ntls_pin = "${spkiPin}"\n`);
    for (const argv of [['status'], ['tunnel', 'status'], ['call', 'health']]) {
      const r = await runCli(argv, env);
      assert.equal(r.code, 1, `${argv.join(' ')}: ${r.stderr}`);
      assert.equal(cliCode(r.stderr), 'TLS_PIN_MISMATCH', r.stderr);
    }
    const seen = Buffer.concat(received).toString('latin1');
    assert.ok(!seen.includes(TOKEN), 'the token never reached the impostor');
    assert.ok(!/authorization/i.test(seen), 'no authenticated request reached the impostor');
    // The real gateway with the same pin works (the impostor was refused for its key, not for being self-signed).
    const real = clientHome(t, `url = "${tlsGateway.event.url}"\ntls_pin = "${spkiPin}"\n`);
    assert.equal((await runCli(['status'], real.env)).code, 0);
  });

  it('without a pin a self-signed gateway is refused; a pin on an http URL or a malformed pin is a config error', async (t) => {
    const unpinned = clientHome(t, `url = "${tlsGateway.event.url}"\n`);
    const r = await runCli(['status'], unpinned.env);
    assert.notEqual(r.code, 0, 'the self-signed certificate is not trusted without a pin');
    const http = clientHome(t, `url = "${plainGateway.event.url}"\ntls_pin = "${spkiPin}"\n`);
    for (const argv of [['status'], ['call', 'health']]) {
      const h = await runCli(argv, http.env);
      assert.equal(h.code, 2, h.stderr);
      assert.equal(cliCode(h.stderr), 'CONFIG_INVALID', h.stderr);
    }
    const bad = clientHome(t, `url = "${tlsGateway.event.url}"\ntls_pin = "sha1/nope"\n`);
    const b = await runCli(['status'], bad.env);
    assert.equal(b.code, 2, b.stderr);
    assert.equal(cliCode(b.stderr), 'CONFIG_INVALID');
    assert.match(b.stderr, /remote\.tls_pin/);
  });
});

describe('porthole call over [remote] transport = "ssh"', { skip: skipUnless('sshd', sshdProblem()) }, () => {
  let sshd: Sshd;
  before(async () => {
    sshd = await startSshd();
  });
  after(async () => {
    await sshd?.stop();
  });

  function sshHome(t: TestContext, extra: string): Env {
    const { env } = clientHome(t, `transport = "ssh"\nssh_target = "${sshd.alias}"\n${extra}`);
    return { ...env, PORTHOLE_SSH_CONFIG: sshd.sshConfig };
  }

  /** Resolves once no sshd session is left (the CLI closed its forward), bounded. */
  async function sessionsGone(): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (sshd.sessions().length > 0) {
      if (Date.now() > deadline) assert.fail(`sshd sessions still alive: ${sshd.sessions().join(', ')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('calls a plain gateway through the forward, and closes the forward afterwards', async (t) => {
    const env = sshHome(t, `url = "${plainGateway.event.url}"\n`);
    const r = await runCli(['call', 'health'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { status: 'ok' });
    const unknown = await runCli(['call', 'no.such.method'], env);
    assert.equal(unknown.code, 1);
    assert.equal(cliCode(unknown.stderr), 'CONTROL_UNKNOWN_METHOD');
    await sessionsGone();
  });

  it('calls a TLS gateway through the forward with tls_pin (match), and refuses a wrong pin', async (t) => {
    const env = sshHome(t, `url = "${tlsGateway.event.url}"\ntls_pin = "${spkiPin}"\n`);
    const call = await runCli(['call', 'status'], env);
    assert.equal(call.code, 0, call.stderr);
    assert.equal((json(call.stdout)['tls'] as { pin: string }).pin, spkiPin);
    const status = await runCli(['status', '--json'], env);
    assert.equal(status.code, 0, status.stderr);
    const wrong = sshHome(t, `url = "${tlsGateway.event.url}"\ntls_pin = "${OTHER_PIN}"\n`);
    for (const argv of [['call', 'health'], ['status']]) {
      const r = await runCli(argv, wrong);
      assert.equal(cliCode(r.stderr), 'TLS_PIN_MISMATCH', r.stderr);
    }
    await sessionsGone();
  });
});
