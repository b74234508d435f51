// Shared pieces of the console API handlers (src/gateway/api/): method and scope checks,
// the query string, and turning a CLI-class error (no HTTP status of its own) into a 400.
import type { IncomingMessage } from 'node:http';
import { ERROR_CODES, isPortholeError, PortholeError } from '../../errors.js';
import type { Decision } from '../pipeline.js';

export type Routed = Extract<Decision, { kind: 'porthole' }>;

export const API_PREFIX = '/_porthole/api';

/** Throws METHOD_NOT_ALLOWED unless the request uses one of `methods` (GET implies HEAD). */
export function allowMethods(req: IncomingMessage, ...methods: ('GET' | 'POST')[]): 'GET' | 'POST' {
  const m = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
  if (!(methods as string[]).includes(m)) throw new PortholeError('METHOD_NOT_ALLOWED', `method not allowed (allowed: ${methods.join(', ')})`);
  return m as 'GET' | 'POST';
}

/** Admin-only routes check this themselves: the pipeline blocks only unsafe methods for read scope. */
export function requireAdmin(d: Routed, what: string): void {
  if (d.auth.identity.scope !== 'admin') throw new PortholeError('SCOPE_DENIED', `${what} needs the admin scope`);
}

export function queryOf(req: IncomingMessage): URLSearchParams {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
}

/**
 * Errors the CLI reports with an exit code (INVALID_ARGUMENT, CONFIG_INVALID: no HTTP status
 * in ERROR_CODES) answer 400 here, with their message: they describe the caller's input.
 */
export function asHttpError(err: unknown): PortholeError {
  if (!isPortholeError(err)) return new PortholeError('INTERNAL', 'internal error', { expose: false });
  if (ERROR_CODES[err.code] === 0 && err.status === 500) {
    return new PortholeError(err.code, err.message, { status: 400, details: err.details, cause: err });
  }
  return err;
}

/** The actor recorded in the audit log: who, by which credential (never the credential). */
export function actorOf(d: Routed): { by: string; cred: string } {
  return { by: d.auth.identity.sub, cred: d.auth.identity.cred };
}
