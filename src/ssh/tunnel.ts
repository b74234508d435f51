// A managed `ssh -L` to the gateway (what autossh does, for porthole): connectLoop owns
// back-off and cancellation, connectOnce is one ssh process until its forward is ready.
//
// Readiness is a real signal, not a probe: ssh's LocalCommand prints a marker once the
// local forward listens, and the remote command prints another once the session runs.
// A key restricted to forwarding (a forced command, `restrict,port-forwarding`) never
// prints the second: ssh ends instead, and porthole falls back to `-N` for good.
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { PortholeError, type ErrorCode } from '../errors.js';
import { type Logger, debugLogger } from '../log.js';
import { backoffDelay, backoffSettings, type BackoffOptions, delayUnlessWoken } from '../util/backoff.js';
import { FORWARD_READY_MARKER, type ForwardSpec, managedArgs, SESSION_READY_MARKER } from './command.js';
import { classifySshExit, lastLine } from './probe.js';

export interface SshTunnelOptions {
  /** The ssh executable (findSsh). */
  ssh: string;
  target: string;
  forward: ForwardSpec;
  /** `-F` for ssh; default ssh's own config. */
  configFile?: string;
  /** `-o Ciphers=` value (preferredCiphers), if any. */
  ciphers?: string;
  /** Environment for ssh (its PATH, SSH_AUTH_SOCK, HOME). porthole's own variables are removed. */
  env: Record<string, string | undefined>;
  /** Keep reconnecting after failures (the `--run` tunnel); false: the first failure is final (remote CLI mode). */
  retry?: boolean;
  backoff?: BackoffOptions;
  /** Time for ssh to connect and open the forward. Default 30 s (ssh's own ConnectTimeout is 15 s). */
  readyTimeoutMs?: number;
  /** After the forward is up, time to wait for the remote command's marker before calling it online anyway. Default 10 s. */
  sessionTimeoutMs?: number;
  logger?: Logger;
}

export type SshSession = 'command' | 'forward-only';
type Problem = { code: string; message: string };

export type SshTunnelState =
  | { state: 'stopped' }
  | { state: 'connecting'; attempt: number; session: SshSession; lastError?: Problem }
  | { state: 'online'; since: number; session: SshSession; pid: number }
  | { state: 'waiting'; retryInMs: number; attempt: number; lastError: Problem }
  /** Given up: retrying cannot help (host key, login, local port) or `retry` is off. */
  | { state: 'failed'; error: Problem };

export interface SshTunnel extends EventEmitter {
  start(): void;
  stop(): Promise<void>;
  status(): SshTunnelState;
  /** Resolves when online; rejects with the error once failed or stopped first. */
  whenOnline(): Promise<void>;
}

type SshChild = ChildProcessByStdio<Writable, Readable, Readable>;
type SessionError = PortholeError & { sessionEnded?: boolean };

interface Running {
  child: SshChild;
  /** Whether the remote command's marker arrived (false: forward up, session unconfirmed). */
  sessionConfirmed: boolean;
  /** Resolves once ssh has exited and its output is drained. */
  exited: Promise<{ code: number | null; stderr: string }>;
}

/** ssh's environment: the caller's, minus porthole's own variables (its token above all). */
export function sshEnv(env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && !k.startsWith('PORTHOLE_')) out[k] = v;
  return out;
}

/** One ssh process, resolved once its forward is ready (and, in `command` mode, its session runs). */
export function connectOnce(o: SshTunnelOptions, session: SshSession, onSpawn?: (r: Running) => void): Promise<Running> {
  const args = managedArgs({ ssh: o.ssh, target: o.target, forward: o.forward, session, configFile: o.configFile, ciphers: o.ciphers });
  // stdin stays open (and unused): the remote `cat` ends when it closes, i.e. when we do.
  const child = spawn(o.ssh, args, { env: sshEnv(o.env), stdio: ['pipe', 'pipe', 'pipe'] }) as SshChild;
  child.stdin.on('error', () => {}); // EPIPE once ssh has gone: its exit is what we report
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-8192);
  });
  let spawnError: NodeJS.ErrnoException | undefined;
  child.on('error', (e) => (spawnError = e));
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) => {
    child.once('close', (code: number | null) => resolve({ code: spawnError ? 255 : code, stderr: spawnError ? `${spawnError.code}` : stderr }));
  });
  const running: Running = { child, sessionConfirmed: false, exited };
  onSpawn?.(running);
  return new Promise((resolve, reject) => {
    let forwardUp = false;
    let done = false;
    let sessionTimer: NodeJS.Timeout | undefined;
    const finish = (err?: PortholeError) => {
      if (done) return;
      done = true;
      clearTimeout(readyTimer);
      clearTimeout(sessionTimer);
      if (err) {
        child.kill('SIGTERM');
        reject(err);
      } else resolve(running);
    };
    const readyTimer = setTimeout(
      () => finish(new PortholeError('SSH_UNREACHABLE', `ssh to ${o.target} did not open the forward within ${Math.round((o.readyTimeoutMs ?? 30_000) / 1000)} s`)),
      o.readyTimeoutMs ?? 30_000,
    );
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      if (line === FORWARD_READY_MARKER && !forwardUp) {
        forwardUp = true;
        if (session === 'forward-only') return finish();
        // The forward listens; a normal session says so next. A long-running forced command
        // never will: call it online after a while anyway (its forward works).
        sessionTimer = setTimeout(() => finish(), o.sessionTimeoutMs ?? 10_000);
      } else if (line === SESSION_READY_MARKER && forwardUp) {
        running.sessionConfirmed = true;
        finish();
      }
    });
    void exited.then(({ code, stderr: err }) => {
      if (done) return;
      const e = exitError(o.target, code, err, forwardUp) as SessionError;
      // Forwarded, then the session ended by itself without our marker: a forced command.
      e.sessionEnded = session === 'command' && forwardUp && code !== 255 && code !== null;
      finish(e);
    });
  });
}

