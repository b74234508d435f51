// The embedding API's types: what createGateway() (gateway.ts) accepts and the Gateway it
// returns. gateway.ts re-exports them, so importers keep naming './gateway.js'.
import type { FrontHooks } from './front.js';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TailscalePeer } from '../auth/classify.js';
import type { ConfigFlags } from '../config/types.js';
import type { PortholeConfig } from '../config/schema.js';
import type { ControlOptions, ControlPlane } from '../control/server.js';
import type { Logger } from '../log.js';
import type { PairingService } from '../pairing/service.js';
import type { StatePaths } from '../secrets/paths.js';
import type { ResolvedToken } from '../secrets/store.js';
import type { TunnelManager } from '../tunnel/manager.js';
import type { ConsoleApiExtras } from './api/index.js';
import type { Identity } from './identity.js';
import type { PipelineState } from './pipeline.js';

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
  /**
   * Listen on the state directory's Unix socket (`run/gateway.sock`, 0600 in a 0700
   * directory) so that the porthole CLI of this host, run with `PORTHOLE_HOME` set to the
   * state directory, reaches this gateway (`token rotate`, `pair`, `status`). Default true.
   */
  controlSocket?: boolean;
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
  /**
   * Internal: present when the gateway proxies to an http:// or unix: target; listenGateway
   * then reads connections with the front first (front.ts, docs/performance.md §8).
   */
  readonly frontHooks?: FrontHooks | undefined;
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
