// The HTTP exchange: one request and its response relayed, with 1xx, trailers and one replay.
import { type ClientRequest, type IncomingMessage, type InformationEvent, type OutgoingHttpHeaders, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { HOP_BY_HOP, requestHeaders, responseHeaders, trailerPairs } from './hop-by-hop.js';
import type { ForwardInfo } from './proxy.js';
import {
  armTimer,
  type Core,
  canReplay,
  clearTimer,
  type Exchange,
  errorCode,
  onUpstreamFinish,
  sendUpstream,
  StallClock,
  stateOf,
  tag,
  targetPath,
} from './proxy-core.js';
import { BODY_STALLED, type ErrorAnswer, INTERNAL, TIMEOUT, UNAVAILABLE } from './proxy-errors.js';
import { fastEligible, forwardFast } from './proxy-fast.js';

/** Forwards one HTTP exchange; what Proxy.web does. */
export function forwardWeb(core: Core, req: IncomingMessage, res: ServerResponse, fwd: ForwardInfo): void {
  // A pipelined request waits until its answer is next on the connection (node:http gives a
  // response its socket then), as nginx does. node:http hands over every request it parsed
  // from one read at once: a client pipelining hundreds of requests and reading none would
  // otherwise have all of them proxied together, each holding its buffered answer.
  if (res.socket === null) {
    res.once('socket', () => {
      // Revoked while it waited (token rotation, logout, a device revoked): its credential was
      // judged when node:http parsed it, so it must not reach the app now. node:http destroys
      // the socket it is given next.
      if (res.destroyed) return;
      forwardWeb(core, req, res, fwd);
    });
    return;
  }
  // Bodiless requests to a plain-HTTP target go through porthole's own client (proxy-fast.ts).
  if (fastEligible(core, req, fwd.path)) {
    forwardFast(core, req, res, fwd);
    return;
  }
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
}

class WebExchange implements Exchange {
  up: ClientRequest | null = null;
  upRes: IncomingMessage | null = null;
  timer: NodeJS.Timeout | undefined = undefined;
  /** An error answer was sent, or the client is gone: nothing more goes to the client. */
  settled = false;
  retried = false;
  /** Runs while the request body is owed (the client must keep sending, the app keep reading). */
  bodyClock: StallClock | null = null;
  /** Runs while the answer waits for the client to take it (the pipe paused the target). */
  answerClock: StallClock | null = null;
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
    let up: ClientRequest;
    try {
      up = sendUpstream(this);
    } catch (err) {
      // Only malformed input gets here (a header value with CR/LF, a bad path): a gateway bug.
      this.core.logger?.log('error', 'request not forwarded: invalid request line or header', { error: errorCode(err) });
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
      // Its 'finish' waits for a pooled connection: time the wait for one too.
      armTimer(this);
      return;
    }
    // Waiting for a connection to the app (every one busy) is timed like an answer: 504 after
    // timeoutMs. Once it has one, the clock restarts when the body has been sent ('finish').
    armTimer(this);
    up.once('socket', onUpstreamSocket);
    // The body must keep moving: a client that stops sending it, or an app that stops reading
    // it (the pipe then stops reading the client), ends the exchange after core.stallMs.
    this.bodyClock = new StallClock(this.core.stallMs, () => this.bodyStalled());
    this.bodyClock.wait();
    this.req.on('data', onClientBodyData);
    // end: false, so request trailers can follow the body (onClientBodyEnd).
    this.req.on('end', onClientBodyEnd);
    this.req.pipe(up, { end: false });
  }

  bodyStalled(): void {
    if (this.settled) return;
    const up = this.up;
    // The app's side if its connection pushes back (or never came from the pool), else the client's.
    const app = up === null || up.socket === null || up.writableNeedDrain;
    this.core.logger?.log('warn', app ? 'target stopped reading the request body' : 'client stopped sending the request body', {
      target: this.core.description,
      stallMs: this.core.stallMs,
    });
    this.answer(app ? TIMEOUT : BODY_STALLED);
    up?.destroy();
  }

  answerStalled(): void {
    this.core.logger?.log('warn', 'client stopped reading the answer', { target: this.core.description, stallMs: this.core.stallMs });
    this.settled = true;
    this.stopClocks();
    this.res.destroy();
    // Not once the target's answer is complete: its connection is back in the pool.
    if (this.upRes?.complete !== true) this.up?.destroy();
  }

  stopClocks(): void {
    this.bodyClock?.stop();
    this.answerClock?.stop();
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
    // pipe() pauses the target's body when the client's socket pushes back, and resumes it on
    // 'drain': a client that stops reading for core.stallMs loses the connection.
    upRes.on('pause', onAnswerPaused);
    res.on('drain', onAnswerDrained);
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
    this.stopClocks();
    this.settled = true;
    const up = this.up;
    if (up !== null && !up.destroyed) up.destroy();
  }

  answer(a: ErrorAnswer): void {
    this.settled = true;
    this.stopClocks();
    const res = this.res;
    if (res.destroyed) return;
    if (res.headersSent) {
      res.destroy(); // never a fake success
      return;
    }
    if (this.hasBody) this.req.unpipe();
    // The reason phrase too: a failed writeHead of the target's head may have set its own.
    res.writeHead(a.status, STATUS_CODES[a.status] ?? '', this.req.complete ? a.headers : a.headersClose);
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
function onWebInformation(this: ClientRequest, info: InformationEvent): void {
  const ex = stateOf<WebExchange>(this);
  const res = ex.res;
  if (this !== ex.up || ex.settled || res.headersSent || res.destroyed) return;
  // RFC 9110 §15.2: no 1xx to an HTTP/1.0 client.
  if (ex.req.httpVersionMajor === 1 && ex.req.httpVersionMinor === 0) return;
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

/**
 * The client's body is complete: finish the upstream request. Its trailers stay here (RFC 9110
 * §6.5.1 lets a recipient discard them): they would reach the app past the gateway's
 * stripping — a planted X-Porthole-Identity, porthole's bearer or cookie. Response trailers
 * (gRPC status and the like) are relayed.
 */
function onClientBodyEnd(this: IncomingMessage): void {
  const ex = stateOf<WebExchange>(this);
  ex.bodyClock?.stop();
  const up = ex.up;
  if (up === null || up.destroyed) return;
  up.end();
}

function onUpstreamSocket(this: ClientRequest): void {
  const ex = stateOf<WebExchange>(this);
  if (this === ex.up) clearTimer(ex);
}

function onClientBodyData(this: IncomingMessage): void {
  stateOf<WebExchange>(this).bodyClock?.moved();
}

function onAnswerPaused(this: IncomingMessage): void {
  const ex = stateOf<WebExchange>(this);
  if (ex.settled) return;
  ex.answerClock ??= new StallClock(ex.core.stallMs, () => ex.answerStalled());
  ex.answerClock.wait();
}

function onAnswerDrained(this: ServerResponse): void {
  stateOf<WebExchange>(this).answerClock?.stop();
}

function onClientRequestClose(this: IncomingMessage): void {
  if (!this.complete) stateOf<WebExchange>(this).abort();
}

function onClientResponseClose(this: ServerResponse): void {
  const ex = stateOf<WebExchange>(this);
  if (!this.writableFinished) ex.abort();
  else ex.stopClocks();
}

function onUpstreamBodyEnd(this: IncomingMessage): void {
  const ex = stateOf<WebExchange>(this);
  // The answer clock runs on until the client has taken the rest (res 'close').
  ex.bodyClock?.stop();
  const res = ex.res;
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
export function writeResponseHead(res: ServerResponse, status: number, message: string, fields: string[]): void {
  const headers = chunkedBody(res, status, fields) ? fields : withoutTrailer(fields);
  if (res.getHeaderNames().length === 0) {
    res.writeHead(status, message, headers);
    return;
  }
  // The gateway's Vary (Origin, with a reflected CORS origin) is added to the target's, never
  // replaced by it: a shared cache must not serve one origin's answer to another.
  const ownVary = res.getHeader('vary');
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (name.toLowerCase() !== 'set-cookie') res.removeHeader(name);
  }
  for (let i = 0; i < headers.length; i += 2) res.appendHeader(headers[i]!, headers[i + 1]!);
  if (ownVary !== undefined) res.setHeader('vary', mergeVary(res.getHeader('vary'), String(ownVary)));
  res.writeHead(status, message);
}

/**
 * Whether node:http will send this response's body chunked — the only framing that can carry
 * trailers. It refuses a `Trailer` field otherwise (ERR_HTTP_TRAILER_INVALID), which used to
 * turn an app's HEAD answer announcing trailers into a 502.
 */
function chunkedBody(res: ServerResponse, status: number, fields: string[]): boolean {
  if (!res.useChunkedEncodingByDefault || status === 204 || status === 304 || res.req?.method === 'HEAD') return false;
  for (let i = 0; i < fields.length; i += 2) if (fields[i]!.length === 14 && fields[i]!.toLowerCase() === 'content-length') return false;
  return true;
}

function withoutTrailer(fields: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < fields.length; i += 2) if (fields[i]!.toLowerCase() !== 'trailer') out.push(fields[i]!, fields[i + 1]!);
  return out;
}

/** `target` (one value or several) plus the tokens of `own` it lacks; "*" stays "*". */
export function mergeVary(target: number | string | string[] | undefined, own: string): string {
  if (target === undefined) return own;
  const joined = Array.isArray(target) ? target.join(', ') : String(target);
  const have = joined.split(',').map((t) => t.trim().toLowerCase());
  if (have.includes('*')) return '*';
  const add = own.split(',').map((t) => t.trim()).filter((t) => t !== '' && !have.includes(t.toLowerCase()));
  return add.length === 0 ? joined : `${joined}, ${add.join(', ')}`;
}
