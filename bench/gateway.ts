// `npm run bench:gateway [-- --quick]`: porthole's gateway against the bare app, nginx and
// Caddy on this machine, in one go. Every target fronts the same app (bench/lib/app.ts);
// wrk measures req/s and p50/p99 at 1 and 50 connections, curl (or node:http) measures
// streaming MB/s, and the report shows per-metric medians of BENCH_RUNS runs, ratios, and
// the goals from the issue (PASS/MISS; a report, never a test). Samples taken while other
// processes kept the CPUs busy are left out. docs/performance.md has the method and the
// figures. Settings: bench/lib/settings.ts.
//
// Bounded: a watchdog ends the run if it overruns its estimate; every child is stopped by
// PID at the end, on error and on SIGINT/SIGTERM, and the temp dir is removed.
import { statSync, writeFileSync, readdirSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { generateToken } from '../src/index.js';
import { foreignLoad, snapshot } from './lib/background.js';
import { toolVersion } from './lib/peers.js';
import { startBenchRun } from './lib/run.js';
import {
  FOREIGN_LIMIT,
  figuresTable,
  goals,
  goalsText,
  ratiosTable,
  type Row,
  type Sample,
  summarize,
  TARGET_LABELS,
  type TargetId,
} from './lib/report.js';
import { readSettings, type Settings } from './lib/settings.js';
import { measureStream } from './lib/stream.js';
import { type RunningTarget, startTargets } from './lib/targets.js';
import { runWrk, writeBearerScript } from './lib/wrk.js';

const ROOT = new URL('../', import.meta.url).pathname;
/** Stream rates for the estimates, bytes/s: typical here, and the slowest the watchdog allows for. */
const TYPICAL_STREAM = 500e6;
const SLOW_STREAM = 100e6;

const settings = readSettings(process.argv.slice(2), process.env);
const run = startBenchRun('porthole-bench-');
const { dir, procs, cleanup, abort } = run;

/** Expected duration on a quiet machine; `worst` adds every allowed wait for quiet. */
function estimateSeconds(s: Settings, worst = false): number {
  const stream = (s.streamBytes * 1.1) / (worst ? SLOW_STREAM : TYPICAL_STREAM);
  const perTarget = 2 * (s.warmup + s.seconds + 1) + stream + 1 + (worst ? s.quietWait : 0.5);
  return 30 + s.runs * s.targets.length * perTarget;
}

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

/** Warns when dist/ is older than src/: the sidecar runs the built CLI. */
function staleDist(): string[] {
  if (settings.portholeBin !== undefined || !settings.targets.includes('sidecar')) return [];
  const stale: string[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, name.name);
      if (name.isDirectory()) walk(p);
      else if (name.name.endsWith('.ts')) {
        const built = join(ROOT, 'dist', relative(join(ROOT, 'src'), p)).replace(/\.ts$/, '.js');
        let builtAt = 0;
        try {
          builtAt = statSync(built).mtimeMs;
        } catch {}
        if (builtAt < statSync(p).mtimeMs) stale.push(relative(ROOT, p));
      }
    }
  };
  walk(join(ROOT, 'src'));
  return stale;
}

function header(): string {
  const git = spawnSync('git', ['-C', ROOT, 'describe', '--always', '--dirty'], { encoding: 'utf8' }).stdout?.trim() || 'unknown';
  return [
    `porthole gateway benchmark — ${new Date().toISOString()} (git ${git})`,
    `machine: ${availableParallelism()} cores (${cpus()[0]?.model ?? 'unknown CPU'}), node ${process.version}`,
    `peers: ${toolVersion('nginx', ['-v'])}; caddy ${toolVersion('caddy', ['version'])}; ${toolVersion('wrk', ['-v'])}`,
    `load: wrk -t1 -c1 and -t2 -c50, --latency, ${settings.warmup} s warm-up + ${settings.seconds} s measured; ` +
      `stream ${(settings.streamBytes / 1024 ** 2).toFixed(0)} MiB via ${settings.streamClient}; ` +
      `${settings.runs} run(s), medians${settings.quick ? ' (QUICK smoke run: figures are indicative only)' : ''}`,
    `app: 13-byte body${settings.appWorkUs > 0 ? ` after ${settings.appWorkUs} µs of simulated work` : ''}; porthole: ` +
      (settings.portholeBinB ? `sidecar-b ${settings.portholeBinB}; ` : '') +
      (settings.portholeBin || settings.portholeModule
        ? `sidecar ${settings.portholeBin ?? 'bin/porthole.js'}, embedded ${settings.portholeModule ?? 'src/index.ts'}`
        : 'this checkout (sidecar from dist/, embedded from src/)'),
  ].join('\n');
}

/** Waits (bounded by BENCH_QUIET_WAIT) until other processes use less than FOREIGN_LIMIT cores; returns their load. */
async function awaitQuiet(): Promise<number | undefined> {
  const deadline = performance.now() + settings.quietWait * 1000;
  for (;;) {
    const a = snapshot();
    await new Promise((r) => setTimeout(r, 500));
    const load = foreignLoad(a, snapshot());
    if (load === undefined || load.cores <= FOREIGN_LIMIT || performance.now() >= deadline) return load?.cores;
  }
}

