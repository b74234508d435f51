// A mux session: many MuxStreams over one Duplex (the relay↔desk TLS connection). Both
// ends run this same code. Two rules keep it free of the deadlock Node's HTTP/2 showed
// (issue 3): the socket is ALWAYS read — inbound bytes go to per-stream buffers bounded by
// the credit this side granted — and a stream's writer waits only for its own credit or
// for the socket's 'drain', never for the peer to read something else. Outgoing frames are
// gathered and written once per event-loop turn (outbox.ts). Wire format: frames.ts.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { PortholeError } from '../../errors.js';
import { type MuxCloseReason, muxError } from './errors.js';
import {
  type ControlFrame,
  encodeFin,
  encodeGoAway,
  encodeOpen,
  encodePong,
  encodeRst,
  encodeSettings,
  FrameDecoder,
  MAX_STREAM_ID,
  MAX_WINDOW,
  type PeerSettings,
  WIRE_CODES,
  wireCodeName,
} from './frames.js';
import { Liveness } from './liveness.js';
import { type MuxOptions, type ResolvedMuxOptions, resolveMuxOptions } from './options.js';
import { Outbox } from './outbox.js';
import { MuxStream, type StreamHost } from './stream.js';

export interface MuxSession extends EventEmitter {
  /** Opens a stream toward the peer; `meta` travels in its OPEN frame. Throws INVALID_ARGUMENT if too large. */
  openStream(meta: Uint8Array): MuxStream;
  /** Resolves with the round-trip time in ms; rejects (TUNNEL_CLOSED) if the session ends first. */
  ping(): Promise<number>;
  /** Sends GOAWAY: no new streams either way; the session closes (code GOAWAY) once the last stream is done. */
  goAway(): void;
  /** Closes now: every open stream is destroyed (TUNNEL_CLOSED), the peer is told with a GOAWAY. */
  close(reason?: Partial<MuxCloseReason>): void;
  /** Streams currently open (in either direction, not yet closed both ways or reset). */
  readonly streamCount: number;
  /** The session's close reason once it is closing, else undefined. */
  readonly closeReason: MuxCloseReason | undefined;
  on(event: 'stream', listener: (stream: MuxStream, meta: Buffer) => void): this;
  on(event: 'close', listener: (reason: MuxCloseReason) => void): this;
  once(event: 'stream', listener: (stream: MuxStream, meta: Buffer) => void): this;
  once(event: 'close', listener: (reason: MuxCloseReason) => void): this;
}

/**
 * Runs the mux over `socket` (which the session then owns: it closes it when the session
 * ends). Sends this side's SETTINGS at once. Sets TCP_NODELAY when the socket supports it:
 * frames are already batched per turn, so Nagle would only add latency.
 */
export function createMuxSession(socket: Duplex, options: MuxOptions): MuxSession {
  const opts = resolveMuxOptions(options);
  if (socket === null || typeof socket !== 'object' || typeof socket.write !== 'function' || typeof socket.on !== 'function') {
    throw new PortholeError('INVALID_ARGUMENT', 'invalid mux socket: expected a Duplex stream');
  }
  return new Session(socket, opts);
}

/** After close, how long the socket may take to flush the final GOAWAY before it is destroyed. */
const CLOSE_LINGER_MS = 2_000;

class Session extends EventEmitter implements MuxSession, StreamHost {
  private readonly socket: Duplex;
  private readonly opts: ResolvedMuxOptions;
  private readonly decoder: FrameDecoder;
  private readonly outbox: Outbox;
  private readonly liveness: Liveness;
  private readonly streams = new Map<number, MuxStream>();
  private peer: PeerSettings | undefined;
  private nextId: number;
  /** Highest stream id the peer opened (0: none yet). */
  private lastPeerId = 0;
  private peerOpened = 0;
  private selfOpened = 0;
  private goAwaySent = false;
  private goAwayReceived: { lastId: number; code: number } | undefined;
  private closing: MuxCloseReason | undefined;
  private dataTarget: MuxStream | undefined;
  private readonly grantThreshold: number;
  /** Sum over open streams of (window − initialWindow): bounded by opts.windowBudget. */
  private grown = 0;

