// The outgoing side of a session. Frames produced during one event-loop turn — control
// frames, WINDOW grants, DATA from every stream with bytes and credit — are gathered and
// written together at the next setImmediate: one write (one writev on TCP) instead of one
// per frame, which measured ~35% more CPU in issue 3's prototypes. setImmediate rather than
// queueMicrotask: it also gathers what every other socket's I/O callback of the same loop
// iteration produced, and bench/mux.ts measured ~10% less CPU per GiB with it, the same req/s.
//
// Backpressure: when socket.write returns false, DATA stops (the streams' write callbacks
// wait) until 'drain'; control frames still go out, since they are small and the peer's
// progress may depend on them. Reading is never affected.
import type { Duplex } from 'node:stream';
import { encodeWindow, FRAME_HEADER_SIZE, FrameType, MAX_WINDOW, writeHeader } from './frames.js';
import type { MuxStream } from './stream.js';

/**
 * DATA bytes framed per turn before yielding to I/O, so inbound frames are read between
 * batches. 64 KiB, 256 KiB and 1 MiB measured alike within noise (bench/mux.ts); 256 KiB
 * is four full frames, enough for every stream of a busy turn to get one.
 */
const BATCH_BYTES = 256 * 1024;
/** Parts smaller than this are copied into one buffer; larger payloads are written as they are. */
const COPY_LIMIT = 8 * 1024;
/**
 * PONGs queued while the socket is backed up before the peer counts as flooding us with
 * PINGs it never reads the answers to (memory would otherwise grow without bound).
 */
const MAX_PONGS_WHILE_BLOCKED = 1024;

export class Outbox {
  /** Largest DATA payload the peer accepts (from its SETTINGS). */
  maxFrame = 16 * 1024;
  private parts: Buffer[] = [];
  private bytes = 0;
  /** Streams with queued bytes and credit, served round-robin. */
  private readonly sendable = new Set<MuxStream>();
  /** Streams whose consumer freed enough of the window to return credit. */
  private readonly grants = new Set<MuxStream>();
  private scheduled = false;
  private blocked = false;
  private stopped = false;
  private pongsWhileBlocked = 0;
  private readonly flushNow = (): void => this.flush();

  constructor(
    private readonly socket: Duplex,
    private readonly flood: (message: string) => void,
    /** Extra credit for a stream whose window grows (session.growWindow), granted with the consumed bytes. */
    private readonly grow: (s: MuxStream, consumed: number) => number,
  ) {
    socket.on('drain', () => {
      this.blocked = false;
      this.pongsWhileBlocked = 0;
      if (this.sendable.size > 0) this.schedule();
    });
  }

  control(frame: Buffer): void {
    if (this.stopped) return;
    this.parts.push(frame);
    this.bytes += frame.length;
    this.schedule();
  }

  pong(frame: Buffer): void {
    if (this.blocked && ++this.pongsWhileBlocked > MAX_PONGS_WHILE_BLOCKED) {
      return this.flood(`PING flood: over ${MAX_PONGS_WHILE_BLOCKED} PINGs while not reading the answers`);
    }
    this.control(frame);
  }

  ready(s: MuxStream): void {
    if (this.stopped) return;
    this.sendable.add(s);
    this.schedule();
  }

  grant(s: MuxStream): void {
    if (this.stopped) return;
    this.grants.add(s);
    this.schedule();
  }

  ungrant(s: MuxStream): void {
    this.grants.delete(s);
  }

  forget(s: MuxStream): void {
    this.sendable.delete(s);
    this.grants.delete(s);
  }

  /** Writes the queued control frames now (no more DATA) and stops: the session is closing. */
  finish(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.bytes > 0 && this.socket.writable) this.socket.write(Buffer.concat(this.parts, this.bytes));
    this.drop();
  }

  /** Drops everything queued; nothing more is written. */
  stop(): void {
    this.stopped = true;
    this.drop();
  }

  private drop(): void {
    this.parts = [];
    this.bytes = 0;
    this.sendable.clear();
    this.grants.clear();
  }

  /**
   * Writes the turn's frames in one go. Small parts (headers, control frames, small
   * payloads) are copied together; large payloads go as they are, several in one corked
   * write — one writev on TCP, where copying them too measured ~20% more CPU per GiB.
   * (A TLS socket joins a writev's buffers itself before encrypting; the same code serves both.)
   */
  private write(parts: Buffer[]): boolean {
    const out: Buffer[] = [];
    let run: Buffer[] = [];
    let runBytes = 0;
    const endRun = (): void => {
      if (run.length === 1) out.push(run[0]!);
      else if (run.length > 1) out.push(Buffer.concat(run, runBytes));
      run = [];
      runBytes = 0;
    };
    for (const p of parts) {
      if (p.length >= COPY_LIMIT) {
        endRun();
        out.push(p);
      } else {
        run.push(p);
        runBytes += p.length;
      }
    }
    endRun();
    if (out.length === 1) return this.socket.write(out[0]!);
    this.socket.cork();
    let ok = true;
    for (const b of out) ok = this.socket.write(b);
    this.socket.uncork();
    return ok;
  }

  private schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(this.flushNow);
  }

  private flush(): void {
    this.scheduled = false;
    if (this.stopped || !this.socket.writable) return;
    const parts = this.parts;
    let bytes = this.bytes;
    this.parts = [];
    this.bytes = 0;
    for (const s of this.grants) {
      const consumed = Math.min(s.pushed - s.readableLength - s.granted, MAX_WINDOW);
      if (consumed <= 0 || s.finReceived) continue;
      // consumed + extra ≤ the window, far below MAX_WINDOW.
      const owed = consumed + this.grow(s, consumed);
      s.granted += consumed;
      s.credited += owed;
      s.recvAvail += owed;
      parts.push(encodeWindow(s.id, owed));
      bytes += FRAME_HEADER_SIZE + 4;
    }
    this.grants.clear();
    const framed: MuxStream[] = [];
    if (!this.blocked) {
      // Deleting and re-adding moves a stream to the end of the Set, which this loop then
      // visits again: round-robin, one frame per stream per pass, until the batch is full.
      for (const s of this.sendable) {
        this.sendable.delete(s);
        const n = Math.min(s.sendCredit, s.queuedBytes, this.maxFrame);
        if (n <= 0) continue;
        const header = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
        writeHeader(header, 0, FrameType.DATA, s.id, n);
        parts.push(header);
        s.takeQueued(parts, n);
        s.sendCredit -= n;
        bytes += FRAME_HEADER_SIZE + n;
        if (s.queuedBytes === 0) framed.push(s);
        else if (s.sendCredit > 0) this.sendable.add(s);
        if (bytes >= BATCH_BYTES) break;
      }
    }
    if (bytes > 0 && !this.write(parts)) this.blocked = true;
    // Writers continue only now; they may queue more at once (re-entering ready()).
    for (const s of framed) s.written();
    if (!this.blocked && this.sendable.size > 0) this.schedule();
  }
}
