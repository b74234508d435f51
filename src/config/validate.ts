// Value checks for config keys whose strings have a grammar (hosts, origins, CIDRs, URLs,
// header names, DNS labels). Each returns the value, normalised where matching code
// downstream compares exactly, or a problem that says what form is expected.
// Problems never echo URLs: they may carry credentials.
import { RESERVED, subdomainSyntaxProblem } from '../relay/names.js';
import { BlockList, isIP } from 'node:net';
import { sshDestinationProblem } from '../ssh/target.js';

export type Checked<T> = { value: T; problem?: undefined } | { problem: string; value?: undefined };
export const ok = <T>(value: T): Checked<T> => ({ value });
export const bad = (problem: string): Checked<never> => ({ problem });

/** Quotes a value for a problem message, shortened so one bad entry cannot flood it. */
export function quote(value: string): string {
  return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
}

// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens. The last
// label must not be all digits, or "192.168.1" would pass as a name (WHATWG reads it as an IP).
const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const HOSTNAME = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})*$`, 'i');

export function isHostname(host: string): boolean {
  return HOSTNAME.test(host) && !/^\d+$/.test(host.slice(host.lastIndexOf('.') + 1));
}

/** Canonical IPv6 text (lower case, compressed), as WHATWG URL hostnames spell it. */
function canonicalIPv6(ip: string): string {
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
}

/** "host", "host:port", "[v6]" or "[v6]:port" → parts; undefined when malformed. */
function splitHostPort(s: string): { host: string; v6: boolean; port?: string } | undefined {
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    const host = s.slice(1, end);
    const rest = s.slice(end + 1);
    if (end < 0 || isIP(host) !== 6 || host.includes('%')) return undefined;
    if (rest === '') return { host, v6: true };
    return rest.startsWith(':') ? { host, v6: true, port: rest.slice(1) } : undefined;
  }
  const colon = s.indexOf(':');
  if (colon < 0) return { host: s, v6: false };
  if (s.indexOf(':', colon + 1) >= 0) return undefined; // bare IPv6 needs brackets here
  return { host: s.slice(0, colon), v6: false, port: s.slice(colon + 1) };
}

const validPort = (p: string): boolean => /^\d{1,5}$/.test(p) && Number(p) >= 1 && Number(p) <= 65535;
const isHostOrIPv4 = (h: string): boolean => isIP(h) === 4 || isHostname(h);

/** gateway.host: an IP (IPv6 with or without brackets) or a host name; stored bare for listen(). */
export function checkHost(v: string): Checked<string> {
  const host = v.startsWith('[') && v.endsWith(']') ? v.slice(1, -1) : v;
  if (isIP(host) !== 0 || isHostname(host)) return ok(host);
  return bad(`expected an IP address or host name, got ${quote(v)}`);
}

/**
 * gateway.allowed_origins entry. Grammar: `scheme "://" host [":" port] ["/"]` — a full
 * origin matched exactly (http/https normalised as browsers send them: lower case, default
 * port dropped, no trailing slash); or a bare `host` / IPv4 / IPv6 (stored as "[v6]", the
 * URL hostname form) matching any scheme and port of that host. No wildcards, no "null".
 */
export function checkOrigin(v: string): Checked<string> {
  const full = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/i.exec(v);
  if (full) {
    const scheme = full[1]!.toLowerCase();
    const rest = full[2]!.endsWith('/') ? full[2]!.slice(0, -1) : full[2]!;
    if (/[/?#@\s]/.test(rest)) return bad(`an origin has no path, query or credentials: ${quote(v)}`);
    const hp = splitHostPort(rest);
    if (!hp || !(hp.v6 || isHostOrIPv4(hp.host)) || (hp.port !== undefined && !validPort(hp.port))) {
      return bad(`expected scheme://host[:port], got ${quote(v)}`);
    }
    if (scheme === 'http' || scheme === 'https') return ok(new URL(`${scheme}://${rest}`).origin);
    const host = hp.v6 ? `[${canonicalIPv6(hp.host)}]` : hp.host.toLowerCase();
    return ok(`${scheme}://${host}${hp.port === undefined ? '' : `:${Number(hp.port)}`}`);
  }
  if (v === '*' || v.toLowerCase() === 'null') {
    return bad(`${quote(v)} would allow any site; list the origins or hosts you mean`);
  }
  const bare = v.startsWith('[') && v.endsWith(']') ? v.slice(1, -1) : v;
  if (isIP(bare) === 6 && !bare.includes('%')) return ok(`[${canonicalIPv6(bare)}]`);
  if (isHostOrIPv4(v)) return ok(v.toLowerCase());
  if (splitHostPort(v)?.port !== undefined) {
    return bad(`a bare host has no port; write scheme://host:port to allow one exact origin: ${quote(v)}`);
  }
  return bad(`expected an origin (https://host[:port]) or a bare host name or IP, got ${quote(v)}`);
}

