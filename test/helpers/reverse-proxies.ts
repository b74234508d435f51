// Real nginx and Caddy in front of a gateway, for the reverse-proxy e2e suites: each runs from
// its own temp dir (config, pid, logs, state), on a loopback port, in the foreground, and is
// stopped by PID. Their config is what `porthole proxy-config` printed (the test passes it in);
// only the process-level wrapper (nginx's main context, Caddy's storage) is added here.
// Readiness is each program's own startup line on stderr, never a sleep.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { findExecutable } from './peers.js';

export interface RunningProxy {
  kind: 'nginx' | 'caddy';
  port: number;
  pid: number;
  dir: string;
  stderr(): string;
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 15_000;
const ATTEMPTS = 3;

/**
 * A port nothing listens on right now. nginx and Caddy cannot report a port they chose, so
 * they get one picked here; the small race with other processes is handled by retrying
 * with a new port when the proxy says the address is in use.
 */
export async function unusedPort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

function nginxMain(dir: string): string {
  return [
    'daemon off;',
    'master_process on;',
    'worker_processes 1;',
    // As root, workers would drop to nobody and could not use the temp dir.
    ...(process.getuid?.() === 0 ? ['user root;'] : []),
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log notice;`,
    'error_log stderr notice;',
    'events { worker_connections 256; }',
    'http {',
    `  access_log ${dir}/access.log;`,
    `  client_body_temp_path ${dir}/client_body;`,
    `  proxy_temp_path ${dir}/proxy;`,
    `  fastcgi_temp_path ${dir}/fastcgi;`,
    `  uwsgi_temp_path ${dir}/uwsgi;`,
    `  scgi_temp_path ${dir}/scgi;`,
    `  include ${dir}/porthole.conf;`,
    '}',
    '',
  ].join('\n');
}

/** Spawns and waits for `ready` on stderr; 'in-use' when the port was taken meanwhile. */
async function launch(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: RegExp,
): Promise<{ child: ChildProcess; stderr: () => string } | { inUse: true; stderr: string }> {
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.setEncoding('utf8');
  const outcome = await new Promise<'ready' | 'exited' | 'timeout'>((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), START_TIMEOUT_MS);
    const done = (r: 'ready' | 'exited' | 'timeout') => {
      clearTimeout(timer);
      resolve(r);
    };
    child.stderr!.on('data', (d: string) => {
      err += d;
      if (ready.test(err)) done('ready');
    });
    child.once('exit', () => done('exited'));
    child.once('error', () => done('exited'));
  });
  if (outcome === 'ready') return { child, stderr: () => err };
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
  if (/address already in use/i.test(err)) return { inUse: true, stderr: err };
  throw new Error(`${cmd} ${outcome === 'timeout' ? `not ready within ${START_TIMEOUT_MS} ms` : 'exited before it was ready'}:\n${err}`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM'); // nginx: fast shutdown; Caddy: graceful stop
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/**
 * Starts `kind` with the config `configFor(port)` returns (the output of `porthole
 * proxy-config … --listen 127.0.0.1:<port>`), in `dir`.
 */
export async function startReverseProxy(
  kind: 'nginx' | 'caddy',
  dir: string,
  configFor: (port: number) => Promise<string>,
): Promise<RunningProxy> {
  const exe = findExecutable(kind);
  if (!exe) throw new Error(`${kind} is not installed`);
  mkdirSync(dir, { recursive: true });
  let last = '';
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const port = await unusedPort();
    const conf = await configFor(port);
    let started: Awaited<ReturnType<typeof launch>>;
    if (kind === 'nginx') {
      writeFileSync(join(dir, 'porthole.conf'), conf);
      writeFileSync(join(dir, 'nginx.conf'), nginxMain(dir));
      // -e: the log for errors before the config is read (else /var/log/nginx/error.log).
      const args = ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'startup.log')];
      started = await launch(exe, args, process.env, /start worker processes/);
    } else {
      writeFileSync(join(dir, 'Caddyfile'), conf);
      // Caddy keeps certificates, locks and autosaved config under HOME / XDG dirs: all in `dir`.
      const env = { ...process.env, HOME: dir, XDG_CONFIG_HOME: join(dir, 'config'), XDG_DATA_HOME: join(dir, 'data') };
      const args = ['run', '--config', join(dir, 'Caddyfile'), '--adapter', 'caddyfile'];
      started = await launch(exe, args, env, /serving initial configuration/);
    }
    if ('inUse' in started) {
      last = started.stderr;
      continue;
    }
    const { child, stderr } = started;
    return { kind, port, pid: child.pid!, dir, stderr, stop: () => stopChild(child) };
  }
  throw new Error(`${kind}: ${ATTEMPTS} ports in a row were in use:\n${last}`);
}
