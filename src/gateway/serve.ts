// `porthole serve` as a library call: config → gateway → TCP listener → Unix socket.
// Returns what the CLI prints; prints nothing itself and never owns the process.
import type { PortholeConfig } from '../config/schema.js';
import type { ConfigInputs } from '../config/types.js';
import { createConsoleEvents } from './api/events.js';
import { createSettingsKeeper } from './api/settings.js';
import { createRegistrationSecretAccess } from './api/tunnel-secret.js';
import { PortholeError, isPortholeError } from '../errors.js';
import { openSecretStore, withdrawIssuedToken } from '../secrets/store.js';
import { createTunnelManager, type TunnelManager, type TunnelManagerOptions } from '../tunnel/manager.js';
import { buildOverview, cachedTailscaleSummary, TAILSCALE_OFF } from '../exposure/overview.js';
import { assertNoConflicts, type ExposureFacts } from '../exposure/rules.js';
import type { Logger } from '../log.js';
import { createTailscaleExposure, tailscaleOverview, type TailscaleExposure, type TailscaleRunner } from '../tailscale/index.js';
import { chooseConnectUrl, isRemoteBind, type ConnectChoice } from './connect-url.js';
import { listenControlSocket } from './control-socket.js';
import { createGateway, type Gateway } from './gateway.js';
import { parseTarget } from './target.js';
import { listenGateway, type Listening, type ListenOptions } from './listen.js';
import { type GatewayTls, loadGatewayTls, type TlsChoice } from '../tls/gateway-cert.js';

export interface ServeOptions {
  home: string;
  config: PortholeConfig;
  tokenFlags?: { authToken?: string; authTokenFile?: string };
  env?: Record<string, string | undefined>;
  insecureNoAuth?: boolean;
  logger?: Logger;
  listen?: Omit<ListenOptions, 'host' | 'port'>;
  /** Tunnel client tuning (tests shorten back-off and liveness). */
  tunnelClient?: TunnelManagerOptions['client'];
  /** How `tailscale` is run. Default: the one on PATH. */
  tailscaleRun?: TailscaleRunner;
  /** `--tls self-signed` or `--tls-cert/--tls-key` (src/tls/gateway-cert.ts). Default: plain HTTP. */
  tls?: TlsChoice;
  /**
   * How `config` was loaded (config file, environment, flags), so the console's settings API
   * can tell where each value comes from and refuse keys set above state.json. Absent: values
   * differing from porthole.toml + state.json + defaults count as set by the caller.
   */
  configInputs?: Omit<ConfigInputs, 'state'>;
}

export interface RunningGateway {
  gateway: Gateway;
  listening: Listening;
  socketPath: string;
  remoteAccess: boolean;
  connect: ConnectChoice | undefined;
  /** A fresh one-time code for the banner link (remote access only). */
  code: string | undefined;
  tunnel: TunnelManager;
  /** Why the tunnel did not start at launch (e.g. CONSENT_REQUIRED), if it was asked to. */
  tunnelStartError: PortholeError | undefined;
  /** Tailscale Serve/Funnel; already mapped when [tailscale] mode is serve or funnel. */
  tailscale: TailscaleExposure;
  /** The certificate served and its pins, when TLS is on. */
  tls: GatewayTls | undefined;
  close(): Promise<void>;
}

