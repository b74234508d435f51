// End-to-end: remote CLI mode. A client home whose [remote] says transport = "ssh" runs
// `porthole status` / `porthole tunnel …` against a desk's `porthole serve` through a real
// sshd on loopback, opening and closing the forward by itself; PORTHOLE_URL +
// PORTHOLE_TOKEN talk HTTP directly. The token never reaches ssh's argv or environment
// (a wrapper `ssh` first on PATH records both, then execs the real one).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { type Env, runCli, type Served, startCli, tempHome } from '../helpers/cli.js';
import { cliCode, defer } from '../helpers/e2e.js';
import { type EchoApp, startEchoApp } from '../helpers/echo-app.js';
import { findExecutable, skipUnless } from '../helpers/peers.js';
import { type Sshd, sshdProblem, startSshd } from '../helpers/sshd.js';

const TOKEN = `ph_${randomBytes(32).toString('base64url')}`;

let app: EchoApp;
let desk: { home: string; cleanup(): void };
let gateway: Served;
before(async () => {
  app = await startEchoApp();
  desk = tempHome();
  gateway = await startCli(['serve', '--target', String(app.port), '--port', '0', '--json'], { PORTHOLE_HOME: desk.home, PORTHOLE_AUTH_TOKEN: TOKEN });
});
after(async () => {
  await gateway?.stop();
  desk?.cleanup();
  await app?.close();
});

function client(t: TestContext): string {
  const h = tempHome();
  defer(t, () => h.cleanup());
  return h.home;
}

