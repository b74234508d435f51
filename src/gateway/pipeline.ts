// The request pipeline (DESIGN §3): host allowlist → classify → ban check → authenticate
// → origin/CSRF → route. It decides; gateway.ts carries the decision out. Pure over the
// request's headers and the gateway's state, so HTTP and upgrades share it exactly.
// Its steps live beside it: pipeline-ingress.ts (framing, Host, classify) and
// pipeline-auth.ts (credentials).
import type { IncomingMessage } from 'node:http';
import { PortholeError } from '../errors.js';
import type { Ingress, TailscalePeer } from '../auth/classify.js';
import type { CodeStore } from '../auth/codes.js';
import type { HostPolicy } from '../auth/host.js';
import { type OriginPolicy, isOriginAcceptable } from '../auth/origin.js';
import type { BanTable } from '../auth/rate-limit.js';
import type { SessionStore } from '../auth/sessions.js';
import { LOGIN_PATH } from '../auth/password.js';
import type { TrustedProxyOptions } from '../auth/trusted-proxy.js';
import type { Identity } from './identity.js';
import type { TokenKeeper } from './token-keeper.js';
import { PAIR_EXCHANGE_PATH, type PairingService } from '../pairing/service.js';
import { ANONYMOUS, authenticate, controlAmbient } from './pipeline-auth.js';
import { classifyRequest } from './pipeline-ingress.js';

export { isPublicPath } from './pipeline-auth.js';

export interface AuthResult {
  /** Credential id for revocation tracking; undefined for local/public/none. */
  credential: string | undefined;
  identity: Identity;
  /** Sent by the browser on its own (cookie, loopback): needs an acceptable Origin for unsafe requests. */
  ambient: boolean;
  /** The session key (SessionStore.keyOf) when a session cookie authenticated: its end closes what it opened. */
  session?: string;
}

/**
 * What the pipeline reads of a request: node:http's IncomingMessage, or the front's own view
 * of a request it parsed (front.ts, FrontRequest).
 */
export type PipelineRequest = Pick<
  IncomingMessage,
  'method' | 'url' | 'headers' | 'rawHeaders' | 'socket' | 'headersDistinct' | 'httpVersionMajor' | 'httpVersionMinor'
>;

export type Decision =
  | { kind: 'error'; err: PortholeError; clearCookie?: boolean }
  | { kind: 'preflight'; origin: string }
  | { kind: 'redirect'; location: string; sessionId: string; maxAgeSeconds: number }
  | { kind: 'porthole'; path: string; auth: AuthResult; ingress: Ingress; proto: 'http' | 'https'; host: string; own: string | undefined }
  | { kind: 'forward'; auth: AuthResult; ingress: Ingress; proto: 'http' | 'https'; host: string; own: string | undefined }
  /** An upgrade of the control plane (/_porthole/ws): it authenticates inside its own protocol. */
  | { kind: 'control'; ingress: Ingress; proto: 'http' | 'https'; ambient: AuthResult | undefined };

export interface PipelineState {
  hostPolicy: HostPolicy;
  originPolicy: OriginPolicy;
  isTrustedProxy: (addr: string | undefined) => boolean;
  /** The concrete bind address, if not a wildcard: a Host naming it is "local". */
  bindHost: string | undefined;
  /** auth.mode, or "none" (--insecure-no-auth). docs/auth-modes.md describes each. */
  authMode: 'token' | 'password' | 'trusted-proxy' | 'none';
  /** [auth.trusted_proxy]: read in trusted-proxy mode only. */
  trustedProxy?: TrustedProxyOptions & { useXRealIp: boolean };
  loopbackExempt: boolean;
  publicPaths: readonly string[];
  bans: BanTable;
  sessions: SessionStore;
  codes: CodeStore;
  token: TokenKeeper;
  cookieName: (secure: boolean) => string;
  /** Credentials other than the master token that are still valid (devices, later). */
  isCredentialValid: (credential: string) => boolean;
  /** Paired devices (docs/pairing.md): `phd_` bearers, device sessions, `?code=` first loads. Absent: none. */
  devices?: Pick<PairingService, 'checkToken' | 'checkCredential' | 'pairBrowser'>;
  tunnelVisitor: (req: PipelineRequest) => string | undefined;
  /** What porthole's Tailscale listener verified about this request; undefined for every other ingress. */
  tailscalePeer?: (req: PipelineRequest) => TailscalePeer | undefined;
}

