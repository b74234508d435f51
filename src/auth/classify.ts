// Ingress classification (DESIGN §2): every request is classified exactly once, before
// auth, by where it came from. Nothing downstream re-derives trust from headers.
import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import { clientKey, isLoopbackAddress, normalizeAddress } from './ip.js';

export type IngressClass = 'local' | 'direct' | 'tunnel' | 'tailscale' | 'trusted-proxy' | 'unattributed' | 'cli';

export interface Ingress {
  class: IngressClass;
  /** The TCP peer (or the relay for tunnel streams). */
  peer: string;
  /** Best-known visitor address, for logs and X-Forwarded-For. */
  client: string;
  /** The brute-force key (DESIGN §3.2). */
  key: string;
}

export interface ClassifyContext {
  peer: string | undefined;
  /** Set for streams handed over in-process by porthole's tunnel client. */
  tunnelVisitor?: string | undefined;
  /** Host header is a loopback name or the bind address. */
  hostIsLocal: boolean;
  /** Browser request from another site (origin.ts). */
  crossSite: boolean;
  isTrustedProxy: (addr: string | undefined) => boolean;
}

/** True if any header a proxy adds to describe the original client is present. */
export function hasForwardingHeaders(headers: IncomingHttpHeaders): boolean {
  if (headers.forwarded !== undefined || headers['x-real-ip'] !== undefined) return true;
  for (const name in headers) if (name.startsWith('x-forwarded-')) return true;
  return false;
}

/**
 * One X-Forwarded-For entry as an address. Some proxies write a port (`1.2.3.4:5678`,
 * `[2001:db8::1]:443`) or quotes; those are accepted, anything else is junk (undefined).
 */
function forwardedAddress(entry: string): string | undefined {
  let v = entry.trim();
  if (v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
  if (v.startsWith('[')) {
    const end = v.indexOf(']');
    if (end < 0) return undefined;
    v = v.slice(1, end);
  } else if (v.includes('.') && v.lastIndexOf(':') > 0 && v.indexOf(':') === v.lastIndexOf(':')) {
    v = v.slice(0, v.indexOf(':'));
  }
  return isIP(v) ? normalizeAddress(v) : undefined;
}

/** X-Forwarded-For entries, in order, normalised; junk entries kept as undefined. */
function forwardedFor(headers: IncomingHttpHeaders): (string | undefined)[] {
  const raw = headers['x-forwarded-for'];
  if (raw === undefined) return [];
  const joined = Array.isArray(raw) ? raw.join(',') : raw;
  return joined.split(',').map(forwardedAddress);
}

export function classify(headers: IncomingHttpHeaders, ctx: ClassifyContext): Ingress {
  const peer = normalizeAddress(ctx.peer) ?? 'unknown';
  if (ctx.tunnelVisitor !== undefined) {
    const v = normalizeAddress(ctx.tunnelVisitor) ?? ctx.tunnelVisitor;
    return { class: 'tunnel', peer, client: v, key: clientKey(v) };
  }
  if (ctx.isTrustedProxy(peer)) {
    // Walk right to left: the rightmost entry not added by one of our proxies is the
    // client. The leftmost entries are whatever the client claimed and prove nothing.
    const chain = forwardedFor(headers);
    let client = peer;
    for (let i = chain.length - 1; i >= 0; i--) {
      const hop = chain[i];
      if (hop === undefined) break;
      client = hop;
      if (!ctx.isTrustedProxy(hop)) break;
    }
    return { class: 'trusted-proxy', peer, client, key: clientKey(client) };
  }
  if (isLoopbackAddress(peer)) {
    if (hasForwardingHeaders(headers)) {
      // A same-host proxy we were not told about: treat as remote, key on what it says
      // (rightmost entry — the one that proxy itself added) for rate limiting only.
      // Own key namespaces: nothing that is not local may share (and so ban) the local key.
      const chain = forwardedFor(headers);
      const last = chain[chain.length - 1];
      return { class: 'unattributed', peer, client: peer, key: last ? `xff:${clientKey(last)}` : `fwd:${peer}` };
    }
    if (ctx.hostIsLocal && !ctx.crossSite) return { class: 'local', peer, client: peer, key: peer };
    // Loopback but cross-site (a web page) or a public Host (an L4 forwarder): never local,
    // and never keyed like local — a web page must not be able to ban the desk's own user.
    const origin = headers.origin;
    return { class: 'unattributed', peer, client: peer, key: origin ? `origin:${origin}` : `nonlocal:${peer}` };
  }
  return { class: 'direct', peer, client: peer, key: clientKey(peer) };
}
