// The HTTP exchange without a request body, sent through undici's Pool: most requests (GET,
// HEAD, bodiless POST) to an http:// or unix: target. undici's HTTP/1.1 client skips the
// per-request ClientRequest/Agent machinery and the extra copy of every body chunk in Node's
// parser; docs/performance.md has the A/B figures (+47% req/s at 50 connections, +25%
// streaming on the 2-core bench machine).
//
// Requests with a body, `Expect` or a non-origin-form target ("*") stay on the node:http path
// (proxy-web.ts): undici cannot send request trailers, refuses `Expect`, and wants paths that
// start with "/". https:// targets and upgrades stay there too.
//
// Same contract as proxy-web.ts: hop-by-hop fields stripped both ways (Connection-listed ones
// too), 103 Early Hints relayed, response trailers relayed, backpressure both ways (undici's
// parser is paused while the client's socket is full), 502/504 JSON answers before the head,
// a truncated response (never a fake end) after it, the upstream torn down without reuse when
// the client leaves or the gateway revokes the response, one replay of an idempotent request
// whose pooled connection turned out closed.
//
// Framing: undici writes the request line and head itself from `headers` (values with CR/LF
// are refused and answered 500 INTERNAL, as node:http does) and sends no body: no
// Transfer-Encoding, and a Content-Length only when the client sent `Content-Length: 0`.
// The response is parsed by undici's llhttp (strict mode), which refuses conflicting framing.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import { connectionOptions, HOP_BY_HOP, isHopByHop, requestHeaders } from './hop-by-hop.js';
import type { ForwardInfo } from './proxy.js';
import { type Core, errorCode, REPLAYABLE, targetPath } from './proxy-core.js';
import { type ErrorAnswer, INTERNAL, TIMEOUT, UNAVAILABLE } from './proxy-errors.js';
import { writeResponseHead } from './proxy-web.js';

/** Whether this request goes through undici: a plain-HTTP target, no request body, no Expect, origin-form path. */
export function fastEligible(core: Core, req: IncomingMessage, path: string): boolean {
  if (core.pool === undefined || path.charCodeAt(0) !== 47 /* "/" */) return false;
  const h = req.headers;
  const cl = h['content-length'];
  return h['transfer-encoding'] === undefined && (cl === undefined || cl === '0') && h.expect === undefined;
}

/** Forwards one bodiless HTTP exchange through the core's undici pool. */
export function forwardFast(core: Core, req: IncomingMessage, res: ServerResponse, fwd: ForwardInfo): void {
  const ex = new FastExchange(core, req, res, fwd);
  (res as Tagged)[kFast] = ex;
  res.on('close', onClientResponseClose);
  (req.socket as Partial<Socket>).setNoDelay?.(true);
  ex.send();
}

const kFast = Symbol('porthole.proxy.fast');
type Tagged = { [kFast]?: FastExchange };

/** One exchange; it is its own undici handler (the legacy callback API undici runs natively). */
class FastExchange {
  /** undici's abort for the current attempt; set when the request is written. */
  abortUp: ((err?: Error) => void) | null = null;
  /** undici's resume for a paused response body. */
  resumeUp: (() => void) | null = null;
  timer: NodeJS.Timeout | undefined = undefined;
  /** The target's response head was relayed. */
  started = false;
  /** An error answer was sent, or the client is gone: nothing more goes to the client. */
  settled = false;
  retried = false;
  readonly headers: OutgoingHttpHeaders;
  readonly path: string;

  constructor(
    readonly core: Core,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    fwd: ForwardInfo,
  ) {
    this.headers = requestHeaders(fwd, core.hostHeader, false, false);
    this.path = targetPath(core, fwd.path);
  }

  send(): void {
    this.abortUp = null;
    // undici reports invalid input (a header value with CR/LF) through onError, synchronously.
    this.core.pool!.dispatch(
      {
        path: this.path,
        method: this.req.method as Dispatcher.HttpMethod,
        headers: this.headers as Record<string, string | string[]>,
        body: null,
      },
      this as unknown as Dispatcher.DispatchHandler,
    );
  }

  /** undici is about to write the request: the header timeout starts (the request has no body). */
  onConnect(abort: (err?: Error) => void): void {
    this.abortUp = abort;
    if (this.settled) {
      abort(new Error('client gone'));
      return;
    }
    if (this.timer === undefined) this.timer = setTimeout(fireTimeout, this.core.timeoutMs, this);
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void, statusText: string): boolean {
    const res = this.res;
    if (status < 200) {
      // undici fails the request on a 100 itself; 103 Early Hints are relayed, others dropped.
      if (status === 103 && !this.settled && !res.headersSent && !res.destroyed) relayHints(res, raw);
      return true;
    }
    clearTimer(this);
    if (this.settled || res.destroyed) {
      this.abortUp?.(new Error('client gone'));
      return false;
    }
    this.resumeUp = resume;
    const fields = responseFields(raw);
    try {
      writeResponseHead(res, status, statusText, fields.list);
    } catch (err) {
      // The target sent something Node will not repeat (an invalid status or header value).
      this.core.logger?.log('warn', 'target response not relayed: invalid status or header', {
        target: this.core.description,
        error: errorCode(err),
      });
      for (const name of res.getHeaderNames()) res.removeHeader(name);
      this.answer(UNAVAILABLE);
      this.abortUp?.(new Error('invalid response'));
      return false;
    }
    this.started = true;
    // A body of unknown length (SSE, streamed output) may take a while to start: send the head
    // now. With a Content-Length the body follows at once and leaves with the head in one write.
    if (!fields.hasLength && status !== 204 && status !== 304 && this.req.method !== 'HEAD') res.flushHeaders();
    res.on('drain', onClientDrain);
    return true;
  }

