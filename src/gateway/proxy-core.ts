// What web and upgrade exchanges share: the target's agent, sending, header timeout, replay rule.
import http, { type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { PortholeError } from '../errors.js';
import type { Logger } from '../log.js';
import { UpstreamPool } from './h1-pool.js';
import { describeTarget, type Target } from './target.js';

/** Stream buffers on the upstream sockets; Node 20's default is 16 KiB. */
const HIGH_WATER_MARK = 64 * 1024;
/** Connections per target; a local app is one origin, so this is the real concurrency cap. */
const MAX_SOCKETS = 1024;
/**
 * Idle pooled connections are closed after this long: below the 5 s keep-alive of Node's and
 * uvicorn's servers, so a request never races the target closing the socket under it (the
 * agent also honours a shorter `Keep-Alive: timeout=` hint).
 */
const FREE_SOCKET_TIMEOUT_MS = 4_000;
/** Largest response head accepted from the target (Node's default, 16 KiB, trips on big Set-Cookie sets). */
const MAX_RESPONSE_HEAD = 64 * 1024;
/** Methods a proxy may replay on a fresh connection when a reused one was closed under it (RFC 9110 §9.2.2). */
export const REPLAYABLE: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/**
 * Read buffer of each pooled upstream connection (h1-pool.ts), and the larger one a connection
 * switches to for a download of 1 MiB or more: 256 KiB reads and writes reach Caddy's streaming
 * rate here where 64 KiB ones stay ~25% below it (docs/performance.md §7).
 */
const READ_BUFFER = 64 * 1024;
const LARGE_BODY = 1024 * 1024;
const LARGE_READ_BUFFER = 256 * 1024;

/** The upstream client's pool for bodiless requests (proxy-fast.ts), sized and timed like the agent. */
function createPool(address: { host: string; port: number } | { path: string }): UpstreamPool {
  return new UpstreamPool(address, {
    maxSockets: MAX_SOCKETS,
    idleMs: FREE_SOCKET_TIMEOUT_MS,
    maxHead: MAX_RESPONSE_HEAD,
    readBuffer: READ_BUFFER,
    largeBody: LARGE_BODY,
    largeReadBuffer: LARGE_READ_BUFFER,
  });
}

/** What every exchange of one proxy shares. */
export interface Core {
  readonly agent: http.Agent;
  /** Upstream pool for bodiless requests to an http:// or unix: target; undefined for https://. */
  readonly pool: UpstreamPool | undefined;
  readonly send: typeof http.request;
  readonly hostname: string;
  readonly port: number | undefined;
  readonly socketPath: string | undefined;
  readonly hostHeader: string;
  readonly basePath: string;
  readonly timeoutMs: number;
  /** How long a transfer may move no byte while one side waits on the other (StallClock). */
  readonly stallMs: number;
  readonly logger: Logger | undefined;
  readonly description: string;
  /** Client sides of open upgraded connections, for close(). */
  readonly tunnels: Set<Duplex>;
}

/** The state of one forwarded request, web or upgrade, as the shared helpers see it. */
export interface Exchange {
  readonly core: Core;
  readonly req: IncomingMessage;
  /** Request headers for the target, built once (a replay sends them again). */
  readonly headers: OutgoingHttpHeaders;
  /** Request target on the target app, base path included. */
  readonly path: string;
  up: ClientRequest | null;
  upRes: IncomingMessage | null;
  timer: NodeJS.Timeout | undefined;
  settled: boolean;
  retried: boolean;
  timedOut(): void;
}

export function createCore(target: Target, timeoutMs: number, stallMs: number, logger: Logger | undefined): Core {
  const agentOptions: http.AgentOptions & { highWaterMark: number } = {
    keepAlive: true,
    maxSockets: MAX_SOCKETS,
    scheduling: 'lifo', // the warmest socket first, so idle ones age out instead of going stale
    timeout: FREE_SOCKET_TIMEOUT_MS,
    noDelay: true,
    highWaterMark: HIGH_WATER_MARK, // passed on to net.connect, sizing both socket buffers
  };
  const common = { timeoutMs, stallMs, logger, description: describeTarget(target), tunnels: new Set<Duplex>() };
  if (target.kind === 'unix') {
    return {
      ...common,
      agent: new http.Agent(agentOptions),
      pool: createPool({ path: target.path }),
      send: http.request,
      hostname: 'localhost',
      port: undefined,
      socketPath: target.path,
      hostHeader: 'localhost',
      basePath: '',
    };
  }
  if (target.kind !== 'http' || (target.url.protocol !== 'http:' && target.url.protocol !== 'https:')) {
    throw new PortholeError('TARGET_INVALID', 'invalid target: expected an http(s) URL or a unix socket path');
  }
  const url = target.url;
  const tls = url.protocol === 'https:';
  const host = url.hostname;
  // URL keeps IPv6 literals bracketed; the socket layer wants them bare.
  const hostname = host.startsWith('[') ? host.slice(1, -1) : host;
  const port = url.port === '' ? (tls ? 443 : 80) : Number(url.port);
  return {
    ...common,
    agent: tls ? new https.Agent(agentOptions) : new http.Agent(agentOptions),
    pool: tls ? undefined : createPool({ host: hostname, port }),
    send: tls ? https.request : http.request,
    hostname,
    port,
    socketPath: undefined,
    hostHeader: url.host,
    basePath: url.pathname === '/' ? '' : url.pathname,
  };
}

/**
 * Starts the upstream request through the pool. Throws only on malformed input (a header value
 * with CR/LF, a bad path), which the caller answers with INTERNAL.
 */
export function sendUpstream(ex: Exchange): ClientRequest {
  const core = ex.core;
  return core.send({
    agent: core.agent,
    hostname: core.hostname,
    port: core.port,
    socketPath: core.socketPath,
    method: ex.req.method,
    path: ex.path,
    headers: ex.headers,
    maxHeaderSize: MAX_RESPONSE_HEAD,
  });
}

/** The target's base path ("/app") prefixed to an origin-form path; "*" and others pass as they are. */
export function targetPath(core: Core, path: string): string {
  return core.basePath !== '' && path.charCodeAt(0) === 47 /* "/" */ ? core.basePath + path : path;
}

/** Arms the header timeout once the whole request has been handed to the target. */
export function onUpstreamFinish(this: ClientRequest): void {
  const ex = stateOf(this);
  if (this === ex.up && !ex.settled && ex.upRes === null) armTimer(ex);
}

/** Arms the header timeout now (unless it runs): waiting for a pooled connection counts. */
export function armTimer(ex: Exchange): void {
  if (ex.timer === undefined) ex.timer = setTimeout(fireTimeout, ex.core.timeoutMs, ex);
}

/**
 * Ends a transfer that stops moving (nginx's send_timeout and client_body_timeout): `wait()`
 * when one side waits on the other (a write that was not taken, a body still owed), `moved()`
 * when bytes moved (the clock restarts if it runs), `stop()` when nothing waits any more. One
 * timer, made on the first wait; `onStall` runs once, `ms` after the last movement.
 */
export class StallClock {
  private timer: NodeJS.Timeout | undefined = undefined;

  constructor(
    private readonly ms: number,
    private readonly onStall: () => void,
  ) {}

  wait(): void {
    // Unref'd: the connections it watches keep the process alive while they are open; a clock
    // left on a connection that closed must not hold a stopping gateway for a minute.
    if (this.timer === undefined) this.timer = setTimeout(fireStall, this.ms, this).unref();
  }

  /** The timer's end: once, and never re-armed by a late moved(). */
  fire(): void {
    this.timer = undefined;
    this.onStall();
  }

  moved(): void {
    this.timer?.refresh();
  }

  stop(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }
}

function fireStall(clock: StallClock): void {
  clock.fire();
}

function fireTimeout(ex: Exchange): void {
  ex.timer = undefined;
  ex.timedOut();
}

export function clearTimer(ex: Exchange): void {
  if (ex.timer !== undefined) {
    clearTimeout(ex.timer);
    ex.timer = undefined;
  }
}

/**
 * A pooled connection the target had already closed fails with ECONNRESET/EPIPE before any
 * answer. A bodiless idempotent request is replayed once on a fresh connection (as Go's
 * Transport does); anything else gets the 502.
 */
export function canReplay(ex: Exchange, up: ClientRequest, err: NodeJS.ErrnoException): boolean {
  return (
    !ex.retried &&
    up.reusedSocket &&
    (err.code === 'ECONNRESET' || err.code === 'EPIPE') &&
    REPLAYABLE.has(ex.req.method ?? '')
  );
}

export function errorCode(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : 'unknown';
}

// Per-request state lives on the emitters, so listeners can be shared functions (no closures).
const kExchange = Symbol('porthole.proxy.exchange');
type Tagged = { [kExchange]?: Exchange };

export function tag(emitter: object, ex: Exchange): void {
  (emitter as Tagged)[kExchange] = ex;
}

export function stateOf<T extends Exchange = Exchange>(emitter: object): T {
  return (emitter as Tagged)[kExchange] as T;
}
