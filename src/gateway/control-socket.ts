// The gateway's Unix socket, `$PORTHOLE_HOME/run/gateway.sock` (DESIGN §2, class `cli`):
// the CLI on this host reaches the running gateway here. The socket's directory is 0700
// and the socket 0600, so its file permissions are the credential.
import { existsSync, chmodSync, unlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { PortholeError, isPortholeError } from '../errors.js';
import { ensureSocketDir } from '../secrets/paths.js';
import type { TunnelManager } from '../tunnel/manager.js';
import type { Gateway } from './gateway.js';
import { readJsonBody as readJson } from './json-body.js';
import { sendError, sendJson } from './respond.js';
import { handleTunnelApi } from './tunnel-api.js';

export interface ControlSocketContext {
  gateway: Gateway;
  /** Extra fields for status (URLs, listen address): filled by the caller. */
  describe(): Record<string, unknown>;
  /** The tunnel, when this gateway runs one (`porthole tunnel …`). */
  tunnel?: TunnelManager;
  /** Tailscale Serve/Funnel (`porthole tailscale …`, src/tailscale). */
  tailscale?: {
    overview(): Promise<unknown>;
    start(mode: 'serve' | 'funnel'): Promise<unknown>;
    reset(): Promise<unknown>;
  };
}

function probe(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function listenControlSocket(ctx: ControlSocketContext): Promise<{ path: string; close(): Promise<void> }> {
  const { paths } = ctx.gateway;
  const path = paths.socketPath;
  ensureSocketDir(paths);
  if (existsSync(path)) {
    if (await probe(path)) {
      throw new PortholeError(
        'GATEWAY_ALREADY_RUNNING',
        `a gateway for ${paths.home} is already running (socket ${path}); stop it first, or use another PORTHOLE_HOME`,
      );
    }
    unlinkSync(path); // stale: left by a gateway that crashed
  }
  const server: Server = createServer((req, res) => {
    route(req, res, ctx).catch((err) => {
      sendError(res, isPortholeError(err) ? err : new PortholeError('INTERNAL', 'internal error', { expose: false }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // The directory is 0700, so nobody else can reach the socket even before the chmod.
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  if (!path.startsWith('\\\\.\\pipe\\')) chmodSync(path, 0o600);
  return {
    path,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function route(req: IncomingMessage, res: ServerResponse, ctx: ControlSocketContext): Promise<void> {
  const { gateway } = ctx;
  const url = req.url ?? '/';
  if (req.method === 'GET' && url === '/_porthole/api/status') {
    return sendJson(res, 200, { ...(await gateway.fullStatus()), ...ctx.describe() });
  }
  if (req.method === 'POST' && url === '/_porthole/api/token/rotate') {
    await readJson(req);
    return sendJson(res, 200, gateway.rotateToken());
  }
  // `porthole password set` stored a new hash: the gateway re-reads it and ends the old password's sessions.
  if (req.method === 'POST' && url === '/_porthole/api/password/changed') {
    await readJson(req);
    return sendJson(res, 200, gateway.passwordChanged());
  }
  if (req.method === 'POST' && url === '/_porthole/api/codes') {
    const body = await readJson(req);
    const scope = body['scope'] === 'read' ? 'read' : 'admin';
    const { code, expiresAt } = gateway.issueCode(scope);
    return sendJson(res, 201, { code, scope, expiresAt: new Date(expiresAt).toISOString() });
  }
  if (url.startsWith('/_porthole/api/tunnel')) return tunnelRoute(req, res, url, ctx);
  if (url === '/_porthole/api/tailscale' || url.startsWith('/_porthole/api/tailscale/')) {
    const ts = ctx.tailscale;
    if (!ts) throw new PortholeError('NOT_FOUND', 'this gateway has no Tailscale exposure');
    if (req.method === 'GET' && url === '/_porthole/api/tailscale') return sendJson(res, 200, await ts.overview());
    if (req.method !== 'POST') throw new PortholeError('METHOD_NOT_ALLOWED', 'method not allowed');
    await readJson(req);
    if (url === '/_porthole/api/tailscale/serve' || url === '/_porthole/api/tailscale/funnel') {
      await ts.start(url.endsWith('/funnel') ? 'funnel' : 'serve');
      return sendJson(res, 200, await ts.overview());
    }
    if (url === '/_porthole/api/tailscale/reset') return sendJson(res, 200, { ...((await ts.reset()) as object), ...((await ts.overview()) as object) });
  }
  sendError(res, new PortholeError('NOT_FOUND', `no such endpoint ${url}`));
}

// The same handler serves the authenticated HTTP API (endpoints.ts) for remote mode.
function tunnelRoute(req: IncomingMessage, res: ServerResponse, url: string, ctx: ControlSocketContext): Promise<void> {
  return handleTunnelApi(req, res, url, ctx.tunnel);
}
