// `porthole lan addresses [--json]`: the URLs a phone on the same network could use —
// non-internal IPv4 first, then IPv6 (link-local last: browsers cannot use their zone).
import { lanReport } from '../gateway/api/lan.js';
import { homePaths, type CliContext } from './context.js';
import { loadCliConfig } from './load.js';

export { type LanEntry, lanEntries } from '../gateway/api/lan.js';

export function lanAddressesCommand(ctx: CliContext, opts: { json?: boolean; port?: string; config?: string }): number {
  const loaded = loadCliConfig(ctx, homePaths(ctx), opts.config, opts.port === undefined ? {} : { port: opts.port });
  const { host, port } = loaded.config.gateway;
  // The same object GET /_porthole/api/lan answers.
  const report = lanReport(host, port);
  const entries = report.addresses;
  if (opts.json) {
    ctx.stdout.write(`${JSON.stringify(report)}\n`);
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
