// Runs the real porthole CLI (bin/porthole.js → dist/) as a child process, for the e2e
// suites: runCli for a command that finishes, startCli for one that serves (`serve`,
// `demo`). Every wait is bounded, and readiness is a real signal: the first JSON line on
// stdout, then the stderr banner naming its URL.
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';

const BIN = new URL('../../bin/porthole.js', import.meta.url).pathname;

export type Env = Record<string, string | undefined>;

export type CliChild = ChildProcessByStdio<null, Readable, Readable>;

export function tempHome(): { home: string; cleanup(): void } {
  const home = mkdtempSync(join(tmpdir(), 'porthole-e2e-'));
  return { home, cleanup: () => rmSync(home, { recursive: true, force: true }) };
}

/**
 * The environment a child gets: ours minus porthole's variables, plus `env`. Secrets go to
 * files (PORTHOLE_SECRET_STORE=file) unless `env` says otherwise, so a developer's real OS
 * keyring is never written by the suite (test/secrets/keyring.test.ts runs its own).
 */
export function cleanEnv(env: Env): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { PORTHOLE_SECRET_STORE: 'file' };
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PORTHOLE_') && k !== 'NODE_OPTIONS') base[k] = v;
  for (const [k, v] of Object.entries(env)) if (v !== undefined) base[k] = v;
  return base;
}

export interface SpawnCliOptions {
  /**
   * A command line to run the CLI under, e.g. `['ip', 'netns', 'exec', ns]`. It must exec
   * the CLI (not fork it), so the child's PID stays the CLI's own.
   */
  wrap?: string[];
}

