// The LAN URLs a phone on the same network could use — `porthole lan addresses --json` and
// GET /_porthole/api/lan answer the same object: non-internal IPv4 first, then IPv6
// (link-local last, with url null: browsers cannot use their zone).
import { isLinkLocalAddress } from '../../auth/ip.js';
import { lanAddresses, type LanAddress } from '../connect-url.js';
import { formatHostForUrl } from '../listen.js';

export interface LanEntry extends LanAddress {
  /** null for link-local IPv6: it needs a zone (`%eth0`) that browsers do not accept. */
  url: string | null;
}

export interface LanReport {
  /** The address the gateway binds (gateway.host): LAN URLs work only with a non-loopback bind. */
  bind: string;
  port: number;
  addresses: LanEntry[];
}

export function lanEntries(port: number, addresses: readonly LanAddress[] = lanAddresses(), scheme: 'http' | 'https' = 'http'): LanEntry[] {
  return addresses.map((a) => ({
    ...a,
    url: a.family === 6 && isLinkLocalAddress(a.address) ? null : `${scheme}://${formatHostForUrl(a.address)}:${port}`,
  }));
}

export function lanReport(bind: string, port: number, scheme: 'http' | 'https' = 'http'): LanReport {
  return { bind, port, addresses: lanEntries(port, lanAddresses(), scheme) };
}
