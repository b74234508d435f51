// The app porthole forwards to: one pure parser from the shorthand `tailscale serve` users
// already type ("3000", "localhost:3000", "unix:/run/app.sock") to a Target.
import { isAbsolute } from 'node:path';
import { PortholeError } from '../errors.js';

/** Where the gateway sends app traffic. `url` is origin + base path (no trailing slash unless root). */
export type Target = { kind: 'http'; url: URL } | { kind: 'unix'; path: string };

const ACCEPTED =
  'accepted forms: 3000, :3000, localhost:3000, 127.0.0.1:3000, [::1]:3000, ' +
  'http://host:port[/base], https://host[:port][/base], unix:/absolute/path.sock';

// Grammar (checked in this order):
//   target    = "unix:" abs-path
//             / ("http" / "https") "://" authority [ path ]      ; no userinfo, query or fragment
//             / [ host ] ":" port / port                          ; shorthand, always http
//   host      = dns-name / ipv4 / "[" ipv6 "]"
//   port      = 1*5DIGIT                                          ; 1..65535
// Whitespace and control characters are refused anywhere: WHATWG URL would silently strip
// them and turn a typo into a different address.
const CONTROL_OR_SPACE = /[\s\x00-\x1f\x7f]/;
const PORT_ONLY = /^:?(\d{1,5})$/;
const HOST_PORT = /^([A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$/;
// `://` is required: `new URL('http:3000')` would quietly mean host 0.0.11.184.
const FULL_URL = /^(https?):\/\/([^/?#]*)/i;
const AUTHORITY_PORT = /:(\d+)$/;
const SCHEME_NAME = /^https?$/i;

/**
 * Parse a target, e.g. "3000" → http://127.0.0.1:3000, "[::1]:3000", "http://127.0.0.1:3000/app",
 * "unix:/run/app.sock". Throws PortholeError('TARGET_INVALID') naming the input and the accepted forms.
 */
export function parseTarget(input: string): Target {
  if (typeof input !== 'string' || input === '') throw invalid(String(input ?? ''), 'it is empty');
  if (CONTROL_OR_SPACE.test(input)) throw invalid(input, 'it contains whitespace or control characters');

  if (input.startsWith('unix:')) {
    const path = input.slice(5);
    if (path === '' || !isAbsolute(path)) throw invalid(input, 'a unix socket path must be absolute');
    return { kind: 'unix', path };
  }

  const full = FULL_URL.exec(input);
  if (full !== null) return { kind: 'http', url: parseUrl(input, full[2]!) };
  if (input.includes('://')) throw invalid(input, 'only http://, https:// and unix: targets are supported');

  const portOnly = PORT_ONLY.exec(input);
  if (portOnly !== null) return { kind: 'http', url: shorthand(input, '127.0.0.1', portOnly[1]!) };
  const hostPort = HOST_PORT.exec(input);
  if (hostPort !== null) {
    // "http:3000" is a typo for a URL far more often than a host named "http".
    if (SCHEME_NAME.test(hostPort[1]!)) throw invalid(input, 'a URL needs "://" after the scheme');
    return { kind: 'http', url: shorthand(input, hostPort[1]!, hostPort[2]!) };
  }
  throw invalid(input, 'it is not a port, host:port, URL or unix: path');
}

/** A short, secret-free description for logs and banners: "http://127.0.0.1:3000/app", "unix:/run/app.sock". */
export function describeTarget(t: Target): string {
  if (t.kind === 'unix') return `unix:${t.path}`;
  return t.url.pathname === '/' ? t.url.origin : t.url.origin + t.url.pathname;
}

function shorthand(input: string, host: string, port: string): URL {
  checkPort(input, port);
  // Parsing through URL normalises the host exactly as the full form would ("[::1]", case).
  return new URL(`http://${host}:${port}`);
}

function parseUrl(input: string, authority: string): URL {
  if (input.includes('?') || input.includes('#')) {
    throw invalid(input, 'a target cannot carry a query or fragment');
  }
  if (authority.includes('@')) throw invalid(input, 'a target cannot carry credentials');
  if (authority === '') throw invalid(input, 'the URL has no host');
  const port = AUTHORITY_PORT.exec(authority);
  if (port !== null) checkPort(input, port[1]!);
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw invalid(input, 'it is not a valid URL');
  }
  // The base path is prefixed to every forwarded path, so "/app/" and "/app" mean the same
  // and must not produce "/app//x".
  let base = url.pathname;
  while (base.length > 1 && base.endsWith('/')) base = base.slice(0, -1);
  url.pathname = base;
  return url;
}

function checkPort(input: string, port: string): void {
  const n = Number(port);
  if (!(n >= 1 && n <= 65535)) throw invalid(input, `port ${port} is outside 1-65535`);
}

function invalid(input: string, reason: string): PortholeError {
  return new PortholeError('TARGET_INVALID', `invalid target ${JSON.stringify(redact(input))}: ${reason}; ${ACCEPTED}`);
}

// The message names the input, so userinfo (a password, most likely) is masked first.
function redact(input: string): string {
  const m = FULL_URL.exec(input);
  if (m === null || !m[2]!.includes('@')) return input;
  const at = m[2]!.lastIndexOf('@');
  return `${m[1]}://***@${m[2]!.slice(at + 1)}${input.slice(m[0].length)}`;
}
