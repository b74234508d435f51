// Subdomain names on a relay: which labels a desk may hold, random names, and how a
// ClientHello's SNI (or a Host header) maps to the apex or to one subdomain. Pure.
//
// Grammar of a subdomain (one DNS label, RFC 1035 §2.3.1 "LDH", RFC 5891 §4.2.3.1):
//   label = 3*63( a-z / 0-9 / "-" ), not starting or ending with "-",
//           no "--" in the 3rd and 4th place (reserved for IDNA: "xn--" punycode),
//           not in RESERVED.
// Upper-case ASCII is folded to lower case; anything outside ASCII is refused before
// folding, so "\u212A" (KELVIN SIGN, which lower-cases to "k") cannot smuggle a look-alike in.
import { randomInt } from 'node:crypto';
import { PortholeError } from '../errors.js';

/** Shortest name accepted (DNS allows 1; short names are few, guessable and look official). */
export const MIN_SUBDOMAIN_LENGTH = 3;
/** Longest DNS label (RFC 1035 §2.3.4). */
export const MAX_SUBDOMAIN_LENGTH = 63;

/**
 * Names refused because visitors would trust them as the relay operator's own, or because
 * software fetches them automatically and would hand whoever holds them credentials or
 * traffic. Entries with "_" (or shorter than 3) are already refused by the grammar; they
 * are listed so the list documents intent.
 */
export const RESERVED: ReadonlySet<string> = new Set([
  // The operator's own services: a desk at these would pass for the relay's.
  'www', 'api', 'admin', 'relay', 'tunnel', 'porthole', 'status', 'dashboard', 'console',
  'app', 'static', 'cdn', 'assets', 'docs', 'help', 'support', 'blog', 'login', 'auth',
  'account', 'accounts', 'sso', 'oauth', 'id', 'secure', 'security', 'billing', 'pay',
  // DNS and mail hosts, and names clients probe on their own: mail clients fetch their
  // settings (and send passwords) to autoconfig/autodiscover, browsers load a proxy script
  // from wpad, MTAs read mta-sts (RFC 8461), OpenPGP WKD reads openpgpkey.
  'ns', 'ns1', 'ns2', 'ns3', 'ns4', 'dns', 'mx', 'mail', 'smtp', 'imap', 'pop', 'pop3',
  'webmail', 'ftp', 'sftp', 'autoconfig', 'autodiscover', 'wpad', 'isatap', 'mta-sts',
  'openpgpkey',
  // Names that mean "this machine" or are special-use (RFC 6761), and "root".
  'localhost', 'local', 'localdomain', 'broadcasthost', 'invalid', 'test', 'example', 'root',
  // Underscore labels used for domain validation and mail policy (ACME, DMARC, DKIM).
  '_acme-challenge', '_dmarc', '_domainkey',
]);

/**
 * The rule a lower-case candidate label breaks, or undefined if it is a well-formed label.
 * Does not check RESERVED (a name registered before it became reserved stays its owner's).
 */
export function subdomainSyntaxProblem(label: string): string | undefined {
  if (label.length === 0) return 'is empty';
  if (label.length > MAX_SUBDOMAIN_LENGTH) return `is longer than ${MAX_SUBDOMAIN_LENGTH} characters`;
  if (label.length < MIN_SUBDOMAIN_LENGTH) return `is shorter than ${MIN_SUBDOMAIN_LENGTH} characters`;
  if (label.includes('.')) return 'contains a dot; a subdomain is a single DNS label';
  if (!/^[a-z0-9-]+$/.test(label)) return 'may contain only the letters a-z, digits 0-9 and "-"';
  if (label.startsWith('-') || label.endsWith('-')) return 'must not start or end with "-"';
  if (label.slice(2, 4) === '--') {
    return 'must not have "--" in the 3rd and 4th place ("xn--" and the like are IDNA/punycode labels)';
  }
  return undefined;
}

/** A lower-cased, checked subdomain; throws SUBDOMAIN_INVALID naming the rule it breaks. */
export function validateSubdomain(name: string): string {
  if (typeof name !== 'string') throw invalid(String(name), 'is not a string');
  // Refuse non-ASCII before folding: toLowerCase() maps some non-ASCII letters onto ASCII.
  if (!/^[\x20-\x7e]*$/.test(name)) throw invalid(name, 'contains characters outside ASCII (internationalised names are not accepted)');
  const label = name.toLowerCase();
  const problem = subdomainSyntaxProblem(label);
  if (problem !== undefined) throw invalid(name, problem);
  if (RESERVED.has(label)) throw invalid(name, 'is reserved (a name visitors or software would trust as the relay\'s own)');
  return label;
}

function invalid(name: string, problem: string): PortholeError {
  const shown = name.length > 70 ? name.slice(0, 70) + '…' : name;
  return new PortholeError('SUBDOMAIN_INVALID', `Subdomain ${JSON.stringify(shown)} ${problem}.`);
}

// RFC 4648 base32 alphabet in lower case: no 0/1/8/9, so o, l, i and b are never ambiguous.
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
const LETTERS = 'abcdefghijklmnopqrstuvwxyz';

/**
 * A random name: a letter, then 9 base32 characters ("k7qzm2xw4d"): 26·32⁹ ≈ 2^49.7
 * possibilities, so names cannot be enumerated by guessing. Starting with a letter keeps
 * it a conventional host name (RFC 952). Always passes validateSubdomain.
 */
export function randomSubdomain(): string {
  for (;;) {
    let name = LETTERS[randomInt(LETTERS.length)]!;
    for (let i = 0; i < 9; i++) name += BASE32[randomInt(BASE32.length)];
    if (!RESERVED.has(name)) return name;
  }
}

export type DomainMatch = { kind: 'apex' } | { kind: 'sub'; name: string };

/**
 * Where `host` (an SNI host_name, RFC 6066 §3, or a Host header without its port) falls
 * under `domain`: the apex itself, exactly one label below it, or undefined (another
 * domain, deeper labels, an empty or malformed label, non-ASCII). Compared case-insensitively;
 * one trailing dot (a fully qualified name) is tolerated on either. The label is returned
 * lower-cased but not checked against RESERVED or the length minimum: lookup decides.
 */
export function matchDomain(host: string, domain: string): DomainMatch | undefined {
  const d = normalise(domain);
  if (d === undefined || d === '') {
    throw new PortholeError('INVALID_ARGUMENT', `invalid relay domain ${JSON.stringify(domain)}`);
  }
  const h = normalise(host);
  if (h === undefined) return undefined;
  if (h === d) return { kind: 'apex' };
  // The "." before the domain matters: "evil-tunnel.example.test" is not under "tunnel.example.test".
  if (!h.endsWith('.' + d)) return undefined;
  const name = h.slice(0, h.length - d.length - 1);
  if (!/^[a-z0-9-]{1,63}$/.test(name)) return undefined; // empty, deeper ("a.b"), or not LDH
  return { kind: 'sub', name };
}

/** Lower-cased name without one trailing dot; undefined if not printable ASCII or empty labels. */
function normalise(name: string): string | undefined {
  if (typeof name !== 'string' || !/^[\x21-\x7e]*$/.test(name)) return undefined;
  const n = (name.endsWith('.') ? name.slice(0, -1) : name).toLowerCase();
  if (n.split('.').some((l) => l === '') && n !== '') return undefined;
  return n;
}
