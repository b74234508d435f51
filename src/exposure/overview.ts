// The remote-access overview (issue 4): for each way in — local network, SSH tunnel,
// Tailscale, public tunnel, reverse proxy — whether it is on, its URLs, its health, and
// every conflict between them with the reason and the fix. `porthole status`,
// `GET /_porthole/api/status` and (later) the console all show this one object.
import { hostname } from 'node:os';
import type { PortholeConfig } from '../config/schema.js';
import { isWildcardHost, isRemoteBind, lanAddresses, type LanAddress } from '../gateway/connect-url.js';
import { formatHostForUrl } from '../gateway/listen.js';
import { printedCommand } from '../ssh/command.js';
import type { TunnelStatus } from '../tunnel/manager.js';
import { shellJoin } from '../util/shell.js';
import { type Conflict, type ExposureFacts, type ExposureMethod, findConflicts } from './rules.js';

/**
 * `ok` working; `starting` on its way up; `degraded` on but not working now (it retries);
 * `off`; `unknown` on, but nothing here can observe whether it works.
 */
export type Health = 'ok' | 'starting' | 'degraded' | 'off' | 'unknown';

export interface MethodState {
  /** null: the desk cannot tell (an SSH forward looks like any local client). */
  on: boolean | null;
  urls: string[];
  health: Health;
  /** One line for people: what is going on, or what to do. */
  detail: string;
  [extra: string]: unknown;
}

export interface Overview {
  methods: Record<ExposureMethod, MethodState>;
  conflicts: Conflict[];
}

/** What the Tailscale integration reports (kept structural so this module needs no import of it). */
export interface TailscaleSummary {
  mode: 'off' | 'serve' | 'funnel';
  url?: string | undefined;
  health: Health;
  detail: string;
  [extra: string]: unknown;
}

/** Tailscale switched off by porthole (no tailscale call needed to know). */
export const TAILSCALE_OFF: TailscaleSummary = { mode: 'off', health: 'off', detail: 'off (porthole tailscale serve)' };

/** What src/tailscale's tailscaleOverview() reads (kept structural). */
export interface TailscaleReading {
  mode: 'off' | 'serve' | 'funnel';
  mapped: boolean;
  url: string | null;
  dnsName: string | null;
  listener: 'unix' | 'tcp' | null;
  allowUsers: string[];
  problems: { code: string; message: string }[];
}

export function summarizeTailscale(r: TailscaleReading): TailscaleSummary {
  const problem = r.problems[0];
  const health: Health = problem ? 'degraded' : r.mapped ? 'ok' : r.mode === 'off' ? 'off' : 'degraded';
  const detail = problem
    ? `${problem.message} [${problem.code}]`
    : r.mapped
      ? `${r.mode === 'funnel' ? 'Funnel (public internet)' : 'Serve (tailnet only)'} via a ${r.listener === 'unix' ? 'Unix-socket' : 'loopback'} listener`
      : 'porthole\'s mapping is missing from `tailscale serve status`';
  return { mode: r.mode, url: r.url ?? undefined, health, detail, dnsName: r.dnsName, allowUsers: r.allowUsers, problems: r.problems };
}

/** summarizeTailscale over `read`, at most once per `ttlMs` (the status API may be polled). */
export function cachedTailscaleSummary(read: () => Promise<TailscaleReading>, ttlMs = 5_000): () => Promise<TailscaleSummary> {
  let last: { at: number; value: Promise<TailscaleSummary> } | undefined;
  return () => {
    const now = Date.now();
    if (!last || now - last.at >= ttlMs) {
      const value = read().then(summarizeTailscale, (err: unknown) => ({
        mode: 'off' as const,
        health: 'unknown' as const,
        detail: `could not ask tailscale: ${(err as Error).message}`,
      }));
      last = { at: now, value };
    }
    return last.value;
  };
}

export interface OverviewInputs {
  config: PortholeConfig;
  listening: { host: string; port: number };
  authMode: ExposureFacts['authMode'];
  tunnel?: TunnelStatus | undefined;
  tailscale?: TailscaleSummary | undefined;
  /** The public URL seen in the latest request through a trusted proxy, if any. */
  detectedPublicUrl?: string | undefined;
  /** When a request last came through a trusted proxy (ms since epoch). */
  proxySeenAt?: number | undefined;
  now?: number;
  lan?: readonly LanAddress[];
}

/** A proxied request within this window counts as the reverse proxy being healthy. */
export const PROXY_SEEN_WINDOW_MS = 10 * 60_000;

