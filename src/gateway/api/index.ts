// The console-facing API under /_porthole/api/ (docs/http.md "Console API"): token rotation,
// the audit log, settings, Tailscale, the reverse-proxy test and snippets, LAN addresses.
// One module per endpoint group; this file routes and checks scopes. The pipeline has
// already authenticated the caller with a real credential and kept read-scope callers to
// safe methods; admin-only reads are checked here. No answer ever carries a secret.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PortholeError } from '../../errors.js';
import type { Gateway } from '../gateway.js';
import { readJsonBody } from '../json-body.js';
import { sendError, sendJson } from '../respond.js';
import { appendAudit } from '../../util/audit.js';
import { parseAuditLimit, readAuditTail } from './audit.js';
import { actorOf, allowMethods, API_PREFIX, asHttpError, queryOf, requireAdmin, type Routed } from './common.js';
import type { ConsoleEvents } from './events.js';
import { lanReport } from './lan.js';
import { proxyTest, sendProxyConfig } from './proxy.js';
import type { SettingsKeeper } from './settings.js';
import { handleTailscaleApi, isTailscaleApiPath, isTailscaleApiWrite, type TailscaleApi } from './tailscale.js';
import type { RegistrationSecretAccess } from './tunnel-secret.js';

/** What `porthole serve` attaches to the gateway for the console API (gateway.attachConsoleApi). */
export interface ConsoleApiExtras {
  settings?: SettingsKeeper;
  tailscale?: TailscaleApi;
  tunnelSecret?: RegistrationSecretAccess;
  /** The listener as bound: LAN URLs and the reverse-proxy upstream. */
  listening?: () => { bind: string; port: number; scheme: 'http' | 'https' };
  events?: ConsoleEvents;
}

export interface ConsoleApiDeps extends ConsoleApiExtras {
  gateway: Gateway;
}

const ROUTES = new Set(['/token/rotate', '/audit', '/settings', '/proxy/test', '/proxy/config', '/lan'].map((p) => `${API_PREFIX}${p}`));

/** Whether `path` (no query) is one of this module's routes. */
export function isConsoleApiPath(path: string): boolean {
  return ROUTES.has(path) || isTailscaleApiPath(path);
}

/** Answers a console API route; every failure becomes a JSON error with its stable code. */
export function handleConsoleApi(req: IncomingMessage, res: ServerResponse, d: Routed, deps: ConsoleApiDeps): void {
  route(req, res, d, deps).catch((err) => sendError(res, asHttpError(err)));
}

async function route(req: IncomingMessage, res: ServerResponse, d: Routed, deps: ConsoleApiDeps): Promise<void> {
  const path = d.path;
  const { gateway } = deps;
  if (isTailscaleApiPath(path)) {
    if (isTailscaleApiWrite(req)) requireAdmin(d, 'changing Tailscale exposure');
    return handleTailscaleApi(req, res, path, deps.tailscale);
  }
  switch (path.slice(API_PREFIX.length)) {
    case '/token/rotate': {
      allowMethods(req, 'POST');
      requireAdmin(d, 'rotating the token');
      await readJsonBody(req);
      // The caller's own response is not tracked (gateway.ts), so the rotation that ends every
      // session and stream of the old token does not cut this answer. Never the new token.
      const result = gateway.rotateToken();
      appendAudit(gateway.paths.auditLog, 'token rotated', { ...actorOf(d), ...result });
      return sendJson(res, 200, result);
    }
    case '/audit': {
      allowMethods(req, 'GET');
      requireAdmin(d, 'reading the audit log');
      const limit = parseAuditLimit(queryOf(req).get('limit'));
      return sendJson(res, 200, { entries: readAuditTail(gateway.paths.auditLog, limit) });
    }
    case '/settings': {
      const method = allowMethods(req, 'GET', 'POST');
      requireAdmin(d, method === 'GET' ? 'reading settings' : 'changing settings');
      const settings = need(deps.settings, 'settings');
      if (method === 'GET') return sendJson(res, 200, settings.read());
      const body = await readJsonBody(req);
      if (Array.isArray(body)) throw new PortholeError('BAD_REQUEST', 'expected a JSON object of settings');
      return sendJson(res, 200, settings.save(body, actorOf(d)));
    }
    case '/proxy/test': {
      allowMethods(req, 'POST');
      requireAdmin(d, 'testing a reverse proxy');
      const body = await readJsonBody(req);
      return sendJson(res, 200, await proxyTest(body['url'], publicUrlDefault(deps)));
    }
    case '/proxy/config': {
      allowMethods(req, 'GET');
      requireAdmin(d, 'reverse-proxy snippets');
      const l = need(deps.listening, 'listener')();
      return sendProxyConfig(res, queryOf(req), l, publicUrlDefault(deps));
    }
    case '/lan': {
      allowMethods(req, 'GET');
      const l = need(deps.listening, 'listener')();
      return sendJson(res, 200, lanReport(l.bind, l.port, l.scheme));
    }
  }
  throw new PortholeError('NOT_FOUND', `no porthole endpoint ${path}`);
}

function need<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new PortholeError('NOT_FOUND', `this gateway has no ${what} API (it is part of \`porthole serve\`)`);
  return v;
}

/** gateway.public_url as saved or configured, else what a trusted proxy last reported. */
function publicUrlDefault(deps: ConsoleApiDeps): () => string | undefined {
  return () => {
    let saved: unknown;
    try {
      saved = deps.settings?.read().settings['gateway.public_url'].value;
    } catch {
      // porthole.toml edited into something invalid since the start: the running value then.
    }
    return (typeof saved === 'string' ? saved : undefined) ?? deps.gateway.config.gateway.public_url ?? deps.gateway.detectedPublicUrl;
  };
}

/**
 * The registration secret as this caller may see it: admins get the masked form, read-scope
 * callers only whether one is set and where from (not even 4 of its characters).
 */
export function tunnelSecretFor(d: Routed, deps: ConsoleApiDeps): RegistrationSecretAccess | undefined {
  const s = deps.tunnelSecret;
  if (!s || d.auth.identity.scope === 'admin') return s;
  return { info: () => ({ ...s.info(), masked: null }), set: s.set };
}
