// The pipeline's authentication step (DESIGN §3, docs/auth-modes.md): which credential a
// request carries — bearer, `?code=`/`?token=` first load, session cookie, device, loopback or
// tailnet exemption, trusted-proxy user — and what it may do. decide() in pipeline.ts calls it.
import type { IncomingMessage } from 'node:http';
import { PortholeError } from '../errors.js';
import type { Ingress } from '../auth/classify.js';
import { portholeBearer, queryCredential, readCookie, stripPortholeParams } from '../auth/credentials.js';
import { LOGIN_PATH, isPasswordCredential } from '../auth/password.js';
import { proxyUser } from '../auth/trusted-proxy.js';
import { DEVICE_TOKEN_PREFIX, type DeviceCheck } from '../pairing/devices.js';
import type { AuthResult, Decision, PipelineRequest, PipelineState } from './pipeline.js';
import { isConsolePath } from './ui.js';

/** The loopback exemption never covers porthole's API and control plane (DESIGN §2). */
function needsRealCredential(path: string): boolean {
  return path.startsWith('/_porthole/api/') || path === '/_porthole/api' || path === '/_porthole/ws';
}

/**
 * Whether `path` falls under a public prefix, at a segment boundary. Paths with dot
 * segments or encoded separators are never public: the app may normalise them to a
 * different route than the one we matched.
 */
export function isPublicPath(path: string, prefixes: readonly string[]): boolean {
  if (prefixes.length === 0) return false;
  // `;` too: servlet containers read `/hooks/..;/admin` as `/admin`. `%25` too: an app
  // that decodes twice reads `/hooks/%252e%252e/admin` as `/hooks/../admin`.
  if (/%2e|%2f|%5c|%25|\\|;|\/\.\.?(\/|$)/i.test(path)) return false;
  for (const p of prefixes) {
    if (path === p || (path.startsWith(p) && (p.endsWith('/') || path[p.length] === '/'))) return true;
  }
  return false;
}

export const ANONYMOUS = (ingress: Ingress): AuthResult => ({
  credential: undefined,
  identity: { sub: 'anonymous', cred: 'public', scope: 'none', ingress: ingress.class },
  ambient: false,
});

export type AuthOutcome = { kind: 'ok'; result: AuthResult } | { kind: 'answer'; decision: Decision };

/**
 * The ambient credential a control connection may use (`connect` with scheme "session"): the
 * session cookie, or in trusted-proxy mode the proxy's user. Never the loopback exemption.
 */
export function controlAmbient(req: PipelineRequest, ingress: Ingress, proto: 'http' | 'https', s: PipelineState): AuthResult | undefined {
  if (s.authMode === 'none') return undefined;
  if (s.authMode === 'trusted-proxy') {
    if (ingress.class !== 'trusted-proxy' || ingress.clientUnknown || s.trustedProxy === undefined) return undefined;
    const r = proxyUser(req, s.trustedProxy);
    if (!r.ok) return undefined;
    return { credential: undefined, identity: { sub: r.user, cred: 'trusted-proxy', scope: 'admin', ingress: ingress.class }, ambient: true };
  }
  const session = sessionAuth(req.headers, s.cookieName(proto === 'https'), ingress, s);
  return session instanceof PortholeError ? undefined : session;
}

/** The loopback exemption (DESIGN §2): `local` ingress, exemption on, and not a path that needs a real credential. */
function loopbackExemption(ingress: Ingress, s: PipelineState, path: string): AuthOutcome | undefined {
  if (ingress.class !== 'local' || !s.loopbackExempt || needsRealCredential(path)) return undefined;
  return {
    kind: 'ok',
    result: {
      credential: undefined,
      identity: { sub: 'local', cred: 'local', scope: 'admin', ingress: 'local' },
      ambient: true,
    },
  };
}

function fail(err: PortholeError, clearCookie = false): AuthOutcome {
  return { kind: 'answer', decision: { kind: 'error', err, clearCookie } };
}

