// createGateway(): porthole in front of an app — an in-process handler (embedding) or a
// target URL (sidecar). Returns request and upgrade handlers an app mounts in its own
// node:http server; `porthole serve` mounts them in one of its own (listen.ts).
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { createCodeStore } from '../auth/codes.js';
import { createHostPolicy } from '../auth/host.js';
import { createCidrMatcher, normalizeAddress } from '../auth/ip.js';
import { createOriginPolicy } from '../auth/origin.js';
import { createBanTable } from '../auth/rate-limit.js';
import { createSessionStore } from '../auth/sessions.js';
import { loadConfig } from '../config/load.js';
import type { ConfigFlags } from '../config/types.js';
import type { PortholeConfig } from '../config/schema.js';
import { PortholeError } from '../errors.js';
import { type Logger, debugLogger } from '../log.js';
import { resolveHome, statePaths, type StatePaths } from '../secrets/paths.js';
import { openSecretStore, resolveToken, type ResolvedToken, type SecretStore } from '../secrets/store.js';
import { validateSuppliedToken } from '../secrets/token.js';
import { handlePortholeRoute } from './endpoints.js';
import { forwardHeaders, syncRawHeaders } from './forward.js';
import { createIdentitySigner, type Identity, verifyIdentity } from './identity.js';
import { type Decision, decide, type PipelineState } from './pipeline.js';
import { createProxy, type Proxy as TargetProxy } from './proxy.js';
import { sendError, writeSocketError } from './respond.js';
import { parseTarget } from './target.js';
import { createTokenKeeper, type TokenKeeper } from './token-keeper.js';
import { createConnectionTracker, type ConnectionTracker } from './tracker.js';

export interface GatewayOptions {
  /** State directory. An embedding app must name its state: `stateDir` or `appName`. */
  stateDir?: string;
  /** App name mapped to its own per-user directory (`~/.config/<app>/porthole`). */
  appName?: string;
  /** The app, in-process. Exactly one of `app` and `target`. */
  app?: RequestListener;
  /** Authenticated upgrade requests for the in-process app (e.g. a ws server's handleUpgrade). Without it they get 404. */
  onUpgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** The app, as a URL (sidecar): "3000", "http://127.0.0.1:3000", "unix:/path.sock". */
  target?: string;
  /**
   * Resolved settings (the CLI passes loadConfig's result). Default: `porthole.toml` in
   * the state directory, overridden by `settings`, defaults for the rest.
   */
  config?: PortholeConfig;
  /** Overrides for an embedding app, named like the CLI flags (host, allowedOrigins, …). */
  settings?: ConfigFlags;
  /** A fixed token (`ph_` + ≥ 32 chars). Default: the state directory's secret store, created on first use. */
  token?: string;
  /** Token precedence inputs for the CLI (flag > env > config file > store). */
  tokenFlags?: { authToken?: string; authTokenFile?: string };
  /** Environment for PORTHOLE_AUTH_TOKEN. Default: none for embedding apps (they pass `token`). */
  env?: Record<string, string | undefined>;
  /** Disable authentication entirely. The CLI requires --insecure-no-auth and warns. */
  insecureNoAuth?: boolean;
  /** Default: util.debuglog('porthole'). */
  logger?: Logger;
}

export interface GatewayStatus {
  id: string;
  version: string;
  auth: { mode: 'token' | 'none'; loopbackExempt: boolean; tokenSource: string };
  target: string | undefined;
  sessions: number;
  openStreams: number;
}

export interface RotateResult {
  /** Sessions ended and long-lived responses closed. */
  sessionsEnded: number;
  connectionsClosed: number;
}

export interface Gateway {
  /** Stable per state directory; names the session cookie. */
  readonly id: string;
  readonly paths: StatePaths;
  readonly config: PortholeConfig;
  /** The token as resolved at start (`generated` true when issued now). */
  readonly tokenInfo: Pick<ResolvedToken, 'source' | 'generated' | 'describe'>;
  handleRequest(req: IncomingMessage, res: ServerResponse): void;
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** A one-time code (`phc_…`, single use, 5 minutes) for a browser's first load. */
  issueCode(scope?: 'admin' | 'read'): { code: string; expiresAt: number };
  /**
   * The identity porthole attached to a request it let through (verified HMAC), for an
   * in-process app or one that received the header. Undefined when absent or forged.
   */
  identityOf(req: IncomingMessage | string | undefined): (Identity & { ts: number }) | undefined;
  /** Rotates the master token: the old one is refused at once, its sessions and streams end. */
  rotateToken(): RotateResult;
  /** The master token, for the embedding app's own UI. No endpoint ever returns it. */
  revealToken(): string;
  /** Marks a socket as carrying a tunnel visitor (used by the tunnel client). */
  markTunnelSocket(socket: Duplex, visitor: string): void;
  /** Names that appear at run time (tunnel URL, tailscale name) for the Host allowlist. */
  addHostName(name: string): void;
  status(): GatewayStatus;
  close(): Promise<void>;
}

