// End-to-end: `porthole ssh-tunnel` — the printed command, bad targets, and `--run`
// keeping a real ssh to a real sshd (loopback, its own host key and config) that forwards
// to a real `porthole serve`: online, reconnect after the server drops it, clean stop by
// signal, and giving up by itself on an unknown host key. Asserts on exit codes, `[CODE]`
// and JSON events, never on wording.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { after, before, describe, it, type TestContext } from 'node:test';
import { cleanEnv, type Env, runCli, type Served, startCli, tempHome } from '../helpers/cli.js';
import { cliCode, defer } from '../helpers/e2e.js';
import { type EchoApp, startEchoApp } from '../helpers/echo-app.js';
import { skipUnless } from '../helpers/peers.js';
import { fetchRaw } from '../helpers/servers.js';
import { type Sshd, sshdProblem, startSshd } from '../helpers/sshd.js';

const BIN = new URL('../../bin/porthole.js', import.meta.url).pathname;
const TOKEN = `ph_${randomBytes(32).toString('base64url')}`;

describe('porthole ssh-tunnel (printing)', () => {
  it('prints the copy-ready command on stdout: loopback bind, keep-alives, -- before the host', async (t) => {
    const h = tempHome();
    defer(t, () => h.cleanup());
    const r = await runCli(['ssh-tunnel', '--target', 'me@desk.example', '--local-port', '9001', '--json'], { PORTHOLE_HOME: h.home });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { argv: string[]; command: string; remotePort: number };
    assert.equal(out.remotePort, 7070, 'defaults to gateway.port');
    assert.deepEqual(out.argv.slice(-4), ['-L', '127.0.0.1:9001:127.0.0.1:7070', '--', 'me@desk.example']);
    assert.ok(out.argv.includes('ExitOnForwardFailure=yes') && out.argv.includes('-N'));
    const human = await runCli(['ssh-tunnel', '--target', 'me@desk.example'], { PORTHOLE_HOME: h.home });
    assert.equal(human.code, 0);
    assert.equal(human.stdout.trim(), out.command.replace('9001', '7070'), 'stdout holds only the command');
  });

  it('refuses targets that ssh would read as options (exit 2, SSH_TARGET_INVALID)', async (t) => {
    const h = tempHome();
    defer(t, () => h.cleanup());
    for (const target of ['-oProxyCommand=touch /tmp/porthole-pwned', '-p22', 'me@desk -R 1:x:1']) {
      const r = await runCli(['ssh-tunnel', `--target=${target}`], { PORTHOLE_HOME: h.home });
      assert.equal(r.code, 2, r.stderr);
      assert.equal(cliCode(r.stderr), 'SSH_TARGET_INVALID');
    }
  });

  it('--run without ssh on PATH: SSH_NOT_INSTALLED, exit 1', async (t) => {
    const h = tempHome();
    defer(t, () => h.cleanup());
    const r = await runCli(['ssh-tunnel', '--target', 'me@desk', '--run'], { PORTHOLE_HOME: h.home, PATH: '/nonexistent' });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(cliCode(r.stderr), 'SSH_NOT_INSTALLED');
  });
});

type Child = ChildProcessByStdio<null, Readable, Readable>;

/** `porthole ssh-tunnel --run --json …` and its JSON events, with bounded waits. */
function runTunnel(argv: string[], env: Env) {
  const proc = spawn(process.execPath, [BIN, 'ssh-tunnel', '--run', '--json', ...argv], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] }) as Child;
  const events: Record<string, unknown>[] = [];
  const watchers = new Set<() => void>();
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  createInterface({ input: proc.stdout }).on('line', (l) => {
    events.push(JSON.parse(l) as Record<string, unknown>);
    for (const w of watchers) w();
  });
  const exited = new Promise<number | null>((resolve) => proc.once('close', (c: number | null) => {
    for (const w of watchers) w();
    resolve(c);
  }));
  let ended = false;
  void exited.then(() => (ended = true));
  return {
    proc,
    events,
    exited,
    stderr: () => stderr,
    /** The first event from index `from` that `test` accepts. */
    waitFor(test: (e: Record<string, unknown>) => boolean, from = 0, ms = 30_000): Promise<Record<string, unknown>> {
      return new Promise((resolve, reject) => {
        const check = () => {
          const e = events.slice(from).find(test);
          if (e) done(e);
          else if (ended) done(undefined, 'exited');
        };
        const done = (e: Record<string, unknown> | undefined, why?: string) => {
          clearTimeout(timer);
          watchers.delete(check);
          if (e) resolve(e);
          else reject(new Error(`no matching event (${why}): ${JSON.stringify(events)}\n${stderr}`));
        };
        const timer = setTimeout(() => done(undefined, `${ms} ms`), ms);
        watchers.add(check);
        check();
      });
    },
    async stop(): Promise<number | null> {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const kill = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(kill);
      return code;
    },
  };
}

