// Minimal DER (ITU-T X.690 §10, distinguished encoding) for building X.509 certificates, plus
// a reader just large enough to pull fields back out of one. Pure functions over Buffers.
// Only single-octet identifiers (tag numbers 0–30) are supported: X.509 needs no more.
import { PortholeError } from '../errors.js';

/** Universal tags used here (X.680 §8.6). */
export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OBJECT_IDENTIFIER: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

const CONSTRUCTED = 0x20;
const CONTEXT = 0x80;

function invalid(message: string): PortholeError {
  return new PortholeError('INVALID_ARGUMENT', message);
}

/** X.690 §10.1: definite form only; short form below 128, else 0x80|n then n big-endian octets. */
export function encodeLength(length: number): Buffer {
  if (!Number.isSafeInteger(length) || length < 0) throw invalid(`invalid DER length ${length}`);
  if (length < 0x80) return Buffer.from([length]);
  const octets: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) octets.unshift(n % 256);
  return Buffer.from([0x80 | octets.length, ...octets]);
}

/** One TLV: identifier octet, length, contents. */
export function tlv(tag: number, content: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([tag]), encodeLength(content.length), content]);
}

export function sequence(...items: Uint8Array[]): Buffer {
  return tlv(TAG.SEQUENCE, Buffer.concat(items));
}

/** SET OF: X.690 §11.6 puts the encodings in ascending order (shorter ones padded with 0s). */
export function setOf(...items: Uint8Array[]): Buffer {
  const sorted = items.map((item) => Buffer.from(item)).sort(compareSetOf);
  return tlv(TAG.SET, Buffer.concat(sorted));
}

function compareSetOf(a: Buffer, b: Buffer): number {
  const length = Math.max(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** X.690 §11.1: TRUE is 0xFF in DER. */
export function boolean(value: boolean): Buffer {
  return tlv(TAG.BOOLEAN, Buffer.from([value ? 0xff : 0x00]));
}

/**
 * INTEGER (X.690 §8.3): minimal two's complement. A Buffer is read as an unsigned big-endian
 * magnitude (a serial number), so a leading byte ≥ 0x80 gains a 0x00 prefix.
 */
export function integer(value: bigint | number | Uint8Array): Buffer {
  if (value instanceof Uint8Array) {
    let start = 0;
    while (start < value.length - 1 && value[start] === 0) start++;
    const magnitude = value.length === 0 ? Buffer.from([0]) : Buffer.from(value.subarray(start));
    const content = magnitude[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), magnitude]) : magnitude;
    return tlv(TAG.INTEGER, content);
  }
  if (typeof value === 'number' && !Number.isSafeInteger(value)) throw invalid(`invalid INTEGER ${value}`);
  let n = BigInt(value);
  const octets: number[] = [];
  // Emit low octets until the rest is pure sign extension of the top bit already written.
  for (;;) {
    const octet = Number(n & 0xffn);
    octets.unshift(octet);
    n >>= 8n;
    if ((n === 0n && (octet & 0x80) === 0) || (n === -1n && (octet & 0x80) !== 0)) break;
  }
  return tlv(TAG.INTEGER, Buffer.from(octets));
}

/** BIT STRING (X.690 §8.6): first content octet counts the unused bits of the last octet. */
export function bitString(bytes: Uint8Array, unusedBits = 0): Buffer {
  if (!Number.isInteger(unusedBits) || unusedBits < 0 || unusedBits > 7 || (bytes.length === 0 && unusedBits !== 0)) {
    throw invalid(`invalid BIT STRING unused bit count ${unusedBits}`);
  }
  return tlv(TAG.BIT_STRING, Buffer.concat([Buffer.from([unusedBits]), bytes]));
}

/**
 * A named-bit BIT STRING such as KeyUsage: bit 0 is the most significant bit of the first
 * octet, and DER drops trailing zero bits (X.690 §11.2.2).
 */
export function namedBits(bits: number[]): Buffer {
  if (bits.length === 0) return bitString(Buffer.alloc(0));
  for (const bit of bits) if (!Number.isInteger(bit) || bit < 0) throw invalid(`invalid named bit ${bit}`);
  const highest = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1);
  for (const bit of bits) bytes[bit >> 3]! |= 0x80 >> (bit & 7);
  return bitString(bytes, 7 - (highest & 7));
}

export function octetString(bytes: Uint8Array): Buffer {
  return tlv(TAG.OCTET_STRING, bytes);
}

export function nullValue(): Buffer {
  return Buffer.from([TAG.NULL, 0x00]);
}

const OID = /^[0-2](?:\.(?:0|[1-9]\d*))+$/;

/**
 * OBJECT IDENTIFIER (X.690 §8.19): the first two arcs combine as 40·X + Y, then each arc is
 * base-128, most significant group first, high bit set on all but the last octet.
 */
export function oid(dotted: string): Buffer {
  if (!OID.test(dotted)) throw invalid(`invalid OBJECT IDENTIFIER "${dotted}"`);
  const arcs = dotted.split('.').map((arc) => BigInt(arc));
  const [first, second] = [arcs[0]!, arcs[1]!];
  if (first < 2n && second >= 40n) throw invalid(`invalid OBJECT IDENTIFIER "${dotted}": second arc must be below 40`);
  const octets: number[] = [];
  for (const arc of [first * 40n + second, ...arcs.slice(2)]) {
    const groups = [Number(arc & 0x7fn)];
    for (let rest = arc >> 7n; rest > 0n; rest >>= 7n) groups.unshift(Number(rest & 0x7fn) | 0x80);
    octets.push(...groups);
  }
  return tlv(TAG.OBJECT_IDENTIFIER, Buffer.from(octets));
}

