// X-Porthole-Identity: who porthole let through, signed so an app reachable by other
// local users can tell porthole's header from a forged one (DESIGN §3.5).
//
//   v=1; sub=owner; cred=token; scope=admin; ingress=direct; ts=1732345678; sig=<base64url>
//
// `sig` is HMAC-SHA256, keyed by the gateway's identity key, over everything before "; sig=".
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface Identity {
  /** Who: "owner" (the master token), "local" (loopback exemption), "anonymous" (public path / no auth). */
  sub: string;
  /** How: token | session | code | local | public | none. */
  cred: string;
  scope: 'admin' | 'read' | 'none';
  ingress: string;
}

export function formatIdentity(id: Identity, key: Buffer | undefined, nowSeconds = Math.floor(Date.now() / 1000)): string {
  const body = `v=1; sub=${encodeURIComponent(id.sub)}; cred=${id.cred}; scope=${id.scope}; ingress=${id.ingress}; ts=${nowSeconds}`;
  if (!key) return body;
  return `${body}; sig=${createHmac('sha256', key).update(body).digest('base64url')}`;
}

/** Distinct identities whose signed header is kept for the current second. */
const SIGNER_CACHE_ENTRIES = 64;

/**
 * formatIdentity with a per-second memo: every request of one identity within the same second
 * carries the same header, so the HMAC runs once per identity per second instead of per request.
 */
export function createIdentitySigner(key: Buffer | undefined): (id: Identity) => string {
  const cache = new Map<string, { ts: number; value: string }>();
  return (id) => {
    const now = Math.floor(Date.now() / 1000);
    // cred, scope and ingress come from fixed vocabularies without "\n"; sub, the only free
    // text, goes last, so no two identities share a key.
    const k = `${id.cred}\n${id.scope}\n${id.ingress}\n${id.sub}`;
    const hit = cache.get(k);
    if (hit !== undefined && hit.ts === now) return hit.value;
    const value = formatIdentity(id, key, now);
    if (hit === undefined && cache.size >= SIGNER_CACHE_ENTRIES) cache.clear();
    cache.set(k, { ts: now, value });
    return value;
  };
}

/**
 * Verifies a header produced by formatIdentity: the signature (constant time) and its
 * age (default at most 60 s, against replays). Returns the identity, or undefined.
 */
export function verifyIdentity(
  value: string | undefined,
  key: Buffer,
  maxAgeSeconds = 60,
  nowSeconds = Math.floor(Date.now() / 1000),
): (Identity & { ts: number }) | undefined {
  if (!value) return undefined;
  const at = value.lastIndexOf('; sig=');
  if (at < 0) return undefined;
  const body = value.slice(0, at);
  const sig = Buffer.from(value.slice(at + 6), 'base64url');
  const want = createHmac('sha256', key).update(body).digest();
  if (sig.length !== want.length || !timingSafeEqual(sig, want)) return undefined;
  const fields = new Map<string, string>();
  for (const part of body.split('; ')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq), part.slice(eq + 1));
  }
  const ts = Number(fields.get('ts'));
  if (fields.get('v') !== '1' || !Number.isFinite(ts) || Math.abs(nowSeconds - ts) > maxAgeSeconds) return undefined;
  const scope = fields.get('scope');
  return {
    sub: decodeURIComponent(fields.get('sub') ?? ''),
    cred: fields.get('cred') ?? '',
    scope: scope === 'admin' || scope === 'read' ? scope : 'none',
    ingress: fields.get('ingress') ?? '',
    ts,
  };
}
