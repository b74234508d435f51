// `node --import tsx bench/mux.ts [--quick] [--window BYTES] [--frame BYTES]`: the relay↔desk
// multiplexer (src/protocol/mux) on its own, over TCP loopback and over TLS 1.3. This process
// plays the relay; a child process (this script with --desk) plays the desk, so each side
// has its own core as in production. Measured per transport, after a raw single-socket
// baseline: 1 GiB up and down one stream, 1 GiB over 8 streams at once, req/s and p50/p99
// of 50 concurrent small request/response exchanges (on 50 long-lived streams, and with a
// new stream per request), and latency at one connection. A report, never a test.
//
// Bounded: a watchdog ends the run if it overruns; the child is stopped by its PID at the
// end, on error and on SIGINT/SIGTERM; the temp dir (throwaway certificate) is removed.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { createMuxSession, type MuxOptions, type MuxSession, type MuxStream } from '../src/protocol/mux/index.js';

const GiB = 1024 ** 3;
const CHUNK = Buffer.alloc(64 * 1024, 0x5a);
const REQ = Buffer.alloc(100, 0x71);
const RES = Buffer.alloc(200, 0x72);

interface Args {
  quick: boolean;
  bulkBytes: number;
  seconds: number;
  mux: Partial<MuxOptions>;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { quick: false, bulkBytes: GiB, seconds: 5, mux: {} };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v <= 0) throw new Error(`${a} needs a positive integer`);
      return v;
    };
    if (a === '--quick') Object.assign(args, { quick: true, bulkBytes: GiB / 4, seconds: 2 });
    else if (a === '--window') args.mux.initialWindow = num();
    else if (a === '--frame') args.mux.maxFrame = num();
    else if (a === '--desk') continue;
    else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

// --- the desk (child process) ---------------------------------------------------------------

interface Meta {
  kind: 'sink' | 'source' | 'pingpong' | 'rr' | 'stats';
  bytes?: number;
}

function deskStream(s: MuxStream, meta: Meta): void {
  s.on('error', () => {});
  switch (meta.kind) {
    case 'sink': {
      let n = 0;
      s.on('data', (c: Buffer) => {
        n += c.length;
      });
      s.on('end', () => s.end(String(n)));
      return;
    }
    case 'source':
      void writeBytes(s, meta.bytes ?? 0).then(() => s.end());
      s.resume();
      return;
    case 'pingpong': {
      let pending = 0;
      s.on('data', (c: Buffer) => {
        pending += c.length;
        while (pending >= REQ.length) {
          pending -= REQ.length;
          s.write(RES);
        }
      });
      s.on('end', () => s.end());
      return;
    }
    case 'rr':
      s.on('data', () => {});
      s.on('end', () => s.end(RES));
      return;
    case 'stats': {
      s.resume();
      const cpu = process.cpuUsage();
      s.end(JSON.stringify({ rss: process.memoryUsage().rss, cpuMs: (cpu.user + cpu.system) / 1000 }));
      return;
    }
  }
}

/** A plain socket sink for the baseline: counts bytes, answers the count at the end. */
function rawSink(socket: Duplex): void {
  let n = 0;
  socket.on('data', (c: Buffer) => {
    n += c.length;
  });
  socket.on('end', () => socket.end(String(n)));
  socket.on('error', () => {});
}

async function runDesk(args: Args): Promise<void> {
  const creds = { key: readFileSync(process.env.MUX_BENCH_KEY!), cert: readFileSync(process.env.MUX_BENCH_CERT!) };
  const serve = (socket: Duplex): void => {
    const session = createMuxSession(socket, { isOpener: false, ...args.mux });
    session.on('stream', (s, meta) => deskStream(s, JSON.parse(meta.toString()) as Meta));
  };
  const servers = {
    tcp: net.createServer(serve),
    tls: tls.createServer({ ...creds, minVersion: 'TLSv1.3' }, serve),
    rawTcp: net.createServer(rawSink),
    rawTls: tls.createServer({ ...creds, minVersion: 'TLSv1.3' }, rawSink),
  };
  const ports: Record<string, number> = {};
  for (const [name, server] of Object.entries(servers)) {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    ports[name] = (server.address() as net.AddressInfo).port;
  }
  process.stdout.write(`${JSON.stringify(ports)}\n`);
  // The parent ends the desk by closing stdin (or by PID).
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

// --- the relay (this process) ---------------------------------------------------------------

async function writeBytes(s: Duplex, total: number): Promise<void> {
  let left = total;
  while (left > 0) {
    const chunk = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
    left -= chunk.length;
    if (!s.write(chunk)) await once(s, 'drain');
  }
}

function readAll(s: Duplex): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.once('end', () => resolve(Buffer.concat(chunks)));
    s.once('error', reject);
  });
}

function countAll(s: Duplex): Promise<number> {
  return new Promise((resolve, reject) => {
    let n = 0;
    s.on('data', (c: Buffer) => {
      n += c.length;
    });
    s.once('end', () => resolve(n));
    s.once('error', reject);
  });
}

