// Address utilities for ingress classification and rate limiting: canonical IP text, address
// classes, CIDR matching, rate-limit keys and Host header parsing. Pure: no I/O, no DNS.
import { PortholeError } from '../errors.js';

// Dotted-quad IPv4 (RFC 3986 §3.2.2 IPv4address): four decimal octets, no leading zeros
// (which some resolvers read as octal), no shorthand forms like "127.1".
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;
/** Longest IPv6 text (RFC 4291 §2.2 form 3 with every group written out) plus a generous zone. */
const MAX_ADDRESS_LENGTH = 45 + 1 + 64;

function parseIPv4(text: string): Uint8Array | undefined {
  if (!IPV4.test(text)) return undefined;
  // The pattern has validated every octet; a digit loop is ~50× cheaper than Uint8Array.from(split, Number).
  const bytes = new Uint8Array(4);
  let part = 0;
  let value = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46 /* "." */) {
      bytes[part++] = value;
      value = 0;
    } else {
      value = value * 10 + (c - 48);
    }
  }
  bytes[part] = value;
  return bytes;
}

/**
 * IPv6 text → 16 bytes, per RFC 4291 §2.2:
 *   address = groups of 1–4 hex digits separated by ':' (8 in all), where one run of
 *   zero groups may be written '::', and the last 32 bits may be written as IPv4
 *   dotted-quad (form 3: "::ffff:1.2.3.4", "64:ff9b::1.2.3.4").
 * No zone id here (the caller strips it), no brackets.
 */
function parseIPv6(text: string): Uint8Array | undefined {
  if (text.length < 2 || text.length > 45) return undefined;
  const gap = text.indexOf('::');
  // A second '::' (which also catches ':::') makes the address ambiguous.
  if (gap !== -1 && text.indexOf('::', gap + 1) !== -1) return undefined;
  const headText = gap === -1 ? text : text.slice(0, gap);
  const tailText = gap === -1 ? '' : text.slice(gap + 2);
  const head = headText === '' ? [] : headText.split(':');
  const tail = tailText === '' ? [] : tailText.split(':');
  const last = tail.length > 0 ? tail : head;

  const groups: number[] = [];
  const pushAll = (parts: string[], isLast: boolean): boolean => {
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (isLast && i === parts.length - 1 && part.includes('.')) {
        const v4 = parseIPv4(part);
        if (v4 === undefined) return false;
        groups.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else if (HEX_GROUP.test(part)) {
        groups.push(Number.parseInt(part, 16));
      } else {
        return false; // empty group (stray ':'), too many digits, or junk
      }
    }
    return true;
  };
  // An embedded IPv4 tail is allowed only as the final element of the whole address.
  if (!pushAll(head, last === head && gap === -1)) return undefined;
  const headCount = groups.length;
  if (!pushAll(tail, true)) return undefined;

  const bytes = new Uint8Array(16);
  if (gap === -1) {
    if (groups.length !== 8) return undefined;
  } else if (groups.length > 7) {
    return undefined; // '::' stands for at least one zero group
  }
  const tailStart = 8 - (groups.length - headCount);
  groups.forEach((group, i) => {
    const at = i < headCount ? i : tailStart + (i - headCount);
    bytes[at * 2] = group >> 8;
    bytes[at * 2 + 1] = group & 0xff;
  });
  return bytes;
}

/** ::ffff:0:0/96 (RFC 4291 §2.5.5.2). */
function isMapped(bytes: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return bytes[10] === 0xff && bytes[11] === 0xff;
}

/** RFC 5952 §4: lowercase, no leading zeros, '::' for the longest run (≥ 2) of zero groups, the first on a tie. */
function formatIPv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  let bestStart = -1;
  let bestLength = 1; // a single zero group is never compressed (§4.2.2)
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (part: number[]) => part.map((g) => g.toString(16)).join(':');
  if (bestStart === -1) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}

interface ParsedAddress {
  family: 4 | 6;
  bytes: Uint8Array;
  /** Canonical text, filled in by normalizeAddress the first time it is asked. */
  text?: string;
}

/** Distinct address texts whose parse is remembered (peers, bind and Host addresses recur on every request). */
const PARSE_CACHE_ENTRIES = 1024;
const parseCache = new Map<string, ParsedAddress | null>();

/**
 * Parses after stripping a zone id; IPv4-mapped IPv6 comes back as IPv4. Memoised: the result
 * is shared, callers must not modify its bytes.
 */
function parseAddress(addr: string | undefined): ParsedAddress | undefined {
  if (typeof addr !== 'string' || addr.length === 0 || addr.length > MAX_ADDRESS_LENGTH) return undefined;
  const hit = parseCache.get(addr);
  if (hit !== undefined) return hit ?? undefined;
  const result = parseAddressUncached(addr);
  // Bounded: a Host header is client-chosen text.
  if (parseCache.size >= PARSE_CACHE_ENTRIES) parseCache.clear();
  parseCache.set(addr, result ?? null);
  return result;
}

