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
import { handleTailscaleApi, isTailscaleApiPath, type TailscaleApi } from './api/tailscale.js';
import type { RegistrationSecretAccess } from './api/tunnel-secret.js';

export interface ControlSocketContext {
  gateway: Gateway;
  /** Extra fields for status (URLs, listen address): filled by the caller. */
  describe(): Record<string, unknown>;
  /** The tunnel, when this gateway runs one (`porthole tunnel …`). */
  tunnel?: TunnelManager;
  /** Tailscale Serve/Funnel (`porthole tailscale …`, src/tailscale). */
  tailscale?: TailscaleApi;
  /** The tunnel's registration secret (GET …/tunnel shows it masked; POST …/tunnel/secret sets it). */
  tunnelSecret?: RegistrationSecretAccess;
  /** Do not keep the process alive for the socket alone (an embedding app's gateway). */
  unref?: boolean;
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
  if (ctx.unref) server.unref();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // The directory is 0700, so nobody else can reach the socket even before the chmod.
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  try {
    if (!path.startsWith('\\\\.\\pipe\\')) chmodSync(path, 0o600);
  } catch (err) {
    server.close();
    throw err;
  }
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
  // Pairing and devices (`porthole pair`, `porthole devices …`): the socket is class `cli`, full admin.
  const path = url.split('?')[0]!;
  if (path.startsWith('/_porthole/api/pair') || path.startsWith('/_porthole/api/devices') || path === '/_porthole/api/connect-urls') {
    const own = (await gateway.fullStatus())['url'];
    const caller = { credential: undefined, sub: 'cli', scope: 'admin' as const, ingress: 'cli', key: 'cli', own: typeof own === 'string' ? own : undefined };
    if (gateway.pairing.handle(req, res, path, caller)) return;
  }
  if (req.method === 'POST' && url === '/_porthole/api/codes') {
    const body = await readJson(req);
    const scope = body['scope'] === 'read' ? 'read' : 'admin';
    const { code, expiresAt } = gateway.issueCode(scope);
    return sendJson(res, 201, { code, scope, expiresAt: new Date(expiresAt).toISOString() });
  }
  if (url.startsWith('/_porthole/api/tunnel')) return tunnelRoute(req, res, url, ctx);
  // The same handler serves the authenticated HTTP API (src/gateway/api/).
  if (isTailscaleApiPath(url)) return handleTailscaleApi(req, res, url, ctx.tailscale);
  sendError(res, new PortholeError('NOT_FOUND', `no such endpoint ${url}`));
}

// The same handler serves the authenticated HTTP API (endpoints.ts) for remote mode.
function tunnelRoute(req: IncomingMessage, res: ServerResponse, url: string, ctx: ControlSocketContext): Promise<void> {
  return handleTunnelApi(req, res, url, ctx.tunnel, ctx.tunnelSecret, { by: 'cli', cred: 'socket' });
}
