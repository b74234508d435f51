// The peers of bench/tunnel.ts: a private sshd on 127.0.0.1 with `ssh -R` into it, and socat
// as a one-hop TCP relay. All keys and config live in the run's temp dir; every process is
// registered with the ProcessSet, so it is stopped by PID.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, type Proc, type ProcessSet, waitForPort } from './procs.js';

const READY_MS = 15_000;

export interface Sshd {
  port: number;
  key: string;
  proc: Proc;
}

/** True when this run had to create sshd's privilege-separation directory (removed again at the end). */
export let createdPrivsepDir = false;

export async function startSshd(procs: ProcessSet, dir: string): Promise<Sshd> {
  const d = join(dir, 'ssh');
  mkdirSync(d, { mode: 0o700 });
  const keygen = (file: string) => {
    const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
  };
  keygen(join(d, 'host_key'));
  keygen(join(d, 'client_key'));
  writeFileSync(join(d, 'authorized_keys'), readFileSync(join(d, 'client_key.pub')), { mode: 0o600 });
  // Debian's sshd refuses to start without its privilege-separation directory.
  if (!existsSync('/run/sshd')) {
    mkdirSync('/run/sshd', { mode: 0o755 });
    createdPrivsepDir = true;
  }
  // RACE: the port is free when probed and bound by sshd a moment later; another process
  // could take it in between. Acceptable for a benchmark only (sshd cannot report port 0).
  const port = await freePort();
  const config = join(d, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(d, 'host_key')}`,
      `AuthorizedKeysFile ${join(d, 'authorized_keys')}`,
      `PidFile ${join(d, 'sshd.pid')}`,
      'StrictModes no',
      'PermitRootLogin prohibit-password',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'AllowTcpForwarding remote',
      'GatewayPorts no',
      'X11Forwarding no',
      'PrintMotd no',
      'Ciphers aes128-gcm@openssh.com,chacha20-poly1305@openssh.com',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  const proc = procs.spawn('sshd', '/usr/sbin/sshd', ['-D', '-e', '-f', config]);
  await waitForPort(proc, port, READY_MS);
  return { port, key: join(d, 'client_key'), proc };
}

/** `ssh -R` from the desk side: 127.0.0.1:<returned port> on the sshd side reaches 127.0.0.1:deskPort. */
export async function startSshTunnel(procs: ProcessSet, sshd: Sshd, cipher: string, deskPort: number): Promise<{ port: number; proc: Proc }> {
  // RACE as above: a freshly closed ephemeral port; acceptable for a benchmark only.
  const port = await freePort();
  const proc = procs.spawn('ssh-' + cipher.split(/[-@]/)[0], 'ssh', [
    '-N',
    '-R',
    `127.0.0.1:${port}:127.0.0.1:${deskPort}`,
    '-c',
    cipher,
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    'ExitOnForwardFailure=yes',
    '-o',
    'LogLevel=ERROR',
    '-i',
    sshd.key,
    '-p',
    String(sshd.port),
    'root@127.0.0.1',
  ]);
  await waitForPort(proc, port, READY_MS);
  return { port, proc };
}

export async function startSocat(procs: ProcessSet, deskPort: number): Promise<{ port: number; proc: Proc }> {
  // RACE as above (socat cannot report a port 0 back); acceptable for a benchmark only.
  // backlog=128: socat's default listen backlog of 5 drops connection ACKs when 50 visitors
  // connect at once, leaving about half the requests hanging (seen in a first run).
  const port = await freePort();
  const proc = procs.spawn('socat', 'socat', [`TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr,backlog=128`, `TCP:127.0.0.1:${deskPort}`]);
  await waitForPort(proc, port, READY_MS);
  return { port, proc };
}
