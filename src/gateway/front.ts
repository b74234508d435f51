// The sidecar's front (docs/performance.md §8): for plain-TCP listeners of `porthole serve`,
// connections are read here first. The common request — a bodiless HTTP/1.1 request that
// the pipeline forwards to the target — is parsed, checked and forwarded without node:http's
// IncomingMessage/ServerResponse machinery, which cost more per request than all of
// porthole's own work. Everything else goes to the node:http server, unchanged.
//
// The rule that keeps this safe: this parser accepts only a strict subset of HTTP/1.1 and
// never "repairs" anything. A request line of `GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH`, an
// origin-form target of visible ASCII, exactly `HTTP/1.1`; header lines `token ":" value`
// with values of visible ASCII, space and tab only (no obs-fold, no obs-text, no bare CR or
// LF); no field name twice; a Host; no Transfer-Encoding, Upgrade or Expect; no
// Content-Length other than 0; at most 100 fields, the head within the server's size limit.
// Whatever falls outside — malformed, unusual or merely rare — is *handed off*: the
// connection, with every byte read so far, goes to the node:http server (llhttp), which
// judges it as it judges every other request. test/gateway/front-parse.test.ts checks that
// every head this parser accepts, llhttp accepts with the same method, target and fields.
//
// A handed-off request the pipeline has already judged (a wrong credential, a login
// redirect, porthole's own routes) carries that decision along, so nothing is counted or
// consumed twice: gateway.ts takes it back in handleRequest.
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import { PortholeError } from '../errors.js';
import { writeSocketError } from './respond.js';

/** One request as the front parsed it (duck-typed as the IncomingMessage fields the pipeline uses). */
export class FrontRequest {
  readonly httpVersionMajor = 1;
  readonly httpVersionMinor = 1;
  constructor(
    readonly method: string,
    public url: string,
    public headers: IncomingHttpHeaders,
    public rawHeaders: string[],
    readonly socket: Socket,
    /** The client sent `Connection: close`. */
    readonly close: boolean,
  ) {}

  get headersDistinct(): Record<string, string[]> {
    // No name repeats in an accepted head.
    const out: Record<string, string[]> = {};
    for (const name in this.headers) out[name] = [String(this.headers[name])];
    return out;
  }
}

/** Where a forwarded exchange writes its response and reports its end. */
export interface FrontSink {
  readonly socket: Socket;
  /** The client asked to close after this response. */
  readonly closeAfter: boolean;
  /** `Connection: keep-alive` and `Keep-Alive: timeout=N` lines, as node:http sends them. */
  readonly keepAliveFields: string;
  /** The exchange in progress: aborted when the client's connection closes. */
  exchange: { abort(): void } | undefined;
  /** The response is complete (its last bytes are queued on the socket). */
  done(keepAlive: boolean): void;
}

export interface FrontHooks {
  /**
   * Runs the pipeline on `req`. 'started': an exchange now writes the response to `sink`
   * and calls `sink.done()`; 'handoff': the node:http server must answer (the gateway keeps
   * its decision for it); 'drop': close the connection ([gateway] allow_cidrs).
   */
  serve(req: FrontRequest, sink: FrontSink): 'started' | 'handoff' | 'drop';
  /** `serve` threw (a bug): the connection is closed; this is for the log. */
  onError?(err: Error): void;
  /** How long a client may leave its answers unread before its connection closes ([gateway] stall_timeout). */
  readonly stallMs: number;
}

export interface FrontOptions {
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxHeaderSize: number;
}

export interface Front {
  /** Destroys every connection the front still holds (handed-off ones belong to the server). */
  closeConnections(): void;
  /** closeConnections(), and the front's timer stops (also done when the server closes). */
  close(): void;
}

/** Fields in a head the front serves itself; more go to node:http (which allows 2,000). */
export const MAX_FRONT_FIELDS = 100;
const METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']);
const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Origin-form only, visible ASCII (no space, no control characters, no obs-text). */
const TARGET = /^\/[\x21-\x7e]*$/;
/** Field values: visible ASCII, space and tab. */
const VALUE = /^[\t\x20-\x7e]*$/;
const CRLFCRLF = Buffer.from('\r\n\r\n');

