// What porthole last mapped in Tailscale Serve, kept in $PORTHOLE_HOME/tailscale.json (0600,
// no secrets), so that `porthole tailscale reset` — even with no gateway running — removes
// that mapping and nothing else.
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { StatePaths } from '../secrets/paths.js';
import { writeFileAtomic } from '../util/fs.js';

export interface MappingRecord {
  v: 1;
  /** The node's MagicDNS name when it was made. */
  dnsName: string;
  port: number;
  mount: string;
  /** The proxy target porthole gave tailscale: "unix:/…/tailscale.sock" or "http://127.0.0.1:PORT". */
  target: string;
  mode: 'serve' | 'funnel';
}

export function recordPath(paths: StatePaths): string {
  return join(paths.home, 'tailscale.json');
}

export function readRecord(paths: StatePaths): MappingRecord | undefined {
  try {
    const r = JSON.parse(readFileSync(recordPath(paths), 'utf8')) as Partial<MappingRecord>;
    if (r.v !== 1 || typeof r.target !== 'string' || typeof r.dnsName !== 'string') return undefined;
    return { v: 1, dnsName: r.dnsName, port: Number(r.port), mount: String(r.mount), target: r.target, mode: r.mode === 'funnel' ? 'funnel' : 'serve' };
  } catch {
    return undefined;
  }
}

export function writeRecord(paths: StatePaths, record: MappingRecord): void {
  writeFileAtomic(recordPath(paths), `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
}

export function clearRecord(paths: StatePaths): void {
  rmSync(recordPath(paths), { force: true });
}