const PUBLIC_ENDPOINTS = new Set(['/_porthole/health', '/_porthole/ping']);
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const CONTROL_PATH = '/_porthole/ws';

export function decide(req: PipelineRequest, upgrade: boolean, s: PipelineState): Decision {
  // Framing checks, 1. Host allowlist, 2. classify (pipeline-ingress.ts).
  const c = classifyRequest(req, upgrade, s);
  if (c.kind === 'error') return c;
  const { path, query, hostHeader, ingress, proto, own, crossSite } = c;
  const headers = req.headers;

  // The control plane proves credentials inside its handshake (src/control/handshake.ts), so its
  // upgrade passes here unauthenticated — banned clients too: they are told with close 4029.
  // A browser's Origin must be acceptable whatever credential follows (no CORS for sockets).
  if (upgrade && path === CONTROL_PATH) {
    if (!isOriginAcceptable(headers.origin, own, s.originPolicy)) {
      return { kind: 'error', err: new PortholeError('ORIGIN_NOT_ALLOWED', 'cross-origin control connection refused') };
    }
    return { kind: 'control', ingress, proto, ambient: controlAmbient(req, ingress, proto, s) };
  }

  // 3. Ban check.
  const ban = s.bans.check(ingress.key);
  if (ban.banned) {
    return {
      kind: 'error',
      err: new PortholeError('RATE_LIMITED', 'too many failed attempts; try again later', {
        retryAfter: ban.retryAfterSeconds,
      }),
    };
  }

  const method = req.method ?? 'GET';
  const base = { ingress, proto, host: hostHeader, own };

  // Public endpoints and CORS preflight need no credential.
  if (PUBLIC_ENDPOINTS.has(path) && !upgrade) return { kind: 'porthole', path, auth: ANONYMOUS(ingress), ...base };
  if (method === 'OPTIONS' && headers.origin !== undefined && headers['access-control-request-method'] !== undefined) {
    if (s.originPolicy.isAllowed(headers.origin)) return { kind: 'preflight', origin: headers.origin };
    return { kind: 'error', err: new PortholeError('ORIGIN_NOT_ALLOWED', 'origin not allowed') };
  }
  // The password login form is public by design (DESIGN §3); its POST must come from our own
  // page (or a non-browser client): a cross-site form post is refused (login CSRF).
  if (s.authMode === 'password' && path === LOGIN_PATH && !upgrade) {
    if (method === 'POST' && crossSite) {
      return { kind: 'error', err: new PortholeError('ORIGIN_NOT_ALLOWED', 'cross-origin login refused') };
    }
    return { kind: 'porthole', path, auth: ANONYMOUS(ingress), ...base };
  }

  // Trading a pairing code for a device credential is public by design (docs/pairing.md): the
  // code is the credential; its handler counts wrong codes toward the ban. A cross-site POST
  // is refused (pairing CSRF: a page planting its own device session in the visitor's browser).
  if (path === PAIR_EXCHANGE_PATH && !upgrade && s.devices !== undefined) {
    if (crossSite) return { kind: 'error', err: new PortholeError('ORIGIN_NOT_ALLOWED', 'cross-origin pairing refused') };
    return { kind: 'porthole', path, auth: ANONYMOUS(ingress), ...base };
  }

  // 4. Authenticate.
  const auth = authenticate(req, upgrade, path, query, ingress, proto, s);
  if (auth.kind !== 'ok') return auth.decision;

  // 5. Origin / CSRF for ambient credentials.
  if (auth.result.ambient && (upgrade || !SAFE_METHODS.has(method))) {
    if (!isOriginAcceptable(headers.origin, own, s.originPolicy)) {
      return { kind: 'error', err: new PortholeError('ORIGIN_NOT_ALLOWED', 'cross-origin request refused') };
    }
  }

  // A read-only session may look, not change: safe methods only, no upgrades.
  // Two POSTs change only the caller's own session, not the desk: starting one (the console's
  // token sign-in) and ending it (logout).
  const ownSession = method === 'POST' && (path === '/_porthole/api/session' || path === '/_porthole/api/logout');
  if (auth.result.identity.scope === 'read' && (upgrade || !SAFE_METHODS.has(method)) && !ownSession) {
    return { kind: 'error', err: new PortholeError('SCOPE_DENIED', 'this credential is read-only') };
  }

  // 6. Route.
  if (path === '/_porthole' || path.startsWith('/_porthole/')) return { kind: 'porthole', path, auth: auth.result, ...base };
  return { kind: 'forward', auth: auth.result, ...base };
}
