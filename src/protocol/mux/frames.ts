// The mux's wire format: one table of frames, their encoders and an incremental decoder
// that never throws. Pure — no I/O; the session (session.ts) gives it meaning.
//
// Every frame is a 10-byte header then `length` payload bytes; all integers big-endian.
//
//   offset  size  field
//   0       1     type      (table below; any other value is a protocol error)
//   1       1     flags     (none defined in version 1: senders send 0, receivers ignore)
//   2       4     stream id (0 = the session itself)
//   6       4     length    (payload bytes; bounded per type, DATA ≤ the receiver's maxFrame)
//
//   type         id     payload (length)                                   meaning
//   0 SETTINGS   0      version u32 (=1) · initialWindow u32 · maxFrame u32   first frame each side sends,
//                       · maxStreams u32 · maxOpenMeta u32 (20; ≤ 256)       exactly once: its receive limits
//                       (initialWindow 1 KiB–2^31-1, maxFrame 1 KiB–16 MiB; later versions may append fields)
//   1 OPEN       new    metadata bytes (≤ receiver's maxOpenMeta)           opens a stream
//   2 DATA       s      bytes (≤ receiver's maxFrame; ≤ the stream's credit) stream bytes
//   3 WINDOW     s      increment u32 (> 0) (4)                             more send credit for s
//   4 FIN        s      — (0)                                               sender's direction ends
//   5 RST        s      code u32 (4)                                        abort s both ways
//   6 PING       0      opaque u64 (8)                                      answer with PONG
//   7 PONG       0      the PING's opaque u64 (8)                           answer to PING
//   8 GOAWAY     0      last stream id u32 · code u32 (8)                   no new streams, either way
//
// Stream ids: the side created with `isOpener: true` (the relay) opens odd ids, the other
// (the desk) even ids; ids a side opens strictly increase (gaps allowed). Each direction of
// a stream starts with the receiver's advertised initialWindow as credit; the receiver
// returns credit with WINDOW as its consumer reads. Version 1 defines no connection-level
// window: the session always reads, and memory is bounded by window × streams instead.
// Error codes in RST and GOAWAY: WIRE_CODES below (unknown codes are accepted as-is).
//
// A stream is closed once FIN went both ways, or after an RST either way. OPEN beyond the
// receiver's maxStreams, after a GOAWAY, or with nobody accepting streams is answered with
// RST REFUSED_STREAM. After GOAWAY neither side opens streams; those the receiver opened
// above lastId were not processed (safe to retry elsewhere); the connection is closed once
// the last stream is done. Frames for a stream already closed (they crossed an RST) are
// dropped. Protocol errors — answered with GOAWAY carrying the code, then the connection
// closes: anything before SETTINGS or a second SETTINGS; an unknown type; a length outside
// its type's bounds; OPEN with the receiver's parity or a non-increasing id; a frame for an
// id never opened; DATA after the sender's FIN or a second FIN; DATA beyond the stream's
// remaining credit, or WINDOW raising credit above 2^31-1 (both FLOW_CONTROL_ERROR).

export const FRAME_HEADER_SIZE = 10;
export const MUX_VERSION = 1;
/** SETTINGS payload size in version 1; a later version may append fields (up to the cap). */
export const SETTINGS_SIZE = 20;
export const SETTINGS_MAX_SIZE = 256;
/** Credit of one stream direction may never exceed this (as in HTTP/2, RFC 9113 §6.9.1). */
export const MAX_WINDOW = 0x7fff_ffff;
export const MAX_STREAM_ID = 0xffff_ffff;
/** Bounds on the limits either side may advertise (and configure): smaller would be absurdly slow. */
export const MIN_WINDOW = 1024;
export const MIN_FRAME = 1024;
export const MAX_FRAME = 16 * 1024 * 1024;

export const FrameType = {
  SETTINGS: 0,
  OPEN: 1,
  DATA: 2,
  WINDOW: 3,
  FIN: 4,
  RST: 5,
  PING: 6,
  PONG: 7,
  GOAWAY: 8,
} as const;
export type FrameTypeValue = (typeof FrameType)[keyof typeof FrameType];
const TYPE_NAMES = Object.keys(FrameType) as (keyof typeof FrameType)[];

