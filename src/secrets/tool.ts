// Running the keyring backends' command-line tools (secret-tool, gdbus, security): found on
// PATH's absolute entries only, run without a shell, with a minimal environment, a timeout
// and a cap on output. Secrets travel on stdin and stdout only, never in argv or the environment.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

/** Per external call. A keyring answers in milliseconds; a hang means a prompt or a dead bus. */
export const KEYRING_TOOL_TIMEOUT_MS = 5_000;
const MAX_OUTPUT_BYTES = 1 << 20;

export interface ToolResult {
  ok: boolean;
  status: number | null;
  stdout: string;
  stderr: string;
  /** Set when the tool could not run or answer at all (missing, timed out, killed). */
  failure?: string;
}

export interface RunToolOptions {
  /** What the child sees: PATH and whatever else the tool needs, nothing more. */
  env: Record<string, string>;
  timeoutMs: number;
  input?: string;
  /** The failure when the tool is not on PATH (e.g. which package installs it). */
  missing: string;
  /** Appended to a time-out's message (e.g. what a hang usually means). */
  timeoutHint?: string;
}

/** Runs `name` (looked up on options.env.PATH) and reports how it ended; never throws. */
export function runTool(name: string, args: string[], options: RunToolOptions): ToolResult {
  // Absolute paths only: a relative or empty PATH entry would run whatever sits in the
  // working directory under that name — and some of these tools get a secret on stdin.
  const exe = findTool(name, options.env);
  if (exe === undefined) return { ok: false, status: null, stdout: '', stderr: '', failure: options.missing };
  const r = spawnSync(exe, args, {
    input: options.input ?? '',
    env: options.env,
    encoding: 'utf8',
    timeout: options.timeoutMs,
    killSignal: 'SIGKILL',
    maxBuffer: MAX_OUTPUT_BYTES,
    shell: false,
    windowsHide: true,
  });
  const stdout = r.stdout ?? '';
  const stderr = (r.stderr ?? '').trim();
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    const failure =
      code === 'ENOENT'
        ? options.missing
        : code === 'ETIMEDOUT'
          ? `${name} did not answer within ${options.timeoutMs / 1000} s${options.timeoutHint ? ` (${options.timeoutHint})` : ''}`
          : `${name} failed: ${r.error.message}`;
    return { ok: false, status: r.status, stdout, stderr, failure };
  }
  if (r.signal) return { ok: false, status: null, stdout, stderr, failure: `${name} was killed by ${r.signal}` };
  return { ok: r.status === 0, status: r.status, stdout, stderr };
}

/** The absolute path of `name` on PATH, skipping relative and empty entries; undefined if none. */
export function findTool(name: string, env: Record<string, string | undefined>): string | undefined {
  for (const dir of (env['PATH'] ?? '').split(delimiter)) {
    if (!isAbsolute(dir)) continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The variables of `from` named in `keys` that are set, for a child's minimal environment. */
export function pickEnv(from: Record<string, string | undefined>, keys: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of keys) {
    const v = from[k];
    if (v) out[k] = v;
  }
  return out;
}

export function firstLine(s: string): string {
  return s.split('\n', 1)[0]!.slice(0, 300);
}
