// What this node's tailscaled says about itself (`tailscale status --json`, ipnstate.Status):
// running or not, its MagicDNS name, its owner, and whether HTTPS and Funnel are enabled.
import { PortholeError } from '../errors.js';
import { runOk, type TailscaleRunner } from './cli.js';

export interface NodeStatus {
  /** ipn.State: Running, Starting, NeedsLogin, NeedsMachineAuth, Stopped, NoState. */
  backendState: string;
  /** MagicDNS name without the trailing dot, e.g. "desk.tail1234.ts.net"; "" when logged out. */
  dnsName: string;
  ips: string[];
  /** The node owner's login; undefined for a tagged node (owned by the tailnet, not a person). */
  owner: string | undefined;
  tags: string[];
  /** The node has the "https" capability (HTTPS certificates enabled for the tailnet). */
  https: boolean;
  /** The node has the "funnel" capability. */
  funnel: boolean;
  /** Ports Funnel may use (from the funnel-ports capability); empty when unknown. */
  funnelPorts: string;
  version: string | undefined;
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {});
const strs = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

const FUNNEL_PORTS_CAP = 'https://tailscale.com/cap/funnel-ports?ports=';

/** Parses `tailscale status --json` output. Pure; throws TAILSCALE_FAILED on junk. */
export function parseStatus(text: string): NodeStatus {
  let st: Json;
  try {
    st = obj(JSON.parse(text));
  } catch {
    throw new PortholeError('TAILSCALE_FAILED', 'tailscale status --json printed something that is not JSON');
  }
  const self = obj(st['Self']);
  const caps = new Set([...Object.keys(obj(self['CapMap'])), ...strs(self['Capabilities'])]);
  const portsCap = [...caps].find((c) => c.startsWith(FUNNEL_PORTS_CAP));
  const userId = self['UserID'];
  const user = obj(obj(st['User'])[String(userId)]);
  const tags = strs(self['Tags']);
  const login = typeof user['LoginName'] === 'string' ? (user['LoginName'] as string) : undefined;
  return {
    backendState: typeof st['BackendState'] === 'string' ? (st['BackendState'] as string) : 'NoState',
    dnsName: typeof self['DNSName'] === 'string' ? (self['DNSName'] as string).replace(/\.$/, '') : '',
    ips: strs(st['TailscaleIPs']),
    owner: tags.length > 0 || login === 'tagged-devices' ? undefined : login,
    tags,
    https: caps.has('https'),
    funnel: caps.has('funnel'),
    funnelPorts: portsCap ? portsCap.slice(FUNNEL_PORTS_CAP.length) : '',
    version: typeof st['Version'] === 'string' ? (st['Version'] as string) : undefined,
  };
}

export async function readStatus(run: TailscaleRunner): Promise<NodeStatus> {
  const r = await runOk(run, ['status', '--json', '--peers=false'], 'tailscale status');
  return parseStatus(r.stdout);
}

/** Fails unless tailscaled is up and logged in, with the error that says how to fix it. */
export function requireRunning(st: NodeStatus): void {
  if (st.backendState === 'Running' || st.backendState === 'Starting') {
    if (!st.dnsName) throw new PortholeError('TAILSCALE_FAILED', 'tailscale reports no MagicDNS name for this node: enable MagicDNS for the tailnet');
    return;
  }
  if (st.backendState === 'Stopped') {
    throw new PortholeError('TAILSCALE_NOT_RUNNING', 'Tailscale is stopped: connect it with `tailscale up`');
  }
  throw new PortholeError(
    'TAILSCALE_NOT_LOGGED_IN',
    `this machine is not logged in to a tailnet (state ${st.backendState}): run \`tailscale up\`${st.backendState === 'NeedsMachineAuth' ? ' and approve the machine in the admin console' : ''}`,
  );
}

/** Whether Funnel may use `port`: the funnel-ports capability lists ports and ranges ("443,8443,10000-10010"). */
export function funnelAllows(st: NodeStatus, port: number): boolean {
  if (!st.funnel) return false;
  if (!st.funnelPorts) return port === 443 || port === 8443 || port === 10000;
  return st.funnelPorts.split(',').some((r) => {
    const [lo, hi = lo] = r.split('-').map(Number);
    return lo !== undefined && lo <= port && port <= (hi as number);
  });
}