/** Codes carried by RST and GOAWAY (numbering follows HTTP/2's where the meaning matches). */
export const WIRE_CODES = {
  NO_ERROR: 0,
  PROTOCOL_ERROR: 1,
  INTERNAL_ERROR: 2,
  FLOW_CONTROL_ERROR: 3,
  /** The stream was not processed; opening it again (elsewhere) is safe. */
  REFUSED_STREAM: 7,
  /** The stream is no longer wanted (a visitor went away). */
  CANCEL: 8,
} as const;

export function wireCodeName(code: number): string {
  for (const [name, value] of Object.entries(WIRE_CODES)) if (value === code) return name;
  return `code ${code}`;
}

export interface PeerSettings {
  version: number;
  initialWindow: number;
  maxFrame: number;
  maxStreams: number;
  maxOpenMeta: number;
}

/** Every frame except DATA, decoded; DATA arrives in pieces through the handler. */
export type ControlFrame =
  | { type: 'SETTINGS'; settings: PeerSettings }
  | { type: 'OPEN'; id: number; meta: Buffer }
  | { type: 'WINDOW'; id: number; increment: number }
  | { type: 'FIN'; id: number }
  | { type: 'RST'; id: number; code: number }
  | { type: 'PING'; opaque: Buffer }
  | { type: 'PONG'; opaque: Buffer }
  | { type: 'GOAWAY'; lastId: number; code: number };

export interface FrameHandler {
  frame(frame: ControlFrame): void;
  /** A DATA header: `length` bytes for stream `id` follow (possibly 0, possibly in several pieces). */
  dataHeader(id: number, length: number): void;
  /** Some of the current DATA frame's payload — a view into the received chunk, not a copy. */
  data(id: number, piece: Buffer): void;
}

export interface DecoderLimits {
  /** Largest DATA payload accepted. */
  maxFrame: number;
  /** Largest OPEN payload accepted. */
  maxOpenMeta: number;
}

// --- encoding ------------------------------------------------------------------------------

export function writeHeader(buf: Buffer, offset: number, type: FrameTypeValue, id: number, length: number): void {
  buf[offset] = type;
  buf[offset + 1] = 0;
  buf.writeUInt32BE(id, offset + 2);
  buf.writeUInt32BE(length, offset + 6);
}

/** One complete frame; `payload` is copied. */
export function encodeFrame(type: FrameTypeValue, id: number, payload?: Uint8Array): Buffer {
  const len = payload?.length ?? 0;
  const buf = Buffer.allocUnsafe(FRAME_HEADER_SIZE + len);
  writeHeader(buf, 0, type, id, len);
  if (payload) buf.set(payload, FRAME_HEADER_SIZE);
  return buf;
}

function u32Frame(type: FrameTypeValue, id: number, value: number): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER_SIZE + 4);
  writeHeader(buf, 0, type, id, 4);
  buf.writeUInt32BE(value, FRAME_HEADER_SIZE);
  return buf;
}

export function encodeSettings(s: Omit<PeerSettings, 'version'>): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER_SIZE + SETTINGS_SIZE);
  writeHeader(buf, 0, FrameType.SETTINGS, 0, SETTINGS_SIZE);
  let o = FRAME_HEADER_SIZE;
  for (const v of [MUX_VERSION, s.initialWindow, s.maxFrame, s.maxStreams, s.maxOpenMeta]) {
    buf.writeUInt32BE(v, o);
    o += 4;
  }
  return buf;
}

export const encodeOpen = (id: number, meta: Uint8Array): Buffer => encodeFrame(FrameType.OPEN, id, meta);
export const encodeWindow = (id: number, increment: number): Buffer => u32Frame(FrameType.WINDOW, id, increment);
export const encodeFin = (id: number): Buffer => encodeFrame(FrameType.FIN, id);
export const encodeRst = (id: number, code: number): Buffer => u32Frame(FrameType.RST, id, code);
export const encodePing = (opaque: Uint8Array): Buffer => encodeFrame(FrameType.PING, 0, opaque);
export const encodePong = (opaque: Uint8Array): Buffer => encodeFrame(FrameType.PONG, 0, opaque);

