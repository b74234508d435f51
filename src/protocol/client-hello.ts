// TLS ClientHello reader for the relay (DESIGN §6): one TLS port serves desks and visitors, so
// the relay reads the SNI and ALPN of a connection's first flight before deciding where it goes,
// without terminating TLS. Pure and defensive: no I/O, never throws on input, never reads past
// the buffer, never looks at (or asks to buffer) more than `maxBytes`.
import { PortholeError } from '../errors.js';

/** Largest TLSPlaintext fragment, 2^14 (RFC 8446 §5.1). */
export const MAX_RECORD_LENGTH = 16_384;
/** Default `maxBytes`: one full record with its header; mainstream hellos (even with a
 * post-quantum key share, ~1.8 KB) fit with room to spare. */
export const DEFAULT_MAX_CLIENT_HELLO_BYTES = MAX_RECORD_LENGTH + 5;

/** Alert descriptions the relay may send (RFC 8446 §6, RFC 7301 §3.2). */
export const TLS_ALERT = {
  closeNotify: 0,
  handshakeFailure: 40,
  decodeError: 50,
  protocolVersion: 70,
  internalError: 80,
  userCanceled: 90,
  unrecognizedName: 112,
  noApplicationProtocol: 120,
} as const;

export interface ClientHelloInfo {
  /** server_name (RFC 6066 §3) host_name, lowercased (SNI is case-insensitive), undefined if absent. */
  serverName: string | undefined;
  /** ALPN protocol names (RFC 7301), in order; bytes decoded as latin1 so distinct names stay distinct. */
  alpn: string[];
  /** legacy_version is 0x0303 and supported_versions offers TLS 1.3 (0x0304), RFC 8446 §4.2.1. */
  tls13: boolean;
  /** ClientHello.legacy_version, 0x0301..0x0303. */
  legacyVersion: number;
  /** Bytes the ClientHello occupied (all records that carried it). */
  length: number;
}

/** Why a connection's first bytes were refused: stable strings, safe to match on and to log. */
export type ClientHelloInvalidReason =
  | 'not TLS' // e.g. plain HTTP or SSH on the TLS port
  | 'SSLv2 record'
  | 'not a handshake record' // a TLS record, but not type 22
  | 'interleaved record' // another record type before the ClientHello ended (RFC 8446 §5.1)
  | 'bad record version'
  | 'bad record length' // zero (RFC 8446 §5.1 forbids empty handshake fragments) or > 2^14
  | 'not a ClientHello'
  | 'bad handshake length' // too short to hold a ClientHello
  | 'trailing data' // a record carries bytes past the ClientHello
  | 'too large' // the ClientHello cannot fit in maxBytes
  | 'bad legacy_version'
  | 'bad legacy_session_id'
  | 'bad cipher_suites'
  | 'bad legacy_compression_methods'
  | 'bad extensions'
  | 'duplicate extension'
  | 'bad server_name'
  | 'bad server_name type'
  | 'bad host_name'
  | 'bad ALPN'
  | 'bad supported_versions';

export type ClientHelloResult =
  | { status: 'ok'; hello: ClientHelloInfo }
  /** More bytes could still complete a valid ClientHello; `needed` is a lower bound on how many. */
  | { status: 'incomplete'; needed?: number }
  | { status: 'invalid'; reason: ClientHelloInvalidReason };

type Reason = ClientHelloInvalidReason;
const HANDSHAKE = 22;
const CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;
const EXT_SUPPORTED_VERSIONS = 43;
/** Smallest ClientHello body: version 2, random 32, session id 1, one suite 2+2, one method 1+1. */
const MIN_BODY = 41;
/** Smallest Handshake holding a ClientHello: its 4-byte header and the smallest body. */
const MIN_HANDSHAKE = 4 + MIN_BODY;
/** Smallest maxBytes that can ever admit a ClientHello: a record header and the smallest Handshake. */
const MIN_MAX_BYTES = 5 + MIN_HANDSHAKE;
const DOT = 0x2e;

/** Unwinds the parser to parseClientHello with its answer; never escapes this module. */
class Halt {
  constructor(readonly result: ClientHelloResult) {}
}
const invalid = (reason: Reason): Halt => new Halt({ status: 'invalid', reason });