function countFailure(s: PipelineState, ingress: Ingress, err: PortholeError): AuthOutcome {
  const state = s.bans.recordFailure(ingress.key);
  if (state.banned) {
    return fail(
      new PortholeError('RATE_LIMITED', 'too many failed attempts; try again later', {
        retryAfter: state.retryAfterSeconds,
      }),
    );
  }
  return fail(err);
}

export function authenticate(
  req: PipelineRequest,
  upgrade: boolean,
  path: string,
  query: string | undefined,
  ingress: Ingress,
  proto: 'http' | 'https',
  s: PipelineState,
): AuthOutcome {
  if (s.authMode === 'none') {
    return {
      kind: 'ok',
      result: {
        credential: undefined,
        identity: { sub: 'anonymous', cred: 'none', scope: 'admin', ingress: ingress.class },
        ambient: true,
      },
    };
  }
  const headers = req.headers;
  if (s.authMode === 'trusted-proxy') return authenticateProxyUser(req, path, query, ingress, s);

  // Authorization: Bearer ph_… (an app's own bearer has no prefix and is ignored here).
  const bearer = portholeBearer(headers);
  if (bearer !== undefined) {
    if (bearer.startsWith(DEVICE_TOKEN_PREFIX)) return deviceOutcome(s.devices?.checkToken(bearer), 'device', ingress, false, s);
    const check = s.token.check(bearer);
    if (check === 'ok') return ok(s.token.credential(), 'token', ingress, false);
    if (check === 'stale') return fail(new PortholeError('AUTH_REVOKED', 'this token was rotated; use the new one'));
    return countFailure(s, ingress, new PortholeError('AUTH_INVALID', 'invalid token'));
  }

  // A browser's first load: ?code=phc_… or ?token=ph_… → session + 303 to the clean URL.
  // Only on plain GET navigations: a redirect would lose a body, and an upgrade cannot
  // follow one. Not on HEAD either: link previewers and scanners probe links with HEAD, and
  // must not spend a one-time code (or become the paired device). Elsewhere the parameter
  // is ignored (and stripped before forwarding).
  const method = req.method;
  const navigational = !upgrade && (method === 'GET' || method === 'HEAD');
  const cookieName = s.cookieName(proto === 'https');
  if (query !== undefined && !upgrade && method === 'GET') {
    const qc = queryCredential(new URLSearchParams(query));
    if (qc?.kind === 'query-code') {
      const r = s.codes.consume(qc.secret);
      if (r.status === 'ok') {
        // The browser becomes a paired device (kind browser); its session belongs to it.
        const paired = s.devices?.pairBrowser(r.grant, headers['user-agent'], ingress.class);
        return paired ? redirect(req, s, paired.credential, paired.scope) : redirect(req, s, r.grant.credential, r.grant.scope);
      }
      // A stale code (used, expired) is not a guess; a valid session still gets through.
      if (r.status === 'unknown') return countFailure(s, ingress, new PortholeError('CODE_INVALID', 'invalid code'));
      const live = sessionAuth(headers, cookieName, ingress, s);
      if (live && !(live instanceof PortholeError)) return redirect(req, s, undefined, undefined);
      return fail(new PortholeError('CODE_INVALID', 'this link was already used or has expired; ask for a new one'));
    }
    if (qc?.kind === 'query-token') {
      const check = s.token.check(qc.secret);
      if (check === 'ok') return redirect(req, s, s.token.credential(), 'admin');
      if (check === 'stale') return fail(new PortholeError('AUTH_REVOKED', 'this token was rotated; use the new one'));
      return countFailure(s, ingress, new PortholeError('AUTH_INVALID', 'invalid token'));
    }
  }

  const session = sessionAuth(headers, cookieName, ingress, s);
  if (session instanceof PortholeError) return fail(session);
  if (session) return { kind: 'ok', result: session };

  const exempt = loopbackExemption(ingress, s, path);
  if (exempt) return exempt;
  // The tailscale identity (DESIGN §2): an allowed tailnet login, never Funnel traffic. Like
  // the loopback exemption it is ambient (the Origin rule applies) and does not cover
  // porthole's own API and control plane.
  const ts = ingress.tailscale;
  if (ts?.allowed && !ts.funnel && ts.login !== undefined && !needsRealCredential(path)) {
    return {
      kind: 'ok',
      result: {
        credential: undefined,
        identity: { sub: ts.login, cred: 'tailscale', scope: 'admin', ingress: 'tailscale' },
        ambient: true,
      },
    };
  }
  if (!path.startsWith('/_porthole/') && isPublicPath(path, s.publicPaths)) return { kind: 'ok', result: ANONYMOUS(ingress) };
  const hadCookie = readCookie(headers, cookieName) !== undefined;
  // Password mode: a browser opening a page is sent to the login form, which comes back here.
  if (s.authMode === 'password' && navigational && acceptsHtml(headers) && !needsRealCredential(path)) {
    return loginRedirect(req);
  }
  // The console's static files are public by design (DESIGN §3): the page asks for a session.
  if (isConsolePath(path) && (method === 'GET' || method === 'HEAD')) return { kind: 'ok', result: ANONYMOUS(ingress) };
  return fail(new PortholeError('AUTH_REQUIRED', 'authentication required'), hadCookie);
}

