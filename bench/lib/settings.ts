// Benchmark settings: defaults, then `--quick`/BENCH_QUICK, then the BENCH_* variables.
// Strict: a value that is not a positive number stops the run with its name.
import type { TargetId } from './report.js';
import type { StreamClient } from './stream.js';

export interface Settings {
  /** Measured seconds per wrk run. BENCH_SECONDS, default 5 (quick: 2). */
  seconds: number;
  /** Warm-up seconds before each measured wrk run. BENCH_WARMUP, default 1 (whole seconds, like wrk's -d). */
  warmup: number;
  /** Runs per target; the report shows medians. BENCH_RUNS, default 3 (quick: 1). */
  runs: number;
  /** Bytes per streaming download. BENCH_STREAM_MB (MiB), default 1024 (quick: 256). */
  streamBytes: number;
  /**
   * BENCH_STREAM_CLIENT: curl (default; falls back to node when curl is missing) | node. node:http
   * as the client copies every body chunk (Node's HTTP parser does) and tops out below what the
   * bare app can send here, which would hide the proxies' differences.
   */
  streamClient: StreamClient;
  /** BENCH_TARGETS: comma list, default all five. */
  targets: TargetId[];
  /** BENCH_SIDECAR_NODE_ARGS: extra node flags for `porthole serve` (e.g. --cpu-prof --cpu-prof-dir=/tmp/p). */
  sidecarNodeArgs: string[];
  /** BENCH_PORTHOLE_BIN: the CLI to run as the sidecar. Default: this checkout's bin/porthole.js. */
  portholeBin: string | undefined;
  /**
   * BENCH_PORTHOLE_BIN_B: a second CLI, measured as target `sidecar-b` in the same run (interleaved
   * with the others, same app process) for A/B comparisons. Unset: no `sidecar-b`.
   */
  portholeBinB: string | undefined;
  /**
   * Before each sample, wait up to this many seconds for other processes to go quiet (below
   * FOREIGN_LIMIT cores); a sample taken on a busy machine is flagged. BENCH_QUIET_WAIT, default 30 (quick: 5).
   */
  quietWait: number;
  /** BENCH_PORTHOLE_MODULE: porthole's entry module for the embedded target. Default: this checkout's src/index.ts. */
  portholeModule: string | undefined;
  /** BENCH_APP_WORK_US: CPU microseconds the app spends per small request (bench/lib/app.ts). Default 0. */
  appWorkUs: number;
  /** BENCH_JSON: also write the raw samples and medians to this file. */
  jsonFile: string | undefined;
  quick: boolean;
}

export const ALL_TARGETS: readonly TargetId[] = ['direct', 'sidecar', 'sidecar-b', 'nginx', 'caddy', 'embedded', 'floor', 'express', 'embedded-express'];

export function readSettings(argv: string[], env: NodeJS.ProcessEnv): Settings {
  const unknown = argv.filter((a) => a !== '--quick');
  if (unknown.length > 0) throw new Error(`unknown argument ${unknown[0]} (only --quick; the rest is BENCH_* variables)`);
  const quick = argv.includes('--quick') || env['BENCH_QUICK'] === '1';
  const num = (name: string, fallback: number, integer: boolean): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const v = Number(raw);
    if (!Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
      throw new Error(`invalid ${name}=${raw}: expected a positive ${integer ? 'whole ' : ''}number`);
    }
    return v;
  };
  const client = env['BENCH_STREAM_CLIENT'] ?? 'curl';
  if (client !== 'node' && client !== 'curl') throw new Error(`invalid BENCH_STREAM_CLIENT=${client}: node or curl`);
  const portholeBinB = env['BENCH_PORTHOLE_BIN_B'] || undefined;
  const targets = (env['BENCH_TARGETS'] ?? ALL_TARGETS.filter((t) => t !== 'sidecar-b' || portholeBinB).join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const t of targets) {
    if (!ALL_TARGETS.includes(t as TargetId)) throw new Error(`invalid BENCH_TARGETS entry ${t}: one of ${ALL_TARGETS.join(', ')}`);
    if (t === 'sidecar-b' && !portholeBinB) throw new Error('BENCH_TARGETS has sidecar-b but BENCH_PORTHOLE_BIN_B is not set');
  }
  return {
    // wrk's -d takes whole seconds.
    seconds: Math.max(1, Math.round(num('BENCH_SECONDS', quick ? 2 : 5, false))),
    warmup: Math.max(1, Math.round(num('BENCH_WARMUP', 1, false))),
    runs: num('BENCH_RUNS', quick ? 1 : 3, true),
    streamBytes: Math.round(num('BENCH_STREAM_MB', quick ? 256 : 1024, false) * 1024 * 1024),
    streamClient: client,
    targets: ALL_TARGETS.filter((t) => targets.includes(t)),
    sidecarNodeArgs: (env['BENCH_SIDECAR_NODE_ARGS'] ?? '').split(/\s+/).filter(Boolean),
    portholeBin: env['BENCH_PORTHOLE_BIN'] || undefined,
    portholeBinB,
    portholeModule: env['BENCH_PORTHOLE_MODULE'] || undefined,
    quietWait: env['BENCH_QUIET_WAIT'] === '0' ? 0 : num('BENCH_QUIET_WAIT', quick ? 5 : 30, false),
    appWorkUs: env['BENCH_APP_WORK_US'] === '0' ? 0 : num('BENCH_APP_WORK_US', 0, false),
    jsonFile: env['BENCH_JSON'] || undefined,
    quick,
  };
}