export function encodeGoAway(lastId: number, code: number): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER_SIZE + 8);
  writeHeader(buf, 0, FrameType.GOAWAY, 0, 8);
  buf.writeUInt32BE(lastId, FRAME_HEADER_SIZE);
  buf.writeUInt32BE(code, FRAME_HEADER_SIZE + 4);
  return buf;
}

// --- decoding ------------------------------------------------------------------------------

/** Why the peer's bytes are not a valid frame sequence; the session closes with it. */
export interface DecodeError {
  wireCode: number;
  message: string;
}

const State = { Header: 0, Payload: 1, Data: 2, Failed: 3 } as const;
type DecoderState = (typeof State)[keyof typeof State];

/**
 * Incremental decoder: feed it the socket's chunks in order. It validates each header
 * before buffering anything (type, stream id 0 or not, length bound for the type), so a
 * hostile peer can make it hold at most max(maxOpenMeta, SETTINGS_MAX_SIZE) bytes. DATA
 * payload is handed on in pieces as it arrives, never copied.
 */
export class FrameDecoder {
  private state: DecoderState = State.Header;
  private readonly header = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
  private headerFill = 0;
  private type: FrameTypeValue = 0;
  private id = 0;
  private remaining = 0;
  private payload: Buffer | undefined;
  private payloadFill = 0;

  constructor(
    private readonly limits: DecoderLimits,
    private readonly handler: FrameHandler,
  ) {}

  /** Stops decoding: later chunks are ignored (the session is closing). */
  stop(): void {
    this.state = State.Failed;
  }

  /** Decodes `chunk`; returns the first violation found (decoding then stops for good). */
  push(chunk: Buffer): DecodeError | undefined {
    let off = 0;
    const end = chunk.length;
    while (off < end) {
      switch (this.state) {
        case State.Failed:
          return undefined;
        case State.Header: {
          let hdr: Buffer;
          let at: number;
          if (this.headerFill === 0 && end - off >= FRAME_HEADER_SIZE) {
            hdr = chunk;
            at = off;
            off += FRAME_HEADER_SIZE;
          } else {
            const n = Math.min(FRAME_HEADER_SIZE - this.headerFill, end - off);
            chunk.copy(this.header, this.headerFill, off, off + n);
            this.headerFill += n;
            off += n;
            if (this.headerFill < FRAME_HEADER_SIZE) return undefined;
            this.headerFill = 0;
            hdr = this.header;
            at = 0;
          }
          const err = this.startFrame(hdr[at]!, hdr.readUInt32BE(at + 2), hdr.readUInt32BE(at + 6));
          if (err) return this.fail(err);
          break;
        }
        case State.Data: {
          const n = Math.min(this.remaining, end - off);
          this.remaining -= n;
          if (this.remaining === 0) this.state = State.Header;
          this.handler.data(this.id, chunk.subarray(off, off + n));
          off += n;
          break;
        }
        case State.Payload: {
          const n = Math.min(this.remaining, end - off);
          let payload: Buffer | undefined;
          if (this.payloadFill === 0 && n === this.remaining) {
            payload = chunk.subarray(off, off + n);
          } else {
            this.payload ??= Buffer.allocUnsafe(this.remaining);
            chunk.copy(this.payload, this.payloadFill, off, off + n);
            this.payloadFill += n;
            if (n === this.remaining) payload = this.payload;
          }
          off += n;
          this.remaining -= n;
          if (payload) {
            this.payload = undefined;
            this.payloadFill = 0;
            this.state = State.Header;
            const err = this.finishFrame(payload);
            if (err) return this.fail(err);
          }
          break;
        }
      }
    }
    return undefined;
  }

  private fail(err: DecodeError): DecodeError {
    this.state = State.Failed;
    return err;
  }

