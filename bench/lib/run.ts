// One benchmark run's lifecycle: a temp dir, the process set, and cleanup that runs once —
// at the end, on SIGINT/SIGTERM, and as a last resort on exit (an uncaught throw).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProcessSet } from './procs.js';

export interface BenchRun {
  dir: string;
  procs: ProcessSet;
  /** Stops every process and removes the temp dir (and runs `extra`); idempotent. */
  cleanup(): Promise<void>;
  /** Stops everything, says why on stderr and exits with `code`. */
  abort(reason: string, code: number): Promise<never>;
  /** True once the run was asked to stop: failures after that are expected. */
  readonly stopping: boolean;
}

export function startBenchRun(prefix: string, extra: () => void = () => {}): BenchRun {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const procs = new ProcessSet(dir);
  let cleaning: Promise<void> | undefined;
  let stopping = false;
  const cleanup = (): Promise<void> => {
    cleaning ??= procs.stopAll().finally(() => {
      rmSync(dir, { recursive: true, force: true });
      extra();
    });
    return cleaning;
  };
  const abort = async (reason: string, code: number): Promise<never> => {
    stopping = true;
    process.stderr.write(`\nbench: ${reason}; stopping…\n`);
    await cleanup();
    process.exit(code);
  };
  process.once('SIGINT', () => void abort('interrupted', 130));
  process.once('SIGTERM', () => void abort('terminated', 143));
  process.once('exit', () => {
    procs.killAllNow();
    rmSync(dir, { recursive: true, force: true });
    extra();
  });
  return {
    dir,
    procs,
    cleanup,
    abort,
    get stopping() {
      return stopping;
    },
  };
}