  constructor(socket: Duplex, opts: ResolvedMuxOptions) {
    super();
    this.socket = socket;
    this.opts = opts;
    this.nextId = opts.isOpener ? 1 : 2;
    // Credit goes back once a quarter of the window was consumed: a WINDOW frame per 64 KiB
    // by default, while at least 3/4 of the window stays usable in flight (half measured the same).
    this.grantThreshold = Math.max(1, opts.initialWindow >>> 2);
    this.decoder = new FrameDecoder(opts, {
      frame: (f) => this.onFrame(f),
      dataHeader: (id, length) => this.onDataHeader(id, length),
      data: (_id, piece) => {
        const s = this.dataTarget;
        if (s === undefined || s.destroyed) return;
        s.receive(piece);
        // Over half of the credit this side has issued has arrived and not been returned yet:
        // the data comes faster than credit goes back, the window is the limit (growWindow).
        if (s.credited - s.pushed < s.window >>> 1) s.starved = true;
      },
    });
    this.outbox = new Outbox(socket, (reason) => this.fail(reason), (s, consumed) => this.growWindow(s, consumed));
    this.liveness = new Liveness(opts, {
      sendPing: (frame) => this.outbox.control(frame),
      dead: (idleMs) => this.shutdown({ code: 'DEAD_LINK', message: `nothing received for ${Math.round(idleMs)} ms` }, false),
    });
    (socket as Partial<import('node:net').Socket>).setNoDelay?.(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.shutdown({ code: 'PEER_CLOSED', message: this.peerClosedMessage() }, false));
    socket.on('error', (err: Error) => this.shutdown({ code: 'SOCKET_ERROR', message: err.message, cause: err }, false));
    socket.on('close', () => {
      this.shutdown({ code: 'PEER_CLOSED', message: this.peerClosedMessage() }, false);
      this.outbox.stop();
      process.nextTick(() => this.emit('close', this.closing));
    });
    this.outbox.control(encodeSettings(opts));
  }

  get streamCount(): number {
    return this.streams.size;
  }

  get closeReason(): MuxCloseReason | undefined {
    return this.closing;
  }

  // Public API -----------------------------------------------------------------------------

  openStream(meta: Uint8Array): MuxStream {
    if (!(meta instanceof Uint8Array)) throw new PortholeError('INVALID_ARGUMENT', 'invalid stream metadata: expected a Uint8Array');
    const limit = Math.min(this.opts.maxOpenMeta, this.peer?.maxOpenMeta ?? Number.POSITIVE_INFINITY);
    if (meta.length > limit) throw new PortholeError('INVALID_ARGUMENT', `invalid stream metadata: ${meta.length} bytes exceeds the limit of ${limit}`);
    const copy = Buffer.from(meta);
    const refusal = this.openRefusal();
    if (refusal !== undefined) {
      const s = new MuxStream(this, 0, copy, this.opts.initialWindow, 0, this.opts.maxFrame);
      s.released = true;
      s.destroy(refusal);
      return s;
    }
    const id = this.nextId;
    this.nextId += 2;
    const s = new MuxStream(this, id, copy, this.opts.initialWindow, this.peer?.initialWindow ?? 0, this.opts.maxFrame);
    this.streams.set(id, s);
    this.selfOpened++;
    this.outbox.control(encodeOpen(id, copy));
    return s;
  }

  ping(): Promise<number> {
    if (this.closing) return Promise.reject(muxError('TUNNEL_CLOSED', `session closed: ${this.closing.message}`, this.closing));
    return this.liveness.ping();
  }

  goAway(): void {
    if (this.closing || this.goAwaySent) return;
    this.goAwaySent = true;
    this.outbox.control(encodeGoAway(this.lastPeerId, WIRE_CODES.NO_ERROR));
    this.maybeDrained();
  }

  close(reason: Partial<MuxCloseReason> = {}): void {
    this.shutdown({ code: reason.code ?? 'CLOSED', message: reason.message ?? 'closed by this side', cause: reason.cause }, true);
  }

  // StreamHost -----------------------------------------------------------------------------

  wantSend(s: MuxStream): void {
    if (s.queuedBytes === 0) return s.written();
    if (s.sendCredit > 0 && !s.released) this.outbox.ready(s);
  }

  sendFin(s: MuxStream): void {
    if (s.released || s.finSent) return;
    s.finSent = true;
    this.outbox.control(encodeFin(s.id));
    if (s.finReceived) this.release(s);
  }

  wantGrant(s: MuxStream): void {
    if (s.released || s.finReceived) return;
    if (s.pushed - s.readableLength - s.granted >= this.grantThreshold) this.outbox.grant(s);
  }

  destroyed(s: MuxStream, rstCode: number): void {
    if (s.released) return;
    if (!(s.finSent && s.finReceived)) {
      s.rstCode = rstCode;
      this.outbox.control(encodeRst(s.id, rstCode));
    }
    this.release(s);
  }