function parseAddressUncached(addr: string): ParsedAddress | undefined {
  const v4 = parseIPv4(addr);
  if (v4 !== undefined) return { family: 4, bytes: v4 };
  let text = addr;
  const zone = addr.indexOf('%');
  if (zone !== -1) {
    // RFC 4007 §11: "<address>%<zone_id>"; the zone is local to this host and means nothing here.
    if (zone === addr.length - 1) return undefined;
    text = addr.slice(0, zone);
  }
  const v6 = parseIPv6(text);
  if (v6 === undefined) return undefined;
  if (isMapped(v6)) return { family: 4, bytes: v6.slice(12) };
  return { family: 6, bytes: v6 };
}

function formatAddress(parsed: ParsedAddress): string {
  return parsed.family === 4 ? parsed.bytes.join('.') : formatIPv6(parsed.bytes);
}

/**
 * Canonical form: strips IPv6 zone ids (%eth0), turns IPv4-mapped IPv6 (::ffff:1.2.3.4, also
 * hex form ::ffff:0102:0304) into plain IPv4, lowercases and compresses IPv6 canonically
 * (RFC 5952). Returns undefined for anything that is not an IP.
 */
export function normalizeAddress(addr: string | undefined): string | undefined {
  const parsed = parseAddress(addr);
  if (parsed === undefined) return undefined;
  parsed.text ??= formatAddress(parsed);
  return parsed.text;
}

function inPrefix(bytes: Uint8Array, network: ArrayLike<number>, prefix: number): boolean {
  let bits = prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((bytes[i]! & mask) !== ((network[i] ?? 0) & mask)) return false;
  }
  return true;
}

/** 127.0.0.0/8 (RFC 1122 §3.2.1.3), ::1 (RFC 4291 §2.5.3), and their IPv4-mapped forms. */
export function isLoopbackAddress(addr: string | undefined): boolean {
  const parsed = parseAddress(addr);
  if (parsed === undefined) return false;
  if (parsed.family === 4) return parsed.bytes[0] === 127;
  return inPrefix(parsed.bytes, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 128);
}

/** 10/8, 172.16/12, 192.168/16 (RFC 1918), 100.64/10 (RFC 6598: CGNAT, tailnets), fc00::/7 (RFC 4193). */
export function isPrivateAddress(addr: string): boolean {
  const parsed = parseAddress(addr);
  if (parsed === undefined) return false;
  const b = parsed.bytes;
  if (parsed.family === 6) return inPrefix(b, [0xfc], 7);
  return inPrefix(b, [10], 8) || inPrefix(b, [172, 16], 12) || inPrefix(b, [192, 168], 16) || inPrefix(b, [100, 64], 10);
}

/** 169.254/16 (RFC 3927), fe80::/10 (RFC 4291 §2.5.6). */
export function isLinkLocalAddress(addr: string): boolean {
  const parsed = parseAddress(addr);
  if (parsed === undefined) return false;
  return parsed.family === 4 ? inPrefix(parsed.bytes, [169, 254], 16) : inPrefix(parsed.bytes, [0xfe, 0x80], 10);
}

/** A parsed address block. `bytes` has the host bits cleared; `text` is the canonical "network/prefix". */
export interface Cidr {
  family: 4 | 6;
  bytes: Uint8Array;
  prefix: number;
  text: string;
}

/**
 * "10.0.0.0/8", "2001:db8::/32", or a bare IP (= /32 or /128). Throws
 * PortholeError('INVALID_ARGUMENT') naming the input. Host bits set beyond the prefix are
 * allowed (masked). A block inside ::ffff:0:0/96 (prefix ≥ 96) becomes the IPv4 block it
 * maps, so "::ffff:10.0.0.0/104" is 10.0.0.0/8. Zone ids are refused.
 */
export function parseCidr(text: string): Cidr {
  const fail = (): never => {
    throw new PortholeError('INVALID_ARGUMENT', `invalid CIDR ${JSON.stringify(String(text).slice(0, 120))}`);
  };
  if (typeof text !== 'string' || text.includes('%')) return fail();
  const slash = text.indexOf('/');
  const addrText = slash === -1 ? text : text.slice(0, slash);
  let parsed: ParsedAddress | undefined;
  let isV4Text = false;
  const v4 = parseIPv4(addrText);
  if (v4 !== undefined) {
    parsed = { family: 4, bytes: v4 };
    isV4Text = true;
  } else {
    const v6 = parseIPv6(addrText);
    if (v6 !== undefined) parsed = { family: 6, bytes: v6 };
  }
  if (parsed === undefined) return fail();
  const maxPrefix = isV4Text ? 32 : 128;
  let prefix = maxPrefix;
  if (slash !== -1) {
    const prefixText = text.slice(slash + 1);
    if (!/^(?:0|[1-9]\d{0,2})$/.test(prefixText)) return fail();
    prefix = Number(prefixText);
    if (prefix > maxPrefix) return fail();
  }
  let { family, bytes } = parsed;
  if (family === 6 && prefix >= 96 && isMapped(bytes)) {
    family = 4;
    bytes = bytes.slice(12);
    prefix -= 96;
  }
  const masked = new Uint8Array(bytes.length);
  for (let i = 0, bits = prefix; i < bytes.length && bits > 0; i++, bits -= 8) {
    masked[i] = bytes[i]! & (bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff);
  }
  return { family, bytes: masked, prefix, text: `${formatAddress({ family, bytes: masked })}/${prefix}` };
}

