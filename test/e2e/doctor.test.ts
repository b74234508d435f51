// `porthole doctor` as a real process against real state: a fresh home, a running gateway in
// front of a live app behind a real relay, and the usual mistakes, each reported with the
// check that catches it and exit code 1.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli, type Served, startCli } from '../helpers/cli.js';
import { createCertificate } from '../../src/tls/x509.js';
import { DOMAIN, tunnelFixture } from '../helpers/tunnel.js';

type Check = { id: string; status: string; summary: string; fix?: string };

const fx = tunnelFixture();
const home = fx.home;

async function doctor(dir: string, env: Record<string, string> = {}): Promise<{ code: number; ok: boolean; checks: Check[]; text: string }> {
  const json = await runCli(['doctor', '--json'], { PORTHOLE_HOME: dir, ...env });
  const text = await runCli(['doctor'], { PORTHOLE_HOME: dir, ...env });
  assert.equal(json.code, text.code, 'the same verdict with and without --json');
  const parsed = JSON.parse(json.stdout) as { ok: boolean; checks: Check[] };
  return { code: json.code ?? -1, ok: parsed.ok, checks: parsed.checks, text: text.stdout };
}
const find = (checks: Check[], id: string) => checks.filter((c) => c.id === id);

test('a fresh home: nothing fails; no token yet and no gateway are information, not errors', async () => {
  const r = await doctor(home());
  assert.equal(r.code, 0);
  assert.equal(r.ok, true);
  assert.equal(find(r.checks, 'token')[0]?.status, 'info');
  assert.equal(find(r.checks, 'gateway')[0]?.summary, 'not running');
  assert.match(r.text, /all good|no failures/);
});

describe('a running gateway with a target and a relay', () => {
  let relay: Served;
  let desk: Served;
  let deskHome: string;
  before(async () => {
    relay = await startCli(
      ['relay', '--domain', DOMAIN, '--listen', '127.0.0.1:0', '--cert', fx.pki.relayCert, '--key', fx.pki.relayKey, '--store', home(), '--json'],
      { PORTHOLE_HOME: home() },
    );
    deskHome = home();
    const c = fx.pki.desk('doc');
    writeFileSync(
      join(deskHome, 'porthole.toml'),
      ['[gateway]', `target = "${fx.app.url}"`, '', '[tunnel]', `relay = "${DOMAIN}:${relay.event.port}"`, 'connect_address = "127.0.0.1"', `ca = "${fx.pki.caFile}"`, `tls_cert = "${c.cert}"`, `tls_key = "${c.key}"`, ''].join('\n'),
    );
    desk = await startCli(['serve', '--port', '0', '--json'], { PORTHOLE_HOME: deskHome });
  });
  after(async () => {
    await desk.stop();
    await relay.stop();
  });

  test('every check passes: token, gateway, target, certificate, relay handshake', async () => {
    const r = await doctor(deskHome);
    assert.equal(r.code, 0, r.text);
    assert.equal(find(r.checks, 'token')[0]?.status, 'ok');
    assert.match(find(r.checks, 'gateway')[0]?.summary ?? '', /^running at http:\/\/127\.0\.0\.1:\d+/);
    assert.equal(find(r.checks, 'target')[0]?.status, 'ok');
    assert.equal(find(r.checks, 'certificate')[0]?.status, 'ok');
    const relayCheck = find(r.checks, 'relay')[0];
    assert.equal(relayCheck?.status, 'ok', relayCheck?.summary);
    assert.match(relayCheck?.summary ?? '', /reachable/);
    assert.equal(find(r.checks, 'port').length, 0, 'no port check while the gateway holds it');
  });

  test('the relay checked with the wrong CA fails and says where the CA goes', async () => {
    const other = createCertificate({ commonName: 'another CA', isCA: true });
    const caFile = join(deskHome, 'wrong-ca.pem');
    writeFileSync(caFile, other.certPem);
    const dir = home();
    writeFileSync(join(dir, 'porthole.toml'), ['[tunnel]', `relay = "${DOMAIN}:${relay.event.port}"`, 'connect_address = "127.0.0.1"', `ca = "${caFile}"`, ''].join('\n'));
    const bad = await doctor(dir);
    assert.equal(bad.code, 1);
    const check = find(bad.checks, 'relay')[0];
    assert.equal(check?.status, 'fail');
    assert.match(check?.fix ?? '', /\[tunnel\] ca/);
  });
});

