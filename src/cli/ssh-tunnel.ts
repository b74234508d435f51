// `porthole ssh-tunnel [--target user@host] [--local-port N] [--remote-port N] [--run] [--json]`:
// print the copy-ready `ssh -L` that reaches the desk's gateway from this machine, or
// (--run) keep one alive — reconnecting with back-off, like autossh — until stopped.
import { existsSync } from 'node:fs';
import { PortholeError } from '../errors.js';
import { type ForwardSpec, PREFERRED_CIPHER, printedCommand } from '../ssh/command.js';
import { effectiveCiphers, findSsh } from '../ssh/probe.js';
import { preferredCiphers } from '../ssh/command.js';
import { checkSshDestination } from '../ssh/target.js';
import { createSshTunnel, sshEnv, type SshTunnelState } from '../ssh/tunnel.js';
import type { BackoffOptions } from '../util/backoff.js';
import { shellJoin } from '../util/shell.js';
import { homePaths, type CliContext } from './context.js';
import { loadCliConfig } from './load.js';

export interface SshTunnelFlags {
  target?: string;
  localPort?: string;
  remotePort?: string;
  run?: boolean;
  json?: boolean;
  config?: string;
  /** An ssh config file for ssh's -F (else PORTHOLE_SSH_CONFIG, else ssh's own). */
  sshConfig?: string;
}

interface Plan {
  target: string;
  localPort: number;
  remotePort: number;
  configFile: string | undefined;
  forward: ForwardSpec;
  url: string;
}

function port(value: string, flag: string): number {
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 65535) {
    throw new PortholeError('INVALID_ARGUMENT', `${flag} must be a port number from 1 to 65535, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

/** Target: --target, else [remote] ssh_target. Remote port: --remote-port, else gateway.port (7070). Local: --local-port, else the remote port. */
export function planSshTunnel(ctx: CliContext, o: SshTunnelFlags): Plan {
  const { config } = loadCliConfig(ctx, homePaths(ctx), o.config, {});
  const raw = o.target ?? config.remote.ssh_target;
  if (raw === undefined) {
    throw new PortholeError('SSH_TARGET_INVALID', 'which host? Pass --target user@host (or set [remote] ssh_target)');
  }
  const target = checkSshDestination(raw, o.target !== undefined ? '--target' : 'remote.ssh_target');
  const remotePort = o.remotePort !== undefined ? port(o.remotePort, '--remote-port') : config.gateway.port;
  const localPort = o.localPort !== undefined ? port(o.localPort, '--local-port') : remotePort;
  const configFile = o.sshConfig ?? (ctx.env['PORTHOLE_SSH_CONFIG'] || undefined);
  // ssh would only say "Can't open user config file" once the command is run.
  if (configFile !== undefined && !existsSync(configFile)) {
    throw new PortholeError('INVALID_ARGUMENT', `${o.sshConfig !== undefined ? '--ssh-config' : 'PORTHOLE_SSH_CONFIG'}: no such file ${configFile}`);
  }
  return {
    target,
    localPort,
    remotePort,
    configFile,
    forward: { listen: { host: '127.0.0.1', port: localPort }, connectPort: remotePort },
    url: `http://127.0.0.1:${localPort}`,
  };
}

export function sshTunnelPrint(ctx: CliContext, o: SshTunnelFlags): number {
  const plan = planSshTunnel(ctx, o);
  const argv = printedCommand({ target: plan.target, forward: plan.forward, configFile: plan.configFile });
  const command = shellJoin(argv);
  if (o.json) {
    ctx.stdout.write(`${JSON.stringify({ command, argv, target: plan.target, localPort: plan.localPort, remotePort: plan.remotePort, url: plan.url })}\n`);
    return 0;
  }
  ctx.stdout.write(`${command}\n`);
  ctx.stderr.write(
    [
      `Run it on this machine, then open ${plan.url}/ here: the desk's gateway (port ${plan.remotePort} on ${plan.target}) answers.`,
      'The local end is bound to 127.0.0.1 only. Requests arrive at the desk as local ones: on a shared desk,',
      'set [auth] loopback_exempt = false there (docs/ssh.md).',
      `Faster for small requests: \`porthole ssh-tunnel --run\` keeps it alive, runs a session (plain -N stalls ~40 ms`,
      `on small writes) and prefers ${PREFERRED_CIPHER}.`,
      '',
    ].join('\n'),
  );
  return 0;
}

export interface SshTunnelRunOptions {
  /** Back-off tuning (tests). */
  backoff?: BackoffOptions;
}

/** --run: starts the managed tunnel; `done` resolves with an exit code if it gives up by itself. */
export async function sshTunnelRun(ctx: CliContext, o: SshTunnelFlags, runOpts: SshTunnelRunOptions = {}): Promise<{ stop(): Promise<void>; done: Promise<number> }> {
  const plan = planSshTunnel(ctx, o);
  const ssh = findSsh(ctx.env);
  const ciphers = preferredCiphers(await effectiveCiphers(ssh, plan.target, plan.configFile, sshEnv(ctx.env)));
  const tunnel = createSshTunnel({
    ssh,
    target: plan.target,
    forward: plan.forward,
    configFile: plan.configFile,
    ciphers,
    env: ctx.env,
    retry: true,
    backoff: runOpts.backoff,
  });
  const base = { event: 'ssh-tunnel', target: plan.target, local: `127.0.0.1:${plan.localPort}`, remotePort: plan.remotePort };
  let resolveDone: (code: number) => void = () => {};
  const done = new Promise<number>((r) => (resolveDone = r));
  tunnel.on('state', (s: SshTunnelState) => {
    if (o.json) ctx.stdout.write(`${JSON.stringify({ ...base, ...s, ...(s.state === 'online' ? { url: plan.url } : {}) })}\n`);
    else ctx.stderr.write(`${describe(s, plan)}\n`);
    if (s.state === 'failed') {
      ctx.stderr.write(`porthole: ${s.error.message} [${s.error.code}]\n`);
      resolveDone(1);
    }
  });
  tunnel.start();
  return { stop: () => tunnel.stop(), done };
}

function describe(s: SshTunnelState, plan: Plan): string {
  switch (s.state) {
    case 'connecting':
      return `ssh-tunnel: connecting to ${plan.target} (attempt ${s.attempt}${s.session === 'forward-only' ? ', forward only' : ''})`;
    case 'online':
      return `ssh-tunnel: online  ${plan.url}  →  ${plan.target} port ${plan.remotePort}${s.session === 'forward-only' ? '  (forward only: this key allows no session, small writes may lag)' : ''}`;
    case 'waiting':
      return `ssh-tunnel: ${s.lastError.message} [${s.lastError.code}]; retrying in ${(s.retryInMs / 1000).toFixed(1)} s`;
    case 'failed':
      return 'ssh-tunnel: stopped for good (retrying cannot help)';
    case 'stopped':
      return 'ssh-tunnel: stopped';
  }
}
