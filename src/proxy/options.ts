// What `porthole proxy-config` needs to write a reverse-proxy config, checked once, shared by
// the Caddy and nginx generators. Pure: the CLI resolves defaults from porthole's config.
import { isIP } from 'node:net';
import { checkPublicUrl } from '../config/validate.js';
import { PortholeError } from '../errors.js';

export interface HostPort {
  host: string;
  port: number;
}

export interface ProxyConfigOptions {
  /** The public origin visitors use (gateway.public_url): https, or http on a private network. */
  publicUrl: string;
  /** The gateway the proxy forwards to (gateway.host:gateway.port; a wildcard bind → loopback). */
  upstream: HostPort;
  /**
   * Where the proxy listens. Default: the public URL's port on every address (nginx: IPv4 and
   * IPv6; Caddy: its own default). A host binds that address only (tests: 127.0.0.1).
   */
  listen?: { host?: string; port: number };
  /**
   * Certificate and key files (PEM). Default: Caddy obtains and renews one by itself (ACME);
   * nginx gets placeholder paths the user must fill in, marked in the output.
   */
  tls?: { cert: string; key: string };
  /** An http → https redirect on port 80 (Caddy: its automatic one). Default true for https. */
  httpRedirect?: boolean;
  /** Caddy's admin endpoint: "off" or HOST:PORT. Default: Caddy's (localhost:2019, needed by `caddy reload`). */
  caddyAdmin?: string;
}

export interface Resolved extends ProxyConfigOptions {
  url: URL;
  https: boolean;
  /** The name visitors use (no brackets, no port). */
  hostname: string;
  /** `host:port` as a URL authority (IPv6 in brackets). */
  upstreamAuthority: string;
  /** What to put in gateway.trusted_proxies: the address the proxy connects to the gateway from. */
  trustedProxyHint: string;
}

export const bracket = (host: string): string => (isIP(host) === 6 ? `[${host}]` : host);

/** The gateway as a proxy on this host reaches it: a wildcard bind is reached over loopback. */
export function gatewayUpstream(bind: string, port: number): HostPort {
  const host = bind === '0.0.0.0' || bind === '' ? '127.0.0.1' : bind === '::' ? '::1' : bind;
  return { host, port };
}

/** Refuses values that would break out of a config line (quotes, braces, semicolons, newlines). */
function plain(value: string, what: string): string {
  if (!/^[A-Za-z0-9._~:/@%+=,[\]-]+$/.test(value)) {
    throw new PortholeError('INVALID_ARGUMENT', `${what} ${JSON.stringify(value)} has characters a proxy config cannot hold safely`);
  }
  return value;
}

export function resolveProxyOptions(o: ProxyConfigOptions): Resolved {
  const checked = checkPublicUrl(o.publicUrl);
  if (checked.problem !== undefined) throw new PortholeError('INVALID_ARGUMENT', `invalid --public-url: ${checked.problem}`);
  const url = new URL(checked.value);
  const hostname = url.hostname.replace(/^\[|\]$/g, '');
  const upstreamHost = o.upstream.host;
  if (upstreamHost === '' || upstreamHost === '0.0.0.0' || upstreamHost === '::' || o.upstream.port === 0) {
    throw new PortholeError('INVALID_ARGUMENT', 'the upstream must be a concrete address and port: pass --upstream HOST:PORT');
  }
  plain(upstreamHost, 'upstream host');
  if (o.tls) {
    plain(o.tls.cert, '--cert');
    plain(o.tls.key, '--key');
  }
  if (o.listen?.host !== undefined) plain(o.listen.host, 'listen host');
  if (o.caddyAdmin !== undefined) plain(o.caddyAdmin, '--caddy-admin');
  const loopbackUpstream = upstreamHost === 'localhost' || upstreamHost.startsWith('127.') || upstreamHost === '::1';
  return {
    ...o,
    url,
    https: url.protocol === 'https:',
    hostname,
    upstreamAuthority: `${bracket(upstreamHost)}:${o.upstream.port}`,
    // A proxy reaching a loopback gateway is on this host: it connects from loopback too.
    trustedProxyHint: loopbackUpstream ? (upstreamHost === '::1' ? '::1' : '127.0.0.1') : "<the proxy host's address>",
  };
}

/** The lines porthole needs to believe this proxy, shown in the generated file and on stderr. */
export function portholeSettings(r: Resolved): string[] {
  return [
    '[gateway]',
    `public_url = "${r.url.origin}"`,
    `trusted_proxies = ["${r.trustedProxyHint}"]`,
  ];
}

/** The port the proxy listens on: --listen, else the public URL's (explicit or default). */
export function listenPort(r: Resolved): number {
  return r.listen?.port ?? (r.url.port ? Number(r.url.port) : r.https ? 443 : 80);
}
