// createGateway(): porthole in front of an app — an in-process handler (embedding) or a
// target URL (sidecar). Returns request and upgrade handlers an app mounts in its own
// node:http server; `porthole serve` mounts them in one of its own (listen.ts).
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TailscalePeer } from '../auth/classify.js';
import { createCodeStore } from '../auth/codes.js';
import { clearCookieHeader, readCookie, sessionCookieHeader } from '../auth/credentials.js';
import { createHostPolicy } from '../auth/host.js';
import { createCidrMatcher, isLoopbackAddress, normalizeAddress } from '../auth/ip.js';
import { createOriginPolicy } from '../auth/origin.js';
import { LOGIN_PATH, type PasswordKeeper, createPasswordKeeper, createPasswordThrottle } from '../auth/password.js';
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
import type { TunnelManager } from '../tunnel/manager.js';
import { handlePortholeRoute } from './endpoints.js';
import type { ConsoleApiExtras } from './api/index.js';
import { forwardHeaders, syncRawHeaders } from './forward.js';
import { createIdentitySigner, type Identity, verifyIdentity } from './identity.js';
import { handleLogin } from './login.js';
import { type Decision, decide, type PipelineState } from './pipeline.js';
import { createProxy, type Proxy as TargetProxy } from './proxy.js';
import { sendError, writeSocketError } from './respond.js';
import { parseTarget } from './target.js';
import { createTokenKeeper, type TokenKeeper } from './token-keeper.js';
import { createConnectionTracker, type ConnectionTracker } from './tracker.js';
import { detectPublicUrl } from '../proxy/detect.js';
import { registerBuiltins } from '../control/builtins.js';
import { type ControlOptions, type ControlPlane, createControlPlane } from '../control/server.js';
import { deviceProofMessage } from '../control/proof.js';
import { createDeviceStore, type DeviceCheck } from '../pairing/devices.js';
import { createPairingService, PAIRING_EVENTS, type PairingService } from '../pairing/service.js';

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
  /** Control plane (/_porthole/ws) limits and timings; docs/control-plane.md lists the defaults. */
  control?: Omit<ControlOptions, 'serverId' | 'version' | 'token' | 'bans' | 'tracker' | 'isCredentialValid' | 'logger'>;
}

export interface GatewayStatus {
  id: string;
  version: string;
  auth: { mode: PipelineState['authMode']; loopbackExempt: boolean; tokenSource: string };
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
  /** The control plane on /_porthole/ws: `method(name, handler)`, `publish(event, payload)`. */
  readonly control: Pick<ControlPlane, 'method' | 'event' | 'publish' | 'subscribe' | 'size'>;
  /** Pairing codes and paired devices (docs/pairing.md); the Unix socket serves it to the CLI. */
  readonly pairing: PairingService;
  handleRequest(req: IncomingMessage, res: ServerResponse): void;
  /**
   * For the server's 'checkContinue' event (`Expect: 100-continue`): like handleRequest, but
   * the `100 Continue` goes out only once the request is authorised, so an unauthenticated
   * client cannot make the gateway read (and discard) its upload. listenGateway wires it; an
   * app serving the gateway from its own server should too (`server.on('checkContinue', …)`).
   */
  handleCheckContinue(req: IncomingMessage, res: ServerResponse): void;
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
  /**
   * Re-reads the password hash after `porthole password set`: sessions a password login made
   * with the old password end, and so do the long-lived responses they authenticated.
   */
  passwordChanged(): RotateResult;
  /** The master token, for the embedding app's own UI. No endpoint ever returns it. */
  revealToken(): string;
  /** Marks a socket as carrying a tunnel visitor (used by the tunnel client). */
  markTunnelSocket(socket: Duplex, visitor: string): void;
  /** Marks a request as verified by porthole's Tailscale listener (src/tailscale/listener.ts), before handleRequest/handleUpgrade. */
  markTailscaleRequest(req: IncomingMessage, peer: TailscalePeer): void;
  /** Names that appear at run time (tunnel URL, tailscale name) for the Host allowlist. */
  addHostName(name: string): void;
  /**
   * The public URL a trusted reverse proxy last reported (X-Forwarded-Proto/-Host) on an
   * authenticated request, validated like gateway.public_url: a default to offer, never applied.
   */
  readonly detectedPublicUrl: string | undefined;
  /** When a request last came through a trusted proxy (ms since epoch), for the overview's health. */
  readonly proxySeenAt: number | undefined;
  status(): GatewayStatus;
  /**
   * Adds fields to the status the API and `porthole status` show (the sidecar adds its
   * listener and the remote-access overview). Later calls add to earlier ones.
   */
  extendStatus(extra: () => Record<string, unknown> | Promise<Record<string, unknown>>): void;
  /** status() with every extension applied. */
  fullStatus(): Promise<Record<string, unknown>>;
  /** The sidecar's tunnel: the HTTP API then serves /_porthole/api/tunnel… (remote `porthole tunnel …`). */
  attachTunnel(tunnel: TunnelManager): void;
  /** What `porthole serve` adds to the console API (settings, Tailscale, LAN, proxy, tunnel secret; src/gateway/api/). */
  attachConsoleApi(extras: ConsoleApiExtras): void;
  /**
   * Whether a network peer may connect at all ([gateway] allow_cidrs): loopback and non-IP
   * peers (Unix sockets) always may. listenGateway drops others on accept; an app serving
   * the gateway from its own server gets the same check in handleRequest/handleUpgrade.
   */
  acceptsPeer(address: string | undefined): boolean;
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
  const authMode: PipelineState['authMode'] = options.insecureNoAuth ? 'none' : config.auth.mode;
  if (authMode === 'trusted-proxy') assertTrustedProxySetup(config, options);

