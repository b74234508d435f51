// The upstream HTTP/1.1 client for bodiless requests (proxy-fast.ts): a keep-alive pool of
// plain sockets to one target (TCP or unix), each reading into one reused buffer (`onread`)
// and parsed by h1-response.ts. Response bodies reach the exchange as views of that buffer, so
// a download costs no allocation per chunk; the exchange must either consume a view during the
// call or `hold()` the connection until its write of the view has completed.
//
// A connection is reused only after a complete response with keep-alive framing, nothing after
// it in the buffer and no hold left; anything unexpected (bytes while idle, a parse error, an
// early close) destroys it. Idle connections close after `idleMs` (or sooner if the target's
// `Keep-Alive: timeout=` says so). At most `maxSockets` connections exist; requests beyond
// that wait in order.
import type { OutgoingHttpHeaders } from 'node:http';
import net from 'node:net';
import { FIELD_VALUE, type ParsedHead, ParseError, ResponseParser, type ResponseSink, TOKEN } from './h1-response.js';

export interface UpstreamHandler {
  /** The request has a connection; `conn` lets the exchange pause, hold or abort it. */
  onAssign(conn: UpstreamConn): void;
  /** An informational (1xx) response other than 101. */
  onInfo(head: ParsedHead): void;
  onHead(head: ParsedHead): void;
  /** A view of the connection's read buffer, valid only during the call (see `hold`). */
  onBody(chunk: Buffer): void;
  onEnd(trailers: string[]): void;
  /** `replayable`: the request went out on a reused connection and nothing came back. */
  onError(err: Error & { code?: string }, replayable: boolean): void;
}

export interface PoolOptions {
  maxSockets: number;
  idleMs: number;
  maxHead: number;
  /** Read buffer of a connection. */
  readBuffer: number;
  /** A body at least this long (or one that runs until close) switches the connection to… */
  largeBody: number;
  /** …a read buffer of this size. */
  largeReadBuffer: number;
}

export type UpstreamAddress = { host: string; port: number } | { path: string };

interface Waiting {
  handler: UpstreamHandler;
  head: string;
  headRequest: boolean;
}

export class UpstreamPool {
  readonly conns = new Set<UpstreamConn>();
  private readonly idle: UpstreamConn[] = [];
  private readonly waiting: Waiting[] = [];
  private closed = false;

  constructor(
    readonly address: UpstreamAddress,
    readonly options: PoolOptions,
  ) {}

  /** Sends `head` (a serialized request without body) and reports the response to `handler`. */
  request(handler: UpstreamHandler, head: string, headRequest: boolean): void {
    if (this.closed) {
      handler.onError(closedError('the proxy is closed'), false);
      return;
    }
    const conn = this.idle.pop() ?? (this.conns.size < this.options.maxSockets ? new UpstreamConn(this) : undefined);
    if (conn === undefined) this.waiting.push({ handler, head, headRequest });
    else conn.start(handler, head, headRequest);
  }

  /** Drops a request still waiting for a connection. */
  cancel(handler: UpstreamHandler): void {
    const i = this.waiting.findIndex((w) => w.handler === handler);
    if (i !== -1) this.waiting.splice(i, 1);
  }

  /** Ends every connection and fails every waiting request. */
  destroy(): void {
    this.closed = true;
    for (const c of [...this.conns]) c.destroy();
    for (const w of this.waiting.splice(0)) w.handler.onError(closedError('the proxy is closed'), false);
  }

  /** A connection is free: the next waiting request takes it, or it goes idle. */
  release(conn: UpstreamConn): void {
    const next = this.waiting.shift();
    if (next !== undefined) conn.start(next.handler, next.head, next.headRequest);
    else this.idle.push(conn);
  }

  /** A connection is gone. */
  forget(conn: UpstreamConn): void {
    this.conns.delete(conn);
    const i = this.idle.lastIndexOf(conn);
    if (i !== -1) this.idle.splice(i, 1);
    if (!this.closed && this.waiting.length > 0 && this.conns.size < this.options.maxSockets) {
      const next = this.waiting.shift()!;
      new UpstreamConn(this).start(next.handler, next.head, next.headRequest);
    }
  }
}

export class UpstreamConn implements ResponseSink {
  private readonly socket: net.Socket;
  private readonly parser: ResponseParser;
  private handler: UpstreamHandler | null = null;
  private used = false;
  private reused = false;
  /** The response is complete; the connection waits for holds to drop before its reuse. */
  private finished = false;
  private reusable = false;
  private idleMs: number;
  private holds = 0;
  private paused = false;
  private reading = true;
  private timer: NodeJS.Timeout | undefined;
  /** The buffer the next read goes into (onread asks before every read). */
  private buf: Buffer;
  destroyed = false;

  constructor(private readonly pool: UpstreamPool) {
    const { address, options } = pool;
    this.idleMs = options.idleMs;
    this.parser = new ResponseParser(this, options.maxHead);
    this.buf = Buffer.allocUnsafe(options.readBuffer);
    const onread = {
      buffer: () => this.buf,
      callback: (n: number, buf: Uint8Array) => {
        this.onRead(buf as Buffer, n);
        return true; // pausing is explicit (updateReading)
      },
    };
    this.socket =
      'path' in address
        ? net.connect({ path: address.path, onread })
        : net.connect({ host: address.host, port: address.port, onread, noDelay: true });
    this.socket.on('error', (err) => this.onSocketError(err));
    this.socket.on('end', () => this.onSocketEnd());
    this.socket.on('close', () => this.onSocketError(closedError('the target closed the connection')));
    pool.conns.add(this);
  }

