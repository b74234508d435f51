// `npm run bench:control [-- --quick]`: porthole's control plane (`/_porthole/ws`) against a
// plain `ws` server speaking the same JSON frames (the floor), on this machine.
//
//   floor           this process's `ws` client ─ws://→ a bare `ws` server process
//                   (bench/lib/control-peers.ts floor): parse, answer, nothing else
//   porthole        the SDK (porthole/client, HMAC handshake) ─ws://→ a desk process running
//                   `porthole serve` as a library (auth on, no loopback exemption) with the
//                   same two methods registered through gateway.control
//   porthole relay  the SDK ─TLS (SNI bench.tunnel.example.test)→ `porthole relay`
//                   (passthrough) → the desk's outbound tunnel → TLS terminated in the desk,
//                   proof bound to the TLS exporter
//
// Measured per path: round trips of a small request (`echo` with a ~60-byte params object),
// one at a time for BENCH_SECONDS (after a 1 s warm-up) → p50/p99 and req/s; and pushed
// events/s: `bench.burst` {n: 256} makes the server push 256 small events, then answer;
// the client asks again once the answer arrives (both servers do the same, so flow control
// is identical and nothing piles up in a send buffer). Medians of BENCH_RUNS (default 3;
// --quick: 1 run of 2 s). Goal (issue 5): porthole direct within 20% of the floor (p50 and
// p99 ≤ 1.2×, events/s ≥ 0.8×). A report, never a test: a MISS keeps exit code 0.
//
// Bounded: a watchdog ends the run; every child is stopped by PID at the end, on error and on
// SIGINT/SIGTERM, and the temp dir is removed.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { connect } from '../src/client/index.js';
import { generateToken } from '../src/index.js';
import { createCertificate } from '../src/tls/x509.js';
import { median } from './lib/report.js';
import { benchNumber, childEnv, ensureDist, fmt, quickFlag, startDeskTunnel, table, watchEvents } from './lib/common.js';
import { startBenchRun } from './lib/run.js';

const ROOT = new URL('../', import.meta.url).pathname;
const DOMAIN = 'tunnel.example.test';
const NAME = 'bench';
const HOST = `${NAME}.${DOMAIN}`;
const READY_MS = 20_000;
const BURST = 256;
const ECHO_PARAMS = { job: 'render-42', step: 3, note: 'small request, like a status poll' };

type PathId = 'floor' | 'porthole' | 'relay';
const LABELS: Record<PathId, string> = {
  floor: 'plain ws server (floor)',
  porthole: 'porthole direct (ws://, SDK)',
  relay: 'porthole via relay (TLS, SDK)',
};

// ---- settings ---------------------------------------------------------------------------
const quick = quickFlag(process.argv.slice(2), process.env);
const num = (name: string, fallback: number) => benchNumber(process.env, name, fallback);
const RUNS = num('BENCH_RUNS', quick ? 1 : 3);
const SECONDS = num('BENCH_SECONDS', quick ? 2 : 5);

const run = startBenchRun('porthole-bench-control-');
const { dir, procs, cleanup, abort } = run;
const log = (msg: string) => process.stderr.write(`${msg}\n`);


// ---- the servers ------------------------------------------------------------------------
const porthole = (args: string[]) => [join(ROOT, 'bin/porthole.js'), ...args];
const peer = (role: 'floor' | 'desk', env: Record<string, string>) =>
  procs.spawn(role, process.execPath, ['--import', 'tsx', join(ROOT, 'bench/lib/control-peers.ts')], {
    cwd: ROOT,
    env: childEnv({ BENCH_CONTROL_ROLE: role, ...env }),
    pipeStdout: true,
  });


