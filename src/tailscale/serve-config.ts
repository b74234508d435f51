// Reading `tailscale serve status --json` (ipn.ServeConfig) and the rules porthole follows
// before it touches it: it manages one mapping — https://<node>/ (port 443, mount "/") to
// its own listener — and never overwrites, publishes or un-publishes a route it did not make.
import { PortholeError } from '../errors.js';

/** The port and mount porthole's mapping uses. */
export const SERVE_PORT = 443;
export const SERVE_MOUNT = '/';

export interface Handler {
  proxy: string | undefined;
  /** What the handler does, for messages: "proxy http://…", "text …", "path /…". */
  describe: string;
}

export interface PortView {
  /** host:port key, e.g. "desk.tail1234.ts.net:443". */
  hostPort: string;
  handlers: Map<string, Handler>;
  /** Funnel is on for this host:port (it covers every mount on it). */
  funnel: boolean;
  /** A foreground `tailscale serve` (no --bg) holds the port. */
  foreground: boolean;
  /** The port forwards raw TCP instead of serving HTTPS. */
  tcp: boolean;
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {});

export function parseServeConfig(text: string): Json {
  try {
    return obj(JSON.parse(text));
  } catch {
    throw new PortholeError('TAILSCALE_FAILED', 'tailscale serve status --json printed something that is not JSON');
  }
}

export function viewPort(sc: Json, dnsName: string, port = SERVE_PORT): PortView {
  const hostPort = `${dnsName}:${port}`;
  const handlers = new Map<string, Handler>();
  for (const [mount, h] of Object.entries(obj(obj(obj(obj(sc['Web'])[hostPort])['Handlers'])))) {
    const hh = obj(h);
    const proxy = typeof hh['Proxy'] === 'string' ? (hh['Proxy'] as string) : undefined;
    const describe = proxy ? `proxy ${proxy}` : hh['Text'] !== undefined ? 'text' : hh['Path'] ? `path ${String(hh['Path'])}` : 'handler';
    handlers.set(mount, { proxy, describe });
  }
  const tcp = obj(obj(sc['TCP'])[String(port)]);
  const foreground = Object.values(obj(sc['Foreground'])).some((fg) => obj(obj(fg)['TCP'])[String(port)] !== undefined);
  return {
    hostPort,
    handlers,
    funnel: obj(sc['AllowFunnel'])[hostPort] === true,
    foreground,
    tcp: tcp['TCPForward'] !== undefined && !tcp['HTTPS'] && !tcp['HTTP'],
  };
}

/** Porthole's mapping as it stands: the "/" handler proxies to one of `mine`. */
export function ourMapping(view: PortView, mine: ReadonlySet<string>): { target: string; funnel: boolean } | undefined {
  const h = view.handlers.get(SERVE_MOUNT);
  if (h?.proxy === undefined || !mine.has(h.proxy)) return undefined;
  return { target: h.proxy, funnel: view.funnel };
}

/**
 * Why porthole may not put its mapping on this port in `mode`, or undefined when it may.
 * `mine` holds the targets porthole made (this run's listener, the last run's record).
 */
export function conflictFor(view: PortView, mine: ReadonlySet<string>, mode: 'serve' | 'funnel'): string | undefined {
  const url = `https://${view.hostPort.replace(/:443$/, '')}/`;
  if (view.foreground) return `a foreground \`tailscale serve\` holds port ${SERVE_PORT}; stop it first`;
  if (view.tcp) return `port ${SERVE_PORT} forwards raw TCP (tailscale serve --tcp); remove that first`;
  const root = view.handlers.get(SERVE_MOUNT);
  if (root && (root.proxy === undefined || !mine.has(root.proxy))) {
    return `${url} is already served by a route porthole did not make (${root.describe}); remove it yourself if it is no longer needed (\`tailscale serve --https=${SERVE_PORT} --set-path=/ off\`)`;
  }
  const others = [...view.handlers.keys()].filter((m) => m !== SERVE_MOUNT);
  if (mode === 'funnel' && others.length > 0) {
    return `Funnel is per port: turning it on for porthole would also publish ${others.join(', ')} on ${url} to the internet`;
  }
  if (mode === 'serve' && view.funnel && others.length > 0 && !(root && mine.has(root.proxy ?? ''))) {
    return `Funnel is on for ${url} (${others.join(', ')}); serving porthole there would turn it off`;
  }
  return undefined;
}
