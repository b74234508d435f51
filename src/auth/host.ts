// Host allowlist, the DNS-rebinding defence (DESIGN §3.1): a request is served only when
// its Host names something porthole serves. A rebinding page's Host is the attacker's
// name, so refusing unknown names — loopback requests included — stops it.
import { hostname as osHostname } from 'node:os';
import { isIP } from 'node:net';
import { isLoopbackAddress, normalizeAddress } from './ip.js';

export interface HostPolicyOptions {
  /** Names always allowed besides loopback: public_url host, allowed-origin hosts, the bind host. */
  names: readonly string[];
  /** Names that appear at run time (tunnel URL, tailscale name). Read on every check. */
  dynamicNames?: () => Iterable<string>;
}

export interface HostPolicy {
  /**
   * `hostname` is the parsed Host (no port, no brackets, lowercased). `localAddress` is
   * the address the client connected to: an IP-literal Host equal to it involves no DNS
   * and so cannot be a rebinding.
   */
  isAllowed(hostname: string, localAddress: string | undefined): boolean;
}

/** Lowercase, no brackets, no trailing dot, IPs canonical; wildcards are not names. */
function canonicalName(n: string): string | undefined {
  const name = n.trim().replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
  if (!name || name === '0.0.0.0' || name === '::') return undefined;
  return isIP(name) ? (normalizeAddress(name) ?? name) : name;
}

export function createHostPolicy(options: HostPolicyOptions): HostPolicy {
  const fixed = new Set<string>();
  const add = (n: string) => {
    const name = canonicalName(n);
    if (name) fixed.add(name);
  };
  for (const n of options.names) add(n);
  // The machine's own name (and its mDNS form) is what a LAN user types; a rebinding
  // attacker cannot make a browser send it unless the page itself was loaded from it.
  const host = osHostname().toLowerCase();
  if (host) {
    add(host);
    add(`${host.split('.')[0]}.local`);
  }
  return {
    isAllowed(hostname, localAddress) {
      if (hostname === 'localhost' || hostname.endsWith('.localhost')) return true;
      if (isIP(hostname)) {
        const ip = normalizeAddress(hostname);
        if (ip === undefined) return false;
        if (isLoopbackAddress(ip)) return true;
        if (localAddress !== undefined && ip === normalizeAddress(localAddress)) return true;
        if (fixed.has(ip)) return true;
      } else if (fixed.has(hostname)) return true;
      if (options.dynamicNames) {
        const want = canonicalName(hostname);
        for (const n of options.dynamicNames()) if (canonicalName(n) === want) return true;
      }
      return false;
    },
  };
}