/** URLs a device on the local network could use (none when bound to loopback). */
export function lanUrls(host: string, port: number, lan: readonly LanAddress[] = lanAddresses()): string[] {
  if (!isRemoteBind(host)) return [];
  if (!isWildcardHost(host)) return [`http://${formatHostForUrl(host)}:${port}`];
  // 0.0.0.0 accepts IPv4 only; :: accepts both on the usual dual-stack hosts.
  const usable = host === '0.0.0.0' ? lan.filter((a) => a.family === 4) : lan;
  return usable.filter((a) => !a.address.toLowerCase().startsWith('fe80:')).map((a) => `http://${formatHostForUrl(a.address)}:${port}`);
}

function lanState(i: OverviewInputs): MethodState {
  const { host, port } = i.listening;
  const on = isRemoteBind(host);
  const cidrs = i.config.gateway.allow_cidrs;
  return {
    on,
    urls: on ? lanUrls(host, port, i.lan) : [],
    health: on ? 'ok' : 'off',
    detail: on
      ? `listening on ${host}:${port}${cidrs.length ? `; only ${cidrs.join(', ')} may connect` : ''}`
      : 'bound to loopback: nothing else on the network reaches it (porthole serve --host 0.0.0.0 to change)',
    bind: host,
    allowCidrs: cidrs,
  };
}

function sshState(i: OverviewInputs): MethodState {
  const port = i.listening.port;
  const target = `you@${hostname()}`;
  let command: string | null = null;
  try {
    command = shellJoin(printedCommand({ target, forward: { listen: { host: '127.0.0.1', port }, connectPort: port } }));
  } catch {
    // A host name ssh would not take as a destination: show the porthole command alone.
  }
  return {
    on: null,
    urls: [],
    health: 'unknown',
    detail: `from another machine: porthole ssh-tunnel --target ${target} --remote-port ${port}, then open http://127.0.0.1:${port}`,
    remotePort: port,
    command,
  };
}

function tunnelState(i: OverviewInputs): MethodState {
  const t = i.tunnel;
  if (!t || t.state.state === 'stopped') {
    return { on: false, urls: [], health: 'off', detail: 'off (porthole tunnel start --accept-risk)', relay: t?.relay ?? null };
  }
  const s = t.state;
  if (s.state === 'online') return { on: true, urls: [s.url], health: 'ok', detail: `online via ${t.relay}`, relay: t.relay };
  const why = 'lastError' in s && s.lastError ? ` (${s.lastError.code}: ${s.lastError.message})` : '';
  return {
    on: true,
    urls: [],
    health: s.state === 'connecting' ? 'starting' : 'degraded',
    detail: `${s.state}${why}`,
    relay: t.relay,
  };
}

function reverseProxyState(i: OverviewInputs): MethodState {
  const publicUrl = i.config.gateway.public_url;
  const detected = i.detectedPublicUrl !== publicUrl ? i.detectedPublicUrl : undefined;
  const seen = i.proxySeenAt !== undefined && (i.now ?? Date.now()) - i.proxySeenAt < PROXY_SEEN_WINDOW_MS;
  const extra = { detectedPublicUrl: detected ?? null, trustedProxies: i.config.gateway.trusted_proxies };
  if (!publicUrl) {
    return {
      on: false,
      urls: [],
      health: 'off',
      detail: detected ? `requests arrive through a proxy as ${detected}: set gateway.public_url to it` : 'off (set gateway.public_url)',
      ...extra,
    };
  }
  return {
    on: true,
    urls: [publicUrl],
    health: seen ? 'ok' : 'unknown',
    detail: seen ? 'requests arrive through the trusted proxy' : 'no request through a trusted proxy lately (porthole proxy test)',
    ...extra,
  };
}

function tailscaleState(i: OverviewInputs): MethodState {
  const ts = i.tailscale;
  if (!ts) {
    const mode = i.config.tailscale.mode;
    return { on: mode !== 'off', urls: [], health: mode === 'off' ? 'off' : 'unknown', detail: mode === 'off' ? 'off' : `${mode} (state unknown)`, mode };
  }
  const { mode, url, health, detail, ...rest } = ts;
  return { ...rest, on: mode !== 'off', urls: url ? [url] : [], health, detail, mode };
}

export function buildOverview(i: OverviewInputs): Overview {
  const t = i.tunnel?.state.state;
  const facts: ExposureFacts = {
    bindHost: i.listening.host,
    authMode: i.authMode,
    tailscale: i.tailscale?.mode ?? i.config.tailscale.mode,
    tunnel: t !== undefined && t !== 'stopped',
    tunnelAutoStart: i.config.tunnel.auto_start,
  };
  return {
    methods: {
      lan: lanState(i),
      ssh: sshState(i),
      tailscale: tailscaleState(i),
      tunnel: tunnelState(i),
      reverseProxy: reverseProxyState(i),
    },
    conflicts: findConflicts(facts),
  };
}
