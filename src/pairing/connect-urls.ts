// The URLs a paired client may use to reach the desk (docs/pairing.md), best first:
// reverse-proxy public URL, tunnel URL, Tailscale URL, LAN URLs. Loopback and duplicates are
// removed, and cleartext `http://` is kept only for hosts that cannot be on the public
// internet (private, link-local, `.local`): anywhere else a network observer would read the
// credential.
import { isLinkLocalAddress, isLoopbackAddress, isPrivateAddress } from '../auth/ip.js';

/** The parts of the gateway's full status this reads (serve.ts fills them). */
export interface ConnectStatus {
  exposure?: { methods?: Record<string, { urls?: string[] } | undefined> } | undefined;
  /** Non-null when the gateway terminates TLS itself: LAN URLs are then https. */
  tls?: unknown;
  /** The address the banner shows (serve.ts), a last resort. */
  connectUrl?: string | null;
}

const ORDER = ['reverseProxy', 'tunnel', 'tailscale', 'lan'] as const;

function bareHost(hostname: string): string {
  return hostname.replace(/^\[|\]$/g, '').toLowerCase();
}

/** A host a cleartext URL may name: private or link-local address, or a `.local` (mDNS) name. */
export function mayBeCleartext(hostname: string): boolean {
  const h = bareHost(hostname);
  return isPrivateAddress(h) || isLinkLocalAddress(h) || h.endsWith('.local');
}

function isLoopbackHost(hostname: string): boolean {
  const h = bareHost(hostname);
  return h === 'localhost' || h.endsWith('.localhost') || isLoopbackAddress(h);
}

/** Candidates in order → the connect URLs (origins, no trailing slash). */
export function filterConnectUrls(candidates: readonly string[]): string[] {
  const out: string[] = [];
  for (const c of candidates) {
    let u: URL;
    try {
      u = new URL(c);
    } catch {
      continue;
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') continue;
    if (isLoopbackHost(u.hostname)) continue;
    if (u.protocol === 'http:' && !mayBeCleartext(u.hostname)) continue;
    // A public URL may sit under a path prefix (gateway.public_url): keep it, without a trailing slash.
    const path = u.pathname === '/' ? '' : u.pathname.replace(/\/+$/, '');
    const url = `${u.origin}${path}`;
    if (!out.includes(url)) out.push(url);
  }
  return out;
}

/** The ordered connect URLs from the gateway's full status (and gateway.public_url when the overview is absent). */
export function connectUrlsFromStatus(status: ConnectStatus, publicUrl?: string): string[] {
  const methods = status.exposure?.methods;
  const candidates: string[] = [];
  if (methods) {
    for (const m of ORDER) {
      for (const url of methods[m]?.urls ?? []) {
        candidates.push(m === 'lan' && status.tls ? url.replace(/^http:/, 'https:') : url);
      }
    }
  } else {
    if (publicUrl) candidates.push(publicUrl);
    if (status.connectUrl) candidates.push(status.connectUrl);
  }
  return filterConnectUrls(candidates);
}