async function startAll(token: string) {
  const floor = peer('floor', {});
  const floorPort = (await watchEvents(floor)((e) => e['event'] === 'listening', READY_MS))['port'] as number;

  const d = join(dir, 'pki');
  mkdirSync(d, { mode: 0o700 });
  const write = (name: string, text: string, mode = 0o644) => {
    const p = join(d, name);
    writeFileSync(p, text, { mode });
    return p;
  };
  const ca = createCertificate({ commonName: 'porthole bench CA', isCA: true });
  const relayCert = createCertificate({ commonName: DOMAIN, dnsNames: [DOMAIN], issuer: ca });
  const deskCert = createCertificate({ commonName: HOST, dnsNames: [HOST], issuer: ca });
  const caFile = write('ca.pem', ca.certPem);

  const relayHome = join(dir, 'relay-home');
  mkdirSync(relayHome);
  const relay = procs.spawn(
    'relay',
    process.execPath,
    porthole(['relay', '--domain', DOMAIN, '--listen', '127.0.0.1:0', '--cert', write('relay.pem', relayCert.certPem), '--key', write('relay-key.pem', relayCert.keyPem, 0o600), '--store', join(relayHome, 'store'), '--json']),
    { cwd: ROOT, env: childEnv({ PORTHOLE_HOME: relayHome }), pipeStdout: true },
  );
  const relayPort = (await watchEvents(relay)((e) => typeof e['port'] === 'number', READY_MS))['port'] as number;

  const deskHome = join(dir, 'desk-home');
  mkdirSync(deskHome);
  writeFileSync(
    join(deskHome, 'porthole.toml'),
    [
      'version = 1',
      '[tunnel]',
      `relay = "${DOMAIN}:${relayPort}"`,
      'connect_address = "127.0.0.1"',
      `subdomain = "${NAME}"`,
      `ca = "${caFile}"`,
      `tls_cert = "${write('desk.pem', deskCert.certPem)}"`,
      `tls_key = "${write('desk-key.pem', deskCert.keyPem, 0o600)}"`,
      '',
    ].join('\n'),
  );
  const desk = peer('desk', { PORTHOLE_HOME: deskHome, PORTHOLE_AUTH_TOKEN: token });
  const deskEvents = watchEvents(desk);
  const deskPort = (await deskEvents((e) => e['event'] === 'listening', READY_MS))['port'] as number;
  await startDeskTunnel(procs, ROOT, deskHome, deskEvents, READY_MS);
  return { floorPort, deskPort, relayPort, caPem: ca.certPem };
}

// ---- the clients ------------------------------------------------------------------------
/** What a measurement needs from a client: a request, and a count of `bench.tick` events. */
interface BenchClient {
  request(method: string, params?: unknown): Promise<unknown>;
  events(): number;
  close(): Promise<void>;
}

/** The floor's client: `ws` and a Map of pending ids, nothing more. */
async function floorClient(port: number): Promise<BenchClient> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const pending = new Map<string, (v: unknown) => void>();
  let events = 0;
  let next = 0;
  ws.on('message', (data) => {
    const f = JSON.parse(data.toString()) as { type: string; id?: string; payload?: unknown };
    if (f.type === 'event') events++;
    else if (f.type === 'res' && f.id !== undefined) {
      pending.get(f.id)?.(f.payload);
      pending.delete(f.id);
    }
  });
  return {
    request: (method, params) =>
      new Promise((resolve) => {
        const id = String(++next);
        pending.set(id, resolve);
        ws.send(JSON.stringify({ type: 'req', id, method, params }));
      }),
    events: () => events,
    close: async () => {
      ws.close();
    },
  };
}

async function portholeClient(options: Parameters<typeof connect>[0]): Promise<BenchClient> {
  const client = await connect({ ...options, env: {}, reconnect: false, deviceName: 'bench' });
  let events = 0;
  client.on('bench.tick', () => {
    events++;
  });
  return { request: (m, p) => client.request(m, p), events: () => events, close: () => client.close() };
}

// ---- measuring --------------------------------------------------------------------------
interface Sample {
  p50: number;
  p99: number;
  rps: number;
  eventsPerS: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function roundTrips(c: BenchClient, seconds: number): Promise<{ p50: number; p99: number; rps: number }> {
  const lat: number[] = [];
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(seconds * 1e9));
  for (;;) {
    const t0 = process.hrtime.bigint();
    if (t0 >= end) break;
    await c.request('echo', ECHO_PARAMS);
    lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  lat.sort((a, b) => a - b);
  return { p50: percentile(lat, 50), p99: percentile(lat, 99), rps: lat.length / elapsed };
}

async function eventRate(c: BenchClient, seconds: number): Promise<number> {
  const before = c.events();
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(seconds * 1e9));
  while (process.hrtime.bigint() < end) await c.request('bench.burst', { n: BURST });
  const got = c.events() - before;
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  // The answer follows the burst on the same socket: every event has arrived.
  if (got % BURST !== 0) throw new Error(`events lost: ${got} is not a multiple of ${BURST}`);
  return got / elapsed;
}

async function measure(open: () => Promise<BenchClient>): Promise<Sample> {
  const c = await open();
  try {
    await roundTrips(c, 1);
    const rt = await roundTrips(c, SECONDS);
    await eventRate(c, 1);
    const ev = await eventRate(c, SECONDS);
    return { ...rt, eventsPerS: ev };
  } finally {
    await c.close();
  }
}

// ---- report -----------------------------------------------------------------------------

