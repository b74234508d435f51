// One bodiless exchange the front (front.ts) serves itself: the request goes out through the
// upstream pool (h1-pool.ts), the response is written as raw HTTP/1.1 to the client's socket.
// Same contract as proxy-fast.ts, which does this for node:http's ServerResponse: hop-by-hop
// fields stripped (Connection-listed ones too), 103 Early Hints relayed, response trailers
// relayed, backpressure (the upstream connection is held while a view of its buffer is
// queued on the client's socket), 502/504 JSON answers before the head, a cut connection —
// never a fake end — after it, no reuse of the upstream connection when the client leaves or
// the gateway revokes the response, one replay of an idempotent request whose pooled
// connection turned out closed.
//
// Framing to the client: a Content-Length body keeps its length (short ones leave with the
// head in one write, long ones go straight from the upstream read buffer); a chunked or
// close-delimited body is sent chunked (the client speaks HTTP/1.1: front.ts serves no other).
import type { ParsedHead } from './h1-response.js';
import type { FrontSink } from './front.js';
import { relayableFields } from './hop-by-hop.js';
import type { Core } from './proxy-core.js';
import { clearTimer, DIRECT_MIN, PooledExchange } from './proxy-pooled.js';
import type { ErrorAnswer } from './proxy-errors.js';
import { mergeVary } from './proxy-web.js';

let dateSecond = 0;
let dateField = '';
/** `Date: …\r\n`, formatted once per second (as node:http caches it). */
function dateLine(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateField = `Date: ${new Date(now).toUTCString()}\r\n`;
  }
  return dateField;
}

type Mode = 'bodyless' | 'buffered' | 'direct' | 'chunked';

/** One exchange: the upstream pool's handler, and what the tracker closes on rotation. */
export class FrontExchange extends PooledExchange {
  destroyed = false;
  mode: Mode = 'bodyless';
  /** 'buffered': head and body, written at the end in one piece. */
  out: Buffer | undefined = undefined;
  outAt = 0;
  private closeListeners: (() => void)[] = [];

  constructor(
    core: Core,
    readonly sink: FrontSink,
    method: string,
    head: string,
    /** Fields the gateway adds to the response (CORS): flat [name, value, …]. */
    readonly extra: string[] | undefined,
  ) {
    super(core, method, head);
    sink.exchange = this;
  }

  // The tracker's Closable -------------------------------------------------------------

  on(_event: 'close', listener: () => void): this {
    this.closeListeners.push(listener.bind(this));
    return this;
  }

  once(event: 'close', listener: () => void): this {
    return this.on(event, listener);
  }

  /** Revoked (token rotation, logout): the client's connection is cut, as for node:http responses. */
  destroy(): void {
    if (this.destroyed) return;
    this.sink.socket.destroy();
    this.abort();
  }

  private closed(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    const listeners = this.closeListeners;
    this.closeListeners = [];
    for (const l of listeners) l();
  }

  protected override abandoned(): void {
    this.closed();
  }

  // The exchange ------------------------------------------------------------------------

  onInfo(head: ParsedHead): void {
    if (head.status !== 103 || this.settled) return;
    const fields = relayableFields(head.fields);
    if (!fields.some((f, i) => i % 2 === 0 && f.toLowerCase() === 'link')) return;
    this.sink.socket.write(`HTTP/1.1 103 Early Hints\r\n${fieldLines(fields)}\r\n`, 'latin1');
  }