/**
 * A cursor over the handshake bytes received so far (`data`, which may stop short of the
 * message's declared end). Every read checks its length against its container first — a miss
 * is `invalid`, since no later byte can fix it — and only then against what has arrived — a
 * miss is `short` (incomplete).
 */
class Cursor {
  pos = 4; // past the Handshake header
  constructor(
    readonly data: Uint8Array,
    private readonly short: Halt,
  ) {}
  /** Requires room for `n` more bytes in the container ending at `end`, without reading them. */
  room(n: number, end: number, reason: Reason): void {
    if (this.pos + n > end) throw invalid(reason);
  }
  /** Steps over `n` bytes inside `end`, returning where they start. */
  take(n: number, end: number, reason: Reason): number {
    this.room(n, end, reason);
    if (this.pos + n > this.data.length) throw this.short;
    const at = this.pos;
    this.pos += n;
    return at;
  }
  /** Steps to `to`, already checked against its container. */
  skipTo(to: number): void {
    if (to > this.data.length) throw this.short;
    this.pos = to;
  }
  u8(end: number, reason: Reason): number {
    return this.data[this.take(1, end, reason)]!;
  }
  u16(end: number, reason: Reason): number {
    const at = this.take(2, end, reason);
    return (this.data[at]! << 8) | this.data[at + 1]!;
  }
  /**
   * Reads a vector's length prefix of `width` bytes (RFC 8446 §3.4) and returns where the
   * vector ends. Its length must lie in [min, max] and leave `after` bytes inside `end` for the
   * fields that must follow it.
   */
  vector(width: 1 | 2, min: number, max: number, end: number, reason: Reason, after = 0): number {
    const len = width === 1 ? this.u8(end, reason) : this.u16(end, reason);
    if (len < min || len > max || this.pos + len + after > end) throw invalid(reason);
    return this.pos + len;
  }
  latin1(at: number, end: number): string {
    return Buffer.from(this.data.buffer, this.data.byteOffset + at, end - at).toString('latin1');
  }
}

/*
 * What is parsed, and what each length is checked against:
 *
 *   TLSPlaintext (RFC 8446 §5.1), repeated until the Handshake is complete:
 *     type u8 = 22 handshake; legacy_record_version u16 = 0x0301..0x0303;
 *     length u16 = 1..2^14; fragment[length]
 *   The fragments of consecutive handshake records concatenate into one Handshake (a message
 *   MAY span records; no other record type may come between them). The ClientHello must end
 *   where its last record ends: a client sends nothing else before the server answers, and
 *   TLS 1.3 early data follows a key change, before which messages must end with their record
 *   (RFC 8446 §5.1).
 *
 *   Handshake (RFC 8446 §4): msg_type u8 = 1 client_hello; length u24 (≥ 41)
 *   ClientHello (RFC 8446 §4.1.2):
 *     legacy_version u16 = 0x0301..0x0303; random[32];
 *     legacy_session_id<0..32>; cipher_suites<2..2^16-2> (even);
 *     legacy_compression_methods<1..2^8-1>;
 *     extensions<0..2^16-1>, filling the rest of the message exactly. RFC 8446 says <8..>, which
 *     holds for TLS 1.3 hellos (supported_versions is mandatory there); a TLS 1.2 hello may
 *     carry fewer bytes (RFC 5246 §7.4.1.2), and a very old one none at all (then no SNI).
 *     No extension type twice (RFC 8446 §4.2). Each is type u16, extension_data<0..2^16-1>:
 *   server_name (0, RFC 6066 §3): ServerName server_name_list<1..2^16-1>, holding exactly one
 *     ServerName (host_name is the only type defined, and no type may appear twice):
 *     name_type u8 = 0 host_name, HostName<1..2^16-1> — ASCII letters, digits, hyphens and
 *     dots; labels of 1..63; ≤ 253 once one trailing dot is dropped.
 *   application_layer_protocol_negotiation (16, RFC 7301 §3.1):
 *     ProtocolName protocol_name_list<2..2^16-1>; ProtocolName = opaque<1..2^8-1>
 *   supported_versions (43, RFC 8446 §4.2.1): ProtocolVersion versions<2..254>
 *   Each vector fills its extension_data exactly.
 */

