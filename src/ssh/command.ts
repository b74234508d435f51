// The `ssh` command lines porthole prints and runs for a local forward to the gateway
// (docs/ssh.md). Pure functions: argv in, argv out; nothing here spawns anything.
//
// Every command line:
//  - binds the local side to loopback explicitly (`-L 127.0.0.1:N:…`), whatever
//    GatewayPorts says in the user's ssh config, or to a Unix socket;
//  - has keep-alives and ExitOnForwardFailure, so a dead or half-set-up forward ends ssh;
//  - ends with "--" before the destination, so a destination is never read as an option;
//  - never touches host key checking (no StrictHostKeyChecking, no UserKnownHostsFile);
//  - never carries porthole's token (it travels inside the forward, as an HTTP header).
import { checkSshDestination } from './target.js';

/** The line ssh's LocalCommand prints once the local forward listens. */
export const FORWARD_READY_MARKER = 'porthole-ssh-forward-ready';
/** The line the remote command prints once the session runs (the server has set TCP_NODELAY). */
export const SESSION_READY_MARKER = 'porthole-ssh-session-ready';
/**
 * The harmless remote command of a managed tunnel. OpenSSH's server sets TCP_NODELAY only
 * for a session that runs a command; a `-N` forward leaves Nagle on and small writes stall
 * ~40 ms. `cat` waits on stdin, which porthole holds open: if porthole dies, the remote
 * side sees EOF and the session (and ssh) ends instead of lingering.
 */
export const REMOTE_COMMAND = `echo ${SESSION_READY_MARKER}; exec cat >/dev/null`;
/** Seconds between keep-alives, and how many may go unanswered (45 s to notice a dead link). */
export const KEEPALIVE = { intervalS: 15, countMax: 3 } as const;
export const PREFERRED_CIPHER = 'aes128-gcm@openssh.com';

export type ForwardListen = { host: '127.0.0.1'; port: number } | { path: string };

export interface ForwardSpec {
  /** The local end: a loopback port, or a Unix socket (in a private directory). */
  listen: ForwardListen;
  /** Where the ssh server connects, as seen from the remote host. Default 127.0.0.1. */
  connectHost?: string;
  connectPort: number;
}

/** `-L` argument: `127.0.0.1:7070:127.0.0.1:7070` or `/dir/s.sock:127.0.0.1:7070`. */
export function forwardArg(f: ForwardSpec): string {
  const host = f.connectHost ?? '127.0.0.1';
  const connect = `${host.includes(':') ? `[${host}]` : host}:${f.connectPort}`;
  return 'path' in f.listen ? `${f.listen.path}:${connect}` : `${f.listen.host}:${f.listen.port}:${connect}`;
}

function baseOptions(): string[] {
  return [
    '-o',
    'ExitOnForwardFailure=yes',
    '-o',
    `ServerAliveInterval=${KEEPALIVE.intervalS}`,
    '-o',
    `ServerAliveCountMax=${KEEPALIVE.countMax}`,
  ];
}

/** The copy-ready command `porthole ssh-tunnel` prints (run by a person, so no BatchMode). */
export function printedCommand(o: { target: string; forward: ForwardSpec; configFile?: string }): string[] {
  checkSshDestination(o.target);
  return ['ssh', '-N', ...(o.configFile ? ['-F', o.configFile] : []), ...baseOptions(), '-L', forwardArg(o.forward), '--', o.target];
}

export interface ManagedCommandOptions {
  /** The ssh executable. */
  ssh: string;
  target: string;
  forward: ForwardSpec;
  /** `command`: run REMOTE_COMMAND (fast path); `forward-only`: `-N`, for keys restricted to forwarding. */
  session: 'command' | 'forward-only';
  /** An ssh config file (`-F`); default: ssh's own (~/.ssh/config). */
  configFile?: string;
  /** Value for `-o Ciphers=` (the effective list with the preferred cipher first), if any. */
  ciphers?: string;
  /** Seconds for the TCP connect and SSH handshake. Default 15. */
  connectTimeoutS?: number;
}

/** argv (without argv[0]) of the ssh porthole runs itself. */
export function managedArgs(o: ManagedCommandOptions): string[] {
  checkSshDestination(o.target);
  const args = [
    ...(o.configFile ? ['-F', o.configFile] : []),
    // Never prompt (no terminal to answer on): an unknown host key or a key needing a
    // passphrase fails, and the failure is reported, instead of hanging.
    '-o',
    'BatchMode=yes',
    ...baseOptions(),
    '-o',
    `ConnectTimeout=${o.connectTimeoutS ?? 15}`,
    // Our own connection, never a shared ControlMaster's: its lifetime is ours to manage.
    '-o',
    'ControlMaster=no',
    '-o',
    'ControlPath=none',
    // Nothing of this machine travels to the remote host beyond the forward.
    '-o',
    'ForwardAgent=no',
    '-o',
    'ForwardX11=no',
    '-o',
    'RequestTTY=no',
    '-o',
    'RemoteCommand=none',
    '-o',
    'PermitLocalCommand=yes',
    '-o',
    `LocalCommand=echo ${FORWARD_READY_MARKER}`,
    ...('path' in o.forward.listen ? ['-o', 'StreamLocalBindUnlink=yes', '-o', 'StreamLocalBindMask=0177'] : []),
    ...(o.ciphers ? ['-o', `Ciphers=${o.ciphers}`] : []),
    ...(o.session === 'forward-only' ? ['-N'] : []),
    '-L',
    forwardArg(o.forward),
    '--',
    o.target,
  ];
  if (o.session === 'command') args.push(REMOTE_COMMAND);
  return args;
}

/**
 * The cipher list to ask for, given the effective one (`ssh -G`'s `ciphers` line): the same
 * ciphers with aes128-gcm first, so it is chosen wherever both ends support it (AES-NI
 * makes it 1.45–2.4× chacha20-poly1305's throughput here). Undefined when the list lacks it:
 * the user's own restriction is kept as it is.
 */
export function preferredCiphers(effective: string | undefined): string | undefined {
  if (!effective) return undefined;
  const list = effective.split(',').map((c) => c.trim()).filter(Boolean);
  if (!list.includes(PREFERRED_CIPHER) || list[0] === PREFERRED_CIPHER) return undefined;
  return [PREFERRED_CIPHER, ...list.filter((c) => c !== PREFERRED_CIPHER)].join(',');
}