/** The desk's own view over its Unix socket, to compare with the remote one. */
async function localStatus(): Promise<Record<string, unknown>> {
  const r = await runCli(['status', '--json'], { PORTHOLE_HOME: desk.home });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

describe('remote mode over HTTP (PORTHOLE_URL + PORTHOLE_TOKEN)', () => {
  it('`status --json` answers with the desk\'s status', async (t) => {
    const env: Env = { PORTHOLE_HOME: client(t), PORTHOLE_URL: `http://127.0.0.1:${gateway.event.port}`, PORTHOLE_TOKEN: TOKEN };
    const r = await runCli(['status', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    const remote = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(remote['id'], (await localStatus())['id']);
    const human = await runCli(['status'], env);
    assert.equal(human.code, 0, human.stderr);
    assert.ok(human.stdout.includes(String(remote['id'])));
  });

  it('`tunnel status` and `tunnel stop` use the HTTP API (same handlers as the socket)', async (t) => {
    const env: Env = { PORTHOLE_HOME: client(t), PORTHOLE_URL: `http://127.0.0.1:${gateway.event.port}`, PORTHOLE_TOKEN: TOKEN };
    const s = await runCli(['tunnel', 'status', '--json'], env);
    assert.equal(s.code, 0, s.stderr);
    assert.equal((JSON.parse(s.stdout) as { state: { state: string } }).state.state, 'stopped');
    const stop = await runCli(['tunnel', 'stop', '--json'], env);
    assert.equal(stop.code, 0, stop.stderr);
    const start = await runCli(['tunnel', 'start'], env);
    assert.equal(start.code, 1, start.stderr);
    assert.equal(cliCode(start.stderr), 'CONSENT_REQUIRED', 'the POST reached the desk\'s tunnel handler');
    const secret = await runCli(['tunnel', 'secret', 'set'], env);
    assert.equal(cliCode(secret.stderr), 'INVALID_ARGUMENT', 'the registration secret belongs on the desk');
  });

  it('a wrong token is the desk\'s AUTH_INVALID (exit 1); no answer is REMOTE_UNREACHABLE (exit 3)', async (t) => {
    const home = client(t);
    const wrong = await runCli(['status'], { PORTHOLE_HOME: home, PORTHOLE_URL: `http://127.0.0.1:${gateway.event.port}`, PORTHOLE_TOKEN: `ph_${randomBytes(32).toString('base64url')}` });
    assert.equal(wrong.code, 1, wrong.stderr);
    assert.equal(cliCode(wrong.stderr), 'AUTH_INVALID');
    const none = await runCli(['status'], { PORTHOLE_HOME: home, PORTHOLE_URL: 'http://127.0.0.1:1', PORTHOLE_TOKEN: TOKEN });
    assert.equal(none.code, 3, none.stderr);
    assert.equal(cliCode(none.stderr), 'REMOTE_UNREACHABLE');
  });

  it('needs a token, and refuses a token file others can read', async (t) => {
    const home = client(t);
    const missing = await runCli(['status'], { PORTHOLE_HOME: home, PORTHOLE_URL: `http://127.0.0.1:${gateway.event.port}` });
    assert.equal(cliCode(missing.stderr), 'TOKEN_MISSING');
    const file = join(home, 'remote-token');
    writeFileSync(file, `${TOKEN}\n`, { mode: 0o644 });
    chmodSync(file, 0o644);
    writeFileSync(join(home, 'porthole.toml'), `version = 1\n[remote]\nurl = "http://127.0.0.1:${gateway.event.port}"\ntoken_file = "${file}"\n`);
    const insecure = await runCli(['status'], { PORTHOLE_HOME: home });
    assert.equal(cliCode(insecure.stderr), 'SECRET_FILE_INSECURE', insecure.stderr);
    assert.ok(!insecure.stderr.includes(TOKEN));
    chmodSync(file, 0o600);
    const ok = await runCli(['status', '--json'], { PORTHOLE_HOME: home });
    assert.equal(ok.code, 0, ok.stderr);
  });
});

describe('remote mode over SSH ([remote] transport = "ssh")', { skip: skipUnless('sshd', sshdProblem()) }, () => {
  let sshd: Sshd;
  before(async () => {
    sshd = await startSshd();
  });
  after(async () => {
    await sshd?.stop();
  });

  /** A client home configured for the desk over SSH, and a PATH whose `ssh` records its argv and env. */
  function sshClient(t: TestContext) {
    const home = client(t);
    const tokenFile = join(home, 'remote-token');
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    writeFileSync(
      join(home, 'porthole.toml'),
      `version = 1\n[remote]\ntransport = "ssh"\nssh_target = "${sshd.alias}"\nurl = "http://127.0.0.1:${gateway.event.port}"\ntoken_file = "${tokenFile}"\n`,
    );
    const bin = join(home, 'bin');
    mkdirSync(bin);
    const record = join(home, 'ssh-calls.log');
    writeFileSync(
      join(bin, 'ssh'),
      `#!/bin/sh\nprintf '%s\\n' "ARGV $*" >> '${record}'\nenv >> '${record}'\nexec '${findExecutable('ssh')}' "$@"\n`,
      { mode: 0o755 },
    );
    const env: Env = { PORTHOLE_HOME: home, PORTHOLE_SSH_CONFIG: sshd.sshConfig, PATH: `${bin}:${process.env['PATH']}` };
    return { home, env, record };
  }

  it('`status --json` opens the forward, asks the desk, and closes it', async (t) => {
    const { env, record } = sshClient(t);
    const r = await runCli(['status', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as Record<string, unknown>)['id'], (await localStatus())['id']);
    const calls = readFileSync(record, 'utf8');
    assert.ok(calls.includes('BatchMode=yes') && calls.includes(`-- ${sshd.alias}`), calls);
    assert.ok(!calls.includes(TOKEN), 'the token is in neither argv nor environment of ssh');
    assert.ok(!/^PORTHOLE_/m.test(calls), 'porthole variables are not passed to ssh');
  });

  it('`tunnel status` works over SSH too; the desk refusing a wrong token keeps its code', async (t) => {
    const { env } = sshClient(t);
    const s = await runCli(['tunnel', 'status', '--json'], env);
    assert.equal(s.code, 0, s.stderr);
    const wrong = await runCli(['status'], { ...env, PORTHOLE_TOKEN: `ph_${randomBytes(32).toString('base64url')}` });
    assert.equal(cliCode(wrong.stderr), 'AUTH_INVALID', wrong.stderr);
  });

  it('an unknown host key fails the command (SSH_HOST_KEY_UNVERIFIED) without retrying', async (t) => {
    const { env, home } = sshClient(t);
    const cfg = join(home, 'ssh_config');
    writeFileSync(cfg, readFileSync(sshd.sshConfig, 'utf8').replace(/UserKnownHostsFile .*/, `UserKnownHostsFile ${join(home, 'none')}`));
    const r = await runCli(['status'], { ...env, PORTHOLE_SSH_CONFIG: cfg });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(cliCode(r.stderr), 'SSH_HOST_KEY_UNVERIFIED');
  });
});