/** Parses the start of a connection. `maxBytes` bounds how much we will ever buffer (default 16 KiB + 5). */
export function parseClientHello(buf: Uint8Array, maxBytes = DEFAULT_MAX_CLIENT_HELLO_BYTES): ClientHelloResult {
  checkMaxBytes(maxBytes);
  try {
    const result = parseRecords(buf.length > maxBytes ? buf.subarray(0, maxBytes) : buf, maxBytes);
    // Unreachable by construction (an incomplete hello always needs a byte past the view), kept
    // so that the promise "never incomplete at maxBytes" does not rest on that reasoning alone.
    if (result.status === 'incomplete' && buf.length >= maxBytes) return { status: 'invalid', reason: 'too large' };
    return result;
  } catch (err) {
    if (err instanceof Halt) return err.result;
    throw err;
  }
}

function checkMaxBytes(maxBytes: number): void {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < MIN_MAX_BYTES) {
    throw new PortholeError('INVALID_ARGUMENT', `invalid maxBytes ${String(maxBytes)}: an integer ≥ ${MIN_MAX_BYTES}`);
  }
}

/** The least number of bytes a connection needs for `rest` more handshake bytes from `at`. */
function bytesFor(at: number, rest: number): number {
  return at + rest + 5 * Math.ceil(rest / MAX_RECORD_LENGTH);
}

function parseRecords(buf: Uint8Array, maxBytes: number): ClientHelloResult {
  const fragments: Uint8Array[] = [];
  let got = 0; // handshake bytes received
  let total = -1; // handshake bytes the message needs, once its header has arrived
  let off = 0; // where the next record starts
  let waiting: ClientHelloResult | undefined; // set when the bytes stop before the hello ends
  while (total === -1 || got < total) {
    const avail = buf.length - off;
    if (avail > 0) checkRecordType(buf[off]!, off);
    if (avail > 1 && buf[off + 1] !== 3) throw invalid('bad record version');
    if (avail > 2 && (buf[off + 2]! < 1 || buf[off + 2]! > 3)) throw invalid('bad record version');
    if (avail < 5) {
      waiting = incomplete(buf, bytesFor(off, (total === -1 ? MIN_HANDSHAKE : total) - got), maxBytes);
      break;
    }
    const len = (buf[off + 3]! << 8) | buf[off + 4]!;
    if (len === 0 || len > MAX_RECORD_LENGTH) throw invalid('bad record length');
    const end = off + 5 + len;
    const stop = Math.min(end, buf.length);
    const before = got;
    fragments.push(buf.subarray(off + 5, stop));
    got += stop - (off + 5);
    if (total === -1 && got > 0) {
      if (handshakeByte(fragments, 0) !== CLIENT_HELLO) throw invalid('not a ClientHello');
      if (got >= 4) {
        const body = (handshakeByte(fragments, 1) << 16) | (handshakeByte(fragments, 2) << 8) | handshakeByte(fragments, 3);
        if (body < MIN_BODY) throw invalid('bad handshake length');
        total = 4 + body;
      }
    }
    if (total !== -1 && before + len > total) throw invalid('trailing data');
    if (end > buf.length) {
      const rest = Math.max(0, (total === -1 ? MIN_HANDSHAKE : total) - (before + len));
      waiting = incomplete(buf, bytesFor(end, rest), maxBytes);
      break;
    }
    off = end;
  }
  if (waiting?.status === 'invalid' || total === -1) return waiting!;
  // Parse what has arrived even when more is to come, so that a doomed prefix is refused now.
  const hello = parseBody(concat(fragments, got), total, new Halt(waiting ?? { status: 'incomplete' }));
  return waiting ?? { status: 'ok', hello: { ...hello, length: off } };
}

function checkRecordType(type: number, off: number): void {
  if (type === HANDSHAKE) return;
  if (off > 0) throw invalid('interleaved record');
  // An SSLv2-compatible hello starts with a 2-byte length whose top bit is set (RFC 5246 §E.2).
  if (type & 0x80) throw invalid('SSLv2 record');
  throw invalid(type >= 20 && type <= 24 ? 'not a handshake record' : 'not TLS');
}

/** Waiting for more — unless the least the connection still needs cannot fit in maxBytes. */
function incomplete(buf: Uint8Array, least: number, maxBytes: number): ClientHelloResult {
  if (least > maxBytes) return { status: 'invalid', reason: 'too large' };
  return { status: 'incomplete', needed: Math.max(1, least - buf.length) };
}