/** gateway.trusted_proxies entry: an IPv4/IPv6 address, optionally with a /prefix length. */
export function checkCidr(v: string): Checked<string> {
  const slash = v.indexOf('/');
  const ip = slash < 0 ? v : v.slice(0, slash);
  const family = isIP(ip);
  if (family === 0) return bad(`expected an IP address or CIDR (10.0.0.0/8, fd00::/8), got ${quote(v)}`);
  if (slash < 0) return ok(v);
  const prefix = v.slice(slash + 1);
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) {
    return bad(`prefix length must be 0–${max} in ${quote(v)}`);
  }
  return ok(v);
}

function parseHttpUrl(v: string): URL | string {
  if (!/^https?:\/\//i.test(v)) return 'expected an http:// or https:// URL';
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    return 'not a valid URL';
  }
  if (url.username || url.password) return 'a URL here must not carry credentials';
  return url;
}

// Where plain http may serve porthole: addresses no one outside the site can route to.
// Loopback (RFC 1122), RFC 1918, CGNAT/tailnets (RFC 6598), link-local (RFC 3927, RFC 4291
// §2.5.6), ULA (RFC 4193). IPv4-mapped IPv6 matches the IPv4 blocks (BlockList does that).
const LOCAL_NETS = new BlockList();
for (const [net, prefix] of [['127.0.0.0', 8], ['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16], ['100.64.0.0', 10], ['169.254.0.0', 16]] as const) {
  LOCAL_NETS.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [['::1', 128], ['fc00::', 7], ['fe80::', 10]] as const) LOCAL_NETS.addSubnet(net, prefix, 'ipv6');

/** A URL hostname (WHATWG form: IPv6 in brackets) that only this host or its site can reach. */
export function isLocalUrlHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
  const family = isIP(host);
  if (family !== 0) return LOCAL_NETS.check(host, family === 4 ? 'ipv4' : 'ipv6');
  return host === 'localhost' || host.endsWith('.localhost') || host.endsWith('.local');
}

/**
 * gateway.public_url: `scheme "://" host [":" port] ["/"]`, stored as the origin (a trailing
 * "/" dropped). https for anything public; http only for loopback, RFC 1918, CGNAT, link-local,
 * ULA and `.local` hosts, where a token sent in clear stays inside the site. No path, query,
 * fragment or userinfo: the URL names an origin, which joins the Host and Origin allowlists.
 */
export function checkPublicUrl(v: string): Checked<string> {
  const url = parseHttpUrl(v);
  if (typeof url === 'string') return bad(url);
  // On the raw text: WHATWG would quietly turn "https://h/." or "https://h\\" into "https://h/".
  if (!/^https?:\/\/[^/?#\\]*\/?$/i.test(v)) {
    return bad('expected an origin without path, query or fragment, e.g. https://desk.example.com');
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  // WHATWG keeps ; { } $ ' " ` * in a hostname; public_url goes verbatim into generated nginx
  // and Caddy configs (an nginx `$var`, a new directive). A DNS name or an IP address only.
  if (isIP(host) === 0 && !/^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?$/.test(host)) {
    return bad(`the host ${JSON.stringify(host)} is not a DNS name or an IP address`);
  }
  if (host === '0.0.0.0' || host === '::') return bad('a wildcard address is not a URL a browser can open; use the name or address visitors use');
  if (url.protocol === 'http:' && !isLocalUrlHost(url.hostname)) {
    return bad(
      'http:// is only allowed for loopback, private (RFC 1918, 100.64/10, fc00::/7), link-local and .local hosts; a public name needs https:// (the token would cross the internet in clear)',
    );
  }
  return ok(url.origin);
}

/** remote.url: an http(s) URL without credentials, query or fragment (a path is allowed). */
export function checkRemoteUrl(v: string): Checked<string> {
  const url = parseHttpUrl(v);
  if (typeof url === 'string') return bad(url);
  if (/[?#]/.test(v)) return bad('expected a URL without query or fragment');
  return ok(v);
}

// RFC 9110 §5.6.2 token characters.
const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/i;
// Headers the gateway itself reads or sets: a proxy user header must not alias them.
const RESERVED_HEADERS = new Set(['host', 'cookie', 'authorization', 'forwarded', 'x-forwarded-for']);

/** auth.trusted_proxy.user_header: an HTTP field name porthole does not already own. */
export function checkHeaderName(v: string): Checked<string> {
  if (!TOKEN.test(v)) return bad(`expected an HTTP header name, got ${quote(v)}`);
  const lower = v.toLowerCase();
  if (lower.startsWith('x-porthole-') || RESERVED_HEADERS.has(lower)) {
    return bad(`${quote(v)} is set or read by porthole itself; use the header your proxy sets`);
  }
  return ok(v);
}

/**
 * tunnel.subdomain: the relay's own rule (src/relay/names.ts), so that `config check` finds
 * what registration would refuse: one DNS label of 3–63 a-z, 0-9 and inner hyphens, not an
 * IDNA label ("xn--"), not a reserved name.
 */
export function checkLabel(v: string): Checked<string> {
  if (!/^[\x20-\x7e]*$/.test(v)) return bad(`expected one DNS label of a-z, 0-9 and inner hyphens, got ${quote(v)} (internationalised names are not accepted)`);
  const label = v.toLowerCase();
  const problem = subdomainSyntaxProblem(label);
  if (problem !== undefined) return bad(`expected one DNS label of 3 to 63 a-z, 0-9 and inner hyphens, got ${quote(v)}, which ${problem}`);
  if (RESERVED.has(label)) return bad(`${quote(v)} is reserved on porthole relays (a name visitors or software would trust as the relay's own); pick another`);
  return ok(label);
}

/** tunnel.acme_directory: an https:// URL (an ACME account and its certificates are never fetched in the clear). */
export function checkHttpsUrl(v: string): Checked<string> {
  const url = parseHttpUrl(v);
  if (typeof url === 'string') return bad(url);
  if (url.protocol !== 'https:') return bad(`expected an https:// URL, got ${quote(v)}`);
  return ok(v);
}

/** tunnel.acme_email: one plain address (the CA sends expiry notices there). */
export function checkEmail(v: string): Checked<string> {
  return /^[^\s@:,<>"]+@[a-z0-9.-]+\.[a-z]{2,}$/i.test(v) ? ok(v) : bad(`expected an e-mail address like name@example.com, got ${quote(v)}`);
}

/** tunnel.relay: host:port, IPv6 in brackets. */
export function checkHostPort(v: string): Checked<string> {
  const hp = splitHostPort(v);
  if (!hp || hp.port === undefined || !validPort(hp.port) || !(hp.v6 || isHostOrIPv4(hp.host))) {
    return bad(`expected host:port (IPv6 as [addr]:port), got ${quote(v)}`);
  }
  return ok(v);
}

/**
 * auth.public_paths entry: an absolute path prefix. It must not overlap porthole's own
 * endpoints (a prefix such as "/" or "/_port" would cover "/_porthole/…" too), and dot
 * segments are refused so the prefix means what it reads as.
 */
export function checkPublicPath(v: string): Checked<string> {
  if (!v.startsWith('/') || /[\s?#]/.test(v)) {
    return bad(`expected an absolute path starting with "/" (no query), got ${quote(v)}`);
  }
  if (v === '/') return bad('"/" would make every app path public; list the webhook paths instead');
  const lower = v.toLowerCase();
  if ('/_porthole/'.startsWith(lower) || lower.startsWith('/_porthole/')) {
    return bad(`${quote(v)} overlaps porthole's own endpoints under /_porthole/`);
  }
  if (/(^|\/)\.\.?(\/|$)/.test(v) || v.includes('//')) {
    return bad(`${quote(v)} has empty or dot segments`);
  }
  return ok(v);
}

/** A single word: tailscale logins (user@github, name@example.com). */
export function checkWord(v: string): Checked<string> {
  return /\s/.test(v) ? bad(`expected a login without spaces, got ${quote(v)}`) : ok(v);
}

/** remote.ssh_target: [user@]host; never starting with "-", which ssh would read as an option. */
/** remote.ssh_target: the same rule `porthole ssh-tunnel` and remote mode apply (src/ssh/target.ts). */
export function checkSshTarget(v: string): Checked<string> {
  const why = sshDestinationProblem(v);
  return why === undefined ? ok(v) : bad(why);
}

/** remote.tls_pin: "sha256/<base64>" (public key) or the certificate's SHA-256 "AA:BB:…" (the SDK's src/client/pin.ts). */
export function checkTlsPin(v: string): Checked<string> {
  const t = v.trim();
  if (/^sha256\/[A-Za-z0-9+/]{43}=$/.test(t) || /^[0-9a-fA-F]{64}$/.test(t.replace(/:/g, ''))) return ok(t);
  return bad(`expected "sha256/<base64>" (the public key pin \`porthole serve\` prints) or a certificate SHA-256 "AA:BB:…", got ${quote(v)}`);
}
