// The SSH destination porthole hands to `ssh`: `[user@]host` (a host may be an alias from
// ~/.ssh/config) or `ssh://[user@]host[:port]`. Anything that could be read as an option
// (a leading "-") or smuggle a second argument (whitespace, control characters) is refused;
// porthole also passes "--" before it, so this is defence in depth.
import { PortholeError } from '../errors.js';

// user: anything but whitespace, "@", "/", ":" and shell syntax; host: a DNS name / alias, an
// IPv4 address, or an IPv6 address in brackets. OpenSSH before 9.6 (CVE-2023-51385) put %r
// unquoted into ProxyCommand/LocalCommand/Match exec, which run through /bin/sh: the
// characters OpenSSH 9.6 refuses in a user name are refused here too, whatever ssh runs.
const USER = String.raw`[^\s@/:'"\x60$;&<>|(){}\\]+`;
const HOST = String.raw`(?:[A-Za-z0-9_](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?|\[[0-9A-Fa-f:.]+\])`;
const PLAIN = new RegExp(`^(?:${USER}@)?${HOST}$`);
const URI = new RegExp(`^ssh://(?:${USER}@)?${HOST}(?::[0-9]{1,5})?$`);

/** Returns the target unchanged, or throws SSH_TARGET_INVALID saying what is expected. */
export function checkSshDestination(target: string, where = '--target'): string {
  const why = sshDestinationProblem(target);
  if (why) throw new PortholeError('SSH_TARGET_INVALID', `${where}: ${why}`);
  return target;
}

/** What is wrong with an SSH destination, or undefined (config checks share this). */
export function sshDestinationProblem(t: string): string | undefined {
  if (t.length === 0) return 'the SSH target is empty; expected user@host';
  if (t.length > 255) return 'the SSH target is longer than 255 characters';
  if (/[\s\u0000-\u001f\u007f]/.test(t)) return 'the SSH target contains whitespace or control characters';
  if (t.startsWith('-')) return `the SSH target must not start with "-" (ssh would read it as an option), got ${JSON.stringify(t)}`;
  if (t.startsWith('ssh://')) {
    if (!URI.test(t)) return `expected ssh://[user@]host[:port], got ${JSON.stringify(t)}`;
    const port = /:(\d+)$/.exec(t.replace(/\[[^\]]*\]/, ''))?.[1];
    if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return `port ${port} is out of range`;
    return undefined;
  }
  if (!PLAIN.test(t)) return `expected [user@]host (or a Host alias from your ssh config), got ${JSON.stringify(t)}`;
  return undefined;
}
