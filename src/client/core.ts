// The SDK's transport-independent part: handshake, requests with time-outs, events, and
// reconnects with jittered back-off (connectLoop around connectOnce). The Node and browser
// entries give it a way to open a socket. No Node imports: it runs in browsers too.
import { type Challenge, type ConnectAuth, type EventFrame, FATAL_CLOSE_CODES, type HelloPayload, PROTOCOL_MAX, PROTOCOL_MIN, parseFrame, proofMessage, type ResFrame } from '../control/wire.js';
import { ControlError, errorForClose } from './errors.js';

/** One open WebSocket, as the core sees it. */
export interface Transport {
  send(text: string): void;
  close(code?: number, reason?: string): void;
  /** This side's TLS exporter for the connection (base64url), or undefined (no TLS, or a browser). */
  exporter(): string | undefined;
  /** Whether the transport reports the server's pings (Node does; browsers hide them). */
  readonly seesPings: boolean;
}

export interface TransportEvents {
  message(text: string): void;
  close(code: number, reason: string): void;
  /** Any sign of life that is not a message (a ping). */
  activity(): void;
}

/** Opens a socket; resolves once it is open (and, in Node, its TLS pin checked). */
export type OpenTransport = (events: TransportEvents) => Promise<Transport>;

export interface CoreOptions {
  open: OpenTransport;
  /** The gateway token (`ph_…`). Without one the connection must carry a session cookie (browser console). */
  token?: string;
  /**
   * A paired device's key (docs/pairing.md): the client signs each challenge with it
   * (`connect` scheme `device`) instead of sending a token. `sign` gets the exact bytes to sign
   * and returns the Ed25519 signature, base64url. Takes precedence over `token`.
   */
  device?: { id: string; sign(message: Uint8Array): string | Promise<string> };
  deviceName?: string;
  /** Per-request time-out. Default 30 s. */
  requestTimeoutMs?: number;
  /** Time to open and authenticate. Default 15 s. */
  connectTimeoutMs?: number;
  /** Reconnect after a connection that was up drops. Default true. */
  reconnect?: boolean;
  /** Back-off: first delay and cap, full jitter. Default 500 ms and 30 s. */
  backoffMs?: { initial: number; max: number };
}

export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface ControlClient {
  /** The server's hello for the current connection. */
  readonly hello: HelloPayload;
  readonly state: ClientState;
  /** Calls a method; rejects with a ControlError (its `code` from the server, or CONTROL_TIMEOUT / CONTROL_DISCONNECTED). */
  request<T = unknown>(method: string, params?: unknown, options?: { timeoutMs?: number }): Promise<T>;
  /** Subscribes to an event ("*" for all); returns the unsubscribe function. */
  on(event: string, handler: (payload: unknown, event: string) => void): () => void;
  /** State changes; `error` says why the client closed or is reconnecting. */
  onState(handler: (state: ClientState, error?: ControlError) => void): () => void;
  /** Resolves when the client has closed for good, with the reason (undefined after close()). */
  readonly closed: Promise<ControlError | undefined>;
  close(): Promise<void>;
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: ControlError): void;
  timer: ReturnType<typeof setTimeout>;
}

interface Subtle {
  digest(alg: string, data: Uint8Array): Promise<ArrayBuffer>;
  importKey(format: 'raw', key: ArrayBuffer, alg: { name: string; hash: string }, extractable: boolean, usages: string[]): Promise<unknown>;
  sign(alg: string, key: unknown, data: Uint8Array): Promise<ArrayBuffer>;
}

function subtle(): Subtle | undefined {
  return (globalThis as { crypto?: { subtle?: Subtle } }).crypto?.subtle;
}

