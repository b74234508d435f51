// Tailscale Serve and Funnel (docs/tailscale.md): the exposure a gateway runs, and an
// overview of Tailscale's state for `porthole tailscale status` and the exposure overview.
import type { ErrorCode } from '../errors.js';
import { isPortholeError } from '../errors.js';
import type { StatePaths } from '../secrets/paths.js';
import { createTailscaleRunner, type TailscaleRunner } from './cli.js';
import { readServeConfig, type TailscaleExposure } from './exposure.js';
import { ourMapping, viewPort } from './serve-config.js';
import { readRecord } from './state.js';
import { funnelAllows, readStatus, type NodeStatus } from './status.js';

export { createTailscaleRunner, type TailscaleRunner } from './cli.js';
export {
  createTailscaleExposure,
  removeMapping,
  type ResetResult,
  type TailscaleExposure,
  type TailscaleMapMode,
  type TailscaleState,
} from './exposure.js';

/**
 * Tailscale as porthole sees it. Every field is filled even when Tailscale is missing or
 * down (false / null); `problems` says what stands in the way, each with its error code.
 */
export interface TailscaleOverview {
  /** The tailscale command exists. */
  installed: boolean;
  /** tailscaled answers and is Running (or Starting). */
  running: boolean;
  /** The node is logged in to a tailnet. */
  loggedIn: boolean;
  /** ipn.State as tailscale reports it; null when tailscaled does not answer. */
  backendState: string | null;
  /** MagicDNS name, e.g. "desk.tail1234.ts.net". */
  dnsName: string | null;
  /** The node owner's login (the default allow_users); null for a tagged node. */
  owner: string | null;
  /** HTTPS certificates are enabled (Serve can work). */
  httpsEnabled: boolean;
  /** Funnel may be used on port 443. */
  funnelEnabled: boolean;
  /** What porthole's mapping is in tailscale right now: off, serve (tailnet only) or funnel (internet). */
  mode: 'off' | 'serve' | 'funnel';
  /** porthole's mapping is present in `tailscale serve status`. */
  mapped: boolean;
  /** https://<node>/ while mapped. */
  url: string | null;
  /** porthole's mapping is public (Funnel on). */
  funnel: boolean;
  /** Where the mapping points (porthole's listener). */
  target: string | null;
  /** The running gateway's listener kind, when a gateway is running with Tailscale on. */
  listener: 'unix' | 'tcp' | null;
  /** Logins let in without a credential (running gateway only). */
  allowUsers: string[];
  problems: { code: ErrorCode; message: string }[];
}

export interface OverviewOptions {
  paths: StatePaths;
  run?: TailscaleRunner;
  /** The running gateway's exposure, when called inside it. */
  exposure?: TailscaleExposure;
}

export async function tailscaleOverview(options: OverviewOptions): Promise<TailscaleOverview> {
  const run = options.run ?? createTailscaleRunner();
  const live = options.exposure?.state();
  const o: TailscaleOverview = {
    installed: true,
    running: false,
    loggedIn: false,
    backendState: null,
    dnsName: null,
    owner: null,
    httpsEnabled: false,
    funnelEnabled: false,
    mode: 'off',
    mapped: false,
    url: null,
    funnel: false,
    target: null,
    listener: live?.listener ?? null,
    allowUsers: live?.allowUsers ?? [],
    problems: [],
  };
  const problem = (err: unknown) => {
    if (isPortholeError(err)) o.problems.push({ code: err.code, message: err.message });
    else throw err;
  };
  let st: NodeStatus;
  try {
    st = await readStatus(run);
  } catch (err) {
    if (isPortholeError(err, 'TAILSCALE_NOT_INSTALLED')) o.installed = false;
    problem(err);
    return o;
  }
  o.backendState = st.backendState;
  o.running = st.backendState === 'Running' || st.backendState === 'Starting';
  o.loggedIn = o.running || st.backendState === 'Stopped';
  o.dnsName = st.dnsName || null;
  o.owner = st.owner ?? null;
  o.httpsEnabled = st.https;
  o.funnelEnabled = funnelAllows(st, 443);
  if (!o.running) {
    o.problems.push(
      st.backendState === 'Stopped'
        ? { code: 'TAILSCALE_NOT_RUNNING', message: 'Tailscale is stopped: connect it with `tailscale up`' }
        : { code: 'TAILSCALE_NOT_LOGGED_IN', message: `not logged in to a tailnet (state ${st.backendState}): run \`tailscale up\`` },
    );
    return o;
  }
  if (!st.https) o.problems.push({ code: 'TAILSCALE_HTTPS_DISABLED', message: 'HTTPS certificates are not enabled for this tailnet' });
  const mine = new Set([readRecord(options.paths)?.target, live?.target ?? undefined].filter((t): t is string => typeof t === 'string'));
  try {
    const mapping = ourMapping(viewPort(await readServeConfig(run), st.dnsName), mine);
    if (mapping) {
      o.mapped = true;
      o.mode = mapping.funnel ? 'funnel' : 'serve';
      o.funnel = mapping.funnel;
      o.url = `https://${st.dnsName}/`;
      o.target = mapping.target;
    }
  } catch (err) {
    problem(err);
  }
  return o;
}
