// The public URL as a trusted reverse proxy reports it: X-Forwarded-Proto plus
// X-Forwarded-Host (or the Host it passed on). Offered as the default for gateway.public_url,
// never applied by itself. Only a request classified `trusted-proxy` may tell us: from anyone
// else these headers are the client's own claims (DESIGN §2).
import type { IncomingHttpHeaders } from 'node:http';
import type { Ingress } from '../auth/classify.js';
import { checkPublicUrl } from '../config/validate.js';

/** One header value, or undefined when absent, repeated, or a list (a chain of proxies is ambiguous). */
function single(value: string | string[] | undefined): string | undefined {
  if (typeof value !== 'string') return undefined;
  const v = value.trim();
  return v === '' || v.includes(',') || v.length > 300 ? undefined : v;
}

/**
 * The origin the visitor used, validated like gateway.public_url (https for public names,
 * http only on private networks, no path); undefined when the request did not come through
 * a trusted proxy, the proxy did not say, or what it said is not a valid public URL.
 */
export function detectPublicUrl(headers: IncomingHttpHeaders, ingress: Pick<Ingress, 'class'>): string | undefined {
  if (ingress.class !== 'trusted-proxy') return undefined;
  const proto = single(headers['x-forwarded-proto'])?.toLowerCase();
  if (proto !== 'https' && proto !== 'http') return undefined;
  const host = headers['x-forwarded-host'] !== undefined ? single(headers['x-forwarded-host']) : single(headers.host);
  if (host === undefined || /[/?#@\\\s]/.test(host)) return undefined;
  return checkPublicUrl(`${proto}://${host}`).value;
}
