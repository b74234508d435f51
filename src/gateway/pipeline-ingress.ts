// The pipeline's first steps (DESIGN §3): is the request well-formed, does its Host name this
// gateway, and by which ingress did it come (tunnel, Tailscale, trusted proxy, local, remote).
// decide() in pipeline.ts runs this once, then authenticates and routes.
import type { TLSSocket } from 'node:tls';
import { classify, type Ingress } from '../auth/classify.js';
import { isLoopbackAddress, normalizeAddress, parseHostHeader } from '../auth/ip.js';
import { isCrossSite, ownOrigin } from '../auth/origin.js';
import { PortholeError } from '../errors.js';
import type { Decision, PipelineRequest, PipelineState } from './pipeline.js';

/** A request that passed the framing checks and the Host allowlist, classified once. */
export interface ClassifiedRequest {
  kind: 'classified';
  path: string;
  /** What follows `?` in the request target; undefined without one. */
  query: string | undefined;
  hostHeader: string;
  ingress: Ingress;
  proto: 'http' | 'https';
  own: string | undefined;
  crossSite: boolean;
}

/** Header fields a request may carry (well under Node's default maxHeadersCount of 2,000). */
const MAX_FIELDS = 1000;

export function classifyRequest(
  req: PipelineRequest,
  upgrade: boolean,
  s: PipelineState,
): ClassifiedRequest | Extract<Decision, { kind: 'error' }> {
  // Node keeps at most maxHeadersCount (default 2,000) fields and drops the rest silently —
  // but still frames the body by them: a Transfer-Encoding or Content-Length past the cut
  // would be invisible to every check here. Such heads are refused whole.
  const raw = req.rawHeaders;
  if (raw.length >= MAX_FIELDS * 2) return { kind: 'error', err: new PortholeError('HEADERS_TOO_LARGE', `more than ${MAX_FIELDS - 1} header fields`) };
  // RFC 9112 §3.2: more than one Host is a 400 (a front proxy may have routed on the other).
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') hosts++;
  if (hosts > 1) return { kind: 'error', err: new PortholeError('BAD_REQUEST', 'more than one Host header') };
  const headers = req.headers;
  const url = req.url ?? '';
  if (url.charCodeAt(0) !== 47 /* "/" */) {
    return { kind: 'error', err: new PortholeError('BAD_REQUEST', 'request target must be an absolute path') };
  }
  // An upgrade request has no body (a WebSocket handshake is a bodiless GET): its bytes after
  // the head belong to the new protocol, held back until the app answers 101. One announcing a
  // body would leave the app waiting for it on a pooled connection, where the next user's
  // request would be read as that body (request smuggling; docs/security.md).
  if (upgrade && (headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0'))) {
    return { kind: 'error', err: new PortholeError('BAD_REQUEST', 'an upgrade request must not have a body') };
  }
  // Only `chunked`: Node's parser de-chunks `gzip, chunked` but ignores the gzip, so the app
  // would get coded bytes as if plain. RFC 9112 §6.1: an unknown coding is 501.
  const te = headers['transfer-encoding'];
  if (te !== undefined && te.trim().toLowerCase() !== 'chunked') {
    return { kind: 'error', err: new PortholeError('TRANSFER_CODING_UNSUPPORTED', 'only the chunked transfer coding is accepted') };
  }
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);

  // 1. Host allowlist (DNS rebinding), loopback requests included.
  const hostHeader = headers.host;
  const parsed = parseHostHeader(hostHeader);
  if (!parsed || hostHeader === undefined) {
    return { kind: 'error', err: new PortholeError('BAD_REQUEST', 'missing or malformed Host header') };
  }
  const socket = req.socket;
  const tunnelVisitor = s.tunnelVisitor(req);
  if (!s.hostPolicy.isAllowed(parsed.hostname, socket.localAddress)) {
    return {
      kind: 'error',
      err: new PortholeError('HOST_NOT_ALLOWED', `Host "${parsed.hostname}" is not a name this gateway serves`),
    };
  }

  // 2. Classify, once.
  const peer = socket.remoteAddress;
  // A request on the Tailscale listener is Tailscale's, whatever trusted_proxies says about loopback.
  const tailscale = tunnelVisitor === undefined ? s.tailscalePeer?.(req) : undefined;
  const trusted = tunnelVisitor === undefined && tailscale === undefined && s.isTrustedProxy(normalizeAddress(peer));
  let proto: 'http' | 'https' =
    (socket as TLSSocket).encrypted || tunnelVisitor !== undefined || tailscale?.secure === true ? 'https' : 'http';
  if (trusted && headers['x-forwarded-proto'] === 'https') proto = 'https';
  const own = ownOrigin(proto, hostHeader);
  const crossSite = isCrossSite(headers, own, s.originPolicy);
  const hostIsLocal =
    parsed.hostname === 'localhost' ||
    isLoopbackAddress(parsed.hostname) ||
    (s.bindHost !== undefined && normalizeAddress(parsed.hostname) === s.bindHost) ||
    parsed.hostname === s.bindHost;
  const ingress = classify(headers, {
    peer,
    tunnelVisitor,
    tailscale,
    hostIsLocal,
    crossSite,
    isTrustedProxy: s.isTrustedProxy,
    useXRealIp: s.trustedProxy?.useXRealIp === true,
  });
  return { kind: 'classified', path, query: q < 0 ? undefined : url.slice(q + 1), hostHeader, ingress, proto, own, crossSite };
}