export function utf8String(text: string): Buffer {
  // In a /u regex a surrogate pair is one code point, so \p{Cs} matches only lone halves.
  if (/\p{Cs}/u.test(text)) throw invalid('invalid UTF8String: lone surrogate');
  return tlv(TAG.UTF8_STRING, Buffer.from(text, 'utf8'));
}

/** X.680 §41.4: letters, digits, space and '()+,-./:=? only. */
const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

export function printableString(text: string): Buffer {
  if (!PRINTABLE.test(text)) throw invalid(`invalid PrintableString "${text}"`);
  return tlv(TAG.PRINTABLE_STRING, Buffer.from(text, 'latin1'));
}

export function ia5String(text: string): Buffer {
  if (!/^[\x00-\x7f]*$/.test(text)) throw invalid('invalid IA5String: non-ASCII character');
  return tlv(TAG.IA5_STRING, Buffer.from(text, 'latin1'));
}

function twoDigits(n: number): string {
  return String(n).padStart(2, '0');
}

function timeParts(date: Date): { year: number; rest: string } {
  const ms = date.getTime();
  if (!Number.isFinite(ms)) throw invalid('invalid date');
  const year = date.getUTCFullYear();
  if (year < 0 || year > 9999) throw invalid(`date out of range: year ${year}`);
  const rest =
    twoDigits(date.getUTCMonth() + 1) +
    twoDigits(date.getUTCDate()) +
    twoDigits(date.getUTCHours()) +
    twoDigits(date.getUTCMinutes()) +
    twoDigits(date.getUTCSeconds());
  return { year, rest };
}

/** UTCTime YYMMDDHHMMSSZ (RFC 5280 §4.1.2.5.1: seconds present, Zulu; YY ≥ 50 means 19YY). */
export function utcTime(date: Date): Buffer {
  const { year, rest } = timeParts(date);
  if (year < 1950 || year > 2049) throw invalid(`UTCTime covers 1950–2049, not ${year}`);
  return tlv(TAG.UTC_TIME, Buffer.from(twoDigits(year % 100) + rest + 'Z', 'latin1'));
}

/** GeneralizedTime YYYYMMDDHHMMSSZ (RFC 5280 §4.1.2.5.2: no fractional seconds; they are dropped). */
export function generalizedTime(date: Date): Buffer {
  const { year, rest } = timeParts(date);
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(String(year).padStart(4, '0') + rest + 'Z', 'latin1'));
}

/** RFC 5280 §4.1.2.5: UTCTime for 1950 through 2049, GeneralizedTime otherwise. */
export function time(date: Date): Buffer {
  const year = date.getUTCFullYear();
  return year >= 1950 && year <= 2049 ? utcTime(date) : generalizedTime(date);
}

function checkTagNumber(tagNumber: number): void {
  if (!Number.isInteger(tagNumber) || tagNumber < 0 || tagNumber > 30) {
    throw invalid(`context tag [${tagNumber}] out of range 0–30`);
  }
}

/** [n] EXPLICIT: a constructed context-specific TLV wrapping the whole inner encoding. */
export function explicit(tagNumber: number, inner: Uint8Array): Buffer {
  checkTagNumber(tagNumber);
  return tlv(CONTEXT | CONSTRUCTED | tagNumber, inner);
}

/** [n] IMPLICIT: the inner encoding with its identifier replaced (its constructed bit kept). */
export function implicit(tagNumber: number, inner: Uint8Array): Buffer {
  checkTagNumber(tagNumber);
  const first = inner[0];
  if (first === undefined || (first & 0x1f) === 0x1f) throw invalid('implicit tagging needs a single-octet tag');
  const out = Buffer.from(inner);
  out[0] = CONTEXT | (first & CONSTRUCTED) | tagNumber;
  return out;
}

/** A TLV found by readTlv: its identifier octet and where its contents lie in the buffer. */
export interface Tlv {
  tag: number;
  /** Offset of the identifier octet. */
  start: number;
  /** Offset of the first contents octet. */
  contentStart: number;
  /** Offset just past the contents. */
  end: number;
}

/** Reads the TLV at `offset`, definite lengths only (DER has no other). */
export function readTlv(buffer: Uint8Array, offset = 0): Tlv {
  const tag = buffer[offset];
  const first = buffer[offset + 1];
  if (tag === undefined || first === undefined) throw invalid('truncated DER');
  if ((tag & 0x1f) === 0x1f) throw invalid('unsupported multi-octet DER tag');
  let contentStart = offset + 2;
  let length = first;
  if (first & 0x80) {
    const count = first & 0x7f;
    if (count === 0 || count > 4) throw invalid('unsupported DER length form');
    length = 0;
    for (let i = 0; i < count; i++) {
      const octet = buffer[contentStart + i];
      if (octet === undefined) throw invalid('truncated DER');
      length = length * 256 + octet;
    }
    contentStart += count;
  }
  const end = contentStart + length;
  if (end > buffer.length) throw invalid('truncated DER');
  return { tag, start: offset, contentStart, end };
}

/** The TLVs directly inside a constructed TLV. */
export function readChildren(buffer: Uint8Array, parent: Tlv): Tlv[] {
  const children: Tlv[] = [];
  for (let at = parent.contentStart; at < parent.end; ) {
    const child = readTlv(buffer, at);
    if (child.end > parent.end) throw invalid('DER child overruns its parent');
    children.push(child);
    at = child.end;
  }
  return children;
}
