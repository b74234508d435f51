// Tailscale Serve/Funnel routes, one handler for both ways in — the Unix socket (`porthole
// tailscale …` on the desk) and the authenticated HTTP API (the console, remote mode):
// GET /_porthole/api/tailscale (the overview); POST …/serve, …/funnel, …/reset.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PortholeError } from '../../errors.js';
import { readJsonBody } from '../json-body.js';
import { sendJson } from '../respond.js';

export const TAILSCALE_API_PREFIX = '/_porthole/api/tailscale';

/** What a gateway's Tailscale exposure offers the API (built by `porthole serve`). */
export interface TailscaleApi {
  overview(): Promise<unknown>;
  start(mode: 'serve' | 'funnel'): Promise<unknown>;
  reset(): Promise<unknown>;
}

export function isTailscaleApiPath(path: string): boolean {
  return path === TAILSCALE_API_PREFIX || path.startsWith(`${TAILSCALE_API_PREFIX}/`);
}

/** Whether the route changes something (and so needs the admin scope over HTTP). */
export function isTailscaleApiWrite(req: IncomingMessage): boolean {
  return req.method !== 'GET' && req.method !== 'HEAD';
}

/** Answers a Tailscale route; throws PortholeError (NOT_FOUND, METHOD_NOT_ALLOWED, TAILSCALE_*, EXPOSURE_CONFLICT). */
export async function handleTailscaleApi(req: IncomingMessage, res: ServerResponse, path: string, ts: TailscaleApi | undefined): Promise<void> {
  if (!ts) throw new PortholeError('NOT_FOUND', 'this gateway has no Tailscale exposure');
  if (path === TAILSCALE_API_PREFIX) {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new PortholeError('METHOD_NOT_ALLOWED', 'method not allowed');
    return sendJson(res, 200, await ts.overview());
  }
  const action = path.slice(TAILSCALE_API_PREFIX.length + 1);
  if (action !== 'serve' && action !== 'funnel' && action !== 'reset') throw new PortholeError('NOT_FOUND', `no such endpoint ${path}`);
  if (req.method !== 'POST') throw new PortholeError('METHOD_NOT_ALLOWED', 'method not allowed');
  await readJsonBody(req);
  if (action === 'reset') return sendJson(res, 200, { ...((await ts.reset()) as object), ...((await ts.overview()) as object) });
  await ts.start(action);
  return sendJson(res, 200, await ts.overview());
}
