// What the app receives (DESIGN §3.5): porthole's credential removed (its bearer, its
// query parameters, its cookie), inbound identity headers deleted, its own identity and
// ingress headers set. Forwarding headers are rebuilt unless a trusted proxy sent them.
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { isForwarding } from '../auth/classify.js';
import { portholeBearer, stripCookie, stripPortholeParams } from '../auth/credentials.js';
import { connectionOptions } from './hop-by-hop.js';
import type { ForwardInfo } from './proxy.js';
import { mergeVary } from './proxy-web.js';
import type { Decision, PipelineRequest } from './pipeline.js';

type Routed = Extract<Decision, { kind: 'forward' }>;

/**
 * Makes every header view of req agree with the cleaned req.headers. An in-process app (Hono's
 * node adapter, anything reading `headersDistinct`) may read any of them: it must see exactly
 * what a proxied app would — never porthole's bearer or a forged identity header. Node builds
 * `headersDistinct` lazily from the raw list it parsed (and caches it, perhaps already read
 * by the pipeline), so it is set here too.
 */
export function syncRawHeaders(req: IncomingMessage): void {
  const raw: string[] = [];
  const fresh: IncomingHttpHeaders = {};
  const distinct: NodeJS.Dict<string[]> = {};
  const h = req.headers;
  for (const name in h) {
    const value = h[name];
    if (value === undefined) continue;
    fresh[name] = value;
    if (Array.isArray(value)) {
      for (const v of value) raw.push(name, v);
      distinct[name] = value.slice();
    } else {
      raw.push(name, value);
      distinct[name] = [value];
    }
  }
  // A fresh object: the deletes above left req.headers in V8's slow dictionary mode, and an
  // app reads its headers many times per request.
  req.headers = fresh;
  req.rawHeaders = raw;
  req.headersDistinct = distinct;
  // Request trailers arrive after the app has the request, too late to clean: the app gets
  // none, as a proxied app gets none (docs/http.md). Only a chunked body can carry them.
  if (fresh['transfer-encoding'] !== undefined) Object.defineProperties(req, NO_TRAILERS);
}

const NO_TRAILERS: PropertyDescriptorMap = {
  rawTrailers: { get: () => [], set() {}, configurable: true },
  trailers: { get: () => ({}), set() {}, configurable: true },
  trailersDistinct: { get: () => ({}), set() {}, configurable: true },
};

/**
 * The in-process app's answer to an allowed cross-origin request keeps `Vary: Origin` (its
 * Access-Control-Allow-Origin names one origin, so a shared cache must key on it): the app's
 * own Vary is merged with it, never put in its place — as the proxy does (docs/http.md).
 * node:http's writeHead applies a headers argument through these same methods.
 */
export function keepVaryOrigin(res: ServerResponse): void {
  const setHeader = res.setHeader;
  const removeHeader = res.removeHeader;
  res.setHeader = function (this: ServerResponse, name: string, value: number | string | readonly string[]) {
    return setHeader.call(this, name, name.toLowerCase() === 'vary' ? mergeVary(value as string | string[], 'Origin') : value);
  };
  res.removeHeader = function (this: ServerResponse, name: string) {
    removeHeader.call(this, name);
    if (name.toLowerCase() === 'vary') setHeader.call(this, 'vary', 'Origin');
  };
}

const CONNECTION_KEEP = new Set(['close', 'keep-alive', 'upgrade']);

/** The Connection tokens that describe the connection itself (close, keep-alive, upgrade). */
function connectionTokens(value: string | string[] | undefined): string[] {
  const joined = Array.isArray(value) ? value.join(',') : (value ?? '');
  return joined
    .split(',')
    .map((t) => t.trim())
    .filter((t) => CONNECTION_KEEP.has(t.toLowerCase()));
}

/** Mutates req.headers in place (cheaper than a copy) and returns what the proxy needs. */
export function forwardHeaders(
  req: PipelineRequest,
  d: Routed,
  cookieNames: readonly string[],
  identity: string,
  trustedUserHeader: string,
  /**
   * auth.trusted_proxy.required_headers (e.g. X-Forwarded-Email): identity-like headers only
   * a trusted proxy may set; removed on every other ingress so a client cannot plant them.
   */
  proxyOnlyHeaders: readonly string[] = [],
): ForwardInfo {
  const h = req.headers;
  // Headers the client lists in Connection are hop-by-hop (RFC 9110 §7.6.1): drop them now,
  // before porthole adds its own — else `Connection: x-porthole-identity` would make the
  // proxy strip the identity header porthole sets.
  const listed = connectionOptions(h.connection);
  if (listed) {
    for (const name of listed) delete h[name];
    const kept = connectionTokens(h.connection);
    if (kept.length) h.connection = kept.join(', ');
    else delete h.connection;
  }
  if (h.authorization !== undefined && portholeBearer(h) !== undefined) delete h.authorization;
  if (h.cookie !== undefined) {
    const kept = stripCookie(h.cookie, cookieNames);
    if (kept === undefined) delete h.cookie;
    else h.cookie = kept;
  }
  const userHeader = dashed(trustedUserHeader.toLowerCase());
  const trusted = d.ingress.class === 'trusted-proxy';
  const proxyOnly = trusted ? undefined : proxyOnlyHeaders.map((n) => dashed(n.toLowerCase()));
  for (const name in h) {
    // Compared with "_" read as "-": CGI, WSGI, PHP and Rack apps see `X_Real_IP` and
    // `X-Real-IP` as the same variable (HTTP_X_REAL_IP), so either spelling is stripped.
    const n = dashed(name);
    // Every Tailscale-* header (User-*, App-Capabilities, Funnel-Request, Headers-Info): an app
    // must learn who is asking from X-Porthole-Identity only, on every ingress.
    if (n.startsWith('x-porthole-') || n.startsWith('tailscale-') || n === userHeader) delete h[name];
    else if (proxyOnly !== undefined && (proxyOnly.includes(n) || isForwarding(n))) {
      // Only a trusted proxy's chain (and its other X-Forwarded-* fields: Prefix, Ssl, Scheme…)
      // is kept; anything else a client claims is dropped, and the proxy appends the address
      // we actually saw.
      delete h[name];
    }
  }
  h['x-porthole-identity'] = identity;
  h['x-porthole-ingress'] = d.ingress.class;
  const url = req.url ?? '/';
  return {
    headers: h,
    path: url.includes('?') ? stripPortholeParams(url) : url,
    clientAddress: d.ingress.class === 'trusted-proxy' ? d.ingress.peer : d.ingress.client,
    proto: d.proto,
    host: d.host,
  };
}

function dashed(name: string): string {
  return name.includes('_') ? name.replace(/_/g, '-') : name;
}