/** Spawns `porthole …argv` with `cleanEnv(env)`: no stdin, stdout and stderr piped. */
export function spawnCli(argv: string[], env: Env, { wrap = [] }: SpawnCliOptions = {}): CliChild {
  const [cmd, ...rest] = [...wrap, process.execPath, BIN, ...argv] as [string, ...string[]];
  return spawn(cmd, rest, { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** True when the command had to be stopped (SIGKILL) because it outlived `timeoutMs`. */
  timedOut: boolean;
}

/**
 * Runs a CLI command to completion, but never waits forever: a command that is expected
 * to fail and instead starts serving is killed after `timeoutMs` and reported with
 * `timedOut: true` (the assertion on its exit code then fails instead of hanging).
 * `input` is written to its stdin (otherwise it has none).
 */
export async function runCli(argv: string[], env: Env, timeoutMs = 20_000, input?: string): Promise<CliResult> {
  let child: ChildProcessByStdio<Writable | null, Readable, Readable>;
  if (input === undefined) child = spawnCli(argv, env);
  else {
    // Secrets reach the CLI on stdin (never argv), as a user pipes them.
    child = spawn(process.execPath, [BIN, ...argv], { env: cleanEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin!.end(input);
  }
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  try {
    const [code] = (await once(child, 'close')) as [number | null];
    return { code, stdout, stderr, timedOut };
  } finally {
    clearTimeout(timer);
  }
}

/** The first stdout line of a serving command run with --json. */
export interface ListeningEvent extends Record<string, unknown> {
  event: 'listening';
  url: string;
  host: string;
  port: number;
  generatedToken?: string;
}

export interface Served {
  proc: CliChild;
  pid: number;
  /** The first stdout line, parsed: the readiness signal. */
  event: ListeningEvent;
  /** Every stdout line so far, the first included. */
  lines: string[];
  stderr(): string;
  /**
   * Resolves with stderr once it matches `re` (more of the banner may follow the part
   * startCli waited for); rejects if the process ends, or `timeoutMs` passes, first.
   */
  waitForStderr(re: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves with the first stdout JSON line (from index `from`) that `test` accepts. */
  waitForEvent(test: (e: Record<string, unknown>) => boolean, timeoutMs?: number, from?: number): Promise<Record<string, unknown>>;
  /** Resolves with the exit code once the process has exited and its output is drained. */
  exited: Promise<number | null>;
  /** SIGTERM, then the exit code; SIGKILL (and null) if it does not exit within `graceMs` (10 s). */
  stop(graceMs?: number): Promise<number | null>;
}

export interface StartCliOptions extends SpawnCliOptions {
  /** Bound on each startup wait: the listening event, then the banner (20 s). */
  timeoutMs?: number;
}

function parseListening(line: string): ListeningEvent | undefined {
  try {
    const v = JSON.parse(line) as Partial<ListeningEvent> | null;
    return v !== null && v.event === 'listening' && typeof v.url === 'string' ? (v as ListeningEvent) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts a serving command — `argv` is everything after `porthole`, `--json` included, e.g.
 * `['serve', '--target', url, '--port', '0', '--json']` or `['demo', '--port', '0', '--json']`
 * — and resolves once it listens: its first stdout line is the listening event, and the
 * human banner that follows it on stderr names the event's URL. Rejects, with stderr, if
 * the process ends first, prints something else, or a wait outlives `timeoutMs` (the
 * process is then killed).
 */
export async function startCli(argv: string[], env: Env, { timeoutMs = 20_000, ...spawnOpts }: StartCliOptions = {}): Promise<Served> {
  const what = `porthole ${argv.join(' ')}`;
  if (!argv.includes('--json')) throw new Error(`${what}: startCli needs --json (the listening event is its readiness signal)`);
  const proc = spawnCli(argv, env, spawnOpts);
  let spawnError: Error | undefined;
  proc.on('error', (e) => (spawnError = e)); // 'close' follows

  let err = '';
  let ended = false;
  const watchers = new Set<() => void>();
  const notify = () => {
    for (const w of watchers) w();
  };
  proc.stderr.setEncoding('utf8').on('data', (d: string) => {
    err += d;
    notify();
  });
  const lines: string[] = [];
  const rl = createInterface({ input: proc.stdout });
  const first = new Promise<string>((resolve) => rl.once('line', resolve));
  rl.on('line', (l) => {
    lines.push(l);
    notify();
  });
  // 'close': exited, and both stdout and stderr drained.
  const exited = new Promise<number | null>((resolve) => {
    proc.once('close', (code: number | null) => {
      ended = true;
      notify();
      resolve(code);
    });
  });

  /** Waits until `test(stderr)` holds, the process has ended, or `ms` passes. */
  const untilStderr = (test: (s: string) => boolean, ms: number) =>
    new Promise<'match' | 'ended' | 'timeout'>((resolve) => {
      const finish = (r: 'match' | 'ended' | 'timeout') => {
        clearTimeout(timer);
        watchers.delete(check);
        resolve(r);
      };
      const check = () => {
        if (test(err)) finish('match');
        else if (ended) finish('ended');
      };
      const timer = setTimeout(() => finish('timeout'), ms);
      watchers.add(check);
      check();
    });

  const fail = async (why: string): Promise<never> => {
    if (!ended) {
      proc.kill('SIGKILL');
      await exited;
    }
    throw new Error(`${what} ${why}${spawnError ? ` (${spawnError.message})` : ''}:\n${err}`);
  };

  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    first.then((line) => ({ line })),
    exited.then((code) => ({ code })),
    new Promise<{ timeout: true }>((r) => {
      timer = setTimeout(() => r({ timeout: true }), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (!('line' in outcome)) {
    return fail('code' in outcome ? `exited (${outcome.code}) before listening` : `printed nothing within ${timeoutMs} ms`);
  }
  const event = parseListening(outcome.line);
  if (event === undefined) return fail(`printed ${JSON.stringify(outcome.line)} instead of a listening event`);
  // Both serve and demo write the human banner (stderr) right after the event, and its
  // first line names the URL: wait for it, so checks on what it does (not) contain are
  // not vacuous.
  const banner = await untilStderr((s) => s.includes(event.url), timeoutMs);
  if (banner !== 'match') return fail(`printed no banner naming ${event.url} on stderr (${banner})`);

  return {
    proc,
    pid: proc.pid!,
    event,
    lines,
    stderr: () => err,
    async waitForStderr(re, ms = 20_000) {
      const r = await untilStderr((s) => re.test(s), ms);
      if (r !== 'match') throw new Error(`${what}: stderr did not match ${re} (${r === 'ended' ? 'exited' : `${ms} ms`}):\n${err}`);
      return err;
    },
    waitForEvent(test, ms = 20_000, from = 0) {
      return new Promise((resolve, reject) => {
        const find = () => {
          for (let i = from; i < lines.length; i++) {
            try {
              const e = JSON.parse(lines[i]!) as Record<string, unknown>;
              if (test(e)) return e;
            } catch {
              // not JSON: ignore
            }
          }
          return undefined;
        };
        const finish = (e: Record<string, unknown> | undefined, why?: string) => {
          clearTimeout(deadline);
          watchers.delete(check);
          if (e) resolve(e);
          else reject(new Error(`${what}: no matching event (${why}); stdout:\n${lines.join('\n')}\n${err}`));
        };
        const check = () => {
          const e = find();
          if (e) finish(e);
          else if (ended) finish(undefined, 'exited');
        };
        const deadline = setTimeout(() => finish(undefined, `${ms} ms`), ms);
        watchers.add(check);
        check();
      });
    },
    exited,
    async stop(graceMs = 10_000) {
      if (ended || proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill('SIGTERM');
      let kill: NodeJS.Timeout | undefined;
      const killed = new Promise<null>((r) => {
        kill = setTimeout(() => {
          proc.kill('SIGKILL');
          r(null);
        }, graceMs);
      });
      const code = await Promise.race([exited, killed]);
      clearTimeout(kill);
      await exited;
      return code;
    },
  };
}
