// What every bodiless exchange through the upstream pool (h1-pool.ts) shares, whoever it
// answers: node:http's ServerResponse (proxy-fast.ts) or a raw socket (proxy-front.ts). The
// upstream side lives here — the header timeout, the one replay of an idempotent request on
// a pooled connection the target had closed, tearing the connection down when the client
// leaves, and the holds that keep the pool's read buffer while a view of it is queued on the
// client's socket. Subclasses say how an answer, a cut and an abandoned exchange look.
import type { UpstreamConn, UpstreamHandler } from './h1-pool.js';
import type { ParsedHead } from './h1-response.js';
import { type Core, errorCode, REPLAYABLE, StallClock } from './proxy-core.js';
import { type ErrorAnswer, TIMEOUT, UNAVAILABLE } from './proxy-errors.js';

/**
 * Bodies at least this long (by Content-Length) go from the upstream read buffer straight to
 * the client's socket; shorter ones are copied and leave with the head in one write.
 */
export const DIRECT_MIN = 64 * 1024;

export abstract class PooledExchange implements UpstreamHandler {
  conn: UpstreamConn | null = null;
  timer: NodeJS.Timeout | undefined = undefined;
  /** The target's response head was relayed. */
  started = false;
  /** An error answer was sent, the response is complete, or the client is gone. */
  settled = false;
  retried = false;
  /** The target's response is complete (onEnd). */
  ended = false;
  /** Per view written to the client's socket, in order: whether it held the connection's buffer. */
  readonly held: boolean[] = [];
  /** Views in `held` that hold the buffer. */
  holding = 0;
  /** Runs while the client's socket does not take the answer (made on the first wait). */
  clock: StallClock | null = null;
  /** Called when such a write has completed. */
  readonly written: (err?: Error | null) => void;

  constructor(
    readonly core: Core,
    readonly method: string,
    /** The serialised request head. */
    readonly head: string,
  ) {
    this.written = (err) => {
      if (this.held.shift() === true) {
        this.conn?.unhold(err !== undefined && err !== null);
        if (--this.holding === 0) this.clock?.stop();
        else this.clock?.moved();
      }
      // The response is complete and its last view written: the connection may now serve
      // another exchange, which a late abort() of this one must not destroy.
      if (this.ended && this.held.length === 0) this.conn = null;
    };
  }

  /** Answers with a canned 502/504 (nothing of the target's answer was relayed yet). */
  protected abstract answer(a: ErrorAnswer): void;
  /** The target failed mid-body: the client must see a truncated response, never an end. */
  protected abstract cut(): void;
  /** Called once the exchange is over without a complete answer (abort, cut). */
  protected abandoned(): void {}

  abstract onInfo(head: ParsedHead): void;
  abstract onHead(head: ParsedHead): void;
  abstract onBody(chunk: Buffer): void;
  abstract onEnd(trailers: string[]): void;

  send(): void {
    if (this.timer === undefined) this.timer = setTimeout(fireTimeout, this.core.timeoutMs, this);
    this.core.pool!.request(this, this.head, this.method === 'HEAD');
  }

  onAssign(conn: UpstreamConn): void {
    this.conn = conn;
    if (this.settled) conn.destroy();
  }

  /** Writes a view of the pool's read buffer; the connection is held (no reads into it) while queued. */
  protected writeView(socket: NodeJS.WritableStream & { writableLength: number; writableCorked: number }, chunk: Buffer): void {
    const before = socket.writableLength;
    socket.write(chunk, this.written);
    const queued = socket.writableLength > before || socket.writableCorked > 0;
    this.held.push(queued);
    if (queued) {
      this.conn!.hold();
      this.holding++;
      this.waiting();
    }
  }

  /** The client's socket pushes back: a client that takes nothing for core.stallMs loses it. */
  protected waiting(): void {
    this.clock ??= new StallClock(this.core.stallMs, () => this.stalled());
    this.clock.wait();
  }

  private stalled(): void {
    this.core.logger?.log('warn', 'client stopped reading the answer', { target: this.core.description, stallMs: this.core.stallMs });
    const ended = this.ended;
    this.settled = true;
    // Its queued writes fail, which releases the views holding the target's connection.
    this.cut();
    if (!ended) this.abort();
  }

  /** The response is complete: the pool settles the connection; only a held view keeps it here. */
  protected finished(): void {
    clearTimer(this);
    this.ended = true;
    if (this.held.length === 0) this.conn = null;
  }

  onError(err: Error & { code?: string }, replayable: boolean): void {
    clearTimer(this);
    this.conn = null;
    if (this.settled) return;
    if (this.started) {
      this.core.logger?.log('warn', 'target failed mid-response', { target: this.core.description, error: errorCode(err) });
      this.settled = true;
      this.cut();
      this.abandoned();
      return;
    }
    // A pooled connection the target had already closed: replay an idempotent request once on
    // a fresh one (as Go's Transport does; nothing of the request body can have been lost).
    if (replayable && !this.retried && REPLAYABLE.has(this.method)) {
      this.retried = true;
      this.send();
      return;
    }
    this.core.logger?.log('warn', 'target unavailable', { target: this.core.description, error: errorCode(err) });
    this.settled = true;
    this.answer(UNAVAILABLE);
  }

  timedOut(): void {
    if (this.settled || this.started) return;
    this.core.logger?.log('warn', 'target did not answer in time', { target: this.core.description, timeoutMs: this.core.timeoutMs });
    this.settled = true;
    this.answer(TIMEOUT);
    this.abort();
  }

  /** The client is gone (or the gateway revoked the response): tear down the upstream without reuse. */
  abort(): void {
    clearTimer(this);
    this.clock?.stop();
    this.settled = true;
    const conn = this.conn;
    this.conn = null;
    if (conn !== null) conn.destroy();
    else this.core.pool?.cancel(this);
    this.abandoned();
  }
}

function fireTimeout(ex: PooledExchange): void {
  ex.timer = undefined;
  ex.timedOut();
}

export function clearTimer(ex: PooledExchange): void {
  if (ex.timer !== undefined) {
    clearTimeout(ex.timer);
    ex.timer = undefined;
  }
}