function ok(credential: string, cred: string, ingress: Ingress, ambient: boolean, scope: 'admin' | 'read' = 'admin'): AuthOutcome {
  return {
    kind: 'ok',
    result: {
      credential,
      // The master token and the password both belong to the desk's owner.
      identity: { sub: credential.startsWith('token:') || isPasswordCredential(credential) ? 'owner' : credential, cred, scope, ingress: ingress.class },
      ambient,
    },
  };
}

/**
 * A device credential (a `phd_` bearer, or a device's session): active → its scope, fixed at
 * pairing; pending → 403 DEVICE_PENDING; revoked or expired → 401 AUTH_REVOKED (not a guess);
 * unknown → AUTH_INVALID, counted toward the ban like a wrong token.
 */
function deviceOutcome(check: DeviceCheck | undefined, cred: string, ingress: Ingress, ambient: boolean, s: PipelineState): AuthOutcome {
  if (check === undefined || check.status === 'unknown') {
    return countFailure(s, ingress, new PortholeError('AUTH_INVALID', 'invalid device token'));
  }
  if (check.status === 'pending') {
    return fail(new PortholeError('DEVICE_PENDING', 'this device waits for approval on the desk (porthole devices approve ID)'));
  }
  if (check.status === 'revoked') return fail(new PortholeError('AUTH_REVOKED', 'this device was revoked; pair it again'));
  if (check.status === 'expired') return fail(new PortholeError('AUTH_REVOKED', "this device's pairing has expired; pair it again"));
  return ok(`device:${check.device.id}`, cred, ingress, ambient, check.device.scope);
}

function sessionAuth(
  headers: IncomingMessage['headers'],
  cookieName: string,
  ingress: Ingress,
  s: PipelineState,
): AuthResult | PortholeError | undefined {
  const id = readCookie(headers, cookieName);
  if (id === undefined) return undefined;
  const record = s.sessions.lookup(id);
  if (!record) return undefined;
  const valid = record.credential === s.token.credential() || s.isCredentialValid(record.credential);
  if (!valid) {
    s.sessions.delete(id);
    return undefined;
  }
  // A device's session: its device decides (pending until approved; scope fixed at pairing).
  if (s.devices !== undefined && record.credential.startsWith('device:')) {
    const d = deviceOutcome(s.devices.checkCredential(record.credential), 'session', ingress, true, s);
    if (d.kind === 'ok') return { ...d.result, session: s.sessions.keyOf(id) };
    if (d.decision.kind === 'error' && d.decision.err.code === 'DEVICE_PENDING') return d.decision.err;
    s.sessions.delete(id);
    return undefined;
  }
  const r = ok(record.credential, 'session', ingress, true, record.scope);
  return r.kind === 'ok' ? { ...r.result, session: s.sessions.keyOf(id) } : undefined;
}

