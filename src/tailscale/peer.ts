// Verifies a request that arrived on the listener only Tailscale Serve uses (DESIGN §2,
// class `tailscale`): X-Forwarded-For must be exactly one address — for tailnet traffic a
// tailnet address, whose owner `tailscale whois` names — and the Tailscale-User-* headers are
// never read. tailscaled deletes every inbound Tailscale-* and X-Forwarded-* header before
// it sets its own, so on this listener (and only here) they describe the real client.
import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import type { TailscalePeer } from '../auth/classify.js';
import { cidrContains, normalizeAddress, parseCidr } from '../auth/ip.js';
import { PortholeError, isPortholeError } from '../errors.js';
import type { Whois } from './whois.js';

/** Tailscale's address ranges: CGNAT 100.64.0.0/10 and its ULA fd7a:115c:a1e0::/48. */
const TAILNET = [parseCidr('100.64.0.0/10'), parseCidr('fd7a:115c:a1e0::/48')];

export function isTailnetAddress(addr: string): boolean {
  return TAILNET.some((c) => cidrContains(c, addr));
}

export type PeerVerdict = { ok: true; peer: TailscalePeer } | { ok: false; err: PortholeError };

const refuse = (message: string): PeerVerdict => ({ ok: false, err: new PortholeError('TAILSCALE_PEER_UNVERIFIED', message) });

/** One address, no list, no port; anything else is refused. */
function singleAddress(headers: IncomingHttpHeaders): string | undefined {
  const raw = headers['x-forwarded-for'];
  if (typeof raw !== 'string' || raw.includes(',')) return undefined;
  const v = raw.trim();
  return isIP(v) ? normalizeAddress(v) : undefined;
}

export interface VerifyContext {
  whois: Whois;
  /** Logins that may skip the credential, lower-cased. */
  allowUsers: ReadonlySet<string>;
}

export async function verifyTailscaleRequest(headers: IncomingHttpHeaders, ctx: VerifyContext): Promise<PeerVerdict> {
  const address = singleAddress(headers);
  if (address === undefined) return refuse('request on the Tailscale listener without exactly one X-Forwarded-For address');
  const secure = headers['x-forwarded-proto'] === 'https';
  if (headers['tailscale-funnel-request'] !== undefined) {
    // Public internet traffic: an address to key bans on, never an identity.
    return { ok: true, peer: { address, funnel: true, login: undefined, allowed: false, secure } };
  }
  if (!isTailnetAddress(address)) return refuse('X-Forwarded-For is not a tailnet address');
  let who: Awaited<ReturnType<Whois>>;
  try {
    who = await ctx.whois(address);
  } catch (err) {
    return refuse(`cannot ask tailscale who ${address} is: ${isPortholeError(err) ? err.code : 'error'}`);
  }
  if (who === undefined) return refuse(`${address} is not a node of this tailnet`);
  const login = who.login;
  const allowed = login !== undefined && ctx.allowUsers.has(login.toLowerCase());
  return { ok: true, peer: { address, funnel: false, login, allowed, secure } };
}