export async function startServe(options: ServeOptions): Promise<RunningGateway> {
  const { config } = options;
  const target = config.gateway.target;
  if (target === undefined) {
    throw new PortholeError(
      'INVALID_ARGUMENT',
      'nothing to serve: pass --target URL (e.g. --target 3000) or set [gateway] target in porthole.toml',
    );
  }
  const authMode: ExposureFacts['authMode'] = options.insecureNoAuth ? 'none' : config.auth.mode;
  // The facts the exposure rules judge (docs/exposure.md): checked now, so serve refuses
  // to start with exposures that undermine each other, and again by run-time switches.
  const facts = (tunnelOn: boolean): ExposureFacts => ({
    bindHost: config.gateway.host,
    authMode,
    tailscale: config.tailscale.mode,
    tunnel: tunnelOn,
    tunnelAutoStart: config.tunnel.auto_start,
  });
  // What can be judged without the gateway is judged first: a start refused for it issues no token.
  parseTarget(target);
  assertNoConflicts(facts(config.tunnel.enabled));
  const gateway = createGateway({
    controlSocket: false, // its own below, with the tunnel and Tailscale routes
    stateDir: options.home,
    target,
    config,
    tokenFlags: options.tokenFlags,
    env: options.env,
    insecureNoAuth: options.insecureNoAuth,
    logger: options.logger,
  });
  let listening: Listening | undefined;
  let tls: GatewayTls | undefined;
  try {
    tls = options.tls ? loadGatewayTls(options.tls, options.home, config.gateway.host) : undefined;
    listening = await listenGateway(gateway, {
      host: config.gateway.host,
      port: config.gateway.port,
      // PORTHOLE_HTTP_FRONT=off: every connection straight to node:http (docs/config.md).
      front: options.env?.['PORTHOLE_HTTP_FRONT'] !== 'off',
      ...options.listen,
      ...(tls ? { tls: { cert: tls.cert, key: tls.key } } : {}),
    });
    const l = listening;
    const remoteAccess = isRemoteBind(config.gateway.host);
    const chosen = remoteAccess ? chooseConnectUrl(config.gateway.host, l.port, config.gateway.allowed_origins) : undefined;
    const connect = chosen && tls ? { ...chosen, url: chosen.url.replace(/^http:/, 'https:') } : chosen;
    const tunnel = createTunnelManager({
      // Judged on the live Tailscale state: a Funnel switched on at run time counts too.
      guard: () => assertNoConflicts({ ...facts(true), tailscale: ts.state().mode }),
      gateway,
      config: config.tunnel,
      paths: gateway.paths,
      store: openSecretStore(gateway.paths),
      env: options.env ?? {},
      logger: options.logger,
      client: options.tunnelClient,
    });
    gateway.attachTunnel(tunnel);
    gateway.extendStatus(() => ({
      url: l.url,
      host: l.host,
      port: l.port,
      remoteAccess,
      connectUrl: connect?.url ?? null,
      tunnel: tunnel.status(),
    }));
    const ts = createTailscaleExposure({
      gateway,
      paths: gateway.paths,
      config: config.tailscale,
      run: options.tailscaleRun,
      logger: options.logger,
      // Run-time switches (`porthole tailscale funnel`) are judged by the same rules.
      guard: (mode) => assertNoConflicts({ ...facts(tunnel.status().state.state !== 'stopped'), tailscale: mode }),
      noAuth: authMode === 'none',
    });
    gateway.extendStatus(() => ({ tailscale: ts.state() }));
    // Pins are public (they identify the key; they grant nothing): clients copy them from here.
    gateway.extendStatus(() => ({ tls: tls ? { pin: `sha256/${tls.pins.spkiSha256}`, fingerprint256: tls.pins.fingerprint256, notAfter: tls.notAfter } : null }));
    // The remote-access overview (docs/exposure.md). Asking tailscale costs a process spawn:
    // only while porthole's mapping is on, and at most every few seconds.
    const tailscaleSummary = cachedTailscaleSummary(() =>
      tailscaleOverview({ paths: gateway.paths, run: options.tailscaleRun, exposure: ts }),
    );
    gateway.extendStatus(async () => ({
      exposure: buildOverview({
        config,
        listening: { host: config.gateway.host, port: l.port },
        authMode,
        tunnel: tunnel.status(),
        tailscale: ts.state().mode === 'off' ? TAILSCALE_OFF : await tailscaleSummary(),
        detectedPublicUrl: gateway.detectedPublicUrl,
        proxySeenAt: gateway.proxySeenAt,
      }),
    }));
    // Live updates for the console (tunnel.state, exposure.changed; src/gateway/api/events.ts).
    const events = createConsoleEvents({
      control: gateway.control,
      tunnelStatus: () => tunnel.status(),
      exposure: async () => (await gateway.fullStatus())['exposure'],
      onError: (err) => options.logger?.log('warn', 'console event failed', { error: (err as Error).message }),
    });
    tunnel.on('state', () => events.tunnelChanged());
    tunnel.onCertificate(() => events.tunnelChanged());
    const tailscale = {
      overview: () => tailscaleOverview({ paths: gateway.paths, run: options.tailscaleRun, exposure: ts }),
      start: (mode: 'serve' | 'funnel') => ts.start(mode).finally(() => events.exposureChanged()),
      reset: () => ts.reset().finally(() => events.exposureChanged()),
    };
    const tunnelSecret = createRegistrationSecretAccess({
      store: openSecretStore(gateway.paths),
      env: options.env ?? {},
      paths: gateway.paths,
      onChange: (secret) => tunnel.useSecret(secret),
    });
    gateway.attachConsoleApi({
      tailscale,
      tunnelSecret,
      events,
      listening: () => ({ bind: config.gateway.host, port: l.port, scheme: tls ? 'https' : 'http' }),
      settings: createSettingsKeeper({
        paths: gateway.paths,
        running: config,
        inputs: options.configInputs,
        authMode,
        onSaved: () => events.exposureChanged(true),
      }),
    });
    const socket = await listenControlSocket({ gateway, tunnel, tailscale, tunnelSecret, describe: () => ({}) });
    // Asked for Tailscale and it cannot be had: refuse to start, saying why (after the
    // control socket, which proves no other gateway of this home runs).
    if (config.tailscale.mode !== 'off') {
      try {
        await ts.start(config.tailscale.mode);
      } catch (err) {
        await ts.close();
        await tunnel.close();
        await socket.close();
        throw err;
      }
    }
    // The local API never depends on the tunnel: a tunnel that cannot start is reported, not fatal.
    let tunnelStartError: PortholeError | undefined;
    if (config.tunnel.enabled || tunnel.mayAutoStart()) {
      try {
        tunnel.start();
      } catch (err) {
        if (!isPortholeError(err)) throw err;
        tunnelStartError = err;
      }
    }
    // No one-time link in trusted-proxy mode: visitors sign in through the proxy.
    const code =
      remoteAccess && !options.insecureNoAuth && config.auth.mode !== 'trusted-proxy' ? gateway.issueCode().code : undefined;
    return {
      gateway,
      listening: l,
      socketPath: socket.path,
      remoteAccess,
      connect,
      code,
      tunnel,
      tunnelStartError,
      tailscale: ts,
      tls,
      async close() {
        events.close();
        await ts.close();
        await tunnel.close();
        await socket.close();
        await l.close();
        await gateway.close();
      },
    };
  } catch (err) {
    await listening?.close();
    await gateway.close();
    // A token this failed start generated was never shown: the next start makes (and shows) its own.
    if (gateway.tokenInfo.generated) withdrawIssuedToken(gateway.paths, openSecretStore(gateway.paths));
    throw err;
  }
}
