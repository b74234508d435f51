// The desk's certificate by ACME, end to end: `porthole relay` (with its plain-HTTP
// listener) and `porthole serve` as real processes, pebble as the CA. Pebble validates
// HTTP-01 by fetching http://<name>:<httpPort>/.well-known/acme-challenge/<token>, its DNS
// (pebble-challtestsrv) answering 127.0.0.1: that port is the relay's --http-listen, which
// carries the request through the tunnel to the desk.
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli, type Served, startCli } from '../helpers/cli.js';
import { freePorts, type Pebble, pebbleProblem, startPebble } from '../helpers/pebble.js';
import { skipUnless } from '../helpers/peers.js';
import { DOMAIN, tunnelFixture, visit } from '../helpers/tunnel.js';

const fx = tunnelFixture();
const home = fx.home;

const online = (e: Record<string, unknown>) => e['event'] === 'tunnel' && e['state'] === 'online';

function deskToml(dir: string, relayPort: number, name: string, acme: string[]): void {
  writeFileSync(
    join(dir, 'porthole.toml'),
    ['[tunnel]', `relay = "${DOMAIN}:${relayPort}"`, 'connect_address = "127.0.0.1"', `subdomain = "${name}"`, `ca = "${fx.pki.caFile}"`, ...acme, ''].join('\n'),
  );
}

