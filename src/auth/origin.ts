// Allowed origins (DESIGN §4): full origins matched exactly, or bare hosts matching any
// scheme and port of that host. Also decides whether a browser request is cross-site.
import type { IncomingHttpHeaders } from 'node:http';
import { PortholeError } from '../errors.js';
import { parseHostHeader } from './ip.js';

const DEFAULT_PORTS: Record<string, string> = { 'http:': '80', 'https:': '443' };

/** Canonical "scheme://host[:port]" (default port dropped), or undefined for "null"/junk. */
export function normalizeOrigin(origin: string | undefined): string | undefined {
  if (!origin || origin === 'null') return undefined;
  let u: URL;
  try {
    u = new URL(origin);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
  // An Origin header never has a path; a configured origin with one is a mistake.
  if (u.username || u.password || (u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) {
    return undefined;
  }
  const port = u.port && u.port !== DEFAULT_PORTS[u.protocol] ? `:${u.port}` : '';
  return `${u.protocol}//${u.hostname.toLowerCase()}${port}`;
}

function bareHostOf(hostname: string): string {
  return hostname.replace(/^\[|\]$/g, '').toLowerCase();
}

export interface OriginPolicy {
  /** Exact origins and bare hosts, as configured (normalised). */
  readonly origins: ReadonlySet<string>;
  readonly hosts: ReadonlySet<string>;
  isAllowed(origin: string | undefined): boolean;
}

/**
 * Builds the policy. Each entry is a full origin (`https://laptop.example:8443`) or a
 * bare host (`laptop.tailnet.ts.net`, `192.168.1.42`, `[fd00::1]`). A bare host
 * allows every scheme and port of that host: convenient for LAN IPs whose port
 * changes, at the cost of trusting any service on that host (docs/security.md).
 */
export function createOriginPolicy(entries: readonly string[]): OriginPolicy {
  const origins = new Set<string>();
  const hosts = new Set<string>();
  for (const raw of entries) {
    const entry = raw.trim();
    if (!entry) continue;
    if (entry.includes('://')) {
      const o = normalizeOrigin(entry);
      if (!o) throw new PortholeError('INVALID_ARGUMENT', `invalid allowed origin "${entry}": expected scheme://host[:port]`);
      origins.add(o);
    } else {
      const h = parseHostHeader(entry);
      if (!h || h.port !== undefined) {
        throw new PortholeError('INVALID_ARGUMENT', `invalid allowed origin "${entry}": expected a bare host or a full origin`);
      }
      hosts.add(bareHostOf(h.hostname));
    }
  }
  return {
    origins,
    hosts,
    isAllowed(origin) {
      const o = normalizeOrigin(origin);
      if (!o) return false;
      if (origins.has(o)) return true;
      return hosts.has(bareHostOf(new URL(o).hostname));
    },
  };
}

/** The gateway's own origin as the browser sees it: scheme + the Host it used. */
export function ownOrigin(proto: 'http' | 'https', host: string | undefined): string | undefined {
  if (!host) return undefined;
  // Every request needs this and a gateway sees few distinct Hosts: memoise instead of parsing
  // a URL per request. Bounded, since the Host header is client-chosen.
  const key = `${proto}://${host}`;
  let own = ownOrigins.get(key);
  if (own === undefined) {
    if (ownOrigins.size >= OWN_ORIGIN_ENTRIES) ownOrigins.clear();
    own = normalizeOrigin(key) ?? null;
    ownOrigins.set(key, own);
  }
  return own ?? undefined;
}

const OWN_ORIGIN_ENTRIES = 256;
const ownOrigins = new Map<string, string | null>();

/**
 * True when the request is a browser request from another site: an Origin that is
 * neither ours nor allowed, or Sec-Fetch-Site saying cross-site (or same-site without
 * an allowed Origin). Non-browser clients send neither header and are not cross-site.
 */
export function isCrossSite(headers: IncomingHttpHeaders, own: string | undefined, policy: OriginPolicy): boolean {
  const origin = headers.origin;
  const originOk = origin === undefined || isOwn(origin, own) || policy.isAllowed(origin);
  if (!originOk) return true;
  const site = headers['sec-fetch-site'];
  if (site === undefined || site === 'same-origin' || site === 'none') return false;
  if (site === 'same-site') return !(origin !== undefined && policy.isAllowed(origin));
  return true;
}

/** Whether an Origin (if present) is acceptable for an ambient-credential request. */
export function isOriginAcceptable(origin: string | undefined, own: string | undefined, policy: OriginPolicy): boolean {
  if (origin === undefined) return true;
  return isOwn(origin, own) || policy.isAllowed(origin);
}

/** Same origin as ours; junk and "null" never are, even when ours is unknown. */
function isOwn(origin: string, own: string | undefined): boolean {
  const n = normalizeOrigin(origin);
  return n !== undefined && n === own;
}
