// Who (which user) opened a loopback TCP connection to us, from /proc/net/tcp (Linux). The
// loopback fallback of the Tailscale listener uses it so that another local user cannot
// connect and forge the headers tailscaled would set: only root (tailscaled) and our own
// user (who can read $PORTHOLE_HOME anyway) are accepted. A Unix socket in a 0700
// directory needs none of this; it is preferred where Tailscale can use it.
import { readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';

/** "127.0.0.1", 41234 as /proc/net/tcp writes it: "0100007F:A0F2" (address in host byte order). */
function procV4(addr: string, port: number): string {
  const b = addr.split('.').map(Number);
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(2, '0');
  return `${hex(b[3]!)}${hex(b[2]!)}${hex(b[1]!)}${hex(b[0]!)}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** The same address IPv4-mapped, as /proc/net/tcp6 writes it. */
function procV4Mapped(addr: string, port: number): string {
  return `0000000000000000FFFF0000${procV4(addr, port)}`;
}

/**
 * The uid of the socket with this local/remote pair. Only a socket still held by a process
 * counts: the kernel prints an orphaned socket (its process closed it: FIN_WAIT, LAST_ACK)
 * and a TIME_WAIT entry with uid 0 and inode 0. A local user who writes a request and closes
 * at once would otherwise pass as root (tailscaled) — so inode 0 is "unknown", never root.
 */
function findUid(table: string, local: string, remote: string): number | undefined {
  for (const line of table.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[1] === local && f[2] === remote) {
      const uid = Number(f[7]);
      if (!Number.isInteger(uid) || !/^[1-9][0-9]*$/.test(f[9] ?? '')) continue;
      return uid;
    }
  }
  return undefined;
}

export type PeerUid = { kind: 'uid'; uid: number } | { kind: 'unknown' } | { kind: 'unsupported' };

/**
 * The uid owning the other end of a loopback connection: `peer` is the remote end as our
 * socket sees it, `self` our end. `unsupported` where /proc/net/tcp does not exist.
 */
export function loopbackPeerUid(peer: { address: string; port: number }, self: { address: string; port: number }): PeerUid {
  const a = peer.address.replace(/^::ffff:/i, '');
  const b = self.address.replace(/^::ffff:/i, '');
  if (!isIPv4(a) || !isIPv4(b)) return { kind: 'unknown' };
  let v4: string;
  try {
    v4 = readFileSync('/proc/net/tcp', 'utf8');
  } catch {
    return { kind: 'unsupported' };
  }
  const found = findUid(v4, procV4(a, peer.port), procV4(b, self.port));
  if (found !== undefined) return { kind: 'uid', uid: found };
  try {
    const v6 = readFileSync('/proc/net/tcp6', 'utf8');
    const mapped = findUid(v6, procV4Mapped(a, peer.port), procV4Mapped(b, self.port));
    if (mapped !== undefined) return { kind: 'uid', uid: mapped };
  } catch {
    // no IPv6 in this kernel
  }
  return { kind: 'unknown' };
}
