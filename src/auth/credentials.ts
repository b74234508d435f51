// Finds porthole's credential in a request (DESIGN §3.3). porthole's credentials carry
// a prefix (`ph_` tokens, `phd_` device tokens, `phc_` codes); an Authorization header, `token` or `code`
// parameter without it belongs to the app and is left alone.
import type { IncomingHttpHeaders } from 'node:http';
import { CODE_PREFIX, TOKEN_PREFIX } from '../secrets/token.js';

export type PresentedCredential =
  | { kind: 'bearer'; secret: string }
  | { kind: 'query-token'; secret: string }
  | { kind: 'query-code'; secret: string }
  | { kind: 'cookie'; secret: string };

/** Cookie name carrying the gateway id, so several gateways can share a host (DESIGN §3). */
export function sessionCookieName(gatewayId: string, secure: boolean): string {
  return `${secure ? '__Host-' : ''}porthole_session_${gatewayId}`;
}

/** The bearer token if it is porthole's, else undefined (the app's own, or none). */
export function portholeBearer(headers: IncomingHttpHeaders): string | undefined {
  const auth = headers.authorization;
  if (auth === undefined || auth.length < 8 || auth.slice(0, 7).toLowerCase() !== 'bearer ') return undefined;
  const value = auth.slice(7).trim();
  // `phd_`: a paired device's token (docs/pairing.md), porthole's like `ph_`.
  return value.startsWith(TOKEN_PREFIX) || value.startsWith('phd_') ? value : undefined;
}

/** Reads one cookie by name from the Cookie header (RFC 6265 §5.4), without decoding. */
export function readCookie(headers: IncomingHttpHeaders, name: string): string | undefined {
  const header = headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The session cookie: HttpOnly, SameSite=Lax, and Secure on https (with the `__Host-` name). */
export function sessionCookieHeader(name: string, id: string, maxAge: number, secure: boolean): string {
  return `${name}=${id}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;
}

/** Clears the session cookie `name` (a `__Host-` cookie can only be cleared with Secure). */
export function clearCookieHeader(name: string): string {
  const secure = name.startsWith('__Host-') ? '; Secure' : '';
  return `${name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax${secure}`;
}

/** porthole's query credentials (`token=ph_…`, `code=phc_…`) found in a URL's query. */
export function queryCredential(search: URLSearchParams): PresentedCredential | undefined {
  for (const v of search.getAll('code')) if (v.startsWith(CODE_PREFIX)) return { kind: 'query-code', secret: v };
  for (const v of search.getAll('token')) {
    if (v.startsWith(TOKEN_PREFIX) && !v.startsWith(CODE_PREFIX)) return { kind: 'query-token', secret: v };
  }
  return undefined;
}

/**
 * Removes porthole's own query parameters from a request target, keeping every other
 * parameter (and the app's own `token`/`code` values) in order. Returns the new target.
 */
export function stripPortholeParams(target: string): string {
  const q = target.indexOf('?');
  if (q < 0) return target;
  const path = target.slice(0, q);
  const kept = target
    .slice(q + 1)
    .split('&')
    .filter((pair) => {
      // Decode exactly as queryCredential does (URLSearchParams), so whatever it
      // recognises — `tok%65n=`, lenient escapes — is what gets removed.
      const first = new URLSearchParams(pair).entries().next();
      if (first.done) return true;
      const [name, value] = first.value;
      if (name !== 'token' && name !== 'code') return true;
      return !(value.startsWith(TOKEN_PREFIX) || value.startsWith(CODE_PREFIX));
    });
  return kept.length ? `${path}?${kept.join('&')}` : path;
}

/** Removes porthole's session cookie from a Cookie header, keeping the app's cookies. */
export function stripCookie(header: string, names: readonly string[]): string | undefined {
  const kept = header
    .split(';')
    .map((p) => p.trim())
    .filter((p) => {
      if (!p) return false;
      const eq = p.indexOf('=');
      return !names.includes(eq < 0 ? p : p.slice(0, eq).trim());
    });
  return kept.length ? kept.join('; ') : undefined;
}