  private startFrame(type: number, id: number, length: number): DecodeError | undefined {
    if (type > FrameType.GOAWAY) return protocolError(`unknown frame type ${type}`);
    const t = type as FrameTypeValue;
    const name = TYPE_NAMES[t]!;
    const sessionFrame = t === FrameType.SETTINGS || t === FrameType.PING || t === FrameType.PONG || t === FrameType.GOAWAY;
    if (sessionFrame && id !== 0) return protocolError(`${name} on stream ${id}: expected stream 0`);
    if (!sessionFrame && id === 0) return protocolError(`${name} on stream 0`);
    const [min, max] = this.lengthBounds(t);
    if (length < min || length > max) {
      return protocolError(`${name} payload of ${length} bytes: expected ${min === max ? min : `${min}–${max}`}`);
    }
    this.type = t;
    this.id = id;
    this.remaining = length;
    if (t === FrameType.DATA) {
      this.state = length === 0 ? State.Header : State.Data;
      this.handler.dataHeader(id, length);
      return undefined;
    }
    if (length === 0) return this.finishFrame(Buffer.alloc(0));
    this.state = State.Payload;
    return undefined;
  }

  private lengthBounds(t: FrameTypeValue): [number, number] {
    switch (t) {
      case FrameType.SETTINGS:
        return [4, SETTINGS_MAX_SIZE];
      case FrameType.OPEN:
        return [0, this.limits.maxOpenMeta];
      case FrameType.DATA:
        return [0, this.limits.maxFrame];
      case FrameType.FIN:
        return [0, 0];
      case FrameType.WINDOW:
      case FrameType.RST:
        return [4, 4];
      default:
        return [8, 8]; // PING, PONG, GOAWAY
    }
  }

  private finishFrame(p: Buffer): DecodeError | undefined {
    const id = this.id;
    let frame: ControlFrame;
    switch (this.type) {
      case FrameType.SETTINGS: {
        const version = p.readUInt32BE(0);
        if (version !== MUX_VERSION) return protocolError(`peer speaks mux version ${version}; this side speaks ${MUX_VERSION}`);
        if (p.length < SETTINGS_SIZE) return protocolError(`SETTINGS payload of ${p.length} bytes: expected ${SETTINGS_SIZE}`);
        const settings: PeerSettings = {
          version,
          initialWindow: p.readUInt32BE(4),
          maxFrame: p.readUInt32BE(8),
          maxStreams: p.readUInt32BE(12),
          maxOpenMeta: p.readUInt32BE(16),
        };
        if (settings.initialWindow < MIN_WINDOW || settings.initialWindow > MAX_WINDOW) return protocolError(`SETTINGS initialWindow ${settings.initialWindow} out of range`);
        if (settings.maxFrame < MIN_FRAME || settings.maxFrame > MAX_FRAME) return protocolError(`SETTINGS maxFrame ${settings.maxFrame} out of range`);
        frame = { type: 'SETTINGS', settings };
        break;
      }
      case FrameType.OPEN:
        // Copied: the metadata outlives the chunk, and a view would pin the whole chunk.
        frame = { type: 'OPEN', id, meta: Buffer.from(p) };
        break;
      case FrameType.WINDOW: {
        const increment = p.readUInt32BE(0);
        if (increment === 0 || increment > MAX_WINDOW) return protocolError(`WINDOW increment ${increment} on stream ${id}`);
        frame = { type: 'WINDOW', id, increment };
        break;
      }
      case FrameType.FIN:
        frame = { type: 'FIN', id };
        break;
      case FrameType.RST:
        frame = { type: 'RST', id, code: p.readUInt32BE(0) };
        break;
      case FrameType.PING:
        frame = { type: 'PING', opaque: Buffer.from(p) };
        break;
      case FrameType.PONG:
        frame = { type: 'PONG', opaque: Buffer.from(p) };
        break;
      default:
        frame = { type: 'GOAWAY', lastId: p.readUInt32BE(0), code: p.readUInt32BE(4) };
    }
    this.handler.frame(frame);
    return undefined;
  }
}

export function protocolError(message: string, wireCode: number = WIRE_CODES.PROTOCOL_ERROR): DecodeError {
  return { wireCode, message };
}
