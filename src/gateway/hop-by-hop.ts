// Hop-by-hop header fields (RFC 9110 §7.6.1): they describe one connection, so a proxy removes
// them before forwarding, in both directions, and re-frames the message for the next hop itself.

/**
 * Always hop-by-hop. RFC 9110 §7.6.1 names Connection, Proxy-Connection, Keep-Alive, TE,
 * Transfer-Encoding and Upgrade; Proxy-Authenticate/-Authorization (§11.7) are addressed to
 * the proxy, and HTTP2-Settings (RFC 7540 §3.2.1) to the h2c upgrade of one connection.
 * `Trailer` is deliberately absent: it announces end-to-end trailer fields (§6.6.2), and this
 * proxy forwards trailers, so the announcement stays true. TE and Upgrade are re-added by the
 * caller where they still apply ("TE: trailers", upgrade requests).
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
  'http2-settings',
]);

/** Lower-cased field names a Connection header lists (its options), or undefined when there are none. */
export function connectionOptions(value: string | string[] | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const joined = typeof value === 'string' ? value : value.join(',');
  let out: string[] | undefined;
  for (const token of joined.split(',')) {
    const name = token.trim().toLowerCase();
    if (name === '' || HOP_BY_HOP.has(name)) continue;
    if (out === undefined) out = [name];
    else out.push(name);
  }
  return out;
}

/** True when `name` (lower case) must not cross this hop. */
export function isHopByHop(name: string, listed: string[] | undefined): boolean {
  return HOP_BY_HOP.has(name) || listed?.includes(name) === true;
}

/** Whether a TE header value asks for trailers, the one TE option a proxy passes on (RFC 9110 §10.1.4). */
export function teHasTrailers(value: string | string[] | undefined): boolean {
  if (value === undefined) return false;
  const joined = typeof value === 'string' ? value : value.join(',');
  for (const token of joined.split(',')) {
    const semi = token.indexOf(';');
    if ((semi === -1 ? token : token.slice(0, semi)).trim().toLowerCase() === 'trailers') return true;
  }
  return false;
}

