// The HTTP exchange without a request body, sent through porthole's own HTTP/1.1 client
// (h1-pool.ts, h1-response.ts): most requests (GET, HEAD, bodiless POST) to an http:// or unix:
// target. Node's http client costs a ClientRequest/Agent round per request and copies every
// body chunk in its parser; this client reads each connection into one reused buffer, and a
// large Content-Length body is written from that buffer straight to the client's socket.
// docs/performance.md §7 has the A/B figures.
//
// Requests with a body, `Expect` or a non-origin-form target ("*") stay on the node:http path
// (proxy-web.ts), as do https:// targets and upgrades.
//
// Same contract as proxy-web.ts: hop-by-hop fields stripped both ways (Connection-listed ones
// too), 103 Early Hints relayed, response trailers relayed, backpressure both ways (the
// upstream socket stops reading while the client's is full), 502/504 JSON answers before the
// head, a truncated response (never a fake end) after it, the upstream torn down without reuse
// when the client leaves or the gateway revokes the response, one replay of an idempotent
// request whose pooled connection turned out closed.
//
// Framing: the request head is written by serializeRequest (values with CR/LF or other control
// characters are refused and answered 500 INTERNAL, as node:http does) with no body: no
// Transfer-Encoding, and a Content-Length only when the client sent `Content-Length: 0`. The
// response is parsed strictly (h1-response.ts), which refuses conflicting framing.
import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import { Socket } from 'node:net';
import { InvalidRequestError, serializeRequest } from './h1-pool.js';
import type { ParsedHead } from './h1-response.js';
import { HOP_BY_HOP, relayableFields, requestHeaders } from './hop-by-hop.js';
import type { ForwardInfo } from './proxy.js';
import { type Core, errorCode, targetPath } from './proxy-core.js';
import { clearTimer, DIRECT_MIN, PooledExchange } from './proxy-pooled.js';
import { type ErrorAnswer, INTERNAL, UNAVAILABLE } from './proxy-errors.js';
import { writeResponseHead } from './proxy-web.js';

/** Whether this request goes through porthole's client: a plain-HTTP target, no request body, no Expect, origin-form path. */
export function fastEligible(core: Core, req: IncomingMessage, path: string): boolean {
  if (core.pool === undefined || path.charCodeAt(0) !== 47 /* "/" */) return false;
  const h = req.headers;
  const cl = h['content-length'];
  return h['transfer-encoding'] === undefined && (cl === undefined || cl === '0') && h.expect === undefined;
}

/** Forwards one bodiless HTTP exchange through the core's upstream pool. */
export function forwardFast(core: Core, req: IncomingMessage, res: ServerResponse, fwd: ForwardInfo): void {
  let head: string;
  try {
    head = serializeRequest(req.method ?? 'GET', targetPath(core, fwd.path), requestHeaders(fwd, core.hostHeader, false, false));
  } catch (err) {
    if (!(err instanceof InvalidRequestError)) throw err;
    // Only malformed input gets here (a header value with CR/LF, a bad path): a gateway bug.
    core.logger?.log('error', 'request not forwarded: invalid request line or header', { error: err.message });
    res.writeHead(INTERNAL.status, INTERNAL.headers);
    res.end(INTERNAL.body);
    return;
  }
  const ex = new FastExchange(core, req, res, head);
  (res as Tagged)[kFast] = ex;
  res.on('close', onClientResponseClose);
  (req.socket as Partial<Socket>).setNoDelay?.(true);
  ex.send();
}

const kFast = Symbol('porthole.proxy.fast');
type Tagged = { [kFast]?: FastExchange };

/** One exchange; it is its own handler for the upstream pool. */
class FastExchange extends PooledExchange {
  /** Body views are written straight to this socket (large Content-Length bodies). */
  direct: Socket | null = null;

  constructor(
    core: Core,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    head: string,
  ) {
    super(core, req.method ?? 'GET', head);
  }

