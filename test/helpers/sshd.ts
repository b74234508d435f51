// A real OpenSSH server on loopback for the SSH tests (Debian's openssh-server). The test
// listens on 127.0.0.1 port 0 itself and hands each accepted connection to `sshd -i`
// (inetd mode), so there is no "find a free port, then bind it" race and every session
// is a child whose PID we know. sshd gets its own host key, config and authorized key;
// the client gets its own ssh config (Host alias, identity, known_hosts pre-seeded with
// that host key): host key checking stays on, as in real use.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { findExecutable } from './peers.js';

export const SSHD = '/usr/sbin/sshd';

/** Why the SSH tests cannot run here, or undefined when they can. */
export function sshdProblem(): string | undefined {
  if (!existsSync(SSHD)) return `${SSHD} not installed (Debian: openssh-server)`;
  if (!findExecutable('ssh')) return 'ssh not installed (Debian: openssh-client)';
  if (!findExecutable('ssh-keygen')) return 'ssh-keygen not installed';
  return undefined;
}

export interface Sshd {
  /** The loopback port sshd answers on. */
  port: number;
  dir: string;
  /** A client ssh config (for ssh -F) defining Host `alias`. */
  sshConfig: string;
  /** Host alias in sshConfig: 127.0.0.1, this port, our key, our known_hosts. */
  alias: string;
  /** The same host as user@127.0.0.1 (needs -p and the identity from elsewhere). */
  user: string;
  /** Client key pair (private key path). */
  identity: string;
  /** known_hosts holding this server's host key for [127.0.0.1]:port. */
  knownHosts: string;
  /** Replaces the options in front of the authorized key (e.g. `command="/bin/true"`). */
  setKeyOptions(options: string): void;
  /** PIDs of the sshd sessions alive now. */
  sessions(): number[];
  /** Ends every live session (SIGTERM by PID) and waits until they have exited. */
  dropSessions(): Promise<void>;
  /** Everything the sshd sessions logged (stderr, -e). */
  log(): string;
  /** Resolves once the log matches `re` (bounded). */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

function keygen(path: string): string {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'porthole-test', '-f', path]);
  return readFileSync(`${path}.pub`, 'utf8').trim();
}

export async function startSshd(opts: { logLevel?: string } = {}): Promise<Sshd> {
  // sshd running as root needs its privilege-separation directory; Debian's service unit
  // creates it at boot, but no service runs here. It is empty and root-owned.
  if (process.getuid?.() === 0 && !existsSync('/run/sshd')) mkdirSync('/run/sshd', { mode: 0o755 });
  const dir = mkdtempSync(join(tmpdir(), 'porthole-sshd-'));
  const hostKey = join(dir, 'host_ed25519');
  const hostPub = keygen(hostKey);
  const identity = join(dir, 'id_ed25519');
  const clientPub = keygen(identity);
  const authorized = join(dir, 'authorized_keys');
  const writeKey = (options: string) => writeFileSync(authorized, `${options ? `${options} ` : ''}${clientPub}\n`, { mode: 0o600 });
  writeKey('');
  const user = userInfo().username;
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${authorized}`,
      'StrictModes no',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'PermitRootLogin prohibit-password',
      'AllowTcpForwarding yes',
      'AllowStreamLocalForwarding yes',
      'PrintMotd no',
      'PidFile none',
      `LogLevel ${opts.logLevel ?? 'VERBOSE'}`,
      '',
    ].join('\n'),
  );
  const children = new Set<ChildProcess>();
  let log = '';
  const watchers = new Set<() => void>();
  const server = net.createServer({ pauseOnConnect: true }, (sock) => {
    const child = spawn(SSHD, ['-i', '-e', '-f', config], { stdio: [sock, sock, 'pipe'] });
    sock.destroy(); // the child holds its own copy of the descriptor
    children.add(child);
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      log += d;
      for (const w of watchers) w();
    });
    child.once('exit', () => children.delete(child));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostPub.split(' ').slice(0, 2).join(' ')}\n`);
  const alias = 'porthole-test-desk';
  const sshConfig = join(dir, 'ssh_config');
  writeFileSync(
    sshConfig,
    [
      `Host ${alias}`,
      '  HostName 127.0.0.1',
      `  Port ${port}`,
      `  User ${user}`,
      `  IdentityFile ${identity}`,
      '  IdentitiesOnly yes',
      `  UserKnownHostsFile ${knownHosts}`,
      '  GlobalKnownHostsFile /dev/null',
      '',
    ].join('\n'),
  );

  const dropSessions = async () => {
    const live = [...children];
    for (const c of live) c.kill('SIGTERM');
    await Promise.all(live.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : once(c, 'exit'))));
  };
  return {
    port,
    dir,
    sshConfig,
    alias,
    user,
    identity,
    knownHosts,
    setKeyOptions: writeKey,
    sessions: () => [...children].map((c) => c.pid!).filter(Boolean),
    dropSessions,
    log: () => log,
    waitForLog(re, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (re.test(log)) {
            clearTimeout(timer);
            watchers.delete(check);
            resolve(log);
          }
        };
        const timer = setTimeout(() => {
          watchers.delete(check);
          reject(new Error(`sshd log did not match ${re} within ${timeoutMs} ms:\n${log}`));
        }, timeoutMs);
        watchers.add(check);
        check();
      });
    },
    async stop() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await dropSessions();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