function base64url(buf: ArrayBuffer): string {
  const bytes = new Uint8Array(buf);
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** HMAC-SHA256 keyed by SHA-256(token) over the proof message (docs/control-plane.md). */
async function hmacProof(token: string, message: string): Promise<string | undefined> {
  const c = subtle();
  if (!c) return undefined;
  const enc = new TextEncoder();
  const key = await c.importKey('raw', await c.digest('SHA-256', enc.encode(token)), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return base64url(await c.sign('HMAC', key, enc.encode(message)));
}

/** The proof for this challenge: the HMAC when it can be computed with the binding the server offers, else the token. */
async function chooseAuth(
  token: string | undefined,
  challenge: Challenge,
  exporter: string | undefined,
  deviceName: string,
  device: CoreOptions['device'],
): Promise<ConnectAuth> {
  const serverBinds = Array.isArray(challenge.bindings) && challenge.bindings.includes('tls-exporter');
  if (device !== undefined) {
    // Bound to this challenge and, when the gateway terminates TLS, to this connection.
    if (serverBinds && exporter === undefined) {
      throw new ControlError('CONTROL_AUTH_UNSUPPORTED', 'a device signature needs the TLS exporter, which this runtime does not expose', false);
    }
    const message = `porthole-control-device-v1\n${challenge.nonce}\n${challenge.ts}\n${serverBinds ? exporter! : ''}\n${device.id}`;
    return { scheme: 'device', deviceId: device.id, signature: await device.sign(new TextEncoder().encode(message)) };
  }
  if (token === undefined) return { scheme: 'session' };
  // The server terminates TLS and we cannot read the exporter (a browser): only the token
  // itself can prove it — over that TLS connection.
  if (serverBinds && exporter === undefined) return { scheme: 'token', token };
  const binding = serverBinds ? 'tls-exporter' : 'none';
  const proof = await hmacProof(token, proofMessage({ nonce: challenge.nonce, ts: challenge.ts, binding, exporter: serverBinds ? exporter! : '', deviceName }));
  return proof === undefined ? { scheme: 'token', token } : { scheme: 'hmac', proof, binding };
}

export async function createClient(options: CoreOptions): Promise<ControlClient> {
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  const connectTimeoutMs = options.connectTimeoutMs ?? 15_000;
  const backoff = options.backoffMs ?? { initial: 500, max: 30_000 };
  const deviceName = options.deviceName ?? '';
  const handlers = new Map<string, Set<(p: unknown, e: string) => void>>();
  const stateHandlers = new Set<(s: ClientState, e?: ControlError) => void>();
  const pending = new Map<string, Pending>();
  let nextId = 1;
  let state: ClientState = 'connecting';
  let transport: Transport | undefined;
  let hello: HelloPayload | undefined;
  let lastActivity = Date.now();
  let liveness: ReturnType<typeof setInterval> | undefined;
  let waiters: { resolve(): void; reject(e: ControlError): void }[] = [];
  let resolveClosed!: (e: ControlError | undefined) => void;
  const closed = new Promise<ControlError | undefined>((r) => {
    resolveClosed = r;
  });
  let retryTimer: ReturnType<typeof setTimeout> | undefined;

  function setState(s: ClientState, err?: ControlError): void {
    state = s;
    for (const h of stateHandlers) h(s, err);
    if (s === 'open') {
      for (const w of waiters) w.resolve();
      waiters = [];
    }
    if (s === 'closed') {
      for (const w of waiters) w.reject(err ?? new ControlError('CONTROL_CLOSED', 'the client is closed'));
      waiters = [];
      resolveClosed(err);
    }
  }

  function failPending(err: ControlError): void {
    for (const [id, p] of pending) {
      clearTimeout(p.timer);
      pending.delete(id);
      p.reject(err);
    }
  }

  function dispatchEvent(f: EventFrame): void {
    for (const key of [f.event, '*']) {
      for (const h of handlers.get(key) ?? []) {
        try {
          h(f.payload, f.event);
        } catch {
          // A subscriber's bug must not break the connection.
        }
      }
    }
  }

  /** One attempt: open, answer the challenge, get the hello. */
  function connectOnce(): Promise<{ t: Transport; h: HelloPayload }> {
    return new Promise((resolve, reject) => {
      let t: Transport | undefined;
      let done = false;
      let phase: 'challenge' | 'hello' | 'open' = 'challenge';
      const connectId = `c${nextId++}`;
      const finish = (err: ControlError | undefined, h?: HelloPayload) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) {
          t?.close(1000);
          reject(err);
        } else resolve({ t: t!, h: h! });
      };
      const timer = setTimeout(() => finish(new ControlError('CONTROL_TIMEOUT', `no authenticated connection within ${connectTimeoutMs} ms`, true)), connectTimeoutMs);
      const events: TransportEvents = {
        activity() {
          lastActivity = Date.now();
        },
        message(text) {
          lastActivity = Date.now();
          const f = parseFrame(text);
          if (phase === 'open') return onFrame(f);
          if (!f) return finish(new ControlError('CONTROL_BAD_FRAME', 'the server sent a malformed frame'));
          if (phase === 'challenge') {
            if (f.type !== 'event' || f.event !== 'connect.challenge') return finish(new ControlError('CONTROL_BAD_FRAME', 'expected connect.challenge'));
            phase = 'hello';
            const challenge = f.payload as Challenge;
            chooseAuth(options.token, challenge, t?.exporter(), deviceName, options.device).then(
              (auth) => {
                const params = { nonce: challenge.nonce, minProtocol: PROTOCOL_MIN, maxProtocol: PROTOCOL_MAX, ...(deviceName ? { deviceName } : {}), auth };
                t?.send(JSON.stringify({ type: 'req', id: connectId, method: 'connect', params }));
              },
              (err: unknown) => finish(err instanceof ControlError ? err : new ControlError('CONTROL_CONNECT_FAILED', 'could not compute the proof')),
            );
            return;
          }
          if (f.type !== 'res' || f.id !== connectId) return;
          if (!f.ok) {
            // The close that follows carries the close code; prefer the answer's own error.
            const e = f.error;
            return finish(new ControlError(e.code, e.message, e.retryable === true, e.retryAfter));
          }
          phase = 'open';
          finish(undefined, f.payload as HelloPayload);
        },
        close(code, reason) {
          if (phase === 'open' && done) return onClose(code, reason);
          finish(code === 1006 ? new ControlError('CONTROL_CONNECT_FAILED', 'the connection closed during the handshake', true) : errorForClose(code, reason));
        },
      };
      options.open(events).then(
        (opened) => {
          t = opened;
          if (done) opened.close(1000);
        },
        (err: unknown) => finish(err instanceof ControlError ? err : new ControlError('CONTROL_CONNECT_FAILED', (err as Error)?.message ?? String(err), true)),
      );
    });
  }

  function onFrame(f: ReturnType<typeof parseFrame>): void {
    if (!f) return;
    if (f.type === 'res') {
      const p = pending.get(f.id);
      if (!p) return;
      pending.delete(f.id);
      clearTimeout(p.timer);
      const r = f as ResFrame;
      if (r.ok) p.resolve(r.payload);
      else p.reject(new ControlError(r.error.code, r.error.message, r.error.retryable === true, r.error.retryAfter));
    } else if (f.type === 'event') dispatchEvent(f);
  }

  function startLiveness(t: Transport, h: HelloPayload): void {
    if (liveness) clearInterval(liveness);
    const every = Math.max(50, h.heartbeatMs);
    lastActivity = Date.now();
    liveness = setInterval(() => {
      const idle = Date.now() - lastActivity;
      if (idle > 2 * every + 1000) {
        // The server stopped answering: drop it and reconnect.
        t.close(4000, 'peer unresponsive');
        onClose(1006, 'peer unresponsive');
      } else if (!t.seesPings && idle >= every) {
        client.request('health', undefined, { timeoutMs: every }).catch(() => {});
      }
    }, every);
    (liveness as { unref?: () => void }).unref?.();
  }

  let handledClose: Transport | undefined;
  function onClose(code: number, reason: string): void {
    if (!transport || handledClose === transport) return;
    handledClose = transport;
    if (liveness) clearInterval(liveness);
    liveness = undefined;
    const err = errorForClose(code, reason);
    failPending(new ControlError('CONTROL_DISCONNECTED', 'the connection closed before the answer; the request may or may not have run', false));
    if (state === 'closed') return;
    const fatal = FATAL_CLOSE_CODES.has(code) || code === 1002 || code === 1003 || code === 1009;
    // Banned: back only after Retry-After. The others: never, without new credentials.
    if ((fatal && !(code === 4029 && err.retryAfter !== undefined)) || options.reconnect === false) {
      setState('closed', err);
      return;
    }
    setState('reconnecting', err);
    void connectLoop(code === 4029 ? (err.retryAfter ?? 0) * 1000 : 0);
  }

  async function connectLoop(minDelayMs: number): Promise<void> {
    for (let attempt = 0; state === 'reconnecting'; attempt++) {
      const cap = Math.min(backoff.max, backoff.initial * 2 ** Math.min(attempt, 16));
      const delay = Math.max(minDelayMs, Math.random() * cap);
      minDelayMs = 0;
      await new Promise<void>((r) => {
        retryTimer = setTimeout(r, delay);
      });
      if (state !== 'reconnecting') return;
      try {
        const { t, h } = await connectOnce();
        if (state !== 'reconnecting') {
          t.close(1000);
          return;
        }
        transport = t;
        hello = h;
        startLiveness(t, h);
        setState('open');
        return;
      } catch (err) {
        const e = err as ControlError;
        if (!e.retryable && e.code !== 'CONTROL_CONNECT_FAILED') {
          setState('closed', e);
          return;
        }
        if (e.retryAfter !== undefined) minDelayMs = e.retryAfter * 1000;
      }
    }
  }

  function waitOpen(timeoutMs: number): Promise<void> {
    if (state === 'open') return Promise.resolve();
    if (state === 'closed') return Promise.reject(new ControlError('CONTROL_CLOSED', 'the client is closed'));
    return new Promise((resolve, reject) => {
      const w = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e: ControlError) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        waiters = waiters.filter((x) => x !== w);
        reject(new ControlError('CONTROL_TIMEOUT', 'not reconnected in time', true));
      }, timeoutMs);
      waiters.push(w);
    });
  }

  const client: ControlClient = {
    get hello() {
      return hello!;
    },
    get state() {
      return state;
    },
    async request<T>(method: string, params?: unknown, opts: { timeoutMs?: number } = {}): Promise<T> {
      const timeoutMs = opts.timeoutMs ?? requestTimeoutMs;
      const started = Date.now();
      await waitOpen(timeoutMs);
      const t = transport!;
      const id = String(nextId++);
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(
          () => {
            pending.delete(id);
            reject(new ControlError('CONTROL_TIMEOUT', `no answer to ${method} within ${timeoutMs} ms`, true));
          },
          Math.max(1, timeoutMs - (Date.now() - started)),
        );
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
        t.send(JSON.stringify(params === undefined ? { type: 'req', id, method } : { type: 'req', id, method, params }));
      });
    },
    on(event, handler) {
      let set = handlers.get(event);
      if (!set) {
        set = new Set();
        handlers.set(event, set);
      }
      set.add(handler);
      return () => set.delete(handler);
    },
    onState(handler) {
      stateHandlers.add(handler);
      return () => stateHandlers.delete(handler);
    },
    closed,
    async close() {
      if (state === 'closed') return;
      if (retryTimer) clearTimeout(retryTimer);
      if (liveness) clearInterval(liveness);
      setState('closed');
      failPending(new ControlError('CONTROL_CLOSED', 'the client was closed'));
      transport?.close(1000, 'client closing');
    },
  };

  // The first connection either succeeds or rejects: no silent retrying before the caller
  // knows the URL, token and pin work.
  const first = await connectOnce();
  transport = first.t;
  hello = first.h;
  startLiveness(first.t, first.h);
  setState('open');
  return client;
}