async function tunnelStatus(dir: string): Promise<{ state: { state: string }; certificate?: Record<string, string> }> {
  const r = await runCli(['tunnel', 'status', '--json'], { PORTHOLE_HOME: dir });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** Polls `tunnel status` until the certificate reaches `state` (bounded). */
async function waitForCertificate(dir: string, state: string, timeoutMs = 60_000): Promise<Record<string, string>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const s = await tunnelStatus(dir);
    if (s.certificate?.['state'] === state) return s.certificate;
    if (Date.now() > until) assert.fail(`certificate never reached ${state}: ${JSON.stringify(s.certificate)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function auditEvents(dir: string): Record<string, unknown>[] {
  return readFileSync(join(dir, 'audit.log'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('a desk that gets its certificate by ACME through the relay', { skip: skipUnless('pebble', pebbleProblem()) }, () => {
  let relay: Served;
  let pebble: Pebble;
  let deskHome: string;
  let desk: Served;
  let token: string;
  const name = 'acmedesk';
  const host = `${name}.${DOMAIN}`;

  before(async () => {
    relay = await startCli(
      ['relay', '--domain', DOMAIN, '--listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', '--cert', fx.pki.relayCert, '--key', fx.pki.relayKey, '--store', home(), '--json'],
      { PORTHOLE_HOME: home() },
    );
    pebble = await startPebble({ httpPort: relay.event['httpPort'] as number });
    deskHome = home();
    const acmeCa = join(deskHome, 'pebble-ca.pem');
    writeFileSync(acmeCa, pebble.caPem);
    deskToml(deskHome, relay.event.port, name, ['acme = true', `acme_directory = "${pebble.directoryUrl}"`, `acme_ca = "${acmeCa}"`, 'acme_email = "ops@example.test"']);
    desk = await startCli(['serve', '--target', fx.app.url, '--port', '0', '--json', '--no-loopback-exempt'], { PORTHOLE_HOME: deskHome });
    token = desk.event.generatedToken as string;
  });
  after(async () => {
    await desk?.stop();
    await relay?.stop();
    await pebble?.stop();
  });

  test('the tunnel comes online, the desk obtains a certificate, and visitors reach it with the CA root', async () => {
    const from = desk.lines.length;
    const ok = await runCli(['tunnel', 'start', '--accept-risk', '--json'], { PORTHOLE_HOME: deskHome });
    assert.equal(ok.code, 0, ok.stderr);
    await desk.waitForEvent(online, 20_000, from);
    const cert = await waitForCertificate(deskHome, 'valid');
    // `serve --json` announced it too.
    const line = await desk.waitForEvent((e) => e['event'] === 'tunnel-certificate' && e['state'] === 'valid', 10_000, from);
    assert.equal(line['name'], host);
    assert.equal(cert['source'], 'acme');
    assert.equal(cert['name'], host);
    assert.ok(Date.parse(cert['notAfter'] ?? '') > Date.now());

    const root = await pebble.rootPem();
    const anonymous = await visit(relay.event.port, name, root, '/hello');
    assert.equal(anonymous.status, 401);
    const r = await visit(relay.event.port, name, root, '/hello', { authorization: `Bearer ${token}` });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body.toString()).headers['x-porthole-ingress'], 'tunnel');
    // The test CA that signed the relay's certificate does not vouch for the desk: pebble does.
    await assert.rejects(visit(relay.event.port, name, fx.pki.caPem, '/hello'));
  });

  test('keys are private files in acme/; the audit log records the issuance without secrets', () => {
    const dir = join(deskHome, 'acme');
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(join(dir, 'account.key')).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, `${host}.key`)).mode & 0o777, 0o600);
    assert.match(readFileSync(join(dir, `${host}.crt`), 'utf8'), /^-----BEGIN CERTIFICATE-----/);
    const issued = auditEvents(deskHome).filter((e) => e['event'] === 'acme issued');
    assert.equal(issued.length, 1);
    assert.equal(issued[0]?.['name'], host);
    const log = readFileSync(join(deskHome, 'audit.log'), 'utf8');
    assert.doesNotMatch(log, /PRIVATE KEY/);
  });

  test('a challenge path with an unknown token is the gateway\'s, credential required', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port: relay.event['httpPort'] as number, path: '/.well-known/acme-challenge/not-a-token-of-ours', headers: { host }, agent: false },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 401);
  });

  test('after a restart the stored certificate is served again, no new order', async () => {
    const crt = readFileSync(join(deskHome, 'acme', `${host}.crt`), 'utf8');
    await desk.stop();
    desk = await startCli(['serve', '--target', fx.app.url, '--port', '0', '--json', '--no-loopback-exempt'], { PORTHOLE_HOME: deskHome });
    const from = desk.lines.length;
    const ok = await runCli(['tunnel', 'start', '--json'], { PORTHOLE_HOME: deskHome });
    assert.equal(ok.code, 0, ok.stderr);
    await desk.waitForEvent(online, 20_000, from);
    await waitForCertificate(deskHome, 'valid', 10_000);
    const r = await visit(relay.event.port, name, await pebble.rootPem(), '/again', { authorization: `Bearer ${token}` });
    assert.equal(r.status, 200);
    assert.equal(readFileSync(join(deskHome, 'acme', `${host}.crt`), 'utf8'), crt);
    assert.equal(auditEvents(deskHome).filter((e) => e['event'] === 'acme issued').length, 1);
  });
});

describe('ACME misconfigured or off', () => {
  test('an unreachable ACME server: the certificate is "failed", retried, and the local API keeps serving', async () => {
    const relay = await startCli(
      ['relay', '--domain', DOMAIN, '--listen', '127.0.0.1:0', '--cert', fx.pki.relayCert, '--key', fx.pki.relayKey, '--store', home(), '--json'],
      { PORTHOLE_HOME: home() },
    );
    const dir = home();
    // Port 9 on loopback (discard): nothing listens there in the test environment.
    deskToml(dir, relay.event.port, 'acmefail', ['acme = true', 'acme_directory = "https://127.0.0.1:9/dir"']);
    const desk = await startCli(['serve', '--target', fx.app.url, '--port', '0', '--json', '--no-loopback-exempt'], { PORTHOLE_HOME: dir });
    try {
      const ok = await runCli(['tunnel', 'start', '--accept-risk'], { PORTHOLE_HOME: dir });
      assert.equal(ok.code, 0, ok.stderr);
      const cert = await waitForCertificate(dir, 'failed', 30_000);
      assert.match(cert['error'] ?? '', /ACME|directory|ECONNREFUSED/i);
      const failed = auditEvents(dir).filter((e) => e['event'] === 'acme failed');
      assert.ok(failed.length >= 1);
      assert.equal(failed[0]?.['retry_in_s'], 60);
      const local = await fetch(`${desk.event.url}/_porthole/health`);
      assert.equal(local.status, 200);
      const text = await runCli(['tunnel', 'status'], { PORTHOLE_HOME: dir });
      assert.match(text.stdout, /cert +ACME, failed/);
    } finally {
      await desk.stop();
      await relay.stop();
    }
  });

  test('neither files nor ACME: `tunnel start` says how to get a certificate', async () => {
    const dir = home();
    deskToml(dir, 4433, 'nocert', []);
    const desk = await startCli(['serve', '--target', fx.app.url, '--port', '0', '--json'], { PORTHOLE_HOME: dir });
    try {
      const r = await runCli(['tunnel', 'start', '--accept-risk'], { PORTHOLE_HOME: dir });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /tls_cert and tls_key/);
      assert.match(r.stderr, /acme = true/);
    } finally {
      await desk.stop();
    }
  });

  test('a certificate file whose key does not match is refused at `tunnel start`', async () => {
    const dir = home();
    const a = fx.pki.desk('mismatch');
    const b = fx.pki.desk('other');
    deskToml(dir, 4433, 'mismatch', [`tls_cert = "${a.cert}"`, `tls_key = "${b.key}"`]);
    const desk = await startCli(['serve', '--target', fx.app.url, '--port', '0', '--json'], { PORTHOLE_HOME: dir });
    try {
      const r = await runCli(['tunnel', 'start', '--accept-risk'], { PORTHOLE_HOME: dir });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /does not belong to the certificate/);
    } finally {
      await desk.stop();
    }
  });
});

describe('a relay that gets its own certificate by ACME', { skip: skipUnless('pebble', pebbleProblem()) }, () => {
  let pebble: Pebble;
  let relay: Served;
  let relayHome: string;
  before(async () => {
    // The relay starts its order at once, so pebble must know the HTTP-01 port first.
    const [httpPort] = (await freePorts(1)) as [number];
    pebble = await startPebble({ httpPort });
    relayHome = home();
    const acmeCa = join(relayHome, 'pebble-ca.pem');
    writeFileSync(acmeCa, pebble.caPem);
    relay = await startCli(
      ['relay', '--domain', DOMAIN, '--listen', '127.0.0.1:0', '--http-listen', `127.0.0.1:${httpPort}`, '--acme', '--acme-directory', pebble.directoryUrl, '--acme-ca', acmeCa, '--store', home(), '--json'],
      { PORTHOLE_HOME: relayHome },
    );
  });
  after(async () => {
    await relay?.stop();
    await pebble?.stop();
  });

  test('the certificate arrives, and a desk trusting only the CA root registers through it', async () => {
    const cert = await relay.waitForEvent((e) => e['event'] === 'certificate', 60_000);
    assert.equal(cert['name'], DOMAIN);
    assert.equal(statSync(join(relayHome, 'acme', `${DOMAIN}.key`)).mode & 0o777, 0o600);
    const deskHome = home();
    const rootFile = join(deskHome, 'pebble-root.pem');
    writeFileSync(rootFile, await pebble.rootPem());
    const desk = fx.pki.desk('viaacme');
    writeFileSync(
      join(deskHome, 'porthole.toml'),
      ['[tunnel]', `relay = "${DOMAIN}:${relay.event.port}"`, 'connect_address = "127.0.0.1"', 'subdomain = "viaacme"', `ca = "${rootFile}"`, `tls_cert = "${desk.cert}"`, `tls_key = "${desk.key}"`, ''].join('\n'),
    );
    const served = await startCli(['serve', '--target', fx.app.url, '--port', '0', '--json', '--no-loopback-exempt'], { PORTHOLE_HOME: deskHome });
    try {
      const from = served.lines.length;
      const ok = await runCli(['tunnel', 'start', '--accept-risk'], { PORTHOLE_HOME: deskHome });
      assert.equal(ok.code, 0, ok.stderr);
      await served.waitForEvent(online, 20_000, from);
      const r = await visit(relay.event.port, 'viaacme', fx.pki.caPem, '/hi', { authorization: `Bearer ${served.event.generatedToken as string}` });
      assert.equal(r.status, 200);
    } finally {
      await served.stop();
    }
  });
});

describe('relay --acme refuses what it cannot do', () => {
  const refused = async (args: string[], pattern: RegExp) => {
    const r = await runCli(['relay', '--domain', DOMAIN, '--listen', '127.0.0.1:0', ...args], { PORTHOLE_HOME: home() });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, pattern);
  };
  test('terminate mode, a missing --http-listen, --cert with --acme, an http directory, --acme-email alone', async () => {
    await refused(['--acme', '--http-listen', '127.0.0.1:0', '--mode', 'terminate'], /wildcard/);
    await refused(['--acme'], /--http-listen/);
    await refused(['--acme', '--http-listen', '127.0.0.1:0', '--cert', fx.pki.relayCert, '--key', fx.pki.relayKey], /leave out --cert/);
    await refused(['--acme', '--http-listen', '127.0.0.1:0', '--acme-directory', 'http://127.0.0.1:1/dir'], /https/);
    await refused(['--cert', fx.pki.relayCert, '--key', fx.pki.relayKey, '--acme-email', 'ops@example.test'], /needs --acme/);
  });
});
