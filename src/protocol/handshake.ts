// The relay↔desk handshake (docs/relay-protocol.md §3), shared by relay/ and tunnel/:
// length-prefixed JSON messages, the transcript both sides derive, and the two proofs —
// an Ed25519 signature by the desk's identity key and an HMAC keyed by the registration
// secret — both bound to this TLS connection by an exporter value (RFC 8446 §7.5), so a
// hostile relay cannot replay them on another connection or to another relay.
import { createHmac, createPrivateKey, createPublicKey, sign, timingSafeEqual, verify, type KeyObject } from 'node:crypto';

/** ALPN a desk offers on its tunnel connection; visitors never do. */
export const TUNNEL_ALPN = 'porthole-tunnel/1';
export const PROTOCOL_VERSION = 1;
/** RFC 8446 §7.5 exporter label and length. */
export const EXPORTER_LABEL = 'EXPORTER-porthole-tunnel-v1';
export const EXPORTER_LENGTH = 32;
/** Largest handshake message either side accepts. */
export const MAX_HANDSHAKE_MESSAGE = 16 * 1024;
/** The registration secret a relay accepts only on loopback and never with --production. */
export const DEV_REGISTRATION_SECRET = 'porthole-dev-registration-secret';

export interface Challenge {
  type: 'challenge';
  version: number;
  /** The relay's own name (the domain apex by default): what the desk dialled. */
  relay: string;
  /** 32 random bytes, base64url. Single use: one per connection. */
  nonce: string;
}

export interface Register {
  /** `release` frees the key's name instead (same proofs, subdomain null). */
  type: 'register' | 'release';
  version: number;
  /** The desk's Ed25519 public key: 32 raw bytes, base64url. */
  publicKey: string;
  /** The subdomain asked for, or null for "mine if I have one, else a random one". */
  subdomain: string | null;
  /** Ed25519 signature over the transcript, base64url. */
  signature: string;
  /** HMAC-SHA256(registration secret, transcript), base64url: the secret never crosses the wire. */
  secretProof: string;
}

export interface Registered {
  type: 'registered';
  name: string;
  /** The public URL visitors use. */
  url: string;
  mode: 'passthrough' | 'terminate';
}

export interface Released {
  type: 'released';
  name: string | null;
}

export interface Refused {
  type: 'error';
  code: string;
  message: string;
  retryAfter?: number;
}

export type HandshakeMessage = Challenge | Register | Registered | Released | Refused;

/**
 * What both proofs cover: a fixed context string, the relay's name, the requested
 * subdomain ("" for none), the nonce and the TLS exporter value, NUL-separated.
 */
export function transcript(relay: string, subdomain: string | null, nonce: string, exporter: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(`porthole-tunnel-v${PROTOCOL_VERSION}\0${relay.toLowerCase()}\0${subdomain ?? ''}\0`, 'utf8'),
    Buffer.from(nonce, 'base64url'),
    Buffer.from([0]),
    exporter,
  ]);
}

/** SPKI DER prefix of an Ed25519 public key (RFC 8410): raw 32 bytes follow. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export function ed25519PublicKey(raw: string): KeyObject | undefined {
  const bytes = Buffer.from(raw, 'base64url');
  if (bytes.length !== 32 || bytes.toString('base64url') !== raw) return undefined;
  return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, bytes]), format: 'der', type: 'spki' });
}

export function rawPublicKey(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const der = pub.export({ type: 'spki', format: 'der' });
  return der.subarray(ED25519_SPKI_PREFIX.length).toString('base64url');
}

export function signTranscript(privateKeyPem: string, t: Buffer): string {
  return sign(null, t, createPrivateKey(privateKeyPem)).toString('base64url');
}

export function verifyTranscript(publicKey: string, t: Buffer, signature: string): boolean {
  const key = ed25519PublicKey(publicKey);
  if (!key) return false;
  const sig = Buffer.from(signature, 'base64url');
  return sig.length === 64 && verify(null, t, key, sig);
}

export function secretProof(secret: string, t: Buffer): string {
  return createHmac('sha256', secret).update(t).digest('base64url');
}

/** Constant-time check of a secret proof (fixed-length HMACs, so no length leak). */
export function checkSecretProof(secret: string, t: Buffer, proof: string): boolean {
  const want = createHmac('sha256', secret).update(t).digest();
  const got = Buffer.from(proof, 'base64url');
  return got.length === want.length && timingSafeEqual(got, want);
}

/** u32 big-endian length + UTF-8 JSON. */
export function encodeMessage(m: HandshakeMessage): Buffer {
  const body = Buffer.from(JSON.stringify(m), 'utf8');
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(body.length, 0);
  return Buffer.concat([head, body]);
}

export type ReadResult =
  | { status: 'message'; message: HandshakeMessage; rest: Buffer }
  | { status: 'incomplete' }
  | { status: 'invalid'; reason: string };

/** Reads one message from the front of `buf`. */
export function readMessage(buf: Buffer): ReadResult {
  if (buf.length < 4) return { status: 'incomplete' };
  const len = buf.readUInt32BE(0);
  if (len > MAX_HANDSHAKE_MESSAGE) return { status: 'invalid', reason: 'handshake message too large' };
  if (buf.length < 4 + len) return { status: 'incomplete' };
  let value: unknown;
  try {
    value = JSON.parse(buf.subarray(4, 4 + len).toString('utf8'));
  } catch {
    return { status: 'invalid', reason: 'handshake message is not JSON' };
  }
  const m = value as { type?: unknown };
  if (typeof m !== 'object' || m === null || typeof m.type !== 'string') {
    return { status: 'invalid', reason: 'handshake message has no type' };
  }
  // Each side treats the other as hostile: a field of the wrong type is a protocol error
  // here, never a TypeError in whoever reads it.
  const problem = messageProblem(value as Record<string, unknown>);
  if (problem !== undefined) return { status: 'invalid', reason: `handshake message ${JSON.stringify(m.type.slice(0, 20))}: ${problem}` };
  return { status: 'message', message: value as HandshakeMessage, rest: buf.subarray(4 + len) };
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isVersion = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;

/** What is wrong with a decoded message's fields, or undefined when each has its type. */
function messageProblem(m: Record<string, unknown>): string | undefined {
  switch (m['type']) {
    case 'challenge':
      return isVersion(m['version']) && isString(m['relay']) && isString(m['nonce']) ? undefined : 'needs version, relay and nonce';
    case 'register':
    case 'release':
      return isVersion(m['version']) &&
        isString(m['publicKey']) &&
        (m['subdomain'] === null || isString(m['subdomain'])) &&
        isString(m['signature']) &&
        isString(m['secretProof'])
        ? undefined
        : 'needs version, publicKey, subdomain (string or null), signature and secretProof';
    case 'registered':
      return isString(m['name']) && isString(m['url']) && (m['mode'] === 'passthrough' || m['mode'] === 'terminate')
        ? undefined
        : 'needs name, url and mode (passthrough or terminate)';
    case 'released':
      return m['name'] === null || isString(m['name']) ? undefined : 'needs name (string or null)';
    case 'error':
      return isString(m['code']) && isString(m['message']) && (m['retryAfter'] === undefined || (typeof m['retryAfter'] === 'number' && Number.isFinite(m['retryAfter'])))
        ? undefined
        : 'needs code and message (and a numeric retryAfter, if any)';
    default:
      return 'unknown type';
  }
}