  onInfo(head: ParsedHead): void {
    // 103 Early Hints are relayed, other 1xx dropped (no Expect was sent, so no 100 is due).
    const res = this.res;
    // RFC 9110 §15.2: no 1xx to an HTTP/1.0 client.
    const req = this.req;
    if (req.httpVersionMajor === 1 && req.httpVersionMinor === 0) return;
    if (head.status === 103 && !this.settled && !res.headersSent && !res.destroyed) relayHints(res, head.fields);
  }

  onHead(head: ParsedHead): void {
    clearTimer(this);
    const res = this.res;
    if (this.settled || res.destroyed) {
      this.abort();
      return;
    }
    const status = head.status;
    try {
      writeResponseHead(res, status, head.statusText, relayableFields(head.fields));
    } catch (err) {
      // The target sent something Node will not repeat (an invalid status or header value).
      this.core.logger?.log('warn', 'target response not relayed: invalid status or header', {
        target: this.core.description,
        error: errorCode(err),
      });
      for (const name of res.getHeaderNames()) res.removeHeader(name);
      this.answer(UNAVAILABLE);
      this.conn?.destroy();
      return;
    }
    this.started = true;
    const bodyless = status === 204 || status === 304 || this.req.method === 'HEAD';
    if (bodyless) return;
    if (head.length < 0) {
      // A body of unknown length (SSE, streamed output) may take a while to start: send the head now.
      res.flushHeaders();
    } else if (head.length >= DIRECT_MIN && res.socket instanceof Socket && !res.chunkedEncoding) {
      // res.socket is set only when this response is the connection's current one (not queued
      // behind a pipelined predecessor), so writes to it land after the head, in order.
      res.flushHeaders();
      this.direct = res.socket;
      return;
    }
    res.on('drain', onClientDrain);
  }

  onBody(chunk: Buffer): void {
    if (this.settled) return;
    const direct = this.direct;
    if (direct === null) {
      if (!this.res.write(Buffer.from(chunk))) {
        this.conn?.pause();
        this.waiting();
      }
      return;
    }
    if (direct.destroyed) return;
    // The view must stay untouched until written: when the socket queues it instead of writing
    // it at once, the connection is held (no reads into the buffer) until the write's callback.
    this.writeView(direct, chunk);
  }

  onEnd(trailers: string[]): void {
    const res = this.res;
    if (this.settled || res.destroyed) return;
    if (trailers.length > 0) {
      const pairs: [string, string][] = [];
      for (let i = 0; i < trailers.length; i += 2) {
        const name = trailers[i]!;
        if (!HOP_BY_HOP.has(name.toLowerCase())) pairs.push([name, trailers[i + 1]!]);
      }
      if (pairs.length > 0) res.addTrailers(pairs);
    }
    // The connection is settled by the pool; only a direct write still holding it keeps the link.
    this.finished();
    res.end();
  }

  protected cut(): void {
    this.res.destroy();
  }

  protected answer(a: ErrorAnswer): void {
    this.settled = true;
    const res = this.res;
    if (res.destroyed) return;
    if (res.headersSent) {
      res.destroy(); // never a fake success
      return;
    }
    // The reason phrase too: a failed writeHead of the target's head may have set its own.
    res.writeHead(a.status, STATUS_CODES[a.status] ?? '', a.headers);
    res.end(a.body);
  }
}

/** 103 Early Hints with a Link field, hop-by-hop fields dropped (as proxy-web.ts does). */
function relayHints(res: ServerResponse, raw: string[]): void {
  const hints: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(name)) continue;
    const value = raw[i + 1]!;
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

function onClientResponseClose(this: ServerResponse): void {
  const ex = (this as Tagged)[kFast]!;
  if (!this.writableFinished) ex.abort();
  else ex.clock?.stop();
}

function onClientDrain(this: ServerResponse): void {
  const ex = (this as Tagged)[kFast]!;
  ex.clock?.stop();
  ex.conn?.resume();
}
