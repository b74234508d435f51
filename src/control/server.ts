// The control plane server on /_porthole/ws (DESIGN §4, docs/control-plane.md): upgrades
// the pipeline let through unauthenticated, runs the challenge/`connect` handshake, then
// carries req/res/event frames. Pre-auth sockets are cheap and few (64 KiB frames, a cap
// per client key, 10 s to authenticate); failed proofs feed the same ban table as HTTP.
// The handshake lives in handshake.ts, one connection's state and senders in session.ts;
// here: the upgrade gate, the socket's life, and method/event dispatch.
import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import type { BanTable } from '../auth/rate-limit.js';
import { PortholeError } from '../errors.js';
import type { TokenKeeper } from '../gateway/token-keeper.js';
import type { ConnectionTracker } from '../gateway/tracker.js';
import { writeSocketError } from '../gateway/respond.js';
import type { Logger } from '../log.js';
import { createHandshake } from './handshake.js';
import { checkName, errorShape, type MethodEntry, type MethodHandler, type MethodOptions } from './methods.js';
import { exporterOf } from './proof.js';
import { badFrame, closeWith, reason, send, type Session } from './session.js';
import { CLOSE, parseFrame, type ReqFrame } from './wire.js';

export interface ControlOptions {
  /** The gateway's id and version, sent in the hello. */
  serverId: string;
  version: string;
  token: TokenKeeper;
  bans: BanTable;
  /** Sessions authenticated by a credential are tracked here: rotating it closes them with 4003. */
  tracker: ConnectionTracker;
  /** Whether a credential id other than the master token's is still valid (password, devices). */
  isCredentialValid: (credential: string) => boolean;
  /** Whether the browser session a cookie named (its key) is still live. Absent: always. */
  isSessionLive?: (session: string) => boolean;
  /** Counts a request on a session-authenticated connection as use of that browser session (idle expiry). */
  touchSession?: (session: string) => void;
  logger: Logger;
  /** Time from upgrade to a valid `connect`. Default 10 s (then close 4008). */
  handshakeTimeoutMs?: number;
  /** Ping interval; a peer that misses a whole interval is dropped. Default 30 s. */
  heartbeatMs?: number;
  /** Largest frame before authentication. Default 64 KiB (then close 1009). */
  preAuthMaxFrameBytes?: number;
  /** Largest frame after authentication. Default 1 MiB. */
  maxFrameBytes?: number;
  /** Unauthenticated sockets per client key. Default 16 (more: HTTP 429 CONTROL_TOO_MANY_PENDING). */
  maxPendingPerClient?: number;
  /** Unauthenticated sockets in all. Default 1024. */
  maxPending?: number;
  /** A session whose unsent data passes this is closed 1013 (slow consumer). Default 4 MiB. */
  maxBufferedBytes?: number;
  /** Requests a session may have unanswered. Default 64 (more: CONTROL_BUSY, retryable). */
  maxInFlight?: number;
  /** The pairing issue's device signatures: verifies a `device` proof. Absent: refused. */
  verifyDevice?: DeviceVerifier;
  /** A paired device's bearer token (`phd_…`) sent with scheme `token`. Absent: such tokens are wrong tokens. */
  verifyDeviceToken?: (token: string) => DeviceVerdict;
}

/**
 * A device credential's verdict: who it is; `refused` (pending, revoked, expired: refused with
 * that code, never counted as a guess); undefined: wrong (counted toward the ban).
 */
export type DeviceVerdict =
  | { credential: string; sub: string; scope: 'admin' | 'read' }
  | { refused: { code: 'DEVICE_PENDING' | 'AUTH_REVOKED'; message: string } }
  | undefined;

export type DeviceVerifier = (proof: { deviceId: string; signature: string; nonce: string; ts: number; exporter: string }) => DeviceVerdict;

/** What the pipeline learnt about the upgrade (gateway.ts builds it from the Decision). */
export interface UpgradeContext {
  /** The brute-force key (DESIGN §3.2). */
  key: string;
  ingress: string;
  /**
   * The session cookie (allowed Origin), trusted-proxy user or open mode, if any. `session`:
   * the cookie's session key; a control session it authenticates ends when that session does.
   */
  ambient: { credential: string | undefined; sub: string; cred: string; scope: 'admin' | 'read'; session?: string } | undefined;
  /** False in trusted-proxy mode: porthole tokens are not accepted remotely. */
  tokenAccepted: boolean;
  /** --insecure-no-auth: every `connect` succeeds. */
  open: boolean;
}

export interface ControlPlane {
  /** Registers (or replaces) a method. */
  method(name: string, handler: MethodHandler, options?: MethodOptions): void;
  /**
   * Declares an event name so the hello lists it before the first publish. `scope: "admin"`:
   * only admin sessions get (and see listed) the event, for payloads a read-only credential
   * may not read elsewhere either (the device list). Default "read": every session.
   */
  event(name: string, options?: { scope?: 'admin' | 'read' }): void;
  /** Sends an event to every authenticated session; returns how many got it. */
  publish(event: string, payload?: unknown): number;
  /**
   * Listens to an event in-process (the embedding app, the `serve` terminal): called on every
   * publish, before the sessions are sent to. Returns the unsubscribe function.
   */
  subscribe(event: string, listener: (payload: unknown) => void): () => void;
  /** Authenticated sessions now. */
  readonly size: number;
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, ctx: UpgradeContext): void;
  close(): Promise<void>;
}

