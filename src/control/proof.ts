// Server side of the `connect` credential proofs (docs/control-plane.md "Handshake"):
// the HMAC over the nonce and the connection context (with a TLS exporter value when this
// gateway terminates the connection's TLS), or the token itself. Both end in the token
// keeper, which compares in constant time and tells a rotated token from a wrong one.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { TokenCheck, TokenKeeper } from '../gateway/token-keeper.js';
import { EXPORTER_LABEL, EXPORTER_LENGTH, proofMessage, type Binding } from './wire.js';

/** The connection's TLS exporter (RFC 8446 §7.5) as base64url, or undefined when it is not TLS here. */
export function exporterOf(socket: unknown): string | undefined {
  const tls = socket as Partial<TLSSocket>;
  if (!tls.encrypted || typeof tls.exportKeyingMaterial !== 'function') return undefined;
  try {
    return tls.exportKeyingMaterial(EXPORTER_LENGTH, EXPORTER_LABEL, Buffer.alloc(0)).toString('base64url');
  } catch {
    return undefined;
  }
}

export interface HmacInput {
  nonce: string;
  ts: number;
  binding: Binding;
  /** This side's exporter value for the connection ('' without TLS). */
  exporter: string;
  deviceName: string;
  proof: string;
}

const PROOF_RE = /^[A-Za-z0-9_-]{43}$/;

/** Checks an HMAC proof against the current token and, for "stale", the retired ones. */
export function checkHmacProof(token: TokenKeeper, input: HmacInput): TokenCheck {
  if (!PROOF_RE.test(input.proof)) return 'wrong';
  const presented = Buffer.from(input.proof, 'base64url');
  if (presented.length !== 32) return 'wrong';
  const message = proofMessage(input);
  return token.checkKeyed((key) => timingSafeEqual(createHmac('sha256', key).update(message).digest(), presented));
}

/**
 * What a paired device signs with its Ed25519 key for `connect` scheme `device`
 * (docs/pairing.md): the UTF-8 text
 * `porthole-control-device-v1 \n nonce \n ts \n exporter \n deviceId` (no spaces; `exporter`
 * is the connection's TLS exporter when the gateway terminates its TLS, else empty), so a
 * signature is good for one challenge on one connection only.
 */
export function deviceProofMessage(p: { nonce: string; ts: number; exporter: string; deviceId: string }): Buffer {
  return Buffer.from(`porthole-control-device-v1\n${p.nonce}\n${p.ts}\n${p.exporter}\n${p.deviceId}`, 'utf8');
}
