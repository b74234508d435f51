// One multiplexed stream: a Duplex whose writes become DATA frames (as far as the peer's
// credit allows) and whose readable side is fed by the peer's DATA. The session owns the
// protocol state kept here; the stream only reports what its user does (write, end,
// read, destroy) through the StreamHost.
import { Duplex } from 'node:stream';
import { WIRE_CODES } from './frames.js';

/** What a stream asks of its session. */
export interface StreamHost {
  /** Bytes were queued (or credit arrived): frame them at the next flush. */
  wantSend(stream: MuxStream): void;
  /** The user ended the writable side: send FIN (all earlier bytes are framed already). */
  sendFin(stream: MuxStream): void;
  /** The consumer read: return credit to the peer if enough was consumed. */
  wantGrant(stream: MuxStream): void;
  /** The stream was destroyed locally (or after the peer's RST, or the session's close). */
  destroyed(stream: MuxStream, rstCode: number): void;
}

type WriteCallback = (error?: Error | null) => void;

export class MuxStream extends Duplex {
  /** Stream id on this connection (0 if the stream was refused before it was opened). */
  readonly id: number;
  /** The OPEN metadata: the opener's bytes, as given to openStream or received. */
  readonly meta: Buffer;
  /** The RST code when the stream was reset (by either side); see WIRE_CODES. */
  rstCode: number | undefined;

  // Protocol state, owned by the session -------------------------------------------------
  /** Bytes this side may still send on the stream (the peer's credit). */
  sendCredit: number;
  /** Bytes the peer may still send before this side grants more (its view of our window). */
  recvAvail: number;
  /** This side's receive window: initialWindow, grown by auto-tuning (session.growWindow). */
  window: number;
  /** `granted` when the window last grew (or was checked for growth): see session.growWindow. */
  grownAt = 0;
  /** Credit issued to the peer so far: the initial window plus every WINDOW increment sent. */
  credited: number;
  /** Over half the issued credit arrived before it could be returned (session): the window limits the peer. */
  starved = false;
  /** Bytes pushed to the readable side, and bytes returned to the peer by WINDOW. */
  pushed = 0;
  granted = 0;
  finSent = false;
  finReceived = false;
  /** Set once the stream has left the session's table (closed both ways, reset, or session closed). */
  released = false;

  private readonly host: StreamHost;
  private readonly queue: Buffer[] = [];
  private queueHead = 0;
  private queueOffset = 0;
  /** Bytes written by the user and not yet framed. */
  queuedBytes = 0;
  private writeCallback: WriteCallback | undefined;
  private resetWith: number | undefined;
  /** The peer reset the stream after its FIN: writes are dropped, the readable side drains. */
  private writesDropped = false;

  constructor(host: StreamHost, id: number, meta: Buffer, recvWindow: number, sendCredit: number, writableHighWaterMark: number) {
    // readableHighWaterMark = the initial window: the credit, not the stream buffer, bounds
    // what the peer sends (push()'s answer is not used; a grown window may exceed this).
    super({ allowHalfOpen: true, readableHighWaterMark: recvWindow, writableHighWaterMark });
    this.host = host;
    this.id = id;
    this.meta = meta;
    this.recvAvail = recvWindow;
    this.window = recvWindow;
    this.credited = recvWindow;
    this.sendCredit = sendCredit;
  }

  /** Resets the stream with a wire code (default CANCEL) and destroys it. */
  reset(code: number = WIRE_CODES.CANCEL): this {
    if (!this.destroyed) this.resetWith = code;
    return this.destroy();
  }

  // Session side ---------------------------------------------------------------------------

  /** Delivers DATA payload from the peer. */
  receive(piece: Buffer): void {
    this.pushed += piece.length;
    this.push(piece);
    this.host.wantGrant(this);
  }

  /** Moves up to `n` queued bytes (n ≤ queuedBytes) into `out` as views, not copies. */
  takeQueued(out: Buffer[], n: number): void {
    this.queuedBytes -= n;
    while (n > 0) {
      const chunk = this.queue[this.queueHead]!;
      const left = chunk.length - this.queueOffset;
      if (left <= n) {
        out.push(this.queueOffset === 0 ? chunk : chunk.subarray(this.queueOffset));
        this.queue[this.queueHead++] = EMPTY;
        this.queueOffset = 0;
        n -= left;
      } else {
        out.push(chunk.subarray(this.queueOffset, this.queueOffset + n));
        this.queueOffset += n;
        n = 0;
      }
    }
    if (this.queueHead === this.queue.length) {
      this.queue.length = 0;
      this.queueHead = 0;
    }
  }

  /**
   * The peer reset the stream after its FIN (see the session's RST handling): what it sent is
   * complete and stays readable; nothing more can go to it, so queued and later writes are
   * dropped, and the stream closes (without an error) once its reader has taken everything.
   */
  peerStopped(): void {
    this.writesDropped = true;
    this.queue.length = 0;
    this.queueHead = 0;
    this.queueOffset = 0;
    this.queuedBytes = 0;
    this.written();
    if (this.readableEnded) this.destroy();
    else this.once('end', () => this.destroy());
  }

  /** Everything written so far is framed: let the writer continue. */
  written(): void {
    const cb = this.writeCallback;
    this.writeCallback = undefined;
    cb?.();
  }

  // Duplex implementation ------------------------------------------------------------------

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: WriteCallback): void {
    if (this.writesDropped) return callback();
    this.enqueue(chunk);
    this.writeCallback = callback;
    this.host.wantSend(this);
  }

  override _writev(chunks: { chunk: Buffer }[], callback: WriteCallback): void {
    if (this.writesDropped) return callback();
    for (const c of chunks) this.enqueue(c.chunk);
    this.writeCallback = callback;
    this.host.wantSend(this);
  }

  override _final(callback: WriteCallback): void {
    if (this.writesDropped) return callback();
    this.host.sendFin(this);
    callback();
  }

  // Credit goes back as the consumer takes bytes out, so the check follows every read() —
  // flowing mode, pipe and async iteration all go through it. _read alone would not do:
  // Readable calls it before removing the bytes, and not again until the next push.
  override read(size?: number): Buffer | null {
    const chunk = super.read(size) as Buffer | null;
    if (chunk !== null) this.host.wantGrant(this);
    return chunk;
  }

  override _read(): void {}

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // An AbortError is a consumer giving up (e.g. leaving a for-await loop early): CANCEL.
    const code = this.resetWith ?? (error && error.name !== 'AbortError' ? WIRE_CODES.INTERNAL_ERROR : WIRE_CODES.CANCEL);
    this.host.destroyed(this, code);
    this.queue.length = 0;
    this.queuedBytes = 0;
    const cb = this.writeCallback;
    this.writeCallback = undefined;
    // Release a writer still waiting for credit; its write failed.
    if (cb) cb(error ?? streamDestroyedError());
    callback(error);
  }

  private enqueue(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.queue.push(chunk);
    this.queuedBytes += chunk.length;
  }
}

const EMPTY = Buffer.alloc(0);

function streamDestroyedError(): Error {
  return Object.assign(new Error('stream destroyed before its data was sent'), { code: 'ERR_STREAM_DESTROYED' });
}
