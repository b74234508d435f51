// ES256 JSON Web Signatures for ACME requests (RFC 8555 §6.2, RFC 7515 flattened JSON
// serialization), the account key's JWK and its RFC 7638 thumbprint, and the http-01 key
// authorization built from it (RFC 8555 §8.1). Pure functions over node:crypto.
import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign } from 'node:crypto';
import { PortholeError } from '../errors.js';

/** The public half of a P-256 key as a JWK (RFC 7518 §6.2.1); exactly these members. */
export interface EcPublicJwk {
  crv: 'P-256';
  kty: 'EC';
  x: string;
  y: string;
}

/** An account key loaded once: the private key, its public JWK and thumbprint. */
export interface AccountKey {
  key: KeyObject;
  jwk: EcPublicJwk;
  thumbprint: string;
}

/** RFC 8555 §6.2 protected header: the nonce and URL always; `jwk` for newAccount, else `kid`. */
export interface JwsHeaderInput {
  nonce: string;
  url: string;
  /** The account URL; omitted → the JWK is embedded (newAccount only). */
  kid?: string;
}

/** Flattened JWS JSON serialization (RFC 7515 §7.2.2), sent as application/jose+json. */
export interface FlattenedJws {
  protected: string;
  payload: string;
  signature: string;
}

/** Loads a PKCS#8 (or SEC1) PEM ECDSA P-256 private key; anything else is INVALID_ARGUMENT. */
export function loadEcKey(pem: string, what: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new PortholeError('INVALID_ARGUMENT', `${what} is not an unencrypted PEM private key`, { cause: err });
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new PortholeError('INVALID_ARGUMENT', `${what} must be an ECDSA P-256 key`);
  }
  return key;
}

export function loadAccountKey(pem: string): AccountKey {
  const key = loadEcKey(pem, 'accountKeyPem');
  const jwk = publicJwk(key);
  return { key, jwk, thumbprint: jwkThumbprint(jwk) };
}

/** The public JWK of a P-256 key, without `d` (the private scalar never leaves the KeyObject). */
export function publicJwk(key: KeyObject): EcPublicJwk {
  const full = createPublicKey(key).export({ format: 'jwk' });
  if (full.kty !== 'EC' || full.crv !== 'P-256' || typeof full.x !== 'string' || typeof full.y !== 'string') {
    throw new PortholeError('INVALID_ARGUMENT', 'the key is not an ECDSA P-256 key');
  }
  return { crv: 'P-256', kty: 'EC', x: full.x, y: full.y };
}

/**
 * RFC 7638 §3: SHA-256 over the required members in lexicographic order (crv, kty, x, y for
 * EC), no whitespace, then base64url. Built by hand so member order never depends on objects.
 */
export function jwkThumbprint(jwk: EcPublicJwk): string {
  const canonical = `{"crv":${JSON.stringify(jwk.crv)},"kty":${JSON.stringify(jwk.kty)},"x":${JSON.stringify(jwk.x)},"y":${JSON.stringify(jwk.y)}}`;
  return createHash('sha256').update(canonical, 'utf8').digest('base64url');
}

/** RFC 8555 §8.1: keyAuthorization = token || '.' || base64url(Thumbprint(accountKey)). */
export function keyAuthorization(token: string, thumbprint: string): string {
  return `${token}.${thumbprint}`;
}

/**
 * Signs an ACME request body. `payload` undefined is POST-as-GET (RFC 8555 §6.3): the
 * payload member is the empty string, not base64url of "{}" or "null".
 */
export function signJws(account: AccountKey, header: JwsHeaderInput, payload?: unknown): FlattenedJws {
  const protectedHeader: Record<string, unknown> = { alg: 'ES256', nonce: header.nonce, url: header.url };
  if (header.kid !== undefined) protectedHeader['kid'] = header.kid;
  else protectedHeader['jwk'] = account.jwk;
  const encodedHeader = Buffer.from(JSON.stringify(protectedHeader), 'utf8').toString('base64url');
  const encodedPayload = payload === undefined ? '' : Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
  // RFC 7518 §3.4: ES256 signatures are R || S, 32 octets each, not a DER ECDSA-Sig-Value.
  const signature = sign('sha256', Buffer.from(`${encodedHeader}.${encodedPayload}`, 'ascii'), {
    key: account.key,
    dsaEncoding: 'ieee-p1363',
  });
  return { protected: encodedHeader, payload: encodedPayload, signature: signature.toString('base64url') };
}