  /** false pauses undici's parser (and so the upstream socket) until the client drains. */
  onData(chunk: Buffer): boolean {
    if (this.settled) return false;
    return this.res.write(chunk);
  }

  onComplete(trailers: Buffer[] | string[] | null): void {
    const res = this.res;
    if (this.settled || res.destroyed) return;
    if (trailers !== null && trailers.length > 0) {
      const pairs: [string, string][] = [];
      for (let i = 0; i < trailers.length; i += 2) {
        const name = latin1(trailers[i]!);
        if (!HOP_BY_HOP.has(name.toLowerCase())) pairs.push([name, latin1(trailers[i + 1]!)]);
      }
      if (pairs.length > 0) res.addTrailers(pairs);
    }
    res.end();
  }

  onError(err: Error & { code?: string }): void {
    clearTimer(this);
    if (this.settled) return;
    if (this.started) {
      // The target died mid-body: the client must see a truncated response, not an end.
      this.core.logger?.log('warn', 'target failed mid-response', { target: this.core.description, error: errorCode(err) });
      this.settled = true;
      this.res.destroy();
      return;
    }
    if (err.code === 'UND_ERR_INVALID_ARG' || err.code === 'UND_ERR_NOT_SUPPORTED') {
      // Only malformed input gets here (a header value with CR/LF, a bad path): a gateway bug.
      this.core.logger?.log('error', 'request not forwarded: invalid request line or header', { error: errorCode(err) });
      this.answer(INTERNAL);
      return;
    }
    // A pooled connection the target had already closed: replay an idempotent request once on
    // a fresh one (as Go's Transport does; nothing of the request body can have been lost).
    if (
      !this.retried &&
      (err.code === 'UND_ERR_SOCKET' || err.code === 'ECONNRESET' || err.code === 'EPIPE') &&
      REPLAYABLE.has(this.req.method ?? '')
    ) {
      this.retried = true;
      this.send();
      return;
    }
    this.core.logger?.log('warn', 'target unavailable', { target: this.core.description, error: errorCode(err) });
    this.answer(UNAVAILABLE);
  }

  timedOut(): void {
    if (this.settled || this.started) return;
    this.core.logger?.log('warn', 'target did not answer in time', {
      target: this.core.description,
      timeoutMs: this.core.timeoutMs,
    });
    this.answer(TIMEOUT);
    this.abortUp?.(new Error('target timeout'));
  }

  /** The client is gone (or revoked by the gateway): tear down the upstream without reuse. */
  abort(): void {
    clearTimer(this);
    if (this.settled) return;
    this.settled = true;
    this.abortUp?.(new Error('client gone'));
  }

  answer(a: ErrorAnswer): void {
    this.settled = true;
    const res = this.res;
    if (res.destroyed) return;
    if (res.headersSent) {
      res.destroy(); // never a fake success
      return;
    }
    res.writeHead(a.status, a.headers);
    res.end(a.body);
  }
}

function latin1(v: Buffer | string): string {
  return typeof v === 'string' ? v : v.toString('latin1');
}

/** The target's fields minus hop-by-hop ones (and those its Connection lists), case and order kept. */
function responseFields(raw: Buffer[]): { list: string[]; hasLength: boolean } {
  const n = raw.length;
  const strings: string[] = new Array(n);
  let connection: string | undefined;
  let hasLength = false;
  for (let i = 0; i < n; i += 2) {
    const name = latin1(raw[i]!);
    const value = latin1(raw[i + 1]!);
    strings[i] = name;
    strings[i + 1] = value;
    if (name.length === 10 && name.toLowerCase() === 'connection') {
      connection = connection === undefined ? value : `${connection},${value}`;
    } else if (name.length === 14 && name.toLowerCase() === 'content-length') {
      hasLength = true;
    }
  }
  const listed = connectionOptions(connection);
  const list: string[] = [];
  for (let i = 0; i < n; i += 2) {
    const name = strings[i]!;
    if (!isHopByHop(name.toLowerCase(), listed)) list.push(name, strings[i + 1]!);
  }
  return { list, hasLength };
}

/** 103 Early Hints with a Link field, hop-by-hop fields dropped (as proxy-web.ts does). */
function relayHints(res: ServerResponse, raw: Buffer[]): void {
  const hints: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = latin1(raw[i]!).toLowerCase();
    if (HOP_BY_HOP.has(name)) continue;
    const value = latin1(raw[i + 1]!);
    const prev = hints[name];
    hints[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  if (hints.link === undefined) return;
  try {
    res.writeEarlyHints(hints);
  } catch {
    // A Link value Node refuses to repeat: hints are optional, drop them.
  }
}

function fireTimeout(ex: FastExchange): void {
  ex.timer = undefined;
  ex.timedOut();
}

function clearTimer(ex: FastExchange): void {
  if (ex.timer !== undefined) {
    clearTimeout(ex.timer);
    ex.timer = undefined;
  }
}

function onClientResponseClose(this: ServerResponse): void {
  if (!this.writableFinished) (this as Tagged)[kFast]!.abort();
}

function onClientDrain(this: ServerResponse): void {
  (this as Tagged)[kFast]!.resumeUp?.();
}
