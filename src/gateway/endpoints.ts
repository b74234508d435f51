// porthole's own HTTP endpoints under /_porthole/ (DESIGN §4). Health and ping are
// public; the API needs a real credential (the pipeline has checked it). No endpoint
// ever returns the master token.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PortholeError } from '../errors.js';
import type { Decision } from './pipeline.js';
import { sendError, sendJson } from './respond.js';

type Routed = Extract<Decision, { kind: 'porthole' }>;

export interface EndpointContext {
  status(): unknown;
  issueCode(scope: 'admin' | 'read'): { code: string; expiresAt: number };
  /** Ends the caller's session; returns the Set-Cookie header that clears it. */
  logout(): string;
}

export const SERVICE_VERSION = '0.1.0';

export function handlePortholeRoute(req: IncomingMessage, res: ServerResponse, d: Routed, ctx: EndpointContext): void {
  const method = req.method ?? 'GET';
  const path = d.path;
  const read = method === 'GET' || method === 'HEAD';
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
    return sendJson(res, 200, ctx.status());
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
  sendError(res, new PortholeError('NOT_FOUND', `no porthole endpoint ${path}`));
}

function methodNotAllowed(res: ServerResponse, allow: string): void {
  sendError(res, new PortholeError('METHOD_NOT_ALLOWED', 'method not allowed'), { allow });
}
