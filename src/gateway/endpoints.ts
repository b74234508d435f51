// porthole's own HTTP endpoints under /_porthole/ (DESIGN §4). Health and ping are
// public; the API needs a real credential (the pipeline has checked it). No endpoint
// ever returns the master token.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isPortholeError, PortholeError } from '../errors.js';
import type { TunnelManager } from '../tunnel/manager.js';
import type { Decision } from './pipeline.js';
import { sendError, sendJson } from './respond.js';
import { handleTunnelApi, isTunnelApiPath } from './tunnel-api.js';
import { type ConsoleApiDeps, handleConsoleApi, isConsoleApiPath, tunnelSecretFor } from './api/index.js';
import { actorOf } from './api/common.js';
import { handleSessionApi, isConsolePath, SESSION_PATH, serveConsole } from './ui.js';

type Routed = Extract<Decision, { kind: 'porthole' }>;

export interface EndpointContext {
  status(): unknown | Promise<unknown>;
  issueCode(scope: 'admin' | 'read'): { code: string; expiresAt: number };
  /** Ends the caller's session; returns the Set-Cookie header that clears it. */
  logout(): string;
  /** The tunnel the sidecar runs, for `porthole tunnel …` in remote mode (absent: 404). */
  tunnel?(): TunnelManager | undefined;
  /** A session for a bearer credential (POST /_porthole/api/session); returns its Set-Cookie. */
  startSession?(credential: string, scope: 'admin' | 'read'): string;
  /** The console API's dependencies (src/gateway/api/): the gateway plus what `porthole serve` attached. */
  api?(): ConsoleApiDeps;
}

export const SERVICE_VERSION = '0.1.0';

export function handlePortholeRoute(req: IncomingMessage, res: ServerResponse, d: Routed, ctx: EndpointContext): void {
  const method = req.method ?? 'GET';
  const path = d.path;
  const read = method === 'GET' || method === 'HEAD';
  // The console (public static files) and the session it signs in with (src/gateway/ui.ts).
  if (isConsolePath(path)) return serveConsole(req, res, path);
  if (path === SESSION_PATH && ctx.startSession) {
    return handleSessionApi(req, res, d.auth, d.own, { startSession: ctx.startSession });
  }
  if (path === '/_porthole/health') {
    if (!read) return methodNotAllowed(res, 'GET, HEAD');
    return sendJson(res, 200, { status: 'ok' });
  }
  if (path === '/_porthole/ping') {
    if (!read) return methodNotAllowed(res, 'GET, HEAD');
    return sendJson(res, 200, { service: 'porthole', version: SERVICE_VERSION });
  }
  if (path === '/_porthole/api/status') {
    if (!read) return methodNotAllowed(res, 'GET, HEAD');
    Promise.resolve(ctx.status()).then(
      (s) => sendJson(res, 200, s),
      () => sendError(res, new PortholeError('INTERNAL', 'internal error')),
    );
    return;
  }
  if (path === '/_porthole/api/codes') {
    if (method !== 'POST') return methodNotAllowed(res, 'POST');
    if (d.auth.identity.scope !== 'admin') {
      return sendError(res, new PortholeError('SCOPE_DENIED', 'creating codes needs the admin scope'));
    }
    const { code, expiresAt } = ctx.issueCode('admin');
    return sendJson(res, 201, { code, expiresAt: new Date(expiresAt).toISOString() });
  }
  if (path === '/_porthole/api/logout') {
    if (method !== 'POST') return methodNotAllowed(res, 'POST');
    res.setHeader('set-cookie', ctx.logout());
    return sendJson(res, 200, { ok: true });
  }
  if (isTunnelApiPath(path)) {
    // The handler the Unix socket uses; starting, stopping or releasing needs the admin scope.
    if (!read && d.auth.identity.scope !== 'admin') {
      return sendError(res, new PortholeError('SCOPE_DENIED', 'changing the tunnel needs the admin scope'));
    }
    const api = ctx.api?.();
    handleTunnelApi(req, res, path, ctx.tunnel?.(), api && tunnelSecretFor(d, api), actorOf(d)).catch((err) => {
      sendError(res, isPortholeError(err) ? err : new PortholeError('INTERNAL', 'internal error', { expose: false }));
    });
    return;
  }
  // Token rotation, audit, settings, Tailscale, proxy test/snippets, LAN (src/gateway/api/).
  const api = ctx.api?.();
  if (api && isConsoleApiPath(path)) return handleConsoleApi(req, res, d, api);
  sendError(res, new PortholeError('NOT_FOUND', `no porthole endpoint ${path}`));
}

function methodNotAllowed(res: ServerResponse, allow: string): void {
  sendError(res, new PortholeError('METHOD_NOT_ALLOWED', 'method not allowed'), { allow });
}
