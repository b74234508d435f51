// What the tunnel and control-plane benchmarks share: their settings, the environment their
// children get, waiting on a child's JSON events, the build check, and the report's formats.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Proc, ProcessSet } from './procs.js';

/** `--quick` (or BENCH_QUICK=1) and nothing else on the command line. */
export function quickFlag(argv: string[], env: NodeJS.ProcessEnv): boolean {
  const unknownArg = argv.find((a) => a !== '--quick');
  if (unknownArg) throw new Error(`unknown argument ${unknownArg} (only --quick; the rest is BENCH_* variables)`);
  return argv.includes('--quick') || env['BENCH_QUICK'] === '1';
}

/** A positive whole number from a BENCH_* variable, or `fallback` when unset. */
export function benchNumber(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`invalid ${name}=${raw}: expected a positive whole number`);
  return v;
}

/** Our environment without porthole's own variables, BENCH_* or NODE_OPTIONS, plus `extra`. */
export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('PORTHOLE_') && !k.startsWith('BENCH_') && k !== 'NODE_OPTIONS') env[k] = v;
  }
  return { ...env, ...extra };
}

/** Every JSON line a process prints, and a bounded wait for one matching `pred`. */
export function watchEvents(proc: Proc): (pred: (e: Record<string, unknown>) => boolean, timeoutMs: number) => Promise<Record<string, unknown>> {
  const seen: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  createInterface({ input: proc.child.stdout! }).on('line', (line) => {
    try {
      seen.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      return;
    }
    for (const w of waiters) w();
  });
  return (pred, timeoutMs) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const hit = seen.find(pred);
        if (!hit) return;
        done();
        resolve(hit);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${proc.name}: event not seen after ${timeoutMs} ms:\n${proc.tail()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      void proc.exited.then((code) => {
        if (!waiters.has(check)) return;
        done();
        reject(new Error(`${proc.name} exited (${code}):\n${proc.tail()}`));
      });
      check();
    });
}

/** Builds dist/ when it is missing: the CLI the benches run lives there. */
export function ensureDist(root: string, log: (msg: string) => void): void {
  if (existsSync(join(root, 'dist/index.js'))) return;
  log('dist/ missing: building (npx tsc -p tsconfig.build.json)…');
  const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit', timeout: 180_000 });
  if (r.status !== 0) throw new Error('build failed');
}

export const fmt = {
  int: (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '–'),
  ms: (v: number) => (!Number.isFinite(v) ? '–' : v < 1 ? v.toFixed(3) : v < 10 ? v.toFixed(2) : v.toFixed(1)),
  x: (a: number, b: number | undefined) => (b === undefined || !Number.isFinite(a) || !(b > 0) ? '–' : `${(a / b).toFixed(2)}×`),
};

/** A Markdown table: the first column left-aligned, the figures right-aligned. */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(head), rule, ...rows.map(line)].join('\n');
}

/**
 * `porthole tunnel start --accept-risk` for the desk of `home` (its consent, recorded once),
 * then waits for the desk's `tunnel … online` event.
 */
export async function startDeskTunnel(
  procs: ProcessSet,
  root: string,
  home: string,
  deskEvents: ReturnType<typeof watchEvents>,
  readyMs: number,
): Promise<void> {
  const start = procs.spawn('tunnel-start', process.execPath, [join(root, 'bin/porthole.js'), 'tunnel', 'start', '--accept-risk', '--json'], {
    cwd: root,
    env: childEnv({ PORTHOLE_HOME: home }),
  });
  const guard = setTimeout(() => void procs.stop(start), readyMs);
  const code = await start.exited;
  clearTimeout(guard);
  if (code !== 0) throw new Error(`porthole tunnel start exited (${code}):\n${start.tail()}`);
  await deskEvents((e) => e['event'] === 'tunnel' && e['state'] === 'online', readyMs);
}
