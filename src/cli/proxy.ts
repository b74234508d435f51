// `porthole proxy-config caddy|nginx` prints a reverse-proxy config for the public URL (the
// config on stdout, so `> file` works; what to set in porthole on stderr), and
// `porthole proxy test [URL]` checks that porthole answers at that URL.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { PortholeError } from '../errors.js';
import { caddyConfig } from '../proxy/caddy.js';
import { nginxConfig } from '../proxy/nginx.js';
import { gatewayUpstream as upstreamOf, type HostPort, portholeSettings, resolveProxyOptions } from '../proxy/options.js';
import { DEFAULT_PROBE_TIMEOUT_MS, probeProxy } from '../proxy/probe.js';
import { parseHostPort } from '../util/host-port.js';
import { homePaths, type CliContext } from './context.js';
import { loadCliConfig } from './load.js';
import type { PortholeConfig } from '../config/schema.js';

export interface ProxyConfigFlags {
  publicUrl?: string;
  upstream?: string;
  listen?: string;
  cert?: string;
  key?: string;
  /** commander's --no-http-redirect: false when given. */
  httpRedirect?: boolean;
  caddyAdmin?: string;
  config?: string;
}

function loadGatewayConfig(ctx: CliContext, file: string | undefined): PortholeConfig {
  return loadCliConfig(ctx, homePaths(ctx), file, {}).config;
}

/** The gateway as a proxy reaches it: a wildcard bind is reached over loopback. */
function gatewayUpstream(config: PortholeConfig): HostPort {
  return upstreamOf(config.gateway.host, config.gateway.port);
}

export function proxyConfigCommand(ctx: CliContext, kind: string, f: ProxyConfigFlags): number {
  if (kind !== 'caddy' && kind !== 'nginx') {
    throw new PortholeError('INVALID_ARGUMENT', `unknown proxy "${kind}": expected caddy or nginx`);
  }
  if ((f.cert === undefined) !== (f.key === undefined)) {
    throw new PortholeError('INVALID_ARGUMENT', '--cert and --key go together');
  }
  // porthole's own config is read only for what the flags leave open.
  let config: PortholeConfig | undefined;
  const gateway = () => (config ??= loadGatewayConfig(ctx, f.config));
  const publicUrl = f.publicUrl ?? gateway().gateway.public_url;
  if (publicUrl === undefined) {
    throw new PortholeError('INVALID_ARGUMENT', 'pass --public-url https://NAME (or set gateway.public_url)');
  }
  const upstream = f.upstream !== undefined ? parseHostPort(f.upstream, '--upstream') : gatewayUpstream(gateway());
  let listen: { host?: string; port: number } | undefined;
  if (f.listen !== undefined) {
    // "PORT" or "HOST:PORT".
    listen = /^\d+$/.test(f.listen) ? { port: Number(f.listen) } : parseHostPort(f.listen, '--listen');
    if (!listen.port || listen.port > 65535) throw new PortholeError('INVALID_ARGUMENT', `invalid --listen "${f.listen}"`);
  }
  const resolved = resolveProxyOptions({
    publicUrl,
    upstream,
    ...(listen ? { listen } : {}),
    ...(f.cert !== undefined && f.key !== undefined ? { tls: { cert: f.cert, key: f.key } } : {}),
    ...(f.httpRedirect === false ? { httpRedirect: false } : {}),
    ...(f.caddyAdmin !== undefined ? { caddyAdmin: f.caddyAdmin } : {}),
  });
  ctx.stdout.write(kind === 'caddy' ? caddyConfig(resolved) : nginxConfig(resolved));
  const lines = portholeSettings(resolved).map((l) => `    ${l}`);
  ctx.stderr.write(
    [
      'porthole: so that porthole believes this proxy, put this in porthole.toml and restart `porthole serve`:',
      ...lines,
      '  trusted_proxies is where the proxy connects from; X-Forwarded-* from anyone else are ignored.',
      ...(kind === 'nginx' && !resolved.tls && resolved.https ? ['  Fill in the certificate paths marked FILL IN.'] : []),
      '  Then check it: porthole proxy test',
      '',
    ].join('\n'),
  );
  return 0;
}

export interface ProxyTestFlags {
  ca?: string;
  /** Seconds. */
  timeout?: string;
  connect?: string;
  json?: boolean;
  config?: string;
}

export async function proxyTestCommand(ctx: CliContext, url: string | undefined, f: ProxyTestFlags): Promise<number> {
  const target = url ?? loadGatewayConfig(ctx, f.config).gateway.public_url;
  if (target === undefined) {
    throw new PortholeError('INVALID_ARGUMENT', 'give a URL (porthole proxy test https://NAME) or set gateway.public_url');
  }
  let timeoutMs = DEFAULT_PROBE_TIMEOUT_MS;
  if (f.timeout !== undefined) {
    const s = Number(f.timeout);
    if (!Number.isFinite(s) || s <= 0 || s > 600) throw new PortholeError('INVALID_ARGUMENT', '--timeout is seconds, greater than 0 and at most 600');
    timeoutMs = Math.round(s * 1000);
  }
  let ca: string | undefined;
  if (f.ca !== undefined) {
    try {
      ca = readFileSync(f.ca, 'utf8');
    } catch (err) {
      throw new PortholeError('INVALID_ARGUMENT', `cannot read --ca ${f.ca}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new PortholeError('INVALID_ARGUMENT', `--ca ${f.ca} holds no PEM certificate`);
  }
  if (f.connect !== undefined && isIP(f.connect) === 0) {
    throw new PortholeError('INVALID_ARGUMENT', '--connect takes an IP address (the proxy to dial instead of what DNS says)');
  }
  const r = await probeProxy(target, {
    timeoutMs,
    ...(ca !== undefined ? { ca } : {}),
    ...(f.connect !== undefined ? { connectAddress: f.connect } : {}),
  });
  if (f.json) ctx.stdout.write(`${JSON.stringify(r)}\n`);
  if (!r.ok) {
    ctx.stderr.write(`porthole: ${r.message} [${r.code}]\n`);
    return 1;
  }
  if (!f.json) {
    const via = r.redirects.length > 0 ? ` (after ${r.redirects.length} redirect${r.redirects.length > 1 ? 's' : ''})` : '';
    const lines = [`OK  porthole ${r.version} answers at ${r.pingUrl}${via} in ${r.elapsedMs} ms`];
    if (r.tls) lines.push(`    TLS ${r.tls.protocol ?? '?'}, certificate for ${r.tls.subject || '?'} from ${r.tls.issuer || '?'}, valid until ${r.tls.validTo}`);
    ctx.stdout.write(`${lines.join('\n')}\n`);
  }
  return 0;
}
