// `porthole serve` as a library call: config → gateway → TCP listener → Unix socket.
// Returns what the CLI prints; prints nothing itself and never owns the process.
import type { PortholeConfig } from '../config/schema.js';
import { PortholeError } from '../errors.js';
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
}

export interface RunningGateway {
  gateway: Gateway;
  listening: Listening;
  socketPath: string;
  remoteAccess: boolean;
  connect: ConnectChoice | undefined;
  /** A fresh one-time code for the banner link (remote access only). */
  code: string | undefined;
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
    const socket = await listenControlSocket({
      gateway,
      describe: () => ({ url: l.url, host: l.host, port: l.port, remoteAccess, connectUrl: connect?.url ?? null }),
    });
    const code = remoteAccess && !options.insecureNoAuth ? gateway.issueCode().code : undefined;
    return {
      gateway,
      listening: l,
      socketPath: socket.path,
      remoteAccess,
      connect,
      code,
      async close() {
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
