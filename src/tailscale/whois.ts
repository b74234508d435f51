// Who a tailnet address belongs to, as `tailscale whois --json` says (apitype.WhoIsResponse).
// Answers are cached briefly: Serve sends one address per request and a page load is many
// requests; a node that changes hands is seen again within the TTL.
import { tailscaleFailure, type TailscaleRunner } from './cli.js';

export interface WhoisAnswer {
  /** The user's login; undefined for a tagged node, which has no user identity. */
  login: string | undefined;
  displayName: string | undefined;
  tags: string[];
  /** The node's MagicDNS name, for logs. */
  node: string | undefined;
}

export interface WhoisOptions {
  run: TailscaleRunner;
  /** How long an answer is kept. Default 30 s. */
  ttlMs?: number;
  /** How long "not a tailnet node" is kept. Default 5 s. */
  negativeTtlMs?: number;
  /** Most addresses kept. Default 1024. */
  maxEntries?: number;
  now?: () => number;
}

/** Resolves to undefined when the address is not a node of this tailnet ("peer not found"). */
export type Whois = (address: string) => Promise<WhoisAnswer | undefined>;

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {});

export function parseWhois(text: string): WhoisAnswer | undefined {
  let w: Json;
  try {
    w = obj(JSON.parse(text));
  } catch {
    return undefined;
  }
  const node = obj(w['Node']);
  const profile = obj(w['UserProfile']);
  const tags = Array.isArray(node['Tags']) ? node['Tags'].filter((t): t is string => typeof t === 'string') : [];
  const login = typeof profile['LoginName'] === 'string' ? (profile['LoginName'] as string) : undefined;
  if (Object.keys(node).length === 0) return undefined;
  return {
    // A tagged node's "user" is the placeholder tagged-devices: no person stands behind it.
    login: tags.length > 0 || login === 'tagged-devices' || !login ? undefined : login,
    displayName: typeof profile['DisplayName'] === 'string' ? (profile['DisplayName'] as string) : undefined,
    tags,
    node: typeof node['Name'] === 'string' ? (node['Name'] as string).replace(/\.$/, '') : undefined,
  };
}

export function createWhois(options: WhoisOptions): Whois {
  const { run, ttlMs = 30_000, negativeTtlMs = 5_000, maxEntries = 1024, now = Date.now } = options;
  const cache = new Map<string, { until: number; answer: Promise<WhoisAnswer | undefined> }>();
  return (address) => {
    const t = now();
    const hit = cache.get(address);
    if (hit && hit.until > t) return hit.answer;
    if (cache.size >= maxEntries) cache.clear();
    const answer = run(['whois', '--json', address]).then((r) => {
      if (r.code === 0 && !r.aborted) return parseWhois(r.stdout);
      // "peer not found": not a node of this tailnet. Anything else (tailscaled down) is an
      // error, not cached, so the next request asks again.
      if (!r.aborted && /peer not found|no match for IP/i.test(r.stderr)) return undefined;
      throw tailscaleFailure(r, 'tailscale whois');
    });
    answer.catch(() => {
      if (cache.get(address)?.answer === answer) cache.delete(address);
    });
    const entry = { until: t + ttlMs, answer };
    cache.set(address, entry);
    answer.then((a) => {
      if (a === undefined && cache.get(address) === entry) entry.until = t + negativeTtlMs;
    }, () => {});
    return answer;
  };
}
