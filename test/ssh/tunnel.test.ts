// The managed SSH tunnel (src/ssh/tunnel.ts) against a real OpenSSH server on loopback:
// readiness from ssh's own markers, the session that keeps TCP_NODELAY on, the preferred
// cipher, the fallback to -N for keys restricted to forwarding, reconnection, and the
// failures that must never be retried (unknown host key) — all with real processes.
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { preferredCiphers } from '../../src/ssh/command.js';
import { effectiveCiphers, findSsh } from '../../src/ssh/probe.js';
import { createSshTunnel, type SshTunnel, type SshTunnelOptions, type SshTunnelState } from '../../src/ssh/tunnel.js';
import { defer } from '../helpers/e2e.js';
import { skipUnless } from '../helpers/peers.js';
import { type HttpTestServer, startHttpServer, tempDir } from '../helpers/servers.js';
import { type Sshd, sshdProblem, startSshd } from '../helpers/sshd.js';

const skip = skipUnless('sshd', sshdProblem());

/** GET over a Unix socket (the forward's local end). */
function getVia(socketPath: string, path: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path, agent: false, headers: { host: '127.0.0.1' } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Resolves with the first state `test` accepts (bounded). */
function waitState(t: SshTunnel, test: (s: SshTunnelState) => boolean, timeoutMs = 20_000): Promise<SshTunnelState> {
  return new Promise((resolve, reject) => {
    if (test(t.status())) return resolve(t.status());
    const timer = setTimeout(() => {
      t.off('state', on);
      reject(new Error(`no matching state within ${timeoutMs} ms; last ${JSON.stringify(t.status())}`));
    }, timeoutMs);
    const on = (s: SshTunnelState) => {
      if (!test(s)) return;
      clearTimeout(timer);
      t.off('state', on);
      resolve(s);
    };
    t.on('state', on);
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('managed SSH tunnel against a real sshd', { skip }, () => {
  let sshd: Sshd;
  let app: HttpTestServer;
  before(async () => {
    sshd = await startSshd({ logLevel: 'DEBUG1' });
    app = await startHttpServer((req, res) => res.end(`hello ${req.url}`));
  });
  after(async () => {
    await app?.close();
    await sshd?.stop();
  });

  /** A tunnel to the test app through sshd, its local end a Unix socket; stopped after the test. */
  function tunnel(t: TestContext, extra: Partial<SshTunnelOptions> = {}) {
    const tmp = tempDir('porthole-sshfwd-');
    const socketPath = join(tmp.dir, 'fwd.sock');
    const tun = createSshTunnel({
      ssh: findSsh(process.env),
      target: sshd.alias,
      configFile: sshd.sshConfig,
      forward: { listen: { path: socketPath }, connectPort: app.port },
      env: process.env,
      backoff: { baseMs: 20, maxMs: 200, stableMs: 60_000 },
      ...extra,
    });
    defer(t, () => tmp.cleanup());
    defer(t, () => tun.stop());
    return { tun, socketPath };
  }

  it('comes online with a session, forwards requests, and prefers aes128-gcm', async (t) => {
    const ciphers = preferredCiphers(await effectiveCiphers(findSsh(process.env), sshd.alias, sshd.sshConfig, process.env));
    assert.ok(ciphers?.startsWith('aes128-gcm@openssh.com,'), String(ciphers));
    const { tun, socketPath } = tunnel(t, { ciphers });
    tun.start();
    await tun.whenOnline();
    const s = tun.status();
    assert.equal(s.state, 'online');
    assert.equal(s.state === 'online' && s.session, 'command', 'the remote command ran (its marker arrived)');
    const r = await getVia(socketPath, '/through-ssh');
    assert.equal(r.status, 200);
    assert.equal(r.text, 'hello /through-ssh');
    await sshd.waitForLog(/cipher: aes128-gcm@openssh\.com/);
  });

  it('stop() ends ssh (by PID) and reports stopped', async (t) => {
    const { tun } = tunnel(t);
    tun.start();
    await tun.whenOnline();
    const s = tun.status();
    const pid = s.state === 'online' ? s.pid : 0;
    assert.ok(pid > 0 && pidAlive(pid));
    await tun.stop();
    assert.equal(tun.status().state, 'stopped');
    assert.equal(pidAlive(pid), false, 'ssh has exited');
  });

  it('reconnects after the server drops the connection', async (t) => {
    const { tun, socketPath } = tunnel(t);
    tun.start();
    await tun.whenOnline();
    const first = tun.status();
    const states: string[] = [];
    tun.on('state', (s: SshTunnelState) => states.push(s.state));
    await sshd.dropSessions();
    await waitState(tun, (s) => s.state === 'online' && first.state === 'online' && s.pid !== first.pid);
    assert.ok(states.includes('waiting') || states.includes('connecting'), states.join(','));
    assert.equal((await getVia(socketPath, '/again')).text, 'hello /again');
  });

  it('falls back to -N when the key is restricted to forwarding (a forced command)', async (t) => {
    sshd.setKeyOptions('command="/bin/true",no-pty');
    defer(t, () => sshd.setKeyOptions(''));
    const { tun, socketPath } = tunnel(t);
    tun.start();
    await tun.whenOnline();
    const s = tun.status();
    assert.equal(s.state === 'online' && s.session, 'forward-only');
    assert.equal((await getVia(socketPath, '/restricted')).text, 'hello /restricted');
  });

  it('never retries an unknown host key (BatchMode, host key checking on)', async (t) => {
    const cfg = join(sshd.dir, 'ssh_config_no_known_hosts');
    writeFileSync(
      cfg,
      [`Host ${sshd.alias}`, '  HostName 127.0.0.1', `  Port ${sshd.port}`, `  User ${sshd.user}`, `  IdentityFile ${sshd.identity}`,
        '  IdentitiesOnly yes', `  UserKnownHostsFile ${join(sshd.dir, 'empty_known_hosts')}`, '  GlobalKnownHostsFile /dev/null', ''].join('\n'),
    );
    const { tun, socketPath } = tunnel(t, { configFile: cfg });
    const states: string[] = [];
    tun.on('state', (s: SshTunnelState) => states.push(s.state));
    tun.start();
    await assert.rejects(tun.whenOnline(), (e: { code?: string }) => e.code === 'SSH_HOST_KEY_UNVERIFIED');
    assert.deepEqual(states, ['connecting', 'failed']);
    assert.equal(existsSync(socketPath), false, 'no forward was opened');
  });

  it('reports a refused login as SSH_AUTH_FAILED and stops (never connected)', async (t) => {
    sshd.setKeyOptions('from="10.255.255.1"'); // our key, refused from 127.0.0.1
    defer(t, () => sshd.setKeyOptions(''));
    const { tun } = tunnel(t);
    tun.start();
    await assert.rejects(tun.whenOnline(), (e: { code?: string }) => e.code === 'SSH_AUTH_FAILED');
    assert.equal(tun.status().state, 'failed');
  });

  it('with retry off, an unreachable host fails at once (remote CLI mode)', async (t) => {
    const cfg = join(sshd.dir, 'ssh_config_closed');
    // Port 1 on loopback: nothing listens there, the connection is refused.
    writeFileSync(cfg, [`Host ${sshd.alias}`, '  HostName 127.0.0.1', '  Port 1', `  UserKnownHostsFile ${sshd.knownHosts}`, ''].join('\n'));
    const { tun } = tunnel(t, { configFile: cfg, retry: false });
    tun.start();
    await assert.rejects(tun.whenOnline(), (e: { code?: string }) => e.code === 'SSH_UNREACHABLE');
  });
});
