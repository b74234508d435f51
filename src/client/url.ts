// Turning a gateway URL into the control plane's ws(s) URL, and refusing plain ws:// to
// hosts on the open internet (the proof would be safe, the traffic would not). Pure.
import { CONTROL_PATH } from '../control/wire.js';
import { ControlError } from './errors.js';

/**
 * http(s)://host[:port][/base] or ws(s)://… → ws(s)://host[:port][/base]/_porthole/ws.
 * Query, fragment and userinfo are refused: a credential in a URL ends up in logs.
 */
export function controlUrl(input: string): URL {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new ControlError('INVALID_ARGUMENT', `invalid gateway URL "${input}"`);
  }
  const scheme = { 'http:': 'ws:', 'ws:': 'ws:', 'https:': 'wss:', 'wss:': 'wss:' }[url.protocol];
  if (scheme === undefined) throw new ControlError('INVALID_ARGUMENT', `unsupported URL scheme "${url.protocol}": use https:// (or http:// on a private network)`);
  if (url.username || url.password || url.search || url.hash) {
    throw new ControlError('INVALID_ARGUMENT', 'the gateway URL must not carry credentials, a query or a fragment: pass the token separately');
  }
  const out = new URL(`${scheme}//${url.host}`);
  const base = url.pathname.replace(/\/+$/, '');
  out.pathname = base.endsWith(CONTROL_PATH) ? base : `${base}${CONTROL_PATH}`;
  if (scheme === 'ws:' && !isPrivateHost(out.hostname)) {
    throw new ControlError(
      'CONTROL_INSECURE_URL',
      `refusing plain ws:// to ${out.hostname}, which is not a loopback or private address: use https:// ` +
        '(porthole serve --tls self-signed, then pass its pin)',
    );
  }
  return out;
}

/** localhost, loopback, RFC 1918, link-local, CGNAT/tailnet (100.64/10), IPv6 ULA and link-local. */
export function isPrivateHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    return a === 127 || a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b <= 127);
  }
  if (h.includes(':')) {
    if (h === '::1') return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    if (mapped) return isPrivateHost(mapped[1]!);
    const first = Number.parseInt(h.split(':')[0] || '0', 16);
    return (first & 0xfe00) === 0xfc00 || (first & 0xffc0) === 0xfe80;
  }
  return false;
}