/**
 * Parses a request head (without its final CRLFCRLF) if it is in the front's subset; null
 * otherwise (the connection is then handed to node:http, which decides).
 */
export function parseRequestHead(head: string, socket: Socket): FrontRequest | null {
  let lineEnd = head.indexOf('\r\n');
  const requestLine = lineEnd === -1 ? head : head.slice(0, lineEnd);
  const sp1 = requestLine.indexOf(' ');
  const sp2 = sp1 === -1 ? -1 : requestLine.indexOf(' ', sp1 + 1);
  if (sp1 <= 0 || sp2 === -1) return null;
  const method = requestLine.slice(0, sp1);
  if (!METHODS.has(method)) return null;
  const url = requestLine.slice(sp1 + 1, sp2);
  if (!TARGET.test(url)) return null;
  if (requestLine.length !== sp2 + 9 || !requestLine.endsWith(' HTTP/1.1')) return null;

  const headers: IncomingHttpHeaders = {};
  const raw: string[] = [];
  let pos = lineEnd + 2;
  while (lineEnd !== -1) {
    lineEnd = head.indexOf('\r\n', pos);
    const line = lineEnd === -1 ? head.slice(pos) : head.slice(pos, lineEnd);
    pos = lineEnd + 2;
    const colon = line.indexOf(':');
    if (colon <= 0) return null;
    const name = line.slice(0, colon);
    // A token right up to the colon: no whitespace before it, no obs-fold continuation line.
    if (!TCHAR.test(name)) return null;
    const rawValue = line.slice(colon + 1);
    if (!VALUE.test(rawValue)) return null;
    const value = trimOws(rawValue);
    const lower = name.toLowerCase();
    if (lower === '__proto__' || Object.hasOwn(headers, lower)) return null;
    if (raw.length >= MAX_FRONT_FIELDS * 2) return null;
    headers[lower] = value;
    raw.push(name, value);
  }
  if (headers.host === undefined) return null;
  if (headers['transfer-encoding'] !== undefined || headers.expect !== undefined || headers.upgrade !== undefined) return null;
  const cl = headers['content-length'];
  if (cl !== undefined && cl !== '0') return null;
  let close = false;
  const connection = headers.connection;
  if (connection !== undefined) {
    for (const token of connection.split(',')) {
      const t = token.trim().toLowerCase();
      if (t === 'close') close = true;
      else if (t === 'upgrade') return null;
    }
  }
  return new FrontRequest(method, url, headers, raw, socket, close);
}

/**
 * The first request head in `buf`: 'incomplete' (wait for more), null (not the front's to
 * serve: hand the connection off), or the request and the bytes its head took.
 */
export function readRequestHead(buf: Buffer, maxHeaderSize: number, socket: Socket): { req: FrontRequest; length: number } | 'incomplete' | null {
  const end = buf.indexOf(CRLFCRLF);
  if (end === -1) return buf.length > maxHeaderSize ? null : 'incomplete';
  if (end + 4 > maxHeaderSize) return null;
  const req = parseRequestHead(buf.toString('latin1', 0, end), socket);
  return req === null ? null : { req, length: end + 4 };
}

/** Strips leading and trailing spaces and tabs (OWS), as llhttp does. */
function trimOws(v: string): string {
  let a = 0;
  let b = v.length;
  while (a < b && (v.charCodeAt(a) === 32 || v.charCodeAt(a) === 9)) a++;
  while (b > a && (v.charCodeAt(b - 1) === 32 || v.charCodeAt(b - 1) === 9)) b--;
  return a === 0 && b === v.length ? v : v.slice(a, b);
}

/** Bytes a client may pipeline behind a request in progress before the front stops reading. */
const PIPELINE_LIMIT = 64 * 1024;
/** Answer bytes queued on a client's socket beyond which its next request waits for 'drain'. */
const WRITE_LIMIT = 256 * 1024;
const SWEEP_MS = 1_000;

