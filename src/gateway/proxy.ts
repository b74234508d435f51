// Forwarding core of the sidecar gateway: streams HTTP exchanges and upgraded connections
// (WebSocket, RFC 6455) to the target app with backpressure, strips hop-by-hop fields
// (RFC 9110 §7.6.1) and ties the two sides' lifetimes together. The gateway decides who may
// pass; this module only transports.
//
// Hot path: per request there is one state object and no closures. Event listeners are
// module-level functions that find their exchange through a symbol on the emitter.
import http, {
  type ClientRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { errorBody, PortholeError } from '../errors.js';
import type { Logger } from '../log.js';
import { connectionOptions, HOP_BY_HOP, isHopByHop, requestHeaders, responseHeaders, trailerPairs } from './hop-by-hop.js';
import { describeTarget, type Target } from './target.js';

export interface ProxyOptions {
  target: Target;
  /**
   * Milliseconds to wait for the target's response headers (or its answer to an upgrade)
   * once the request has been sent in full, before answering 504 TARGET_TIMEOUT. Like Go's
   * ResponseHeaderTimeout, the clock starts after the body is written, so a long upload is
   * not cut off. Default 30000.
   */
  timeoutMs?: number;
  /** Where warnings go (never headers or secrets). Default: none. */
  logger?: Logger;
}

/** What the gateway decided about one request; the proxy only transports. */
export interface ForwardInfo {
  /**
   * Request headers to send, keys in lower case as Node parses them (already stripped of
   * porthole credentials and identity headers by the gateway; may include X-Porthole-*).
   * The proxy removes hop-by-hop headers itself and replaces Host and X-Forwarded-Proto/-Host.
   */
  headers: IncomingHttpHeaders;
  /** Path + query to request on the target (without porthole's token/code parameters). */
  path: string;
  /** Appended to X-Forwarded-For (after any value the gateway left in `headers`). */
  clientAddress: string;
  /** X-Forwarded-Proto. */
  proto: 'http' | 'https';
  /** X-Forwarded-Host; when undefined the header is not sent. */
  host: string | undefined;
}

export interface Proxy {
  web(req: IncomingMessage, res: ServerResponse, fwd: ForwardInfo): void;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, fwd: ForwardInfo): void;
  /** Destroys the keep-alive agent's sockets and every open upgraded connection. */
  close(): void;
}

const DEFAULT_TIMEOUT_MS = 30_000;
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
const REPLAYABLE = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

interface ErrorAnswer {
  status: number;
  body: Buffer;
  headers: OutgoingHttpHeaders;
  /** Same, with `Connection: close`: the request body was not read to its end. */
  headersClose: OutgoingHttpHeaders;
  /** The whole answer for a raw (upgrade) socket. */
  raw: Buffer;
}

