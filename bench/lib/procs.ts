// Child processes of one benchmark run: every one is registered at spawn, its output goes to
// a log file in the run's temp dir, and stopAll() ends each by its PID (SIGTERM, then SIGKILL
// after a grace period). Readiness is a JSON line on stdout or an accepted TCP connection.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, readFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const STOP_GRACE_MS = 5_000;

export interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logFile: string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  /** The last lines of the process's log, for error messages. */
  tail(lines?: number): string;
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Keep stdout as a pipe for readFirstLine() instead of sending it to the log. */
  pipeStdout?: boolean;
}

export class ProcessSet {
  private readonly procs = new Set<Proc>();

  constructor(private readonly logDir: string) {}

  spawn(name: string, command: string, args: string[], options: SpawnOptions = {}): Proc {
    const logFile = join(this.logDir, `${name}.log`);
    const log = createWriteStream(logFile);
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (!options.pipeStdout) child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    const exited = new Promise<number | string>((resolve) => {
      child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
      // A failed spawn (ENOENT) emits 'error' and no 'exit'.
      child.once('error', (err) => resolve(`spawn error: ${err.message}`));
    });
    const proc: Proc = {
      name,
      child,
      logFile,
      exited,
      tail(lines = 20) {
        try {
          return readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
        } catch {
          return '';
        }
      },
    };
    this.procs.add(proc);
    void exited.then(() => {
      this.procs.delete(proc);
      log.end();
    });
    return proc;
  }

  /** Stops one process by its PID: SIGTERM, then SIGKILL if it has not exited after the grace period. */
  async stop(proc: Proc): Promise<void> {
    const pid = proc.child.pid;
    if (pid === undefined || proc.child.exitCode !== null || proc.child.signalCode !== null) {
      this.procs.delete(proc);
      return;
    }
    signal(pid, 'SIGTERM');
    const timer = setTimeout(() => signal(pid, 'SIGKILL'), STOP_GRACE_MS);
    await proc.exited;
    clearTimeout(timer);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.procs].map((p) => this.stop(p)));
  }

  /** Synchronous last resort for process 'exit': SIGKILL whatever is still running. */
  killAllNow(): void {
    for (const p of this.procs) if (p.child.pid !== undefined) signal(p.child.pid, 'SIGKILL');
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

/** The first stdout line of `proc` (its readiness event), or an error if it exits or times out first. */
export async function readFirstLine(proc: Proc, timeoutMs: number): Promise<string> {
  const stdout = proc.child.stdout;
  if (!stdout) throw new Error(`${proc.name}: stdout is not piped`);
  const lines = createInterface({ input: stdout });
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      once(lines, 'line').then(([line]) => String(line)),
      proc.exited.then((code) => {
        throw new Error(`${proc.name} exited (${code}) before it was ready:\n${proc.tail()}`);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${proc.name} not ready after ${timeoutMs} ms:\n${proc.tail()}`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    lines.close();
    // Keep draining stdout so a chatty child never blocks on a full pipe.
    stdout.resume();
  }
}

/**
 * A port the kernel considers free right now. RACE: the port is released before the caller's
 * server binds it, so another process could take it in between. nginx and Caddy cannot bind
 * port 0 and report it back, so this is acceptable for a benchmark; tests must never do this
 * (they bind port 0 and read the address).
 */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/** Waits until 127.0.0.1:`port` accepts a TCP connection (polling: nginx/Caddy have no readiness event here). */
export async function waitForPort(proc: Proc, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited: number | string | undefined;
  void proc.exited.then((code) => {
    exited = code;
  });
  for (;;) {
    if (exited !== undefined) throw new Error(`${proc.name} exited (${exited}) before accepting connections:\n${proc.tail()}`);
    if (await canConnect(port)) return;
    if (Date.now() > deadline) throw new Error(`${proc.name} not accepting on 127.0.0.1:${port} after ${timeoutMs} ms:\n${proc.tail()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