function handshakeByte(fragments: Uint8Array[], i: number): number {
  for (const f of fragments) {
    if (i < f.length) return f[i]!;
    i -= f.length;
  }
  return 0; // callers ask only for bytes that have arrived
}

function concat(fragments: Uint8Array[], length: number): Uint8Array {
  return fragments.length === 1 ? fragments[0]! : Buffer.concat(fragments, length);
}

/** Parses the Handshake in `data` (possibly partial) whose declared size is `end`. */
function parseBody(data: Uint8Array, end: number, short: Halt): Omit<ClientHelloInfo, 'length'> {
  const c = new Cursor(data, short);
  const legacyVersion = c.u16(end, 'bad legacy_version');
  if (legacyVersion < 0x0301 || legacyVersion > 0x0303) throw invalid('bad legacy_version');
  c.take(32, end, 'bad legacy_version'); // random: room guaranteed by the minimum body size
  c.skipTo(c.vector(1, 0, 32, end, 'bad legacy_session_id', 2 + 2 + 1 + 1));
  const suites = c.vector(2, 2, 0xfffe, end, 'bad cipher_suites', 1 + 1);
  if ((suites - c.pos) % 2 !== 0) throw invalid('bad cipher_suites');
  c.skipTo(suites);
  c.skipTo(c.vector(1, 1, 0xff, end, 'bad legacy_compression_methods'));
  const info: Omit<ClientHelloInfo, 'length'> = { serverName: undefined, alpn: [], tls13: false, legacyVersion };
  if (c.pos === end) return info; // no extensions at all (RFC 5246 §7.4.1.2)
  const extEnd = c.vector(2, 0, 0xffff, end, 'bad extensions');
  if (extEnd !== end) throw invalid('bad extensions');
  const seen = new Set<number>();
  let offers13 = false;
  while (c.pos < extEnd) {
    c.room(4, extEnd, 'bad extensions');
    const type = c.u16(extEnd, 'bad extensions');
    if (seen.has(type)) throw invalid('duplicate extension');
    seen.add(type);
    const dataEnd = c.vector(2, 0, 0xffff, extEnd, 'bad extensions');
    if (type === EXT_SERVER_NAME) info.serverName = readServerName(c, dataEnd);
    else if (type === EXT_ALPN) info.alpn = readAlpn(c, dataEnd);
    else if (type === EXT_SUPPORTED_VERSIONS) offers13 = readSupportedVersions(c, dataEnd);
    else c.skipTo(dataEnd);
  }
  info.tls13 = offers13 && legacyVersion === 0x0303;
  return info;
}

function readServerName(c: Cursor, dataEnd: number): string {
  const listEnd = c.vector(2, 1, 0xffff, dataEnd, 'bad server_name');
  if (listEnd !== dataEnd) throw invalid('bad server_name');
  c.room(3, listEnd, 'bad server_name');
  if (c.u8(listEnd, 'bad server_name') !== 0) throw invalid('bad server_name type');
  // One entry only: host_name is the only type defined, and a list MUST NOT name it twice.
  const nameEnd = c.vector(2, 1, 254, listEnd, 'bad host_name');
  if (nameEnd !== listEnd) throw invalid('bad server_name');
  // Check the bytes that have arrived before waiting for the rest.
  const start = c.pos;
  const stop = Math.min(nameEnd, c.data.length);
  let label = 0;
  for (let i = start; i < stop; i++) {
    const b = c.data[i]!;
    if (b === DOT) {
      if (label === 0) throw invalid('bad host_name'); // leading dot or empty label
      label = 0;
    } else if (isLetterDigitHyphen(b)) {
      if (++label > 63) throw invalid('bad host_name');
    } else {
      throw invalid('bad host_name');
    }
  }
  c.skipTo(nameEnd);
  const length = label === 0 ? nameEnd - start - 1 : nameEnd - start; // drop one trailing dot
  if (length > 253) throw invalid('bad host_name');
  return c.latin1(start, start + length).toLowerCase();
}

function isLetterDigitHyphen(b: number): boolean {
  return (b >= 0x61 && b <= 0x7a) || (b >= 0x41 && b <= 0x5a) || (b >= 0x30 && b <= 0x39) || b === 0x2d;
}