export const VERSION: string = '0.1.0';

function resolveOwnHome(options: GatewayOptions): string {
  if ((options.stateDir === undefined) === (options.appName === undefined)) {
    throw new PortholeError(
      'INVALID_ARGUMENT',
      'createGateway needs exactly one of stateDir and appName: two apps must never share porthole state (and its token) by accident',
    );
  }
  // The per-OS base directory still follows XDG_CONFIG_HOME / APPDATA; PORTHOLE_HOME is
  // deliberately ignored: it names the sidecar's state, not this app's.
  const { XDG_CONFIG_HOME, APPDATA } = process.env;
  return resolveHome({ home: options.stateDir, appName: options.appName, env: { XDG_CONFIG_HOME, APPDATA } });
}

export function createGateway(options: GatewayOptions): Gateway {
  if ((options.app === undefined) === (options.target === undefined)) {
    throw new PortholeError('INVALID_ARGUMENT', 'createGateway needs exactly one of app and target');
  }
  const logger = options.logger ?? debugLogger;
  const paths = statePaths(resolveOwnHome(options));
  const config = options.config ?? loadConfig({ home: paths.home, env: {}, flags: options.settings ?? {} }).config;
  const id = createHash('sha256').update(paths.home).digest('hex').slice(0, 8);
  const authMode: 'token' | 'none' = options.insecureNoAuth ? 'none' : 'token';
  if (config.auth.mode !== 'token' && authMode !== 'none') {
    throw new PortholeError('INVALID_ARGUMENT', `auth mode "${config.auth.mode}" is not available yet; use "token"`);
  }

  const store: SecretStore = openSecretStore(paths);
  const resolved: ResolvedToken =
    options.token !== undefined
      ? { token: validateSuppliedToken(options.token, 'createGateway({ token })'), source: 'flag', generated: false, describe: 'the embedding app' }
      : resolveToken({
          paths,
          store,
          flags: options.tokenFlags,
          env: options.env ?? {},
          configTokenFile: config.auth.token_file,
          create: true,
        });
  const token: TokenKeeper = createTokenKeeper(resolved, paths, store);
  const identityKey = loadIdentityKey(store);

  const dynamicNames = new Set<string>();
  const bind = config.gateway.host;
  const wildcard = bind === '0.0.0.0' || bind === '::' || bind === '';
  const hostNames = [bind, ...config.gateway.allowed_origins.map(hostOfOrigin)];
  if (config.gateway.public_url) hostNames.push(new URL(config.gateway.public_url).hostname);
  const originEntries = [...config.gateway.allowed_origins];
  if (config.gateway.public_url) originEntries.push(new URL(config.gateway.public_url).origin);

  const sessions = createSessionStore({
    file: paths.sessionsFile,
    idleMs: config.auth.session_idle * 1000,
    maxMs: config.auth.session_max * 1000,
  });
  // Sessions made by a token that is no longer current (changed while we were stopped) end now.
  sessions.revokeWhere((c) => c === token.credential());
  const codes = createCodeStore();
  const bans = createBanTable({
    maxFailures: config.auth.rate_limit.max_failures,
    windowMs: config.auth.rate_limit.window * 1000,
    banMs: config.auth.rate_limit.ban * 1000,
  });
  const tracker: ConnectionTracker = createConnectionTracker();
  const tunnelSockets = new WeakMap<object, string>();

  const pipeline: PipelineState = {
    hostPolicy: createHostPolicy({ names: hostNames.filter(Boolean) as string[], dynamicNames: () => dynamicNames }),
    originPolicy: createOriginPolicy(originEntries),
    isTrustedProxy: createCidrMatcher(config.gateway.trusted_proxies),
    bindHost: wildcard ? undefined : (normalizeAddress(bind) ?? bind.toLowerCase()),
    authMode,
    loopbackExempt: config.auth.loopback_exempt,
    publicPaths: config.auth.public_paths,
    bans,
    sessions,
    codes,
    token,
    cookieName: (secure) => `${secure ? '__Host-' : ''}porthole_session_${id}`,
    isCredentialValid: () => false,
    tunnelVisitor: (req) => tunnelSockets.get(req.socket),
  };

  const target = options.target !== undefined ? parseTarget(options.target) : undefined;
  const proxy: TargetProxy | undefined = target
    ? createProxy({ target, timeoutMs: Math.max(1, Math.round(config.gateway.target_timeout * 1000)), logger })
    : undefined;
  const cookieNames = [pipeline.cookieName(false), pipeline.cookieName(true)];

  const identityHeader = createIdentitySigner(identityKey);

  function answer(req: IncomingMessage, res: ServerResponse, d: Exclude<Decision, { kind: 'forward' | 'porthole' }>): void {
    switch (d.kind) {
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

  function isSecure(req: IncomingMessage): boolean {
    return Boolean((req.socket as { encrypted?: boolean }).encrypted) || tunnelSockets.has(req.socket);
  }

  const gateway: Gateway = {
    id,
    paths,
    config,
    tokenInfo: { source: resolved.source, generated: resolved.generated, describe: resolved.describe },
    handleRequest(req, res) {
      let d: Decision;
      try {
        d = decide(req, false, pipeline);
      } catch (err) {
        logger.log('error', 'pipeline failed', { error: (err as Error).message });
        sendError(res, new PortholeError('INTERNAL', 'internal error'));
        return;
      }
      if (d.kind !== 'forward' && d.kind !== 'porthole') {
        answer(req, res, d);
        return;
      }
      if (d.auth.credential !== undefined) tracker.add(d.auth.credential, res);
      if (d.kind === 'porthole') {
        handlePortholeRoute(req, res, d, {
          status: () => gateway.status(),
          issueCode: (scope) => codes.issue({ credential: d.auth.credential ?? token.credential(), scope }),
          logout: () => {
            const cookie = pipeline.cookieName(isSecure(req));
            const sid = readSessionId(req, cookie);
            if (sid) sessions.delete(sid);
            return clearCookieHeader(cookie);
          },
        });
        return;
      }
      const fwd = forwardHeaders(req, d, cookieNames, identityHeader(d.auth.identity), config.auth.trusted_proxy.user_header);
      if (d.auth.identity.scope !== 'none' && req.headers.origin && pipeline.originPolicy.isAllowed(req.headers.origin)) {
        res.setHeader('access-control-allow-origin', req.headers.origin);
        res.setHeader('access-control-allow-credentials', 'true');
        res.setHeader('vary', 'Origin');
      }
      if (proxy) {
        proxy.web(req, res, fwd);
      } else {
        req.url = fwd.path;
        syncRawHeaders(req);
        options.app!(req, res);
      }
    },
    handleUpgrade(req, socket, head) {
      socket.on('error', () => socket.destroy());
      let d: Decision;
      try {
        d = decide(req, true, pipeline);
      } catch {
        writeSocketError(socket, new PortholeError('INTERNAL', 'internal error'));
        return;
      }
      if (d.kind === 'error') {
        writeSocketError(socket, d.err);
        return;
      }
      if (d.kind !== 'forward') {
        writeSocketError(socket, new PortholeError('NOT_FOUND', 'no such endpoint'));
        return;
      }
      if (d.auth.credential !== undefined) tracker.add(d.auth.credential, socket);
      const fwd = forwardHeaders(req, d, cookieNames, identityHeader(d.auth.identity), config.auth.trusted_proxy.user_header);
      if (proxy) {
        proxy.upgrade(req, socket, head, fwd);
      } else if (options.onUpgrade) {
        req.url = fwd.path;
        syncRawHeaders(req);
        options.onUpgrade(req, socket, head);
      } else {
        writeSocketError(socket, new PortholeError('NOT_FOUND', 'this app does not accept upgrades'));
      }
    },
    issueCode(scope = 'admin') {
      return codes.issue({ credential: token.credential(), scope });
    },
    rotateToken() {
      const { oldCredential } = token.rotate();
      const sessionsEnded = sessions.revokeCredential(oldCredential);
      codes.revokeCredential(oldCredential);
      const connectionsClosed = tracker.closeCredential(oldCredential);
      logger.log('info', 'token rotated', { sessionsEnded, connectionsClosed });
      return { sessionsEnded, connectionsClosed };
    },
    revealToken: () => token.reveal(),
    identityOf(req) {
      const value = typeof req === 'object' ? req.headers['x-porthole-identity'] : req;
      return verifyIdentity(typeof value === 'string' ? value : undefined, identityKey);
    },
    markTunnelSocket(socket, visitor) {
      tunnelSockets.set(socket, visitor);
    },
    addHostName(name) {
      dynamicNames.add(name.toLowerCase());
    },
    status() {
      return {
        id,
        version: VERSION,
        auth: { mode: authMode, loopbackExempt: config.auth.loopback_exempt, tokenSource: token.describe },
        target: options.target,
        sessions: sessions.size,
        openStreams: tracker.count(),
      };
    },
    async close() {
      sessions.flush();
      proxy?.close();
    },
  };
  return gateway;
}

function hostOfOrigin(entry: string): string {
  if (!entry.includes('://')) return entry;
  try {
    return new URL(entry).hostname;
  } catch {
    return '';
  }
}

function loadIdentityKey(store: SecretStore): Buffer {
  const existing = store.get('identity-key');
  if (existing) return Buffer.from(existing, 'base64url');
  const key = randomBytes(32);
  store.set('identity-key', key.toString('base64url'));
  return key;
}

function sessionCookieHeader(name: string, id: string, maxAge: number, secure: boolean): string {
  return `${name}=${id}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;
}

function clearCookieHeader(name: string): string {
  const secure = name.startsWith('__Host-') ? '; Secure' : '';
  return `${name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax${secure}`;
}

function readSessionId(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const [k, v] = part.split('=', 2);
    if (k?.trim() === name) return v?.trim();
  }
  return undefined;
}