const open = (session: MuxSession, meta: Meta): MuxStream => session.openStream(Buffer.from(JSON.stringify(meta)));
const mbps = (bytes: number, ms: number): number => bytes / ms / 1e3;

async function upload(session: MuxSession, streams: number, total: number): Promise<number> {
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: streams }, async () => {
      const s = open(session, { kind: 'sink' });
      const answer = readAll(s);
      await writeBytes(s, total / streams);
      s.end();
      if (Number((await answer).toString()) !== total / streams) throw new Error('upload: byte count mismatch');
    }),
  );
  return mbps(total, performance.now() - t0);
}

async function download(session: MuxSession, total: number): Promise<number> {
  const t0 = performance.now();
  const s = open(session, { kind: 'source', bytes: total });
  s.end();
  if ((await countAll(s)) !== total) throw new Error('download: byte count mismatch');
  return mbps(total, performance.now() - t0);
}

interface RrResult {
  rps: number;
  p50: number;
  p99: number;
  /** Every request completed, warm-up included (for CPU per request). */
  total: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN;
}

/** `conns` workers for `seconds` (after a 1 s warm-up); a new stream per request or one long-lived stream each. */
async function requestResponse(session: MuxSession, conns: number, seconds: number, perRequest: boolean): Promise<RrResult> {
  const latencies: number[] = [];
  let total = 0;
  let measuring = false;
  let stop = false;
  const worker = async (): Promise<void> => {
    if (perRequest) {
      while (!stop) {
        const t0 = performance.now();
        const s = open(session, { kind: 'rr' });
        const body = readAll(s);
        s.end(REQ);
        if ((await body).length !== RES.length) throw new Error('rr: short answer');
        total++;
        if (measuring) latencies.push(performance.now() - t0);
      }
      return;
    }
    const s = open(session, { kind: 'pingpong' });
    let got = 0;
    let wake: (() => void) | undefined;
    s.on('data', (c: Buffer) => {
      got += c.length;
      if (got >= RES.length) wake?.();
    });
    while (!stop) {
      const t0 = performance.now();
      const answered = new Promise<void>((resolve) => {
        wake = resolve;
      });
      s.write(REQ);
      await answered;
      got -= RES.length;
      total++;
      if (measuring) latencies.push(performance.now() - t0);
    }
    s.end();
    await once(s, 'end');
  };
  const workers = Array.from({ length: conns }, worker);
  await new Promise((r) => setTimeout(r, 1000));
  measuring = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  measuring = false;
  const ms = performance.now() - t0;
  const count = latencies.length;
  stop = true;
  await Promise.all(workers);
  latencies.sort((a, b) => a - b);
  return { rps: (count / ms) * 1000, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), total };
}

async function rawUpload(connect: () => Duplex, total: number): Promise<number> {
  const socket = connect();
  await once(socket, socket instanceof tls.TLSSocket ? 'secureConnect' : 'connect');
  const t0 = performance.now();
  const answer = readAll(socket);
  await writeBytes(socket, total);
  socket.end();
  if (Number((await answer).toString()) !== total) throw new Error('raw upload: byte count mismatch');
  return mbps(total, performance.now() - t0);
}

interface DeskStats {
  rss: number;
  cpuMs: number;
}

async function deskStats(session: MuxSession): Promise<DeskStats> {
  const s = open(session, { kind: 'stats' });
  s.end();
  return JSON.parse((await readAll(s)).toString()) as DeskStats;
}

function relayCpuMs(): number {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
}

/** Runs `fn` and adds the CPU time both processes spent meanwhile (robust on a busy machine, unlike MB/s). */
async function withCpu<T>(session: MuxSession, fn: () => Promise<T>): Promise<T & { cpuMs: number }> {
  const d0 = await deskStats(session);
  const r0 = relayCpuMs();
  const value = await fn();
  const r1 = relayCpuMs();
  const d1 = await deskStats(session);
  return { ...value, cpuMs: r1 - r0 + (d1.cpuMs - d0.cpuMs) };
}

interface Bulk {
  mbps: number;
  cpuMs: number;
}

interface Row {
  transport: string;
  raw: Bulk;
  up1: Bulk;
  down1: Bulk;
  up8: Bulk;
  pp50: RrResult & { cpuMs: number };
  rr50: RrResult & { cpuMs: number };
  rr1: RrResult & { cpuMs: number };
  rssRelay: number;
  rssDesk: number;
}