function readAlpn(c: Cursor, dataEnd: number): string[] {
  const listEnd = c.vector(2, 2, 0xffff, dataEnd, 'bad ALPN');
  if (listEnd !== dataEnd) throw invalid('bad ALPN');
  const names: string[] = [];
  while (c.pos < listEnd) {
    const nameEnd = c.vector(1, 1, 0xff, listEnd, 'bad ALPN');
    const at = c.pos;
    c.skipTo(nameEnd);
    names.push(c.latin1(at, nameEnd));
  }
  return names;
}

function readSupportedVersions(c: Cursor, dataEnd: number): boolean {
  const listEnd = c.vector(1, 2, 254, dataEnd, 'bad supported_versions');
  if (listEnd !== dataEnd || (listEnd - c.pos) % 2 !== 0) throw invalid('bad supported_versions');
  let tls13 = false;
  while (c.pos < listEnd) if (c.u16(listEnd, 'bad supported_versions') === 0x0304) tls13 = true;
  return tls13;
}

export interface ClientHelloReader {
  /**
   * Buffers a chunk and answers for everything so far. Once the answer is final ('ok' or
   * 'invalid') it sticks: later chunks are neither buffered nor parsed, so stop reading then.
   * Never 'incomplete' once maxBytes are buffered. 'ok' comes with the chunk that completes the
   * hello; an 'invalid' verdict may come some bytes late (see RESCAN_STEP).
   */
  push(chunk: Uint8Array): ClientHelloResult;
  /** The bytes pushed up to the final answer, to forward untouched (a view, valid until the next push). */
  readonly buffered: Buffer;
}

/**
 * The reader re-parses the whole buffer, so a peer dripping one byte per TCP segment would
 * make it quadratic (measured: 1.3 s of CPU for one 16 KB hello of 4 000 empty extensions). It
 * therefore parses again only once the parser's own `needed` has arrived (so 'ok' is never
 * late) or the buffer has grown by an eighth (at least RESCAN_STEP bytes): a few dozen parses
 * per connection at most, and a doomed prefix is refused within an eighth of its size.
 */
const RESCAN_STEP = 64;

/** For the relay: accumulate chunks until ok/invalid or maxBytes exceeded (then invalid 'too large'). */
export function createClientHelloReader(maxBytes = DEFAULT_MAX_CLIENT_HELLO_BYTES): ClientHelloReader {
  checkMaxBytes(maxBytes);
  let store = Buffer.alloc(0);
  let size = 0;
  let next = 0; // buffer size at which to parse again
  let target = 0; // buffer size the last parse said the hello needs at least
  let last: ClientHelloResult = { status: 'incomplete' };
  return {
    push(chunk) {
      if (last.status !== 'incomplete') return last;
      if (size + chunk.length > store.length) {
        // Grow by doubling, to at most maxBytes — or one chunk past it, when that chunk settles it.
        const grown = Buffer.allocUnsafe(Math.max(size + chunk.length, Math.min(maxBytes, store.length * 2 || 1024)));
        store.copy(grown, 0, 0, size);
        store = grown;
      }
      store.set(chunk, size);
      size += chunk.length;
      if (size < next && size < maxBytes) return { status: 'incomplete', needed: target - size };
      last = parseClientHello(store.subarray(0, size), maxBytes);
      if (last.status === 'incomplete') {
        target = size + (last.needed ?? 1);
        next = Math.min(target, size + Math.max(RESCAN_STEP, size >> 3));
      }
      return last;
    },
    get buffered() {
      return store.subarray(0, size);
    },
  };
}

/**
 * Builds a TLS alert record (RFC 8446 §6), e.g. unrecognized_name (112) to refuse an unknown
 * SNI in passthrough mode. Sent before any keys exist, so in the clear. TLS 1.3 implies the
 * level by the description (§6): error alerts go as fatal (§6.2), the closure alerts
 * close_notify and user_canceled (§6.1) as warning, as TLS 1.2 peers expect.
 */
export function tlsAlert(description: number): Buffer {
  if (!Number.isInteger(description) || description < 0 || description > 255) {
    throw new PortholeError('INVALID_ARGUMENT', `invalid alert description ${String(description)}: an integer 0..255`);
  }
  const closure = description === TLS_ALERT.closeNotify || description === TLS_ALERT.userCanceled;
  return Buffer.from([21, 3, 3, 0, 2, closure ? 1 : 2, description]);
}