  start(handler: UpstreamHandler, head: string, headRequest: boolean): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.handler = handler;
    this.reused = this.used;
    this.used = true;
    this.finished = false;
    this.reusable = false;
    this.parser.reset(headRequest);
    handler.onAssign(this);
    if (this.handler === handler) this.socket.write(head, 'latin1');
  }

  /** Backpressure: stop reading from the target until `resume`. */
  pause(): void {
    this.paused = true;
    this.updateReading();
  }

  resume(): void {
    this.paused = false;
    this.updateReading();
  }

  /** The exchange still uses a view of the read buffer: no read (and no reuse) until `unhold`. */
  hold(): void {
    this.holds++;
    this.updateReading();
  }

  /** A held view is no longer used; `failed`: its write failed, so the state is unknown. */
  unhold(failed: boolean): void {
    this.holds--;
    if (failed) this.destroy();
    else if (this.finished && this.holds === 0) this.settle();
    else this.updateReading();
  }

  /** Tears the connection down; the current exchange (if any) hears nothing more. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.handler = null;
    this.parser.halted = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.socket.destroy();
    this.pool.forget(this);
  }

  // ResponseSink: the parser's callbacks, passed on to the exchange.
  info(head: ParsedHead): void {
    this.handler?.onInfo(head);
  }

  head(head: ParsedHead): void {
    this.reusable = head.keepAlive;
    // A large download reads in bigger pieces: fewer syscalls on both sides of the proxy. The
    // connection keeps the big buffer; views of the old one may still be in flight.
    const { largeBody, largeReadBuffer } = this.pool.options;
    if ((head.length >= largeBody || (head.length < 0 && !head.chunked)) && this.buf.length < largeReadBuffer) {
      this.buf = Buffer.allocUnsafe(largeReadBuffer);
    }
    if (head.keepAliveMs !== undefined) {
      // Leave a second's margin so a request never races the target's own close.
      this.idleMs = Math.min(this.pool.options.idleMs, head.keepAliveMs - 1000);
      if (this.idleMs <= 0) this.reusable = false;
    }
    this.handler?.onHead(head);
  }

  body(chunk: Buffer): void {
    this.handler?.onBody(chunk);
  }

  end(trailers: string[]): void {
    const handler = this.handler;
    this.handler = null;
    this.finished = true;
    handler?.onEnd(trailers);
  }

  private onRead(buf: Buffer, n: number): void {
    if (this.destroyed) return;
    if (this.handler === null) {
      // Bytes from the target while no request is outstanding: the connection is out of step.
      this.reusable = false;
      if (this.holds === 0) this.destroy();
      return;
    }
    let used: number;
    try {
      used = this.parser.execute(n === buf.length ? buf : buf.subarray(0, n));
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    if (this.destroyed || !this.finished) return;
    if (used < n) this.reusable = false;
    if (this.holds === 0) this.settle();
  }

  /** The response is complete and nothing holds the buffer: reuse or close. */
  private settle(): void {
    if (this.destroyed) return;
    if (!this.reusable || this.socket.destroyed || this.socket.readableEnded) {
      this.destroy();
      return;
    }
    this.finished = false;
    this.paused = false;
    this.updateReading();
    this.timer = setTimeout(() => this.destroy(), this.idleMs);
    this.timer.unref();
    this.pool.release(this);
  }

  private onSocketEnd(): void {
    if (this.handler !== null) {
      try {
        this.parser.finish(); // completes a body that runs until close
      } catch (err) {
        // Closed before any answer: the target's keep-alive close racing this request.
        this.fail(this.parser.received === 0 ? closedError('the target closed the connection') : (err as Error));
        return;
      }
    }
    this.reusable = false;
    if (this.holds === 0) this.destroy();
  }

  private onSocketError(err: Error): void {
    if (this.handler !== null) {
      this.fail(err);
      return;
    }
    this.reusable = false;
    if (this.holds === 0) this.destroy();
  }

  private fail(err: Error): void {
    const handler = this.handler;
    const replayable = this.reused && this.parser.received === 0 && !(err instanceof ParseError);
    this.destroy();
    handler?.onError(err, replayable);
  }

  private updateReading(): void {
    const want = !this.paused && this.holds === 0;
    if (want === this.reading || this.destroyed) return;
    this.reading = want;
    if (want) this.socket.resume();
    else this.socket.pause();
  }
}

function closedError(message: string): Error & { code: string } {
  return Object.assign(new Error(message), { code: 'ECONNRESET' });
}

const REQUEST_TARGET = /^[\x21-\x7e\x80-\xff]+$/;

/** Thrown for a request head that must not be sent (a gateway bug, answered 500). */
export class InvalidRequestError extends Error {
  readonly code = 'INVALID_REQUEST';
}

/** `METHOD target HTTP/1.1`, the fields and the blank line, checked so nothing can be smuggled. */
export function serializeRequest(method: string, target: string, headers: OutgoingHttpHeaders): string {
  if (!TOKEN.test(method)) throw new InvalidRequestError('invalid method');
  if (!REQUEST_TARGET.test(target)) throw new InvalidRequestError('invalid request target');
  let head = `${method} ${target} HTTP/1.1\r\n`;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (!TOKEN.test(name)) throw new InvalidRequestError('invalid field name');
    if (Array.isArray(value)) {
      for (const v of value) head += fieldLine(name, v);
    } else head += fieldLine(name, String(value));
  }
  return `${head}\r\n`;
}

function fieldLine(name: string, value: string): string {
  if (!FIELD_VALUE.test(value)) throw new InvalidRequestError(`invalid value for ${name}`);
  return `${name}: ${value}\r\n`;
}
