// Trusted-proxy authentication (auth.mode = "trusted-proxy", DESIGN §2-3): an SSO proxy
// (oauth2-proxy, Authelia, Pomerium, nginx auth_request, …) signs users in and names the
// user in a header. porthole believes that header only on a request whose TCP peer is
// inside gateway.trusted_proxies (ingress class `trusted-proxy`, decided by classify.ts);
// from anywhere else the header is ignored here and stripped before forwarding.
import type { IncomingMessage } from 'node:http';
import { PortholeError } from '../errors.js';

export interface TrustedProxyOptions {
  /** auth.trusted_proxy.user_header, e.g. "X-Forwarded-User". */
  userHeader: string;
  /** auth.trusted_proxy.required_headers: each must be present once and non-empty. */
  requiredHeaders: readonly string[];
  /** auth.trusted_proxy.allow_users: exact, case-sensitive; empty = any user. */
  allowUsers: readonly string[];
}

export type ProxyUser = { ok: true; user: string } | { ok: false; err: PortholeError };

/** Longest user name accepted (emails are ≤ 254). */
const MAX_USER_CHARS = 256;
// Control characters (C0, DEL, C1): never in a user name; they could forge log lines.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** The values a header was sent with, one per field line (duplicates kept apart). */
function values(req: Pick<IncomingMessage, 'headersDistinct'>, name: string): string[] {
  return req.headersDistinct[name.toLowerCase()] ?? [];
}

/**
 * The user a trusted proxy asserts. Call only for ingress class `trusted-proxy` with a
 * known client address. Fails closed: a missing, empty, repeated or malformed header, a
 * missing required header, or a user outside allow_users is refused.
 */
export function proxyUser(req: Pick<IncomingMessage, 'headersDistinct'>, opts: TrustedProxyOptions): ProxyUser {
  const sent = values(req, opts.userHeader);
  if (sent.length === 0 || sent.every((v) => v.trim() === '')) {
    return {
      ok: false,
      err: new PortholeError('AUTH_REQUIRED', `sign in through the proxy (it named no user in ${opts.userHeader})`),
    };
  }
  // Two copies mean two writers (the client's and the proxy's): which one is the proxy's is
  // unknowable, so neither is believed.
  if (sent.length > 1) {
    return { ok: false, err: new PortholeError('USER_NOT_ALLOWED', `${opts.userHeader} was sent more than once`) };
  }
  const user = sent[0]!.trim();
  if (user.length > MAX_USER_CHARS || CONTROL.test(user)) {
    return { ok: false, err: new PortholeError('USER_NOT_ALLOWED', `${opts.userHeader} does not hold a valid user name`) };
  }
  for (const name of opts.requiredHeaders) {
    const v = values(req, name);
    if (v.length !== 1 || v[0]!.trim() === '') {
      return {
        ok: false,
        err: new PortholeError('AUTH_REQUIRED', `the proxy did not send ${name} (required by auth.trusted_proxy.required_headers)`),
      };
    }
  }
  if (opts.allowUsers.length > 0 && !opts.allowUsers.includes(user)) {
    // The name is the proxy's, not a secret; it is not echoed to avoid reflecting input.
    return { ok: false, err: new PortholeError('USER_NOT_ALLOWED', 'this user is not allowed on this gateway') };
  }
  return { ok: true, user };
}
