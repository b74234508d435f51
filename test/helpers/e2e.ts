// Plumbing for the end-to-end suites (test/e2e/): the real CLI with every stdout line kept
// and every wait bounded, raw-socket exchanges for hostile peers, and process memory.
// Readiness is always a real signal (the first JSON line, 'connect', a parsed answer).
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { createInterface } from 'node:readline';
import type { TestContext } from 'node:test';
import { BIN, type CliResult, cleanEnv } from './cli.js';

export type Env = Record<string, string | undefined>;

const stacks = new WeakMap<TestContext, (() => unknown)[]>();

/**
 * Registers `fn` to run after the test, in reverse order of registration (t.after runs
 * hooks first-in first-out, which would remove a home before its gateway has stopped).
 */
export function defer(t: TestContext, fn: () => unknown): void {
  let stack = stacks.get(t);
  if (stack === undefined) {
    const s: (() => unknown)[] = [];
    stack = s;
    stacks.set(t, s);
    t.after(async () => {
      for (const f of s.reverse()) await f();
    });
  }
  stack.push(fn);
}

export interface BoundedResult extends CliResult {
  /** True when the command had to be stopped because it outlived `timeoutMs`. */
  timedOut: boolean;
}

/**
 * Runs a CLI command to completion like runCli, but never waits forever: a command that is
 * expected to fail and instead starts serving is stopped after `timeoutMs` and reported
 * with `timedOut: true` (the assertion on its exit code then fails instead of hanging).
 */
export async function runCliBounded(args: string[], env: Env, timeoutMs = 20_000): Promise<BoundedResult> {
  const child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin.end();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr, timedOut };
}

export interface ListeningEvent extends Record<string, unknown> {
  event: 'listening';
  url: string;
  host: string;
  port: number;
  generatedToken?: string;
}

export interface GatewayProcess {
  proc: ChildProcess;
  pid: number;
  /** The first stdout line, parsed: the readiness signal. */
  event: ListeningEvent;
  /** Every stdout line so far, the first included. */
  lines: string[];
  stderr(): string;
  /** Resolves with the exit code once the process has exited (and its stdout is drained). */
  exited: Promise<number | null>;
  /** SIGTERM, then the exit code; SIGKILL (and null) if it does not exit within `graceMs` (10 s). */
  stop(graceMs?: number): Promise<number | null>;
}

/**
 * Starts `porthole serve --json …` (pass the flags; `--json` is added when missing) and
 * resolves with its first JSON line once the gateway listens. Rejects, with stderr, if the
 * process exits first or prints nothing within `timeoutMs`.
 */
export async function startGatewayProcess(args: string[], env: Env, timeoutMs = 20_000): Promise<GatewayProcess> {
  const full = args.includes('--json') ? args : [...args, '--json'];
  const proc = spawn(process.execPath, [BIN, ...full], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const lines: string[] = [];
  const rl = createInterface({ input: proc.stdout! });
  const closed = once(rl, 'close');
  const first = new Promise<string>((resolve) => rl.once('line', resolve));
  rl.on('line', (l) => lines.push(l));
  const exited = (async () => {
    const [code] = (await once(proc, 'exit')) as [number | null];
    await closed;
    return code;
  })();
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
    if (proc.exitCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
    const why = 'code' in outcome ? `exited (${outcome.code})` : `printed nothing within ${timeoutMs} ms`;
    throw new Error(`porthole ${full.join(' ')} ${why} before listening:\n${err}`);
  }
  const event = JSON.parse(outcome.line) as ListeningEvent;
  // The human banner (stderr) is written right after the event; wait for it, so checks on
  // what it does (not) contain are not vacuous. Its first line names the URL.
  if (!err.includes(event.url)) {
    const seen = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => done(false), timeoutMs);
      const onData = () => {
        if (err.includes(event.url)) done(true);
      };
      const done = (v: boolean) => {
        clearTimeout(t);
        proc.stderr!.off('data', onData);
        resolve(v);
      };
      proc.stderr!.on('data', onData);
    });
    if (!seen) {
      proc.kill('SIGKILL');
      await exited;
      throw new Error(`porthole printed no banner naming ${event.url} on stderr:\n${err}`);
    }
  }
  return {
    proc,
    pid: proc.pid!,
    event,
    lines,
    stderr: () => err,
    exited,
    async stop(graceMs = 10_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
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

/** Resident and peak memory of a process from /proc/<pid>/status, in bytes. */
export function processMemory(pid: number): { rss: number; hwm: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, 'm').exec(text);
    if (!m) throw new Error(`no ${name} in /proc/${pid}/status`);
    return Number(m[1]) * 1024;
  };
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

export interface RawAnswer {
  /** Everything received, as latin1 text. */
  raw: string;
  /** Status code of the first response, undefined when none arrived. */
  status: number | undefined;
  /** The first response's body (by Content-Length), when it has one. */
  body: string;
  /** Whether the peer closed the connection. */
  closed: boolean;
}

/** Parses one HTTP/1.1 response from the start of `raw`, if complete (Content-Length framed or ended). */
export function parseRawResponse(raw: string, ended: boolean): { status: number; body: string } | undefined {
  const end = raw.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(raw);
  if (!m) return undefined;
  const head = raw.slice(0, end);
  const len = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  const body = raw.slice(end + 4);
  if (len) {
    const n = Number(len[1]);
    if (body.length < n) return undefined;
    return { status: Number(m[1]), body: body.slice(0, n) };
  }
  if (!ended) return undefined;
  return { status: Number(m[1]), body };
}

/**
 * Connects to 127.0.0.1:`port`, writes `payload`, and collects the answer until one whole
 * response has arrived or the peer closes, bounded by `timeoutMs` (then `status` is
 * whatever was parsed, possibly undefined). Write errors (the peer closing while a large
 * payload is still going out) are expected from hostile requests and ignored.
 */
export async function rawExchange(port: number, payload: string | Buffer, timeoutMs = 10_000): Promise<RawAnswer> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  let raw = '';
  let closed = false;
  return new Promise<RawAnswer>((resolve) => {
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      const parsed = parseRawResponse(raw, true);
      resolve({ raw, status: parsed?.status, body: parsed?.body ?? '', closed });
    };
    const timer = setTimeout(finish, timeoutMs);
    socket.on('data', (d: Buffer) => {
      raw += d.toString('latin1');
      if (parseRawResponse(raw, false)) finish();
    });
    socket.on('close', () => {
      closed = true;
      finish();
    });
    socket.write(payload);
  });
}

/** The `error.code` of a JSON error body, or undefined. */
export function errorCodeOf(body: string): string | undefined {
  try {
    return (JSON.parse(body) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

/** `[CODE]` as the CLI prints it on stderr. */
export function cliCode(stderr: string): string | undefined {
  return /\[([A-Z][A-Z_]+)\]/.exec(stderr)?.[1];
}