/**
 * Puts the front before `server`'s own connection handling: every new connection is read
 * here first and handed to the server's original 'connection' listeners when the front will
 * not serve it. Call after the server is created, before other 'connection' listeners are
 * prepended (those run first and may destroy the socket).
 */
export function attachFront(server: Server, hooks: FrontHooks, options: FrontOptions): Front {
  // An HTTPS server hands node:http its connections on 'secureConnection', after TLS.
  const event = server instanceof TlsServer ? 'secureConnection' : 'connection';
  const original = server.listeners(event) as ((socket: Socket) => void)[];
  server.removeAllListeners(event);
  const conns = new Set<FrontConn>();
  const handOff = (socket: Socket, buffered: Buffer | undefined): void => {
    for (const l of original) l.call(server, socket);
    // Synchronously, before any new byte can arrive: the server's parser sees the buffered
    // bytes first, then the socket's (node:http reads the handle directly from here on).
    if (buffered !== undefined && !socket.destroyed) socket.emit('data', buffered);
  };
  const ctx: FrontContext = {
    keepAliveFields: `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(options.keepAliveTimeoutMs / 1000)}\r\n`,
    hooks,
    options,
    conns,
    handOff,
  };
  server.on(event, (socket: Socket) => {
    if (socket.destroyed) return;
    conns.add(new FrontConn(ctx, socket));
  });
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const c of conns) c.checkTimeouts(now);
  }, Math.min(SWEEP_MS, options.headersTimeoutMs));
  sweep.unref();
  server.once('close', () => clearInterval(sweep));
  return {
    closeConnections() {
      for (const c of [...conns]) c.socket.destroy();
      conns.clear();
    },
    close() {
      clearInterval(sweep);
      this.closeConnections();
    },
  };
}

interface FrontContext {
  keepAliveFields: string;
  hooks: FrontHooks;
  options: FrontOptions;
  conns: Set<FrontConn>;
  handOff(socket: Socket, buffered: Buffer | undefined): void;
}

const kConn = Symbol('porthole.front.conn');
type Tagged = Socket & { [kConn]?: FrontConn };

class FrontConn implements FrontSink {
  /** Bytes read and not yet parsed. */
  buf: Buffer | undefined = undefined;
  /** A forwarded exchange is writing its response. */
  busy = false;
  /** Since when the connection waits for a request head (ms). */
  since = Date.now();
  served = 0;
  closeAfter = false;
  /** A `Connection: close` (or error) answer was sent: nothing more is read or served. */
  closing = false;
  private inNext = false;
  paused = false;
  /** Waiting for the client to read queued answers before serving the next request. */
  draining = false;
  exchange: { abort(): void } | undefined = undefined;