  // Inbound --------------------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    this.liveness.received();
    const err = this.decoder.push(chunk);
    if (err) this.fail(err.message, err.wireCode);
  }

  private onFrame(f: ControlFrame): void {
    if (this.peer === undefined && f.type !== 'SETTINGS') return this.fail(`${f.type} before SETTINGS`);
    switch (f.type) {
      case 'SETTINGS':
        if (this.peer) return this.fail('second SETTINGS');
        this.peer = f.settings;
        this.outbox.maxFrame = f.settings.maxFrame;
        // Streams opened before the peer's limits were known get their credit now.
        for (const s of this.streams.values()) {
          s.sendCredit = f.settings.initialWindow;
          this.wantSend(s);
        }
        return;
      case 'OPEN':
        return this.onOpen(f.id, f.meta);
      case 'WINDOW': {
        const s = this.lookup(f.id);
        if (s === undefined) return;
        s.sendCredit += f.increment;
        if (s.sendCredit > MAX_WINDOW) return this.fail(`WINDOW overflows the credit of stream ${f.id}`, WIRE_CODES.FLOW_CONTROL_ERROR);
        if (s.queuedBytes > 0) this.outbox.ready(s);
        return;
      }
      case 'FIN': {
        const s = this.lookup(f.id);
        if (s === undefined) return;
        if (s.finReceived) return this.fail(`second FIN on stream ${f.id}`);
        s.finReceived = true;
        this.outbox.ungrant(s);
        s.push(null);
        if (s.finSent) this.release(s);
        return;
      }
      case 'RST': {
        const s = this.lookup(f.id);
        if (s === undefined) return;
        s.rstCode = f.code;
        this.release(s);
        // After its FIN the peer's data is complete: a reset then only says it reads no more
        // (a desk closing a finished response resets rather than wait for the visitor's FIN).
        // Deliver what arrived instead of discarding it — with grown windows that can be MiBs.
        if (s.finReceived) return s.peerStopped();
        const refused = f.code === WIRE_CODES.REFUSED_STREAM;
        s.destroy(muxError(refused ? 'TUNNEL_STREAM_REFUSED' : 'TUNNEL_STREAM_RESET', `stream ${f.id} ${refused ? 'refused' : 'reset'} by the peer (${wireCodeName(f.code)})`));
        return;
      }
      case 'PING':
        this.outbox.pong(encodePong(f.opaque));
        return;
      case 'PONG':
        this.liveness.pong(f.opaque);
        return;
      case 'GOAWAY':
        return this.onGoAway(f.lastId, f.code);
    }
  }

  private onOpen(id: number, meta: Buffer): void {
    if ((id % 2 === 1) === this.opts.isOpener) return this.fail(`OPEN of stream ${id}: that id parity belongs to this side`);
    if (id <= this.lastPeerId) return this.fail(`OPEN of stream ${id}: ids must increase (last was ${this.lastPeerId})`);
    this.lastPeerId = id;
    if (this.goAwaySent || this.goAwayReceived || this.peerOpened >= this.opts.maxStreams || this.listenerCount('stream') === 0) {
      this.outbox.control(encodeRst(id, WIRE_CODES.REFUSED_STREAM));
      return;
    }
    const s = new MuxStream(this, id, meta, this.opts.initialWindow, this.peer!.initialWindow, this.opts.maxFrame);
    this.streams.set(id, s);
    this.peerOpened++;
    this.emit('stream', s, meta);
  }

  private onDataHeader(id: number, length: number): void {
    this.dataTarget = undefined;
    if (this.peer === undefined) return this.fail('DATA before SETTINGS');
    const s = this.lookup(id);
    if (s === undefined) return; // closed already (or a violation, reported by lookup): payload dropped
    if (s.finReceived) return this.fail(`DATA on stream ${id} after its FIN`);
    if (length > s.recvAvail) {
      return this.fail(`DATA of ${length} bytes on stream ${id} exceeds its window (${s.recvAvail} bytes left)`, WIRE_CODES.FLOW_CONTROL_ERROR);
    }
    s.recvAvail -= length;
    this.dataTarget = s;
  }

  private onGoAway(lastId: number, code: number): void {
    if (this.goAwayReceived) return;
    this.goAwayReceived = { lastId, code };
    // Streams this side opened above lastId were never processed: safe to retry elsewhere.
    for (const s of [...this.streams.values()]) {
      if (s.id > lastId && (s.id % 2 === 1) === this.opts.isOpener) {
        s.rstCode = WIRE_CODES.REFUSED_STREAM;
        this.release(s);
        s.destroy(muxError('TUNNEL_STREAM_REFUSED', `stream ${s.id} refused: the peer is going away`));
      }
    }
    this.maybeDrained();
  }

  /** The open stream `id`, or undefined for a closed one; a never-opened id fails the session. */
  private lookup(id: number): MuxStream | undefined {
    const s = this.streams.get(id);
    if (s !== undefined) return s;
    const ours = (id % 2 === 1) === this.opts.isOpener;
    if (ours ? id >= this.nextId : id > this.lastPeerId) this.fail(`frame for stream ${id}, which was never opened`);
    return undefined;
  }

  // Lifecycle ------------------------------------------------------------------------------

  private openRefusal(): PortholeError | undefined {
    if (this.closing) return muxError('TUNNEL_CLOSED', `session closed: ${this.closing.message}`, this.closing);
    if (this.goAwaySent || this.goAwayReceived) return muxError('TUNNEL_STREAM_REFUSED', 'session is going away: no new streams');
    if (this.nextId > MAX_STREAM_ID) return muxError('TUNNEL_STREAM_REFUSED', 'stream ids exhausted: open a new session');
    if (this.peer && this.selfOpened >= this.peer.maxStreams) return muxError('TUNNEL_STREAM_REFUSED', `the peer allows at most ${this.peer.maxStreams} streams`);
    return undefined;
  }

  /**
   * Called as `consumed` bytes of credit go back: the extra bytes to grant on top. A stream
   * doubles its window — up to maxWindow, within the session's budget — when, since its last
   * growth, it has consumed a whole window, its reader kept up (at most a quarter of the
   * window unread), and `starved` was seen: more than half of the credit issued had arrived
   * before this side could return it, i.e. the data came faster than the credit's round trip
   * — the window, not the path, held the peer back. A path slower than the window (a home
   * uplink) delivers small pieces that are returned as they come, so the window stays small
   * and a download does not queue MiBs in front of the link's other streams; a fast path
   * (relay and desk on one machine, a LAN) grows within the first few MiB.
   */
  private growWindow(s: MuxStream, consumed: number): number {
    const total = s.granted + consumed;
    if (!s.starved || total - s.grownAt < s.window || s.window >= this.opts.maxWindow) return 0;
    s.starved = false;
    s.grownAt = total;
    if (s.readableLength > s.window >>> 2) return 0;
    const extra = Math.min(s.window, this.opts.maxWindow - s.window, this.opts.windowBudget - this.grown);
    if (extra <= 0) return 0;
    s.window += extra;
    this.grown += extra;
    return extra;
  }

  /** Removes a stream from the table: closed both ways, reset, or refused. */
  private release(s: MuxStream): void {
    if (s.released) return;
    s.released = true;
    this.grown -= s.window - this.opts.initialWindow;
    this.streams.delete(s.id);
    if ((s.id % 2 === 1) === this.opts.isOpener) this.selfOpened--;
    else this.peerOpened--;
    this.outbox.forget(s);
    if (this.dataTarget === s) this.dataTarget = undefined;
    this.maybeDrained();
  }

  private maybeDrained(): void {
    if (this.streams.size > 0 || this.closing) return;
    if (this.goAwaySent || this.goAwayReceived) {
      const by = this.goAwaySent ? 'this side' : `the peer (${wireCodeName(this.goAwayReceived!.code)})`;
      this.shutdown({ code: 'GOAWAY', message: `went away (GOAWAY from ${by}); all streams finished` }, true);
    }
  }

  private peerClosedMessage(): string {
    const g = this.goAwayReceived;
    return g ? `peer closed the connection after GOAWAY (${wireCodeName(g.code)})` : 'peer closed the connection';
  }

  /** The peer broke the protocol: tell it why (GOAWAY with the code) and close. */
  private fail(message: string, wireCode: number = WIRE_CODES.PROTOCOL_ERROR): void {
    this.shutdown({ code: 'PROTOCOL_ERROR', message }, true, wireCode);
  }

  private shutdown(reason: MuxCloseReason, graceful: boolean, wireCode?: number): void {
    if (this.closing) return;
    this.closing = reason;
    this.decoder.stop();
    this.liveness.stop(muxError('TUNNEL_CLOSED', `session closed: ${reason.message}`, reason));
    const error = muxError('TUNNEL_CLOSED', `session closed: ${reason.message}`, reason);
    for (const s of this.streams.values()) {
      s.released = true;
      s.destroy(error);
    }
    this.streams.clear();
    const socket = this.socket;
    if (!graceful || socket.destroyed || !socket.writable) {
      this.outbox.stop();
      socket.destroy();
      return;
    }
    const code = wireCode ?? (reason.code === 'PROTOCOL_ERROR' ? WIRE_CODES.PROTOCOL_ERROR : WIRE_CODES.NO_ERROR);
    if (!this.goAwaySent || code !== WIRE_CODES.NO_ERROR) this.outbox.control(encodeGoAway(this.lastPeerId, code));
    this.goAwaySent = true;
    this.outbox.finish();
    socket.end();
    const linger = setTimeout(() => socket.destroy(), CLOSE_LINGER_MS);
    linger.unref();
    socket.once('close', () => clearTimeout(linger));
  }
}