function report(rows: Map<PathId, Sample>): string {
  const floor = rows.get('floor');
  const figures = table(
    ['path', 'p50 (ms)', 'p99 (ms)', 'req/s', 'events/s', 'p50 ×floor', 'p99 ×floor', 'events ×floor'],
    [...rows].map(([id, r]) => [
      LABELS[id],
      fmt.ms(r.p50),
      fmt.ms(r.p99),
      fmt.int(r.rps),
      fmt.int(r.eventsPerS),
      fmt.x(r.p50, floor?.p50),
      fmt.x(r.p99, floor?.p99),
      fmt.x(r.eventsPerS, floor?.eventsPerS),
    ]),
  );
  const p = rows.get('porthole');
  const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');
  const goals = p && floor
    ? [
        `  ${verdict(p.p50 <= 1.2 * floor.p50)}  round-trip p50 ≤ 1.2× floor: ${fmt.ms(p.p50)} vs ${fmt.ms(floor.p50)} ms (${fmt.x(p.p50, floor.p50)})`,
        `  ${verdict(p.p99 <= 1.2 * floor.p99)}  round-trip p99 ≤ 1.2× floor: ${fmt.ms(p.p99)} vs ${fmt.ms(floor.p99)} ms (${fmt.x(p.p99, floor.p99)})`,
        `  ${verdict(p.eventsPerS >= 0.8 * floor.eventsPerS)}  events/s ≥ 0.8× floor: ${fmt.int(p.eventsPerS)} vs ${fmt.int(floor.eventsPerS)} (${fmt.x(p.eventsPerS, floor.eventsPerS)})`,
      ]
    : ['  n/a'];
  return [figures, '', 'goals (issue 5: porthole direct within 20% of the plain ws floor; medians):', ...goals].join('\n');
}

// ---- main -------------------------------------------------------------------------------
async function main(): Promise<void> {
  const budget = 120 + RUNS * 3 * (2 * SECONDS + 4) * 2;
  const watchdog = setTimeout(() => void abort(`over the time budget (${Math.round(budget)} s)`, 1), budget * 1000);
  ensureDist(ROOT, log);
  const git = spawnSync('git', ['-C', ROOT, 'describe', '--always', '--dirty'], { encoding: 'utf8' }).stdout?.trim() || 'unknown';
  const head = [
    `porthole control-plane benchmark — ${new Date().toISOString()} (git ${git})`,
    `machine: ${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown CPU'}), node ${process.version}`,
    `load: one connection; sequential \`echo\` round trips and ${BURST}-event bursts, 1 s warm-up + ${SECONDS} s each; ` +
      `${RUNS} run(s), medians${quick ? ' (QUICK: indicative only)' : ''}`,
  ].join('\n');
  log(`${head}\ntemp dir ${dir}\n`);

  const token = generateToken();
  const s = await startAll(token);
  const opens: Record<PathId, () => Promise<BenchClient>> = {
    floor: () => floorClient(s.floorPort),
    porthole: () => portholeClient({ url: `http://127.0.0.1:${s.deskPort}`, token }),
    relay: () => portholeClient({ url: `https://${HOST}:${s.relayPort}`, token, ca: s.caPem, connectAddress: '127.0.0.1' }),
  };
  const ids = Object.keys(opens) as PathId[];
  const samples = new Map<PathId, Sample[]>(ids.map((id) => [id, []]));
  for (let r = 0; r < RUNS; r++) {
    for (const id of ids.map((_, i) => ids[(i + r) % ids.length]!)) {
      const sample = await measure(opens[id]);
      samples.get(id)!.push(sample);
      log(`run ${r + 1}/${RUNS} ${LABELS[id].padEnd(30)} p50 ${sample.p50.toFixed(3)} ms p99 ${sample.p99.toFixed(3)} ms ${Math.round(sample.rps)} req/s | ${Math.round(sample.eventsPerS)} events/s`);
    }
  }
  clearTimeout(watchdog);
  await cleanup();
  const rows = new Map<PathId, Sample>(
    ids.map((id) => {
      const ss = samples.get(id)!;
      return [id, { p50: median(ss.map((x) => x.p50)), p99: median(ss.map((x) => x.p99)), rps: median(ss.map((x) => x.rps)), eventsPerS: median(ss.map((x) => x.eventsPerS)) }];
    }),
  );
  process.stdout.write(`${head}\n\n${report(rows)}\n`);
}

main().catch(async (err: unknown) => {
  if (run.stopping) return;
  log(`bench failed: ${(err as Error).stack ?? String(err)}`);
  await cleanup();
  process.exit(1);
});