describe('the usual mistakes', () => {
  test('a world-writable home and an open secrets directory fail', async () => {
    const dir = home();
    mkdirSync(join(dir, 'secrets'), { mode: 0o755 });
    chmodSync(join(dir, 'secrets'), 0o755);
    chmodSync(dir, 0o777);
    const r = await doctor(dir);
    assert.equal(r.code, 1);
    const home_ = find(r.checks, 'home');
    assert.ok(home_.some((c) => c.status === 'fail' && /writable by others/.test(c.summary)));
    assert.ok(home_.some((c) => c.status === 'fail' && /secrets is open to others/.test(c.summary) && c.fix === `chmod 700 ${join(dir, 'secrets')}`));
    chmodSync(dir, 0o700);
  });

  test('a broken porthole.toml fails the config check (and the rest still runs)', async () => {
    const dir = home();
    writeFileSync(join(dir, 'porthole.toml'), '[gateway]\nno_such_key = 1\n');
    const r = await doctor(dir);
    assert.equal(r.code, 1);
    assert.equal(find(r.checks, 'config')[0]?.status, 'fail');
    assert.match(find(r.checks, 'config')[0]?.summary ?? '', /no_such_key/);
    assert.ok(find(r.checks, 'gateway').length === 1);
  });

  test('the port taken by another program fails; a target that does not listen warns', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    const free: Server = createServer();
    await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
    const deadPort = (free.address() as { port: number }).port;
    await new Promise((resolve) => free.close(resolve));
    try {
      const dir = home();
      writeFileSync(join(dir, 'porthole.toml'), `[gateway]\nport = ${port}\ntarget = "http://127.0.0.1:${deadPort}"\n`);
      const r = await doctor(dir);
      assert.equal(r.code, 1);
      assert.match(find(r.checks, 'port')[0]?.summary ?? '', /in use by another program/);
      const target = find(r.checks, 'target')[0];
      assert.equal(target?.status, 'warn');
      assert.match(target?.summary ?? '', /ECONNREFUSED/);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  test('an expired tunnel certificate fails, one expiring soon warns', async () => {
    const dir = home();
    const expired = createCertificate({ commonName: `old.${DOMAIN}`, dnsNames: [`old.${DOMAIN}`], days: 1, now: new Date(Date.now() - 10 * 86_400_000) });
    writeFileSync(join(dir, 'old.pem'), expired.certPem);
    writeFileSync(join(dir, 'old-key.pem'), expired.keyPem, { mode: 0o600 });
    writeFileSync(join(dir, 'porthole.toml'), `[tunnel]\ntls_cert = "${join(dir, 'old.pem')}"\ntls_key = "${join(dir, 'old-key.pem')}"\n`);
    const r = await doctor(dir);
    assert.equal(r.code, 1);
    assert.match(find(r.checks, 'certificate')[0]?.summary ?? '', /expired/);

    const soon = createCertificate({ commonName: `soon.${DOMAIN}`, dnsNames: [`soon.${DOMAIN}`], days: 5 });
    writeFileSync(join(dir, 'soon.pem'), soon.certPem);
    writeFileSync(join(dir, 'soon-key.pem'), soon.keyPem, { mode: 0o600 });
    writeFileSync(join(dir, 'porthole.toml'), `[tunnel]\ntls_cert = "${join(dir, 'soon.pem')}"\ntls_key = "${join(dir, 'soon-key.pem')}"\n`);
    const w = await doctor(dir);
    assert.equal(w.code, 0);
    assert.equal(find(w.checks, 'certificate')[0]?.status, 'warn');
  });

  test('a token that was issued and is now missing fails, with the way out', async () => {
    const dir = home();
    assert.equal((await runCli(['init'], { PORTHOLE_HOME: dir, PORTHOLE_SECRET_STORE: 'file' })).code, 0);
    const { rmSync } = await import('node:fs');
    rmSync(join(dir, 'secrets', 'token'));
    const r = await doctor(dir, { PORTHOLE_SECRET_STORE: 'file' });
    assert.equal(r.code, 1);
    assert.match(find(r.checks, 'token')[0]?.summary ?? '', /missing/);
  });
});