  const store: SecretStore = openSecretStore(paths);
  // Password mode refuses to start without a password (PASSWORD_NOT_SET says how to set one).
  const passwords: PasswordKeeper | undefined = authMode === 'password' ? createPasswordKeeper(store, true) : undefined;
  const passwordThrottle = createPasswordThrottle();
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
  let detectedPublicUrl: string | undefined;
  let proxySeenAt: number | undefined;
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
  // Sessions made by a token or password that is no longer current (changed while we were
  // stopped, or the auth mode changed) end now.
  // Paired devices (docs/pairing.md): loaded before the sweep below, so their sessions survive a restart.
  const devices = createDeviceStore({ file: paths.devicesFile });
  const isCredentialValid = (c: string): boolean =>
    (passwords !== undefined && c === passwords.credential()) || devices.isCredentialValid(c);
  sessions.revokeWhere((c) => c === token.credential() || isCredentialValid(c));
  const codes = createCodeStore();
  const bans = createBanTable({
    maxFailures: config.auth.rate_limit.max_failures,
    windowMs: config.auth.rate_limit.window * 1000,
    banMs: config.auth.rate_limit.ban * 1000,
  });
  const tracker: ConnectionTracker = createConnectionTracker();
  // A session's end (logout, expiry, revocation, eviction) closes the streams, sockets and
  // control sessions its cookie opened. Expiry is otherwise only noticed at the next lookup:
  // a sweep finds sessions that expired while only a stream was open (docs/security.md).
  sessions.onEnd((key) => tracker.closeSession(key));
  const sessionSweep = setInterval(() => sessions.sweep(), sessionSweepMs(config.auth.session_idle, config.auth.session_max));
  sessionSweep.unref();
  const tunnelSockets = new WeakMap<object, string>();
  /** Requests that arrived through 'checkContinue': their 100 is owed once they are authorised. */
  const continueAfterAuth = new WeakSet<IncomingMessage>();
  // Per request, not per socket: tailscaled reuses one backend connection for many clients.
  const tailscaleRequests = new WeakMap<IncomingMessage, TailscalePeer>();
  const allowedPeer = createCidrMatcher(config.gateway.allow_cidrs);
  const restrictPeers = config.gateway.allow_cidrs.length > 0;
  const statusExtensions: (() => Record<string, unknown> | Promise<Record<string, unknown>>)[] = [];
  let tunnelManager: TunnelManager | undefined;
  let consoleApi: ConsoleApiExtras = {};
  const socketAllowed = (socket: Duplex): boolean =>
    !restrictPeers || tunnelSockets.has(socket) || gateway.acceptsPeer((socket as { remoteAddress?: string }).remoteAddress);

