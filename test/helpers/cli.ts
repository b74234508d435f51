// Runs the real porthole CLI (bin/porthole.js → dist/) as a child process, for e2e tests.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

export const BIN = new URL('../../bin/porthole.js', import.meta.url).pathname;

export function tempHome(): { home: string; cleanup(): void } {
  const home = mkdtempSync(join(tmpdir(), 'porthole-e2e-'));
  return { home, cleanup: () => rmSync(home, { recursive: true, force: true }) };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a short CLI command to completion. */
export async function runCli(args: string[], env: Record<string, string | undefined>, input?: string): Promise<CliResult> {
  const child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin.end(input ?? '');
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

/** The environment a child gets: ours minus porthole's variables, plus `env`. */
export function cleanEnv(env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PORTHOLE_') && k !== 'NODE_OPTIONS') base[k] = v;
  for (const [k, v] of Object.entries(env)) if (v !== undefined) base[k] = v;
  return base;
}

export interface Served {
  proc: ChildProcess;
  event: Record<string, unknown> & { url: string; port: number; host: string };
  stderr(): string;
  /** Resolves once stderr matches (the banner may arrive after the JSON event). */
  waitForStderr(re: RegExp): Promise<string>;
  /** SIGTERM and wait for exit; resolves to the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Starts `porthole <command> --json …` and resolves with its first JSON event (the
 * readiness signal: the gateway is listening). Rejects if the process exits first.
 */
export async function startCli(args: string[], env: Record<string, string | undefined>): Promise<Served> {
  const proc = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  const stderrWaiters = new Set<() => void>();
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d;
    for (const w of stderrWaiters) w();
  });
  proc.once('exit', () => {
    for (const w of stderrWaiters) w();
  });
  const lines = createInterface({ input: proc.stdout! });
  const exited = once(proc, 'exit');
  const first = new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    exited.then(([code]) => reject(new Error(`porthole exited (${code}) before listening:\n${err}`)));
  });
  const line = await first;
  return {
    proc,
    event: JSON.parse(line),
    stderr: () => err,
    waitForStderr(re) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (re.test(err)) {
            stderrWaiters.delete(check);
            resolve(err);
          } else if (proc.exitCode !== null) {
            stderrWaiters.delete(check);
            reject(new Error(`exited before stderr matched ${re}:\n${err}`));
          }
        };
        stderrWaiters.add(check);
        check();
      });
    },
    async stop() {
      if (proc.exitCode !== null) return proc.exitCode;
      proc.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      lines.close();
      return code;
    },
  };
}
