// `porthole lan addresses [--json]`: the URLs a phone on the same network could use —
// non-internal IPv4 first, then IPv6 (link-local last: browsers cannot use their zone).
import { isLinkLocalAddress } from '../auth/ip.js';
import { lanAddresses, type LanAddress } from '../gateway/connect-url.js';
import { formatHostForUrl } from '../gateway/listen.js';
import { homePaths, type CliContext } from './context.js';
import { loadCliConfig } from './load.js';

export interface LanEntry extends LanAddress {
  /** null for link-local IPv6: it needs a zone (`%eth0`) that browsers do not accept. */
  url: string | null;
}

export function lanEntries(port: number, addresses: readonly LanAddress[] = lanAddresses()): LanEntry[] {
  return addresses.map((a) => ({
    ...a,
    url: a.family === 6 && isLinkLocalAddress(a.address) ? null : `http://${formatHostForUrl(a.address)}:${port}`,
  }));
}

export function lanAddressesCommand(ctx: CliContext, opts: { json?: boolean; port?: string; config?: string }): number {
  const loaded = loadCliConfig(ctx, homePaths(ctx), opts.config, opts.port === undefined ? {} : { port: opts.port });
  const { host, port } = loaded.config.gateway;
  const entries = lanEntries(port);
  if (opts.json) {
    ctx.stdout.write(`${JSON.stringify({ bind: host, port, addresses: entries })}\n`);
    return 0;
  }
  if (entries.length === 0) {
    ctx.stdout.write('No network address besides loopback: this machine is not on a network a phone could share.\n');
    return 0;
  }
  for (const e of entries) ctx.stdout.write(`${(e.url ?? `${e.address} (link-local: needs a zone, not usable in browsers)`).padEnd(44)} ${e.interface}\n`);
  if (host === '127.0.0.1' || host === '::1' || host === 'localhost') {
    ctx.stderr.write(`The gateway is bound to ${host}: these work only after \`porthole serve --host 0.0.0.0\` (auth stays on).\n`);
  }
  return 0;
}