  const pipeline: PipelineState = {
    hostPolicy: createHostPolicy({ names: hostNames.filter(Boolean) as string[], dynamicNames: () => dynamicNames }),
    originPolicy: createOriginPolicy(originEntries),
    isTrustedProxy: createCidrMatcher(config.gateway.trusted_proxies),
    bindHost: wildcard ? undefined : (normalizeAddress(bind) ?? bind.toLowerCase()),
    authMode,
    trustedProxy: {
      userHeader: config.auth.trusted_proxy.user_header,
      requiredHeaders: config.auth.trusted_proxy.required_headers,
      allowUsers: config.auth.trusted_proxy.allow_users,
      useXRealIp: config.auth.trusted_proxy.use_x_real_ip,
    },
    loopbackExempt: config.auth.loopback_exempt,
    publicPaths: config.auth.public_paths,
    bans,
    sessions,
    codes,
    token,
    cookieName: (secure) => `${secure ? '__Host-' : ''}porthole_session_${id}`,
    isCredentialValid,
    tunnelVisitor: (req) => tunnelSockets.get(req.socket),
    tailscalePeer: (req) => tailscaleRequests.get(req),
  };

  const target = options.target !== undefined ? parseTarget(options.target) : undefined;
  const proxy: TargetProxy | undefined = target
    ? createProxy({ target, timeoutMs: Math.max(1, Math.round(config.gateway.target_timeout * 1000)), logger })
    : undefined;
  const cookieNames = [pipeline.cookieName(false), pipeline.cookieName(true)];

  const identityHeader = createIdentitySigner(identityKey);

  const control = createControlPlane({
    ...options.control,
    serverId: id,
    version: VERSION,
    token,
    bans,
    tracker,
    isCredentialValid,
    isSessionLive: (key) => sessions.isLive(key),
    logger,
    // A device proves itself by signing the challenge with the key it registered when pairing.
    verifyDevice:
      options.control?.verifyDevice ??
      ((p) => {
        if (typeof p.signature !== 'string' || p.signature.length > 128) return undefined;
        return deviceVerdict(devices.verifySignature(p.deviceId, deviceProofMessage(p), Buffer.from(p.signature, 'base64url')));
      }),
    verifyDeviceToken: (t) => deviceVerdict(devices.checkToken(t)),
  });
  // Device names, ids and scopes: admin-only like GET /_porthole/api/devices.
  for (const event of PAIRING_EVENTS) control.event(event, { scope: 'admin' });
  const pairing: PairingService = createPairingService({
    codes,
    devices,
    sessions,
    tracker,
    bans,
    publish: (event, payload) => control.publish(event, payload),
    auditFile: paths.auditLog,
    identityDir: paths.identityDir,
    logger,
    authMode,
    status: () => gateway.fullStatus(),
    ownerCredential: () => token.credential(),
    publicUrl: config.gateway.public_url,
  });
  pipeline.devices = pairing;
  registerBuiltins(control, { status: () => gateway.fullStatus(), rotate: () => gateway.rotateToken() });

