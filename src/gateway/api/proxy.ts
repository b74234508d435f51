// POST /_porthole/api/proxy/test {url?} and GET /_porthole/api/proxy/config?kind=caddy|nginx
// &publicUrl=… (admin): `porthole proxy test --json` and `porthole proxy-config` for the
// console's Reverse proxy tab, on the same code (src/proxy/). The probe is what the CLI
// does — a GET of <url>/_porthole/ping with no credential — so an admin cannot make the desk
// carry a secret anywhere; it can only learn whether porthole answers there.
import type { ServerResponse } from 'node:http';
import { PortholeError } from '../../errors.js';
import { caddyConfig } from '../../proxy/caddy.js';
import { nginxConfig } from '../../proxy/nginx.js';
import { gatewayUpstream, resolveProxyOptions } from '../../proxy/options.js';
import { DEFAULT_PROBE_TIMEOUT_MS, type ProbeResult, probeProxy } from '../../proxy/probe.js';

/** The public URL to use when the caller gives none: saved/configured, else what a proxy reported. */
export type PublicUrlDefault = () => string | undefined;

export async function proxyTest(url: unknown, fallback: PublicUrlDefault): Promise<ProbeResult> {
  if (url !== undefined && url !== null && typeof url !== 'string') throw new PortholeError('INVALID_ARGUMENT', '"url" must be a string', { status: 400 });
  const target = (url || undefined) ?? fallback();
  if (target === undefined) {
    throw new PortholeError('INVALID_ARGUMENT', 'give {"url": "https://NAME"} or set gateway.public_url', { status: 400 });
  }
  return probeProxy(target, { timeoutMs: DEFAULT_PROBE_TIMEOUT_MS });
}

export function sendProxyConfig(
  res: ServerResponse,
  query: URLSearchParams,
  gateway: { bind: string; port: number },
  fallback: PublicUrlDefault,
): void {
  const kind = query.get('kind');
  if (kind !== 'caddy' && kind !== 'nginx') throw new PortholeError('INVALID_ARGUMENT', 'kind must be caddy or nginx', { status: 400 });
  const publicUrl = query.get('publicUrl') || fallback();
  if (publicUrl === undefined) {
    throw new PortholeError('INVALID_ARGUMENT', 'give ?publicUrl=https://NAME or set gateway.public_url', { status: 400 });
  }
  const resolved = resolveProxyOptions({ publicUrl, upstream: gatewayUpstream(gateway.bind, gateway.port) });
  const text = kind === 'caddy' ? caddyConfig(resolved) : nginxConfig(resolved);
  res.writeHead(200, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'content-disposition': `inline; filename="${kind === 'caddy' ? 'Caddyfile' : 'porthole.nginx.conf'}"`,
  });
  res.end(text);
}
