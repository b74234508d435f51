// Answers for what the pipeline settles itself: a refusal (clearing a stale session cookie), a
// CORS preflight, a sign-in redirect (setting the new session's cookie), or a plain request to
// the control plane. None of these reaches the app or porthole's routes.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { clearCookieHeader, sessionCookieHeader } from '../auth/credentials.js';
import { PortholeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Decision, PipelineState } from './pipeline.js';
import { sendError } from './respond.js';

export interface AnswerDeps {
  pipeline: Pick<PipelineState, 'cookieName'>;
  isSecure(req: IncomingMessage): boolean;
  logger: Logger;
}

export function answerDecision(
  req: IncomingMessage,
  res: ServerResponse,
  d: Exclude<Decision, { kind: 'forward' | 'porthole' }>,
  deps: AnswerDeps,
): void {
  const { pipeline, isSecure, logger } = deps;
  switch (d.kind) {
    case 'control': {
      // Decided for upgrades only; a plain request never gets here.
      sendError(res, new PortholeError('NOT_FOUND', 'the control plane needs a WebSocket upgrade'));
      return;
    }
    case 'error': {
      const extra: Record<string, string> = {};
      if (d.clearCookie) extra['set-cookie'] = clearCookieHeader(pipeline.cookieName(isSecure(req)));
      logger.log('info', 'refused', { code: d.err.code, method: req.method, peer: req.socket.remoteAddress });
      sendError(res, d.err, extra);
      return;
    }
    case 'preflight': {
      res.writeHead(204, {
        'access-control-allow-origin': d.origin,
        'access-control-allow-credentials': 'true',
        'access-control-allow-methods': 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS',
        'access-control-allow-headers': String(req.headers['access-control-request-headers'] ?? 'authorization, content-type'),
        'access-control-max-age': '600',
        vary: 'Origin',
      });
      res.end();
      return;
    }
    case 'redirect': {
      const headers: Record<string, string> = { location: d.location, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' };
      if (d.sessionId) headers['set-cookie'] = sessionCookieHeader(pipeline.cookieName(isSecure(req)), d.sessionId, d.maxAgeSeconds, isSecure(req));
      res.writeHead(303, headers);
      res.end();
      return;
    }
  }
}