  function answer(req: IncomingMessage, res: ServerResponse, d: Exclude<Decision, { kind: 'forward' | 'porthole' }>): void {
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

  function isSecure(req: IncomingMessage): boolean {
    return (
      Boolean((req.socket as { encrypted?: boolean }).encrypted) ||
      tunnelSockets.has(req.socket) ||
      tailscaleRequests.get(req)?.secure === true ||
      // Behind a TLS-terminating trusted proxy: the same rule the pipeline uses for `proto`,
      // so the cookie set (Secure, __Host-) is the one the next request is read with.
      (!tailscaleRequests.has(req) &&
        req.headers['x-forwarded-proto'] === 'https' &&
        pipeline.isTrustedProxy(normalizeAddress(req.socket.remoteAddress)))
    );
  }

  /** A new session for `credential`; its Set-Cookie header (name and Secure from this request). */
  function startSession(req: IncomingMessage, credential: string, scope: 'admin' | 'read'): string {
    const { id, maxAgeSeconds } = sessions.create(credential, scope);
    const secure = isSecure(req);
    return sessionCookieHeader(pipeline.cookieName(secure), id, maxAgeSeconds, secure);
  }

  /** Who calls the pairing API, as the pipeline decided (src/pairing/service.ts). */
  function pairingCaller(req: IncomingMessage, d: Extract<Decision, { kind: 'porthole' }>) {
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

  const gateway: Gateway = {
    id,
    paths,
    config,
    tokenInfo: { source: resolved.source, generated: resolved.generated, describe: resolved.describe },
    control,
    pairing,
    handleCheckContinue(req, res) {
      continueAfterAuth.add(req);
      gateway.handleRequest(req, res);
    },
    handleRequest(req, res) {
      if (!socketAllowed(req.socket)) {
        req.socket.destroy();
        return;
      }
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
      if (continueAfterAuth.has(req)) res.writeContinue();
      // Not the token rotation's own answer: the rotation closes what the old token opened.
      // Nor the logout's: the logout closes what its session opened.
      if (d.auth.credential !== undefined && !(d.kind === 'porthole' && (d.path === '/_porthole/api/token/rotate' || d.path === '/_porthole/api/logout'))) {
        tracker.add(d.auth.credential, res, d.auth.session);
      }
      // Only an authenticated visitor's proxy headers: an anonymous one must not plant a suggestion.
      if (d.ingress.class === 'trusted-proxy') {
        proxySeenAt = Date.now();
        // A signed-in user of trusted-proxy mode counts too: the proxy itself vouched for them.
        if (d.auth.credential !== undefined || d.auth.identity.cred === 'trusted-proxy') {
          detectedPublicUrl = detectPublicUrl(req.headers, d.ingress) ?? detectedPublicUrl;
        }
      }
      // porthole's own routes: a bug in one (a throw) answers 500 and keeps the gateway up.
      try {
        if (d.kind === 'porthole' && d.path === LOGIN_PATH && passwords) {
          handleLogin(req, res, d, {
            passwords,
            throttle: passwordThrottle,
            bans,
            logger,
            startSession: (credential) => startSession(req, credential, 'admin'),
          });
          return;
        }
        if (d.kind === 'porthole' && authMode === 'trusted-proxy' && d.path === '/_porthole/api/codes') {
          sendError(res, codesRefused());
          return;
        }
        // Pairing and devices (src/pairing/service.ts): pair, pair/exchange, devices, connect-urls.
        if (d.kind === 'porthole' && pairing.handle(req, res, d.path, pairingCaller(req, d))) return;
        if (d.kind === 'porthole') {
          handlePortholeRoute(req, res, d, {
            status: () => gateway.fullStatus(),
            tunnel: () => tunnelManager,
            api: () => ({ ...consoleApi, gateway }),
            startSession: (credential, scope) => startSession(req, credential, scope),
            issueCode: (scope) => codes.issue({ credential: d.auth.credential ?? token.credential(), scope }),
            logout: () => {
              const cookie = pipeline.cookieName(isSecure(req));
              const sid = readCookie(req.headers, cookie);
              if (sid) sessions.delete(sid);
              return clearCookieHeader(cookie);
            },
          });
          return;
        }
      } catch (err) {
        logger.log('error', 'porthole route failed', { path: d.kind === 'porthole' ? d.path : undefined, error: (err as Error).message });
        if (!res.headersSent) sendError(res, new PortholeError('INTERNAL', 'internal error'));
        else res.destroy();
        return;
      }
      const fwd = forwardHeaders(req, d, cookieNames, identityHeader(d.auth.identity), config.auth.trusted_proxy.user_header, config.auth.trusted_proxy.required_headers);
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
      if (!socketAllowed(socket)) {
        socket.destroy();
        return;
      }
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
      if (d.kind === 'control') {
        const a = d.ambient;
        control.handleUpgrade(req, socket, head, {
          key: d.ingress.key,
          ingress: d.ingress.class,
          ambient:
            a && a.identity.scope !== 'none'
              ? { credential: a.credential, sub: a.identity.sub, cred: a.identity.cred, scope: a.identity.scope, session: a.session }
              : undefined,
          tokenAccepted: authMode !== 'trusted-proxy',
          open: authMode === 'none',
        });
        return;
      }
      if (d.kind !== 'forward') {
        writeSocketError(socket, new PortholeError('NOT_FOUND', 'no such endpoint'));
        return;
      }
      if (d.auth.credential !== undefined) tracker.add(d.auth.credential, socket, d.auth.session);
      const fwd = forwardHeaders(req, d, cookieNames, identityHeader(d.auth.identity), config.auth.trusted_proxy.user_header, config.auth.trusted_proxy.required_headers);
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
      if (authMode === 'trusted-proxy') throw codesRefused();
      return codes.issue({ credential: token.credential(), scope });
    },
    passwordChanged() {
      // Outside password mode the new hash is simply read at the next start in that mode.
      if (!passwords) return { sessionsEnded: 0, connectionsClosed: 0 };
      const { changed, oldCredential } = passwords.reload();
      if (!changed || oldCredential === undefined) return { sessionsEnded: 0, connectionsClosed: 0 };
      const sessionsEnded = sessions.revokeCredential(oldCredential);
      const connectionsClosed = tracker.closeCredential(oldCredential);
      logger.log('info', 'password changed', { sessionsEnded, connectionsClosed });
      return { sessionsEnded, connectionsClosed };
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
    markTailscaleRequest(req, peer) {
      tailscaleRequests.set(req, peer);
    },
    addHostName(name) {
      dynamicNames.add(name.toLowerCase());
    },
    get detectedPublicUrl() {
      return detectedPublicUrl;
    },
    get proxySeenAt() {
      return proxySeenAt;
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
    extendStatus(extra) {
      statusExtensions.push(extra);
    },
    async fullStatus() {
      let out: Record<string, unknown> = { ...gateway.status() };
      for (const extra of statusExtensions) out = { ...out, ...(await extra()) };
      return out;
    },
    attachTunnel(t) {
      tunnelManager = t;
    },
    attachConsoleApi(extras) {
      consoleApi = { ...consoleApi, ...extras };
    },
    acceptsPeer(address) {
      if (!restrictPeers || address === undefined) return true;
      const a = normalizeAddress(address);
      return a !== undefined && (isLoopbackAddress(a) || allowedPeer(a));
    },
    async close() {
      clearInterval(sessionSweep);
      await control.close();
      sessions.flush();
      devices.flush();
      proxy?.close();
    },
  };
  return gateway;
}

/**
 * trusted-proxy mode starts only with proxies to trust and without a shared token: the SSO
 * in front is then the only way in for remote visitors (docs/auth-modes.md). The master
 * token in the secret store still exists, for the CLI over the Unix socket.
 */
function assertTrustedProxySetup(config: PortholeConfig, options: GatewayOptions): void {
  if (config.gateway.trusted_proxies.length === 0) {
    throw new PortholeError(
      'CONFIG_INVALID',
      'auth.mode is "trusted-proxy" but gateway.trusted_proxies is empty: list the proxy addresses allowed to name the user ' +
        '(--trusted-proxies 10.0.0.5 or [gateway] trusted_proxies = ["10.0.0.5"])',
    );
  }
  const shared: string[] = [];
  if (options.token !== undefined) shared.push('createGateway({ token })');
  if (options.tokenFlags?.authToken !== undefined) shared.push('--auth-token');
  if (options.tokenFlags?.authTokenFile !== undefined) shared.push('--auth-token-file');
  if (options.env?.['PORTHOLE_AUTH_TOKEN']) shared.push('PORTHOLE_AUTH_TOKEN');
  if (config.auth.token_file !== undefined && options.tokenFlags?.authTokenFile === undefined) shared.push('[auth] token_file');
  if (shared.length > 0) {
    throw new PortholeError(
      'CONFIG_INVALID',
      `auth.mode is "trusted-proxy" but a shared token is supplied (${shared.join(', ')}). In this mode the proxy signs ` +
        'users in and porthole tokens are not accepted remotely, so a shared token would only be a secret to leak. ' +
        'Remove it, or use auth.mode = "token".',
    );
  }
}

/** A device's state as the control plane's verdict (src/control/server.ts). */
function deviceVerdict(c: DeviceCheck) {
  if (c.status === 'active') return { credential: `device:${c.device.id}`, sub: `device:${c.device.id}`, scope: c.device.scope };
  if (c.status === 'pending') return { refused: { code: 'DEVICE_PENDING' as const, message: 'this device waits for approval on the desk' } };
  if (c.status === 'revoked' || c.status === 'expired') {
    return { refused: { code: 'AUTH_REVOKED' as const, message: `this device was ${c.status === 'revoked' ? 'revoked' : 'paired too long ago (expired)'}; pair it again` } };
  }
  return undefined;
}

/**
 * How often expired sessions are swept (seconds in, ms out): a quarter of the shorter expiry,
 * between 1 s and 30 s. What an expired session opened outlives it by at most this long.
 */
function sessionSweepMs(idleSeconds: number, maxSeconds: number): number {
  return Math.min(30_000, Math.max(1_000, Math.floor((Math.min(idleSeconds, maxSeconds) * 1000) / 4)));
}

function codesRefused(): PortholeError {
  return new PortholeError(
    'CREDENTIAL_NOT_ACCEPTED',
    'one-time links are not available in trusted-proxy mode: visitors sign in through the proxy',
  );
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
