// createGateway(): porthole in front of an app — an in-process handler (embedding) or a
// target URL (sidecar). Returns request and upgrade handlers an app mounts in its own
// node:http server; `porthole serve` mounts them in one of its own (listen.ts).
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TailscalePeer } from '../auth/classify.js';
import { createCodeStore } from '../auth/codes.js';
import { createHostPolicy } from '../auth/host.js';
import { createCidrMatcher, isLoopbackAddress, normalizeAddress } from '../auth/ip.js';
import { createOriginPolicy } from '../auth/origin.js';
import { type PasswordKeeper, createPasswordKeeper, createPasswordThrottle } from '../auth/password.js';
import { createBanTable } from '../auth/rate-limit.js';
import { createSessionStore } from '../auth/sessions.js';
import { loadConfig } from '../config/load.js';
import { PortholeError } from '../errors.js';
import { debugLogger } from '../log.js';
import { type HomeLock, lockHome } from '../secrets/home-lock.js';
import { type StatePaths, statePaths } from '../secrets/paths.js';
import { openSecretStore, resolveToken, type ResolvedToken, type SecretStore } from '../secrets/store.js';
import { validateSuppliedToken } from '../secrets/token.js';
import type { TunnelManager } from '../tunnel/manager.js';
import type { ConsoleApiExtras } from './api/index.js';
import { forwardHeaders, keepVaryOrigin, syncRawHeaders } from './forward.js';
import { closeWithConnection, createAdmission, NOTHING_HELD } from './in-flight.js';
import { answerDecision } from './gateway-answer.js';
import { createSessionCookies } from './gateway-cookies.js';
import { codesRefused, routePorthole } from './gateway-routes.js';
import { assertTrustedProxySetup, deviceVerdict, hostOfOrigin, loadIdentityKey, resolveOwnHome, sessionSweepMs } from './gateway-setup.js';
import type { Gateway, GatewayOptions } from './gateway-types.js';
import { createIdentitySigner, verifyIdentity } from './identity.js';
import { type Decision, decide, type PipelineRequest, type PipelineState } from './pipeline.js';
import { createProxy, type Proxy as TargetProxy } from './proxy.js';
import type { FrontHooks } from './front.js';
import { listenControlSocket } from './control-socket.js';
import { sendError, writeSocketError } from './respond.js';
import { parseTarget } from './target.js';
import { createTokenKeeper, type TokenKeeper } from './token-keeper.js';
import { createConnectionTracker, type ConnectionTracker } from './tracker.js';
import { detectPublicUrl } from '../proxy/detect.js';
import { registerBuiltins } from '../control/builtins.js';
import { createControlPlane } from '../control/server.js';
import { deviceProofMessage } from '../control/proof.js';
import { createDeviceStore } from '../pairing/devices.js';
import { createPairingService, PAIRING_EVENTS, type PairingService } from '../pairing/service.js';

export type { Gateway, GatewayOptions, GatewayStatus, RotateResult } from './gateway-types.js';

export const VERSION: string = '0.1.0';

export function createGateway(options: GatewayOptions): Gateway {
  if ((options.app === undefined) === (options.target === undefined)) {
    throw new PortholeError('INVALID_ARGUMENT', 'createGateway needs exactly one of app and target');
  }
  const paths = statePaths(resolveOwnHome(options));
  // Before anything reads or creates state: a second gateway on this home is refused.
  const lock = lockHome(paths);
  try {
    return buildGateway(options, paths, lock);
  } catch (err) {
    lock.release();
    throw err;
  }
}

