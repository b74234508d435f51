// The tunnel's API routes, one handler for both ways in: the Unix socket (`porthole
// tunnel …` on the desk) and the authenticated HTTP API (the same commands in remote
// mode). GET /_porthole/api/tunnel; POST …/tunnel/start {acceptRisk}, …/stop, …/release,
// …/secret {secret} (the registration secret: stored, never shown; src/gateway/api/tunnel-secret.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ERROR_CODES, PortholeError } from '../errors.js';
import type { TunnelManager } from '../tunnel/manager.js';
import type { RegistrationSecretAccess } from './api/tunnel-secret.js';
import { readJsonBody } from './json-body.js';
import { sendJson } from './respond.js';

export const TUNNEL_API_PREFIX = '/_porthole/api/tunnel';

/** Whether `path` (no query) is one of the tunnel routes' namespace. */
export function isTunnelApiPath(path: string): boolean {
  return path === TUNNEL_API_PREFIX || path.startsWith(`${TUNNEL_API_PREFIX}/`);
}

/** Answers a tunnel route; throws PortholeError (NOT_FOUND, METHOD_NOT_ALLOWED, CONSENT_REQUIRED, …). */
export async function handleTunnelApi(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  t: TunnelManager | undefined,
  secret?: RegistrationSecretAccess,
  actor?: { by: string; cred: string },
): Promise<void> {
  if (!t) throw new PortholeError('NOT_FOUND', 'this gateway has no tunnel');
  if (path === TUNNEL_API_PREFIX) {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new PortholeError('METHOD_NOT_ALLOWED', 'method not allowed');
    return sendJson(res, 200, secret ? { ...t.status(), secret: secret.info() } : t.status());
  }
  const action = path.slice(TUNNEL_API_PREFIX.length + 1);
  if (action !== 'start' && action !== 'stop' && action !== 'release' && !(action === 'secret' && secret)) {
    throw new PortholeError('NOT_FOUND', `no such endpoint ${path}`);
  }
  if (req.method !== 'POST') throw new PortholeError('METHOD_NOT_ALLOWED', 'method not allowed');
  const body = await readJsonBody(req);
  if (action === 'secret' && secret) {
    try {
      return sendJson(res, 200, { secret: secret.set(body['secret'], actor) });
    } catch (err) {
      // A bad secret is the caller's input: 400, not the CLI-class status-less error.
      if (err instanceof PortholeError && err.code === 'INVALID_ARGUMENT') throw new PortholeError('INVALID_ARGUMENT', err.message, { status: 400 });
      throw err;
    }
  }
  if (action === 'start') return sendJson(res, 200, asAnswer(() => t.start({ acceptRisk: body['acceptRisk'] === true })));
  if (action === 'stop') return sendJson(res, 200, await t.stop());
  return sendJson(res, 200, { released: await t.release() });
}

/**
 * The tunnel's settings are the operator's input (no relay, no certificate, a key that does
 * not match): an error without an HTTP status of its own is answered 400 with its message,
 * not as an internal error that would hide what to fix.
 */
function asAnswer<T>(run: () => T): T {
  try {
    return run();
  } catch (err) {
    if (err instanceof PortholeError && ERROR_CODES[err.code] === 0) throw new PortholeError(err.code, err.message, { status: 400, cause: err });
    throw err;
  }
}