function errorAnswer(status: number, reason: string, err: PortholeError): ErrorAnswer {
  const body = Buffer.from(errorBody(err));
  const headers = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(body.length),
    'cache-control': 'no-store',
  };
  const head =
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${body.length}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n`;
  return {
    status,
    body,
    headers,
    headersClose: { ...headers, connection: 'close' },
    raw: Buffer.concat([Buffer.from(head, 'latin1'), body]),
  };
}

// The messages are generic on purpose: a remote visitor learns that the app did not answer,
// not where it lives.
const UNAVAILABLE = errorAnswer(
  502,
  'Bad Gateway',
  new PortholeError('TARGET_UNAVAILABLE', 'the app behind this gateway did not answer', { expose: true }),
);
const TIMEOUT = errorAnswer(
  504,
  'Gateway Timeout',
  new PortholeError('TARGET_TIMEOUT', 'the app behind this gateway did not answer in time', { expose: true }),
);
const INTERNAL = errorAnswer(500, 'Internal Server Error', new PortholeError('INTERNAL', 'request not forwarded'));

/** What every exchange of one proxy shares. */
interface Core {
  readonly agent: http.Agent;
  readonly send: typeof http.request;
  readonly hostname: string;
  readonly port: number | undefined;
  readonly socketPath: string | undefined;
  readonly hostHeader: string;
  readonly basePath: string;
  readonly timeoutMs: number;
  readonly logger: Logger | undefined;
  readonly description: string;
  /** Client sides of open upgraded connections, for close(). */
  readonly tunnels: Set<Duplex>;
}

export function createProxy(options: ProxyOptions): Proxy {
  // Fractions are rounded up (a config in seconds may give 1500.5); timers cap at 2^31-1 ms.
  const timeoutMs = Math.ceil(options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  if (!(timeoutMs >= 1 && timeoutMs <= 2_147_483_647)) {
    throw new PortholeError('INVALID_ARGUMENT', `invalid timeoutMs ${String(options.timeoutMs)}: milliseconds between 1 and 2147483647`);
  }
  const core = createCore(options.target, timeoutMs, options.logger);
  return {
    web(req, res, fwd) {
      const ex = new WebExchange(core, req, res, fwd);
      tag(res, ex);
      res.on('close', onClientResponseClose);
      if (ex.hasBody) {
        tag(req, ex);
        req.on('close', onClientRequestClose);
      }
      // Node's server disables Nagle by default and caches the flag, so this costs nothing then;
      // a stream handed over by the tunnel client has no such knob.
      (req.socket as Partial<Socket>).setNoDelay?.(true);
      ex.send();
    },
    upgrade(req, socket, head, fwd) {
      const ex = new UpgradeExchange(core, req, socket, head, fwd);
      tag(socket, ex);
      socket.on('error', ignoreError);
      socket.on('close', onClientSocketClose);
      (socket as Partial<Socket>).setNoDelay?.(true);
      ex.send();
    },
    close() {
      core.agent.destroy();
      for (const s of core.tunnels) s.destroy();
      core.tunnels.clear();
    },
  };
}

function createCore(target: Target, timeoutMs: number, logger: Logger | undefined): Core {
  const agentOptions: http.AgentOptions & { highWaterMark: number } = {
    keepAlive: true,
    maxSockets: MAX_SOCKETS,
    scheduling: 'lifo', // the warmest socket first, so idle ones age out instead of going stale
    timeout: FREE_SOCKET_TIMEOUT_MS,
    noDelay: true,
    highWaterMark: HIGH_WATER_MARK, // passed on to net.connect, sizing both socket buffers
  };
  const common = { timeoutMs, logger, description: describeTarget(target), tunnels: new Set<Duplex>() };
  if (target.kind === 'unix') {
    return {
      ...common,
      agent: new http.Agent(agentOptions),
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
  return {
    ...common,
    agent: tls ? new https.Agent(agentOptions) : new http.Agent(agentOptions),
    send: tls ? https.request : http.request,
    // URL keeps IPv6 literals bracketed; the socket layer wants them bare.
    hostname: host.startsWith('[') ? host.slice(1, -1) : host,
    port: url.port === '' ? (tls ? 443 : 80) : Number(url.port),
    socketPath: undefined,
    hostHeader: url.host,
    basePath: url.pathname === '/' ? '' : url.pathname,
  };
}

// ---------------------------------------------------------------------------------------------
// Plain HTTP exchanges

class WebExchange {
  up: ClientRequest | null = null;
  upRes: IncomingMessage | null = null;
  timer: NodeJS.Timeout | undefined = undefined;
  /** An error answer was sent, or the client is gone: nothing more goes to the client. */
  settled = false;
  retried = false;
  readonly headers: OutgoingHttpHeaders;
  readonly path: string;
  readonly hasBody: boolean;

  constructor(
    readonly core: Core,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    fwd: ForwardInfo,
  ) {
    // Framing is decided by the request as it arrived, not by the gateway's header copy.
    const te = req.headers['transfer-encoding'];
    const cl = req.headers['content-length'];
    this.hasBody = te !== undefined || (cl !== undefined && cl !== '0');
    this.headers = requestHeaders(fwd, core.hostHeader, te !== undefined, false);
    this.path = targetPath(core, fwd.path);
  }

  send(): void {
    const core = this.core;
    let up: ClientRequest;
    try {
      up = core.send({
        agent: core.agent,
        hostname: core.hostname,
        port: core.port,
        socketPath: core.socketPath,
        method: this.req.method,
        path: this.path,
        headers: this.headers,
        maxHeaderSize: MAX_RESPONSE_HEAD,
      });
    } catch (err) {
      // Only malformed input gets here (a header value with CR/LF, a bad path): a gateway bug.
      core.logger?.log('error', 'request not forwarded: invalid request line or header', { error: errorCode(err) });
      this.answer(INTERNAL);
      return;
    }
    this.up = up;
    tag(up, this);
    up.on('response', onWebResponse);
    up.on('error', onWebUpstreamError);
    up.on('information', onWebInformation);
    up.on('finish', onUpstreamFinish);
    if (!this.hasBody) {
      up.end();
      return;
    }
    // end: false, so request trailers can follow the body (onClientBodyEnd).
    this.req.on('end', onClientBodyEnd);
    this.req.pipe(up, { end: false });
  }

  onResponse(upRes: IncomingMessage): void {
    clearTimer(this);
    const res = this.res;
    if (this.settled || res.destroyed) {
      this.up?.destroy();
      return;
    }
    this.upRes = upRes;
    tag(upRes, this);
    const status = upRes.statusCode ?? 502;
    try {
      writeResponseHead(res, status, upRes.statusMessage ?? '', responseHeaders(upRes));
    } catch (err) {
      // The target sent something Node will not repeat (an invalid status or header value).
      this.core.logger?.log('warn', 'target response not relayed: invalid status or header', {
        target: this.core.description,
        error: errorCode(err),
      });
      for (const name of res.getHeaderNames()) res.removeHeader(name);
      this.up?.destroy();
      this.answer(UNAVAILABLE);
      return;
    }
    // A body of unknown length (SSE, streamed output) may take a while to start: send the head
    // now. With a Content-Length the body follows at once and leaves with the head in one write.
    if (
      upRes.headers['content-length'] === undefined &&
      status !== 204 &&
      status !== 304 &&
      this.req.method !== 'HEAD'
    ) {
      res.flushHeaders();
    }
    upRes.on('end', onUpstreamBodyEnd);
    upRes.on('close', onUpstreamBodyClose);
    upRes.pipe(res, { end: false });
  }

  onUpstreamError(up: ClientRequest, err: NodeJS.ErrnoException): void {
    if (up !== this.up) return; // an attempt already replaced by a retry
    clearTimer(this);
    if (this.settled) return;
    if (this.upRes !== null) {
      this.core.logger?.log('warn', 'target failed mid-response', { target: this.core.description, error: errorCode(err) });
      this.settled = true;
      this.res.destroy();
      return;
    }
    if (!this.hasBody && canReplay(this, up, err)) {
      this.retried = true;
      this.send();
      return;
    }
    this.core.logger?.log('warn', 'target unavailable', { target: this.core.description, error: errorCode(err) });
    this.answer(UNAVAILABLE);
  }

  timedOut(): void {
    if (this.settled || this.upRes !== null) return;
    this.core.logger?.log('warn', 'target did not answer in time', {
      target: this.core.description,
      timeoutMs: this.core.timeoutMs,
    });
    this.answer(TIMEOUT);
    this.up?.destroy();
  }

  /** The client is gone (or revoked by the gateway): tear down the upstream without reuse. */
  abort(): void {
    clearTimer(this);
    this.settled = true;
    const up = this.up;
    if (up !== null && !up.destroyed) up.destroy();
  }

  answer(a: ErrorAnswer): void {
    this.settled = true;
    const res = this.res;
    if (res.destroyed) return;
    if (res.headersSent) {
      res.destroy(); // never a fake success
      return;
    }
    if (this.hasBody) this.req.unpipe();
    res.writeHead(a.status, this.req.complete ? a.headers : a.headersClose);
    res.end(a.body);
  }
}

function onWebResponse(this: ClientRequest, upRes: IncomingMessage): void {
  stateOf<WebExchange>(this).onResponse(upRes);
}

function onWebUpstreamError(this: ClientRequest, err: NodeJS.ErrnoException): void {
  stateOf<WebExchange>(this).onUpstreamError(this, err);
}

/** 1xx answers: 100 Continue (so `Expect: 100-continue` cannot deadlock) and 103 Early Hints. */
function onWebInformation(this: ClientRequest, info: http.InformationEvent): void {
  const ex = stateOf<WebExchange>(this);
  const res = ex.res;
  if (this !== ex.up || ex.settled || res.headersSent || res.destroyed) return;
  if (info.statusCode === 100) {
    // A front server without a 'checkContinue' listener has already sent its own 100. A second
    // one is legal (RFC 9110 §15.2) but makes Node clients emit 'continue' twice, so skip it.
    // `_sent100` is Node's own flag (unchanged since 0.x); without it we would merely relay.
    if ((res as { _sent100?: boolean })._sent100 !== true) res.writeContinue();
  } else if (info.statusCode === 103 && info.headers.link !== undefined) {
    const hints: Record<string, string | string[]> = {};
    for (const name in info.headers) {
      const value = info.headers[name];
      if (value !== undefined && !HOP_BY_HOP.has(name)) hints[name] = value;
    }
    try {
      res.writeEarlyHints(hints);
    } catch {
      // A Link value Node refuses to repeat: hints are optional, drop them.
    }
  }
}

/** Arms the header timeout once the whole request has been handed to the target. */
function onUpstreamFinish(this: ClientRequest): void {
  const ex = stateOf<WebExchange | UpgradeExchange>(this);
  if (this === ex.up && ex.timer === undefined && !ex.settled && ex.upRes === null) {
    ex.timer = setTimeout(fireTimeout, ex.core.timeoutMs, ex);
  }
}

function fireTimeout(ex: WebExchange | UpgradeExchange): void {
  ex.timer = undefined;
  ex.timedOut();
}

function clearTimer(ex: WebExchange | UpgradeExchange): void {
  if (ex.timer !== undefined) {
    clearTimeout(ex.timer);
    ex.timer = undefined;
  }
}

/** The client's body is complete: pass on its trailers, then finish the upstream request. */
function onClientBodyEnd(this: IncomingMessage): void {
  const up = stateOf<WebExchange>(this).up;
  if (up === null || up.destroyed) return;
  const trailers = trailerPairs(this.rawTrailers);
  if (trailers !== undefined) up.addTrailers(trailers);
  up.end();
}

function onClientRequestClose(this: IncomingMessage): void {
  if (!this.complete) stateOf<WebExchange>(this).abort();
}

function onClientResponseClose(this: ServerResponse): void {
  if (!this.writableFinished) stateOf<WebExchange>(this).abort();
}

function onUpstreamBodyEnd(this: IncomingMessage): void {
  const res = stateOf<WebExchange>(this).res;
  if (res.destroyed) return;
  const trailers = trailerPairs(this.rawTrailers);
  if (trailers !== undefined) res.addTrailers(trailers);
  res.end();
}

function onUpstreamBodyClose(this: IncomingMessage): void {
  if (this.complete) return;
  // The target died mid-body: the client must see a truncated response, not an end.
  const ex = stateOf<WebExchange>(this);
  ex.settled = true;
  ex.res.destroy();
}

/**
 * Node 20's writeHead(status, array) keeps repeated names (Set-Cookie) only when no header was
 * set before; if the gateway set some, merge by hand, the target's value winning.
 */
function writeResponseHead(res: ServerResponse, status: number, message: string, headers: string[]): void {
  if (res.getHeaderNames().length === 0) {
    res.writeHead(status, message, headers);
    return;
  }
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (name.toLowerCase() !== 'set-cookie') res.removeHeader(name);
  }
  for (let i = 0; i < headers.length; i += 2) res.appendHeader(headers[i]!, headers[i + 1]!);
  res.writeHead(status, message);
}

// ---------------------------------------------------------------------------------------------
// Upgrades (WebSocket, RFC 6455 §4; any other protocol named in Upgrade, RFC 9110 §7.8)

class UpgradeExchange {
  up: ClientRequest | null = null;
  /** The target's response when it refused the upgrade (non-101). */
  upRes: IncomingMessage | null = null;
  upSocket: Duplex | null = null;
  timer: NodeJS.Timeout | undefined = undefined;
  /** The client has its answer (101, a relayed refusal, or an error) or is gone. */
  settled = false;
  retried = false;
  readonly headers: OutgoingHttpHeaders;
  readonly path: string;

  constructor(
    readonly core: Core,
    readonly req: IncomingMessage,
    readonly socket: Duplex,
    readonly head: Buffer,
    fwd: ForwardInfo,
  ) {
    this.headers = requestHeaders(fwd, core.hostHeader, false, true);
    this.path = targetPath(core, fwd.path);
  }

  send(): void {
    const core = this.core;
    let up: ClientRequest;
    try {
      // Through the pool like any request: a 101 takes the socket out of it ('agentRemove'),
      // a refusal returns it.
      up = core.send({
        agent: core.agent,
        hostname: core.hostname,
        port: core.port,
        socketPath: core.socketPath,
        method: this.req.method,
        path: this.path,
        headers: this.headers,
        maxHeaderSize: MAX_RESPONSE_HEAD,
      });
    } catch (err) {
      core.logger?.log('error', 'upgrade not forwarded: invalid request line or header', { error: errorCode(err) });
      this.answer(INTERNAL);
      return;
    }
    this.up = up;
    tag(up, this);
    up.on('upgrade', onUpgradeAccepted);
    up.on('response', onUpgradeRefused);
    up.on('error', onUpgradeUpstreamError);
    up.on('finish', onUpstreamFinish);
    up.end();
  }

  /** 101: relay the target's head as it sent it, then splice the two connections. */
  accepted(upSocket: Duplex, upRes: IncomingMessage, upHead: Buffer): void {
    clearTimer(this);
    const client = this.socket;
    if (this.settled || client.destroyed) {
      upSocket.destroy();
      return;
    }
    this.settled = true;
    this.upSocket = upSocket;
    tag(upSocket, this);
    upSocket.on('error', ignoreError);
    upSocket.on('close', onTargetSocketClose);
    const s = upSocket as Partial<Socket>;
    s.setNoDelay?.(true);
    s.setTimeout?.(0); // a reused pooled socket may carry the pool's idle timeout
    // Switching Protocols is end-to-end: its Connection/Upgrade/Sec-WebSocket-* fields stay.
    let head = `HTTP/${upRes.httpVersion} 101 ${upRes.statusMessage ?? 'Switching Protocols'}\r\n`;
    const raw = upRes.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
    client.write(`${head}\r\n`, 'latin1');
    if (upHead.length > 0) client.write(upHead);
    if (this.head.length > 0) upSocket.write(this.head);
    this.core.tunnels.add(client);
    upSocket.pipe(client);
    client.pipe(upSocket);
  }

  /** Not 101: relay that response (hop-by-hop stripped, close-delimited) and close. */
  refused(upRes: IncomingMessage): void {
    clearTimer(this);
    const client = this.socket;
    if (this.settled || client.destroyed) {
      this.up?.destroy();
      return;
    }
    this.settled = true;
    this.upRes = upRes;
    tag(upRes, this);
    let head = `HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage ?? ''}\r\n`;
    const raw = upRes.rawHeaders;
    const listed = connectionOptions(upRes.headers.connection);
    for (let i = 0; i < raw.length; i += 2) {
      if (!isHopByHop(raw[i]!.toLowerCase(), listed)) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
    }
    client.write(`${head}Connection: close\r\n\r\n`, 'latin1');
    client.resume(); // drain what the client still sends, so its FIN is seen and the socket closes
    upRes.on('close', onRefusalBodyClose);
    upRes.pipe(client);
  }

  onUpstreamError(up: ClientRequest, err: NodeJS.ErrnoException): void {
    if (up !== this.up) return;
    clearTimer(this);
    if (this.settled) {
      if (this.upRes !== null) this.socket.destroy();
      return;
    }
    if (canReplay(this, up, err)) {
      this.retried = true;
      this.send();
      return;
    }
    this.core.logger?.log('warn', 'target unavailable for upgrade', { target: this.core.description, error: errorCode(err) });
    this.answer(UNAVAILABLE);
  }

  timedOut(): void {
    if (this.settled) return;
    this.core.logger?.log('warn', 'target did not answer the upgrade in time', {
      target: this.core.description,
      timeoutMs: this.core.timeoutMs,
    });
    this.answer(TIMEOUT);
    this.up?.destroy();
  }

  answer(a: ErrorAnswer): void {
    this.settled = true;
    const client = this.socket;
    if (client.destroyed) return;
    client.resume();
    client.end(a.raw);
  }

  /** Either side went away: the other follows, after flushing what it already has to send. */
  clientClosed(): void {
    clearTimer(this);
    this.settled = true;
    this.core.tunnels.delete(this.socket);
    const up = this.up;
    if (up !== null && !up.destroyed) up.destroy();
    if (this.upSocket !== null) closeAfterFlush(this.upSocket);
    if (this.upRes !== null) this.upRes.destroy();
  }
}

function onUpgradeAccepted(this: ClientRequest, upRes: IncomingMessage, upSocket: Duplex, upHead: Buffer): void {
  stateOf<UpgradeExchange>(this).accepted(upSocket, upRes, upHead);
}

function onUpgradeRefused(this: ClientRequest, upRes: IncomingMessage): void {
  stateOf<UpgradeExchange>(this).refused(upRes);
}

function onUpgradeUpstreamError(this: ClientRequest, err: NodeJS.ErrnoException): void {
  stateOf<UpgradeExchange>(this).onUpstreamError(this, err);
}

function onClientSocketClose(this: Duplex): void {
  stateOf<UpgradeExchange>(this).clientClosed();
}

function onTargetSocketClose(this: Duplex, hadError?: boolean): void {
  const client = stateOf<UpgradeExchange>(this).socket;
  if (hadError === true) client.destroy();
  else closeAfterFlush(client);
}

function onRefusalBodyClose(this: IncomingMessage): void {
  if (!this.complete) stateOf<UpgradeExchange>(this).socket.destroy();
}

/** End `s` once its queued writes are out, then destroy it (its peer has already gone). */
function closeAfterFlush(s: Duplex): void {
  if (s.destroyed) return;
  if (s.writableFinished) {
    s.destroy();
    return;
  }
  s.once('finish', destroyThis);
  if (!s.writableEnded) s.end();
}

function destroyThis(this: Duplex): void {
  this.destroy();
}

// Errors on both sockets of a tunnel are followed by 'close', where the other side is torn down.
function ignoreError(): void {}

// ---------------------------------------------------------------------------------------------
// Shared helpers

/** The target's base path ("/app") prefixed to an origin-form path; "*" and others pass as they are. */
function targetPath(core: Core, path: string): string {
  return core.basePath !== '' && path.charCodeAt(0) === 47 /* "/" */ ? core.basePath + path : path;
}

/**
 * A pooled connection the target had already closed fails with ECONNRESET/EPIPE before any
 * answer. A bodiless idempotent request is replayed once on a fresh connection (as Go's
 * Transport does); anything else gets the 502.
 */
function canReplay(ex: WebExchange | UpgradeExchange, up: ClientRequest, err: NodeJS.ErrnoException): boolean {
  return (
    !ex.retried &&
    up.reusedSocket &&
    (err.code === 'ECONNRESET' || err.code === 'EPIPE') &&
    REPLAYABLE.has(ex.req.method ?? '')
  );
}

function errorCode(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : 'unknown';
}

// Per-request state lives on the emitters, so listeners can be shared functions (no closures).
const kExchange = Symbol('porthole.proxy.exchange');
type Tagged = { [kExchange]?: WebExchange | UpgradeExchange };

function tag(emitter: object, ex: WebExchange | UpgradeExchange): void {
  (emitter as Tagged)[kExchange] = ex;
}

function stateOf<T extends WebExchange | UpgradeExchange>(emitter: object): T {
  return (emitter as Tagged)[kExchange] as T;
}