export function createControlPlane(options: ControlOptions): ControlPlane {
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000;
  const heartbeatMs = options.heartbeatMs ?? 30_000;
  const preAuthMax = options.preAuthMaxFrameBytes ?? 64 * 1024;
  const maxFrame = options.maxFrameBytes ?? 1024 * 1024;
  const maxPendingPerClient = options.maxPendingPerClient ?? 16;
  const maxPending = options.maxPending ?? 1024;
  const maxBuffered = options.maxBufferedBytes ?? 4 * 1024 * 1024;
  const maxInFlight = options.maxInFlight ?? 64;
  const { bans, logger } = options;

  const methods = new Map<string, MethodEntry>();
  /** Event name → the scope a session needs to receive it. */
  const events = new Map<string, 'admin' | 'read'>();
  const local = new Map<string, Set<(payload: unknown) => void>>();
  const sessions = new Set<Session>();
  const pendingByKey = new Map<string, number>();
  let pending = 0;
  let closing = false;
  const wss = new WebSocketServer({ noServer: true, maxPayload: preAuthMax, perMessageDeflate: false, clientTracking: false });

  const heartbeat = setInterval(() => {
    for (const s of sessions) {
      if (!s.alive) {
        logger.log('info', 'control peer unresponsive', { clientId: s.clientId });
        s.ws.terminate();
        continue;
      }
      s.alive = false;
      if (s.ws.readyState === WebSocket.OPEN) s.ws.ping();
    }
  }, heartbeatMs);
  heartbeat.unref();

  function release(key: string): void {
    pending--;
    const n = (pendingByKey.get(key) ?? 1) - 1;
    if (n <= 0) pendingByKey.delete(key);
    else pendingByKey.set(key, n);
  }

  const onConnect = createHandshake({ options, methods, events, heartbeatMs, maxFrame, release });

  async function dispatch(s: Session, frame: ReqFrame): Promise<void> {
    const entry = methods.get(frame.method);
    const ctx = s.method!;
    let res: unknown;
    if (frame.method === 'connect') {
      res = { type: 'res', id: frame.id, ok: false, error: { code: 'CONTROL_ALREADY_CONNECTED', message: 'this session is already authenticated', retryable: false } };
    } else if (!entry) {
      res = { type: 'res', id: frame.id, ok: false, error: { code: 'CONTROL_UNKNOWN_METHOD', message: `no method "${frame.method}"`, retryable: false } };
    } else if (entry.scope === 'admin' && ctx.scope !== 'admin') {
      res = { type: 'res', id: frame.id, ok: false, error: { code: 'SCOPE_DENIED', message: 'this credential is read-only', retryable: false } };
    } else if (s.inFlight >= maxInFlight) {
      res = { type: 'res', id: frame.id, ok: false, error: { code: 'CONTROL_BUSY', message: 'too many requests in flight', retryable: true } };
    } else {
      s.inFlight++;
      try {
        const payload = await entry.handler(frame.params, ctx);
        res = { type: 'res', id: frame.id, ok: true, payload: payload ?? null };
      } catch (err) {
        const shape = errorShape(err);
        if (shape.code === 'INTERNAL') logger.log('error', 'control method failed', { method: frame.method, error: (err as Error)?.message });
        res = { type: 'res', id: frame.id, ok: false, error: shape };
      } finally {
        s.inFlight--;
      }
    }
    send(s, res);
  }

  function onMessage(s: Session, data: RawData, isBinary: boolean): void {
    // Closing (refused, revoked, stopping): nothing more is read, though the peer's frames keep
    // arriving until it answers the close (ws waits up to 30 s). A revoked session is dropped at
    // once, before its close frame is sent.
    if (s.ws.readyState !== WebSocket.OPEN || s.tracked?.destroyed === true) return;
    s.alive = true;
    if (isBinary) {
      closeWith(s, CLOSE.unsupportedData, reason('CONTROL_BAD_FRAME', 'binary'));
      return;
    }
    const frame = parseFrame(data.toString());
    if (!s.authed) {
      if (frame?.type !== 'req' || frame.method !== 'connect') {
        return void badFrame(s, frame?.type === 'req' ? frame.id : undefined);
      }
      onConnect(s, frame);
      return;
    }
    if (frame?.type !== 'req') return void badFrame(s, undefined);
    if (s.browserSession !== undefined) options.touchSession?.(s.browserSession);
    void dispatch(s, frame);
  }

  function onConnection(ws: WebSocket, req: IncomingMessage, ctx: UpgradeContext): void {
    const s: Session = {
      ws,
      ctx,
      exporter: exporterOf(req.socket),
      nonce: randomBytes(32).toString('base64url'),
      ts: Date.now(),
      authed: false,
      alive: true,
      timer: undefined,
      clientId: randomUUID(),
      method: undefined,
      seq: 0,
      inFlight: 0,
      tracked: undefined,
    };
    sessions.add(s);
    ws.on('error', () => ws.terminate());
    ws.on('pong', () => {
      s.alive = true;
    });
    ws.on('message', (data, isBinary) => onMessage(s, data, isBinary));
    ws.on('close', () => {
      sessions.delete(s);
      if (s.timer) clearTimeout(s.timer);
      if (!s.authed) release(ctx.key);
      s.tracked?.closed();
      if (s.authed) logger.log('info', 'control session closed', { clientId: s.clientId });
    });
    // Banned: the socket is upgraded only to say so with the close code clients know (4029).
    const ban = bans.check(ctx.key);
    if (ban.banned) {
      s.nonce = undefined;
      closeWith(s, CLOSE.banned, reason('RATE_LIMITED', `retry-after=${ban.retryAfterSeconds}`));
      return;
    }
    s.timer = setTimeout(() => {
      s.timer = undefined;
      s.nonce = undefined;
      closeWith(s, CLOSE.handshakeTimeout, reason('CONTROL_HANDSHAKE_TIMEOUT'));
    }, handshakeTimeoutMs);
    s.timer.unref();
    send(s, {
      type: 'event',
      event: 'connect.challenge',
      payload: { nonce: s.nonce, ts: s.ts, bindings: s.exporter === undefined ? [] : ['tls-exporter'] },
    });
  }

  const plane: ControlPlane = {
    method(name, handler, methodOptions = {}) {
      checkName('method', name);
      if (typeof handler !== 'function') throw new PortholeError('INVALID_ARGUMENT', 'a method handler must be a function');
      const scope = methodOptions.scope ?? 'admin';
      if (scope !== 'admin' && scope !== 'read') throw new PortholeError('INVALID_ARGUMENT', 'scope must be "admin" or "read"');
      methods.set(name, { handler, scope });
    },
    event(name, eventOptions = {}) {
      checkName('event', name);
      const scope = eventOptions.scope ?? 'read';
      if (scope !== 'admin' && scope !== 'read') throw new PortholeError('INVALID_ARGUMENT', 'scope must be "admin" or "read"');
      events.set(name, scope);
    },
    publish(event, payload) {
      checkName('event', event);
      if (!events.has(event)) events.set(event, 'read');
      const adminOnly = events.get(event) === 'admin';
      // Serialised once for every session; only the sequence number differs.
      for (const listener of local.get(event) ?? []) {
        try {
          listener(payload);
        } catch (err) {
          logger.log('warn', 'event listener failed', { event, error: (err as Error).message });
        }
      }
      const head = `{"type":"event","event":${JSON.stringify(event)},"payload":${JSON.stringify(payload ?? null)},"seq":`;
      let n = 0;
      for (const s of sessions) {
        if (!s.authed || s.ws.readyState !== WebSocket.OPEN || s.tracked?.destroyed === true) continue;
        if (adminOnly && s.method?.scope !== 'admin') continue;
        if (s.ws.bufferedAmount > maxBuffered) {
          closeWith(s, CLOSE.tryAgainLater, reason('CONTROL_SLOW_CONSUMER'));
          continue;
        }
        s.seq++;
        s.ws.send(`${head}${s.seq}}`);
        n++;
      }
      return n;
    },
    subscribe(event, listener) {
      const set = local.get(event) ?? new Set();
      local.set(event, set);
      set.add(listener);
      return () => set.delete(listener);
    },
    get size() {
      let n = 0;
      for (const s of sessions) if (s.authed) n++;
      return n;
    },
    handleUpgrade(req, socket, head, ctx) {
      if (closing) {
        writeSocketError(socket, new PortholeError('NOT_FOUND', 'the gateway is stopping'));
        return;
      }
      const mine = pendingByKey.get(ctx.key) ?? 0;
      if (mine >= maxPendingPerClient || pending >= maxPending) {
        writeSocketError(socket, new PortholeError('CONTROL_TOO_MANY_PENDING', 'too many unauthenticated control connections; authenticate the open ones first', { retryAfter: 5 }));
        return;
      }
      pending++;
      pendingByKey.set(ctx.key, mine + 1);
      let handed = false;
      // ws answers a bad handshake (version, key) itself and never calls back: release then.
      socket.once('close', () => {
        if (!handed) release(ctx.key);
      });
      wss.handleUpgrade(req, socket, head, (ws) => {
        handed = true;
        onConnection(ws, req, ctx);
      });
    },
    async close() {
      closing = true;
      clearInterval(heartbeat);
      const open = [...sessions];
      await Promise.all(
        open.map(
          (s) =>
            new Promise<void>((done) => {
              if (s.ws.readyState === WebSocket.CLOSED) return done();
              s.ws.once('close', () => done());
              closeWith(s, CLOSE.goingAway, 'server stopping');
              setTimeout(() => s.ws.terminate(), 1_000).unref();
            }),
        ),
      );
      wss.close();
    },
  };
  return plane;
}
