// One gateway per home (DESIGN §5: two apps never share state silently). Every gateway —
// `porthole serve` and an embedding app's createGateway — holds `run/gateway.lock` while it
// lives: {"pid", "started", "nonce"}. A second gateway on the same home, in this process or
// another, is refused with GATEWAY_ALREADY_RUNNING instead of sharing the token, sessions and
// devices with the first (and missing each other's rotations). A lock whose process is gone
// (crash, kill -9) is stale and taken over. createGateway is synchronous, so this is a file
// created with O_EXCL semantics (link(2) of a complete temp file), not a socket probe.
import { randomBytes } from 'node:crypto';
import { linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PortholeError } from '../errors.js';
import { ensureDir } from '../util/fs.js';
import type { StatePaths } from './paths.js';

export interface HomeLock {
  /** Removes the lock if it is still this one; idempotent. */
  release(): void;
}

interface LockRecord {
  pid: number;
  /** The process's start time (Linux: clock ticks since boot), so a reused pid is not "alive". */
  started?: string;
  nonce: string;
}

/** Locks held by this process (a pid check alone cannot tell two gateways of one process apart). */
const heldHere = new Set<string>();

const lockPath = (paths: StatePaths): string => join(paths.runDir, 'gateway.lock');

/** Takes the home's lock or throws GATEWAY_ALREADY_RUNNING naming the holder. */
export function lockHome(paths: StatePaths): HomeLock {
  const file = lockPath(paths);
  ensureDir(paths.runDir, 0o700);
  const mine: LockRecord = { pid: process.pid, started: startTime(process.pid), nonce: randomBytes(12).toString('hex') };
  const tmp = `${file}.${mine.nonce}`;
  writeFileSync(tmp, `${JSON.stringify(mine)}\n`, { mode: 0o600 });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(tmp, file); // fails with EEXIST if any gateway holds, or held, the home
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt === 2) throw err;
      }
      const holder = readLock(file);
      if (holder !== undefined && isAlive(holder, file)) {
        throw new PortholeError(
          'GATEWAY_ALREADY_RUNNING',
          `${paths.home} is in use by another porthole gateway (process ${holder.pid}${holder.pid === process.pid ? ', this one' : ''}). ` +
            'Only one gateway may serve a state directory: give each embedding app its own appName or stateDir, ' +
            'close the first gateway (gateway.close()) before creating another, or stop the other process.',
        );
      }
      // Stale (its process is gone) or unreadable: take it over.
      try {
        unlinkSync(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  } finally {
    unlinkSync(tmp);
  }
  heldHere.add(file);
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      heldHere.delete(file);
      // Only our own lock: a stale-lock takeover by someone else must not be undone.
      if (readLock(file)?.nonce === mine.nonce) {
        try {
          unlinkSync(file);
        } catch {
          // Already gone.
        }
      }
    },
  };
}

/** The pid of a live gateway holding this home, if any (the CLI's "running but not answering" case). */
export function homeHolder(paths: StatePaths): number | undefined {
  const file = lockPath(paths);
  const holder = readLock(file);
  return holder !== undefined && isAlive(holder, file) ? holder.pid : undefined;
}

function readLock(file: string): LockRecord | undefined {
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as Partial<LockRecord>;
    if (typeof r.pid === 'number' && Number.isSafeInteger(r.pid) && r.pid > 0 && typeof r.nonce === 'string') {
      return { pid: r.pid, nonce: r.nonce, ...(typeof r.started === 'string' ? { started: r.started } : {}) };
    }
  } catch {
    // Absent or not ours.
  }
  return undefined;
}

function isAlive(holder: LockRecord, file: string): boolean {
  if (holder.pid === process.pid) return heldHere.has(file);
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    // EPERM: it exists, under another user.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const now = startTime(holder.pid);
  return holder.started === undefined || now === undefined || now === holder.started;
}

/** Field 22 of /proc/<pid>/stat (start time); undefined where there is no /proc. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is parenthesised and may contain spaces: count after its end.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}
