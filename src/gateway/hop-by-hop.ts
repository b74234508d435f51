// Header fields for the next hop. Hop-by-hop fields (RFC 9110 §7.6.1) describe one connection,
// so a proxy removes them in both directions and re-frames the message itself; Host and the
// X-Forwarded-* fields are rewritten for the target.
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { ForwardInfo } from './proxy.js';

/**
 * Always hop-by-hop. RFC 9110 §7.6.1 names Connection, Proxy-Connection, Keep-Alive, TE,
 * Transfer-Encoding and Upgrade; Proxy-Authenticate/-Authorization (§11.7) are addressed to
 * the proxy, and HTTP2-Settings (RFC 7540 §3.2.1) to the h2c upgrade of one connection.
 * `Trailer` is deliberately absent: it announces end-to-end trailer fields (§6.6.2), and this
 * proxy forwards trailers, so the announcement stays true. TE and Upgrade are re-added where
 * they still apply ("TE: trailers", upgrade requests).
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

/** Headers the proxy sets itself; whatever the gateway passed under these names is replaced. */
const REPLACED: ReadonlySet<string> = new Set(['host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']);

/**
 * Fields a Connection header cannot turn hop-by-hop: they frame the message or name its host
 * for every hop (RFC 9110 §7.6.1 forbids such options). Honouring `Connection: content-length`
 * would strip the length while the body still follows: a body silently lost, or read as the
 * next request.
 */
const NEVER_OPTIONS: ReadonlySet<string> = new Set(['content-length', 'host']);

/** Lower-cased field names a Connection header lists (its options), or undefined when there are none. */
export function connectionOptions(value: string | string[] | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string' && !value.includes(',')) {
    // The common case, "keep-alive" / "close" / "Upgrade": no list to split.
    const name = value.trim().toLowerCase();
    return name === '' || HOP_BY_HOP.has(name) || NEVER_OPTIONS.has(name) ? undefined : [name];
  }
  const joined = typeof value === 'string' ? value : value.join(',');
  let out: string[] | undefined;
  for (const token of joined.split(',')) {
    const name = token.trim().toLowerCase();
    if (name === '' || HOP_BY_HOP.has(name) || NEVER_OPTIONS.has(name)) continue;
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

/**
 * The request head for the target: the gateway's headers (lower-case keys) minus hop-by-hop
 * fields, Host set to the target's own (`hostHeader`; the visitor's goes in X-Forwarded-Host),
 * X-Forwarded-For extended with the client address, X-Forwarded-Proto/-Host set.
 * `chunked`: the request body arrives de-chunked and is re-framed for this hop.
 * `upgrade`: keep `Connection: Upgrade` and `Upgrade` (RFC 9110 §7.8).
 */
export function requestHeaders(fwd: ForwardInfo, hostHeader: string, chunked: boolean, upgrade: boolean): OutgoingHttpHeaders {
  const src = fwd.headers;
  const listed = connectionOptions(src.connection);
  // Host first, as a user agent sends it (RFC 9110 §7.2).
  const out: OutgoingHttpHeaders = { host: hostHeader };
  for (const name in src) {
    const value = src[name];
    if (value === undefined || isHopByHop(name, listed) || REPLACED.has(name)) continue;
    out[name] = value;
  }
  if (teHasTrailers(src.te)) out.te = 'trailers';
  if (upgrade) {
    out.connection = 'Upgrade';
    if (src.upgrade !== undefined) out.upgrade = src.upgrade;
  } else if (chunked) {
    out['transfer-encoding'] = 'chunked';
  }
  const xff = src['x-forwarded-for'];
  out['x-forwarded-for'] =
    xff === undefined || xff === ''
      ? fwd.clientAddress
      : `${typeof xff === 'string' ? xff : xff.join(', ')}, ${fwd.clientAddress}`;
  out['x-forwarded-proto'] = fwd.proto;
  if (fwd.host !== undefined) out['x-forwarded-host'] = fwd.host;
  return out;
}

/** The target's response fields minus hop-by-hop ones, as a flat [name, value, …] list keeping case, order and repeats. */
export function responseHeaders(upRes: IncomingMessage): string[] {
  const raw = upRes.rawHeaders;
  const listed = connectionOptions(upRes.headers.connection);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (!isHopByHop(name.toLowerCase(), listed)) out.push(name, raw[i + 1]!);
  }
  return out;
}

/** Trailer fields from a flat raw list, hop-by-hop ones dropped; undefined when none remain. */
export function trailerPairs(raw: string[]): [string, string][] | undefined {
  if (raw.length === 0) return undefined;
  const out: [string, string][] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (!HOP_BY_HOP.has(name.toLowerCase())) out.push([name, raw[i + 1]!]);
  }
  return out.length === 0 ? undefined : out;
}

/** A target's fields (a flat [name, value, …] list) minus hop-by-hop ones (and those its Connection lists), case and order kept. */
export function relayableFields(raw: string[]): string[] {
  let connection: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 10 && name.toLowerCase() === 'connection') connection = connection === undefined ? raw[i + 1]! : `${connection},${raw[i + 1]!}`;
  }
  const listed = connectionOptions(connection);
  if (listed === undefined) {
    let any = false;
    for (let i = 0; i < raw.length && !any; i += 2) any = HOP_BY_HOP.has(raw[i]!.toLowerCase());
    if (!any) return raw;
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (!isHopByHop(name.toLowerCase(), listed)) out.push(name, raw[i + 1]!);
  }
  return out;
}