async function measure(t: RunningTarget, script: string, bearer: string): Promise<Sample> {
  const busy = await awaitQuiet();
  if (busy !== undefined && busy > FOREIGN_LIMIT) {
    log(`  machine busy (other processes use ${busy.toFixed(2)} cores); measuring anyway, the sample is flagged`);
  }
  const before = snapshot();
  const url = `http://127.0.0.1:${t.port}/`;
  const wrk = (threads: number, connections: number, seconds: number) =>
    runWrk(procs, { url, threads, connections, seconds, script, bearer });
  await wrk(1, 1, settings.warmup);
  const c1 = await wrk(1, 1, settings.seconds);
  await wrk(2, 50, settings.warmup);
  const c50 = await wrk(2, 50, settings.seconds);
  // Bounded: curl's --max-time (or node's idle timeout); ≥ 20 MB/s is far below any target here.
  const stream = { port: t.port, bearer, timeoutMs: Math.max(30_000, (settings.streamBytes / 20e6) * 1000) };
  await measureStream(settings.streamClient, procs, dir, { ...stream, bytes: Math.min(settings.streamBytes, 64 * 1024 ** 2) });
  const mbs = await measureStream(settings.streamClient, procs, dir, { ...stream, bytes: settings.streamBytes });
  return { c1, c50, stream: mbs, foreignCores: foreignLoad(before, snapshot())?.cores };
}

async function main(): Promise<void> {
  const budget = estimateSeconds(settings, true) * 2 + 60;
  const watchdog = setTimeout(() => void abort(`over the time budget (${Math.round(budget)} s)`, 1), budget * 1000);
  const stale = staleDist();
  if (stale.length > 0) {
    log(`warning: dist/ is older than ${stale.slice(0, 3).join(', ')}${stale.length > 3 ? ` and ${stale.length - 3} more` : ''}:`);
    log('         the sidecar runs the built CLI; `npx tsc -p tsconfig.build.json` first to measure the current source.');
  }
  if (settings.streamClient === 'curl' && toolVersion('curl', ['--version']) === 'unknown') {
    log('warning: curl not found; streaming is measured with node:http instead');
    settings.streamClient = 'node';
  }
  const head = header();
  log(`${head}\nestimated ${Math.round(estimateSeconds(settings))} s; temp dir ${dir}\n`);

  const bearer = generateToken();
  const script = writeBearerScript(dir);
  const targets = await startTargets(
    {
      procs,
      dir,
      bearer,
      sidecarNodeArgs: settings.sidecarNodeArgs,
      portholeBin: settings.portholeBin,
      portholeBinB: settings.portholeBinB,
      portholeModule: settings.portholeModule,
      appWorkUs: settings.appWorkUs,
    },
    settings.targets,
  );
  log(`ready: ${targets.map((t) => `${t.id} :${t.port}`).join(', ')} (porthole targets refuse requests without the bearer)`);

  const samples = new Map<TargetId, Sample[]>(targets.map((t) => [t.id, []]));
  for (let run = 0; run < settings.runs; run++) {
    // Rotate the order each run so no target always goes first (or right after another).
    const order = targets.map((_, i) => targets[(i + run) % targets.length]!);
    for (const t of order) {
      const s = await measure(t, script, bearer);
      samples.get(t.id)!.push(s);
      log(
        `run ${run + 1}/${settings.runs} ${TARGET_LABELS[t.id].padEnd(32)} ` +
          `@1 ${Math.round(s.c1.rps)} req/s p99 ${s.c1.p99Ms.toFixed(2)} ms | ` +
          `@50 ${Math.round(s.c50.rps)} req/s p99 ${s.c50.p99Ms.toFixed(2)} ms | stream ${Math.round(s.stream)} MB/s` +
          (s.foreignCores === undefined ? '' : ` | background ${s.foreignCores.toFixed(2)} cores`) +
          (s.c1.non2xx + s.c50.non2xx > 0 ? ' | NON-2XX ANSWERS' : ''),
      );
    }
  }
  clearTimeout(watchdog);
  await cleanup();

  const rows: Row[] = targets.map((t) => summarize(t.id, samples.get(t.id)!));
  const verdicts = goals(rows);
  const flagged = rows.flatMap((r) => r.flagged.map((f) => `  ${TARGET_LABELS[r.id]}: ${f}`));
  process.stdout.write(
    [
      '',
      head,
      '',
      figuresTable(rows),
      '',
      ratiosTable(rows),
      '',
      'goals (from the issue; medians):',
      goalsText(verdicts, rows),
      ...(flagged.length > 0 ? ['', 'disturbed samples:', ...flagged] : []),
      '',
    ].join('\n'),
  );
  if (settings.jsonFile) {
    writeFileSync(settings.jsonFile, `${JSON.stringify({ header: head, settings, samples: Object.fromEntries(samples), rows, goals: verdicts }, null, 2)}\n`);
  }
}

main().catch(async (err: unknown) => {
  // Once stopping, a failure is only the load generator being killed under us.
  if (run.stopping) return;
  await abort(err instanceof Error ? (err.stack ?? err.message) : String(err), 1);
});
