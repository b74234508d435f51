// The gateway's dispatch of porthole's own routes (/_porthole/…, as the pipeline decided): the
// password login, the one-time-link refusal of trusted-proxy mode, pairing and devices, then
// the endpoints (endpoints.ts). A throw in any of them answers 500 and keeps the gateway up.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CodeStore } from '../auth/codes.js';
import { clearCookieHeader, readCookie } from '../auth/credentials.js';
import { LOGIN_PATH, type PasswordKeeper, type PasswordThrottle } from '../auth/password.js';
import type { BanTable } from '../auth/rate-limit.js';
import type { SessionStore } from '../auth/sessions.js';
import { PortholeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { PairingService } from '../pairing/service.js';
import { type EndpointContext, handlePortholeRoute } from './endpoints.js';
import type { SessionCookies } from './gateway-cookies.js';
import { handleLogin } from './login.js';
import type { Decision, PipelineState } from './pipeline.js';
import { sendError } from './respond.js';
import type { TokenKeeper } from './token-keeper.js';

type Routed = Extract<Decision, { kind: 'porthole' }>;

export interface PortholeRouteDeps {
  authMode: PipelineState['authMode'];
  /** Password mode only. */
  passwords: PasswordKeeper | undefined;
  passwordThrottle: PasswordThrottle;
  bans: BanTable;
  logger: Logger;
  pairing: PairingService;
  codes: CodeStore;
  token: TokenKeeper;
  sessions: SessionStore;
  pipeline: Pick<PipelineState, 'cookieName'>;
  cookies: SessionCookies;
  status: EndpointContext['status'];
  tunnel: NonNullable<EndpointContext['tunnel']>;
  api: NonNullable<EndpointContext['api']>;
}

export function routePorthole(req: IncomingMessage, res: ServerResponse, d: Routed, deps: PortholeRouteDeps): void {
  const { authMode, passwords, passwordThrottle, bans, logger, pairing, codes, token, sessions, pipeline } = deps;
  const { isSecure, startSession } = deps.cookies;
  // porthole's own routes: a bug in one (a throw) answers 500 and keeps the gateway up.
  try {
    if (d.path === LOGIN_PATH && passwords) {
      handleLogin(req, res, d, {
        passwords,
        throttle: passwordThrottle,
        bans,
        logger,
        startSession: (credential) => startSession(req, credential, 'admin'),
      });
      return;
    }
    if (authMode === 'trusted-proxy' && d.path === '/_porthole/api/codes') {
      sendError(res, codesRefused());
      return;
    }
    // Pairing and devices (src/pairing/service.ts): pair, pair/exchange, devices, connect-urls.
    if (pairing.handle(req, res, d.path, pairingCaller(req, d, startSession))) return;
    handlePortholeRoute(req, res, d, {
      status: deps.status,
      tunnel: deps.tunnel,
      api: deps.api,
      startSession: (credential, scope) => startSession(req, credential, scope),
      issueCode: (scope) => codes.issue({ credential: d.auth.credential ?? token.credential(), scope }),
      logout: () => {
        const cookie = pipeline.cookieName(isSecure(req));
        const sid = readCookie(req.headers, cookie);
        if (sid) sessions.delete(sid);
        return clearCookieHeader(cookie);
      },
    });
  } catch (err) {
    logger.log('error', 'porthole route failed', { path: d.path, error: (err as Error).message });
    if (!res.headersSent) sendError(res, new PortholeError('INTERNAL', 'internal error'));
    else res.destroy();
  }
}

/** Who calls the pairing API, as the pipeline decided (src/pairing/service.ts). */
function pairingCaller(req: IncomingMessage, d: Routed, startSession: SessionCookies['startSession']) {
  return {
    credential: d.auth.credential,
    sub: d.auth.identity.sub,
    scope: d.auth.identity.scope,
    ingress: d.ingress.class,
    key: d.ingress.key,
    own: d.own,
    startSession: (credential: string, scope: 'admin' | 'read') => startSession(req, credential, scope),
  };
}

export function codesRefused(): PortholeError {
  return new PortholeError(
    'CREDENTIAL_NOT_ACCEPTED',
    'one-time links are not available in trusted-proxy mode: visitors sign in through the proxy',
  );
}
