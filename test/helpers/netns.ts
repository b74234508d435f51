// Two Linux network namespaces joined by a veth pair, for e2e tests of remote (LAN)
// access: a "gateway" namespace at 10.x.y.1/24 and a "client" namespace at 10.x.y.2/24 on
// a random subnet, with nothing routed anywhere else. Needs root and iproute2. Processes
// run inside through `ip netns exec` (which execs the command: the child's PID is the
// program's own, so it can be stopped by PID). Every command takes an argument array.
import { type ChildProcess, execFile, spawn, type SpawnOptions } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { once } from 'node:events';
import { isIP } from 'node:net';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { cleanEnv, type Env, type Served, startCli } from './cli.js';

const execFileP = promisify(execFile);

async function ip(args: string[]): Promise<string> {
  const { stdout } = await execFileP('ip', args, { timeout: 10_000 });
  return stdout;
}

async function deleteNetns(name: string): Promise<void> {
  await ip(['netns', 'delete', name]).catch(() => undefined);
}

/** Unique per run: `ph-<kind>-<pid>-<6 hex>`. */
function uniqueName(kind: string): string {
  return `ph-${kind}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/**
 * Why network namespaces cannot be used here, or undefined if they can: root, `ip`
 * present, and a probe namespace with a veth pair can be created (and is removed again).
 */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  if (process.getuid?.() !== 0) return 'not running as root';
  try {
    await ip(['-V']);
  } catch {
    return 'iproute2 `ip` not found';
  }
  const probe = uniqueName('probe');
  try {
    await ip(['netns', 'add', probe]);
    await ip(['-n', probe, 'link', 'add', 'ph0', 'type', 'veth', 'peer', 'name', 'ph1']);
    return undefined;
  } catch (err) {
    const e = err as { stderr?: string; message?: string };
    return `cannot create a network namespace with a veth pair: ${(e.stderr || e.message || String(err)).trim()}`;
  } finally {
    await deleteNetns(probe);
  }
}

export async function hasNetns(): Promise<boolean> {
  return (await netnsUnavailable()) === undefined;
}

export interface NetnsPair {
  /** Gateway namespace name, holding `gwAddress`. */
  gw: string;
  /** Client namespace name, holding `clAddress`. */
  cl: string;
  /** e.g. "10.37.201.1" */
  gwAddress: string;
  /** e.g. "10.37.201.2" */
  clAddress: string;
  /** e.g. "10.37.201." — the /24 both addresses are in. */
  prefix: string;
  /** The command line that runs a command inside namespace `ns` (one of this pair's): `ip netns exec <ns>`. */
  wrap(ns: string): string[];
  /** Makes `child` (started under `wrap`) one this pair kills, and waits for, when destroyed. */
  track(child: ChildProcess): void;
  /** Spawns `cmd args` inside namespace `ns` (one of this pair's), tracked. */
  exec(ns: string, cmd: string, args: string[], opts?: SpawnOptions): ChildProcess;
  /** Kills what is still running inside (by PID) and deletes both namespaces. Idempotent. */
  destroy(): Promise<void>;
}

/** Creates the two namespaces, the veth pair between them, addresses, and brings every link up. */
export async function createPair(): Promise<NetnsPair> {
  const x = randomInt(0, 256);
  const y = randomInt(0, 256);
  const prefix = `10.${x}.${y}.`;
  const gw = uniqueName('gw');
  const cl = uniqueName('cl');
  const children = new Set<ChildProcess>();
  let destroyed = false;

  async function destroy(): Promise<void> {
    if (destroyed) return;
    destroyed = true;
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGKILL');
        await exited;
      }
    }
    // Anything else still inside (only this test can have started it) keeps a deleted
    // namespace alive: end it by PID first.
    for (const ns of [gw, cl]) {
      const pids = await ip(['netns', 'pids', ns]).catch(() => '');
      for (const pid of pids.split(/\s+/).filter(Boolean).map(Number)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    await deleteNetns(gw); // takes the veth pair with it
    await deleteNetns(cl);
  }

  // Same names left from an earlier run (a PID reused): remove them first.
  await deleteNetns(gw);
  await deleteNetns(cl);
  try {
    await ip(['netns', 'add', gw]);
    await ip(['netns', 'add', cl]);
    // Create the pair inside the gateway namespace with its peer placed straight into
    // the client namespace: nothing ever appears in the host's namespace.
    await ip(['-n', gw, 'link', 'add', 'ph0', 'type', 'veth', 'peer', 'name', 'ph1', 'netns', cl]);
    await ip(['-n', gw, 'addr', 'add', `${prefix}1/24`, 'dev', 'ph0']);
    await ip(['-n', cl, 'addr', 'add', `${prefix}2/24`, 'dev', 'ph1']);
    for (const [ns, dev] of [
      [gw, 'lo'],
      [gw, 'ph0'],
      [cl, 'lo'],
      [cl, 'ph1'],
    ] as const) {
      await ip(['-n', ns, 'link', 'set', dev, 'up']);
    }
  } catch (err) {
    await destroy();
    throw err;
  }

  function wrap(ns: string): string[] {
    if (ns !== gw && ns !== cl) throw new Error(`${ns} is not one of this pair's namespaces`);
    if (destroyed) throw new Error('namespaces already destroyed');
    return ['ip', 'netns', 'exec', ns];
  }

  function track(child: ChildProcess): void {
    if (child.exitCode !== null || child.signalCode !== null) return;
    children.add(child);
    child.once('exit', () => children.delete(child));
  }

  return {
    gw,
    cl,
    gwAddress: `${prefix}1`,
    clAddress: `${prefix}2`,
    prefix,
    wrap,
    track,
    exec(ns, cmd, args, opts = {}) {
      const [ip, ...rest] = wrap(ns) as [string, ...string[]];
      const child = spawn(ip, [...rest, cmd, ...args], opts);
      track(child);
      return child;
    },
    destroy,
  };
}