function redirect(
  req: PipelineRequest,
  s: PipelineState,
  credential: string | undefined,
  scope: 'admin' | 'read' | undefined,
): AuthOutcome {
  // One leading slash only: `//evil.example/` or `/\\evil.example/` in a Location header is
  // read by browsers as another host (an open redirect).
  const location = stripPortholeParams(req.url ?? '/').replace(/^[/\\]+/, '/');
  if (credential === undefined || scope === undefined) {
    return { kind: 'answer', decision: { kind: 'redirect', location, sessionId: '', maxAgeSeconds: 0 } };
  }
  const { id, maxAgeSeconds } = s.sessions.create(credential, scope);
  return { kind: 'answer', decision: { kind: 'redirect', location, sessionId: id, maxAgeSeconds } };
}

// ── auth modes: password (login redirect) and trusted-proxy (docs/auth-modes.md) ──

function acceptsHtml(headers: IncomingMessage['headers']): boolean {
  const accept = headers.accept;
  return typeof accept === 'string' && accept.toLowerCase().includes('text/html');
}

/** 303 to the login form, which returns to this same-site path after signing in. */
function loginRedirect(req: PipelineRequest): AuthOutcome {
  const back = stripPortholeParams(req.url ?? '/').replace(/^[/\\]+/, '/');
  const location = `${LOGIN_PATH}?next=${encodeURIComponent(back)}`;
  return { kind: 'answer', decision: { kind: 'redirect', location, sessionId: '', maxAgeSeconds: 0 } };
}

/**
 * auth.mode = "trusted-proxy": the proxy in front signs users in. Only a request from a
 * trusted proxy (ingress `trusted-proxy`) that names a client address may assert a user, in
 * the configured header. porthole's own credentials are off for remote requests (bearer,
 * `?token=`, `?code=`, sessions): the SSO is the only way in, and a leaked token is not a way
 * around it. The CLI on this host uses the Unix socket. Nothing here counts toward a ban:
 * there is nothing to guess.
 */
function authenticateProxyUser(
  req: PipelineRequest,
  path: string,
  query: string | undefined,
  ingress: Ingress,
  s: PipelineState,
): AuthOutcome {
  const headers = req.headers;
  const presented = portholeBearer(headers) !== undefined || (query !== undefined && queryCredential(new URLSearchParams(query)) !== undefined);
  if (presented) {
    return fail(
      new PortholeError(
        'CREDENTIAL_NOT_ACCEPTED',
        'porthole tokens and links are not accepted in trusted-proxy mode; sign in through the proxy',
      ),
    );
  }
  if (ingress.class === 'trusted-proxy') {
    if (ingress.clientUnknown) {
      return fail(
        new PortholeError(
          'CLIENT_ADDRESS_UNKNOWN',
          'the proxy sent no usable client address (X-Forwarded-For); refusing the request',
        ),
      );
    }
    if (s.trustedProxy === undefined) return fail(new PortholeError('AUTH_REQUIRED', 'authentication required'));
    const r = proxyUser(req, s.trustedProxy);
    if (r.ok) {
      return {
        kind: 'ok',
        result: {
          credential: undefined,
          identity: { sub: r.user, cred: 'trusted-proxy', scope: 'admin', ingress: ingress.class },
          // The browser sends the SSO cookie on its own: the Origin rule applies.
          ambient: true,
        },
      };
    }
    if (!path.startsWith('/_porthole/') && isPublicPath(path, s.publicPaths)) return { kind: 'ok', result: ANONYMOUS(ingress) };
    return fail(r.err);
  }
  const exempt = loopbackExemption(ingress, s, path);
  if (exempt) return exempt;
  if (!path.startsWith('/_porthole/') && isPublicPath(path, s.publicPaths)) return { kind: 'ok', result: ANONYMOUS(ingress) };
  const m = req.method;
  if (isConsolePath(path) && (m === 'GET' || m === 'HEAD')) return { kind: 'ok', result: ANONYMOUS(ingress) };
  return fail(new PortholeError('AUTH_REQUIRED', 'authentication required: sign in through the proxy'));
}