async function measure(transport: 'tcp' | 'tls', ports: Record<string, number>, ca: Buffer, args: Args): Promise<Row> {
  const dial = (port: number): Duplex =>
    transport === 'tcp' ? net.connect(port, '127.0.0.1') : tls.connect({ port, host: '127.0.0.1', ca, minVersion: 'TLSv1.3' });
  const log = (what: string): boolean => process.stderr.write(`  ${transport}: ${what}\n`);
  const socket = dial(ports[transport]!);
  await once(socket, transport === 'tcp' ? 'connect' : 'secureConnect');
  const session = createMuxSession(socket, { isOpener: true, ...args.mux });
  const bulk = async (fn: () => Promise<number>): Promise<Bulk> => withCpu(session, async () => ({ mbps: await fn() }));
  const n = args.bulkBytes;
  log('raw socket baseline');
  const raw = await bulk(() => rawUpload(() => dial(transport === 'tcp' ? ports.rawTcp! : ports.rawTls!), n));
  log('1 stream up');
  const up1 = await bulk(() => upload(session, 1, n));
  log('1 stream down');
  const down1 = await bulk(() => download(session, n));
  log('8 streams up');
  const up8 = await bulk(() => upload(session, 8, n));
  log('50 long-lived streams, request/response');
  const pp50 = await withCpu(session, () => requestResponse(session, 50, args.seconds, false));
  log('50 workers, a stream per request');
  const rr50 = await withCpu(session, () => requestResponse(session, 50, args.seconds, true));
  log('1 worker, a stream per request');
  const rr1 = await withCpu(session, () => requestResponse(session, 1, args.seconds, true));
  const { rss: rssDesk } = await deskStats(session);
  const closed = once(session, 'close');
  session.close();
  await closed;
  return { transport, raw, up1, down1, up8, pp50, rr50, rr1, rssRelay: process.memoryUsage().rss, rssDesk };
}

function table(rows: Row[], bulkBytes: number): string {
  const gib = bulkBytes / GiB;
  const bulk = (b: Bulk): string => `${b.mbps.toFixed(0)} MB/s · ${(b.cpuMs / 1000 / gib).toFixed(2)} cpu-s/GiB`;
  const rr = (r: RrResult & { cpuMs: number }): string =>
    `${(r.rps / 1000).toFixed(1)}k/s · ${r.p50.toFixed(2)}/${r.p99.toFixed(2)} ms · ${((r.cpuMs * 1000) / r.total).toFixed(0)} cpu-µs`;
  const head = ['', ...rows.map((r) => r.transport.toUpperCase())];
  const lines: string[][] = [
    head,
    [`raw socket, ${gib} GiB up (baseline)`, ...rows.map((r) => bulk(r.raw))],
    [`mux 1 stream, ${gib} GiB up`, ...rows.map((r) => bulk(r.up1))],
    [`mux 1 stream, ${gib} GiB down`, ...rows.map((r) => bulk(r.down1))],
    [`mux 8 streams, ${gib} GiB up in all`, ...rows.map((r) => bulk(r.up8))],
    ['c50 long-lived streams: req/s · p50/p99 · cpu/req', ...rows.map((r) => rr(r.pp50))],
    ['c50 new stream per request', ...rows.map((r) => rr(r.rr50))],
    ['c1 new stream per request', ...rows.map((r) => rr(r.rr1))],
    ['RSS relay / desk after the load', ...rows.map((r) => `${(r.rssRelay / 2 ** 20).toFixed(0)} / ${(r.rssDesk / 2 ** 20).toFixed(0)} MiB`)],
  ];
  const widths = head.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  return lines.map((l) => l.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
}

async function runMain(args: Args): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'porthole-bench-mux-'));
  let child: ChildProcess | undefined;
  const cleanup = (): void => {
    if (child?.pid !== undefined && child.exitCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', cleanup);
  process.once('SIGINT', () => process.exit(130));
  process.once('SIGTERM', () => process.exit(143));
  const budgetMs = (args.quick ? 3 : 8) * 60_000;
  setTimeout(() => {
    process.stderr.write(`bench: watchdog — not finished after ${budgetMs / 60_000} min; stopping\n`);
    process.exit(1);
  }, budgetMs).unref();

  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=bench', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert],
    { stdio: 'ignore' },
  );
  const script = new URL(import.meta.url).pathname;
  child = spawn(process.execPath, [...process.execArgv, script, '--desk', ...process.argv.slice(2)], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, MUX_BENCH_KEY: key, MUX_BENCH_CERT: cert },
  });
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  const ports = JSON.parse(line) as Record<string, number>;
  const mux = { initialWindow: args.mux.initialWindow ?? 'default', maxFrame: args.mux.maxFrame ?? 'default' };
  process.stderr.write(`bench mux: ${args.bulkBytes / 2 ** 20} MiB bulk, ${args.seconds} s per req/s run, options ${JSON.stringify(mux)}, ${cpus().length} cores\n`);
  const rows = [await measure('tcp', ports, readFileSync(cert), args), await measure('tls', ports, readFileSync(cert), args)];
  child.stdin!.end();
  await once(child, 'exit');
  process.stdout.write(`\n${table(rows, args.bulkBytes)}\n`);
}

const args = parseArgs(process.argv.slice(2));
if (process.argv.includes('--desk')) await runDesk(args);
else await runMain(args);
