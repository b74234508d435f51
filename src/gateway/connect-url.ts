// Which address a remote device should use, and the LAN addresses a phone could reach.
import { networkInterfaces } from 'node:os';
import { isLoopbackAddress, isLinkLocalAddress } from '../auth/ip.js';
import { formatHostForUrl } from './listen.js';

export interface LanAddress {
  address: string;
  family: 4 | 6;
  interface: string;
}

/** Non-internal addresses: IPv4 first, then IPv6 (link-local IPv6 last; it needs a zone). */
export function lanAddresses(ifaces = networkInterfaces()): LanAddress[] {
  const out: LanAddress[] = [];
  for (const [name, list] of Object.entries(ifaces)) {
    for (const a of list ?? []) {
      if (a.internal || isLoopbackAddress(a.address)) continue;
      out.push({ address: a.address, family: a.family === 'IPv4' ? 4 : 6, interface: name });
    }
  }
  const rank = (a: LanAddress) => (a.family === 4 ? 0 : isLinkLocalAddress(a.address) ? 2 : 1);
  return out.sort((a, b) => rank(a) - rank(b));
}

export function isWildcardHost(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '';
}

/** Remote access is on when the gateway listens anywhere but loopback. */
export function isRemoteBind(host: string): boolean {
  return !isLoopbackAddress(host) && host !== 'localhost';
}

export interface ConnectChoice {
  url: string;
  reason: 'host' | 'allowed-origin' | 'lan';
}

/**
 * The address shown in the banner and QR, in this order: an explicit non-wildcard
 * --host; the first allowed origin; the machine's primary non-internal IPv4. None →
 * undefined (the banner says so and shows no QR).
 */
export function chooseConnectUrl(
  bindHost: string,
  port: number,
  allowedOrigins: readonly string[],
  lan: readonly LanAddress[] = lanAddresses(),
): ConnectChoice | undefined {
  if (!isWildcardHost(bindHost) && isRemoteBind(bindHost)) {
    return { url: `http://${formatHostForUrl(bindHost)}:${port}`, reason: 'host' };
  }
  const first = allowedOrigins[0];
  if (first !== undefined) {
    if (first.includes('://')) return { url: new URL(first).origin, reason: 'allowed-origin' };
    return { url: `http://${formatHostForUrl(first)}:${port}`, reason: 'allowed-origin' };
  }
  if (bindHost !== '::' || lan.some((a) => a.family === 4)) {
    const v4 = lan.find((a) => a.family === 4);
    if (v4) return { url: `http://${v4.address}:${port}`, reason: 'lan' };
  }
  return undefined;
}