function buildGateway(options: GatewayOptions, paths: StatePaths, lock: HomeLock): Gateway {
  const logger = options.logger ?? debugLogger;
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
  let closed = false;
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
  const tailscaleRequests = new WeakMap<object, TailscalePeer>();
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
  const stallMs = Math.max(1, Math.round(config.gateway.stall_timeout * 1000));
  const proxy: TargetProxy | undefined = target
    ? createProxy({ target, timeoutMs: Math.max(1, Math.round(config.gateway.target_timeout * 1000)), stallMs, logger })
    : undefined;
  const cookieNames = [pipeline.cookieName(false), pipeline.cookieName(true)];
  const { admit, clientBusy } = createAdmission(config.gateway.max_requests_per_client);

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
    touchSession: (key) => void sessions.touch(key),
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

  const cookies = createSessionCookies({ sessions, pipeline, tunnelSockets, tailscaleRequests });
  const answerDeps = { pipeline, isSecure: cookies.isSecure, logger };
  const routeDeps = {
    authMode,
    passwords,
    passwordThrottle,
    bans,
    logger,
    pairing,
    codes,
    token,
    sessions,
    pipeline,
    cookies,
    status: () => gateway.fullStatus(),
    tunnel: () => tunnelManager,
    api: () => ({ ...consoleApi, gateway }),
  };

  /** Decisions the front made for requests it handed to node:http, by socket (front.ts). */
  const frontDecisions = new WeakMap<object, { d: Decision; method: string; url: string }>();

  /** What the app receives (forward.ts), for the node:http path, upgrades and the front alike. */
  const forwardOf = (req: PipelineRequest, d: Extract<Decision, { kind: 'forward' }>) =>
    forwardHeaders(req, d, cookieNames, identityHeader(d.auth.identity), config.auth.trusted_proxy.user_header, config.auth.trusted_proxy.required_headers);

  /** Only an authenticated visitor's proxy headers: an anonymous one must not plant a suggestion. */
  const noteTrustedProxy = (req: PipelineRequest, d: Extract<Decision, { kind: 'forward' | 'porthole' }>): void => {
    if (d.ingress.class !== 'trusted-proxy') return;
    proxySeenAt = Date.now();
    // A signed-in user of trusted-proxy mode counts too: the proxy itself vouched for them.
    if (d.auth.credential !== undefined || d.auth.identity.cred === 'trusted-proxy') {
      detectedPublicUrl = detectPublicUrl(req.headers, d.ingress) ?? detectedPublicUrl;
    }
  };

  /** The CORS fields for an allowed cross-origin request, flat [name, value, …]; undefined for none. */
  const corsFields = (req: PipelineRequest, d: Extract<Decision, { kind: 'forward' }>): string[] | undefined => {
    const origin = req.headers.origin;
    if (d.auth.identity.scope === 'none' || !origin || !pipeline.originPolicy.isAllowed(origin)) return undefined;
    return ['access-control-allow-origin', origin, 'access-control-allow-credentials', 'true', 'vary', 'Origin'];
  };

  /** The front's hook (front.ts): the same pipeline and forwarding as handleRequest's, without node:http. */
  const frontHooks: FrontHooks | undefined =
    proxy?.canFront === true
      ? {
          serve(req, sink) {
            if (!socketAllowed(req.socket)) return 'drop';
            if (closed) return 'handoff'; // handleRequest answers 503 GATEWAY_CLOSED
            let d: Decision;
            try {
              d = decide(req, false, pipeline);
            } catch (err) {
              logger.log('error', 'pipeline failed', { error: (err as Error).message });
              d = { kind: 'error', err: new PortholeError('INTERNAL', 'internal error') };
            }
            if (d.kind !== 'forward') {
              frontDecisions.set(req.socket, { d, method: req.method, url: req.url });
              return 'handoff';
            }
            const release = admit(d);
            if (release === undefined) {
              frontDecisions.set(req.socket, { d: { kind: 'error', err: clientBusy() }, method: req.method, url: req.url });
              return 'handoff';
            }
            noteTrustedProxy(req, d);
            const fwd = forwardOf(req, d);
            const ex = proxy.front(sink, req.method, fwd, corsFields(req, d));
            if (ex === undefined) {
              release();
              return 'started';
            }
            if (release !== NOTHING_HELD) ex.once('close', release);
            if (d.auth.credential !== undefined) tracker.add(d.auth.credential, ex, d.auth.session);
            ex.send();
            return 'started';
          },
          onError(err) {
            logger.log('error', 'front failed', { error: err.message });
          },
          stallMs,
        }
      : undefined;

  const gateway: Gateway = {
    id,
    paths,
    config,
    frontHooks,
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
      if (closed) {
        res.shouldKeepAlive = false;
        sendError(res, new PortholeError('GATEWAY_CLOSED', 'this gateway has been closed'));
        return;
      }
      let d: Decision;
      // A request the front (front.ts) already ran through the pipeline and handed over: its
      // decision stands (a wrong credential is not counted twice, a code not consumed twice).
      const judged = frontDecisions.get(req.socket);
      if (judged !== undefined) {
        frontDecisions.delete(req.socket);
        if (judged.method !== req.method || judged.url !== req.url) {
          // Parsed differently by the two parsers: never guess which request was judged.
          logger.log('error', 'front hand-off mismatch', {});
          sendError(res, new PortholeError('BAD_REQUEST', 'malformed request'));
          req.socket.destroySoon();
          return;
        }
        d = judged.d;
      } else {
        try {
          d = decide(req, false, pipeline);
        } catch (err) {
          logger.log('error', 'pipeline failed', { error: (err as Error).message });
          sendError(res, new PortholeError('INTERNAL', 'internal error'));
          return;
        }
      }
      if (d.kind !== 'forward' && d.kind !== 'porthole') {
        answerDecision(req, res, d, answerDeps);
        return;
      }
      // Queued behind another answer (pipelined): node:http never closes it if the connection
      // ends first, and what waits for its 'close' (the tracker, the client's places) would wait for ever.
      if (res.socket === null) closeWithConnection(res, req.socket);
      if (d.kind === 'forward') {
        const release = admit(d);
        if (release === undefined) {
          sendError(res, clientBusy());
          return;
        }
        if (release !== NOTHING_HELD) res.once('close', release);
      }
      if (continueAfterAuth.has(req)) res.writeContinue();
      // Not the token rotation's own answer: the rotation closes what the old token opened.
      // Nor the logout's: the logout closes what its session opened.
      if (d.auth.credential !== undefined && !(d.kind === 'porthole' && (d.path === '/_porthole/api/token/rotate' || d.path === '/_porthole/api/logout'))) {
        tracker.add(d.auth.credential, res, d.auth.session);
      }
      noteTrustedProxy(req, d);
      // porthole's own routes (gateway-routes.ts).
      if (d.kind === 'porthole') {
        routePorthole(req, res, d, routeDeps);
        return;
      }
      const fwd = forwardOf(req, d);
      const cors = corsFields(req, d);
      if (cors !== undefined) for (let i = 0; i < cors.length; i += 2) res.setHeader(cors[i]!, cors[i + 1]!);
      if (proxy) {
        proxy.web(req, res, fwd);
      } else {
        req.url = fwd.path;
        syncRawHeaders(req);
        if (cors !== undefined) keepVaryOrigin(res);
        options.app!(req, res);
      }
    },
    handleUpgrade(req, socket, head) {
      socket.on('error', () => socket.destroy());
      if (closed) {
        writeSocketError(socket, new PortholeError('GATEWAY_CLOSED', 'this gateway has been closed'));
        return;
      }
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
      const release = admit(d);
      if (release === undefined) {
        writeSocketError(socket, clientBusy());
        return;
      }
      if (release !== NOTHING_HELD) socket.once('close', release);
      if (d.auth.credential !== undefined) tracker.add(d.auth.credential, socket, d.auth.session);
      const fwd = forwardOf(req, d);
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
      if (closed) return;
      closed = true;
      clearInterval(sessionSweep);
      // What this gateway let through ends with it: its streams and upgraded connections.
      tracker.closeWhere(() => false);
      await control.close();
      await socket?.close();
      sessions.flush();
      devices.flush();
      proxy?.close();
      lock.release();
    },
  };
  // The CLI of this host reaches the gateway on run/gateway.sock (`porthole token rotate`,
  // `pair`, `status` with PORTHOLE_HOME set to the state directory). `porthole serve` opens
  // its own, with the tunnel and Tailscale routes.
  let socket: { close(): Promise<void> } | undefined;
  if (options.controlSocket !== false) {
    listenControlSocket({ gateway, describe: () => ({}), unref: true }).then(
      (s) => {
        if (closed) void s.close();
        else socket = s;
      },
      (err: Error) => logger.log('warn', 'control socket not listening: the CLI cannot reach this gateway', { error: err.message }),
    );
  }
  return gateway;
}
