// Ingress classification (DESIGN §2): every request is classified exactly once, before
// auth, by where it came from. Nothing downstream re-derives trust from headers.
import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import { clientKey, isLoopbackAddress, normalizeAddress } from './ip.js';
import { groupedKey } from './rate-limit.js';

export type IngressClass = 'local' | 'direct' | 'tunnel' | 'tailscale' | 'trusted-proxy' | 'unattributed' | 'cli';

export interface Ingress {
  class: IngressClass;
  /** The TCP peer (or the relay for tunnel streams). */
  peer: string;
  /** Best-known visitor address, for logs and X-Forwarded-For. */
  client: string;
  /** The brute-force key (DESIGN §3.2). */
  key: string;
  /**
   * `trusted-proxy` only: the proxy's headers named no client address outside the trusted
   * proxies (none, empty, junk, or only proxy hops). `client` and `key` are then the peer's;
   * trusted-proxy auth refuses such a request (fail closed, CLIENT_ADDRESS_UNKNOWN).
   */
  clientUnknown?: true;
  /** `tailscale` only: what porthole's Tailscale listener established (src/tailscale/peer.ts). */
  tailscale?: TailscalePeer;
}

/**
 * A request that arrived on the dedicated listener porthole points Tailscale Serve at, as
 * verified there: one X-Forwarded-For address, and for tailnet traffic the login
 * `tailscale whois` gives for it — never what the headers claim.
 */
export interface TailscalePeer {
  /** The client: a tailnet address, or for Funnel the public address Tailscale saw. */
  address: string;
  /** Funnel (public internet) traffic: never an identity. */
  funnel: boolean;
  /** The login whois names; undefined for Funnel and for tagged nodes. */
  login: string | undefined;
  /** `login` is in [tailscale] allow_users: may skip the credential. */
  allowed: boolean;
  /** Tailscale terminated TLS (X-Forwarded-Proto: https). */
  secure: boolean;
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
  /** auth.trusted_proxy.use_x_real_ip: a trusted proxy's X-Real-IP names the client (X-Forwarded-For is then not walked). */
  useXRealIp?: boolean;
  /** Set only for requests on porthole's Tailscale listener, already verified there. */
  tailscale?: TailscalePeer | undefined;
}

/** True if any header a proxy adds to describe the original client is present. */
export function hasForwardingHeaders(headers: IncomingHttpHeaders): boolean {
  if (headers.forwarded !== undefined || headers['x-real-ip'] !== undefined) return true;
  for (const name in headers) {
    if (name.startsWith('x-forwarded-')) return true;
    // `X_Forwarded_For`, `X_Real_IP`: the same variable to a CGI-style app (forward.ts strips them).
    if (name.includes('_') && isForwarding(name.replace(/_/g, '-'))) return true;
  }
  return false;
}

/** Forwarding fields a client could use to pose as a proxy (names lower case, "_" read as "-"). */
export function isForwarding(name: string): boolean {
  return name.startsWith('x-forwarded-') || name === 'forwarded' || name === 'x-real-ip';
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

/**
 * The client behind a trusted proxy, or undefined when its headers name none. X-Forwarded-For
 * is walked right to left (each proxy appends the address it saw): the first entry that is not
 * a trusted proxy is the client; entries left of it are the client's own claims and prove
 * nothing. When every entry is a trusted address, the leftmost is the client (a trusted proxy
 * wrote it: a machine inside the trusted range). A junk entry reached first ends the walk with
 * no client (a proxy could not attribute the request), and so does an absent or empty header:
 * fail closed. With use_x_real_ip, X-Real-IP alone decides: one valid address (a repeated
 * header, joined with ",", is junk).
 */
function trustedClient(headers: IncomingHttpHeaders, ctx: ClassifyContext): string | undefined {
  if (ctx.useXRealIp) {
    const raw = headers['x-real-ip'];
    return typeof raw === 'string' && !raw.includes(',') ? forwardedAddress(raw) : undefined;
  }
  const chain = forwardedFor(headers);
  let client: string | undefined;
  for (let i = chain.length - 1; i >= 0; i--) {
    const hop = chain[i];
    if (hop === undefined) return undefined;
    client = hop;
    if (!ctx.isTrustedProxy(hop)) break;
  }
  return client;
}

/** The group every unattributed (loopback, not local) key also counts toward (rate-limit.ts groupedKey). */
export const UNATTRIBUTED_GROUP = 'unattributed';

export function classify(headers: IncomingHttpHeaders, ctx: ClassifyContext): Ingress {
  const peer = normalizeAddress(ctx.peer) ?? 'unknown';
  if (ctx.tunnelVisitor !== undefined) {
    const v = normalizeAddress(ctx.tunnelVisitor) ?? ctx.tunnelVisitor;
    // Own key namespace: the address is the relay's claim (a relay behind a proxy on its own
    // host says 127.0.0.1 for everyone; a hostile one says anything), so tunnel failures must
    // never ban the desk's local user or a LAN client that really has that address.
    return { class: 'tunnel', peer, client: v, key: `tunnel:${clientKey(v)}` };
  }
  if (ctx.tailscale !== undefined) {
    const ts = ctx.tailscale;
    return { class: 'tailscale', peer, client: ts.address, key: clientKey(ts.address), tailscale: ts };
  }
  if (ctx.isTrustedProxy(peer)) {
    const client = trustedClient(headers, ctx);
    if (client === undefined) return { class: 'trusted-proxy', peer, client: peer, key: clientKey(peer), clientUnknown: true };
    return { class: 'trusted-proxy', peer, client, key: clientKey(client) };
  }
  if (isLoopbackAddress(peer)) {
    if (ctx.hostIsLocal && !ctx.crossSite && !hasForwardingHeaders(headers)) return { class: 'local', peer, client: peer, key: peer };
    // Loopback but not local: a same-host proxy we were not told about (forwarding headers), a
    // web page (cross-site), an L4 forwarder (a public Host). Own key namespaces: none of them
    // may ban the desk's own user. Keyed by what the proxy appended (the rightmost
    // X-Forwarded-For entry) or the page's Origin, so that one visitor's guesses do not ban
    // the others — but the request chose that key, so every key here also counts toward one
    // group, banned at GROUP_FACTOR × the limit: a new header per guess escapes nothing.
    let key: string;
    if (hasForwardingHeaders(headers)) {
      const chain = forwardedFor(headers);
      const last = chain[chain.length - 1];
      key = last ? `xff:${clientKey(last)}` : `fwd:${peer}`;
    } else {
      const origin = headers.origin;
      key = origin ? `origin:${origin}` : `nonlocal:${peer}`;
    }
    return { class: 'unattributed', peer, client: peer, key: groupedKey(key, UNATTRIBUTED_GROUP) };
  }
  return { class: 'direct', peer, client: peer, key: clientKey(peer) };
}