function exitError(target: string, code: number | null, stderr: string, forwardUp: boolean): PortholeError {
  if (code !== 255 && code !== null && forwardUp) {
    // ssh connected and forwarded, but the session ended by itself: a forced command.
    return new PortholeError('SSH_UNREACHABLE', `the session on ${target} ended at once (exit ${code}); the key is probably restricted to forwarding`);
  }
  const f = classifySshExit(target, code, stderr);
  return new PortholeError(f.code, f.message);
}

const PERMANENT = new Set<string>(['SSH_HOST_KEY_UNVERIFIED', 'SSH_AUTH_FAILED', 'SSH_FORWARD_FAILED']);

export function createSshTunnel(o: SshTunnelOptions): SshTunnel {
  const logger = o.logger ?? debugLogger;
  const backoff = backoffSettings(o.backoff);
  const emitter = new EventEmitter() as SshTunnel;
  let state: SshTunnelState = { state: 'stopped' };
  let running = false;
  let current: Running | undefined;
  let pending: Running | undefined;
  let attempt = 0;
  let session: SshSession = 'command';
  let everOnline = false;

  const set = (s: SshTunnelState) => {
    state = s;
    emitter.emit('state', s);
  };

  async function connectLoop(): Promise<void> {
    let lastError: Problem | undefined;
    while (running) {
      attempt++;
      set({ state: 'connecting', attempt, session, ...(lastError ? { lastError } : {}) });
      let error: Problem;
      let permanent = false;
      try {
        const r = await connectOnce(o, session, (p) => (pending = p));
        pending = undefined;
        if (!running) {
          r.child.kill('SIGTERM');
          await r.exited;
          return;
        }
        current = r;
        const since = Date.now();
        everOnline = true;
        set({ state: 'online', since, session, pid: r.child.pid ?? 0 });
        const { code, stderr } = await r.exited;
        current = undefined;
        if (!running) return;
        if (Date.now() - since >= backoff.stableMs) attempt = 0; // a stable link resets the back-off
        if (session === 'command' && !r.sessionConfirmed && code !== 255 && code !== null) {
          // Online without the session's marker, then the session ended: a forced command.
          session = 'forward-only';
          attempt = 0;
          continue;
        }
        const f = classifySshExit(o.target, code, stderr);
        error = { code: 'SSH_UNREACHABLE', message: `the SSH connection to ${o.target} ended${lastLine(stderr) ? `: ${lastLine(stderr)}` : ''}` };
        permanent = f.code === 'SSH_HOST_KEY_UNVERIFIED';
        if (permanent) error = { code: f.code, message: f.message };
        logger.log('warn', 'ssh tunnel offline', { code: error.code });
      } catch (err) {
        const e = err as SessionError;
        pending = undefined;
        if (!running) return;
        if (e.sessionEnded) {
          // The forward came up but the session ended without running our command: the key
          // is restricted to forwarding. `-N` from now on (retry at once, not a failure).
          session = 'forward-only';
          attempt--;
          continue;
        }
        error = { code: e.code ?? 'SSH_UNREACHABLE', message: e.message };
        // A host key problem is never retried; a login or local-port problem only once the tunnel has worked before.
        permanent = e.code === 'SSH_HOST_KEY_UNVERIFIED' || (!everOnline && PERMANENT.has(e.code));
        logger.log('warn', 'ssh tunnel connect failed', { code: error.code });
      }
      lastError = error;
      if (permanent || o.retry === false) {
        running = false;
        set({ state: 'failed', error });
        return;
      }
      const wait = backoffDelay(attempt, backoff, PERMANENT.has(error.code));
      set({ state: 'waiting', retryInMs: wait, attempt, lastError: error });
      await delayUnlessWoken(emitter, wait);
    }
  }

  return Object.assign(emitter, {
    start() {
      if (running) return;
      running = true;
      attempt = 0;
      void connectLoop();
    },
    async stop() {
      const wasRunning = running || current !== undefined;
      running = false;
      emitter.emit('wake');
      const c = current ?? pending;
      current = undefined;
      pending = undefined;
      if (c) await stopChild(c);
      if (wasRunning || state.state !== 'failed') set({ state: 'stopped' });
    },
    status: () => state,
    whenOnline() {
      return new Promise<void>((resolve, reject) => {
        const check = (s: SshTunnelState): boolean => {
          if (s.state === 'online') resolve();
          else if (s.state === 'failed') reject(new PortholeError(s.error.code as ErrorCode, s.error.message));
          else if (s.state === 'stopped') reject(new PortholeError('SSH_UNREACHABLE', 'the SSH tunnel was stopped'));
          else return false;
          return true;
        };
        if (check(state)) return;
        const onState = (s: SshTunnelState) => {
          if (check(s)) emitter.off('state', onState);
        };
        emitter.on('state', onState);
      });
    },
  });
}

/** SIGTERM, then SIGKILL if ssh has not exited within 5 s; resolves once it has. */
async function stopChild(r: Running): Promise<void> {
  r.child.stdin.end();
  r.child.kill('SIGTERM');
  const kill = setTimeout(() => r.child.kill('SIGKILL'), 5_000);
  await r.exited;
  clearTimeout(kill);
}
