// Runs the `tailscale` CLI: execFile-style (no shell), a timeout, bounded output, and
// never a secret in argv. Its failures are turned into porthole error codes here, in one
// place: the tailscale CLI reports them only as text, so this is the one spot that reads
// another program's messages (porthole's own errors are matched by code, never by text).
import { spawn } from 'node:child_process';
import { PortholeError } from '../errors.js';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Ended by porthole: the timeout passed, or the output matched `abortOn`. */
  aborted: 'timeout' | 'matched' | undefined;
}

export interface RunOptions {
  /** Default: the runner's (15 s). */
  timeoutMs?: number;
  /**
   * Ends the command as soon as its output matches: `tailscale serve` waits for a person
   * to enable HTTPS in the admin console when it is off; porthole reports that instead.
   */
  abortOn?: RegExp;
}

/** A way to run `tailscale ARGS`. Tests put the emulator first on PATH; nothing else differs. */
export type TailscaleRunner = (args: string[], options?: RunOptions) => Promise<RunResult>;

export interface RunnerOptions {
  /** Default "tailscale", found on PATH. */
  bin?: string;
  /** Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Default 15 s. */
  timeoutMs?: number;
}

const MAX_OUTPUT = 1024 * 1024;

export function createTailscaleRunner(options: RunnerOptions = {}): TailscaleRunner {
  const bin = options.bin ?? 'tailscale';
  const env = options.env ?? process.env;
  return (args, { timeoutMs = options.timeoutMs ?? 15_000, abortOn } = {}) =>
    new Promise((resolve, reject) => {
      const child = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'], shell: false });
      let stdout = '';
      let stderr = '';
      let aborted: RunResult['aborted'];
      const stop = (why: 'timeout' | 'matched') => {
        if (aborted || child.exitCode !== null) return;
        aborted = why;
        child.kill('SIGKILL');
      };
      const timer = setTimeout(() => stop('timeout'), timeoutMs);
      const onData = (which: 'out' | 'err') => (d: string) => {
        if (which === 'out' && stdout.length < MAX_OUTPUT) stdout += d;
        if (which === 'err' && stderr.length < MAX_OUTPUT) stderr += d;
        if (abortOn?.test(stdout + stderr)) stop('matched');
      };
      child.stdout.setEncoding('utf8').on('data', onData('out'));
      child.stderr.setEncoding('utf8').on('data', onData('err'));
      child.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (err.code === 'ENOENT' || err.code === 'EACCES') {
          reject(
            new PortholeError(
              'TAILSCALE_NOT_INSTALLED',
              `the tailscale command was not found on PATH: install Tailscale (https://tailscale.com/download) and log in with \`tailscale up\``,
              { cause: err },
            ),
          );
        } else reject(new PortholeError('TAILSCALE_FAILED', `cannot run tailscale: ${err.message}`, { cause: err }));
      });
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr, aborted });
      });
    });
}

/** The admin-console link tailscale prints when a feature is off (not a secret: it needs a login). */
function enableLink(text: string): string | undefined {
  return /https:\/\/login\.tailscale\.com\/f\/[^\s]+/.exec(text)?.[0];
}

/** The first meaningful line of tailscale's own message, shortened, for TAILSCALE_FAILED. */
function firstLine(text: string): string {
  const line = text.split('\n').find((l) => l.trim() !== '') ?? '';
  return line.length > 300 ? `${line.slice(0, 297)}...` : line.trim();
}

export const SUDO_HINT =
  'porthole never runs sudo for you: make your user a Tailscale operator once with `sudo tailscale set --operator=$USER`, then try again';

/**
 * What a failed (or "successful" but refusing) tailscale command means, as a porthole error.
 * `action` says what porthole was doing, e.g. "tailscale serve".
 */
export function tailscaleFailure(r: RunResult, action: string): PortholeError {
  const text = `${r.stderr}\n${r.stdout}`;
  if (/failed to connect to local tailscaled|Failed to connect to local Tailscale daemon|doesn't appear to be running/i.test(text)) {
    return new PortholeError(
      'TAILSCALE_NOT_RUNNING',
      'tailscaled is not running: start it (`sudo systemctl start tailscaled`, or open the Tailscale app)',
    );
  }
  if (/Tailscale is stopped/i.test(text)) {
    return new PortholeError('TAILSCALE_NOT_RUNNING', 'Tailscale is stopped: connect it with `tailscale up`');
  }
  if (/Logged out|Log in at:|NeedsLogin|not yet approved/i.test(text)) {
    return new PortholeError('TAILSCALE_NOT_LOGGED_IN', 'this machine is not logged in to a tailnet: run `tailscale up` (or approve it in the admin console)');
  }
  if (/Access denied|must be root|sudo tailscale/i.test(text)) {
    return new PortholeError('TAILSCALE_PERMISSION_DENIED', `${action} was refused by tailscaled (permission denied). ${SUDO_HINT}`);
  }
  const link = enableLink(text);
  if (/Funnel is not enabled|"funnel" node attribute not set|not allowed for funnel|Funnel not available; "funnel"/i.test(text)) {
    return new PortholeError(
      'TAILSCALE_FUNNEL_DISABLED',
      `Funnel is not enabled for this node: allow it in the tailnet policy (nodeAttrs "funnel")${link ? `, or visit ${link}` : ''} (https://tailscale.com/kb/1223/funnel); ${firstLine(r.stderr || r.stdout)}`,
    );
  }
  if (/Serve is not enabled|HTTPS must be enabled|enabling https feature/i.test(text)) {
    return new PortholeError(
      'TAILSCALE_HTTPS_DISABLED',
      `HTTPS certificates are not enabled for this tailnet: enable them in the admin console (DNS → HTTPS Certificates)${link ? `, or visit ${link}` : ''}`,
    );
  }
  if (r.aborted === 'timeout') return new PortholeError('TAILSCALE_FAILED', `${action} did not answer in time`);
  return new PortholeError('TAILSCALE_FAILED', `${action} failed: ${firstLine(r.stderr || r.stdout) || `exit code ${r.code}`}`);
}

/** Runs and fails with tailscaleFailure unless the command exits 0. */
export async function runOk(run: TailscaleRunner, args: string[], action: string, options?: RunOptions): Promise<RunResult> {
  const r = await run(args, options);
  if (r.code !== 0 || r.aborted) throw tailscaleFailure(r, action);
  return r;
}