/** A port that was free a moment ago (ssh cannot bind port 0 for -L and tell us which). */
async function freshPort(): Promise<number> {
  const s = net.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('porthole ssh-tunnel --run against a real sshd and gateway', { skip: skipUnless('sshd', sshdProblem()) }, () => {
  let sshd: Sshd;
  let app: EchoApp;
  let desk: { home: string; cleanup(): void };
  let gateway: Served;
  before(async () => {
    sshd = await startSshd();
    app = await startEchoApp();
    desk = tempHome();
    gateway = await startCli(['serve', '--target', String(app.port), '--port', '0', '--json'], { PORTHOLE_HOME: desk.home, PORTHOLE_AUTH_TOKEN: TOKEN });
  });
  after(async () => {
    await gateway?.stop();
    desk?.cleanup();
    await app?.close();
    await sshd?.stop();
  });

  /** Starts the managed tunnel to the gateway; a port taken in between is retried (bounded). */
  async function online(t: TestContext, extra: string[] = []) {
    const h = tempHome();
    defer(t, () => h.cleanup());
    for (let i = 0; i < 3; i++) {
      const port = await freshPort();
      const run = runTunnel(
        ['--target', sshd.alias, '--ssh-config', sshd.sshConfig, '--remote-port', String(gateway.event.port), '--local-port', String(port), ...extra],
        { PORTHOLE_HOME: h.home },
      );
      defer(t, () => run.stop());
      const e = await run.waitFor((x) => x['state'] === 'online' || x['state'] === 'failed' || x['state'] === 'waiting');
      if (e['state'] === 'online') return { run, port, event: e };
      const code = (e['error'] ?? e['lastError']) as { code?: string } | undefined;
      if (code?.code !== 'SSH_FORWARD_FAILED') throw new Error(`not online: ${JSON.stringify(e)}\n${run.stderr()}`);
      await run.stop();
    }
    throw new Error('no free local port in 3 tries');
  }

  it('forwards 127.0.0.1:N to the gateway through sshd, with a session and no secrets in argv', async (t) => {
    const { run, port, event } = await online(t);
    assert.equal(event['session'], 'command');
    assert.equal(event['url'], `http://127.0.0.1:${port}`);
    const health = await fetchRaw({ port, path: '/_porthole/health' });
    assert.equal(health.status, 200);
    assert.deepEqual(JSON.parse(health.text), { status: 'ok' });
    const status = await fetchRaw({ port, path: '/_porthole/api/status', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(status.status, 200, status.text);
    // The ssh porthole runs: loopback bind, BatchMode, "--" before the host; no host-key bypass.
    const pid = event['pid'] as number;
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    assert.ok(argv.includes(`127.0.0.1:${port}:127.0.0.1:${gateway.event.port}`), argv.join(' '));
    assert.ok(argv.includes('BatchMode=yes'));
    assert.equal(argv[argv.indexOf('--') + 1], sshd.alias);
    assert.ok(!argv.some((a) => /StrictHostKeyChecking|UserKnownHostsFile/.test(a)));
    // SIGTERM: exit 0, a "stopped" event, and ssh is gone.
    assert.equal(await run.stop(), 0, run.stderr());
    assert.equal(run.events.at(-1)?.['state'], 'stopped');
    assert.equal(pidAlive(pid), false);
  });

  it('reconnects after the SSH server drops the connection', async (t) => {
    const { run, port, event } = await online(t);
    const from = run.events.length;
    await sshd.dropSessions();
    const again = await run.waitFor((e) => e['state'] === 'online', from);
    assert.notEqual(again['pid'], event['pid']);
    assert.ok(run.events.slice(from).some((e) => e['state'] === 'waiting' || e['state'] === 'connecting'));
    assert.equal((await fetchRaw({ port, path: '/_porthole/health' })).status, 200);
  });

  it('gives up by itself on an unknown host key: exit 1, SSH_HOST_KEY_UNVERIFIED', async (t) => {
    const h = tempHome();
    defer(t, () => h.cleanup());
    const cfg = join(h.home, 'ssh_config');
    writeFileSync(
      cfg,
      readFileSync(sshd.sshConfig, 'utf8').replace(/UserKnownHostsFile .*/, `UserKnownHostsFile ${join(h.home, 'no_known_hosts')}`),
    );
    const run = runTunnel(['--target', sshd.alias, '--ssh-config', cfg, '--local-port', String(await freshPort())], { PORTHOLE_HOME: h.home });
    defer(t, () => run.stop());
    const e = await run.waitFor((x) => x['state'] === 'failed');
    assert.equal((e['error'] as { code: string }).code, 'SSH_HOST_KEY_UNVERIFIED');
    assert.equal(await run.exited, 1);
    assert.equal(cliCode(run.stderr()), 'SSH_HOST_KEY_UNVERIFIED');
  });
});