/**
 * Whether `addr` lies inside `cidr`. IPv4-mapped IPv6 addresses match IPv4 blocks. An IPv4
 * address never matches an IPv6 block (so "::/0" does not cover IPv4 peers): for trust lists
 * a surprise should mean "not trusted".
 */
export function cidrContains(cidr: Cidr, addr: string): boolean {
  const parsed = parseAddress(addr);
  if (parsed === undefined || parsed.family !== cidr.family) return false;
  return inPrefix(parsed.bytes, cidr.bytes, cidr.prefix);
}

/** Parses every entry up front (throwing INVALID_ARGUMENT on the first bad one); the matcher never throws. */
export function createCidrMatcher(list: readonly string[]): (addr: string | undefined) => boolean {
  const cidrs = list.map(parseCidr);
  return (addr) => {
    if (addr === undefined || cidrs.length === 0) return false;
    return cidrs.some((cidr) => cidrContains(cidr, addr));
  };
}

/**
 * The key used for rate limiting: IPv4 → the address; IPv6 → its /64 as "2001:db8:1:2::/64"
 * (one subscriber usually holds a whole /64, RFC 6177); mapped IPv4 → IPv4. Non-IPs are
 * returned unchanged (e.g. an Origin used as key).
 */
export function clientKey(addr: string): string {
  const parsed = parseAddress(addr);
  if (parsed === undefined) return addr;
  if (parsed.family === 4) return formatAddress(parsed);
  const network = new Uint8Array(16);
  network.set(parsed.bytes.subarray(0, 8));
  return `${formatIPv6(network)}/64`;
}

// RFC 3986 §3.2.2 reg-name = *( unreserved / pct-encoded / sub-delims )
//   unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"
//   sub-delims = "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "="
const REG_NAME = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+$/;
const PORT = /^\d*$/;
const MAX_HOST_LENGTH = 255;

/**
 * Parses an HTTP Host header (RFC 9110 §7.2: Host = uri-host [ ":" port ], with uri-host the
 * RFC 3986 §3.2.2 host = IP-literal / IPv4address / reg-name, and port = *DIGIT, §3.2.3).
 * Returns the hostname lowercased, without brackets or one trailing dot, IP literals in
 * normalizeAddress form, and the port (undefined when absent or empty, as §3.2.3 allows).
 * Returns undefined when malformed: empty, userinfo ('@'), bad brackets, IPvFuture or a zone
 * id in an IP-literal, a non-numeric or > 65535 port, characters outside the grammar, or
 * longer than 255 characters.
 */
export function parseHostHeader(host: string | undefined): { hostname: string; port: number | undefined } | undefined {
  if (typeof host !== 'string' || host.length === 0 || host.length > MAX_HOST_LENGTH) return undefined;
  let hostname: string;
  let rest: string;
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    if (close === -1) return undefined;
    const literal = host.slice(1, close);
    // IP-literal = "[" ( IPv6address / IPvFuture ) "]"; IPvFuture is refused, and so is a zone.
    const bytes = parseIPv6(literal);
    if (bytes === undefined) return undefined;
    hostname = normalizeAddress(literal)!;
    rest = host.slice(close + 1);
  } else {
    const colon = host.indexOf(':');
    const name = colon === -1 ? host : host.slice(0, colon);
    rest = colon === -1 ? '' : host.slice(colon);
    if (!REG_NAME.test(name)) return undefined; // also refuses '@', '[', ']', whitespace, '/', '\', '?', '#'
    hostname = name.toLowerCase();
    if (hostname.endsWith('.')) hostname = hostname.slice(0, -1); // absolute FQDN "example.com."
    if (hostname === '') return undefined;
  }
  if (rest === '') return { hostname, port: undefined };
  if (!rest.startsWith(':')) return undefined;
  const portText = rest.slice(1);
  if (!PORT.test(portText)) return undefined;
  if (portText === '') return { hostname, port: undefined };
  const port = Number(portText);
  if (port > 65535) return undefined;
  return { hostname, port };
}