  constructor(
    readonly ctx: FrontContext,
    readonly socket: Socket,
  ) {
    (socket as Tagged)[kConn] = this;
    socket.setNoDelay(true);
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onClose);
  }

  get keepAliveFields(): string {
    return this.ctx.keepAliveFields;
  }

  read(chunk: Buffer): void {
    if (this.closing) return; // after a `Connection: close` answer nothing more is read as a request
    // A new head's clock starts at its first byte (idle keep-alive time is not counted).
    if (this.buf === undefined && !this.busy) this.since = Date.now();
    this.buf = this.buf === undefined ? chunk : Buffer.concat([this.buf, chunk]);
    if (!this.busy) this.next();
    else if (this.buf.length > PIPELINE_LIMIT && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  /** Serves the requests buffered so far, one at a time. */
  next(): void {
    if (this.inNext) return; // an exchange that ended inside serve(): the loop below goes on
    this.inNext = true;
    try {
      while (!this.busy && !this.closing && this.buf !== undefined) {
        const buf = this.buf;
        const r0 = readRequestHead(buf, this.ctx.options.maxHeaderSize, this.socket);
        if (r0 === 'incomplete') return;
        if (r0 === null) return this.handOff();
        const { req, length } = r0;
        this.closeAfter = req.close;
        // Consumed before serving: an exchange may end (done()) inside serve().
        this.buf = length === buf.length ? undefined : buf.subarray(length);
        this.busy = true;
        this.since = 0;
        let r: 'started' | 'handoff' | 'drop';
        try {
          r = this.ctx.hooks.serve(req, this);
        } catch (err) {
          // A bug must cost this connection, never the gateway (this runs in a 'data' handler).
          this.ctx.hooks.onError?.(err as Error);
          this.socket.destroy();
          return;
        }
        if (r === 'drop') {
          this.socket.destroy();
          return;
        }
        if (r === 'handoff') {
          // node:http reads this request again, from its first byte.
          this.busy = false;
          this.buf = buf;
          return this.handOff();
        }
      }
    } finally {
      this.inNext = false;
    }
  }

  done(keepAlive: boolean): void {
    this.exchange = undefined;
    this.served++;
    this.since = Date.now();
    if (!keepAlive || this.closeAfter) {
      // As node:http does: the rest of what the client sent is not read as requests, and the
      // socket is destroyed once the answer is flushed (or by the sweep, if it never is).
      this.closing = true;
      this.busy = false;
      this.buf = undefined;
      this.socket.destroySoon();
      return;
    }
    if (this.socket.writableLength > WRITE_LIMIT) {
      // A client that pipelines and does not read: serve its next request once it has read
      // this answer, so its answers cannot pile up in memory — and close its connection if it
      // reads none of them for stallMs (the sweep).
      this.draining = true;
      this.socket.once('drain', () => this.resumeServing());
      return;
    }
    this.resumeServing();
  }

  private resumeServing(): void {
    this.draining = false;
    this.busy = false;
    this.since = Date.now();
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
    this.next();
  }

  /** The node:http server takes the connection, with what was read and not yet served. */
  handOff(): void {
    const socket = this.socket;
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.off('error', onError);
    socket.off('close', onClose);
    (socket as Tagged)[kConn] = undefined;
    this.ctx.conns.delete(this);
    const buffered = this.buf;
    this.buf = undefined;
    if (this.paused) socket.resume();
    this.ctx.handOff(socket, buffered);
  }

  checkTimeouts(now: number): void {
    if (this.draining) {
      if (now - this.since > this.ctx.hooks.stallMs) this.socket.destroy();
      return;
    }
    if (this.busy || this.since === 0) return;
    const waited = now - this.since;
    const { headersTimeoutMs, keepAliveTimeoutMs } = this.ctx.options;
    if (this.closing) {
      // Its last answer is not flushed after this long: the client does not read.
      if (waited > keepAliveTimeoutMs) this.socket.destroy();
      return;
    }
    if (this.buf !== undefined) {
      // Part of a head, and not the rest in time (slowloris): as node:http answers it. Nothing
      // after it is read as a request; the socket closes once the answer is flushed, or at
      // the next sweep after keepAliveTimeout if the client does not read it.
      if (waited > headersTimeoutMs) {
        this.closing = true;
        this.buf = undefined;
        this.since = now;
        writeSocketError(this.socket, new PortholeError('REQUEST_TIMEOUT', 'request headers not received in time'));
        this.socket.destroySoon();
      }
    } else if (waited > (this.served > 0 ? keepAliveTimeoutMs : headersTimeoutMs)) {
      this.socket.destroy();
    }
  }

  /**
   * The client half-closed. As node:http does by default (httpAllowHalfOpen false): the
   * answer in progress is abandoned (its upstream connection too) and the socket closes once
   * what is queued is flushed.
   */
  ended(): void {
    this.closing = true;
    this.buf = undefined;
    this.since = Date.now();
    const ex = this.exchange;
    this.exchange = undefined;
    if (ex !== undefined) {
      this.busy = false;
      ex.abort();
    }
    this.socket.destroySoon();
  }
}

function onData(this: Tagged, chunk: Buffer): void {
  this[kConn]?.read(chunk);
}

function onEnd(this: Tagged): void {
  this[kConn]?.ended();
}

function onError(this: Tagged): void {
  this.destroy();
}

function onClose(this: Tagged): void {
  const c = this[kConn];
  if (c === undefined) return;
  c.ctx.conns.delete(c);
  const ex = c.exchange;
  c.exchange = undefined;
  ex?.abort();
}
