// TLS pinning for the Node SDK (docs/control-plane.md "Pinning"). Two forms:
//   sha256/<base64>   SHA-256 of the server's SubjectPublicKeyInfo (RFC 7469): survives a
//                     renewal that keeps the key, which `serve --tls self-signed` does;
//   AA:BB:…:FF        SHA-256 of the whole leaf certificate (64 hex digits, colons optional),
//                     what CoWork calls the "TLS fingerprint": changes with every renewal.
// With a pin, the certificate chain is not consulted (a self-signed certificate is fine);
// the pin is checked on every connection, and a mismatch fails with TLS_PIN_MISMATCH.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { ControlError } from './errors.js';

export interface Pin {
  kind: 'spki' | 'leaf';
  digest: Buffer;
  text: string;
}

export function parsePin(text: string): Pin {
  const t = text.trim();
  if (t.startsWith('sha256/')) {
    const b = t.slice('sha256/'.length);
    const d = Buffer.from(b, 'base64');
    if (d.length === 32 && /^[A-Za-z0-9+/]{43}=$/.test(b)) return { kind: 'spki', digest: d, text: t };
  } else {
    const hex = t.replace(/:/g, '');
    if (/^[0-9a-fA-F]{64}$/.test(hex)) return { kind: 'leaf', digest: Buffer.from(hex, 'hex'), text: t };
  }
  throw new ControlError(
    'TLS_PIN_INVALID',
    'invalid pin: use "sha256/<base64>" (the public key pin `porthole serve` prints) or the certificate\'s SHA-256 fingerprint "AA:BB:…" (64 hex digits)',
  );
}

/** Whether the peer's leaf certificate matches the pin; false when there is none. */
export function pinMatches(socket: TLSSocket, pin: Pin): boolean {
  const cert = socket.getPeerX509Certificate();
  if (!cert) return false;
  const material = pin.kind === 'leaf' ? cert.raw : cert.publicKey.export({ type: 'spki', format: 'der' });
  return timingSafeEqual(createHash('sha256').update(material).digest(), pin.digest);
}

export function pinMismatch(pin: Pin): ControlError {
  return new ControlError(
    'TLS_PIN_MISMATCH',
    `the server's certificate does not match the pinned ${pin.kind === 'spki' ? 'public key' : 'certificate fingerprint'}: ` +
      'someone may be intercepting the connection, or the gateway has a new key (check the pin `porthole serve` prints on the desk)',
  );
}