  onHead(head: ParsedHead): void {
    clearTimer(this);
    if (this.settled) {
      this.abort();
      return;
    }
    const status = head.status;
    const fields = relayableFields(head.fields);
    let lines = `HTTP/1.1 ${status} ${head.statusText}\r\n${fieldLines(fields)}`;
    if (this.extra !== undefined) lines += extraLines(this.extra, fields);
    if (!hasField(fields, 'date')) lines += dateLine();
    const bodyless = status === 204 || status === 304 || this.method === 'HEAD';
    if (!bodyless && head.length < 0) {
      this.mode = 'chunked';
      lines += 'Transfer-Encoding: chunked\r\n';
    } else if (bodyless || head.length === 0) this.mode = 'bodyless';
    else this.mode = head.length >= DIRECT_MIN ? 'direct' : 'buffered';
    lines += this.sink.closeAfter ? 'Connection: close\r\n\r\n' : `${this.sink.keepAliveFields}\r\n`;
    this.started = true;
    if (this.mode === 'buffered') {
      const headBytes = Buffer.byteLength(lines, 'latin1');
      this.out = Buffer.allocUnsafe(headBytes + head.length);
      this.out.write(lines, 0, 'latin1');
      this.outAt = headBytes;
      return;
    }
    // Bodyless answers leave at onEnd (with nothing after them); the others' heads go now —
    // a stream of unknown length (SSE) may take a while to start.
    if (this.mode === 'bodyless') this.out = Buffer.from(lines, 'latin1');
    else this.sink.socket.write(lines, 'latin1');
  }

  onBody(chunk: Buffer): void {
    if (this.settled) return;
    const socket = this.sink.socket;
    if (socket.destroyed) return;
    if (this.mode === 'buffered') {
      // The target sent no more than its Content-Length: the parser guarantees it.
      this.outAt += chunk.copy(this.out!, this.outAt);
      return;
    }
    if (this.mode === 'chunked') {
      socket.cork();
      socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      this.writeView(socket, chunk);
      socket.write('\r\n', 'latin1');
      socket.uncork();
      return;
    }
    this.writeView(socket, chunk);
  }

  onEnd(trailers: string[]): void {
    if (this.settled) return;
    this.settled = true;
    const socket = this.sink.socket;
    if (!socket.destroyed) {
      if (this.mode === 'buffered' || this.mode === 'bodyless') socket.write(this.out!);
      else if (this.mode === 'chunked') socket.write(`0\r\n${fieldLines(relayableFields(trailers))}\r\n`, 'latin1');
    }
    this.out = undefined;
    this.finished();
    this.closed();
    this.sink.done(true);
  }

  protected cut(): void {
    this.sink.socket.destroy();
  }

  /** A canned 502/504 before any of the target's response; the connection closes after it. */
  protected answer(a: ErrorAnswer): void {
    this.settled = true;
    const socket = this.sink.socket;
    if (!socket.destroyed) socket.write(a.raw);
    this.closed();
    this.sink.done(false);
  }
}

function fieldLines(fields: string[]): string {
  let s = '';
  for (let i = 0; i < fields.length; i += 2) s += `${fields[i]}: ${fields[i + 1]}\r\n`;
  return s;
}

function hasField(fields: string[], lower: string): boolean {
  for (let i = 0; i < fields.length; i += 2) if (fields[i]!.length === lower.length && fields[i]!.toLowerCase() === lower) return true;
  return false;
}

/** The gateway's fields, unless the target sent the same name (its value wins); Vary merges. */
function extraLines(extra: string[], fields: string[]): string {
  let s = '';
  for (let i = 0; i < extra.length; i += 2) {
    const name = extra[i]!;
    const lower = name.toLowerCase();
    if (lower === 'vary') {
      const theirs: string[] = [];
      for (let j = 0; j < fields.length; j += 2) if (fields[j]!.toLowerCase() === 'vary') theirs.push(fields[j + 1]!);
      if (theirs.length > 0) {
        const merged = mergeVary(theirs, extra[i + 1]!);
        // Their Vary lines went out already; add only what they lack.
        const joined = theirs.join(', ');
        if (merged !== joined && merged !== '*') s += `Vary: ${merged.slice(joined.length + 2)}\r\n`;
        continue;
      }
    } else if (hasField(fields, lower)) continue;
    s += `${name}: ${extra[i + 1]}\r\n`;
  }
  return s;
}