/** Reads the first stdout line of `child` (its readiness signal); rejects if it exits first. */
async function firstLine(child: ChildProcess, what: string, stderr: () => string): Promise<string> {
  const lines = createInterface({ input: child.stdout! });
  try {
    return await new Promise<string>((resolve, reject) => {
      lines.once('line', resolve);
      child.once('error', reject);
      child.once('exit', (code, signal) => reject(new Error(`${what} exited (${code ?? signal}) before it was ready:\n${stderr()}`)));
    });
  } finally {
    lines.close(); // pauses stdout: keep draining it, or its end (and 'close') never comes
    child.stdout!.resume();
  }
}

async function stopChild(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const [code] = (await exited) as [number | null];
  return code;
}

/**
 * `startCli` (test/helpers/cli.ts) inside namespace `ns`, under `ip netns exec`; the pair
 * kills it when destroyed if it still runs then (startCli kills it itself if it fails to start).
 */
export async function startCliIn(pair: NetnsPair, ns: string, argv: string[], env: Env): Promise<Served> {
  const served = await startCli(argv, env, { wrap: pair.wrap(ns) });
  pair.track(served.proc);
  return served;
}

// A tiny upstream app: echoes method, URL, headers and the peer address as JSON, and
// prints {"port":N} once listening on 127.0.0.1 (of its namespace).
const ECHO_APP = `
const http = require('node:http');
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, peer: req.socket.remoteAddress });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  });
});
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
`;

export interface NetnsApp {
  proc: ChildProcess;
  port: number;
  /** "http://127.0.0.1:<port>" — valid inside its namespace only. */
  url: string;
  stop(): Promise<number | null>;
}

export async function startEchoAppIn(pair: NetnsPair, ns: string): Promise<NetnsApp> {
  const proc = pair.exec(ns, process.execPath, ['-e', ECHO_APP], { env: cleanEnv({}), stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const { port } = JSON.parse(await firstLine(proc, 'echo app', () => err)) as { port: number };
  return { proc, port, url: `http://127.0.0.1:${port}`, stop: () => stopChild(proc) };
}

// One HTTP request (no redirects followed, no keep-alive); prints the response as JSON.
const HTTP_CLIENT = `
const http = require('node:http');
const o = JSON.parse(process.argv[1]);
const req = http.request(o.url, { method: o.method, headers: o.headers, localAddress: o.localAddress, agent: false, timeout: 10000 }, (res) => {
  const chunks = [];
  res.on('data', (c) => chunks.push(c));
  res.on('end', () => process.stdout.write(JSON.stringify({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') })));
});
req.on('timeout', () => req.destroy(new Error('request timed out')));
req.on('error', (e) => { process.stderr.write(String(e && e.stack || e)); process.exitCode = 1; });
req.end();
`;

export interface NsRequest {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  /** Source address to bind (e.g. 127.0.0.1 to come from the namespace's loopback). */
  localAddress?: string;
}

export interface NsResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Loopback, or an address inside this pair's subnet: the only places tests may talk to. */
function allowedHost(pair: NetnsPair, hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '');
  if (h === '::1') return true;
  if (isIP(h) !== 4) return false;
  return h.startsWith('127.') || h.startsWith(pair.prefix);
}

/** Sends one HTTP request from inside namespace `ns` and returns the answer. */
export async function requestFrom(pair: NetnsPair, ns: string, r: NsRequest): Promise<NsResponse> {
  const { hostname } = new URL(r.url);
  if (!allowedHost(pair, hostname)) throw new Error(`refusing to send test traffic to ${hostname}`);
  const spec = JSON.stringify({ url: r.url, method: r.method ?? 'GET', headers: r.headers ?? {}, localAddress: r.localAddress });
  const child = pair.exec(ns, process.execPath, ['-e', HTTP_CLIENT, spec], { env: cleanEnv({}), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`request ${r.method ?? 'GET'} ${r.url} from ${ns} failed (${code}):\n${err}`);
  return JSON.parse(out) as NsResponse;
}
