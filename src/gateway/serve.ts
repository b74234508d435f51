// `porthole serve` as a library call: config → gateway → TCP listener → Unix socket.
// Returns what the CLI prints; prints nothing itself and never owns the process.
import type { PortholeConfig } from '../config/schema.js';
import { PortholeError, isPortholeError } from '../errors.js';
import { openSecretStore } from '../secrets/store.js';
import { createTunnelManager, type TunnelManager, type TunnelManagerOptions } from '../tunnel/manager.js';
import type { Logger } from '../log.js';
import { chooseConnectUrl, isRemoteBind, type ConnectChoice } from './connect-url.js';
import { listenControlSocket } from './control-socket.js';
import { createGateway, type Gateway } from './gateway.js';
import { listenGateway, type Listening, type ListenOptions } from './listen.js';

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
  const gateway = createGateway({
    stateDir: options.home,
    target,
    config,
    tokenFlags: options.tokenFlags,
    env: options.env,
    insecureNoAuth: options.insecureNoAuth,
    logger: options.logger,
  });
  let listening: Listening | undefined;
  try {
    listening = await listenGateway(gateway, { host: config.gateway.host, port: config.gateway.port, ...options.listen });
    const l = listening;
    const remoteAccess = isRemoteBind(config.gateway.host);
    const connect = remoteAccess ? chooseConnectUrl(config.gateway.host, l.port, config.gateway.allowed_origins) : undefined;
    const tunnel = createTunnelManager({
      gateway,
      config: config.tunnel,
      paths: gateway.paths,
      store: openSecretStore(gateway.paths),
      env: options.env ?? {},
      logger: options.logger,
      client: options.tunnelClient,
    });
    const socket = await listenControlSocket({
      gateway,
      tunnel,
      describe: () => ({
        url: l.url,
        host: l.host,
        port: l.port,
        remoteAccess,
        connectUrl: connect?.url ?? null,
        tunnel: tunnel.status(),
      }),
    });
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
    const code = remoteAccess && !options.insecureNoAuth ? gateway.issueCode().code : undefined;
    return {
      gateway,
      listening: l,
      socketPath: socket.path,
      remoteAccess,
      connect,
      code,
      tunnel,
      tunnelStartError,
      async close() {
        await tunnel.close();
        await socket.close();
        await l.close();
        await gateway.close();
      },
    };
  } catch (err) {
    await listening?.close();
    await gateway.close();
    throw err;
  }
}
